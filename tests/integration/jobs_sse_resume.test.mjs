// Issue 3, test 8: a client that drops after a random event k and reconnects with
// Last-Event-ID: k (or ?last_event_id=k) receives exactly the remaining events - 100
// trials, 0 gaps, 0 duplicates - including across a server restart. The client is a small
// independent SSE parser (jobs_lib.mjs sseOnce), not the server's code.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { sleep } from './lib.mjs';
import { startJobsServer, enqueueOk, storedEvents, sseOnce, waitTerminal, waitJob } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_WORKERS: '12', REFOLD_SHUTDOWN_GRACE_MS: '200' });
after(async () => { await srv.stop(); srv.cleanup(); });

const TERMINAL = ['completed', 'failed', 'cancelled'];
const rnd = (n) => Math.floor(Math.random() * n);

// Follow a job's stream from `from` until its terminal event, reconnecting with the last
// seen id whenever the stream ends early (server restart) or cannot connect yet.
async function follow(id, from, { viaQuery = false } = {}) {
  const got = [];
  let last = from;
  for (let tries = 0; tries < 200; tries++) {
    const r = await (viaQuery ? sseQuery(id, last) : sseOnce({ url: srv.url, key: srv.key, id, lastEventId: last }));
    got.push(...r.events);
    if (r.events.length) last = r.events[r.events.length - 1].seq;
    if (got.length && TERMINAL.includes(got[got.length - 1].type)) return got;
    if (r.ended === 'status' && r.status === 204) return got;
    await sleep(r.ended === 'error' || r.status >= 500 ? 100 : 20);
  }
  throw new Error(`could not follow ${id} to its end`);
}

// The same through ?last_event_id= instead of the header.
function sseQuery(id, last) {
  return new Promise((resolve) => {
    const req = http.get(`${srv.url}/v1/jobs/${id}/events?last_event_id=${last}`,
      { headers: { authorization: `Bearer ${srv.key}` }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          const events = [];
          for (const block of text.split('\n\n')) {
            const id2 = block.match(/^id: (\d+)$/m), ev = block.match(/^event: (.*)$/m), data = block.match(/^data: (.*)$/m);
            if (id2 && data) events.push({ seq: Number(id2[1]), type: ev[1], data: JSON.parse(data[1]) });
          }
          resolve({ events, ended: res.statusCode === 200 ? 'end' : 'status', status: res.statusCode });
        });
      });
    req.on('error', () => resolve({ events: [], ended: 'error', status: 0 }));
  });
}

// Drop after event k (first half), resume from k and compare with what is stored (second).
async function dropAt(i) {
  const n = 6 + rnd(10);
  const job = await enqueueOk(srv, { sleep_ms: 40 * n, progress: n });
  const k = 1 + rnd(n - 1);
  const first = await sseOnce({ url: srv.url, key: srv.key, id: job.id, stopAfter: (ev) => ev.seq >= k });
  assert.equal(first.ended, 'aborted', `trial ${i}: the first connection saw event ${k}`);
  return { i, job, k, first };
}

async function resume({ i, job, k, first }) {
  const rest = await follow(job.id, k, { viaQuery: i % 2 === 1 });
  const all = [...first.events, ...rest];
  const seqs = all.map((e) => e.seq);
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(seqs, stored.map((e) => e.seq), `trial ${i}: gap or duplicate after ${k}: ${seqs}`);
  assert.deepEqual(all.map((e) => [e.type, e.data]), stored.map((e) => [e.type, e.data]), `trial ${i}: content`);
  assert.ok(TERMINAL.includes(all[all.length - 1].type));
  return seqs.length;
}

test('8: 80 drop-and-resume trials on a running server', { timeout: 120000 }, async () => {
  let done = 0;
  for (let batch = 0; batch < 4; batch++) {
    const results = await Promise.all(Array.from({ length: 20 }, async (_, j) => {
      const d = await dropAt(batch * 20 + j);
      await sleep(rnd(150));
      return resume(d);
    }));
    done += results.length;
  }
  assert.equal(done, 80);
});

test('8: 20 trials resumed across a server restart', { timeout: 120000 }, async () => {
  const dropped = await Promise.all(Array.from({ length: 20 }, (_, i) => dropAt(80 + i)));
  // Also clients that stay connected through the restart and resume by themselves.
  const jobs = await Promise.all(Array.from({ length: 5 }, () => enqueueOk(srv, { sleep_ms: 3000, progress: 15 })));
  const stayers = jobs.map((j) => follow(j.id, 0));
  // The restart must interrupt all five: wait until each runs (not a fixed 400 ms, after
  // which a loaded machine had not always claimed them); 3 s each leaves room to stop.
  for (const j of jobs) await waitJob(srv, j.id, (x) => x.status === 'running', 10000, 'running');
  await srv.restart();
  const results = await Promise.all(dropped.map(resume));
  assert.equal(results.length, 20);
  for (const [i, p] of stayers.entries()) {
    const got = await p;
    const stored = await storedEvents(srv, jobs[i].id);
    assert.deepEqual(got.map((e) => e.seq), stored.map((e) => e.seq), 'connected through the restart');
    assert.equal((await waitTerminal(srv, jobs[i].id)).status, 'completed');
    assert.ok(stored.some((e) => e.type === 'log' && /released/.test(e.data.message)),
      'the restart interrupted it (released, then run again)');
  }
});

test('a Last-Event-ID past the last event counts as the last: that stream and the others of the job go on', { timeout: 60000 }, async () => {
  // 3 s: the stream that is ahead must open while the job runs, however late this test
  // sees it running on a loaded machine.
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 6 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  // The first follower of the job claims an event the job has not reached. It is the
  // first once it is open: the server subscribes a stream before it answers 200.
  let opened;
  const open = new Promise((resolve) => { opened = resolve; });
  const ahead = sseOnce({ url: srv.url, key: srv.key, id: job.id, lastEventId: 1000, onOpen: () => opened('open') });
  const state = await Promise.race([
    open,
    ahead.then((r) => `ended before it opened (${r.ended}, HTTP ${r.status})`),
    new Promise((resolve) => setTimeout(resolve, 10000, 'not open after 10 s').unref()),
  ]);
  assert.equal(state, 'open', 'the stream that is ahead opened before the next one of the job connects');
  const fresh = await sseOnce({ url: srv.url, key: srv.key, id: job.id });
  assert.equal(fresh.status, 200, 'a later stream of the same job is served');
  const viaQuery = await follow(job.id, 0, { viaQuery: true });
  const first = await ahead;
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(fresh.events.map((e) => e.seq), stored.map((e) => e.seq));
  assert.deepEqual(viaQuery.map((e) => e.seq), stored.map((e) => e.seq));
  // The stream that was ahead carries the events that came after it connected, to the end.
  assert.equal(first.ended, 'end');
  assert.ok(first.events.length > 0);
  assert.equal(first.events[first.events.length - 1].type, 'completed');
  assert.deepEqual(first.events.map((e) => e.seq), stored.slice(stored.length - first.events.length).map((e) => e.seq));
  // A finished job with nothing after such an id: 204, like any id at its end.
  const done = await sseOnce({ url: srv.url, key: srv.key, id: job.id, lastEventId: 1000 });
  assert.equal(done.status, 204);
});

test('every event\'s data carries created_at, the time its row was written: the same live, resumed and listed', { timeout: 60000 }, async () => {
  // Two attempts (a transient failure, then success): log, progress, retry, completed.
  const job = await enqueueOk(srv, { fail: 'transient', fail_attempts: 1, sleep_ms: 1200, progress: 4, log: true });
  const receivedAt = [];
  const live = sseOnce({ url: srv.url, key: srv.key, id: job.id, stopAfter: () => { receivedAt.push(Date.now()); return false; } });
  // Another client drops after event 3 and resumes with Last-Event-ID while the job runs.
  const first = await sseOnce({ url: srv.url, key: srv.key, id: job.id, stopAfter: (ev) => ev.seq >= 3 });
  const rest = await follow(job.id, 3);
  const { events, ended } = await live;
  assert.equal(ended, 'end');
  const done = await waitTerminal(srv, job.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 2);
  const stored = await storedEvents(srv, job.id);
  const replay = await sseOnce({ url: srv.url, key: srv.key, id: job.id, lastEventId: 0 }); // all from the database
  assert.deepEqual(events.map((e) => e.type).filter((t, i, a) => t !== a[i - 1]),
    ['log', 'progress', 'retry', 'log', 'progress', 'completed']);

  const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
  let prev = 0;
  for (const [i, e] of events.entries()) {
    const at = e.data.created_at;
    assert.match(at ?? '', RFC3339_MS, `event ${e.seq} (${e.type}): created_at ${at}`);
    const t = Date.parse(at);
    assert.ok(t >= Date.parse(done.created_at) && t <= Date.parse(done.finished_at),
      `event ${e.seq} at ${at}: outside the job's run ${done.created_at} .. ${done.finished_at}`);
    assert.ok(t >= prev, `event ${e.seq} at ${at} is earlier than the one before it`);
    assert.ok(t <= receivedAt[i] + 1, `event ${e.seq} at ${at}, received at ${new Date(receivedAt[i]).toISOString()}`);
    if (e.data.t_us) {
      // test_sleep read its clock just before it wrote this event, and again before each
      // later one, after this one's write returned: the row's time lies in between (a
      // bracket, not a fixed 2 s, which a write waiting on a loaded machine could pass).
      const ms = e.data.t_us / 1000;
      const next = events.slice(i + 1).find((x) => x.data.t_us);
      assert.ok(t >= Math.floor(ms) && (!next || t <= next.data.t_us / 1000),
        `progress ${e.seq} at ${at}, written at ${new Date(ms).toISOString()}, the next at ${next ? new Date(next.data.t_us / 1000).toISOString() : '-'}`);
    }
    prev = t;
    assert.equal(stored[i].created_at, at, `event ${e.seq}: the listed created_at`);
  }
  // The same data, times included, whichever way the events were read.
  assert.deepEqual([...first.events, ...rest], events, 'dropped and resumed with Last-Event-ID');
  assert.deepEqual(replay.events, events, 'replayed from the database after the end');
  assert.deepEqual(stored.map(({ seq, type, data }) => ({ seq, type, data })), events, 'the JSON list');
});
