// refold import interrupted (README, "Import", "Interrupted"): Ctrl-C or SIGTERM ends it with
// the progress line erased, the summary of what the server answered, one line saying from
// which line on the file was not imported and that importing it again is safe, and exit
// status 130 or 143. Requests in flight get a few seconds to answer; a second signal exits
// at once. Importing the same file again afterwards stores the rest and finds the first
// part unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { startServer, run, sleep, BIN } from './lib.mjs';

let srv, env;
const jsonl = (lines) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const trace = (agent, ext) => ({ type: 'trace', agent, source: 's', external_id: ext, input: `in ${ext}`, output: `out ${ext}` });

before(async () => {
  srv = await startServer();
  env = { ...process.env, XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key, REFOLD_TTY: '' };
});
after(async () => { await srv.stop(); srv.cleanup(); });

// `refold import` with its stdin a pipe the test writes to; resolves when it exits.
function importer(args, extraEnv = {}) {
  const child = spawn(BIN, ['import', ...args], { env: { ...env, ...extraEnv }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

async function traceCount(agent) {
  const r = await srv.api('GET', `/v1/agents?name=${agent}`);
  const a = r.json.data[0];
  if (!a) return 0;
  const t = await srv.api('GET', `/v1/traces?agent_id=${a.id}&limit=500`);
  return t.json.data.length;
}

async function until(what, check, ms = 20000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('Ctrl-C while reading stdin: summary of what was stored, the line to go on from, exit 130; importing again is safe', async () => {
  const lines = [{ type: 'agent', name: 'intr', prompt_template: 'Hi {{x}}' }];
  for (let i = 0; i < 50; i++) lines.push(trace('intr', `i${i}`)); // lines 2..51: five batches of 10, sent
  for (let i = 50; i < 55; i++) lines.push(trace('intr', `i${i}`)); // lines 52..56: a batch not full, not sent
  const p = importer(['-', '--batch', '10', '--tty'], { TERM: 'xterm', COLUMNS: '100' });
  p.child.stdin.write(jsonl(lines.slice(0, 52))); // line 52 sends the fifth batch
  await until('50 traces stored', async () => (await traceCount('intr')) === 50);
  p.child.stdin.write(jsonl(lines.slice(52)));
  await sleep(300); // read and parsed; the importer waits for more input
  p.child.kill('SIGINT'); // stdin stays open: the read is interrupted
  const r = await p.done;
  p.child.stdin.destroy();
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stdout, /^Interrupted importing stdin after reading 56 records in [\d.]+ s; the server's answers:$/m);
  assert.match(r.stdout, /^agent\s+1\s+0\s+0\s+0$/m);
  assert.match(r.stdout, /^trace\s+50\s+0\s+0\s+0$/m);
  const last = r.stderr.split('\n').filter(Boolean).pop();
  assert.ok(r.stderr.includes('\r\x1b[K'), 'the progress line is erased');
  assert.equal(last.replace(/^[^]*\x1b\[K/, ''), 'refold: import interrupted: the records from line 52 on were not all imported; ' +
    'the table counts what the server answered; importing the file again is safe: what is stored counts as unchanged');
  assert.equal(await traceCount('intr'), 50);

  const file = join(srv.dir, 'intr.jsonl');
  writeFileSync(file, jsonl(lines));
  const again = await run(['import', file, '--json', '--batch', '10'], { env });
  assert.equal(again.code, 0, again.stderr);
  const s = JSON.parse(again.stdout);
  assert.deepEqual(s.types.agent, { created: 0, updated: 0, unchanged: 1, rejected: 0 });
  assert.deepEqual(s.types.trace, { created: 5, updated: 0, unchanged: 50, rejected: 0 });
  assert.equal(s.interrupted, undefined);
  assert.equal(await traceCount('intr'), 55);
});

// A proxy in front of srv that forwards every request, except that it holds the answer of
// the trace batches hold(n) picks (n: the batch's number, from 1) until release() or for ever.
async function holdingProxy(hold) {
  let batches = 0, held = [], onHeld = () => {};
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers };
      delete headers.host;
      delete headers['content-length'];
      const r = await fetch(srv.url + req.url, { method: req.method, headers, body: body.length ? body : undefined });
      const text = await r.text();
      const answer = () => { res.writeHead(r.status, { 'Content-Type': 'application/json' }); res.end(text); };
      if (req.method === 'POST' && req.url.startsWith('/v1/traces') && hold(++batches)) {
        held.push(answer);
        onHeld();
        return;
      }
      answer();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    held: () => (held.length ? Promise.resolve() : new Promise((r) => { onHeld = r; })),
    release: () => { held.forEach((a) => a()); held = []; },
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

test('SIGTERM with a batch in flight: its answer is waited for a while, then counted unanswered; exit 143', async () => {
  for (const [releaseAfter, answered] of [[500, true], [null, false]]) {
    const agent = `held-${answered}`;
    const lines = [{ type: 'agent', name: agent, prompt_template: 'Hi {{x}}' }];
    for (let i = 0; i < 30; i++) lines.push(trace(agent, `${agent}-${i}`)); // batches of 10: lines 2-11, 12-21, 22-31
    const proxy = await holdingProxy((n) => n === 2);
    try {
      const p = importer(['-', '--batch', '10', '--parallel', '1', '--json'], { REFOLD_URL: proxy.url });
      p.child.stdin.write(jsonl(lines));
      await proxy.held();
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      if (releaseAfter !== null) setTimeout(() => proxy.release(), releaseAfter);
      const r = await p.done;
      const took = Date.now() - t0;
      p.child.stdin.destroy();
      assert.equal(r.code, 143, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.interrupted, 'SIGTERM');
      assert.equal(s.stopped, true);
      assert.equal(s.not_imported_from_line, answered ? 22 : 12);
      assert.equal(s.unanswered, answered ? 0 : 10);
      assert.deepEqual(s.types.trace, { created: answered ? 20 : 10, updated: 0, unchanged: 0, rejected: 0 }, r.stderr);
      if (answered) {
        assert.ok(took < 2500, `exited ${took} ms after the signal`);
        assert.match(r.stderr, /^refold: import stopped by SIGTERM: the records from line 22 on were not all imported; /m);
      } else {
        assert.ok(took >= 2900 && took < 6000, `gave up waiting after ${took} ms`);
        assert.match(r.stderr, /^refold: import stopped by SIGTERM: the records from line 12 on were not all imported \(10 sent may or may not be stored\); /m);
      }
    } finally {
      proxy.release();
      await proxy.close();
    }
  }
});

test('a second Ctrl-C while waiting for answers exits at once, with one line', async () => {
  const lines = [{ type: 'agent', name: 'twice', prompt_template: 'Hi {{x}}' }];
  for (let i = 0; i < 20; i++) lines.push(trace('twice', `w${i}`));
  const proxy = await holdingProxy((n) => n === 1);
  try {
    const p = importer(['-', '--batch', '10', '--parallel', '1'], { REFOLD_URL: proxy.url });
    p.child.stdin.write(jsonl(lines));
    await proxy.held();
    p.child.kill('SIGINT');
    await sleep(300);
    const t0 = Date.now();
    p.child.kill('SIGINT');
    const r = await p.done;
    p.child.stdin.destroy();
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(r.code, 130);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'refold: import stopped at once (second signal): the requests in flight may or may not be stored; ' +
      'importing the file again is safe\n');
  } finally {
    proxy.release();
    await proxy.close();
  }
});

test('a slow pipe: batches sent are answered, and their rejections reported, while the importer waits for more lines', async () => {
  const lines = [{ type: 'agent', name: 'slowpipe', prompt_template: 'Hi {{x}}' }];
  for (let i = 0; i < 10; i++) lines.push(trace('slowpipe', `sp${i}`));
  lines[5] = { type: 'trace', agent: 'slowpipe', source: 's', external_id: 'sp-bad', output: 'no input' }; // line 6
  lines.push(trace('slowpipe', 'sp10')); // line 12 sends the first batch (lines 2-11)
  const p = importer(['-', '--batch', '10']);
  p.child.stdin.write(jsonl(lines));
  await until('the first batch stored', async () => (await traceCount('slowpipe')) === 9, 10000);
  await until('line 6 reported', async () => p.stderr().includes('stdin:6: trace: input is required'), 5000);
  p.child.stdin.end();
  const r = await p.done;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^trace\s+10\s+0\s+0\s+1$/m);
});

test('Ctrl-C while the server cannot be reached: the failure is told as usual, and the exit status is still 130', async () => {
  const gone = createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const url = `http://127.0.0.1:${gone.address().port}`;
  await new Promise((r) => gone.close(r)); // nothing listens there now
  const lines = [];
  for (let i = 0; i < 11; i++) lines.push({ type: 'feedback', source: 's', external_id: `gone${i}`, rating: 'positive' });
  const p = importer(['-', '--batch', '10'], { REFOLD_URL: url });
  p.child.stdin.write(jsonl(lines)); // line 11 sends the first batch: refused, retried after 0.5 s and 1 s
  await sleep(200);
  p.child.kill('SIGINT');
  const r = await p.done;
  p.child.stdin.destroy();
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^refold: import stopped after reading 11 records: cannot reach refold at /m);
});
