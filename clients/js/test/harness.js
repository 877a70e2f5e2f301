// Starts a real `herald serve` for the tests, like tests/e2e/harness.py does:
// HERALD_BIN (default ../../build/dev/apps/herald/herald from clients/js),
// port 0, a ready file, its own data directory, an HS256 secret and an API key.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import {
  existsSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync, readdirSync, mkdirSync, copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const HERALD_BIN = process.env.HERALD_BIN || resolve(here, '../../../build/dev/apps/herald/herald');
export const SECRET = 'js-test-secret-0123456789abcdef0123456789';
export const API_KEY = 'js-test-key-1';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Sanitized builds (presets asan, tsan), as in tests/e2e/harness.py: the
// server's sanitizer runtimes write reports to <dir>/sanitizer.<pid>, and
// the server log is searched too (GCC's libubsan ignores log_path next to
// libasan); any report fails the test. Copies are kept in
// $HERALD_SANITIZER_LOG_DIR when set.
const SANITIZER_OPTION_VARS = ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS', 'TSAN_OPTIONS'];
const SANITIZER_REPORT_IN_LOG = /runtime error: |^==\d+==ERROR: |^WARNING: ThreadSanitizer|^SUMMARY: \w+Sanitizer/m;

/** An HS256 JWT: sub, exp (seconds from now, may be fractional), extra claims. */
export function makeToken(sub = 'u1', expIn = 3600, claims = {}) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000 + expIn), ...claims }));
  const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest();
  return `${header}.${payload}.${b64url(sig)}`;
}

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(fn, timeoutMs = 10000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let userCounter = 0;
/** A user id unique to this process (tests share servers). */
export function uniqueUser(prefix = 'u') {
  return `${prefix}-${process.pid}-${++userCounter}`;
}

export class Server {
  /** @param {Record<string, string|number>} env extra HERALD_* variables */
  constructor(env = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'herald-js-'));
    this.readyFile = join(this.dir, 'ready.json');
    this.env = {
      ...process.env,
      HERALD_LISTEN: '127.0.0.1:0',
      HERALD_READY_FILE: this.readyFile,
      HERALD_DATA_DIR: join(this.dir, 'data'),
      HERALD_STORE: 'memory',
      HERALD_JWT_SECRET: SECRET,
      HERALD_API_KEYS: API_KEY,
      HERALD_IO_THREADS: '2',
    };
    for (const [k, v] of Object.entries(env)) this.env[k] = String(v);
    for (const k of SANITIZER_OPTION_VARS) {
      this.env[k] = (this.env[k] ? `${this.env[k]}:` : '') + `log_path=${join(this.dir, 'sanitizer')}`;
    }
    this.logChecked = 0; // server.log is searched for sanitizer reports from here on
    this.proc = null;
  }

  /** Throws when the server wrote sanitizer reports since the last check. */
  checkSanitizers() {
    const reports = [];
    const keep = process.env.HERALD_SANITIZER_LOG_DIR;
    const keepAs = this.dir.split(/[\\/]/).pop();
    for (const name of readdirSync(this.dir).filter((n) => n.startsWith('sanitizer.')).sort()) {
      const path = join(this.dir, name);
      reports.push(readFileSync(path, 'utf8'));
      if (keep) {
        mkdirSync(keep, { recursive: true });
        copyFileSync(path, join(keep, `${keepAs}.${name}`));
      }
      rmSync(path, { force: true });
    }
    let log = '';
    try {
      log = readFileSync(join(this.dir, 'server.log'), 'utf8');
    } catch {
      // no log yet
    }
    const fresh = log.slice(this.logChecked);
    this.logChecked = log.length;
    const found = SANITIZER_REPORT_IN_LOG.exec(fresh);
    if (found) {
      const start = fresh.lastIndexOf('\n', found.index) + 1;
      reports.push(`server.log: ${fresh.slice(start, start + 20000)}`);
    }
    if (reports.length === 0) return;
    if (keep && log) {
      mkdirSync(keep, { recursive: true });
      copyFileSync(join(this.dir, 'server.log'), join(keep, `${keepAs}.server.log`));
    }
    throw new Error(`herald wrote ${reports.length} sanitizer report(s):\n${reports.join('\n')}`);
  }

  async start(timeoutMs = 15000) {
    if (!existsSync(HERALD_BIN)) throw new Error(`herald binary not found at ${HERALD_BIN} (set HERALD_BIN)`);
    rmSync(this.readyFile, { force: true });
    const log = openSync(join(this.dir, 'server.log'), 'a');
    this.proc = spawn(HERALD_BIN, ['serve'], { env: this.env, stdio: ['ignore', log, log] });
    closeSync(log);
    const proc = this.proc;
    this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    let exitedEarly = false;
    this.exited.then(() => (exitedEarly = true));
    const info = await waitFor(
      () => {
        if (exitedEarly) {
          this.checkSanitizers();
          throw new Error(`herald exited early: ${this.logs()}`);
        }
        if (!existsSync(this.readyFile)) return null;
        try {
          return JSON.parse(readFileSync(this.readyFile, 'utf8'));
        } catch {
          return null;
        }
      },
      timeoutMs,
      'the ready file',
    );
    this.url = info.url;
    this.wsUrl = info.url.replace(/^http/, 'ws') + '/v1/ws';
    // A restart listens on the same port (clients keep their url).
    this.env.HERALD_LISTEN = new URL(info.url).host;
    return this;
  }

  logs() {
    try {
      return readFileSync(join(this.dir, 'server.log'), 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  /** Sends a signal and waits for the process to exit; throws on sanitizer reports. */
  async stop(signal = 'SIGTERM') {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal);
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
      await this.exited;
      clearTimeout(t);
    }
    this.checkSanitizers();
  }

  async cleanup() {
    try {
      await this.stop('SIGKILL');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async request(method, path, body) {
    const res = await fetch(this.url + path, {
      method,
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async publish(user, data, fields = {}) {
    const r = await this.request('POST', '/v1/publish', { user, data, ...fields });
    if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.results[0];
  }

  async messageState(user, seq) {
    const r = await this.request('GET', `/v1/users/${encodeURIComponent(user)}/messages/${seq}`);
    return r.body;
  }

  async presence(user) {
    const r = await this.request('GET', `/v1/users/${encodeURIComponent(user)}/presence`);
    return r.body.devices;
  }
}

/** Records a client's events for assertions. */
export function record(client) {
  const rec = { states: [], welcomes: [], errors: [], resyncs: [], times: [] };
  client.on('state', (s, info) => {
    rec.states.push({ s, ...info });
    rec.times.push({ s, at: performance.now(), ...info });
  });
  client.on('welcome', (w) => rec.welcomes.push(w));
  client.on('error', (e) => rec.errors.push(e));
  client.on('resync', (r) => rec.resyncs.push(r));
  return rec;
}

/** A server for one test, cleaned up after it. */
export async function startServer(t, env = {}) {
  const s = await new Server(env).start();
  t.after(() => s.cleanup());
  return s;
}

/** Closes the client after the test. */
export function closeAfter(t, client) {
  t.after(() => client.close());
  return client;
}
