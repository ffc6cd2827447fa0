// The server boots, answers /healthz, and authenticates with the init key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib.mjs';

const srv = await startServer();
after(async () => { await srv.stop(); srv.cleanup(); });

test('healthz reports the database', async () => {
  const r = await srv.api('GET', '/healthz', undefined, { key: null });
  assert.equal(r.status, 200);
  assert.deepEqual({ status: r.json.status, db: r.json.db }, { status: 'ok', db: 'ok' });
  assert.match(r.headers.get('x-request-id'), /^req_[0-9A-Z]{26}$/);
});

test('the init key lists agents', async () => {
  const r = await srv.api('GET', '/v1/agents');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { data: [], next_cursor: null });
});
