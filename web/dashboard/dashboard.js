// Herald's live dashboard: polls the admin API (/v1/stats, /v1/dead-letters,
// /v1/users/{u}/presence and /messages) once a second with the API key the
// operator typed in, which stays in this tab's sessionStorage. Rates and
// windowed latency percentiles are computed here from successive snapshots
// of the server's counters and histogram buckets. Everything from the server
// is put in the page as text, never as HTML.
import { LineChart } from './charts.js';
import { isRestart, ratePerSecond, windowPercentiles } from './metrics.js';

const KEY_STORAGE = 'herald.dashboard.key';
const POLL_MS = 1000;
const HISTORY_MS = 5 * 60 * 1000;
const LATENCY_WINDOW_MS = 10 * 1000; // percentiles over the last 10 s of observations
const RECENT_MESSAGES = 25;
const DEAD_LETTERS_SHOWN = 50;

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem(KEY_STORAGE);

// ---- formatting ----------------------------------------------------------------

const intFmt = new Intl.NumberFormat('en');
function num(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return intFmt.format(Math.round(v));
}
function rate(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (v >= 100) return intFmt.format(Math.round(v));
  if (v >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}
function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v === 0) return '0';
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)} s`;
  if (v >= 10) return `${Math.round(v)} ms`;
  if (v >= 1) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}
function plural(n, one, many) {
  return `${num(n)} ${n === 1 ? one : many}`;
}
function duration(msTotal) {
  const s = Math.floor(msTotal / 1000);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
function ago(unixMs) {
  if (!unixMs) return '–';
  const d = Date.now() - unixMs;
  return d < 1000 ? 'just now' : `${duration(d)} ago`;
}
function clock(unixMs) {
  return unixMs ? new Date(unixMs).toLocaleTimeString([], { hour12: false }) : '–';
}
function preview(data) {
  const s = JSON.stringify(data);
  return s === undefined ? '' : s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

/** An element with properties/attributes and children (strings become text). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v;
    else if (k === 'title') el.title = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// ---- the API -----------------------------------------------------------------------

class Unauthorized extends Error {}
class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${key}` }, cache: 'no-store' });
  if (res.status === 401) throw new Unauthorized('the API key was refused');
  if (!res.ok) {
    let msg = `${res.status}`;
    try {
      msg = (await res.json()).error.message;
    } catch {
      // not JSON
    }
    throw new ApiError(`${path}: ${msg}`, res.status);
  }
  return res.json();
}

// ---- sign in / out -----------------------------------------------------------------

function showSignIn(message = '') {
  key = null;
  sessionStorage.removeItem(KEY_STORAGE);
  stopPolling();
  $('app').hidden = true;
  $('meta').hidden = true;
  $('live').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('key').value = '';
  $('key').focus();
}

async function signIn(candidate) {
  // A header value cannot carry other characters: fetch would throw before
  // asking the server, which is not "cannot reach the server".
  if (!/^[\x21-\x7e]+$/.test(candidate)) {
    showSignIn('API keys are printable ASCII without spaces; this one has other characters.');
    return;
  }
  key = candidate;
  try {
    await api('/v1/stats');
  } catch (e) {
    showSignIn(e instanceof Unauthorized ? 'That key was refused by the server.' : `Cannot reach the server: ${e.message}`);
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('signin').hidden = true;
  $('app').hidden = false;
  $('meta').hidden = false;
  $('live').hidden = false;
  $('signout').hidden = false;
  startPolling();
  lookupFromHash();
}

// /dashboard#user=alice opens the lookup of that user (the demo page links here).
function lookupFromHash() {
  const user = new URLSearchParams(location.hash.slice(1)).get('user');
  if (!user || user === lookupUser) return;
  runLookup(user);
}
window.addEventListener('hashchange', () => key && lookupFromHash());

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const k = $('key').value.trim();
  if (k) signIn(k);
});
$('signout').addEventListener('click', () => showSignIn());

// ---- live state ----------------------------------------------------------------------

let pollTimer = null;
let polling = false;
let lookupUser = null;
let lastDeadCount = null;
const history = []; // {t, stats, rates}
const charts = {};

function startPolling() {
  if (polling) return;
  polling = true;
  history.length = 0;
  lastDeadCount = null;
  if (!charts.rates) {
    charts.rates = new LineChart($('chart-rates'), {
      label: 'throughput', format: rate, area: true,
      series: [{ label: 'published' }, { label: 'delivered' }, { label: 'acked' }, { label: 'redelivered' }],
    });
    charts.load = new LineChart($('chart-load'), {
      label: 'connections and in flight', format: num, integer: true,
      series: [{ label: 'connections' }, { label: 'in flight' }, { label: 'unacked backlog' }],
    });
    const lat = [{ label: 'p50' }, { label: 'p90' }, { label: 'p99' }];
    charts.push = new LineChart($('chart-push'), { label: 'push latency', format: ms, series: lat });
    charts.ack = new LineChart($('chart-ack'), { label: 'ack latency', format: ms, series: lat });
  }
  tick();
}

function stopPolling() {
  polling = false;
  clearTimeout(pollTimer);
}

async function tick() {
  if (!polling) return;
  const started = performance.now();
  try {
    const stats = await api('/v1/stats');
    onStats(stats);
    const user = lookupUser;
    await Promise.all([refreshDeadLetters(stats), user ? refreshLookup().catch((err) => lookupFailed(err, user)) : null]);
    if (stats.draining) setLive('warn', 'Draining');
    else setLive('ok', 'Live');
    $('banner').hidden = true;
  } catch (e) {
    if (e instanceof Unauthorized) return showSignIn('The server no longer accepts this key.');
    setLive('bad', 'Unreachable');
    $('banner').textContent = `Cannot read from the server (${e.message}); retrying every second.`;
    $('banner').hidden = false;
  }
  if (polling) pollTimer = setTimeout(tick, Math.max(0, POLL_MS - (performance.now() - started)));
}

function setLive(cls, text) {
  const p = $('live');
  p.className = `pill ${cls}`;
  p.textContent = text;
}

function onStats(s) {
  const t = Date.now();
  if (isRestart(s, history[history.length - 1]?.stats)) {
    // Another process: its counters start from zero, nothing before compares.
    history.length = 0;
    lastDeadCount = null;
    tailAfter = null; // a memory store's inbox starts over too
  }
  const prev = history[history.length - 1];
  const m = s.messages;
  let r = { publish: null, deliver: null, ack: null, redeliver: null };
  if (prev) {
    const dt = (t - prev.t) / 1000;
    const pm = prev.stats.messages;
    const per = (a, b) => ratePerSecond(a, b, dt);
    r = {
      publish: per(m.published, pm.published),
      deliver: per(m.delivered, pm.delivered),
      ack: per(m.acked, pm.acked),
      redeliver: per(m.redelivered, pm.redelivered),
    };
  }
  history.push({ t, stats: s, rates: r });
  while (history.length && history[0].t < t - HISTORY_MS - 5000) history.shift();
  // The snapshot closest to LATENCY_WINDOW_MS ago (the oldest one we have at first).
  let then = history[0];
  for (const hst of history) if (hst.t <= t - LATENCY_WINDOW_MS) then = hst;
  const push = windowPercentiles(s.push_latency, then === history[history.length - 1] ? null : then.stats.push_latency);
  const ack = windowPercentiles(s.ack_latency, then === history[history.length - 1] ? null : then.stats.ack_latency);
  history[history.length - 1].latency = { push, ack };

  $('node').textContent = s.node;
  $('uptime').textContent = duration(s.uptime_ms);

  const lastMinute = history.find((hst) => hst.t >= t - 60000) || history[0];
  const deadLastMinute = m.dead_letters - lastMinute.stats.messages.dead_letters;
  kpi('connections', num(s.connections), plural(s.users_online, 'user', 'users') + ' online');
  kpi('publish', rate(r.publish), `${num(m.published)} published · ${num(m.duplicates)} duplicates`, '/s');
  kpi('deliver', rate(r.deliver), `${num(m.delivered)} delivered · ${num(m.redelivered)} redelivered`, '/s');
  kpi('ack', rate(r.ack), `${num(m.acked)} acked`, '/s');
  kpi('inflight', num(m.inflight), `awaiting ack · ${plural(s.ack_timeouts, 'timeout', 'timeouts')}`);
  kpi('backlog', num(s.offline_backlog?.messages), `not acked by every device · ${plural(s.offline_backlog?.users, 'user', 'users')}`);
  kpi('dead', num(m.dead_letters), `${num(deadLastMinute)} in the last minute`);
  $('app').querySelector('[data-kpi="dead"] .value').classList.toggle('bad-text', m.dead_letters > 0);

  const rates = history.map((hst) => ({ t: hst.t, v: [hst.rates.publish, hst.rates.deliver, hst.rates.ack, hst.rates.redeliver] }));
  charts.rates.update(rates, t);
  charts.load.update(history.map((hst) => ({
    t: hst.t, v: [hst.stats.connections, hst.stats.messages.inflight, hst.stats.offline_backlog?.messages ?? null],
  })), t);
  charts.push.update(history.map((hst) => ({ t: hst.t, v: hst.latency?.push ?? [null, null, null] })), t);
  charts.ack.update(history.map((hst) => ({ t: hst.t, v: hst.latency?.ack ?? [null, null, null] })), t);
}

function kpi(name, value, foot, unit) {
  const card = $('app').querySelector(`[data-kpi="${name}"]`);
  const v = card.querySelector('.value');
  v.textContent = value;
  if (unit && value !== '–') v.append(h('small', {}, unit));
  card.querySelector('.foot').textContent = foot;
}

// ---- dead letters --------------------------------------------------------------------

let deadShown = []; // the newest dead letters, newest first

async function refreshDeadLetters(stats) {
  const count = stats.messages.dead_letters;
  if (count !== lastDeadCount) {
    // Ids are consecutive from 1: the newest are after count - N.
    const after = Math.max(0, count - DEAD_LETTERS_SHOWN);
    const page = await api(`/v1/dead-letters?after=${after}&limit=${DEAD_LETTERS_SHOWN}`);
    lastDeadCount = count;
    deadShown = page.dead_letters.slice().reverse();
  }
  // Drawn every tick: "dead since" moves on without new letters.
  const rows = deadShown.map((d) =>
    h('tr', {},
      h('td', {}, num(d.id)),
      h('td', {}, h('a', { href: '#', 'data-user': d.user }, d.user)),
      h('td', {}, num(d.seq)),
      h('td', { class: 'mono' }, d.message_id),
      h('td', {}, d.event || '–'),
      h('td', {}, h('span', { class: `badge ${d.reason}` }, d.reason)),
      h('td', {}, clock(d.ts)),
      h('td', {}, ago(d.dead_at)),
      h('td', { class: 'data', title: preview(d.data) }, preview(d.data))));
  $('dead').replaceChildren(...rows);
  $('dead-empty').hidden = rows.length > 0;
  $('dead-wrap').hidden = rows.length === 0;
}

$('dead').addEventListener('click', (e) => {
  const a = e.target.closest('a[data-user]');
  if (!a) return;
  e.preventDefault();
  runLookup(a.dataset.user);
});

// ---- user lookup ---------------------------------------------------------------------

const MAX_USER_BYTES = 128;
// Messages are read from here on each refresh; null: find the inbox's tail first.
let tailAfter = null;

function usersPath(user) {
  return `/v1/users/${encodeURIComponent(user)}`;
}

/** The seq to read after so that the latest RECENT_MESSAGES retained messages come back. */
async function findTail(user) {
  let after = 0;
  let recent = [];
  for (let pages = 0; pages < 20; pages++) {
    const page = await api(`${usersPath(user)}/messages?after=${after}&limit=1000`);
    recent = recent.concat(page.messages).slice(-RECENT_MESSAGES);
    if (page.messages.length < 1000) break;
    after = page.next_after;
  }
  return recent.length ? recent[0].seq - 1 : after;
}

async function refreshLookup() {
  const user = lookupUser;
  if (tailAfter === null) {
    const tail = await findTail(user);
    if (user !== lookupUser) return;
    tailAfter = tail;
  }
  const readMessages = () => api(`${usersPath(user)}/messages?after=${tailAfter}&limit=1000`);
  let [presence, msgs] = await Promise.all([api(`${usersPath(user)}/presence`), readMessages()]);
  if (user !== lookupUser) return;
  if (!msgs.messages.length && tailAfter > 0) {
    // What we showed has left: expired, trimmed, or the inbox started over
    // in another epoch (seqs from 1 again). Look for the tail again.
    const tail = await findTail(user);
    if (user !== lookupUser) return;
    if (tail < tailAfter) {
      tailAfter = tail;
      msgs = await readMessages();
      if (user !== lookupUser) return;
    }
  }
  const messages = msgs.messages.slice(-RECENT_MESSAGES);
  if (messages.length) tailAfter = messages[0].seq - 1;

  // Devices: the live ones from presence, every known one (with its cursor)
  // from the messages answer.
  const devices = new Map();
  for (const d of presence.devices) devices.set(d.device, { ...d, online: true });
  for (const d of msgs.devices || []) {
    if (!devices.has(d.device)) devices.set(d.device, { device: d.device, cursor: d.cursor, online: false });
  }
  const rows = [...devices.values()].map((d) =>
    h('tr', {},
      h('td', { class: 'mono' }, d.device),
      h('td', {}, h('span', { class: `dot${d.online ? ' on' : ''}` }), d.online ? 'online' : 'offline'),
      h('td', {}, num(d.cursor)),
      h('td', { class: 'mono' }, d.conn_id || '–'),
      h('td', {}, d.online ? ago(d.connected_at) : '–'),
      h('td', {}, d.online && d.rtt_ms !== null && d.rtt_ms !== undefined ? ms(d.rtt_ms) : '–')));
  $('devices').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No device has connected yet.'))]));

  const mrows = messages.slice().reverse().map((msg) =>
    h('tr', {},
      h('td', {}, num(msg.seq)),
      h('td', { class: 'mono' }, msg.id),
      h('td', {}, msg.event || '–'),
      h('td', {}, clock(msg.ts)),
      h('td', {}, h('div', { class: 'states' }, msg.devices.length
        ? msg.devices.map((d) => h('span', { class: `badge ${d.state}`, title: `${d.device}: ${d.state}, ${d.attempts} attempt(s)` },
          `${d.device}: ${d.state}${d.attempts > 1 ? ` ×${d.attempts}` : ''}`))
        : h('span', { class: 'badge pending' }, 'pending'))),
      h('td', { class: 'data', title: preview(msg.data) }, preview(msg.data))));
  $('messages').replaceChildren(...(mrows.length ? mrows : [h('tr', {}, h('td', { colspan: 6 }, 'No retained messages.'))]));
  $('messages-hint').textContent = messages.length ? `latest ${messages.length}, newest first` : '';
  $('lookup-error').hidden = true;
  $('lookup-empty').hidden = true;
  $('lookup-result').hidden = false;
}

/**
 * A failed lookup is shown in the lookup panel: it says nothing about the
 * server's health (the live pill and banner do). A refused user id (4xx)
 * stops the refreshes; anything else is retried with the next tick.
 */
function lookupFailed(err, user = lookupUser) {
  if (err instanceof Unauthorized) return showSignIn('The server no longer accepts this key.');
  if (user !== lookupUser) return;
  const refused = err instanceof ApiError && err.status >= 400 && err.status < 500;
  if (refused) {
    lookupUser = null;
    $('lookup-result').hidden = true;
    $('lookup-empty').hidden = false;
    $('lookup-empty').textContent = `Lookup of “${user}” refused: ${err.message}`;
  } else {
    $('lookup-error').textContent = `Lookup failed (${err.message}); retrying every second.`;
    $('lookup-error').hidden = false;
  }
}

function runLookup(user) {
  $('lookup-user').value = user;
  // Nothing of the previous user stays on screen.
  lookupUser = null;
  tailAfter = null;
  $('lookup-result').hidden = true;
  $('lookup-error').hidden = true;
  $('devices').replaceChildren();
  $('messages').replaceChildren();
  $('lookup-empty').hidden = false;
  const problem = userIdProblem(user);
  if (problem) {
    $('lookup-empty').textContent = problem;
    return;
  }
  $('lookup-empty').textContent = `Looking up “${user}”…`;
  lookupUser = user;
  refreshLookup()
    .then(() => $('lookup-card').scrollIntoView({ behavior: 'smooth', block: 'nearest' }))
    .catch((err) => lookupFailed(err, user));
}

/** Why `user` cannot be looked up from here, or null. */
function userIdProblem(user) {
  const bytes = new TextEncoder().encode(user).length;
  if (bytes > MAX_USER_BYTES) return `User ids are 1..${MAX_USER_BYTES} bytes of UTF-8; this one is ${bytes}.`;
  // A browser resolves "." and ".." in a URL path (also written %2E) as
  // steps to the current or parent folder, so no request can name them.
  if (user === '.' || user === '..') {
    return `“${user}” cannot be looked up from a browser: URLs read it as a folder step. ` +
      `Use curl --path-as-is with /v1/users/${user}/messages.`;
  }
  return null;
}

$('lookup-form').addEventListener('submit', (e) => {
  e.preventDefault();
  // Not trimmed: spaces are part of a user id.
  const user = $('lookup-user').value;
  if (user) runLookup(user);
});

// ---- start ----------------------------------------------------------------------------

if (key) signIn(key);
else showSignIn();
