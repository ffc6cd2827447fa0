// The counters behind Agent.stats (agent_stats) and the denormalised agent_id
// columns of traces, feedback and eval_executions must equal a recount after any
// mix of writes. A seeded random workload goes through the HTTP API (trace
// batches with new and repeated external ids, changed and unchanged content,
// items rejected inside batches, single and batch ratings, rating changes,
// feedback deletes, execution upserts with changed predictions, trace deletes,
// some of it concurrent); at checkpoints tests/data/recount.sql must print
// nothing, and GET /v1/agents/{id} must report the recounted numbers (which
// also checks that no remembered response outlives a write, http/memo.h).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, sql, rng, SOURCE_DIR } from './lib.mjs';

const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
const SEED = Number(process.env.REFOLD_TEST_SEED || 20261126);
const OPS = Number(process.env.REFOLD_TEST_OPS || 600);

const srv = await startServer();
after(async () => { await srv.stop(); srv.cleanup(); });

const rand = rng(SEED);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const chance = (p) => rand() < p;
const RATINGS = ['positive', 'negative', 'neutral'];

async function ok(method, path, body, statuses = [200, 201, 204]) {
  const r = await srv.api(method, path, body);
  assert.ok(statuses.includes(r.status), `${method} ${path} -> ${r.status} ${r.text}`);
  return r;
}

// ---- set-up: 3 agents (one with two versions), 2 evals each ----
const agents = [];
for (let i = 0; i < 3; i++) {
  const a = (await ok('POST', '/v1/agents', { name: `agent-${i}`, prompt_template: `Agent ${i}: {{q}}` })).json;
  const versions = [a.active_version_id];
  if (i === 0) {
    const v2 = (await ok('POST', `/v1/agents/${a.id}/versions`, { prompt_template: 'Agent 0, v2: {{q}}' })).json;
    await ok('POST', `/v1/agents/${a.id}/versions/${v2.version}/promote`, {});
    versions.push(v2.id);
  }
  const evals = [];
  for (const name of ['correct', 'polite']) {
    evals.push((await ok('POST', '/v1/evals', { agent_id: a.id, name })).json.id);
  }
  agents.push({ id: a.id, versions, evals, traces: new Set(), externals: [] });
}
const traceAgent = new Map(); // trace id -> agent index
const stale = [];             // ids of deleted traces, still referenced sometimes

function someTrace(ai) {
  const ts = [...agents[ai].traces];
  if (ts.length === 0 || (stale.length && chance(0.05))) return stale.length ? pick(stale) : null;
  return pick(ts);
}

// ---- operations ----
async function putTraces() {
  const items = [];
  const n = 1 + Math.floor(rand() * 15);
  for (let k = 0; k < n; k++) {
    const ai = Math.floor(rand() * agents.length);
    const a = agents[ai];
    const item = { input: `in ${Math.floor(rand() * 4)}`, output: `out ${Math.floor(rand() * 4)}` };
    if (chance(0.5)) item.agent_id = a.id; else item.agent_version_id = pick(a.versions);
    if (chance(0.8)) {
      // Reuse an external id often (upsert), sometimes one of another agent (rejected).
      const pool = chance(0.1) ? agents[(ai + 1) % agents.length].externals : a.externals;
      item.external_id = pool.length && chance(0.5) ? pick(pool) : `x${ai}-${Math.floor(rand() * 1e9)}`;
      item.source = 'test';
    }
    if (chance(0.3)) item.metadata = { k: Math.floor(rand() * 3) };
    if (chance(0.05)) { delete item.agent_version_id; item.agent_id = 'agent_01JF3Q0000000000000000NOPE'; }
    items.push({ item, ai });
  }
  const r = await ok('POST', '/v1/traces', { traces: items.map((x) => x.item) });
  r.json.data.forEach((res, k) => {
    if (!res.id) return;
    const { item, ai } = items[k];
    agents[ai].traces.add(res.id);
    traceAgent.set(res.id, ai);
    if (item.external_id && !agents[ai].externals.includes(item.external_id)) agents[ai].externals.push(item.external_id);
  });
}

async function putFeedback() {
  const ai = Math.floor(rand() * agents.length);
  const t = someTrace(ai);
  if (!t) return;
  const body = { rating: pick(RATINGS) };
  if (chance(0.4)) body.note = `note ${Math.floor(rand() * 3)}`;
  await ok('PUT', `/v1/traces/${t}/feedback`, body, [200, 404]);
}

async function batchFeedback() {
  const feedback = [];
  const n = 1 + Math.floor(rand() * 10);
  for (let k = 0; k < n; k++) {
    const ai = Math.floor(rand() * agents.length);
    const a = agents[ai];
    if (a.externals.length && chance(0.5)) {
      feedback.push({ source: 'test', external_id: pick(a.externals), rating: pick(RATINGS) });
    } else {
      const t = someTrace(ai);
      if (t) feedback.push({ trace_id: t, rating: pick(RATINGS), note: chance(0.3) ? 'n' : undefined });
    }
    if (feedback.length && chance(0.15)) feedback.push({ ...feedback[feedback.length - 1], rating: pick(RATINGS) });
  }
  if (feedback.length) await ok('POST', '/v1/feedback', { feedback });
}

async function deleteFeedback() {
  const t = someTrace(Math.floor(rand() * agents.length));
  if (t) await ok('DELETE', `/v1/traces/${t}/feedback`, undefined, [204, 404]);
}

async function putExecutions() {
  const ai = Math.floor(rand() * agents.length);
  const a = agents[ai];
  const ev = pick(a.evals);
  const executions = [];
  const n = 1 + Math.floor(rand() * 12);
  for (let k = 0; k < n; k++) {
    const other = chance(0.05);
    const t = someTrace(other ? (ai + 1) % agents.length : ai);
    if (!t) continue;
    const x = { trace_id: t, predicted_result: chance(0.6) };
    if (chance(0.5)) x.predicted_reason = `r${Math.floor(rand() * 3)}`;
    executions.push(x);
    if (chance(0.1)) executions.push({ ...x, predicted_result: !x.predicted_result });
  }
  if (executions.length) await ok('POST', `/v1/evals/${ev}/executions`, { executions });
}

async function deleteTrace() {
  const ai = Math.floor(rand() * agents.length);
  const t = someTrace(ai);
  if (!t) return;
  const r = await ok('DELETE', `/v1/traces/${t}`, undefined, [204, 404]);
  if (r.status === 204) {
    agents[traceAgent.get(t)].traces.delete(t);
    stale.push(t);
  }
}

const OPERATIONS = [
  [putTraces, 0.22], [putFeedback, 0.2], [batchFeedback, 0.12], [deleteFeedback, 0.08],
  [putExecutions, 0.28], [deleteTrace, 0.1],
];
function randomOp() {
  let x = rand();
  for (const [op, p] of OPERATIONS) { if ((x -= p) < 0) return op; }
  return putTraces;
}

async function checkRecount(when) {
  const mismatches = (await sql(srv.db, RECOUNT)).trim();
  assert.equal(mismatches, '', `recount after ${when} (seed ${SEED}):\n${mismatches}`);
  // The API reports what the rows say.
  for (const a of agents) {
    const s = (await ok('GET', `/v1/agents/${a.id}`)).json.stats;
    const row = (await sql(srv.db, `SELECT COUNT(*) FROM traces WHERE agent_id = '${a.id}';` +
      `SELECT COUNT(*) FROM feedback WHERE agent_id = '${a.id}';` +
      `SELECT COUNT(*) FROM eval_executions WHERE agent_id = '${a.id}';` +
      `SELECT COUNT(*) FROM feedback f JOIN eval_executions x ON x.trace_id = f.trace_id ` +
      `WHERE f.agent_id = '${a.id}' AND ((f.rating = 'positive' AND x.predicted_result = 0) ` +
      `OR (f.rating = 'negative' AND x.predicted_result = 1));`)).trim().split('\n').map(Number);
    assert.deepEqual([s.traces, s.rated, s.executions, s.contradictions], row,
      `GET /v1/agents/${a.id} stats after ${when} (seed ${SEED})`);
  }
}

test(`counters and denormalised columns equal a recount after ${OPS} random writes (seed ${SEED})`, async () => {
  for (let i = 1; i <= OPS; i++) {
    if (chance(0.1)) {
      // A concurrent burst: the writes serialise in the store, the counters must not care.
      await Promise.all(Array.from({ length: 6 }, () => randomOp()()));
    } else {
      await randomOp()();
    }
    if (i % 150 === 0) await checkRecount(`${i} operations`);
  }
  await checkRecount('the whole workload');
  const counts = (await sql(srv.db, 'SELECT COUNT(*) FROM traces; SELECT COUNT(*) FROM feedback; ' +
    'SELECT COUNT(*) FROM eval_executions;')).trim().split('\n').map(Number);
  // The workload must actually have exercised every table.
  assert.ok(counts.every((n) => n > 10), `too little data to mean anything: ${counts}`);
});

test('concurrent ratings and executions on the same few traces keep the counters exact', async () => {
  // Many writers on few traces: each request races others that read and move the same
  // rating buckets. Some feedback batches name the traces by external id, whose order is
  // the reverse of the trace ids', so on PostgreSQL batches lock the traces in opposite
  // orders and deadlock: the store must retry them, not fail them.
  const a = agents[1];
  const ids = (await ok('POST', '/v1/traces', {
    traces: Array.from({ length: 8 }, (_, k) => ({
      agent_id: a.id, input: `hot ${k}`, output: 'o', source: 'hot', external_id: `hot-${9 - k}`,
    })),
  })).json.data.map((d) => d.id);
  const external = new Map(ids.map((id, k) => [id, `hot-${9 - k}`]));
  const shuffled = () => ids.map((id) => [rand(), id]).sort((x, y) => x[0] - y[0]).map((x) => x[1]);
  const writes = [];
  for (let i = 0; i < 160; i++) {
    const kind = i % 4;
    if (kind === 0) {
      const byExternal = chance(0.5);
      writes.push(ok('POST', '/v1/feedback', {
        feedback: shuffled().map((id) => (byExternal
          ? { source: 'hot', external_id: external.get(id), rating: pick(RATINGS) }
          : { trace_id: id, rating: pick(RATINGS) })),
      }));
    } else if (kind === 1) {
      writes.push(ok('PUT', `/v1/traces/${pick(ids)}/feedback`, { rating: pick(RATINGS) }));
    } else if (kind === 2) {
      writes.push(ok('DELETE', `/v1/traces/${pick(ids)}/feedback`, undefined, [204, 404]));
    } else {
      writes.push(ok('POST', `/v1/evals/${pick(a.evals)}/executions`, {
        executions: shuffled().map((id) => ({ trace_id: id, predicted_result: chance(0.5) })),
      }));
    }
  }
  await Promise.all(writes);
  const onHot = Number(await sql(srv.db, `SELECT COUNT(*) FROM eval_executions WHERE trace_id IN (${ids.map((id) => `'${id}'`).join(',')});`));
  assert.ok(onHot > 0, 'the concurrent writes stored executions on the hot traces');
  await checkRecount('concurrent writes on 8 traces');
});
