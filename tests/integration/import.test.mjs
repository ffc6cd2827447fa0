// refold import (SPEC §9): every line type, per-type summary, line-numbered
// rejections with the rest imported, idempotent re-import, stdin, ordering under
// small pipelined batches, and a 100,000-line file (its records/s is printed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { startServer, run, sql, SOURCE_DIR } from './lib.mjs';

const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
let srv, env;
const cli = (args, opts = {}) => run(args, { timeout: 120000, ...opts, env: { ...env, ...(opts.env || {}) } });
const jsonl = (lines) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
const ZERO = { created: 0, updated: 0, unchanged: 0, rejected: 0 };
const counts = (c) => ({ ...ZERO, ...c });

before(async () => {
  srv = await startServer();
  env = { XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key, REFOLD_TTY: '' };
});
after(async () => { await srv.stop(); srv.cleanup(); });

const trace = (ext, extra = {}) => ({ type: 'trace', agent: 'imp', source: 's', external_id: ext, input: `in ${ext}`, output: `out ${ext}`, ...extra });

// Line numbers are the array index + 1.
const MIXED = [
  { type: 'agent', name: 'imp', description: 'import test', prompt_template: 'Hello {{name}}' }, // 1 created
  { type: 'eval', agent: 'imp', name: 'judge', description: 'is it good?' }, //                     2 created
  trace('t1', { timestamp: '2026-11-01T10:00:00.000Z', steps: [{ tool: 'x' }], metadata: { k: 1 } }), // 3
  trace('t1', { timestamp: '2026-11-01T10:00:00.000Z', steps: [{ tool: 'x' }], metadata: { k: 1 } }), // 4 duplicate: unchanged
  'this is not JSON', //                                                                           5 rejected (invalid)
  { type: 'trace', agent: 'ghost', source: 's', external_id: 'g1', input: 'i', output: 'o' }, //    6 rejected: unknown agent
  { type: 'trace', agent: 'imp', source: 's', external_id: 't2', output: 'no input' }, //            7 rejected by the server
  { type: 'feedback', source: 's', external_id: 't1', rating: 'negative', note: 'wrong refund' }, //  8 created
  { type: 'feedback', source: 's', external_id: 'nope', rating: 'positive' }, //                     9 rejected by the server
  { type: 'eval_execution', agent: 'imp', eval: 'judge', source: 's', external_id: 't1', predicted_result: true, predicted_reason: 'fine' }, // 10
  { type: 'eval_execution', agent: 'imp', eval: 'ghost', source: 's', external_id: 't1', predicted_result: true }, // 11 rejected: unknown eval
  { type: 'version', agent: 'imp', prompt_template: 'Hello {{name}}, kindly', status: 'active' }, // 12 created, active
  trace('t3'), //                                                                                   13 created on v2
  trace('t4', { version: 1 }), //                                                                   14 created on v1
  { type: 'bogus' }, //                                                                             15 rejected (invalid)
  '   ', //                                                                                         16 blank: skipped
  { type: 'agent', name: 'imp', prompt_template: 'Hello {{name}}' }, //                             17 unchanged (v1 has it)
  { type: 'version', agent: 'imp', prompt_template: 'Hello {{name}}, draft' }, //                   18 created (candidate)
  '{"type":"trace","type":"trace"}', //                                                             19 rejected (duplicate key)
  { type: 'trace', agent: 'imp', input: 'x', output: 'y' }, //                                      20 rejected: no external_id
  trace('t5', { version: 9 }), //                                                                   21 rejected: no version 9
];

test('a file with valid, duplicate and invalid lines: summary and line-numbered rejections', async () => {
  const file = join(srv.dir, 'mixed.jsonl');
  writeFileSync(file, jsonl(MIXED));
  const r = await cli(['import', file, '--json']);
  assert.equal(r.code, 1, 'some lines were rejected');
  const s = JSON.parse(r.stdout);
  assert.equal(s.lines, MIXED.length);
  assert.equal(s.records, MIXED.length - 1);
  assert.deepEqual(s.types.agent, counts({ created: 1, unchanged: 1 }));
  assert.deepEqual(s.types.eval, counts({ created: 1 }));
  assert.deepEqual(s.types.version, counts({ created: 2 }));
  assert.deepEqual(s.types.trace, counts({ created: 3, unchanged: 1, rejected: 4 }));
  assert.deepEqual(s.types.feedback, counts({ created: 1, rejected: 1 }));
  assert.deepEqual(s.types.eval_execution, counts({ created: 1, rejected: 1 }));
  assert.deepEqual(s.types.invalid, counts({ rejected: 3 }));
  assert.deepEqual(s.total, { created: 9, updated: 0, unchanged: 2, rejected: 9 });

  const errs = r.stderr.trim().split('\n');
  const rejected = errs.filter((l) => l.startsWith(`${file}:`)).map((l) => Number(l.slice(file.length + 1).split(':')[0]));
  assert.deepEqual(rejected.sort((a, b) => a - b), [5, 6, 7, 9, 11, 15, 19, 20, 21], r.stderr);
  const line = (n) => errs.find((l) => l.startsWith(`${file}:${n}:`));
  assert.match(line(5), /: invalid: invalid JSON at column \d+/);
  assert.match(line(6), /: trace: unknown agent "ghost"/);
  assert.match(line(7), /: trace: input is required/);
  assert.match(line(9), /: feedback: no trace with source s and external_id nope$/);
  assert.match(line(11), /: eval_execution: agent "imp" has no eval "ghost"/);
  assert.match(line(15), /: invalid: unknown type "bogus"/);
  assert.match(line(19), /: invalid: invalid JSON/);
  assert.match(line(20), /: trace: "external_id" is required/);
  assert.match(line(21), /: trace: agent "imp" has no version 9/);
  assert.match(errs.at(-1), /^refold: 9 records rejected \(reported above\); the rest was imported$/);

  // What landed: versions, the active one, traces on the right versions, feedback, executions.
  const agent = (await srv.api('GET', '/v1/agents?name=imp')).json.data[0];
  assert.equal(agent.description, 'import test');
  assert.equal(agent.active_version.version, 2);
  const versions = (await srv.api('GET', `/v1/agents/${agent.id}/versions`)).json.data;
  assert.deepEqual(versions.map((v) => [v.version, v.status, v.source]),
    [[3, 'candidate', 'manual'], [2, 'active', 'manual'], [1, 'archived', 'manual']]);
  const traces = (await srv.api('GET', `/v1/traces?agent_id=${agent.id}`)).json.data;
  const byExt = Object.fromEntries(traces.map((t) => [t.external_id, t]));
  assert.deepEqual(Object.keys(byExt).sort(), ['t1', 't3', 't4']);
  assert.equal(byExt.t1.version, 1);
  assert.equal(byExt.t3.version, 2, 'a trace after an active version line attaches to it');
  assert.equal(byExt.t4.version, 1, 'an explicit version number wins');
  assert.deepEqual(byExt.t1.steps, [{ tool: 'x' }]);
  assert.deepEqual(byExt.t1.feedback && [byExt.t1.feedback.rating, byExt.t1.feedback.note], ['negative', 'wrong refund']);
  assert.equal(agent.stats.executions, 1);
  assert.equal(agent.stats.contradictions, 1);

  // A second import of the same file creates and changes nothing.
  const again = await cli(['import', file, '--json']);
  assert.equal(again.code, 1);
  const s2 = JSON.parse(again.stdout);
  assert.deepEqual(s2.total, { created: 0, updated: 0, unchanged: 11, rejected: 9 });
  for (const t of ['agent', 'eval', 'version', 'trace', 'feedback', 'eval_execution'])
    assert.equal(s2.types[t].created + s2.types[t].updated, 0, t);
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}/versions`)).json.data.length, 3);
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}`)).json.active_version.version, 2,
    'a re-import does not undo the active version');

  // The human-readable summary.
  const text = await cli(['import', file]);
  assert.match(text.stdout, /^Imported .*mixed\.jsonl: 20 records in [\d.]+ s \([\d,]+ records\/s\)$/m);
  assert.match(text.stdout, /^trace\s+0\s+0\s+4\s+4$/m);
  assert.match(text.stdout, /^total\s+0\s+0\s+11\s+9$/m);
});

test('a field of the wrong type is named as such, not as missing', async () => {
  const r = await cli(['import', '-'], { input: jsonl([
    { type: 'trace', agent: 'imp', external_id: 7, input: 'i', output: 'o' },
    { type: 'trace', agent: 7, external_id: 'w1', input: 'i', output: 'o' },
    { type: 'eval_execution', agent: 'imp', eval: 7, external_id: 't1', predicted_result: true },
    { type: 'version', agent: 'imp', prompt_template: 'Hello {{name}}', status: 1 },
    { type: 'trace', agent: 'imp', output: 'o' },
    { type: 'trace', agent: 'imp', external_id: '', input: 'i', output: 'o' },
  ]) });
  assert.equal(r.code, 1);
  assert.deepEqual(r.stderr.trimEnd().split('\n').slice(0, -1), [
    'stdin:1: trace: "external_id" must be a string: with source it identifies the trace, so that importing again does not duplicate it',
    'stdin:2: trace: "agent" (the agent\'s name) must be a string',
    'stdin:3: eval_execution: "eval" (the eval\'s name) must be a string',
    'stdin:4: version: status must be a string',
    'stdin:5: trace: "external_id" is required: with source it identifies the trace, so that importing again does not duplicate it',
    'stdin:6: trace: "external_id" must not be empty: with source it identifies the trace, so that importing again does not duplicate it',
  ]);
  assert.equal(r.stderr.trimEnd().split('\n').at(-1), 'refold: 6 records rejected (reported above): nothing was imported');
  // One record: no plural.
  const one = await cli(['import', '-'], { input: jsonl([{ type: 'nothing' }]) });
  assert.match(one.stdout, /^Imported stdin: 1 record in /m);
  assert.match(one.stderr, /\nrefold: 1 record rejected \(reported above\): nothing was imported\n$/);
  const refused = await cli(['import', '-'], { input: jsonl([trace('one')]), env: { REFOLD_API_KEY: 'rf_wrong' } });
  assert.match(refused.stdout, /^Stopped importing stdin after reading 1 record in /m);
  assert.equal(refused.stderr, 'refold: import stopped after reading 1 record: invalid or revoked API key (the key in REFOLD_API_KEY)\n');
});

test('a trace of an agent without an active version is reported with the agent\'s name and what to add', async () => {
  const r = await cli(['import', '-', '--json'], { input: jsonl([
    { type: 'agent', name: 'unversioned' },
    { type: 'trace', agent: 'unversioned', external_id: 'uv1', input: 'i', output: 'o' },
  ]) });
  assert.equal(r.code, 1);
  assert.deepEqual(r.stderr.trimEnd().split('\n'), [
    'stdin:2: trace: agent "unversioned" has no active version to attach the trace to: give it a prompt_template ' +
      '(agent line) or an active version (a version line with "status": "active"), or give the trace a "version"',
    'refold: 1 record rejected (reported above); the rest was imported',
  ]);
  assert.deepEqual(JSON.parse(r.stdout).types.trace, counts({ rejected: 1 }));
});

test('a line the server cannot parse inside a batch (nested near the depth limit) is rejected alone', async () => {
  // jansson parses at most 2048 levels: the line alone has 2048, inside {"traces": [...]} 2050.
  const deep = (d) => '['.repeat(d) + ']'.repeat(d);
  const lines = [{ type: 'agent', name: 'deep', prompt_template: 'Deep {{x}}' }];
  for (let i = 0; i < 6; i++) lines.push({ type: 'trace', agent: 'deep', external_id: `deep${i}`, input: 'i', output: 'o' });
  lines.push(`{"type":"trace","agent":"deep","external_id":"deepX","input":"i","output":"o","metadata":{"m":${deep(2046)}}}`); // 8
  for (let i = 0; i < 6; i++) lines.push({ type: 'feedback', external_id: `deep${i}`, rating: 'positive' });
  lines.push(`{"type":"feedback","external_id":"deep0","rating":"negative","x":${deep(2047)}}`); // 15
  const r = await cli(['import', '-', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 1);
  const err = r.stderr.trimEnd().split('\n');
  assert.equal(err.length, 3, r.stderr);
  assert.match(err[0], /^stdin:8: trace: the batch request was refused \(HTTP 400\): .*maximum parsing depth/);
  assert.match(err[1], /^stdin:15: feedback: the batch request was refused \(HTTP 400\): .*maximum parsing depth/);
  const s = JSON.parse(r.stdout).types;
  assert.deepEqual(s.trace, counts({ created: 6, rejected: 1 }));
  assert.deepEqual(s.feedback, counts({ created: 6, rejected: 1 }));
});

test('traces read before a line that activates a new version get the version active until then', async () => {
  await srv.api('POST', '/v1/agents', { name: 'before', prompt_template: 'Before v1 {{x}}' });
  const lines = [
    { type: 'trace', agent: 'before', external_id: 'before-1', input: 'i', output: 'o' }, // v1 is active
    { type: 'trace', agent: 'before', external_id: 'before-2', input: 'i', output: 'o' },
    { type: 'version', agent: 'before', prompt_template: 'Before v2 {{x}}', status: 'active' },
    { type: 'trace', agent: 'before', external_id: 'before-3', input: 'i', output: 'o' }, // v2
    { type: 'agent', name: 'before', prompt_template: 'Before v3 {{x}}' },
    { type: 'trace', agent: 'before', external_id: 'before-4', input: 'i', output: 'o' }, // v3
  ];
  for (const expect of [{ created: 4 }, { unchanged: 4 }]) {
    const r = await cli(['import', '-', '--json'], { input: jsonl(lines) });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).types.trace, counts(expect));
    const agent = (await srv.api('GET', '/v1/agents?name=before')).json.data[0];
    const traces = (await srv.api('GET', `/v1/traces?agent_id=${agent.id}`)).json.data;
    assert.deepEqual(Object.fromEntries(traces.map((t) => [t.external_id, t.version])),
      { 'before-1': 1, 'before-2': 1, 'before-3': 2, 'before-4': 3 });
  }
});

test('an agent whose description and template hold control characters imports again unchanged; reports show them as \\xNN', async () => {
  // The CLI shows such characters as \xNN; the importer must compare them as they are.
  const lines = [
    { type: 'agent', name: 'ctl-agent', description: 'red \u001b[31m', prompt_template: 'Hi \u001b[2K\r{{who}}' },
    { type: 'version', agent: 'ctl-agent', prompt_template: 'Bye \u0007{{who}}' },
  ];
  let r = await cli(['import', '-', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 0, r.stderr);
  r = await cli(['import', '-', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).types.agent, counts({ unchanged: 1 }));
  assert.deepEqual(JSON.parse(r.stdout).types.version, counts({ unchanged: 1 }));
  // A rejected line's report quotes the file (and the server's message): its control
  // characters are shown as \xNN too.
  r = await cli(['import', '-'], { input: jsonl([{ type: 'trace', agent: 'nope\u001b]0;x\u0007', external_id: 'e\u001b[2J', input: 'i', output: 'o' },
    { type: 'agent', name: 'ctl-agent', description: 5 }]) });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /nope\\x1b\]0;x\\x07/);
  assert.doesNotMatch(r.stderr, /[\x00-\x08\x0b-\x1f\x7f]/);
});

test('stdin with -, and a clean file exits 0', async () => {
  const lines = [
    { type: 'agent', name: 'stdin-agent', prompt_template: 'Hi {{who}}' },
    { type: 'trace', agent: 'stdin-agent', external_id: 'x1', input: 'a', output: 'b' },
    { type: 'feedback', external_id: 'x1', rating: 'positive' },
  ];
  let r = await cli(['import', '-'], { input: '\ufeff' + jsonl(lines).replace(/\n/g, '\r\n') }); // BOM, CRLF
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Imported stdin: 3 records/m);
  assert.match(r.stdout, /^total\s+3\s+0\s+0\s+0$/m);
  // Changed content is an update; the last line without a newline still counts.
  r = await cli(['import', '-', '--json'], { input: JSON.stringify({ ...lines[1], output: 'changed' }) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).types.trace, counts({ updated: 1 }));
  // On a terminal, a progress line (records/s) on stderr, erased before the summary.
  r = await cli(['import', '-'], { input: jsonl(lines), env: { REFOLD_TTY: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^\r\x1b\[K {2}importing stdin: 3 records · [\d,]+ records\/s · 0 rejected\r\x1b\[K$/);
});

test('on a terminal, the progress line stays narrower than the terminal (a wrapped line is not erased)', async () => {
  const file = join(srv.dir, 'an-export-with-a-rather-long-name-from-production.jsonl');
  const lines = [{ type: 'agent', name: 'narrow', prompt_template: 'Hi {{who}}' }];
  for (let i = 0; i < 200; i++) lines.push({ type: 'trace', agent: 'narrow', external_id: `narrow${i}`, input: 'a', output: 'b' });
  writeFileSync(file, jsonl(lines));
  for (const [cols, shape] of [
    [300, /^ {2}importing \/.*\/an-export-with-a-rather-long-name-from-production\.jsonl: [\d,]+ records · [\d,]+ records\/s · 0 rejected$/],
    [72, /^ {2}importing …[-a-z]*\.jsonl: [\d,]+ records · [\d,]+ records\/s · 0 rejected$/], // the name's end
    [60, /^ {2}importing: [\d,]+ records · [\d,]+ records\/s · 0 rejected$/], // no room for the name
    [45, /^ {2}importing: [\d,]+ records · 0 rejected$/], // nor for the rate
    [20, /^ {2}importing: [\d,]*/]]) {
    const r = await cli(['import', file], { env: { REFOLD_TTY: '1', COLUMNS: String(cols) } });
    assert.equal(r.code, 0, r.stderr);
    const frames = r.stderr.split('\r\x1b[K').filter((f) => f);
    assert.ok(frames.length >= 2, JSON.stringify(r.stderr));
    for (const f of frames) {
      assert.ok([...f].length <= cols - 1, `${cols}: ${JSON.stringify(f)}`);
      assert.match(f, shape, `${cols}`);
    }
  }
});

test('on a terminal, a rejected line is reported on a line of its own, not after the progress line', async () => {
  // The progress line is drawn once 64 lines are read; line 70 is rejected after it.
  const lines = [{ type: 'agent', name: 'tty-agent', prompt_template: 'Hi {{who}}' }];
  for (let i = 2; i <= 100; i++)
    lines.push(i === 70 ? 'not JSON' : { type: 'trace', agent: 'tty-agent', external_id: `tty${i}`, input: 'a', output: 'b' });
  const r = await cli(['import', '-'], { input: jsonl(lines), env: { REFOLD_TTY: '1' } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^\r\x1b\[K {2}importing stdin: 64 records · [\d,]+ records\/s · 0 rejected\r\x1b\[Kstdin:70: invalid: invalid JSON at column \d+: [^\r\n]*\n/);
  // What the terminal shows: each line as it stands after its last erase.
  const shown = r.stderr.split('\n').map((l) => l.split('\r\x1b[K').at(-1)).filter((l) => l);
  assert.deepEqual(shown, ['stdin:70: invalid: invalid JSON at column 3: \'[\' or \'{\' expected near \'not\'',
    'refold: 1 record rejected (reported above); the rest was imported'], JSON.stringify(r.stderr));
});

// A stand-in for refold that knows one agent and answers each trace batch as scripted:
// 'drop' closes the connection without an answer, 'down' does and then refuses connections
// for 0.8 s (a restart), 'plain' is a 404 page that is not refold's, '503' is the API's
// unavailable error, '401' refuses the key (revoked meanwhile), '413' refuses the body as
// too large, 'ok' stores the batch. It records when each batch arrived. agentScript does
// the same for the agent lookups.
async function flakyServer(script, agentScript = []) {
  const posts = [], lookups = [];
  let port;
  const down = (req) => {
    req.socket.destroy();
    server.close();
    server.closeAllConnections();
    setTimeout(() => server.listen(port, '127.0.0.1'), 800);
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const json = (status, obj) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); };
      if (req.method === 'GET' && req.url.startsWith('/v1/agents?')) {
        const what = agentScript[lookups.length] || 'ok';
        lookups.push({ at: Date.now() });
        if (what === 'down') return down(req);
        if (what === 'plain') return res.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>Not Found</h1>');
        return json(200, { data: [{ id: 'agent_flaky', name: 'imp', status: 'confirmed', description: null }], next_cursor: null });
      }
      if (req.method === 'POST' && req.url.startsWith('/v1/traces')) {
        const n = JSON.parse(body).traces.length;
        const what = script[posts.length] || 'ok';
        posts.push({ at: Date.now(), n });
        if (what === 'down') return down(req);
        if (what === 'plain') return res.writeHead(404, { 'Content-Type': 'text/html' }).end('<h1>Not Found</h1>');
        if (what === 'drop') return req.socket.destroy();
        if (what === '503') return json(503, { error: { code: 'unavailable', message: 'the database is unreachable', request_id: 'req_x' } });
        if (what === '401') return json(401, { error: { code: 'unauthorized', message: 'invalid or revoked API key', request_id: 'req_x' } });
        if (what === '413') return json(413, { error: { code: 'payload_too_large', message: 'request body is too large', request_id: 'req_x' } });
        return json(200, { data: [], summary: { created: n, updated: 0, unchanged: 0, rejected: 0 } });
      }
      json(404, { error: { code: 'not_found', message: `no route ${req.method} ${req.url}`, request_id: 'req_x' } });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = server.address().port;
  return { url: `http://127.0.0.1:${port}`, posts, lookups, close: () => new Promise((r) => server.close(r)) };
}

test('a batch whose connection broke, or that got a 503, is sent again after a pause', async () => {
  const fake = await flakyServer(['drop', '503', 'ok']);
  try {
    const r = await cli(['import', '-'], { input: jsonl([trace('r1'), trace('r2'), trace('r3')]), env: { REFOLD_URL: fake.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^trace\s+3\s+0\s+0\s+0$/m);
    assert.deepEqual(fake.posts.map((p) => p.n), [3, 3, 3]);
    assert.ok(fake.posts[1].at - fake.posts[0].at >= 450, 'first pause 0.5 s');
    assert.ok(fake.posts[2].at - fake.posts[1].at >= 950, 'second pause 1 s');
  } finally {
    await fake.close();
  }
});

// A proxy in front of srv that forwards every request and answer, except that the
// answers of the requests lose(method, url) picks are dropped after refold handled them:
// the connection closes without a reply, as when a proxy or the network fails on the way
// back. It closes every connection after its answer unless keepAlive (on a kept-alive
// connection libcurl sends the request again at once by itself, which the importer sees
// through CURLOPT_PREREQFUNCTION). It records the requests it forwarded.
async function lossyProxy(lose, { keepAlive = false } = {}) {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      seen.push(`${req.method} ${req.url}`);
      const drop = lose(req.method, req.url, seen.length);
      const headers = { ...req.headers };
      delete headers.host;
      delete headers['content-length'];
      const r = await fetch(srv.url + req.url, { method: req.method, headers, body: body.length ? body : undefined });
      const text = await r.text();
      if (drop) return req.socket.destroy();
      res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') || 'application/json', ...(keepAlive ? {} : { Connection: 'close' }) });
      res.end(text);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}`, seen,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); } };
}

test('a server restarting (connections refused for 0.8 s) is waited for, by batches and by lookups', async () => {
  for (const [script, agentScript] of [[['down'], []], [[], ['down']]]) {
    const fake = await flakyServer(script, agentScript);
    try {
      const r = await cli(['import', '-'], { input: jsonl([trace('d1'), trace('d2')]), env: { REFOLD_URL: fake.url } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^trace\s+2\s+0\s+0\s+0$/m);
      const sent = script.length ? fake.posts : fake.lookups;
      assert.equal(sent.length, 2, 'sent again once the server was back');
      assert.ok(sent[1].at - sent[0].at >= 1400, 'after 0.5 s (refused), then 1 s');
    } finally {
      await fake.close();
    }
  }
});

test('a server that does not answer like refold (a wrong REFOLD_URL) stops the import with one line', async () => {
  for (const [script, agentScript, what] of [[['plain'], [], /HTTP 404 from http:\/\/[^ ]+\/v1\/traces\?outcomes=rejected, /],
    [[], ['plain'], /HTTP 404 from http:\/\/[^ ]+\/v1\/agents\?name=imp&limit=500, /]]) {
    const fake = await flakyServer(script, agentScript);
    try {
      const lines = [0, 1, 2, 3, 4].map((i) => trace(`p${i}`));
      const r = await cli(['import', '-', '--batch', '2', '--parallel', '1'], { input: jsonl(lines), env: { REFOLD_URL: fake.url } });
      assert.equal(r.code, 1);
      const err = r.stderr.trimEnd().split('\n');
      assert.equal(err.length, 1, r.stderr);
      assert.match(err[0], what);
      assert.ok(err[0].includes(`, which does not answer like refold: is REFOLD_URL (${fake.url}) the refold server?`), err[0]);
      assert.match(r.stdout, /^total\s+0\s+0\s+0\s+0$/m);
    } finally {
      await fake.close();
    }
  }
});

test('a REFOLD_URL with a path (refold answers "no such endpoint") stops the import with one line', async () => {
  // Through a lookup (an agent line), and through a batch (a file of feedback alone).
  const agentFile = jsonl([{ type: 'agent', name: 'pathed' }, trace('pa1'), trace('pa2')]);
  const feedbackFile = jsonl([0, 1, 2, 3, 4].map((i) => ({ type: 'feedback', source: 's', external_id: `pf${i}`, rating: 'positive' })));
  for (const [input, path] of [[agentFile, '/v1/v1/agents'], [feedbackFile, '/v1/v1/feedback']]) {
    const r = await cli(['import', '-', '--batch', '2', '--parallel', '1'], { input, env: { REFOLD_URL: `${srv.url}/v1` } });
    assert.equal(r.code, 1);
    const err = r.stderr.trimEnd().split('\n');
    assert.equal(err.length, 1, r.stderr);
    assert.equal(err[0], `refold: import stopped after reading ${err[0].match(/reading (\d+ records?)/)[1]}: no such endpoint: ${path}: ` +
      `REFOLD_URL (${srv.url}/v1) must be the refold server's address without a path, e.g. http://127.0.0.1:7878`);
    assert.match(r.stdout, /^Stopped importing stdin/m);
    assert.match(r.stdout, /^total\s+0\s+0\s+0\s+0$/m);
  }
  assert.equal((await srv.api('GET', '/v1/agents?name=pathed')).json.data.length, 0);
});

test('the halves of a batch refused as too large are sent again when their connection breaks', async () => {
  const fake = await flakyServer(['413', 'drop', 'ok']);
  try {
    const r = await cli(['import', '-'], { input: jsonl([trace('h1'), trace('h2'), trace('h3')]), env: { REFOLD_URL: fake.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^trace\s+3\s+0\s+0\s+0$/m);
    const sizes = fake.posts.map((p) => p.n);
    assert.equal(sizes.length, 4, JSON.stringify(sizes)); // the batch, a half twice, the other half
    assert.equal(sizes[0], 3);
    assert.equal(sizes[1], sizes[2]);
    assert.equal(sizes[2] + sizes[3], 3);
  } finally {
    await fake.close();
  }
});

test('a server that stops answering stops the import with one line, not one per line in flight', async () => {
  for (const [script, why] of [
    [['drop', 'drop', 'drop'], /the server stopped answering \(Server returned nothing[^)]*\)/],
    [['503', '503', '503'], /the server is unavailable \(HTTP 503: the database is unreachable\)/],
  ]) {
    const fake = await flakyServer(script);
    try {
      // Line 1's feedback waits for the traces' batches, so it is not sent either: the
      // message names it, not the first line of the batch that failed (line 2).
      const lines = [{ type: 'feedback', source: 's', external_id: 's4', rating: 'positive' },
        ...[0, 1, 2, 3, 4].map((i) => trace(`s${i}`))];
      const r = await cli(['import', '-', '--batch', '2', '--parallel', '1'], { input: jsonl(lines), env: { REFOLD_URL: fake.url } });
      assert.equal(r.code, 1);
      assert.equal(fake.posts.length, 3, 'sent three times, then stopped');
      const err = r.stderr.trimEnd().split('\n');
      assert.equal(err.length, 1, r.stderr);
      assert.match(err[0], /^refold: import stopped after reading [3-6] records: /);
      assert.match(r.stdout, /^Stopped importing stdin after reading [3-6] records in [\d.]+ s; the server's answers:$/m);
      assert.doesNotMatch(r.stdout, /Imported/);
      assert.match(r.stdout, /^total\s+0\s+0\s+0\s+0$/m, 'lines left undone are not counted as rejected');
      assert.match(err[0], why);
      assert.match(err[0], /; the lines from line 1 on may or may not be stored: importing the file again is safe$/);
    } finally {
      await fake.close();
    }
  }
});

test('a key revoked during the import stops it with one line saying from which line on', async () => {
  const fake = await flakyServer(['ok', '401']);
  try {
    const r = await cli(['import', '-', '--batch', '2', '--parallel', '1'], { input: jsonl([0, 1, 2, 3, 4].map((i) => trace(`k${i}`))), env: { REFOLD_URL: fake.url } });
    assert.equal(r.code, 1);
    assert.equal(fake.posts.length, 2, 'not sent again');
    assert.match(r.stdout, /^trace\s+2\s+0\s+0\s+0$/m);
    assert.match(r.stderr, /^refold: import stopped after reading [45] records: invalid or revoked API key; the lines from line 3 on may or may not be stored: importing the file again is safe\n$/);
  } finally {
    await fake.close();
  }
});

test('a server with a small body limit: batches it refuses as too large are sent again in halves', async () => {
  const small = await startServer({ env: { REFOLD_MAX_BODY: '65536' } });
  try {
    const lines = [{ type: 'agent', name: 'limited', prompt_template: 'Hi {{x}}' }];
    for (let i = 0; i < 200; i++) {
      lines.push({ type: 'trace', agent: 'limited', external_id: `l${i}`, input: 'q'.repeat(1000), output: `a${i}` });
      if (i === 99) lines.push({ type: 'trace', agent: 'limited', external_id: 'huge', input: 'h'.repeat(100000), output: 'a' }); // line 102
    }
    lines.push({ type: 'feedback', external_id: 'l7', rating: 'negative' });
    const r = await cli(['import', '-', '--json'], { input: jsonl(lines), env: { REFOLD_URL: small.url, REFOLD_API_KEY: small.key } });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split('\n'), [
      'stdin:102: trace: the batch request was refused (HTTP 413): request body is larger than 65536 bytes',
      'refold: 1 record rejected (reported above); the rest was imported',
    ]);
    const sum = JSON.parse(r.stdout).types;
    assert.deepEqual(sum.trace, counts({ created: 200, rejected: 1 }));
    assert.deepEqual(sum.feedback, counts({ created: 1 }));
    const agent = (await small.api('GET', '/v1/agents?name=limited')).json.data[0];
    const stats = (await small.api('GET', `/v1/agents/${agent.id}`)).json.stats;
    assert.equal(stats.traces, 200);
    assert.equal(stats.negative, 1);
  } finally {
    await small.stop();
    small.cleanup();
  }
});

test('small pipelined batches keep file order: the last line for a key wins, feedback follows its trace', async () => {
  const lines = [{ type: 'agent', name: 'order', prompt_template: 'Order {{x}}' }];
  const keys = 8, rounds = 40;
  for (let i = 0; i < keys * rounds; i++) {
    const k = i % keys, round = Math.floor(i / keys);
    lines.push({ type: 'trace', agent: 'order', source: 'o', external_id: `k${k}`, input: 'q', output: `round ${round}` });
    lines.push({ type: 'feedback', source: 'o', external_id: `k${k}`, rating: round % 2 ? 'positive' : 'negative', note: `round ${round}` });
  }
  const r = await cli(['import', '-', '--batch', '3', '--parallel', '8', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.deepEqual(s.types.trace, counts({ created: keys, updated: keys * (rounds - 1) }));
  assert.deepEqual(s.types.feedback, counts({ created: keys, updated: keys * (rounds - 1) }));
  const agent = (await srv.api('GET', '/v1/agents?name=order')).json.data[0];
  const traces = (await srv.api('GET', `/v1/traces?agent_id=${agent.id}&limit=500`)).json.data;
  assert.equal(traces.length, keys);
  for (const t of traces) {
    assert.equal(t.output, `round ${rounds - 1}`, t.external_id);
    assert.equal(t.feedback.note, `round ${rounds - 1}`, t.external_id);
  }
});

test('feedback and executions of the same traces in flight together: the counters equal a recount', async () => {
  // Each trace is followed by its rating and two evals' predictions, then rated and judged
  // again, so feedback and execution batches sharing traces overlap under --parallel 8.
  const lines = [
    { type: 'agent', name: 'overlap', prompt_template: 'Overlap {{x}}' },
    { type: 'eval', agent: 'overlap', name: 'e1' },
    { type: 'eval', agent: 'overlap', name: 'e2' },
  ];
  const n = 60, ratings = ['positive', 'negative', 'neutral'];
  for (let i = 0; i < n; i++) lines.push({ type: 'trace', agent: 'overlap', source: 'ov', external_id: `o${i}`, input: 'q', output: 'a' });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < n; i++) {
      lines.push({ type: 'feedback', source: 'ov', external_id: `o${i}`, rating: ratings[(i + round) % 3] });
      for (const e of ['e1', 'e2'])
        lines.push({ type: 'eval_execution', agent: 'overlap', eval: e, source: 'ov', external_id: `o${i}`, predicted_result: (i + round + e.length) % 2 === 0 });
    }
  }
  const r = await cli(['import', '-', '--batch', '4', '--parallel', '8', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.types.feedback.created + s.types.feedback.updated + s.types.feedback.unchanged, 3 * n);
  assert.equal(s.types.eval_execution.created, 2 * n);
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'agent_stats equals a recount');
  const agent = (await srv.api('GET', '/v1/agents?name=overlap')).json.data[0];
  const last = (i) => ratings[(i + 2) % 3];
  assert.equal(agent.stats.positive, [...Array(n).keys()].filter((i) => last(i) === 'positive').length);
  assert.equal(agent.stats.executions, 2 * n);
});

test('the same file imported three times at once: every run succeeds, the database holds one import', async () => {
  // Each run finds the agents, evals and versions missing, and the others create them
  // meanwhile: an agent or eval made since the lookup is an existing one (not a rejected
  // line), and a version with the same template is made once.
  const lines = [];
  const agents = 12, n = 20;
  for (let a = 0; a < agents; a++) {
    const name = `race${a}`;
    lines.push({ type: 'agent', name, prompt_template: `Race ${a} {{x}}` });
    lines.push({ type: 'eval', agent: name, name: 'judge' });
    lines.push({ type: 'version', agent: name, prompt_template: `Race ${a} draft {{x}}` });
    for (let i = 0; i < n; i++) {
      lines.push({ type: 'trace', agent: name, source: 'race', external_id: `${name}-${i}`, input: 'q', output: 'a' });
      lines.push({ type: 'feedback', source: 'race', external_id: `${name}-${i}`, rating: i % 2 ? 'positive' : 'negative' });
      lines.push({ type: 'eval_execution', agent: name, eval: 'judge', source: 'race', external_id: `${name}-${i}`, predicted_result: i % 3 === 0 });
    }
  }
  const file = join(srv.dir, 'race.jsonl');
  writeFileSync(file, jsonl(lines));
  const runs = await Promise.all([0, 1, 2].map(() => cli(['import', file, '--json', '--batch', '7'])));
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(JSON.parse(r.stdout).total.rejected, 0);
  }
  const made = (t) => runs.reduce((sum, r) => sum + JSON.parse(r.stdout).types[t].created, 0);
  assert.equal(made('agent'), agents, 'each agent created by one run');
  assert.equal(made('eval'), agents);
  assert.equal(made('version'), agents);
  assert.equal(made('trace'), agents * n);
  for (let a = 0; a < agents; a++) {
    const agent = (await srv.api('GET', `/v1/agents?name=race${a}`)).json.data;
    assert.equal(agent.length, 1);
    const versions = (await srv.api('GET', `/v1/agents/${agent[0].id}/versions`)).json.data;
    assert.deepEqual(versions.map((v) => [v.version, v.status]), [[2, 'candidate'], [1, 'active']], `race${a}`);
    assert.equal((await srv.api('GET', `/v1/evals?agent_id=${agent[0].id}`)).json.data.length, 1);
    assert.equal(agent[0].stats.traces, n);
    assert.equal(agent[0].stats.executions, n);
  }
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'agent_stats equals a recount');
});

test('POST versions: reuse_identical answers an existing version of the same template (200), status active promotes at once', async () => {
  const agent = (await srv.api('POST', '/v1/agents', { name: 'reuse', prompt_template: 'Reuse {{x}}' })).json;
  const path = `/v1/agents/${agent.id}/versions`;
  let r = await srv.api('POST', path, { prompt_template: 'Reuse {{x}}', reuse_identical: true });
  assert.equal(r.status, 200);
  assert.equal(r.json.id, agent.active_version.id);
  r = await srv.api('POST', path, { prompt_template: 'Reuse 2 {{x}}', reuse_identical: true });
  assert.equal(r.status, 201);
  assert.equal(r.json.version, 2);
  const again = await srv.api('POST', path, { prompt_template: 'Reuse 2 {{x}}', reuse_identical: true });
  assert.equal(again.status, 200);
  assert.equal(again.json.id, r.json.id);
  r = await srv.api('POST', path, { prompt_template: 'Reuse 2 {{x}}' });
  assert.equal(r.status, 201, 'without it, a new version as before');
  assert.equal(r.json.version, 3);
  r = await srv.api('POST', path, { prompt_template: 'Reuse 3 {{x}}', reuse_identical: 'yes' });
  assert.equal(r.status, 400);
  // status: "active" promotes the new version in the same request (the importer's agent
  // lines and active version lines), and leaves an identical one it reuses as it is.
  r = await srv.api('POST', path, { prompt_template: 'Reuse 4 {{x}}', status: 'active', reuse_identical: true });
  assert.equal(r.status, 201);
  assert.equal(r.json.status, 'active');
  assert.equal(r.json.parent_version_id, agent.active_version.id);
  let a = (await srv.api('GET', `/v1/agents/${agent.id}`)).json;
  assert.equal(a.active_version.version, 4);
  assert.equal((await srv.api('GET', `${path}/1`)).json.status, 'archived');
  r = await srv.api('POST', path, { prompt_template: 'Reuse 2 {{x}}', status: 'active', reuse_identical: true });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'candidate');
  a = (await srv.api('GET', `/v1/agents/${agent.id}`)).json;
  assert.equal(a.active_version.version, 4);
  r = await srv.api('POST', path, { prompt_template: 'Reuse 5 {{x}}', status: 'archived' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'status');
});

test('a 100,000-line file imports (records/s printed)', async () => {
  const file = join(srv.dir, 'big.jsonl');
  const out = createWriteStream(file);
  out.write(JSON.stringify({ type: 'agent', name: 'big', prompt_template: 'Support for {{company}}' }) + '\n');
  const n = 99999;
  let chunk = [];
  for (let i = 0; i < n; i++) {
    chunk.push(JSON.stringify({ type: 'trace', agent: 'big', source: 'bench', external_id: `b-${i}`,
      timestamp: new Date(1793000000000 + i * 1000).toISOString(),
      input: `Customer ${i}: where is my order AO-${100000 + i}? It should have arrived last week.`,
      output: `Order AO-${100000 + i} shipped on Monday with UPS and arrives within two business days.`,
      metadata: { channel: 'chat', n: i } }));
    if (chunk.length === 5000) { if (!out.write(chunk.join('\n') + '\n')) await once(out, 'drain'); chunk = []; }
  }
  out.end(chunk.join('\n') + '\n');
  await once(out, 'finish');
  const r = await cli(['import', file, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.records, 100000);
  assert.deepEqual(s.types.trace, counts({ created: n }));
  console.log(`# import of 100,000 lines: ${s.seconds.toFixed(2)} s, ${Math.round(s.records_per_second).toLocaleString('en-US')} records/s`);
  const agent = (await srv.api('GET', '/v1/agents?name=big')).json.data[0];
  assert.equal(agent.stats.traces, n);
});

test('requests whose answers were lost after refold stored them: agents and evals count as created, batches are flagged', async () => {
  const lines = [
    { type: 'agent', name: 'lost', prompt_template: 'Lost {{x}}' },
    { type: 'eval', agent: 'lost', name: 'judge' },
    ...[0, 1, 2].map((i) => trace(`lost${i}`, { agent: 'lost' })),
    { type: 'feedback', source: 's', external_id: 'lost0', rating: 'negative' },
    { type: 'eval_execution', agent: 'lost', eval: 'judge', source: 's', external_id: 'lost0', predicted_result: true },
  ];
  const lost = new Set();
  const proxy = await lossyProxy((method, url) => {
    const key = `${method} ${url.split('?')[0].replace(/eval_\w+/, 'ID')}`;
    if (method !== 'POST' || lost.has(key)) return false;
    lost.add(key); // the first answer of each kind of create is lost
    return true;
  });
  try {
    const r = await cli(['import', '-', '--json'], { input: jsonl(lines), env: { REFOLD_URL: proxy.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.seen.filter((q) => q.startsWith('POST')).length, 10, 'each create sent twice');
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.types.agent, counts({ created: 1 }));
    assert.deepEqual(s.types.eval, counts({ created: 1 }));
    // A batch's repeat finds its lines stored: unchanged, but flagged as possibly this import's.
    assert.deepEqual(s.types.trace, counts({ unchanged: 3 }));
    assert.deepEqual(s.types.feedback, counts({ unchanged: 1 }));
    assert.deepEqual(s.types.eval_execution, counts({ unchanged: 1 }));
    assert.equal(s.uncertain, 5);
    assert.equal(r.stderr, 'refold: 5 records counted unchanged may have been created or updated by this import: ' +
      'the connection of their request broke, and the request sent again found them stored (README, "Import")\n');
    const agent = (await srv.api('GET', '/v1/agents?name=lost')).json.data[0];
    assert.equal(agent.stats.traces, 3);
    assert.equal(agent.stats.executions, 1);
    // Imported again without losses: nothing is flagged.
    const again = await cli(['import', '-', '--json'], { input: jsonl(lines) });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stderr, '');
    assert.equal(JSON.parse(again.stdout).uncertain, 0);
    assert.deepEqual(JSON.parse(again.stdout).total, counts({ unchanged: lines.length }));
  } finally {
    await proxy.close();
  }
  // On kept-alive connections: the answers of the agent and eval creates and of the second
  // trace batch are lost, libcurl sends each again at once on a new connection, and the
  // import still sees it.
  let batches = 0;
  const dropped = new Set();
  const kept = await lossyProxy((method, url) => {
    if (method !== 'POST') return false;
    if (url.startsWith('/v1/traces')) return ++batches === 2;
    if (dropped.has(url)) return false;
    dropped.add(url);
    return true;
  }, { keepAlive: true });
  try {
    const more = [{ type: 'agent', name: 'kept', prompt_template: 'Kept {{x}}' }, { type: 'eval', agent: 'kept', name: 'judge' },
      ...[0, 1, 2, 3].map((i) => trace(`kept${i}`, { agent: 'kept' }))];
    const r = await cli(['import', '-', '--json', '--batch', '2', '--parallel', '1'], { input: jsonl(more), env: { REFOLD_URL: kept.url } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(kept.seen.filter((q) => q.startsWith('POST')).map((q) => q.split('?')[0]),
      ['POST /v1/agents', 'POST /v1/agents', 'POST /v1/evals', 'POST /v1/evals', 'POST /v1/traces', 'POST /v1/traces', 'POST /v1/traces']);
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.types.agent, counts({ created: 1 }));
    assert.deepEqual(s.types.eval, counts({ created: 1 }));
    assert.deepEqual(s.types.trace, counts({ created: 2, unchanged: 2 }));
    assert.equal(s.uncertain, 2);
    assert.match(r.stderr, /^refold: 2 records counted unchanged may have been created or updated by this import: /);
  } finally {
    await kept.close();
  }
});

test("an eval_execution of another agent's trace is reported by names, not ids", async () => {
  const file = join(srv.dir, 'other-agent.jsonl');
  writeFileSync(file, jsonl([
    { type: 'agent', name: 'owner', prompt_template: 'Own {{x}}' }, { type: 'agent', name: 'judged', prompt_template: 'J {{x}}' },
    { type: 'eval', agent: 'judged', name: 'tone' }, trace('oa1', { agent: 'owner', source: 'crm' }),
    { type: 'eval_execution', agent: 'judged', eval: 'tone', source: 'crm', external_id: 'oa1', predicted_result: false }]));
  const r = await cli(['import', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split('\n')[0], `${file}:5: eval_execution: the trace with source crm and external_id oa1 belongs to ` +
    'agent "owner", not to agent "judged" of eval "tone"');
  const api = await srv.api('POST', `/v1/evals/${(await srv.api('GET', '/v1/evals')).json.data.find((e) => e.name === 'tone').id}/executions`,
    { executions: [{ source: 'crm', external_id: 'oa1', predicted_result: true }] });
  assert.deepEqual(api.json.data[0].error.details, { field: 'external_id', reason: 'trace_of_another_agent' });
});

test('a UTF-16 or compressed file stops the import with one line saying what it is and how to import it', async () => {
  const text = jsonl([{ type: 'agent', name: 'enc' }, trace('enc1', { agent: 'enc' })]);
  const { gzipSync } = await import('node:zlib');
  for (const [name, bytes, what] of [
    ['bom16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]), 'in UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8: import it as UTF-8 JSON Lines, e.g. iconv -f UTF-16 -t UTF-8 FILE | refold import -'],
    ['le16', Buffer.from(text, 'utf16le'), 'in UTF-16 (NUL bytes between its characters), not UTF-8: import it as UTF-8 JSON Lines, e.g. iconv -f UTF-16 -t UTF-8 FILE | refold import -'],
    ['gz', gzipSync(Buffer.from(text)), 'gzip-compressed: import it as UTF-8 JSON Lines, e.g. zcat FILE | refold import -']]) {
    const file = join(srv.dir, `${name}.jsonl`);
    writeFileSync(file, bytes);
    const r = await cli(['import', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `refold: import stopped after reading 0 records: ${file} is ${what}\n`);
    assert.match(r.stdout, /^total\s+0\s+0\s+0\s+0$/m);
  }
});

test('a "type" that is not a string is reported as such, not as missing', async () => {
  const r = await cli(['import', '-'], { input: jsonl([{ type: 5 }, { name: 'x' }]) });
  assert.equal(r.code, 1);
  assert.deepEqual(r.stderr.split('\n').slice(0, 2), [
    'stdin:1: invalid: "type" must be a string (agent, version, eval, trace, feedback or eval_execution)',
    'stdin:2: invalid: no "type" (agent, version, eval, trace, feedback or eval_execution)']);
});

test('a line in Latin-1, or with \\u0000, is reported in words about the file', async () => {
  const input = Buffer.concat([Buffer.from('{"type":"agent","name":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{"type":"agent","name":"a\\u0000b"}\n')]);
  const r = await cli(['import', '-'], { input });
  assert.equal(r.code, 1);
  const errs = r.stderr.split('\n');
  assert.match(errs[0], /^stdin:1: invalid: invalid JSON at column \d+: unable to decode byte 0xe9 .*: not UTF-8 \(import files are UTF-8: convert this one, e\.g\. with iconv -f ISO-8859-1 -t UTF-8\)$/);
  assert.match(errs[1], /^stdin:2: invalid: invalid JSON at column \d+: \\u0000 \(NUL\) is not allowed in strings$/);
});
