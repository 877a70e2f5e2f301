// Herald's demo page: a real browser client (the JavaScript SDK from
// clients/js/src, served by Herald at /demo/sdk/) for a user the visitor
// picks, with tokens from POST /demo/token and publishes through POST
// /demo/publish; both exist only in demo mode. "Drop connection" closes the
// socket and refuses new ones for a few seconds, as a lost network would,
// and publishes meanwhile, so the resume is visible. `window.heraldDemo`
// exposes what the page saw, for the browser tests.
import { HeraldClient } from '/demo/sdk/index.js';

const $ = (id) => document.getElementById(id);
const OUTAGE_MS = 4000;
const PROCESSING_MS = 120; // a visible "processing" step before the ack

// Per tab: two tabs with one device id would replace each other (4011).
const device = (sessionStorage.heraldDemoDevice ??= `web-${crypto.randomUUID().slice(0, 8)}`);
$('device').textContent = device;
$('user').value = sessionStorage.heraldDemoUser || `demo-${crypto.randomUUID().slice(0, 6)}`;

const demo = (window.heraldDemo = {
  state: 'idle',
  received: [], // seqs handed to the app, in order
  acked: [], // seqs the SDK acked on the wire
  duplicates: 0, // msg frames for seqs already processed (the SDK drops them)
  welcomes: [],
  client: null,
  drop: () => drop(),
});

// ---- the network, with a switch for the demo --------------------------------------

let socket = null;
let networkDownUntil = 0;

/** The browser's WebSocket, observed: raw frames in and out, and a way to cut it. */
class DemoSocket extends WebSocket {
  constructor(url, protocols) {
    if (Date.now() < networkDownUntil) throw new Error('network is down (demo)');
    super(url, protocols);
    socket = this;
    this.addEventListener('message', (e) => {
      if (typeof e.data !== 'string') return;
      const f = JSON.parse(e.data);
      // Seen here, before the SDK reads the frame: the msg frames after it
      // belong to the new epoch.
      if (f.type === 'welcome') noteEpoch(f.epoch);
      if (f.type === 'msg' && seen.has(f.seq)) {
        demo.duplicates++;
        $('dups').textContent = demo.duplicates;
      }
    });
  }

  send(data) {
    const f = JSON.parse(data);
    if (f.type === 'ack') markAcked(f);
    super.send(data);
  }
}

// ---- rendering ---------------------------------------------------------------------

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}
const time = (d = new Date()) => d.toLocaleTimeString([], { hour12: false });

function log(text, cls = '') {
  $('log').prepend(h('li', { class: cls }, h('time', {}, time()), text));
}

const STATE_PILL = {
  connecting: ['info', 'Connecting…'],
  open: ['ok', 'Connected'],
  waiting: ['warn', 'Reconnecting…'],
  offline: ['warn', 'Offline'],
  closed: ['', 'Not connected'],
};

function showState(s, info) {
  demo.state = s;
  const [cls, text] = STATE_PILL[s] || ['', s];
  $('state').className = `pill ${cls}`;
  $('state').textContent = s === 'waiting' ? `Reconnecting in ${(info.delay / 1000).toFixed(1)} s` : text;
  $('drop').disabled = s !== 'open';
  if (s === 'waiting') {
    const retry = `next try in ${(info.delay / 1000).toFixed(1)} s`;
    if (wasOpen) log(`Connection lost (${info.code || 'network'}${info.reason ? `: ${info.reason}` : ''}); ${retry}`, 'bad');
    else log(`Still no connection; ${retry}`);
  }
  wasOpen = s === 'open';
  if (s === 'closed' && info.code) log(`Closed (${info.code}${info.reason ? `: ${info.reason}` : ''})`);
}

let wasOpen = false;
const seen = new Set(); // seqs processed in the current epoch
const rows = new Map();
let replayUpTo = 0; // seqs up to this were waiting when the page reconnected
let epoch = null; // of the last welcome

function noteEpoch(e) {
  if (epoch !== null && e !== epoch) {
    // The inbox started over (a memory store restarted, Redis lost it):
    // seqs count from 1 again, and the SDK starts over with them.
    startOver();
    log(`The inbox is in a new epoch (${e}): seqs start over`, 'bad');
  }
  epoch = e;
}

/** Forgets what was seen: another user, or the same inbox in a new epoch (seqs from 1 again). */
function startOver() {
  seen.clear();
  rows.clear();
  replayUpTo = 0;
}

function addRow(m) {
  const status = h('span', { class: 'badge info' }, 'processing');
  const replayed = m.seq <= replayUpTo ? h('span', { class: 'badge warn', title: 'published while this page was disconnected' }, 'replayed') : null;
  const row = h('tr', { class: 'fresh', 'data-seq': m.seq },
    h('td', {}, m.seq, replayed ? ' ' : '', replayed),
    h('td', {}, m.event || '–'),
    h('td', { class: 'data', title: JSON.stringify(m.data) }, JSON.stringify(m.data)),
    h('td', {}, time()),
    h('td', {}, m.attempt ?? 1),
    h('td', {}, status));
  rows.set(m.seq, status);
  $('messages').prepend(row);
  $('messages-empty').hidden = true;
  $('count').textContent = `${demo.received.length} received`;
}

function markAcked(f) {
  for (const [seq, status] of rows) {
    if (f.seq === seq || (f.upto !== undefined && seq <= f.upto)) {
      if (status.textContent === 'acked') continue;
      status.className = 'badge acked';
      status.textContent = 'acked';
      demo.acked.push(seq);
    }
  }
}

// ---- the client --------------------------------------------------------------------

let client = null;
let connections = 0; // of this client (this user)
const MAX_USER_BYTES = 128;

/** POSTs `body`: an object, or JSON text sent as it is. */
async function demoPost(path, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error ? json.error.message : `${res.status}`);
  return json;
}

/** A new client (maybe of another user) has its own counts and messages. */
function resetCounts() {
  startOver();
  connections = 0;
  epoch = null;
  demo.received.length = 0;
  demo.acked.length = 0;
  demo.welcomes.length = 0;
  demo.duplicates = 0;
  $('connections').textContent = '0';
  $('dups').textContent = '0';
  $('last-seq').textContent = '–';
  $('epoch').textContent = '–';
  $('messages').replaceChildren();
  $('messages-empty').hidden = false;
  $('count').textContent = 'none yet';
}

function connect(user) {
  const bytes = new TextEncoder().encode(user).length;
  if (bytes > MAX_USER_BYTES) {
    log(`User ids are 1..${MAX_USER_BYTES} bytes of UTF-8; this one is ${bytes}.`, 'bad');
    return;
  }
  resetCounts();
  sessionStorage.heraldDemoUser = user;
  $('dashboard-link').href = `/dashboard#user=${encodeURIComponent(user)}`;
  client = new HeraldClient({
    url: new URL('/v1/ws', location.href).href,
    token: async () => (await demoPost('/demo/token', { user })).token,
    device,
    WebSocket: DemoSocket,
    backoffInitialMs: 250,
    backoffMaxMs: 4000,
  });
  demo.client = client;
  client.on('state', showState);
  client.on('welcome', (w) => {
    connections++;
    demo.welcomes.push(w);
    $('connections').textContent = connections;
    $('conn').textContent = w.conn_id;
    $('epoch').textContent = w.epoch;
    const pending = w.head_seq - w.resume_from + 1;
    if (connections > 1) replayUpTo = w.head_seq;
    log(connections === 1
      ? `Connected as ${w.user}/${w.device}; inbox at seq ${w.head_seq}`
      : `Reconnected and resumed from seq ${w.resume_from}: ${pending > 0 ? `${pending} message(s) waiting` : 'nothing missed'}`, 'ok');
  });
  client.on('resync', () => log('Some messages expired while away (recovered: false)', 'bad'));
  client.on('error', (e) => {
    // The demo's own outage refuses sockets: the waiting state says it already.
    if (e.code === 'transport' && Date.now() < networkDownUntil) return;
    log(`${e.code}: ${e.message}`, 'bad');
  });
  client.on('message', async (m) => {
    // The SDK hands each seq over once, in order; a second one would be a bug.
    if (seen.has(m.seq)) log(`Duplicate seq ${m.seq} reached the app!`, 'bad');
    seen.add(m.seq);
    demo.received.push(m.seq);
    $('last-seq').textContent = m.seq;
    addRow(m);
    await new Promise((r) => setTimeout(r, PROCESSING_MS));
  });
  $('connect').hidden = true;
  $('disconnect').hidden = false;
  $('user').disabled = true;
  $('publish').disabled = false;
  $('publish-many').disabled = false;
}

async function disconnect() {
  await client.close();
  client = null;
  $('connect').hidden = false;
  $('disconnect').hidden = true;
  $('user').disabled = false;
  $('publish').disabled = true;
  $('publish-many').disabled = true;
  $('conn').textContent = '–';
}

async function publish(count = 1, tag = '') {
  const user = $('user').value.trim();
  // The text goes out as typed: parsed here only to check it, since a
  // round trip through JavaScript numbers would round 9007199254740993.
  const raw = $('data').value;
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    $('publish-result').textContent = 'Data is not valid JSON.';
    return [];
  }
  const seqs = [];
  for (let i = 0; i < count; i++) {
    const head = JSON.stringify({ user, event: $('event').value.trim() || undefined }).slice(0, -1);
    const body = `${head},"data":${count > 1 || tag ? withFields(raw, data, { n: i + 1, ...(tag ? { note: tag } : {}) }) : raw}}`;
    const r = await demoPost('/demo/publish', body);
    seqs.push(r.results[0].seq);
  }
  $('publish-result').textContent = `Accepted: seq ${seqs.join(', ')}`;
  return seqs;
}

/** JSON text of `raw` (parsed: `data`) with `extra` fields added: into an object, or beside `value`. */
function withFields(raw, data, extra) {
  const add = JSON.stringify(extra).slice(1, -1);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return `{"value":${raw},${add}}`;
  const keys = Object.keys(data);
  if (keys.some((k) => k in extra)) return JSON.stringify({ ...data, ...extra }); // no duplicate keys
  return keys.length ? `${raw.trim().slice(0, -1)},${add}}` : `{${add}}`;
}

async function drop() {
  if (!socket) return;
  networkDownUntil = Date.now() + OUTAGE_MS;
  log(`Network down for ${OUTAGE_MS / 1000} s`, 'bad');
  socket.close(4000, 'network dropped by the demo');
  try {
    const seqs = await publish(3, 'sent while offline');
    log(`Published seq ${seqs.join(', ')} while this page was offline`);
  } catch (e) {
    log(`Publish failed: ${e.message}`, 'bad');
  }
}

$('connect-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const user = $('user').value.trim();
  if (user) connect(user);
});
$('disconnect').addEventListener('click', () => disconnect());
$('publish-form').addEventListener('submit', (e) => {
  e.preventDefault();
  publish(1).catch((err) => ($('publish-result').textContent = `Refused: ${err.message}`));
});
$('publish-many').addEventListener('click', () => publish(10).catch((err) => ($('publish-result').textContent = `Refused: ${err.message}`)));
$('drop').addEventListener('click', () => drop());
