// Node entry of @herald/client: the same client over the `ws` package, which
// lets the token travel in the Authorization header and reports the HTTP
// status of a refused upgrade (401, 429, 503) as the close code.
import WebSocket from 'ws';
import { HeraldClient as BaseClient } from './client.js';

export { MemoryStorage, Backoff, parseRetryAfter, decodeJwt } from './client.js';

/** A transport over the `ws` package. */
export function wsTransport(url, protocols, headers) {
  const ws = new WebSocket(url, protocols, { headers });
  let done = false;
  const t = {
    onmessage: null,
    onclose: null,
    onactivity: null,
    send: (s) => ws.send(s),
    close: (code, reason) => {
      try {
        ws.close(code, reason);
      } catch {
        ws.terminate();
        return;
      }
      // A server that never answers the close would hold the socket (and
      // the process) for ws's own 30 s: cut it after 2 s.
      const cut = setTimeout(() => ws.terminate(), 2000);
      if (cut.unref) cut.unref();
      ws.once('close', () => clearTimeout(cut));
    },
  };
  const finish = (info) => {
    if (done) return;
    done = true;
    if (t.onclose) t.onclose(info);
  };
  ws.on('error', () => {}); // a 'close' follows every error
  ws.on('message', (data, isBinary) => {
    if (isBinary) t.onactivity && t.onactivity();
    else t.onmessage && t.onmessage(data.toString());
  });
  ws.on('ping', () => t.onactivity && t.onactivity());
  ws.on('close', (code, reason) => finish({ code, reason: reason.toString() }));
  ws.on('unexpected-response', (req, res) => {
    // Refused before the upgrade (PROTOCOL.md 2): the status is the close code.
    const seconds = Number(res.headers['retry-after']);
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => {
      if (body.length < 4096) body += c;
    });
    const end = () => {
      finish({
        code: res.statusCode,
        reason: body,
        retryAfterMs: Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined,
      });
      ws.terminate();
    };
    res.on('end', end);
    res.on('error', end);
  });
  return t;
}
wsTransport.headers = true;

export class HeraldClient extends BaseClient {
  constructor(options) {
    super({ tokenIn: 'header', ...options, window: options && 'window' in options ? options.window : undefined });
  }

  _defaultTransport(o) {
    return o.WebSocket ? super._defaultTransport(o) : wsTransport;
  }
}
