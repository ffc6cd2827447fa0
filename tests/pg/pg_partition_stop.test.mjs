// SIGTERM to nodes cut off from PostgreSQL by a network that stops delivering packets: the
// stop is bounded. The idle worker, the monitor (heartbeat, sweeper), a worker releasing its
// job and an HTTP handler all wait on queries that get no answer; such a node used to
// wait for them as long as the cut lasted (TCP gives up after ~15 minutes). Now a node that
// has not stopped REFOLD_SHUTDOWN_GRACE_MS + 15 s after the signal exits anyway, status 1,
// saying so; its job, fenced, is requeued by another node once its lease runs out and runs
// to completion once.
//
// The cut is pg_lib.mjs's proxy between both nodes and the database.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../integration/lib.mjs';
import { enqueueOk, readRuns } from '../integration/jobs_lib.mjs';
import { requirePg, createDatabase, dropDatabaseSync, startNode, startWorkerNode, psql, startProxy, jobRow } from './pg_lib.mjs';

const GRACE_MS = 1000;
const STOP_BOUND_MS = 15000; // the fixed part of the bound (cmd/shutdown.c)
const LEASE_MS = 3000;
const base = requirePg();
const db = await createDatabase(base);
const shared = mkdtempSync(join(tmpdir(), 'refold-pgs-'));
const runLog = join(shared, 'runs.jsonl');
const ENV = {
  REFOLD_LEASE_MS: String(LEASE_MS), REFOLD_HEARTBEAT_MS: '500', REFOLD_SHUTDOWN_GRACE_MS: String(GRACE_MS),
};

const proxy = await startProxy(new URL(db));
const viaProxy = proxy.url;
const procs = [];
after(async () => {
  for (const p of procs) if (p.exitCode === null && !p.signalCode) p.kill('SIGKILL');
  proxy.heal();
  proxy.close();
  rmSync(shared, { recursive: true, force: true });
  dropDatabaseSync(base, db);
});

const row = (id) => jobRow(db, id);

const within = (promise, ms) => Promise.race([promise, sleep(ms).then(() => 'still running')]);

test('nodes cut off from the database finish a SIGTERM within the grace period + 15 s', { timeout: 120000 }, async () => {
  // S: a serve node with one worker, W: a worker node, H: a serve node without workers and
  // one HTTP thread; all reach the database through the proxy.
  const s = await startNode(viaProxy, { init: true, runLog, env: { ...ENV, REFOLD_WORKERS: '1' } });
  procs.push(s.child);
  const h = await startNode(viaProxy, { key: s.key, env: { ...ENV, REFOLD_WORKERS: '0', REFOLD_HTTP_THREADS: '1' } });
  procs.push(h.child);
  assert.equal((await h.api('GET', '/v1/agents')).status, 200); // its thread's connection is open
  const w = await startWorkerNode(viaProxy, { env: ENV, workers: 1, runLog });
  procs.push(w.child);

  const job = await enqueueOk(s, { sleep_ms: 3000, log: true });
  for (const until = Date.now() + 10000; (await row(job.id)).status !== 'running';) {
    assert.ok(Date.now() < until, 'the job started');
    await sleep(50);
  }
  // An event stream open on S: its end is part of S's stop.
  const stream = await fetch(`${s.url}/v1/jobs/${job.id}/events`, { headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(stream.status, 200);
  stream.body.cancel().catch(() => {});

  proxy.cut = true;
  // A request in flight on H: its handler waits in a query, and H's stop for the handler.
  const inflight = h.api('GET', '/v1/agents').catch((e) => e);
  await sleep(300); // the idle worker, the monitors and the event watcher are now in queries
  const t0 = Date.now();
  for (const p of [s.child, w.child, h.child]) p.kill('SIGTERM');
  const bound = GRACE_MS + STOP_BOUND_MS + 5000;
  const [rs, rw, rh] = await Promise.all([within(s.exited, bound), within(w.exited, bound), within(h.exited, bound)]);
  const took = Date.now() - t0;
  assert.notEqual(rs, 'still running', `refold serve did not stop within ${bound} ms of SIGTERM:\n${s.logs.slice(-2000)}`);
  assert.notEqual(rw, 'still running', `refold worker did not stop within ${bound} ms of SIGTERM:\n${w.logs.slice(-2000)}`);
  assert.notEqual(rh, 'still running', `refold serve (no workers) did not stop within ${bound} ms of SIGTERM:\n${h.logs.slice(-2000)}`);
  assert.ok(took >= GRACE_MS + STOP_BOUND_MS - 500, `stopped after ${took} ms: before the bound?`);
  // Status 1: the stop was not clean (a supervisor shows it); the log says why.
  assert.deepEqual(rs, { code: 1, signal: null }, s.logs.slice(-2000));
  assert.deepEqual(rw, { code: 1, signal: null }, w.logs.slice(-2000));
  assert.deepEqual(rh, { code: 1, signal: null }, h.logs.slice(-2000));
  const stuck = /level=error msg="shutdown did not finish in time: exiting without waiting for threads stuck in database calls" waiting_for="([^"]+)"/;
  assert.deepEqual([s.logs, w.logs, h.logs].map((l) => (l.match(stuck) || [])[1]), ['workers', 'workers', 'http server']);
  assert.ok((await inflight) instanceof Error, 'the request in flight got no answer');

  // The network heals; a node that reaches the database requeues the job once its lease
  // ran out and runs it: one run completes, and it did not overlap the cut-off one.
  proxy.heal();
  const v = await startWorkerNode(db, { env: ENV, workers: 1, runLog });
  procs.push(v.child);
  for (const until = Date.now() + 30000; (await row(job.id)).status !== 'completed';) {
    assert.ok(Date.now() < until, `the job is still ${JSON.stringify(await row(job.id))}`);
    await sleep(100);
  }
  await v.stop();
  const runs = readRuns(runLog).filter((r) => r.job === job.id).sort((x, y) => x.start_us - y.start_us);
  assert.equal(runs.filter((r) => r.outcome === 'ok').length, 1, JSON.stringify(runs));
  assert.equal(runs.at(-1).pid, v.pid, JSON.stringify(runs));
  for (let i = 1; i < runs.length; i++)
    assert.ok(runs[i].start_us >= runs[i - 1].end_us, `runs overlap: ${JSON.stringify(runs)}`);
  assert.equal(await psql(db, `SELECT COUNT(*) FROM job_events WHERE job_id = '${job.id}' AND type = 'completed'`), '1');
});
