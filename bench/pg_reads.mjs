#!/usr/bin/env node
// The server's main read paths timed over HTTP for the largest agent of a loaded database;
// see bench/README-pg.md, "Read paths with 200,000 and 1,000,000 traces".
//
//   node bench/pg_reads.mjs --url http://127.0.0.1:PORT --key rf_… [--reps 7]
//
// Start the server with REFOLD_HTTP_MEMO=0 so every request runs its SQL (otherwise an
// unchanged database answers repeats from memory). Prints one markdown row per request:
// the median of --reps calls and the first call, in ms. The first calls matter on
// PostgreSQL: a connection plans a prepared statement for its parameters (a custom plan)
// for its first five runs before it may settle on a generic plan, and the server has
// several connections.
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const base = args.url || 'http://127.0.0.1:8080';
const key = args.key || process.env.REFOLD_API_KEY;
const reps = Number(args.reps || 7);

async function get(path) {
  const t = process.hrtime.bigint();
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${key}` } });
  const body = await res.json();
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return { ms, body };
}

const agents = (await get('/v1/agents?limit=500')).body.data;
const big = agents.reduce((a, b) => (b.stats.traces > a.stats.traces ? b : a));
const A = big.id;
const n = big.stats.traces;
// A cursor 90 % deep into the agent's traces, reached by paging 500 at a time.
let cursor = null, pages = 0;
while (pages * 500 < n * 0.9) {
  const { body } = await get(`/v1/traces?agent_id=${A}&limit=500${cursor ? `&cursor=${cursor}` : ''}`);
  cursor = body.next_cursor;
  pages++;
  if (!cursor) break;
}
const trace = (await get(`/v1/traces?agent_id=${A}&limit=1`)).body.data[0].id;
const oldest = (await get(`/v1/agents/${A}/versions?limit=500`)).body.data.at(-1).version;

const cases = [
  ['contradictions limit=20', `/v1/agents/${A}/contradictions?limit=20`],
  ['contradictions limit=200', `/v1/agents/${A}/contradictions?limit=200`],
  ['contradictions kind=missed_failure limit=200', `/v1/agents/${A}/contradictions?limit=200&kind=missed_failure`],
  ['contradictions kind=false_alarm limit=200', `/v1/agents/${A}/contradictions?limit=200&kind=false_alarm`],
  ['agent with stats', `/v1/agents/${A}`],
  ['agents list', '/v1/agents?limit=500'],
  ['versions list', `/v1/agents/${A}/versions?limit=500`],
  ['traces (workspace)', '/v1/traces'],
  ['traces agent_id', `/v1/traces?agent_id=${A}`],
  [`traces agent_id & version=${oldest} (oldest)`, `/v1/traces?agent_id=${A}&version=${oldest}`],
  ['traces agent_id & rating=neutral', `/v1/traces?agent_id=${A}&rating=neutral`],
  ['traces agent_id & rating=negative', `/v1/traces?agent_id=${A}&rating=negative`],
  ['traces agent_id & has_feedback=true', `/v1/traces?agent_id=${A}&has_feedback=true`],
  ['traces agent_id & has_feedback=false', `/v1/traces?agent_id=${A}&has_feedback=false`],
  ['traces rating=neutral (workspace)', '/v1/traces?rating=neutral'],
  [`traces agent_id, cursor 90 % deep`, `/v1/traces?agent_id=${A}&cursor=${cursor}`],
  [`traces agent_id & rating=neutral, cursor 90 % deep`, `/v1/traces?agent_id=${A}&rating=neutral&cursor=${cursor}`],
  ['traces agent_id limit=500', `/v1/traces?agent_id=${A}&limit=500`],
  ['trace viewer: GET /v1/traces/{id}', `/v1/traces/${trace}`],
  ['jobs', '/v1/jobs?limit=50'],
  ['jobs status=queued', '/v1/jobs?limit=50&status=queued'],
  ['jobs agent_id & type (agent page)', `/v1/jobs?agent_id=${A}&type=prompt_improvement&limit=5`],
  ['evals of the agent', `/v1/evals?agent_id=${A}`],
];
console.log(`agent ${big.name}: ${n} traces; median of ${reps} calls and the first call, ms\n`);
console.log('| request | median | first |\n|---|---|---|');
for (const [name, path] of cases) {
  const ms = [];
  for (let i = 0; i < reps; i++) ms.push((await get(path)).ms);
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(`| ${name} | ${sorted[Math.floor(reps / 2)].toFixed(1)} | ${ms[0].toFixed(1)} |`);
}
