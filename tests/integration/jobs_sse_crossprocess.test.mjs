// Events written by another process - a `refold worker` on the same SQLite file - reach
// the server's SSE subscribers live, through the server's single event watcher (no
// per-client polling).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startJobsServer, enqueueOk, sseOnce, storedEvents, startWorker, metric } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_WORKERS: '0', REFOLD_SSE_POLL_MS: '50' });
const workers = [];
after(async () => {
  for (const w of workers) await w.stop();
  await srv.stop();
  srv.cleanup();
});

test('a worker process\'s events stream live to subscribers of the server', async () => {
  workers.push(await startWorker(srv));
  const job = await enqueueOk(srv, { sleep_ms: 1500, progress: 5 });
  const arrivals = [];
  const clients = Array.from({ length: 10 }, () => sseOnce({
    url: srv.url, key: srv.key, id: job.id,
    stopAfter: (ev) => { arrivals.push([ev.seq, Date.now(), ev.data.t_us]); return false; },
  }));
  const results = await Promise.all(clients);
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(stored.map((e) => e.type), ['progress', 'progress', 'progress', 'progress', 'progress', 'progress', 'completed']);
  for (const r of results) {
    assert.equal(r.ended, 'end');
    assert.deepEqual(r.events.map((e) => e.seq), stored.map((e) => e.seq));
  }
  // Live: each progress event arrived soon after the worker wrote it, not all at the end.
  const lags = arrivals.filter(([, , t]) => t).map(([, at, t]) => at - t / 1000);
  assert.equal(lags.length, 50);
  assert.ok(Math.max(...lags) < 600, `worst event lag ${Math.max(...lags)} ms`);
  const spread = Math.max(...arrivals.map((a) => a[1])) - Math.min(...arrivals.map((a) => a[1]));
  assert.ok(spread > 900, `events arrived over ${spread} ms`);
  assert.equal(await metric(srv, 'refold_sse_streams'), 0);
});
