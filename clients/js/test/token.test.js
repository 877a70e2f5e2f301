// Tokens against the real server (HERALD_JWT_LEEWAY_MS=0: 4001 exactly at exp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient } from '@herald/client';
import { startServer, makeToken, waitFor, record, uniqueUser, closeAfter } from './harness.js';

const ENV = { HERALD_JWT_LEEWAY_MS: 0 };

test('token refresh: the provider is asked again before exp and a refresh frame keeps the same connection', async (t) => {
  const s = await startServer(t, ENV);
  const user = uniqueUser();
  const reasons = [];
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: ({ reason }) => {
        reasons.push(reason);
        return makeToken(user, 3); // exp 2..3 s away
      },
      device: 'd1',
    }),
  );
  const rec = record(c);
  const handled = [];
  c.on('message', (m) => void handled.push(m.seq));
  await waitFor(() => c.state === 'open', 5000, 'open');
  const firstExp = Math.floor(Date.now() / 1000) + 3;
  await waitFor(() => reasons.filter((r) => r === 'refresh').length >= 2, 10000, 'two refreshes');
  // Past the first token's exp: still the same connection, and it still delivers.
  await waitFor(() => Date.now() > firstExp * 1000 + 200, 5000, 'past the first exp');
  await s.publish(user, { n: 1 });
  await waitFor(() => handled.length === 1, 5000, 'a message after the first exp');
  assert.equal(rec.welcomes.length, 1);
  assert.deepEqual(
    rec.states.map((x) => x.s),
    ['connecting', 'open'],
  );
  assert.equal(reasons[0], 'connect');
  assert.equal(rec.errors.length, 0, rec.errors.map((e) => e.message).join('; '));
});

test("token expiry: close 4001, the provider is asked with reason 'expired', the client reconnects", async (t) => {
  const s = await startServer(t, ENV);
  const user = uniqueUser();
  const reasons = [];
  const short = makeToken(user, 2);
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: ({ reason }) => {
        reasons.push(reason);
        // An auth backend that cannot extend the session until it has expired.
        return reason === 'expired' ? makeToken(user, 3600) : short;
      },
      device: 'd1',
      backoffInitialMs: 50,
    }),
  );
  const rec = record(c);
  await waitFor(() => rec.welcomes.length === 2 && c.state === 'open', 10000, 'reconnected');
  const w = rec.states.find((x) => x.s === 'waiting');
  assert.equal(w.code, 4001);
  assert.equal(reasons[0], 'connect');
  assert.ok(reasons.includes('expired'), reasons.join());
  assert.equal(reasons[reasons.length - 1], 'expired');
});

test("upgrade refused with 401 (expired token): retried with a token asked with reason 'expired'", async (t) => {
  const s = await startServer(t, ENV);
  const user = uniqueUser();
  const reasons = [];
  const c = closeAfter(
    t,
    new HeraldClient({
      url: s.wsUrl,
      token: ({ reason }) => {
        reasons.push(reason);
        return reason === 'connect' ? makeToken(user, -10) : makeToken(user, 3600);
      },
      device: 'd1',
      backoffInitialMs: 50,
    }),
  );
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  const w = rec.states.find((x) => x.s === 'waiting');
  assert.equal(w.code, 401);
  assert.match(w.reason, /"error"/);
  assert.deepEqual(reasons, ['connect', 'expired']);
});

test('the token travels as the token query parameter when asked (what browsers do)', async (t) => {
  const s = await startServer(t);
  const user = uniqueUser();
  const c = closeAfter(
    t,
    new HeraldClient({ url: s.wsUrl, token: makeToken(user), device: 'q1', tokenIn: 'query' }),
  );
  const rec = record(c);
  await waitFor(() => c.state === 'open', 5000, 'open');
  assert.equal(rec.welcomes[0].user, user);
  assert.equal(rec.welcomes[0].device, 'q1');
});
