// Jobs: the list, and the job page, which is also the live view of a running
// improvement. The page is rebuilt from the job's events: a running job is
// followed over EventSource (SPEC §6; the stream replays every stored event
// first, so a reload resumes where it was), a finished one is read from the
// JSON event list. Events are applied once each, by seq.
import { get, getAll, post, items, enc, isMissingEndpoint } from './api.js';
import { h, fill, badge, time, clock, num, count, shortId, empty, errorBox, table, toast, setTitle, jsonBlock, loadMore, focusIfLost } from './ui.js';
import { setQuery, agentHref, versionHref, jobHref } from './nav.js';

export const STAGES = [
  ['fetching_agent', 0, 'Load the agent and its active prompt'],
  ['fetching_contradictions', 10, 'Find contradictions'],
  ['analyzing_failures', 30, 'Analyse failure patterns (LLM)'],
  ['fetching_best_practices', 50, 'Load best practices'],
  ['generating_improved_prompt', 60, 'Rewrite the prompt (LLM)'],
  ['validating_prompt', 70, 'Validate the rewrite'],
  ['creating_new_version', 80, 'Store the candidate version'],
  ['finalizing', 90, 'Finish'],
  ['completed', 100, 'Done'],
];
const STAGE_INDEX = new Map(STAGES.map(([s], i) => [s, i]));
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const EVENT_TYPES = ['progress', 'log', 'retry', 'completed', 'failed', 'cancelled'];
const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'];
// A stage's state as a screen reader says it (the icon shows it).
const STATE_WORDS = { pending: ', not started', done: ', done', current: ', in progress', failed: ', failed', cancelled: ', cancelled', waiting: ', waiting to retry' };
const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };
const typeLabel = (t) => (t === 'prompt_improvement' ? 'Prompt improvement' : String(t || 'job').replace(/_/g, ' '));

async function agentNames() {
  try {
    return new Map((await getAll('/v1/agents?limit=500', 20000)).map((a) => [a.id, a.name]));
  } catch {
    return new Map();
  }
}

// ---- list -------------------------------------------------------------------

// Where a queued or running job is, as the lists say it beside its status:
// its stage and percentage ("analyzing failures · 30%"). A job that has
// reported no stage (a test_sleep job never does, an improvement not before
// its first event) has no percentage to give either: null, not "0%".
export function liveStage(j) {
  return j.stage ? `${j.stage.replace(/_/g, ' ')} · ${j.progress ?? 0}%` : null;
}

// "Pause updates" on the jobs list, kept for the tab's session (a filter
// change or a visit to a job page does not resume them).
const PAUSE_KEY = 'refold.jobs.paused';
let pausedHere = false; // when sessionStorage is unavailable
function refreshPaused() {
  try { return sessionStorage.getItem(PAUSE_KEY) === '1'; } catch { return pausedHere; }
}
function setRefreshPaused(on) {
  pausedHere = on;
  try { if (on) sessionStorage.setItem(PAUSE_KEY, '1'); else sessionStorage.removeItem(PAUSE_KEY); } catch { /* pausedHere */ }
}

// Bring the rows of tbody to those of fresh (both keyed by data-job-id) in
// place: a row that stays keeps its element, and a cell its children unless
// what it shows changed. Rows only come and go at their place (the list is
// newest first), so no row that stays is moved.
function patchRows(tbody, fresh) {
  const want = [...fresh.children];
  const ids = new Set(want.map((tr) => tr.dataset.jobId));
  for (const tr of [...tbody.children]) if (!ids.has(tr.dataset.jobId)) tr.remove();
  const have = new Map([...tbody.children].map((tr) => [tr.dataset.jobId, tr]));
  let at = tbody.firstElementChild;
  for (const tr of want) {
    const old = have.get(tr.dataset.jobId);
    if (!old) { tbody.insertBefore(tr, at); continue; }
    [...tr.children].forEach((td, i) => {
      const cell = old.children[i];
      if (cell && cell.innerHTML !== td.innerHTML) cell.replaceChildren(...td.childNodes);
    });
    if (old !== at) tbody.insertBefore(old, at); // not expected: ids keep their order
    else at = at.nextElementSibling;
  }
}

export async function jobsPage(ctx) {
  setTitle('Jobs');
  const status = ctx.query.get('status') || '';
  const select = h('select', { id: 'job-status' }, h('option', { value: '' }, 'All'),
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)));
  select.addEventListener('change', () => { setQuery({ status: select.value || null }); ctx.query.set('status', select.value); jobsPage(ctx); });
  const head = h('div', { class: 'page-head' },
    h('div', null, h('h1', null, 'Jobs'), h('p', { class: 'muted' }, 'Background work: prompt improvements and their progress.')),
    h('div', { class: 'actions' }, h('div', { class: 'field inline' }, h('label', { for: 'job-status' }, 'Status'), select)));
  // A newer render of the list (another filter) takes over from this one.
  const gen = (ctx.jobsGen = (ctx.jobsGen || 0) + 1);
  const mine = () => ctx.alive() && ctx.jobsGen === gen;
  let page;
  try {
    page = await get(`/v1/jobs?limit=50${status ? `&status=${enc(status)}` : ''}`);
  } catch (err) {
    if (!mine()) return;
    // A failed read keeps the page's filter (and its focus), so that another
    // choice, or the same again, is one keypress away.
    const hadFocus = document.activeElement && document.activeElement.id === 'job-status';
    fill(ctx.root, head, isMissingEndpoint(err) ? empty('The job queue is not available on this server yet.') : errorBox(err, 'Could not load the jobs'));
    if (hadFocus) select.focus();
    return;
  }
  if (!mine()) return;
  const names = await agentNames();
  if (!mine()) return;
  const askedNames = new Set();
  const list = items(page);
  const wrap = h('div');
  const cols = [
    { label: 'Job', class: 'col-id', cell: (j) => h('a', { href: jobHref(j.id), class: 'mono' }, shortId(j.id)) },
    { label: 'Type', class: 'col-fit', cell: (j) => typeLabel(j.type) },
    { label: 'Agent', cell: (j) => {
      const id = j.params && j.params.agent_id;
      return id ? h('a', { href: agentHref(id) }, names.get(id) || shortId(id)) : '—';
    } },
    { label: 'Status', cell: (j) => badge(j.status) },
    { label: 'Stage', class: 'col-fit', cell: (j) => ((j.status === 'running' || j.status === 'queued') && liveStage(j)
      ? h('span', { class: 'small' }, liveStage(j))
      : j.error ? h('span', { class: 'small clamp', title: j.error.message || j.error.code }, j.error.code) : j.result && j.result.new_version_number
        ? h('a', { class: 'small', href: versionHref(j.params.agent_id, j.result.new_version_number) }, `candidate v${j.result.new_version_number}`)
        : h('span', { class: 'muted small' }, '—')) },
    { label: 'Created', cell: (j) => time(j.created_at) },
    { label: 'Finished', cell: (j) => time(j.finished_at) },
  ];
  // A redraw changes only the cells whose content changed, in the rows that
  // stay: the control with the keyboard focus, and the row a screen reader is
  // reading, stay the same elements (a replaced link loses the focus, and
  // taking it back is announced again). When the focused link does go (its
  // cell changed, or its job left a filtered list), the focus moves to the
  // same link again, else to the row in its place, else to the heading.
  const draw = (rows) => {
    const f = document.activeElement;
    const tr = wrap.contains(f) ? f.closest('tr[data-job-id]') : null;
    const was = tr ? { id: tr.dataset.jobId, href: f.getAttribute('href'), index: [...tr.parentNode.children].indexOf(tr) } : null;
    if (!rows.length && wrap.querySelector('.empty')) return; // still none: leave the note as it is
    const fresh = rows.length
      ? table(cols, rows, { caption: 'Jobs', rowAttrs: (j) => ({ 'data-job-id': j.id }) })
      : empty(status ? `No ${status} jobs.` : 'No jobs yet. Start one with “Improve prompt” on an agent page.');
    const body = wrap.querySelector('tbody');
    if (body && rows.length) patchRows(body, fresh.querySelector('tbody'));
    else fill(wrap, fresh);
    if (!was || wrap.contains(document.activeElement)) return;
    const trs = [...wrap.querySelectorAll('tr[data-job-id]')];
    const same = trs.find((r) => r.dataset.jobId === was.id);
    const el = (same && was.href && [...same.querySelectorAll('a[href]')].find((a) => a.getAttribute('href') === was.href))
      || (same || trs[Math.min(was.index, trs.length - 1)])?.querySelector('a[href]');
    if (el) el.focus({ preventScroll: true });
    else focusIfLost(head.querySelector('h1'));
  };
  draw(list);
  let cursor = page.next_cursor;
  let loadedMore = false;
  const more = loadMore(async () => {
    const next = await get(`/v1/jobs?limit=50${status ? `&status=${enc(status)}` : ''}&cursor=${enc(cursor)}`);
    const added = items(next);
    list.push(...added);
    cursor = next.next_cursor;
    loadedMore = true;
    draw(list);
    const first = added.length ? [...wrap.querySelectorAll('tr[data-job-id]')].find((tr) => tr.dataset.jobId === added[0].id) : null;
    return { added: added.length, first: first ? first.querySelector('a[href]') : null, done: !cursor };
  }, { hidden: !cursor });
  // A status change renders the page again: the new filter keeps the focus.
  const refocus = document.activeElement && document.activeElement.id === 'job-status';
  // The list updates itself every 5 s (running jobs move on, new ones
  // appear): "Pause updates" stops that until it is pressed again (WCAG
  // 2.2.2), for this tab's session.
  const pauseBtn = h('button', { type: 'button', class: 'btn btn-toggle', id: 'jobs-pause', 'aria-pressed': String(refreshPaused()),
    'aria-describedby': 'jobs-refresh-state' }, 'Pause updates');
  const pauseState = h('span', { class: 'muted small', id: 'jobs-refresh-state' });
  const showPause = () => {
    const p = refreshPaused();
    pauseBtn.setAttribute('aria-pressed', String(p));
    pauseState.textContent = p ? 'Updates paused.' : 'Updates every 5 s.';
  };
  showPause();
  // Why the list is no longer current (a refresh failed), until one succeeds:
  // written once when it changes (role=status), not every 5 s.
  const refreshError = h('span', { class: 'small inline-error', id: 'jobs-refresh-error', role: 'status' });
  head.querySelector('.actions').append(h('div', { class: 'field inline pause-updates' }, pauseBtn, pauseState, refreshError));
  fill(ctx.root, head, wrap, more.box);
  if (refocus) select.focus();

  // Keep the list current while it is on screen: the first page is read
  // again and replaces the rows it covers (ids are newest first); the rows
  // "Load more" added below it stay. Only the table is redrawn. It goes on
  // when no job runs, or none matches the filter: a job started meanwhile
  // (elsewhere, or by another user) must show up. A tab in the background
  // does not ask: the list is read again at once when it is shown.
  let timer = null;
  let skipped = false; // a refresh fell due while the tab was hidden
  const onVisible = () => { if (!document.hidden && skipped && mine()) { skipped = false; refresh(); } };
  document.addEventListener('visibilitychange', onVisible);
  ctx.cleanup(() => { clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); });
  const schedule = () => {
    clearTimeout(timer);
    timer = null;
    if (!refreshPaused()) timer = setTimeout(() => { if (document.hidden) skipped = true; else refresh(); }, 5000);
  };
  pauseBtn.addEventListener('click', () => {
    setRefreshPaused(!refreshPaused());
    showPause();
    if (refreshPaused()) clearTimeout(timer);
    else refresh(); // at once: the list may be stale
  });
  async function refresh() {
    if (!mine() || refreshPaused()) return;
    let fresh;
    try {
      fresh = await get(`/v1/jobs?limit=50${status ? `&status=${enc(status)}` : ''}`);
    } catch (err) {
      if (!mine()) return;
      setText(refreshError, `The list could not be updated: ${err.message}`);
      schedule();
      return;
    }
    if (!mine()) return;
    setText(refreshError, '');
    if (refreshPaused()) return; // paused while the page was read
    const first = items(fresh);
    // A job of an agent made after the list was first read: read the names
    // again (once per such agent; a deleted one keeps its short id).
    const unknown = first.map((j) => j.params && j.params.agent_id).filter((a) => a && !names.has(a) && !askedNames.has(a));
    if (unknown.length) {
      unknown.forEach((a) => askedNames.add(a));
      for (const [k, v] of await agentNames()) names.set(k, v);
      if (!mine() || refreshPaused()) return;
    }
    const last = first.length ? first[first.length - 1].id : null;
    const below = loadedMore && fresh.next_cursor && last ? list.filter((j) => j.id < last) : [];
    if (!loadedMore) { cursor = fresh.next_cursor; more.show(!!cursor); }
    list.splice(0, list.length, ...first, ...below);
    draw(list);
    schedule();
  }
  schedule();
}

// ---- job page -----------------------------------------------------------------

// Why an action on the job failed; it sits in a role=alert region already on
// the page (a second role=alert inside it would be read twice).
const actionErrorNode = (what, err) => h('div', { class: 'alert alert-error' }, h('strong', null, `${what}: `), err.message,
  err.requestId ? h('span', { class: 'muted small' }, ` (request ${err.requestId})`) : null);

// A prompt_improvement result with analysis_cut_off: the failure analysis
// reached its output token limit and only its whole patterns were kept.
export function cutOffNote(tag) {
  return h(tag, { class: tag === 'p' ? 'small analysis-cut-off' : 'alert alert-warn analysis-cut-off' },
    h('strong', null, 'Partial analysis: '),
    'the failure analysis reached its output token limit, so only the failure patterns it had finished were kept (and no summary); others may be missing. A smaller Max contradictions, or a higher REFOLD_ANALYSIS_MAX_TOKENS, asks for a shorter analysis or allows a longer one.');
}

function eventFrom(raw) {
  let data = raw.data;
  if (typeof data === 'string') { try { data = JSON.parse(data); } catch { data = { message: data }; } }
  // The stored list gives created_at beside data; a streamed event carries it in data.
  return { seq: Number(raw.seq ?? raw.id), type: raw.type || raw.event, data: data || {}, at: raw.created_at || (data && data.created_at) || null };
}

// Extra fields of an event worth showing next to its stage.
const PLAIN = new Set(['job_id', 'status', 'stage', 'progress', 'level', 'message', 'type', 'step', 'call', 'attempt', 'created_at',
  'output_tokens', 'tokens', 'tokens_received', 'input_tokens']);
function extras(data) {
  return Object.entries(data || {}).filter(([k, v]) => !PLAIN.has(k) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'));
}
const tokenValue = (d) => {
  if (!d) return null;
  for (const k of ['output_tokens', 'tokens', 'tokens_received']) if (typeof d[k] === 'number') return d[k];
  if (d.usage && typeof d.usage.output_tokens === 'number') return d.usage.output_tokens;
  return null;
};

export async function jobPage(ctx, id) {
  let job;
  try {
    job = await get(`/v1/jobs/${enc(id)}`);
  } catch (err) {
    if (err.status !== 404) throw err;
    setTitle('Job not found');
    fill(ctx.root, h('h1', null, 'Job not found'),
      h('p', null, isMissingEndpoint(err) ? 'The job queue is not available on this server yet.' : `There is no job ${id} in this workspace.`),
      h('p', null, h('a', { href: '#/jobs' }, 'All jobs')));
    return;
  }
  setTitle(typeLabel(job.type), shortId(job.id));
  const agentId = job.params && job.params.agent_id;
  const isImprovement = job.type === 'prompt_improvement';

  // State rebuilt from events. A live job starts blank: the stream replays its
  // stored events from the first, so the stages tick through in order instead of
  // jumping to the snapshot's stage and back.
  const live = !TERMINAL.has(job.status);
  const st = {
    status: job.status, stage: live ? null : job.stage, progress: live ? 0 : job.progress ?? 0, result: job.result, error: job.error,
    attempt: job.attempt, lastSeq: 0, stageData: {}, tokens: new Map(), inputTokens: new Map(), retries: [], terminal: TERMINAL.has(job.status),
  };

  // ---- skeleton
  const statusBadge = h('span', { id: 'job-status' }, badge(st.status));
  const agentLink = h('span', null, agentId ? h('a', { href: agentHref(agentId) }, shortId(agentId)) : '—');
  const attemptEl = h('span', null);
  const elapsedEl = h('span', { class: 'muted' });
  const conn = h('span', { class: 'conn muted small', id: 'job-conn' });
  const actions = h('div', { class: 'actions' });
  // Why Cancel or Retry failed, under the buttons until the next try
  // (role=alert: written when it fails, read out then).
  const actionError = h('div', { class: 'action-error', id: 'job-action-error', role: 'alert' });
  const bar = h('div', { class: 'bar-fill' });
  const barWrap = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': 'Job progress', id: 'job-progress' }, bar);
  const barLabel = h('div', { class: 'bar-label', 'aria-live': 'polite', id: 'job-stage-label' });
  const tokensEl = h('div', { class: 'tokens', id: 'job-tokens' });
  const stageList = h('ol', { class: 'stages', id: 'job-stages' });
  const retryBox = h('div', { id: 'job-retries' });
  // The stage label and the outcome are the live regions: a screen reader
  // hears each change of stage and the end, politely; the log and the token
  // counts are read on demand (they change many times a second while the
  // model writes).
  const outcome = h('div', { id: 'job-outcome', 'aria-live': 'polite' });
  // It scrolls: the keyboard reaches it to scroll it.
  const logList = h('ol', { class: 'log', id: 'job-log', tabindex: 0, 'aria-labelledby': 'log-h' });
  const eventsBody = h('tbody');
  const eventsCount = h('span', { class: 'muted small' });
  const transcript = h('div', { id: 'job-transcript' }, h('p', { class: 'muted small' }, 'The transcript appears when the job ends.'));

  const stageItems = new Map();
  for (const [stage, p, label] of (isImprovement ? STAGES : [])) {
    const detail = h('span', { class: 'stage-detail' });
    const said = h('span', { class: 'sr-only' }); // the icon's state, in words
    const li = h('li', { class: 'stage', 'data-stage': stage },
      h('span', { class: 'stage-icon', 'aria-hidden': 'true' }),
      h('span', { class: 'stage-name' }, label, said),
      h('span', { class: 'stage-pct muted small' }, `${p}%`),
      detail);
    stageItems.set(stage, { li, detail, said });
    stageList.append(li);
  }

  fill(ctx.root,
    h('div', { class: 'page-head' },
      h('div', null,
        h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/jobs' }, 'Jobs'), ' / '),
        h('h1', null, typeLabel(job.type), ' ', statusBadge),
        h('p', { class: 'meta-line muted' }, agentId ? ['agent ', agentLink, ' · '] : null, h('span', { class: 'mono' }, job.id), ' · created ', time(job.created_at), ' · ', attemptEl, ' ', elapsedEl, ' ', conn)),
      h('div', { class: 'head-side' }, actions, actionError)),
    h('section', { class: 'card live', 'aria-labelledby': 'live-h' },
      h('h2', { id: 'live-h', class: 'sr-only' }, 'Progress'),
      h('div', { class: 'progress-row' }, barWrap, barLabel),
      tokensEl, outcome, retryBox,
      isImprovement ? stageList : null),
    h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'log-h' }, h('h2', { id: 'log-h' }, 'Log'), logList),
      h('section', { class: 'card', 'aria-labelledby': 'params-h' }, h('h2', { id: 'params-h' }, 'Parameters'), jsonBlock(job.params || {}))),
    h('section', { class: 'card', 'aria-labelledby': 'events-h' },
      h('details', { id: 'job-events' },
        h('summary', null, h('h2', { id: 'events-h', class: 'inline' }, 'Events'), ' ', eventsCount),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table events' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, '#'), h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Data'))),
          eventsBody)))),
    h('section', { class: 'card', 'aria-labelledby': 'llm-h' }, h('h2', { id: 'llm-h' }, 'LLM transcript'), transcript));

  if (agentId) get(`/v1/agents/${enc(agentId)}`).then((a) => { agentLink.firstChild.textContent = a.name; setTitle(typeLabel(job.type), a.name); }).catch(() => {});

  // ---- rendering from state
  let eventCount = 0;
  function draw() {
    fill(statusBadge, badge(st.status));
    attemptEl.textContent = `attempt ${st.attempt || 0} of ${job.max_attempts ?? '?'}`;
    const p = Math.max(0, Math.min(100, Number(st.progress) || 0));
    // A job that has reported no stage has no percentage: the bar is
    // indeterminate (no aria-valuenow) and the label says what is known.
    const known = !!st.stage || p > 0;
    bar.style.width = known ? `${p}%` : '';
    if (known) barWrap.setAttribute('aria-valuenow', String(p)); else barWrap.removeAttribute('aria-valuenow');
    barWrap.className = `bar bar-${st.status}${known ? '' : ' bar-indeterminate'}`;
    logList.classList.toggle('log-done', st.terminal);
    // Written only when it changes: every write of a live region is read
    // out, and progress events arrive every 500 ms while the model writes.
    setText(barLabel, known ? `${p}%${st.stage ? ' · ' + st.stage.replace(/_/g, ' ') : ''}`
      : st.status === 'queued' ? 'waiting for a worker' : st.status);
    const cur = STAGE_INDEX.has(st.stage) ? STAGE_INDEX.get(st.stage) : -1;
    for (const [stage, { li, detail, said }] of stageItems) {
      const i = STAGE_INDEX.get(stage);
      let state = 'pending';
      if (st.status === 'completed') state = 'done';
      else if (i < cur) state = 'done';
      else if (i === cur) {
        state = { failed: 'failed', cancelled: 'cancelled', running: 'current', queued: 'waiting' }[st.status] || 'done';
      }
      li.className = `stage stage-${state}`;
      setText(said, STATE_WORDS[state]);
      if (state === 'current') li.setAttribute('aria-current', 'step'); else li.removeAttribute('aria-current');
      const d = st.stageData[stage];
      const bits = [];
      if (d) {
        if (d.contradictions_found !== undefined) {
          bits.push(`${count(d.contradictions_found, 'contradiction')}${d.missed_failures !== undefined ? ` (${count(d.missed_failures, 'missed failure')}, ${count(d.false_alarms, 'false alarm')})` : ''}`);
        }
        const tok = tokenValue(d);
        if (tok !== null) bits.push(`${num(tok)} tokens received${typeof d.input_tokens === 'number' ? ` (${num(d.input_tokens)} sent)` : ''}`);
        for (const [k, v] of extras(d)) {
          if (['contradictions_found', 'missed_failures', 'false_alarms'].includes(k)) continue;
          bits.push(`${k.replace(/_/g, ' ')}: ${typeof v === 'number' ? num(v) : v}`);
        }
      }
      detail.textContent = bits.join(' · ');
    }
    // Tokens: the newest count per LLM call (keyed by step, else stage).
    const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
    const out = sum(st.tokens), inp = sum(st.inputTokens);
    const usage = st.result && st.result.usage;
    if (usage) {
      fill(tokensEl, h('span', { class: 'tok' }, h('strong', null, num(usage.output_tokens)), ' output tokens'),
        h('span', { class: 'tok' }, h('strong', null, num(usage.input_tokens)), ' input tokens'),
        h('span', { class: 'tok' }, h('strong', null, num(usage.llm_calls)), ' LLM calls'));
    } else if (out || inp) {
      const parts = [...st.tokens].map(([k, v]) => `${String(k).replace(/_/g, ' ')} ${num(v)}`);
      fill(tokensEl, h('span', { class: 'tok' }, h('strong', null, num(out)), ' tokens received'),
        parts.length > 1 ? h('span', { class: 'tok muted' }, parts.join(' · ')) : null,
        inp ? h('span', { class: 'tok' }, h('strong', null, num(inp)), ' input tokens') : null);
    } else fill(tokensEl);
    fill(retryBox, ...st.retries.map((r) => h('div', { class: 'alert alert-warn retry' },
      h('strong', null, `Attempt ${r.attempt ?? '?'} failed`), r.error ? `: ${r.error.message || r.error.code}` : '',
      r.run_at
        ? (st.status === 'queued' && r === st.retries[st.retries.length - 1]
          ? [' · next attempt ', time(r.run_at), ` (${new Date(r.run_at).toLocaleTimeString()})`]
          : ` · retried at ${new Date(r.run_at).toLocaleTimeString()}`)
        : '')));
    drawOutcome();
    drawActions();
  }

  // Filled again only when what it says changes: it is a live region.
  let outcomeKey = null;
  function drawOutcome() {
    const r0 = st.result || {}, e0 = st.error || {};
    const key = JSON.stringify([st.status, r0.new_version_number, r0.changes_summary, r0.analysis_cut_off,
      Array.isArray(r0.failure_patterns) ? r0.failure_patterns.length : 0, e0.code, e0.message]);
    if (key === outcomeKey) return;
    outcomeKey = key;
    if (st.status === 'completed') {
      const r = st.result || {};
      if (r.new_version_number) {
        fill(outcome, h('div', { class: 'alert alert-ok outcome' },
          h('div', null, h('strong', null, `Candidate v${r.new_version_number} is ready for review.`),
            r.changes_summary ? h('p', { class: 'small' }, r.changes_summary) : null,
            Array.isArray(r.failure_patterns) && r.failure_patterns.length
              ? h('p', { class: 'small muted' }, `${count(r.failure_patterns.length, 'failure pattern')} addressed.`) : null,
            r.analysis_cut_off === true ? cutOffNote('p') : null),
          h('a', { class: 'btn btn-primary', id: 'review-candidate', href: versionHref(agentId, r.new_version_number) }, `Review v${r.new_version_number}`)));
      } else {
        fill(outcome, h('div', { class: 'alert alert-info outcome' },
          h('strong', null, 'No new version. '), r.changes_summary || 'The job finished without a candidate.'));
      }
    } else if (st.status === 'failed') {
      const e = st.error || {};
      fill(outcome, h('div', { class: 'alert alert-error', id: 'job-error' },
        h('strong', null, 'The job failed'), e.code ? h('span', { class: 'mono small' }, ` (${e.code})`) : null, h('p', null, e.message || 'No error message.')));
    } else if (st.status === 'cancelled') {
      fill(outcome, h('div', { class: 'alert alert-info outcome' }, h('strong', null, 'Cancelled. '), 'Nothing was written.'));
    } else fill(outcome);
  }

  // The buttons are rebuilt only when the set changes, not on every event:
  // a rebuilt button would take the keyboard focus with it. When they do
  // change under the focus (Cancel becomes Retry), the focus moves to the
  // first new one.
  let actionsKey = null;
  function drawActions() {
    const key = st.status === 'queued' || st.status === 'running' ? 'live'
      : st.status === 'failed' || st.status === 'cancelled' ? 'retry' : 'done';
    if (key === actionsKey) return;
    actionsKey = key;
    const hadFocus = actions.contains(document.activeElement);
    const btns = [];
    if (key === 'live') {
      let busy = false;
      btns.push(h('button', { type: 'button', class: 'btn btn-danger-outline', id: 'cancel-job', onclick: async (ev) => {
        // aria-disabled rather than disabled: a disabled button drops the focus.
        const b = ev.currentTarget;
        if (busy) return;
        busy = true;
        b.setAttribute('aria-disabled', 'true');
        fill(actionError);
        try { await post(`/v1/jobs/${enc(id)}/cancel`); toast('Cancellation requested.'); } catch (err) {
          fill(actionError, actionErrorNode('Could not cancel the job', err));
          busy = false;
          b.removeAttribute('aria-disabled');
        }
      } }, 'Cancel job'));
    }
    if (key === 'retry') {
      let busy = false;
      btns.push(h('button', { type: 'button', class: 'btn btn-primary', id: 'retry-job', onclick: async (ev) => {
        // aria-disabled, as Cancel: a failed retry leaves the focus on the button.
        const b = ev.currentTarget;
        if (busy) return;
        busy = true;
        b.setAttribute('aria-disabled', 'true');
        fill(actionError);
        try {
          await post(`/v1/jobs/${enc(id)}/retry`);
        } catch (err) {
          fill(actionError, actionErrorNode('Could not retry the job', err));
          busy = false;
          b.removeAttribute('aria-disabled');
          return;
        }
        toast('Job queued again.');
        if (!ctx.alive()) return;
        try {
          await jobPage(ctx, id);
          document.getElementById('cancel-job')?.focus();
        } catch (err) {
          // The retry went through: say so, and leave the button busy (a
          // second retry of a queued job would only be refused).
          if (ctx.alive()) fill(actionError, actionErrorNode('The job was queued again, but this page could not follow it (reload to try again)', err));
        }
      } }, 'Retry job'));
    }
    if (agentId) btns.push(h('a', { class: 'btn', href: agentHref(agentId) }, 'Agent'));
    fill(actions, ...btns);
    if (hadFocus && actions.firstElementChild) actions.firstElementChild.focus();
  }

  function apply(ev) {
    if (ev.seq && ev.seq <= st.lastSeq) return; // replayed after a reconnect
    if (ev.seq) st.lastSeq = ev.seq;
    eventCount++;
    eventsCount.textContent = `(${eventCount})`;
    eventsBody.append(h('tr', null, h('td', { class: 'num' }, ev.seq || ''), h('td', null, clock(ev.at)), h('td', null, badge(ev.type, 'event')),
      h('td', null, h('code', { class: 'small wrap' }, JSON.stringify(ev.data)))));
    const d = ev.data || {};
    const tok = tokenValue(d);
    const key = d.step || d.call || st.stage || 'llm';
    if (tok !== null) st.tokens.set(key, tok);
    if (typeof d.input_tokens === 'number') st.inputTokens.set(key, d.input_tokens);
    switch (ev.type) {
      case 'progress': {
        if (d.stage) {
          const prev = STAGE_INDEX.get(st.stage) ?? -1;
          const next = STAGE_INDEX.get(d.stage) ?? -1;
          if (next < prev) { st.stageData = {}; } // a new attempt starts over
          st.stage = d.stage;
          st.stageData[d.stage] = { ...(st.stageData[d.stage] || {}), ...d };
        }
        if (typeof d.progress === 'number') st.progress = d.progress;
        if (typeof d.attempt === 'number') st.attempt = d.attempt;
        else if (st.awaitingAttempt) st.attempt = (st.attempt || 0) + 1;
        else if (!st.attempt) st.attempt = 1;
        st.awaitingAttempt = false;
        st.status = d.status && !TERMINAL.has(d.status) ? d.status : 'running';
        st.error = null;
        break;
      }
      case 'log':
        logList.append(h('li', { class: `log-${d.level || 'info'}` },
          clock(ev.at, 'log-time muted'),
          h('span', { class: 'log-level' }, d.level || 'info'), h('span', { class: 'log-msg' }, d.message || JSON.stringify(d))));
        logList.scrollTop = logList.scrollHeight; // follow the tail inside the box, not the page
        break;
      case 'retry':
        st.retries.push(d);
        st.status = 'queued';
        if (typeof d.attempt === 'number') st.attempt = d.attempt;
        st.awaitingAttempt = true;
        break;
      case 'completed':
        st.status = 'completed'; st.progress = 100; st.stage = 'completed'; st.result = d.result || st.result; st.error = null;
        break;
      case 'failed':
        st.status = 'failed'; st.error = d.error || st.error;
        break;
      case 'cancelled':
        st.status = 'cancelled';
        break;
      default:
        break;
    }
    st.terminal = TERMINAL.has(st.status);
    draw();
  }

  async function loadTranscript() {
    try {
      const calls = await getAll(`/v1/jobs/${enc(id)}/llm-calls?limit=500`, 100000); // every page: each holds 8 MiB at most
      const runs = calls.some((c) => c.run > 1); // retried through the API: say each call's run
      fill(transcript, calls.length ? h('ol', { class: 'calls' }, calls.map((c, i) => callNode(c, i, runs))) : h('p', { class: 'muted' }, 'This job made no LLM calls.'));
    } catch (err) {
      fill(transcript, err.status === 404 ? h('p', { class: 'muted' }, 'No transcript is available.') : errorBox(err, 'Could not load the transcript'));
    }
  }

  async function refreshJob() {
    try {
      job = await get(`/v1/jobs/${enc(id)}`);
      st.attempt = job.attempt;
      return job;
    } catch { return null; }
  }

  // ---- elapsed-time ticker while the job is not finished
  const t0 = Date.parse(job.started_at || job.created_at);
  const tick = () => {
    const end = st.terminal ? Date.parse(job.finished_at || '') || Date.now() : Date.now();
    const s = Math.max(0, Math.round((end - t0) / 1000));
    elapsedEl.textContent = Number.isNaN(s) ? '' : `· ${s >= 60 ? `${Math.floor(s / 60)} min ` : ''}${s % 60} s`;
  };
  tick();
  const ticker = setInterval(() => { if (!st.terminal) tick(); }, 1000);
  ctx.cleanup(() => clearInterval(ticker));

  draw();

  if (st.terminal) {
    // Finished: read the stored events once, no stream.
    try {
      // Every page: streaming alone stores a progress event every 500 ms of an LLM reply.
      const evs = await getAll(`/v1/jobs/${enc(id)}/events?limit=500`, 1000000);
      for (const raw of evs) apply(eventFrom(raw));
      // The job row is the truth for the final state.
      st.status = job.status; st.result = job.result || st.result; st.error = job.error || st.error;
      if (job.status === 'completed') { st.progress = 100; st.stage = 'completed'; }
      st.terminal = true;
      draw();
    } catch (err) {
      logList.append(h('li', null, `Could not load the events: ${err.message}`));
    }
    tick();
    loadTranscript();
    return;
  }

  // Running or queued: follow the stream.
  let es = null;
  let retryTimer = null;
  const close = () => { if (es) { es.close(); es = null; } clearTimeout(retryTimer); };
  ctx.cleanup(close);
  // The stream's state beside the job's id; only an open stream is shown as live.
  const connState = (text) => { conn.textContent = text; conn.className = 'conn muted small'; };
  function connect() {
    if (!ctx.alive()) return;
    const url = `/v1/jobs/${enc(id)}/events${st.lastSeq ? `?last_event_id=${st.lastSeq}` : ''}`;
    es = new EventSource(url);
    connState('connecting…');
    // The dot is decoration: a screen reader says "live", not "black circle live".
    es.onopen = () => { fill(conn, h('span', { 'aria-hidden': 'true' }, '●'), ' live'); conn.className = 'conn live small'; };
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, async (e) => {
        apply(eventFrom({ id: e.lastEventId, type, data: e.data }));
        if (TERMINAL.has(type)) {
          close();
          // A retried job carries an old terminal event in its history: only
          // stop following when the job really is finished.
          const fresh = await refreshJob();
          if (fresh && !TERMINAL.has(fresh.status)) { st.status = fresh.status; st.terminal = false; draw(); connect(); return; }
          if (fresh) { st.result = fresh.result || st.result; st.error = fresh.error || st.error; job = fresh; }
          conn.textContent = '';
          tick();
          draw();
          loadTranscript();
        }
      });
    }
    es.onerror = async () => {
      if (!es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (e.g. the session ended): find out why.
        close();
        connState('disconnected');
        const fresh = await refreshJob();
        if (!ctx.alive()) return;
        // Finished meanwhile: read again, failing like any page load.
        if (fresh && TERMINAL.has(fresh.status)) { ctx.reload(); return; }
        retryTimer = setTimeout(connect, 3000);
      } else {
        connState('reconnecting…');
      }
    };
  }
  connect();
}

// One LLM call of the transcript: request messages and the response.
// runs: the job was retried through the API, so the call says which run it was made in.
function callNode(c, i, runs) {
  const req = c.request || {};
  const msgs = [];
  if (req.system) msgs.push(['system', typeof req.system === 'string' ? req.system : JSON.stringify(req.system, null, 2)]);
  for (const m of Array.isArray(req.messages) ? req.messages : []) {
    const content = typeof m.content === 'string' ? m.content
      : Array.isArray(m.content) ? m.content.map((b) => (b && b.text !== undefined ? b.text : JSON.stringify(b))).join('\n') : JSON.stringify(m.content);
    msgs.push([m.role || 'message', content]);
  }
  const summary = [
    `#${i + 1}`, c.step, c.model, runs && c.run !== undefined ? `run ${c.run}` : null,
    c.attempt !== undefined ? `attempt ${c.attempt}` : null,
    c.input_tokens !== null && c.input_tokens !== undefined ? `${num(c.input_tokens)} in / ${num(c.output_tokens)} out` : null,
    c.latency_ms !== null && c.latency_ms !== undefined ? `${(c.latency_ms / 1000).toFixed(1)} s` : null,
    c.stop_reason, c.error ? 'error' : null,
  ].filter(Boolean).join(' · ');
  return h('li', null, h('details', { class: 'call' },
    h('summary', null, summary),
    h('div', { class: 'call-body' },
      c.provider ? h('p', { class: 'muted small' }, `provider ${c.provider}${c.http_status ? ` · HTTP ${c.http_status}` : ''}${c.provider_request_id ? ` · request ${c.provider_request_id}` : ''}`) : null,
      msgs.length ? msgs.map(([role, text]) => h('div', { class: 'msg' }, h('div', { class: 'msg-role' }, role), h('pre', { class: 'text', tabindex: 0 }, text)))
        : jsonBlock(req),
      h('div', { class: 'msg msg-response' }, h('div', { class: 'msg-role' }, 'response'),
        // An empty reply (the model wrote nothing) is not a missing one (the call failed first).
        c.response_text === null || c.response_text === undefined ? h('p', { class: 'muted' }, 'No response text.')
          : c.response_text === '' ? h('p', { class: 'muted' }, 'Empty: the model answered with no text.')
            : h('pre', { class: 'text', tabindex: 0 }, c.response_text)),
      c.error ? errorBox({ message: typeof c.error === 'string' ? c.error : JSON.stringify(c.error) }) : null)));
}
