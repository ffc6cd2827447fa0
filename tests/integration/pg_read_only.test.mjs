// A PostgreSQL database that refuses writes - a standby refold was failed over to, or
// default_transaction_read_only - (docs/operations.md, health checks): writes answer 503
// `unavailable` with details.reason "read_only", reads work, /healthz answers 503 until
// the database takes writes again. PostgreSQL only (make test-pg); skipped on SQLite.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, sleep } from './lib.mjs';

const execFileP = promisify(execFile);
const ADMIN = process.env.REFOLD_TEST_PG_URL;
const srv = ADMIN ? await startServer({ env: { REFOLD_WORKERS: '0' } }) : null;
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

// Set default_transaction_read_only on the server's database and end its sessions, so
// that refold's connections reconnect with the new default.
async function readOnly(on) {
  const name = new URL(srv.db).pathname.slice(1);
  await execFileP('psql', ['-X', '-qAt', ADMIN, '-c', `ALTER DATABASE ${name} SET default_transaction_read_only = ${on ? 'on' : 'off'}`]);
  await execFileP('psql', ['-X', '-qAt', ADMIN, '-c',
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`]);
}

// The first request on a connection the server closed may answer 503 (unreachable) while
// it reconnects: ask until the answer is something else, or a 503 about read-only.
async function settled(method, path, body, opts) {
  let r;
  for (let i = 0; i < 50; i++) {
    r = await srv.api(method, path, body, opts);
    if (r.status !== 503 || /read.only/.test(r.text)) return r;
    await sleep(100);
  }
  return r;
}

test('writes answer 503 read_only and /healthz 503 while the database refuses writes', { skip: !ADMIN && 'PostgreSQL only' }, async () => {
  assert.equal((await srv.api('POST', '/v1/agents', { name: 'kept' })).status, 201);
  await readOnly(true);
  try {
    const r = await settled('POST', '/v1/agents', { name: 'refused' });
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json.error.details.reason, 'read_only');
    const list = await settled('GET', '/v1/agents');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.data.map((a) => a.name), ['kept']);
    const h = await settled('GET', '/healthz', undefined, { key: null });
    assert.equal(h.status, 503, h.text);
    assert.match(h.json.error, /database is read-only/);
  } finally {
    await readOnly(false);
  }
  assert.equal((await settled('GET', '/healthz', undefined, { key: null })).status, 200);
  assert.equal((await settled('POST', '/v1/agents', { name: 'later' })).status, 201);
});
