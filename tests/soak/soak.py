#!/usr/bin/python3
"""Soak: a steady load with random disconnects for a long time; checks that
nothing is lost and that memory, file descriptors and queues stay flat.

    /usr/bin/python3 tests/soak/soak.py --minutes 60 --out build/soak

Starts `herald serve` ($HERALD_BIN) on the rocksdb store, connects
--users users with --devices devices each, publishes --rate messages per
second spread over the users, and every second drops a random share of
the connections (abruptly or with a close) that come back after a random
pause with last_seq, as the SDK does. Every --sample seconds it records the
server's RSS, open file descriptors and queue gauges. At the end it drains
and checks every device got every accepted message once, in order.

Writes samples.csv, soak.svg (the curves) and summary.json to --out; exits
non-zero when a message was lost, duplicated or out of order, or when a
curve kept rising (see `flatness`).
"""
import argparse
import asyncio
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from harness import API_KEY, Server, make_token, under_sanitizer  # noqa: E402

import websockets  # noqa: E402


def proc_sample(pid):
    """RSS, and open descriptors split into sockets and the rest (files:
    RocksDB keeps its table files open, their number follows the data)."""
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    sockets = files = 0
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            sockets += 1
        else:
            files += 1
    return rss, sockets, files


class Device:
    """One device as the SDK runs it: dedups by seq, acks the contiguous
    prefix, reconnects with last_seq."""

    def __init__(self, user, name):
        self.user, self.name = user, name
        self.received = []  # seqs in arrival order, after dedup
        self.last = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.ws = None
        self.connects = 0

    def on_msg(self, seq):
        if seq <= self.last:
            self.duplicates += 1  # a redelivery: the SDK drops it
            return False
        if seq != self.last + 1:
            self.out_of_order += 1
        self.last = seq
        self.received.append(seq)
        return True


class Soak:
    def __init__(self, args):
        self.args = args
        self.stop = asyncio.Event()
        self.accepted = {}  # user -> highest accepted seq
        self.publish_errors = 0
        self.samples = []
        self.disconnects = 0

    async def run_device(self, server, dev):
        rnd = random.Random(hash((dev.user, dev.name)))
        while not self.stop.is_set():
            uri = "%s?device=%s&last_seq=%d" % (server.ws_url, dev.name, dev.last)
            try:
                async with websockets.connect(uri, extra_headers={"Authorization": "Bearer " + make_token(dev.user)},
                                              ping_interval=None, max_size=2 ** 24) as ws:
                    dev.ws = ws
                    dev.connects += 1
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame.get("type") == "msg" and dev.on_msg(frame["seq"]):
                            await ws.send(json.dumps({"type": "ack", "upto": dev.last}))
                        elif frame.get("type") == "msg":
                            await ws.send(json.dumps({"type": "ack", "upto": dev.last}))
            except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
                pass
            dev.ws = None
            if self.stop.is_set():
                return
            await asyncio.sleep(rnd.uniform(0.05, self.args.max_pause))

    async def disrupt(self, devices):
        """Every second, drop a random share of the live connections."""
        rnd = random.Random(7)
        while not self.stop.is_set():
            await asyncio.sleep(1)
            for dev in devices:
                if dev.ws is not None and rnd.random() < self.args.drop_share:
                    self.disconnects += 1
                    if rnd.random() < 0.5:
                        dev.ws.transport.abort()  # the network went away
                    else:
                        await dev.ws.close()

    def publisher(self, server, users, until):
        """Open loop at --rate: one batch request per 100 ms tick."""
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        per_tick = self.args.rate / 10.0
        owed = 0.0
        next_tick = time.time()
        rnd = random.Random(3)
        pad = "p" * self.args.data_bytes
        n = 0
        while time.time() < until:
            owed += per_tick
            count = int(owed)
            owed -= count
            if count:
                batch = []
                for _ in range(count):
                    batch.append({"user": rnd.choice(users), "id": "soak-%d" % n, "data": {"n": n, "pad": pad}})
                    n += 1
                try:
                    conn.request("POST", "/v1/publish/batch", body=json.dumps({"messages": batch}),
                                 headers={"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"})
                    res = json.loads(conn.getresponse().read())
                    for r in res["results"]:
                        if "seq" in r:
                            self.accepted[r["user"]] = max(self.accepted.get(r["user"], 0), r["seq"])
                        else:
                            self.publish_errors += 1
                except (OSError, http.client.HTTPException, ValueError):
                    self.publish_errors += count
                    conn.close()
                    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
            next_tick += 0.1
            time.sleep(max(0.0, next_tick - time.time()))
        conn.close()

    async def sampler(self, server, t0):
        while not self.stop.is_set():
            rss, sockets, files = proc_sample(server.proc.pid)
            m = server.metrics()
            self.samples.append({
                "t": round(time.time() - t0, 1), "rss_mb": round(rss / 2 ** 20, 2),
                "socket_fds": sockets, "file_fds": files,
                "connections": m.get("herald_connections_active", 0),
                "send_queue_kb": round(m.get("herald_send_queue_bytes", 0) / 1024, 1),
                "inflight": m.get("herald_inflight_messages", 0),
                "store_queue": m.get("herald_store_queue_messages", 0),
                "cache_mb": round(m.get("herald_message_cache_bytes", 0) / 2 ** 20, 2),
            })
            try:
                await asyncio.wait_for(self.stop.wait(), self.args.sample)
            except asyncio.TimeoutError:
                pass

    async def main(self, server):
        users = ["soak%d" % i for i in range(self.args.users)]
        devices = [Device(u, "d%d" % k) for u in users for k in range(self.args.devices)]
        t0 = time.time()
        until = t0 + self.args.minutes * 60
        tasks = [asyncio.create_task(self.run_device(server, d)) for d in devices]
        # Every device known to the server before the first publish, so each
        # one's expected sequence starts at 1.
        while any(d.ws is None for d in devices):
            await asyncio.sleep(0.1)
        t0 = time.time()
        until = t0 + self.args.minutes * 60
        tasks.append(asyncio.create_task(self.disrupt(devices)))
        tasks.append(asyncio.create_task(self.sampler(server, t0)))
        pub = threading.Thread(target=self.publisher, args=(server, users, until))
        pub.start()
        last_report = 0
        while pub.is_alive():
            await asyncio.sleep(1)
            if time.time() - last_report >= 30:
                last_report = time.time()
                s = self.samples[-1] if self.samples else {}
                print("soak: %5.0f s, accepted %d, rss %s MB, sockets %s, files %s, connections %s" % (
                    time.time() - t0, sum(self.accepted.values()), s.get("rss_mb"), s.get("socket_fds"),
                    s.get("file_fds"),
                    s.get("connections")), file=sys.stderr, flush=True)
        pub.join()
        # Drain: every device reaches its user's last accepted seq.
        deadline = time.time() + self.args.drain
        while time.time() < deadline:
            if all(d.last >= self.accepted.get(d.user, 0) for d in devices):
                break
            await asyncio.sleep(0.2)
        self.stop.set()
        for d in devices:
            if d.ws is not None:
                await d.ws.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return devices


def flatness(samples, key, slack):
    """A curve is flat when its median over the last quarter of the run is
    within slack of its median over the second quarter (the first quarter
    is warm-up: caches and memtables filling)."""
    n = len(samples)
    if n < 8:
        return True, None, None
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    early = med([s[key] for s in samples[n // 4:n // 2]])
    late = med([s[key] for s in samples[3 * n // 4:]])
    return late <= early + slack(early), early, late


def svg(samples, path):
    """The curves, one panel each, as a dependency-free SVG."""
    panels = [("rss_mb", "RSS (MB)"), ("socket_fds", "open sockets"), ("file_fds", "open files"),
              ("connections", "connections"),
              ("send_queue_kb", "send queues (KB)"), ("inflight", "inflight messages"),
              ("store_queue", "store queue (messages)")]
    w, h, pad = 520, 150, 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (2 * w, h * ((len(panels) + 1) // 2)), '<rect width="100%" height="100%" fill="white"/>']
    tmax = max(s["t"] for s in samples) or 1
    for i, (key, title) in enumerate(panels):
        x0, y0 = (i % 2) * w, (i // 2) * h
        vmax = max(max(s[key] for s in samples), 1) * 1.1
        pts = " ".join("%.1f,%.1f" % (x0 + pad + (w - 2 * pad) * s["t"] / tmax,
                                      y0 + h - 25 - (h - 45) * s[key] / vmax) for s in samples)
        out.append('<text x="%d" y="%d">%s (max %.1f)</text>' % (x0 + pad, y0 + 14, title, vmax / 1.1))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>'
                   % (x0 + pad, y0 + 20, w - 2 * pad, h - 45))
        out.append('<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="%s"/>' % pts)
        out.append('<text x="%d" y="%d">0</text><text x="%d" y="%d" text-anchor="end">%.0f min</text>'
                   % (x0 + pad, y0 + h - 12, x0 + w - pad, y0 + h - 12, tmax / 60))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200, help="messages per second")
    ap.add_argument("--drop-share", type=float, default=0.01, help="share of connections dropped each second")
    ap.add_argument("--max-pause", type=float, default=2.0, help="longest pause before a reconnect (s)")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--drain", type=float, default=60.0)
    ap.add_argument("--data-bytes", type=int, default=1024, help="padding in each message")
    ap.add_argument("--retention", type=int, default=100, help="messages kept per inbox")
    ap.add_argument("--out", default="build/soak")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # Small budgets so that a short run reaches its steady state within the
    # first quarter: memtables flush, caches fill, and the stored data stops
    # growing (retention trims each inbox, dedup entries expire), so
    # RocksDB's table files stop multiplying.
    server = Server(HERALD_STORE="rocksdb", HERALD_SYNC="batch", HERALD_MESSAGE_CACHE_BYTES=16 * 2 ** 20,
                    HERALD_ROCKSDB_WRITE_BUFFER_BYTES=8 * 2 ** 20, HERALD_ROCKSDB_BLOCK_CACHE_BYTES=8 * 2 ** 20,
                    HERALD_RETENTION_MAX_MESSAGES=args.retention, HERALD_DEDUP_WINDOW_MS=60000,
                    HERALD_IO_THREADS=2).start()
    soak = Soak(args)
    try:
        devices = asyncio.run(soak.main(server))
        alive = server.proc.poll() is None
    finally:
        server.cleanup()

    lost = sum(max(0, soak.accepted.get(d.user, 0) - len(d.received)) for d in devices)
    wrong = sum(1 for d in devices if d.received != list(range(1, soak.accepted.get(d.user, 0) + 1)))
    out_of_order = sum(d.out_of_order for d in devices)
    redeliveries = sum(d.duplicates for d in devices)
    checks = {}
    if not under_sanitizer():  # quarantined frees grow RSS there
        checks["rss_mb"] = flatness(soak.samples, "rss_mb", lambda e: max(16.0, 0.1 * e))
    checks.update({
        # Connections come and go with the disruption: a few either way.
        "socket_fds": flatness(soak.samples, "socket_fds", lambda e: 16),
        # RocksDB's table files: flushes add them, compactions merge them.
        "file_fds": flatness(soak.samples, "file_fds", lambda e: 32),
        "send_queue_kb": flatness(soak.samples, "send_queue_kb", lambda e: 256),
        "inflight": flatness(soak.samples, "inflight", lambda e: max(64, e)),
        "store_queue": flatness(soak.samples, "store_queue", lambda e: 1000),
    })
    summary = {
        "minutes": args.minutes, "users": args.users, "devices": len(devices), "rate": args.rate,
        "accepted": sum(soak.accepted.values()), "publish_errors": soak.publish_errors,
        "deliveries": sum(len(d.received) for d in devices),
        "lost": lost, "devices_with_wrong_sequence": wrong, "out_of_order": out_of_order,
        "redeliveries_dropped_by_client": redeliveries,
        "disconnects": soak.disconnects, "connects": sum(d.connects for d in devices),
        "server_alive_at_end": alive,
        "flat": {k: {"ok": ok, "early": e, "late": l} for k, (ok, e, l) in checks.items()},
    }
    with open(os.path.join(args.out, "samples.csv"), "w") as f:
        keys = list(soak.samples[0].keys()) if soak.samples else []
        f.write(",".join(keys) + "\n")
        for s in soak.samples:
            f.write(",".join(str(s[k]) for k in keys) + "\n")
    if soak.samples:
        svg(soak.samples, os.path.join(args.out, "soak.svg"))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    ok = (lost == 0 and wrong == 0 and out_of_order == 0 and soak.publish_errors == 0 and alive
          and all(ok for ok, _, _ in checks.values()))
    print("soak: %s" % ("PASS" if ok else "FAIL"), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
