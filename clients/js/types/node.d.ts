// Types of the Node entry of @herald/client: the same API as the browser
// entry, plus the transport over the `ws` package.
export * from './index.js';

/** What a transport returns for one connection (see src/node.js). */
export interface Transport {
  onmessage: ((text: string) => void) | null;
  onclose: ((info: { code: number; reason: string; retryAfterMs?: number }) => void) | null;
  onactivity: (() => void) | null;
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * Opens a WebSocket with the `ws` package: the token may travel in the
 * Authorization header, and a refused upgrade reports its HTTP status
 * (401, 429, 503) and Retry-After. The Node entry's default transport.
 */
export declare const wsTransport: ((url: string, protocols: string[], headers: Record<string, string>) => Transport) & {
  readonly headers: true;
};
