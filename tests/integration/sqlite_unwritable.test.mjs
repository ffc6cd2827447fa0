// A SQLite database refold cannot write (docs/operations.md, "Single node on SQLite"):
// writes answer 503 `unavailable` with details.reason "read_only" or "storage_full" and a
// message saying so, not 500; what was committed stays readable; /healthz answers 503
// while the node cannot write and 200 again once it can. SQLite only.
//
// A read-only file needs no mount: the server runs as an unprivileged user (nobody when
// the suite runs as root, whom file modes do not stop). A full disk needs a small tmpfs:
// that test skips when the suite does not run as root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, Server, sql, sleep } from './lib.mjs';

const PG = Boolean(process.env.REFOLD_TEST_PG_URL);
const ROOT = process.getuid() === 0;
const NOBODY = 65534;
const servers = [];
after(async () => { for (const s of servers) { await stop(s); s.cleanup(); } });

// Stop a server once (a second srv.stop() would report the exit as unexpected).
async function stop(srv) {
  const exit = await srv.stop();
  srv.child = null;
  return exit;
}

function chownTree(dir, uid) {
  chownSync(dir, uid, uid);
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    if (f.isDirectory()) chownTree(join(dir, f.name), uid);
    else chownSync(join(dir, f.name), uid, uid);
  }
}

test('a read-only database file: writes answer 503 read_only, reads work, /healthz answers 503', { skip: PG && 'SQLite only' }, async () => {
  const srv = new Server({ env: { REFOLD_WORKERS: '1' }, spawn: ROOT ? { uid: NOBODY, gid: NOBODY } : {} });
  servers.push(srv);
  await srv.init();
  if (ROOT) chownTree(srv.dir, NOBODY);
  await srv.start();
  assert.equal((await srv.api('POST', '/v1/agents', { name: 'kept' })).status, 201);
  await stop(srv);

  chmodSync(srv.db, 0o444); // as a restore with the wrong mode would leave it
  await srv.start();
  const r = await srv.api('POST', '/v1/agents', { name: 'refused' });
  assert.equal(r.status, 503, r.text);
  assert.equal(r.json.error.code, 'unavailable');
  assert.equal(r.json.error.details.reason, 'read_only');
  assert.match(r.json.error.message, /database is read-only/);
  assert.match(r.json.error.request_id, /^req_/);
  // One warn line for it, with the request id, status, duration and reason (written
  // once the answer is sent).
  for (let i = 0; i < 100 && !srv.logs.includes(r.json.error.request_id); i++) await sleep(20);
  assert.match(srv.logs, new RegExp(`level=warn msg="request failed" request_id=${r.json.error.request_id} method=POST path="/v1/agents" status=503 duration_us=\\d+ error="database is read-only`));
  const list = await srv.api('GET', '/v1/agents');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.data.map((a) => a.name), ['kept']);
  const h = await srv.api('GET', '/healthz', undefined, { key: null });
  assert.equal(h.status, 503, h.text);
  assert.equal(h.json.status, 'unavailable');
  assert.match(h.json.error, /database is read-only/);
  const exit = await stop(srv);
  assert.equal(exit.code, 0);

  // Writable again (the -shm file SQLite created took the database's mode): a restart
  // writes, and /healthz is 200.
  for (const f of readdirSync(srv.dir)) if (f.startsWith('refold.db')) chmodSync(join(srv.dir, f), 0o600);
  await srv.start();
  assert.equal((await srv.api('POST', '/v1/agents', { name: 'later' })).status, 201);
  assert.equal((await srv.api('GET', '/healthz', undefined, { key: null })).status, 200);
});

test('a full disk: writes answer 503 storage_full, /healthz answers 503 until space is freed', { skip: (PG && 'SQLite only') || (!ROOT && 'needs root to mount a tmpfs') }, async () => {
  const srv = new Server({ env: { REFOLD_WORKERS: '0' } });
  servers.push(srv);
  const mnt = join(srv.dir, 'mnt');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  try {
    srv.opts.db = join(mnt, 'refold.db');
    await srv.init();
    await srv.start();
    const kept = await srv.api('POST', '/v1/agents', { name: 'kept' });
    assert.equal(kept.status, 201);
    try { writeFileSync(join(mnt, 'fill'), Buffer.alloc(4 << 20)); } catch { /* ENOSPC: full now */ }
    let r;
    for (let i = 0; i < 50; i++) {
      r = await srv.api('POST', '/v1/agents', { name: `a${i}`, description: 'x'.repeat(4000) });
      if (r.status !== 201) break;
    }
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.details.reason, 'storage_full');
    assert.match(r.json.error.message, /disk full/);
    const h = await srv.api('GET', '/healthz', undefined, { key: null });
    assert.equal(h.status, 503, h.text);
    assert.match(h.json.error, /disk full/);
    assert.equal((await srv.api('GET', `/v1/agents/${kept.json.id}`)).status, 200);

    rmSync(join(mnt, 'fill'));
    assert.equal((await srv.api('GET', '/healthz', undefined, { key: null })).status, 200);
    assert.equal((await srv.api('POST', '/v1/agents', { name: 'after' })).status, 201);
    assert.equal((await stop(srv)).code, 0);
    assert.equal((await sql(srv.db, 'PRAGMA integrity_check')).trim(), 'ok');
  } finally {
    await stop(srv);
    execFileSync('umount', ['-l', mnt]);
  }
});

test('a database in a directory refold cannot write: init and serve name the file and the directory', { skip: PG && 'SQLite only' }, () => {
  const top = mkdtempSync(join(tmpdir(), 'refold-ro-'));
  try {
    const dir = join(top, 'data');
    mkdirSync(dir);
    if (ROOT) { chownSync(top, NOBODY, NOBODY); chownSync(dir, NOBODY, NOBODY); }
    const db = join(dir, 'refold.db');
    const refold = (...args) => spawnSync(BIN, args, {
      env: { ...process.env, REFOLD_DB: db, XDG_CONFIG_HOME: join(top, 'config'), REFOLD_LOG: 'warn' },
      encoding: 'utf8', timeout: 20000, ...(ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    const uid = ROOT ? NOBODY : process.getuid();
    // No database yet: the file itself cannot be created.
    chmodSync(dir, 0o555);
    let r = refold('init', '--no-config');
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, `refold: cannot open database ${db}: cannot create ${db}: directory ${dir} is not writable by uid ${uid} (SQLite: unable to open database file)\n`);
    // A database made while the directory was writable (its -wal and -shm removed by the
    // clean close): SQLite cannot create them, and said only "attempt to write a readonly
    // database".
    chmodSync(dir, 0o755);
    r = refold('init', '--no-config');
    assert.equal(r.status, 0, r.stderr);
    chmodSync(dir, 0o555);
    for (const cmd of [['init', '--no-config'], ['serve', '--listen', '127.0.0.1:0']]) {
      r = refold(...cmd);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^refold: cannot \\w+ database ${db}: cannot create ${db}-(wal|shm): directory ${dir} is not writable by uid ${uid} \\(SQLite: [^\\n]+\\)\\n$`));
    }
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
