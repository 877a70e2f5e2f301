// Types of @herald/client (the same API from the browser and the Node entry).

/** Connection state. `waiting`: a reconnect is scheduled; `offline`: the browser says it is offline. */
export type State = 'connecting' | 'open' | 'waiting' | 'offline' | 'closed';

/** Why the token provider is called. */
export type TokenReason =
  | 'connect' // first connection
  | 'reconnect' // a later connection
  | 'expired' // the server rejected the last token (close 4001, HTTP 401): do not return a cached one
  | 'refresh'; // the token of a live connection is about to expire: return a newer one

export type TokenProvider = (ctx: { reason: TokenReason }) => string | Promise<string>;

/** A Web-Storage-like store (localStorage fits); methods may also return promises. */
export interface PositionStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
}

/** One message from the server (a `msg` frame, PROTOCOL.md 3). */
export interface HeraldMessage<T = unknown> {
  /** Identity of the message in the user's inbox (per epoch), strictly increasing. */
  seq: number;
  /** The publisher's id (idempotency key). */
  id: string;
  /** The publisher's event name, if any. */
  event?: string;
  /** The publisher's JSON value, unchanged. */
  data: T;
  /** When the server accepted the message (unix ms). */
  ts: number;
  /** > 1: a redelivery on the same connection. */
  attempt: number;
  traceId?: string;
}

/** The server's `welcome` frame, as sent (PROTOCOL.md 3). */
export interface Welcome {
  type: 'welcome';
  conn_id: string;
  user: string;
  device: string;
  epoch: string;
  head_seq: number;
  resume_from: number;
  recovered: boolean;
  heartbeat_ms: number;
  idle_timeout_ms: number;
  max_inflight: number;
  server_time: number;
  [field: string]: unknown;
}

/** Why the previous connection ended (for 'waiting', 'offline' and 'closed'); empty otherwise. */
export interface StateInfo {
  /**
   * The server's WebSocket close code (1001, 4001, 4008, 4010, 4011, ...); 1006 when the
   * socket died or a browser refused to say why; the HTTP status of a refused upgrade
   * (Node entry only: 401, 429, 503); 0 when the client ended it (timeout, dead
   * heartbeat, failing handler, token provider failure).
   */
  code?: number;
  /** Close reason text, refusal body, or what the client saw. */
  reason?: string;
  /** 'waiting' only: ms until the next attempt. */
  delay?: number;
  /** Node entry only: a refusal's Retry-After header, in ms. */
  retryAfterMs?: number;
}

/** Given to 'resync' listeners when the server could not resume without a gap (`recovered: false`). */
export interface ResyncInfo {
  epoch: string | null;
  /** The position the client resumed from (null: none). */
  lastSeq: number | null;
  resumeFrom: number | null;
  headSeq: number;
}

export interface HeraldError extends Error {
  /** What failed: 'token', 'handler', 'listener', 'refresh', 'storage', 'transport' or 'server' (an error frame). */
  code: 'token' | 'handler' | 'listener' | 'refresh' | 'storage' | 'transport' | 'server';
  /** 'server' only: the error frame. */
  frame?: { type: 'error'; code: string; message?: string };
}

export interface HeraldClientOptions {
  /** `wss://host/v1/ws` (ws, wss, http or https; a bare host gets the path /v1/ws). */
  url: string;
  /** A JWT, or a function returning one (called before every connection and for refreshes). Omit to rely on the `herald_token` cookie. */
  token?: string | TokenProvider;
  /** Device id, 1..64 chars of [A-Za-z0-9._:-]: one per installation (per tab in browsers). */
  device?: string;
  /** Where the resume position (last seq, epoch) is kept. Default: localStorage in browsers, memory in Node. null: nowhere. */
  storage?: PositionStorage | null;
  /** Prefix of the storage key `${storageKey}:${user}:${device}`. Default 'herald'. */
  storageKey?: string;
  /** Initial resume position; wins over storage. */
  lastSeq?: number;
  epoch?: string;
  /** Connect from the constructor (on the next microtask). Default true. */
  autoConnect?: boolean;
  /** Reconnect after losing the connection (never after 4010/4011). Default true. */
  reconnect?: boolean;
  /** Full-jitter backoff: n-th delay uniform in [0, min(backoffMaxMs, backoffInitialMs * 2^n)]. Defaults 200, 10000. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Socket open + welcome must take less. Default 10000. */
  connectTimeoutMs?: number;
  /** Upper bound of the ping interval; default (0): the server's heartbeat_ms. */
  heartbeatMs?: number;
  /** Lower bound of the ping interval. Default 5000. */
  minHeartbeatMs?: number;
  /** Consecutive unanswered pings (with nothing else received) that end the connection. Default 2. */
  maxMissedPongs?: number;
  /** Refresh the token this long before it expires (at most a quarter of its remaining life). Default 60000. */
  refreshMarginMs?: number;
  /** 'query' (browsers: the only choice) or 'header' (Node entry default). */
  tokenIn?: 'query' | 'header';
  /** A browser-style WebSocket constructor to use instead of the global one. */
  WebSocket?: unknown;
  /** The browser environment (navigator.onLine, online/offline events, document visibility, localStorage). Default globalThis; the Node entry uses none. */
  window?: unknown;
  /** Randomness for the backoff, in [0, 1). Default Math.random. */
  random?: () => number;
}

export interface HeraldEvents {
  /** A new message, once, in seq order. Acked when the returned promise resolves; a rejection means "not processed". */
  message: (m: HeraldMessage) => unknown;
  state: (state: State, info: StateInfo) => void;
  welcome: (w: Welcome) => void;
  /** The server says `recovered: false`: reload your state. Messages wait for the returned promise. */
  resync: (info: ResyncInfo) => unknown;
  error: (e: HeraldError) => void;
}

export class HeraldClient {
  constructor(options: HeraldClientOptions);
  readonly state: State;
  /** Highest seq handed out and settled (the resume position); null before any. */
  readonly lastSeq: number | null;
  readonly epoch: string | null;
  /** Smoothed round trip in ms, null before the first pong. */
  readonly rtt: number | null;
  /** The current ping interval in ms, null when not connected. */
  readonly heartbeatInterval: number | null;
  /** Welcomes after the first. */
  readonly reconnects: number;
  /** Messages dropped as already processed (and acked again). */
  readonly duplicates: number;
  on<K extends keyof HeraldEvents>(type: K, listener: HeraldEvents[K]): () => void;
  off<K extends keyof HeraldEvents>(type: K, listener: HeraldEvents[K]): void;
  connect(): void;
  close(): Promise<void>;
}

export class MemoryStorage implements PositionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class Backoff {
  constructor(initialMs: number, maxMs: number, random?: () => number);
  failures: number;
  cap(n?: number): number;
  next(ceilingMs?: number): number;
  uniform(bound: number): number;
  reset(): void;
}

export function parseRetryAfter(reason: string): number | undefined;
export function decodeJwt(token: string): Record<string, unknown> | null;
