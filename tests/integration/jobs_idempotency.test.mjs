// Issue 3, test 6: 20 concurrent creations with one Idempotency-Key make one job (one 202,
// the others 200 with the same job); a different body under the key gets 409; keys are
// per workspace.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkspaceKey } from './lib.mjs';
import { startJobsServer, enqueue } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_WORKERS: '0' });
after(async () => { await srv.stop(); srv.cleanup(); });

async function jobCount() {
  const r = await srv.api('GET', '/v1/jobs?limit=500');
  return r.json.data.length;
}

test('6: 20 concurrent creations with one key -> one job; another body -> 409', async () => {
  const before = await jobCount();
  const params = { sleep_ms: 5, note: 'same' };
  const answers = await Promise.all(Array.from({ length: 20 }, () => enqueue(srv, params, { key: 'order-42' })));
  const statuses = answers.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, ...Array(18).fill(200), 202].sort(), `statuses ${statuses}`);
  const ids = new Set(answers.map((r) => r.json.id));
  assert.equal(ids.size, 1, 'every answer names the same job');
  assert.equal(await jobCount(), before + 1);
  const created = answers.find((r) => r.status === 202);
  assert.equal(created.headers.get('location'), `/v1/jobs/${created.json.id}`);

  // Key order inside params does not change what the key stands for.
  const reordered = await enqueue(srv, { note: 'same', sleep_ms: 5 }, { key: 'order-42' });
  assert.equal(reordered.status, 200);
  assert.equal(reordered.json.id, created.json.id);

  const other = await enqueue(srv, { sleep_ms: 6, note: 'same' }, { key: 'order-42' });
  assert.equal(other.status, 409);
  assert.equal(other.json.error.code, 'conflict');
  assert.equal(other.json.error.details.reason, 'idempotency_key_reused');
  assert.equal(await jobCount(), before + 1);

  // 20 concurrent creations with 20 different keys make 20 jobs.
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueue(srv, params, { key: `k-${i}` })));
  assert.ok(many.every((r) => r.status === 202));
  assert.equal(new Set(many.map((r) => r.json.id)).size, 20);
});

test('6b: keys are scoped to the workspace; bad keys are refused', async () => {
  const otherKey = await createWorkspaceKey(srv.db, 'other-ws', srv.env);
  const mine = await enqueue(srv, { a: 1 }, { key: 'shared-key' });
  const theirs = await srv.api('POST', '/v1/test/jobs', { params: { a: 1 } },
    { key: otherKey, headers: { 'idempotency-key': 'shared-key' } });
  assert.equal(mine.status, 202);
  assert.equal(theirs.status, 202);
  assert.notEqual(mine.json.id, theirs.json.id);
  const bad = await enqueue(srv, {}, { key: 'x'.repeat(201) });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.details.field, 'Idempotency-Key');
});

test('6c: improve-prompt repeated with its key after the agent was archived gets the job it made', async () => {
  const agent = (await srv.api('POST', '/v1/agents', { name: 'idem-archived', prompt_template: 'Help with {{x}}' })).json;
  const body = { max_contradictions: 5 };
  const headers = { 'idempotency-key': 'improve-1' };
  const first = await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, body, { headers });
  assert.equal(first.status, 202);
  assert.equal((await srv.api('DELETE', `/v1/agents/${agent.id}`)).status, 204);
  const again = await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, body, { headers });
  assert.equal(again.status, 200, JSON.stringify(again.json));
  assert.equal(again.json.id, first.json.id);
  // Another body under the key is still 409, and a new key meets the archived agent.
  const other = await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, { max_contradictions: 6 }, { headers });
  assert.equal(other.json.error.details.reason, 'idempotency_key_reused');
  const fresh = await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, body, { headers: { 'idempotency-key': 'improve-2' } });
  assert.equal(fresh.status, 409);
  assert.equal(fresh.json.error.details.reason, 'agent_archived');
  const bad = await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, body, { headers: { 'idempotency-key': 'x'.repeat(201) } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.details.field, 'Idempotency-Key');
});
