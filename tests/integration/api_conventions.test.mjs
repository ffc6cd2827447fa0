// The conventions of SPEC §4.1 on every endpoint: 401 without a key, with a
// bad key and with a revoked key; 404 for another workspace's objects; 400
// for malformed JSON; 413 past the body limit; 415; 405; request ids; the
// web UI's cookie session and its X-Requested-With rule.
import { test, after, before } from 'node:test';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startServer, run, createWorkspaceKey, sql, sleep } from './lib.mjs';

let srv, otherKey, revokedKey, ids;
const MAX_BODY = 64 * 1024;

before(async () => {
  srv = await startServer({ env: { REFOLD_MAX_BODY: String(MAX_BODY) } });
  otherKey = await createWorkspaceKey(srv.db, 'other', srv.env);
  const r = await run(['key', 'create', '--db', srv.db, '--name', 'doomed'], { env: srv.env });
  revokedKey = r.stdout.trim();
  const list = await run(['key', 'list', '--db', srv.db], { env: srv.env });
  const doomed = list.stdout.split('\n').find((l) => l.includes('\tdoomed\t'));
  const rev = await run(['key', 'revoke', doomed.split('\t')[0], '--db', srv.db], { env: srv.env });
  assert.equal(rev.code, 0, rev.stderr);

  // Objects of the default workspace, to be probed with the other workspace's key.
  const agent = (await srv.api('POST', '/v1/agents', { name: 'conv', prompt_template: 'Hi {{x}}' })).json;
  await srv.api('POST', `/v1/agents/${agent.id}/versions`, { prompt_template: 'Hello {{x}}' });
  const tr = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, external_id: 'e1', input: 'i', output: 'o' })).json;
  await srv.api('PUT', `/v1/traces/${tr.id}/feedback`, { rating: 'positive' });
  const ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'e' })).json;
  const bp = (await srv.api('POST', '/v1/best-practices', { category: 'general', title: 't', content: 'c' })).json;
  ids = { agent: agent.id, trace: tr.id, eval: ev.id, bp: bp.id };
});
after(async () => { await srv.stop(); srv.cleanup(); });

// Every authenticated endpoint with a valid request; `owned` marks the ones that
// address an object of the default workspace.
const endpoints = () => [
  { m: 'POST', p: '/v1/agents', body: { name: 'n' } },
  { m: 'GET', p: '/v1/agents' },
  { m: 'GET', p: `/v1/agents/${ids.agent}`, owned: true },
  { m: 'PATCH', p: `/v1/agents/${ids.agent}`, body: { description: 'd' }, owned: true },
  { m: 'DELETE', p: `/v1/agents/${ids.agent}`, owned: true, skipValid: true },
  { m: 'GET', p: `/v1/agents/${ids.agent}/contradictions`, owned: true },
  { m: 'POST', p: `/v1/agents/${ids.agent}/versions`, body: { prompt_template: 'Yo {{x}}' }, owned: true },
  { m: 'GET', p: `/v1/agents/${ids.agent}/versions`, owned: true },
  { m: 'GET', p: `/v1/agents/${ids.agent}/versions/1`, owned: true },
  { m: 'GET', p: `/v1/agents/${ids.agent}/versions/2/diff`, owned: true },
  { m: 'POST', p: `/v1/agents/${ids.agent}/versions/2/promote`, body: {}, owned: true, skipValid: true },
  { m: 'POST', p: `/v1/agents/${ids.agent}/versions/2/reject`, body: {}, owned: true, skipValid: true },
  { m: 'POST', p: '/v1/traces', body: { agent_id: ids.agent, input: 'i', output: 'o' }, bodyOwned: true },
  { m: 'GET', p: '/v1/traces' },
  { m: 'GET', p: `/v1/traces/${ids.trace}`, owned: true },
  { m: 'DELETE', p: `/v1/traces/${ids.trace}`, owned: true, skipValid: true },
  { m: 'PUT', p: `/v1/traces/${ids.trace}/feedback`, body: { rating: 'negative' }, owned: true },
  { m: 'GET', p: `/v1/traces/${ids.trace}/feedback`, owned: true },
  { m: 'DELETE', p: `/v1/traces/${ids.trace}/feedback`, owned: true, skipValid: true },
  { m: 'POST', p: '/v1/feedback', body: { feedback: [] } },
  { m: 'POST', p: '/v1/evals', body: { agent_id: ids.agent, name: 'zz' }, bodyOwned: true },
  { m: 'GET', p: '/v1/evals' },
  { m: 'GET', p: `/v1/evals/${ids.eval}`, owned: true },
  { m: 'POST', p: `/v1/evals/${ids.eval}/executions`, body: { executions: [] }, owned: true },
  { m: 'GET', p: '/v1/best-practices' },
  { m: 'POST', p: '/v1/best-practices', body: { category: 'general', title: 't', content: 'c' } },
  { m: 'DELETE', p: `/v1/best-practices/${ids.bp}`, owned: true, skipValid: true },
];

test('every endpoint answers 401 without a key, with a bad key and with a revoked key', async () => {
  for (const e of endpoints()) {
    for (const key of [null, 'rf_notakey', revokedKey]) {
      const r = await srv.api(e.m, e.p, e.body, { key });
      assert.equal(r.status, 401, `${e.m} ${e.p} key=${key}`);
      assert.equal(r.json.error.code, 'unauthorized');
      assert.match(r.json.error.request_id, /^req_/);
    }
    const r = await srv.api(e.m, e.p, e.body, { key: null, headers: { authorization: 'Basic abc' } });
    assert.equal(r.status, 401, `${e.m} ${e.p} basic`);
  }
});

test("another workspace's objects answer 404, exactly like missing ones", async () => {
  for (const e of endpoints().filter((x) => x.owned)) {
    const r = await srv.api(e.m, e.p, e.body, { key: otherKey });
    assert.equal(r.status, 404, `${e.m} ${e.p}`);
    assert.equal(r.json.error.code, 'not_found');
    const missing = e.p.replace(/(agent|trace|eval|bp)_[0-9A-Z]{26}/, '$1_01ARZ3NDEKTSV4RRFFQ69G5FAV');
    const m = await srv.api(e.m, missing, e.body);
    assert.equal(m.status, 404, `${e.m} ${missing}`);
  }
  // References inside bodies are scoped too.
  for (const e of endpoints().filter((x) => x.bodyOwned)) {
    const r = await srv.api(e.m, e.p, e.body, { key: otherKey });
    assert.equal(r.status, 404, `${e.m} ${e.p}`);
  }
  // Lists never show another workspace's rows.
  for (const p of ['/v1/agents', '/v1/traces', '/v1/evals']) {
    const r = await srv.api('GET', p, undefined, { key: otherKey });
    assert.deepEqual(r.json.data, [], p);
  }
  const bps = await srv.api('GET', '/v1/best-practices?limit=500', undefined, { key: otherKey });
  assert.ok(!bps.json.data.some((b) => b.id === ids.bp));
});

test('malformed JSON, wrong types and non-object bodies are 400', async () => {
  for (const e of endpoints().filter((x) => x.body)) {
    for (const raw of ['{"name":', '[1,2]', '"str"', '{"a":1,"a":2}']) {
      const r = await srv.api(e.m, e.p, undefined, { raw, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 400, `${e.m} ${e.p} ${raw}`);
      assert.equal(r.json.error.code, 'invalid_request');
    }
  }
  // Each invalid field is named.
  const cases = [
    ['POST', '/v1/agents', { name: 5 }, 'name'],
    ['POST', '/v1/agents', { name: 'x', description: 7 }, 'description'],
    ['POST', '/v1/agents', { name: 'x', prompt_template: ['a'] }, 'prompt_template'],
    ['POST', '/v1/agents', { name: 'x', prompt_template: 'a', variables: 'a' }, 'variables'],
    ['POST', '/v1/agents', { name: 'x', status: 'archived' }, 'status'],
    ['POST', '/v1/agents', {}, 'name'],
    ['POST', `/v1/agents/${ids.agent}/versions`, {}, 'prompt_template'],
    ['POST', `/v1/agents/${ids.agent}/versions/2/promote`, { note: 3 }, 'note'],
    ['POST', `/v1/agents/${ids.agent}/versions/2/reject`, { reason: {} }, 'reason'],
    ['PUT', `/v1/traces/${ids.trace}/feedback`, { rating: 'positive', note: 1 }, 'note'],
    ['PUT', `/v1/traces/${ids.trace}/feedback`, {}, 'rating'],
    ['POST', '/v1/feedback', {}, 'feedback'],
    ['POST', '/v1/feedback', { feedback: {} }, 'feedback'],
    ['POST', '/v1/evals', { agent_id: 1, name: 'x' }, 'agent_id'],
    ['POST', `/v1/evals/${ids.eval}/executions`, {}, 'executions'],
    ['POST', '/v1/best-practices', { category: 'general', title: 't' }, 'content'],
    ['POST', '/v1/best-practices', { category: 'general', title: 't', content: 'c', url: 5 }, 'url'],
    ['POST', '/v1/best-practices', { category: 'general', title: 't', content: 'c', url: 'javascript:alert(1)' }, 'url'],
    ['POST', '/v1/best-practices', { category: 'general', title: 't', content: 'c', url: 'data:text/html,x' }, 'url'],
  ];
  for (const [m, p, body, field] of cases) {
    const r = await srv.api(m, p, body);
    assert.equal(r.status, 400, `${m} ${p} ${JSON.stringify(body)}`);
    assert.equal(r.json.error.details.field, field, `${m} ${p} ${JSON.stringify(body)}`);
  }
  // An empty body where one is required.
  const r = await srv.api('POST', '/v1/agents', undefined);
  assert.equal(r.status, 400);
});

test('bodies past the limit are 413 and nothing is written', async () => {
  const before = (await srv.api('GET', '/v1/agents?limit=500')).json.data.length;
  const big = JSON.stringify({ name: 'big', description: 'x'.repeat(MAX_BODY) });
  for (const e of endpoints().filter((x) => x.body)) {
    const r = await srv.api(e.m, e.p, undefined, { raw: big, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413, `${e.m} ${e.p}`);
    assert.equal(r.json.error.code, 'payload_too_large');
  }
  // Chunked upload without Content-Length is capped the same way.
  const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(big)); c.close(); } });
  const res = await fetch(`${srv.url}/v1/agents`, { method: 'POST', body: stream, duplex: 'half',
    headers: { authorization: `Bearer ${srv.key}`, 'content-type': 'application/json' } });
  assert.equal(res.status, 413);
  // A body many times the limit, with its Content-Length: the server reads and drops it,
  // so the client gets to read the 413 instead of a connection reset.
  const huge = JSON.stringify({ name: 'huge', description: 'x'.repeat(64 * MAX_BODY) });
  for (let i = 0; i < 3; i++) {
    const h = await fetch(`${srv.url}/v1/agents`, { method: 'POST', body: huge,
      headers: { authorization: `Bearer ${srv.key}`, 'content-type': 'application/json' } });
    assert.equal(h.status, 413);
    assert.equal((await h.json()).error.code, 'payload_too_large');
  }
  const after = (await srv.api('GET', '/v1/agents?limit=500')).json.data.length;
  assert.equal(after, before);
});

// Raw bytes on one connection; resolves everything the server sent until it closed
// (or `wait` ms of silence: a server that keeps the connection open for more).
function rawExchange(port, bytes, wait = 1500) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    let timer;
    const done = (closed) => { clearTimeout(timer); sock.destroy(); resolve({ text: out, closed }); };
    const arm = () => { clearTimeout(timer); timer = setTimeout(() => done(false), wait); };
    sock.on('connect', () => { sock.write(bytes); arm(); });
    sock.on('data', (d) => { out += d.toString('latin1'); arm(); });
    sock.on('end', () => done(true));
    sock.on('error', reject);
  });
}

test('ambiguous body framing (request smuggling) is 400 and closes the connection', async () => {
  // Each request is followed on the same connection by a pipelined GET: a server that
  // framed the body one way while a proxy framed it another would answer that GET (or
  // read it as this request's body). Refused, nothing is created, the connection closes.
  const next = `GET /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.key}\r\n\r\n`;
  const head = `POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.key}\r\n`
    + 'Content-Type: application/json\r\n';
  const body = '{"name":"smuggled"}'; // 19 bytes
  const cases = {
    'two Content-Length, different': `Content-Length: 0\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    'two Content-Length, equal': `Content-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    'Content-Length and chunked': `Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n${body}\r\n0\r\n\r\n`,
    'an unknown transfer coding': `Transfer-Encoding: xchunked\r\n\r\n13\r\n${body}\r\n0\r\n\r\n`,
    'a list of codings': `Transfer-Encoding: gzip, chunked\r\n\r\n13\r\n${body}\r\n0\r\n\r\n`,
    'two Transfer-Encoding': `Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n${body}\r\n0\r\n\r\n`,
    'whitespace before the colon': `Content-Length : ${body.length}\r\n\r\n${body}`,
  };
  for (const [name, rest] of Object.entries(cases)) {
    const r = await rawExchange(srv.port, head + rest + next);
    const statuses = [...r.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['400'], `${name}: ${r.text}`);
    assert.match(r.text, /"code":"invalid_request"/, name);
    assert.ok(r.closed, `${name}: the connection must close`);
  }
  const names = (await srv.api('GET', '/v1/agents?limit=500')).json.data.map((a) => a.name);
  assert.ok(!names.includes('smuggled'), 'no refused request was carried out');
  // Plain framing still works: one Content-Length, or chunked alone.
  const ok = await rawExchange(srv.port, head + `Content-Length: ${body.length}\r\n\r\n${body}` + next, 500);
  assert.deepEqual([...ok.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['201', '200']);
  const chunked = await rawExchange(srv.port, head + 'Transfer-Encoding: Chunked\r\n\r\n'
    + `13\r\n${body.replace('smuggled', 'chunked!')}\r\n0\r\n\r\n` + next, 500);
  assert.deepEqual([...chunked.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['201', '200']);
});

// Bodies are held in memory until the request is answered: only a client with a valid key
// may make the server hold one of up to REFOLD_MAX_BODY (8 MiB by default). Each client
// below announces 8 MiB and sends all of it but the last byte, then waits.
test('clients without a valid key cannot park request bodies in the server\'s memory', { timeout: 60000 }, async () => {
  const big = await startServer(); // the default REFOLD_MAX_BODY, 8 MiB
  try {
    const rss = () => Number(readFileSync(`/proc/${big.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
    await big.api('GET', '/v1/agents'); // warm up the connections and caches
    await sleep(200);
    const size = 8 * 1024 * 1024;
    const heads = [
      `POST /v1/traces HTTP/1.1\r\nHost: x\r\n`, // no key
      `POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rf_notakey\r\n`,
      `POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${revokedKey}\r\n`,
      `POST /v1/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rf_notakey\r\n`, // no such route
      `POST /v1/session HTTP/1.1\r\nHost: x\r\n`, // the sign-in needs no key: 16 KiB at most
    ];
    const before = rss();
    const socks = [];
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < 15; i++) {
      const sock = net.connect(big.port, '127.0.0.1');
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      sock.write(`${heads[i % heads.length]}Content-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
      for (let k = 0; k < 7; k++) sock.write(chunk);
      await new Promise((r) => sock.write(chunk.subarray(1), r));
      socks.push(sock);
    }
    await sleep(1000);
    const grew = rss() - before;
    for (const sock of socks) sock.destroy();
    // Before, each of them held its 8 MiB: 120 MiB in all.
    assert.ok(grew < 32 * 1024 * 1024, `the server grew by ${Math.round(grew / 1048576)} MiB`);

    // The answers are unchanged, and come after the whole body was read and dropped.
    const body = JSON.stringify({ traces: [], pad: 'x'.repeat(4 * 1024 * 1024) });
    let r = await big.api('POST', '/v1/traces', undefined, { key: 'rf_notakey', raw: body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'unauthorized');
    r = await big.api('POST', '/v1/nope', undefined, { raw: body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 404);
    r = await big.api('PUT', '/v1/agents', undefined, { raw: body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 405);
    r = await big.api('POST', '/v1/session', undefined, { key: null, raw: body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.match(r.json.error.message, /larger than 16384 bytes/);
    r = await big.api('POST', '/v1/session', { api_key: big.key }, { key: null });
    assert.equal(r.status, 204);
    // With a valid key a large body is read as before.
    const traces = Array.from({ length: 4 }, (_, i) => ({ agent_id: 'agt_missing', input: 'i'.repeat(1024 * 1024), output: `o${i}` }));
    r = await big.api('POST', '/v1/traces', { traces });
    assert.equal(r.status, 201, r.text.slice(0, 300)); // a batch: each item is rejected on its own
    assert.equal(r.json.summary.rejected, 4);
  } finally {
    await big.stop();
    big.cleanup();
  }
});

test('other content types are 415', async () => {
  const r = await srv.api('POST', '/v1/agents', undefined, { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 415);
  assert.equal(r.json.error.code, 'unsupported_media_type');
  const ok = await srv.api('POST', '/v1/agents', undefined, { raw: '{"name":"ct"}', headers: { 'content-type': 'application/json; charset=utf-8' } });
  assert.equal(ok.status, 201);
});

test('wrong methods are 405 with Allow; unknown paths are 404', async () => {
  const cases = [['PUT', '/v1/agents'], ['POST', `/v1/agents/${ids.agent}`], ['DELETE', '/v1/traces'],
    ['PATCH', '/v1/evals'], ['GET', '/v1/feedback'], ['POST', '/healthz'], ['PUT', '/v1/best-practices']];
  for (const [m, p] of cases) {
    const r = await srv.api(m, p, m === 'GET' ? undefined : {});
    assert.equal(r.status, 405, `${m} ${p}`);
    assert.equal(r.json.error.code, 'method_not_allowed');
    assert.ok(r.headers.get('allow'), `${m} ${p}`);
  }
  const r = await srv.api('GET', '/v1/nothing');
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
});

test('HEAD answers like GET without the body, except on the event stream', async () => {
  const auth = { authorization: `Bearer ${srv.key}` };
  for (const [p, headers] of [['/healthz', {}], [`/v1/agents/${ids.agent}`, auth], ['/v1/traces?limit=1', auth]]) {
    const get = await fetch(`${srv.url}${p}`, { headers });
    const body = await get.text();
    const head = await fetch(`${srv.url}${p}`, { method: 'HEAD', headers });
    assert.equal(head.status, 200, p);
    assert.equal(await head.text(), '', p);
    assert.match(head.headers.get('content-type'), /^application\/json/, p);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)), p);
  }
  const anon = await fetch(`${srv.url}/v1/agents/${ids.agent}`, { method: 'HEAD' });
  assert.equal(anon.status, 401);
  const missing = await fetch(`${srv.url}/v1/agents/agent_nope`, { method: 'HEAD', headers: auth });
  assert.equal(missing.status, 404);
  const job = await fetch(`${srv.url}/v1/jobs/job_nope/events`, { method: 'HEAD', headers: auth });
  assert.equal(job.status, 405);
  assert.equal(job.headers.get('allow'), 'GET');
  const post = await srv.api('POST', '/healthz', {});
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  const put = await srv.api('PUT', `/v1/agents/${ids.agent}`, {});
  assert.equal(put.headers.get('allow'), 'GET, HEAD, PATCH, DELETE');
});

test('every response carries X-Request-Id, and errors repeat it', async () => {
  const ok = await srv.api('GET', '/v1/agents');
  assert.match(ok.headers.get('x-request-id'), /^req_[0-9A-Z]{26}$/);
  const bad = await srv.api('GET', '/v1/agents?limit=0');
  assert.equal(bad.json.error.request_id, bad.headers.get('x-request-id'));
  const ui = await fetch(`${srv.url}/`);
  assert.ok(ui.headers.get('x-request-id'));
});

test('every response says X-Content-Type-Options: nosniff', async () => {
  // Bodies quote what clients sent (error messages echo the path): a browser must take
  // them for the JSON or text they say they are, never sniff them into HTML.
  const job = await srv.api('POST', `/v1/agents/${ids.agent}/improve-prompt`, {});
  assert.equal(job.status, 202);
  const responses = [
    await srv.api('GET', '/v1/agents'),
    await srv.api('GET', '/v1/agents/<script>alert(1)</script>'),
    await srv.api('GET', '/v1/agents', undefined, { key: null }),
    await srv.api('POST', '/v1/agents', undefined, { raw: 'x'.repeat(MAX_BODY + 1), headers: { 'content-type': 'application/json' } }),
    await srv.api('PUT', '/v1/agents', {}),
    await srv.api('GET', `/v1/jobs/${job.json.id}/events`, undefined, { headers: { accept: 'text/event-stream' } }),
    await srv.api('GET', '/healthz'),
    await srv.api('GET', '/metrics'),
    await srv.api('GET', '/'),
    await srv.api('GET', '/ui/app.js'),
    await srv.api('GET', '/ui/nope.js'),
  ];
  for (const r of responses) assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `${r.status} ${r.text.slice(0, 80)}`);
  assert.equal(responses[5].headers.get('content-type'), 'text/event-stream');
});

test('cookie sessions: sign in, X-Requested-With on writes, sign out, revocation', async () => {
  const bad = await fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: 'rf_nope' }) });
  assert.equal(bad.status, 401);
  const res = await fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: srv.key }) });
  assert.equal(res.status, 204);
  const setCookie = res.headers.get('set-cookie');
  assert.match(setCookie, /refold_session=rf_[a-z0-9]+/);
  assert.doesNotMatch(setCookie, /Secure/i, 'plain HTTP: a Secure cookie would never come back');
  // Behind a TLS-terminating proxy that says so, the cookie is Secure.
  const proxied = await fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ api_key: srv.key }) });
  assert.match(proxied.headers.get('set-cookie'), /; Secure/);
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Strict/);
  assert.ok(!setCookie.includes(srv.key), 'the cookie must not hold the API key');
  const cookie = setCookie.split(';')[0];
  let r = await srv.api('GET', '/v1/agents', undefined, { key: null, headers: { cookie } });
  assert.equal(r.status, 200);
  r = await srv.api('POST', '/v1/agents', { name: 'cookie-made' }, { key: null, headers: { cookie } });
  assert.equal(r.status, 401);
  r = await srv.api('POST', '/v1/agents', { name: 'cookie-made' }, { key: null, headers: { cookie, 'x-requested-with': 'refold' } });
  assert.equal(r.status, 201);
  const out = await fetch(`${srv.url}/v1/session`, { method: 'DELETE', headers: { cookie } });
  assert.equal(out.status, 204);
  assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
  r = await srv.api('GET', '/v1/agents', undefined, { key: null, headers: { cookie } });
  assert.equal(r.status, 401);

  // Revoking the key that signed in ends its sessions.
  const made = await run(['key', 'create', '--db', srv.db, '--name', 'browser'], { env: srv.env });
  const browserKey = made.stdout.trim();
  const signIn = await fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: browserKey }) });
  const cookie2 = signIn.headers.get('set-cookie').split(';')[0];
  assert.equal((await srv.api('GET', '/v1/agents', undefined, { key: null, headers: { cookie: cookie2 } })).status, 200);
  const id = (await run(['key', 'list', '--db', srv.db], { env: srv.env })).stdout.split('\n').find((l) => l.includes('\tbrowser\t')).split('\t')[0];
  assert.equal((await run(['key', 'revoke', id, '--db', srv.db], { env: srv.env })).code, 0);
  assert.equal((await srv.api('GET', '/v1/agents', undefined, { key: null, headers: { cookie: cookie2 } })).status, 401);
});

test('expired sessions are deleted when someone signs in, not only when someone signs out', async () => {
  const signIn = () => fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: srv.key }) });
  for (let i = 0; i < 3; i++) assert.equal((await signIn()).status, 204);
  // Browsers rarely sign out: every session so far has run out its 7 days unattended.
  await sql(srv.db, 'UPDATE sessions SET expires_at = 1');
  const res = await signIn();
  assert.equal(res.status, 204);
  assert.equal(await sql(srv.db, 'SELECT count(*) FROM sessions'), '1', 'only the new session is left');
  const cookie = res.headers.get('set-cookie').split(';')[0];
  assert.equal((await srv.api('GET', '/v1/agents', undefined, { key: null, headers: { cookie } })).status, 200);
});

test('/healthz and /metrics need no key', async () => {
  const h = await srv.api('GET', '/healthz', undefined, { key: null });
  assert.equal(h.status, 200);
  assert.equal(h.json.db, 'ok');
  const m = await fetch(`${srv.url}/metrics`);
  assert.equal(m.status, 200);
  const text = await m.text();
  assert.match(text, /refold_http_requests_total\{method="GET",route="\/v1\/agents",status="200"\} \d+/);
  assert.match(text, /refold_http_requests_total\{method="POST",route="\/v1\/agents",status="401"\} \d+/);
  assert.match(text, /refold_http_request_duration_seconds_bucket\{method="GET",route="\/v1\/agents",le="\+Inf"\} \d+/);
});
