// Issue 3, test 4: a worker stopped (SIGSTOP) past its lease loses the job to another
// worker, which completes it; once continued (SIGCONT) the stale worker still tries to
// write, and its fenced writes change 0 rows.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { sleep } from './lib.mjs';
import {
  startJobsServer, enqueueOk, getJob, waitJob, waitTerminal, storedEvents, assertContiguous, startWorker, readRuns,
} from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_WORKERS: '0' });
const workers = [];
after(async () => {
  for (const w of workers) { w.child.kill('SIGCONT'); await w.stop('SIGKILL'); }
  await srv.stop();
  srv.cleanup();
});

async function waitLog(w, re, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!re.test(w.logs)) {
    if (Date.now() > deadline) throw new Error(`no ${re} in worker log:\n${w.logs}`);
    await sleep(20);
  }
}

test('4: a stopped worker loses its lease; its writes after SIGCONT change 0 rows', async () => {
  const a = await startWorker(srv);
  workers.push(a);
  // ignore_cancel: the handler sleeps through the lease loss and then writes anyway. The
  // SIGSTOP below must come while it sleeps: once stopped, the job must still be in
  // attempt 1 with the worker's first log line as its only event and no finished run. On a
  // loaded machine this test may see the job running too late for that: then the worker
  // is continued, finishes that job, and the case starts over with twice the sleep.
  let job;
  for (let sleepMs = 3000; ; sleepMs *= 2) {
    job = await enqueueOk(srv, { sleep_ms: sleepMs, ignore_cancel: true, log: true });
    await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
    // The worker's first log line commits just after the claim: wait for it.
    let first = [];
    for (const deadline = Date.now() + 10000; first.length === 0 && Date.now() < deadline; await sleep(20))
      first = await storedEvents(srv, job.id);
    assert.match(first[0].data.message, new RegExp(`pid ${a.child.pid}$`));
    a.child.kill('SIGSTOP');
    const stopped = await getJob(srv, job.id);
    const events = await storedEvents(srv, job.id);
    const ran = readRuns(srv.runLog).filter((r) => r.job === job.id);
    if (stopped.attempt === 1 && ['running', 'queued'].includes(stopped.status) && events.length === 1 && ran.length === 0) break;
    a.child.kill('SIGCONT');
    await waitTerminal(srv, job.id, 60000);
    assert.ok(sleepMs < 12000, `the worker stopped after its ${sleepMs} ms sleep (job ${JSON.stringify(stopped)}, ${events.length} events)`);
    console.log(`# the SIGSTOP came after the ${sleepMs} ms sleep: again with ${2 * sleepMs} ms`);
  }

  const b = await startWorker(srv);
  workers.push(b);
  const done = await waitJob(srv, job.id, (j) => j.status === 'completed', 60000, 'completed');
  assert.equal(done.attempt, 2);
  assert.equal(done.result.pid, b.child.pid, 'the second worker completed it');
  const before = await storedEvents(srv, job.id);

  a.child.kill('SIGCONT');
  await waitLog(a, new RegExp(`fenced write changed 0 rows.*job=${job.id} attempt=1 .*op=log`));
  await sleep(300); // anything else it might try
  const afterwards = await storedEvents(srv, job.id);
  assert.deepEqual(afterwards, before, 'the stale worker changed nothing');
  const final = (await srv.api('GET', `/v1/jobs/${job.id}`)).json;
  assert.deepEqual(final, done, 'the job row is unchanged');

  assertContiguous(afterwards, assert);
  assert.deepEqual(afterwards.map((e) => e.type), ['log', 'retry', 'log', 'log', 'progress', 'completed']);
  assert.equal(afterwards[1].data.error.code, 'lease_expired');
  assert.match(afterwards[2].data.message, new RegExp(`started attempt 2 in pid ${b.child.pid}$`));
  const runs = readRuns(srv.runLog).filter((r) => r.job === job.id).sort((x, y) => x.attempt - y.attempt);
  assert.deepEqual(runs.map((r) => [r.attempt, r.pid, r.outcome]),
    [[1, a.child.pid, 'lease_lost'], [2, b.child.pid, 'ok']]);
  // The stale worker is still healthy and takes new work.
  const next = await enqueueOk(srv, { sleep_ms: 0 });
  await waitJob(srv, next.id, (j) => j.status === 'completed', 10000, 'completed');
});
