// A second SIGTERM or SIGINT during a graceful stop (Ctrl-C pressed again) stops the
// process now (docs/operations.md, "Stopping a node"): the grace period ends at once,
// running jobs go back to the queue without using an attempt, and the process exits with
// 128 + the signal's number within CMD_HURRY_BOUND_MS (3 s) - at once when the database
// answers. Before, it was ignored and the stop waited out the whole grace period.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { sleep } from './lib.mjs';
import { startJobsServer, startWorker, enqueueOk, waitJob, storedEvents } from './jobs_lib.mjs';

const GRACE = '60000'; // what the first signal alone would wait for
const srv = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: GRACE, REFOLD_WORKERS: '1' });
const children = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && !c.signalCode) c.kill('SIGKILL');
  await srv.stop();
  srv.cleanup();
});

// Resolves once the text read so far from get() matches re.
async function waitLog(get, re, what, ms = 10000) {
  for (const until = Date.now() + ms; !re.test(get());) {
    if (Date.now() > until) throw new Error(`no ${what} in the log:\n${get().slice(-3000)}`);
    await sleep(10);
  }
}

// Look at a job with no worker running, so that nobody claims it meanwhile.
async function jobAtRest(id) {
  srv.env.REFOLD_WORKERS = '0';
  await srv.start();
  const job = (await srv.api('GET', `/v1/jobs/${id}`)).json;
  return { job, events: await storedEvents(srv, id) };
}

async function restoreServer() {
  await srv.stop();
  srv.env.REFOLD_WORKERS = '1';
  await srv.start();
}

test('refold serve: a second SIGTERM releases the running job at once and exits 143', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 60000, log: true }, { maxAttempts: 1 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const from = srv.logs.length;
  const logs = () => srv.logs.slice(from);
  srv.child.kill('SIGTERM');
  await waitLog(logs, /msg="waiting for running jobs" jobs=1 grace_ms=60000/, 'graceful stop');
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  const exit = await srv.exited;
  const took = Date.now() - t0;
  assert.deepEqual(exit, { code: 143, signal: null }, logs());
  assert.ok(took < 2000, `exited ${took} ms after the second SIGTERM`);
  assert.equal(logs().match(/level=warn msg="second signal: stopping now[^"]*" signal=15\b/g)?.length, 1, logs());
  assert.match(logs(), /msg="stopped" status=143/);

  const { job: released, events } = await jobAtRest(job.id);
  assert.equal(released.status, 'queued');
  assert.equal(released.attempt, 0, 'the interrupted attempt was given back');
  assert.deepEqual(events.map((e) => e.type), ['log', 'log']);
  assert.match(events[1].data.message, /released to the queue/);
  await restoreServer();
  // With max_attempts 1 it can still run: the release used no attempt.
  await waitJob(srv, job.id, (j) => j.status === 'running' && j.attempt === 1, 10000, 'running again');
  await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
});

test('refold worker: a second SIGINT (Ctrl-C twice) does the same and exits 130', async () => {
  srv.env.REFOLD_WORKERS = '0';
  await srv.restart();
  const w = await startWorker(srv, { REFOLD_SHUTDOWN_GRACE_MS: GRACE });
  children.push(w.child);
  const job = await enqueueOk(srv, { sleep_ms: 60000 }, { maxAttempts: 1 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  w.child.kill('SIGINT');
  await waitLog(() => w.logs, /msg="waiting for running jobs"/, 'graceful stop');
  const t0 = Date.now();
  w.child.kill('SIGINT');
  const exit = await w.exited;
  const took = Date.now() - t0;
  assert.deepEqual(exit, { code: 130, signal: null }, w.logs.slice(-2000));
  assert.ok(took < 2000, `exited ${took} ms after the second SIGINT`);
  assert.match(w.logs, /level=warn msg="second signal: stopping now[^"]*" signal=2\b/);
  const released = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(released.status, 'queued');
  assert.equal(released.attempt, 0);
  await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
  await restoreServer();
});

test('a job that ignores the stop is released by the stopping process itself, within the bound', async () => {
  // ignore_cancel: the handler sleeps through every stop request (a stuck handler).
  const job = await enqueueOk(srv, { sleep_ms: 30000, ignore_cancel: true }, { maxAttempts: 1 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const from = srv.logs.length;
  const logs = () => srv.logs.slice(from);
  srv.child.kill('SIGTERM');
  await waitLog(logs, /msg="waiting for running jobs"/, 'graceful stop');
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  const exit = await srv.exited;
  const took = Date.now() - t0;
  assert.deepEqual(exit, { code: 143, signal: null }, logs());
  // 1 s for the handler to stop by itself, then pool_stop releases its job.
  assert.ok(took >= 900 && took < 2500, `exited ${took} ms after the second SIGTERM`);
  assert.match(logs(), /msg="job did not stop in time: released to the queue"/);
  const { job: released } = await jobAtRest(job.id);
  assert.equal(released.status, 'queued');
  assert.equal(released.attempt, 0);
  await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
  await restoreServer();
});

// Hold the SQLite database's write lock from another process until release() (on
// PostgreSQL: the jobs table's).
async function holdWriteLock(db) {
  const pg = db.startsWith('postgres');
  const child = pg ? spawn('psql', ['-X', '-qAt', db]) : spawn('sqlite3', [db]);
  children.push(child);
  const locked = new Promise((resolve) => child.stdout.once('data', resolve));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.stdin.write(pg ? 'BEGIN; LOCK TABLE jobs IN EXCLUSIVE MODE; SELECT 1;\n' : 'BEGIN IMMEDIATE; SELECT 1;\n');
  await locked;
  return { release: () => { child.stdin.end('COMMIT;\n'); return exited; } };
}

test('when releasing blocks (the database does not answer), the stop ends at the 3 s bound with the same status', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 60000 }, { maxAttempts: 3 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  const from = srv.logs.length;
  const logs = () => srv.logs.slice(from);
  srv.child.kill('SIGTERM');
  await waitLog(logs, /msg="waiting for running jobs"/, 'graceful stop');
  const lock = await holdWriteLock(srv.db); // the release waits behind it
  const t0 = Date.now();
  srv.child.kill('SIGTERM');
  const exit = await srv.exited;
  const took = Date.now() - t0;
  await lock.release();
  assert.deepEqual(exit, { code: 143, signal: null }, logs());
  assert.ok(took >= 2800 && took < 4500, `exited ${took} ms after the second SIGTERM`);
  assert.match(logs(), /level=error msg="shutdown did not finish in time after the second signal[^"]*" waiting_for="workers"/);
  // Its lease was never released: another node (here the next start) requeues it when the
  // lease runs out, which costs the attempt, as a crash does.
  srv.env.REFOLD_WORKERS = '1';
  await srv.start();
  await waitJob(srv, job.id, (j) => j.attempt === 2, 15000, 'the second attempt');
  const events = await storedEvents(srv, job.id);
  assert.equal(events[0].type, 'retry');
  assert.equal(events[0].data.error.code, 'lease_expired');
  await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
});
