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
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 5 });
  const arrivals = [];
  const clients = Array.from({ length: 10 }, (_, c) => sseOnce({
    url: srv.url, key: srv.key, id: job.id,
    stopAfter: (ev) => { arrivals.push([ev.seq, Date.now(), ev.data.t_us, c, ev.type === 'progress' ? ev.data.i : 0]); return false; },
  }));
  const results = await Promise.all(clients);
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(stored.map((e) => e.type), ['progress', 'progress', 'progress', 'progress', 'progress', 'progress', 'completed']);
  for (const r of results) {
    assert.equal(r.ended, 'end');
    assert.deepEqual(r.events.map((e) => e.seq), stored.map((e) => e.seq));
    // Each event's time is its row's, as written by the worker process (on PostgreSQL this
    // is the LISTEN/NOTIFY path: the notification wakes the hub, which reads the rows).
    assert.deepEqual(r.events.map((e) => e.data.created_at), stored.map((e) => e.created_at));
  }
  // Live: the progress events arrived soon after the worker wrote them, not all at the end.
  // Judged by the median lag (a watcher polling every 50 ms gives tens of ms) and by each
  // client having the first four before the job ended (0.5 s apart, it ran 3 s), not by
  // the worst lag: on a loaded machine one event of fifty could come half a second late.
  const lags = arrivals.filter(([, , t]) => t).map(([, at, t]) => at - t / 1000).sort((x, y) => x - y);
  assert.equal(lags.length, 50);
  const median = lags[25];
  assert.ok(median < 300, `median event lag ${median.toFixed(0)} ms: ${lags.map((x) => x.toFixed(0))}`);
  const endedAt = stored.at(-1).data.result.end_us / 1000;
  for (let c = 0; c < clients.length; c++) {
    const early = arrivals.filter((a) => a[3] === c && a[4] >= 1 && a[4] <= 4);
    assert.equal(early.length, 4);
    for (const [, at, , , i] of early)
      assert.ok(at < endedAt, `client ${c}: progress ${i} arrived ${(at - endedAt).toFixed(0)} ms after the job ended`);
  }
  const spread = Math.max(...arrivals.map((a) => a[1])) - Math.min(...arrivals.map((a) => a[1]));
  assert.ok(spread > 1500, `events arrived over ${spread} ms`);
  assert.equal(await metric(srv, 'refold_sse_streams'), 0);
});
