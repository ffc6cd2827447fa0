// Issue 3, test 5 (the integration half; the bounds over many samples are in
// tests/unit/test_jobs.c): transient failures are retried after the backoff with a `retry`
// event each, a longer retry-after wins, exhausted attempts and permanent failures end
// `failed`, and the API retry gives a failed job a fresh attempt budget under the same id.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { FAST, startJobsServer, enqueueOk, waitTerminal, storedEvents, assertContiguous } from './jobs_lib.mjs';

const BASE = Number(FAST.REFOLD_BACKOFF_BASE_MS);
const srv = await startJobsServer();
after(async () => { await srv.stop(); srv.cleanup(); });

// The delay a retry event asked for: run_at minus the time the event was written.
const delayOf = (e) => Date.parse(e.data.run_at) - Date.parse(e.created_at);

test('5a: transient failures back off 1x then 2x the base (+/- 10 %) and then succeed', async () => {
  const job = await enqueueOk(srv, { fail: 'transient', fail_attempts: 2 });
  const done = await waitTerminal(srv, job.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 3);
  assert.equal(done.error, null, 'success clears the last error');
  const events = await storedEvents(srv, job.id);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['retry', 'retry', 'progress', 'completed']);
  const [r1, r2] = events;
  assert.deepEqual([r1.data.attempt, r2.data.attempt], [1, 2]);
  assert.deepEqual(r1.data.error, { code: 'test_transient', message: 'test_sleep failed on attempt 1 as asked' });
  // created_at and run_at are whole milliseconds: allow 2 ms of rounding.
  assert.ok(delayOf(r1) >= BASE * 0.9 - 2 && delayOf(r1) <= BASE * 1.1 + 2, `first delay ${delayOf(r1)}`);
  assert.ok(delayOf(r2) >= 2 * BASE * 0.9 - 2 && delayOf(r2) <= 2 * BASE * 1.1 + 2, `second delay ${delayOf(r2)}`);
  // It did not run before run_at.
  const started2 = events[3].data.result.start_us / 1000;
  assert.ok(started2 >= Date.parse(r2.data.run_at) - 1, 'attempt 3 waited for its run_at');
});

test('5b: a retry-after longer than the backoff wins', async () => {
  const job = await enqueueOk(srv, { fail: 'transient', fail_attempts: 1, retry_after_ms: 1200 });
  const done = await waitTerminal(srv, job.id);
  assert.equal(done.status, 'completed');
  const [retry] = await storedEvents(srv, job.id);
  assert.equal(retry.type, 'retry');
  assert.ok(delayOf(retry) >= 1198 && delayOf(retry) <= 1202, `delay ${delayOf(retry)}`);
});

test('5c: attempts exhausted -> failed with the last error; permanent -> failed at once', async () => {
  const transient = await enqueueOk(srv, { fail: 'transient' }, { maxAttempts: 2 });
  const permanent = await enqueueOk(srv, { fail: 'permanent' });
  const t = await waitTerminal(srv, transient.id);
  assert.equal(t.status, 'failed');
  assert.equal(t.attempt, 2);
  assert.deepEqual(t.error, { code: 'test_transient', message: 'test_sleep failed on attempt 2 as asked' });
  assert.deepEqual((await storedEvents(srv, transient.id)).map((e) => e.type), ['retry', 'failed']);
  const p = await waitTerminal(srv, permanent.id);
  assert.equal(p.status, 'failed');
  assert.equal(p.attempt, 1);
  assert.equal(p.error.code, 'test_permanent');
  const pe = await storedEvents(srv, permanent.id);
  assert.deepEqual(pe.map((e) => e.type), ['failed']);
  assert.deepEqual(pe[0].data, { job_id: permanent.id, status: 'failed', error: p.error, created_at: pe[0].created_at });
});

test('5d: API retry: failed -> queued with a fresh budget, same id; 409 otherwise', async () => {
  const job = await enqueueOk(srv, { fail: 'permanent' }, { maxAttempts: 2 });
  const failed = await waitTerminal(srv, job.id);
  assert.equal(failed.status, 'failed');
  const r = await srv.api('POST', `/v1/jobs/${job.id}/retry`);
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('location'), `/v1/jobs/${job.id}`);
  assert.equal(r.json.id, job.id);
  // The row as the retry wrote it, whatever a worker did after the commit (5e).
  assert.equal(r.json.status, 'queued');
  assert.equal(r.json.attempt, 0);
  assert.equal(r.json.error, null);
  const again = await waitTerminal(srv, job.id);
  assert.equal(again.status, 'failed');
  assert.equal(again.attempt, 1, 'the budget started over');
  const events = await storedEvents(srv, job.id);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['failed', 'progress', 'failed']);
  assert.deepEqual(events[1].data, { job_id: job.id, status: 'queued', stage: null, progress: 0, retried: true, created_at: events[1].created_at });

  const ok = await enqueueOk(srv, {});
  await waitTerminal(srv, ok.id);
  const conflict = await srv.api('POST', `/v1/jobs/${ok.id}/retry`);
  assert.equal(conflict.status, 409);
  assert.equal(conflict.json.error.details.reason, 'invalid_transition');
  assert.equal((await srv.api('POST', '/v1/jobs/job_01ZZZZZZZZZZZZZZZZZZZZZZZZ/retry')).status, 404);
});

test('5e: the answers to create and retry are the rows they wrote, even when workers claim at once', async () => {
  // Workers that look for due jobs every millisecond claim a retried job right after the
  // retry commits. The answer was read back after the commit, so it sometimes showed the
  // job already running in attempt 1; it is now read in the retry's own transaction.
  const fast = await startJobsServer({ REFOLD_POLL_MS: '1', REFOLD_WORKERS: '4' });
  try {
    const jobs = [];
    for (let i = 0; i < 30; i++) {
      const j = await enqueueOk(fast, { fail: 'permanent' }, { maxAttempts: 1 });
      assert.deepEqual([j.status, j.attempt, j.started_at], ['queued', 0, null], 'create answer');
      jobs.push(j);
    }
    for (let round = 0; round < 5; round++) {
      for (const j of jobs) assert.equal((await waitTerminal(fast, j.id)).status, 'failed');
      const answers = await Promise.all(jobs.map((j) => fast.api('POST', `/v1/jobs/${j.id}/retry`)));
      for (const r of answers) {
        assert.equal(r.status, 202, r.text);
        assert.deepEqual([r.json.status, r.json.attempt, r.json.started_at, r.json.error],
          ['queued', 0, null, null], `round ${round}: the retry answered ${r.text}`);
      }
    }
  } finally {
    await fast.stop();
    fast.cleanup();
  }
});
