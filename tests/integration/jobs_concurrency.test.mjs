// Issue 3, test 3: 4 worker processes burn down 20,000 test_sleep jobs of 0-5 ms (5,000
// per worker on average) on one SQLite file: every job completes, exactly once, no two runs
// of a job overlap, nothing is left non-terminal, and the claim spreads work over every
// process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql } from './lib.mjs';
import { startJobsServer, enqueueMany, startWorker, readRuns, metric } from './jobs_lib.mjs';

const WORKERS = 4;
const JOBS = Number(process.env.REFOLD_TEST_CONCURRENCY_JOBS || 20000);

// A 30 s lease (FAST has 1.5 s): with five processes writing one SQLite file on a loaded
// machine, a completion can wait on the write lock past a short lease, and a job whose
// lease ran out correctly runs again - which this test, about claims, would count as a
// double run. Lease expiry has its own tests (jobs_crash, jobs_fencing).
const srv = await startJobsServer({ REFOLD_WORKERS: '0', REFOLD_LOG: 'warn', REFOLD_LEASE_MS: '30000' });
const workers = [];
after(async () => {
  for (const w of workers) await w.stop();
  await srv.stop();
  srv.cleanup();
});

test(`3: ${WORKERS} worker processes x ${JOBS} jobs: each runs once, never concurrently`, { timeout: 240000 }, async () => {
  const params = Array.from({ length: JOBS }, (_, i) => ({ sleep_ms: i % 6 }));
  const ids = await enqueueMany(srv, params);
  assert.equal(ids.length, JOBS);
  assert.equal(new Set(ids).size, JOBS);

  const t0 = Date.now();
  for (let i = 0; i < WORKERS; i++) workers.push(await startWorker(srv));
  // The queued and running gauges are exact at every scrape; /metrics recounts the
  // finished statuses at most once a minute, so those come from the database.
  for (;;) {
    const open = await metric(srv, 'refold_jobs{status="queued"}') + await metric(srv, 'refold_jobs{status="running"}');
    if (open === 0) break;
    assert.ok(Date.now() - t0 < 200000, `burn-down too slow: ${open} of ${JOBS} left after ${Date.now() - t0} ms`);
    await sleep(250);
  }
  const seconds = (Date.now() - t0) / 1000;
  console.log(`# ${JOBS} jobs in ${seconds.toFixed(1)} s with ${WORKERS} worker processes (${Math.round(JOBS / seconds)} jobs/s)`);
  assert.deepEqual(await sql(srv.db, 'SELECT status, COUNT(*) FROM jobs GROUP BY status'), `completed|${JOBS}`);

  // Every job ran exactly once (attempt 1), and no two runs of any job overlapped.
  const runs = readRuns(srv.runLog);
  const byJob = new Map();
  for (const r of runs) {
    if (!byJob.has(r.job)) byJob.set(r.job, []);
    byJob.get(r.job).push(r);
  }
  assert.equal(byJob.size, JOBS, 'every job ran');
  const pids = new Map();
  let twice = 0, overlaps = 0;
  for (const [, list] of byJob) {
    if (list.length !== 1 || list[0].attempt !== 1) twice++;
    list.sort((a, b) => a.start_us - b.start_us);
    for (let i = 1; i < list.length; i++) if (list[i].start_us < list[i - 1].end_us) overlaps++;
    for (const r of list) pids.set(r.pid, (pids.get(r.pid) || 0) + 1);
  }
  assert.equal(overlaps, 0, 'runs of one job overlapped');
  assert.equal(twice, 0, 'jobs ran more than once');
  assert.equal(runs.length, JOBS);
  assert.equal(pids.size, WORKERS, `work went to every worker process: ${JSON.stringify([...pids])}`);
  for (const w of workers) assert.doesNotMatch(w.logs, /fenced write|lease lost|cannot/);

  // Spot-check the stored state of a sample through the API.
  for (const id of ids.filter((_, i) => i % 997 === 0)) {
    const j = (await srv.api('GET', `/v1/jobs/${id}`)).json;
    assert.equal(j.status, 'completed');
    assert.equal(j.attempt, 1);
  }
});
