// GET responses remembered by a pool thread (src/http/memo.h) are reused only
// while nothing was committed: a write through the API, or by another process
// on the same database, is visible on the next read, and a key of another
// workspace never gets a remembered answer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startServer, createWorkspaceKey } from './lib.mjs';

const execFileP = promisify(execFile);
// One pool thread, so that every request meets the same memo.
const srv = await startServer({ env: { REFOLD_HTTP_THREADS: '1' } });
after(async () => { await srv.stop(); srv.cleanup(); });

const agent = (await srv.api('POST', '/v1/agents', { name: 'memo', prompt_template: 'Hi {{x}}' })).json;
const trace = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, input: 'i', output: 'o' })).json;
const get = async (key) => srv.api('GET', `/v1/agents/${agent.id}`, undefined, key ? { key } : {});

test('a repeated read answers the same, byte for byte', async () => {
  const a = await get();
  const b = await get();
  assert.equal(a.status, 200);
  assert.equal(b.text, a.text);
  assert.notEqual(b.headers.get('x-request-id'), a.headers.get('x-request-id'));
});

test('a write through the API shows on the next read', async () => {
  assert.equal((await get()).json.stats.rated, 0);
  const r = await srv.api('PUT', `/v1/traces/${trace.id}/feedback`, { rating: 'negative' });
  assert.equal(r.status, 200);
  const s = (await get()).json.stats;
  assert.deepEqual([s.rated, s.negative], [1, 1]);
});

test('a write by another process shows on the next read', async (t) => {
  if (srv.db.startsWith('postgres')) return t.skip('SQLite only: the memo is off on PostgreSQL');
  await get();
  await execFileP('sqlite3', [srv.db, `UPDATE agents SET description = 'changed elsewhere' WHERE id = '${agent.id}'`]);
  assert.equal((await get()).json.description, 'changed elsewhere');
});

test("another workspace's key gets 404, not a remembered body", async () => {
  const other = await createWorkspaceKey(srv.db, 'other-ws', srv.env);
  assert.equal((await get()).status, 200); // remembered at the current data version
  const r = await get(other);
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
});

test('requests whose arguments differ never share a remembered answer', async () => {
  // One argument holding "&" and "=" against two arguments, and ?x (no value) against
  // ?x= (an empty one): they used to make the same key.
  const names = async (path) => (await srv.api('GET', path)).json.data.map((a) => a.name);
  assert.deepEqual(await names('/v1/agents?name=memo%26status%3Dconfirmed'), []);
  assert.deepEqual(await names('/v1/agents?name=memo&status=confirmed'), ['memo']);
  // (An empty agent_id is 400 now: asked second, it must not get the first's answer.)
  const ids = async (path) => (await srv.api('GET', path)).json.data.map((t) => t.id);
  assert.deepEqual(await ids('/v1/traces?agent_id'), [trace.id]);
  assert.equal((await srv.api('GET', '/v1/traces?agent_id=')).status, 400);
});
