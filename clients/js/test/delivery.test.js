// Delivery against the real server: order, ack after the handler, dedup, resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient, MemoryStorage } from '@herald/client';
import { startServer, makeToken, waitFor, record, uniqueUser, closeAfter } from './harness.js';

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('delivers in seq order, one handler at a time, acking only after its promise resolves', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const c = closeAfter(t, new HeraldClient({ url: s.wsUrl, token: () => makeToken(user), device: 'd1' }));
  const seen = [];
  let active = 0;
  let maxActive = 0;
  let release;
  const gate = new Promise((r) => (release = r));
  c.on('message', async (m) => {
    active++;
    maxActive = Math.max(maxActive, active);
    seen.push(m.seq);
    assert.deepEqual(m.data, { n: m.seq });
    assert.equal(m.event, 'test.n');
    if (m.seq === 2) await gate;
    await new Promise((r) => setTimeout(r, 2));
    active--;
  });
  await waitFor(() => c.state === 'open', 5000, 'open');
  for (const n of range(1, 5)) await s.publish(user, { n }, { event: 'test.n' });

  await waitFor(() => seen.includes(2), 5000, 'seq 2 handed out');
  await waitFor(async () => (await s.messageState(user, 1)).state === 'acked', 5000, 'seq 1 acked');
  // The handler of 2 has not resolved: 2 is not acked and 3 is not handed out.
  assert.notEqual((await s.messageState(user, 2)).state, 'acked');
  assert.deepEqual(seen, [1, 2]);

  release();
  await waitFor(async () => (await s.messageState(user, 5)).state === 'acked', 5000, 'seq 5 acked');
  assert.deepEqual(seen, range(1, 5));
  assert.equal(maxActive, 1);
  assert.equal(c.lastSeq, 5);
});

test('a handler slower than the ack timeout: server closes 4008, the client reconnects, the message is processed once', async (t) => {
  const s = await startServer(t, {
    HERALD_ACK_TIMEOUT_MS: 200,
    HERALD_RETRY_INITIAL_MS: 100,
    HERALD_MAX_ATTEMPTS: 2,
  });
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({ url: s.wsUrl, token: () => makeToken(user), device: 'd1', backoffInitialMs: 50 }),
  );
  const rec = record(c);
  const handled = [];
  c.on('message', async (m) => {
    handled.push(m.seq);
    // Keep seq 1 busy until the next connection is up, so the server sends it there again.
    if (m.seq === 1) await waitFor(() => rec.welcomes.length >= 2, 10000, 'second welcome');
  });
  await waitFor(() => c.state === 'open', 5000, 'open');
  await s.publish(user, { n: 1 });
  await s.publish(user, { n: 2 });
  await waitFor(async () => (await s.messageState(user, 2)).state === 'acked', 10000, 'seq 2 acked');
  assert.ok(rec.states.some((x) => x.s === 'waiting' && x.code === 4008), JSON.stringify(rec.states));
  assert.deepEqual(handled, [1, 2]);
  assert.ok(c.duplicates >= 1, `duplicates ${c.duplicates}`);
  assert.equal((await s.messageState(user, 1)).state, 'acked');
  assert.ok(c.reconnects >= 1);
});

test('resumes with last_seq/epoch from storage: a new client continues without loss or duplicates', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const storage = new MemoryStorage();
  const opts = { url: s.wsUrl, token: () => makeToken(user), device: 'd1', storage };

  const c1 = closeAfter(t, new HeraldClient(opts));
  const h1 = [];
  c1.on('message', (m) => void h1.push(m.seq));
  await waitFor(() => c1.state === 'open', 5000, 'open');
  for (const n of range(1, 3)) await s.publish(user, { n });
  await waitFor(() => h1.length === 3, 5000, 'three messages');
  await c1.close();
  const stored = JSON.parse(storage.getItem(`herald:${user}:d1`));
  assert.equal(stored.seq, 3);
  assert.equal(stored.epoch, c1.epoch);

  for (const n of range(4, 6)) await s.publish(user, { n });
  const c2 = closeAfter(t, new HeraldClient(opts));
  const rec2 = record(c2);
  const h2 = [];
  c2.on('message', (m) => void h2.push(m.seq));
  await waitFor(() => h2.length === 3, 5000, 'messages 4..6');
  assert.deepEqual(h2, [4, 5, 6]);
  assert.equal(rec2.welcomes[0].resume_from, 4);
  assert.equal(rec2.welcomes[0].recovered, true);
  await c2.close();

  // The stored position decides what is sent, even below the server's cursor (PROTOCOL.md 10).
  storage.setItem(`herald:${user}:d1`, JSON.stringify({ seq: 4, epoch: stored.epoch }));
  const c3 = closeAfter(t, new HeraldClient(opts));
  const rec3 = record(c3);
  const h3 = [];
  c3.on('message', (m) => void h3.push(m.seq));
  await waitFor(() => h3.length === 2, 5000, 'messages 5..6 again');
  assert.deepEqual(h3, [5, 6]);
  assert.equal(rec3.welcomes[0].resume_from, 5);
});

test("messages trimmed while away: 'resync' (recovered: false) runs before any message is handed out", async (t) => {
  const s = await startServer(t, { HERALD_RETENTION_MAX_MESSAGES: 2 });
  const user = uniqueUser();
  const storage = new MemoryStorage();
  const opts = { url: s.wsUrl, token: () => makeToken(user), device: 'd1', storage };
  const c1 = closeAfter(t, new HeraldClient(opts));
  const h1 = [];
  c1.on('message', (m) => void h1.push(m.seq));
  await waitFor(() => c1.state === 'open', 5000, 'open');
  await s.publish(user, { n: 1 });
  await waitFor(() => h1.length === 1, 5000, 'seq 1');
  await c1.close();
  for (const n of range(2, 5)) await s.publish(user, { n }); // 2 and 3 are trimmed

  const c2 = closeAfter(t, new HeraldClient(opts));
  const order = [];
  let release;
  const gate = new Promise((r) => (release = r));
  c2.on('resync', async (info) => {
    order.push(`resync from ${info.lastSeq}, resume ${info.resumeFrom}`);
    await gate;
    order.push('reloaded');
  });
  c2.on('message', (m) => void order.push(m.seq));
  await waitFor(() => order.length === 1, 5000, 'resync');
  assert.equal(c2.state, 'open');
  release();
  await waitFor(() => order.length === 4, 5000, 'messages after the resync');
  assert.deepEqual(order, ['resync from 1, resume 4', 'reloaded', 4, 5]);
});
