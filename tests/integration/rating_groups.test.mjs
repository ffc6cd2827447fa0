// PUT /v1/traces/{id}/feedback requests that arrive together are committed in
// groups (src/http/write_group.h). Many concurrent ratings - some for unknown
// traces, some for another workspace's trace, some refused by the test hook
// REFOLD_TEST_RATING_FAIL - must each get their own answer: the rating they
// sent read back, 404, or 500 for the refused one alone (its group is rolled
// back and every other member is applied again on its own). /metrics must show
// that groups of more than one rating did form, and the counters must equal a
// recount afterwards.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, createWorkspaceKey, sql, SOURCE_DIR } from './lib.mjs';

const REFUSED = 'refuse me';
const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
let srv, traces, foreign;

async function metric(name) {
  const text = (await srv.api('GET', '/metrics', undefined, { key: null })).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

before(async () => {
  // HOLD: a leader waits 5 ms before taking the queue, so groups form however the
  // threads happen to be scheduled.
  srv = await startServer({ env: { REFOLD_TEST_JOBS: '1', REFOLD_TEST_RATING_FAIL: REFUSED, REFOLD_TEST_RATING_HOLD_MS: '5' } });
  const agent = (await srv.api('POST', '/v1/agents', { name: 'grouped', prompt_template: 'x' })).json;
  const r = await srv.api('POST', '/v1/traces', {
    traces: Array.from({ length: 60 }, (_, i) => ({ agent_id: agent.id, input: `i${i}`, output: 'o' })),
  });
  traces = r.json.data.map((d) => d.id);
  const otherKey = await createWorkspaceKey(srv.db, 'other', srv.env);
  const other = (await srv.api('POST', '/v1/agents', { name: 'theirs', prompt_template: 'y' }, { key: otherKey })).json;
  foreign = (await srv.api('POST', '/v1/traces', { traces: [{ agent_id: other.id, input: 'i', output: 'o' }] },
    { key: otherKey })).json.data[0].id;
});
after(async () => { await srv.stop(); srv.cleanup(); });

const RATINGS = ['positive', 'negative', 'neutral'];

test('concurrent ratings committed in groups each get their own answer', async () => {
  const groupsBefore = await metric('refold_rating_groups_total');
  const groupedBefore = await metric('refold_ratings_grouped_total');
  const requests = [];
  for (let round = 0; round < 3; round++) {
    traces.forEach((id, i) => requests.push({ id, rating: RATINGS[(i + round) % 3], note: `r${round} t${i}`, want: 200 }));
    for (let k = 0; k < 10; k++) {
      requests.push({ id: `trace_01JF3Q00000000000000000${String(k).padStart(3, '0')}`, rating: 'positive', note: 'x', want: 404 });
    }
    requests.push({ id: foreign, rating: 'negative', note: 'not yours', want: 404 });
    requests.push({ id: traces[round], rating: 'negative', note: REFUSED, want: 500 });
  }
  // Shuffle deterministically so failures, 404s and good ratings share groups.
  for (let i = requests.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [requests[i], requests[j]] = [requests[j], requests[i]];
  }
  const answers = await Promise.all(requests.map((q) =>
    srv.api('PUT', `/v1/traces/${q.id}/feedback`, { rating: q.rating, note: q.note })));

  answers.forEach((a, i) => {
    const q = requests[i];
    assert.equal(a.status, q.want, `${q.note} on ${q.id}: ${a.text}`);
    if (q.want === 200) {
      assert.equal(a.json.trace_id, q.id);
      assert.equal(a.json.rating, q.rating, 'the reply reads back this request\'s own write');
      assert.equal(a.json.note, q.note);
    } else if (q.want === 404) {
      assert.equal(a.json.error.code, 'not_found');
    } else {
      assert.equal(a.json.error.code, 'internal');
      assert.match(a.json.error.message, /REFOLD_TEST_RATING_FAIL/);
    }
  });

  // What is stored is, for every trace, one of the ratings acknowledged for it; the refused
  // ones never are, and the other workspace's trace stays unrated.
  const rows = (await sql(srv.db, 'SELECT trace_id, note FROM feedback;')).trim().split('\n').map((l) => l.split('|'));
  const stored = new Map(rows);
  for (const id of traces) {
    const acked = requests.filter((q, i) => q.id === id && answers[i].status === 200).map((q) => q.note);
    assert.ok(acked.includes(stored.get(id)), `${id} holds ${stored.get(id)}, acknowledged: ${acked}`);
  }
  assert.ok(![...stored.values()].includes(REFUSED));
  assert.equal(stored.has(foreign), false);
  assert.equal((await sql(srv.db, RECOUNT)).trim(), '', 'counters equal a recount');

  // Groups formed: more ratings than transactions.
  const groups = (await metric('refold_rating_groups_total')) - groupsBefore;
  const grouped = (await metric('refold_ratings_grouped_total')) - groupedBefore;
  assert.equal(grouped, requests.length, 'every rating went through a group');
  assert.ok(grouped > groups, `${grouped} ratings in ${groups} transactions: no group of two or more formed`);
});

test('a client that goes away while its rating waits: the rating is still written, nothing leaks', async () => {
  // A writer that holds each group 1 s, so the clients can leave while suspended. They
  // leave after 300 ms: time for the request to reach the server on a loaded machine
  // (at 50 ms a request starved of CPU was sometimes aborted before it arrived).
  const slow = await startServer({ env: { REFOLD_TEST_JOBS: '1', REFOLD_TEST_RATING_HOLD_MS: '1000' } });
  try {
    const agent = (await slow.api('POST', '/v1/agents', { name: 'slow', prompt_template: 'x' })).json;
    const ids = (await slow.api('POST', '/v1/traces', {
      traces: Array.from({ length: 5 }, (_, i) => ({ agent_id: agent.id, input: `i${i}`, output: 'o' })),
    })).json.data.map((d) => d.id);
    await Promise.all(ids.map(async (id) => {
      const ctl = new AbortController();
      const p = fetch(`${slow.url}/v1/traces/${id}/feedback`, {
        method: 'PUT', signal: ctl.signal,
        headers: { authorization: `Bearer ${slow.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ rating: 'negative', note: 'left early' }),
      });
      setTimeout(() => ctl.abort(), 300);
      await assert.rejects(p, { name: 'AbortError' });
    }));
    // The writer still commits them; the server answers others normally.
    const deadline = Date.now() + 10000;
    let rated = 0;
    while (rated < ids.length && Date.now() < deadline) {
      rated = Number(await sql(slow.db, "SELECT COUNT(*) FROM feedback WHERE note = 'left early';"));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(rated, ids.length);
    assert.equal((await sql(slow.db, RECOUNT)).trim(), '');
    const ok = await slow.api('PUT', `/v1/traces/${ids[0]}/feedback`, { rating: 'positive' });
    assert.equal(ok.status, 200);
  } finally {
    // Under the sanitizers stop() fails on a leak report (a rating never freed).
    if (slow.child.exitCode === null && !slow.child.signalCode) await slow.stop();
    slow.cleanup();
  }
});

test('SIGTERM with ratings queued: they are written before the server exits, cleanly', async () => {
  // The writer holds its first group 1 s: the ratings are all queued (their connections
  // suspended) when SIGTERM arrives, and the shutdown must write them before it stops.
  const busy = await startServer({ env: { REFOLD_TEST_JOBS: '1', REFOLD_TEST_RATING_HOLD_MS: '1000' } });
  try {
    const agent = (await busy.api('POST', '/v1/agents', { name: 'busy', prompt_template: 'x' })).json;
    const ids = (await busy.api('POST', '/v1/traces', {
      traces: Array.from({ length: 30 }, (_, i) => ({ agent_id: agent.id, input: `i${i}`, output: 'o' })),
    })).json.data.map((d) => d.id);
    const puts = ids.map((id) => busy.api('PUT', `/v1/traces/${id}/feedback`, { rating: 'neutral', note: 'at shutdown' })
      .then((r) => r.status, () => 'closed'));
    await new Promise((r) => setTimeout(r, 300));
    const exit = await busy.stop();
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
    const statuses = await Promise.all(puts);
    for (const s of statuses) assert.ok(s === 200 || s === 'closed', `answer ${s}`);
    await busy.start();
    const stored = Number(await sql(busy.db, "SELECT COUNT(*) FROM feedback WHERE note = 'at shutdown';"));
    assert.equal(stored, ids.length, 'every queued rating was written before the exit');
    assert.equal((await sql(busy.db, RECOUNT)).trim(), '');
  } finally {
    if (busy.child.exitCode === null && !busy.child.signalCode) await busy.stop();
    busy.cleanup();
  }
});
