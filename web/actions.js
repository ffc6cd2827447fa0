// The review actions, as dialogs used from more than one page: promote
// (also rollback), reject, start an improvement, write a version by hand.
import { post, request, enc, idempotencyKey, isMissingEndpoint, ApiError } from './api.js';
import { h, field, formDialog, toast, templateNodes, count } from './ui.js';
import { navigate, agentHref, versionHref, jobHref } from './nav.js';

const versionPath = (agentId, n) => `/v1/agents/${enc(agentId)}/versions/${n}`;

// Promote a candidate, or roll back to an archived version. Resolves true when done.
export function promoteDialog(agent, version, { after } = {}) {
  const rollback = version.status === 'archived';
  const active = agent.active_version;
  return formDialog({
    title: rollback ? `Roll back to v${version.version}?` : `Promote v${version.version}?`,
    submitLabel: rollback ? `Roll back to v${version.version}` : `Promote v${version.version}`,
    build(form) {
      form.append(
        h('p', null, rollback
          ? `v${version.version} becomes the active prompt of ${agent.name} again`
          : `v${version.version} becomes the active prompt of ${agent.name}`,
        active ? `; v${active.version} is archived (you can roll back to it later).` : '.'),
        field('Review note', h('textarea', { name: 'note', rows: 3, maxlength: 10000 }),
          rollback ? 'Optional. Why you are rolling back.' : 'Optional. Recorded on the version, e.g. what you checked.'));
    },
    async submit(form) {
      const body = {};
      if (form.note.value.trim()) body.note = form.note.value.trim();
      await post(`${versionPath(agent.id, version.version)}/promote`, body);
      toast(rollback ? `Rolled back: v${version.version} is active.` : `v${version.version} is now the active version.`);
      if (after) after(); else navigate(agentHref(agent.id));
    },
  });
}

export function rejectDialog(agent, version, { after } = {}) {
  return formDialog({
    title: `Reject v${version.version}?`,
    submitLabel: `Reject v${version.version}`,
    danger: true,
    build(form) {
      form.append(
        h('p', null, `The candidate is kept for the record but can no longer be promoted. The active version stays as it is.`),
        field('Reason', h('textarea', { name: 'reason', rows: 3, maxlength: 10000 }), 'Optional, but it helps whoever writes the next version.'));
    },
    async submit(form) {
      const body = {};
      if (form.reason.value.trim()) body.reason = form.reason.value.trim();
      await post(`${versionPath(agent.id, version.version)}/reject`, body);
      toast(`v${version.version} rejected.`);
      if (after) after(); else navigate(agentHref(agent.id));
    },
  });
}

// Start a Prompt Improvement job and go to its live view.
export function improveDialog(agent) {
  const key = idempotencyKey(); // one per dialog: a double submit starts one job
  return formDialog({
    title: `Improve the prompt of ${agent.name}`,
    submitLabel: 'Start improvement',
    wide: true,
    build(form) {
      const s = agent.stats || {};
      form.append(
        h('p', { class: 'muted' },
          `refold sends the newest contradictions to the model, asks it for the failure patterns, then for a rewrite of v${agent.active_version?.version ?? '?'} `,
          'that keeps every variable. The result is a candidate for you to review; nothing changes until you promote it.'),
        s.contradictions !== undefined
          ? h('p', null, h('strong', null, count(s.contradictions, 'contradiction')), ` on record (${count(s.missed_failures, 'missed failure')}, ${count(s.false_alarms, 'false alarm')}).`)
          : null,
        h('div', { class: 'field-row' },
          field('Max contradictions', h('input', { name: 'max_contradictions', type: 'number', min: 1, max: 200, value: '20', required: true, inputmode: 'numeric' }), '1 to 200, newest first.'),
          field('Model', h('input', { name: 'model', autocomplete: 'off', spellcheck: 'false', placeholder: 'server default' }), 'Optional.')),
        field('Instructions', h('textarea', { name: 'instructions', rows: 4, maxlength: 10000, placeholder: 'e.g. Keep the answer under 120 words.' }),
          'Optional. Extra requirements for the rewrite.'));
    },
    async submit(form) {
      const body = { max_contradictions: Number(form.max_contradictions.value) };
      if (form.model.value.trim()) body.model = form.model.value.trim();
      if (form.instructions.value.trim()) body.instructions = form.instructions.value.trim();
      let res;
      try {
        res = await request('POST', `/v1/agents/${enc(agent.id)}/improve-prompt`, body, { headers: { 'Idempotency-Key': key } });
      } catch (err) {
        if (isMissingEndpoint(err)) throw new ApiError(404, null, 'This server cannot run improvement jobs yet (no improve-prompt endpoint).');
        if (err.details && err.details.reason === 'no_active_version') throw new ApiError(409, null, 'The agent has no active version to improve.');
        throw err;
      }
      const job = res.json;
      const loc = res.headers.get('Location');
      const id = job && job.id ? job.id : loc ? loc.split('/').pop() : null;
      toast('Improvement started.');
      navigate(jobHref(id));
    },
  });
}

// Write a new version by hand; it becomes a candidate to review.
export function newVersionDialog(agent) {
  const current = agent.active_version ? agent.active_version.prompt_template : '';
  return formDialog({
    title: `New version of ${agent.name}`,
    submitLabel: 'Create candidate',
    wide: true,
    build(form) {
      form.append(
        field('Prompt template', h('textarea', { name: 'prompt_template', rows: 14, class: 'mono', required: true, spellcheck: 'false', value: current }),
          'Write variables as {{name}}. The new version is a candidate with the active version as its parent; review and promote it to use it.'));
    },
    async submit(form) {
      const v = await post(`/v1/agents/${enc(agent.id)}/versions`, { prompt_template: form.prompt_template.value });
      toast(`Candidate v${v.version} created.`);
      navigate(versionHref(agent.id, v.version));
    },
  });
}

export function promptBlock(text, label) {
  return h('pre', { class: 'prompt', tabindex: 0, 'aria-label': label || 'Prompt template' }, templateNodes(text));
}
