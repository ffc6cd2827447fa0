// /healthz on a node whose database is down before the answering HTTP thread ever opened
// its connection (a node started just before the outage, or a thread that never served a
// request): 503 naming the configured backend, "postgres". It answered "backend": null,
// as the backend came from the thread's connection, which could not be opened.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDatabase, startCluster, startNode } from './pg_lib.mjs';

const cluster = await startCluster();
const db = await createDatabase(cluster.url);
let node;
after(async () => {
  if (node) { try { await node.stop(); } catch (e) { console.error(e.message); } node.cleanup(); }
  cluster.destroy();
});

test('/healthz answers 503 with backend "postgres" when no connection can be opened', { timeout: 60000 }, async () => {
  // No workers, so that nothing but the HTTP threads would touch the database.
  node = await startNode(db, { init: true, env: { REFOLD_WORKERS: '0', REFOLD_HTTP_THREADS: '4' } });
  cluster.stop();
  // Every HTTP thread: several requests at once, and more in a row.
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(Array.from({ length: 8 }, async () => {
      const r = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(15000) });
      return { status: r.status, body: await r.json() };
    }));
    for (const { status, body } of answers) {
      assert.equal(status, 503, JSON.stringify(body));
      assert.equal(body.status, 'unavailable');
      assert.equal(body.db, 'error');
      assert.equal(body.backend, 'postgres', JSON.stringify(body));
      assert.ok(body.error, JSON.stringify(body));
    }
  }
  cluster.start();
  for (const until = Date.now() + 15000; ;) {
    const r = await fetch(`${node.url}/healthz`);
    const body = await r.json();
    if (r.status === 200) { assert.equal(body.backend, 'postgres'); break; }
    assert.ok(Date.now() < until, JSON.stringify(body));
    await new Promise((res) => setTimeout(res, 100));
  }
});
