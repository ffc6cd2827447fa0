// Names and identifiers (agent and eval names, a trace's source and external_id, a best
// practice's title and url, the model of an improvement) refuse control characters: C0,
// DEL and C1 (docs/api.md, Conventions). Free text (descriptions, notes, reasons, trace
// input and output, instructions) keeps them: tabs and newlines belong there. Names stored
// before the check still work: found, renamed, archived, referred to.
// Agent and eval names also refuse white space at either end ("bot" and "bot " look
// alike), on the API and so on import; those stored before keep working the same way.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, sql, run } from './lib.mjs';

let srv, agent, ev;

before(async () => {
  srv = await startServer();
  agent = (await srv.api('POST', '/v1/agents', { name: 'names', prompt_template: 'Hi {{x}}' })).json;
  ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;
});
after(async () => { await srv.stop(); srv.cleanup(); });

const CONTROLS = ['\u0000x', 'a\u0001', 'a\tb', 'a\nb', 'a\rb', 'a\u001b[31mred', 'a\u007f', 'a\u0085', 'a\u009b2J'];

test('every name-like field refuses control characters with a 400 naming it', async () => {
  const cases = (bad) => [
    ['POST', '/v1/agents', { name: bad }, 'name'],
    ['PATCH', `/v1/agents/${agent.id}`, { name: bad }, 'name'],
    ['POST', '/v1/evals', { agent_id: agent.id, name: bad }, 'name'],
    ['POST', '/v1/traces', { agent_id: agent.id, source: bad, external_id: 'e', input: 'i', output: 'o' }, 'source'],
    ['POST', '/v1/traces', { agent_id: agent.id, external_id: bad, input: 'i', output: 'o' }, 'external_id'],
    ['POST', '/v1/best-practices', { category: 'general', title: bad, content: 'c' }, 'title'],
    ['POST', '/v1/best-practices', { category: 'general', title: 't', content: 'c', url: `https://example.com/${bad}` }, 'url'],
    ['POST', `/v1/agents/${agent.id}/improve-prompt`, { model: bad }, 'model'],
  ];
  for (const bad of CONTROLS) {
    for (const [m, p, body, field] of cases(bad)) {
      const what = `${m} ${p} ${JSON.stringify(body)}`;
      const r = await srv.api(m, p, body);
      assert.equal(r.status, 400, `${what}: ${r.text}`);
      assert.equal(r.json.error.code, 'invalid_request', what);
      if (bad.includes('\u0000')) continue; // refused by the JSON parser already, as malformed
      assert.equal(r.json.error.details.field, field, what);
      assert.match(r.json.error.message, /must not contain control characters \(U\+00[0-9A-F]{2} at character \d+\)/, what);
    }
  }
  // A batch refuses the item alone, naming the field.
  const b = await srv.api('POST', '/v1/traces', {
    traces: [{ agent_id: agent.id, external_id: 'ok-1', input: 'i', output: 'o' },
      { agent_id: agent.id, external_id: 'bad\u001b', input: 'i', output: 'o' }],
  });
  assert.equal(b.status, 201, b.text);
  assert.deepEqual(b.json.summary, { created: 1, updated: 0, unchanged: 0, rejected: 1 });
  assert.equal(b.json.data[1].error.details.field, 'external_id');
  // Nothing was stored under a refused name.
  const agents = (await srv.api('GET', '/v1/agents?limit=500')).json.data;
  assert.deepEqual(agents.map((a) => a.name), ['names']);
  assert.equal((await srv.api('GET', `/v1/evals?agent_id=${agent.id}`)).json.data.length, 1);
  assert.equal((await srv.api('GET', '/v1/jobs')).json.data.length, 0);
});

test('names with other characters, and free text with tabs, newlines and escapes, are kept', async () => {
  const name = 'Support bot ☎ — ünïcode 😀 "quoted" \\ back';
  const text = 'line 1\n\tindented\r\nline 3 \u001b[1mbold\u001b[0m \u007f \u0085';
  const a = await srv.api('POST', '/v1/agents', { name, description: text, prompt_template: `Hi {{x}}\n\t${text}` });
  assert.equal(a.status, 201, a.text);
  assert.equal(a.json.name, name);
  assert.equal(a.json.description, text);
  const back = (await srv.api('GET', `/v1/agents/${a.json.id}`)).json;
  assert.equal(back.description, text);
  assert.equal(back.active_version.prompt_template, `Hi {{x}}\n\t${text}`);
  const p = await srv.api('PATCH', `/v1/agents/${a.json.id}`, { description: `${text}!` });
  assert.equal(p.json.description, `${text}!`);
  const e = await srv.api('POST', '/v1/evals', { agent_id: a.json.id, name: 'judge 2', description: text });
  assert.equal(e.json.description, text);
  const t = await srv.api('POST', '/v1/traces', { agent_id: a.json.id, source: 'lang fuse', external_id: 'x/1 é', input: text, output: text });
  assert.equal(t.status, 201, t.text);
  assert.equal(t.json.input, text);
  const f = await srv.api('PUT', `/v1/traces/${t.json.id}/feedback`, { rating: 'negative', note: text });
  assert.equal(f.json.note, text);
  const x = await srv.api('POST', `/v1/evals/${e.json.id}/executions`, { executions: [{ trace_id: t.json.id, predicted_result: true, predicted_reason: text }] });
  assert.equal(x.json.summary.created, 1, x.text);
  const bp = await srv.api('POST', '/v1/best-practices', { category: 'general', title: 'Be clear', content: text });
  assert.equal(bp.json.content, text);
  const v = await srv.api('POST', `/v1/agents/${a.json.id}/versions`, { prompt_template: 'Hello {{x}}' });
  const rej = await srv.api('POST', `/v1/agents/${a.json.id}/versions/${v.json.version}/reject`, { reason: text });
  assert.equal(rej.json.review_note, text);
});

test('names stored before the check keep working: found, renamed, archived, referred to', async () => {
  const old = (await srv.api('POST', '/v1/agents', { name: 'legacy' })).json;
  const oldEval = (await srv.api('POST', '/v1/evals', { agent_id: old.id, name: 'legacy-eval' })).json;
  const tr = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, source: 'legacy', external_id: 'legacy-1', input: 'i', output: 'o' })).json;
  // As an older refold stored them: straight into the database.
  await sql(srv.db, `UPDATE agents SET name = 'old\x1b[31mname' WHERE id = '${old.id}'`);
  await sql(srv.db, `UPDATE evals SET name = 'old\teval' WHERE id = '${oldEval.id}'`);
  await sql(srv.db, `UPDATE traces SET source = 'src\x01', external_id = 'ext\x7f' WHERE id = '${tr.id}'`);

  const found = await srv.api('GET', `/v1/agents?name=${encodeURIComponent('old\x1b[31mname')}`);
  assert.equal(found.status, 200, found.text);
  assert.deepEqual(found.json.data.map((a) => a.id), [old.id]);
  assert.equal((await srv.api('GET', `/v1/agents/${old.id}`)).json.name, 'old\x1b[31mname');
  assert.equal((await srv.api('GET', `/v1/evals/${oldEval.id}`)).json.name, 'old\teval');
  // Changing something else leaves the name alone; un-archiving keeps it.
  const d = await srv.api('PATCH', `/v1/agents/${old.id}`, { description: 'still here' });
  assert.equal(d.status, 200, d.text);
  assert.equal((await srv.api('DELETE', `/v1/agents/${old.id}`)).status, 204);
  const un = await srv.api('PATCH', `/v1/agents/${old.id}`, { status: 'confirmed' });
  assert.equal(un.status, 200, un.text);
  assert.equal(un.json.name, 'old\x1b[31mname');
  const renamed = await srv.api('PATCH', `/v1/agents/${old.id}`, { name: 'old name' });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.json.name, 'old name');
  // A trace stored under such a source and external_id is still rated and evaluated by them.
  const fb = await srv.api('POST', '/v1/feedback', { feedback: [{ source: 'src\x01', external_id: 'ext\x7f', rating: 'positive' }] });
  assert.equal(fb.json.summary.created, 1, fb.text);
  const x = await srv.api('POST', `/v1/evals/${ev.id}/executions`, { executions: [{ source: 'src\x01', external_id: 'ext\x7f', predicted_result: false }] });
  assert.equal(x.json.summary.created, 1, x.text);
  assert.equal((await srv.api('GET', `/v1/traces/${tr.id}`)).json.feedback.rating, 'positive');
  assert.equal((await srv.api('DELETE', `/v1/traces/${tr.id}`)).status, 204);
});

test('agent and eval names refuse white space at either end, or nothing else, with a 400 naming the field', async () => {
  // "bot" and "bot " would be two agents that look like one in every list.
  const ends = ['bot ', ' bot', '\u00a0bot', 'bot\u3000', 'bot\u2003'];
  const blank = [' ', '   ', '\u00a0', '\u2003 \u3000'];
  const cases = (bad) => [
    ['POST', '/v1/agents', { name: bad }],
    ['PATCH', `/v1/agents/${agent.id}`, { name: bad }],
    ['POST', '/v1/evals', { agent_id: agent.id, name: bad }],
  ];
  for (const [list, message] of [[ends, 'name must not begin or end with white space'], [blank, 'name must not be only white space']]) {
    for (const bad of list) {
      for (const [m, p, body] of cases(bad)) {
        const what = `${m} ${p} ${JSON.stringify(body)}`;
        const r = await srv.api(m, p, body);
        assert.equal(r.status, 400, `${what}: ${r.text}`);
        assert.equal(r.json.error.code, 'invalid_request', what);
        assert.equal(r.json.error.details.field, 'name', what);
        assert.equal(r.json.error.message, message, what);
      }
    }
  }
  assert.equal((await srv.api('GET', `/v1/agents/${agent.id}`)).json.name, 'names');
  // White space inside a name, and other characters at its ends, are fine.
  const ok = await srv.api('POST', '/v1/agents', { name: 'support bot 2' });
  assert.equal(ok.status, 201, ok.text);
  const okEval = await srv.api('POST', '/v1/evals', { agent_id: ok.json.id, name: '\u200bjudge.' });
  assert.equal(okEval.status, 201, okEval.text);

  // Names stored before the check keep working: found, changed otherwise, archived, renamed.
  const old = (await srv.api('POST', '/v1/agents', { name: 'spaced' })).json;
  const oldEval = (await srv.api('POST', '/v1/evals', { agent_id: old.id, name: 'spaced-eval' })).json;
  await sql(srv.db, `UPDATE agents SET name = 'spaced ' WHERE id = '${old.id}'`);
  await sql(srv.db, `UPDATE evals SET name = ' ' WHERE id = '${oldEval.id}'`);
  const found = await srv.api('GET', `/v1/agents?name=${encodeURIComponent('spaced ')}`);
  assert.deepEqual(found.json.data.map((a) => a.id), [old.id]);
  assert.deepEqual((await srv.api('GET', '/v1/agents?name=spaced')).json.data, []);
  assert.equal((await srv.api('GET', `/v1/evals/${oldEval.id}`)).json.name, ' ');
  const d = await srv.api('PATCH', `/v1/agents/${old.id}`, { description: 'kept' });
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.name, 'spaced ');
  assert.equal((await srv.api('DELETE', `/v1/agents/${old.id}`)).status, 204);
  const un = await srv.api('PATCH', `/v1/agents/${old.id}`, { status: 'confirmed' });
  assert.equal(un.json.name, 'spaced ', un.text);
  const renamed = await srv.api('PATCH', `/v1/agents/${old.id}`, { name: 'spaced' });
  assert.equal(renamed.status, 200, renamed.text);
  assert.equal(renamed.json.name, 'spaced');
});

const jsonl = (lines) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const counts = (c) => ({ created: 0, updated: 0, unchanged: 0, rejected: 0, ...c });
const cli = (args, opts = {}) => run(args, { timeout: 120000, ...opts, env: {
  XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key, REFOLD_TTY: '' } });

test('import: a new name with white space at an end is a rejected line, one stored before imports again unchanged', async () => {
  let r = await cli(['import', '-'], { input: jsonl([{ type: 'agent', name: 'ws-agent ' },
    { type: 'agent', name: 'ws-agent', prompt_template: 'Hi {{who}}' },
    { type: 'eval', agent: 'ws-agent', name: ' ' }]) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^stdin:1: .*name must not begin or end with white space/m);
  assert.match(r.stderr, /^stdin:3: .*name must not be only white space/m);
  assert.deepEqual((await srv.api('GET', `/v1/agents?name=${encodeURIComponent('ws-agent ')}`)).json.data, []);
  // As an older refold stored them: straight into the database.
  const a = (await srv.api('GET', '/v1/agents?name=ws-agent')).json.data[0];
  const e = (await srv.api('POST', '/v1/evals', { agent_id: a.id, name: 'ws-judge' })).json;
  await sql(srv.db, `UPDATE agents SET name = 'ws-agent ' WHERE id = '${a.id}'`);
  await sql(srv.db, `UPDATE evals SET name = 'ws-judge ' WHERE id = '${e.id}'`);
  const lines = [{ type: 'agent', name: 'ws-agent ', prompt_template: 'Hi {{who}}' },
    { type: 'eval', agent: 'ws-agent ', name: 'ws-judge ' },
    { type: 'trace', agent: 'ws-agent ', external_id: 'ws-1', input: 'i', output: 'o' }];
  r = await cli(['import', '-', '--json'], { input: jsonl(lines) });
  assert.equal(r.code, 0, r.stderr);
  const t = JSON.parse(r.stdout).types;
  assert.deepEqual(t.agent, counts({ unchanged: 1 }));
  assert.deepEqual(t.eval, counts({ unchanged: 1 }));
  assert.deepEqual(t.trace, counts({ created: 1 }));
});
