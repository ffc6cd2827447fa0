// The /v1/jobs API surface (SPEC §4.2, §4.3, §6) and the CLI job commands: Job objects,
// list filters and pagination, workspace isolation, the SSE headers and framing, the JSON
// events list, the LLM transcript, metrics, the test-only route, cookie rules, and the
// CLI's output and error messages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createWorkspaceKey, run, startServer } from './lib.mjs';
import {
  startJobsServer, enqueueOk, waitTerminal, waitJob, storedEvents, metric, assertNoSanitizerReport,
} from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_SSE_PING_MS: '300' });
const plain = await startServer(); // REFOLD_TEST_JOBS unset
after(async () => {
  for (const s of [srv, plain]) { await s.stop(); s.cleanup(); }
  assertNoSanitizerReport(plain.logs, 'refold serve (no test jobs)');
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('a Job has exactly the fields of SPEC §4.2', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 1 }, { maxAttempts: 2 });
  assert.deepEqual(Object.keys(job).sort(), ['attempt', 'cancel_requested', 'created_at', 'error',
    'finished_at', 'id', 'max_attempts', 'params', 'progress', 'result', 'run_at', 'stage',
    'started_at', 'status', 'type'].sort());
  assert.match(job.id, /^job_[0-9A-Z]{26}$/);
  assert.equal(job.status, 'queued');
  assert.equal(job.attempt, 0);
  assert.equal(job.max_attempts, 2);
  assert.equal(job.cancel_requested, false);
  assert.deepEqual(job.params, { sleep_ms: 1 });
  assert.match(job.created_at, ISO);
  assert.match(job.run_at, ISO);
  const done = await waitTerminal(srv, job.id);
  assert.equal(done.status, 'completed');
  assert.equal(done.stage, 'completed');
  assert.equal(done.progress, 100);
  assert.match(done.started_at, ISO);
  assert.match(done.finished_at, ISO);
  assert.equal(done.result.attempt, 1);
});

test('GET /v1/jobs filters by status and type, pages newest first', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await enqueueOk(srv, {}, { delayMs: 600000 })).id);
  const queued = await srv.api('GET', '/v1/jobs?status=queued&limit=2');
  assert.equal(queued.status, 200);
  assert.deepEqual(queued.json.data.map((j) => j.id), [ids[4], ids[3]]);
  assert.ok(queued.json.next_cursor);
  const next = await srv.api('GET', `/v1/jobs?status=queued&limit=2&cursor=${queued.json.next_cursor}`);
  assert.deepEqual(next.json.data.map((j) => j.id), [ids[2], ids[1]]);
  const byType = await srv.api('GET', '/v1/jobs?type=test_sleep&limit=500');
  assert.ok(byType.json.data.every((j) => j.type === 'test_sleep'));
  assert.equal((await srv.api('GET', '/v1/jobs?type=prompt_improvement')).json.data.length, 0);
  const bad = await srv.api('GET', '/v1/jobs?status=sleeping');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.details.field, 'status');
  // An unknown type is refused the same way, listing the types this server runs, rather
  // than answering an empty list (a typo looked like "no such jobs").
  for (const t of ['bogus', 'Prompt_Improvement', '']) {
    const badType = await srv.api('GET', `/v1/jobs?type=${t}`);
    assert.equal(badType.status, 400, badType.text);
    assert.equal(badType.json.error.code, 'invalid_request');
    assert.equal(badType.json.error.details.field, 'type');
    assert.equal(badType.json.error.message, 'type must be one of: prompt_improvement, test_sleep');
  }
  for (const id of ids) assert.equal((await srv.api('POST', `/v1/jobs/${id}/cancel`)).status, 202);
  const cancelled = await srv.api('GET', '/v1/jobs?status=cancelled&limit=500');
  for (const id of ids) assert.ok(cancelled.json.data.some((j) => j.id === id));
});

test('GET /v1/jobs?agent_id= lists the jobs of one agent', async () => {
  const agent = (await srv.api('POST', '/v1/agents', { name: 'jobs-agent' })).json;
  const r = await srv.api('POST', '/v1/test/jobs', { params: {}, agent_id: agent.id, delay_ms: 600000 });
  assert.equal(r.status, 202);
  await enqueueOk(srv, {}, { delayMs: 600000 });
  const list = await srv.api('GET', `/v1/jobs?agent_id=${agent.id}`);
  assert.deepEqual(list.json.data.map((j) => j.id), [r.json.id]);
});

test('another workspace sees none of it (404 like a missing job)', async () => {
  const job = await enqueueOk(srv, { fail: 'permanent' });
  await waitTerminal(srv, job.id);
  const other = await createWorkspaceKey(srv.db, 'jobs-other', srv.env);
  for (const [method, path, headers] of [
    ['GET', `/v1/jobs/${job.id}`], ['GET', `/v1/jobs/${job.id}/events`],
    ['GET', `/v1/jobs/${job.id}/events`, { accept: 'application/json' }],
    ['GET', `/v1/jobs/${job.id}/llm-calls`], ['POST', `/v1/jobs/${job.id}/cancel`],
    ['POST', `/v1/jobs/${job.id}/retry`]]) {
    const r = await srv.api(method, path, undefined, { key: other, headers });
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(r.json.error.code, 'not_found');
  }
  assert.deepEqual((await srv.api('GET', '/v1/jobs', undefined, { key: other })).json.data, []);
  assert.equal((await srv.api('GET', '/v1/jobs/job_01ZZZZZZZZZZZZZZZZZZZZZZZZ/events')).status, 404);
});

// Read the raw bytes of a stream until `until` matches (or the server ends it).
function rawStream(path, headers, until, ms = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${srv.url}${path}`, { headers: { authorization: `Bearer ${srv.key}`, ...headers }, agent: false }, (res) => {
      let text = '';
      const t0 = Date.now();
      const marks = [];
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
        marks.push([Date.now() - t0, d]);
        if (until && until.test(text)) { req.destroy(); resolve({ res, text, marks }); }
      });
      res.on('end', () => resolve({ res, text, marks, ended: true }));
    });
    req.on('error', reject);
    setTimeout(() => { req.destroy(); reject(new Error('stream timed out')); }, ms).unref();
  });
}

test('SSE: headers, retry and a comment at once, id/event/data framing, pings, close after the end', async () => {
  const job = await enqueueOk(srv, { sleep_ms: 900, progress: 2, log: true });
  const { res, text, marks, ended } = await rawStream(`/v1/jobs/${job.id}/events`, {}, null, 10000);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  assert.equal(res.headers['cache-control'], 'no-cache');
  assert.equal(res.headers['x-accel-buffering'], 'no');
  assert.ok(ended, 'the server closed the stream after the terminal event');
  assert.match(marks[0][1], /^retry: 3000\n: ok\n\n/, 'sent at once, before any event');
  const blocks = text.split('\n\n').filter((b) => b && !b.startsWith('retry:'));
  const events = blocks.filter((b) => !b.startsWith(':'));
  assert.ok(blocks.some((b) => b === ': ping'), 'a keep-alive comment went out (REFOLD_SSE_PING_MS=300)');
  assert.deepEqual(events.map((b) => b.split('\n').map((l) => l.split(':')[0])),
    Array(events.length).fill(['id', 'event', 'data']));
  const parsed = events.map((b) => {
    const [id, ev, data] = b.split('\n');
    return { seq: Number(id.slice(4)), type: ev.slice(7), data: JSON.parse(data.slice(6)) };
  });
  assert.deepEqual(parsed.map((e) => e.type), ['log', 'progress', 'progress', 'progress', 'completed']);
  assert.deepEqual([parsed[3].data.stage, parsed[3].data.progress], ['completed', 100]);
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(parsed, stored.map(({ seq, type, data }) => ({ seq, type, data })));
  assert.deepEqual(Object.keys(parsed[1].data).slice(0, 4), ['job_id', 'status', 'stage', 'progress']);
  assert.deepEqual(parsed[4].data.status, 'completed');
  assert.ok(parsed[4].data.result);
});

test('Accept: application/json lists the stored events, paged by seq', async () => {
  const job = await enqueueOk(srv, { progress: 4 });
  await waitTerminal(srv, job.id);
  const all = await srv.api('GET', `/v1/jobs/${job.id}/events`, undefined, { headers: { accept: 'application/json' } });
  assert.equal(all.status, 200);
  assert.deepEqual(all.json.data.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Object.keys(all.json.data[0]), ['seq', 'type', 'data', 'created_at']);
  assert.equal(all.json.next_cursor, null);
  const page = await srv.api('GET', `/v1/jobs/${job.id}/events?limit=2&cursor=2`, undefined, { headers: { accept: 'application/json' } });
  assert.deepEqual(page.json.data.map((e) => e.seq), [3, 4]);
  assert.equal(page.json.next_cursor, '4');
  const after = await srv.api('GET', `/v1/jobs/${job.id}/events?last_event_id=3`, undefined, { headers: { accept: 'application/json' } });
  assert.deepEqual(after.json.data.map((e) => e.seq), [4, 5, 6]);
  const bad = await srv.api('GET', `/v1/jobs/${job.id}/events`, undefined, { headers: { 'last-event-id': 'x1' } });
  assert.equal(bad.status, 400);
});

test('GET /v1/jobs/{id}/llm-calls is the job\'s transcript', async () => {
  const job = await enqueueOk(srv, { commit_row: true });
  const done = await waitTerminal(srv, job.id);
  const r = await srv.api('GET', `/v1/jobs/${job.id}/llm-calls`);
  assert.equal(r.status, 200);
  assert.equal(r.json.data.length, 1);
  const c = r.json.data[0];
  assert.equal(c.id, done.result.llm_call_id);
  assert.match(c.id, /^llm_[0-9A-Z]{26}$/);
  assert.deepEqual({ job_id: c.job_id, attempt: c.attempt, step: c.step, provider: c.provider, model: c.model, request: c.request },
    { job_id: job.id, attempt: 1, step: 'analysis', provider: 'test', model: 'test_sleep', request: {} });
  assert.equal(r.json.next_cursor, null);
});

test('/metrics counts jobs by status', async () => {
  const r = await srv.api('GET', '/metrics', undefined, { key: null });
  for (const s of ['queued', 'running', 'completed', 'failed', 'cancelled'])
    assert.match(r.text, new RegExp(`^refold_jobs\\{status="${s}"\\} \\d+$`, 'm'));
  assert.ok(await metric(srv, 'refold_jobs{status="completed"}') >= 3);
  assert.ok(await metric(srv, 'refold_jobs_claimed_total') >= 3);
});

test('the test-only route and job type exist only with REFOLD_TEST_JOBS=1', async () => {
  const r = await plain.api('POST', '/v1/test/jobs', { params: {} });
  assert.equal(r.status, 404);
  assert.equal(r.json.error.code, 'not_found');
  assert.equal((await plain.api('GET', '/v1/test/jobs')).status, 404);
  assert.equal((await plain.api('GET', '/v1/jobs')).status, 200);
});

test('cookie sign-in: GET streams and reads work, POST needs X-Requested-With', async () => {
  const s = await srv.api('POST', '/v1/session', { api_key: srv.key }, { key: null });
  const cookie = s.headers.get('set-cookie').split(';')[0];
  const job = await enqueueOk(srv, {}, { delayMs: 600000 });
  assert.equal((await srv.api('GET', `/v1/jobs/${job.id}`, undefined, { key: null, headers: { cookie } })).status, 200);
  const refused = await srv.api('POST', `/v1/jobs/${job.id}/cancel`, undefined, { key: null, headers: { cookie } });
  assert.equal(refused.status, 401);
  const ok = await srv.api('POST', `/v1/jobs/${job.id}/cancel`, undefined,
    { key: null, headers: { cookie, 'x-requested-with': 'refold' } });
  assert.equal(ok.status, 202);
});

test('CLI: jobs, job, cancel, retry talk to the server', async () => {
  const env = { ...srv.env, REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key };
  const failed = await enqueueOk(srv, { fail: 'permanent' });
  await waitTerminal(srv, failed.id);
  const queued = await enqueueOk(srv, {}, { delayMs: 600000 });

  let r = await run(['jobs', '--status', 'failed'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ID\s+STATUS\s+TYPE/);
  assert.match(r.stdout, new RegExp(`${failed.id}\\s+failed\\s+test_sleep\\s+1/3`));
  assert.doesNotMatch(r.stdout, new RegExp(queued.id));
  r = await run(['jobs', '--json', '--limit', '500'], { env });
  assert.equal(r.code, 0);
  assert.ok(JSON.parse(r.stdout).some((j) => j.id === queued.id));

  r = await run(['job', failed.id], { env });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /status:\s+failed/);
  assert.match(r.stdout, /error:\s+test_permanent: test_sleep failed on attempt 1 as asked/);
  r = await run(['job', failed.id, '--json'], { env });
  assert.equal(JSON.parse(r.stdout).id, failed.id);

  r = await run(['cancel', queued.id], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`${queued.id}: cancelled`));
  r = await run(['retry', queued.id], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /queued again/);
  assert.equal((await waitTerminal(srv, queued.id)).status, 'completed', 'retried: due at once');

  r = await run(['retry', queued.id], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: job \S+ is completed: only failed or cancelled jobs can be retried\n$/);
  r = await run(['job', 'job_01ZZZZZZZZZZZZZZZZZZZZZZZZ'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: job job_01Z+ not found\n$/);
  r = await run(['job', 'nope'], { env });
  assert.equal(r.code, 2);
});

test('CLI: clear errors when the server is down or no key is configured', async () => {
  let r = await run(['jobs'], { env: { ...srv.env, REFOLD_URL: 'http://127.0.0.1:9', REFOLD_API_KEY: 'rf_x' } });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'refold: cannot reach refold at http://127.0.0.1:9: is `refold serve` running?\n');
  r = await run(['jobs'], { env: { ...srv.env, REFOLD_URL: srv.url, REFOLD_API_KEY: '' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: no API key: set REFOLD_API_KEY, or run `refold init` to save one in .*config\.json\n$/);
  r = await run(['jobs'], { env: { ...srv.env, REFOLD_URL: srv.url, REFOLD_API_KEY: 'rf_wrong' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: invalid or revoked API key \(the key in REFOLD_API_KEY\)\n$/);
});

test('CLI: job --follow prints each event once and exits by outcome', async () => {
  const env = { ...srv.env, REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key };
  const ok = await enqueueOk(srv, { sleep_ms: 300, progress: 3 });
  let r = await run(['job', ok.id, '--follow'], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(' ').slice(0, 2).join(' ')),
    ['1 progress', '2 progress', '3 progress', '4 progress', '5 completed']);
  assert.match(lines[0], /^1 progress sleeping 25% t_us=\d+ i=1$/);
  assert.match(lines[3], /^4 progress completed 100%/);
  assert.match(lines[4], /^5 completed result=\{"attempt":1,/);

  const bad = await enqueueOk(srv, { fail: 'permanent', log: true });
  r = await run(['job', bad.id, '--follow', '--json'], { env });
  assert.equal(r.code, 1);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'log'], [2, 'failed']]);
  assert.deepEqual(events[1].data.error, { code: 'test_permanent', message: 'test_sleep failed on attempt 1 as asked' });

  const cancelled = await enqueueOk(srv, {}, { delayMs: 600000 });
  await srv.api('POST', `/v1/jobs/${cancelled.id}/cancel`);
  r = await run(['job', cancelled.id, '--follow'], { env });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '1 cancelled\n');
  r = await run(['job', 'job_01ZZZZZZZZZZZZZZZZZZZZZZZZ', '--follow'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^refold: job job_01Z+ not found\n$/);
});

test('CLI: job --follow resumes with Last-Event-ID when the server dies mid-stream', { timeout: 60000 }, async () => {
  const env = { ...srv.env, REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key };
  const port = srv.port;
  // 3 s: the kill below must come while the job runs, however late this test sees its
  // progress on a loaded machine (with 1.2 s it could have completed by then).
  const job = await enqueueOk(srv, { sleep_ms: 3000, progress: 6 });
  const following = run(['job', job.id, '--follow'], { env });
  await waitJob(srv, job.id, (j) => j.progress >= 28, 10000, 'a few events');
  await srv.stop('SIGKILL');
  await srv.start(['--listen', `127.0.0.1:${port}`]);
  const r = await following;
  assert.equal(r.code, 0, r.stderr);
  const seqs = r.stdout.trim().split('\n').map((l) => Number(l.split(' ')[0]));
  const stored = await storedEvents(srv, job.id);
  assert.deepEqual(seqs, stored.map((e) => e.seq), 'every event once, across the restart');
  assert.ok(stored.some((e) => e.type === 'retry' && e.data.error.code === 'lease_expired'));
});
