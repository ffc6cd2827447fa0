// REFOLD_MAX_CONNECTIONS_PER_IP (docs/operations.md, Security notes): with N set, N
// connections from one address are served and the next is closed as soon as it is
// accepted, until one of the N closes; refusals are logged at most about once a second.
// Unset, or invalid (a warning names it), there is no such limit. Raw sockets only:
// fetch's kept-alive connections would count against the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startServer, sleep } from './lib.mjs';

// Open a connection and send a keep-alive GET /healthz: resolves when the answer's head
// arrived (served: true, the socket stays open) or the server closed the connection first.
function probe(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '', done = false;
    const end = (served) => { if (!done) { done = true; resolve({ socket: s, served, head: got }); } };
    s.on('connect', () => s.write('GET /healthz HTTP/1.1\r\nHost: refold\r\n\r\n'));
    s.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) end(true); });
    s.on('close', () => end(false));
    s.on('error', () => end(false));
  });
}

test('with REFOLD_MAX_CONNECTIONS_PER_IP=N, N connections work and the next one is refused', async () => {
  const N = 3;
  const srv = await startServer({ env: { REFOLD_MAX_CONNECTIONS_PER_IP: String(N) } });
  const open = [];
  let refusing, refused;
  try {
    for (let i = 0; i < N; i++) {
      const r = await probe(srv.port);
      open.push(r.socket);
      assert.ok(r.served, `connection ${i + 1} of ${N} was refused`);
      assert.match(r.head, /^HTTP\/1\.1 200 /);
    }
    refusing = Date.now();
    for (let i = 0; i < 20; i++) {
      const r = await probe(srv.port);
      r.socket.destroy();
      assert.equal(r.served, false, `connection ${N + 1} was served: ${r.head}`);
    }
    // One of the N goes away: its place is free again.
    open.shift().destroy();
    let again;
    for (let i = 0; i < 50 && !again?.served; i++) { // the server notices the close at once, almost
      again?.socket.destroy();
      if (i) await sleep(50);
      again = await probe(srv.port);
    }
    open.push(again.socket);
    refused = Date.now() - refusing;
    assert.ok(again.served, 'a connection after one of the N closed was refused');
  } finally {
    for (const s of open) s.destroy();
    await srv.stop();
    srv.cleanup();
  }
  assert.match(srv.logs, /msg="connections per client address limited" max=3 setting=REFOLD_MAX_CONNECTIONS_PER_IP/);
  // 20 and more refusals, logged once a second at most: one line, or a few on a slow machine.
  const refusals = srv.logs.split('\n').filter((l) => l.includes('Server reached connection limit'));
  const most = 1 + Math.ceil(refused / 1000);
  assert.ok(refusals.length >= 1 && refusals.length <= most, `refusals logged ${refusals.length} times in ${refused} ms:\n${refusals.join('\n')}`);
});

test('without the setting, or with an invalid one (a warning names it), there is no per-address limit', async () => {
  for (const value of [undefined, 'lots', '-1']) {
    const env = value === undefined ? {} : { REFOLD_MAX_CONNECTIONS_PER_IP: value };
    const srv = await startServer({ env });
    const open = [];
    try {
      for (let i = 0; i < 12; i++) {
        const r = await probe(srv.port);
        open.push(r.socket);
        assert.ok(r.served, `${value}: connection ${i + 1} was refused`);
      }
    } finally {
      for (const s of open) s.destroy();
      await srv.stop();
      srv.cleanup();
    }
    assert.doesNotMatch(srv.logs, /connections per client address limited/);
    if (value !== undefined)
      assert.match(srv.logs, new RegExp(`msg="ignoring invalid setting" name=REFOLD_MAX_CONNECTIONS_PER_IP value="${value}" allowed=0\\.\\.10000 default=0`));
  }
});
