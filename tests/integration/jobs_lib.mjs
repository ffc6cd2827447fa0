// Helpers shared by the jobs_*.test.mjs files: a server with the test job type on,
// enqueueing test_sleep jobs, waiting for states, reading the per-run log that test_sleep
// writes, extra `refold worker` processes, and a small raw SSE client (independent of the
// server's code) for the resume tests.
import { spawn } from 'node:child_process';
import { readFileSync, existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import { BIN, Server, sleep } from './lib.mjs';

// Short settings so that leases expire, sweepers run and retries happen within a test.
export const FAST = {
  REFOLD_TEST_JOBS: '1',
  REFOLD_LEASE_MS: '1500',
  REFOLD_HEARTBEAT_MS: '300',
  REFOLD_SWEEP_MS: '100',
  REFOLD_POLL_MS: '100',
  REFOLD_CANCEL_POLL_MS: '100',
  REFOLD_BACKOFF_BASE_MS: '200',
  REFOLD_SHUTDOWN_GRACE_MS: '5000',
  REFOLD_SSE_POLL_MS: '50',
};

// A sanitizer build reports into the process's stderr; a report fails the test that
// stops the process, whatever its exit status.
const SANITIZER = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)/;
export function assertNoSanitizerReport(logs, who) {
  const m = logs.match(SANITIZER);
  if (m) throw new Error(`${who}: sanitizer report:\n${logs.slice(Math.max(0, m.index - 200), m.index + 4000)}`);
}

export async function startJobsServer(env = {}, args = []) {
  const s = new Server({ env: { ...FAST, ...env }, args });
  await s.init();
  s.runLog = join(s.dir, 'runs.jsonl');
  s.env.REFOLD_TEST_JOBS_LOG = s.runLog;
  const stop = s.stop.bind(s);
  s.stop = async (signal) => {
    const r = await stop(signal);
    assertNoSanitizerReport(s.logs, 'refold serve');
    if (signal === undefined || signal === 'SIGTERM')
      if (r && r.code !== 0 && r.code !== null) throw new Error(`refold serve exited ${r.code} on SIGTERM:\n${s.logs.slice(-3000)}`);
    return r;
  };
  await s.start();
  return s;
}

// Enqueue one test_sleep job; returns {status, json, headers}.
export async function enqueue(srv, params = {}, { maxAttempts, delayMs, key, headers = {} } = {}) {
  const body = { params };
  if (maxAttempts !== undefined) body.max_attempts = maxAttempts;
  if (delayMs !== undefined) body.delay_ms = delayMs;
  const h = { ...headers };
  if (key) h['idempotency-key'] = key;
  return srv.api('POST', '/v1/test/jobs', body, { headers: h });
}

export async function enqueueOk(srv, params = {}, opts = {}) {
  const r = await enqueue(srv, params, opts);
  if (r.status !== 202) throw new Error(`enqueue answered ${r.status}: ${r.text}`);
  return r.json;
}

// Enqueue many jobs in batches of 1000; returns their ids.
export async function enqueueMany(srv, paramsList) {
  const ids = [];
  for (let i = 0; i < paramsList.length; i += 1000) {
    const jobs = paramsList.slice(i, i + 1000).map((params) => ({ params }));
    const r = await srv.api('POST', '/v1/test/jobs', { jobs });
    if (r.status !== 202) throw new Error(`batch enqueue answered ${r.status}: ${r.text}`);
    for (const j of r.json.data) ids.push(j.id);
  }
  return ids;
}

export async function getJob(srv, id) {
  const r = await srv.api('GET', `/v1/jobs/${id}`);
  if (r.status !== 200) throw new Error(`GET job answered ${r.status}: ${r.text}`);
  return r.json;
}

// Poll the job until pred(job) holds; returns the job.
export async function waitJob(srv, id, pred, timeoutMs = 20000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let job;
  while (Date.now() < deadline) {
    job = await getJob(srv, id);
    if (pred(job)) return job;
    await sleep(25);
  }
  throw new Error(`job ${id}: timed out waiting for ${what}; last state ${JSON.stringify(job)}`);
}

export const isTerminal = (j) => ['completed', 'failed', 'cancelled'].includes(j.status);
export const waitTerminal = (srv, id, ms) => waitJob(srv, id, isTerminal, ms, 'a terminal state');

// Cancel a running job and wait for its end; resolves {answer, end, took}: took is the
// time from the cancel's 202 answer (the cancel is recorded by then) to the job's
// finished_at, both on this machine's clock, so neither the cancel request's own trip
// (slow on a loaded machine) nor this test's polling counts. Logs both as a # line.
export async function cancelAndTime(srv, id, timeoutMs = 10000) {
  const sent = Date.now();
  const answer = await srv.api('POST', `/v1/jobs/${id}/cancel`);
  const answered = Date.now();
  if (answer.status !== 202) throw new Error(`cancel answered ${answer.status}: ${answer.text}`);
  const end = await waitTerminal(srv, id, timeoutMs);
  const took = Date.parse(end.finished_at) - answered;
  console.log(`# cancel of ${id}: answered in ${answered - sent} ms; ${end.status} ${took} ms after the answer`);
  return { answer, end, took };
}

// The stored events of a job (JSON mode of the events endpoint), all pages.
export async function storedEvents(srv, id) {
  const out = [];
  let cursor = '';
  for (;;) {
    const r = await srv.api('GET', `/v1/jobs/${id}/events?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      undefined, { headers: { accept: 'application/json' } });
    if (r.status !== 200) throw new Error(`events answered ${r.status}: ${r.text}`);
    out.push(...r.json.data);
    if (!r.json.next_cursor) return out;
    cursor = r.json.next_cursor;
  }
}

// Seqs must be exactly 1..n.
export function assertContiguous(events, assert, label = '') {
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `${label} event ${i} has seq ${e.seq}`));
}

// The lines test_sleep appended to REFOLD_TEST_JOBS_LOG.
export function readRuns(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

// A `refold worker` process on db with exactly env; resolves once it logged that it runs
// (so env's REFOLD_LOG must keep info lines).
export async function spawnWorker(db, env, workers = 1) {
  const child = spawn(BIN, ['worker', '--db', db, '--workers', String(workers)], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w = { child, pid: child.pid, logs: '' };
  child.stdout.on('data', (d) => (w.logs += d));
  child.stderr.on('data', (d) => (w.logs += d));
  w.exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal }))); // output read to the end
  const deadline = Date.now() + 15000;
  while (!w.logs.includes('worker running')) {
    if (child.exitCode !== null) throw new Error(`worker exited early: ${w.logs}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`worker did not start: ${w.logs}`);
    }
    await sleep(20);
  }
  w.stop = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && !child.signalCode) child.kill(signal);
    const r = await w.exited;
    assertNoSanitizerReport(w.logs, 'refold worker');
    if (signal === 'SIGTERM' && r.code !== 0 && r.code !== null) throw new Error(`refold worker exited ${r.code}:\n${w.logs.slice(-3000)}`);
    return r;
  };
  return w;
}

// A `refold worker` process on the server's database.
export function startWorker(srv, env = {}, workers = 1) {
  return spawnWorker(srv.db, { ...process.env, ...srv.env, ...env, REFOLD_LOG: env.REFOLD_LOG || 'info' }, workers);
}

export function openConnections(pid, port) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(':')[1], 16);
      if (localPort === port && f[3] !== '0A' && inodes.has(f[9])) n++; // 0A: LISTEN
    }
  }
  return n;
}

export async function metric(srv, name) {
  const r = await srv.api('GET', '/metrics', undefined, { key: null });
  const re = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\d+)$`, 'm');
  const m = r.text.match(re);
  return m ? Number(m[1]) : NaN;
}

// A raw SSE client over node:http: connects to `${url}/v1/jobs/${id}/events`, parses
// `id:`/`event:`/`data:` lines itself, and calls onEvent({seq, type, data}) for each
// event. Resolves {events, ended: 'end'|'aborted'|'status', status} when the server ends
// the stream, when stop() returns true for an event (the socket is destroyed then), or
// when the answer is not 200.
export function sseOnce({ url, key, id, lastEventId, stopAfter, onOpen }) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${key}`, accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    const req = http.get(`${url}/v1/jobs/${id}/events`, { headers, agent: false }, (res) => {
      const events = [];
      if (res.statusCode !== 200) {
        res.resume();
        res.on('end', () => resolve({ events, ended: 'status', status: res.statusCode }));
        return;
      }
      if (onOpen) onOpen(res);
      let buf = '', cur = {}, done = false;
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        if (done) return;
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (cur.data !== undefined) {
              const ev = { seq: Number(cur.id), type: cur.event || 'message', data: JSON.parse(cur.data) };
              events.push(ev);
              if (stopAfter && stopAfter(ev, events)) {
                done = true;
                req.destroy();
                resolve({ events, ended: 'aborted', status: 200 });
                return;
              }
            }
            cur = {};
          } else if (!line.startsWith(':')) {
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'data') cur.data = cur.data === undefined ? value : `${cur.data}\n${value}`;
            else cur[field] = value;
          }
        }
      });
      res.on('end', () => { if (!done) resolve({ events, ended: 'end', status: 200 }); });
      res.on('error', () => { if (!done) resolve({ events, ended: 'end', status: 200 }); });
    });
    req.on('error', (e) => {
      if (e.code === 'ECONNRESET' || e.code === 'ECONNREFUSED') resolve({ events: [], ended: 'error', status: 0, error: e });
      else reject(e);
    });
  });
}
