// How the web UI reads on real data (docs/ui.md): long names and notes, more
// than a thousand contradictions, a job whose events carry long data, at the
// widths a laptop, a tablet and a phone give it, in the light and dark themes.
// Headless Debian chromium driven by playwright-core against the real binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sql, launchChromium, signedInTab } from './lib.mjs';

const srv = await startServer();
let browser;
const pageErrors = [];
const N = 1005; // contradictions: past the thousands separator
const LONG_NAME = 'Customer-support assistant for the international marketplace (EU + APAC storefronts, multilingual, tier-2 escalations)';
const DESCRIPTION = 'Answers buyers by chat and email in 14 languages and hands refunds above the limit and legal threats to tier-2 humans. Owned by the CX platform team; runbook at https://wiki.example.com/cx/platform/runbooks/support-assistant/escalations-and-refunds-policy-2026-q3';
const NOTE = 'Promised a refund without checking the order status first, then invented a tracking URL: https://tracking.example-carrier.com/this/does/not/exist/and/is/a/very/long/path/segment/that/never/ends';
const JOB = 'job_01JQ3000000000000000000001';
const ARABIC = 'إذا كتب العميل بالعربية، فأجب بالعربية واذكر رقم الطلب 55231 كما هو.';
let agent, one;

async function api(method, path, body, want) {
  const r = await srv.api(method, path, body);
  assert.equal(r.status, want, `${method} ${path}: ${r.text}`);
  return r.json;
}

before(async () => {
  browser = await launchChromium();
  agent = await api('POST', '/v1/agents', { name: LONG_NAME, description: DESCRIPTION,
    prompt_template: `You are the support agent of {{company_name}}.\nReply in {{customer.profile.preferred_language}}.\n${ARABIC}\n` }, 201);
  await api('POST', `/v1/agents/${agent.id}/versions`, { prompt_template: 'You are the support agent of {{company_name}}.\n'
    + 'Reply in {{customer.profile.preferred_language}}, briefly, and never promise a refund before you have looked up the order and checked its status.\n'
    + `${ARABIC}\n` }, 201);
  const ev = await api('POST', '/v1/evals', { agent_id: agent.id, name: 'policy_compliance_checker_with_a_really_long_unbroken_name_v3' }, 201);
  const ids = [];
  for (let i = 0; i < N; i += 500) {
    const traces = Array.from({ length: Math.min(500, N - i) }, (_, k) => ({ agent_id: agent.id, external_id: `t-${i + k}`,
      timestamp: '2026-01-05T09:30:00.000Z', input: `I WANT A REFUND NOW!!! 😡 order #A-${i + k} ${'I am very upset. '.repeat(8)}`, output: 'Refunded in full.' }));
    ids.push(...(await api('POST', '/v1/traces', { traces }, 201)).data.map((d) => d.id));
  }
  for (let i = 0; i < N; i += 500) {
    const part = ids.slice(i, i + 500);
    await api('POST', '/v1/feedback', { feedback: part.map((trace_id) => ({ trace_id, rating: 'negative', note: NOTE })) }, 200);
    await api('POST', `/v1/evals/${ev.id}/executions`, { executions: part.map((trace_id) => ({ trace_id, predicted_result: true,
      predicted_reason: 'The reply addresses the customer question, stays polite and cites the refund policy section 4.2 correctly.' })) }, 200);
  }
  // An agent with exactly one contradiction.
  one = await api('POST', '/v1/agents', { name: 'one-contradiction', prompt_template: 'Help {{user}}.' }, 201);
  const oneEval = await api('POST', '/v1/evals', { agent_id: one.id, name: 'judge' }, 201);
  const [oneTrace] = (await api('POST', '/v1/traces', { traces: [{ agent_id: one.id, external_id: 'one-0', input: 'hi', output: 'hello' }] }, 201)).data;
  await api('POST', '/v1/feedback', { feedback: [{ trace_id: oneTrace.id, rating: 'negative' }] }, 200);
  await api('POST', `/v1/evals/${oneEval.id}/executions`, { executions: [{ trace_id: oneTrace.id, predicted_result: true }] }, 200);
  // A finished job with a dozen events, the last carrying a long result, and no log line.
  const ws = (await sql(srv.db, "SELECT id FROM workspaces WHERE name = 'default'")).trim();
  const t = Date.now() - 60000;
  await sql(srv.db, `INSERT INTO jobs (id, workspace_id, type, status, stage, progress, params, result, attempt, max_attempts, run_at, created_at, started_at, finished_at, event_seq) VALUES ('${JOB}', '${ws}', 'prompt_improvement', 'completed', 'completed', 100, '{"agent_id": "${agent.id}"}', '{"changes_summary": "nothing"}', 1, 3, ${t}, ${t}, ${t}, ${t + 5000}, 12)`);
  const long = JSON.stringify({ changes_summary: 'The rewrite adds an escalation rule. '.repeat(30), failure_patterns: ['x'.repeat(300)] });
  await sql(srv.db, 'INSERT INTO job_events (job_id, seq, type, data, created_at) VALUES ' + Array.from({ length: 12 }, (_, i) =>
    `('${JOB}', ${i + 1}, '${i === 11 ? 'completed' : 'progress'}', '${i === 11 ? `{"result": ${long}}` : `{"stage": "fetching_agent", "progress": 0, "note": "${'y'.repeat(200)}"}`}', ${t + i})`).join(', '));
});

after(async () => {
  if (browser) await browser.close();
  await srv.stop();
  srv.cleanup();
});

// A new browser context signed in on route (signing in returns to it).
const signedIn = (route, opts = {}) =>
  signedInTab(browser, srv.url + '/' + route, srv.key, { locale: 'en-US', ...opts, onError: (m) => pageErrors.push(m) });

// WCAG contrast ratio of an element's text (pseudo '') or its ::after glyph
// (pseudo '::after') on the element's own background.
const contrastOf = (el, pseudo) => {
  const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const fg = lum(getComputedStyle(el, pseudo || null).color);
  const bg = lum(getComputedStyle(el).backgroundColor);
  return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
};

test('agent page at 1024 px: the contradictions fit their column instead of squeezing the input to a sliver', async () => {
  const { ctx, tab } = await signedIn(`#/agents/${agent.id}`, { width: 1024, height: 768 });
  await tab.locator('#contradictions button.trace-open').first().waitFor();
  const m = await tab.evaluate(() => {
    const card = document.querySelector('#contradictions').getBoundingClientRect();
    const table = document.querySelector('#contradictions table').getBoundingClientRect();
    const input = document.querySelector('#contradictions button.trace-open').getBoundingClientRect();
    return { cardRight: card.right, tableRight: table.right, inputWidth: input.width };
  });
  assert.ok(m.tableRight <= m.cardRight, `the table stays inside its card (${m.tableRight} > ${m.cardRight})`);
  assert.ok(m.inputWidth >= 200, `the input excerpt has room to be read (${m.inputWidth} px)`);
  // At a full-width 1440 px the contradictions stay a table.
  await tab.setViewportSize({ width: 1440, height: 900 });
  assert.equal(await tab.locator('#contradictions thead').evaluate((el) => getComputedStyle(el).position), 'static');
  await ctx.close();
});

test('truncated descriptions and notes carry the whole text in their title', async () => {
  const { ctx, tab } = await signedIn('#/agents');
  const desc = tab.locator(`tr[data-agent-id="${agent.id}"] .clamp`);
  assert.equal(await desc.getAttribute('title'), DESCRIPTION);
  await tab.goto(srv.url + `/#/agents/${agent.id}`);
  const row = tab.locator('#contradictions tbody tr').first();
  await row.waitFor();
  const clamps = await row.locator('.clamp').evaluateAll((els) => els.map((e) => [e.textContent, e.getAttribute('title')]));
  assert.ok(clamps.length >= 2);
  for (const [text, title] of clamps) assert.equal(title, text, 'every clamped text has its full text as title');
  await ctx.close();
});

test('numbers carry thousands separators and old dates name their month', async () => {
  const { ctx, tab } = await signedIn(`#/agents/${agent.id}`);
  await tab.locator('#improve').click();
  const dlg = tab.locator('dialog[open]');
  assert.match(await dlg.innerText(), /1,005 contradictions on record \(1,005 missed failures, 0 false alarms\)/);
  await tab.keyboard.press('Escape');
  await tab.locator('#contradictions button.trace-open').first().click();
  const time = tab.locator('dialog[open] dl.meta time');
  await time.waitFor();
  assert.equal(await time.innerText(), 'Jan 5, 2026', 'not 1/5/2026, which reads as 1 May in Europe');
  assert.match(await time.getAttribute('title'), /^Jan 5, 2026, \d+:30:00/);
  await ctx.close();
});

test('counts of one are singular', async () => {
  const { ctx, tab } = await signedIn('#/agents');
  const rate = tab.locator(`tr[data-agent-id="${one.id}"] .rate`);
  assert.equal(await rate.getAttribute('title'), '1 contradiction: 1 missed failure, 0 false alarms');
  await tab.goto(srv.url + `/#/agents/${one.id}`);
  await tab.locator('#improve').click();
  assert.match(await tab.locator('dialog[open]').innerText(), /1 contradiction on record \(1 missed failure, 0 false alarms\)/);
  await ctx.close();
});

test('job page: event numbers stay on one line and a finished job without log lines says so', async () => {
  const { ctx, tab } = await signedIn(`#/jobs/${JOB}`, { width: 1440 });
  await tab.locator('#job-events tbody tr').nth(11).waitFor({ state: 'attached' });
  await tab.locator('#job-events summary').click();
  const lines = await tab.locator('#job-events tbody tr').nth(11).locator('td').first().evaluate((td) => {
    const r = document.createRange();
    r.selectNodeContents(td);
    return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size;
  });
  assert.equal(lines, 1, 'seq 12 is not broken into 1 / 2');
  const empty = await tab.locator('#job-log').evaluate((el) => getComputedStyle(el, '::after').content);
  assert.equal(empty, '"This job wrote no log lines."');
  await ctx.close();
});

test('relative times move on while the page stays open', async () => {
  const { ctx, tab } = await signedIn(`#/jobs/${JOB}`, { clock: true });
  const created = tab.locator('.meta-line time');
  await created.waitFor();
  const minutes = async () => Number((await created.innerText()).match(/^(\d+) minutes? ago$/)[1]);
  const before = await minutes(); // the job was created a minute or two before this test
  await tab.clock.fastForward('10:00');
  assert.equal(await minutes(), before + 10);
  await ctx.close();
});

test('contrast: badges, danger buttons and stage glyphs pass WCAG AA in both themes', async () => {
  for (const colorScheme of ['light', 'dark']) {
    const { ctx, tab } = await signedIn(`#/jobs/${JOB}`, { colorScheme });
    // The transcript loads once every stored event is applied: the badge is redrawn no more.
    await tab.locator('#job-transcript', { hasText: 'This job made no LLM calls.' }).waitFor();
    const badge = await tab.locator('#job-status .badge-completed').evaluate(contrastOf, '');
    assert.ok(badge >= 4.5, `${colorScheme}: "completed" badge ${badge.toFixed(2)}:1`);
    const glyph = await tab.locator('.stage-done .stage-icon').first().evaluate(contrastOf, '::after');
    assert.ok(glyph >= 4.5, `${colorScheme}: the ✓ of a done stage ${glyph.toFixed(2)}:1`);
    await tab.goto(srv.url + `/#/agents/${agent.id}/versions/2`);
    await tab.locator('#reject').click();
    const danger = await tab.locator('dialog[open] .btn-danger').evaluate(contrastOf, '');
    assert.ok(danger >= 4.5, `${colorScheme}: the Reject button ${danger.toFixed(2)}:1`);
    await ctx.close();
  }
});

test('an Arabic line of a prompt reads right to left, aligned right', async () => {
  const { ctx, tab } = await signedIn(`#/agents/${agent.id}`);
  const pre = tab.locator('pre.prompt');
  await pre.waitFor();
  const m = await pre.evaluate((el, arabic) => {
    const cs = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    const content = { left: box.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft),
      right: box.right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight) };
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const rectOf = (needle) => {
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const i = n.textContent.indexOf(needle);
        if (i < 0) continue;
        const r = document.createRange();
        r.setStart(n, i);
        r.setEnd(n, i + needle.length);
        return r.getBoundingClientRect();
      }
      return null;
    };
    const line = rectOf(arabic);
    walker.currentNode = el;
    const latin = rectOf('You are the support agent');
    return { content, line: { left: line.left, right: line.right }, latin: { left: latin.left } };
  }, ARABIC);
  assert.ok(Math.abs(m.line.right - m.content.right) <= 2, `the Arabic line ends at the right edge (${JSON.stringify(m)})`);
  assert.ok(Math.abs(m.latin.left - m.content.left) <= 2, 'the English lines stay left-aligned');
  await ctx.close();
});

test('unified diff on a phone: a wrapped line continues under its text, not under the +/- marker', async () => {
  const { ctx, tab } = await signedIn(`#/agents/${agent.id}/versions/2?view=unified`, { width: 390, height: 844 });
  const cell = tab.locator('table.diff-unified td.tx.ins').first();
  await cell.waitFor();
  const lefts = await cell.evaluate((td) => {
    const r = document.createRange();
    r.selectNodeContents(td);
    const lines = new Map();
    for (const x of r.getClientRects()) {
      if (!x.width) continue;
      const top = Math.round(x.top);
      lines.set(top, Math.min(lines.get(top) ?? Infinity, x.left));
    }
    return [...lines.values()];
  });
  assert.ok(lefts.length >= 3, `the added line wraps at 390 px (${lefts.length} lines)`);
  assert.ok(Math.max(...lefts) - Math.min(...lefts) <= 1, `every line of it starts at the same x: ${lefts}`);
  await ctx.close();
});

test('tables fit between the phone and the laptop widths: headers wrap instead of widening the page', async () => {
  const { ctx, tab } = await signedIn('#/agents', { width: 900 });
  for (const width of [800, 900, 1000]) {
    await tab.setViewportSize({ width, height: 800 });
    for (const route of ['#/agents', '#/jobs']) {
      await tab.goto(srv.url + '/' + route);
      await tab.locator('table.responsive tbody tr').first().waitFor();
      assert.ok(await tab.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `${route} scrolls sideways at ${width} px`);
    }
  }
  await ctx.close();
});

test('no horizontal scrolling on a phone with long names, ids and notes', async () => {
  const { ctx, tab } = await signedIn('#/agents', { width: 390, height: 844 });
  for (const route of ['#/agents', `#/agents/${agent.id}`, `#/agents/${agent.id}/versions/2`, '#/jobs', `#/jobs/${JOB}`]) {
    await tab.goto(srv.url + '/' + route);
    await tab.locator('h1').first().waitFor();
    await tab.waitForLoadState('networkidle');
    assert.ok(await tab.evaluate(() => document.documentElement.scrollWidth <= innerWidth), `${route} scrolls sideways`);
  }
  await ctx.close();
});

test('no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
