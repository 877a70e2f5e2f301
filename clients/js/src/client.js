// The Herald client: the client side of PROTOCOL.md (shared/PROTOCOL.md), for
// browsers and Node. No dependencies: the WebSocket comes from a "transport"
// (src/transport.js), the browser environment (navigator.onLine, document
// visibility, localStorage) from options.window, feature-detected.

/** Close codes after which the client must not reconnect by itself (PROTOCOL.md 6). */
const NO_RECONNECT = [4010, 4011];
/** The client ended the connection itself (timeout, dead heartbeat, handler failure). */
const CLIENT_CLOSE = 4000;
/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER = 2147483647;
// A connection open this long resets the backoff (see _onWelcome).
const STABLE_MS = 10000;

const DEFAULTS = {
  reconnect: true,
  autoConnect: true,
  backoffInitialMs: 200,
  backoffMaxMs: 10000,
  connectTimeoutMs: 10000,
  heartbeatMs: 0,
  minHeartbeatMs: 5000,
  maxMissedPongs: 2,
  refreshMarginMs: 60000,
  storageKey: 'herald',
};

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** 16 random hex digits: the session of ?attempt= (docs/protocol.md "Stale attempts"). */
function randomSession() {
  const bytes = new Uint8Array(8);
  if (globalThis.crypto && typeof globalThis.crypto.getRandomValues === 'function') {
    globalThis.crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A Web-Storage-like store kept in memory (the default in Node). */
export class MemoryStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this._m = new Map();
  }
  /** @param {string} key */
  getItem(key) {
    const v = this._m.get(key);
    return v === undefined ? null : v;
  }
  /** @param {string} key @param {string} value */
  setItem(key, value) {
    this._m.set(key, String(value));
  }
  /** @param {string} key */
  removeItem(key) {
    this._m.delete(key);
  }
}

/**
 * Exponential backoff with full jitter: the n-th delay since the last reset is
 * uniform in [0, min(max, initial * 2^n)] (same rule as the C++ SDK).
 */
export class Backoff {
  /** @param {number} initialMs @param {number} maxMs @param {() => number} [random] */
  constructor(initialMs, maxMs, random = Math.random) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.random = random;
    this.failures = 0;
  }
  /** The bound the next delay is drawn from, after `n` failures (default: the current count). */
  cap(n = this.failures) {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(n, 40));
  }
  /** The next delay, drawn from [0, min(cap(), ceilingMs)]; advances the exponent. */
  next(ceilingMs = Infinity) {
    const c = Math.min(this.cap(), ceilingMs);
    this.failures++;
    return this.uniform(c);
  }
  /** Uniform integer in [0, bound]. */
  uniform(bound) {
    return Math.min(bound, Math.floor(this.random() * (bound + 1)));
  }
  reset() {
    this.failures = 0;
  }
}

/** The integer after `retry_after=` in a 1001 close reason (docs/protocol.md), if any. */
export function parseRetryAfter(reason) {
  const m = /(?:^|[\s;,])retry_after=(\d+)/.exec(reason || '');
  return m ? Number(m[1]) : undefined;
}

/** The payload of a JWT, decoded without verification (for `sub` and `exp`); null if unreadable. */
export function decodeJwt(token) {
  try {
    let s = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    const bytes = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === 'object' ? payload : null;
  } catch {
    return null;
  }
}

function clientError(code, message, cause) {
  const e = new Error(message);
  // @ts-ignore: extra fields
  e.code = code;
  // @ts-ignore
  if (cause !== undefined) e.cause = cause;
  return e;
}

function errText(e) {
  return e && e.message ? e.message : String(e);
}

function defaultStorage(win) {
  try {
    const ls = win && win.localStorage;
    if (ls && typeof ls.getItem === 'function') return ls;
  } catch {
    // Access can throw (sandboxed iframes, disabled storage).
  }
  return new MemoryStorage();
}

export class HeraldClient {
  /** @param {any} options */
  constructor(options) {
    if (!options || !options.url) throw new TypeError('HeraldClient: options.url is required');
    const o = { ...DEFAULTS };
    for (const k of Object.keys(options)) if (options[k] !== undefined) o[k] = options[k];
    this._o = o;
    this._url = HeraldClient._normalizeUrl(o.url);
    this._win = 'window' in options ? options.window : globalThis;
    this._transport = o.transport || this._defaultTransport(o);
    this._storage = 'storage' in options ? options.storage : defaultStorage(this._win);
    this._backoff = new Backoff(o.backoffInitialMs, o.backoffMaxMs, o.random || Math.random);
    // Since a 1001 close, until the next welcome: its retry_after bound, the
    // longest reconnect wait (see _afterEnd).
    this._restartBound = undefined;
    this._random = o.random || Math.random;
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    this._state = 'closed';
    this._conn = null;
    this._timer = null;
    this._gen = 0; // bumped by close(): async steps of older attempts give up
    this._epochGen = 0; // bumped when seqs restart (new epoch, other user)
    this._processed = Number.isSafeInteger(o.lastSeq) ? o.lastSeq : null;
    this._epoch = typeof o.epoch === 'string' ? o.epoch : null;
    this._positionGiven = this._processed !== null || this._epoch !== null;
    this._storeKey = null;
    this._pendingWrite = null;
    this._writing = null;
    // A 'resync' the app has not finished yet ({epoch, lastSeq, resumeFrom,
    // headSeq}): saved with the position and told again at every welcome
    // until a listener settles, so a crash or a lost connection in between
    // does not hide the gap (the server says recovered: true next time).
    this._resyncOwed = null;
    this._queue = [];
    this._pumping = false;
    this._running = null;
    this._stopping = false;
    this._closeWaiters = [];
    this._lastInfo = {};
    this._tokenReason = 'connect';
    this._handlerFailures = 0;
    this._welcomes = 0;
    // Connection attempts are numbered within a random session of this
    // object, so that the server never lets an attempt given up on replace
    // a later one that is connected (docs/protocol.md "Stale attempts").
    this._attemptSession = randomSession();
    this._attempts = 0;
    this._pingId = 0;
    this._srtt = null;
    this._skew = 0; // server clock - local clock, from the last welcome
    this._rttvar = 0;
    this._envBound = false;
    this.reconnects = 0;
    this.duplicates = 0;
    this._onOnline = () => this._envChange('online');
    this._onOffline = () => this._envChange('offline');
    this._onVisibility = () => this._envChange('visibility');
    this._auto = !!o.autoConnect;
    if (this._auto) queueMicrotask(() => this._auto && this.connect());
  }

  static _normalizeUrl(url) {
    const u = new URL(String(url));
    if (u.protocol === 'http:') u.protocol = 'ws:';
    else if (u.protocol === 'https:') u.protocol = 'wss:';
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
      throw new TypeError(`HeraldClient: url must be ws://, wss://, http:// or https://, got ${url}`);
    }
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/ws';
    return u;
  }

  /** Overridden by the Node entry (src/node.js) to use the `ws` package. */
  _defaultTransport(o) {
    const WS = o.WebSocket || (this._win && this._win.WebSocket) || globalThis.WebSocket;
    return browserTransport(WS);
  }

  // ---- public API ---------------------------------------------------------------

  get state() {
    return this._state;
  }
  /** Highest seq handed to the app and settled; null before the first welcome. */
  get lastSeq() {
    return this._processed;
  }
  get epoch() {
    return this._epoch;
  }
  /** Smoothed round-trip time to the server in ms (from ping/pong), or null. */
  get rtt() {
    return this._srtt === null ? null : Math.round(this._srtt);
  }
  /** The current heartbeat interval in ms (adapts between minHeartbeatMs and heartbeat_ms). */
  get heartbeatInterval() {
    return this._conn && this._conn.interval ? this._conn.interval : null;
  }

  /** Adds a listener; returns a function that removes it. */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    if (type === 'message') queueMicrotask(() => this._pump());
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) set.delete(fn);
  }

  /** Starts connecting (done by the constructor unless autoConnect is false). */
  connect() {
    this._auto = false;
    if (this._stopping) {
      this._closeWaiters.push(() => this.connect()); // close() is still finishing
      return;
    }
    if (this._state !== 'closed') return;
    this._bindEnv(true);
    this._attempt('connect');
  }

  /**
   * Closes with 1000 and stops reconnecting. The message handler that is running
   * finishes and is acked first; queued messages are not handed out (the server
   * sends them again next time). Resolves once the state is 'closed'.
   */
  close() {
    this._auto = false; // a close() right after the constructor wins over autoConnect
    if (this._state === 'closed' && !this._stopping) return Promise.resolve(this._writing).then(() => {});
    const done = new Promise((resolve) => this._closeWaiters.push(resolve));
    if (this._stopping) return done;
    this._stopping = true;
    this._gen++;
    clearTimeout(this._timer);
    this._timer = null;
    this._queue = [];
    const conn = this._conn;
    if (!conn) {
      this._finish({ code: 1000, reason: 'closed by the client' });
    } else {
      Promise.resolve(this._running).then(() => {
        if (conn !== this._conn) return;
        try {
          conn.sock.close(1000, 'closed by the client');
        } catch {
          // ended anyway below
        }
        // The server answers a close at once; do not wait for a dead one.
        conn.closeTimer = setTimeout(() => this._end(conn, { code: 1000, reason: 'closed by the client' }), 2000);
      });
    }
    return done;
  }

  // ---- events -------------------------------------------------------------------

  _has(type) {
    const set = this._listeners.get(type);
    return !!set && set.size > 0;
  }

  _emit(type, ...args) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        if (type !== 'error') this._error('listener', `a '${type}' listener threw: ${errText(e)}`, e);
      }
    }
  }

  /** Calls every listener of `type` and waits for all their promises. */
  _emitAsync(type, arg) {
    const set = this._listeners.get(type);
    if (!set) return Promise.resolve();
    return Promise.all([...set].map((fn) => fn(arg)));
  }

  _error(code, message, cause) {
    this._emit('error', clientError(code, message, cause));
  }

  _setState(s, info) {
    this._state = s;
    this._emit('state', s, info || {});
  }

  // ---- connecting ---------------------------------------------------------------

  async _attempt(reason) {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._isOffline()) {
      this._setState('offline', this._lastInfo);
      return;
    }
    const gen = ++this._gen;
    this._setState('connecting', {});
    if (gen !== this._gen) return;
    let token;
    try {
      token = await this._getToken(reason);
    } catch (e) {
      if (gen !== this._gen) return;
      this._error('token', `token provider failed: ${errText(e)}`, e);
      this._afterEnd({ code: 0, reason: `token provider failed: ${errText(e)}`, tokenFailed: true }, null);
      return;
    }
    if (gen !== this._gen) return;
    const claims = token ? decodeJwt(token) : null;
    await this._loadPosition(
      claims && typeof claims.sub === 'string' ? claims.sub : '',
      claims && typeof claims.dev === 'string' ? claims.dev : '',
    );
    if (gen !== this._gen) return;

    const url = new URL(this._url.href);
    const q = url.searchParams;
    if (this._o.device) q.set('device', this._o.device);
    const sentSeq = this._processed;
    if (sentSeq !== null) q.set('last_seq', String(sentSeq));
    if (this._epoch !== null && sentSeq !== null) q.set('epoch', this._epoch);
    q.set('attempt', `${this._attemptSession}.${++this._attempts}`);
    const headers = {};
    if (token) {
      if (this._o.tokenIn === 'header' && this._transport.headers) headers.Authorization = `Bearer ${token}`;
      else q.set('token', token);
    }
    const conn = {
      sock: null,
      token,
      exp: claims && Number.isFinite(claims.exp) ? claims.exp : null,
      sentSeq,
      welcomed: false,
      rx: 0,
      interval: 0,
      hbMin: 0,
      hbMax: 0,
      ping: null,
      pings: new Map(),
      misses: 0,
      pending: null, // refresh sent, waiting for 'refreshed'
      refreshing: false,
      timers: {},
    };
    this._conn = conn;
    try {
      conn.sock = this._transport(url.href, ['herald.v1'], headers);
    } catch (e) {
      this._conn = null;
      this._error('transport', `cannot open a WebSocket: ${errText(e)}`, e);
      this._afterEnd({ code: 0, reason: `cannot open a WebSocket: ${errText(e)}` }, null);
      return;
    }
    conn.sock.onmessage = (text) => this._onText(conn, text);
    conn.sock.onactivity = () => conn.rx++;
    conn.sock.onclose = (info) => this._end(conn, info);
    conn.timers.connect = setTimeout(
      () => this._fail(conn, 'no welcome within connectTimeoutMs'),
      this._o.connectTimeoutMs,
    );
  }

  async _getToken(reason) {
    const t = this._o.token;
    if (typeof t !== 'function') return t || '';
    const v = await t({ reason });
    if (typeof v !== 'string' || !v) throw new Error('the token provider returned no token');
    return v;
  }

  /**
   * Loads the resume position of (user, device) from storage, once per user
   * and device. The device is the option, else the token's `dev` claim (what
   * the server uses), so two devices of one user sharing a storage keep apart.
   */
  async _loadPosition(sub, devClaim) {
    const key = `${this._o.storageKey}:${sub}:${this._o.device || devClaim || ''}`;
    if (key === this._storeKey) return;
    const first = this._storeKey === null;
    this._storeKey = key;
    if (!first) {
      // Another user or device: the position we hold is not theirs.
      this._processed = null;
      this._epoch = null;
      this._resyncOwed = null;
      this._epochGen++;
    } else if (this._positionGiven) {
      return; // lastSeq/epoch from the options win over storage
    }
    if (!this._storage) return;
    try {
      const raw = await this._storage.getItem(key);
      if (!raw) return;
      const v = JSON.parse(raw);
      if (Number.isSafeInteger(v.seq) && v.seq >= 0) this._processed = v.seq;
      if (typeof v.epoch === 'string') this._epoch = v.epoch;
      if (v.resync && typeof v.resync === 'object') this._resyncOwed = v.resync;
    } catch (e) {
      this._error('storage', `cannot read the resume position: ${errText(e)}`, e);
    }
  }

  /**
   * Saves the position (and a resync still owed to the app) in the
   * background; only the newest value is written. `_writing` is the promise
   * of the writes in flight (close() waits for it).
   */
  _persist() {
    if (!this._storage || !this._storeKey || this._processed === null) return;
    const v = { seq: this._processed, epoch: this._epoch };
    if (this._resyncOwed) v.resync = this._resyncOwed;
    this._pendingWrite = [this._storeKey, JSON.stringify(v)];
    if (this._writing) return;
    this._writing = (async () => {
      while (this._pendingWrite) {
        const [k, value] = this._pendingWrite;
        this._pendingWrite = null;
        try {
          await this._storage.setItem(k, value);
        } catch (e) {
          this._error('storage', `cannot save the resume position: ${errText(e)}`, e);
        }
      }
      this._writing = null;
    })();
  }

  // ---- endings ------------------------------------------------------------------

  /** The client gives up on a connection: closes it (4000) and handles the end. */
  _fail(conn, reason) {
    if (conn !== this._conn) return;
    try {
      conn.sock.close(CLIENT_CLOSE, reason.slice(0, 120));
    } catch {
      // gone already
    }
    this._end(conn, { code: 0, reason });
  }

  _end(conn, info) {
    if (conn !== this._conn) return;
    this._conn = null;
    for (const t of Object.values(conn.timers)) clearTimeout(t);
    clearTimeout(conn.closeTimer);
    conn.sock.onmessage = conn.sock.onclose = conn.sock.onactivity = null;
    try {
      conn.sock.close(1000);
    } catch {
      // already closed
    }
    this._queue = this._queue.filter((i) => i.conn !== conn);
    this._afterEnd(info, conn);
  }

  /** After a connection or attempt ended: reconnect later, wait for the network, or stop. */
  _afterEnd(fullInfo, conn) {
    const { handlerFailed, tokenFailed, ...info } = fullInfo;
    const code = info.code;
    if (this._stopping || NO_RECONNECT.includes(code) || !this._o.reconnect) {
      this._finish(info);
      return;
    }
    // A server that rejected the token (4001, HTTP 401), or a token that looks
    // expired when a browser hides the HTTP status: ask for a fresh one.
    const expired =
      code === 4001 ||
      code === 401 ||
      (conn && !conn.welcomed && conn.exp !== null && conn.exp * 1000 <= Date.now() + this._skew);
    // A provider that failed when asked for a fresh token ('expired') is
    // asked for a fresh one again, not for one it may serve from a cache.
    this._tokenReason = expired || (tokenFailed && this._tokenReason === 'expired') ? 'expired' : 'reconnect';
    this._lastInfo = info;
    if (this._isOffline()) {
      this._setState('offline', info);
      return;
    }
    let delay;
    if (code === 1001) {
      // Draining: spread the reconnects over 0..retry_after (PROTOCOL.md 6).
      const bound = parseRetryAfter(info.reason);
      this._restartBound = bound === undefined ? this._o.backoffMaxMs : bound;
      delay = this._backoff.uniform(this._restartBound);
    } else if (handlerFailed) {
      // A failing handler gets the same message again on the next connection:
      // back off by its own count, which a welcome does not reset.
      delay = this._backoff.uniform(this._backoff.cap(this._handlerFailures - 1));
    } else {
      // After a 1001 the server said when it would be back: until the next
      // welcome no wait is longer than that, so a restart of a few seconds
      // does not leave clients in backoffMaxMs waits once it is up.
      // Never below 100 ms (or backoffInitialMs if smaller): a retry_after
      // of 0 must not make a loop of attempts without a pause.
      const bound =
        this._restartBound === undefined
          ? undefined
          : Math.max(this._restartBound, Math.min(this._o.backoffInitialMs, 100));
      delay = Math.max(this._backoff.next(bound), info.retryAfterMs || 0);
    }
    this._setState('waiting', { ...info, delay });
    if (this._state !== 'waiting') return; // a listener closed or reconnected
    this._timer = setTimeout(() => this._attempt(this._tokenReason), delay);
  }

  _finish(info) {
    this._stopping = false;
    this._bindEnv(false);
    this._setState('closed', info);
    const waiters = this._closeWaiters;
    this._closeWaiters = [];
    // close() resolves once the last position is saved: an app that exits
    // then must not resume from an older one (and get a message again).
    Promise.resolve(this._writing).then(() => {
      for (const w of waiters) w();
    });
  }

  // ---- frames -------------------------------------------------------------------

  _onText(conn, text) {
    if (conn !== this._conn) return;
    conn.rx++;
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      return;
    }
    if (!f || typeof f !== 'object') return;
    switch (f.type) {
      case 'welcome':
        return this._onWelcome(conn, f);
      case 'msg':
        if (this._stopping) return; // not handed out after close(); comes again later
        this._queue.push({ conn, gen: this._epochGen, m: f });
        return void this._pump();
      case 'pong':
        return this._onPong(conn, f);
      case 'refreshed':
        return this._onRefreshed(conn, f);
      case 'error':
        return this._onErrorFrame(conn, f);
      default:
        return undefined;
    }
  }

  _onWelcome(conn, w) {
    if (conn.welcomed) return;
    conn.welcomed = true;
    clearTimeout(conn.timers.connect);
    if (Number.isFinite(w.server_time)) this._skew = w.server_time - Date.now();
    const epoch = typeof w.epoch === 'string' ? w.epoch : null;
    const from = Number.isSafeInteger(w.resume_from) && w.resume_from > 0 ? w.resume_from : null;
    if (this._epoch !== null && epoch !== this._epoch) {
      // The inbox was recreated and seqs started again (PROTOCOL.md 1): take
      // what the server sends from resume_from on.
      this._epochGen++;
      this._processed = from !== null ? from - 1 : null;
    } else if (from !== null && (this._processed === null || (conn.sentSeq !== null && from - 1 < conn.sentSeq))) {
      // No position yet, or the server is behind what we sent: it decides.
      this._processed = from - 1;
    }
    this._epoch = epoch;
    if (w.recovered === false) {
      // Messages after our position are gone (expired, trimmed) or the epoch
      // changed: the app refreshes its state before any message is handed out.
      // One still owed keeps its lastSeq: the app's position before the gap.
      const lastSeq = this._resyncOwed ? this._resyncOwed.lastSeq : conn.sentSeq;
      this._resyncOwed = { epoch, lastSeq, resumeFrom: from, headSeq: w.head_seq };
    }
    this._persist();
    if (++this._welcomes > 1) this.reconnects++;
    // The backoff starts again only once a connection has lasted: a server
    // that welcomes and then closes (4008, 4009, 4029, ...) must still see
    // the delays grow (PROTOCOL.md 6), not a reconnect every backoffInitialMs.
    conn.timers.stable = setTimeout(() => {
      if (conn === this._conn) this._backoff.reset();
    }, STABLE_MS);
    this._restartBound = undefined;
    this._lastInfo = {};
    this._startHeartbeat(conn, w);
    this._scheduleRefresh(conn);
    this._emit('welcome', w);
    if (conn !== this._conn) return;
    // A resync owed from this welcome or an earlier one (its connection
    // ended, or the app stopped, before the listener settled): messages wait.
    if (this._resyncOwed) this._queue.push({ conn, resync: this._resyncOwed });
    this._setState('open', {});
    this._pump();
  }

  _send(conn, frame) {
    if (conn !== this._conn || !conn.welcomed) return false;
    try {
      conn.sock.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Hands queued messages to the app one at a time, in order. */
  async _pump() {
    if (this._pumping) return;
    this._pumping = true;
    try {
      while (this._queue.length && !this._stopping) {
        const item = this._queue[0];
        if (item.conn !== this._conn) {
          this._queue.shift();
          continue;
        }
        if (item.m && !this._has('message')) break; // wait for a listener: never ack unseen messages
        this._queue.shift();
        const run = item.resync ? this._resync(item) : this._handle(item);
        this._running = run;
        await run;
        this._running = null;
      }
    } finally {
      this._pumping = false;
    }
  }

  async _resync(item) {
    try {
      await this._emitAsync('resync', item.resync);
    } catch (e) {
      // Still owed: like a failing message handler, the connection ends and
      // the next one (after a backoff) tells the app again.
      this._handlerFailed(item.conn, `the 'resync' listener failed: ${errText(e)}`, "'resync' listener failed", e);
      return;
    }
    this._handlerFailures = 0;
    if (this._resyncOwed === item.resync) {
      this._resyncOwed = null;
      this._persist();
    }
  }

  /** A listener failed: reported, and its connection ends (4000) to get the item again. */
  _handlerFailed(conn, message, reason, cause) {
    this._handlerFailures++;
    this._error('handler', message, cause);
    if (conn !== this._conn) return;
    try {
      conn.sock.close(CLIENT_CLOSE, reason);
    } catch {
      // gone
    }
    this._end(conn, { code: 0, reason, handlerFailed: true });
  }

  async _handle(item) {
    const m = item.m;
    const seq = m.seq;
    if (!Number.isSafeInteger(seq) || seq <= 0) return;
    // PROTOCOL.md 4.5: seq is the identity; a processed seq is acked again, not processed.
    if (this._processed !== null && seq <= this._processed && item.gen === this._epochGen) {
      this.duplicates++;
      this._send(item.conn, { type: 'ack', seq });
      return;
    }
    const msg = {
      seq,
      id: m.id,
      event: m.event,
      data: m.data,
      ts: m.ts,
      attempt: Number.isSafeInteger(m.attempt) ? m.attempt : 1,
      traceId: m.trace_id,
    };
    try {
      await this._emitAsync('message', msg);
    } catch (e) {
      // Not acked, not marked processed: it comes again on the next connection.
      const what = `the 'message' handler failed for seq ${seq}: ${errText(e)}`;
      this._handlerFailed(item.conn, what, `message handler failed (seq ${seq})`, e);
      return;
    }
    this._handlerFailures = 0;
    if (item.gen === this._epochGen && (this._processed === null || seq > this._processed)) {
      this._processed = seq;
      this._persist();
    }
    this._send(item.conn, { type: 'ack', seq });
  }

  _onErrorFrame(conn, f) {
    if (f.code === 'invalid_token' && conn.pending) {
      conn.pending = null;
      conn.refreshing = false;
      this._error('refresh', `token refresh refused: ${f.message || f.code}`, f);
      this._retryRefresh(conn);
      return;
    }
    const e = clientError('server', `server error frame: ${f.code}: ${f.message || ''}`);
    // @ts-ignore
    e.frame = f;
    this._emit('error', e);
  }

  // ---- heartbeat (PROTOCOL.md 5) ---------------------------------------------------
  //
  // A ping every `interval` ms, between minHeartbeatMs and heartbeat_ms. Each ping is
  // judged after an RTT-based timeout (3 srtt + 4 rttvar, at least 2 s, at most
  // minHeartbeatMs, which is also the timeout before the first sample): it is
  // missed when neither its pong nor any other frame came back.
  // A miss sends another ping at once and drops the interval to minHeartbeatMs;
  // maxMissedPongs misses in a row end the connection. Each answered ping doubles
  // the interval back up to heartbeat_ms. Late timers (throttled background tabs)
  // only delay a verdict: a pong that came back is never counted as a miss.

  _startHeartbeat(conn, w) {
    const server = Number.isFinite(w.heartbeat_ms) && w.heartbeat_ms > 0 ? w.heartbeat_ms : 0;
    const mine = this._o.heartbeatMs > 0 ? this._o.heartbeatMs : 0;
    let max = server && mine ? Math.min(server, mine) : server || mine;
    // A server whose idle timeout is shorter than its heartbeat_ms would
    // close a client that pings only every heartbeat_ms (4008): ping at
    // least twice per idle timeout.
    if (max && Number.isFinite(w.idle_timeout_ms) && w.idle_timeout_ms > 0) {
      max = Math.min(max, Math.max(1, Math.floor(w.idle_timeout_ms / 2)));
    }
    if (!max) return;
    conn.hbMax = max;
    conn.hbMin = Math.min(this._o.minHeartbeatMs, max);
    conn.interval = max;
    this._armTick(conn, max);
  }

  _armTick(conn, delay) {
    clearTimeout(conn.timers.tick);
    conn.timers.tick = setTimeout(() => {
      if (conn !== this._conn) return;
      this._sendPing(conn);
      this._armTick(conn, conn.interval);
    }, delay);
  }

  _pongTimeout(conn) {
    if (this._srtt === null) return conn.hbMin; // no sample yet: be patient
    return Math.min(conn.hbMin, Math.max(2000, Math.ceil(3 * this._srtt + 4 * this._rttvar)));
  }

  _sendPing(conn) {
    const id = ++this._pingId;
    const p = { id, at: now(), rx: conn.rx, answered: false };
    conn.ping = p;
    conn.pings.set(id, p);
    if (conn.pings.size > 8) conn.pings.delete(conn.pings.keys().next().value);
    this._send(conn, { type: 'ping', id, ts: Date.now() });
    clearTimeout(conn.timers.pong);
    conn.timers.pong = setTimeout(() => this._pongDue(conn, p), this._pongTimeout(conn));
  }

  _pongDue(conn, p) {
    if (conn !== this._conn || p !== conn.ping || p.answered || conn.rx !== p.rx) return;
    if (++conn.misses >= this._o.maxMissedPongs) {
      this._fail(conn, `heartbeat: ${conn.misses} pings without an answer`);
      return;
    }
    conn.interval = conn.hbMin;
    this._sendPing(conn);
    this._armTick(conn, conn.interval);
  }

  /** Checks the connection now (network change, page shown): a ping, judged as usual. */
  _probe(conn) {
    if (!conn || !conn.welcomed || !conn.hbMax) return;
    if (conn.ping && !conn.ping.answered && conn.rx === conn.ping.rx) return; // one is out already
    this._sendPing(conn);
    this._armTick(conn, conn.interval);
  }

  _onPong(conn, f) {
    const p = conn.pings.get(f.id);
    if (!p) return;
    conn.pings.delete(f.id);
    p.answered = true;
    conn.misses = 0;
    conn.interval = Math.min(conn.hbMax, conn.interval * 2);
    const r = now() - p.at;
    if (this._srtt === null) {
      this._srtt = r;
      this._rttvar = r / 2;
    } else {
      this._rttvar = 0.75 * this._rttvar + 0.25 * Math.abs(this._srtt - r);
      this._srtt = 0.875 * this._srtt + 0.125 * r;
    }
  }

  // ---- token refresh (PROTOCOL.md 3, 10) ------------------------------------------

  /** ms until the server considers the connection's token expired, by the server's clock. */
  _remaining(conn) {
    return conn.exp * 1000 - (Date.now() + this._skew);
  }

  _scheduleRefresh(conn) {
    clearTimeout(conn.timers.refresh);
    if (typeof this._o.token !== 'function' || conn.exp === null) return;
    const remaining = this._remaining(conn);
    const margin = Math.min(this._o.refreshMarginMs, Math.max(0, remaining) / 4);
    this._armRefresh(conn, Math.max(0, remaining - margin));
  }

  _retryRefresh(conn) {
    if (conn !== this._conn) return;
    this._armRefresh(conn, Math.min(30000, Math.max(1000, this._remaining(conn) / 2)));
  }

  _armRefresh(conn, delay) {
    clearTimeout(conn.timers.refresh);
    conn.refreshAt = Date.now() + delay;
    conn.timers.refresh = setTimeout(() => this._refresh(conn), Math.min(delay, MAX_TIMER));
  }

  async _refresh(conn) {
    if (conn !== this._conn || conn.refreshing) return;
    if (conn.refreshAt - Date.now() > 1000) {
      // A timer capped at MAX_TIMER (~24.8 days) fired before the time.
      this._armRefresh(conn, conn.refreshAt - Date.now());
      return;
    }
    conn.refreshing = true;
    let token;
    try {
      token = await this._getToken('refresh');
    } catch (e) {
      conn.refreshing = false;
      this._error('token', `token provider failed: ${errText(e)}`, e);
      this._retryRefresh(conn);
      return;
    }
    if (conn !== this._conn) return;
    const claims = decodeJwt(token);
    const exp = claims && Number.isFinite(claims.exp) ? claims.exp : null;
    if (token === conn.token || (exp !== null && exp <= conn.exp)) {
      // Nothing newer yet: ask again later (the server closes 4001 at expiry
      // and the next connection asks for a token with reason 'expired').
      conn.refreshing = false;
      this._retryRefresh(conn);
      return;
    }
    conn.pending = { token, exp };
    if (!this._send(conn, { type: 'refresh', token })) conn.refreshing = false;
  }

  _onRefreshed(conn, f) {
    const p = conn.pending;
    if (!p) return;
    conn.pending = null;
    conn.refreshing = false;
    conn.token = p.token;
    conn.exp = Number.isFinite(f.exp) ? f.exp : p.exp;
    this._scheduleRefresh(conn);
  }

  // ---- browser environment: navigator.onLine, online/offline, visibility -----------

  _isOffline() {
    const w = this._win;
    return !!w && !!w.navigator && w.navigator.onLine === false && typeof w.addEventListener === 'function';
  }

  _bindEnv(on) {
    if (on === this._envBound) return;
    this._envBound = on;
    const w = this._win;
    const method = on ? 'addEventListener' : 'removeEventListener';
    if (w && typeof w[method] === 'function') {
      w[method]('online', this._onOnline);
      w[method]('offline', this._onOffline);
    }
    const d = w && w.document;
    if (d && typeof d[method] === 'function') d[method]('visibilitychange', this._onVisibility);
  }

  _envChange(what) {
    const s = this._state;
    if (what === 'offline') {
      if (s === 'waiting') {
        clearTimeout(this._timer);
        this._timer = null;
        this._setState('offline', this._lastInfo);
      } else if (s === 'open') {
        this._probe(this._conn);
      }
      return;
    }
    if (what === 'visibility') {
      const d = this._win && this._win.document;
      if (!d || d.visibilityState === 'hidden' || d.hidden === true) return;
    }
    // Back online, or the page is shown again: reconnect now instead of
    // waiting out the backoff; check an open connection at once.
    if (s === 'offline' || s === 'waiting') this._attempt(this._tokenReason);
    else if (s === 'open') this._probe(this._conn);
  }
}

/**
 * A transport over a browser-style WebSocket constructor (the browser's own,
 * or any object with the same API): the token can only go in the query.
 */
export function browserTransport(WS) {
  const open = (url, protocols) => {
    if (typeof WS !== 'function') {
      throw new Error('no WebSocket implementation: pass options.WebSocket (or use the Node entry with the ws package)');
    }
    const ws = new WS(url, protocols);
    const t = {
      onmessage: null,
      onclose: null,
      onactivity: null,
      send: (s) => ws.send(s),
      close: (code, reason) => {
        try {
          ws.close(code, reason);
        } catch {
          ws.close();
        }
      },
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') t.onmessage && t.onmessage(e.data);
      else t.onactivity && t.onactivity();
    };
    let closed = false;
    const end = (code, reason) => {
      if (closed) return;
      closed = true;
      if (t.onclose) t.onclose({ code, reason });
    };
    ws.onclose = (e) => end(e.code, e.reason || '');
    // Browsers follow an error with a close (1006); some implementations (Node 20's
    // experimental WebSocket on a refused upgrade) do not.
    ws.onerror = () => setTimeout(() => end(1006, 'WebSocket error'), 100);
    return t;
  };
  open.headers = false;
  return open;
}
