// Makes tests/data/upgrade/schema2.json, the database that tests/integration/upgrade.test.mjs
// upgrades: every table filled by a refold binary of schema version 2 (before migration 003),
// through its HTTP API and CLI, plus that binary's answers to the reads the test repeats.
//
//   git archive 25373f0 | tar -x -C /tmp/old && cmake -S /tmp/old -B /tmp/old/build && \
//     cmake --build /tmp/old/build --target refold
//   cd tests && REFOLD_BIN=/tmp/old/build/refold REFOLD_SOURCE_DIR=.. node data/upgrade/generate.mjs
//
// on SQLite (REFOLD_TEST_PG_URL unset). 25373f0 is the parent of the commit that added
// 003_job_runs.sql. The rows are kept as JSON, not SQL, so the test can insert them on
// SQLite and PostgreSQL alike.
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, startFakeLLM, llmEnv, waitJob, sql, run, sleep } from '../../integration/lib.mjs';

const OUT = join(dirname(fileURLToPath(import.meta.url)), 'schema2.json');
const TABLES = ['workspaces', 'api_keys', 'sessions', 'agents', 'agent_versions', 'traces', 'feedback',
  'evals', 'eval_executions', 'agent_stats', 'prompt_best_practices', 'jobs', 'job_events', 'llm_calls'];

const TEMPLATE = 'You are the support agent of {{company}}.\nReply in {{language}}.\nBe helpful.\n';
const ANALYSIS = JSON.stringify({
  failure_patterns: ['Promises refunds without checking the order status', 'Ignores angry customers'],
  summary: 'The prompt never says to verify orders before refunds.',
});
const REWRITE = JSON.stringify({
  improved_prompt: TEMPLATE + 'Look up the order before promising a refund.\n',
  changes: ['Require an order lookup before refunds'],
  reasoning: 'The pattern comes from a missing instruction.',
});
const A = { match: 'Identify the failure patterns', text: ANALYSIS, usage: { input_tokens: 900, output_tokens: 80 } };
const R = { match: 'Rewrite the prompt template below', text: REWRITE, usage: { input_tokens: 1200, output_tokens: 300 } };
const BAD = { match: 'Identify the failure patterns', status: 400, persist: true };

const fake = await startFakeLLM();
const env = llmEnv(fake, { REFOLD_TEST_JOBS: '1', REFOLD_LEASE_MS: '600000', REFOLD_HEARTBEAT_MS: '300' });
const srv = await startServer({ env });
const ok = async (method, path, body, opts) => {
  const r = await srv.api(method, path, body, opts);
  if (r.status >= 300) throw new Error(`${method} ${path} -> ${r.status} ${r.text}`);
  return r.json;
};

// ---- agents, versions, traces, feedback, evals, executions ----
async function agentWithData(name, n) {
  const agent = await ok('POST', '/v1/agents', { name, description: `The ${name} agent`, prompt_template: TEMPLATE });
  const evals = [await ok('POST', '/v1/evals', { agent_id: agent.id, name: 'judge', description: 'LLM judge' }),
    await ok('POST', '/v1/evals', { agent_id: agent.id, name: 'tone' })];
  const traces = [];
  for (let i = 0; i < n; i++) {
    traces.push({ agent_id: agent.id, external_id: `${name}-${i}`, source: i % 2 ? 'langfuse' : 'api',
      timestamp: 1767225600000 + i * 60000, input: `customer message ${i}: "quotes", ünïcödé\nsecond line`,
      output: `agent answer ${i}`, ...(i % 3 === 0 ? { steps: [{ tool: 'lookup', ok: i % 2 === 0 }], metadata: { user: `u${i}` } } : {}) });
  }
  const ids = (await ok('POST', '/v1/traces', { traces })).data.map((d) => d.id);
  const ratings = ['negative', 'positive', 'neutral', 'negative', 'positive', 'negative'];
  await ok('POST', '/v1/feedback', { feedback: ids.slice(0, n - 1).map((id, i) =>
    ({ trace_id: id, rating: ratings[i % ratings.length], ...(i % 2 ? {} : { note: `note ${i}` }) })) });
  for (const [k, ev] of evals.entries()) {
    await ok('POST', `/v1/evals/${ev.id}/executions`, { executions: ids.slice(k).map((id, i) =>
      ({ trace_id: id, predicted_result: (i + k) % 3 !== 0, predicted_reason: `reason ${i}`, execution_time_ms: 100 + i })) });
  }
  return { agent, ids };
}
const support = await agentWithData('support', 12);
const billing = await agentWithData('billing', 6);
const retired = await agentWithData('retired', 3);
await ok('DELETE', `/v1/agents/${retired.agent.id}`);
// support: v2 candidate (manual), v3 promoted (v1 archived), v4 rejected, a rating change.
await ok('POST', `/v1/agents/${support.agent.id}/versions`, { prompt_template: TEMPLATE + 'Be brief.\n' });
await ok('POST', `/v1/agents/${support.agent.id}/versions`, { prompt_template: TEMPLATE + 'Be kind.\n' });
await ok('POST', `/v1/agents/${support.agent.id}/versions/3/promote`, { note: 'kinder' });
await ok('POST', `/v1/agents/${support.agent.id}/versions`, { prompt_template: TEMPLATE + 'Be rude.\n' });
await ok('POST', `/v1/agents/${support.agent.id}/versions/4/reject`, { reason: 'rude' });
await ok('PUT', `/v1/traces/${support.ids[1]}/feedback`, { rating: 'negative', note: 'changed my mind' });
await ok('POST', '/v1/best-practices', { category: 'safety', title: 'Never promise refunds', content: 'Check first.', url: 'https://example.com/refunds' });

// ---- jobs: completed (two), failed, failed then retried through the API and completed, completed
// on attempt 2, cancelled, queued, running ----
await fake.script([A, R]);
const completed = await waitJob(srv, (await ok('POST', `/v1/agents/${support.agent.id}/improve-prompt`, {})).id);
await ok('POST', `/v1/agents/${billing.agent.id}/improve-prompt`, {}); // nothing to improve
await fake.script([BAD]);
const failed = await waitJob(srv, (await ok('POST', `/v1/agents/${support.agent.id}/improve-prompt`, {})).id);
const retried = await waitJob(srv, (await ok('POST', `/v1/agents/${support.agent.id}/improve-prompt`, { max_contradictions: 5 })).id);
await fake.script([A, R]);
await ok('POST', `/v1/jobs/${retried.id}/retry`);
await waitJob(srv, retried.id);
const transient = await waitJob(srv, (await ok('POST', '/v1/test/jobs',
  { params: { sleep_ms: 10, progress: 2, fail: 'transient', fail_attempts: 1, commit_row: true } })).id);
const cancelled = await ok('POST', '/v1/test/jobs', { params: { sleep_ms: 60000 } });
await sleep(300);
await ok('POST', `/v1/jobs/${cancelled.id}/cancel`);
await waitJob(srv, cancelled.id);
const queued = await ok('POST', '/v1/test/jobs', { params: { sleep_ms: 10 }, delay_ms: 24 * 3600 * 1000 });
const running = await ok('POST', '/v1/test/jobs', { params: { sleep_ms: 600000, log: true } });
for (let i = 0; (await srv.api('GET', `/v1/jobs/${running.id}`)).json.status !== 'running'; i++) await sleep(50);
await sleep(200);

// ---- a second key (revoked) and a web session ----
const second = await run(['key', 'create', '--workspace', 'default', '--name', 'revoked', '--db', srv.db], { env: srv.env });
const revokedKey = second.stdout.trim();
const keyId = (await sql(srv.db, "SELECT id FROM api_keys WHERE name = 'revoked'"));
const rv = await run(['key', 'revoke', keyId, '--db', srv.db], { env: srv.env });
if (rv.code !== 0) throw new Error(rv.stderr);
const sess = await fetch(srv.url + '/v1/session', { method: 'POST', headers: { 'content-type': 'application/json', 'x-requested-with': 'refold' }, body: JSON.stringify({ api_key: srv.key }) });
if (sess.status >= 300) throw new Error(`session ${sess.status} ${await sess.text()}`);

// ---- the old binary's answers to the reads the test repeats ----
const reads = {};
const paths = ['/v1/agents?limit=100', '/v1/traces?limit=100', '/v1/evals?limit=100', '/v1/best-practices?limit=100',
  '/v1/jobs?limit=100'];
for (const a of [support, billing, retired]) {
  paths.push(`/v1/agents/${a.agent.id}`, `/v1/agents/${a.agent.id}/versions?limit=100`,
    `/v1/agents/${a.agent.id}/contradictions`);
  for (const id of a.ids) paths.push(`/v1/traces/${id}`);
}
for (const j of [completed, failed, retried, transient, cancelled, queued, running]) paths.push(`/v1/jobs/${j.id}`, `/v1/jobs/${j.id}/llm-calls?limit=100`);
for (const p of paths) {
  const r = await srv.api('GET', p);
  if (r.status !== 200) throw new Error(`GET ${p} -> ${r.status}`);
  reads[p] = r.json;
}
// A kill leaves the running job running with its lease, as a crashed node would.
await srv.stop('SIGKILL');
const rows = {};
for (const t of TABLES) rows[t] = JSON.parse((await sql(srv.db, `SELECT json_group_array(json_object(${
  (await sql(srv.db, `SELECT group_concat('''' || name || ''', "' || name || '"', ', ') FROM pragma_table_info('${t}')`))
})) FROM (SELECT * FROM "${t}" ORDER BY rowid)`)) || '[]');
rows.prompt_best_practices = rows.prompt_best_practices.filter((r) => r.workspace_id !== null);
writeFileSync(OUT, JSON.stringify({
  made_by: 'tests/data/upgrade/generate.mjs with the binary of 25373f0 (schema version 2)',
  key: srv.key, revoked_key: revokedKey,
  jobs: { completed: completed.id, failed: failed.id, retried: retried.id, transient: transient.id, cancelled: cancelled.id, queued: queued.id, running: running.id },
  agents: { support: support.agent.id, billing: billing.agent.id, retired: retired.agent.id },
  rows, reads,
}, null, 1) + '\n');
srv.cleanup();
fake.stop();
console.log(`wrote ${OUT}`);
