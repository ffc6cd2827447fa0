// Several nodes on one PostgreSQL database (issue 8): 2 `refold serve` + 2 `refold worker`
// processes burn down 2,000 test_sleep jobs - each completes exactly once, no two runs of
// a job overlap, the work spreads over every process; an SSE client on serve node A
// follows, live, a job that worker node C runs (only LISTEN/NOTIFY can bring C's events to
// A quickly: the safety-net re-read is set to a minute) and resumes on serve node B with
// Last-Event-ID; kill -9 of worker node D mid-job, and that job completes on another node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../integration/lib.mjs';
import { enqueueMany, sseOnce, storedEvents, assertContiguous, readRuns } from '../integration/jobs_lib.mjs';
import {
  requirePg, createDatabase, dropDatabaseSync, startNodes, waitAllTerminal,
  jobLedger, assertExactlyOnce, psql,
} from './pg_lib.mjs';

const JOBS = 2000;
const base = requirePg();
const db = await createDatabase(base);
// Leases long enough that 5 busy processes on 2 cores never miss one; short enough that a
// killed node's job is taken over within seconds. Safety-net re-read: once a minute, so
// cross-node events can only arrive fast through NOTIFY.
const ENV = { REFOLD_LEASE_MS: '4000', REFOLD_HEARTBEAT_MS: '500', REFOLD_SSE_RESYNC_MS: '60000', REFOLD_LOG: 'warn' };
const shared = mkdtempSync(join(tmpdir(), 'refold-pgm-'));
const runLog = join(shared, 'runs.jsonl'); // test_sleep's run log, one for every process
const nodes = [];
let a, b, c, d;
after(async () => {
  for (const n of nodes) { try { await n.stop(); } catch (e) { console.error(e.message); } }
  for (const n of [a, b]) if (n) n.cleanup();
  rmSync(shared, { recursive: true, force: true });
  dropDatabaseSync(base, db);
});

before(async () => {
  [a, b, c, d] = await startNodes(db, nodes, { serve: 2, workers: 2, runLog, env: ENV });
});

test('2 serve + 2 worker nodes: 2,000 jobs, each completed exactly once, spread over every node', { timeout: 180000 }, async () => {

  // Half enqueued through each serve node, all at once.
  const params = Array.from({ length: JOBS }, (_, i) => ({ sleep_ms: i % 4, progress: i % 3 }));
  const t0 = Date.now();
  const ids = (await Promise.all([enqueueMany(a, params.slice(0, JOBS / 2)), enqueueMany(b, params.slice(JOBS / 2))])).flat();
  assert.equal(new Set(ids).size, JOBS);
  const counts = await waitAllTerminal(db, JOBS, 120000);
  const secs = (Date.now() - t0) / 1000;
  console.log(`# ${JOBS} jobs in ${secs.toFixed(1)} s on 4 processes (${Math.round(JOBS / secs)} jobs/s, enqueue included)`);
  assert.deepEqual(counts, { completed: JOBS });

  const ledger = await jobLedger(db);
  assert.equal(ledger.length, JOBS);
  const { byPid, runs } = assertExactlyOnce(assert, ledger, runLog);
  assert.equal(runs, JOBS, 'one run per job');
  const pids = [a.child.pid, b.child.pid, c.pid, d.pid];
  console.log(`# runs per process: ${pids.map((p) => byPid.get(p) || 0).join(', ')}`);
  for (const p of pids) assert.ok((byPid.get(p) || 0) >= JOBS / 20, `process ${p} ran ${byPid.get(p) || 0} jobs: ${JSON.stringify([...byPid])}`);
  assert.equal(byPid.size, 4, 'only these four processes ran jobs');
  for (const n of [a, b, c, d]) assert.doesNotMatch(n.logs, /fenced write|lease lost|lease ran out|cannot/);
});

// Enqueue one 3-second job per worker thread (4 processes x 2): each thread takes exactly
// one, so some run on the worker nodes. Returns {job id: pid} once all are running.
async function oneJobPerThread(params) {
  const ids = await enqueueMany(a, Array.from({ length: 8 }, () => params));
  const pidOf = {};
  const deadline = Date.now() + 15000;
  while (Object.keys(pidOf).length < ids.length) {
    assert.ok(Date.now() < deadline, `not every job started: ${JSON.stringify(pidOf)}`);
    for (const id of ids) {
      if (pidOf[id]) continue;
      const ev = (await storedEvents(a, id)).find((e) => e.type === 'log');
      if (ev) pidOf[id] = Number(ev.data.message.match(/pid (\d+)$/)[1]);
    }
    await sleep(50);
  }
  return pidOf;
}

test('an SSE client on node A follows a job run by worker node C live, and resumes on node B', { timeout: 60000 }, async () => {
  const pidOf = await oneJobPerThread({ sleep_ms: 3000, progress: 12, log: true });
  const onC = Object.keys(pidOf).find((id) => pidOf[id] === c.pid);
  assert.ok(onC, `a job runs on worker node C: ${JSON.stringify(pidOf)}`);

  // On A from the start until the 6th progress event, with each event's arrival lag.
  const lags = [];
  const first = await sseOnce({
    url: a.url, key: a.key, id: onC,
    stopAfter: (ev) => {
      if (ev.data.t_us) lags.push(Date.now() - ev.data.t_us / 1000);
      return ev.type === 'progress' && ev.data.i === 6;
    },
  });
  assert.equal(first.ended, 'aborted');
  const k = first.events[first.events.length - 1].seq;
  // The rest on B, from Last-Event-ID k.
  const rest = await sseOnce({
    url: b.url, key: a.key, id: onC, lastEventId: k,
    stopAfter: (ev) => { if (ev.data.t_us) lags.push(Date.now() - ev.data.t_us / 1000); return false; },
  });
  assert.equal(rest.ended, 'end', 'node B closed the stream after the terminal event');
  const all = [...first.events, ...rest.events];
  const stored = await storedEvents(a, onC);
  assert.deepEqual(all.map((e) => e.seq), stored.map((e) => e.seq), 'no gap, no duplicate');
  assertContiguous(stored, assert);
  assert.equal(all[all.length - 1].type, 'completed');
  assert.equal(all[all.length - 1].data.result.pid, c.pid);
  // Live: written on C, read on A and B within a fraction of a second (the re-read safety
  // net is a minute away), through NOTIFY.
  const live = lags.filter((x) => x !== undefined);
  assert.ok(live.length >= 10, `progress events seen live: ${live.length}`);
  // The median under a second and none near the minute: one event of a dozen can stall on a
  // loaded machine; without NOTIFY they would all wait for the re-read.
  const sorted = [...live].sort((x, y) => x - y);
  assert.ok(sorted[Math.floor(sorted.length / 2)] < 1000 && sorted[sorted.length - 1] < 5000,
    `cross-node lags ${live.map((x) => x.toFixed(0))} ms`);
  console.log(`# cross-node SSE lag: max ${Math.max(...live).toFixed(0)} ms over ${live.length} events`);
  for (const id of Object.keys(pidOf)) await waitDone(id);
});

async function waitDone(id, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const j = (await a.api('GET', `/v1/jobs/${id}`)).json;
    if (['completed', 'failed', 'cancelled'].includes(j.status)) return j;
    assert.ok(Date.now() < deadline, `job ${id} still ${j.status}`);
    await sleep(100);
  }
}

test('kill -9 of worker node D mid-job: the job completes on another node', { timeout: 60000 }, async () => {
  const pidOf = await oneJobPerThread({ sleep_ms: 3000, log: true });
  const onD = Object.keys(pidOf).find((id) => pidOf[id] === d.pid);
  assert.ok(onD, `a job runs on worker node D: ${JSON.stringify(pidOf)}`);
  d.child.kill('SIGKILL');
  await d.exited;
  nodes.splice(nodes.indexOf(d), 1);

  const done = await waitDone(onD, 30000);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 2);
  assert.notEqual(done.result.pid, d.pid);
  assert.ok([a.child.pid, b.child.pid, c.pid].includes(done.result.pid));
  const events = await storedEvents(a, onD);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['log', 'retry', 'log', 'progress', 'completed']);
  assert.equal(events[1].data.error.code, 'lease_expired');
  const runs = readRuns(runLog).filter((r) => r.job === onD);
  assert.deepEqual(runs.map((r) => [r.attempt, r.outcome]), [[2, 'ok']], 'the killed run never finished');
  for (const id of Object.keys(pidOf)) assert.equal((await waitDone(id)).status, 'completed');
  assert.equal(await psql(db, "SELECT COUNT(*) FROM jobs WHERE status <> 'completed'"), '0');
});
