// The client commands of SPEC §9 against a real server: agents, versions, show,
// diff, improve (TTY and plain, against the fake LLM), promote, reject, and the
// job commands' JSON; exit codes (0 ok, 1 failure, 2 bad usage), --json output
// equal to the API's, one-line errors for the common mistakes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, statSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect } from 'node:net';
import { execFile, spawn } from 'node:child_process';
import { BIN, Server, startServer, startFakeLLM, llmEnv, run, waitJob, freshDatabase, dropDatabase, sql } from './lib.mjs';

const TEMPLATE = 'You answer for {{company}}.\nReply in {{language}}.\nBe brief.\n';
const ANALYSIS = JSON.stringify({ failure_patterns: ['Promises refunds without checking the order'],
  summary: 'Refund rules are missing.' });
const IMPROVED = 'You answer for {{company}}.\nReply in {{language}}.\nCheck the order before any refund.\nBe brief.\n';
const REWRITE = JSON.stringify({ improved_prompt: IMPROVED, changes: ['Check orders before refunds'],
  reasoning: 'Refunds were promised blindly.' });
const A = { match: 'Identify the failure patterns', text: ANALYSIS, usage: { input_tokens: 500, output_tokens: 40 } };
const R = { match: 'Rewrite the prompt template below', text: REWRITE, usage: { input_tokens: 700, output_tokens: 90 } };

const STAGES = ['fetching agent', 'fetching contradictions', 'analyzing failures', 'fetching best practices',
  'generating improved prompt', 'validating prompt', 'creating new version', 'finalizing', 'completed'];

let fake, srv, agent, env;
const cli = (args, opts = {}) => run(args, { ...opts, env: { ...env, ...(opts.env || {}) } });
const oneLine = (s) => s.trim().split('\n').length === 1;
// Run the CLI with arguments that are not UTF-8, which node's argv cannot carry: the shell
// turns each NOT_UTF8 in an argument into the byte 0xFF.
const NOT_UTF8 = '<ff>';
const runNotUtf8 = (args, extraEnv = {}) => new Promise((resolve) => execFile('/bin/sh', ['-c',
  `exec "$0" ${args.map((a) => `'${a.split(NOT_UTF8).join(`'"$(printf '\\377')"'`)}'`).join(' ')}`, BIN],
{ env: { ...process.env, ...env, ...extraEnv } }, (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout, stderr })));

before(async () => {
  fake = await startFakeLLM();
  srv = await startServer({ env: llmEnv(fake) });
  env = { XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key,
    REFOLD_TTY: '', NO_COLOR: '' };
  // An agent with two contradictions (one of each kind), through the CLI's own import.
  const lines = [
    { type: 'agent', name: 'cli-agent', description: 'Answers customers', prompt_template: TEMPLATE },
    { type: 'eval', agent: 'cli-agent', name: 'judge' },
    ...[0, 1, 2, 3].map((i) => ({ type: 'trace', agent: 'cli-agent', source: 'cli', external_id: `c${i}`, input: `q${i}`, output: `a${i}` })),
    ...['negative', 'positive', 'positive', 'negative'].map((rating, i) => ({ type: 'feedback', source: 'cli', external_id: `c${i}`, rating })),
    ...[true, false, true, false].map((p, i) => ({ type: 'eval_execution', agent: 'cli-agent', eval: 'judge', source: 'cli', external_id: `c${i}`, predicted_result: p })),
  ];
  const r = await cli(['import', '-'], { input: lines.map((l) => JSON.stringify(l)).join('\n') + '\n' });
  assert.equal(r.code, 0, r.stderr);
  agent = (await srv.api('GET', '/v1/agents?name=cli-agent')).json.data[0];
});
after(async () => { await srv.stop(); srv.cleanup(); fake.stop(); });

test('agents: a table, and --json equal to GET /v1/agents', async () => {
  const r = await cli(['agents']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+STATUS\s+ACTIVE\s+TRACES/);
  assert.match(r.stdout, /cli-agent\s+confirmed\s+v1\s+4\s+4\s+1\s+2\s+50\.0%/);
  const j = await cli(['agents', '--json']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.stdout), (await srv.api('GET', '/v1/agents')).json.data);
});

test('show and versions, by name or id; --json equal to the API', async () => {
  let r = await cli(['show', 'cli-agent']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /contradictions:\s+2 \(1 missed failure, 1 false alarm\)/);
  assert.ok(r.stdout.includes(TEMPLATE), 'shows the active template');
  r = await cli(['show', agent.id, '--json']);
  assert.deepEqual(JSON.parse(r.stdout), (await srv.api('GET', `/v1/agents/${agent.id}`)).json);
  r = await cli(['show', 'cli-agent', '1', '--json']);
  assert.deepEqual(JSON.parse(r.stdout), (await srv.api('GET', `/v1/agents/${agent.id}/versions/1`)).json);
  r = await cli(['versions', 'cli-agent']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^v1\s+active\s+manual/m);
  r = await cli(['versions', '--json', 'cli-agent']);
  assert.deepEqual(JSON.parse(r.stdout), (await srv.api('GET', `/v1/agents/${agent.id}/versions`)).json.data);
});

test('improve in TTY mode: the stages in order on a redrawn line, then the candidate', async () => {
  await fake.script([A, R]);
  const tty = { REFOLD_TTY: '1', TERM: 'xterm', LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' };
  const r = await cli(['improve', 'cli-agent', '--max-contradictions', '5'], { env: tty });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(r.stdout.includes('\r\x1b[K'), 'the status line is redrawn in place');
  assert.match(r.stdout, /\[\x1b\[32m█+/, 'a progress bar');
  let at = -1;
  for (const s of STAGES) {
    const i = r.stdout.indexOf(`✓\x1b[0m ${s}`, at + 1);
    assert.ok(i > at, `stage "${s}" after the previous one`);
    at = i;
  }
  assert.match(r.stdout, /2 contradictions \(1 missed failure, 1 false alarm\)/);
  assert.match(r.stdout, /Candidate v2 of cli-agent/);
  assert.match(r.stdout, /Promote it:\s+refold promote cli-agent 2/);
  const [job] = (await srv.api('GET', `/v1/jobs?agent_id=${agent.id}`)).json.data;
  assert.deepEqual(job.params, { agent_id: agent.id, max_contradictions: 5 });
});

test('improve on a pipe: one plain line per event; --no-wait and --json', async () => {
  await fake.script([A, R]);
  let r = await cli(['improve', 'cli-agent', '--instructions', 'Keep it short']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('\x1b['), 'no escape sequences on a pipe');
  const lines = r.stdout.split('\n');
  for (const [pct, s] of [[0, 'fetching agent'], [30, 'analyzing failures: 2 contradictions'], [100, 'completed']])
    assert.ok(lines.some((l) => l.startsWith(`[${String(pct).padStart(3)}%] ${s}`)), `a line for ${s}`);
  assert.ok(lines.includes('completed: candidate v3 created'));

  await fake.script([A, R]);
  r = await cli(['improve', 'cli-agent', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const job = JSON.parse(r.stdout);
  assert.equal(job.type, 'prompt_improvement');
  assert.equal((await waitJob(srv, job.id)).status, 'completed');

  await fake.script([A, R]);
  r = await cli(['improve', 'cli-agent', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const done = JSON.parse(r.stdout);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done, (await srv.api('GET', `/v1/jobs/${done.id}`)).json);
});

test('improve: a failing job exits 1 with the error on stderr, one line', async () => {
  await fake.script([], { status: 400, error: { type: 'invalid_request_error', message: 'prompt is too long' } });
  const r = await cli(['improve', 'cli-agent'], { env: { REFOLD_TTY: '1', LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' } });
  assert.equal(r.code, 1);
  assert.ok(oneLine(r.stderr), r.stderr);
  assert.match(r.stderr, /^refold: improving cli-agent failed: llm_error: .*400.*prompt is too long/);
  assert.match(r.stdout, /✗.* analyzing failures/);
  // With --json, stdout is the failed Job and stderr still has the one line.
  await fake.script([], { status: 400, error: { type: 'invalid_request_error', message: 'prompt is too long' } });
  const j = await cli(['improve', 'cli-agent', '--json']);
  assert.equal(j.code, 1);
  assert.equal(JSON.parse(j.stdout).status, 'failed');
  assert.ok(oneLine(j.stderr), j.stderr);
  assert.match(j.stderr, /^refold: improving cli-agent failed: llm_error: .*prompt is too long.*\(details: refold job job_\w+\)\n$/);
  await fake.reset();
});

test('diff: plain on a pipe, coloured on request, --json equal to the API', async () => {
  let r = await cli(['diff', 'cli-agent', '2']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^--- v1\n\+\+\+ v2\n@@/);
  assert.match(r.stdout, /^\+Check the order before any refund\.$/m);
  assert.ok(!r.stdout.includes('\x1b['));
  r = await cli(['diff', 'cli-agent', '2', '--color=always']);
  assert.ok(r.stdout.includes('\x1b[32m+Check the order before any refund.\x1b[0m'));
  r = await cli(['diff', 'cli-agent', '3', '2']);
  assert.equal(r.stdout, '', 'identical templates: an empty diff');
  r = await cli(['diff', 'cli-agent', '2', '1', '--json']);
  assert.deepEqual(JSON.parse(r.stdout), (await srv.api('GET', `/v1/agents/${agent.id}/versions/2/diff?base=1`)).json);
  r = await cli(['diff', 'cli-agent', '2', '--color=sometimes']);
  assert.equal(r.code, 2);
  // A missing version is named, whichever of the two it is.
  r = await cli(['diff', 'cli-agent', '2', '99']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'refold: cli-agent has no version 99 (see refold versions cli-agent)\n');
  r = await cli(['diff', 'cli-agent', '98', '1']);
  assert.equal(r.stderr, 'refold: cli-agent has no version 98 (see refold versions cli-agent)\n');
  // Version 1 while it is active: no parent, and the active version is itself. Not an
  // empty diff (on a pipe: nothing at all, as if nothing had changed) but one line saying
  // so and how to compare two versions; --json is still the API's answer.
  assert.equal((await srv.api('POST', '/v1/agents', { name: 'first only', prompt_template: 'Hi {{x}}' })).status, 201);
  r = await cli(['diff', 'first only', '1']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, "refold: first only v1 has nothing to compare with: it has no parent and is the active version (compare it with another: refold diff 'first only' 1 M; see refold versions 'first only')\n");
  r = await cli(['diff', 'first only', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).base.version, 1);
  r = await cli(['diff', 'first only', '1', '1']);
  assert.equal(r.code, 0, 'asked for by name: an empty diff');
  assert.equal(r.stdout, '');
});

test('promote and reject: exit codes, messages, --json', async () => {
  let r = await cli(['promote', 'cli-agent', '2', '--note', 'looks right']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'cli-agent v2 is now active (v1 archived).\n');
  const v2 = (await srv.api('GET', `/v1/agents/${agent.id}/versions/2`)).json;
  assert.equal(v2.status, 'active');
  assert.equal(v2.review_note, 'looks right');
  r = await cli(['promote', 'cli-agent', '2']);
  assert.equal(r.code, 1);
  assert.ok(oneLine(r.stderr));
  assert.match(r.stderr, /cli-agent v2 is active: only a candidate or an archived version can be promoted/);
  r = await cli(['reject', 'cli-agent', '3', '--reason', 'same as v2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), (await srv.api('GET', `/v1/agents/${agent.id}/versions/3`)).json);
  assert.equal(JSON.parse(r.stdout).status, 'rejected');
  r = await cli(['reject', 'cli-agent', '99']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: cli-agent has no version 99/);
});

test('jobs and job --json parse and match the API', async () => {
  const r = await cli(['jobs', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout);
  assert.deepEqual(list, (await srv.api('GET', '/v1/jobs')).json.data);
  // Not every page: the newest --limit.
  assert.ok(list.length > 1);
  assert.deepEqual(JSON.parse((await cli(['jobs', '--json', '--limit', '1'])).stdout), [list[0]]);
  const one = await cli(['job', list[0].id, '--json']);
  assert.deepEqual(JSON.parse(one.stdout), (await srv.api('GET', `/v1/jobs/${list[0].id}`)).json);
});

test('help: one complete sentence per command, and every command has its own help', async () => {
  const r = await cli(['help']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => /^  [a-z]+ +\S/.test(l));
  assert.ok(lines.length >= 20, r.stdout);
  for (const l of lines) {
    assert.match(l, /\.$/, `summary cut short: ${l}`);
    const name = l.trim().split(/\s+/)[0];
    const one = await cli(['help', name]);
    assert.equal(one.code, 0, `help ${name}: ${one.stderr}`);
    assert.ok(one.stdout.includes(name), `help ${name}`);
  }
  // The commands that work on the database say how to name it, in every form.
  for (const name of ['init', 'serve', 'worker', 'migrate', 'workspace', 'key']) {
    const usage = (await cli(['help', name])).stdout.split('\n')[0];
    for (const form of usage.split(' | ')) assert.match(form, /\[--db URL\]/, `help ${name}: ${form}`);
  }
});

test('bad usage exits 2', async () => {
  for (const args of [['show'], ['show', 'a', '1', '2'], ['show', 'cli-agent', 'x'], ['diff', 'cli-agent'],
    ['diff', 'cli-agent', 'two'], ['improve'], ['improve', 'cli-agent', '--max-contradictions', '0'],
    ['promote', 'cli-agent'], ['reject', 'cli-agent', '0'], ['agents', 'extra'], ['versions'],
    ['agents', '--bogus'], ['import'], ['import', 'a', 'b'], ['import', '-', '--batch', '0'], ['demo', 'x'],
    ['agents', '--status', 'gone'], ['versions', 'cli-agent', '--status', 'live'], ['jobs', '--status', 'done'],
    ['jobs', '--type', 'bogus'], ['jobs', '--limit', '0'], ['jobs', '--limit', 'ten'], ['version', 'extra'], ['version', '--json'],
    ['help', 'agents', 'extra'], ['improve', 'cli-agent', '--model', ''], ['improve', 'cli-agent', '--model', 'm'.repeat(129)],
    ['promote', 'cli-agent', '1', '--note', 'x'.repeat(10001)], ['reject', 'cli-agent', '1', '--reason', 'x'.repeat(10001)]]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
  // Numbers out of range or malformed: one line naming the option and its range.
  for (const args of [['serve', '--workers', 'abc'], ['serve', '--workers', '65'], ['worker', '--workers', '0'],
    ['import', '-', '--parallel', '2x'], ['import', '-', '--batch', ''], ['jobs', '--limit', '0'], ['jobs', '--limit', '501'],
    ['jobs', '--limit', 'ten']]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(oneLine(r.stderr) && r.stderr.includes(`${args.find((a) => a.startsWith('--'))} takes a number from`), r.stderr);
  }
  // An option getopt refuses: one line naming it and the usage, not getopt's own line too.
  for (const [args, why] of [[['agents', '--bogus'], 'unknown option --bogus'], [['import', '-', '--batch'], '--batch needs a value'],
    [['agents', '--json=yes'], '--json takes no value'], [['job', 'x', '-q'], 'unknown option -q'],
    [['agents', '-j'], 'unknown option -j'], [['improve', 'cli-agent', '-m', '5'], 'unknown option -m']]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.ok(r.stderr.startsWith(`refold: ${args[0]}: ${why} (usage: refold ${args[0]} `), r.stderr);
  }
});

test('worker with REFOLD_WORKERS=0 (a serve-only node\'s setting): exit 1 and why', async () => {
  const r = await cli(['worker', '--db', join(srv.dir, 'unused.db')], { env: { REFOLD_WORKERS: '0' } });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'refold: refold worker needs at least one worker thread: REFOLD_WORKERS is 0 (set it, or give --workers N)\n');
});

test('serve: malformed settings keep their defaults, with a warning naming each', async () => {
  const s = await startServer({ env: { REFOLD_WORKERS: 'many', REFOLD_MAX_BODY: '-1', REFOLD_HTTP_THREADS: '0', REFOLD_LOG: 'loud',
    REFOLD_LLM_IDLE_TIMEOUT_MS: '2m' } });
  try {
    for (let i = 0; i < 100 && !/msg="listening"/.test(s.logs); i++) await new Promise((r) => setTimeout(r, 50));
    for (const name of ['REFOLD_WORKERS', 'REFOLD_MAX_BODY', 'REFOLD_HTTP_THREADS', 'REFOLD_LOG'])
      assert.match(s.logs, new RegExp(`msg="ignoring invalid setting" name=${name} `));
    // The LLM settings are read by each job, which fails on a bad one: said at start.
    assert.match(s.logs, /level=warn msg="the LLM provider is not configured: improvement jobs will fail" error="REFOLD_LLM_IDLE_TIMEOUT_MS must be a number of milliseconds/);
    assert.match(s.logs, /msg="listening" .* workers=2 /); // not 0: jobs still run
    // The body limit is still 8 MiB (REFOLD_MAX_BODY=-1 once meant no limit at all): a
    // request announcing 9 MiB and waiting for 100 Continue is refused from its headers.
    const status = await new Promise((resolve, reject) => {
      const sock = connect(s.port, '127.0.0.1', () => sock.write(`POST /v1/agents HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: Bearer ${s.key}\r\nContent-Type: application/json\r\nContent-Length: ${9 << 20}\r\n` +
        'Expect: 100-continue\r\n\r\n'));
      let got = '';
      sock.on('data', (d) => { got += d; if (got.includes('\r\n')) { sock.destroy(); resolve(Number(got.split(' ')[1])); } });
      sock.on('error', reject);
    });
    assert.equal(status, 413);
    assert.equal((await s.api('POST', '/v1/agents', { name: 'fine' })).status, 201);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('unknown agent: exit 1 and one line naming it', async () => {
  for (const args of [['show', 'nobody'], ['versions', 'nobody'], ['improve', 'nobody'], ['diff', 'nobody', '1'],
    ['promote', 'nobody', '1'], ['show', 'agent_01JF3Q0000000000000000000Z']]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, /^refold: no agent (named "nobody"|agent_01JF3Q0000000000000000000Z) in this workspace/);
  }
});

test('server not running: exit 1 and how to start it', async () => {
  const port = await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  // job --follow too: at once, not after two minutes of reconnecting to nothing.
  for (const args of [['agents'], ['show', 'cli-agent'], ['import', '-'], ['job', 'job_01JF3Q0000000000000000000Z', '--follow']]) {
    const r = await cli(args, { env: { REFOLD_URL: `http://127.0.0.1:${port}` }, input: '{"type":"agent","name":"x"}\n', timeout: 10000 });
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, new RegExp(`cannot reach refold at http://127.0.0.1:${port}: is \`refold serve\` running\\?`));
    if (args[0] !== 'import') assert.ok(oneLine(r.stderr), r.stderr);
  }
});

test('import of a missing file or a directory: exit 1, one line, nothing imported', async () => {
  for (const [path, why] of [[join(srv.dir, 'missing.jsonl'), 'No such file or directory'], [srv.dir, 'it is a directory']]) {
    const r = await cli(['import', path]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `refold: cannot open ${path}: ${why}\n`);
  }
});

test('no API key: exit 1 and where it is looked for', async () => {
  const home = mkdtempSync(join(tmpdir(), 'refold-nokey-'));
  const r = await cli(['agents'], { env: { REFOLD_API_KEY: '', XDG_CONFIG_HOME: home } });
  assert.equal(r.code, 1);
  assert.ok(oneLine(r.stderr));
  assert.match(r.stderr, new RegExp(`no API key: set REFOLD_API_KEY, or run \`refold init\` to save one in ${home}/refold/config.json`));
  // The config file is read when the variable is not set.
  mkdirSync(join(home, 'refold'), { recursive: true });
  writeFileSync(join(home, 'refold', 'config.json'), JSON.stringify({ url: srv.url, api_key: srv.key }));
  const ok = await cli(['agents', '--json'], { env: { REFOLD_API_KEY: '', REFOLD_URL: '', XDG_CONFIG_HOME: home } });
  assert.equal(ok.code, 0, ok.stderr);
  // A file that is there but broken is named, with what is wrong: `refold init` would not
  // rewrite it once the workspace exists.
  for (const [text, why] of [['{"url": "x", ', /is not valid JSON \(line 1: /], ['[]', /is not a JSON object/]]) {
    writeFileSync(join(home, 'refold', 'config.json'), text);
    const r2 = await cli(['agents'], { env: { REFOLD_API_KEY: '', XDG_CONFIG_HOME: home } });
    assert.equal(r2.code, 1);
    assert.ok(oneLine(r2.stderr), r2.stderr);
    assert.ok(r2.stderr.startsWith(`refold: no API key: ${home}/refold/config.json `), r2.stderr);
    assert.match(r2.stderr, why);
    assert.match(r2.stderr, /set REFOLD_API_KEY, or fix the file\n$/);
  }
  // REFOLD_API_KEY still works next to a broken file.
  const env2 = { XDG_CONFIG_HOME: home };
  assert.equal((await cli(['agents', '--json'], { env: env2 })).code, 0);
});

test('job --follow of a retried job: past the earlier run\'s end to the new run\'s', async () => {
  // The stream replays the failed run's `failed` event first; following must not stop there.
  await fake.script([], { status: 400, error: { type: 'invalid_request_error', message: 'no' } });
  let r = await cli(['improve', 'cli-agent', '--no-wait', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const id = JSON.parse(r.stdout).id;
  assert.equal((await waitJob(srv, id)).status, 'failed');
  await fake.reset();
  const again = IMPROVED.replace('Be brief.', 'Be brief and kind.');
  await fake.script([A, { ...R, text: JSON.stringify({ improved_prompt: again, changes: ['Kinder'], reasoning: 'x' }) }]);
  r = await cli(['retry', id]);
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['job', id, '--follow']);
  assert.equal(r.code, 0, r.stderr);
  const types = r.stdout.trim().split('\n').map((l) => l.split(' ')[1]);
  assert.equal(types.filter((t) => t === 'failed').length, 1, r.stdout);
  assert.equal(types.at(-1), 'completed', r.stdout);
  // A finished job's stream still ends at its last event, with nothing more to wait for.
  r = await cli(['job', id, '--follow', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.trim().split('\n').at(-1)).type, 'completed');
});

test('init: saves REFOLD_URL or the listen address, never the replaced file\'s URL; mode 0600', async () => {
  const home = mkdtempSync(join(tmpdir(), 'refold-init-'));
  const file = join(home, 'refold', 'config.json');
  const init = (db, extra) => run(['init', '--db', join(home, db)],
    { env: { XDG_CONFIG_HOME: home, REFOLD_URL: '', REFOLD_API_KEY: '', REFOLD_LISTEN: '', ...extra } });
  let r = await init('a.db', {});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).url, 'http://127.0.0.1:7878');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  r = await init('b.db', { REFOLD_LISTEN: '127.0.0.1:7979' });
  assert.equal(r.code, 0, r.stderr);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.url, 'http://127.0.0.1:7979');
  assert.ok(r.stdout.includes(saved.api_key));
  r = await init('c.db', { REFOLD_URL: 'http://refold.example:80' });
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).url, 'http://refold.example:80');
  // Run again on the same database: nothing is created, the file is left alone.
  const before = readFileSync(file, 'utf8');
  r = await init('c.db', {});
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /workspace "default" already exists/);
  assert.equal(readFileSync(file, 'utf8'), before);
  // A config.json.tmp left behind with another mode (open(2) keeps it) does not make
  // the key readable by others.
  writeFileSync(`${file}.tmp`, 'stale', { mode: 0o644 });
  chmodSync(`${file}.tmp`, 0o644);
  r = await init('d.db', {});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(readFileSync(file, 'utf8').includes(r.stdout.match(/rf_[a-z0-9]+/)[0]));
});

test('init: a new SQLite database and its -wal and -shm files are readable by their owner only', async () => {
  // Under the usual umask 022 SQLite alone creates them 0644: every local user could read
  // every workspace's traces and prompts.
  const old = process.umask(0o022);
  const s = new Server({ db: join(mkdtempSync(join(tmpdir(), 'refold-dbmode-')), 'fresh.db') });
  try {
    await s.init();
    assert.equal(statSync(s.db).mode & 0o777, 0o600);
    await s.start();
    assert.equal((await s.api('POST', '/v1/agents', { name: 'mode' })).status, 201);
    for (const f of [s.db, `${s.db}-wal`, `${s.db}-shm`])
      assert.equal(statSync(f).mode & 0o777, 0o600, f);
    await s.stop();
    // An existing database keeps the mode its owner gave it.
    const shared = join(s.dir, 'shared.db');
    writeFileSync(shared, '', { mode: 0o640 });
    const r = await run(['migrate', '--db', shared]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(shared).mode & 0o777, 0o640);
  } finally {
    process.umask(old);
    s.cleanup();
  }
});

test('workspace and key names: empty, not UTF-8 or with control characters (C0, DEL, C1) is bad usage', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'refold-names-'));
  const db = await freshDatabase(dir);
  try {
    // C1 controls too (U+0085 NEL, U+009B CSI), as the API's names (utf8_control).
    const bad = ['', 'a\tb', 'two\nlines', 'a\u007f', 'a\u0085', 'a\u009b2J', 'x'.repeat(201), `a${NOT_UTF8}`];
    for (const name of bad) {
      for (const args of [['workspace', 'create', name], ['init', '--no-config', '--workspace', name],
        ['key', 'create', '--name', name]]) {
        const r = await (name.includes(NOT_UTF8) ? runNotUtf8 : run)([...args, '--db', db]);
        assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
        assert.match(r.stderr, /^refold: a (workspace|key) name is 1 to 200 characters of UTF-8 text without control characters\n$/);
      }
    }
    const list = await run(['workspace', 'list', '--db', db]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, '', 'nothing was created');
    const r = await run(['workspace', 'create', 'équipe', '--db', db]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ws_\w+\téquipe\n$/);
  } finally {
    if (db.startsWith('postgres')) dropDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cancel and retry take --json (the Job, as the API answers) and --', async () => {
  await fake.script([{ ...A, latency_ms: 5000 }]);
  let r = await cli(['improve', 'cli-agent', '--no-wait', '--json']);
  const id = JSON.parse(r.stdout).id;
  r = await cli(['cancel', '--json', '--', id]);
  assert.equal(r.code, 0, r.stderr);
  const cancelled = JSON.parse(r.stdout);
  assert.equal(cancelled.id, id);
  assert.ok(cancelled.status === 'cancelled' || cancelled.cancel_requested === true, r.stdout);
  assert.equal((await waitJob(srv, id)).status, 'cancelled');
  await fake.reset();
  await fake.script([], { status: 400, error: { type: 'invalid_request_error', message: 'no' } });
  r = await cli(['retry', id, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const retried = JSON.parse(r.stdout);
  assert.equal(retried.id, id);
  assert.equal(retried.status, 'queued');
  assert.equal((await waitJob(srv, id)).status, 'failed');
  await fake.reset();
  for (const args of [['cancel'], ['cancel', id, 'extra'], ['retry', id, '--bogus']]) {
    r = await cli(args);
    assert.equal(r.code, 2, args.join(' '));
  }
});

test('serve on a busy port: exit 1, one line, before any worker claims a job', async () => {
  const s = await startServer({ args: ['--workers', '0'], env: { REFOLD_TEST_JOBS: '1' } });
  try {
    const job = (await s.api('POST', '/v1/test/jobs', { params: { sleep_ms: 3000, log: true } })).json;
    const r = await run(['serve', '--db', s.db, '--listen', `127.0.0.1:${s.port}`, '--workers', '2'],
      { env: { ...s.env, REFOLD_TEST_JOBS: '1' }, timeout: 20000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^refold: cannot listen on 127.0.0.1:${s.port}: Address already in use\\n$`));
    const events = await s.api('GET', `/v1/jobs/${job.id}/events`, undefined, { headers: { accept: 'application/json' } });
    assert.deepEqual(events.json.data, [], 'nobody ran the job');
    assert.equal((await s.api('GET', `/v1/jobs/${job.id}`)).json.status, 'queued');
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('serve with a malformed --listen: bad usage (2); the same in REFOLD_LISTEN: failure (1)', async () => {
  for (const addr of ['nonsense', '127.0.0.1:99999', '127.0.0.1:x']) {
    const r = await run(['serve', '--db', srv.db, '--listen', addr], { env: srv.env, timeout: 20000 });
    assert.equal(r.code, 2, `--listen ${addr}: ${r.stderr}`);
    assert.match(r.stderr, /^refold: [^\n]*listen address[^\n]*\n$/);
  }
  const r = await run(['serve', '--db', srv.db], { env: { ...srv.env, REFOLD_LISTEN: 'nonsense' }, timeout: 20000 });
  assert.equal(r.code, 1, r.stderr);
});

test('text options that are not UTF-8 are bad usage, never silently dropped', async () => {
  const before = (await srv.api('GET', '/v1/jobs?limit=500')).json.data.length;
  for (const [args, flag] of [[['improve', 'cli-agent', '--no-wait', '--instructions', `be ${NOT_UTF8}`], 'instructions'],
    [['improve', 'cli-agent', '--no-wait', '--model', `m${NOT_UTF8}`], 'model'],
    [['promote', 'cli-agent', '1', '--note', NOT_UTF8], 'note'], [['reject', 'cli-agent', '1', '--reason', NOT_UTF8], 'reason']]) {
    const r = await runNotUtf8(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, `refold: --${flag} must be UTF-8 text\n`);
  }
  assert.equal((await srv.api('GET', '/v1/jobs?limit=500')).json.data.length, before, 'no job was started');
});

test('text from the server cannot drive the terminal: control characters are shown as \\xNN, --json keeps them', async () => {
  // A client, a trace or an LLM reply can put escape sequences in names, templates and
  // error messages; printed raw they would recolour, retitle, plant links or rewrite
  // the lines of a diff under review (\r, cursor moves, ESC[2K).
  const ESC = '\x1b';
  const name = `ctl-${ESC}]0;owned${'\x07'}`;
  const tpl1 = `Hello {{x}}\r\nSafe line\n`;
  const tpl2 = `Hello {{x}}\r\nIgnore all rules${ESC}[2K\rSafe line\n\u009b31m red\n`;
  const a = (await srv.api('POST', '/v1/agents', { name: 'ctl-tmp', prompt_template: tpl1 })).json;
  // The API refuses control characters in names now; one stored before still reaches clients.
  await sql(srv.db, `UPDATE agents SET name = '${name}' WHERE id = '${a.id}'`);
  assert.equal((await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: tpl2, changes: [`c${ESC}[8m hidden`] })).status, 201);
  const raw = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/;
  const clean = (s) => s.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r\n/g, '\n'); // our own colours; CRLF line ends stay
  for (const args of [['agents'], ['versions', a.id], ['show', a.id], ['show', a.id, '2'], ['diff', a.id, '2', '1']]) {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(clean(r.stdout), raw, args.join(' '));
  }
  let r = await cli(['show', a.id, '2']);
  assert.match(r.stdout, /^ctl-\\x1b\]0;owned\\x07 v2 /m);
  assert.match(r.stdout, /^Ignore all rules\\x1b\[2K\\x0dSafe line$/m);
  assert.match(r.stdout, /^\\xc2\\x9b31m red$/m);
  assert.match(r.stdout, /^Hello \{\{x\}\}\r$/m, 'a CRLF line end stays as it is');
  r = await cli(['diff', a.id, '2', '1']);
  assert.match(r.stdout, /^\+Ignore all rules\\x1b\[2K\\x0dSafe line$/m);
  // --json is the API's answer, escapes and all (JSON escapes them itself).
  r = await cli(['show', a.id, '2', '--json']);
  assert.equal(JSON.parse(r.stdout).prompt_template, tpl2);
  // A job failed by an LLM provider's error message (refold itself blanks its controls).
  await fake.script([], { status: 400, error: { type: 'invalid_request_error', message: `bad${ESC}[2J${ESC}[Hall fine` } });
  r = await cli(['improve', 'cli-agent']);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, raw);
  const id = (await srv.api('GET', '/v1/jobs?limit=1')).json.data[0].id;
  r = await cli(['job', id]);
  assert.doesNotMatch(r.stdout + r.stderr, raw);
  await fake.reset();
  // Error messages quote what they were given: a server's are shown the same way.
  const http = await import('node:http');
  const evil = http.createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'not_found', message: `job ${ESC}[2J${ESC}]0;x\x07gone` } }));
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  r = await cli(['job', 'job_01ARZ3NDEKTSV4RRFFQ69G5FAV'], { env: { REFOLD_URL: `http://127.0.0.1:${evil.address().port}` } });
  evil.close();
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'refold: job \\x1b[2J\\x1b]0;x\\x07gone\n');
});

// Run the CLI until its stdout matches `ready`, then send it `signal`; resolves like run().
const interrupted = (args, ready, { env: extra = {}, signal = 'SIGINT' } = {}) => new Promise((resolve, reject) => {
  const child = spawn(BIN, args, { env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '', sent = false;
  const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`never ready: ${stdout} ${stderr}`)); }, 30000);
  child.stdout.on('data', (d) => {
    stdout += d;
    if (!sent && ready.test(stdout)) { sent = true; child.kill(signal); }
  });
  child.stderr.on('data', (d) => (stderr += d));
  child.on('close', (code, sig) => { clearTimeout(timer); resolve({ code, signal: sig, stdout, stderr }); });
});

test('Ctrl-C while following (improve, job --follow) stops following, not the job: one line says how to go on', async () => {
  const rewrite = IMPROVED.replace('Be brief.', 'Be brief; never guess.');
  await fake.script([{ ...A, latency_ms: 2500 },
    { ...R, text: JSON.stringify({ improved_prompt: rewrite, changes: ['No guessing'], reasoning: 'x' }) }]);
  const tty = { REFOLD_TTY: '1', TERM: 'xterm', LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' };
  let r = await interrupted(['improve', 'cli-agent'], /analyzing failures/, { env: tty });
  const id = r.stdout.match(/\(job (job_\w+)\)/)[1];
  const hint = `refold: stopped following ${id}, which keeps running: refold job ${id} --follow follows it again, ` +
    `refold cancel ${id} stops it\n`;
  assert.equal(r.code, 130, r.stderr);
  assert.equal(r.stderr, hint);
  assert.ok(r.stdout.endsWith('\r\x1b[K'), 'the status line is taken off the screen');
  r = await interrupted(['job', id, '--follow'], /^3 progress/m, { signal: 'SIGTERM' });
  assert.equal(r.code, 143, r.stderr);
  assert.equal(r.stderr, hint);
  const job = await waitJob(srv, id);
  assert.equal(job.status, 'completed', `the job ran on: ${JSON.stringify(job.error)}`);
  await fake.reset();
});

test('diff --color: a changed line that starts with "--" or "++" is coloured as removed or added, not as a header', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'dashes', prompt_template: 'a\n-- note\n++ more\nb\n' })).json;
  assert.equal((await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: 'a\n++ note\n-- more\nb\n' })).status, 201);
  const r = await cli(['diff', 'dashes', '2', '--color=always']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n'), ['\x1b[1m--- v1\x1b[0m', '\x1b[1m+++ v2\x1b[0m', '\x1b[36m@@ -1,4 +1,4 @@\x1b[0m', ' a',
    '\x1b[31m--- note\x1b[0m', '\x1b[31m-++ more\x1b[0m', '\x1b[32m+++ note\x1b[0m', '\x1b[32m+-- more\x1b[0m', ' b', '']);
});

test('an option the (sub)command does not take is bad usage in one line, never ignored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'refold-opts-'));
  const db = await freshDatabase(dir);
  try {
    for (const [args, why] of [[['diff', 'cli-agent', '2', '--color=sometimes'], '--color takes always, never or auto, not "sometimes"'],
      [['reject', 'cli-agent', '1', '--note', 'x'], '--note is for promote'], [['promote', 'cli-agent', '1', '--reason', 'x'], '--reason is for reject'],
      [['workspace', 'list', '--workspace', 'w'], 'workspace list takes no --workspace'],
      [['workspace', 'create', 'w', '--name', 'n'], 'workspace create takes no --name'],
      [['key', 'list', '--name', 'n'], 'key list takes no --name'], [['key', 'revoke', 'key_x', '--name', 'n'], 'key revoke takes no --name']]) {
      const r = await cli([...args, ...(['workspace', 'key'].includes(args[0]) ? ['--db', db] : [])]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr), r.stderr);
      assert.ok(r.stderr.startsWith(`refold: ${args[0]}: ${why} (usage: refold ${args[0]} `), r.stderr);
    }
    assert.equal((await run(['workspace', 'list', '--db', db])).stdout, '', 'nothing was created');
  } finally {
    if (db.startsWith('postgres')) dropDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('REFOLD_URL with a path (…/v1) is named as the mistake, never read as a missing agent, version or job; a trailing slash is fine', async () => {
  const [job] = (await srv.api('GET', '/v1/jobs?limit=1')).json.data;
  for (const args of [['agents'], ['show', agent.id], ['show', 'cli-agent', '1'], ['diff', 'cli-agent', '2'], ['promote', 'cli-agent', '1'],
    ['job', job.id], ['job', job.id, '--follow'], ['cancel', job.id]]) {
    const r = await cli(args, { env: { REFOLD_URL: `${srv.url}/v1` } });
    assert.equal(r.code, 1, args.join(' '));
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, new RegExp(`^refold: no such endpoint: /v1/v1/\\S+: REFOLD_URL \\(${srv.url}/v1\\) must be the refold server's address without a path`));
  }
  const r = await cli(['show', agent.id, '--json'], { env: { REFOLD_URL: `${srv.url}/` } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).id, agent.id);
});

test('improve on a narrow terminal: the redrawn status line stays narrower than the terminal', async () => {
  // A line that wraps leaves its first row on screen at every redraw (\r\e[K erases only the last).
  for (const columns of [24, 40]) {
    const rewrite = IMPROVED.replace('Be brief.', `Be brief within ${columns} columns.`);
    await fake.script([A, { ...R, text: JSON.stringify({ improved_prompt: rewrite, changes: ['Narrow'], reasoning: 'x' }) }]);
    const r = await cli(['improve', 'cli-agent'], { env: { REFOLD_TTY: '1', TERM: 'xterm', LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '',
      COLUMNS: String(columns) } });
    assert.equal(r.code, 0, r.stderr);
    const live = r.stdout.split('\r\x1b[K').filter((s) => s && !s.includes('\n')).map((s) => s.replace(/\x1b\[[0-9;]*m/g, ''));
    assert.ok(live.length >= 5, r.stdout);
    for (const line of live) assert.ok([...line].length < columns, `${columns} columns: ${JSON.stringify(line)}`);
  }
  await fake.reset();
});

test('on a real terminal whose TERM is dumb: no escape sequences (no colour, no redrawn lines)', async () => {
  // script(1) runs the command on a pseudo-terminal, as a user's shell would.
  const onTerminal = (args, term) => new Promise((resolve) => execFile('script', ['-qec', [BIN, ...args].join(' '), '/dev/null'],
    { env: { ...process.env, ...env, TERM: term, LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' } },
    (e, stdout) => resolve({ code: e ? e.code : 0, stdout })));
  const xterm = await onTerminal(['diff', 'cli-agent', '2'], 'xterm');
  assert.equal(xterm.code, 0);
  assert.ok(xterm.stdout.includes('\x1b[32m+'), 'coloured on an ordinary terminal');
  const rewrite = IMPROVED.replace('Be brief.', 'Be brief, even on dumb terminals.');
  await fake.script([A, { ...R, text: JSON.stringify({ improved_prompt: rewrite, changes: ['Dumb'], reasoning: 'x' }) }]);
  const dumb = await onTerminal(['improve', 'cli-agent'], 'dumb');
  assert.equal(dumb.code, 0, dumb.stdout);
  assert.match(dumb.stdout, /^\[100%\] completed\r?$/m, 'one plain line per event');
  assert.ok(!dumb.stdout.includes('\x1b'), JSON.stringify(dumb.stdout));
  await fake.reset();
  // diff still heads the diff with its one-line summary for the person reading it.
  const diff = await onTerminal(['diff', 'cli-agent', '2'], 'dumb');
  assert.match(diff.stdout, /^cli-agent v2 \(\w+\) against v1 \(\w+\): 1 line added, 0 removed\r?\n--- v1/);
  assert.ok(!diff.stdout.includes('\x1b'), JSON.stringify(diff.stdout));
});

test('the command an error suggests can be pasted into a shell: the agent\'s name is quoted when it needs it', async () => {
  assert.equal((await srv.api('POST', '/v1/agents', { name: "Bob's agent" })).status, 201);
  const q = "'Bob'\\''s agent'";
  for (const [args, want] of [[['show', "Bob's agent", '3'], `Bob's agent has no version 3 (see refold versions ${q})`],
    [['diff', "Bob's agent", '1'], `Bob's agent has no version 1 (see refold versions ${q})`],
    [['reject', "Bob's agent", '1'], `Bob's agent has no version 1 (see refold versions ${q})`],
    [['improve', "Bob's agent"], `Bob's agent has no active version to improve: promote one first (refold versions ${q})`]]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, `refold: ${want}\n`);
  }
});

test('init: the commands it suggests work as pasted: on the --db given, with the workspace name quoted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'refold-init-ws-'));
  const db = await freshDatabase(dir);
  try {
    let r = await run(['init', '--db', db, '--no-config', '--workspace', 'my team']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Start the server with: refold serve --db ${db}$`, 'm'));
    r = await run(['init', '--db', db, '--no-config', '--workspace', 'my team']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Create another API key with: refold key create --workspace 'my team' --db ${db}$`, 'm'));
    r = await run(['init', '--no-config'], { env: { REFOLD_DB: db } });
    assert.match(r.stdout, /^Start the server with: refold serve$/m, 'REFOLD_DB is still set for it');
  } finally {
    if (db.startsWith('postgres')) dropDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a config file that other users can read, holding the key in use: a one-line warning, and the command runs; a refused key is named by its source', async () => {
  const home = mkdtempSync(join(tmpdir(), 'refold-mode-'));
  const file = join(home, 'refold', 'config.json');
  mkdirSync(join(home, 'refold'), { recursive: true });
  writeFileSync(file, JSON.stringify({ url: srv.url, api_key: srv.key }), { mode: 0o644 });
  chmodSync(file, 0o644);
  const noEnv = { REFOLD_API_KEY: '', REFOLD_URL: '', XDG_CONFIG_HOME: home };
  let r = await cli(['agents', '--json'], { env: noEnv });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, `refold: warning: ${file} holds your API key but other users can access it (mode 0644): run chmod 600 ${file}\n`);
  assert.ok(Array.isArray(JSON.parse(r.stdout)));
  // A refused key is named by where it came from.
  writeFileSync(file, JSON.stringify({ url: srv.url, api_key: 'rf_revoked' }));
  r = await cli(['agents'], { env: noEnv });
  assert.equal(r.code, 1);
  assert.ok(r.stderr.endsWith(`refold: invalid or revoked API key (the key saved in ${file})\n`), r.stderr);
  r = await cli(['show', 'cli-agent'], { env: { ...noEnv, REFOLD_API_KEY: 'rf_wrong' } });
  assert.equal(r.stderr, 'refold: invalid or revoked API key (the key in REFOLD_API_KEY)\n');
  writeFileSync(file, JSON.stringify({ url: srv.url, api_key: srv.key }));
  // Not when the key comes from REFOLD_API_KEY, nor once the file is private.
  r = await cli(['agents', '--json'], { env: { ...noEnv, REFOLD_API_KEY: srv.key } });
  assert.equal(r.stderr, '');
  chmodSync(file, 0o600);
  r = await cli(['agents', '--json'], { env: noEnv });
  assert.equal(r.stderr, '');
  rmSync(home, { recursive: true, force: true });
});

test('key revoke PREFIX shared by two keys: refused while both are active, else the active one is revoked', async () => {
  // Prefixes are "rf_" and 5 random characters: two keys of a workspace may share one.
  const dir = mkdtempSync(join(tmpdir(), 'refold-prefix-'));
  const db = await freshDatabase(dir);
  try {
    assert.equal((await run(['init', '--db', db, '--no-config'])).code, 0);
    const key = (await run(['key', 'create', '--db', db])).stdout.trim();
    const prefix = key.slice(0, 8);
    const mine = (await sql(db, `SELECT id FROM api_keys WHERE prefix = '${prefix}'`)).trim();
    const twin = 'key_7ZZZZZZZZZZZZZZZZZZZZZZZTW'; // listed after the first key
    await sql(db, `INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, created_at) SELECT '${twin}', workspace_id, 'twin', ` +
      `prefix, 'not-a-hash', 1 FROM api_keys WHERE id = '${mine}'`);
    let r = await run(['key', 'revoke', prefix, '--db', db]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `refold: 2 active API keys start with ${prefix}: give the id of the one to revoke (refold key list)\n`);
    assert.equal((await run(['key', 'revoke', mine, '--db', db])).code, 0);
    r = await run(['key', 'revoke', prefix, '--db', db]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `revoked ${twin} (${prefix})\n`, 'the active one, not the one already revoked');
    assert.equal(await sql(db, `SELECT count(*) FROM api_keys WHERE prefix = '${prefix}' AND revoked_at IS NULL`), '0');
  } finally {
    if (db.startsWith('postgres')) dropDatabase(db);
    rmSync(dir, { recursive: true, force: true });
  }
});
