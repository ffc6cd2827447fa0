// Graceful shutdown (SPEC §5): SIGTERM stops claiming, lets running jobs finish within the
// grace period, then releases the rest to the queue without using an attempt.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { sleep } from './lib.mjs';
import { startJobsServer, enqueueOk, waitJob, waitTerminal, storedEvents, assertContiguous, readRuns } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: '5000' });
after(async () => { await srv.stop(); srv.cleanup(); });

test('a running job finishes within the grace period; new jobs wait for the next start', async () => {
  // How long the job ran before the SIGTERM depends on how soon this test saw it running
  // (late on a loaded machine): what shows that the server waited for it is its result's
  // end_us, after the SIGTERM; what shows that it did not wait out the 5 s grace is the exit
  // long before that.
  const job = await enqueueOk(srv, { sleep_ms: 1500 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  // The drain has begun once /healthz answers 503 (a loaded machine may take a while to
  // deliver the signal: a fixed sleep let the late job below be claimed before it).
  for (const until = Date.now() + 3000; (await srv.api('GET', '/healthz')).status !== 503;) {
    assert.ok(Date.now() < until, '/healthz still 200 3 s after the SIGTERM');
    await sleep(10);
  }
  // Still answering during the drain, but claiming nothing new.
  const late = await enqueueOk(srv, { sleep_ms: 0 });
  await sleep(300);
  assert.equal((await srv.api('GET', `/v1/jobs/${late.id}`)).json.status, 'queued');
  const exit = await srv.exited;
  assert.equal(exit.code, 0);
  const took = Date.now() - t0;
  assert.ok(took < 4500, `exited after ${took} ms (grace 5000 ms)`);
  await srv.start();
  const done = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 1);
  assert.ok(done.result.end_us / 1000 > t0, `the job ended ${t0 - done.result.end_us / 1000} ms before the SIGTERM`);
  assert.equal((await waitTerminal(srv, late.id)).status, 'completed');
});

test('past the grace period running jobs go back to the queue without using an attempt', async () => {
  await srv.stop();
  srv.env.REFOLD_SHUTDOWN_GRACE_MS = '300';
  await srv.start();
  const job = await enqueueOk(srv, { sleep_ms: 30000 }, { maxAttempts: 1 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const t0 = Date.now();
  const exit = await srv.stop();
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 2500, `exited after ${Date.now() - t0} ms`);

  srv.env.REFOLD_WORKERS = '0'; // look at the released job before anyone claims it
  await srv.start();
  const released = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(released.status, 'queued');
  assert.equal(released.attempt, 0, 'the interrupted attempt was given back');
  const events = await storedEvents(srv, job.id);
  assert.deepEqual(events.map((e) => e.type), ['log']);
  assert.match(events[0].data.message, /released to the queue/);

  // With max_attempts 1 it can still run: the release used no attempt.
  await srv.stop();
  delete srv.env.REFOLD_WORKERS;
  await srv.start();
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running again');
  const r = await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
  assert.equal(r.status, 202);
  const end = await waitTerminal(srv, job.id);
  assert.equal(end.status, 'cancelled');
  assert.equal(end.attempt, 1);
  assertContiguous(await storedEvents(srv, job.id), assert);
});

// Hold the database's write lock from another process (sqlite3 / psql) until release():
// a claim made meanwhile waits behind it.
async function holdWriteLock(db) {
  const pg = db.startsWith('postgres');
  const child = pg ? spawn('psql', ['-X', '-qAt', db]) : spawn('sqlite3', [db]);
  const locked = new Promise((resolve) => child.stdout.once('data', resolve));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.stdin.write(pg ? 'BEGIN; LOCK TABLE jobs IN EXCLUSIVE MODE; SELECT 1;\n' : 'BEGIN IMMEDIATE; SELECT 1;\n');
  await locked;
  return { release: () => { child.stdin.end('COMMIT;\n'); return exited; } };
}

test('a claim in flight when SIGTERM arrives is released at once, never run by the stopping process', async () => {
  await srv.stop();
  srv.env.REFOLD_SHUTDOWN_GRACE_MS = '3000';
  srv.env.REFOLD_WORKERS = '1';
  await srv.start();
  // The lock must be held before the job is due, else a worker may claim it first (on a
  // loaded machine, starting sqlite3 or psql can take longer than the delay): when it was
  // not, cancel that job and try again with a longer delay.
  let job, lock;
  for (let delay = 600; ; delay *= 2) {
    job = await enqueueOk(srv, { sleep_ms: 5000 }, { delayMs: delay, maxAttempts: 1 });
    lock = await holdWriteLock(srv.db);
    if (Date.now() < Date.parse(job.run_at)) break;
    await lock.release();
    assert.ok(delay < 10000, `the write lock took over ${delay} ms to take`);
    await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
    await waitTerminal(srv, job.id);
  }
  // The job is due and polled for (100 ms): the claim waits behind the lock.
  await sleep(Date.parse(job.run_at) + 1400 - Date.now());
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  await sleep(300);
  await lock.release(); // the claim commits now, after SIGTERM
  const exit = await srv.exited;
  assert.equal(exit.code, 0);
  const took = Date.now() - t0;
  assert.ok(took < 2500, `exited after ${took} ms: it ran the job it claimed while stopping`);
  assert.deepEqual(readRuns(srv.runLog).filter((r) => r.job === job.id), [], 'no run of it');

  srv.env.REFOLD_WORKERS = '0';
  await srv.start();
  const released = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(released.status, 'queued');
  assert.equal(released.attempt, 0, 'the claim was given back');
  const events = await storedEvents(srv, job.id);
  assert.deepEqual(events.map((e) => e.type), ['log']);
  assert.match(events[0].data.message, /released to the queue/);
  await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
  delete srv.env.REFOLD_WORKERS;
});
