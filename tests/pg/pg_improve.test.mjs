// Improvement jobs on several nodes (issue 8): the real prompt_improvement handler streaming
// from the fake LLM, slowly, on worker nodes, while two serve nodes without workers answer
// the API. Through serve node B: the live event stream of a job enqueued on A, resumed with
// Last-Event-ID, ending with the job; cancel and retry. Then kill -9 of the worker node
// mid-stream: another node takes the job over when its lease runs out and it completes once
// (one candidate version, the transcript holds the completing attempt's calls); and SIGTERM
// of a worker node mid-stream hands the job to another node without using an attempt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeLLM, llmEnv, readSSE, sleep } from '../integration/lib.mjs';
import { storedEvents, assertContiguous } from '../integration/jobs_lib.mjs';
import { requirePg, createDatabase, dropDatabaseSync, startNode, startWorkerNode, psql } from './pg_lib.mjs';

const LEASE_MS = 3000;
const base = requirePg();
const db = await createDatabase(base);
const ANALYSIS = JSON.stringify({ failure_patterns: ['Promises refunds without checking the order'], summary: 'Say to check orders.' });
const REWRITE = JSON.stringify({ improved_prompt: 'You help customers of {{company}}.\nCheck the order before a refund.\n', changes: ['Check orders'], reasoning: 'Refunds were promised blindly.' });
let fake, a, b;
const workers = [];
after(async () => {
  for (const n of [...workers, a, b]) { try { if (n) await n.stop(); } catch (e) { console.error(e.message); } }
  for (const n of [a, b]) if (n) n.cleanup();
  if (fake) fake.stop();
  dropDatabaseSync(base, db);
});

let env;
before(async () => {
  fake = await startFakeLLM();
  // About 2.5 s of analysis stream (4 characters every 100 ms) and 1 s of rewrite.
  await fake.script([
    { match: 'Identify the failure patterns', text: ANALYSIS, chunk_size: 4, chunk_delay_ms: 100, persist: true, usage: { input_tokens: 900, output_tokens: 80 } },
    { match: 'Rewrite the prompt template below', text: REWRITE, chunk_size: 8, chunk_delay_ms: 40, persist: true },
  ]);
  // Every worker node stops with a 500 ms grace: the SIGTERM test stops whichever one runs
  // its job, and with the default 30 s that one finished the job instead of handing it on.
  env = { ...llmEnv(fake), REFOLD_LEASE_MS: String(LEASE_MS), REFOLD_HEARTBEAT_MS: '500', REFOLD_LOG: 'info', REFOLD_SHUTDOWN_GRACE_MS: '500' };
  a = await startNode(db, { init: true, env: { ...env, REFOLD_WORKERS: '0' } });
  b = await startNode(db, { key: a.key, env: { ...env, REFOLD_WORKERS: '0' } });
  workers.push(await startWorkerNode(db, { env, workers: 1 }), await startWorkerNode(db, { env, workers: 1 }));
});

async function seed(name) {
  const agent = (await a.api('POST', '/v1/agents', { name, prompt_template: 'You help customers of {{company}}.\n' })).json;
  const ev = (await a.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;
  const plan = [['negative', true], ['negative', true], ['positive', false], ['positive', true]];
  const ids = (await a.api('POST', '/v1/traces', { traces: plan.map((_, i) => ({ agent_id: agent.id, external_id: `${name}-${i}`, input: `q${i}`, output: `a${i}` })) })).json.data.map((d) => d.id);
  await a.api('POST', '/v1/feedback', { feedback: plan.map(([rating], i) => ({ trace_id: ids[i], rating })) });
  await a.api('POST', `/v1/evals/${ev.id}/executions`, { executions: plan.map(([, p], i) => ({ trace_id: ids[i], predicted_result: p })) });
  return agent;
}

async function improve(agent) {
  const r = await a.api('POST', `/v1/agents/${agent.id}/improve-prompt`, {});
  assert.equal(r.status, 202, r.text);
  return r.json.id;
}

// The worker node running job id, once its analysis stream has begun.
async function runner(id) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const [owner, stage] = (await psql(db, `SELECT COALESCE(lease_owner, ''), COALESCE(stage, '') FROM jobs WHERE id = '${id}'`)).split('|');
    const w = workers.find((n) => owner.includes(`:${n.pid}:`));
    if (w && stage === 'analyzing_failures') return w;
    assert.ok(Date.now() < deadline, `job ${id} not running: ${owner} ${stage}`);
    await sleep(50);
  }
}

async function waitDone(id, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const j = (await b.api('GET', `/v1/jobs/${id}`)).json;
    if (['completed', 'failed', 'cancelled'].includes(j.status)) return j;
    assert.ok(Date.now() < deadline, `job ${id} still ${j.status}`);
    await sleep(100);
  }
}

const versionsOf = async (agent) => (await psql(db, `SELECT version || ':' || status || ':' || COALESCE(created_by_job_id, '') FROM agent_versions WHERE agent_id = '${agent.id}' ORDER BY version`)).split('\n');
const calls = async (id) => (await b.api('GET', `/v1/jobs/${id}/llm-calls`)).json.data.map((c) => `${c.attempt}:${c.step}:${c.error ? 'error' : 'ok'}`);

test('enqueued on A, followed live on B with a resume, cancelled and retried on B', { timeout: 60000 }, async () => {
  const agent = await seed('follow');
  const id = await improve(agent);
  const first = [];
  await assert.rejects(readSSE(b, id, { onEvent: (ev) => { first.push(ev); if (first.length === 4) throw new Error('disconnect'); } }));
  const rest = await readSSE(b, id, { lastEventId: first.at(-1).id });
  const all = [...first, ...rest];
  assert.equal(all.at(-1).event, 'completed');
  assert.deepEqual(all.map((e) => e.id), (await storedEvents(a, id)).map((e) => e.seq), 'no gap, no duplicate');
  assert.equal(all.at(-1).data.result.new_version_number, 2);

  const id2 = await improve(agent);
  await runner(id2);
  const c = await b.api('POST', `/v1/jobs/${id2}/cancel`);
  assert.equal(c.status, 202);
  assert.equal((await waitDone(id2, 5000)).status, 'cancelled');
  const r = await b.api('POST', `/v1/jobs/${id2}/retry`);
  assert.equal(r.status, 202, r.text);
  const done = await waitDone(id2);
  assert.equal(done.status, 'completed');
  assert.equal(done.result.new_version_number, 3);
  assert.deepEqual(await versionsOf(agent), ['1:active:', `2:candidate:${id}`, `3:candidate:${id2}`]);
});

test('kill -9 of the worker node mid-stream: taken over at the end of the lease, one candidate', { timeout: 60000 }, async () => {
  const agent = await seed('kill');
  const id = await improve(agent);
  const victim = await runner(id);
  const survivor = workers.find((w) => w !== victim);
  await sleep(500);
  victim.child.kill('SIGKILL');
  await victim.exited;
  workers.splice(workers.indexOf(victim), 1);
  const killedAt = Date.now();

  const done = await waitDone(id);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 2);
  const takenOver = Date.parse(done.started_at) - killedAt;
  assert.ok(takenOver <= LEASE_MS + 1500, `taken over ${takenOver} ms after the kill`);
  assert.match(await psql(db, `SELECT COUNT(*) FROM jobs WHERE id = '${id}'`), /^1$/);
  assert.deepEqual(await versionsOf(agent), ['1:active:', `2:candidate:${id}`]);
  // The call that was streaming when the node died left no row; the rest are attempt 2's.
  assert.deepEqual(await calls(id), ['2:analysis:ok', '2:rewrite:ok']);
  const events = await storedEvents(b, id);
  assertContiguous(events, assert);
  assert.equal(events.filter((e) => e.type === 'retry').length, 1);
  assert.equal(events.find((e) => e.type === 'retry').data.error.code, 'lease_expired');
  assert.equal(events.filter((e) => e.type === 'completed').length, 1);
  assert.equal(events.at(-1).type, 'completed');
  assert.ok(survivor);
});

test('SIGTERM of the worker node mid-stream: the job goes to another node at once, same attempt', { timeout: 60000 }, async () => {
  workers.push(await startWorkerNode(db, { env, workers: 1 }));
  const agent = await seed('sigterm');
  const id = await improve(agent);
  const victim = await runner(id);
  await sleep(300);
  await victim.stop('SIGTERM'); // exits 0, after the 500 ms grace
  workers.splice(workers.indexOf(victim), 1);
  const done = await waitDone(id);
  assert.equal(done.status, 'completed');
  assert.equal(done.attempt, 1, 'the released run gave its attempt back');
  assert.deepEqual(await versionsOf(agent), ['1:active:', `2:candidate:${id}`]);
  const events = await storedEvents(b, id);
  assertContiguous(events, assert);
  assert.ok(events.some((e) => e.type === 'log' && /job released to the queue/.test(e.data.message)));
  assert.equal(events.filter((e) => e.type === 'retry').length, 0);
  assert.equal(events.filter((e) => e.type === 'completed').length, 1);
  // The released run's call, cut off, then the next run's two, all numbered attempt 1.
  assert.deepEqual(await calls(id), ['1:analysis:error', '1:analysis:ok', '1:rewrite:ok']);
});
