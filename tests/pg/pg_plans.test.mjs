// Read plans on PostgreSQL with tables of realistic shape and their statistics
// (bench/README-pg.md, "Read paths with 200,000 traces"): what the planner once chose by
// itself and read far more than the page it answered.
//
// - Contradictions, limit 200 (the UI's page): PostgreSQL could not estimate the SQLite
//   text's `x.predicted_result = CASE … END`, so it joined every execution of the table by
//   hash and sorted; it must walk feedback_agent_time newest first and probe each rated
//   trace's executions, never reading eval_executions whole.
// - A trace list with a rating filter, deep in its cursor: PostgreSQL merge-joined the
//   traces walk with feedback walked from the newest rating down, reading every rating
//   above the cursor; the feedback walk must start at the cursor.
// - The trace list of an old version: PostgreSQL walked traces_pkey from the newest trace,
//   skipping every trace of the newer versions; it must walk traces_version.
//
// Observed through the table and index statistics the server's own statements leave
// behind (flushed when its sessions end). The rows are written with
// SQL (60,000 executions in a second; the counters in agent_stats are not kept, and this
// test does not read them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, sleep } from '../integration/lib.mjs';
import { requirePg, createDatabase, dropDatabaseSync, psql } from './pg_lib.mjs';

const base = requirePg();
let srv, agent;
after(async () => {
  if (srv) {
    if (srv.child && srv.child.exitCode === null && !srv.child.signalCode) await srv.stop();
    srv.cleanup();
    dropDatabaseSync(base, srv.db);
  }
});

// 20,000 traces, 40 % rated (60 % positive, 30 % negative, 10 % neutral), each judged by 3
// evals that agree with the rating 9 times in 10: the shape of bench_gen's largest agent.
// The older half went to version 1, the newer to version 2.
function populate(agent, version, ws) {
  const h = (salt) => `(abs(hashtext(g::text || '${salt}')) % 100)`;
  return `
INSERT INTO agent_versions (id, agent_id, version, prompt_template, variables, source, status,
                            created_at)
  VALUES ('agv_v2', '${agent}', 2, 'Answer {{q}} well', '["q"]', 'manual', 'candidate', 1);
INSERT INTO evals (id, agent_id, name, created_at)
  SELECT 'eval_' || k, '${agent}', 'eval-' || k, 0 FROM generate_series(1, 3) k;
INSERT INTO traces (id, workspace_id, agent_id, agent_version_id, source, external_id,
                    "timestamp", input, output, created_at)
  SELECT 'trace_' || lpad(g::text, 26, '0'), '${ws}', '${agent}',
         CASE WHEN g <= 10000 THEN '${version}' ELSE 'agv_v2' END, 'api', 'x' || g,
         g, 'input ' || g, 'output ' || g, g
  FROM generate_series(1, 20000) g;
INSERT INTO feedback (id, trace_id, agent_id, rating, created_at, updated_at)
  SELECT 'fb_' || g, 'trace_' || lpad(g::text, 26, '0'), '${agent}',
         CASE WHEN ${h('r')} < 60 THEN 'positive' WHEN ${h('r')} < 90 THEN 'negative'
              ELSE 'neutral' END, g, g
  FROM generate_series(1, 20000) g WHERE ${h('f')} < 40;
INSERT INTO eval_executions (id, eval_id, trace_id, agent_id, predicted_result, executed_at)
  SELECT 'ex_' || k || '_' || g, 'eval_' || k, 'trace_' || lpad(g::text, 26, '0'), '${agent}',
         CASE WHEN (f.rating = 'positive') = (abs(hashtext(g::text || k::text)) % 10 <> 0)
              THEN 1 ELSE 0 END, g
  FROM generate_series(1, 20000) g CROSS JOIN generate_series(1, 3) k
  LEFT JOIN feedback f ON f.trace_id = 'trace_' || lpad(g::text, 26, '0');
ANALYZE;`;
}

// The counters once every other session on the database has ended: a session flushes its
// statistics when it exits, before it leaves pg_stat_activity. Stops the server.
async function counters() {
  if (srv.child && srv.child.exitCode === null && !srv.child.signalCode) await srv.stop();
  for (let i = 0; ; i++) {
    const others = await psql(srv.db, 'SELECT count(*) FROM pg_stat_activity '
      + 'WHERE datname = current_database() AND pid <> pg_backend_pid()');
    if (others === '0') break;
    if (i > 200) throw new Error(`${others} sessions still open`);
    await sleep(50);
  }
  const row = await psql(srv.db, `SELECT
    (SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'eval_executions'),
    (SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'feedback_agent_time'),
    (SELECT idx_tup_read FROM pg_stat_user_indexes
      WHERE indexrelname = 'feedback_trace_id_key'),
    (SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'traces_pkey')`);
  const [execSeq, walk, ratingsRead, tracesByPkey] = row.split('|').map(Number);
  return { execSeq, walk, ratingsRead, tracesByPkey };
}

// Counters before and after fn, run against a freshly started server.
async function measure(fn) {
  const before = await counters();
  await srv.start();
  await fn();
  const done = await counters();
  return Object.fromEntries(Object.keys(done).map((k) => [k, done[k] - before[k]]));
}

test('setup: 20,000 traces, 8,000 ratings, 60,000 executions, analyzed', { timeout: 60000 }, async () => {
  srv = new Server({ db: await createDatabase(base) });
  await srv.init();
  await srv.start();
  const a = await srv.api('POST', '/v1/agents', { name: 'big', prompt_template: 'Answer {{q}}' });
  assert.equal(a.status, 201, a.text);
  agent = a.json.id;
  const ws = await psql(srv.db, `SELECT workspace_id FROM agents WHERE id = '${agent}'`);
  await psql(srv.db, populate(agent, a.json.active_version.id, ws));
});

test('GET contradictions?limit=200 walks the agent\'s feedback, not every execution', { timeout: 60000 }, async () => {
  const d = await measure(async () => {
    for (const kind of ['', '&kind=missed_failure', '&kind=false_alarm']) {
      const r = await srv.api('GET', `/v1/agents/${agent}/contradictions?limit=200${kind}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.data.length, 200);
      const at = r.json.data.map((c) => c.feedback_at);
      assert.deepEqual([...at].sort().reverse(), at, 'newest feedback first');
    }
  });
  assert.equal(d.execSeq, 0, 'eval_executions was read by a sequential scan');
  assert.ok(d.walk >= 3, 'feedback_agent_time was not walked');
});

test('GET traces?rating= deep in the cursor reads the ratings below the cursor only', { timeout: 60000 }, async () => {
  // 1,999 traces below the cursor hold about 800 ratings, 80 of them neutral; the 18,000
  // traces above it hold about 7,200 ratings that the page must not read.
  const d = await measure(async () => {
    const r = await srv.api('GET', `/v1/traces?agent_id=${agent}&rating=neutral&limit=50`
      + `&cursor=trace_${'2000'.padStart(26, '0')}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.length, 50);
    for (const t of r.json.data) {
      assert.ok(t.id < 'trace_' + '2000'.padStart(26, '0'), t.id);
      assert.equal(t.feedback.rating, 'neutral');
    }
  });
  assert.ok(d.ratingsRead < 2000, `${d.ratingsRead} ratings read for one page`);
});

test('GET traces?version=1 walks that version\'s traces, not the newer ones', { timeout: 60000 }, async () => {
  const d = await measure(async () => {
    const r = await srv.api('GET', `/v1/traces?agent_id=${agent}&version=1&limit=50`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.length, 50);
    assert.equal(r.json.data[0].id, 'trace_' + '10000'.padStart(26, '0'));
    for (const t of r.json.data) assert.equal(t.version, 1);
    const ids = r.json.data.map((t) => t.id);
    assert.deepEqual([...ids].sort().reverse(), ids, 'newest first');
  });
  assert.ok(d.tracesByPkey < 1000, `${d.tracesByPkey} traces read by id for one page of 50`);
});
