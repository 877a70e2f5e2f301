// The browser entry (src/index.js) over a standard WHATWG WebSocket (Node's own,
// the same API as browsers': no headers, no HTTP status on refusal) against the
// real server. Node 20 has it behind --experimental-websocket: without a global
// WebSocket this file runs itself again in a child process with that flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HeraldClient, MemoryStorage } from '../src/index.js';
import { startServer, makeToken, waitFor, record, uniqueUser, closeAfter } from './harness.js';

if (typeof globalThis.WebSocket !== 'function') {
  test('browser entry over a WHATWG WebSocket (child process with --experimental-websocket)', () => {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const r = spawnSync(process.execPath, ['--experimental-websocket', fileURLToPath(import.meta.url)], {
      env,
      encoding: 'utf8',
      timeout: 60000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# fail 0/);
  });
} else {
  test('browser entry: token in the query, messages in order, acked, closed with 1000', async (t) => {
    const s = await startServer(t);
    const user = uniqueUser();
    const c = closeAfter(
      t,
      new HeraldClient({ url: s.url, token: () => makeToken(user), device: 'tab-1', storage: new MemoryStorage() }),
    );
    const rec = record(c);
    const seen = [];
    c.on('message', async (m) => {
      await new Promise((r) => setTimeout(r, 1));
      seen.push(m.data.n);
    });
    await waitFor(() => c.state === 'open', 5000, 'open');
    assert.equal(rec.welcomes[0].user, user);
    assert.equal(rec.welcomes[0].device, 'tab-1');
    for (let n = 1; n <= 3; n++) await s.publish(user, { n });
    await waitFor(async () => (await s.messageState(user, 3)).state === 'acked', 5000, 'acked');
    assert.deepEqual(seen, [1, 2, 3]);
    await c.close();
    assert.equal(rec.states.at(-1).code, 1000);
  });

  test("browser entry: a refusal is only a 1006; an expired token still gets reason 'expired' next", async (t) => {
    const s = await startServer(t, { HERALD_JWT_LEEWAY_MS: 0 });
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
        device: 'tab-1',
        backoffInitialMs: 50,
      }),
    );
    const rec = record(c);
    await waitFor(() => c.state === 'open', 5000, 'open');
    assert.equal(rec.states.find((x) => x.s === 'waiting').code, 1006);
    assert.deepEqual(reasons, ['connect', 'expired']);
  });
}
