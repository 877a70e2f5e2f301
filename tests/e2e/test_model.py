"""Model-based randomized test of delivery (PROTOCOL.md 1, 3, 4, 10).

A seeded random sequence of operations (publish, fan-out, batch, repeated
ids, connect with or without last_seq, last_seq rewound below what was
processed, replacement, client close, operator kick, acks, withheld acks,
clock advance, graceful restart and kill -9) drives the real server while a
model records what was accepted and what every device saw. Devices behave
like an SDK that dedups by seq: they persist the last processed seq and the
epoch, process a message only when its seq is above the last processed one,
and ack (again) everything else;
a welcome with another epoch makes them start over.

Small ack timeout, retry backoff, max_attempts and max_inflight make
withheld acks end in redeliveries and 4008 within a run. On rocksdb a
restart keeps everything (epoch, seqs, dedup ids, cursors); on the memory
store it starts a new epoch with nothing kept (PROTOCOL.md 10), so the model
starts a new generation: what was accepted before is no longer expected,
every device is made known again before the next publish, and a stale
last_seq/epoch must get recovered:false.

Checked, after a final phase that reconnects every device and acks
everything until the server has nothing pending for anyone:
  1. every accepted message is processed by every device of its user (all
     devices are registered before the first publish, so each is entitled to
     every message) or is in the dead-letter log (which must be empty here:
     retention and TTL are far beyond a run);
  2. on every connection, first attempts come in increasing seq order, and
     here (nothing trimmed, expired or collapsed) exactly the accepted seqs
     from `resume_from` on; redeliveries count 1, 2, 3... up to max_attempts;
     4008 only after a message reached max_attempts; never more than
     max_inflight unacked;
  3. a device never processes a seq twice (processed seqs strictly increase);
  4. a device's cursor, as observed through presence and the acked_by of
     the message listing, never moves backwards (within a process lifetime,
     across graceful restarts, and after kill -9 never below what was
     flushed by the last graceful shutdown);
  5. every msg frame carries exactly the id, event and data published for
     its seq; publish answers give new seqs above the head and the original
     seq for a repeated id; welcome's epoch, head_seq and resume_from agree
     with the model.

Environment: HERALD_MODEL_SEED (one seed or a comma-separated list; random
otherwise), HERALD_MODEL_SEEDS (how many random seeds, default 2),
HERALD_MODEL_STEPS (steps per run, default 150), HERALD_MODEL_STORES
(default "memory,rocksdb"), HERALD_MODEL_TOLERATE (kinds of violation to log
without failing, e.g. "cursor-backwards"; empty by default). A failing run
prints its seed, the violations and the operation log; HERALD_MODEL_SEED=<seed>
replays the same operations (what the server does in between depends on
timing: which redeliveries and 4008 closes happen when).
"""
import asyncio
import json
import os
import random
import signal
import sys
import time
import unittest
import urllib.parse

import websockets

from harness import Server, make_token

ACK_TIMEOUT_MS = 200
RETRY_INITIAL_MS = 100
MAX_ATTEMPTS = 3
MAX_INFLIGHT = 8
MODEL_ENV = {
    "HERALD_ACK_TIMEOUT_MS": ACK_TIMEOUT_MS,
    "HERALD_RETRY_INITIAL_MS": RETRY_INITIAL_MS,
    "HERALD_RETRY_MAX_MS": 1000,
    "HERALD_MAX_ATTEMPTS": MAX_ATTEMPTS,
    "HERALD_MAX_INFLIGHT": MAX_INFLIGHT,
}
USERS = {"ua": ["a1", "a2", "a3"], "ub": ["b1", "b2"], "uc": ["c1", "c2", "c3"]}
EVENTS = ["order.status", "chat.msg", "ping"]
DEADLINE = 15  # seconds: generous bound for anything that must happen


def seeds_from_env():
    if os.environ.get("HERALD_MODEL_SEED"):
        return [int(x) for x in os.environ["HERALD_MODEL_SEED"].split(",") if x.strip()]
    return [random.SystemRandom().randrange(1, 2 ** 31) for _ in range(int(os.environ.get("HERALD_MODEL_SEEDS", "2")))]


STEPS = int(os.environ.get("HERALD_MODEL_STEPS", "150"))
# Kinds of violation to log without failing, e.g. "cursor-backwards" (for
# exploring further while a known server bug is open); empty by default.
TOLERATE = {x.strip() for x in os.environ.get("HERALD_MODEL_TOLERATE", "").split(",") if x.strip()}
STORES = [x.strip() for x in os.environ.get("HERALD_MODEL_STORES", "memory,rocksdb").split(",") if x.strip()]


# ---- the operations, drawn from the seed alone --------------------------------------

def random_data(rng):
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randrange(-10 ** 6, 10 ** 6)
    if kind == 1:
        return "s-%d-\u00e9\u4e2d\"\\" % rng.randrange(10 ** 6)
    if kind == 2:
        return None
    if kind == 3:
        return {"n": rng.randrange(10 ** 20, 10 ** 24), "list": [rng.randrange(100), True, None], "f": 1.5}
    if kind == 4:
        return [rng.randrange(1000) for _ in range(rng.randrange(4))]
    if kind == 5:
        return {"nested": {"k": "v%d" % rng.randrange(1000)}, "empty": {}}
    return rng.random() < 0.5


def gen_publish_item(rng, fanout_ok=True):
    """One publish body; `id` is chosen at run time (new, or repeated) from `idpick`."""
    users = sorted(USERS)
    item = {"data": random_data(rng)}
    if fanout_ok and rng.random() < 0.2:
        item["users"] = sorted(rng.sample(users, rng.randrange(2, len(users) + 1)))
    else:
        item["user"] = rng.choice(users)
    if rng.random() < 0.5:
        item["event"] = rng.choice(EVENTS)
    if rng.random() < 0.3:
        item["priority"] = rng.choice(["high", "normal", "low"])
    # idpick: None = no id (server generates one), ("new",), ("repeat", r) = reuse an earlier id
    r = rng.random()
    item["idpick"] = None if r < 0.3 else (("repeat", rng.random()) if r < 0.5 else ("new",))
    return item


def gen_ops(rng, steps, store):
    devices = [(u, d) for u in sorted(USERS) for d in USERS[u]]
    table = [("publish", 24), ("batch", 6), ("connect", 16), ("replace", 2), ("rewind", 2), ("close", 8),
             ("kick", 4), ("withhold", 6), ("ack", 6), ("sleep", 12), ("poll", 4)]
    if store == "rocksdb":
        table += [("restart", 2), ("kill9", 2)]
    else:
        # each restart of the memory store starts over: fewer, so that the
        # last generation has a history worth checking
        table += [("restart", 0.5), ("kill9", 0.5)]
    names = [n for n, _ in table]
    weights = [w for _, w in table]
    ops = []
    for _ in range(steps):
        name = rng.choices(names, weights)[0]
        op = {"op": name}
        if name == "publish":
            op["item"] = gen_publish_item(rng)
        elif name == "batch":
            op["items"] = [gen_publish_item(rng) for _ in range(rng.randrange(1, 6))]
        elif name in ("connect", "replace", "rewind", "close", "kick", "withhold", "ack"):
            op["device"] = rng.choice(devices)
            op["last_seq"] = rng.random() < 0.6
            op["upto"] = rng.random() < 0.5
            op["frac"] = rng.random()
        elif name == "sleep":
            op["ms"] = rng.choice([20, 50, 100, 200, 300, 400, 700])
        elif name == "poll":
            op["user"] = rng.choice(sorted(USERS))
        ops.append(op)
    return ops


# ---- the model ----------------------------------------------------------------------

class Conn:
    counter = 0

    def __init__(self, dev, ws, last_seq, epoch, gen):
        Conn.counter += 1
        self.n = Conn.counter
        self.dev = dev
        self.ws = ws
        self.last_seq = last_seq          # given in the query, or None
        self.epoch_given = epoch
        self.g = gen                      # the generation it belongs to
        self.expected_head = gen.head[dev.user]
        self.unacked = set()              # first attempts received and not acked on it
        self.welcome = None
        self.msgs = []                    # msg frames in arrival order
        self.others = []                  # other frames
        self.pending_acks = []            # seqs received and not acked yet (withheld)
        self.close_code = None
        self.client_closed = False
        self.kicked = False
        self.replaced = False
        self.server_restarted = False
        self.task = None
        self.done = asyncio.Event()

    def __repr__(self):
        return "conn#%d(%s/%s)" % (self.n, self.dev.user, self.dev.name)


class Device:
    def __init__(self, user, name):
        self.user = user
        self.name = name
        self.epoch = None           # persisted client state, like an SDK
        self.last_processed = 0
        self.processed = []
        self.old_processed = []     # processed lists of earlier epochs
        self.duplicates = 0
        self.withholding = False
        self.conn = None            # the current connection (the newest one)
        self.conns = []

    @property
    def key(self):
        return "%s/%s" % (self.user, self.name)


class Generation:
    """What the server holds between two starts of a memory store (for
    rocksdb: the whole run, restarts included)."""

    def __init__(self, n):
        self.n = n
        self.accepted = {u: {} for u in USERS}   # seq -> (id, event, data)
        self.ids = {u: {} for u in USERS}        # id -> seq
        self.head = {u: 0 for u in USERS}
        self.epoch = {}                          # user -> the inbox epoch


class Run:
    def __init__(self, store, seed, steps):
        self.store = store
        self.seed = seed
        self.rng = random.Random(seed)
        self.ops = gen_ops(self.rng, steps, store)
        self.log = []
        self.violations = []
        self.tolerated = 0
        self.server = None
        self.server_log = ""
        self.devices = {(u, d): Device(u, d) for u in USERS for d in USERS[u]}
        self.g = Generation(0)
        self.old_epochs = set()
        self.id_counter = 0
        # cursor observations: device key -> highest seen in this process lifetime,
        # and the floor every later observation must respect (flushed at graceful stop)
        self.observed = {}
        self.durable = {}
        self.t0 = time.time()

    # ---- bookkeeping
    def note(self, text):
        self.log.append("%7.3f %s" % (time.time() - self.t0, text))

    def violation(self, text, kind="other"):
        if kind in TOLERATE:
            self.note("TOLERATED (%s) %s" % (kind, text))
            self.tolerated += 1
            return
        self.note("VIOLATION " + text)
        self.violations.append(text)

    def report(self):
        lines = ["model run store=%s seed=%d steps=%d: %d violation(s)" % (self.store, self.seed, len(self.ops), len(self.violations))]
        lines += ["  " + v for v in self.violations[:50]]
        lines.append("replay: HERALD_MODEL_SEED=%d HERALD_MODEL_STORES=%s HERALD_MODEL_STEPS=%d" % (self.seed, self.store, len(self.ops)))
        lines.append("operation log:")
        lines += self.log
        if self.server_log:
            lines.append("server log (tail):")
            lines.append(self.server_log)
        return "\n".join(lines)

    async def http(self, method, path, body=None):
        return await asyncio.to_thread(self.server.request, method, path, body)

    # ---- main
    async def main(self):
        env = dict(MODEL_ENV)
        env["HERALD_STORE"] = self.store
        if self.store != "memory":
            env["HERALD_SYNC"] = self.rng.choice(["always", "batch"])
        self.note("server with %s" % env)
        self.server = Server(**env)
        await asyncio.to_thread(self.server.start)
        try:
            await self.setup_devices()
            for i, op in enumerate(self.ops):
                await self.step(i, op)
                # a cheap observation after every step, on one user in turn
                await self.poll(sorted(USERS)[i % len(USERS)])
            await self.final_phase()
            self.check_invariants()
        finally:
            for dev in self.devices.values():
                for c in dev.conns:
                    if not c.done.is_set():
                        c.client_closed = True
                        await c.ws.close()
            self.server_log = self.server.logs()
            await asyncio.to_thread(self.server.cleanup)

    async def setup_devices(self):
        # Every device is known (first welcome) before anything is published,
        # so each is entitled to every message of its user (PROTOCOL.md 4.2).
        for dev in self.devices.values():
            c = await self.connect(dev, use_last_seq=False)
            if c is not None and self.rng.random() < 0.5:
                await self.client_close(c)

    async def step(self, i, op):
        name = op["op"]
        dev = self.devices.get(op.get("device"))
        if name == "publish":
            await self.publish([op["item"]], batch=False)
        elif name == "batch":
            await self.publish(op["items"], batch=True)
        elif name == "connect":
            if dev.conn is None:
                await self.connect(dev, op["last_seq"])
            else:
                self.note("connect %s: already online" % dev.key)
        elif name == "replace":
            await self.connect(dev, op["last_seq"])
        elif name == "rewind":
            # last_seq below what was processed (and maybe below the stored
            # cursor): it decides what is sent; the cursor stays (PROTOCOL.md 10)
            await self.connect(dev, True, rewind_to=int(op["frac"] * dev.last_processed))
        elif name == "close":
            if dev.conn is not None:
                await self.client_close(dev.conn)
            else:
                self.note("close %s: offline" % dev.key)
        elif name == "kick":
            await self.kick(dev)
        elif name == "withhold":
            dev.withholding = True
            self.note("withhold %s" % dev.key)
        elif name == "ack":
            dev.withholding = False
            self.note("ack %s (upto=%s)" % (dev.key, op["upto"]))
            if dev.conn is not None:
                await self.send_pending_acks(dev.conn, op["upto"])
        elif name == "sleep":
            self.note("sleep %d ms" % op["ms"])
            await asyncio.sleep(op["ms"] / 1000)
        elif name == "poll":
            await self.poll(op["user"])
        elif name in ("restart", "kill9"):
            await self.restart(kill=(name == "kill9"))

    # ---- publishing
    def resolve_id(self, item, user_for_repeat):
        pick = item["idpick"]
        if pick is None:
            return None
        if pick[0] == "repeat" and self.g.ids[user_for_repeat]:
            known = sorted(self.g.ids[user_for_repeat])
            return known[int(pick[1] * len(known))]
        self.id_counter += 1
        return "m%d-%d" % (self.seed % 1000, self.id_counter)

    async def publish(self, items, batch):
        bodies = []
        for it in items:
            body = {k: v for k, v in it.items() if k != "idpick"}
            mid = self.resolve_id(it, (it.get("users") or [it.get("user")])[0])
            if mid is not None:
                body["id"] = mid
            bodies.append(body)
        if batch:
            status, res, _ = await self.http("POST", "/v1/publish/batch", {"messages": bodies})
        else:
            status, res, _ = await self.http("POST", "/v1/publish", bodies[0])
        if status != 200:
            self.violation("publish answered %s %s for %s" % (status, res, bodies))
            return
        answers = res["results"] if batch else [res]
        if len(answers) != len(bodies):
            self.violation("batch of %d answered %d results" % (len(bodies), len(answers)))
            return
        for body, ans in zip(bodies, answers):
            users = body.get("users") or [body["user"]]
            results = ans.get("results") if ("users" in body or not batch) else [ans]
            if results is None or len(results) != len(users):
                self.violation("publish %s answered %s" % (body, ans))
                continue
            for user, r in zip(users, results):
                self.record_publish(user, body, r)

    def record_publish(self, user, body, r):
        if "error" in r or r.get("user") != user or not isinstance(r.get("seq"), int):
            self.violation("publish to %s of %s answered %s" % (user, body, r))
            return
        seq, mid = r["seq"], r["id"]
        if "id" in body and mid != body["id"]:
            self.violation("publish id %s answered id %s" % (body["id"], mid))
        if "id" in body and body["id"] in self.g.ids[user]:
            want = self.g.ids[user][body["id"]]
            if not r.get("duplicate") or seq != want:
                self.violation("repeated id %s for %s: answered %s, want duplicate of seq %d" % (body["id"], user, r, want))
            self.note("publish %s id=%s -> duplicate seq %d" % (user, body["id"], seq))
            return
        if r.get("duplicate"):
            self.violation("new id %s for %s answered as duplicate: %s" % (body.get("id"), user, r))
            return
        if seq <= self.g.head[user]:
            self.violation("publish to %s got seq %d, not above the head %d" % (user, seq, self.g.head[user]))
            return
        self.g.head[user] = seq
        self.g.accepted[user][seq] = (mid, body.get("event"), body["data"])
        self.g.ids[user][mid] = seq
        self.note("publish %s id=%s -> seq %d" % (user, mid, seq))

    # ---- connections
    async def connect(self, dev, use_last_seq, rewind_to=None):
        q = ["device=" + dev.name]
        last_seq = epoch = None
        if use_last_seq and dev.epoch is not None:
            last_seq, epoch = dev.last_processed if rewind_to is None else rewind_to, dev.epoch
            q += ["last_seq=%d" % last_seq, "epoch=" + urllib.parse.quote(epoch, safe="")]
        old = dev.conn
        token = make_token(dev.user)
        try:
            ws = await websockets.connect(self.server.ws_url + "?" + "&".join(q),
                                          extra_headers={"Authorization": "Bearer " + token},
                                          ping_interval=None, max_size=2 ** 24, open_timeout=DEADLINE,
                                          close_timeout=5)
        except Exception as e:  # noqa: BLE001 - any refusal is a finding here
            self.violation("connect %s refused: %r" % (dev.key, e))
            return None
        c = Conn(dev, ws, last_seq, epoch, self.g)
        if old is not None:
            old.replaced = True
        try:
            c.welcome = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
        except Exception as e:  # noqa: BLE001
            self.violation("%r: no welcome: %r" % (c, e))
            await ws.close()
            return None
        w = c.welcome
        if w.get("type") != "welcome":
            self.violation("%r: first frame is not a welcome: %s" % (c, w))
        dev.conn = c
        dev.conns.append(c)
        if dev.user not in self.g.epoch:
            self.g.epoch[dev.user] = w.get("epoch")
        if dev.epoch != w.get("epoch"):
            # a new inbox (first connect, or a memory store restarted): like
            # an SDK, start over with this epoch
            if dev.epoch is not None:
                dev.old_processed.append(dev.processed)
            dev.epoch = w.get("epoch")
            dev.last_processed = 0
            dev.processed = []
        self.note("connect %r%s%s -> head %s resume_from %s recovered %s%s" % (
            c, " last_seq=%d" % last_seq if last_seq is not None else "", " epoch=" + epoch if epoch else "",
            w.get("head_seq"), w.get("resume_from"), w.get("recovered"), " (replacing %r)" % old if old else ""))
        c.task = asyncio.ensure_future(self.reader(c))
        return c

    async def reader(self, c):
        dev = c.dev
        try:
            async for raw in c.ws:
                f = json.loads(raw)
                if f.get("type") != "msg":
                    c.others.append(f)
                    continue
                c.msgs.append(f)
                seq = f["seq"]
                if f.get("attempt") == 1:
                    # PROTOCOL.md 4.3; acks this client sent may not have
                    # arrived yet, so the server's count is at least this one
                    c.unacked.add(seq)
                    if len(c.unacked) > MAX_INFLIGHT:
                        self.violation("%r: %d messages unacked on the connection, max_inflight is %d: %s" % (
                            c, len(c.unacked), MAX_INFLIGHT, sorted(c.unacked)))
                if seq <= dev.last_processed:
                    dev.duplicates += 1          # PROTOCOL.md 4.5: ack again, do not process
                else:
                    dev.processed.append(seq)
                    dev.last_processed = seq
                if dev.withholding:
                    c.pending_acks.append(seq)
                else:
                    await self.send_ack(c, seq, upto=(self.rng_frame(c, seq) < 0.5))
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001
            self.violation("%r: reader failed: %r" % (c, e))
        finally:
            await c.ws.wait_closed()
            c.close_code = c.ws.close_code
            if dev.conn is c:
                dev.conn = None
            self.note("%r closed %s (client_closed=%s kicked=%s replaced=%s restart=%s)" % (
                c, c.close_code, c.client_closed, c.kicked, c.replaced, c.server_restarted))
            c.done.set()

    @staticmethod
    def rng_frame(c, seq):
        # seq/upto choice per frame, from the seed only (not from the shared rng,
        # whose draws would then depend on timing)
        return random.Random(c.n * 1000003 + seq).random()

    async def send_ack(self, c, seq, upto):
        if upto:
            c.unacked = {s for s in c.unacked if s > seq}
        else:
            c.unacked.discard(seq)
        try:
            await c.ws.send(json.dumps({"type": "ack", "upto": seq} if upto else {"type": "ack", "seq": seq}))
        except websockets.exceptions.ConnectionClosed:
            pass

    async def send_pending_acks(self, c, upto):
        pending, c.pending_acks = c.pending_acks, []
        if not pending:
            return
        if upto:
            await self.send_ack(c, max(pending), True)
        else:
            for seq in pending:
                await self.send_ack(c, seq, False)

    async def client_close(self, c):
        c.client_closed = True
        self.note("close %r" % c)
        await c.ws.close()
        await self.wait_done(c)

    async def wait_done(self, c):
        try:
            await asyncio.wait_for(c.done.wait(), DEADLINE)
        except asyncio.TimeoutError:
            self.violation("%r did not close within %d s" % (c, DEADLINE))

    async def kick(self, dev):
        c = dev.conn
        status, res, _ = await self.http("DELETE", "/v1/users/%s/connections?device=%s" % (dev.user, dev.name))
        if status != 200:
            self.violation("kick %s answered %s %s" % (dev.key, status, res))
            return
        self.note("kick %s -> closed %s" % (dev.key, res.get("closed")))
        if c is not None and res.get("closed"):
            c.kicked = True
            await self.wait_done(c)

    # ---- restarts
    async def restart(self, kill):
        online = [c for dev in self.devices.values() for c in dev.conns if not c.done.is_set()]
        for c in online:
            c.server_restarted = True
        await self.poll_all()
        self.note("%s the server" % ("kill -9" if kill else "stop"))
        code = await asyncio.to_thread(self.server.stop, signal.SIGKILL if kill else signal.SIGTERM)
        if not kill and code != 0:
            self.violation("graceful stop exited with %s" % code)
        for c in online:
            await self.wait_done(c)
        if self.store == "memory":
            # PROTOCOL.md 10: a new epoch, seqs from 1 again, nothing kept
            self.old_epochs |= set(self.g.epoch.values())
            self.g = Generation(self.g.n + 1)
            self.observed, self.durable = {}, {}
        elif kill:
            # Cursor updates still in the batch may be lost (PROTOCOL.md 1);
            # what the last graceful stop flushed may not.
            self.observed = dict(self.durable)
        else:
            self.durable = dict(self.observed)
        await asyncio.to_thread(self.server.start)
        self.note("started again at %s" % self.server.url)
        if self.store == "memory":
            # Every device known again before the first publish; like an SDK,
            # with its stale last_seq and epoch or without.
            for dev in self.devices.values():
                c = await self.connect(dev, use_last_seq=self.rng.random() < 0.5)
                if c is not None and c.epoch_given is not None and c.welcome.get("epoch") in self.old_epochs | {c.epoch_given}:
                    self.violation("%r: memory store restarted, welcome epoch %s is not new" % (c, c.welcome.get("epoch")))
                if c is not None and self.rng.random() < 0.5:
                    await self.client_close(c)
        await self.poll_all()

    # ---- observing cursors
    async def poll_all(self):
        for u in sorted(USERS):
            await self.poll(u)

    async def listing(self, user):
        out = []
        after = 0
        while True:
            status, res, _ = await self.http("GET", "/v1/users/%s/messages?after=%d&limit=1000" % (user, after))
            if status != 200:
                self.violation("messages listing of %s answered %s %s" % (user, status, res))
                return out
            out += res["messages"]
            if len(res["messages"]) < 1000:
                return out
            after = res["next_after"]

    async def poll(self, user):
        status, pres, _ = await self.http("GET", "/v1/users/%s/presence" % user)
        if status != 200:
            self.violation("presence of %s answered %s %s" % (user, status, pres))
            return
        for d in pres["devices"]:
            self.observe(user, d["device"], d["cursor"], "presence")
        msgs = await self.listing(user)
        for name in USERS[user]:
            acked = [m["seq"] for m in msgs if name in m["acked_by"]]
            if acked:
                self.observe(user, name, max(acked), "acked_by")

    def observe(self, user, device, cursor, source):
        key = "%s/%s" % (user, device)
        floor = max(self.observed.get(key, 0), self.durable.get(key, 0))
        if cursor < floor:
            self.violation("cursor of %s moved backwards: %s shows %d after %d was observed" % (key, source, cursor, floor),
                           "cursor-backwards")
            # reported once: from here on, compare with the new value
            self.observed[key] = cursor
            self.durable[key] = min(self.durable.get(key, 0), cursor)
        if cursor > self.observed.get(key, 0):
            self.observed[key] = cursor

    # ---- the final phase
    async def final_phase(self):
        self.note("final phase")
        for dev in self.devices.values():
            dev.withholding = False
            if dev.conn is not None:
                await self.send_pending_acks(dev.conn, True)
        await asyncio.gather(*(self.drain(dev) for dev in self.devices.values()))
        await self.poll_all()

    async def drain(self, dev):
        """Reconnects until a connection without last_seq finds nothing pending."""
        for rnd in range(10):
            if dev.conn is not None:
                await self.client_close(dev.conn)
            await self.wait_offline(dev)
            head = self.g.head[dev.user]
            c = await self.connect(dev, use_last_seq=(rnd == 0))
            if c is None:
                return
            if c.welcome.get("resume_from", 0) > head:
                await asyncio.sleep(0.3)  # nothing may arrive now
                await self.client_close(c)
                if rnd > 0 and not c.msgs:
                    return
                continue
            deadline = time.time() + DEADLINE
            while not any(m["seq"] == head for m in c.msgs) and not c.done.is_set():
                if time.time() > deadline:
                    self.violation("%r: seq %d not delivered within %d s (got %s)" % (
                        c, head, DEADLINE, [m["seq"] for m in c.msgs]))
                    return
                await asyncio.sleep(0.02)
            # all acked on this connection: wait until the server agrees, then close
            while time.time() < deadline and not c.done.is_set():
                msgs = await self.listing(dev.user)
                if all(dev.name in m["acked_by"] for m in msgs):
                    break
                await asyncio.sleep(0.05)
        self.violation("%s still had messages pending after 10 reconnections" % dev.key)

    async def wait_offline(self, dev):
        deadline = time.time() + DEADLINE
        while time.time() < deadline:
            status, pres, _ = await self.http("GET", "/v1/users/%s/presence" % dev.user)
            if status == 200 and all(d["device"] != dev.name for d in pres["devices"]):
                return
            await asyncio.sleep(0.02)
        self.violation("%s still in presence %d s after its connection closed" % (dev.key, DEADLINE))

    # ---- invariants
    def check_invariants(self):
        dead = set()
        status, res, _ = self.server.request("GET", "/v1/dead-letters?after=0&limit=1000")
        if status != 200:
            self.violation("dead letters answered %s %s" % (status, res))
        else:
            for d in res["dead_letters"]:
                dead.add((d["user"], d["seq"]))
            if res["dead_letters"]:
                # retention and TTL are far beyond this run: nothing may die
                self.violation("dead letters with default retention: %s" % res["dead_letters"])
        for dev in self.devices.values():
            u = dev.user
            # (3) a dedup client processes each seq once, in increasing order
            for processed in dev.old_processed + [dev.processed]:
                if any(b <= a for a, b in zip(processed, processed[1:])):
                    self.violation("%s processed seqs out of order or twice: %s" % (dev.key, processed))
            # (1) every accepted message processed by each entitled device, or dead
            missing = sorted(set(self.g.accepted[u]) - set(dev.processed) - {s for (uu, s) in dead if uu == u})
            if missing:
                self.violation("%s never processed accepted seqs %s" % (dev.key, missing))
            unknown = sorted(set(dev.processed) - set(self.g.accepted[u]))
            if unknown:
                self.violation("%s processed seqs never accepted: %s" % (dev.key, unknown))
            for c in dev.conns:
                self.check_connection(c)
        # the server's own view at the end: every device acked everything
        for u in USERS:
            msgs = self.server.request("GET", "/v1/users/%s/messages?after=0&limit=1000" % u)[1]["messages"]
            if [m["seq"] for m in msgs] != sorted(self.g.accepted[u]):
                self.violation("%s: retained seqs %s, accepted %s" % (u, [m["seq"] for m in msgs], sorted(self.g.accepted[u])))
            for m in msgs:
                if sorted(m["acked_by"]) != sorted(USERS[u]):
                    self.violation("%s seq %d acked_by %s at the end" % (u, m["seq"], m["acked_by"]))

    def check_connection(self, c):
        u = c.dev.user
        w = c.welcome
        seqs = sorted(c.g.accepted[u])
        if w.get("epoch") != c.g.epoch.get(u):
            self.violation("%r: welcome epoch %s, the inbox's is %s" % (c, w.get("epoch"), c.g.epoch.get(u)))
        if w.get("head_seq") != c.expected_head:
            self.violation("%r: welcome head_seq %s, model head %d" % (c, w.get("head_seq"), c.expected_head))
        # nothing is trimmed or expires here: only another epoch means a loss
        stale = c.epoch_given is not None and c.epoch_given != w.get("epoch")
        if w.get("recovered") is not (not stale):
            self.violation("%r: welcome recovered %s, given epoch %s, inbox epoch %s" % (
                c, w.get("recovered"), c.epoch_given, w.get("epoch")))
        if c.last_seq is not None and not stale:
            pos = min(c.last_seq, c.expected_head)
            want = next((s for s in seqs if s > pos and s <= c.expected_head), c.expected_head + 1)
            if w.get("resume_from") != want:
                self.violation("%r: last_seq=%d, head %d: resume_from %s, want %d" % (
                    c, c.last_seq, c.expected_head, w.get("resume_from"), want))
        # (2) first attempts: exactly the accepted seqs from resume_from on, in order
        firsts = [m["seq"] for m in c.msgs if m.get("attempt") == 1]
        want = [s for s in seqs if s >= w.get("resume_from", 0)][:len(firsts)]
        if firsts != want:
            self.violation("%r: first attempts %s, want %s (resume_from %s)" % (c, firsts, want, w.get("resume_from")))
        attempts = {}
        for m in c.msgs:
            s, a = m["seq"], m.get("attempt")
            if a != attempts.get(s, 0) + 1:
                self.violation("%r: seq %d attempt %s after attempt %s" % (c, s, a, attempts.get(s)))
            attempts[s] = a
            if isinstance(a, int) and a > MAX_ATTEMPTS:
                self.violation("%r: seq %d sent %d times, max_attempts is %d" % (c, s, a, MAX_ATTEMPTS))
            # (5) the frame carries what was published for this seq
            if s not in c.g.accepted[u]:
                self.violation("%r: msg seq %d was never accepted" % (c, s))
                continue
            mid, event, data = c.g.accepted[u][s]
            if m.get("id") != mid or m.get("data") != data or (event is not None and m.get("event") != event):
                self.violation("%r: seq %d carries id=%s event=%s data=%r, published id=%s event=%s data=%r" % (
                    c, s, m.get("id"), m.get("event"), m.get("data"), mid, event, data))
        # close codes: each explained by what happened to the connection
        code = c.close_code
        allowed = {4008}
        if c.client_closed:
            allowed.add(1000)
        if c.kicked:
            allowed.add(4010)
        if c.replaced:
            allowed.add(4011)
        if c.server_restarted:
            allowed |= {1001, 1006}
        if code not in allowed:
            self.violation("%r closed with %s; allowed here: %s" % (c, code, sorted(allowed)))
        if code == 4008 and MAX_ATTEMPTS not in attempts.values():
            self.violation("%r closed 4008 though no message reached attempt %d: %s" % (c, MAX_ATTEMPTS, attempts))
        for f in c.others:
            if f.get("type") == "error":
                self.violation("%r got an error frame %s" % (c, f))


class ModelTest(unittest.TestCase):
    def run_model(self, store):
        for seed in seeds_from_env():
            with self.subTest(store=store, seed=seed):
                r = Run(store, seed, STEPS)
                t = time.time()
                try:
                    asyncio.run(r.main())
                except Exception as e:  # noqa: BLE001
                    r.violation("run raised %r" % e)
                    raise AssertionError(r.report()) from e
                sys.stderr.write("\nmodel store=%s seed=%d: %d ops, %.1f s, %d connections, %d messages, %d duplicates seen, "
                                 "%d closed 4008, %d violations, %d tolerated\n" % (
                                     store, seed, len(r.ops), time.time() - t, sum(len(d.conns) for d in r.devices.values()),
                                     sum(len(a) for a in r.g.accepted.values()), sum(d.duplicates for d in r.devices.values()),
                                     sum(c.close_code == 4008 for d in r.devices.values() for c in d.conns),
                                     len(r.violations), r.tolerated))
                if r.violations:
                    self.fail(r.report())

    @unittest.skipUnless("memory" in STORES, "HERALD_MODEL_STORES")
    def test_random_runs_on_the_memory_store_with_restarts(self):
        self.run_model("memory")

    @unittest.skipUnless("rocksdb" in STORES, "HERALD_MODEL_STORES")
    def test_random_runs_on_the_rocksdb_store_with_restarts_and_kill_9(self):
        self.run_model("rocksdb")


class RetentionTest(unittest.TestCase):
    """PROTOCOL.md 1(b), 10: trimmed before a device acked it means dead letter
    with reason `trimmed`, and that device's next welcome says recovered:false."""

    def test_trimmed_messages_are_dead_letters_and_the_offline_device_is_told(self):
        for store in STORES + ["redis"]:
            with self.subTest(store=store):
                s = Server(HERALD_STORE=store, HERALD_RETENTION_MAX_MESSAGES=5).start()
                try:
                    asyncio.run(self.scenario(s))
                finally:
                    s.cleanup()

    async def scenario(self, s):
        async def connect(device, query=""):
            ws = await s.connect("rt", device=device, query=query)
            return ws, json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))

        async def take(ws, n, ack=True):
            seqs = []
            while len(seqs) < n:
                f = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
                if f["type"] == "msg":
                    seqs.append(f["seq"])
                    if ack:
                        await ws.send(json.dumps({"type": "ack", "seq": f["seq"]}))
            return seqs

        online, _ = await connect("on")
        off, w = await connect("off")
        epoch = w["epoch"]
        ids = {}
        for i in range(2):
            ids[s.publish("rt", {"i": i})["seq"]] = None
        self.assertEqual(await take(off, 2), [1, 2])
        self.assertEqual(await take(online, 2), [1, 2])
        # Both close (which stores their cursors), "on" comes back: 1 and 2
        # are acked by every device before they are trimmed.
        await off.close()
        await online.close()
        self.wait_offline(s)
        for seq in (1, 2):
            self.wait_acked(s, seq, {"on", "off"})
        online, _ = await connect("on")
        for i in range(2, 12):
            r = s.publish("rt", {"i": i}, id="rt-%d" % i)
            ids[r["seq"]] = r["id"]
        self.assertEqual(await take(online, 10), list(range(3, 13)))
        await online.close()
        _, res, _ = s.request("GET", "/v1/users/rt/messages?after=0&limit=100")
        self.assertEqual([m["seq"] for m in res["messages"]], [8, 9, 10, 11, 12])
        _, dl, _ = s.request("GET", "/v1/dead-letters?after=0&limit=1000")
        mine = [(d["seq"], d["message_id"], d["reason"]) for d in dl["dead_letters"] if d["user"] == "rt"]
        # 1 and 2 were acked by every device before they left: not dead letters
        self.assertEqual(mine, [(seq, ids[seq], "trimmed") for seq in range(3, 8)])
        for seq in (3, 7):
            self.assertEqual(s.request("GET", "/v1/users/rt/messages/%d" % seq)[1]["state"], "dead")
        # the offline device, from its cursor (2) and from its own last_seq:
        # told it missed data, then given what is left
        for query, ack in (("", False), ("last_seq=2&epoch=" + urllib.parse.quote(epoch, safe=""), True)):
            ws, w = await connect("off", query)
            self.assertEqual((w["recovered"], w["resume_from"], w["head_seq"], w["epoch"]), (False, 8, 12, epoch), query)
            self.assertEqual(await take(ws, 5, ack), [8, 9, 10, 11, 12])
            await ws.close()
        self.wait_offline(s)
        self.wait_acked(s, 12, {"on", "off"})
        # once acked past the loss, nothing is missing any more
        ws, w = await connect("off")
        self.assertTrue(w["recovered"])
        self.assertEqual(w["resume_from"], 13)
        await ws.close()
        self.wait_offline(s)
        # ...but a client that lost its own progress and resumes below the
        # loss again (last_seq 2: it never processed 3..7) is told; from at
        # or above the highest lost seq it is whole. On rocksdb and redis the
        # device's lost mark outlives a restart.
        stale = "last_seq=%d&epoch=" + urllib.parse.quote(epoch, safe="")
        for restart in ([False] if s.env["HERALD_STORE"] == "memory" else [False, True]):
            if restart:
                s.stop()
                s.start()
            for last_seq, recovered, resume_from in ((2, False, 8), (6, False, 8), (7, True, 8), (12, True, 13)):
                ws, w = await connect("off", stale % last_seq)
                self.assertEqual((w["recovered"], w["resume_from"]), (recovered, resume_from),
                                 "last_seq=%d restart=%s" % (last_seq, restart))
                await ws.close()
                self.wait_offline(s)

    def wait_offline(self, s):
        deadline = time.time() + DEADLINE
        while s.request("GET", "/v1/users/rt/presence")[1]["devices"]:
            if time.time() > deadline:
                self.fail("devices still online")
            time.sleep(0.02)

    def wait_acked(self, s, seq, devices):
        deadline = time.time() + DEADLINE
        while True:
            _, st, _ = s.request("GET", "/v1/users/rt/messages/%d" % seq)
            if set(st["acked_by"]) >= devices:
                return
            if time.time() > deadline:
                self.fail("seq %d not acked by %s: %s" % (seq, devices, st))
            time.sleep(0.02)


if __name__ == "__main__":
    unittest.main(verbosity=2)
