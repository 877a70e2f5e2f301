// Reconnecting against the real server: killed and restarted, backoff, drain (1001).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient, parseRetryAfter } from '@herald/client';
import { startServer, makeToken, waitFor, record, uniqueUser, closeAfter } from './harness.js';

test('server killed (SIGKILL) and restarted on the same data: the client reconnects and resumes without loss or duplicates', async (t) => {
  const s = await startServer(t, { HERALD_STORE: 'rocksdb' });
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: () => makeToken(user),
      device: 'd1',
      backoffInitialMs: 50,
      backoffMaxMs: 200,
    }),
  );
  const rec = record(c);
  const handled = [];
  let killed;
  const afterKill = new Promise((r) => (killed = r));
  c.on('message', async (m) => {
    handled.push(m.seq);
    if (m.seq === 4) await afterKill; // 4 settles after the connection is gone: its ack is lost
  });
  await waitFor(() => c.state === 'open', 5000, 'open');
  for (let n = 1; n <= 6; n++) await s.publish(user, { n });
  await waitFor(() => handled.includes(4), 5000, 'seq 4 in the handler');

  await s.stop('SIGKILL');
  await waitFor(() => rec.states.some((x) => x.s === 'waiting'), 5000, 'waiting');
  killed();
  // 4 is processed; 5 and 6 arrived on the dead connection and were dropped unhandled.
  await waitFor(() => c.lastSeq === 4, 5000, 'seq 4 settled');
  assert.deepEqual(handled, [1, 2, 3, 4]);

  await s.start();
  await waitFor(() => rec.welcomes.length === 2, 10000, 'second welcome');
  assert.equal(rec.welcomes[1].epoch, rec.welcomes[0].epoch); // rocksdb keeps the inbox
  for (let n = 7; n <= 8; n++) await s.publish(user, { n });
  await waitFor(() => handled.includes(8), 5000, 'seq 8');
  assert.deepEqual(handled, [1, 2, 3, 4, 5, 6, 7, 8]);
  await waitFor(async () => (await s.messageState(user, 8)).state === 'acked', 5000, 'seq 8 acked');
  assert.equal(c.reconnects, 1);
});

test('backoff: full-jitter delays stay within min(max, initial * 2^n) and are honoured', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const initial = 100;
  const max = 800;
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: () => makeToken(user),
      device: 'd1',
      backoffInitialMs: initial,
      backoffMaxMs: max,
    }),
  );
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  await s.stop('SIGKILL');
  await waitFor(() => rec.times.filter((x) => x.s === 'waiting').length >= 6, 15000, 'six waits');
  await s.start();
  await waitFor(() => c.state === 'open', 10000, 'open again');

  const times = rec.times;
  let n = 0;
  for (let i = 0; i < times.length; i++) {
    if (times[i].s !== 'waiting') continue;
    const w = times[i];
    const next = times[i + 1];
    assert.ok(next && next.s === 'connecting', `a wait is followed by an attempt: ${JSON.stringify(times)}`);
    const cap = Math.min(max, initial * 2 ** n);
    assert.ok(w.delay >= 0 && w.delay <= cap, `delay ${w.delay} of wait ${n} within [0, ${cap}]`);
    const waited = next.at - w.at;
    assert.ok(waited >= w.delay - 2 && waited <= w.delay + 150, `waited ${waited} ms for a delay of ${w.delay}`);
    assert.notEqual(w.code, 4010);
    n++;
  }
  assert.ok(n >= 6);
  // Jitter: the delays are not all at their bound.
  const delays = times.filter((x) => x.s === 'waiting').map((x) => x.delay);
  assert.ok(new Set(delays).size > 1, `delays ${delays}`);
});

test('drain (SIGTERM): close 1001, reconnect within retry_after; a memory store restarts seqs in a new epoch', async (t) => {
  const s = await startServer(t, { HERALD_DRAIN_RETRY_AFTER_MS: 400 });
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: () => makeToken(user),
      device: 'd1',
      backoffInitialMs: 50,
      backoffMaxMs: 200,
    }),
  );
  const rec = record(c);
  const handled = [];
  c.on('message', (m) => void handled.push(`${m.data.run}:${m.seq}`));
  await waitFor(() => c.state === 'open', 5000, 'open');
  await s.publish(user, { run: 'a' });
  await s.publish(user, { run: 'a' });
  await waitFor(() => handled.length === 2, 5000, 'two messages');

  await s.stop('SIGTERM');
  const w = await waitFor(() => rec.states.find((x) => x.s === 'waiting'), 5000, 'waiting');
  assert.equal(w.code, 1001);
  const retryAfter = parseRetryAfter(w.reason);
  assert.ok(retryAfter !== undefined && retryAfter <= 400, `reason ${w.reason}`);
  assert.ok(w.delay <= retryAfter, `delay ${w.delay} <= retry_after ${retryAfter}`);

  await s.start();
  await waitFor(() => rec.welcomes.length === 2, 10000, 'second welcome');
  assert.notEqual(rec.welcomes[1].epoch, rec.welcomes[0].epoch);
  // Seqs restarted at 1 in the new epoch: they are new messages, not duplicates.
  await waitFor(() => rec.resyncs.length === 1, 5000, 'resync');
  await s.publish(user, { run: 'b' });
  await waitFor(() => handled.length === 3, 5000, 'message of the new epoch');
  assert.deepEqual(handled, ['a:1', 'a:2', 'b:1']);
  assert.equal(c.epoch, rec.welcomes[1].epoch);
  assert.equal(c.duplicates, 0);
});

test('after a 1001 no wait is longer than its retry_after until the next welcome, whatever the backoff', async (t) => {
  const s = await startServer(t, { HERALD_DRAIN_RETRY_AFTER_MS: 300 });
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: () => makeToken(user),
      device: 'd1',
      backoffInitialMs: 5000, // without the bound the second wait alone could take 5 s
      backoffMaxMs: 60000,
    }),
  );
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  await s.stop('SIGTERM');
  // Down: every attempt is refused; the waits stay within retry_after.
  await waitFor(() => rec.times.filter((x) => x.s === 'waiting').length >= 4, 5000, 'four waits');
  const waits = rec.times.filter((x) => x.s === 'waiting');
  assert.equal(waits[0].code, 1001);
  const retryAfter = parseRetryAfter(waits[0].reason);
  assert.ok(retryAfter !== undefined && retryAfter <= 300, `reason ${waits[0].reason}`);
  for (const w of waits) assert.ok(w.delay <= retryAfter, `delay ${w.delay} <= retry_after ${retryAfter}`);
  await s.start();
  await waitFor(() => c.state === 'open', 5000, 'open again');
});
