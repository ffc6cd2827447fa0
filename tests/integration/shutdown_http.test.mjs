// What the HTTP side of `refold serve` does on SIGTERM (docs/operations.md, "Stopping a
// node"): from the signal on /healthz answers 503 and every answer closes its connection
// while running jobs drain; then no new connection is accepted, the requests in flight
// are answered before the process exits (0), so whatever a client was told is stored is
// stored and nothing else is.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, run, sql, sleep, startFakeLLM, llmEnv, readSSE, SOURCE_DIR } from './lib.mjs';
import { startJobsServer, enqueueOk, waitJob } from './jobs_lib.mjs';

const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
const servers = [];
after(async () => { for (const s of servers) s.cleanup(); });

test('an import streaming batches when SIGTERM arrives: every batch the server stored was acknowledged', async () => {
  const srv = await startServer({ env: { REFOLD_WORKERS: '0' } });
  servers.push(srv);
  const lines = [JSON.stringify({ type: 'agent', name: 'imp', prompt_template: 'Hi {{name}}' })];
  for (let i = 0; i < 60000; i++)
    lines.push(JSON.stringify({ type: 'trace', agent: 'imp', source: 's', external_id: `e${i}`, input: 'in '.repeat(30), output: 'out '.repeat(30) }));
  const file = join(srv.dir, 'big.jsonl');
  writeFileSync(file, lines.join('\n') + '\n');
  const env = { XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key, REFOLD_TTY: '' };
  const imp = run(['import', file], { env, timeout: 120000 });
  // Batches are streaming once some are stored.
  for (let i = 0; i < 400 && Number(await sql(srv.db, 'SELECT COUNT(*) FROM traces')) < 3000; i++) await sleep(25);
  const t0 = Date.now();
  const exit = await srv.stop();
  srv.child = null;
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 6000, `exited after ${Date.now() - t0} ms`);
  const r = await imp;
  const stored = Number(await sql(srv.db, 'SELECT COUNT(*) FROM traces'));
  assert.ok(stored < 60000, 'the import ended before the server: nothing was in flight');
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /importing the file again is safe/);
  const m = r.stdout.match(/^trace\s+([\d,]+)/m);
  assert.ok(m, r.stdout);
  assert.equal(Number(m[1].replace(/,/g, '')), stored, `acknowledged ${m[1]}, stored ${stored}: answers of stored batches were cut off`);
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'agent_stats equals a recount');
  if (!srv.db.startsWith('postgres')) assert.equal(await sql(srv.db, 'PRAGMA integrity_check'), 'ok');
});

test('while running jobs drain after SIGTERM, /healthz answers 503 and answers close their connections', async () => {
  const srv = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: '5000' });
  servers.push(srv);
  assert.equal((await srv.api('GET', '/healthz', undefined, { key: null })).status, 200);
  const job = await enqueueOk(srv, { sleep_ms: 1500 });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  srv.child.kill('SIGTERM');
  await sleep(200);
  const h = await srv.api('GET', '/healthz', undefined, { key: null });
  assert.equal(h.status, 503);
  assert.equal(h.json.error, 'shutting down');
  const g = await srv.api('GET', `/v1/jobs/${job.id}`);
  assert.equal(g.status, 200, 'still answering while jobs drain');
  assert.equal(g.headers.get('connection'), 'close');
  assert.equal((await srv.exited).code, 0);
  srv.child = null;
  // At info, one line when the run starts and one when it ends, with what an operator greps for.
  assert.match(srv.logs, new RegExp(`level=info msg="job started" job=${job.id} type=test_sleep attempt=1 of=\\d+ worker=\\d+`));
  assert.match(srv.logs, new RegExp(`level=info msg="job finished" job=${job.id} type=test_sleep attempt=1 status=completed op=complete duration_ms=\\d+`));
});

test('an improvement mid-LLM-stream at SIGTERM goes back to the queue unspent, and its event stream ends', async () => {
  const fake = await startFakeLLM();
  const srv = await startServer({ env: llmEnv(fake, { REFOLD_SHUTDOWN_GRACE_MS: '500' }) });
  servers.push(srv);
  try {
    await fake.script([], { text: '{"failure_patterns":["x"],"summary":"y"}', chunk_delay_ms: 0, stall_ms: 60000, stall_after_chunks: 1, persist: true });
    const agent = (await srv.api('POST', '/v1/agents', { name: 'a', prompt_template: 'Hi {{name}}' })).json;
    const ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;
    const t = (await srv.api('POST', '/v1/traces', { traces: [{ agent_id: agent.id, external_id: 't1', input: 'i', output: 'o' }] })).json.data[0];
    await srv.api('POST', '/v1/feedback', { feedback: [{ trace_id: t.id, rating: 'negative' }] });
    await srv.api('POST', `/v1/evals/${ev.id}/executions`, { executions: [{ trace_id: t.id, predicted_result: true }] });
    const job = (await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, {})).json;
    const stream = readSSE(srv, job.id, { timeout: 30000 });
    for (let i = 0; i < 200 && (await fake.requests()).length === 0; i++) await sleep(50);
    assert.equal((await fake.requests()).length, 1, 'the LLM request is streaming');
    await sleep(200);
    const t0 = Date.now();
    const exit = await srv.stop();
    srv.child = null;
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}; log tail: ${srv.logs.slice(-3000)}`);
    assert.ok(Date.now() - t0 < 4000, `exited after ${Date.now() - t0} ms (grace 500 ms)`);
    const events = await stream; // ends with the server, not at its 30 s timeout
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(!events.some((e) => ['failed', 'cancelled', 'completed'].includes(e.event)), JSON.stringify(events));
    const row = await sql(srv.db, `SELECT status, attempt FROM jobs WHERE id = '${job.id}'`);
    assert.equal(row, 'queued|0');
    // The log says what happened to the call and the run, and nothing of the prompt or key.
    assert.match(srv.logs, new RegExp(`level=info msg="llm call" job=${job.id} step=\\w+ provider=anthropic model="[^"]+" outcome=\\w+ http_status=200 attempts=1 latency_ms=\\d+`));
    assert.match(srv.logs, new RegExp(`msg="job finished" job=${job.id} .*status=queued op=release`));
    assert.ok(!srv.logs.includes('sk-ant-test-key'), 'the API key is not logged');
    assert.ok(!/Identify the failure patterns|Hi \{\{name\}\}/.test(srv.logs), 'no prompt text in the log');
    if (!srv.db.startsWith('postgres')) assert.equal(await sql(srv.db, 'PRAGMA integrity_check'), 'ok');
  } finally {
    fake.stop();
  }
});
