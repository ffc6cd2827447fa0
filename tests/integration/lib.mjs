// Integration-test harness: boots the real refold binary on an ephemeral port
// with a temporary database (like Redis's start_server), and talks HTTP to it.
//
//   const srv = await startServer();          // init + serve, default workspace
//   const r = await srv.api('POST', '/v1/agents', {name: 'a'});
//   r.status, r.json, r.headers
//   await srv.restart();                       // same database, new process
//   await srv.stop();
//
// REFOLD_BIN and REFOLD_SOURCE_DIR come from CTest; REFOLD_TEST_PG_URL may name a
// postgres:// server to run the same tests on PostgreSQL (a fresh database each).
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
export const BIN = process.env.REFOLD_BIN || join(process.cwd(), 'build', 'refold');
export const SOURCE_DIR = process.env.REFOLD_SOURCE_DIR || process.cwd();
export const OUTPUT_DIR = process.env.REFOLD_TEST_OUTPUT || join(tmpdir(), 'refold-test-output');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// mulberry32: a small seeded generator, so a failing random workload can be replayed
// from its seed (REFOLD_TEST_SEED).
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let pgCounter = 0;

// A fresh database URL: a SQLite file in dir, or (REFOLD_TEST_PG_URL set) a new
// PostgreSQL database created on that server.
export async function freshDatabase(dir) {
  const pg = process.env.REFOLD_TEST_PG_URL;
  if (!pg) return join(dir, 'refold.db');
  const name = `refold_t${process.pid}_${Date.now()}_${pgCounter++}`;
  await execFileP('psql', [pg, '-qAtc', `CREATE DATABASE ${name}`]);
  const u = new URL(pg);
  u.pathname = '/' + name;
  return u.toString();
}

// Drop a database made by freshDatabase (PostgreSQL only).
export function dropDatabase(url) {
  const pg = process.env.REFOLD_TEST_PG_URL;
  const name = new URL(url).pathname.slice(1);
  if (!pg || !/^refold_t[0-9_]+$/.test(name)) return;
  try { execFileSync('psql', [pg, '-qAtc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]); } catch { /* ignore */ }
}

// Run the CLI; resolves {code, stdout, stderr} (never rejects on exit status).
export function run(args, { env = {}, input, timeout = 60000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A command that does not read its stdin may exit before the input is written:
    // that EPIPE is not the test's business (the exit status and output are).
    child.stdin.on('error', () => {});
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

async function waitForFile(path, ms, child) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8').trim();
      if (text) return text;
    }
    if (child && child.exitCode !== null) throw new Error(`server exited early with ${child.exitCode}`);
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${path}`);
}

// A key for a new workspace on the same database (for cross-workspace tests).
export async function createWorkspaceKey(db, name, env = {}) {
  let r = await run(['workspace', 'create', name, '--db', db], { env });
  if (r.code !== 0) throw new Error(`workspace create failed: ${r.stderr}`);
  r = await run(['key', 'create', '--workspace', name, '--db', db], { env });
  if (r.code !== 0) throw new Error(`key create failed: ${r.stderr}`);
  return r.stdout.trim();
}

export class Server {
  constructor(opts = {}) {
    this.opts = opts;
    this.dir = mkdtempSync(join(tmpdir(), 'refold-it-'));
    this.env = { XDG_CONFIG_HOME: join(this.dir, 'config'), REFOLD_LOG: 'info', ...(opts.env || {}) };
    this.logs = '';
  }

  async init() {
    this.db = this.opts.db || (await freshDatabase(this.dir));
    const r = await run(['init', '--db', this.db, '--no-config'], { env: this.env });
    if (r.code !== 0) throw new Error(`refold init failed: ${r.stderr}`);
    const m = r.stdout.match(/^\s+(rf_[a-z0-9]+)\s*$/m);
    if (!m) throw new Error(`no key in init output: ${r.stdout}`);
    this.key = m[1];
  }

  async start(extraArgs = []) {
    const portFile = join(this.dir, `port-${Date.now()}-${Math.random()}`);
    const args = ['serve', '--db', this.db, '--listen', '127.0.0.1:0', '--port-file', portFile,
      ...(this.opts.args || []), ...extraArgs];
    // opts.spawn: more options for the server's process (uid and gid, to run it as
    // another user than a root test runner).
    this.child = spawn(BIN, args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.opts.spawn || {}) });
    this.child.stdout.on('data', (d) => (this.logs += d));
    this.child.stderr.on('data', (d) => (this.logs += d));
    // 'close', not 'exit': the process has ended and its output is read to the end, so the
    // last lines it wrote (a sanitizer report, why it exited) are in this.logs.
    this.exited = new Promise((r) => this.child.on('close', (code, signal) => r({ code, signal })));
    this.port = Number(await waitForFile(portFile, 15000, this.child));
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  async api(method, path, body, { key = this.key, headers = {}, raw } = {}) {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = h['content-type'] || 'application/json';
    }
    const res = await fetch(this.url + path, { method, headers: h, body: payload });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    return { status: res.status, headers: res.headers, json, text };
  }

  // Graceful stop (SIGTERM) and wait for exit. A server that died on its own, or
  // whose log shows a sanitizer report, fails the test run loudly.
  async stop(signal = 'SIGTERM') {
    if (!this.child) return undefined;
    const died = this.child.exitCode !== null || this.child.signalCode;
    if (!died) this.child.kill(signal);
    const result = await this.exited;
    if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(this.logs)) {
      process.stderr.write(this.logs);
      throw new Error('the server reported a sanitizer error (log above)');
    }
    if (died && signal === 'SIGTERM' && !this.expectExit) {
      process.stderr.write(this.logs);
      throw new Error(`the server exited unexpectedly: ${JSON.stringify(result)}`);
    }
    return result;
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  cleanup() {
    try { rmSync(this.dir, { recursive: true, force: true }); } catch { /* ignore */ }
    if (this.db && this.db.startsWith('postgres') && !this.opts.db) dropDatabase(this.db);
  }
}

export async function startServer(opts = {}) {
  const s = new Server(opts);
  await s.init();
  await s.start();
  return s;
}

export function outputDir(name) {
  const d = join(OUTPUT_DIR, name);
  mkdirSync(d, { recursive: true });
  return d;
}

// ---- the fake LLM server (tests/fakes/fake_llm.mjs) ----

export async function startFakeLLM() {
  const child = spawn(process.execPath, [join(SOURCE_DIR, 'tests', 'fakes', 'fake_llm.mjs'), '--port', '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`fake_llm exited with ${code}`)));
  });
  const url = `http://127.0.0.1:${JSON.parse(line).port}`;
  const control = async (method, path, body) => {
    const r = await fetch(url + path, { method, headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status !== 200) throw new Error(`fake control ${method} ${path}: ${r.status}`);
    return r.json();
  };
  return {
    url,
    // Replace the queue with these entries (and optionally a default).
    script: async (responses, def) => {
      await control('POST', '/_control/reset', {});
      await control('POST', '/_control/script', { responses, mode: 'replace', ...(def ? { default: def } : {}) });
    },
    requests: () => control('GET', '/_control/requests'),
    reset: () => control('POST', '/_control/reset', {}),
    stop: () => child.kill('SIGTERM'),
  };
}

// Server environment pointing the anthropic provider at a fake LLM.
export function llmEnv(fake, extra = {}) {
  return { REFOLD_LLM_PROVIDER: 'anthropic', ANTHROPIC_API_KEY: 'sk-ant-test-key-0123456789',
    ANTHROPIC_BASE_URL: fake.url, REFOLD_BACKOFF_BASE_MS: '50', ...extra };
}

// ---- Server-Sent Events ----

// Read a job's SSE stream until the server closes it; resolves the events
// [{id, event, data}] (data parsed as JSON). lastEventId resumes.
export async function readSSE(srv, jobId, { lastEventId, key = srv.key, timeout = 60000, onEvent } = {}) {
  const headers = { authorization: `Bearer ${key}`, accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeout);
  const res = await fetch(`${srv.url}/v1/jobs/${jobId}/events`, { headers, signal: ac.signal });
  if (res.status !== 200) {
    clearTimeout(timer);
    throw new Error(`SSE answered ${res.status}: ${await res.text()}`);
  }
  const events = [];
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let sep;
      while ((sep = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep + 2);
        const ev = { id: null, event: 'message', data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'id') ev.id = Number(value);
          else if (field === 'event') ev.event = value;
          else if (field === 'data') { ev.data += (hasData ? '\n' : '') + value; hasData = true; }
        }
        if (!hasData) continue;
        ev.data = JSON.parse(ev.data);
        events.push(ev);
        if (onEvent) onEvent(ev);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  return events;
}

// Poll a job until it reaches a terminal status.
export async function waitJob(srv, jobId, { timeout = 60000, key = srv.key } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const r = await srv.api('GET', `/v1/jobs/${jobId}`, undefined, { key });
    if (['completed', 'failed', 'cancelled'].includes(r.json.status)) return r.json;
    if (Date.now() > deadline) throw new Error(`job ${jobId} still ${r.json.status}`);
    await sleep(50);
  }
}

// Run SQL (one statement or a script of several; every result is printed) on a test
// database (SQLite file or PostgreSQL URL). psql ignores ~/.psqlrc and stops at the first
// error; several results from one -c need psql 15 or later (Debian 12's).
export async function sql(db, statement) {
  if (db.startsWith('postgres')) {
    const { stdout } = await execFileP('psql', ['-X', '-v', 'ON_ERROR_STOP=1', db, '-qAtc', statement]);
    return stdout.trim();
  }
  // On stdin: a script that starts with a -- comment would read as an option.
  return new Promise((resolve, reject) => {
    const child = execFile('sqlite3', ['-cmd', '.timeout 10000', db],
      (e, stdout) => (e ? reject(e) : resolve(stdout.trim())));
    child.stdin.end(statement);
  });
}

// Debian's headless Chromium through playwright-core (REFOLD_CHROMIUM overrides the path),
// with the flags that keep it off the network; throws a clear error when either is missing.
export async function launchChromium() {
  const path = process.env.REFOLD_CHROMIUM || '/usr/bin/chromium';
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: run `npm install --prefix tests` (make deps)');
  }
  if (!existsSync(path)) throw new Error(`no browser at ${path}: apt-get install chromium`);
  return chromium.launch({
    executablePath: path,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A browser context of its own, signed in with key at url (the UI's address with its
// route), once the sign-in page has let it through. clock: the tab's timers and Date
// follow tab.clock; onError gets the page's script errors.
export async function signedInTab(browser, url, key, { width = 1280, height = 900, colorScheme = 'light', locale, clock = false, onError } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, colorScheme, locale });
  const tab = await ctx.newPage();
  if (clock) await tab.clock.install();
  if (onError) tab.on('pageerror', (e) => onError(e.message));
  await tab.goto(url);
  await tab.getByLabel('API key').fill(key);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.waitForURL((u) => !u.hash.startsWith('#/signin'));
  return { ctx, tab };
}

// Navigate page inside the app; the same fragment again renders the view again.
export function goTo(page, hash) {
  return page.evaluate((h) => {
    if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = h;
  }, hash);
}

// Whether page fits its viewport's width (no sideways scrolling).
export function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);
}

// A page at 1280×900 in a context of its own that pushes onto external every request
// leaving origin and onto errors every script error. The timeout is Playwright's own
// default, 30 s: at ctest -j4 beside other browser tests a page ran ten times slower
// than alone.
export async function watchedPage(browser, origin, external, errors) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.origin !== origin) external.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { context, page };
}
