// Version page and candidate review: the diff against the parent (side by
// side or unified, word-level highlights), the model's reasoning, changes and
// failure patterns, the best practices it was given, and Promote / Reject
// (or Roll back for an archived version).
import { get, getAll, items, enc } from './api.js';
import { h, fill, badge, time, num, count, uid, errorBox, setTitle, focusIfLost } from './ui.js';
import { setQuery, agentHref, versionHref, jobHref } from './nav.js';
import { promoteDialog, rejectDialog, promptBlock } from './actions.js';
import { diffPrompts } from './diff.js';
import { cutOffNote } from './jobs.js';
import { sideBySide, unified } from './diffview.js';

// refocus: rendered again after a rollback, whose button is gone: the
// heading takes the focus.
export async function versionPage(ctx, agentId, n, { refocus } = {}) {
  const [agent, version, versions] = await Promise.all([
    get(`/v1/agents/${enc(agentId)}`),
    get(`/v1/agents/${enc(agentId)}/versions/${n}`),
    getAll(`/v1/agents/${enc(agentId)}/versions?limit=500`),
  ]);
  const byId = new Map(versions.map((v) => [v.id, v]));
  const parent = version.parent_version_id ? byId.get(version.parent_version_id) : null;
  setTitle(`v${version.version}`, agent.name);
  const reload = () => ctx.reload({ refocus: true }); // a failure says why in the page, as the router does

  const actions = h('div', { class: 'actions' });
  if (version.status === 'candidate') {
    actions.append(
      h('button', { type: 'button', class: 'btn btn-danger-outline', id: 'reject', onclick: () => rejectDialog(agent, version) }, 'Reject…'),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'promote', onclick: () => promoteDialog(agent, version) }, `Promote v${version.version}…`));
  } else if (version.status === 'archived') {
    actions.append(h('button', { type: 'button', class: 'btn', id: 'rollback', onclick: () => promoteDialog(agent, version, { after: reload }) }, `Roll back to v${version.version}…`));
  }

  const head = h('div', { class: 'page-head' },
    h('div', null,
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/agents' }, 'Agents'), ' / ', h('a', { href: agentHref(agent.id) }, agent.name), ' / '),
      h('h1', null, `Version ${version.version}`, ' ', badge(version.status), ' ', h('span', { class: 'chip' }, version.source.replace('_', ' '))),
      h('p', { class: 'meta-line muted' },
        parent ? ['from ', h('a', { href: versionHref(agent.id, parent.version) }, `v${parent.version}`), ' · '] : null,
        'created ', time(version.created_at),
        version.decided_at ? [' · decided ', time(version.decided_at)] : null,
        version.created_by_job_id ? [' · by job ', h('a', { href: jobHref(version.created_by_job_id), class: 'mono' }, version.created_by_job_id)] : null)),
    actions);

  const note = version.review_note
    ? h('div', { class: `alert ${version.status === 'rejected' ? 'alert-error' : 'alert-info'}` },
      h('strong', null, version.status === 'rejected' ? 'Rejected: ' : 'Review note: '), version.review_note)
    : null;
  const candidateHint = version.status === 'candidate'
    ? h('div', { class: 'alert alert-info' }, agent.active_version
      ? `This is a candidate. Nothing changes for ${agent.name} until you promote it; v${agent.active_version.version} stays active meanwhile.`
      : `This is a candidate. ${agent.name} has no active version: promoting this one makes it the first.`)
    : null;

  const fromJob = version.source === 'ai_improved' || version.change_summary || (version.changes && version.changes.length) || (version.failure_patterns && version.failure_patterns.length);
  const evidence = fromJob
    ? h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'why-h' },
        h('h2', { id: 'why-h' }, 'Reasoning'),
        version.change_summary ? h('p', { class: 'prose', id: 'reasoning' }, version.change_summary) : h('p', { class: 'muted' }, 'No reasoning recorded.'),
        h('h3', null, 'Changes'),
        listOrNone(version.changes, 'changes', 'No list of changes recorded.')),
      h('section', { class: 'card', 'aria-labelledby': 'fp-h', id: 'fp-card' },
        h('h2', { id: 'fp-h' }, 'Failure patterns'),
        listOrNone(version.failure_patterns, 'failure-patterns', 'None recorded.')))
    : h('p', { class: 'muted small' }, `v${version.version} was written ${version.source === 'manual' ? 'by hand' : 'outside an improvement job'}: there is no reasoning, list of changes or failure analysis to show.`);
  const practices = version.created_by_job_id
    ? h('section', { class: 'card', 'aria-labelledby': 'bp-h' },
      h('h2', { id: 'bp-h' }, 'Best practices considered'),
      h('p', { class: 'muted small' }, 'Loading…'))
    : null;

  const diffCard = h('section', { class: 'card diff-card', 'aria-labelledby': 'diff-h' });

  fill(ctx.root, head, note, candidateHint, evidence, diffCard, practices);

  if (refocus) focusIfLost(ctx.root.querySelector('h1'));
  renderDiff(ctx, agent, version, versions, diffCard);
  if (version.created_by_job_id) loadJobEvidence(version.created_by_job_id, practices, ctx.root.querySelector('#fp-card'));
}

function listOrNone(list, cls, none) {
  if (!Array.isArray(list) || !list.length) return h('p', { class: 'muted' }, none);
  return h('ul', { class: `bullets ${cls}` }, list.map((x) => h('li', null, typeof x === 'string' ? x : JSON.stringify(x))));
}

async function renderDiff(ctx, agent, version, versions, card) {
  const baseParam = ctx.query.get('base');
  const narrow = window.matchMedia('(max-width: 700px)').matches;
  let mode = ctx.query.get('view') || (narrow ? 'unified' : 'split');
  const others = versions.filter((v) => v.version !== version.version);
  // Another base renders the card again: the select keeps the focus.
  const refocus = card.contains(document.activeElement) && document.activeElement.tagName === 'SELECT';
  fill(card, h('h2', { id: 'diff-h' }, 'Changes to the prompt'), h('p', { class: 'muted small' }, 'Loading diff…'));
  let d;
  try {
    d = await get(`/v1/agents/${enc(agent.id)}/versions/${version.version}/diff${baseParam ? `?base=${enc(baseParam)}` : ''}`);
  } catch (err) {
    fill(card, h('h2', { id: 'diff-h' }, 'Changes to the prompt'), errorBox(err, 'Could not load the diff'));
    return;
  }
  const base = d.base && d.base.id !== d.target.id ? d.base : null;
  const target = d.target || version;

  const compare = h('select', { id: uid('base') });
  if (!others.length) compare.disabled = true;
  for (const v of others) {
    const tag = v.id === version.parent_version_id ? ' (parent)' : v.status === 'active' ? ' (active)' : '';
    compare.append(h('option', { value: String(v.version), selected: base && base.version === v.version }, `v${v.version}${tag}`));
  }
  if (!base) compare.prepend(h('option', { value: '', selected: true }, 'nothing'));
  compare.addEventListener('change', () => {
    setQuery({ base: compare.value || null });
    ctx.query.set('base', compare.value);
    renderDiff(ctx, agent, version, versions, card);
  });

  const body = h('div', { class: 'diff-body' });
  const model = base ? diffPrompts(base.prompt_template, target.prompt_template) : null;
  const labels = base ? { baseLabel: `v${base.version}`, targetLabel: `v${target.version}` } : null;
  const viewName = uid('view');
  const modes = [['split', 'Side by side'], ['unified', 'Unified']];
  const toggle = h('fieldset', { class: 'segmented', id: 'diff-view' },
    h('legend', { class: 'sr-only' }, 'Diff layout'),
    modes.map(([value, label]) => {
      const id = uid('view');
      const input = h('input', { type: 'radio', name: viewName, id, value, checked: value === mode, disabled: !base });
      input.addEventListener('change', () => { mode = value; setQuery({ view: value }); draw(); });
      return [input, h('label', { for: id }, label)];
    }));
  function draw() {
    if (!base) {
      fill(body, h('p', { class: 'muted' }, `v${target.version} has no parent version; here is its prompt.`), promptBlock(target.prompt_template));
      return;
    }
    if (!model.stats.added && !model.stats.removed) {
      fill(body, h('p', { class: 'muted' }, `v${target.version} and v${base.version} have the same prompt.`));
      return;
    }
    fill(body, mode === 'unified' ? unified(model, labels) : sideBySide(model, labels));
  }
  const st = model ? model.stats : null;
  const statsLine = st
    ? h('p', { class: 'diff-stats', 'aria-label': 'Diff statistics' },
      h('span', { class: 'plus' }, `+${num(st.added)}`), ' ', h('span', { class: 'minus' }, `−${num(st.removed)}`), ' lines · ',
      h('span', { class: 'plus' }, `+${num(st.wordsAdded)}`), ' ', h('span', { class: 'minus' }, `−${num(st.wordsRemoved)}`), ' words')
    : null;
  const raw = base && d.unified
    ? h('details', { class: 'raw' }, h('summary', null, 'Unified patch (as served by the API)'), h('pre', { class: 'code', tabindex: 0 }, d.unified))
    : null;
  fill(card,
    h('div', { class: 'card-head diff-head' },
      h('h2', { id: 'diff-h' }, 'Changes to the prompt'),
      h('div', { class: 'diff-tools' },
        h('div', { class: 'field inline' }, h('label', { for: compare.id }, 'Compare with'), compare),
        toggle)),
    statsLine, body, raw);
  if (refocus) compare.focus();
  draw();
}

// The job that wrote the candidate: its best_practices_considered (titles),
// matched with the practice list for source and category, and the evidence counts;
// a note under the failure patterns when the job's analysis was cut off.
async function loadJobEvidence(jobId, card, patternsCard) {
  const placeholder = card.lastElementChild;
  let job;
  try {
    job = await get(`/v1/jobs/${enc(jobId)}`);
  } catch (err) {
    placeholder.replaceWith(h('p', { class: 'muted' }, err.status === 404 ? 'The job that wrote this version is not available.' : `Could not load the job: ${err.message}`));
    return;
  }
  const r = job.result || {};
  if (r.analysis_cut_off === true && patternsCard) patternsCard.querySelector('h2').after(cutOffNote('div'));
  const considered = Array.isArray(r.best_practices_considered) ? r.best_practices_considered : [];
  let known = new Map();
  try {
    known = new Map(items(await get('/v1/best-practices?limit=500')).map((p) => [p.title, p]));
  } catch { /* titles alone will do */ }
  const evidence = r.contradictions
    ? h('p', { class: 'small' }, `Based on ${count(r.contradictions.total, 'contradiction')} (${count(r.contradictions.missed_failures, 'missed failure')}, ${count(r.contradictions.false_alarms, 'false alarm')})`,
      r.usage ? `, ${num(r.usage.llm_calls)} LLM calls, ${num(r.usage.input_tokens)} input and ${num(r.usage.output_tokens)} output tokens.` : '.', ' ',
      h('a', { href: jobHref(jobId) }, 'Open the job'))
    : null;
  placeholder.replaceWith(h('div', null,
    evidence,
    considered.length
      ? h('ul', { class: 'practice-list' }, considered.map((c) => {
        const title = typeof c === 'string' ? c : c.title;
        const p = known.get(title) || (typeof c === 'object' ? c : null);
        return h('li', null, h('strong', null, title),
          p ? [' ', h('span', { class: 'chip' }, p.source), ' ', h('span', { class: 'chip' }, p.category)] : null,
          p && p.content ? h('p', { class: 'small muted' }, p.content) : null);
      }))
      : h('p', { class: 'muted' }, 'The job sent no best practices.')));
}
