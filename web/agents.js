// Agents: the table of every agent with its numbers, and "New agent".
import { get, getAll, post, items, isMissingEndpoint, enc } from './api.js';
import { h, fill, field, table, badge, pct, num, count, time, empty, formDialog, toast, setTitle } from './ui.js';
import { navigate, agentHref, jobHref } from './nav.js';

// Newest prompt_improvement job of an agent; null when none, undefined when
// the server has no job endpoints.
export async function lastImprovement(agentId) {
  try {
    const page = await get(`/v1/jobs?agent_id=${enc(agentId)}&type=prompt_improvement&limit=1`);
    return items(page)[0] || null;
  } catch (err) {
    if (isMissingEndpoint(err)) return undefined;
    throw err;
  }
}

export function newAgentDialog() {
  return formDialog({
    title: 'New agent',
    submitLabel: 'Create agent',
    wide: true,
    build(form) {
      form.append(
        field('Name', h('input', { name: 'name', required: true, maxlength: 200, autocomplete: 'off' })),
        field('Description', h('input', { name: 'description', maxlength: 10000, autocomplete: 'off' }), 'Optional. What the agent does, in a sentence.'),
        field('Prompt template', h('textarea', { name: 'prompt_template', rows: 8, class: 'mono', spellcheck: 'false' }),
          'Optional. Write variables as {{name}}. With a template, version 1 is created and made active.'));
    },
    async submit(form) {
      const body = { name: form.name.value.trim() };
      if (form.description.value.trim()) body.description = form.description.value.trim();
      if (form.prompt_template.value.trim()) body.prompt_template = form.prompt_template.value;
      const agent = await post('/v1/agents', body);
      toast(`Agent “${agent.name}” created.`);
      navigate(agentHref(agent.id));
    },
  });
}

export async function agentsPage(ctx) {
  setTitle('Agents');
  const agents = await getAll('/v1/agents?limit=500', 20000); // every page, not the first 500
  const lastCells = new Map();
  const head = h('div', { class: 'page-head' },
    h('div', null, h('h1', null, 'Agents'),
      h('p', { class: 'muted' }, 'Where human ratings and eval predictions disagree, refold can rewrite the prompt.')),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-primary', id: 'new-agent', onclick: newAgentDialog }, 'New agent')));

  if (!agents.length) {
    fill(ctx.root, head, empty('No agents yet. Create one here, send traces to the API, or load the sample data with “refold demo”.'));
    return;
  }
  const cols = [
    { label: 'Name', class: 'col-name', cell: (a) => h('div', null, h('a', { href: agentHref(a.id), class: 'strong' }, a.name),
      a.description ? h('div', { class: 'muted small clamp', title: a.description }, a.description) : null) },
    { label: 'Status', cell: (a) => badge(a.status) },
    { label: 'Active version', cell: (a) => (a.active_version ? `v${a.active_version.version}` : h('span', { class: 'muted' }, 'none')) },
    { label: 'Traces', class: 'num', cell: (a) => num(a.stats?.traces) },
    { label: 'Rated', class: 'num', cell: (a) => num(a.stats?.rated) },
    { label: 'Contradiction rate', class: 'num', cell: (a) => rateCell(a.stats) },
    { label: 'Last improvement', cell: (a) => {
      const c = h('span', { class: 'muted' }, '…');
      lastCells.set(a.id, c);
      return c;
    } },
  ];
  fill(ctx.root, head, table(cols, agents, { caption: 'Agents', rowAttrs: (a) => ({ 'data-agent-id': a.id }) }));

  // Fill "last improvement" without holding up the table (nor the heading's focus).
  fillLastImprovements(ctx, agents, lastCells);
}

// The "Last improvement" cells: the newest prompt_improvement job of each agent, a link
// with its status and time, "never" when it has none, "—" when the server has no job
// endpoints. One read of the workspace's newest 500 such jobs (newest first, so an
// agent's first job there is its newest; params.agent_id is the agent the jobs list
// filters on) answers most agents at once; only when that page is not the whole list
// (next_cursor) do the agents it leaves out ask for their own, 4 requests at a time.
async function fillLastImprovements(ctx, agents, cells) {
  let available = true;
  const show = (cell, job) => {
    if (job === undefined) { available = false; fill(cell, '—'); cell.title = 'Jobs are not available on this server'; return; }
    if (!job) { fill(cell, 'never'); return; }
    cell.className = '';
    fill(cell, h('a', { href: jobHref(job.id) }, badge(job.status)), ' ', time(job.created_at));
  };
  let rest = agents;
  try {
    const page = await get('/v1/jobs?type=prompt_improvement&limit=500');
    const newest = new Map();
    for (const job of items(page)) {
      const id = job.params && job.params.agent_id;
      if (id && !newest.has(id)) newest.set(id, job);
    }
    const complete = Array.isArray(page) || !page.next_cursor;
    rest = [];
    for (const a of agents) {
      if (newest.has(a.id)) show(cells.get(a.id), newest.get(a.id));
      else if (complete) show(cells.get(a.id), null);
      else rest.push(a);
    }
  } catch (err) {
    if (isMissingEndpoint(err)) { for (const a of agents) show(cells.get(a.id), undefined); return; }
    // Any other failure: each agent asks for its own below, as if the page said nothing.
  }
  let next = 0;
  const worker = async () => {
    while (next < rest.length) {
      const a = rest[next++], cell = cells.get(a.id);
      if (!ctx.alive()) return; // the user has left the page
      try {
        show(cell, available ? await lastImprovement(a.id) : undefined);
      } catch {
        fill(cell, '—');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, rest.length) }, worker));
}

function rateCell(s) {
  if (!s || s.contradiction_rate === null || s.contradiction_rate === undefined) return h('span', { class: 'muted' }, '—');
  const r = s.contradiction_rate;
  const kind = r >= 0.3 ? 'bad' : r >= 0.1 ? 'warn' : 'good';
  return h('span', { class: `rate rate-${kind}`, title: `${count(s.contradictions, 'contradiction')}: ${count(s.missed_failures, 'missed failure')}, ${count(s.false_alarms, 'false alarm')}` },
    pct(r), h('span', { class: 'muted small' }, ` (${num(s.contradictions)})`));
}
