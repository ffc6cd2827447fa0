// Helpers of the PostgreSQL-only tests (CTest label `pg`, run by `make test-pg`): several
// refold processes on one database, the database's own cluster for tests that restart it,
// and the checks that say "every job completed exactly once".
//
// These tests never skip. Without REFOLD_TEST_PG_URL (a server where they may create
// databases) they fail, saying how to run them: a requested test that cannot run must not
// look like a passed one.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, SOURCE_DIR, Server, sleep } from '../integration/lib.mjs';
import { FAST, assertNoSanitizerReport, readRuns, spawnWorker } from '../integration/jobs_lib.mjs';

const execFileP = promisify(execFile);

export function requirePg() {
  const url = process.env.REFOLD_TEST_PG_URL;
  if (!url || !/^postgres(ql)?:\/\//.test(url))
    throw new Error('this test needs PostgreSQL: run it with `make test-pg` (a throwaway cluster), '
      + 'or set REFOLD_TEST_PG_URL to a postgres:// URL of a server where it may create databases');
  return url;
}

// psql on a URL; resolves the unaligned, tuples-only output.
export async function psql(url, statement) {
  const { stdout } = await execFileP('psql', [url, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', statement]);
  return stdout.trim();
}

export function psqlSync(url, statement) {
  return execFileSync('psql', [url, '-qAtX', '-c', statement], { encoding: 'utf8' }).trim();
}

let counter = 0;
// A new empty database on the server of `base`; returns its URL.
export async function createDatabase(base) {
  const name = `refold_p${process.pid}_${Date.now()}_${counter++}`;
  await psql(base, `CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = '/' + name;
  return u.toString();
}

export function dropDatabaseSync(base, url) {
  const name = new URL(url).pathname.slice(1);
  if (!/^refold_p[0-9_]+$/.test(name)) return;
  try { psqlSync(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch { /* ignore */ }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A throwaway cluster of our own (scripts/pg-cluster.sh), for tests that stop and start
// the database server under the nodes.
export async function startCluster() {
  requirePg(); // the label was requested on a machine set up for it
  const dir = mkdtempSync(join(tmpdir(), 'refold-pgc-'));
  const port = await freePort();
  const script = join(SOURCE_DIR, 'scripts', 'pg-cluster.sh');
  const url = execFileSync(script, ['start', dir, String(port)], { encoding: 'utf8' }).trim();
  return {
    url,
    dir,
    // pg_ctl stop -m fast: every session is terminated (FATAL 57P01), new ones are refused.
    stop: () => execFileSync(script, ['stop', dir]),
    start: () => execFileSync(script, ['start', dir, String(port)], { encoding: 'utf8' }),
    restart: () => execFileSync(script, ['restart', dir]),
    destroy: () => {
      try { execFileSync(script, ['stop', dir]); } catch { /* ignore */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A `refold serve` node on db (already initialised by another node, or init it: first).
export async function startNode(db, { env = {}, init = false, runLog, key } = {}) {
  const s = new Server({ db, env: { ...FAST, ...env } });
  if (init) {
    await s.init();
  } else {
    s.db = db;
    s.key = key;
  }
  if (runLog) s.env.REFOLD_TEST_JOBS_LOG = runLog;
  await s.start();
  const stop = s.stop.bind(s);
  s.stop = async (signal) => {
    const r = await stop(signal);
    assertNoSanitizerReport(s.logs, 'refold serve');
    return r;
  };
  return s;
}

// A `refold worker` node on db.
export function startWorkerNode(db, { env = {}, workers = 2, runLog } = {}) {
  const e = { ...process.env, ...FAST, ...env, REFOLD_LOG: 'info' };
  if (runLog) e.REFOLD_TEST_JOBS_LOG = runLog;
  return spawnWorker(db, e, workers);
}

// `serve` serve nodes (the first initialises the database and makes the key; each runs 2
// workers) then `workers` worker nodes on db, each pushed onto `into` as soon as it runs, so
// an after() hook stops whatever did start.
export async function startNodes(db, into, { serve = 1, workers = 0, runLog, env = {} } = {}) {
  const out = [];
  for (let i = 0; i < serve + workers; i++) {
    const n = i < serve
      ? await startNode(db, { init: i === 0, key: out[0]?.key, runLog, env: { ...env, REFOLD_WORKERS: '2' } })
      : await startWorkerNode(db, { runLog, env });
    into.push(n);
    out.push(n);
  }
  return out;
}

export async function health(node) {
  try {
    const r = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(3000) });
    await r.text();
    return r.status;
  } catch {
    return 0;
  }
}

// Poll until every job of the database is terminal; returns the counts by status.
export async function waitAllTerminal(db, total, timeoutMs, what = 'jobs') {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      last = await psql(db, "SELECT status || '=' || COUNT(*) FROM jobs GROUP BY status ORDER BY 1");
      const counts = Object.fromEntries(last.split('\n').filter(Boolean).map((l) => l.split('=')).map(([k, v]) => [k, Number(v)]));
      const terminal = (counts.completed || 0) + (counts.failed || 0) + (counts.cancelled || 0);
      if (terminal === total) return counts;
    } catch { /* the database may be restarting */ }
    if (Date.now() > deadline) throw new Error(`${what}: not all terminal after ${timeoutMs} ms: ${last}`);
    await sleep(200);
  }
}

// The DB truth for every job: one row per job with its status, attempt, number of
// `completed` events, and whether its event seqs are exactly 1..n.
export async function jobLedger(db) {
  const text = await psql(db, `
    SELECT j.id, j.status, j.attempt, j.event_seq,
           (SELECT COUNT(*) FROM job_events e WHERE e.job_id = j.id AND e.type = 'completed'),
           (SELECT COUNT(*) FROM job_events e WHERE e.job_id = j.id),
           (SELECT COALESCE(MAX(seq), 0) FROM job_events e WHERE e.job_id = j.id),
           COALESCE(j.result::json->>'pid', ''), COALESCE(j.result::json->>'attempt', '')
    FROM jobs j`);
  return text.split('\n').filter(Boolean).map((l) => {
    const [id, status, attempt, eventSeq, completedEvents, events, maxSeq, pid, resultAttempt] = l.split('|');
    return { id, status, attempt: Number(attempt), eventSeq: Number(eventSeq), completedEvents: Number(completedEvents),
      events: Number(events), maxSeq: Number(maxSeq), pid: pid ? Number(pid) : null,
      resultAttempt: resultAttempt ? Number(resultAttempt) : null };
  });
}

// Every job completed exactly once, by the DB's record and by test_sleep's run log: one
// `completed` event, contiguous seqs, the result written by the final attempt, exactly one
// run that finished ok and it is that attempt, and no two runs of a job overlapping.
// Returns {runs by pid, jobs that needed more than one attempt}.
export function assertExactlyOnce(assert, ledger, runLog, { allowRetries = false } = {}) {
  const runs = readRuns(runLog);
  const byJob = new Map();
  for (const r of runs) {
    if (!byJob.has(r.job)) byJob.set(r.job, []);
    byJob.get(r.job).push(r);
  }
  const byPid = new Map();
  let retried = 0;
  const problems = [];
  for (const j of ledger) {
    const list = (byJob.get(j.id) || []).sort((a, b) => a.start_us - b.start_us);
    const ok = list.filter((r) => r.outcome === 'ok');
    if (j.status !== 'completed') problems.push(`${j.id} is ${j.status}`);
    if (j.completedEvents !== 1) problems.push(`${j.id} has ${j.completedEvents} completed events`);
    if (j.events !== j.maxSeq || j.maxSeq !== j.eventSeq) problems.push(`${j.id} events not 1..${j.eventSeq}: ${j.events} rows, max ${j.maxSeq}`);
    if (j.resultAttempt !== j.attempt) problems.push(`${j.id} result of attempt ${j.resultAttempt}, job attempt ${j.attempt}`);
    if (ok.length !== 1) problems.push(`${j.id} finished ok ${ok.length} times: ${JSON.stringify(list)}`);
    else if (ok[0].attempt !== j.attempt || ok[0].pid !== j.pid) problems.push(`${j.id} ok run ${JSON.stringify(ok[0])} is not the completing one (attempt ${j.attempt}, pid ${j.pid})`);
    for (let i = 1; i < list.length; i++)
      if (list[i].start_us < list[i - 1].end_us) problems.push(`${j.id} runs overlap: ${JSON.stringify(list)}`);
    if (j.attempt !== 1 || list.length !== 1) retried++;
    for (const r of ok) byPid.set(r.pid, (byPid.get(r.pid) || 0) + 1);
  }
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} jobs not completed exactly once`);
  if (!allowRetries) assert.equal(retried, 0, 'jobs that ran more than once');
  return { byPid, retried, runs: runs.length };
}

// A job's row as the database has it: {status, attempt, owner}.
export async function jobRow(url, id) {
  const [status, attempt, owner] = (await psql(url, `SELECT status, attempt, COALESCE(lease_owner, '') FROM jobs WHERE id = '${id}'`)).split('|');
  return { status, attempt: Number(attempt), owner };
}

// A TCP proxy to target (a URL) on 127.0.0.1, standing for the network between a node and
// the database: setting p.cut holds back every byte in both directions (the sockets stay
// open, as on a partition: nothing fails, queries get no answer), p.heal() delivers them.
// p.port is its port, p.url the database URL through it; p.close() ends it.
export async function startProxy(target) {
  const pairs = new Set();
  const p = { cut: false };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { client, upstream, held: [] };
    pairs.add(pair);
    const forward = (to) => (data) => { if (p.cut) pair.held.push([to, data]); else to.write(data); };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const close = () => { client.destroy(); upstream.destroy(); pairs.delete(pair); };
    for (const s of [client, upstream]) { s.on('error', close); s.on('close', close); }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  p.port = server.address().port;
  const via = new URL(target);
  via.hostname = '127.0.0.1';
  via.port = String(p.port);
  p.url = via.toString();
  p.heal = () => {
    p.cut = false;
    for (const pair of pairs) for (const [to, data] of pair.held.splice(0)) to.write(data);
  };
  p.close = () => {
    server.close();
    for (const pair of pairs) { pair.client.destroy(); pair.upstream.destroy(); }
  };
  return p;
}
