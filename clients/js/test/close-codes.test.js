// Close codes that forbid reconnecting (PROTOCOL.md 6), and the heartbeat, against the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient } from '@herald/client';
import { startServer, makeToken, waitFor, record, uniqueUser, closeAfter } from './harness.js';

// A reconnect would start within backoffInitialMs (20 ms); this is many times that.
const QUIET_MS = 400;
const quiet = () => new Promise((r) => setTimeout(r, QUIET_MS));

test('4011: replaced by a newer connection of the same device, no reconnect', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const opts = { url: s.wsUrl, token: () => makeToken(user), device: 'd1', backoffInitialMs: 20 };
  const c1 = closeAfter(t, new HeraldClient(opts));
  const rec1 = record(c1);
  await waitFor(() => c1.state === 'open', 5000, 'first open');
  const c2 = closeAfter(t, new HeraldClient(opts));
  const rec2 = record(c2);
  await waitFor(() => c1.state === 'closed', 5000, 'first closed');
  assert.equal(rec1.states.at(-1).code, 4011);
  await waitFor(() => c2.state === 'open', 5000, 'second open');
  await quiet();
  assert.equal(c1.state, 'closed');
  assert.deepEqual(
    rec1.states.map((x) => x.s),
    ['connecting', 'open', 'closed'],
  );
  assert.equal(c2.state, 'open');
  assert.equal(rec2.welcomes.length, 1);
  const devices = await s.presence(user);
  assert.deepEqual(
    devices.map((d) => d.conn_id),
    [rec2.welcomes[0].conn_id],
  );
});

test('4010: kicked by an operator, no reconnect; connect() starts again', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({ url: s.wsUrl, token: () => makeToken(user), device: 'd1', backoffInitialMs: 20 }),
  );
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  const r = await s.request('DELETE', `/v1/users/${user}/connections?device=d1`);
  assert.equal(r.status, 200);
  await waitFor(() => c.state === 'closed', 5000, 'closed');
  assert.equal(rec.states.at(-1).code, 4010);
  await quiet();
  assert.equal(c.state, 'closed');
  assert.equal(rec.welcomes.length, 1);
  c.connect();
  await waitFor(() => c.state === 'open', 5000, 'open again');
});

test('heartbeat: pings keep a quiet connection alive past idle_timeout_ms and measure the RTT', async (t) => {
  const s = await startServer(t, { HERALD_HEARTBEAT_MS: 200, HERALD_IDLE_TIMEOUT_MS: 600 });
  const user = uniqueUser();
  const c = closeAfter(t, new HeraldClient({ url: s.wsUrl, token: () => makeToken(user), device: 'd1' }));
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  assert.equal(c.heartbeatInterval, 200); // server's heartbeat_ms below minHeartbeatMs: that one
  await waitFor(() => c.rtt !== null, 5000, 'an RTT sample');
  const opened = Date.now();
  await waitFor(() => Date.now() - opened > 1500, 3000, 'two idle timeouts');
  assert.equal(c.state, 'open');
  assert.equal(rec.welcomes.length, 1);
  assert.ok(c.rtt >= 0 && c.rtt < 1000, `rtt ${c.rtt}`);
  const [d] = await s.presence(user);
  assert.equal(d.device, 'd1');
});
