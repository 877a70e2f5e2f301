// The browser entry (src/index.js) with a fake WebSocket and a fake window:
// navigator.onLine, online/offline events, page visibility, localStorage, and
// the client logic that is hard to provoke from the real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient, Backoff, parseRetryAfter, decodeJwt, MemoryStorage } from '../src/index.js';
import { makeToken, waitFor } from './harness.js';

class FakeWS {
  static all = [];
  constructor(url, protocols) {
    this.url = new URL(url);
    this.protocols = protocols;
    this.sent = [];
    this.closed = null;
    FakeWS.all.push(this);
  }
  send(s) {
    const f = JSON.parse(s);
    f.at = performance.now();
    this.sent.push(f);
    if (f.type === 'ping' && this.onPing) queueMicrotask(() => this.onPing(f));
  }
  close(code, reason) {
    if (this.closed) return;
    this.closed = { code, reason };
    queueMicrotask(() => this.onclose && this.onclose({ code: code ?? 1005, reason: reason ?? '' }));
  }
  // ---- the server's side
  recv(frame) {
    this.onmessage({ data: JSON.stringify(frame) });
  }
  welcome(extra = {}) {
    this.recv({
      type: 'welcome',
      conn_id: `c${FakeWS.all.indexOf(this)}`,
      user: 'u1',
      device: 'd1',
      epoch: 'e1',
      head_seq: 0,
      resume_from: 1,
      recovered: true,
      heartbeat_ms: 0,
      idle_timeout_ms: 75000,
      max_inflight: 64,
      server_time: Date.now(),
      ...extra,
    });
  }
  msg(seq, extra = {}) {
    this.recv({ type: 'msg', seq, id: `m${seq}`, data: { seq }, ts: Date.now(), attempt: 1, ...extra });
  }
  serverClose(code, reason = '') {
    this.closed = { code, reason, byServer: true };
    this.onclose({ code, reason });
  }
  acks() {
    return this.sent.filter((f) => f.type === 'ack').map((f) => f.seq);
  }
  frames(type) {
    return this.sent.filter((f) => f.type === type);
  }
}

class FakeWindow extends EventTarget {
  constructor({ onLine = true, hidden = false } = {}) {
    super();
    this.navigator = { onLine };
    this.document = new EventTarget();
    this.document.visibilityState = hidden ? 'hidden' : 'visible';
    this.localStorage = new MemoryStorage();
    this.WebSocket = FakeWS;
  }
  goOffline() {
    this.navigator.onLine = false;
    this.dispatchEvent(new Event('offline'));
  }
  goOnline() {
    this.navigator.onLine = true;
    this.dispatchEvent(new Event('online'));
  }
  setVisible(visible) {
    this.document.visibilityState = visible ? 'visible' : 'hidden';
    this.document.dispatchEvent(new Event('visibilitychange'));
  }
}

/** A client on a fake window; returns it with its sockets and recorded states. */
function setup(t, opts = {}) {
  const win = opts.window || new FakeWindow();
  const sockets = [];
  class WS extends FakeWS {
    constructor(url, protocols) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  win.WebSocket = WS;
  const c = new HeraldClient({
    url: 'wss://push.example.test/v1/ws',
    token: makeToken('u1'),
    device: 'd1',
    window: win,
    ...opts,
  });
  const states = [];
  const errors = [];
  c.on('state', (s, info) => states.push({ s, ...info }));
  c.on('error', (e) => errors.push(e));
  t.after(() => c.close());
  return { c, win, sockets, states, errors };
}

const lastSocket = (sockets) => sockets[sockets.length - 1];

test('Backoff: the n-th delay is uniform in [0, min(max, initial * 2^n)], reset by a welcome', () => {
  const top = new Backoff(100, 800, () => 0.999999);
  assert.deepEqual(
    Array.from({ length: 6 }, () => top.next()),
    [100, 200, 400, 800, 800, 800],
  );
  top.reset();
  assert.equal(top.next(), 100);
  const bottom = new Backoff(100, 800, () => 0);
  assert.deepEqual([bottom.next(), bottom.next()], [0, 0]);
  const real = new Backoff(100, 800);
  for (let n = 0; n < 50; n++) {
    const cap = real.cap();
    const d = real.next();
    assert.ok(Number.isInteger(d) && d >= 0 && d <= cap);
  }
});

test('parseRetryAfter and decodeJwt', () => {
  assert.equal(parseRetryAfter('retry_after=1234'), 1234);
  assert.equal(parseRetryAfter('draining; retry_after=7'), 7);
  assert.equal(parseRetryAfter(''), undefined);
  assert.equal(parseRetryAfter('retry_after=x'), undefined);
  const p = decodeJwt(makeToken('ü-user', 60, { dev: 'x' }));
  assert.equal(p.sub, 'ü-user');
  assert.equal(p.dev, 'x');
  assert.equal(decodeJwt('not a jwt'), null);
});

test('connects with the token, device, last_seq and epoch in the query and asks for herald.v1', async (t) => {
  const { sockets } = setup(t, { lastSeq: 41, epoch: 'e7' });
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  assert.equal(ws.url.pathname, '/v1/ws');
  assert.equal(ws.url.searchParams.get('device'), 'd1');
  assert.equal(ws.url.searchParams.get('last_seq'), '41');
  assert.equal(ws.url.searchParams.get('epoch'), 'e7');
  assert.equal(decodeJwt(ws.url.searchParams.get('token')).sub, 'u1');
  assert.match(ws.url.searchParams.get('attempt'), /^[0-9a-f]{16}\.1$/);
  assert.deepEqual(ws.protocols, ['herald.v1']);
});

test('offline: no connection attempts while navigator.onLine is false; the online event connects at once', async (t) => {
  const win = new FakeWindow({ onLine: false });
  const { c, sockets, states } = setup(t, { window: win });
  await waitFor(() => c.state === 'offline');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sockets.length, 0);
  win.goOnline();
  assert.equal(c.state, 'connecting');
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  assert.equal(c.state, 'open');
  assert.deepEqual(
    states.map((x) => x.s),
    ['offline', 'connecting', 'open'],
  );
});

test('offline while waiting to reconnect: the timer is dropped (no hot loop), online reconnects at once', async (t) => {
  const win = new FakeWindow();
  const { c, sockets } = setup(t, { window: win, backoffInitialMs: 50, random: () => 0.99 });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].serverClose(1006);
  assert.equal(c.state, 'waiting');
  win.goOffline();
  assert.equal(c.state, 'offline');
  await new Promise((r) => setTimeout(r, 150)); // three times the backoff
  assert.equal(sockets.length, 1);
  win.goOnline();
  await waitFor(() => sockets.length === 2);
  assert.equal(c.state, 'connecting');
  // The same session, the next attempt number (docs/protocol.md "Stale attempts").
  const [s1, n1] = sockets[0].url.searchParams.get('attempt').split('.');
  assert.deepEqual(sockets[1].url.searchParams.get('attempt').split('.'), [s1, String(Number(n1) + 1)]);
});

test('a connection that drops while the browser is offline goes to offline, not into backoff', async (t) => {
  const win = new FakeWindow();
  const { c, sockets, states } = setup(t, { window: win });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  win.navigator.onLine = false;
  sockets[0].serverClose(1006);
  assert.equal(c.state, 'offline');
  assert.equal(states.at(-1).code, 1006);
  win.goOnline();
  await waitFor(() => sockets.length === 2);
});

test('page shown while waiting: reconnect now instead of after the backoff; hidden changes nothing', async (t) => {
  const win = new FakeWindow({ hidden: true });
  const { c, sockets } = setup(t, { window: win, backoffInitialMs: 60000, random: () => 0.99 });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].serverClose(4008, 'idle timeout');
  assert.equal(c.state, 'waiting');
  win.setVisible(false);
  assert.equal(c.state, 'waiting');
  win.setVisible(true);
  await waitFor(() => sockets.length === 2);
});

test('online event or page shown while open: a ping probes the connection at once', async (t) => {
  const win = new FakeWindow();
  const { sockets } = setup(t, { window: win, minHeartbeatMs: 5000 });
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  ws.welcome({ heartbeat_ms: 25000 });
  assert.equal(ws.frames('ping').length, 0);
  win.dispatchEvent(new Event('online'));
  assert.equal(ws.frames('ping').length, 1);
  win.setVisible(true); // a probe is already out: not another one
  assert.equal(ws.frames('ping').length, 1);
});

test('localStorage by default in browsers: the position survives the client object', async (t) => {
  const win = new FakeWindow();
  const a = setup(t, { window: win });
  a.c.on('message', () => {});
  await waitFor(() => a.sockets.length === 1);
  a.sockets[0].welcome({ epoch: 'eA' });
  a.sockets[0].msg(1);
  a.sockets[0].msg(2);
  await waitFor(() => a.sockets[0].acks().length === 2);
  assert.deepEqual(JSON.parse(win.localStorage.getItem('herald:u1:d1')), { seq: 2, epoch: 'eA' });
  await a.c.close();

  const b = setup(t, { window: win });
  await waitFor(() => b.sockets.length === 1);
  assert.equal(b.sockets[0].url.searchParams.get('last_seq'), '2');
  assert.equal(b.sockets[0].url.searchParams.get('epoch'), 'eA');
});

test('dedup by seq: a redelivered seq is acked again and not handed out', async (t) => {
  const { c, sockets } = setup(t);
  const seen = [];
  c.on('message', (m) => void seen.push([m.seq, m.attempt]));
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  ws.welcome();
  ws.msg(1);
  ws.msg(2);
  ws.msg(1, { attempt: 2 });
  await waitFor(() => ws.acks().length === 3);
  assert.deepEqual(seen, [
    [1, 1],
    [2, 1],
  ]);
  assert.deepEqual(ws.acks(), [1, 2, 1]);
  assert.equal(c.duplicates, 1);
});

test('a new epoch resets the dedup mark: seqs that restart at 1 are new messages', async (t) => {
  const { c, sockets } = setup(t, { lastSeq: 50, epoch: 'old' });
  const seen = [];
  c.on('message', (m) => void seen.push(m.seq));
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome({ epoch: 'new', resume_from: 1, recovered: false });
  sockets[0].msg(1);
  await waitFor(() => seen.length === 1);
  assert.equal(c.lastSeq, 1);
  assert.equal(c.epoch, 'new');
});

test('no message listener yet: messages wait (never acked unseen)', async (t) => {
  const { c, sockets } = setup(t);
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  ws.welcome();
  ws.msg(1);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ws.acks(), []);
  const seen = [];
  c.on('message', (m) => void seen.push(m.seq));
  await waitFor(() => ws.acks().length === 1);
  assert.deepEqual(seen, [1]);
});

test('a rejecting handler: no ack, connection closed (4000), the message comes again and is then processed', async (t) => {
  const { c, sockets, states, errors } = setup(t, { backoffInitialMs: 10 });
  let fail = true;
  const seen = [];
  c.on('message', async (m) => {
    seen.push(m.seq);
    if (fail) {
      fail = false;
      throw new Error('database down');
    }
  });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].msg(1);
  sockets[0].msg(2);
  await waitFor(() => sockets.length === 2);
  assert.deepEqual(sockets[0].acks(), []);
  assert.equal(sockets[0].closed.code, 4000);
  assert.equal(errors[0].code, 'handler');
  const w = states.find((x) => x.s === 'waiting');
  assert.equal(w.code, 0);
  assert.match(w.reason, /handler failed \(seq 1\)/);
  assert.equal(c.lastSeq, 0); // resume_from - 1 of the welcome: nothing processed
  assert.equal(sockets[1].url.searchParams.get('last_seq'), '0');
  sockets[1].welcome();
  sockets[1].msg(1, { attempt: 1 });
  sockets[1].msg(2);
  await waitFor(() => sockets[1].acks().length === 2);
  assert.deepEqual(seen, [1, 1, 2]); // 2 was never handed out on the first connection
});

test("'resync' listeners run before the connection's messages, which wait for their promise", async (t) => {
  const { c, sockets } = setup(t, { lastSeq: 3, epoch: 'e1' });
  const order = [];
  let release;
  c.on('resync', async (info) => {
    order.push(['resync', info.lastSeq, info.resumeFrom]);
    await new Promise((r) => (release = r));
  });
  c.on('message', (m) => void order.push(m.seq));
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome({ resume_from: 9, recovered: false, head_seq: 9 });
  sockets[0].msg(9);
  await waitFor(() => release);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(order, [['resync', 3, 9]]);
  release();
  await waitFor(() => order.length === 2);
  assert.deepEqual(order, [['resync', 3, 9], 9]);
});

test("a 'resync' whose connection ends before its listener ran is told at the next welcome, though that one says recovered: true", async (t) => {
  const { c, sockets } = setup(t, { lastSeq: 10, epoch: 'E1', backoffInitialMs: 10, backoffMaxMs: 20 });
  const events = [];
  let releaseMsg;
  c.on('resync', (info) => void events.push(['resync', info.epoch, info.lastSeq]));
  c.on('message', async (m) => {
    events.push(m.seq);
    if (m.seq === 11) await new Promise((r) => (releaseMsg = r));
  });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome({ epoch: 'E1', head_seq: 11, resume_from: 11 });
  sockets[0].msg(11); // its handler is still running when the inbox is recreated
  await waitFor(() => releaseMsg);
  sockets[0].serverClose(1006);
  await waitFor(() => sockets.length === 2);
  sockets[1].welcome({ epoch: 'E2', head_seq: 1, resume_from: 1, recovered: false });
  sockets[1].msg(1);
  sockets[1].serverClose(4008); // ends while the resync still waits behind seq 11
  releaseMsg();
  await waitFor(() => sockets.length === 3);
  assert.equal(sockets[2].url.searchParams.get('epoch'), 'E2');
  sockets[2].welcome({ epoch: 'E2', head_seq: 1, resume_from: 1, recovered: true });
  sockets[2].msg(1);
  await waitFor(() => events.includes(1));
  assert.deepEqual(events, [11, ['resync', 'E2', 10], 1]);
});

test("a 'resync' owed when the app stops is saved with the position and told after a restart", async (t) => {
  const storage = new MemoryStorage();
  const a = setup(t, { storage, lastSeq: 5, epoch: 'E1' });
  let started = false;
  let releaseA; // never before the end: this app "died" while reloading its state
  a.c.on('resync', () => {
    started = true;
    return new Promise((r) => (releaseA = r));
  });
  try {
    await resyncOwedAcrossRestart(t, storage, a, () => started);
  } finally {
    releaseA?.(); // lets a's close() (after the test) finish
  }
});

async function resyncOwedAcrossRestart(t, storage, a, started) {
  a.c.on('message', () => {});
  await waitFor(() => a.sockets.length === 1);
  a.sockets[0].welcome({ epoch: 'E2', head_seq: 2, resume_from: 1, recovered: false });
  await waitFor(started);
  await waitFor(() => storage.getItem('herald:u1:d1'));
  assert.deepEqual(JSON.parse(storage.getItem('herald:u1:d1')), {
    seq: 0,
    epoch: 'E2',
    resync: { epoch: 'E2', lastSeq: 5, resumeFrom: 1, headSeq: 2 },
  });

  const b = setup(t, { storage });
  const events = [];
  b.c.on('resync', (info) => void events.push(['resync', info.lastSeq]));
  b.c.on('message', (m) => void events.push(m.seq));
  await waitFor(() => b.sockets.length === 1);
  assert.equal(b.sockets[0].url.searchParams.get('epoch'), 'E2');
  b.sockets[0].welcome({ epoch: 'E2', head_seq: 2, resume_from: 1, recovered: true });
  b.sockets[0].msg(1);
  await waitFor(() => b.sockets[0].acks().length === 1);
  assert.deepEqual(events, [['resync', 5], 1]);
  await waitFor(() => !('resync' in JSON.parse(storage.getItem('herald:u1:d1'))));
  assert.deepEqual(JSON.parse(storage.getItem('herald:u1:d1')), { seq: 1, epoch: 'E2' });
}

test("a rejecting 'resync' listener: messages are not handed out, the connection ends (4000) and the next one resyncs again", async (t) => {
  const { c, sockets, errors } = setup(t, { lastSeq: 5, epoch: 'E1', backoffInitialMs: 10 });
  const events = [];
  let fail = true;
  c.on('resync', async () => {
    events.push('resync');
    if (fail) {
      fail = false;
      throw new Error('state service down');
    }
  });
  c.on('message', (m) => void events.push(m.seq));
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome({ epoch: 'E2', head_seq: 1, resume_from: 1, recovered: false });
  sockets[0].msg(1);
  await waitFor(() => sockets.length === 2);
  assert.equal(sockets[0].closed.code, 4000);
  assert.deepEqual(sockets[0].acks(), []);
  assert.equal(errors[0].code, 'handler');
  sockets[1].welcome({ epoch: 'E2', head_seq: 1, resume_from: 1, recovered: true });
  sockets[1].msg(1);
  await waitFor(() => sockets[1].acks().length === 1);
  assert.deepEqual(events, ['resync', 'resync', 1]);
});

test("without the device option the storage key uses the token's dev claim: two devices sharing a storage keep apart", async (t) => {
  const storage = new MemoryStorage();
  const phone = setup(t, { storage, device: undefined, token: makeToken('u1', 3600, { dev: 'phone' }) });
  const laptop = setup(t, { storage, device: undefined, token: makeToken('u1', 3600, { dev: 'laptop' }) });
  phone.c.on('message', () => {});
  laptop.c.on('message', () => {});
  await waitFor(() => phone.sockets.length === 1 && laptop.sockets.length === 1);
  assert.equal(phone.sockets[0].url.searchParams.get('device'), null);
  phone.sockets[0].welcome({ device: 'phone' });
  laptop.sockets[0].welcome({ device: 'laptop' });
  phone.sockets[0].msg(1);
  for (const seq of [1, 2, 3]) laptop.sockets[0].msg(seq);
  await waitFor(() => phone.sockets[0].acks().length === 1 && laptop.sockets[0].acks().length === 3);
  await phone.c.close();
  await laptop.c.close();
  assert.equal(JSON.parse(storage.getItem('herald:u1:phone')).seq, 1);
  assert.equal(JSON.parse(storage.getItem('herald:u1:laptop')).seq, 3);

  const again = setup(t, { storage, device: undefined, token: makeToken('u1', 3600, { dev: 'phone' }) });
  await waitFor(() => again.sockets.length === 1);
  assert.equal(again.sockets[0].url.searchParams.get('last_seq'), '1');
});

test('close() resolves only after the last position reached an async storage', async (t) => {
  const saved = [];
  const storage = {
    getItem: async () => null,
    setItem: (k, v) => new Promise((r) => setTimeout(() => r(saved.push(JSON.parse(v).seq)), 50)),
  };
  const { c, sockets } = setup(t, { storage });
  c.on('message', () => {});
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].msg(1);
  sockets[0].msg(2);
  await waitFor(() => sockets[0].acks().length === 2);
  await c.close();
  assert.equal(saved.at(-1), 2);
  await c.close(); // closed already: still resolves
});

test('heartbeat: answered pings keep heartbeat_ms; a miss pings again at once; two misses in a row end the connection', async (t) => {
  const { c, sockets, states } = setup(t, { minHeartbeatMs: 100, backoffInitialMs: 60000 });
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  let answer = true;
  ws.onPing = (f) => answer && ws.recv({ type: 'pong', id: f.id, ts: f.ts });
  ws.welcome({ heartbeat_ms: 300 });
  assert.equal(c.heartbeatInterval, 300);
  await waitFor(() => ws.frames('ping').length === 2);
  assert.equal(c.heartbeatInterval, 300);
  assert.ok(c.rtt !== null);
  answer = false;
  await waitFor(() => c.state === 'waiting', 3000);
  const at = ws.frames('ping').map((f) => f.at);
  assert.equal(at.length, 4);
  assert.ok(at[1] - at[0] >= 290, `answered: next ping after heartbeat_ms (${at[1] - at[0]})`);
  assert.ok(at[2] - at[1] >= 290, `(${at[2] - at[1]})`);
  const gap = at[3] - at[2];
  assert.ok(gap >= 95 && gap < 250, `missed: another ping after the pong timeout (${gap})`);
  assert.equal(ws.closed.code, 4000);
  assert.match(states.at(-1).reason, /heartbeat: 2 pings/);
});

test('heartbeat: any frame counts as an answer; after a miss the interval is minHeartbeatMs and doubles back with each pong', async (t) => {
  const { c, sockets } = setup(t, { minHeartbeatMs: 100 });
  c.on('message', () => {});
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  const plan = ['msg', 'none', 'pong', 'pong', 'pong'];
  ws.onPing = (f) => {
    const what = plan.shift();
    if (what === 'msg') ws.msg(1); // alive, though not a pong
    if (what === 'pong') ws.recv({ type: 'pong', id: f.id, ts: f.ts });
  };
  ws.welcome({ heartbeat_ms: 400 });
  await waitFor(() => ws.frames('ping').length === 6, 5000);
  const at = ws.frames('ping').map((f) => f.at);
  const gaps = at.slice(1).map((x, i) => Math.round(x - at[i]));
  // 1 answered by a msg: next after 400. 2 missed: 3 after the 100 ms pong timeout,
  // and the interval is 100. 3 answered: 200 after 4. 4 answered: 400 after 5.
  const expected = [400, 100, 100, 200, 400];
  gaps.forEach((g, i) => assert.ok(g >= expected[i] - 5 && g < expected[i] + 80, `gaps ${gaps}, expected ${expected}`));
  assert.equal(c.state, 'open');
  assert.equal(c.heartbeatInterval, 400);
});

test('close() lets the running handler finish, acks it, then closes with 1000', async (t) => {
  const { c, sockets, states } = setup(t);
  let release;
  c.on('message', () => new Promise((r) => (release = r)));
  await waitFor(() => sockets.length === 1);
  const ws = sockets[0];
  ws.welcome();
  ws.msg(1);
  ws.msg(2);
  await waitFor(() => release);
  const closed = c.close();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(ws.closed, null);
  release();
  await closed;
  assert.deepEqual(ws.acks(), [1]);
  assert.equal(ws.closed.code, 1000);
  assert.equal(c.state, 'closed');
  assert.equal(states.at(-1).s, 'closed');
  assert.equal(c.lastSeq, 1);
});

test('1001 with retry_after: the wait is drawn from [0, retry_after], does not grow the backoff, and bounds it until a welcome', async (t) => {
  const { sockets, states } = setup(t, { random: () => 0.999999, backoffInitialMs: 100 });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].serverClose(1001, 'retry_after=30');
  assert.equal(states.at(-1).s, 'waiting');
  assert.equal(states.at(-1).delay, 30);
  await waitFor(() => sockets.length === 2);
  // Refused before the welcome: first backoff step, within retry_after or
  // 100 ms, whichever is larger (a bound of a few ms would be a loop).
  sockets[1].serverClose(1006);
  assert.equal(states.at(-1).delay, 100);
  await waitFor(() => sockets.length === 3);
  sockets[2].welcome();
  // After a welcome the bound is gone; a connection that did not last (10 s)
  // does not reset the backoff: the second step.
  sockets[2].serverClose(1006);
  assert.equal(states.at(-1).delay, 200);
});

test('1001 with retry_after=0: later attempts still wait (up to 100 ms), no loop without a pause', async (t) => {
  const { sockets, states } = setup(t, { random: () => 0.999999, backoffInitialMs: 200 });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].serverClose(1001, 'retry_after=0');
  assert.equal(states.at(-1).delay, 0);
  await waitFor(() => sockets.length === 2);
  sockets[1].serverClose(1006); // still draining
  assert.equal(states.at(-1).delay, 100);
});

test('backoff: a server that welcomes and closes at once sees the delays grow; a connection that lasts resets them', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { sockets, states } = setup(t, { random: () => 0.999999, backoffInitialMs: 100 });
  await settle();
  const delays = [];
  for (let i = 0; i < 3; i++) {
    sockets[i].welcome();
    sockets[i].serverClose(4029);
    delays.push(states.at(-1).delay);
    t.mock.timers.tick(states.at(-1).delay);
    await settle();
  }
  assert.deepEqual(delays, [100, 200, 400]);
  sockets[3].welcome();
  t.mock.timers.tick(10_000);
  sockets[3].serverClose(4029);
  assert.equal(states.at(-1).delay, 100);
});

test('token provider: asked before each connection; a failure is reported and retried with backoff', async (t) => {
  const reasons = [];
  let fail = true;
  const { c, sockets, errors, states } = setup(t, {
    backoffInitialMs: 10,
    token: async ({ reason }) => {
      reasons.push(reason);
      if (fail) {
        fail = false;
        throw new Error('auth service down');
      }
      return makeToken('u1');
    },
  });
  await waitFor(() => sockets.length === 1);
  assert.equal(errors[0].code, 'token');
  assert.equal(states[1].s, 'waiting');
  sockets[0].welcome();
  sockets[0].serverClose(4008);
  await waitFor(() => sockets.length === 2);
  assert.deepEqual(reasons, ['connect', 'reconnect', 'reconnect']);
  sockets[1].serverClose(4001, 'token expired');
  await waitFor(() => sockets.length === 3);
  assert.equal(reasons.at(-1), 'expired');
  assert.equal(c.state, 'connecting');
});

test("after 4001 a provider that fails is asked with reason 'expired' again, not for a cached token", async (t) => {
  const reasons = [];
  let failExpired = true;
  const { sockets, errors } = setup(t, {
    backoffInitialMs: 10,
    token: async ({ reason }) => {
      reasons.push(reason);
      if (reason === 'expired' && failExpired) {
        failExpired = false;
        throw new Error('auth service unreachable');
      }
      return makeToken('u1');
    },
  });
  await waitFor(() => sockets.length === 1);
  sockets[0].welcome();
  sockets[0].serverClose(4001, 'token expired');
  await waitFor(() => sockets.length === 2);
  assert.deepEqual(reasons, ['connect', 'expired', 'expired']);
  assert.equal(errors[0].code, 'token');
  sockets[1].welcome();
  sockets[1].serverClose(1006);
  await waitFor(() => sockets.length === 3);
  assert.equal(reasons.at(-1), 'reconnect');
});

test('the same module runs without any browser globals (Node without a window)', async () => {
  const c = new HeraldClient({
    url: 'http://127.0.0.1:9/',
    token: 't',
    window: undefined,
    WebSocket: FakeWS,
    autoConnect: false,
  });
  assert.equal(c.state, 'closed');
  assert.equal(c.lastSeq, null);
  assert.throws(() => new HeraldClient({ url: 'ftp://x' }), TypeError);
});

test('close() right after the constructor: no connection is ever opened', async (t) => {
  const { c, sockets, states } = setup(t);
  await c.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(sockets.length, 0);
  assert.equal(c.state, 'closed');
  assert.deepEqual(states, []);
});

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('token refresh timing: refreshMarginMs before exp by the server clock, a quarter of the life for short tokens', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_800_000_000_000 });
  const T0 = Date.now();
  const calls = [];
  const lives = [3600, 120];
  const { sockets } = setup(t, {
    token: ({ reason }) => {
      calls.push([reason, (Date.now() - T0) / 1000]);
      return makeToken('u1', lives.shift() ?? 3600);
    },
  });
  await settle();
  const ws = sockets[0];
  ws.welcome({ server_time: Date.now() + 10_000 }); // the server's clock is 10 s ahead
  // exp = T0 + 3600 s by the server's clock: refresh 60 s before, i.e. at local 3530 s.
  t.mock.timers.tick(3_530_000 - 1);
  await settle();
  assert.deepEqual(calls, [['connect', 0]]);
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(calls.at(-1), ['refresh', 3530]);
  const refresh = ws.frames('refresh')[0];
  assert.equal(decodeJwt(refresh.token).exp, T0 / 1000 + 3530 + 120);
  ws.recv({ type: 'refreshed', exp: T0 / 1000 + 3650 });
  // 110 s left by the server's clock: a quarter (27.5 s) before, at local 3530 + 82.5 s.
  t.mock.timers.tick(82_500 - 1);
  await settle();
  assert.equal(calls.length, 2);
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(calls.at(-1), ['refresh', 3612.5]);
});

test('token refresh timing: a token valid for 100 days does not trip the 24.8-day setTimeout limit', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_800_000_000_000 });
  const calls = [];
  const { sockets } = setup(t, {
    token: ({ reason }) => {
      calls.push(reason);
      return makeToken('u1', 100 * 86400);
    },
  });
  await settle();
  sockets[0].welcome({ server_time: Date.now() });
  for (let day = 1; day < 100; day++) {
    t.mock.timers.tick(86_400_000);
    await settle();
  }
  assert.deepEqual(calls, ['connect']);
  t.mock.timers.tick(86_400_000 - 60_000);
  await settle();
  assert.deepEqual(calls, ['connect', 'refresh']);
});
