// Upgrading a database full of data (docs/operations.md, Upgrades): a database at schema
// version 2 (the test-only REFOLD_TEST_MIGRATE_TO stops the migrations there) gets the rows
// that a binary of that version wrote through its API (tests/data/upgrade/schema2.json, made
// by generate.mjs beside it: every table, versions active/candidate/archived/rejected, jobs in
// every status, one retried through the API, one on attempt 2, one running under a lease);
// then `refold migrate` and `refold serve` of this binary must read everything back as the old
// binary did, the old key must still sign in, and new behaviour must work on old rows. The
// same rows but the jobs' also go from schema 1 through every migration. Runs on SQLite and,
// with REFOLD_TEST_PG_URL, on PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, SOURCE_DIR, freshDatabase, dropDatabase, run, sql, startFakeLLM, llmEnv, waitJob, readSSE } from './lib.mjs';

const FX = JSON.parse(readFileSync(join(SOURCE_DIR, 'tests', 'data', 'upgrade', 'schema2.json'), 'utf8'));
const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
const ORDER = ['workspaces', 'api_keys', 'sessions', 'agents', 'agent_versions', 'traces', 'feedback', 'evals',
  'eval_executions', 'agent_stats', 'prompt_best_practices', 'jobs', 'job_events', 'llm_calls'];
// The queued job waits a day and the running one holds its lease for an hour from now
// whenever the test runs, so that neither changes under the reads.
const FAR = 4102444800000; // 2100-01-01
const ANALYSIS = JSON.stringify({ failure_patterns: ['Promises refunds without checking'], summary: 'No order check.' });
const REWRITE = JSON.stringify({ improved_prompt: 'You are the support agent of {{company}}.\nReply in {{language}}.\nCheck orders.\n',
  changes: ['Check orders'], reasoning: 'Missing instruction.' });
const SCRIPT = [{ match: 'Identify the failure patterns', text: ANALYSIS }, { match: 'Rewrite the prompt template below', text: REWRITE }];

const lit = (v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`);

// The fixture's rows as INSERTs, in statements of at most ~60 kB each (psql -c takes one argument).
async function load(db, rows) {
  let chunk = '';
  for (const t of ORDER) {
    for (const r of rows[t]) {
      const cols = Object.keys(r);
      const stmt = `INSERT INTO ${t} (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map((c) => lit(r[c])).join(', ')});\n`;
      if (chunk.length + stmt.length > 60000) { await sql(db, chunk); chunk = ''; }
      chunk += stmt;
    }
  }
  if (chunk) await sql(db, chunk);
}

// Every field of the old binary's answer is in the new one with the same value (new fields
// may be added: the upgrade must not change or lose what was there).
function assertKept(got, want, path) {
  if (want === null || typeof want !== 'object') return assert.deepEqual(got, want, path);
  assert.equal(typeof got, 'object', path);
  assert.ok(got !== null, path);
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), path);
    assert.equal(got.length, want.length, `${path}: length`);
  }
  for (const k of Object.keys(want)) assertKept(got[k], want[k], `${path}.${k}`);
}

let fake, srv, dir, db;
before(async () => {
  fake = await startFakeLLM();
  dir = mkdtempSync(join(tmpdir(), 'refold-upgrade-'));
  db = await freshDatabase(dir);
});
after(async () => {
  if (srv) await srv.stop();
  fake.stop();
  if (db.startsWith('postgres')) dropDatabase(db);
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ XDG_CONFIG_HOME: join(dir, 'config') });

test('a database at schema 2 filled by the old binary', async () => {
  const r = await run(['migrate', '--db', db], { env: { ...env(), REFOLD_TEST_JOBS: '1', REFOLD_TEST_MIGRATE_TO: '2' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /applied 2 migrations; schema version 2/);
  const rows = structuredClone(FX.rows);
  for (const j of rows.jobs) {
    if (j.id === FX.jobs.queued) j.run_at = FAR;
    if (j.id === FX.jobs.running) j.lease_expires_at = Date.now() + 3600000;
  }
  await load(db, rows);
});

test('refold migrate applies the rest and keeps every row', async () => {
  const counts = {};
  for (const t of ORDER) counts[t] = await sql(db, `SELECT COUNT(*) FROM ${t}`);
  const r = await run(['migrate', '--db', db], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /applied 1 migration; schema version 3/);
  for (const t of ORDER) assert.equal(await sql(db, `SELECT COUNT(*) FROM ${t}`), counts[t], t);
  assert.equal(await sql(db, 'SELECT COUNT(*) FROM jobs WHERE run <> 1'), '0');
  assert.equal(await sql(db, 'SELECT COUNT(*) FROM llm_calls WHERE run <> 1'), '0');
  assert.equal(await sql(db, RECOUNT), '', 'agent_stats equals a recount');
});

test('refold serve reads everything back as the old binary did, with the old key', async () => {
  srv = new Server({ db, env: llmEnv(fake, { REFOLD_TEST_JOBS: '1', REFOLD_SWEEP_MS: '200' }) });
  srv.db = db;
  srv.key = FX.key;
  await srv.start();
  for (const [path, want] of Object.entries(FX.reads)) {
    const r = await srv.api('GET', path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    if (path === `/v1/jobs/${FX.jobs.queued}`) want.run_at = new Date(FAR).toISOString();
    if (path.startsWith('/v1/jobs?')) for (const j of want.data) if (j.id === FX.jobs.queued) j.run_at = new Date(FAR).toISOString();
    assertKept(r.json, want, path);
  }
  // Agent stats are the recount of the rows.
  for (const id of Object.values(FX.agents)) {
    const stats = (await srv.api('GET', `/v1/agents/${id}`)).json.stats;
    const traces = FX.rows.traces.filter((t) => t.agent_id === id).map((t) => t.id);
    const fb = FX.rows.feedback.filter((f) => traces.includes(f.trace_id));
    assert.equal(stats.traces, traces.length);
    for (const k of ['positive', 'negative', 'neutral']) assert.equal(stats[k], fb.filter((f) => f.rating === k).length, k);
    assert.equal(stats.executions, FX.rows.eval_executions.filter((x) => traces.includes(x.trace_id)).length);
  }
  // The transcripts: every old call is run 1 and keeps its attempt.
  for (const id of Object.values(FX.jobs)) {
    const calls = (await srv.api('GET', `/v1/jobs/${id}/llm-calls?limit=100`)).json.data;
    const old = FX.rows.llm_calls.filter((c) => c.job_id === id);
    assert.deepEqual(calls.map((c) => [c.id, c.run, c.attempt]), old.map((c) => [c.id, 1, c.attempt]), id);
  }
  // Every job's stored events, and a stream that resumes after the last one of a running job.
  for (const id of Object.values(FX.jobs)) {
    const r = await srv.api('GET', `/v1/jobs/${id}/events?limit=100`, undefined, { headers: { accept: 'application/json' } });
    assert.equal(r.status, 200, r.text);
    const want = FX.rows.job_events.filter((e) => e.job_id === id);
    // Their data as stored, plus the row's time (docs/jobs.md: added on every read).
    assert.deepEqual(r.json.data.map((e) => [e.seq, e.type, e.data]),
      want.map((e) => [e.seq, e.type, { ...JSON.parse(e.data), created_at: new Date(e.created_at).toISOString() }]), id);
  }
  // A finished job's stream from its start ends with its first terminal event, as documented.
  const events = await readSSE(srv, FX.jobs.completed, { timeout: 10000 });
  assert.deepEqual(events.map((e) => e.id), FX.rows.job_events.filter((e) => e.job_id === FX.jobs.completed).map((e) => e.seq));
  // The revoked key stays revoked.
  assert.equal((await srv.api('GET', '/v1/agents', undefined, { key: FX.revoked_key })).status, 401);
});

test('new behaviour on old rows: a retried old job counts run 2, new writes keep the counters', async () => {
  await fake.script(SCRIPT);
  const r = await srv.api('POST', `/v1/jobs/${FX.jobs.failed}/retry`);
  assert.equal(r.status, 202, r.text);
  const done = await waitJob(srv, FX.jobs.failed);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  const calls = (await srv.api('GET', `/v1/jobs/${FX.jobs.failed}/llm-calls?limit=100`)).json.data;
  assert.deepEqual(calls.map((c) => [c.run, c.attempt, c.step]),
    [[1, 1, 'analysis'], [2, 1, 'analysis'], [2, 1, 'rewrite']]);
  // The new candidate takes the next number after the old versions.
  const versions = (await srv.api('GET', `/v1/agents/${FX.agents.support}/versions?limit=100`)).json.data;
  const oldMax = Math.max(...FX.rows.agent_versions.filter((v) => v.agent_id === FX.agents.support).map((v) => v.version));
  assert.equal(done.result.new_version_number, oldMax + 1);
  assert.equal(versions.length, oldMax + 1);

  // The cancelled old job runs again to completion.
  assert.equal((await srv.api('POST', `/v1/jobs/${FX.jobs.cancelled}/retry`)).status, 202);
  await srv.api('GET', `/v1/jobs/${FX.jobs.cancelled}`);
  // Cut its 60 s sleep short: the point is that it is claimed and runs, then obeys a cancel.
  for (let i = 0; (await srv.api('GET', `/v1/jobs/${FX.jobs.cancelled}`)).json.status !== 'running'; i++) {
    assert.ok(i < 200, 'the retried old job was never claimed');
    await new Promise((res) => setTimeout(res, 50));
  }
  await srv.api('POST', `/v1/jobs/${FX.jobs.cancelled}/cancel`);
  assert.equal((await waitJob(srv, FX.jobs.cancelled)).status, 'cancelled');

  // New traces, ratings and executions on an old agent keep agent_stats exact.
  const t = await srv.api('POST', '/v1/traces', { traces: [{ agent_id: FX.agents.support, external_id: 'after-upgrade', input: 'hi', output: 'hello' }] });
  assert.equal(t.status, 201, t.text);
  const tid = t.json.data[0].id;
  assert.equal((await srv.api('PUT', `/v1/traces/${tid}/feedback`, { rating: 'negative' })).status, 200);
  const ev = FX.rows.evals.find((e) => e.agent_id === FX.agents.support);
  const x = await srv.api('POST', `/v1/evals/${ev.id}/executions`, { executions: [{ trace_id: tid, predicted_result: true }] });
  assert.ok(x.status < 300, x.text);
  // An old rating changed.
  const oldTrace = FX.rows.feedback.find((f) => f.agent_id === FX.agents.support).trace_id;
  assert.equal((await srv.api('PUT', `/v1/traces/${oldTrace}/feedback`, { rating: 'positive' })).status, 200);
  assert.equal(await sql(db, RECOUNT), '', 'agent_stats equals a recount');
  const stats = (await srv.api('GET', `/v1/agents/${FX.agents.support}`)).json.stats;
  assert.equal(stats.traces, FX.reads[`/v1/agents/${FX.agents.support}`].stats.traces + 1);
});

// Schema 1 (before the job queue existed, so no job rows): the same rows but the jobs'
// upgrade through 002 and 003 at once keeps them, and the new binary reads them back.
test('a schema-1 database with data upgrades through every migration', async () => {
  const sub = join(dir, 'schema1');
  mkdirSync(sub);
  const db1 = await freshDatabase(sub);
  try {
    let r = await run(['migrate', '--db', db1], { env: { ...env(), REFOLD_TEST_JOBS: '1', REFOLD_TEST_MIGRATE_TO: '1' } });
    assert.match(r.stdout, /applied 1 migration; schema version 1/, r.stderr);
    const rows = { ...FX.rows, jobs: [], job_events: [], llm_calls: [] };
    await load(db1, rows);
    r = await run(['migrate', '--db', db1], { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /applied 2 migrations; schema version 3/);
    for (const t of ORDER) assert.equal(await sql(db1, `SELECT COUNT(*) FROM ${t}`), String(rows[t].length + (t === 'prompt_best_practices' ? 24 : 0)), t);
    assert.equal(await sql(db1, RECOUNT), '', 'agent_stats equals a recount');
    const s1 = new Server({ db: db1, env: { REFOLD_LLM_PROVIDER: 'scripted' } });
    s1.db = db1;
    s1.key = FX.key;
    await s1.start();
    try {
      for (const [path, want] of Object.entries(FX.reads)) {
        if (path.includes('/jobs') || path.includes('/contradictions')) continue;
        const got = await s1.api('GET', path);
        assert.equal(got.status, 200, `${path}: ${got.text}`);
        assertKept(got.json, want, path);
      }
    } finally {
      await s1.stop();
    }
  } finally {
    if (db1.startsWith('postgres')) dropDatabase(db1);
  }
});
