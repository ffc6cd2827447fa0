// The trace viewer: input, output, steps, the human rating and the eval's
// verdict, in a modal opened from a contradiction row.
import { get, enc } from './api.js';
import { h, fill, infoDialog, badge, time, jsonBlock, errorBox } from './ui.js';

function section(title, ...body) {
  return h('section', { class: 'trace-section' }, h('h3', null, title), body);
}

// A trace's input or output. A missing one (null) and an empty string both
// left an empty box, which read as a text not loaded yet: each says what it
// is instead, in muted words that cannot pass for the trace's own text.
function traceText(text, what) {
  if (text === null || text === undefined) return h('p', { class: 'muted' }, `No ${what} recorded.`);
  if (text === '') return h('p', { class: 'muted' }, `Empty: the ${what} is an empty string.`);
  return h('pre', { class: 'text', tabindex: 0 }, String(text));
}

function stepNode(step, i) {
  if (step === null || typeof step !== 'object') return h('li', null, h('pre', { class: 'code' }, String(step)));
  const label = [step.type, step.name || step.tool].filter(Boolean).join(' · ') || `step ${i + 1}`;
  const rest = { ...step };
  delete rest.type; delete rest.name; delete rest.tool;
  return h('li', { class: 'step' }, h('div', { class: 'step-head' }, label), Object.keys(rest).length ? jsonBlock(rest) : null);
}

function evalVerdicts(evaluations, evidence) {
  let list = Array.isArray(evaluations) ? [...evaluations] : [];
  if (!list.length && evidence) list = [evidence];
  if (evidence) list.sort((a, b) => (b.eval_id === evidence.eval_id) - (a.eval_id === evidence.eval_id));
  if (!list.length) return h('div', { class: 'verdict' }, h('div', { class: 'verdict-who' }, 'Evals'), h('span', { class: 'muted' }, 'no eval ran on this trace'));
  return list.map((e) => h('div', { class: 'verdict' },
    h('div', { class: 'verdict-who' }, `Eval “${e.eval_name}”`),
    badge(e.predicted_result ? 'pass' : 'fail', 'rating'),
    e.predicted_reason ? h('blockquote', null, e.predicted_reason) : null));
}

// Opens the dialog at once and fills it when the trace arrives. `evidence` is
// the contradiction row it was opened from (eval name, prediction, reason).
export function openTrace(traceId, evidence) {
  const body = h('div', { class: 'trace' }, h('p', { class: 'loading' }, 'Loading trace…'));
  const dlg = infoDialog(`Trace ${traceId}`, body);
  dlg.classList.add('trace-dialog');
  get(`/v1/traces/${enc(traceId)}`).then((t) => {
    const fb = t.feedback;
    const pair = (k, v, cls) => h('div', null, h('dt', null, k), h('dd', { class: cls }, v));
    const meta = h('dl', { class: 'meta' },
      pair('Version', t.version ? `v${t.version}` : '—'),
      pair('Source', t.source || '—'),
      t.external_id ? pair('External id', t.external_id, 'mono') : null,
      pair('Time', time(t.timestamp)));
    const verdicts = h('div', { class: 'verdicts' },
      h('div', { class: 'verdict' },
        h('div', { class: 'verdict-who' }, 'Human'),
        fb ? badge(fb.rating, 'rating') : h('span', { class: 'muted' }, 'not rated'),
        fb && fb.note ? h('blockquote', null, fb.note) : null),
      // Every eval's verdict on the trace (GET /v1/traces/{id} lists them), the
      // one the contradiction came from first.
      evalVerdicts(t.evaluations, evidence),
      evidence ? h('p', { class: 'verdict-kind' }, badge(evidence.kind),
        evidence.kind === 'missed_failure'
          ? ' The human rated it negative but the eval passed it.'
          : ' The human rated it positive but the eval failed it.') : null);
    const steps = Array.isArray(t.steps) && t.steps.length
      ? h('ol', { class: 'steps' }, t.steps.map(stepNode))
      : h('p', { class: 'muted' }, 'No steps recorded.');
    fill(body,
      meta,
      section('Rating and eval', verdicts),
      section('Input', traceText(t.input, 'input')),
      section('Output', traceText(t.output, 'output')),
      section('Steps', steps),
      t.metadata ? section('Metadata', jsonBlock(t.metadata)) : null);
  }).catch((err) => fill(body, errorBox(err, 'Could not load the trace')));
  return dlg;
}
