// The web UI end to end: headless Debian chromium driven by playwright-core
// against the real binary (SPEC §2, issue 7). One browser page walks through
// the product the way a reviewer does; the cases run in order and build on
// each other (signed in once, the same agents throughout).
//
// The improvement jobs, their live view and the jobs list are in
// ui_jobs.test.mjs, with a server and agents of their own.
//
// Screenshots go to $REFOLD_TEST_OUTPUT/ui/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, outputDir, createWorkspaceKey, sql, launchChromium, goTo, fitsWidth, watchedPage } from './lib.mjs';

const OUT = outputDir('ui');
const shot = (page, name, fullPage = true) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage });

const srv = await startServer();

async function api(method, path, body, expect) {
  const r = await srv.api(method, path, body);
  if (expect !== undefined) assert.equal(r.status, expect, `${method} ${path}: ${r.text}`);
  return r.json;
}

// An agent with 12 rated traces, one eval and 6 contradictions (3 of each kind).
async function seedAgent(name, template, description) {
  const a = await api('POST', '/v1/agents', { name, description, prompt_template: template }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: a.id, name: 'helpfulness' }, 201);
  const traces = Array.from({ length: 12 }, (_, i) => ({
    agent_id: a.id, external_id: `${name}-${i}`,
    input: `Question ${i}: how do I reset my password on the mobile app? The link expired.`,
    output: `Answer ${i}: open Settings > Account > Reset password.`,
    steps: [{ type: 'tool_call', name: 'kb_search', input: { q: 'reset password' } }, { type: 'llm', output: 'draft' }],
    metadata: { channel: 'email' },
  }));
  const ids = (await api('POST', '/v1/traces', { traces }, 201)).data.map((d) => d.id);
  const ratings = ['negative', 'negative', 'positive', 'positive', 'neutral', 'negative', 'positive', 'positive', 'negative', 'positive', 'negative', 'positive'];
  const preds = [true, true, false, false, true, false, true, true, true, true, false, false];
  await api('POST', '/v1/feedback', { feedback: ids.map((id, i) => ({ trace_id: id, rating: ratings[i], note: ratings[i] === 'negative' ? 'Wrong menu path: the app has no Settings > Account' : 'Good answer' })) }, 200);
  await api('POST', `/v1/evals/${ev.id}/executions`, { executions: ids.map((id, i) => ({ trace_id: id, predicted_result: preds[i], predicted_reason: preds[i] ? 'The answer addresses the question.' : 'The answer is too vague.' })) }, 200);
  return { ...a, traceIds: ids };
}

const SUPPORT_TEMPLATE = 'You are a helpful support agent for {{company}}.\nAnswer the customer question below politely and concisely.\n\nCustomer: {{customer_name}}\nQuestion: {{question}}\n\nIf you do not know the answer, say so and offer to escalate.';
const SUPPORT_V2 = 'You are a friendly, accurate support agent for {{company}}.\nAnswer the customer question below politely and in plain English.\n\nCustomer: {{customer_name}}\nQuestion: {{question}}\n\nBefore you answer, check the menu path against the current app version.\nIf you do not know the answer, say so and offer to escalate to a human.';

let support, failBot, probeAgent;
let browser, context, page;
const external = [];
const pageErrors = [];

before(async () => {
  support = await seedAgent('support-bot', SUPPORT_TEMPLATE, 'Answers customer support tickets for Acme');
  failBot = await seedAgent('fail-bot', 'Help {{user}} with {{topic}}.\nBe brief.'); // the session case's agent
  probeAgent = await api('POST', '/v1/agents', { name: 'probe-no-version', status: 'discovered' }, 201);
  // An agent without a version cannot be improved: 409, and no job starts.
  const probe = await srv.api('POST', `/v1/agents/${probeAgent.id}/improve-prompt`, {});
  assert.equal(probe.status, 409);

  browser = await launchChromium();
  ({ context, page } = await watchedPage(browser, srv.url, external, pageErrors));
});

after(async () => {
  if (browser) await browser.close();
  await srv.stop();
  srv.cleanup();
});

const go = (hash) => goTo(page, hash);
const noHorizontalScroll = () => fitsWidth(page);
const activeVersion = async (agentId) => (await api('GET', `/v1/agents/${agentId}`, undefined, 200)).active_version?.version;

test('sign in: a wrong key shows an error, the right key enters', async () => {
  await page.goto(srv.url + '/');
  await page.waitForSelector('input[name=api_key]');
  assert.match(page.url(), /#\/signin$/);
  assert.equal(await page.getByLabel('API key').count(), 1, 'the key field is labelled');
  await page.getByLabel('API key').fill('rf_wrongwrongwrongwrongwrongwrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That API key was not accepted.').waitFor();
  await page.getByLabel('API key').fill(srv.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'refold_session');
  assert.ok(session && session.httpOnly, 'an HttpOnly session cookie is set');
});

test('agents table shows the seeded agent with its stats', async () => {
  const row = page.locator(`tr[data-agent-id="${support.id}"]`);
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /support-bot/);
  assert.match(text, /confirmed/);
  assert.match(text, /\bv1\b/);
  assert.match(text, /\b12\b/); // traces and rated
  assert.match(text, /55%/); // 6 contradictions over 11 positive/negative executions
  // Last improvement: none yet.
  await page.waitForFunction((id) => !document.querySelector(`tr[data-agent-id="${id}"] td:last-child`).textContent.includes('…'), support.id);
  assert.match(await row.locator('td').last().innerText(), /never/);
});

test('create an agent', async () => {
  await page.getByRole('button', { name: 'New agent' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Name').fill('created-in-ui');
  await dlg.getByLabel('Description').fill('Made by the browser test');
  await dlg.getByLabel('Prompt template').fill('Summarise {{document}} for {{audience}}.');
  await dlg.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('heading', { name: /created-in-ui/, level: 1 }).waitFor();
  assert.match(page.url(), /#\/agents\/agent_/);
  const list = await api('GET', '/v1/agents?limit=500', undefined, 200);
  const made = list.data.find((a) => a.name === 'created-in-ui');
  assert.ok(made, 'the agent exists');
  assert.equal(made.active_version.version, 1);
  assert.deepEqual(made.active_version.variables.sort(), ['audience', 'document']);
});

test('a dialog submitted from its button on a slow server keeps the focus there, sends once, and says why it failed', async () => {
  await go('#/agents');
  await page.getByRole('button', { name: 'New agent' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Name').fill('slow-server-agent');
  let release;
  const held = new Promise((r) => { release = r; });
  let posts = 0, sent;
  const seen = new Promise((r) => { sent = r; });
  await page.route((u) => u.pathname === '/v1/agents', async (r) => {
    if (r.request().method() !== 'POST') return r.continue();
    posts++;
    sent();
    await held;
    await r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted slow failure' } }) });
  });
  const submit = dlg.getByRole('button', { name: 'Create agent' });
  await submit.focus();
  await page.keyboard.press('Enter');
  await seen;
  assert.ok(await submit.evaluate((el) => el === document.activeElement), 'the button keeps the focus while the request runs');
  assert.equal(await submit.getAttribute('aria-disabled'), 'true', 'the button says it is busy');
  await page.keyboard.press('Enter'); // pressed again meanwhile
  release();
  await dlg.getByText('scripted slow failure').waitFor();
  assert.equal(posts, 1, 'one request');
  assert.ok(await submit.evaluate((el) => el === document.activeElement), 'the focus is still on the button after the error');
  assert.equal(await submit.getAttribute('aria-disabled'), null);
  await page.unroute((u) => u.pathname === '/v1/agents');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

test('a dialog closed while the server answers still says when its action failed', async () => {
  await page.getByRole('button', { name: 'New agent' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Name').fill('closed-too-soon');
  let release, sent;
  const held = new Promise((r) => { release = r; });
  const seen = new Promise((r) => { sent = r; });
  await page.route((u) => u.pathname === '/v1/agents', async (r) => {
    if (r.request().method() !== 'POST') return r.continue();
    sent();
    await held;
    await r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted late failure' } }) });
  }, { times: 1 });
  await dlg.getByRole('button', { name: 'Create agent' }).click();
  await seen;
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  release();
  const toastErr = page.locator('#toast-alerts .toast-error');
  await toastErr.getByText('Create agent failed: scripted late failure').waitFor();
  await toastErr.getByRole('button', { name: 'Dismiss' }).click();
});

test('agent page: stats, active prompt with variables, versions timeline', async () => {
  await go(`#/agents/${support.id}`);
  await page.getByRole('heading', { name: /support-bot/, level: 1 }).waitFor();
  await page.locator('#contradictions table').waitFor();
  const stats = await page.locator('.stats').innerText();
  assert.match(stats, /12\s*Traces/);
  assert.match(stats, /6\s*Contradictions/);
  assert.match(stats, /55%/);
  const vars = await page.locator('pre.prompt mark.var').allInnerTexts();
  assert.deepEqual(vars, ['{{company}}', '{{customer_name}}', '{{question}}']);
  const tl = page.locator('.timeline li');
  assert.equal(await tl.count(), 1);
  assert.match(await tl.first().innerText(), /v1[\s\S]*active[\s\S]*manual/);
  assert.ok(await noHorizontalScroll());
  await shot(page, 'agent-page');
});

// Click a kind in the filter and wait until the table shows that kind only.
async function filterKind(label, kind) {
  await page.locator('#kind-filter').getByText(label).click();
  await page.locator(`#contradictions .contra-body[data-kind="${kind}"]:not([aria-busy])`).waitFor();
  return page.locator('#contradictions tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.kind));
}

test('contradictions: filter by kind and open a trace', async () => {
  const rows = page.locator('#contradictions tbody tr');
  assert.equal(await rows.count(), 6);
  assert.deepEqual(await filterKind('Missed failures', 'missed_failure'), Array(3).fill('missed_failure'));
  assert.match(page.url(), /kind=missed_failure/);
  assert.deepEqual(await filterKind('False alarms', 'false_alarm'), Array(3).fill('false_alarm'));
  assert.match(page.url(), /kind=false_alarm/);
  assert.deepEqual(await filterKind('Missed failures', 'missed_failure'), Array(3).fill('missed_failure'));

  // Open a missed failure: a trace the human rated negative and the eval passed.
  const first = rows.first();
  const traceId = await first.getAttribute('data-trace-id');
  const n = support.traceIds.indexOf(traceId);
  assert.ok([0, 1, 5, 8].includes(n), `trace ${traceId} is a seeded missed failure`);
  await first.locator('button.trace-open').click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByRole('heading', { name: 'Input' }).waitFor();
  const text = await dlg.innerText();
  assert.match(text, new RegExp(`Trace ${traceId}`));
  assert.match(text, new RegExp(`Question ${n}: how do I reset my password`));
  assert.match(text, new RegExp(`Answer ${n}: open Settings`));
  assert.match(text, /kb_search/); // steps
  assert.match(text, /negative/);
  assert.match(text, /Wrong menu path: the app has no Settings > Account/); // the human's note
  assert.match(text, /The answer addresses the question\./); // the eval's reason
  assert.match(text, /missed failure/);
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal((await filterKind('All', 'all')).length, 6);
});

test('trace viewer: a missing input or output, and an empty one, say so in muted words instead of an empty box', async () => {
  const row = page.locator('#contradictions tbody tr').first();
  const traceId = await row.getAttribute('data-trace-id');
  const stored = (await srv.api('GET', `/v1/traces/${traceId}`)).json;
  for (const [input, output, saysIn, saysOut] of [
    ['', null, 'Empty: the input is an empty string.', 'No output recorded.'],
    [null, '', 'No input recorded.', 'Empty: the output is an empty string.'],
  ]) {
    await page.route((u) => u.pathname === `/v1/traces/${traceId}`, (r) => r.fulfill({ contentType: 'application/json',
      body: JSON.stringify({ ...stored, input, output }) }), { times: 1 });
    await row.locator('button.trace-open').click();
    const dlg = page.locator('dialog[open]');
    await dlg.getByRole('heading', { name: 'Input' }).waitFor();
    for (const [name, says] of [['Input', saysIn], ['Output', saysOut]]) {
      const sec = dlg.locator('section.trace-section').filter({ has: page.getByRole('heading', { name, exact: true }) });
      assert.equal(await sec.locator('pre').count(), 0, `${name}: no empty box`);
      assert.equal(await sec.locator('p.muted').innerText(), says);
    }
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
  }
});

test('contradictions: Load more follows next_cursor past the first page and keeps the keyboard focus', async () => {
  // 405 missed failures and 5 false alarms: three pages of 200 under "All".
  const a = await api('POST', '/v1/agents', { name: 'many-contradictions', prompt_template: 'Answer {{q}}.' }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: a.id, name: 'judge' }, 201);
  const n = 410;
  const ids = (await api('POST', '/v1/traces', { traces: Array.from({ length: n }, (_, i) => ({ agent_id: a.id, input: `q${i}`, output: `a${i}` })) }, 201)).data.map((d) => d.id);
  const falseAlarm = (i) => i % 82 === 0; // 0, 82, 164, 246, 328
  await api('POST', '/v1/feedback', { feedback: ids.map((id, i) => ({ trace_id: id, rating: falseAlarm(i) ? 'positive' : 'negative' })) }, 200);
  await api('POST', `/v1/evals/${ev.id}/executions`, { executions: ids.map((id, i) => ({ trace_id: id, predicted_result: !falseAlarm(i) })) }, 200);

  await go(`#/agents/${a.id}`);
  const rows = page.locator('#contradictions tbody tr');
  const more = page.locator('#contradictions').getByRole('button', { name: 'Load more' });
  await page.locator('#contradictions table').waitFor();
  assert.equal(await rows.count(), 200);
  await more.waitFor();
  // From the keyboard: the button keeps the focus while pages remain.
  await more.focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#contradictions tbody tr').length === 400);
  assert.ok(await more.isVisible(), 'a third page remains');
  assert.ok(await more.evaluate((el) => el === document.activeElement), 'Load more keeps the focus while more remain');
  await page.keyboard.press('Enter');
  await page.waitForFunction((want) => document.querySelectorAll('#contradictions tbody tr').length === want, n);
  await more.waitFor({ state: 'hidden' });
  // The last page hides the button: the focus goes to the first row it added.
  assert.equal(await page.evaluate(() => {
    const el = document.activeElement;
    return el.classList.contains('trace-open') ? [...document.querySelectorAll('#contradictions tbody tr')].indexOf(el.closest('tr')) : el.tagName;
  }), 400, 'the focus moves to the first new row');
  const seen = await rows.evaluateAll((trs) => trs.map((t) => t.dataset.traceId));
  assert.deepEqual([...seen].sort(), [...ids].sort(), 'every contradiction once');
  assert.match(await page.locator('#contradictions .load-more-status').innerText(), /10 more shown/);

  // A kind starts over at its first page; false alarms fit in one page.
  assert.equal((await filterKind('Missed failures', 'missed_failure')).length, 200);
  assert.ok(await more.isVisible());
  assert.deepEqual(await filterKind('False alarms', 'false_alarm'), Array(5).fill('false_alarm'));
  assert.ok(await more.isHidden());
  // A page still on its way when the filter changes is dropped, not added to the other kind.
  assert.equal((await filterKind('All', 'all')).length, 200);
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route(/\/contradictions\?.*cursor=/, async (route) => { await held; await route.continue(); });
  await more.click();
  assert.deepEqual(await filterKind('False alarms', 'false_alarm'), Array(5).fill('false_alarm'));
  const late = page.waitForResponse(/\/contradictions\?.*cursor=/);
  release();
  await late;
  await page.waitForTimeout(200);
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((t) => t.dataset.kind)), Array(5).fill('false_alarm'));
  await page.unroute(/\/contradictions\?.*cursor=/);
  await api('DELETE', `/v1/agents/${a.id}`, undefined, 204);
});

test('candidate review: side-by-side and unified diff with word highlights', async () => {
  const v2 = await api('POST', `/v1/agents/${support.id}/versions`, { prompt_template: SUPPORT_V2 }, 201);
  assert.equal(v2.version, 2);
  await go(`#/agents/${support.id}`);
  await page.locator('.timeline li[data-version="2"]').waitFor();
  assert.match(await page.locator('.timeline li[data-version="2"]').innerText(), /candidate[\s\S]*manual[\s\S]*Parent\s*v1/);
  await page.getByRole('link', { name: 'Review v2' }).first().click();
  await page.getByRole('heading', { name: /Version 2/, level: 1 }).waitFor();
  const split = page.locator('table.diff-split');
  await split.waitFor();
  // Word level: the changed words are marked, the unchanged ones are not.
  const dels = await split.locator('del.w').allInnerTexts();
  const inss = await split.locator('ins.w').allInnerTexts();
  assert.ok(dels.includes('helpful'), `removed words: ${JSON.stringify(dels)}`);
  assert.ok(dels.includes('concisely'));
  assert.ok(inss.includes('friendly, accurate'), `added words: ${JSON.stringify(inss)}`);
  assert.ok(inss.includes('in plain English'));
  assert.ok(!inss.some((w) => /support agent/.test(w)), 'unchanged words are not highlighted');
  // Both sides line up: v1 on the left, v2 on the right.
  const head = await split.locator('thead').innerText();
  assert.match(head, /v1\s+v2/);
  assert.match(await page.locator('.diff-stats').innerText(), /\+4\s*−3 lines/);
  assert.ok(await noHorizontalScroll());
  await shot(page, 'diff-review');

  await page.locator('#diff-view').getByText('Unified').click();
  const uni = page.locator('table.diff-unified');
  await uni.waitFor();
  assert.equal(await split.count(), 0);
  assert.ok((await uni.locator('del.w').allInnerTexts()).includes('helpful'));
  assert.ok((await uni.locator('ins.w').allInnerTexts()).includes('in plain English'));
  assert.match(page.url(), /view=unified/);
  assert.ok(await noHorizontalScroll());
  await shot(page, 'diff-review-unified');
  await page.locator('#diff-view').getByText('Side by side').click();
  await split.waitFor();
});

test('promote the candidate with a note: the active version changes', async () => {
  await page.getByRole('button', { name: 'Promote v2…' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Review note').fill('Checked against ten tickets');
  await dlg.getByRole('button', { name: 'Promote v2' }).click();
  await page.getByRole('heading', { name: /support-bot/, level: 1 }).waitFor();
  await page.locator('#active-prompt-h', { hasText: 'v2' }).waitFor();
  assert.match(await page.locator('pre.prompt').innerText(), /friendly, accurate support agent/);
  assert.equal(await activeVersion(support.id), 2);
  const v2 = await api('GET', `/v1/agents/${support.id}/versions/2`, undefined, 200);
  assert.equal(v2.status, 'active');
  assert.equal(v2.review_note, 'Checked against ten tickets');
  assert.match(await page.locator('.timeline li[data-version="1"]').innerText(), /archived/);
});

test('reject another candidate with a reason', async () => {
  const v3 = await api('POST', `/v1/agents/${support.id}/versions`, { prompt_template: SUPPORT_V2.replace('plain English', 'pirate speak') }, 201);
  await go(`#/agents/${support.id}/versions/${v3.version}`);
  await page.getByRole('button', { name: 'Reject…' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Reason').fill('Pirate speak confuses customers');
  await dlg.getByRole('button', { name: `Reject v${v3.version}` }).click();
  await page.getByRole('heading', { name: /support-bot/, level: 1 }).waitFor();
  await page.locator(`.timeline li[data-version="${v3.version}"]`, { hasText: 'rejected' }).waitFor();
  const got = await api('GET', `/v1/agents/${support.id}/versions/${v3.version}`, undefined, 200);
  assert.equal(got.status, 'rejected');
  assert.equal(got.review_note, 'Pirate speak confuses customers');
  assert.equal(await activeVersion(support.id), 2, 'rejecting leaves the active version alone');
});

test('rollback: promote the archived version from the timeline', async () => {
  await page.locator('[data-rollback="1"]').click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Review note').fill('v2 raised escalations');
  await dlg.getByRole('button', { name: 'Roll back to v1' }).click();
  await page.locator('#active-prompt-h', { hasText: 'v1' }).waitFor();
  assert.equal(await activeVersion(support.id), 1);
  await page.locator('.timeline li[data-version="2"]', { hasText: 'archived' }).waitFor();
  assert.match(await page.locator('.timeline li[data-version="1"]').innerText(), /active[\s\S]*v2 raised escalations/);
});

test('a rollback whose page then fails to load again says why in the page, as a page that fails to open does', async () => {
  const fail = (r) => r.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted reload failure' } }) });
  // From the agent page's timeline (v2 is archived), then from v1's page (archived by then).
  for (const [hash, opener, to] of [[`#/agents/${support.id}`, '[data-rollback="2"]', 2], [`#/agents/${support.id}/versions/1`, '#rollback', 1]]) {
    await go(hash);
    await page.locator(opener).click();
    const dlg = page.locator('dialog[open]');
    await dlg.getByLabel('Review note').waitFor();
    const errors = pageErrors.length;
    await page.route((u) => u.pathname === `/v1/agents/${support.id}`, (r) => (r.request().method() === 'GET' ? fail(r) : r.continue()), { times: 1 });
    await dlg.getByRole('button', { name: `Roll back to v${to}` }).click();
    const h1 = page.getByRole('heading', { name: 'Something went wrong', level: 1 });
    await h1.waitFor({ timeout: 10000 });
    assert.match(await page.locator('main .alert-error[role=alert]').innerText(), /scripted reload failure/);
    assert.ok(await h1.evaluate((el) => el === document.activeElement), `${hash}: the heading takes the focus of the button that went`);
    await page.locator('#toast-status').getByText(`Rolled back: v${to} is active.`).last().waitFor(); // the earlier rollback's may still show
    assert.equal(await activeVersion(support.id), to, 'the rollback itself went through');
    assert.deepEqual(pageErrors.slice(errors), [], 'no unhandled rejection');
  }
});

test('diff: Show unchanged lines unfolds them and hands the focus to the first one', async () => {
  const lines = Array.from({ length: 30 }, (_, i) => `Rule ${i + 1}: answer from {{kb}} only.`);
  const a = await api('POST', '/v1/agents', { name: 'fold-bot', prompt_template: lines.join('\n') }, 201);
  const changed = [...lines];
  changed[0] = 'Rule 1: answer briefly.';
  changed[29] = 'Rule 30: escalate when unsure.';
  await api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: changed.join('\n') }, 201);
  await go(`#/agents/${a.id}/versions/2?view=unified`);
  const fold = page.locator('.fold-btn');
  await fold.waitFor();
  assert.match(await fold.innerText(), /Show 22 unchanged lines/);
  await fold.focus();
  await page.keyboard.press('Enter');
  await fold.waitFor({ state: 'detached' });
  assert.equal(await page.locator('table.diff-unified tbody tr').count(), 32);
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Rule 5: answer from {{kb}} only.',
    'the focus lands on the first unfolded line, not on the page');
  await api('DELETE', `/v1/agents/${a.id}`, undefined, 204);
});

test('an agent without an active version or ratings: its page and its first candidate say so', async () => {
  await go(`#/agents/${probeAgent.id}`);
  await page.locator('#contradictions .contra-body:not([aria-busy])').waitFor();
  const contra = await page.locator('#contradictions').innerText();
  assert.match(contra, /no trace has both a human rating/);
  assert.doesNotMatch(contra, /agree with every human rating/, 'nothing was rated, so nothing agreed');
  const v = await api('POST', `/v1/agents/${probeAgent.id}/versions`, { prompt_template: 'Hello {{name}}' }, 201);
  await go(`#/agents/${probeAgent.id}/versions/${v.version}`);
  const hint = page.locator('.alert-info', { hasText: 'This is a candidate' });
  await hint.waitFor();
  const text = await hint.innerText();
  assert.doesNotMatch(text, /v\?/);
  assert.match(text, /no active version/);
});

test('best practices: built-in listed, own added and deleted', async () => {
  await go('#/best-practices');
  await page.getByRole('heading', { name: 'Best practices', level: 1 }).waitFor();
  assert.ok(await page.locator('#builtin-practices li').count() >= 20);
  await page.getByRole('button', { name: 'Add practice' }).click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Title').fill('Name the escalation channel');
  await dlg.getByLabel('Category').selectOption('safety');
  await dlg.getByLabel('Content').fill('Tell the agent exactly where to escalate: the #support-humans queue.');
  await dlg.getByLabel('URL').fill('https://example.com/escalation');
  await dlg.getByRole('button', { name: 'Add practice' }).click();
  const own = page.locator('#own-practices li', { hasText: 'Name the escalation channel' });
  await own.waitFor();
  assert.match(await own.innerText(), /custom[\s\S]*safety/);
  assert.equal(await own.getByRole('link', { name: 'Source' }).getAttribute('href'), 'https://example.com/escalation');
  // A row stored before the API refused other schemes shows no link for a javascript: URL.
  const ws = (await sql(srv.db, "SELECT workspace_id FROM prompt_best_practices WHERE title = 'Name the escalation channel'")).trim();
  await sql(srv.db, `INSERT INTO prompt_best_practices (id, workspace_id, source, category, title, content, url, created_at) VALUES ('bp_legacy', '${ws}', 'custom', 'general', 'Legacy row', 'c', 'javascript:alert(1)', 1)`);
  await page.reload();
  const legacy = page.locator('#own-practices li', { hasText: 'Legacy row' });
  await legacy.waitFor();
  assert.equal(await legacy.getByRole('link').count(), 0);
  await sql(srv.db, "DELETE FROM prompt_best_practices WHERE id = 'bp_legacy'");
  const id = await own.getAttribute('data-practice-id');
  assert.ok((await api('GET', '/v1/best-practices?limit=500', undefined, 200)).data.some((p) => p.id === id));
  await own.getByRole('button', { name: /Delete/ }).click();
  await page.locator('dialog[open]').getByRole('button', { name: 'Delete' }).click();
  await own.waitFor({ state: 'detached' });
  assert.ok(!(await api('GET', '/v1/best-practices?limit=500', undefined, 200)).data.some((p) => p.id === id));
  assert.equal(await page.locator('#builtin-practices [aria-label^="Delete"]').count(), 0, 'built-in rows cannot be deleted');
});

test('layout: no horizontal scrolling at 1280 and 390 px', async () => {
  const pages = [
    ['#/agents', 'tr[data-agent-id]'],
    [`#/agents/${support.id}`, '#contradictions table'],
    [`#/agents/${support.id}/versions/2?view=split`, 'table.diff-split'],
    [`#/agents/${support.id}/versions/2?view=unified`, 'table.diff-unified'],
    ['#/best-practices', '#builtin-practices'],
    ['#/jobs', 'h1'],
  ];
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 860 });
    for (const [hash, ready] of pages) {
      await go(hash);
      await page.locator(ready).first().waitFor();
      await page.waitForTimeout(50);
      assert.ok(await noHorizontalScroll(), `${hash} scrolls sideways at ${width} px`);
    }
  }
  await go(`#/agents/${support.id}`);
  await page.locator('#contradictions table').waitFor();
  await shot(page, 'agent-page-390');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('layout: long unbroken names, notes and trace text wrap instead of widening the page', async () => {
  const long = (c, n) => c.repeat(n);
  const a = await api('POST', '/v1/agents', {
    name: long('N', 200), description: `See https://example.com/${long('d', 400)}`,
    prompt_template: `Use {{${long('v', 120)}}} here.`,
  }, 201);
  await api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: `Use {{${long('v', 120)}}} there.` }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: a.id, name: long('E', 200) }, 201);
  const [tid] = (await api('POST', '/v1/traces', { traces: [{
    agent_id: a.id, external_id: long('x', 200), input: long('i', 3000), output: '{"minified":"' + long('o', 3000) + '"}',
    steps: [{ type: 'tool_call', name: long('t', 300) }],
  }] }, 201)).data.map((d) => d.id);
  await api('POST', '/v1/feedback', { feedback: [{ trace_id: tid, rating: 'negative', note: long('n', 2000) }] }, 200);
  await api('POST', `/v1/evals/${ev.id}/executions`, { executions: [{ trace_id: tid, predicted_result: true, predicted_reason: long('r', 2000) }] }, 200);
  const dialogFits = () => page.evaluate(() => { const d = document.querySelector('dialog[open]'); return d.scrollWidth <= d.clientWidth; });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 860 });
    await go(`#/agents/${a.id}`);
    await page.locator('#contradictions table').waitFor();
    assert.ok(await noHorizontalScroll(), `the agent page scrolls sideways at ${width} px`);
    await page.locator('button.trace-open').first().click();
    await page.locator('dialog[open]').getByRole('heading', { name: 'Input' }).waitFor();
    assert.ok(await dialogFits(), `the trace dialog scrolls sideways at ${width} px`);
    await page.keyboard.press('Escape');
    await go(`#/agents/${a.id}/versions/2`);
    await page.locator('table.diff').waitFor();
    assert.ok(await noHorizontalScroll(), `the version page scrolls sideways at ${width} px`);
    await page.locator('#promote').click();
    await page.locator('dialog[open]').waitFor();
    assert.ok(await dialogFits(), `the promote dialog scrolls sideways at ${width} px`);
    await page.keyboard.press('Escape');
  }
  await shot(page, 'long-names-390');
  await page.setViewportSize({ width: 1280, height: 900 });
  await api('DELETE', `/v1/agents/${a.id}`, undefined, 204);
});

test('agents: a workspace with more agents than one page of the API lists them all', async () => {
  const key = await createWorkspaceKey(srv.db, 'many-agents');
  const n = 501; // the API's largest page is 500
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, k) =>
      srv.api('POST', '/v1/agents', { name: `bulk-${String(i + k).padStart(3, '0')}` }, { key })));
  }
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const tab = await ctx2.newPage();
  tab.on('pageerror', (e) => pageErrors.push(e.message));
  await tab.goto(srv.url + '/');
  await tab.getByLabel('API key').fill(key);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.locator('tr[data-agent-id]').first().waitFor();
  assert.equal(await tab.locator('tr[data-agent-id]').count(), n);
  assert.equal(await tab.locator('tr[data-agent-id]', { hasText: 'bulk-000' }).count(), 1, 'the oldest agent is listed too');
  await ctx2.close();
});

test('keyboard: the main controls are reachable with Tab and show focus', async () => {
  await go('#/agents');
  // The route has rendered once it moves focus to its heading (rows from an earlier render
  // may already be there); tabbing before that would race the heading's focus.
  await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
  await page.locator('tr[data-agent-id]').first().waitFor();
  await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  const reached = new Set();
  const unoutlined = [];
  for (let i = 0; i < 40; i++) { // the agents table grows as earlier cases add agents
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (el === document.body) return { label: '(page)', outline: true }; // focus left the page
      const cs = getComputedStyle(el);
      return { label: (el.id || el.textContent || '').trim().slice(0, 40), outline: cs.outlineStyle !== 'none' && cs.outlineWidth !== '0px' };
    });
    reached.add(info.label);
    if (!info.outline) unoutlined.push(info.label);
  }
  for (const want of ['Skip to content', 'Agents', 'Jobs', 'Best practices', 'signout', 'new-agent', 'support-bot']) {
    assert.ok(reached.has(want), `Tab reaches ${want}: ${[...reached]}`);
  }
  assert.deepEqual(unoutlined, [], 'every focused control shows a focus outline');

  // On the agent page: Improve, the kind filter, and a trace opened from the keyboard.
  await go(`#/agents/${support.id}`);
  await page.locator('#contradictions table').waitFor();
  await page.evaluate(() => document.activeElement.blur());
  const seen = new Set();
  for (let i = 0; i < 40 && !seen.has('trace-open'); i++) {
    await page.keyboard.press('Tab');
    seen.add(await page.evaluate(() => {
      const el = document.activeElement;
      if (el.classList.contains('trace-open')) return 'trace-open';
      if (el.name && el.type === 'radio') return 'kind-filter';
      return el.id || el.textContent.trim().slice(0, 30);
    }));
  }
  for (const want of ['improve', 'new-version', 'kind-filter', 'trace-open']) assert.ok(seen.has(want), `Tab reaches ${want}: ${[...seen]}`);
  await page.keyboard.press('Enter');
  await page.locator('dialog[open]').getByRole('heading', { name: 'Input' }).waitFor();
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });
  assert.ok(await page.evaluate(() => document.activeElement.classList.contains('trace-open')), 'focus returns to the row');
});

test('keyboard: changing a filter with the arrow keys keeps the focus on it', async () => {
  const filters = [
    ['#/jobs', '#job-status', /status=queued/],
    ['#/best-practices', '#bp-category', /category=structure/],
    [`#/agents/${support.id}/versions/3`, '.diff-tools select', /base=1/],
  ];
  for (const [hash, sel, changed] of filters) {
    await go(hash);
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    await page.locator(sel).evaluate((el) => { el.dataset.before = '1'; el.focus(); });
    await page.keyboard.press('ArrowDown'); // changes a closed select at once
    await page.waitForURL(changed);
    const fresh = page.locator(`${sel}:not([data-before])`); // the view rendered again
    await fresh.waitFor();
    assert.ok(await fresh.evaluate((el) => el === document.activeElement), `${sel} keeps the focus after the change`);
  }
});

test('a filter whose list fails to load says why, and keeps the filter and its focus', async () => {
  const cases = [
    ['#/jobs', '#job-status', '/v1/jobs', 'status', 'Could not load the jobs: scripted failure', 'No running jobs.'],
    ['#/best-practices', '#bp-category', '/v1/best-practices', 'category', 'Could not load the best practices: scripted failure', 'Built in'],
  ];
  for (const [hash, sel, path, param, why, after] of cases) {
    await go(hash);
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    await page.route((u) => u.pathname === path && u.searchParams.has(param), (r) => r.fulfill({ status: 503, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted failure' } }) }), { times: 1 });
    await page.locator(sel).evaluate((el) => { el.dataset.before = '1'; el.focus(); });
    await page.keyboard.press('ArrowDown');
    const alert = page.locator('main .alert-error[role=alert]');
    await alert.getByText(why).waitFor();
    const fresh = page.locator(`${sel}:not([data-before])`);
    assert.ok(await fresh.evaluate((el) => el === document.activeElement), `${sel} keeps the focus after a failed read`);
    await page.keyboard.press('ArrowDown'); // the next choice loads
    await page.getByText(after, { exact: true }).first().waitFor();
    assert.equal(await alert.count(), 0, `${hash}: the error goes once the list loads`);
    assert.ok(await page.locator(sel).evaluate((el) => el === document.activeElement), `${sel} keeps the focus`);
  }
});

test('a filter changed twice on a slow server shows the newer choice, whatever answer comes last', async () => {
  for (const [hash, sel, path, param] of [['#/jobs', '#job-status', '/v1/jobs', 'status'], ['#/best-practices', '#bp-category', '/v1/best-practices', 'category']]) {
    await go(hash);
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    let release;
    const held = new Promise((r) => { release = r; });
    let heldSeen;
    const seen = new Promise((r) => { heldSeen = r; });
    await page.route((u) => u.pathname === path && u.searchParams.has(param), async (r) => { heldSeen(); await held; await r.continue(); }, { times: 1 });
    await page.locator(sel).evaluate((el) => { el.dataset.before = '1'; el.focus(); });
    await page.keyboard.press('ArrowDown'); // its answer is held back
    await seen;
    await page.keyboard.press('ArrowDown');
    const want = await page.locator(sel).inputValue();
    await page.waitForURL(new RegExp(`${param}=${want}`));
    await page.locator(`${sel}:not([data-before])`).waitFor(); // the newer choice rendered
    release();
    await page.waitForTimeout(500);
    assert.equal(await page.locator(sel).inputValue(), want, `${hash}: the older answer does not replace the newer choice`);
    assert.ok(await page.locator(sel).evaluate((el) => el === document.activeElement), `${sel} keeps the focus`);
  }
});

test('a session that ends while a dialog is open keeps what was typed in it', async () => {
  await go(`#/agents/${failBot.id}`);
  await page.locator('#new-version').click();
  const dlg = page.locator('dialog[open]');
  const text = 'Help {{user}} with {{topic}}.\nA long, carefully written rule the session must not lose.';
  await dlg.getByLabel('Prompt template').fill(text);
  // The session ends elsewhere (another tab signs out).
  await page.evaluate(() => fetch('/v1/session', { method: 'DELETE', headers: { 'X-Requested-With': 'refold' } }));
  await dlg.getByRole('button', { name: 'Create candidate' }).click();
  await dlg.getByText('Your session has ended').waitFor();
  assert.equal(await dlg.getByLabel('Prompt template').inputValue(), text, 'the text is still there');
  assert.doesNotMatch(page.url(), /signin/);
  // Signed in again (another tab), the same submit goes through.
  await page.evaluate((key) => fetch('/v1/session', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'refold' }, body: JSON.stringify({ api_key: key }) }), srv.key);
  await dlg.getByRole('button', { name: 'Create candidate' }).click();
  await page.getByRole('heading', { name: /Version 2/, level: 1 }).waitFor();
  assert.equal((await api('GET', `/v1/agents/${failBot.id}/versions/2`, undefined, 200)).prompt_template, text);
  // Ended again, a closed dialog leads to the sign-in page, and back after it.
  await go(`#/agents/${failBot.id}`);
  await page.locator('#new-version').click();
  await page.evaluate(() => fetch('/v1/session', { method: 'DELETE', headers: { 'X-Requested-With': 'refold' } }));
  await page.locator('dialog[open]').getByRole('button', { name: 'Create candidate' }).click();
  await page.locator('dialog[open]').getByText('Your session has ended').waitFor();
  await page.keyboard.press('Escape');
  await page.getByRole('heading', { name: 'Sign in to refold' }).waitFor();
  await page.getByLabel('API key').fill(srv.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: /fail-bot/, level: 1 }).waitFor();
});

test('sign out ends the session', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to refold' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'api_key', 'the key field has the focus: type and press Enter');
  const status = await page.evaluate(async () => (await fetch('/v1/agents', { credentials: 'same-origin' })).status);
  assert.equal(status, 401);
  await go('#/agents');
  await page.getByRole('heading', { name: 'Sign in to refold' }).waitFor();
});

test('a deep link opened signed out returns there after sign-in, and Back does not show the sign-in form again', async () => {
  const tab = await context.newPage();
  tab.on('pageerror', (e) => pageErrors.push(e.message));
  const deep = `#/agents/${support.id}/versions/2?view=unified`;
  await tab.goto(srv.url + '/' + deep);
  await tab.getByLabel('API key').fill(srv.key);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.locator('table.diff-unified').waitFor();
  assert.ok(tab.url().endsWith(deep), tab.url());
  await tab.goBack();
  await tab.waitForTimeout(300);
  assert.doesNotMatch(tab.url(), /#\/signin/, 'Back leaves the sign-in page out');
  await tab.close();
});

test('no requests to other origins and no script errors', () => {
  assert.deepEqual(external, []);
  assert.deepEqual(pageErrors, []);
});
