// Compiled (not run) by `npm run typecheck`: the README's example must type-check.
import { HeraldClient, MemoryStorage, type HeraldMessage, type State } from '@herald/client';

declare function fetchToken(): Promise<string>;
declare function applyOrderUpdate(data: unknown): Promise<void>;
declare function reloadEverything(): Promise<void>;

const c = new HeraldClient({
  url: 'wss://push.example.com/v1/ws',
  token: async ({ reason }) => (reason === 'expired' ? fetchToken() : fetchToken()),
  device: 'web-1',
  storage: new MemoryStorage(),
});
c.on('message', async (m: HeraldMessage) => {
  if (m.event === 'order.status') await applyOrderUpdate(m.data);
});
const off = c.on('state', (s: State, info) => {
  if (s === 'waiting') console.log(`reconnecting in ${info.delay} ms (code ${info.code})`);
});
c.on('resync', () => reloadEverything());
c.on('error', (e) => console.warn(e.code, e.message));
off();
const seq: number | null = c.lastSeq;
void seq;
void c.close();
