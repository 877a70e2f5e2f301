// The /demo page in a real chromium against the real server: it receives and
// acks published messages, and survives losing its connection (the page's own
// "drop" button, and the server being killed and restarted) with every
// message exactly once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, screenshot, Server, API_KEY, waitFor, uniqueUser } from './browser.js';

const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
// The browser reports the refused reconnects while the server is down.
const expectedWhileDown = (p) =>
  /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|WebSocket is already in CLOSING or CLOSED state/.test(p);

async function demoServer(t, env = {}) {
  const server = await new Server({ HERALD_DEMO: 'true', ...env }).start();
  t.after(() => server.cleanup());
  return server;
}

/** Opens /demo, connects as `user`, and waits for the welcome. */
async function openDemo(t, server, user) {
  const { context, problems } = await launchBrowser(t);
  const page = await context.newPage();
  await page.goto(`${server.url}/demo`);
  await page.fill('#user', user);
  await page.click('#connect');
  await page.waitForFunction(() => window.heraldDemo.state === 'open');
  return { page, problems };
}

const seen = (page) => page.evaluate(() => ({
  received: window.heraldDemo.received.slice(),
  acked: window.heraldDemo.acked.slice(),
  welcomes: window.heraldDemo.welcomes.length,
}));

async function waitReceived(page, seqs, timeoutMs = 20000) {
  await page.waitForFunction((n) => window.heraldDemo.received.length >= n, seqs.length, { timeout: timeoutMs });
  const s = await seen(page);
  assert.deepEqual(s.received, seqs, 'every message once, in seq order');
  return s;
}

test('the demo page receives published messages and acks them', async (t) => {
  const server = await demoServer(t);
  const user = uniqueUser('demo');
  const { page, problems } = await openDemo(t, server, user);

  for (let i = 1; i <= 4; i++) await server.publish(user, { order: String(i), status: 'shipped' }, { event: 'order.status' });
  await page.click('#publish'); // the page's own publish button (POST /demo/publish)
  await waitReceived(page, range(1, 5));
  await page.waitForFunction(() => window.heraldDemo.acked.length >= 5);
  await page.waitForSelector('tr[data-seq="5"] .badge.acked');

  // The server saw the acks too.
  const device = await page.evaluate(() => sessionStorage.heraldDemoDevice);
  await waitFor(async () => (await server.messageState(user, 5)).acked_by.includes(device), 10000, 'seq 5 acked');
  assert.equal(await page.locator('#messages tr').count(), 5);
  await screenshot(page, 'demo-received');

  // The page links to the dashboard's lookup of its user, which sees this browser.
  const href = await page.getAttribute('#dashboard-link', 'href');
  assert.equal(href, `/dashboard#user=${encodeURIComponent(user)}`);
  const dash = await page.context().newPage();
  await dash.goto(server.url + href);
  await dash.fill('#key', API_KEY);
  await dash.click('#signin button[type=submit]');
  await dash.waitForSelector(`#devices tr:has-text("${device}")`);
  assert.match(await dash.locator('#devices tr').first().innerText(), /online\s+5/);
  await dash.waitForSelector('#messages tr:first-child .badge.acked');
  assert.deepEqual(problems, []);
});

test('the demo page resumes after its drop button cuts the network, without loss or duplicates', async (t) => {
  const server = await demoServer(t);
  const user = uniqueUser('demo');
  const { page, problems } = await openDemo(t, server, user);
  await server.publish(user, { step: 'before' });
  await waitReceived(page, [1]);

  await page.click('#drop'); // 4 s without network; the page publishes 3 messages meanwhile
  await page.waitForFunction(() => window.heraldDemo.state !== 'open');
  await page.waitForFunction(() => window.heraldDemo.welcomes.length >= 2, null, { timeout: 20000 });
  const s = await waitReceived(page, range(1, 4));
  assert.equal(s.welcomes, 2);
  const welcome = await page.evaluate(() => window.heraldDemo.welcomes[1]);
  assert.equal(welcome.resume_from, 2, 'resumed after the last processed seq');
  await page.waitForSelector('tr[data-seq="4"] .badge.acked');
  await screenshot(page, 'demo-after-drop');
  assert.deepEqual(problems.filter((p) => !expectedWhileDown(p)), []);
});

test('the demo page gets every message exactly once across a server crash and restart', async (t) => {
  // RocksDB on one data directory: what was accepted before the kill is there after it.
  const server = await demoServer(t, { HERALD_STORE: 'rocksdb', HERALD_SYNC: 'always' });
  const user = uniqueUser('demo');
  const { page, problems } = await openDemo(t, server, user);
  for (let i = 1; i <= 5; i++) await server.publish(user, { n: i });
  await waitReceived(page, range(1, 5));

  await server.stop('SIGKILL');
  await page.waitForFunction(() => window.heraldDemo.state !== 'open', null, { timeout: 20000 });
  await server.start(); // same port and data directory
  for (let i = 6; i <= 10; i++) await server.publish(user, { n: i });

  await page.waitForFunction(() => window.heraldDemo.welcomes.length >= 2, null, { timeout: 30000 });
  const s = await waitReceived(page, range(1, 10), 30000);
  assert.ok(s.welcomes >= 2, 'reconnected');
  await page.waitForSelector('tr[data-seq="10"] .badge.acked');
  await screenshot(page, 'demo-after-restart');
  assert.deepEqual(problems.filter((p) => !expectedWhileDown(p)), []);
});

test('the demo page starts over without false duplicates for a new epoch and for another user', async (t) => {
  // Memory store: a restart is a new epoch, seqs count from 1 again.
  const server = await demoServer(t, { HERALD_STORE: 'memory' });
  const user = uniqueUser('demo');
  const { page, problems } = await openDemo(t, server, user);
  for (let i = 1; i <= 3; i++) await server.publish(user, { n: i });
  await waitReceived(page, range(1, 3));

  await server.stop();
  await server.start(); // same port
  await page.waitForFunction(() => window.heraldDemo.welcomes.length >= 2, null, { timeout: 30000 });
  for (let i = 1; i <= 2; i++) await server.publish(user, { again: i });
  await page.waitForFunction(() => window.heraldDemo.received.length >= 5, null, { timeout: 20000 });
  assert.deepEqual((await seen(page)).received, [1, 2, 3, 1, 2]);
  await page.waitForSelector('#log li:has-text("new epoch")');
  assert.equal(await page.locator('#log li:has-text("Duplicate")').count(), 0);
  assert.equal(await page.locator('#dups').innerText(), '0');

  // Another user on the same page: its own counts and messages.
  await page.click('#disconnect');
  const other = uniqueUser('demo');
  await page.fill('#user', other);
  await page.click('#connect');
  await page.waitForFunction(() => window.heraldDemo.state === 'open');
  assert.equal(await page.locator('#connections').innerText(), '1');
  assert.equal(await page.locator('#messages tr').count(), 0);
  // Raw JSON text goes out as typed: no rounding of big integers.
  await page.fill('#data', '{"big": 9007199254740993}');
  await page.click('#publish');
  await waitReceived(page, [1]);
  assert.equal(await page.locator('#log li:has-text("Duplicate")').count(), 0);
  const stored = await (await fetch(`${server.url}/v1/users/${other}/messages?after=0`, {
    headers: { Authorization: `Bearer ${API_KEY}` },
  })).text();
  assert.match(stored, /"data":\{"big":9007199254740993\}/);

  // A user id over 128 bytes (but under 128 characters) is refused on the page.
  await page.click('#disconnect');
  await page.fill('#user', 'é'.repeat(100));
  await page.click('#connect');
  await page.waitForSelector('#log li:has-text("this one is 200")');
  assert.equal(await page.locator('#connect').isVisible(), true);
  assert.deepEqual(problems.filter((p) => !expectedWhileDown(p)), []);
});

test('the demo page and its routes do not exist unless demo mode is on', async (t) => {
  const server = await new Server().start();
  t.after(() => server.cleanup());
  for (const path of ['/demo', '/demo/demo.js', '/demo/sdk/client.js']) {
    assert.equal((await fetch(server.url + path)).status, 404, path);
  }
  for (const path of ['/demo/token', '/demo/publish']) {
    const res = await fetch(server.url + path, { method: 'POST', body: JSON.stringify({ user: 'u1', data: 1 }) });
    assert.equal(res.status, 404, path);
  }
  assert.equal((await fetch(`${server.url}/dashboard`)).status, 200);
});
