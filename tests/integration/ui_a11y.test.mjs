// The web UI as a keyboard-only and a screen-reader user meets it (WCAG 2.1 AA,
// docs/ui.md "Keyboard and accessibility"), in headless Debian chromium driven by
// playwright-core against the real binary. axe-core (npm) runs on every page and
// dialog with seeded data and must find nothing of serious or critical impact;
// the checks axe cannot make are done here by hand: Tab reaches every control
// and shows its focus, dialogs keep the focus, close on Escape and hand it back,
// errors are announced and tied to their field, the live job view announces
// its stage once per change, the diff marks lines without colour, headings do
// not skip a level, and reduced motion stops the animations.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { startServer, launchChromium } from './lib.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const ANALYSIS = JSON.stringify({ failure_patterns: ['Invents menu paths', 'Guesses instead of escalating'], summary: 'Wrong steps stated with confidence.' });
const rewrite = (prompt) => JSON.stringify({ improved_prompt: prompt, changes: ['Verify menu paths', 'Escalate when unsure'], reasoning: 'Negative ratings point at invented menu paths.' });
const TEMPLATE = 'You are a support agent for {{company}}.\nAnswer politely.\n\nQuestion: {{question}}\n\nIf unsure, say so.';
const SCRIPT = {
  replies: [
    // Job 1: a candidate to review.
    { text: ANALYSIS, input_tokens: 900, output_tokens: 120 },
    { text: rewrite('You are a careful support agent for {{company}}.\nAnswer politely and check every menu path.\n\nQuestion: {{question}}\n\nIf unsure, escalate to a human.'), input_tokens: 1400, output_tokens: 200 },
    // Job 2: a permanent failure.
    { error: { kind: 'permanent', message: 'scripted refusal' } },
    // Job 3: a slow, streamed analysis to watch live.
    { text: ANALYSIS, delay_ms: 6000, chunks: 24, input_tokens: 900, output_tokens: 120 },
    { text: rewrite('You are a support agent for {{company}}.\nBe brief.\n\nQuestion: {{question}}'), input_tokens: 1400, output_tokens: 150 },
  ],
};
const scratch = mkdtempSync(join(tmpdir(), 'refold-a11y-'));
const scriptFile = join(scratch, 'replies.json');
writeFileSync(scriptFile, JSON.stringify(SCRIPT));

const srv = await startServer({ env: { REFOLD_LLM_PROVIDER: 'scripted', REFOLD_SCRIPTED_REPLIES: scriptFile } });
let browser, context, page, agent, failAgent;
const pageErrors = [];

async function api(method, path, body, expect) {
  const r = await srv.api(method, path, body);
  if (expect !== undefined) assert.equal(r.status, expect, `${method} ${path}: ${r.text}`);
  return r.json;
}

async function waitJob(id) {
  for (let i = 0; i < 200; i++) {
    const j = await api('GET', `/v1/jobs/${id}`, undefined, 200);
    if (['completed', 'failed', 'cancelled'].includes(j.status)) return j;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${id} did not finish`);
}

// An agent with 8 rated traces, an eval and contradictions of both kinds.
async function seedAgent(name) {
  const a = await api('POST', '/v1/agents', { name, description: 'Answers support tickets', prompt_template: TEMPLATE }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: a.id, name: 'helpfulness' }, 201);
  const traces = Array.from({ length: 8 }, (_, i) => ({
    agent_id: a.id, input: `Question ${i}: how do I reset my password?`, output: `Answer ${i}: open Settings > Account.`,
    // Metadata long enough that its box scrolls.
    steps: [{ type: 'tool_call', name: 'kb_search' }], metadata: Object.fromEntries(Array.from({ length: 40 }, (_, k) => [`field_${k}`, k])),
  }));
  const ids = (await api('POST', '/v1/traces', { traces }, 201)).data.map((d) => d.id);
  const ratings = ['negative', 'negative', 'positive', 'positive', 'negative', 'positive', 'negative', 'positive'];
  const preds = [true, true, false, false, false, true, true, true];
  await api('POST', '/v1/feedback', { feedback: ids.map((id, i) => ({ trace_id: id, rating: ratings[i], note: 'checked by hand' })) }, 200);
  await api('POST', `/v1/evals/${ev.id}/executions`, { executions: ids.map((id, i) => ({ trace_id: id, predicted_result: preds[i], predicted_reason: 'because' })) }, 200);
  return a;
}

let candidateJob, failedJob;
before(async () => {
  agent = await seedAgent('support-bot');
  failAgent = await seedAgent('fail-bot');
  candidateJob = (await api('POST', `/v1/agents/${agent.id}/improve-prompt`, {}, 202)).id;
  await waitJob(candidateJob);
  failedJob = (await api('POST', `/v1/agents/${failAgent.id}/improve-prompt`, {}, 202)).id;
  await waitJob(failedJob);
  await api('POST', '/v1/best-practices', { title: 'Say what to do', category: 'clarity', content: 'Positive instructions work better.' }, 201);
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  // Playwright's own default: at ctest -j4 beside other browser tests the page ran ten
  // times slower than alone, and the agent page's 200-row table took over 10 s to show.
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
  if (browser) await browser.close();
  await srv.stop();
  srv.cleanup();
});

const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);

// axe on the page as it is (an open modal dialog included: the rest is inert).
// Serious and critical violations fail; the others are printed.
async function axe(what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const res = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    resultTypes: ['violations'],
  }));
  const fmt = (v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join('\n    ')}`;
  const minor = res.violations.filter((v) => !['serious', 'critical'].includes(v.impact));
  if (minor.length) console.log(`# ${what}: ${minor.map(fmt).join('\n')}`);
  const bad = res.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(bad.map(fmt), [], `${what}: axe violations`);
}

// Headings go down one level at a time (h1, h2, h3; never h1 then h3).
async function headingsInOrder(what, root = 'body') {
  const levels = await page.evaluate((sel) => [...document.querySelector(sel).querySelectorAll('h1, h2, h3, h4, h5, h6')]
    .filter((e) => e.getClientRects().length || e.closest('.sr-only')).map((e) => Number(e.tagName[1])), root);
  for (let i = 1; i < levels.length; i++) assert.ok(levels[i] <= levels[i - 1] + 1, `${what}: heading levels ${levels.join(',')}`);
}

// Tab from the top of the page through every control: each takes the focus
// with a visible outline, and every visible control is reached.
async function tabThrough(what, { max = 120 } = {}) {
  const seen = new Set();
  const noOutline = [];
  // Start from the top: the next Tab goes to the first control.
  await page.evaluate(() => { window.scrollTo(0, 0); document.body.tabIndex = -1; document.body.focus(); document.body.removeAttribute('tabindex'); });
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const info = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      if (!el.dataset.a11yId) el.dataset.a11yId = String(Math.random());
      // A visually hidden radio shows its focus on its label.
      const shown = el.matches('.segmented input') ? el.nextElementSibling : el;
      const cs = getComputedStyle(shown);
      const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2;
      return { id: el.dataset.a11yId, outline, desc: `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.textContent || el.name || '').trim().slice(0, 40)}"` };
    });
    if (!info) break;
    if (seen.has(info.id)) break; // wrapped around
    seen.add(info.id);
    if (!info.outline) noOutline.push(info.desc);
  }
  assert.deepEqual(noOutline, [], `${what}: controls without a visible focus`);
  const missed = await page.evaluate((ids) => {
    const sel = 'a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';
    return [...document.querySelectorAll(sel)]
      .filter((el) => !el.closest('[inert]') && !el.disabled && el.getClientRects().length && !ids.includes(el.dataset.a11yId))
      .filter((el) => !(el.type === 'radio' && !el.checked)) // one stop per radio group
      .filter((el) => !el.closest('details:not([open])') || el.matches('details > summary'))
      .map((el) => `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.textContent || el.name || '').trim().slice(0, 40)}"`);
  }, [...seen]);
  assert.deepEqual(missed, [], `${what}: controls Tab does not reach`);
}

// Open a dialog with the keyboard from `opener`, check it, close it with
// Escape: the focus starts inside it on `first` (the ARIA dialog pattern: the
// first field, the safe choice of a confirmation, the heading of a read-only
// dialog; never the Close button), Tab stays inside, every field has a label,
// and Escape hands the focus back to the opener.
async function dialogCheck(what, opener, { first, check } = {}) {
  await opener.focus();
  await page.keyboard.press('Enter');
  const dlg = page.locator('dialog[open]');
  await dlg.waitFor();
  assert.ok(await page.evaluate(() => document.querySelector('dialog[open]').contains(document.activeElement)), `${what}: the focus moves into the dialog`);
  const focused = await page.evaluate(() => {
    const el = document.activeElement;
    if (/^H\d$/.test(el.tagName)) return `heading ${el.textContent}`;
    if (el.labels?.length) return `field ${el.labels[0].textContent}`;
    return `${el.tagName.toLowerCase()} ${el.getAttribute('aria-label') || el.textContent}`;
  });
  assert.equal(focused, first, `${what}: where the focus starts`);
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.querySelector('dialog[open]').contains(document.activeElement) || document.activeElement === document.body),
      `${what}: Tab leaves the dialog for ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 80))}`);
  }
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('dialog[open] input, dialog[open] select, dialog[open] textarea')]
    .filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')).map((el) => el.name));
  assert.deepEqual(unlabelled, [], `${what}: fields without a label`);
  await axe(what);
  await headingsInOrder(what, 'dialog[open]');
  if (check) await check(dlg);
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.ok(await opener.evaluate((el) => el === document.activeElement), `${what}: Escape returns the focus to the control that opened it`);
}

test('sign-in: axe, and a refused key is announced and tied to the field', async () => {
  await page.goto(srv.url + '/');
  await page.waitForSelector('input[name=api_key]');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await axe('sign-in');
  await tabThrough('sign-in');
  await page.getByLabel('API key').fill('rf_wrongwrongwrongwrongwrongwrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('That API key was not accepted.').waitFor();
  const f = await page.getByLabel('API key').evaluate((el) => ({
    invalid: el.getAttribute('aria-invalid'),
    described: (el.getAttribute('aria-describedby') || '').split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' '),
    alert: !!document.querySelector('.signin-error [role=alert]'),
  }));
  await axe('sign-in with an error');
  // Signed in before the assertions, so that the cases after this one run.
  await page.getByLabel('API key').fill(srv.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  assert.equal(f.invalid, 'true', 'the refused key is marked invalid');
  assert.match(f.described, /not accepted/, 'the error describes the field');
  assert.ok(f.alert, 'the error is announced');
});

test('a skip link is the first tab stop and moves the focus to the main content', async () => {
  await page.reload(); // a fresh load: nothing has the focus
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  assert.ok(await page.evaluate(() => document.activeElement.getBoundingClientRect().top >= 0), 'the skip link shows when focused');
  const before = page.url();
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  // The fragment is the route: the skip link must not change it.
  await page.waitForTimeout(100);
  assert.equal(page.url(), before, 'the skip link leaves the route alone');
  assert.equal(await page.getByRole('heading', { name: 'Agents', level: 1 }).count(), 1, 'the page stays');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'new-agent', 'the next Tab is inside the main content');
});

test('agents list and the New agent dialog', async () => {
  await page.locator(`tr[data-agent-id="${agent.id}"]`).waitFor();
  await page.waitForFunction(() => ![...document.querySelectorAll('td')].some((td) => td.textContent === '…'));
  await axe('agents list');
  await headingsInOrder('agents list');
  assert.ok(await page.evaluate(() => [...document.querySelectorAll('table')].every((t) => t.querySelector('th[scope=col]'))), 'tables have column headers');
  await tabThrough('agents list');
  await dialogCheck('New agent', page.locator('#new-agent'), { first: 'field Name' });
});

test('a dialog error is announced and tied to its field', async () => {
  await page.locator('#new-agent').click();
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Name').fill('support-bot'); // taken: 409
  await dlg.getByRole('button', { name: 'Create agent' }).click();
  await dlg.locator('[role=alert]').waitFor();
  const f = await dlg.getByLabel('Name').evaluate((el) => ({
    invalid: el.getAttribute('aria-invalid'),
    described: (el.getAttribute('aria-describedby') || '').split(/\s+/).map((id) => document.getElementById(id)?.textContent || '').join(' '),
  }));
  assert.equal(f.invalid, 'true', 'the field the error names is marked invalid');
  assert.match(f.described, /already exists/, 'the error is read with the field');
  assert.ok(await dlg.getByLabel('Name').evaluate((el) => el === document.activeElement), 'the field takes the focus');
  await axe('New agent with an error');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
});

test('agent page, the trace viewer, and the Improve and New version dialogs', async () => {
  await go(`#/agents/${agent.id}`);
  await page.locator('#contradictions table').waitFor();
  await page.locator('.job-list').waitFor();
  await axe('agent page');
  await headingsInOrder('agent page');
  await tabThrough('agent page');
  await dialogCheck('trace viewer', page.locator('button.trace-open').first(), {
    first: 'heading Trace ' + await page.locator('#contradictions tr[data-trace-id]').first().getAttribute('data-trace-id'),
    check: async (dlg) => {
      await dlg.locator('.trace .meta').waitFor();
      assert.ok(await dlg.locator('pre.json').last().evaluate((el) => el.scrollHeight > el.clientHeight), 'the metadata box scrolls');
      await axe('trace viewer, loaded'); // scrollable-region-focusable among others
      await headingsInOrder('trace viewer', 'dialog[open]');
    },
  });
  await dialogCheck('Improve prompt', page.locator('#improve'), { first: 'field Max contradictions' });
  await dialogCheck('New version', page.locator('#new-version'), { first: 'field Prompt template' });
});

test('candidate review: both diff layouts, promote and reject dialogs', async () => {
  await go(`#/agents/${agent.id}/versions/2`);
  await page.locator('table.diff-split').waitFor();
  await page.locator('.practice-list, #bp-h ~ div').first().waitFor();
  await axe('review, side by side');
  await headingsInOrder('review');
  await tabThrough('review');
  // Removed and added lines and words are marked without colour too.
  const marks = async () => page.evaluate(() => [...document.querySelectorAll('table.diff td.tx.del, table.diff td.tx.ins')].map((td) => {
    const before = getComputedStyle(td, '::before').content;
    return { kind: td.classList.contains('del') ? 'del' : 'ins', marker: before, sr: td.querySelector('.sr-only')?.textContent };
  }));
  const wordMarks = () => page.evaluate(() => [...document.querySelectorAll('table.diff ins.w, table.diff del.w')].map((w) => {
    const cs = getComputedStyle(w);
    return `${w.tagName} ${cs.textDecorationLine} ${cs.borderBottomStyle}`;
  }));
  for (const m of await marks()) {
    assert.ok(m.marker.startsWith(m.kind === 'del' ? '"-"' : '"+"'), `side by side: a visible -/+ marker, not ${m.marker}`);
    assert.equal(m.sr, m.kind === 'del' ? 'removed: ' : 'added: ');
  }
  for (const w of await wordMarks()) assert.ok(!/ none none$/.test(w), `a changed word is marked by more than colour: ${w}`);
  await page.locator('#diff-view').getByText('Unified').click();
  await page.locator('table.diff-unified').waitFor();
  await axe('review, unified');
  for (const m of await marks()) assert.ok(m.marker.startsWith(m.kind === 'del' ? '"-"' : '"+"'), `unified: a visible -/+ marker, not ${m.marker}`);
  // …which a screen reader does not read as well as "removed:" / "added:".
  assert.match(await page.locator('table.diff-unified td.tx.del').first().ariaSnapshot(), /"removed: /);
  // Its line-number columns say which version they count.
  assert.deepEqual(await page.locator('table.diff-unified thead th').allTextContents(), ['v1', 'v2', 'Line']);
  await dialogCheck('Promote', page.locator('#promote'), { first: 'field Review note' });
  await dialogCheck('Reject', page.locator('#reject'), { first: 'field Reason' });
});

// Wait (up to 2 s) for a re-rendered page to place the focus.
const focusSettles = () => page.waitForFunction(() => document.activeElement !== document.body, null, { timeout: 2000 }).catch(() => {});

test('promote, then roll back from the timeline and from the version page: the focus stays on the page', async () => {
  await page.locator('#promote').focus();
  await page.keyboard.press('Enter');
  await page.locator('dialog[open]').getByRole('button', { name: 'Promote v2' }).press('Enter');
  await page.locator('.timeline li[data-version="1"] button[data-rollback]').waitFor();
  await page.locator('.timeline li[data-version="1"] button[data-rollback]').press('Enter');
  await page.locator('dialog[open]').getByRole('button', { name: 'Roll back to v1' }).press('Enter');
  await page.locator('.timeline li[data-version="2"] button[data-rollback]').waitFor();
  await focusSettles();
  assert.equal(await page.evaluate(() => document.activeElement.closest('li[data-version]')?.dataset.version), '1',
    'after a rollback from the timeline, the focus is on the version rolled back to');
  await go(`#/agents/${agent.id}/versions/2`);
  await page.locator('#rollback').press('Enter');
  await page.locator('dialog[open]').getByRole('button', { name: 'Roll back to v2' }).press('Enter');
  await page.locator('#rollback').waitFor({ state: 'detached' });
  await focusSettles();
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'after a rollback from its page, the focus is on the heading');
});

test('jobs list, a finished job and a failed job', async () => {
  await go('#/jobs');
  await page.locator('tr[data-job-id]').first().waitFor();
  await axe('jobs list');
  await headingsInOrder('jobs list');
  await tabThrough('jobs list');
  await go(`#/jobs/${candidateJob}`);
  await page.locator('#review-candidate').waitFor();
  await page.locator('#job-transcript details.call').first().waitFor();
  await page.locator('#job-events summary').click();
  await page.locator('#job-transcript details.call summary').first().click();
  await axe('finished job');
  await headingsInOrder('finished job');
  await tabThrough('finished job', { max: 200 });
  await go(`#/jobs/${failedJob}`);
  await page.locator('#job-error').waitFor();
  await axe('failed job');
  // A retry the server refuses says why beside the button, in a role=alert
  // region, and stays (it was a toast that went after 8 s); Retry keeps the focus.
  await page.route('**/retry', (r) => r.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'unavailable', message: 'scripted outage for the retry test' } }) }));
  try {
    await page.locator('#retry-job').focus();
    await page.keyboard.press('Enter');
    const why = page.locator('#job-action-error');
    await why.getByText('scripted outage for the retry test').waitFor();
    assert.match(await why.innerText(), /^Could not retry the job: /);
    assert.equal(await why.getAttribute('role'), 'alert');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'retry-job', 'the refused retry leaves the focus on Retry');
    assert.equal(await page.locator('.toast-error').count(), 0, 'the error is not a toast');
    await axe('failed job, a refused retry');
  } finally {
    await page.unroute('**/retry');
  }
});

test('live job: announced once per change, not on every event; reduced motion stops the animations', async () => {
  await page.emulateMedia({ reducedMotion: 'reduce' });
  const job = (await api('POST', `/v1/agents/${failAgent.id}/improve-prompt`, {}, 202)).id;
  await go(`#/jobs/${job}`);
  await page.locator('#job-stage-label').waitFor();
  await page.evaluate(() => {
    window.__said = [];
    const label = document.getElementById('job-stage-label');
    new MutationObserver(() => window.__said.push(label.textContent)).observe(label, { childList: true, characterData: true, subtree: true });
    window.__outcome = [];
    const outcome = document.getElementById('job-outcome');
    new MutationObserver(() => window.__outcome.push(outcome.textContent)).observe(outcome, { childList: true });
  });
  await page.waitForFunction(() => /analyzing failures/.test(document.getElementById('job-stage-label').textContent));
  await page.waitForFunction(() => /tokens received/.test(document.getElementById('job-tokens').textContent));
  // "● live": the dot is hidden from screen readers, which say "live" alone.
  await page.waitForFunction(() => /live/.test(document.getElementById('job-conn').textContent));
  assert.equal(await page.locator('#job-conn').ariaSnapshot(), '- text: live');
  await axe('live job');
  await headingsInOrder('live job');
  const animations = await page.evaluate(() => document.getAnimations().filter((a) => a.playState === 'running').map((a) => a.animationName || a.constructor.name));
  assert.deepEqual(animations, [], 'no animation runs under prefers-reduced-motion');
  const outcome = await page.evaluate(() => document.getElementById('job-outcome').closest('[aria-live], [role=status], [role=log]') !== null);
  assert.ok(outcome, 'the outcome area is a live region before the job ends');
  await page.locator('#review-candidate').waitFor({ timeout: 20000 });
  const said = await page.evaluate(() => window.__said);
  const repeats = said.filter((t, i) => i && t === said[i - 1]);
  assert.deepEqual(repeats, [], `the stage label changes only when its text does (${said.length} changes)`);
  await page.locator('#job-transcript details.call').first().waitFor(); // the page has done its last redraw
  assert.equal((await page.evaluate(() => window.__outcome)).length, 1, 'the outcome is written once, when the job ends');
  // Each stage says its state in words, not only by its icon.
  const stages = await page.locator('#job-stages .stage-name').evaluateAll((els) => els.map((e) => e.textContent));
  assert.match(stages[0], /, done$/);
  assert.ok(stages.every((t) => /, done$/.test(t)), stages.join(' | '));
  await page.emulateMedia({ reducedMotion: 'no-preference' });
});

test('best practices: the page, the Add dialog, and the focus after adding and deleting', async () => {
  await go('#/best-practices');
  await page.locator('#own-practices').waitFor();
  await axe('best practices');
  await headingsInOrder('best practices');
  await tabThrough('best practices', { max: 200 });
  // The disclosure triangle is not read out.
  assert.match(await page.locator('#builtin-practices summary').first().ariaSnapshot(), /^- text: [A-Z]/);
  await dialogCheck('Add practice', page.locator('#add-practice'), { first: 'field Title' });
  await page.locator('#add-practice').focus();
  await page.keyboard.press('Enter');
  const dlg = page.locator('dialog[open]');
  await dlg.getByLabel('Title').fill('Name the audience');
  await dlg.getByLabel('Content').fill('Say who reads the answer.');
  // The toast that says it worked is written to a live region a screen reader
  // can hear: not while the modal dialog is open, when everything outside it,
  // the live region included, is inert and out of the accessibility tree.
  await page.evaluate(() => {
    window.__toasts = [];
    const region = document.getElementById('toasts');
    new MutationObserver((muts) => {
      for (const m of muts) for (const n of m.addedNodes) {
        if (n.nodeType !== 1 || !n.classList.contains('toast')) continue;
        const live = n.parentElement.closest('[role=status], [role=alert], [aria-live]');
        window.__toasts.push({ text: n.textContent, live: live ? live.getAttribute('role') || live.getAttribute('aria-live') : null, modal: !!document.querySelector('dialog[open]') });
      }
    }).observe(region, { childList: true, subtree: true });
  });
  await dlg.getByRole('button', { name: 'Add practice' }).press('Enter');
  await page.locator('#own-practices h3', { hasText: 'Name the audience' }).waitFor();
  await focusSettles();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'add-practice', 'after adding, the focus is back on Add practice');
  await page.waitForFunction(() => window.__toasts.length > 0);
  assert.deepEqual(await page.evaluate(() => window.__toasts), [{ text: 'Practice added.', live: 'status', modal: false }],
    'the toast is written to a polite live region once the dialog has closed');
  const del = page.getByRole('button', { name: 'Delete “Name the audience”' });
  await dialogCheck('Delete practice', del, { first: 'button Cancel' });
  await del.focus();
  await page.keyboard.press('Enter');
  await page.locator('dialog[open]').getByRole('button', { name: 'Delete' }).press('Enter');
  await page.locator('#own-practices h3', { hasText: 'Name the audience' }).waitFor({ state: 'detached' });
  await focusSettles();
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Delete', 'after deleting, the focus is on the next Delete button');
});

test('an error toast stays until it is dismissed (WCAG 2.2.1), and is announced', async () => {
  await go('#/agents');
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  await page.route('**/v1/session', (r) => (r.request().method() === 'DELETE'
    ? r.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'internal', message: 'scripted sign-out failure' } }) })
    : r.continue()));
  try {
    await page.getByRole('button', { name: 'Sign out' }).click();
    const err = page.locator('.toast', { hasText: 'scripted sign-out failure' });
    await err.waitFor();
    assert.equal(await err.evaluate((el) => el.parentElement.getAttribute('role')), 'alert', 'the error is written to a role=alert region');
    await page.waitForTimeout(9000); // longer than any toast stayed before
    assert.equal(await err.count(), 1, 'the error is still there');
    await axe('an error toast');
    // Dismiss is a button the keyboard reaches (the last tab stop of the page).
    const dismiss = err.getByRole('button', { name: 'Dismiss' });
    await dismiss.focus();
    await page.keyboard.press('Enter');
    await err.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main', 'the focus goes back to the main content');
    // Escape dismisses it too, from wherever the focus is, and leaves the focus there
    // (a toast that stays may cover the focused control: WCAG 2.4.11).
    await page.getByRole('button', { name: 'Sign out' }).click();
    await err.waitFor();
    await page.locator('#new-agent').focus();
    await page.keyboard.press('Escape');
    await err.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'new-agent', 'Escape leaves the focus where it was');
  } finally {
    await page.unroute('**/v1/session');
  }
});

test('the dark theme: axe on every page', async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  try {
    const pages = [
      ['#/agents', 'tr[data-agent-id]'], [`#/agents/${agent.id}`, '#contradictions table'],
      [`#/agents/${agent.id}/versions/2`, 'table.diff'], ['#/jobs', 'tr[data-job-id]'],
      [`#/jobs/${candidateJob}`, '#review-candidate'], [`#/jobs/${failedJob}`, '#job-error'], ['#/best-practices', '#own-practices'],
    ];
    for (const [hash, ready] of pages) {
      await go(hash);
      await page.locator(ready).first().waitFor();
      await axe(`dark theme ${hash}`);
    }
    await page.locator('#add-practice').click();
    await page.locator('dialog[open]').waitFor();
    await axe('dark theme, a dialog');
    await page.keyboard.press('Escape');
  } finally {
    await page.emulateMedia({ colorScheme: 'light' });
  }
});

test('not found', async () => {
  await go('#/agents');
  await page.locator('#new-agent').focus(); // a control the navigation takes away
  await go('#/nowhere');
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  // As after any navigation, the focus is on the page's heading, not lost.
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'the heading has the focus');
  assert.equal(await page.title(), 'Not found · refold');
  await axe('not found');
});

test('no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
