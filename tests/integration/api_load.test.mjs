// A short load check (not a timing test): 8 concurrent clients rate traces
// while 4 others read; no request fails, no write is lost, and the agent's
// counters equal a recount of what was written.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib.mjs';

let srv, agent, traces;
before(async () => {
  srv = await startServer();
  agent = (await srv.api('POST', '/v1/agents', { name: 'load', prompt_template: 'x' })).json;
  const r = await srv.api('POST', '/v1/traces', {
    traces: Array.from({ length: 400 }, (_, i) => ({ agent_id: agent.id, external_id: `l${i}`, input: 'i', output: 'o' })),
  });
  traces = r.json.data.map((d) => d.id);
});
after(async () => { await srv.stop(); srv.cleanup(); });

const RATINGS = ['positive', 'negative', 'neutral'];

test('8 writers and 4 readers: no errors, no lost writes, exact counters', async () => {
  const final = new Map();
  let errors = 0, writes = 0, reads = 0;
  const writer = async (w) => {
    const mine = traces.filter((_, i) => i % 8 === w);
    for (let round = 0; round < 5; round++) {
      for (const id of mine) {
        const rating = RATINGS[(round + id.charCodeAt(id.length - 1)) % 3];
        const r = await srv.api('PUT', `/v1/traces/${id}/feedback`, { rating, note: `w${w} r${round}` });
        if (r.status !== 200) errors++;
        final.set(id, { rating, note: `w${w} r${round}` });
        writes++;
      }
    }
  };
  let done = false;
  const reader = async () => {
    while (!done) {
      const a = await srv.api('GET', `/v1/agents/${agent.id}`);
      const t = await srv.api('GET', `/v1/traces?agent_id=${agent.id}&limit=100`);
      if (a.status !== 200 || t.status !== 200) errors++;
      reads += 2;
    }
  };
  const readers = Array.from({ length: 4 }, reader);
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  done = true;
  await Promise.all(readers);
  assert.equal(errors, 0);
  assert.equal(writes, 2000);
  assert.ok(reads > 0);

  const counts = { positive: 0, negative: 0, neutral: 0 };
  for (const id of traces) {
    const t = (await srv.api('GET', `/v1/traces/${id}`)).json;
    assert.deepEqual({ rating: t.feedback.rating, note: final.get(id).note }, final.get(id), id);
    counts[t.feedback.rating]++;
  }
  const stats = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.equal(stats.traces, 400);
  assert.equal(stats.rated, 400);
  assert.deepEqual({ positive: stats.positive, negative: stats.negative, neutral: stats.neutral }, counts);
});
