// Agent page: stats, the active prompt, the versions timeline, recent
// improvements and the contradictions (rows open the trace).
import { get, getAll, items, enc, isMissingEndpoint } from './api.js';
import { h, fill, badge, time, pct, num, count, excerpt, table, statCard, empty, errorBox, setTitle, uid, loadMore, focusIfLost } from './ui.js';
import { setQuery, versionHref, jobHref } from './nav.js';
import { promoteDialog, improveDialog, newVersionDialog, promptBlock } from './actions.js';
import { liveStage } from './jobs.js';
import { openTrace } from './trace.js';

const KINDS = [
  ['', 'All'],
  ['missed_failure', 'Missed failures'],
  ['false_alarm', 'False alarms'],
];

// focusVersion: after a rollback from the timeline, the version whose link
// takes the focus its Roll back button had.
export async function agentPage(ctx, id, { focusVersion } = {}) {
  const [agent, versions] = await Promise.all([
    get(`/v1/agents/${enc(id)}`),
    getAll(`/v1/agents/${enc(id)}/versions?limit=500`),
  ]);
  setTitle(agent.name);
  const s = agent.stats || {};
  const reload = (opts) => ctx.reload(opts); // a failure says why in the page, as the router does
  const active = agent.active_version;
  const candidates = versions.filter((v) => v.status === 'candidate');

  const head = h('div', { class: 'page-head' },
    h('div', null,
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/agents' }, 'Agents'), ' / '),
      h('h1', null, agent.name, ' ', badge(agent.status)),
      agent.description ? h('p', { class: 'muted' }, agent.description) : null),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'btn', id: 'new-version', disabled: agent.status === 'archived', onclick: () => newVersionDialog(agent) }, 'New version'),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'improve', disabled: !active || agent.status === 'archived',
        title: active ? null : 'The agent has no active version to improve', onclick: () => improveDialog(agent) }, 'Improve prompt')));

  const stats = h('section', { class: 'stats', 'aria-label': 'Statistics' },
    statCard('Traces', num(s.traces)),
    statCard('Rated', num(s.rated), `${num(s.positive)} positive · ${num(s.negative)} negative · ${num(s.neutral)} neutral`),
    statCard('Eval results', num(s.executions), count(s.evals, 'eval')),
    statCard('Contradictions', num(s.contradictions), `${num(s.missed_failures)} missed · ${num(s.false_alarms)} false alarms`, s.contradictions ? 'warn' : null),
    statCard('Contradiction rate', pct(s.contradiction_rate), s.eval_accuracy === null || s.eval_accuracy === undefined ? 'no rated eval results' : `eval accuracy ${pct(s.eval_accuracy)}`));

  const pending = candidates.length
    ? h('div', { class: 'alert alert-info' },
      h('strong', null, candidates.length === 1 ? '1 candidate waits for review: ' : `${candidates.length} candidates wait for review: `),
      candidates.map((v, i) => [i ? ', ' : '', h('a', { href: versionHref(agent.id, v.version) }, `review v${v.version}`)]))
    : null;

  const promptCard = h('section', { class: 'card', 'aria-labelledby': 'active-prompt-h' },
    h('div', { class: 'card-head' },
      h('h2', { id: 'active-prompt-h' }, 'Active prompt', active ? h('span', { class: 'muted' }, ` · v${active.version}`) : null),
      active ? h('a', { href: versionHref(agent.id, active.version), class: 'small' }, 'Version details') : null),
    active
      ? [promptBlock(active.prompt_template, `Active prompt, version ${active.version}`),
        active.variables && active.variables.length
          ? h('p', { class: 'vars' }, h('span', { class: 'muted small' }, 'Variables: '), active.variables.map((n) => h('code', { class: 'var' }, `{{${n}}}`)))
          : h('p', { class: 'muted small' }, 'No variables.')]
      : empty('No active version. Create a version and promote it.'));

  const contraCard = h('section', { class: 'card', 'aria-labelledby': 'contra-h', id: 'contradictions' });
  const timelineCard = h('section', { class: 'card', 'aria-labelledby': 'versions-h' },
    h('div', { class: 'card-head' }, h('h2', { id: 'versions-h' }, 'Versions'), h('span', { class: 'muted small' }, `${versions.length}`)),
    timeline(agent, versions, reload));
  const jobsCard = h('section', { class: 'card', 'aria-labelledby': 'improvements-h' },
    h('div', { class: 'card-head' }, h('h2', { id: 'improvements-h' }, 'Improvements'), h('a', { href: '#/jobs', class: 'small' }, 'All jobs')),
    h('p', { class: 'muted small' }, 'Loading…'));

  fill(ctx.root, head, pending, stats,
    h('div', { class: 'split' },
      h('div', { class: 'split-main' }, promptCard, contraCard),
      h('div', { class: 'split-side' }, timelineCard, jobsCard)));

  renderContradictions(ctx, agent, contraCard, ctx.query.get('kind') || '');
  recentJobs(agent, jobsCard);
  if (focusVersion) focusIfLost(timelineCard.querySelector(`li[data-version="${focusVersion}"] a`));
}

function timeline(agent, versions, reload) {
  if (!versions.length) return empty('No versions yet.');
  const byId = new Map(versions.map((v) => [v.id, v]));
  return h('ol', { class: 'timeline' }, versions.map((v) => {
    const parent = v.parent_version_id ? byId.get(v.parent_version_id) : null;
    const actions = [];
    if (v.status === 'candidate') actions.push(h('a', { class: 'btn btn-small btn-primary', href: versionHref(agent.id, v.version) }, `Review v${v.version}`));
    else actions.push(h('a', { class: 'btn btn-small', href: versionHref(agent.id, v.version) }, 'View'));
    if (v.status === 'archived') {
      actions.push(h('button', { type: 'button', class: 'btn btn-small', 'data-rollback': v.version,
        onclick: () => promoteDialog(agent, v, { after: () => reload({ focusVersion: v.version }) }) }, `Roll back to v${v.version}`));
    }
    return h('li', { class: `tl-item tl-${v.status}`, 'data-version': v.version },
      h('div', { class: 'tl-dot', 'aria-hidden': 'true' }),
      h('div', { class: 'tl-body' },
        h('div', { class: 'tl-title' }, h('strong', null, `v${v.version}`), ' ', badge(v.status), ' ', h('span', { class: 'chip' }, v.source.replace('_', ' '))),
        h('dl', { class: 'tl-meta' },
          h('dt', null, 'Parent'), h('dd', null, parent ? `v${parent.version}` : v.parent_version_id ? '?' : '—'),
          h('dt', null, 'Created'), h('dd', null, time(v.created_at)),
          h('dt', null, 'Decided'), h('dd', null, time(v.decided_at))),
        v.review_note ? h('p', { class: 'tl-note' }, '“', v.review_note, '”') : null,
        v.change_summary ? h('p', { class: 'tl-summary muted small', title: v.change_summary.length > 160 ? v.change_summary : null }, excerpt(v.change_summary, 160)) : null,
        h('div', { class: 'tl-actions' }, actions)));
  }));
}

async function renderContradictions(ctx, agent, card, kind) {
  const s = agent.stats || {};
  const counts = { '': s.contradictions, missed_failure: s.missed_failures, false_alarm: s.false_alarms };
  const name = uid('kind');
  const filter = h('fieldset', { class: 'segmented', id: 'kind-filter' },
    h('legend', { class: 'sr-only' }, 'Show contradictions of kind'),
    KINDS.map(([value, label]) => {
      const id = uid('kind');
      const input = h('input', { type: 'radio', name, id, value, checked: value === kind });
      input.addEventListener('change', () => {
        setQuery({ kind: value || null });
        renderContradictions(ctx, agent, card, value);
      });
      return [input, h('label', { for: id }, label, counts[value] !== undefined ? h('span', { class: 'count' }, num(counts[value])) : null)];
    }));
  // The previous rows stay on screen until the new ones arrive; only the
  // newest request may fill the card (fast clicks on the filter).
  const prev = card.querySelector('.contra-body');
  const body = prev || h('div', { class: 'contra-body' }, h('p', { class: 'muted small' }, 'Loading…'));
  body.setAttribute('aria-busy', 'true');
  const ticket = (card.ticket = (card.ticket || 0) + 1);
  const hadFocus = card.contains(document.activeElement) ? document.activeElement.value : null;
  fill(card,
    h('div', { class: 'card-head' }, h('h2', { id: 'contra-h' }, 'Contradictions')),
    h('p', { class: 'muted small' }, 'Traces where the human rating and the eval disagree, newest rating first. Open a row to see the trace.'),
    filter, body);
  if (hadFocus !== null) {
    const again = filter.querySelector(`input[value="${hadFocus}"]`);
    if (again) again.focus();
  }
  // One page of 200 (the job's largest read too); "Load more" follows next_cursor.
  const url = (cursor) => `/v1/agents/${enc(agent.id)}/contradictions?limit=200${kind ? `&kind=${kind}` : ''}${cursor ? `&cursor=${enc(cursor)}` : ''}`;
  let page;
  try {
    page = await get(url(null));
  } catch (err) {
    if (card.ticket !== ticket) return;
    body.removeAttribute('aria-busy');
    fill(body, errorBox(err, 'Could not load contradictions'));
    return;
  }
  if (card.ticket !== ticket) return;
  body.removeAttribute('aria-busy');
  body.dataset.kind = kind || 'all';
  const rows = items(page);
  if (!rows.length) {
    const judged = s.contradiction_rate !== null && s.contradiction_rate !== undefined; // some rated trace has an eval result
    fill(body, empty(kind ? 'No contradictions of this kind.'
      : judged ? 'No contradictions: the evals agree with every human rating.'
        : 'No contradictions yet: no trace has both a human rating (positive or negative) and an eval result.'));
    return;
  }
  const cols = [
    { label: 'Kind', cell: (r) => badge(r.kind) },
    { label: 'Human', class: 'col-verdict', cell: (r) => h('div', null, badge(r.human_rating, 'rating'), r.note ? h('div', { class: 'small clamp', title: r.note }, r.note) : null) },
    { label: 'Eval', class: 'col-verdict', cell: (r) => h('div', null, badge(r.predicted_result ? 'pass' : 'fail', 'rating'), ' ', h('span', { class: 'small muted' }, r.eval_name),
      r.predicted_reason ? h('div', { class: 'small clamp', title: r.predicted_reason }, r.predicted_reason) : null) },
    { label: 'Input', class: 'col-wide', cell: (r) => h('div', null,
      // Named by the text it shows (WCAG 2.5.3: a speech user says what they
      // see), then what it does.
      h('button', { type: 'button', class: 'link trace-open', onclick: (ev) => { ev.stopPropagation(); openTrace(r.trace_id, r); } },
        excerpt(r.input, 120) || r.trace_id, h('span', { class: 'sr-only' }, ' (open the trace)'))) },
    { label: 'Rated', cell: (r) => time(r.feedback_at) },
  ];
  const opts = {
    caption: 'Contradictions',
    rowAttrs: (r) => ({ class: 'clickable', 'data-trace-id': r.trace_id, 'data-kind': r.kind, onclick: () => openTrace(r.trace_id, r) }),
  };
  const tbl = table(cols, rows, opts);
  const tbody = tbl.querySelector('tbody');
  let cursor = page.next_cursor;
  // The next page's rows are appended to this table; a filter change (a newer
  // ticket) in the meantime drops them.
  const more = loadMore(async () => {
    const next = await get(url(cursor));
    if (card.ticket !== ticket) return null;
    const added = [...table(cols, items(next), opts).querySelector('tbody').children];
    tbody.append(...added);
    cursor = next.next_cursor;
    return { added: added.length, first: added.length ? added[0].querySelector('button.trace-open') : null, done: !cursor };
  }, { hidden: !cursor });
  fill(body, tbl, more.box);
}

async function recentJobs(agent, card) {
  const list = card.lastElementChild;
  try {
    const jobs = items(await get(`/v1/jobs?agent_id=${enc(agent.id)}&type=prompt_improvement&limit=5`));
    if (!jobs.length) {
      list.replaceWith(h('p', { class: 'muted small' }, 'No improvement has run yet. “Improve prompt” starts one.'));
      return;
    }
    list.replaceWith(h('ul', { class: 'job-list' }, jobs.map((j) => h('li', null,
      h('a', { href: jobHref(j.id) }, badge(j.status)), ' ',
      j.status === 'running' && liveStage(j) ? h('span', { class: 'small' }, liveStage(j)) : null,
      j.result && j.result.new_version_number ? h('a', { href: versionHref(agent.id, j.result.new_version_number), class: 'small' }, `→ v${j.result.new_version_number}`) : null,
      ' ', h('span', { class: 'muted small' }, time(j.created_at))))));
  } catch (err) {
    list.replaceWith(isMissingEndpoint(err)
      ? h('p', { class: 'muted small' }, 'Jobs are not available on this server yet.')
      : errorBox(err, 'Could not load jobs'));
  }
}
