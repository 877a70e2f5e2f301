// The /dashboard page in a real chromium against the real server: it shows
// nothing without the API key, then shows the live connection, counts that
// rise as messages are published, dead letters and a user lookup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeraldClient } from '../../clients/js/src/node.js';
import { launchBrowser, screenshot, Server, API_KEY, makeToken, waitFor, uniqueUser } from './browser.js';

async function openDashboard(t, server) {
  const { context, problems } = await launchBrowser(t);
  const page = await context.newPage();
  await page.goto(`${server.url}/dashboard`);
  return { page, problems };
}

const kpi = (page, name) => page.locator(`[data-kpi="${name}"] .value`).innerText();
const kpiFoot = (page, name) => page.locator(`[data-kpi="${name}"] .foot`).innerText();
const count = (text) => Number(text.replace(/[^0-9.]/g, ''));

test('the dashboard shows no data until a valid API key is entered', async (t) => {
  const server = await new Server().start();
  t.after(() => server.cleanup());
  const { page, problems } = await openDashboard(t, server);
  await page.waitForSelector('#signin:not([hidden])');
  assert.equal(await page.locator('#app').isHidden(), true);

  await page.fill('#key', 'not-the-key');
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.getElementById('signin-error').textContent.includes('refused'));
  assert.equal(await page.locator('#app').isHidden(), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.dashboard.key')), null);
  await screenshot(page, 'dashboard-signin');
  // The only request the page made with the wrong key was refused.
  assert.deepEqual(problems.filter((p) => !p.includes('401')), []);
});

/** A server of `store` and one connected JS SDK client (device "phone") of a new user. */
async function serverWithClient(t, store, prefix) {
  const server = await new Server({ HERALD_STORE: store }).start();
  t.after(() => server.cleanup());
  const user = uniqueUser(prefix);
  const client = new HeraldClient({ url: server.wsUrl, token: () => makeToken(user), device: 'phone' });
  t.after(() => client.close());
  const got = [];
  client.on('message', (m) => got.push(m.seq));
  await waitFor(() => client.state === 'open', 10000, 'client open');
  return { server, user, client, got };
}

test('the dashboard shows the live connection and counts rising as messages are published', async (t) => {
  const { server, user, client, got } = await serverWithClient(t, 'rocksdb', 'dash');

  const { page, problems } = await openDashboard(t, server);
  await page.fill('#key', API_KEY);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  await page.waitForFunction(() => document.querySelector('[data-kpi="connections"] .value').textContent === '1');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.dashboard.key')), API_KEY);
  assert.match(await kpiFoot(page, 'connections'), /^1 user online/);

  // A message to a user who is not connected waits in the offline backlog;
  // one with a short TTL that nobody acks becomes a dead letter.
  const offline = uniqueUser('away');
  await server.publish(offline, { n: 1 });
  await server.publish(offline, { n: 2 }, { ttl_ms: 1, event: 'short.lived' });

  // Publish over a few seconds so that the rate and latency charts have points.
  for (let i = 1; i <= 30; i++) {
    await server.publish(user, { n: i }, { event: 'order.status' });
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1100));
  }
  await waitFor(() => got.length === 30, 10000, 'the client got all 30');
  await page.waitForFunction(() => /^32 published/.test(document.querySelector('[data-kpi="publish"] .foot').textContent), null, { timeout: 10000 });
  await page.waitForFunction(() => /^30 acked/.test(document.querySelector('[data-kpi="ack"] .foot').textContent), null, { timeout: 10000 });
  assert.ok(count(await kpi(page, 'backlog')) >= 1, 'offline backlog');
  await page.waitForFunction(() => document.querySelector('[data-kpi="dead"] .value').textContent === '1', null, { timeout: 10000 });
  await page.waitForSelector('#dead tr:has-text("expired")');
  assert.match(await page.locator('#dead tr').first().innerText(), /short\.lived/);

  // The charts drew lines.
  await page.waitForFunction(() => document.querySelectorAll('#chart-rates path.line').length >= 1);
  await page.waitForFunction(() => document.querySelectorAll('#chart-push path.line').length >= 1);

  // User lookup: the device online, its cursor, the messages acked by it.
  await page.fill('#lookup-user', user);
  await page.click('#lookup-form button');
  await page.waitForSelector('#devices tr:has-text("phone")');
  assert.match(await page.locator('#devices tr').first().innerText(), /online/);
  await page.waitForFunction(() => document.querySelectorAll('#messages tr').length === 25);
  await page.waitForSelector('#messages tr:first-child .badge.acked');
  assert.match(await page.locator('#messages tr').first().innerText(), /^30\s/);
  // A device that went away stays in the lookup, with its stored cursor.
  await client.close();
  await page.waitForSelector('#devices tr:has-text("offline")', { timeout: 10000 });
  assert.match(await page.locator('#devices tr').first().innerText(), /phone\s+offline\s+30/);
  await page.waitForFunction(() => document.querySelector('[data-kpi="connections"] .value').textContent === '0');

  // One more refresh, so that the screenshot shows the lookup and charts settled.
  const uptime = await page.locator('#uptime').innerText();
  await page.waitForFunction((u) => document.getElementById('uptime').textContent !== u, uptime);
  await screenshot(page, 'dashboard-live');
  assert.deepEqual(problems, []);
});

async function signedIn(t, server) {
  const { page, problems } = await openDashboard(t, server);
  await page.fill('#key', API_KEY);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#app:not([hidden])');
  return { page, problems };
}

async function lookUp(page, user) {
  await page.fill('#lookup-user', user);
  await page.click('#lookup-form button');
}

// One more poll of /v1/stats (the uptime shown changes every second).
async function nextTick(page) {
  const uptime = await page.locator('#uptime').innerText();
  await page.waitForFunction((u) => document.getElementById('uptime').textContent !== u, uptime, { timeout: 10000 });
}

test('a lookup the server refuses or a browser cannot ask stays in the lookup panel', async (t) => {
  const server = await new Server().start();
  t.after(() => server.cleanup());
  const user = uniqueUser('look');
  await server.publish(user, { n: 1 });
  const { page, problems } = await signedIn(t, server);
  await lookUp(page, user);
  await page.waitForSelector('#messages tr:has-text("1")');

  // Each case clears the previous user's data and leaves the rest of the page live.
  const cases = [
    ['..', /cannot be looked up from a browser/],
    ['.', /cannot be looked up from a browser/],
    ['x'.repeat(129), /1\.\.128 bytes of UTF-8; this one is 129/],
    ['é'.repeat(65), /this one is 130/],
    ['bell\u0007', /refused: .*user must be 1\.\.128 bytes/],
  ];
  for (const [bad, message] of cases) {
    await lookUp(page, bad);
    await page.waitForFunction((m) => new RegExp(m).test(document.getElementById('lookup-empty').textContent), message.source);
    assert.equal(await page.locator('#lookup-result').isHidden(), true, bad);
    assert.equal(await page.locator('#devices tr').count(), 0);
    await nextTick(page);
    await nextTick(page);
    assert.equal(await page.locator('#live').innerText(), 'Live', bad);
    assert.equal(await page.locator('#banner').isHidden(), true, bad);
    assert.match(await page.locator('#lookup-empty').innerText(), message, 'the message stays');
  }
  // A user id with spaces around it is that user id, not a trimmed one.
  const spaced = ` ${user} `;
  await server.publish(spaced, { n: 'spaced' });
  await server.publish(spaced, { n: 'spaced' });
  await lookUp(page, spaced);
  await page.waitForFunction(() => document.querySelectorAll('#messages tr').length === 2);
  assert.deepEqual(problems.filter((p) => !p.includes('400')), []);
});

test('after a restart of a memory store the charts and the lookup start over with the new process', async (t) => {
  const { server, user, client, got } = await serverWithClient(t, 'memory', 'again');
  for (let i = 1; i <= 30; i++) await server.publish(user, { n: i });
  await server.publish(uniqueUser('gone'), 1, { ttl_ms: 1 }); // a dead letter
  await waitFor(() => got.length === 30, 10000, 'the client got all 30');

  const { page, problems } = await signedIn(t, server);
  await lookUp(page, user);
  await page.waitForSelector('#messages tr:first-child:has-text("30")');
  await page.waitForFunction(() => document.querySelector('[data-kpi="dead"] .value').textContent === '1', null, { timeout: 10000 });
  await nextTick(page);

  await server.stop();
  await server.start(); // same port, a new epoch with nothing in it
  await waitFor(() => client.state === 'open', 20000, 'client open again');
  const before = got.length;
  for (let i = 1; i <= 3; i++) await server.publish(user, { after: i });
  await waitFor(() => got.length === before + 3, 10000, 'the client got the new 3');

  // The lookup shows the new inbox, seqs from 1, not "no retained messages".
  await page.waitForFunction(() => document.querySelectorAll('#messages tr').length === 3, null, { timeout: 15000 });
  assert.match(await page.locator('#messages tr').first().innerText(), /^3\s/);
  await nextTick(page);
  await nextTick(page);
  // Nothing computed across the two processes: no negative latency or count.
  const legends = await page.locator('.legend b').allInnerTexts();
  assert.ok(legends.every((v) => !v.startsWith('-')), legends.join(' | '));
  assert.match(await kpiFoot(page, 'dead'), /^0 in the last minute/);
  assert.equal(await page.locator('#live').innerText(), 'Live');
  assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|Failed to fetch/.test(p)), []);
});
