"""Several nodes on one Redis (docs/cluster.md): notifications go only to
the nodes holding the user; a node killed with -9 under load and Redis
restarted under load lose nothing that got a 200, and every device gets
every such message in order.

No timed assertions: delays are printed, completeness is waited for with
generous timeouts (2 loaded cores)."""
import asyncio
import json
import random
import re
import signal
import socket
import subprocess
import threading
import time
import unittest
from contextlib import AsyncExitStack

import websockets

from harness import RedisServer, Server, recv_json, recv_type, run

DONE_TIMEOUT_S = 90  # for every device to have every accepted message


def wait_for(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def metric(server, name):
    _, text, _ = server.request("GET", "/metrics", key=None)
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    if m is None:
        raise AssertionError("%s not in /metrics" % name)
    return float(m.group(1))


def bindable(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cluster_port():
    """A free loopback port whose cluster bus port (+10000) is free too."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20000, 32000)
        if bindable(port) and bindable(port + 10000):
            return port
    raise RuntimeError("no free loopback port")


class RedisCluster:
    """Three redis-server masters, no replicas, every slot assigned."""

    def __init__(self):
        self.servers = [RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
                        for _ in range(3)]
        for r in self.servers:
            r.port = cluster_port()

    @property
    def url(self):
        return "redis+cluster://" + ",".join("127.0.0.1:%d" % r.port for r in self.servers)

    def start(self):
        for r in self.servers:
            r.start()
        subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % r.port for r in self.servers] +
                       ["--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        for r in self.servers:
            ok = wait_for(lambda: "cluster_state:ok" in subprocess.run(
                ["redis-cli", "-p", str(r.port), "cluster", "info"], capture_output=True, text=True).stdout)
            if not ok:
                raise RuntimeError("cluster_state never ok: " + r.logs())
        return self

    def cleanup(self):
        for r in self.servers:
            r.cleanup()


def start_nodes(redis, count):
    nodes = []
    for i in range(count):
        nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID="n%d" % (i + 1)).start())
    for n in nodes:
        if not wait_for(lambda: metric(n, "herald_node_notifications_subscribed") == 1):
            raise AssertionError("not subscribed: " + n.logs())
    return nodes


class Device:
    """One device that stays connected: it acks what it gets, and when its
    connection ends it reconnects (to its node, or another live one when
    that one is gone) resuming from the highest seq it got."""

    def __init__(self, user, name, node):
        self.user = user
        self.name = name
        self.node = node
        self.first_node = node
        self.seqs = []   # every seq received, in order, duplicates included
        self.data = {}   # seq -> data
        self.epoch = None
        self.epochs_seen = set()
        self.connects = 0
        self.stopping = False

    def has(self, seqs):
        return set(seqs) <= self.data.keys()

    async def run(self, nodes, alive):
        rng = random.Random(hash((self.user, self.name)))
        while not self.stopping:
            if self.node not in alive:
                self.node = rng.choice(sorted(alive))
            query = ""
            if self.epoch is not None and self.seqs:
                query = "last_seq=%d&epoch=%s" % (max(self.seqs), self.epoch)
            try:
                async with nodes[self.node].connect(self.user, device=self.name, query=query,
                                                    open_timeout=10) as ws:
                    w = await recv_json(ws, timeout=10)
                    if w.get("type") != "welcome":
                        continue
                    self.epochs_seen.add(w["epoch"])
                    if self.epoch is None:
                        self.epoch = w["epoch"]
                    self.connects += 1
                    while not self.stopping:
                        try:
                            f = await recv_json(ws, timeout=0.3)
                        except asyncio.TimeoutError:
                            continue
                        if f.get("type") == "msg":
                            self.seqs.append(f["seq"])
                            self.data[f["seq"]] = f["data"]
                            await ws.send(json.dumps({"type": "ack", "seq": f["seq"]}))
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.2)


class Load:
    """Publishers on threads, each at a steady rate to random live nodes;
    records what got a 200 (user -> {seq: data}) and every status."""

    def __init__(self, nodes, users, threads=3, rate_per_thread=15.0):
        self.nodes = nodes
        self.users = users
        self.threads = threads
        self.interval = 1.0 / rate_per_thread
        self.alive = set(range(len(nodes)))
        self.lock = threading.Lock()
        self.accepted = {u: {} for u in users}
        self.accepted_by_node = [0] * len(nodes)
        self.statuses = {}
        self.errors = 0  # no HTTP answer (a node killed under the request)
        self.stop = threading.Event()
        self.counter = 0
        self.workers = []

    def _next(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def _run(self, seed):
        rng = random.Random(seed)
        next_at = time.monotonic()
        while not self.stop.is_set():
            i = self._next()
            user = rng.choice(self.users)
            node = rng.choice(sorted(self.alive))
            data = {"i": i}
            try:
                status, res, _ = self.nodes[node].request(
                    "POST", "/v1/publish", {"user": user, "data": data, "id": "m-%d" % i})
            except (OSError, ValueError) as e:  # connection refused or cut: no answer
                del e
                with self.lock:
                    self.errors += 1
                status = None
            with self.lock:
                if status is not None:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.accepted[user][res["results"][0]["seq"]] = data
                    self.accepted_by_node[node] += 1
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start(self):
        for t in range(self.threads):
            w = threading.Thread(target=self._run, args=(t,), daemon=True)
            w.start()
            self.workers.append(w)

    def finish(self):
        self.stop.set()
        for w in self.workers:
            w.join(30)


def check_devices(test, devices, accepted):
    for d in devices:
        want = accepted[d.user]
        # Dedup by seq (first arrival), then it must be in order.
        unique = list(dict.fromkeys(d.seqs))
        test.assertEqual(unique, sorted(unique), "%s/%s out of order" % (d.user, d.name))
        test.assertEqual([s for s in want if s not in d.data], [], "%s/%s missing" % (d.user, d.name))
        for seq, data in want.items():
            test.assertEqual(d.data[seq], data, "%s/%s seq %d" % (d.user, d.name, seq))
        test.assertEqual(len(d.epochs_seen), 1, "%s/%s epochs %s" % (d.user, d.name, d.epochs_seen))


async def run_load(nodes, devices, load, alive, middle, settle=2.0, before=3.0, after=4.0):
    """Devices connected, load started; middle() (a blocking callable) runs
    on a thread after `before` s; load continues for `after` s more; then
    waits for every device to have every accepted message."""
    tasks = [asyncio.create_task(d.run(nodes, alive)) for d in devices]
    try:
        deadline = time.time() + 30
        while any(d.connects == 0 for d in devices) and time.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        load.start()
        await asyncio.sleep(before)
        await asyncio.to_thread(middle)
        await asyncio.sleep(after)
        await asyncio.to_thread(load.finish)
        t0 = time.monotonic()
        deadline = time.time() + DONE_TIMEOUT_S
        while time.time() < deadline:
            if all(d.has(load.accepted[d.user]) for d in devices):
                break
            await asyncio.sleep(0.1)
        return time.monotonic() - t0
    finally:
        for d in devices:
            d.stopping = True
        await asyncio.gather(*tasks, return_exceptions=True)


class TargetedNotificationTest(unittest.TestCase):
    def test_a_publish_notifies_only_the_node_holding_the_user(self):
        redis = RedisServer("--appendonly", "yes").start()
        try:
            self.check_targeted(redis)
        finally:
            redis.cleanup()

    def test_on_a_redis_cluster_too(self):
        # One lookup script per slot group; PUBLISH from a script on one
        # master reaches a subscriber on another.
        redis = RedisCluster().start()
        try:
            self.check_targeted(redis)
        finally:
            redis.cleanup()

    def check_targeted(self, redis):
        nodes = []
        try:
            nodes = start_nodes(redis, 3)
            n1, n2, n3 = nodes

            async def scenario():
                async with n1.connect("tg", device="d") as ws:
                    await recv_json(ws)
                    # Presence is written before the connection reads its
                    # inbox; it is there by now.
                    delays = []
                    for i in range(20):
                        t0 = time.monotonic()
                        n2.publish("tg", {"i": i})
                        m = await recv_type(ws, "msg", timeout=30)
                        delays.append(time.monotonic() - t0)
                        self.assertEqual(m["data"], {"i": i})
                        await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
                    return delays
            delays = run(scenario())
            delays.sort()
            print("node 2 -> node 1 publish to frame: median %.1f ms, max %.1f ms" %
                  (delays[len(delays) // 2] * 1000, delays[-1] * 1000))
            self.assertGreaterEqual(metric(n2, "herald_node_notifications_sent_total"), 1)
            self.assertGreaterEqual(metric(n1, "herald_node_notifications_received_total"), 1)
            self.assertGreaterEqual(metric(n1, "herald_node_notification_users_received_total"), 1)
            # Node 3 holds nobody: it heard nothing.
            self.assertEqual(metric(n3, "herald_node_notifications_received_total"), 0)
            # Each notification received records its lag; node 3 got none.
            self.assertGreaterEqual(metric(n1, "herald_node_notification_lag_seconds_count"), 1)
            self.assertEqual(metric(n3, "herald_node_notification_lag_seconds_count"), 0)
            self.assertEqual(metric(n3, "herald_node_notification_users_received_total"), 0)
            # Catch-up had (almost) nothing to do: the notifications arrived.
            print("node 1 catch-up notified %d of 20" % metric(n1, "herald_catchup_notified_total"))

            # One batch for users on nodes 1 and 3: each hears only of its own.
            async def batch():
                async with n1.connect("b1", device="d") as w1, n3.connect("b3", device="d") as w3:
                    await recv_json(w1)
                    await recv_json(w3)
                    before = {n: metric(n, "herald_node_notification_users_received_total") for n in (n1, n3)}
                    status, res, _ = n2.request("POST", "/v1/publish/batch", {"messages": [
                        {"user": "b1", "data": 1}, {"user": "b3", "data": 3}, {"user": "nobody", "data": 0}]})
                    self.assertEqual(status, 200, res)
                    self.assertEqual((await recv_type(w1, "msg", timeout=30))["data"], 1)
                    self.assertEqual((await recv_type(w3, "msg", timeout=30))["data"], 3)
                    return before
            before = run(batch())
            # Each named one user (b1 or b3) in what it received, at most;
            # a catch-up pass may have delivered first, never a notification
            # for the other node's user.
            self.assertLessEqual(metric(n1, "herald_node_notification_users_received_total") - before[n1], 1)
            self.assertLessEqual(metric(n3, "herald_node_notification_users_received_total") - before[n3], 1)
            self.assertTrue(wait_for(lambda: metric(n3, "herald_node_notifications_received_total") == 1))

            # Ten users on node 3 (spread over slots in a cluster) in one
            # publish batch: node 3 hears of them in one notification.
            async def ten():
                async with AsyncExitStack() as stack:
                    socks = [await stack.enter_async_context(n3.connect("ten%d" % i, device="d")) for i in range(10)]
                    for ws in socks:
                        await recv_json(ws)
                    status, res, _ = n2.request("POST", "/v1/publish/batch", {"messages": [
                        {"user": "ten%d" % i, "data": i} for i in range(10)]})
                    self.assertEqual(status, 200, res)
                    for i, ws in enumerate(socks):
                        self.assertEqual((await recv_type(ws, "msg", timeout=30))["data"], i)
            run(ten())
            self.assertTrue(wait_for(lambda: metric(n3, "herald_node_notification_users_received_total") == 11))
            self.assertEqual(metric(n3, "herald_node_notifications_received_total"), 2)
        finally:
            for n in nodes:
                n.cleanup()


class DeadNodeTest(unittest.TestCase):
    def test_a_dead_node_is_no_target_though_presence_still_names_it(self):
        redis = RedisServer("--appendonly", "yes").start()
        nodes = []
        try:
            nodes = start_nodes(redis, 3)
            n1, _, n3 = nodes

            async def connect_and_die():
                async with n3.connect("gone", device="d") as ws:
                    await recv_json(ws)
                    n3.stop(signal.SIGKILL)  # no disconnect reaches presence
            try:
                run(connect_and_die())
            except Exception:  # the connection dies with the node
                pass
            redis_cli = ["redis-cli", "-p", str(redis.port)]
            self.assertIn("n3", subprocess.run(redis_cli + ["HVALS", "herald:{u:gone}:presence"],
                                               capture_output=True, text=True).stdout)
            # The alive key expires within Presence::kAliveMs (5 s).
            self.assertTrue(wait_for(lambda: subprocess.run(
                redis_cli + ["EXISTS", "herald:{node:n3}:alive"], capture_output=True, text=True).stdout.strip() == "0",
                timeout=15))
            sent = metric(n1, "herald_node_notifications_sent_total")
            lookups = metric(n1, "herald_node_notify_lookups_total")
            n1.publish("gone", "nobody listens")
            self.assertTrue(wait_for(lambda: metric(n1, "herald_node_notify_lookups_total") > lookups))
            self.assertEqual(metric(n1, "herald_node_notifications_sent_total"), sent)
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()


class NodeKilledUnderLoadTest(unittest.TestCase):
    def test_kill_9_of_a_node_loses_nothing_that_got_a_200(self):
        redis = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
        nodes = []
        try:
            nodes = start_nodes(redis, 3)
            users = ["k%d" % u for u in range(6)]
            # Two devices per user, on two different nodes; every node holds some.
            devices = [Device(u, name, (i + j) % 3) for i, u in enumerate(users)
                       for j, name in enumerate(("phone", "laptop"))]
            alive = {0, 1, 2}
            load = Load(nodes, users)
            victim = 2

            def kill():
                load.alive.discard(victim)
                alive.discard(victim)
                nodes[victim].stop(signal.SIGKILL)

            took = run(run_load(nodes, devices, load, alive, kill))
            total = sum(len(a) for a in load.accepted.values())
            print("accepted %d (%s by node), no answer %d, statuses %s; all delivered %.2f s after the load" %
                  (total, load.accepted_by_node, load.errors, load.statuses, took))
            for i in (0, 1):
                print("node %d: %d accepted, %d lookups, %d notifications sent naming %d users, %d received, "
                      "catch-up notified %d" % (
                          i + 1, load.accepted_by_node[i], metric(nodes[i], "herald_node_notify_lookups_total"),
                          metric(nodes[i], "herald_node_notifications_sent_total"),
                          metric(nodes[i], "herald_node_notification_users_sent_total"),
                          metric(nodes[i], "herald_node_notifications_received_total"),
                          metric(nodes[i], "herald_catchup_notified_total")))
            self.assertGreater(load.accepted_by_node[victim], 0)
            self.assertGreater(total, 50)
            self.assertEqual(set(load.statuses) - {200}, set())
            check_devices(self, devices, load.accepted)
            # The killed node's devices reconnected elsewhere.
            moved = [d for d in devices if d.first_node == victim]
            self.assertEqual(len(moved), 4)
            for d in moved:
                self.assertGreater(d.connects, 1, (d.user, d.name))
                self.assertNotEqual(d.node, victim)
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()


class RedisRestartedUnderLoadTest(unittest.TestCase):
    def test_redis_restart_under_load_answers_503_and_loses_nothing_that_got_a_200(self):
        redis = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
        nodes = []
        try:
            nodes = start_nodes(redis, 3)
            users = ["r%d" % u for u in range(6)]
            devices = [Device(u, name, (i + j) % 3) for i, u in enumerate(users)
                       for j, name in enumerate(("phone", "laptop"))]
            alive = {0, 1, 2}
            load = Load(nodes, users)
            down = {}

            def restart():
                redis.stop()
                t0 = time.monotonic()
                # Down until publishes have been refused for a while.
                wait_for(lambda: load.statuses.get(503, 0) >= 20, timeout=30)
                time.sleep(0.5)
                redis.start()
                for n in nodes:
                    wait_for(lambda: n.request("GET", "/readyz")[0] == 200, timeout=60)
                down["s"] = time.monotonic() - t0

            took = run(run_load(nodes, devices, load, alive, restart))
            total = sum(len(a) for a in load.accepted.values())
            print("accepted %d, statuses %s, no answer %d; redis down and back %.2f s; "
                  "all delivered %.2f s after the load" % (total, load.statuses, load.errors, down["s"], took))
            self.assertGreaterEqual(load.statuses.get(503, 0), 20)
            self.assertEqual(set(load.statuses) - {200, 503}, set())
            self.assertEqual(load.errors, 0)
            for n in nodes:
                self.assertEqual(n.request("GET", "/readyz")[0], 200, n.logs())
                self.assertTrue(wait_for(lambda: metric(n, "herald_node_notifications_subscribed") == 1), n.logs())
            check_devices(self, devices, load.accepted)
            # Publishes went on after Redis came back.
            self.assertGreater(total, 50)
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()


if __name__ == "__main__":
    unittest.main()
