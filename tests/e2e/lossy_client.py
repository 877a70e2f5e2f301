"""Client side of test_lossy_network.py: run inside the client network
namespace (`ip netns exec NS /usr/bin/python3 lossy_client.py CONFIG OUT`).

Connects every device of CONFIG and behaves as a real SDK does on a bad
network:
- seq is the identity of a message (PROTOCOL.md 4.5): a seq already seen
  is a duplicate, acked again and not handed to the "app";
- acks are coalesced: `{"type":"ack","upto":N}` with N the highest
  contiguous seq, at most every ACK_EVERY s (the server's client frame rate
  limit is 100/s, and a backlog replay comes faster than that);
- a protocol `ping` every heartbeat; a connection that has been silent for
  DEAD_AFTER_PINGS pings is abandoned (a partition closes nothing that the
  client could see);
- reconnects with full-jitter exponential backoff and resumes with
  `last_seq` (the highest contiguous seq) and the `epoch` of the welcome.

Writes one JSON object a line to OUT: "welcome", "msg" (first receipt of a
seq: what the app sees), "dup", "closed", "connect_failed", and on SIGTERM
one "stats" line per device, then exits 0. Depends on nothing but the
Debian `websockets` package, so that it runs the same in any namespace.
"""
import asyncio
import json
import random
import signal
import sys
import time
import urllib.parse

import websockets

ACK_EVERY = 0.05
DEAD_AFTER_PINGS = 3.5
BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 2.0
OPEN_TIMEOUT = 4.0


def now_ms():
    return time.time() * 1000.0


class Out:
    """JSON lines, flushed by a task every 50 ms (the parent polls the file)."""

    def __init__(self, path):
        self.f = open(path, "a", buffering=1 << 16)

    def write(self, **rec):
        self.f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    async def flusher(self):
        while True:
            await asyncio.sleep(0.05)
            self.f.flush()

    def close(self):
        self.f.flush()
        self.f.close()


class Device:
    def __init__(self, cfg, url, out, stop):
        self.user = cfg["user"]
        self.device = cfg["device"]
        self.token = cfg["token"]
        self.url = url
        self.out = out
        self.stop = stop
        self.seen = set()
        self.contig = 0  # highest seq with every seq up to it processed
        self.epoch = None
        self.connections = 0
        self.connect_failures = 0
        self.dups = 0
        self.closes = {}
        self.attempt = 0  # backoff exponent since the last welcome

    def backoff(self):
        delay = random.uniform(0, min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** self.attempt))
        self.attempt += 1
        return delay

    def uri(self):
        q = {"device": self.device}
        if self.epoch is not None:
            q["last_seq"] = str(self.contig)
            q["epoch"] = self.epoch
        return self.url + "?" + urllib.parse.urlencode(q)

    async def run(self):
        while not self.stop.is_set():
            try:
                ws = await websockets.connect(
                    self.uri(), extra_headers={"Authorization": "Bearer " + self.token},
                    open_timeout=OPEN_TIMEOUT, ping_interval=None, close_timeout=1, max_size=1 << 20)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                self.connect_failures += 1
                self.out.write(ev="connect_failed", u=self.user, d=self.device, why=type(e).__name__, t=now_ms())
                await self.sleep(self.backoff())
                continue
            try:
                await self.session(ws)
            finally:
                ws.transport.abort()
            await self.sleep(self.backoff())

    async def sleep(self, s):
        try:
            await asyncio.wait_for(self.stop.wait(), s)
        except asyncio.TimeoutError:
            pass

    async def session(self, ws):
        state = {"rx": time.monotonic(), "acked": -1, "reack": False}
        self.connections += 1
        conn = self.connections
        tasks = []
        code, why = None, ""
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT * 2))
            if welcome.get("type") != "welcome":
                raise RuntimeError("first frame is not a welcome: %r" % welcome)
            state["rx"] = time.monotonic()
            if self.epoch is None:
                self.contig = welcome["resume_from"] - 1
            self.epoch = welcome["epoch"]
            self.attempt = 0
            self.out.write(ev="welcome", u=self.user, d=self.device, conn=conn, resume_from=welcome["resume_from"],
                           head_seq=welcome["head_seq"], recovered=welcome["recovered"], last_seq=self.contig, t=now_ms())
            ping_s = welcome["heartbeat_ms"] / 1000.0
            tasks.append(asyncio.ensure_future(self.acker(ws, state)))
            tasks.append(asyncio.ensure_future(self.pinger(ws, state, ping_s)))
            stop_wait = asyncio.ensure_future(self.stop.wait())
            tasks.append(stop_wait)
            while True:
                recv = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({recv, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    why = "stopped"
                    return
                raw = recv.result()
                state["rx"] = time.monotonic()
                f = json.loads(raw)
                if f.get("type") == "msg":
                    self.on_msg(f, state, conn)
        except websockets.exceptions.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            why = "closed"
        except asyncio.TimeoutError:
            why = "no welcome"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - recorded, then reconnect as an SDK would
            why = "%s: %s" % (type(e).__name__, e)
        finally:
            for t in tasks:
                t.cancel()
            key = str(code) if code is not None else why
            self.closes[key] = self.closes.get(key, 0) + 1
            self.out.write(ev="closed", u=self.user, d=self.device, conn=conn, code=code, why=why, t=now_ms())

    def on_msg(self, f, state, conn):
        seq = f["seq"]
        if seq in self.seen or seq <= self.contig:
            self.dups += 1
            state["reack"] = True  # acked again, not processed (PROTOCOL.md 4.5)
            self.out.write(ev="dup", u=self.user, d=self.device, seq=seq, attempt=f.get("attempt"), conn=conn)
            return
        self.seen.add(seq)
        while self.contig + 1 in self.seen:
            self.contig += 1
        data = f.get("data")
        self.out.write(ev="msg", u=self.user, d=self.device, seq=seq, i=data.get("i") if isinstance(data, dict) else None,
                       ts=f.get("ts"), rx=now_ms(), attempt=f.get("attempt"), conn=conn)

    async def acker(self, ws, state):
        try:
            await self._acker(ws, state)
        except websockets.exceptions.ConnectionClosed:
            pass  # the session's recv() sees it too

    async def _acker(self, ws, state):
        while True:
            await asyncio.sleep(ACK_EVERY)
            if self.contig > state["acked"] or state["reack"]:
                state["reack"] = False
                upto = self.contig
                await ws.send(json.dumps({"type": "ack", "upto": upto}))
                state["acked"] = upto

    async def pinger(self, ws, state, ping_s):
        try:
            await self._pinger(ws, state, ping_s)
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _pinger(self, ws, state, ping_s):
        n = 0
        while True:
            await asyncio.sleep(ping_s)
            if time.monotonic() - state["rx"] > DEAD_AFTER_PINGS * ping_s:
                self.out.write(ev="dead", u=self.user, d=self.device, silent_s=round(time.monotonic() - state["rx"], 2),
                               t=now_ms())
                ws.transport.abort()  # recv() ends with ConnectionClosed
                return
            n += 1
            await ws.send(json.dumps({"type": "ping", "id": n, "ts": int(now_ms())}))


async def main(cfg_path, out_path):
    with open(cfg_path) as f:
        cfg = json.load(f)
    out = Out(out_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    flusher = asyncio.ensure_future(out.flusher())
    devices = [Device(d, cfg["url"], out, stop) for d in cfg["devices"]]
    runs = [asyncio.ensure_future(d.run()) for d in devices]
    await stop.wait()
    try:
        await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 10)
    except asyncio.TimeoutError:
        pass
    flusher.cancel()
    for d in devices:
        out.write(ev="stats", u=d.user, d=d.device, connections=d.connections, connect_failures=d.connect_failures,
                  dups=d.dups, contig=d.contig, closes=d.closes)
    out.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
