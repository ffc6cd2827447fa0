// Bad input, at random: a seeded stream of malformed requests to every write
// endpoint (fields deleted, swapped for values of the wrong type, out of range,
// huge, unknown ids; bodies cut short, nested too deep or carrying a lone
// surrogate) and of malformed JSON Lines through `refold import`. Whatever comes
// in, the server must answer below 500, every 4xx must carry the JSON error body
// ({"error": {"code", "message"}}), the server must stay up and stop cleanly (no
// sanitizer report under make test-asan), and the stored data must stay
// consistent: tests/data/recount.sql prints nothing at the end.
// Replay a failure with REFOLD_TEST_SEED; REFOLD_TEST_OPS sets the request count.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startServer, run, sql, rng, SOURCE_DIR } from './lib.mjs';

const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
const SEED = Number(process.env.REFOLD_TEST_SEED || 20261127);
const OPS = Number(process.env.REFOLD_TEST_OPS || 1500);

const srv = await startServer({ env: { REFOLD_LOG: 'warn' } });
after(async () => { await srv.stop(); srv.cleanup(); });

const rand = rng(SEED);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const chance = (p) => rand() < p;
const UNKNOWN_TRACE = 'trace_01ARZ3NDEKTSV4RRFFQ69G5FAV';

const agent = (await srv.api('POST', '/v1/agents', { name: 'bad-input', prompt_template: 'Hi {{x}} and {{y}}' })).json;
const ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;
const trace = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, external_id: 'base', input: 'i', output: 'o' })).json;

function oddValue() {
  return pick([null, true, false, 0, -1, 1.5, -0, 1e308, 2 ** 63, 9007199254740993, '', 'x'.repeat(70000),
    '\u0000', 'é\u{1F600}', '{{x}}', '%00', '../..', '9999999999999999999999', [], [1, 'a'], {}, { a: { b: [null] } },
    'positive', 'archived', trace.id, agent.id, ev.id, UNKNOWN_TRACE]);
}

// Valid bodies for each write endpoint; mutate() spoils some of their parts.
const ext = () => `t${Math.floor(rand() * 40)}`;
const items = (make, key) => () => ({ [key]: Array.from({ length: 1 + Math.floor(rand() * 5) }, make) });
const WRITES = [
  ['POST', () => '/v1/agents', () => ({ name: `a${Math.floor(rand() * 1e6)}`, description: 'd', prompt_template: 'Hi {{x}}', variables: ['x'] })],
  ['PATCH', () => `/v1/agents/${agent.id}`, () => ({ description: 'x', status: pick(['confirmed', 'discovered']) })],
  ['POST', () => `/v1/agents/${agent.id}/versions`, () => ({ prompt_template: 'Hello {{x}} {{y}}', variables: ['x', 'y'], note: 'n' })],
  ['POST', () => `/v1/agents/${agent.id}/versions/${pick([1, 2, 3, 0, -1, 'x', 99999999999])}/${pick(['promote', 'reject'])}`, () => ({ note: 'n', reason: 'r' })],
  ['POST', () => '/v1/traces', () => ({ agent_id: agent.id, external_id: ext(), input: 'i', output: 'o', steps: [{ a: 1 }], metadata: { k: 'v' }, timestamp: '2026-01-01T00:00:00Z' })],
  ['POST', () => '/v1/traces', items(() => ({ agent_id: agent.id, external_id: ext(), input: 'i', output: 'o' }), 'traces')],
  ['PUT', () => `/v1/traces/${trace.id}/feedback`, () => ({ rating: pick(['positive', 'negative', 'neutral']), note: 'n' })],
  ['POST', () => '/v1/feedback', items(() => ({ external_id: ext(), rating: 'negative', note: 'n' }), 'feedback')],
  ['POST', () => `/v1/evals/${ev.id}/executions`, items(() => ({ external_id: ext(), predicted_result: chance(0.5), predicted_reason: 'r', execution_time_ms: 5 }), 'executions')],
  ['POST', () => '/v1/evals', () => ({ agent_id: agent.id, name: `e${Math.floor(rand() * 100)}` })],
  ['POST', () => '/v1/best-practices', () => ({ category: 'general', title: 't', content: 'c', url: 'https://example.com' })],
  ['POST', () => `/v1/agents/${agent.id}/improve-prompt`, () => ({ max_contradictions: 5, kind: 'false_alarm' })],
];
const READS = ['/v1/agents', `/v1/agents/${agent.id}`, `/v1/agents/${agent.id}/contradictions`, `/v1/agents/${agent.id}/versions`,
  `/v1/agents/${agent.id}/versions/1/diff`, '/v1/traces', `/v1/traces/${trace.id}`, '/v1/evals', '/v1/best-practices', '/v1/jobs'];
const query = () => pick(['', `?limit=${encodeURIComponent(String(oddValue()).slice(0, 50))}`, '?limit=0', '?limit=-5', '?limit=100000',
  '?cursor=abc&limit=2', `?agent_id=${agent.id}&rated=maybe`, '?kind=nope', '?status=nope', '?against=x', '?outcomes=some']);

function mutate(v, depth = 0) {
  if (depth > 3 || chance(0.15)) return oddValue();
  if (Array.isArray(v)) {
    const out = v.map((x) => (chance(0.3) ? mutate(x, depth + 1) : x));
    if (chance(0.2)) out.push(oddValue());
    return out;
  }
  if (v && typeof v === 'object') {
    const out = { ...v };
    for (const k of Object.keys(out)) {
      if (chance(0.15)) delete out[k];
      else if (chance(0.3)) out[k] = mutate(out[k], depth + 1);
    }
    if (chance(0.1)) out[pick(['zz', 'id', 'agent_id', 'trace_id', 'limit'])] = oddValue();
    return out;
  }
  return chance(0.5) ? oddValue() : v;
}

// One request; returns a description of what was wrong with the answer, or null.
async function probe() {
  let method = 'GET', path = pick(READS) + query(), body, raw;
  if (chance(0.75)) {
    const [m, p, make] = pick(WRITES);
    method = m;
    path = p() + (chance(0.1) ? query() : '');
    body = chance(0.85) ? mutate(make()) : make();
    const text = JSON.stringify(body) ?? 'null';
    if (chance(0.06)) raw = text.slice(0, Math.floor(rand() * text.length));
    else if (chance(0.03)) raw = '['.repeat(5000);
    else if (chance(0.03)) raw = text.replace('"', '"\\ud800');
  }
  const r = raw === undefined ? await srv.api(method, path, body)
    : await srv.api(method, path, undefined, { raw, headers: { 'content-type': 'application/json' } });
  const errorBody = r.json && r.json.error && typeof r.json.error.code === 'string' && typeof r.json.error.message === 'string';
  if (r.status >= 500 || (r.status >= 400 && !errorBody) || (r.status < 300 && r.status !== 204 && !r.json))
    return `${method} ${path} -> ${r.status} ${r.text.slice(0, 200)} (body ${String(raw ?? JSON.stringify(body)).slice(0, 200)})`;
  return null;
}

test('malformed requests get a 4xx with the JSON error body and leave the data consistent', async () => {
  const wrong = [];
  for (let i = 0; i < OPS; i++) {
    const w = await probe();
    if (w) wrong.push(w);
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${OPS} answers were wrong (seed ${SEED})`);
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}`)).status, 200);
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'agent_stats equals a recount');
});

test('unknown ids in URL paths, however long or badly encoded, get a JSON 4xx', async () => {
  const ids = ['é'.repeat(300), `a${'€'.repeat(200)}`, '\u{1F600}'.repeat(150), 'x'.repeat(3000)]
    .map(encodeURIComponent).concat(['%FF', '%C3', '%C0%AF', '%ED%A0%80', `${'%C3%A9'.repeat(127)}%C3`]);
  const routes = [['GET', (id) => `/v1/agents/${id}`], ['GET', (id) => `/v1/agents/${id}/contradictions`],
    ['POST', (id) => `/v1/agents/${id}/versions`], ['GET', (id) => `/v1/traces/${id}`],
    ['PUT', (id) => `/v1/traces/${id}/feedback`], ['DELETE', (id) => `/v1/traces/${id}`],
    ['POST', (id) => `/v1/evals/${id}/executions`], ['GET', (id) => `/v1/jobs/${id}`]];
  for (const id of ids) {
    for (const [method, path] of routes) {
      const r = await srv.api(method, path(id), method === 'GET' || method === 'DELETE' ? undefined : { rating: 'positive', prompt_template: 'x', executions: [] });
      assert.ok(r.status >= 400 && r.status < 500 && r.json?.error?.message, `${method} ${path(id).slice(0, 80)}… -> ${r.status} ${r.text.slice(0, 200)}`);
    }
  }
  // Bytes that are not UTF-8 once decoded are refused as such, in the path and in the query.
  for (const path of ['/v1/agents/%FF', '/v1/traces/%C3', '/v1/agents?name=%FF', '/v1/traces?cursor=%ED%A0%80', '/v1/agents?%C0%AF=1']) {
    const r = await srv.api('GET', path);
    assert.equal(r.status, 400, `${path}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_request');
  }
});

test('numbers in URLs are digits (after an optional minus) and nothing else', async () => {
  // strtoll alone took leading spaces and a '+': "/versions/ 1" answered version 1.
  for (const n of ['%201', '+1', '%2B1', '%091', '1%20', '1x', '0x1']) {
    const r = await srv.api('GET', `/v1/agents/${agent.id}/versions/${n}`);
    assert.equal(r.status, 404, `versions/${n}: ${r.text.slice(0, 200)}`);
  }
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}/versions/1`)).status, 200);
  for (const q of ['limit=%205', 'limit=+5', 'limit=%2B5', 'limit=5%20', 'limit=-%205']) {
    const r = await srv.api('GET', `/v1/agents?${q}`);
    assert.equal(r.status, 400, `${q}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error.details.field, 'limit');
  }
  assert.equal((await srv.api('GET', '/v1/agents?limit=5')).status, 200);
  for (const path of [`/v1/agents/${agent.id}/versions/1/diff?base=+1`, `/v1/traces?agent_id=${agent.id}&version=%201`,
    `/v1/agents/${agent.id}/contradictions?limit=+1`]) {
    const r = await srv.api('GET', path);
    assert.equal(r.status, 400, `${path}: ${r.text.slice(0, 200)}`);
  }
});

test('an empty or overlong ?agent_id= is 400 on every list, never a filter that matches nothing', async () => {
  // /v1/traces and /v1/evals answered an empty list (a client that lost its id saw "no
  // traces"); /v1/jobs already said 400.
  for (const list of ['/v1/traces', '/v1/evals', '/v1/jobs']) {
    for (const id of ['', 'x'.repeat(40)]) {
      const r = await srv.api('GET', `${list}?agent_id=${id}`);
      assert.equal(r.status, 400, `${list}?agent_id=${id}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.error.details.field, 'agent_id');
    }
    assert.equal((await srv.api('GET', `${list}?agent_id=${agent.id}`)).status, 200, list);
  }
  assert.ok((await srv.api('GET', `/v1/traces?agent_id=${agent.id}`)).json.data.length > 0);
});

test('a %00 in the URL is refused, never cuts the path short onto another route', async () => {
  // Decoded to a NUL, /v1/traces/ID%00/feedback used to reach DELETE /v1/traces/ID.
  const t = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, external_id: 'nul-path', input: 'i', output: 'o' })).json;
  assert.equal((await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating: 'positive' })).status, 200);
  for (const [method, path] of [['DELETE', `/v1/traces/${t.id}%00/feedback`], ['DELETE', `/v1/agents/${agent.id}%00/x`],
    ['GET', `/v1/traces/${t.id}%00`], ['GET', `/v1/agents?name=bad-input%00x`]]) {
    const r = await srv.api(method, path);
    assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
    assert.equal(r.json.error.code, 'invalid_request');
  }
  const back = await srv.api('GET', `/v1/traces/${t.id}`);
  assert.equal(back.status, 200);
  assert.equal(back.json.feedback.rating, 'positive');
  assert.notEqual((await srv.api('GET', `/v1/agents/${agent.id}`)).json.status, 'archived');
});

test('malformed JSON Lines: import reports and skips bad lines, exits 0 or 1, and the data stays consistent', async () => {
  const lines = [
    { type: 'agent', name: 'imp', prompt_template: 'Hi {{x}}' },
    { type: 'version', agent: 'imp', prompt_template: 'Hello {{x}}', status: 'active' },
    { type: 'eval', agent: 'imp', name: 'e1' },
    { type: 'trace', agent: 'imp', external_id: 't1', input: 'i', output: 'o' },
    { type: 'trace', agent: 'imp', external_id: 't2', input: 'i', output: 'o', version: 1 },
    { type: 'feedback', agent: 'imp', external_id: 't1', rating: 'negative', note: 'n' },
    { type: 'eval_execution', agent: 'imp', eval: 'e1', external_id: 't1', predicted_result: true },
    { type: 'eval_execution', agent: 'imp', eval: 'e1', external_id: 't2', predicted_result: false },
  ];
  const env = { REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key };
  for (let round = 0; round < 12; round++) {
    const out = [];
    for (let i = 0; i < 50; i++) {
      const o = { ...pick(lines) };
      if (typeof o.external_id === 'string') o.external_id += i % 7;
      if (chance(0.5)) {
        const k = pick([...Object.keys(o), 'zz', 'source', 'timestamp', 'steps', 'metadata']);
        if (chance(0.3)) delete o[k];
        else o[k] = oddValue();
      }
      let line = JSON.stringify(o);
      if (chance(0.04)) line = line.slice(0, Math.floor(rand() * line.length));
      out.push(line);
    }
    const file = join(srv.dir, `bad-${round}.jsonl`);
    writeFileSync(file, out.join(chance(0.5) ? '\n' : '\r\n') + '\n');
    const r = await run(['import', file, '--batch', String(1 + Math.floor(rand() * 5)),
      '--parallel', String(1 + Math.floor(rand() * 4))], { env });
    assert.ok(r.code === 0 || r.code === 1, `round ${round}: exit ${r.code}\n${r.stderr.slice(0, 2000)}`);
    for (const l of r.stderr.split('\n').filter((x) => /line \d+/.test(x)))
      assert.ok(l.length < 2000, `round ${round}: an error line of ${l.length} characters`);
  }
  assert.equal((await srv.api('GET', '/v1/agents?name=imp')).status, 200);
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'agent_stats equals a recount');
});

test('a URL cannot forge log lines: the logged path is quoted, newlines and escapes included', async () => {
  const dbg = await startServer({ env: { REFOLD_LOG: 'debug' } });
  try {
    const forged = 'ts=2026-01-01T00:00:00.000Z level=error msg="forged"';
    const r = await dbg.api('GET', `/v1/x%0A${encodeURIComponent(forged)}%1B%5B2J`);
    assert.equal(r.status, 404);
    // The method too: libmicrohttpd passes on any bytes up to the first space.
    const status = await new Promise((resolve, reject) => {
      const sock = connect(dbg.port, '127.0.0.1', () => sock.end(
        'GE"T\x1b[31m\tstatus=200 /v1/agents HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('end', () => resolve(got.split(' ')[1]));
      sock.on('error', reject);
    });
    assert.equal(status, '405');
  } finally {
    await dbg.stop();
    dbg.cleanup();
  }
  const lines = dbg.logs.split('\n');
  assert.ok(!lines.some((l) => l.startsWith('ts=2026-01-01')), 'a forged line reached the log');
  assert.ok(!dbg.logs.includes('\x1b'), 'a raw escape character reached the log');
  const line = lines.find((l) => l.includes('msg="request"') && l.includes('/v1/x'));
  assert.ok(line, dbg.logs);
  assert.ok(line.includes('path="/v1/x\\nts=2026-01-01T00:00:00.000Z level=error msg=\\"forged\\"\\x1b[2J"'), line);

  const m = lines.find((l) => l.includes('msg="request"') && l.includes('path="/v1/agents"'));
  assert.ok(m.includes(' method="GE\\"T\\x1b[31m\\tstatus=200" path='), m);
  assert.ok(dbg.logs.includes(' method=GET path="/v1/x'), 'a method that is a token stays unquoted');
});
