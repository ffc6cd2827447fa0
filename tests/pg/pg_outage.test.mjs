// A database outage longer than the lease (issue 8): jobs that are running when the
// database goes away cannot heartbeat, and once their lease has run out another node's
// sweeper may requeue them. So each node stops such a job itself when its lease runs out
// (no second run starts before the first one stopped), and once the database is back the
// job runs again and completes exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../integration/lib.mjs';
import { enqueueMany, storedEvents, assertContiguous, readRuns } from '../integration/jobs_lib.mjs';
import { startCluster, createDatabase, startNodes, health, waitAllTerminal, jobLedger } from './pg_lib.mjs';

const LEASE_MS = 2000;
const cluster = await startCluster();
const db = await createDatabase(cluster.url);
const shared = mkdtempSync(join(tmpdir(), 'refold-pgo-'));
const runLog = join(shared, 'runs.jsonl');
const ENV = { REFOLD_LEASE_MS: String(LEASE_MS), REFOLD_HEARTBEAT_MS: '400' };
const nodes = [];
let a;
after(async () => {
  for (const n of nodes) { try { await n.stop(); } catch (e) { console.error(e.message); } }
  if (a) a.cleanup();
  rmSync(shared, { recursive: true, force: true });
  cluster.destroy();
});

test('an outage longer than the lease: running jobs stop at the lease, run again after, complete once', { timeout: 90000 }, async () => {
  const started = await startNodes(db, nodes, { serve: 1, workers: 1, runLog, env: ENV });
  a = started[0];
  const c = started[1];

  // Four jobs that sleep 5 s without writing anything (like a long LLM call): one per
  // worker thread of the two nodes.
  const ids = await enqueueMany(a, Array.from({ length: 4 }, () => ({ sleep_ms: 5000, log: true })));
  const deadline = Date.now() + 10000;
  while ((await Promise.all(ids.map((id) => storedEvents(a, id)))).some((evs) => !evs.length)) {
    assert.ok(Date.now() < deadline, 'all four jobs started');
    await sleep(50);
  }
  const stoppedAt = Date.now();
  cluster.stop();
  await sleep(LEASE_MS + 2500); // the leases run out while the database is down
  assert.equal(await health(a), 503);
  cluster.start();
  const restartedAt = Date.now();

  const counts = await waitAllTerminal(db, ids.length, 40000);
  assert.deepEqual(counts, { completed: ids.length });
  const runs = readRuns(runLog);
  for (const j of await jobLedger(db)) {
    assert.equal(j.completedEvents, 1, `${j.id}: one completed event`);
    assert.equal(j.attempt, 2, `${j.id}: the first attempt was given up`);
    assert.equal(j.resultAttempt, 2);
    const mine = runs.filter((r) => r.job === j.id).sort((x, y) => x.attempt - y.attempt);
    assert.deepEqual(mine.map((r) => [r.attempt, r.outcome]), [[1, 'stopped'], [2, 'ok']], JSON.stringify(mine));
    // The first run stopped at its lease, before the database even came back, so it never
    // overlapped the second.
    assert.ok(mine[0].end_us / 1000 < restartedAt, `${j.id}: attempt 1 ended ${mine[0].end_us / 1000 - restartedAt} ms after the restart`);
    assert.ok(mine[0].end_us / 1000 - stoppedAt < LEASE_MS + 1500, `${j.id}: attempt 1 ended ${mine[0].end_us / 1000 - stoppedAt} ms into the outage`);
    assert.ok(mine[1].start_us > mine[0].end_us);
    const events = await storedEvents(a, j.id);
    assertContiguous(events, assert);
    assert.deepEqual(events.map((e) => e.type), ['log', 'retry', 'log', 'progress', 'completed']);
    assert.equal(events[1].data.error.code, 'lease_expired');
  }
  for (const n of [a, c]) assert.match(n.logs, /lease ran out without a heartbeat/);
});
