// Issue 3, test 7: cancelling a queued job (it never starts), a running job (it ends
// `cancelled` within 2 s, here and in another worker process), and cancels racing
// completion (each job ends completed or cancelled, never retried).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from './lib.mjs';
import {
  startJobsServer, enqueueOk, waitJob, waitTerminal, storedEvents, assertContiguous, readRuns,
  startWorker, cancelAndTime,
} from './jobs_lib.mjs';

const srv = await startJobsServer();
const workers = [];
after(async () => {
  for (const w of workers) await w.stop('SIGKILL');
  await srv.stop();
  srv.cleanup();
});

const cancel = (id) => srv.api('POST', `/v1/jobs/${id}/cancel`);

test('7a: a queued job is cancelled at once and never starts', async () => {
  // On a node without workers, so that nothing can claim the job before the cancel (a
  // run_at a few hundred ms away lost that race on a loaded machine). The worker started
  // after the cancel must then pass it by: it runs a job enqueued after it, whose run_at is
  // later, and the claim takes due jobs in run_at order.
  const idle = await startJobsServer({ REFOLD_WORKERS: '0' });
  let w;
  try {
    const job = await enqueueOk(idle, { sleep_ms: 10 });
    const r = await idle.api('POST', `/v1/jobs/${job.id}/cancel`);
    assert.equal(r.status, 202);
    assert.equal(r.headers.get('location'), `/v1/jobs/${job.id}`);
    assert.equal(r.json.status, 'cancelled');
    assert.ok(r.json.finished_at);
    w = await startWorker(idle);
    const later = await enqueueOk(idle, { sleep_ms: 10 });
    assert.ok(Date.parse(later.run_at) > Date.parse(job.run_at));
    assert.equal((await waitTerminal(idle, later.id)).status, 'completed');
    const j = (await idle.api('GET', `/v1/jobs/${job.id}`)).json;
    assert.equal(j.status, 'cancelled');
    assert.equal(j.attempt, 0);
    assert.equal(j.started_at, null);
    assert.deepEqual((await storedEvents(idle, job.id)).map((e) => [e.seq, e.type, e.data.status]),
      [[1, 'cancelled', 'cancelled']]);
    assert.deepEqual(readRuns(idle.runLog).map((x) => x.job), [later.id]);
    // Cancelling again is harmless.
    assert.equal((await idle.api('POST', `/v1/jobs/${job.id}/cancel`)).status, 202);
  } finally {
    if (w) await w.stop();
    await idle.stop();
    idle.cleanup();
  }
  // Cancelling a finished job is a conflict; an unknown one is 404.
  const done = await enqueueOk(srv, {});
  await waitTerminal(srv, done.id);
  const c = await cancel(done.id);
  assert.equal(c.status, 409);
  assert.equal(c.json.error.details.reason, 'invalid_transition');
  assert.equal((await cancel('job_01ZZZZZZZZZZZZZZZZZZZZZZZZ')).status, 404);
});

async function cancelRunning(label) {
  const job = await enqueueOk(srv, { sleep_ms: 30000, log: true });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  // Cancelled inside its sleep: once its first log line is stored (not a fixed 100 ms).
  for (const deadline = Date.now() + 10000; (await storedEvents(srv, job.id)).length === 0; await sleep(20))
    assert.ok(Date.now() < deadline, `${label}: no log line 10 s after the job started`);
  // Timed from the cancel's answer to the server's finished_at (cancelAndTime).
  const { end, took } = await cancelAndTime(srv, job.id);
  assert.equal(end.status, 'cancelled', label);
  assert.ok(took < 2000, `${label}: cancelled ${took} ms after the cancel's answer`);
  assert.equal(end.attempt, 1);
  const events = await storedEvents(srv, job.id);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['log', 'cancelled']);
  const runs = readRuns(srv.runLog).filter((x) => x.job === job.id);
  assert.deepEqual(runs.map((x) => x.outcome), ['stopped']);
  return took;
}

test('7b: a running job ends cancelled within 2 s (in this process)', async () => {
  await cancelRunning('in-process');
});

test('7b: a blocking call is cut short by the job_on_abort hook', async () => {
  // The handler blocks in poll(2) on a pipe that only the abort hook writes to: without
  // the hook it would run its full 30 s and complete.
  const job = await enqueueOk(srv, { sleep_ms: 30000, block: true });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const { end, took } = await cancelAndTime(srv, job.id); // from the answer to finished_at
  assert.equal(end.status, 'cancelled');
  assert.ok(took < 1000, `aborted ${took} ms after the cancel's answer`);
  assert.deepEqual(readRuns(srv.runLog).filter((x) => x.job === job.id).map((x) => x.outcome), ['stopped']);
});

test('7b: a running job ends cancelled within 2 s (in another worker process)', async () => {
  const other = await startJobsServer({ REFOLD_WORKERS: '0' });
  try {
    const w = await startWorker(other);
    workers.push(w);
    const job = await enqueueOk(other, { sleep_ms: 30000 });
    await waitJob(other, job.id, (j) => j.status === 'running', 10000, 'running');
    const { end, took } = await cancelAndTime(other, job.id); // from the answer to finished_at
    assert.equal(end.status, 'cancelled');
    assert.ok(took < 2000, `cancelled ${took} ms after the cancel's answer`);
  } finally {
    await other.stop();
    other.cleanup();
  }
});

test('7c: cancels racing completion end completed or cancelled, never retried', async () => {
  const jobs = [];
  for (let i = 0; i < 40; i++) jobs.push(await enqueueOk(srv, { sleep_ms: 20 + (i % 7) * 5 }));
  // Cancel each around the time it finishes: some before it starts, some while it runs,
  // some while it completes, some after.
  await Promise.all(jobs.map(async (j, i) => {
    await sleep((i * 13) % 120);
    const r = await cancel(j.id);
    assert.ok([202, 409].includes(r.status), `cancel answered ${r.status}`);
    if (r.status === 409) assert.equal(r.json.error.details.reason, 'invalid_transition');
  }));
  const seen = { completed: 0, cancelled: 0 };
  for (const j of jobs) {
    const end = await waitTerminal(srv, j.id, 10000);
    assert.ok(['completed', 'cancelled'].includes(end.status), `${j.id} ended ${end.status}`);
    seen[end.status]++;
    assert.ok(end.attempt <= 1, 'never a second attempt');
    const events = await storedEvents(srv, j.id);
    assertContiguous(events, assert, j.id);
    assert.ok(!events.some((e) => e.type === 'retry'), 'never retried');
    const terminal = events.filter((e) => ['completed', 'failed', 'cancelled'].includes(e.type));
    assert.deepEqual(terminal.map((e) => e.type), [end.status], 'one terminal event, matching the status');
  }
  await sleep(300);
  for (const j of jobs) { // and they stay that way
    const now = (await srv.api('GET', `/v1/jobs/${j.id}`)).json;
    assert.ok(['completed', 'cancelled'].includes(now.status));
  }
  console.log(`# racing cancels: ${JSON.stringify(seen)}`);
});

test('7d: cancel and retry racing each other decide on the status they lock, and say so', async () => {
  // Jobs that finish, fail or are cancelled quickly, then cancel, retry, cancel sent at once,
  // several rounds: every answer must match a status it really saw. (On PostgreSQL a cancel
  // that read the status in several statements once answered "job … is queued and can no
  // longer be cancelled" when a retry slipped in between.)
  const jobs = [];
  for (let i = 0; i < 30; i++)
    jobs.push(await enqueueOk(srv, { sleep_ms: 20 * (i % 3), fail: i % 3 === 0 ? 'permanent' : null }));
  for (let round = 0; round < 8; round++) {
    const answers = await Promise.all(jobs.flatMap((j) => [
      cancel(j.id), srv.api('POST', `/v1/jobs/${j.id}/retry`), cancel(j.id)]));
    for (const [i, r] of answers.entries()) {
      const verb = i % 3 === 1 ? 'retry' : 'cancel';
      assert.ok([202, 409].includes(r.status), `${verb} answered ${r.status} ${r.text}`);
      if (r.status === 202) continue;
      assert.equal(r.json.error.details.reason, 'invalid_transition');
      const said = r.json.error.message.match(/ is (\w+)/)[1];
      const impossible = verb === 'cancel' ? ['completed', 'failed'] : ['queued', 'running', 'completed'];
      assert.ok(impossible.includes(said), `${verb} refused, saying: ${r.json.error.message}`);
    }
    await sleep(60);
  }
  for (const j of jobs) assertContiguous(await storedEvents(srv, j.id), assert, j.id);
});
