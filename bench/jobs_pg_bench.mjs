#!/usr/bin/env node
// Job burn-down on PostgreSQL with several `refold worker` processes (issue 8); see
// bench/README-pg.md.
//
//   node bench/jobs_pg_bench.mjs [--bin build/refold] [--jobs 20000]
//        [--worker-processes 1,4] [--threads 2] [--runs 1]
//        [--pg postgres://user@host:port/db | --durable]
//
// For each worker-process count: a fresh database; `refold serve` with no workers enqueues
// --jobs `test_sleep` jobs with sleep_ms 0 (batches of 1,000); then that many `refold
// worker` processes (REFOLD_WORKERS=--threads each) start at once; jobs/s = jobs ÷ (last
// finished_at − first started_at), read from the database. The serve node stays up during
// the run (its event watcher LISTENs, as on a real deployment).
//
// Without --pg it starts a throwaway cluster with scripts/pg-cluster.sh: the test settings
// (fsync=off, synchronous_commit=off), or with --durable PostgreSQL's durable defaults. The
// report prints the settings the server actually ran with.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = resolve(args.bin || process.env.REFOLD_BIN || join(ROOT, 'build', 'refold'));
const JOBS = Number(args.jobs || 20000);
const PROCS = String(args['worker-processes'] || '1,4').split(',').map(Number);
const THREADS = Number(args.threads || 2);
const RUNS = Number(args.runs || 1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x, d = 1) => Number(x).toFixed(d);

if (!existsSync(BIN)) { console.error(`no binary at ${BIN} (build first, or pass --bin)`); process.exit(2); }
const dir = mkdtempSync(join(tmpdir(), 'refold-pgbench-'));
const baseEnv = { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), REFOLD_LOG: 'warn', REFOLD_TEST_JOBS: '1' };

function psql(url, q) { return execFileSync('psql', [url, '-qAtX', '-c', q], { encoding: 'utf8' }).trim(); }

async function freePort() {
  return new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });
}

let cluster = null, base = args.pg;
if (!base) {
  const cdir = mkdtempSync(join(tmpdir(), 'refold-pgbench-pg-')); // its own: pg-cluster.sh hands it to postgres
  const port = await freePort();
  const env = { ...process.env, PG_DURABLE: args.durable ? '1' : '0' };
  base = execFileSync(join(ROOT, 'scripts', 'pg-cluster.sh'), ['start', cdir, String(port)], { encoding: 'utf8', env }).trim();
  cluster = cdir;
}
const settings = psql(base, "SELECT name || '=' || current_setting(name) FROM pg_settings WHERE name IN "
  + "('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'wal_level', 'max_connections') ORDER BY name").split('\n').join(', ');
const version = psql(base, 'SHOW server_version');

async function serve(db) {
  const portFile = join(dir, `port-${Date.now()}`);
  const child = spawn(BIN, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--port-file', portFile],
    { env: { ...baseEnv, REFOLD_WORKERS: '0' }, stdio: ['ignore', 'ignore', 'inherit'] });
  while (!existsSync(portFile)) { if (child.exitCode !== null) throw new Error('serve exited'); await sleep(10); }
  const port = Number(readFileSync(portFile, 'utf8'));
  const exited = new Promise((r) => child.on('exit', r));
  return { url: `http://127.0.0.1:${port}`, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

function worker(db) {
  const child = spawn(BIN, ['worker', '--db', db, '--workers', String(THREADS)],
    { env: baseEnv, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => child.on('exit', r));
  return { stop: async () => { child.kill('SIGTERM'); await exited; } };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function post(url, key, path, body) {
  return new Promise((res, rej) => {
    const payload = JSON.stringify(body);
    const req = http.request(`${url}${path}`, { method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode));
    });
    req.on('error', rej);
    req.end(payload);
  });
}

async function burnDown(procs) {
  const name = `refold_bench_${process.pid}_${Date.now()}`;
  psql(base, `CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = '/' + name;
  const db = u.toString();
  try {
    const init = execFileSync(BIN, ['init', '--db', db, '--no-config'], { env: baseEnv, encoding: 'utf8' });
    const key = init.match(/^\s+(rf_[a-z0-9]+)\s*$/m)[1];
    const srv = await serve(db);
    for (let i = 0; i < JOBS; i += 1000) {
      const n = Math.min(1000, JOBS - i);
      const status = await post(srv.url, key, '/v1/test/jobs', { jobs: Array.from({ length: n }, () => ({ params: { sleep_ms: 0 } })) });
      if (status !== 202) throw new Error(`enqueue: ${status}`);
    }
    psql(db, 'VACUUM ANALYZE jobs');
    const t0 = Date.now();
    const ws = Array.from({ length: procs }, () => worker(db));
    for (;;) {
      await sleep(200);
      if (Number(psql(db, "SELECT COUNT(*) FROM jobs WHERE status <> 'completed'")) === 0) break;
      if (Date.now() - t0 > 900000) throw new Error('burn-down did not finish in 15 minutes');
    }
    const [first, last, count] = psql(db, "SELECT MIN(started_at), MAX(finished_at), COUNT(*) FROM jobs WHERE status = 'completed'").split('|').map(Number);
    const perProc = psql(db, "SELECT COUNT(DISTINCT result::json->>'pid') FROM jobs").trim();
    await Promise.all(ws.map((w) => w.stop()));
    await srv.stop();
    const secs = (last - first) / 1000;
    return { count, secs, rate: count / secs, perProc: Number(perProc) };
  } finally {
    psql(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

const rows = [];
for (const procs of PROCS) {
  const rates = [];
  let last;
  for (let r = 0; r < RUNS; r++) {
    last = await burnDown(procs);
    rates.push(last.rate);
  }
  rows.push([`Burn-down: ${last.count.toLocaleString('en')} \`test_sleep 0\` jobs, ${procs} worker process${procs > 1 ? 'es' : ''} × ${THREADS} threads (${last.perProc} ran jobs)`,
    rates.map((x) => `${Math.round(x).toLocaleString('en')} jobs/s`).join(', ') + ` (${fmt(last.secs, 2)} s last run)`]);
}
agent.destroy();
if (cluster) {
  execFileSync(join(ROOT, 'scripts', 'pg-cluster.sh'), ['stop', cluster]);
  rmSync(cluster, { recursive: true, force: true });
}
rmSync(dir, { recursive: true, force: true });

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)[1];
const cores = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm).length;
console.log(`### refold burn-down on PostgreSQL ${version} (${new Date().toISOString().slice(0, 10)}, ${cores} cores, ${cpu})\n`);
console.log(`Server: ${cluster ? 'throwaway cluster on this machine' : 'given by --pg'}; ${settings}\n`);
console.log('| measure | result |\n|---|---|');
for (const [m, r] of rows) console.log(`| ${m} | ${r} |`);
