// Issue 3, tests 1 and 2: a crashed server's job runs again once its lease expired and
// completes exactly once; a crash inside the completing transaction leaves nothing of
// that attempt behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { sleep } from './lib.mjs';
import {
  FAST, startJobsServer, enqueueOk, waitJob, waitTerminal, storedEvents, assertContiguous,
  readRuns,
} from './jobs_lib.mjs';

const LEASE_MS = Number(FAST.REFOLD_LEASE_MS);
const srv = await startJobsServer();
after(async () => { await srv.stop(); srv.cleanup(); });

// Read the database directly (the server is down): what a crash left behind.
function sql(query) {
  if (srv.db.startsWith('postgres')) return execFileSync('psql', [srv.db, '-qAtc', query], { encoding: 'utf8' }).trim();
  return execFileSync('sqlite3', ['-batch', '-noheader', srv.db, query], { encoding: 'utf8' }).trim();
}

test('1: kill -9 while a job runs; after restart it runs again once the lease expired and completes once', async () => {
  // Long enough that the kill below comes while it runs, however late this test sees it
  // running on a loaded machine.
  const job = await enqueueOk(srv, { sleep_ms: 4000, log: true });
  const running = await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  assert.equal(running.attempt, 1);
  const claimedAt = Date.parse(running.started_at);
  await sleep(200);
  await srv.stop('SIGKILL');
  assert.equal(sql(`SELECT status || ' ' || attempt FROM jobs WHERE id = '${job.id}'`), 'running 1');

  await srv.start();
  const done = await waitTerminal(srv, job.id, 20000);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 2);
  assert.equal(done.result.attempt, 2);
  assert.equal(done.result.pid, srv.child.pid, 'the restarted server ran it');

  // It was not taken back before the first lease ran out.
  const runs = readRuns(srv.runLog).filter((r) => r.job === job.id);
  assert.deepEqual(runs.map((r) => [r.attempt, r.outcome]), [[2, 'ok']], 'attempt 1 never finished');
  assert.ok(runs[0].start_us / 1000 >= claimedAt + LEASE_MS - 50,
    `attempt 2 started ${runs[0].start_us / 1000 - claimedAt} ms after the claim, lease ${LEASE_MS} ms`);

  const events = await storedEvents(srv, job.id);
  assertContiguous(events, assert);
  assert.equal(events.filter((e) => e.type === 'completed').length, 1, 'one completed event');
  const retry = events.find((e) => e.type === 'retry');
  assert.equal(retry.data.error.code, 'lease_expired');
  assert.equal(retry.data.attempt, 1);
  assert.deepEqual(events.filter((e) => e.type === 'log').map((e) => e.data.message.split(' in ')[0]),
    ['started attempt 1', 'started attempt 2']);
  assert.equal(sql(`SELECT COUNT(*) FROM jobs WHERE id = '${job.id}' AND result IS NOT NULL`), '1');
});

test('2: a crash after the work but before commit leaves no rows of that attempt', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 50, crash: 'before_commit', commit_row: true });
  const exit = await srv.exited;
  assert.equal(exit.code, 137, 'the server _exit()ed inside the completing transaction');

  // Nothing of attempt 1 survived: no llm_calls row, no completed event, no result.
  assert.equal(sql(`SELECT COUNT(*) FROM llm_calls WHERE job_id = '${job.id}'`), '0');
  assert.equal(sql(`SELECT COUNT(*) FROM job_events WHERE job_id = '${job.id}'`), '0');
  assert.equal(sql(`SELECT status || ' ' || attempt || ' ' || COALESCE(result, 'none') FROM jobs WHERE id = '${job.id}'`),
    'running 1 none');

  await srv.start();
  const done = await waitTerminal(srv, job.id, 20000);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 2);
  const calls = await srv.api('GET', `/v1/jobs/${job.id}/llm-calls`);
  assert.equal(calls.status, 200);
  assert.deepEqual(calls.json.data.map((c) => c.attempt), [2], 'only attempt 2 wrote its row');
  assert.equal(done.result.llm_call_id, calls.json.data[0].id);
  assert.equal(calls.json.data[0].provider, 'test');
  const events = await storedEvents(srv, job.id);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['retry', 'progress', 'completed']);
});
