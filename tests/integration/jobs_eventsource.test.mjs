// Issue 3, test 9: an independent client, the npm `eventsource` package (WHATWG
// EventSource for Node), signed in with the web UI's session cookie, follows a job to its
// terminal event; when the server restarts mid-stream it reconnects by itself after the
// `retry:` delay, sending Last-Event-ID, and misses nothing and repeats nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource'; // tests/node_modules (npm install --prefix tests)
import { sleep, run } from './lib.mjs';
import { startJobsServer, enqueueOk, storedEvents, waitJob, assertContiguous } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: '200' });
after(async () => { await srv.stop(); srv.cleanup(); });

test('9: EventSource follows a job across a server restart and resumes with Last-Event-ID', { timeout: 60000 }, async () => {
  const session = await srv.api('POST', '/v1/session', { api_key: srv.key }, { key: null });
  assert.equal(session.status, 204);
  const cookie = session.headers.get('set-cookie').split(';')[0];
  assert.match(cookie, /^refold_session=/);

  // Long enough (3 s after the stop condition below) that a loaded machine still stops the
  // server while the job runs: the test is about a stream that spans the restart.
  const job = await enqueueOk(srv, { sleep_ms: 4000, progress: 8 });
  const port = srv.port;
  const requests = []; // the Last-Event-ID each (re)connection sent
  const statuses = []; // the HTTP status each (re)connection got
  const received = [];
  let opens = 0;
  const es = new EventSource(`${srv.url}/v1/jobs/${job.id}/events`, {
    fetch: async (input, init) => {
      requests.push(init.headers['Last-Event-ID'] ?? null);
      const res = await fetch(input, { ...init, headers: { ...init.headers, cookie } });
      statuses.push(res.status);
      return res;
    },
  });
  const seen = () => `events ${JSON.stringify(received.map((r) => r.seq))}, HTTP statuses ${JSON.stringify(statuses)}`;
  // Every wait below ends by a deadline or as soon as the EventSource gave up (CLOSED:
  // a 204, a non-200, a wrong content type), with what it saw; and the EventSource is
  // closed whatever happens, or its reconnections would keep the test process alive.
  const finished = new Promise((resolve, reject) => {
    const on = (type) => es.addEventListener(type, (e) => {
      received.push({ seq: Number(e.lastEventId), type, data: JSON.parse(e.data) });
      if (['completed', 'failed', 'cancelled'].includes(type)) { es.close(); resolve(); }
    });
    ['progress', 'log', 'retry', 'completed', 'failed', 'cancelled'].forEach(on);
    es.onopen = () => { opens++; };
    es.onerror = (e) => {
      if (es.readyState === EventSource.CLOSED) reject(new Error(`the EventSource gave up (${e.message}); ${seen()}`));
    };
    setTimeout(() => reject(new Error(`no terminal event in 50 s; ${seen()}`)), 50000).unref();
  });
  finished.catch(() => {}); // awaited below; a test that failed earlier leaves it unawaited

  let beforeRestart;
  try {
    // Let a few events through, then restart the server on the same port mid-stream.
    await waitJob(srv, job.id, (j) => j.progress >= 20, 10000, 'a few events');
    for (const deadline = Date.now() + 10000; received.length < 2 && es.readyState !== EventSource.CLOSED && Date.now() < deadline;)
      await sleep(10);
    assert.ok(received.length >= 2, `the EventSource received 2 events within 10 s of the job's progress reaching 20 (readyState ${es.readyState}); ${seen()}`);
    await srv.stop();
    beforeRestart = received.length;
    await srv.start(['--listen', `127.0.0.1:${port}`]);
    await finished;
  } finally {
    es.close();
  }

  assert.ok(opens >= 2, `EventSource reconnected by itself (${opens} opens)`);
  assert.equal(requests[0], null, 'the first request had no Last-Event-ID');
  const resumedFrom = requests.slice(1).find((h) => h !== null);
  assert.equal(Number(resumedFrom), received[beforeRestart - 1].seq, 'it resumed from the last event it saw');
  const stored = await storedEvents(srv, job.id);
  assertContiguous(stored, assert);
  assert.deepEqual(received.map((e) => e.seq), stored.map((e) => e.seq), 'no gap, no duplicate');
  assert.deepEqual(received.map((e) => e.data), stored.map((e) => e.data));
  assert.equal(received[received.length - 1].type, 'completed');
  assert.ok(received.some((e) => e.type === 'log' && /released/.test(e.data.message)), 'it spanned the restart');
});

test('9: without a session the stream is refused; a finished job answers 204 so EventSource stops', async () => {
  const job = await enqueueOk(srv, {});
  const r = await fetch(`${srv.url}/v1/jobs/${job.id}/events`, { headers: { accept: 'text/event-stream' } });
  assert.equal(r.status, 401);
  await waitJob(srv, job.id, (j) => j.status === 'completed', 10000, 'completed');
  const last = (await storedEvents(srv, job.id)).at(-1).seq;
  const done = await srv.api('GET', `/v1/jobs/${job.id}/events`, undefined, { headers: { 'last-event-id': String(last) } });
  assert.equal(done.status, 204);
  let errors = 0, opened = 0;
  const es = new EventSource(`${srv.url}/v1/jobs/${job.id}/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${srv.key}`, 'last-event-id': String(last) } }),
  });
  es.onerror = () => { errors++; };
  es.onopen = () => { opened++; };
  try {
    // The 204 may take a while on a loaded machine; an EventSource that opened, or that
    // keeps reconnecting, never reaches CLOSED.
    for (const deadline = Date.now() + 10000; es.readyState !== EventSource.CLOSED && Date.now() < deadline;) await sleep(20);
    assert.equal(es.readyState, EventSource.CLOSED, 'a 204 stops the EventSource');
    assert.equal(opened, 0);
    assert.ok(errors >= 1);
  } finally {
    es.close(); // one still reconnecting would keep the test process alive
  }
});

test('signing out or revoking the key ends an open stream: no more of the job\'s events', { timeout: 60000 }, async () => {
  // Follow a long job with a session cookie (then sign out) and with a key (then revoke it).
  // The streams check their credential before events go out, at most once a second, and at
  // each keep-alive: they end within a second or so, long before the job does.
  const session = await srv.api('POST', '/v1/session', { api_key: srv.key }, { key: null });
  const cookie = session.headers.get('set-cookie').split(';')[0];
  const made = await run(['key', 'create', '--db', srv.db, '--name', 'leaving'], { env: srv.env });
  const leaving = made.stdout.trim();
  // Long enough that the job cannot finish before both streams had their chance to end,
  // even when the two CLI runs below are slow on a loaded machine.
  const job = await enqueueOk(srv, { sleep_ms: 12000, progress: 60 });
  const follow = async (headers) => {
    const res = await fetch(`${srv.url}/v1/jobs/${job.id}/events`, { headers: { accept: 'text/event-stream', ...headers } });
    assert.equal(res.status, 200);
    const got = { events: 0, text: '', ended: null };
    (async () => {
      for await (const chunk of res.body) {
        const s = Buffer.from(chunk).toString();
        got.text += s;
        got.events += (s.match(/^event: /gm) || []).length;
      }
      got.closedAt = Date.now();
    })();
    return got;
  };
  const byCookie = await follow({ cookie });
  const byKey = await follow({ authorization: `Bearer ${leaving}` });
  for (const deadline = Date.now() + 10000; (byCookie.events < 2 || byKey.events < 2) && Date.now() < deadline;) await sleep(20);
  assert.ok(byCookie.events >= 2 && byKey.events >= 2,
    `both streams delivered 2 events within 10 s (cookie ${byCookie.events}, key ${byKey.events})`);

  const out = await fetch(`${srv.url}/v1/session`, { method: 'DELETE', headers: { cookie } });
  assert.equal(out.status, 204);
  byCookie.ended = Date.now();
  const id = (await run(['key', 'list', '--db', srv.db], { env: srv.env })).stdout.split('\n')
    .find((l) => l.includes('\tleaving\t')).split('\t')[0];
  assert.equal((await run(['key', 'revoke', id, '--db', srv.db], { env: srv.env })).code, 0);
  byKey.ended = Date.now();

  while ((!byCookie.closedAt || !byKey.closedAt) && Date.now() - byKey.ended < 5000) await sleep(20);
  for (const [who, got] of [['signed out', byCookie], ['revoked', byKey]]) {
    assert.ok(got.closedAt, `${who}: the stream is still open`);
    // About a second here; the bound leaves room for a loaded machine and stays far below
    // the job's 12 s (a stream nothing ends runs until the job's completed event).
    assert.ok(got.closedAt - got.ended < 4000, `${who}: closed ${got.closedAt - got.ended} ms later`);
    assert.match(got.text, /: signed out/);
    assert.ok(!/event: completed/.test(got.text), `${who}: the result went out`);
  }
  await waitJob(srv, job.id, (j) => j.status === 'completed', 30000, 'completed');
});
