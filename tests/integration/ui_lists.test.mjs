// The web UI's lists past their first page, in headless Debian chromium driven
// by playwright-core against the real binary (docs/ui.md). Each case has its
// own workspace, filled through SQL: more jobs than one page of the jobs list,
// and a finished job with more stored events than one page of
// GET /v1/jobs/{id}/events. The contradictions' Load more is in ui.test.mjs,
// with the agents it seeds. Also the times of a job's log lines and events,
// on a test_sleep job followed live (REFOLD_TEST_JOBS). And the agents list's Last improvement
// column: the /v1/jobs requests it makes, with one page of improvement jobs and more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createWorkspaceKey, sql, launchChromium, signedInTab, goTo, sleep } from './lib.mjs';

const srv = await startServer({ env: { REFOLD_TEST_JOBS: '1' } });
let browser;
const pageErrors = [];

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  await srv.stop();
  srv.cleanup();
});

// A workspace of its own, its key and id.
async function workspace(name) {
  const key = await createWorkspaceKey(srv.db, name);
  const ws = (await sql(srv.db, `SELECT id FROM workspaces WHERE name = '${name}'`)).trim();
  return { key, ws };
}

// A completed improvement job of workspace ws, started at t and finished 50 s later, whose
// event_seq says it stored eventSeq events.
async function completedJob(ws, id, t, eventSeq = 0) {
  await sql(srv.db, `INSERT INTO jobs (id, workspace_id, type, status, stage, progress, params, result, attempt, max_attempts, run_at, created_at, started_at, finished_at, event_seq) VALUES ('${id}', '${ws}', 'prompt_improvement', 'completed', 'completed', 100, '{}', '{"changes_summary": "nothing"}', 1, 3, ${t}, ${t}, ${t}, ${t + 50000}, ${eventSeq})`);
}

// A new browser context signed in with key on route.
const signedIn = (key, route) => signedInTab(browser, srv.url + route, key, { onError: (m) => pageErrors.push(m) });

test('jobs list: Load more reads the next pages and keeps the keyboard focus', async () => {
  const { key, ws } = await workspace('many-jobs');
  const n = 105; // the list refreshes its first page meanwhile (every 5 s): the rows Load more added stay
  const now = Date.now();
  const ids = Array.from({ length: n }, (_, i) => `job_01JQ0000000000000000${String(i).padStart(6, '0')}`);
  await sql(srv.db, 'INSERT INTO jobs (id, workspace_id, type, status, progress, params, attempt, max_attempts, run_at, created_at, started_at, finished_at) VALUES ' +
    ids.map((id, i) => `('${id}', '${ws}', 'prompt_improvement', 'completed', 100, '{}', 1, 3, ${now - (n - i) * 1000}, ${now - (n - i) * 1000}, ${now - (n - i) * 1000}, ${now - (n - i) * 1000 + 500})`).join(', '));
  const { ctx: ctx2, tab } = await signedIn(key, '/#/jobs');
  const rows = tab.locator('tr[data-job-id]');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 50);
  const more = tab.getByRole('button', { name: 'Load more' });
  await more.focus();
  // A page that fails to load says so beside the button (role=alert), and the
  // message stays until the next try (it was a toast that went after 8 s).
  await tab.route((u) => u.pathname === '/v1/jobs' && u.searchParams.has('cursor'), (r) => r.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted page failure' } }) }), { times: 1 });
  await tab.keyboard.press('Enter');
  const why = tab.locator('.load-more-row [role=alert]');
  await why.getByText('Could not load more: scripted page failure').waitFor();
  assert.equal(await rows.count(), 50);
  assert.equal(await tab.locator('.toast-error').count(), 0, 'the error is not a toast');
  assert.ok(await more.evaluate((el) => el === document.activeElement), 'Load more keeps the focus after a failed page');
  await tab.keyboard.press('Enter');
  await tab.waitForFunction(() => document.querySelectorAll('tr[data-job-id]').length === 100);
  assert.equal(await why.textContent(), '', 'the next try clears the error');
  assert.ok(await more.isVisible());
  assert.ok(await more.evaluate((el) => el === document.activeElement), 'Load more keeps the focus while more remain');
  await tab.keyboard.press('Enter');
  await tab.waitForFunction((want) => document.querySelectorAll('tr[data-job-id]').length === want, n);
  await more.waitFor({ state: 'hidden' });
  assert.equal(await tab.evaluate(() => document.activeElement.closest('tr')?.dataset.jobId || document.activeElement.tagName), ids[4],
    'the focus moves to the first row of the last page');
  assert.deepEqual((await rows.evaluateAll((trs) => trs.map((t) => t.dataset.jobId))), [...ids].reverse(), 'every job once, newest first');
  await ctx2.close();
});

test('job page: a finished job with more events than one page shows all of them', async () => {
  // A long LLM reply stores a progress event every 500 ms: a real job easily has hundreds.
  const { key, ws } = await workspace('long-job');
  const id = 'job_01JQ1000000000000000000001';
  const t = Date.now() - 60000;
  const n = 1203;
  await completedJob(ws, id, t, n);
  const ev = (seq) => {
    if (seq === n - 1) return ['log', { level: 'info', message: 'the last log line' }];
    if (seq === n) return ['completed', { result: { changes_summary: 'nothing' } }];
    return ['progress', { stage: 'generating_improved_prompt', progress: 60, step: 'rewrite', output_tokens: seq * 10 }];
  };
  const rows = Array.from({ length: n }, (_, i) => {
    const [type, data] = ev(i + 1);
    return `('${id}', ${i + 1}, '${type}', '${JSON.stringify(data)}', ${t + i * 40})`;
  });
  for (let i = 0; i < n; i += 200) { // psql takes the statement as an argument: keep each well under 128 KiB
    await sql(srv.db, `INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES ${rows.slice(i, i + 200).join(', ')}`);
  }
  const { ctx: ctx2, tab } = await signedIn(key, `/#/jobs/${id}`);
  await tab.locator('#job-log').getByText('the last log line').waitFor();
  assert.equal(await tab.locator('#job-events tbody tr').count(), n);
  await ctx2.close();
});

test('job page: log lines and events show the time they were written, live and read back', async () => {
  const { key } = await workspace('timed-job');
  const r = await srv.api('POST', '/v1/test/jobs', { params: { sleep_ms: 5000, progress: 2, log: true } }, { key });
  assert.equal(r.status, 202, r.text);
  const id = r.json.id;
  const TIME_OF_DAY = /^(\d{2}):(\d{2}):(\d{2})( [AP]M)?$/;
  // What a log line and an event row show: the time of day, the whole date in the title.
  const shown = (loc) => loc.evaluate((t) => ({ datetime: t.getAttribute('datetime'), text: t.textContent, title: t.title }));
  const check = (got, want, what) => {
    assert.equal(got.datetime, want, `${what}: datetime`);
    const m = got.text.match(TIME_OF_DAY);
    assert.ok(m, `${what}: "${got.text}" is a time of day`);
    assert.equal(m[3], want.slice(17, 19), `${what}: "${got.text}" shows the seconds of ${want}`);
    assert.match(got.title, new RegExp(want.slice(0, 4)), `${what}: the title "${got.title}" has the date`);
  };

  const { ctx, tab } = await signedIn(key, `/#/jobs/${id}`);
  const logTime = tab.locator('#job-log li time.log-time');
  await logTime.first().waitFor({ timeout: 15000 });
  assert.match(await tab.locator('#job-status').innerText(), /running/, 'the log line came over the live stream');
  await tab.locator('#job-status', { hasText: 'completed' }).waitFor({ timeout: 20000 });
  const events = (await srv.api('GET', `/v1/jobs/${id}/events`, undefined, { key, headers: { accept: 'application/json' } })).json.data;
  const log = events.find((e) => e.type === 'log');
  check(await shown(logTime.first()), log.created_at, 'the live log line');
  const rows = tab.locator('#job-events tbody tr');
  assert.equal(await rows.count(), events.length);
  for (const [i, e] of events.entries()) check(await shown(rows.nth(i).locator('time.clock')), e.created_at, `live event ${e.seq}`);
  await ctx.close();

  // Read back from the stored events, with the page's clock ten minutes on: the log's
  // times of day stay as they are (they are not relative times).
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab2 = await ctx2.newPage();
  await tab2.clock.install();
  tab2.on('pageerror', (e) => pageErrors.push(e.message));
  await tab2.goto(srv.url + `/#/jobs/${id}`);
  await tab2.getByLabel('API key').fill(key);
  await tab2.getByRole('button', { name: 'Sign in' }).click();
  await tab2.locator('#job-log li time.log-time').first().waitFor();
  const before = await shown(tab2.locator('#job-log li time.log-time').first());
  check(before, log.created_at, 'the stored log line');
  await tab2.clock.fastForward('10:00');
  assert.deepEqual(await shown(tab2.locator('#job-log li time.log-time').first()), before);
  assert.match(await tab2.locator('.meta-line time').innerText(), /minutes ago/, 'the relative times did move on');
  await ctx2.close();
});

test('job page: the LLM transcript shows every call, past the first page of llm-calls', async () => {
  // A job retried a few times keeps every attempt's calls; a page of calls also
  // ends at 8 MiB, which requests carrying many long traces reach in a few calls.
  const { key, ws } = await workspace('many-calls');
  const id = 'job_01JQ2000000000000000000001';
  const t = Date.now() - 60000;
  const n = 57;
  await completedJob(ws, id, t);
  // Retried through the API after call 40: the calls after it are run 2, attempts from 1.
  await sql(srv.db, 'INSERT INTO llm_calls (id, job_id, run, attempt, step, provider, model, request, response_text, stop_reason, input_tokens, output_tokens, latency_ms, created_at) VALUES ' +
    Array.from({ length: n }, (_, i) => `('llm_01JQ2000000000000000${String(i).padStart(6, '0')}', '${id}', ${i < 40 ? 1 : 2}, ${1 + Math.floor((i % 40) / 2)}, '${i % 2 ? 'rewrite' : 'analysis'}', 'scripted', 'm', '{"messages": []}', 'reply ${i + 1}', 'end_turn', 10, 5, 100, ${t + i * 100})`).join(', '));
  const { ctx: ctx2, tab } = await signedIn(key, `/#/jobs/${id}`);
  await tab.locator('#job-transcript details.call').first().waitFor();
  assert.equal(await tab.locator('#job-transcript details.call').count(), n);
  const summary = (i) => tab.locator('#job-transcript details.call').nth(i).locator('summary').innerText();
  assert.match(await summary(0), /^#1 · analysis · m · run 1 · attempt 1 · /);
  assert.match(await summary(40), /^#41 · analysis · m · run 2 · attempt 1 · /);
  assert.match(await summary(n - 1), new RegExp(`^#${n} · analysis · m · run 2 · attempt 9 · `));
  await ctx2.close();
});

test('agents list: the last improvement of every agent from one read of the jobs, not one request an agent', async () => {
  const { key, ws } = await workspace('improvement-column');
  const names = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
  const agents = {};
  for (const name of names) {
    const r = await srv.api('POST', '/v1/agents', { name }, { key });
    assert.equal(r.status, 201, r.text);
    agents[name] = r.json.id;
  }
  let seq = 0;
  const t0 = Date.now() - 3600000;
  // n jobs of type for agent, newer than every job before them; their ids, oldest first.
  async function jobs(name, status, n = 1, type = 'prompt_improvement') {
    const ids = [];
    const rows = Array.from({ length: n }, () => {
      const id = `job_01JQ3000000000000000${String(++seq).padStart(6, '0')}`;
      ids.push(id);
      return `('${id}', '${ws}', '${type}', '${agents[name]}', '${status}', 100, '{"agent_id": "${agents[name]}"}', 1, 3, ${t0 + seq * 1000}, ${t0 + seq * 1000})`;
    });
    for (let i = 0; i < n; i += 200) {
      await sql(srv.db, 'INSERT INTO jobs (id, workspace_id, type, agent_id, status, progress, params, attempt, max_attempts, run_at, created_at) VALUES ' + rows.slice(i, i + 200).join(', '));
    }
    return ids;
  }
  await jobs('alpha', 'failed');
  const alphaNewest = (await jobs('alpha', 'completed'))[0];
  const bravoJob = (await jobs('bravo', 'cancelled'))[0];
  await jobs('foxtrot', 'completed', 1, 'test_sleep'); // not an improvement

  // The /v1/jobs requests a visit of the agents list makes, and the most at once.
  const { ctx, tab } = await signedIn(key, '/#/agents');
  await tab.locator('tr[data-agent-id]').first().waitFor();
  let sent = [], open = 0, most = 0;
  const isJobs = (r) => new URL(r.url()).pathname === '/v1/jobs';
  tab.on('request', (r) => { if (isJobs(r)) { sent.push(new URL(r.url()).search); most = Math.max(most, ++open); } });
  const done = (r) => { if (isJobs(r)) open--; };
  tab.on('requestfinished', done);
  tab.on('requestfailed', done);
  const cell = (name) => tab.locator(`tr[data-agent-id="${agents[name]}"] td:last-child`);
  async function visit() {
    for (let i = 0; open > 0 && i < 500; i++) await sleep(10); // the first visit's requests have ended
    sent = []; most = 0;
    await goTo(tab, '#/agents'); // the same page again, from the start
    await tab.locator('tr[data-agent-id]').first().waitFor();
    await tab.waitForFunction(() => [...document.querySelectorAll('tr[data-agent-id] td:last-child')].every((td) => !td.textContent.includes('…')));
    for (let i = 0; open > 0 && i < 500; i++) await sleep(10); // every requestfinished has arrived
    return sent;
  }
  const shows = async (name, jobId, status) => {
    const c = cell(name);
    assert.equal(await c.locator('a').getAttribute('href'), `#/jobs/${jobId}`, `${name} links its newest job`);
    assert.match(await c.innerText(), new RegExp(`^${status} `), `${name}: ${await c.innerText()}`);
  };

  // Every improvement job of the workspace fits one page: one request, whatever the number of agents.
  let reqs = await visit();
  assert.deepEqual(reqs, ['?type=prompt_improvement&limit=500'], 'one read of the jobs for six agents');
  await shows('alpha', alphaNewest, 'completed');
  await shows('bravo', bravoJob, 'cancelled');
  for (const name of ['charlie', 'delta', 'echo', 'foxtrot']) assert.equal(await cell(name).innerText(), 'never', name);

  // More than one page: the agents the newest 500 leave out ask for their own, at most 4 at a time.
  const alphaMany = await jobs('alpha', 'completed', 500);
  reqs = await visit();
  assert.equal(reqs[0], '?type=prompt_improvement&limit=500');
  assert.deepEqual(reqs.slice(1).sort(), ['bravo', 'charlie', 'delta', 'echo', 'foxtrot']
    .map((n) => `?agent_id=${agents[n]}&type=prompt_improvement&limit=1`).sort(), 'one request for each agent not in the page');
  assert.ok(most <= 4, `at most 4 requests at once (${most})`);
  await shows('alpha', alphaMany[alphaMany.length - 1], 'completed');
  await shows('bravo', bravoJob, 'cancelled');
  for (const name of ['charlie', 'delta', 'echo', 'foxtrot']) assert.equal(await cell(name).innerText(), 'never', name);

  // A server without job endpoints: a dash, and no request an agent.
  await tab.route((u) => u.pathname === '/v1/jobs', (r) => r.fulfill({ status: 404, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'not_found', message: 'no such endpoint' } }) }));
  reqs = await visit();
  assert.deepEqual(reqs, ['?type=prompt_improvement&limit=500']);
  for (const name of names) {
    assert.equal(await cell(name).innerText(), '—', name);
    assert.equal(await cell(name).locator('span').getAttribute('title'), 'Jobs are not available on this server');
  }
  await ctx.close();
});

test('no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
