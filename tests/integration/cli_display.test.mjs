// What the client commands show people beyond the basics of cli.test.mjs: the tables'
// columns with long and wide (CJK) names, and what `job --follow` and `improve` say while
// the event stream reconnects after the server went away (a status line on a terminal, a
// line on stderr when lost and one when back otherwise), with every event still shown once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { BIN, startFakeLLM, llmEnv, run, sleep } from './lib.mjs';
import { startJobsServer, enqueueOk, waitJob, storedEvents } from './jobs_lib.mjs';

const TEMPLATE = 'You answer for {{company}}.\nBe brief.\n';
const A = { match: 'Identify the failure patterns',
  text: JSON.stringify({ failure_patterns: ['Guesses order numbers'], summary: 'Guessing.' }),
  usage: { input_tokens: 50, output_tokens: 10 } };
const R = { match: 'Rewrite the prompt template below',
  text: JSON.stringify({ improved_prompt: 'You answer for {{company}}.\nNever guess.\nBe brief.\n',
    changes: ['No guessing'], reasoning: 'x' }), usage: { input_tokens: 70, output_tokens: 20 } };
const UTF8 = { LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' };

let fake, srv, env;
const cli = (args, extra = {}) => run(args, { env: { ...env, ...extra } });

// Columns a terminal gives s: 2 for the CJK characters used below, 1 for the rest.
const cols = (s) => [...s].reduce((n, c) => n + (/[\u3000-\u9fff]/.test(c) ? 2 : 1), 0);

before(async () => {
  fake = await startFakeLLM();
  srv = await startJobsServer(llmEnv(fake));
  env = { XDG_CONFIG_HOME: `${srv.dir}/client-config`, REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key,
    REFOLD_TTY: '', NO_COLOR: '', TERM: 'xterm', ...UTF8 };
});
after(async () => { await srv.stop(); srv.cleanup?.(); fake.stop(); });

test('agents: names over 40 columns are cut with an ellipsis, wide characters count 2: the columns line up', async () => {
  const long = 'support-agent-for-the-northern-european-region-and-more';
  for (const name of [long, '注文サポート担当エージェント', 'short'])
    assert.equal((await srv.api('POST', '/v1/agents', { name, prompt_template: TEMPLATE })).status, 201);
  for (const [lang, dots] of [[UTF8, '…'], [{ LANG: 'C', LC_ALL: '', LC_CTYPE: '' }, '...']]) {
    const r = await cli(['agents'], lang);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    // STATUS starts at the same column on every line, two after the name column.
    const at = lines.map((l) => cols(l.slice(0, l.search(/  (STATUS|confirmed)/))));
    assert.ok(at.every((c) => c === 40), `${JSON.stringify(at)}\n${r.stdout}`);
    const cut = lines.find((l) => l.startsWith('support-agent'));
    assert.equal(cut.slice(0, 40), long.slice(0, 40 - dots.length) + dots);
    assert.ok(lines.some((l) => l.startsWith('注文サポート担当エージェント  ')), r.stdout);
  }
  // --json keeps the whole name.
  const j = JSON.parse((await cli(['agents', '--json'])).stdout);
  assert.ok(j.some((a) => a.name === long));
});

// Start the CLI; out.done resolves like run(), out.waitFor(re) once stdout + stderr match re.
function start(args, extra = {}) {
  const child = spawn(BIN, args, { env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const waiters = [];
  const check = () => { for (const w of waiters) if (w.re.test(out.stdout + out.stderr)) w.ok(); };
  child.stdout.on('data', (d) => { out.stdout += d; check(); });
  child.stderr.on('data', (d) => { out.stderr += d; check(); });
  out.done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: out.stdout, stderr: out.stderr })));
  out.waitFor = (re, ms = 20000) => new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`never saw ${re}: ${JSON.stringify(out)}`)), ms);
    waiters.push({ re, ok: () => { clearTimeout(timer); ok(); } });
    check();
  });
  return out;
}

// Kill the server while `args` follows a job, once the CLI has shown `shown` and the job
// is at least at `ready`; start it again on the same port after `awayMs`; resolves like run().
async function acrossRestart(args, shown, ready, extra = {}, awayMs = 1500) {
  const cli = start(args, extra);
  await cli.waitFor(shown);
  await ready();
  const port = srv.port;
  await srv.stop('SIGKILL');
  await sleep(awayMs);
  await srv.start(['--listen', `127.0.0.1:${port}`]);
  return cli.done;
}

const LOST = /^refold: connection lost \((cannot reach refold at [^)]*|the stream was cut off|.*)\); reconnecting for up to 2 minutes, the events resume where they stopped$/;

test('job --follow on a pipe: one stderr line when the stream is lost, one when it is back; every event once', { timeout: 90000 }, async () => {
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 6 });
  const r = await acrossRestart(['job', job.id, '--follow'], /^1 progress/m,
    () => waitJob(srv, job.id, (j) => j.progress >= 28, 10000, 'a few events'));
  assert.equal(r.code, 0, r.stderr);
  const err = r.stderr.trimEnd().split('\n');
  assert.equal(err.length, 2, r.stderr);
  assert.match(err[0], LOST);
  assert.match(err[1], /^refold: reconnected after \d+ s$/);
  const seqs = r.stdout.trim().split('\n').map((l) => Number(l.split(' ')[0]));
  assert.deepEqual(seqs, (await storedEvents(srv, job.id)).map((e) => e.seq), 'every event once');
});

test('job --follow on a terminal: "connection lost, reconnecting… (N s)" on the last line until the server is back', { timeout: 90000 }, async () => {
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 6 });
  const r = await acrossRestart(['job', job.id, '--follow'], /^1 progress/m,
    () => waitJob(srv, job.id, (j) => j.progress >= 28, 10000, 'a few events'), { REFOLD_TTY: '1' }, 2500);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'nothing on stderr: the notice is on the terminal');
  const parts = r.stdout.split('\r\x1b[K');
  const notices = parts.filter((p) => p.startsWith('connection lost'));
  assert.ok(notices.length >= 2, r.stdout);
  notices.forEach((n, i) => assert.match(n, /^connection lost, reconnecting… \(\d+ s\)$/, `notice ${i}`));
  assert.ok(notices.some((n) => n !== notices[0]), `the seconds count: ${notices}`);
  // The last notice is erased before the next event's line, which starts a line of its own.
  const last = parts.findLastIndex((p) => p.startsWith('connection lost'));
  assert.match(parts[last + 1], /^\d+ (retry|progress|completed)/, r.stdout);
  const lines = parts.map((p) => (p.startsWith('connection lost') ? '' : p)).join('').trim().split('\n');
  assert.deepEqual(lines.map((l) => Number(l.split(' ')[0])), (await storedEvents(srv, job.id)).map((e) => e.seq));
});

test('improve on a terminal: the notice takes the progress line\'s place, the progress line comes back', { timeout: 90000 }, async () => {
  // An agent with two contradictions, through the CLI's own import.
  const lines = [
    { type: 'agent', name: 'follower', prompt_template: TEMPLATE },
    { type: 'eval', agent: 'follower', name: 'judge' },
    ...[0, 1].map((i) => ({ type: 'trace', agent: 'follower', external_id: `f${i}`, input: `q${i}`, output: `a${i}` })),
    ...['negative', 'positive'].map((rating, i) => ({ type: 'feedback', external_id: `f${i}`, rating })),
    ...[true, false].map((p, i) => ({ type: 'eval_execution', agent: 'follower', eval: 'judge', external_id: `f${i}`, predicted_result: p })),
  ];
  const imported = await run(['import', '-'], { env, input: lines.map((l) => JSON.stringify(l)).join('\n') + '\n' });
  assert.equal(imported.code, 0, imported.stderr);
  await fake.script([{ ...A, latency_ms: 4000 }, A, R]);
  const agent = (await srv.api('GET', '/v1/agents?name=follower')).json.data[0];
  const r = await acrossRestart(['improve', 'follower'], /analyzing failures/, async () => {
    for (let i = 0; i < 400; i++) {
      const [j] = (await srv.api('GET', `/v1/jobs?agent_id=${agent.id}&limit=1`)).json.data;
      if (j && j.stage === 'analyzing_failures') return;
      await sleep(25);
    }
    throw new Error('the job never reached analyzing_failures');
  }, { REFOLD_TTY: '1' }, 2500);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const parts = r.stdout.split('\r\x1b[K').map((p) => p.replace(/\x1b\[[0-9;]*m/g, ''));
  const last = parts.findLastIndex((p) => p.includes('connection lost'));
  assert.ok(last > 0, r.stdout);
  assert.match(parts[last], /^  ! connection lost, reconnecting… \(\d+ s\)$/);
  // Back: the next thing drawn is the status line again (or the retry's permanent line).
  assert.match(parts[last + 1], /^  (⠋|⠙|⠹|⠸|⠼|⠴|⠦|⠧|⠇|⠏|↻) /, JSON.stringify(parts.slice(last - 1, last + 3)));
  assert.match(r.stdout, /Candidate v2 of follower/);
  await fake.reset();
});

test('versions: a long summary (the LLM\'s reasoning, any script) is cut to 60 columns with an ellipsis, never inside a character', async () => {
  // Runs after the improve test above, on its agent.
  const reasoning = 'Les réponses promettaient des remboursements sans vérifier la commande, ' +
    'et de façon répétée.\nSecond line.';
  await fake.script([A, { ...R, text: JSON.stringify({ improved_prompt: 'You answer for {{company}}.\nVérifie.\n',
    changes: ['Vérifier'], reasoning }) }]);
  const done = await cli(['improve', 'follower']);
  assert.equal(done.code, 0, done.stderr);
  for (const [lang, dots] of [[UTF8, '…'], [{ LANG: 'C', LC_ALL: '', LC_CTYPE: '' }, '...']]) {
    const r = await cli(['versions', 'follower'], lang);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('\ufffd'), `valid UTF-8: ${JSON.stringify(r.stdout)}`);
    const head = r.stdout.split('\n')[1];
    const row = r.stdout.split('\n').find((l) => /^v3 /.test(l));
    const summary = row.slice(head.indexOf('SUMMARY'));
    assert.equal(summary, reasoning.slice(0, 60 - dots.length) + dots);
  }
  await fake.reset();
});

test('job --follow: a stream silent for 45 s (a frozen server, a network gone without a reset) is dead: said, and reconnected', { timeout: 150000 }, async () => {
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 6 });
  const following = start(['job', job.id, '--follow']);
  await following.waitFor(/^1 progress/m);
  await waitJob(srv, job.id, (j) => j.progress >= 28, 10000, 'a few events');
  // The server still holds the connection but sends nothing, not even its pings.
  srv.child.kill('SIGSTOP');
  try {
    await following.waitFor(/connection lost/, 120000);
  } finally {
    srv.child.kill('SIGCONT');
  }
  const r = await following.done;
  assert.equal(r.code, 0, r.stderr);
  const err = r.stderr.trimEnd().split('\n');
  assert.match(err[0], new RegExp(`^refold: connection lost \\(nothing heard from refold at ${srv.url} for 45 s\\); reconnecting`));
  assert.match(err.at(-1), /^refold: reconnected after \d+ s$/);
  const seqs = r.stdout.trim().split('\n').map((l) => Number(l.split(' ')[0]));
  assert.deepEqual(seqs, (await storedEvents(srv, job.id)).map((e) => e.seq), 'every event once');
});

test('improve: a server gone between starting the job and its stream is reconnected to, not taken for a wrong REFOLD_URL', async () => {
  // A stand-in for refold: the first request for the events gets no answer at all.
  const job = { id: 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV', type: 'prompt_improvement', status: 'completed',
    result: { changes_summary: 'Nothing to improve.' } };
  const agentJson = { id: 'agent_01ARZ3NDEKTSV4RRFFQ69G5FAV', name: 'stand-in', status: 'confirmed', active_version: { version: 1 } };
  let streams = 0;
  const fakeRefold = http.createServer((req, res) => {
    // Connection: close, so that no request goes out on a kept-alive connection, which
    // libcurl would send again by itself when it closes unanswered.
    const json = (status, body) => { res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }); res.end(JSON.stringify(body)); };
    if (req.url.startsWith('/v1/agents?')) return json(200, { data: [agentJson], next_cursor: null });
    if (req.url.endsWith('/improve-prompt')) return json(202, { ...job, status: 'queued', result: null });
    if (req.url === `/v1/jobs/${job.id}/events` && streams++ === 0) return req.socket.destroy();
    if (req.url === `/v1/jobs/${job.id}/events` && req.headers['last-event-id'] === '1') return res.writeHead(204).end();
    if (req.url === `/v1/jobs/${job.id}/events`) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return res.end(`retry: 100\n\nid: 1\nevent: completed\ndata: ${JSON.stringify({ job_id: job.id, status: 'completed', result: job.result })}\n\n`);
    }
    if (req.url === `/v1/jobs/${job.id}`) return json(200, job);
    json(404, { error: { code: 'not_found', message: 'no such endpoint' } });
  });
  await new Promise((ok) => fakeRefold.listen(0, '127.0.0.1', ok));
  try {
    const r = await run(['improve', 'stand-in'], { env: { ...env, REFOLD_URL: `http://127.0.0.1:${fakeRefold.address().port}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(streams, 3, 'cut off, answered, then 204 after its last event');
    assert.match(r.stderr, /^refold: connection lost \(GET \S+\/events failed: Server returned nothing.*\); reconnecting[^\n]*\nrefold: reconnected after \d+ s\n$/);
    assert.match(r.stdout, /Nothing to improve\./);
  } finally {
    fakeRefold.close();
  }
});
