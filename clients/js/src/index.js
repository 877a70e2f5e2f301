// Browser (and any runtime with a global WebSocket) entry of @herald/client.
export { HeraldClient, MemoryStorage, Backoff, parseRetryAfter, decodeJwt } from './client.js';
