#!/usr/bin/env node
// Job machinery benchmark (issue 3's "figures to report"); see bench/README-jobs.md.
//
//   node bench/jobs_bench.mjs [--bin build/refold] [--jobs 20000] [--subscribers 1000]
//
// 1. Burn-down: 20,000 `test_sleep` jobs with sleep_ms 0 are enqueued while no worker
//    runs, then `refold serve` starts with 2 workers on the SQLite file; jobs/s is
//    count / (last finished_at - first started_at), read from the database.
// 2. Enqueue-to-start latency on an idle server (2 workers): 300 jobs one at a time;
//    from just before the client sends POST to the moment the handler starts (the job's
//    result.start_us), both wall clocks of this machine.
// 3. SSE fan-out: 1,000 subscribers on one job that writes a progress event every
//    100 ms carrying t_us (wall clock just before its transaction); latency is receipt
//    time minus t_us for every (event, subscriber); server RSS is sampled while all
//    streams are open.
// Prints a markdown table. Needs REFOLD_TEST_JOBS support in the binary (always built)
// and the sqlite3 CLI.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import http from 'node:http';
import net from 'node:net';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const BIN = resolve(args.bin || process.env.REFOLD_BIN || 'build/refold');
const JOBS = Number(args.jobs || 20000);
const SUBSCRIBERS = Number(args.subscribers || 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
const fmt = (x, d = 1) => Number(x).toFixed(d);

if (!existsSync(BIN)) { console.error(`no binary at ${BIN} (build first, or pass --bin)`); process.exit(2); }
const dir = mkdtempSync(join(tmpdir(), 'refold-bench-'));
const db = join(dir, 'bench.db');
const baseEnv = { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), REFOLD_LOG: 'warn', REFOLD_TEST_JOBS: '1' };

function sh(bin, argv, env = baseEnv) { return execFileSync(bin, argv, { env, encoding: 'utf8' }); }
function sql(q) { return sh('sqlite3', ['-batch', '-noheader', db, q]).trim(); }

const init = sh(BIN, ['init', '--db', db, '--no-config']);
const KEY = init.match(/^\s+(rf_[a-z0-9]+)\s*$/m)[1];

async function serve(env) {
  const portFile = join(dir, `port-${Date.now()}`);
  const child = spawn(BIN, ['serve', '--db', db, '--listen', '127.0.0.1:0', '--port-file', portFile],
    { env: { ...baseEnv, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  while (!existsSync(portFile)) { if (child.exitCode !== null) throw new Error('serve exited'); await sleep(10); }
  const port = Number(readFileSync(portFile, 'utf8'));
  const exited = new Promise((r) => child.on('exit', r));
  return { child, url: `http://127.0.0.1:${port}`, stop: async () => { child.kill('SIGTERM'); await exited; } };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function api(url, method, path, body) {
  return new Promise((resolveP, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const req = http.request(`${url}${path}`, {
      method, agent, headers: { authorization: `Bearer ${KEY}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolveP({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function rssKiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: Number(s.match(/VmRSS:\s+(\d+)/)[1]), hwm: Number(s.match(/VmHWM:\s+(\d+)/)[1]) };
}

const rows = [];

// ---- 1. burn-down ----
{
  const srv = await serve({ REFOLD_WORKERS: '0' });
  for (let i = 0; i < JOBS; i += 1000) {
    const n = Math.min(1000, JOBS - i);
    const r = await api(srv.url, 'POST', '/v1/test/jobs', { jobs: Array.from({ length: n }, () => ({ params: { sleep_ms: 0 } })) });
    if (r.status !== 202) throw new Error(`enqueue: ${r.status}`);
  }
  await srv.stop();
  const t0 = Date.now();
  const run = await serve({ REFOLD_WORKERS: '2' });
  for (;;) {
    await sleep(200);
    if (Number(sql("SELECT COUNT(*) FROM jobs WHERE status <> 'completed'")) === 0) break;
    if (Date.now() - t0 > 600000) throw new Error('burn-down did not finish in 10 minutes');
  }
  const [first, last, count] = sql("SELECT MIN(started_at), MAX(finished_at), COUNT(*) FROM jobs WHERE status = 'completed'").split('|').map(Number);
  await run.stop();
  const secs = (last - first) / 1000;
  rows.push(['Burn-down: ' + count.toLocaleString('en') + ' `test_sleep 0` jobs, 2 workers, SQLite',
    `${Math.round(count / secs).toLocaleString('en')} jobs/s (${fmt(secs, 2)} s)`, '>= 2,000 jobs/s']);
}

// ---- 2 and 3 on one idle server with 2 workers ----
const srv = await serve({ REFOLD_WORKERS: '2', REFOLD_SSE_PING_MS: '15000' });
{
  const lat = [];
  for (let i = 0; i < 300; i++) {
    const t0 = nowUs();
    const r = await api(srv.url, 'POST', '/v1/test/jobs', { params: { sleep_ms: 0 } });
    const id = r.json.id;
    let job;
    do { await sleep(5); job = (await api(srv.url, 'GET', `/v1/jobs/${id}`)).json; } while (job.status !== 'completed');
    lat.push((job.result.start_us - t0) / 1000);
    await sleep(10); // let the workers go idle again
  }
  rows.push(['Enqueue-to-start on an idle server (300 jobs, 2 workers)',
    `p50 ${fmt(pct(lat, 50), 2)} ms, p99 ${fmt(pct(lat, 99), 2)} ms, max ${fmt(Math.max(...lat), 2)} ms`, 'p99 < 50 ms']);
}
{
  const EVENTS = 40;
  const r = await api(srv.url, 'POST', '/v1/test/jobs', { params: { sleep_ms: 3000 + EVENTS * 100, progress: EVENTS } });
  const id = r.json.id;
  const lat = [];
  let open = 0, ended = 0, failed = 0;
  const rss0 = rssKiB(srv.child.pid);
  // Raw sockets and Buffer searches: the client's own cost per receipt stays a few
  // microseconds, so the figure is mostly the server's (both share the machine's cores).
  const request = Buffer.from(`GET /v1/jobs/${id}/events HTTP/1.1\r\nHost: bench\r\n` +
    `Authorization: Bearer ${KEY}\r\nAccept: text/event-stream\r\n\r\n`);
  const needle = Buffer.from('"t_us":');
  const port = Number(new URL(srv.url).port);
  const done = new Promise((resolveAll) => {
    const finish = () => { if (ended + failed === SUBSCRIBERS) resolveAll(); };
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const sock = net.connect(port, '127.0.0.1', () => sock.write(request));
      let opened = false;
      sock.on('data', (chunk) => {
        const at = nowUs();
        if (!opened) { opened = true; open++; }
        for (let k = chunk.indexOf(needle); k >= 0; k = chunk.indexOf(needle, k + 1)) {
          let v = 0;
          for (let j = k + needle.length; chunk[j] >= 48 && chunk[j] <= 57; j++) v = v * 10 + (chunk[j] - 48);
          lat.push((at - v) / 1000);
        }
        if (chunk.includes('event: completed')) sock.end();
      });
      sock.on('close', () => { ended++; finish(); });
      sock.on('error', () => { failed++; });
    }
  });
  let peak = rss0;
  const sampler = setInterval(() => { try { const x = rssKiB(srv.child.pid); if (x.rss > peak.rss) peak = x; } catch { /* exited */ } }, 50);
  await done;
  clearInterval(sampler);
  rows.push([`SSE: ${SUBSCRIBERS.toLocaleString('en')} subscribers on one job, ${EVENTS} events (${open} connected, ${failed} failed)`,
    `write-to-receipt p50 ${fmt(pct(lat, 50), 2)} ms, p99 ${fmt(pct(lat, 99), 2)} ms, max ${fmt(Math.max(...lat), 2)} ms (${lat.length.toLocaleString('en')} receipts)`, 'p99 < 100 ms']);
  rows.push(['Server RSS with those streams open', `${fmt(peak.rss / 1024)} MiB (idle before: ${fmt(rss0.rss / 1024)} MiB)`, '< 64 MiB']);
}
await srv.stop();
agent.destroy();
rmSync(dir, { recursive: true, force: true });

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)[1];
const cores = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm).length;
console.log(`### refold job machinery (${new Date().toISOString().slice(0, 10)}, ${cores} cores, ${cpu})\n`);
console.log('| measure | result | target |\n|---|---|---|');
for (const [m, r, t] of rows) console.log(`| ${m} | ${r} | ${t} |`);
