// Traces, feedback, evals, executions, contradictions, stats and best
// practices over HTTP: single and batch writes, idempotency by
// (source, external_id) and (eval, trace), per-item rejections, limits.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { startServer } from './lib.mjs';

let srv, agent, eval1, eval2;
before(async () => {
  srv = await startServer();
  agent = (await srv.api('POST', '/v1/agents', { name: 'ingest', prompt_template: 'Help with {{topic}}' })).json;
  eval1 = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'helpfulness' })).json;
  eval2 = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'tone', description: 'polite?' })).json;
});
after(async () => { await srv.stop(); srv.cleanup(); });

const trace = (ext, extra = {}) => ({ agent_id: agent.id, external_id: ext, input: `question ${ext}`, output: `answer ${ext}`, ...extra });

test('a single trace attaches to the active version; a repeat is idempotent', async () => {
  const body = trace('s1', { source: 'langfuse', timestamp: '2026-11-01T10:00:00.000Z', steps: [{ tool: 'search' }], metadata: { user: 'u1' } });
  const r = await srv.api('POST', '/v1/traces', body);
  assert.equal(r.status, 201);
  assert.equal(r.json.agent_version_id, agent.active_version_id);
  assert.equal(r.json.version, 1);
  assert.equal(r.json.source, 'langfuse');
  assert.equal(r.json.timestamp, '2026-11-01T10:00:00.000Z');
  assert.deepEqual(r.json.steps, [{ tool: 'search' }]);
  assert.deepEqual(r.json.metadata, { user: 'u1' });
  assert.equal(r.json.feedback, null);
  const again = await srv.api('POST', '/v1/traces', body);
  assert.equal(again.status, 200);
  assert.equal(again.json.id, r.json.id);
  // Same external id under another source is another trace.
  const other = await srv.api('POST', '/v1/traces', { ...body, source: 'api' });
  assert.notEqual(other.json.id, r.json.id);
  const g = await srv.api('GET', `/v1/traces/${r.json.id}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.input, 'question s1');
});

test('a batch reports each item: created, updated, unchanged, rejected', async () => {
  await srv.api('POST', '/v1/traces', trace('b1'));
  await srv.api('POST', '/v1/traces', trace('b2'));
  const r = await srv.api('POST', '/v1/traces', {
    traces: [
      trace('b1'),                               // unchanged
      trace('b2', { output: 'better answer' }),  // updated
      trace('b3'),                               // created
      { agent_id: agent.id, external_id: 'b4' }, // missing input/output
      trace('b5', { agent_id: 'agent_01ARZ3NDEKTSV4RRFFQ69G5FAV' }), // unknown agent
      'not an object',
      trace('b6', { timestamp: 'yesterday' }),
    ],
  });
  assert.equal(r.status, 201);
  assert.deepEqual(r.json.summary, { created: 1, updated: 1, unchanged: 1, rejected: 4 });
  const d = r.json.data;
  assert.deepEqual(d.map((x) => x.result ?? 'rejected'), ['unchanged', 'updated', 'created', 'rejected', 'rejected', 'rejected', 'rejected']);
  assert.deepEqual(d.map((x) => x.index), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(d[3].error.code, 'invalid_request');
  assert.equal(d[3].error.details.field, 'input');
  assert.equal(d[4].error.code, 'not_found');
  assert.equal(d[4].error.details.field, 'agent_id');
  assert.equal(d[6].error.details.field, 'timestamp');
  const updated = await srv.api('GET', `/v1/traces/${d[1].id}`);
  assert.equal(updated.json.output, 'better answer');
  // Nothing of the rejected items was stored.
  const list = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&limit=500`);
  const exts = list.json.data.map((t) => t.external_id);
  assert.ok(!exts.includes('b4') && !exts.includes('b5') && !exts.includes('b6'));
});

test('?outcomes=rejected lists only the rejected items; the summary counts all', async () => {
  const items = [trace('or1'), { agent_id: agent.id, external_id: 'or2' }, trace('or3')];
  let r = await srv.api('POST', '/v1/traces?outcomes=rejected', { traces: items });
  assert.equal(r.status, 201);
  assert.deepEqual(r.json.summary, { created: 2, updated: 0, unchanged: 0, rejected: 1 });
  assert.equal(r.json.data.length, 1);
  assert.equal(r.json.data[0].index, 1);
  assert.equal(r.json.data[0].error.details.field, 'input');
  r = await srv.api('POST', '/v1/feedback?outcomes=rejected', { feedback: [
    { external_id: 'or1', rating: 'positive' }, { external_id: 'or2', rating: 'positive' }] });
  assert.deepEqual(r.json.data.map((d) => d.index), [1]);
  assert.deepEqual(r.json.summary, { created: 1, updated: 0, unchanged: 0, rejected: 1 });
  r = await srv.api('POST', `/v1/evals/${eval1.id}/executions?outcomes=rejected`, { executions: [
    { external_id: 'or1', predicted_result: true }, { external_id: 'or3', predicted_result: false }] });
  assert.deepEqual(r.json.data, []);
  assert.equal(r.json.summary.created, 2);
  r = await srv.api('POST', '/v1/traces?outcomes=all', { traces: [trace('or1')] });
  assert.deepEqual(r.json.data.map((d) => d.result), ['unchanged']);
  assert.equal((await srv.api('POST', '/v1/traces?outcomes=some', { traces: [] })).status, 400);
});

test('trace validation and limits', async () => {
  let r = await srv.api('POST', '/v1/traces', { external_id: 'x', input: 'i', output: 'o' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'agent_id');
  r = await srv.api('POST', '/v1/traces', trace('big', { input: 'x'.repeat(1024 * 1024 + 1) }));
  assert.equal(r.status, 413);
  assert.equal(r.json.error.details.field, 'input');
  r = await srv.api('POST', '/v1/traces', trace('steps', { steps: { not: 'an array' } }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'steps');
  r = await srv.api('POST', '/v1/traces', { traces: Array.from({ length: 1001 }, (_, i) => trace(`m${i}`)) });
  assert.equal(r.status, 413);
  assert.equal(r.json.error.details.field, 'traces');
  r = await srv.api('POST', '/v1/traces', { traces: 'nope' });
  assert.equal(r.status, 400);
  // A batch of exactly 1,000 is accepted.
  r = await srv.api('POST', '/v1/traces', { traces: Array.from({ length: 1000 }, (_, i) => trace(`k${i}`)) });
  assert.equal(r.status, 201);
  assert.equal(r.json.summary.created, 1000);
});

test('a timestamp outside years 0000 to 9999 is refused, never stored to read back wrong', async () => {
  // Epoch milliseconds at and past each bound; the bodies are raw so that JSON keeps the
  // 64-bit integers JavaScript numbers cannot hold.
  const raw = (ext, ts) => srv.api('POST', '/v1/traces', undefined, {
    raw: `{"agent_id":"${agent.id}","external_id":"${ext}","input":"i","output":"o","timestamp":${ts}}`,
    headers: { 'content-type': 'application/json' },
  });
  let r = await raw('ts-max', '253402300799999');
  assert.equal(r.status, 201);
  assert.equal(r.json.timestamp, '9999-12-31T23:59:59.999Z');
  r = await raw('ts-min', '-62167219200000');
  assert.equal(r.status, 201);
  assert.equal(r.json.timestamp, '0000-01-01T00:00:00.000Z');
  for (const ts of ['253402300800000', '-62167219200001', '9223372036854775807', '-9223372036854775808']) {
    r = await raw(`ts-bad${ts}`, ts);
    assert.equal(r.status, 400, `${ts}: ${r.text}`);
    assert.equal(r.json.error.details.field, 'timestamp');
  }
  // So is a date or an offset that does not exist (it was moved: February 31 to March 3).
  for (const ts of ['9999-12-31T23:30:00-01:00', '2026-02-31T00:00:00Z', '2026-01-01T00:00:00+99:99']) {
    r = await srv.api('POST', '/v1/traces', trace('ts-bad', { timestamp: ts }));
    assert.equal(r.status, 400, `${ts}: ${r.text}`);
    assert.equal(r.json.error.details.field, 'timestamp');
  }
  // A repeat with a bad timestamp leaves the stored trace as it was.
  r = await raw('ts-max', '9223372036854775807');
  assert.equal(r.status, 400);
  const page = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&limit=500`);
  assert.deepEqual(page.json.data.filter((t) => (t.external_id || '').startsWith('ts-')).map((t) => [t.external_id, t.timestamp]).sort(),
    [['ts-max', '9999-12-31T23:59:59.999Z'], ['ts-min', '0000-01-01T00:00:00.000Z']]);
});

test('a trace sent again with agent_id keeps its version after a promote; agent_version_id moves it', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'resend', prompt_template: 'v1 {{x}}' })).json;
  const body = { agent_id: a.id, external_id: 'keep', input: 'i', output: 'o' };
  const first = await srv.api('POST', '/v1/traces', body);
  assert.equal(first.json.version, 1);
  await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: 'v2 {{x}}' });
  assert.equal((await srv.api('POST', `/v1/agents/${a.id}/versions/2/promote`, {})).status, 200);
  const again = await srv.api('POST', '/v1/traces', body);
  assert.equal(again.status, 200);
  assert.equal(again.json.version, 1);
  const batch = await srv.api('POST', '/v1/traces', { traces: [{ ...body, output: 'changed' }] });
  assert.equal(batch.json.data[0].result, 'updated');
  let g = await srv.api('GET', `/v1/traces/${first.json.id}`);
  assert.equal(g.json.version, 1);
  assert.equal(g.json.output, 'changed');
  const v2 = (await srv.api('GET', `/v1/agents/${a.id}/versions/2`)).json;
  const moved = await srv.api('POST', '/v1/traces', { agent_version_id: v2.id, external_id: 'keep', input: 'i', output: 'changed' });
  assert.equal(moved.status, 200);
  assert.equal(moved.json.version, 2);
});

test('traces attach to an explicit version, and filters work', async () => {
  const v2 = (await srv.api('POST', `/v1/agents/${agent.id}/versions`, { prompt_template: 'Help better with {{topic}}' })).json;
  const r = await srv.api('POST', '/v1/traces', { agent_version_id: v2.id, external_id: 'v2t', input: 'i', output: 'o' });
  assert.equal(r.status, 201);
  assert.equal(r.json.version, 2);
  const both = await srv.api('POST', '/v1/traces', { agent_id: agent.id, agent_version_id: v2.id, input: 'i', output: 'o' });
  assert.equal(both.status, 400);
  const byVersion = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&version=2`);
  assert.deepEqual(byVersion.json.data.map((t) => t.external_id), ['v2t']);
  assert.equal((await srv.api('GET', `/v1/traces?version=2`)).status, 400);
  assert.equal((await srv.api('GET', `/v1/traces?agent_id=${agent.id}&version=9`)).status, 404);
  await srv.api('PUT', `/v1/traces/${r.json.id}/feedback`, { rating: 'positive' });
  const rated = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&rating=positive`);
  assert.ok(rated.json.data.some((t) => t.id === r.json.id));
  assert.ok(rated.json.data.every((t) => t.feedback.rating === 'positive'));
  const unrated = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&has_feedback=false&limit=500`);
  assert.ok(unrated.json.data.every((t) => t.feedback === null));
  assert.ok(!unrated.json.data.some((t) => t.id === r.json.id));
  assert.equal((await srv.api('GET', '/v1/traces?rating=great')).status, 400);
  assert.equal((await srv.api('GET', '/v1/traces?has_feedback=maybe')).status, 400);
});

test('feedback upserts one rating per trace, single and batch', async () => {
  const t = (await srv.api('POST', '/v1/traces', trace('f1'))).json;
  let r = await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating: 'negative', note: 'wrong refund policy' });
  assert.equal(r.status, 200);
  assert.equal(r.json.rating, 'negative');
  assert.equal(r.json.note, 'wrong refund policy');
  r = await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating: 'positive' });
  assert.equal(r.json.rating, 'positive');
  assert.equal(r.json.note, null);
  const g = await srv.api('GET', `/v1/traces/${t.id}`);
  assert.equal(g.json.feedback.rating, 'positive');
  r = await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating: 'meh' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'rating');
  r = await srv.api('PUT', `/v1/traces/trace_01ARZ3NDEKTSV4RRFFQ69G5FAV/feedback`, { rating: 'positive' });
  assert.equal(r.status, 404);

  await srv.api('POST', '/v1/traces', trace('f2'));
  r = await srv.api('POST', '/v1/feedback', {
    feedback: [
      { external_id: 'f2', rating: 'negative', note: 'rude' },
      { trace_id: t.id, rating: 'positive' },           // unchanged
      { external_id: 'nope', rating: 'positive' },      // unknown trace
      { external_id: 'f2', source: 'other', rating: 'positive' }, // unknown under that source
      { rating: 'positive' },                           // no reference
    ],
  });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.summary, { created: 1, updated: 0, unchanged: 1, rejected: 3 });
  assert.equal(r.json.data[2].error.code, 'not_found');
  assert.equal(r.json.data[4].error.details.field, 'trace_id');
});

test('evals and executions upsert by (eval, trace); contradictions and stats follow', async () => {
  const mk = async (ext, rating) => {
    const t = (await srv.api('POST', '/v1/traces', trace(ext))).json;
    if (rating) await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating, note: `${rating} ${ext}` });
    return t;
  };
  const good = await mk('c-good', 'positive');
  const bad = await mk('c-bad', 'negative');
  const meh = await mk('c-meh', 'neutral');
  const before = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;

  let r = await srv.api('POST', `/v1/evals/${eval1.id}/executions`, {
    executions: [
      { trace_id: good.id, predicted_result: false, predicted_reason: 'flagged tone' }, // false alarm
      { external_id: 'c-bad', predicted_result: true, predicted_reason: 'looks fine', execution_time_ms: 12 }, // missed
      { trace_id: meh.id, predicted_result: false },  // neutral: never a contradiction
      { trace_id: good.id, predicted_result: 'yes' }, // invalid type
    ],
  });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.summary, { created: 3, updated: 0, unchanged: 0, rejected: 1 });
  assert.equal(r.json.data[3].error.details.field, 'predicted_result');

  // A trace read alone carries every eval's verdict on it.
  const gt = (await srv.api('GET', `/v1/traces/${bad.id}`)).json;
  assert.deepEqual(gt.evaluations.map((e) => [e.eval_name, e.predicted_result, e.predicted_reason, e.execution_time_ms]),
    [['helpfulness', true, 'looks fine', 12]]);

  let c = await srv.api('GET', `/v1/agents/${agent.id}/contradictions`);
  assert.equal(c.status, 200);
  const byTrace = Object.fromEntries(c.json.data.map((x) => [x.trace_id, x]));
  assert.equal(byTrace[good.id].kind, 'false_alarm');
  assert.equal(byTrace[good.id].human_rating, 'positive');
  assert.equal(byTrace[good.id].predicted_result, false);
  assert.equal(byTrace[good.id].eval_name, 'helpfulness');
  assert.equal(byTrace[bad.id].kind, 'missed_failure');
  assert.equal(byTrace[bad.id].predicted_reason, 'looks fine');
  assert.equal(byTrace[bad.id].note, 'negative c-bad');
  assert.equal(byTrace[bad.id].input, 'question c-bad');
  assert.ok(!byTrace[meh.id]);
  c = await srv.api('GET', `/v1/agents/${agent.id}/contradictions?kind=missed_failure`);
  assert.ok(c.json.data.every((x) => x.kind === 'missed_failure'));
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}/contradictions?kind=other`)).status, 400);

  let s = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.equal(s.evals, 2);
  assert.equal(s.executions - before.executions, 3);
  assert.equal(s.contradictions - before.contradictions, 2);
  assert.equal(s.false_alarms - before.false_alarms, 1);
  assert.equal(s.missed_failures - before.missed_failures, 1);
  assert.ok(s.contradiction_rate > 0 && s.contradiction_rate <= 1);
  assert.ok(Math.abs(s.eval_accuracy - (1 - s.contradiction_rate)) < 1e-9);

  // The eval changes its mind on the false alarm: the contradiction goes away.
  r = await srv.api('POST', `/v1/evals/${eval1.id}/executions`, { executions: [{ trace_id: good.id, predicted_result: true }] });
  assert.deepEqual(r.json.summary, { created: 0, updated: 1, unchanged: 0, rejected: 0 });
  s = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.equal(s.false_alarms - before.false_alarms, 0);
  assert.equal(s.executions - before.executions, 3);
  r = await srv.api('POST', `/v1/evals/${eval1.id}/executions`, { executions: [{ trace_id: good.id, predicted_result: true }] });
  assert.deepEqual(r.json.summary, { created: 0, updated: 0, unchanged: 1, rejected: 0 });

  // An execution of another agent's trace is rejected.
  const other = (await srv.api('POST', '/v1/agents', { name: 'other-agent', prompt_template: 'x' })).json;
  const ot = (await srv.api('POST', '/v1/traces', { agent_id: other.id, input: 'i', output: 'o' })).json;
  r = await srv.api('POST', `/v1/evals/${eval2.id}/executions`, { executions: [{ trace_id: ot.id, predicted_result: true }] });
  assert.equal(r.json.summary.rejected, 1);
  assert.equal(r.json.data[0].error.details.field, 'trace_id');
  assert.equal((await srv.api('POST', `/v1/evals/eval_01ARZ3NDEKTSV4RRFFQ69G5FAV/executions`, { executions: [] })).status, 404);

  // Deleting a rated trace takes its contradiction and counts with it.
  assert.equal((await srv.api('DELETE', `/v1/traces/${bad.id}`)).status, 204);
  assert.equal((await srv.api('GET', `/v1/traces/${bad.id}`)).status, 404);
  const after = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.equal(after.missed_failures, s.missed_failures - 1);
  assert.equal(after.traces, s.traces - 1);
  assert.equal(after.negative, s.negative - 1);
});

test('evals: names unique per agent, listing, validation', async () => {
  let r = await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'helpfulness' });
  assert.equal(r.status, 409);
  r = await srv.api('POST', '/v1/evals', { agent_id: 'agent_01ARZ3NDEKTSV4RRFFQ69G5FAV', name: 'x' });
  assert.equal(r.status, 404);
  r = await srv.api('POST', '/v1/evals', { agent_id: agent.id });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'name');
  r = await srv.api('GET', `/v1/evals?agent_id=${agent.id}`);
  assert.deepEqual(r.json.data.map((e) => e.name).sort(), ['helpfulness', 'tone']);
  r = await srv.api('GET', `/v1/evals/${eval2.id}`);
  assert.equal(r.json.description, 'polite?');
});

test('best practices: built-in plus own; only own rows can be deleted', async () => {
  let r = await srv.api('GET', '/v1/best-practices?limit=500');
  assert.equal(r.status, 200);
  const builtin = r.json.data.filter((p) => p.builtin);
  assert.ok(builtin.length >= 20);
  assert.deepEqual(new Set(builtin.map((p) => p.source)), new Set(['anthropic', 'openai', 'google']));
  assert.ok(builtin.every((p) => p.url && p.title && p.content && p.category));
  r = await srv.api('POST', '/v1/best-practices', { category: 'clarity', title: 'Say the audience', content: 'Name who reads the answer.' });
  assert.equal(r.status, 201);
  assert.equal(r.json.source, 'custom');
  assert.equal(r.json.builtin, false);
  const own = r.json.id;
  r = await srv.api('GET', '/v1/best-practices?category=clarity&limit=500');
  assert.ok(r.json.data.every((p) => p.category === 'clarity'));
  assert.ok(r.json.data.some((p) => p.id === own));
  r = await srv.api('POST', '/v1/best-practices', { category: 'vibes', title: 't', content: 'c' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'category');
  assert.equal((await srv.api('DELETE', `/v1/best-practices/${builtin[0].id}`)).status, 404);
  assert.equal((await srv.api('DELETE', `/v1/best-practices/${own}`)).status, 204);
  assert.equal((await srv.api('DELETE', `/v1/best-practices/${own}`)).status, 404);
});

test('one batch of traces naming an external id twice: the items apply in order', async () => {
  const other = (await srv.api('POST', '/v1/agents', { name: 'ingest-other', prompt_template: 'x' })).json;
  const before = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats.traces;
  const r = await srv.api('POST', '/v1/traces', { traces: [
    trace('r1'), trace('r2'), trace('r1', { input: 'changed' }), trace('r1', { input: 'changed' }),
    { agent_id: agent.id, input: 'no id', output: 'o' }, { agent_id: agent.id, input: 'no id', output: 'o' },
    trace('r2', { agent_id: other.id }), trace('r3', { source: 'elsewhere' }), trace('r3'),
  ] });
  assert.equal(r.status, 201);
  assert.deepEqual(r.json.data.map((x) => x.result ?? 'rejected'),
    ['created', 'created', 'updated', 'unchanged', 'created', 'created', 'rejected', 'created', 'created']);
  assert.equal(r.json.data[0].id, r.json.data[2].id);
  assert.equal(r.json.data[6].error.details.field, 'external_id');
  assert.equal((await srv.api('GET', `/v1/traces/${r.json.data[0].id}`)).json.input, 'changed');
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats.traces, before + 6);
});

test('one batch naming a trace twice: the items apply in order, as one by one', async () => {
  const t = (await srv.api('POST', '/v1/traces', trace('twice'))).json;
  await srv.api('PUT', `/v1/traces/${t.id}/feedback`, { rating: 'negative' });
  const other = (await srv.api('POST', '/v1/traces', trace('twice-other'))).json;
  const before = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  const r = await srv.api('POST', `/v1/evals/${eval2.id}/executions`, { executions: [
    { trace_id: t.id, predicted_result: true, predicted_reason: 'first' },
    { external_id: 'twice-other', predicted_result: false },
    { external_id: 'twice', predicted_result: false, predicted_reason: 'second' },
    { trace_id: t.id, predicted_result: false, predicted_reason: 'second' },
    { trace_id: other.id, predicted_result: true },
  ] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.data.map((d) => d.result), ['created', 'created', 'updated', 'unchanged', 'updated']);
  assert.equal(r.json.data[0].id, r.json.data[2].id);
  const verdicts = (await srv.api('GET', `/v1/traces/${t.id}`)).json.evaluations.filter((e) => e.eval_id === eval2.id);
  assert.deepEqual(verdicts.map((e) => [e.predicted_result, e.predicted_reason]), [[false, 'second']]);
  const after = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.equal(after.executions, before.executions + 2);
  // the negative trace ended predicted false: one agreement more, no contradiction
  assert.equal(after.contradictions, before.contradictions);
});

test('one feedback batch naming a trace again and again: the items apply in order', async () => {
  const a = (await srv.api('POST', '/v1/traces', trace('fb-a'))).json;
  const b = (await srv.api('POST', '/v1/traces', trace('fb-b'))).json;
  await srv.api('PUT', `/v1/traces/${b.id}/feedback`, { rating: 'positive', note: 'fine' });
  // Both traces judged bad by eval1 and good by eval2.
  for (const [ev, pred] of [[eval1, false], [eval2, true]])
    await srv.api('POST', `/v1/evals/${ev.id}/executions`, { executions: [a, b].map((t) => ({ trace_id: t.id, predicted_result: pred })) });
  const before = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  const r = await srv.api('POST', '/v1/feedback', { feedback: [
    { external_id: 'fb-a', rating: 'negative', note: 'wrong' }, // created
    { trace_id: b.id, rating: 'positive', note: 'fine' },      // unchanged
    { trace_id: a.id, rating: 'negative', note: 'wrong' },     // unchanged: as the first left it
    { external_id: 'fb-a', rating: 'positive' },               // updated
    { trace_id: b.id, rating: 'negative' },                    // updated
    { external_id: 'fb-nope', rating: 'positive' },            // rejected
    { trace_id: b.id, rating: 'negative', note: 'rude' },      // updated: the note only
  ] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.data.map((d) => d.result ?? 'rejected'),
    ['created', 'unchanged', 'unchanged', 'updated', 'updated', 'rejected', 'updated']);
  assert.deepEqual(r.json.summary, { created: 1, updated: 3, unchanged: 2, rejected: 1 });
  assert.equal(r.json.data[0].id, a.id);
  const fa = (await srv.api('GET', `/v1/traces/${a.id}/feedback`)).json;
  const fb = (await srv.api('GET', `/v1/traces/${b.id}/feedback`)).json;
  assert.deepEqual([fa.rating, fa.note ?? null, fb.rating, fb.note], ['positive', null, 'negative', 'rude']);
  const after = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  // a: unrated -> positive (one pass, one fail); b: positive -> negative.
  assert.equal(after.positive, before.positive);
  assert.equal(after.negative, before.negative + 1);
  assert.equal(after.missed_failures, before.missed_failures + 1); // b: eval2 passed a negative
  assert.equal(after.false_alarms, before.false_alarms);           // a's fail replaces b's
});

test('a list page ends early at about 8 MiB of items, and its cursor leads to the rest', async () => {
  const big = (await srv.api('POST', '/v1/agents', { name: 'big-traces', prompt_template: 'x' })).json;
  const input = 'x'.repeat(1000 * 1000);
  for (let i = 0; i < 4; i++) {
    const r = await srv.api('POST', '/v1/traces', { traces: [0, 1, 2].map((k) => ({ agent_id: big.id, external_id: `big${i}-${k}`, input, output: 'o' })) });
    assert.equal(r.status, 201, r.text.slice(0, 200));
  }
  const seen = [];
  let cursor = '', pages = 0;
  do {
    const r = await srv.api('GET', `/v1/traces?agent_id=${big.id}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200);
    assert.ok(r.text.length < 10 * 1024 * 1024, `a page of ${r.text.length} bytes`);
    assert.ok(r.json.data.every((t) => t.input.length === input.length), 'items are whole');
    seen.push(...r.json.data.map((t) => t.external_id));
    cursor = r.json.next_cursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 2);
  assert.deepEqual(seen.sort(), Array.from({ length: 12 }, (_, n) => `big${Math.floor(n / 3)}-${n % 3}`).sort());
  // Contradictions carry each trace's input too: the answer stops at about 8 MiB as well.
  const judge = (await srv.api('POST', '/v1/evals', { agent_id: big.id, name: 'judge' })).json;
  await srv.api('POST', '/v1/feedback', { feedback: seen.map((ext) => ({ external_id: ext, rating: 'negative' })) });
  await srv.api('POST', `/v1/evals/${judge.id}/executions`, { executions: seen.map((ext) => ({ external_id: ext, predicted_result: true })) });
  const c = await srv.api('GET', `/v1/agents/${big.id}/contradictions?limit=500`);
  assert.equal(c.status, 200);
  assert.ok(c.text.length < 10 * 1024 * 1024, `contradictions of ${c.text.length} bytes`);
  assert.ok(c.json.data.length >= 8 && c.json.data.length < 12, `${c.json.data.length} contradictions`);
  assert.equal((await srv.api('GET', `/v1/agents/${big.id}/contradictions?limit=5`)).json.data.length, 5);
});

// The byte budget bounds the server's memory as well as the answer: the rows after a page
// are never held. On PostgreSQL every row up to the LIMIT used to arrive before the first
// was read: here the page of the traces made the server's peak grow by 100 MiB (the
// agent's 60 traces), now by about 10-25 MiB on either backend.
test('a page of large rows costs the server about the page, not every row up to the limit', { timeout: 60000 }, async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'huge-traces', prompt_template: 'x' })).json;
  const judge = (await srv.api('POST', '/v1/evals', { agent_id: a.id, name: 'judge' })).json;
  const text = 'y'.repeat(1024 * 1024 - 16);
  for (let i = 0; i < 30; i++) { // 60 traces of 2 MiB: 120 MiB in all
    const traces = [0, 1].map((k) => ({ agent_id: a.id, external_id: `huge${i}-${k}`, input: text, output: text }));
    assert.equal((await srv.api('POST', '/v1/traces', { traces })).status, 201);
    await srv.api('POST', '/v1/feedback', { feedback: traces.map((t) => ({ external_id: t.external_id, rating: 'negative' })) });
    await srv.api('POST', `/v1/evals/${judge.id}/executions`, { executions: traces.map((t) => ({ external_id: t.external_id, predicted_result: true })) });
  }
  const pid = srv.child.pid;
  const peakKiB = () => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);
  for (const path of [`/v1/traces?agent_id=${a.id}&limit=500`, `/v1/agents/${a.id}/contradictions?limit=500`]) {
    writeFileSync(`/proc/${pid}/clear_refs`, '5'); // the peak starts over from the current size
    const before = peakKiB();
    const r = await srv.api('GET', path);
    assert.equal(r.status, 200);
    assert.ok(r.json.data.length >= 3 && r.json.data.length < 60, `${r.json.data.length} items`);
    const grew = (peakKiB() - before) / 1024;
    // (Not under the sanitizers, whose quarantine keeps freed memory.)
    if (process.env.ASAN_OPTIONS === undefined) assert.ok(grew < 48, `${path}: the server's peak grew by ${Math.round(grew)} MiB for a page of ${Math.round(r.text.length / 1048576)} MiB`);
  }
});

// SPEC §4.1: lists take ?cursor=. An agent's contradictions page like the others: newest
// feedback first, a trace's several by eval, and following next_cursor yields each one
// exactly once - across traces rated in the same millisecond (one batch) and within a
// trace that several evals contradict.
test('contradictions page with cursors: every one once, in order, with kind filters', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'paged-contra', prompt_template: 'x' })).json;
  const evals = [];
  for (const name of ['e1', 'e2', 'e3']) evals.push((await srv.api('POST', '/v1/evals', { agent_id: a.id, name })).json);
  const traces = Array.from({ length: 7 }, (_, i) => ({ agent_id: a.id, external_id: `pc${i}`, input: `i${i}`, output: 'o' }));
  assert.equal((await srv.api('POST', '/v1/traces', { traces })).status, 201);
  // One batch: all seven ratings share their updated_at. Then two more, later.
  await srv.api('POST', '/v1/feedback', { feedback: traces.slice(0, 5).map((t, i) => ({ external_id: t.external_id, rating: i % 2 ? 'positive' : 'negative' })) });
  for (const i of [5, 6]) await srv.api('PUT', `/v1/traces/${(await srv.api('GET', `/v1/traces?agent_id=${a.id}&limit=500`)).json.data.find((t) => t.external_id === `pc${i}`).id}/feedback`, { rating: 'negative' });
  for (const [k, e] of evals.entries()) {
    // Eval k disagrees with the human on every trace but those where (i + k) % 4 == 0.
    const executions = traces.map((t, i) => {
      const negative = i >= 5 || i % 2 === 0;
      const disagree = (i + k) % 4 !== 0;
      return { external_id: t.external_id, predicted_result: disagree ? negative : !negative };
    });
    assert.equal((await srv.api('POST', `/v1/evals/${e.id}/executions`, { executions })).status, 200);
  }
  const stats = (await srv.api('GET', `/v1/agents/${a.id}`)).json.stats;
  const key = (c) => `${c.trace_id}/${c.eval_id}`;
  for (const kind of [null, 'missed_failure', 'false_alarm']) {
    const q = kind ? `&kind=${kind}` : '';
    const whole = await srv.api('GET', `/v1/agents/${a.id}/contradictions?limit=500${q}`);
    assert.equal(whole.json.next_cursor, null);
    const expected = kind === 'missed_failure' ? stats.missed_failures : kind === 'false_alarm' ? stats.false_alarms : stats.contradictions;
    assert.equal(whole.json.data.length, expected, kind);
    for (const limit of [1, 2, 4]) {
      const seen = [];
      let cursor = null, pages = 0;
      do {
        const r = await srv.api('GET', `/v1/agents/${a.id}/contradictions?limit=${limit}${q}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.data.length <= limit && (r.json.data.length > 0 || pages === 0));
        seen.push(...r.json.data.map(key));
        cursor = r.json.next_cursor;
        assert.ok(++pages <= expected + 1, 'the pages end');
      } while (cursor);
      assert.deepEqual(seen, whole.json.data.map(key), `kind ${kind}, limit ${limit}`);
    }
  }
  // Newest feedback first (the two later ratings lead), a trace's rows side by side.
  const first = (await srv.api('GET', `/v1/agents/${a.id}/contradictions?limit=500`)).json.data;
  for (let i = 1; i < first.length; i++) assert.ok(first[i - 1].feedback_at >= first[i].feedback_at);
  const later = new Set(traces.slice(5).map((t) => t.external_id));
  const ids = (await srv.api('GET', `/v1/traces?agent_id=${a.id}&limit=500`)).json.data;
  const ext = new Map(ids.map((t) => [t.id, t.external_id]));
  const order = first.map((c) => ext.get(c.trace_id)).filter((e, i, all) => i === 0 || all[i - 1] !== e);
  assert.equal(new Set(order).size, order.length, 'a trace\'s contradictions are adjacent');
  assert.ok(order.slice(0, 2).every((e) => later.has(e)), order.join(' '));
  for (const bad of ['abc', '1.trace_x.eval_y', `-1.${first[0].trace_id}.${first[0].eval_id}`, `1.${first[0].eval_id}.${first[0].trace_id}`]) {
    const r = await srv.api('GET', `/v1/agents/${a.id}/contradictions?cursor=${encodeURIComponent(bad)}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.json.error.details.field, 'cursor');
  }
});
