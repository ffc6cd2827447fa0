// Agents and versions over HTTP: create/list/read/update/archive, template
// variables, the version state machine (promote, reject, rollback, every 409),
// diffs, pagination, and data surviving a server restart.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); srv.cleanup(); });

const TEMPLATE = 'You are a support agent for {{company}}.\nAnswer in {{ language }}.\nBe kind.\n';

test('create an agent with a template makes version 1 manual and active', async () => {
  const r = await srv.api('POST', '/v1/agents', { name: 'support', description: 'helps', prompt_template: TEMPLATE });
  assert.equal(r.status, 201);
  const a = r.json;
  assert.match(a.id, /^agent_[0-9A-Z]{26}$/);
  assert.equal(a.name, 'support');
  assert.equal(a.status, 'confirmed');
  assert.equal(a.active_version.version, 1);
  assert.equal(a.active_version.source, 'manual');
  assert.equal(a.active_version.status, 'active');
  assert.deepEqual(a.active_version.variables, ['company', 'language']);
  assert.equal(a.active_version_id, a.active_version.id);
  assert.match(a.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  const g = await srv.api('GET', `/v1/agents/${a.id}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.stats.traces, 0);
  assert.equal(g.json.stats.contradiction_rate, null);
});

test('agent names are unique among non-archived agents', async () => {
  const first = await srv.api('POST', '/v1/agents', { name: 'dup' });
  assert.equal(first.status, 201);
  const again = await srv.api('POST', '/v1/agents', { name: 'dup' });
  assert.equal(again.status, 409);
  assert.equal(again.json.error.code, 'conflict');
  assert.equal(again.json.error.details.field, 'name');
  assert.equal((await srv.api('DELETE', `/v1/agents/${first.json.id}`)).status, 204);
  assert.equal((await srv.api('DELETE', `/v1/agents/${first.json.id}`)).status, 204); // idempotent
  const archived = await srv.api('GET', `/v1/agents/${first.json.id}`);
  assert.equal(archived.json.status, 'archived');
  assert.equal((await srv.api('POST', '/v1/agents', { name: 'dup' })).status, 201);
  // Un-archiving the first would collide with the new one.
  const un = await srv.api('PATCH', `/v1/agents/${first.json.id}`, { status: 'confirmed' });
  assert.equal(un.status, 409);
  assert.equal(un.json.error.message, 'an agent named "dup" already exists');
  assert.equal(un.json.error.details.field, 'name');
  assert.equal((await srv.api('GET', `/v1/agents/${first.json.id}`)).json.status, 'archived');
});

test('given variables must equal the template placeholders', async () => {
  const bad = await srv.api('POST', '/v1/agents', { name: 'vars', prompt_template: TEMPLATE, variables: ['company'] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.details.field, 'variables');
  assert.match(bad.json.error.message, /language/);
  const extra = await srv.api('POST', '/v1/agents', { name: 'vars', prompt_template: TEMPLATE, variables: ['company', 'language', 'tone'] });
  assert.equal(extra.status, 400);
  assert.match(extra.json.error.message, /tone/);
  const ok = await srv.api('POST', '/v1/agents', { name: 'vars', prompt_template: TEMPLATE, variables: ['language', 'company', 'company'] });
  assert.equal(ok.status, 201);
});

test('many variables cost milliseconds, not an HTTP thread for minutes; the message shows both differences', async () => {
  // Names were compared list against list: 27,000 distinct placeholders took some 25 s,
  // the 35,594 of this template within 256 KiB about 45 s, a 60,000-name variables array
  // 45 s, a body of 8 MiB hours. Now: about 0.1 s each (a few seconds under ASan).
  const agent = (await srv.api('POST', '/v1/agents', { name: 'many-vars', prompt_template: 'Hi {{x}}' })).json;
  const first = 'abcdefghijklmnopqrstuvwxyz', rest = `${first}0123456789_`;
  const names = [];
  for (const a of first) for (const b of rest) for (const c of rest) names.push(a + b + c);
  const template = names.map((n) => `{{${n}}}`).join('');
  assert.ok(template.length <= 256 * 1024);
  let t0 = Date.now();
  const big = await srv.api('POST', `/v1/agents/${agent.id}/versions`, { prompt_template: template, variables: [...names].reverse() });
  assert.equal(big.status, 201, big.text.slice(0, 300));
  assert.equal(big.json.variables.length, names.length);
  assert.ok(Date.now() - t0 < 20000, `${names.length} placeholders took ${Date.now() - t0} ms`);
  t0 = Date.now();
  const declared = Array.from({ length: 60000 }, (_, i) => `d${i}`);
  const r = await srv.api('POST', `/v1/agents/${agent.id}/versions`, { prompt_template: 'Hi {{x}} {{y}}', variables: declared });
  assert.ok(Date.now() - t0 < 20000, `60,000 declared variables took ${Date.now() - t0} ms`);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'variables');
  // The first list no longer pushes the second out of the 255-byte message.
  assert.match(r.json.error.message, /^variables differ from the template's placeholders: not in the template \["d0","d1",.*,\+\d+ more\], not declared \["x","y"\]$/);
});

test('the agent list filters by exact name (the CLI resolves names with it)', async () => {
  const old = (await srv.api('POST', '/v1/agents', { name: 'named é/x' })).json;
  await srv.api('DELETE', `/v1/agents/${old.id}`);
  const cur = (await srv.api('POST', '/v1/agents', { name: 'named é/x' })).json;
  await srv.api('POST', '/v1/agents', { name: 'named' });
  const r = await srv.api('GET', `/v1/agents?name=${encodeURIComponent('named é/x')}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.data.map((a) => a.id), [cur.id, old.id]);
  assert.ok(r.json.data[0].stats, 'list rows carry stats');
  const live = await srv.api('GET', `/v1/agents?name=${encodeURIComponent('named é/x')}&status=confirmed`);
  assert.deepEqual(live.json.data.map((a) => a.id), [cur.id]);
  assert.deepEqual((await srv.api('GET', '/v1/agents?name=nobody')).json.data, []);
  assert.equal((await srv.api('GET', '/v1/agents?name=')).status, 400);
});

test('patch updates name, description and status', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'patchme', description: 'x' })).json;
  let r = await srv.api('PATCH', `/v1/agents/${a.id}`, { name: 'patched', description: null, status: 'discovered' });
  assert.equal(r.status, 200);
  assert.equal(r.json.name, 'patched');
  assert.equal(r.json.description, null);
  assert.equal(r.json.status, 'discovered');
  r = await srv.api('PATCH', `/v1/agents/${a.id}`, { status: 'bogus' });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'status');
  r = await srv.api('PATCH', `/v1/agents/${a.id}`, { name: '' });
  assert.equal(r.status, 400);
  r = await srv.api('PATCH', `/v1/agents/${a.id}`, { name: 'x'.repeat(201) });
  assert.equal(r.status, 400);
  r = await srv.api('PATCH', `/v1/agents/${a.id}`, { description: 'back' });
  assert.equal(r.json.name, 'patched');
  assert.equal(r.json.description, 'back');
});

test('version state machine: candidate, promote, reject, rollback and every 409', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'sm', prompt_template: TEMPLATE })).json;
  const base = `/v1/agents/${a.id}/versions`;
  const v2 = await srv.api('POST', base, { prompt_template: TEMPLATE + 'Cite sources.\n' });
  assert.equal(v2.status, 201);
  assert.equal(v2.json.version, 2);
  assert.equal(v2.json.status, 'candidate');
  assert.equal(v2.json.source, 'manual');
  assert.equal(v2.json.parent_version_id, a.active_version_id);
  const v3 = (await srv.api('POST', base, { prompt_template: TEMPLATE + 'Be brief.\n', variables: ['company', 'language'] })).json;
  assert.equal(v3.version, 3);
  const badVars = await srv.api('POST', base, { prompt_template: 'Hi {{x}}', variables: ['y'] });
  assert.equal(badVars.status, 400);

  // Reject 3; rejecting again or promoting a rejected one is a conflict.
  let r = await srv.api('POST', `${base}/3/reject`, { reason: 'too terse' });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'rejected');
  assert.equal(r.json.review_note, 'too terse');
  assert.ok(r.json.decided_at);
  for (const [verb, n] of [['reject', 3], ['promote', 3]]) {
    r = await srv.api('POST', `${base}/${n}/${verb}`, {});
    assert.equal(r.status, 409, `${verb} ${n}`);
    assert.equal(r.json.error.details.reason, 'invalid_transition');
  }
  // Promote 2: 1 becomes archived, the agent points at 2.
  r = await srv.api('POST', `${base}/2/promote`, { note: 'better' });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, 'active');
  let agent = (await srv.api('GET', `/v1/agents/${a.id}`)).json;
  assert.equal(agent.active_version.version, 2);
  assert.equal((await srv.api('GET', `${base}/1`)).json.status, 'archived');
  // The active version can be neither promoted nor rejected.
  assert.equal((await srv.api('POST', `${base}/2/promote`)).status, 409);
  assert.equal((await srv.api('POST', `${base}/2/reject`)).status, 409);
  // An archived version cannot be rejected, but can be promoted back (rollback).
  assert.equal((await srv.api('POST', `${base}/1/reject`)).status, 409);
  r = await srv.api('POST', `${base}/1/promote`, { note: 'rollback' });
  assert.equal(r.status, 200);
  agent = (await srv.api('GET', `/v1/agents/${a.id}`)).json;
  assert.equal(agent.active_version.version, 1);
  assert.equal((await srv.api('GET', `${base}/2`)).json.status, 'archived');
  // Exactly one active version.
  const all = (await srv.api('GET', base)).json.data;
  assert.deepEqual(all.map((v) => v.version), [3, 2, 1]);
  assert.equal(all.filter((v) => v.status === 'active').length, 1);
  const active = (await srv.api('GET', `${base}?status=active`)).json.data;
  assert.deepEqual(active.map((v) => v.version), [1]);
  // Unknown versions and malformed numbers are 404.
  assert.equal((await srv.api('GET', `${base}/99`)).status, 404);
  assert.equal((await srv.api('GET', `${base}/abc`)).status, 404);
  assert.equal((await srv.api('POST', `${base}/99/promote`)).status, 404);
});

test('archived agents take no new versions', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'gone', prompt_template: 'x' })).json;
  await srv.api('DELETE', `/v1/agents/${a.id}`);
  const r = await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: 'y' });
  assert.equal(r.status, 409);
  assert.equal(r.json.error.details.reason, 'agent_archived');
});

test('diff is a unified line diff against the parent, or ?base=', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'difft', prompt_template: 'one\ntwo\nthree\n' })).json;
  await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: 'one\nTWO\nthree\nfour\n' });
  let r = await srv.api('GET', `/v1/agents/${a.id}/versions/2/diff`);
  assert.equal(r.status, 200);
  assert.equal(r.json.base.version, 1);
  assert.equal(r.json.target.version, 2);
  assert.equal(r.json.unified, '--- v1\n+++ v2\n@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n three\n+four\n');
  assert.deepEqual(r.json.stats, { added: 2, removed: 1 });
  r = await srv.api('GET', `/v1/agents/${a.id}/versions/1/diff?base=2`);
  assert.deepEqual(r.json.stats, { added: 1, removed: 2 });
  r = await srv.api('GET', `/v1/agents/${a.id}/versions/1/diff`); // no parent: against the active (itself)
  assert.equal(r.json.unified, '');
  r = await srv.api('GET', `/v1/agents/${a.id}/versions/2/diff?base=9`);
  assert.equal(r.status, 404);
  r = await srv.api('GET', `/v1/agents/${a.id}/versions/2/diff?base=x`);
  assert.equal(r.status, 400);
  assert.equal(r.json.error.details.field, 'base');
});

test('lists paginate with opaque cursors, newest first', async () => {
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await srv.api('POST', '/v1/agents', { name: `page-${i}` })).json.id);
  const seen = [];
  let cursor = null;
  do {
    const r = await srv.api('GET', `/v1/agents?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200);
    assert.ok(r.json.data.length <= 3);
    seen.push(...r.json.data.map((a) => a.id));
    cursor = r.json.next_cursor;
  } while (cursor);
  const mine = seen.filter((id) => ids.includes(id));
  assert.deepEqual(mine, [...ids].reverse());
  assert.equal(new Set(seen).size, seen.length);
  for (const q of ['limit=0', 'limit=501', 'limit=x', 'cursor=%27%3B--', 'status=nope']) {
    const r = await srv.api('GET', `/v1/agents?${q}`);
    assert.equal(r.status, 400, q);
    assert.ok(r.json.error.details.field, q);
  }
  const versions = await srv.api('GET', `/v1/agents/${ids[0]}/versions?cursor=abc`);
  assert.equal(versions.status, 400);
  // A cursor no list returned - any word, another list's id - is 400 too, never a page
  // answered as if it were the one asked for ("zzz" sorted after every id: the first page).
  const trace = 'trace_' + ids[0].slice('agent_'.length);
  for (const [path, c] of [['/v1/agents', 'zzz'], ['/v1/agents', trace], ['/v1/agents', 'agent_'],
    ['/v1/traces', ids[0]], ['/v1/evals', 'abc'], ['/v1/jobs', ids[0]],
    ['/v1/best-practices', 'zzz']]) {
    const r = await srv.api('GET', `${path}?cursor=${c}`);
    assert.equal(r.status, 400, `${path}?cursor=${c}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error.details.field, 'cursor');
  }
  const page = await srv.api('GET', '/v1/agents?limit=2');
  const next = await srv.api('GET', `/v1/agents?limit=2&cursor=${page.json.next_cursor}`);
  assert.equal(next.status, 200);
  assert.equal(next.json.data.length, 2);
});

test('data survives a restart', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'durable', prompt_template: TEMPLATE })).json;
  await srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: TEMPLATE + 'More.\n' });
  await srv.api('POST', `/v1/agents/${a.id}/versions/2/promote`, {});
  await srv.restart();
  const g = await srv.api('GET', `/v1/agents/${a.id}`);
  assert.equal(g.status, 200);
  assert.equal(g.json.name, 'durable');
  assert.equal(g.json.active_version.version, 2);
  assert.equal((await srv.api('GET', `/v1/agents/${a.id}/versions/1`)).json.status, 'archived');
});

test('concurrent promotes and rejects of one agent: each is applied or a clean 409, one version stays active', async () => {
  const a = (await srv.api('POST', '/v1/agents', { name: 'racing', prompt_template: 'v1 {{x}}' })).json;
  const made = await Promise.all(Array.from({ length: 16 }, (_, i) =>
    srv.api('POST', `/v1/agents/${a.id}/versions`, { prompt_template: `v${i + 2} {{x}}` })));
  assert.deepEqual(made.map((r) => r.status), made.map(() => 201));
  assert.deepEqual(made.map((r) => r.json.version).sort((x, y) => x - y), Array.from({ length: 16 }, (_, i) => i + 2));
  // Every candidate promoted and rejected at once, by two requests racing each other.
  const ops = await Promise.all(Array.from({ length: 16 }, (_, i) => [
    srv.api('POST', `/v1/agents/${a.id}/versions/${i + 2}/promote`, {}),
    srv.api('POST', `/v1/agents/${a.id}/versions/${i + 2}/reject`, {}),
  ]).flat());
  for (const r of ops) {
    assert.ok(r.status === 200 || (r.status === 409 && r.json.error.details?.reason === 'invalid_transition'),
      `${r.status} ${r.text}`);
  }
  const versions = (await srv.api('GET', `/v1/agents/${a.id}/versions?limit=100`)).json.data;
  const active = versions.filter((v) => v.status === 'active');
  assert.equal(active.length, 1);
  assert.equal((await srv.api('GET', `/v1/agents/${a.id}`)).json.active_version_id, active[0].id);
  // Exactly one of each promote/reject pair won, and a rejected version was never active.
  for (let i = 0; i < 16; i++) {
    const pair = [ops[2 * i], ops[2 * i + 1]].map((r) => r.status);
    assert.equal(pair.filter((s) => s === 200).length, 1, `version ${i + 2}: ${pair}`);
    const v = versions.find((x) => x.version === i + 2);
    assert.equal(v.status, ops[2 * i].status === 200 ? (v.id === active[0].id ? 'active' : 'archived') : 'rejected');
  }
});
