// SQLite operations as docs/operations.md describes them (SQLite only: skipped when the
// suite runs on PostgreSQL). The online backup taken while refold keeps writing is a
// consistent copy - tests/data/recount.sql finds nothing, and every batch of traces,
// ratings and eval executions is in it whole or not at all - and refold serves it after
// the documented restore.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, sql, sleep, SOURCE_DIR } from './lib.mjs';

const execFileP = promisify(execFile);
const PG = Boolean(process.env.REFOLD_TEST_PG_URL);
const RECOUNT = readFileSync(join(SOURCE_DIR, 'tests', 'data', 'recount.sql'), 'utf8');
const BATCH = 10;

const srv = PG ? null : await startServer({ env: { REFOLD_WORKERS: '0' } });
after(async () => { if (srv) { await srv.stop(); srv.cleanup(); } });

// The documented backup: VACUUM INTO a temporary name, sync, rename.
async function backup(db, target) {
  const part = `${target}.part`;
  rmSync(part, { force: true });
  await execFileP('sqlite3', [db, `VACUUM INTO '${part}'`]);
  await execFileP('sync', [part]);
  renameSync(part, target);
}

// {tag: n} for a query returning tag|n lines.
async function countsBy(db, query) {
  const out = await sql(db, query);
  return Object.fromEntries(out.split('\n').filter(Boolean).map((l) => {
    const [tag, n] = l.split('|');
    return [tag, Number(n)];
  }));
}

test('a backup taken while refold writes is consistent, and refold serves it after a restore', { skip: PG && 'SQLite only' }, async () => {
  const agent = (await srv.api('POST', '/v1/agents', { name: 'backed-up', prompt_template: 'Hi {{q}}' })).json;
  const ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;

  // Writers: each round a batch of traces, then one batch rating them and one batch of
  // eval executions on them, each batch marked with its round's tag.
  let stop = false, rounds = 0;
  const writer = async (w) => {
    for (let k = 0; !stop; k++) {
      const tag = `w${w}r${k}`;
      const r = await srv.api('POST', '/v1/traces', {
        traces: Array.from({ length: BATCH }, (_, i) => ({
          agent_id: agent.id, source: 'bk', external_id: `${tag}-${i}`, input: `input ${i} `.repeat(50),
          output: 'output', metadata: { tag },
        })),
      });
      assert.equal(r.status, 201, r.text);
      const ids = r.json.data.map((d) => d.id);
      const f = await srv.api('POST', '/v1/feedback', {
        feedback: ids.map((id, i) => ({ trace_id: id, rating: i % 2 ? 'positive' : 'negative', note: tag })),
      });
      assert.equal(f.status, 200, f.text);
      const x = await srv.api('POST', `/v1/evals/${ev.id}/executions`, {
        executions: ids.map((id, i) => ({ trace_id: id, predicted_result: i % 3 === 0, predicted_reason: tag })),
      });
      assert.equal(x.status, 200, x.text);
      rounds++;
    }
  };
  const writers = [writer(0), writer(1), writer(2)];
  while (rounds < 30) await sleep(20);
  const copy = join(srv.dir, 'backup.db');
  const before = rounds;
  await backup(srv.db, copy);
  const during = rounds - before;
  await sleep(100);
  stop = true;
  await Promise.all(writers);

  assert.equal(await sql(copy, 'PRAGMA integrity_check'), 'ok');
  assert.equal(await sql(copy, RECOUNT), '', 'the copy\'s counters equal a recount');
  const traces = await countsBy(copy, "SELECT json_extract(metadata, '$.tag') || '|' || COUNT(*) FROM traces WHERE source = 'bk' GROUP BY json_extract(metadata, '$.tag')");
  const ratings = await countsBy(copy, 'SELECT note || \'|\' || COUNT(*) FROM feedback GROUP BY note');
  const executions = await countsBy(copy, 'SELECT predicted_reason || \'|\' || COUNT(*) FROM eval_executions GROUP BY predicted_reason');
  for (const [what, counts] of [['traces', traces], ['ratings', ratings], ['executions', executions]]) {
    for (const [tag, n] of Object.entries(counts)) assert.equal(n, BATCH, `${what} of ${tag}: ${n} of ${BATCH} in the copy`);
  }
  const inCopy = Object.keys(traces).length;
  assert.ok(inCopy >= before && inCopy < rounds + 3, `${inCopy} batches in the copy, ${before} done before it, ${rounds} in all (${during} during)`);

  // The documented restore: stop, put the copy in place, drop the old -wal and -shm, start.
  const stats = (await sql(copy, `SELECT traces || ' ' || positive || ' ' || negative || ' ' || executions FROM agent_stats WHERE agent_id = '${agent.id}'`)).split(' ').map(Number);
  await srv.stop();
  renameSync(copy, srv.db);
  for (const f of [`${srv.db}-wal`, `${srv.db}-shm`]) rmSync(f, { force: true });
  await srv.start();
  const got = (await srv.api('GET', `/v1/agents/${agent.id}`)).json.stats;
  assert.deepEqual([got.traces, got.positive, got.negative, got.executions], stats);
  assert.equal(stats[0], inCopy * BATCH);
  const more = await srv.api('POST', '/v1/traces', { agent_id: agent.id, input: 'after the restore', output: 'o' });
  assert.equal(more.status, 201);
  assert.ok(!existsSync(`${copy}.part`));
});
