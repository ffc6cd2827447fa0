// A worker node cut off from PostgreSQL by a network that stops delivering packets (issue 8),
// while the other nodes still reach it. Unlike a stopped server (pg_outage), nothing fails:
// the node's queries - its heartbeat among them - just never get an answer, and TCP
// keepalives do not end a query that is waiting for one. Once its lease has run out another
// node's sweeper requeues the job and runs it again, so the cut-off node must stop the job
// by then on its own: no two runs of a job overlap. When the network heals, the node's late
// writes are refused by the fence and it works again.
//
// The cut is a TCP proxy (pg_lib.mjs's startProxy) between worker node W and the database:
// "cut" holds back every byte in both directions (the sockets stay open, as on a
// partition), "heal" delivers them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../integration/lib.mjs';
import { enqueueOk, readRuns, storedEvents, assertContiguous } from '../integration/jobs_lib.mjs';
import { requirePg, createDatabase, dropDatabaseSync, startNode, startWorkerNode, startProxy, jobRow } from './pg_lib.mjs';

const LEASE_MS = 3000;
const base = requirePg();
const db = await createDatabase(base);
const shared = mkdtempSync(join(tmpdir(), 'refold-pgp-'));
const runLog = join(shared, 'runs.jsonl');
const ENV = { REFOLD_LEASE_MS: String(LEASE_MS), REFOLD_HEARTBEAT_MS: '500', REFOLD_LOG: 'info' };

const proxy = await startProxy(new URL(db));
const viaProxy = proxy.url;
const nodes = [];
let a;
after(async () => {
  proxy.heal();
  for (const n of nodes) { try { await n.stop(); } catch (e) { console.error(e.message); } }
  if (a) a.cleanup();
  proxy.close();
  rmSync(shared, { recursive: true, force: true });
  dropDatabaseSync(base, db);
});

const row = (id) => jobRow(db, id);

test('a worker node cut off from the database mid-job stops the job at its lease; another node runs it once', { timeout: 90000 }, async () => {
  // A: serve node without workers; W: the only worker node at first, through the proxy.
  a = await startNode(db, { init: true, runLog, env: { ...ENV, REFOLD_WORKERS: '0' } });
  nodes.push(a);
  const w = await startWorkerNode(viaProxy, { env: ENV, workers: 1, runLog });
  nodes.push(w);

  const job = await enqueueOk(a, { sleep_ms: 4 * LEASE_MS, log: true });
  const deadline = Date.now() + 10000;
  while ((await row(job.id)).status !== 'running') {
    assert.ok(Date.now() < deadline, 'the job started on W');
    await sleep(50);
  }
  assert.match((await row(job.id)).owner, new RegExp(`:${w.pid}:`));

  proxy.cut = true;
  const cutAt = Date.now();
  // V, a worker node that still reaches the database, rescues the job once its lease ran out.
  const v = await startWorkerNode(db, { env: ENV, workers: 1, runLog });
  nodes.push(v);
  for (;;) {
    const r = await row(job.id);
    if (r.status === 'completed') break;
    assert.ok(Date.now() - cutAt < 30000, `the job is still ${JSON.stringify(r)}`);
    await sleep(100);
  }

  const runs = readRuns(runLog).filter((r) => r.job === job.id).sort((x, y) => x.start_us - y.start_us);
  assert.deepEqual(runs.map((r) => [r.pid, r.attempt, r.outcome]), [[w.pid, 1, 'stopped'], [v.pid, 2, 'ok']], JSON.stringify(runs));
  // W gave the job up when its lease ran out - before V could start it - not when its
  // sleep ended 4 leases in.
  // (A few ms of slack for a loaded machine: W stops its run as its lease ends, V's
  // sweeper requeues the job only once it has ended; without the stop they overlap by
  // whole seconds.)
  assert.ok(runs[0].end_us - runs[1].start_us < 100000, `the runs overlap by ${(runs[0].end_us - runs[1].start_us) / 1000} ms`);
  assert.ok(runs[0].end_us / 1000 - cutAt < LEASE_MS + 1000, `W stopped ${runs[0].end_us / 1000 - cutAt} ms into the cut`);
  assert.match(w.logs, /lease ran out without a heartbeat/);

  // The network heals: W's held-back writes are refused, the job stays completed once,
  // and W claims work again.
  proxy.heal();
  await sleep(1000);
  const events = await storedEvents(a, job.id);
  assertContiguous(events, assert);
  assert.deepEqual(events.map((e) => e.type), ['log', 'retry', 'log', 'progress', 'completed']);
  assert.equal(events[1].data.error.code, 'lease_expired');
  assert.equal((await row(job.id)).status, 'completed');
  await v.stop();
  nodes.splice(nodes.indexOf(v), 1);
  const again = await enqueueOk(a, { sleep_ms: 10 });
  for (const until = Date.now() + 15000; (await row(again.id)).status !== 'completed';) {
    assert.ok(Date.now() < until, 'W runs jobs again after the cut healed');
    await sleep(100);
  }
  assert.equal(readRuns(runLog).find((r) => r.job === again.id).pid, w.pid);
});
