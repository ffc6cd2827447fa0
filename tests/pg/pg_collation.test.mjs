// Lists on a database whose collation is linguistic, not bytewise. PostgreSQL compares
// text with the database's collation; en_US.UTF-8 (a common default of Debian clusters)
// and ICU's en-US ignore or front-load punctuation, so a bound such as "~", past every id
// only bytewise, sorted before every id there and every list's first page came back empty.
// ICU needs no operating-system locale, so this runs on any PostgreSQL 15 built with ICU
// (Debian's is).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Server } from '../integration/lib.mjs';
import { requirePg, psql, dropDatabaseSync } from './pg_lib.mjs';

const base = requirePg();
let srv, db;

before(async () => {
  const name = `refold_p${process.pid}_${Date.now()}_icu`;
  await psql(base, `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`);
  const u = new URL(base);
  u.pathname = '/' + name;
  db = u.toString();
  // The premise: this collation sorts "~" before an id.
  assert.equal(await psql(db, "SELECT 'agent_01M8EE5A6ZE2AHY4XY8W7RDFS5' < '~'"), 'f');
  srv = new Server({ db });
  await srv.init();
  await srv.start();
});
after(async () => {
  if (srv) { await srv.stop(); srv.cleanup(); }
  if (db) dropDatabaseSync(base, db);
});

test('every list answers its rows, newest first, and pages through them', async () => {
  const names = [];
  for (let i = 0; i < 5; i++) {
    const r = await srv.api('POST', '/v1/agents', { name: `icu-${i}`, prompt_template: 'Hi {{x}}' });
    assert.equal(r.status, 201, r.text);
    names.push(r.json.name);
  }
  const agent = (await srv.api('GET', '/v1/agents?name=icu-0')).json.data[0];
  assert.ok(agent, 'the name lookup the CLI uses finds the agent');
  for (let i = 0; i < 3; i++) {
    assert.equal((await srv.api('POST', '/v1/traces', { agent_id: agent.id, input: `i${i}`, output: 'o' })).status, 201);
  }
  assert.equal((await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'e' })).status, 201);
  assert.equal((await srv.api('POST', `/v1/agents/${agent.id}/improve-prompt`, {})).status, 202);

  const all = await srv.api('GET', '/v1/agents');
  assert.deepEqual(all.json.data.map((a) => a.name), [...names].reverse());
  const seen = [];
  let cursor = null;
  do {
    const r = await srv.api('GET', `/v1/agents?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, r.text);
    seen.push(...r.json.data.map((a) => a.name));
    cursor = r.json.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, [...names].reverse());

  assert.equal((await srv.api('GET', `/v1/traces?agent_id=${agent.id}`)).json.data.length, 3);
  assert.equal((await srv.api('GET', `/v1/evals?agent_id=${agent.id}`)).json.data.length, 1);
  assert.equal((await srv.api('GET', '/v1/jobs')).json.data.length, 1);
  assert.ok((await srv.api('GET', '/v1/best-practices')).json.data.length >= 20);
});
