// SIGHUP (the terminal `refold serve` or `refold worker` ran in was closed) stops the
// process gracefully, like SIGTERM: it used to kill it at once, so running jobs were
// left to the sweeper after their lease and cost an attempt. A process started under
// `nohup` (SIGHUP ignored) keeps ignoring it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN, sleep } from './lib.mjs';
import { startJobsServer, startWorker, enqueueOk, waitJob, readRuns } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: '5000', REFOLD_WORKERS: '1' });
const children = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && !c.signalCode) c.kill('SIGKILL');
  await srv.stop();
  srv.cleanup();
});

test('SIGHUP stops refold serve gracefully: its running job finishes, exit status 0', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 1000 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  srv.child.kill('SIGHUP');
  const exit = await srv.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, srv.logs.slice(-2000));
  assert.match(srv.logs, /msg="shutting down" signal=1\b/);
  assert.deepEqual(readRuns(srv.runLog).filter((r) => r.job === job.id).map((r) => r.outcome), ['ok']);
  srv.env.REFOLD_WORKERS = '0';
  await srv.start();
  const done = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 1);
});

test('SIGHUP stops refold worker gracefully: its running job finishes, exit status 0', async () => {
  const w = await startWorker(srv);
  children.push(w.child);
  const job = await enqueueOk(srv, { sleep_ms: 1000 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  w.child.kill('SIGHUP');
  const exit = await w.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, w.logs.slice(-2000));
  assert.match(w.logs, /msg="shutting down" signal=1\b/);
  const done = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 1);
});

test('under nohup (SIGHUP ignored) refold worker keeps running after a SIGHUP', async () => {
  const child = spawn('nohup', [BIN, 'worker', '--db', srv.db, '--workers', '1'], {
    env: { ...process.env, ...srv.env, REFOLD_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let logs = '';
  child.stdout.on('data', (d) => (logs += d));
  child.stderr.on('data', (d) => (logs += d));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  for (const until = Date.now() + 15000; !logs.includes('worker running');) {
    assert.ok(Date.now() < until && child.exitCode === null, `the worker did not start: ${logs}`);
    await sleep(20);
  }
  child.kill('SIGHUP'); // nohup exec'd refold: same pid
  await sleep(500);
  assert.equal(child.exitCode, null, logs);
  assert.doesNotMatch(logs, /shutting down/);
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null }, logs);
});
