// The web UI's improvement jobs and jobs list end to end: headless Debian
// chromium driven by playwright-core against the real binary (docs/ui.md).
// One browser page starts real prompt_improvement jobs with the scripted LLM
// provider and follows them: the live view, a reload mid-job, a failing job,
// the jobs list and its refresh. The cases run in order and build on each
// other (the scripted replies are consumed in order). The rest of the UI's
// walk-through is in ui.test.mjs.
//
// Screenshots go to $REFOLD_TEST_OUTPUT/ui/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, outputDir, launchChromium, goTo, fitsWidth, signedInTab, watchedPage } from './lib.mjs';

const OUT = outputDir('ui');
const shot = (page, name, fullPage = true) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage });

// Canned LLM replies, consumed in order by the scripted provider (SPEC §8):
// job 1 (analysis, rewrite), job 2 (a slow analysis to reload during,
// rewrite), job 3 (a permanent failure), job 4 (an analysis cut off at the
// output token limit, rewrite). The jobs list's refresh follows test_sleep
// jobs instead.
const ANALYSIS = JSON.stringify({
  failure_patterns: ['Cites menu paths that do not exist in the mobile app', 'Guesses instead of escalating'],
  summary: 'The agent states wrong navigation steps with confidence.',
});
const rewrite = (prompt) => JSON.stringify({
  improved_prompt: prompt,
  changes: ['Added a rule to verify menu paths', 'Made escalation explicit'],
  reasoning: 'Negative ratings point at invented menu paths; the rewrite makes the agent check them and escalate when unsure.',
});
// Job 4: an analysis cut off at the output token limit after two whole patterns.
const CUT_ANALYSIS = '{"failure_patterns": ["Promises refunds without checking the order status", "Ignores angry customers", "Answers in the wr';
const IMPROVE_TEMPLATE = 'Help {{user}} with {{topic}}.\nBe brief.';
const SCRIPT = {
  replies: [
    { text: ANALYSIS, delay_ms: 1500, chunks: 6, input_tokens: 900, output_tokens: 120 },
    { text: rewrite('Help {{user}} with {{topic}}.\nBe brief, and verify every menu path before you cite it.\nIf unsure, escalate.'), delay_ms: 1500, chunks: 6, input_tokens: 1400, output_tokens: 200 },
    { text: ANALYSIS, delay_ms: 5000, chunks: 10, input_tokens: 900, output_tokens: 120 },
    { text: rewrite('Help {{user}} with {{topic}}.\nBe brief and accurate.'), delay_ms: 500, chunks: 2, input_tokens: 1400, output_tokens: 150 },
    { error: { kind: 'permanent', message: 'scripted refusal for the failing-job test' } },
    { text: CUT_ANALYSIS, stop_reason: 'max_tokens', input_tokens: 900, output_tokens: 2048 },
    { text: rewrite('Help {{user}} with {{topic}}.\nBe brief; never promise refunds.'), input_tokens: 1400, output_tokens: 150 },
  ],
};

const scratch = mkdtempSync(join(tmpdir(), 'refold-ui-jobs-'));
const scriptFile = join(scratch, 'replies.json');
writeFileSync(scriptFile, JSON.stringify(SCRIPT));

// REFOLD_TEST_JOBS: test_sleep jobs (POST /v1/test/jobs) for the jobs list's refresh.
const srv = await startServer({ env: { REFOLD_LLM_PROVIDER: 'scripted', REFOLD_SCRIPTED_REPLIES: scriptFile, REFOLD_TEST_JOBS: '1' } });

async function api(method, path, body, expect) {
  const r = await srv.api(method, path, body);
  if (expect !== undefined) assert.equal(r.status, expect, `${method} ${path}: ${r.text}`);
  return r.json;
}

// An agent with 12 rated traces, one eval and 6 contradictions (3 of each kind).
async function seedAgent(name, template) {
  const a = await api('POST', '/v1/agents', { name, prompt_template: template }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: a.id, name: 'helpfulness' }, 201);
  const traces = Array.from({ length: 12 }, (_, i) => ({
    agent_id: a.id, external_id: `${name}-${i}`,
    input: `Question ${i}: how do I reset my password on the mobile app? The link expired.`,
    output: `Answer ${i}: open Settings > Account > Reset password.`,
  }));
  const ids = (await api('POST', '/v1/traces', { traces }, 201)).data.map((d) => d.id);
  const ratings = ['negative', 'negative', 'positive', 'positive', 'neutral', 'negative', 'positive', 'positive', 'negative', 'positive', 'negative', 'positive'];
  const preds = [true, true, false, false, true, false, true, true, true, true, false, false];
  await api('POST', '/v1/feedback', { feedback: ids.map((id, i) => ({ trace_id: id, rating: ratings[i], note: ratings[i] === 'negative' ? 'Wrong menu path: the app has no Settings > Account' : 'Good answer' })) }, 200);
  await api('POST', `/v1/evals/${ev.id}/executions`, { executions: ids.map((id, i) => ({ trace_id: id, predicted_result: preds[i], predicted_reason: preds[i] ? 'The answer addresses the question.' : 'The answer is too vague.' })) }, 200);
  return a;
}

let improveBot, reloadBot, failBot;
let finishedJobHash = null; // a failed job's page, to check the layout of
let browser, page;
const external = [];
const pageErrors = [];

before(async () => {
  improveBot = await seedAgent('improve-bot', IMPROVE_TEMPLATE);
  reloadBot = await seedAgent('reload-bot', IMPROVE_TEMPLATE);
  failBot = await seedAgent('fail-bot', IMPROVE_TEMPLATE);

  browser = await launchChromium();
  ({ page } = await watchedPage(browser, srv.url, external, pageErrors));
  await page.goto(srv.url + '/');
  await page.getByLabel('API key').fill(srv.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
});

after(async () => {
  if (browser) await browser.close();
  await srv.stop();
  srv.cleanup();
});

const go = (hash) => goTo(page, hash);
const noHorizontalScroll = () => fitsWidth(page);
// A tab of its own on route, signed in, whose timers and Date follow tab.clock
// (time flows as usual until the test moves it on).
const clockTab = (route) =>
  signedInTab(browser, srv.url + '/' + route, srv.key, { clock: true, onError: (m) => pageErrors.push(m) });
// A test_sleep job, once it is running.
async function runningJob(params) {
  const job = await api('POST', '/v1/test/jobs', { params }, 202);
  for (let i = 0; i < 200 && (await api('GET', `/v1/jobs/${job.id}`, undefined, 200)).status !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
  return job;
}
const activeVersion = async (agentId) => (await api('GET', `/v1/agents/${agentId}`, undefined, 200)).active_version?.version;

// Records every stage label the live view shows, in order.
const watchStages = () => page.evaluate(() => {
  window.__stages = [];
  const el = document.getElementById('job-stage-label');
  const note = () => { const s = el.textContent.replace(/^\d+%\s*·?\s*/, ''); if (s && window.__stages.at(-1) !== s) window.__stages.push(s); };
  note();
  new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true });
});

async function startImprovement(agent, max = 10) {
  await go(`#/agents/${agent.id}`);
  await page.getByRole('button', { name: 'Improve prompt' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Max contradictions').fill(String(max));
  await dlg.getByRole('button', { name: 'Start improvement' }).click();
  await page.waitForURL(/#\/jobs\/job_/);
  await page.locator('#job-stage-label').waitFor();
  await watchStages();
  return page.url().split('/').pop();
}

test('improvement: the stages tick through live, then review and promote the candidate', async (t) => {
  const jobId = await startImprovement(improveBot);
  await page.locator('.stage[data-stage="analyzing_failures"].stage-current').waitFor({ timeout: 15000 });
  await shot(page, 'live-job-running');
  // A keyboard user on "Cancel job" keeps the focus while events stream in.
  await page.locator('#cancel-job').focus();
  await page.locator('.stage[data-stage="generating_improved_prompt"].stage-current').waitFor({ timeout: 15000 });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'cancel-job', 'live events leave the focus on Cancel');
  await page.locator('#review-candidate').waitFor({ timeout: 30000 });
  assert.ok(await page.evaluate(() => document.querySelector('.page-head .actions').contains(document.activeElement)),
    'when Cancel goes away the focus stays among the actions');
  assert.equal(await page.locator('.analysis-cut-off').count(), 0);
  await shot(page, 'live-job-completed');
  const seen = await page.evaluate(() => window.__stages);
  const order = ['fetching agent', 'fetching contradictions', 'analyzing failures', 'fetching best practices', 'generating improved prompt', 'validating prompt', 'creating new version', 'finalizing', 'completed'];
  const idx = seen.map((s) => order.indexOf(s)).filter((i) => i >= 0);
  assert.ok(idx.includes(order.indexOf('analyzing failures')) && idx.includes(order.indexOf('generating improved prompt')), `stages seen live: ${seen}`);
  assert.deepEqual(idx, [...idx].sort((a, b) => a - b), `stages arrive in order: ${seen}`);
  assert.equal(await page.locator('.stage.stage-done').count(), 9);
  assert.doesNotMatch(await page.locator('#job-stages').innerText(), /created at/, 'an event\'s time is not one of its stage\'s details');
  assert.equal(await page.locator('#job-progress').getAttribute('aria-valuenow'), '100');
  assert.match(await page.locator('#job-tokens').innerText(), /\d+ output tokens/);
  assert.match(await page.locator('#job-status').innerText(), /completed/);
  // The job page's record: events and the LLM transcript.
  assert.ok(await page.locator('#job-events tbody tr').count() >= 9);
  await page.locator('#job-transcript details.call').first().waitFor();
  assert.equal(await page.locator('#job-transcript details.call').count(), 2);

  await page.locator('#review-candidate').click();
  await page.getByRole('heading', { name: /Version 2/, level: 1 }).waitFor();
  await page.locator('table.diff-split ins.w').first().waitFor();
  assert.match(await page.locator('#reasoning').innerText(), /invented menu paths/);
  assert.equal(await page.locator('ul.changes li').count(), 2);
  assert.ok(await page.locator('ul.failure-patterns li').count() >= 1);
  await page.locator('.practice-list li').first().waitFor();
  assert.equal(await page.locator('.analysis-cut-off').count(), 0, 'a whole analysis carries no partial-analysis note');
  assert.match(await page.locator('.meta-line').innerText(), new RegExp(jobId));
  await shot(page, 'ai-candidate-review');
  await page.getByRole('button', { name: 'Promote v2…' }).click();
  await page.locator('dialog[open]').getByRole('button', { name: 'Promote v2' }).click();
  await page.locator('#active-prompt-h', { hasText: 'v2' }).waitFor();
  assert.equal(await activeVersion(improveBot.id), 2);
});

test('improvement: a reload in the middle of the job resumes the live view', async (t) => {
  const jobId = await startImprovement(reloadBot);
  await page.locator('.stage[data-stage="analyzing_failures"].stage-current').waitFor({ timeout: 15000 });
  await page.reload();
  await page.locator('#job-stage-label').waitFor();
  assert.match(page.url(), new RegExp(`#/jobs/${jobId}$`));
  // The replayed events rebuild the page: the early stages are done at once.
  await page.locator('.stage[data-stage="fetching_contradictions"].stage-done').waitFor();
  await page.locator('#review-candidate').waitFor({ timeout: 30000 });
  const seqs = (await page.locator('#job-events tbody tr td:first-child').allTextContents()).map(Number);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), 'each event once, in order');
  assert.equal(seqs[0], 1);
});

test('improvement: a failing job shows its error', async (t) => {
  const failedId = await startImprovement(failBot);
  const err = page.locator('#job-error');
  await err.waitFor({ timeout: 30000 });
  assert.match(await err.innerText(), /scripted refusal/);
  assert.match(await page.locator('#job-status').innerText(), /failed/);
  assert.equal(await page.locator('.stage.stage-failed').count(), 1);
  await page.getByRole('button', { name: 'Retry job' }).waitFor();
  await shot(page, 'live-job-failed');
  finishedJobHash = `#/jobs/${failedId}`;
});

test('jobs list', async () => {
  await go('#/jobs');
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
  const rows = page.locator('tr[data-job-id]');
  await rows.first().waitFor();
  assert.equal(await rows.count(), 3);
  assert.match(await rows.first().innerText(), /Prompt improvement[\s\S]*fail-bot[\s\S]*failed/);
  // A finished job's page is read from its stored events.
  await rows.first().getByRole('link').first().click();
  await page.locator('#job-error').waitFor();
  // The error shows from the job row at once; the stored events arrive after it.
  await page.locator('#job-events tbody tr').nth(2).waitFor({ state: 'attached' });
  assert.equal(await page.locator('.stage.stage-failed').count(), 1);
  await page.locator('#job-transcript').getByText(/./).first().waitFor();
});

test('jobs list: the refresh while a job runs keeps the focus and updates the row; Pause updates stops it', async () => {
  // The tab's clock is moved on past the refresh interval instead of waiting for it.
  const { ctx, tab } = await clockTab('#/jobs');
  await tab.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
  const job = await runningJob({ sleep_ms: 3000 });
  const reads = [];
  tab.on('request', (r) => { if (r.url().includes('/v1/jobs?limit=50')) reads.push(r.url()); });
  await tab.clock.runFor(5000); // a refresh shows the new job
  const row = tab.locator(`tr[data-job-id="${job.id}"]`);
  await row.getByText('running').waitFor();
  await row.getByRole('link').first().focus();
  // The link keeps the focus through the refresh: it is the same element, and
  // the focus never leaves it (taking it back would be announced again).
  await tab.evaluate(() => { window.__focused = document.activeElement; window.__blurs = 0; });
  await tab.evaluate(() => window.__focused.addEventListener('blur', () => window.__blurs++));
  const focusedRow = () => tab.evaluate(() => document.activeElement.closest('tr')?.dataset.jobId || document.activeElement.tagName);
  // One refresh of the list (every 5 s) comes and goes.
  const refreshed = tab.waitForResponse((r) => r.url().includes('/v1/jobs?limit=50'));
  await tab.clock.runFor(5000);
  await (await refreshed).finished();
  await tab.waitForTimeout(100);
  assert.equal(await focusedRow(), job.id, 'the refresh leaves the focus on the row\'s link');
  assert.deepEqual(await tab.evaluate(() => [window.__focused === document.activeElement, window.__blurs]), [true, 0],
    'the refresh neither replaces the focused link nor takes the focus from it');
  // WCAG 2.2.2: the updates can be paused from the keyboard, and the button says so.
  const pause = tab.getByRole('button', { name: 'Pause updates' });
  assert.equal(await pause.getAttribute('aria-pressed'), 'false');
  await pause.focus();
  await tab.keyboard.press('Space');
  assert.equal(await pause.getAttribute('aria-pressed'), 'true');
  assert.equal(await tab.locator('#jobs-refresh-state').innerText(), 'Updates paused.');
  const before = reads.length;
  await tab.clock.runFor(12000); // more than two refresh intervals
  await tab.waitForTimeout(200);
  assert.equal(reads.length, before, 'no refresh while paused');
  assert.equal(await focusedRow(), 'BUTTON', 'the focus stays on Pause updates');
  // Resumed, the list is read again at once: the job finished meanwhile (3 s).
  for (let i = 0; i < 200 && (await api('GET', `/v1/jobs/${job.id}`, undefined, 200)).status === 'running'; i++) await new Promise((r) => setTimeout(r, 50));
  await tab.keyboard.press('Enter');
  assert.equal(await pause.getAttribute('aria-pressed'), 'false');
  await row.getByText('completed').waitFor();
  assert.equal(reads.length, before + 1, 'one read on resume');
  assert.ok(await pause.evaluate((el) => el === document.activeElement), 'the redraw leaves the focus on the button');
  await ctx.close();
});

test('improvement: an analysis cut off at the output token limit is marked partial on the job and the review', async () => {
  const bot = await seedAgent('cutoff-bot', IMPROVE_TEMPLATE);
  const jobId = await startImprovement(bot);
  await page.locator('#review-candidate').waitFor({ timeout: 30000 });
  const job = await api('GET', `/v1/jobs/${jobId}`, undefined, 200);
  assert.equal(job.result.analysis_cut_off, true, JSON.stringify(job.result));
  const outcome = page.locator('#job-outcome');
  assert.match(await outcome.innerText(), /2 failure patterns addressed/);
  assert.match(await outcome.locator('.analysis-cut-off').innerText(), /Partial analysis: the failure analysis reached its output token limit/);
  // Read again from the stored events, the finished job says the same.
  await page.reload();
  await outcome.locator('.analysis-cut-off').waitFor();
  await page.locator('#review-candidate').click();
  await page.getByRole('heading', { name: /Version 2/, level: 1 }).waitFor();
  const card = page.locator('#fp-card');
  await card.locator('.analysis-cut-off').waitFor();
  assert.match(await card.innerText(), /Partial analysis[\s\S]*Promises refunds without checking the order status[\s\S]*Ignores angry customers/);
  assert.equal(await card.locator('ul.failure-patterns li').count(), 2);
  assert.ok(await noHorizontalScroll());
  await shot(page, 'ai-candidate-review-cut-off');
});

test('layout: the jobs list and a failed job page do not scroll sideways at 1280 and 390 px', async () => {
  assert.ok(finishedJobHash, 'the failing-job case ran');
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 860 });
    for (const [hash, ready] of [['#/jobs', 'tr[data-job-id]'], [finishedJobHash, '#job-error']]) {
      await go(hash);
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(50);
      assert.ok(await noHorizontalScroll(), `${hash} scrolls sideways at ${width} px`);
    }
  }
  await shot(page, 'job-page-390');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('jobs list: a filter that matches no job keeps refreshing, and shows a matching job once it starts', async () => {
  const { ctx, tab } = await clockTab('#/jobs?status=running');
  await tab.getByText('No running jobs.').waitFor();
  assert.match(await tab.locator('#jobs-refresh-state').innerText(), /^Updates every 5 s\.$/);
  const job = await runningJob({ sleep_ms: 6000 });
  const reads = [];
  tab.on('request', (r) => { if (r.url().includes('/v1/jobs?limit=50')) reads.push(r.url()); });
  await tab.clock.runFor(5000); // the refresh's interval
  const row = tab.locator(`tr[data-job-id="${job.id}"]`);
  await row.waitFor({ timeout: 5000 });
  assert.match(await row.innerText(), /running/);
  assert.equal(reads.length, 1, `one read of the list: ${reads}`);
  await ctx.close();
});

test('jobs list: a job of an agent made after the list was read shows the agent\'s name', async () => {
  const { ctx, tab } = await clockTab('#/jobs');
  await tab.locator('tr[data-job-id]').first().waitFor();
  const agent = await api('POST', '/v1/agents', { name: 'made-after-the-list' }, 201);
  const job = await api('POST', '/v1/test/jobs', { agent_id: agent.id, params: { agent_id: agent.id } }, 202);
  await tab.clock.runFor(5000);
  const row = tab.locator(`tr[data-job-id="${job.id}"]`);
  await row.waitFor();
  await row.getByRole('link', { name: 'made-after-the-list' }).waitFor({ timeout: 5000 });
  await ctx.close();
});

test('jobs list: a refresh that fails says the list is not current, until one succeeds', async () => {
  const { ctx, tab } = await clockTab('#/jobs');
  await tab.locator('tr[data-job-id]').first().waitFor();
  const why = tab.locator('#jobs-refresh-error[role=status]');
  assert.equal(await why.textContent(), '');
  await tab.route((u) => u.pathname === '/v1/jobs' && !u.searchParams.has('cursor'), (r) => r.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted refresh failure' } }) }), { times: 1 });
  await tab.clock.runFor(5000);
  await why.getByText('The list could not be updated: scripted refresh failure').waitFor();
  assert.ok(await tab.locator('tr[data-job-id]').count() > 0, 'the rows stay');
  await tab.clock.runFor(5000); // the next refresh goes through
  await tab.waitForFunction(() => document.getElementById('jobs-refresh-error').textContent === '');
  await ctx.close();
});

test('jobs list: a tab in the background does not refresh, and refreshes at once when shown again', async () => {
  const { ctx, tab } = await clockTab('#/jobs');
  await tab.locator('tr[data-job-id]').first().waitFor();
  const reads = [];
  tab.on('request', (r) => { if (r.url().includes('/v1/jobs?limit=50')) reads.push(r.url()); });
  // The tab goes to the background (headless Chromium keeps its pages visible:
  // the page is told so the way a browser tells it).
  const shown = (on) => tab.evaluate((v) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => !v });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (v ? 'visible' : 'hidden') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, on);
  await shown(false);
  await tab.clock.runFor(20000);
  await tab.waitForTimeout(200);
  assert.deepEqual(reads, [], 'no read while hidden');
  const job = await api('POST', '/v1/test/jobs', { params: { sleep_ms: 10 } }, 202);
  await shown(true);
  await tab.locator(`tr[data-job-id="${job.id}"]`).waitFor({ timeout: 5000 });
  assert.equal(reads.length, 1, 'one read when shown again');
  await ctx.close();
});

test('job page: a retry that went through says so when the page cannot read the job again', async () => {
  const job = await api('POST', '/v1/test/jobs', { params: { fail: 'permanent' } }, 202);
  for (let i = 0; i < 200 && (await api('GET', `/v1/jobs/${job.id}`, undefined, 200)).status !== 'failed'; i++) await new Promise((r) => setTimeout(r, 25));
  await go(`#/jobs/${job.id}`);
  const retry = page.locator('#retry-job');
  await retry.waitFor();
  await page.route((u) => u.pathname === `/v1/jobs/${job.id}`, (r) => (r.request().method() === 'GET'
    ? r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted read failure' } }) })
    : r.continue()), { times: 1 });
  await retry.focus();
  await page.keyboard.press('Enter');
  const why = page.locator('#job-action-error');
  await why.getByText('scripted read failure').waitFor();
  assert.match(await why.innerText(), /^The job was queued again, but this page could not follow it/, 'not "Could not retry"');
  assert.equal(await retry.getAttribute('aria-disabled'), 'true', 'a second retry is not offered');
  assert.ok(await retry.evaluate((el) => el === document.activeElement), 'the focus stays on the button');
});

test('a running job that has reported no stage shows no made-up percentage on its page and in the lists', async () => {
  const job = await runningJob({ sleep_ms: 60000 }); // test_sleep without progress reports no stage
  try {
    await go(`#/jobs/${job.id}`);
    await page.locator('#job-conn', { hasText: 'live' }).waitFor();
    assert.equal(await page.locator('#job-stage-label').textContent(), 'running');
    const bar = page.locator('#job-progress');
    assert.equal(await bar.getAttribute('aria-valuenow'), null, 'an indeterminate progress bar');
    assert.match(await bar.getAttribute('class'), /bar-indeterminate/);
    await go('#/jobs');
    const stage = page.locator(`tr[data-job-id="${job.id}"] td[data-label="Stage"]`);
    await stage.waitFor();
    assert.equal(await stage.innerText(), '—', 'the status says running; no stage, no percentage');
    // An improvement before its first stage event, in the agent page's recent improvements.
    await page.route((u) => u.pathname === '/v1/jobs' && u.searchParams.get('agent_id') === improveBot.id, (r) => r.fulfill({ contentType: 'application/json',
      body: JSON.stringify({ data: [{ ...job, type: 'prompt_improvement', status: 'running', stage: null, progress: 0, params: { agent_id: improveBot.id } }], next_cursor: null }) }), { times: 1 });
    await go(`#/agents/${improveBot.id}`);
    const recent = page.locator('.job-list li').first();
    await recent.waitFor();
    assert.match(await recent.innerText(), /^running\s/);
    assert.doesNotMatch(await recent.innerText(), /%/);
  } finally {
    await api('POST', `/v1/jobs/${job.id}/cancel`);
  }
});

test('job page: a job that finished while its stream was refused, and that then cannot be read, says why in the page', async () => {
  const job = await runningJob({ sleep_ms: 2500 });
  const errors = pageErrors.length;
  const events = (u) => u.pathname === `/v1/jobs/${job.id}/events`;
  const jobUrl = (u) => u.pathname === `/v1/jobs/${job.id}`;
  await page.route(events, (r) => r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'no stream' } }) }));
  // The page learns that the job finished (its first finished read), then reads it again: that read fails.
  let finishedReads = 0;
  await page.route(jobUrl, async (r) => {
    const resp = await r.fetch();
    const j = await resp.json();
    if (['completed', 'failed', 'cancelled'].includes(j.status) && ++finishedReads === 2) {
      await r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted job read failure' } }) });
    } else await r.fulfill({ response: resp, json: j });
  });
  try {
    await go(`#/jobs/${job.id}`);
    await page.getByRole('heading', { name: 'Something went wrong', level: 1 }).waitFor({ timeout: 20000 });
    assert.match(await page.locator('main .alert-error[role=alert]').innerText(), /scripted job read failure/);
    assert.deepEqual(pageErrors.slice(errors), [], 'no unhandled rejection');
  } finally {
    await page.unroute(events);
    await page.unroute(jobUrl);
  }
});

test('job page: the LLM transcript tells an empty reply apart from a call that got none', async () => {
  assert.ok(finishedJobHash, 'the failing-job case ran');
  const id = finishedJobHash.split('/').pop();
  const call = { job_id: id, attempt: 1, run: 1, step: 'analysis', provider: 'scripted', model: 'm', request: { messages: [{ role: 'user', content: 'Find the patterns.' }] },
    stop_reason: null, http_status: null, provider_request_id: null, input_tokens: null, output_tokens: null, latency_ms: 5, created_at: new Date().toISOString() };
  await page.route((u) => u.pathname === `/v1/jobs/${id}/llm-calls`, (r) => r.fulfill({ contentType: 'application/json', body: JSON.stringify({
    data: [{ ...call, id: 'llm_1', response_text: '', stop_reason: 'end_turn', error: null }, { ...call, id: 'llm_2', response_text: null, error: 'connection refused' }], next_cursor: null }) }), { times: 1 });
  await go(finishedJobHash);
  const calls = page.locator('#job-transcript details.call');
  await calls.nth(1).waitFor();
  const said = await calls.evaluateAll((els) => els.map((el) => el.querySelector('.msg-response p')?.textContent ?? 'a box'));
  assert.deepEqual(said, ['Empty: the model answered with no text.', 'No response text.']);
});

test('no requests to other origins and no script errors', () => {
  assert.deepEqual(external, []);
  assert.deepEqual(pageErrors, []);
});
