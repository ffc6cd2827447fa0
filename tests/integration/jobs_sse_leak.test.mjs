// Issue 3, test 10: a client that disconnects is freed. 200 connect/abort cycles against the
// stream of a running job leave no open connections behind: the server's file descriptors
// HTTP connections and its open-stream gauge come back to where they were. A suspended stream does not see
// its client leave; the keep-alive comment (REFOLD_SSE_PING_MS, short here) is what finds
// it - the control case below shows that without it the dead streams stay open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { sleep } from './lib.mjs';
import { startJobsServer, enqueueOk, waitJob, openConnections, metric } from './jobs_lib.mjs';

const srv = await startJobsServer({ REFOLD_SSE_PING_MS: '100' });
const slow = await startJobsServer({ REFOLD_SHUTDOWN_GRACE_MS: '100' }); // keep-alive: 15 s
after(async () => {
  for (const s of [srv, slow]) { await s.stop(); s.cleanup(); }
});

// Open the stream over a raw socket and drop it: `when` decides after how much.
function connectAndAbort(s, id, when) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(s.port, '127.0.0.1', () => {
      sock.write(`GET /v1/jobs/${id}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.key}\r\n` +
        'Accept: text/event-stream\r\n\r\n');
      if (when === 'at-once') { sock.destroy(); resolve(); }
    });
    let seen = '';
    sock.on('data', (d) => {
      seen += d;
      if (when === 'after-headers' && seen.includes('\r\n\r\n')) { sock.destroy(); resolve(); }
      if (when === 'after-first-event' && seen.includes('\nid: 1\n')) { sock.destroy(); resolve(); }
    });
    sock.on('error', (e) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
    setTimeout(() => { sock.destroy(); resolve(); }, 3000).unref();
  });
}

async function settle(s, pred, ms = 15000) { // generous: it returns as soon as pred holds
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

test('10: 200 connect/abort cycles leave no open connections behind', { timeout: 60000 }, async () => {
  const job = await enqueueOk(srv, { sleep_ms: 60000, progress: 1, log: true });
  await waitJob(srv, job.id, (j) => j.status === 'running', 10000, 'running');
  await sleep(200);
  const pid = srv.child.pid;
  const conns = () => openConnections(pid, srv.port);
  const before = conns(); // this test's own keep-alive connections
  assert.equal(await metric(srv, 'refold_sse_streams'), 0);

  const modes = ['at-once', 'after-headers', 'after-first-event'];
  for (let batch = 0; batch < 10; batch++)
    await Promise.all(Array.from({ length: 20 }, (_, i) => connectAndAbort(srv, job.id, modes[(batch + i) % 3])));

  const freed = await settle(srv, async () => (await metric(srv, 'refold_sse_streams')) === 0 &&
    (await metric(srv, 'refold_sse_subscribers')) === 0 && conns() <= before + 2);
  const now = conns();
  assert.ok(freed, `streams ${await metric(srv, 'refold_sse_streams')}, subscribers ` +
    `${await metric(srv, 'refold_sse_subscribers')}, connections ${before} -> ${now}`);

  // The server still streams normally afterwards.
  const r = await srv.api('POST', `/v1/jobs/${job.id}/cancel`);
  assert.equal(r.status, 202);
  await waitJob(srv, job.id, (j) => j.status === 'cancelled', 5000, 'cancelled');
});

test('10 (control): without keep-alive comments dead suspended streams stay open until shutdown', { timeout: 30000 }, async () => {
  const job = await enqueueOk(slow, { sleep_ms: 60000, log: true });
  await waitJob(slow, job.id, (j) => j.status === 'running', 10000, 'running');
  for (let i = 0; i < 10; i++) await connectAndAbort(slow, job.id, 'after-first-event');
  await sleep(1000);
  assert.equal(await metric(slow, 'refold_sse_streams'), 10, 'nothing noticed the clients leaving');
  // Shutdown still ends every stream before stopping the daemon, and exits cleanly.
  const t0 = Date.now();
  const exit = await slow.stop();
  slow.expectExit = true; // stopped here: the after() hook's stop() finds it gone
  assert.equal(exit.code, 0);
  assert.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  assert.doesNotMatch(slow.logs, /still open at shutdown/);
});
