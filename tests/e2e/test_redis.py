"""The redis store under the real binary: Redis going away and coming back
while the server runs (PROTOCOL.md 7: 503 while the store is unavailable;
nothing that got a 200 is lost), and a bad redis configuration."""
import asyncio
import contextlib
import json
import os
import random
import signal
import time
import unittest
import urllib.error
import urllib.request

import websockets

from harness import RedisServer, Server, close_code, free_port, make_token, recv_json, recv_type, run, run_herald


def wait_for(predicate, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class RedisOutageTest(unittest.TestCase):
    def test_publish_is_503_and_not_ready_while_redis_is_down_and_nothing_accepted_is_lost(self):
        redis = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
        s = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start()
        try:
            self.assertEqual(s.request("GET", "/readyz")[0], 200)
            accepted = [s.publish("ro", {"i": i}, id="before-%d" % i)["seq"] for i in range(5)]
            self.assertEqual(accepted, [1, 2, 3, 4, 5])

            async def epoch_of():
                async with s.connect("ro", device="d") as ws:
                    return (await recv_json(ws))["epoch"]
            epoch = run(epoch_of())

            redis.stop()
            status, body, _ = s.request("POST", "/v1/publish", {"user": "ro", "data": 1, "id": "during"})
            self.assertEqual(status, 503, body)
            self.assertEqual(body["error"]["code"], "store_unavailable")
            status, body, _ = s.request("GET", "/readyz")
            self.assertEqual(status, 503)
            self.assertFalse(body["store"])
            # Inspection answers 503 too, not an empty inbox or a 404.
            for path in ("/v1/users/ro/messages", "/v1/users/ro/messages/3", "/v1/dead-letters",
                         "/v1/users/ro/presence"):
                status, body, _ = s.request("GET", path)
                self.assertEqual(status, 503, (path, body))
                self.assertEqual(body["error"]["code"], "store_unavailable", path)

            redis.start()
            self.assertTrue(wait_for(lambda: s.request("GET", "/readyz")[0] == 200), s.logs())
            status, body, _ = s.request("GET", "/v1/users/ro/messages/3")
            self.assertEqual((status, body["seq"]), (200, 3))
            self.assertEqual(s.publish("ro", {"i": 5}, id="after")["seq"], 6)
            self.assertTrue(s.publish("ro", {"i": 0}, id="before-0")["duplicate"])

            async def replay():
                async with s.connect("ro", device="d") as ws:
                    w = await recv_json(ws)
                    self.assertEqual(w["epoch"], epoch)
                    self.assertTrue(w["recovered"])
                    return [(await recv_type(ws, "msg"))["data"] for _ in range(6)]
            self.assertEqual(run(replay()), [{"i": i} for i in range(6)])
        finally:
            s.cleanup()
            redis.cleanup()

    def test_a_server_started_before_redis_becomes_ready_when_redis_comes_up(self):
        # PROTOCOL.md 9: the ready file is written "once listening and ready".
        redis = RedisServer("--appendonly", "yes")
        port = free_port()
        s = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_LISTEN="127.0.0.1:%d" % port).spawn()
        try:
            def readyz():
                try:
                    with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=2) as r:
                        return r.status
                except urllib.error.HTTPError as e:
                    return e.code
                except OSError:
                    return None
            self.assertTrue(wait_for(lambda: readyz() == 503), s.logs())
            time.sleep(0.5)
            self.assertFalse(os.path.exists(s.ready_file), "ready file written while the store is down")
            redis.start()
            s.wait_ready()
            self.assertEqual(s.request("GET", "/readyz")[0], 200)
            self.assertEqual(s.publish("late", 1)["seq"], 1)
        finally:
            s.cleanup()
            redis.cleanup()

    def test_redis_metrics_count_round_trips_and_pipeline_depth(self):
        s = Server(HERALD_STORE="redis").start()
        try:
            status, res, _ = s.request("POST", "/v1/publish/batch",
                                       {"messages": [{"user": "m%d" % (i % 5), "data": i} for i in range(50)]})
            self.assertEqual(status, 200, res)
            _, text, _ = s.request("GET", "/metrics", key=None)
            self.assertRegex(text, r"herald_redis_round_trips_total [1-9]")
            self.assertRegex(text, r"herald_redis_pipeline_depth_count [1-9]")
            self.assertIn("herald_redis_errors_total 0", text)
        finally:
            s.cleanup()


class NodeIdClashTest(unittest.TestCase):
    """HERALD_NODE_ID defaults to the host name (PROTOCOL.md 9), so two nodes
    started on one host with only the store settings shared a name: each
    took the other's devices for its own, cross-node delivery waited for the
    catch-up pass (~1.3 s) and presence showed each node's devices only."""
    def test_two_nodes_with_the_default_node_id_get_distinct_names_and_deliver_at_once(self):
        redis = RedisServer().start()
        nodes = []
        try:
            for _ in range(2):
                nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start())
            a, b = nodes
            names = [n.request("GET", "/v1/stats")[1]["node"] for n in nodes]
            self.assertNotEqual(names[0], names[1])
            self.assertTrue(names[1].startswith(names[0] + "-"), names)
            self.assertIn("in use by another live node", b.logs())
            for n in nodes:
                self.assertTrue(wait_for(lambda: "herald_node_notifications_subscribed 1" in
                                         n.request("GET", "/metrics", key=None)[1]), n.logs())

            async def scenario():
                async with a.connect("clash", device="on-a") as da, b.connect("clash", device="on-b") as db:
                    await recv_json(da)
                    await recv_json(db)
                    _, p, _ = a.request("GET", "/v1/users/clash/presence")
                    self.assertEqual(sorted((d["device"], d["node"]) for d in p["devices"]),
                                     [("on-a", names[0]), ("on-b", names[1])])
                    a.publish("clash", {"n": 1})
                    self.assertEqual((await recv_type(db, "msg"))["data"], {"n": 1})
                    # Pushed by node a's notification (with one shared name it sent none,
                    # and the 1 s catch-up pass delivered instead).
                    self.assertGreaterEqual(a.metrics().get("herald_node_notifications_sent_total", 0), 1)
            run(scenario())
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()

    def test_a_configured_node_id_in_use_by_a_live_node_is_a_clear_startup_error(self):
        redis = RedisServer().start()
        first = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID="same").start()
        second = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID="same")
        try:
            p = run_herald(["serve"], second.env, capture_output=True, text=True, timeout=20)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("node_id 'same' is in use by another live node", p.stderr + p.stdout)
            # A node killed and started again at once under its name is no clash.
            first.stop(signal.SIGKILL)
            first.start()
            self.assertEqual(first.request("GET", "/v1/stats")[1]["node"], "same")
        finally:
            first.cleanup()
            second.cleanup()
            redis.cleanup()


class SeveralNodesTest(unittest.TestCase):
    """Nodes sharing one Redis: a publish on any node reaches the user's
    devices on every node (notifications to the nodes holding the user,
    docs/cluster.md)."""

    def test_publishes_on_random_nodes_reach_devices_on_other_nodes_in_order(self):
        redis = RedisServer("--appendonly", "yes").start()
        nodes = []
        try:
            for name in ("a", "b", "c"):
                nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=name).start())
            for n in nodes:
                self.assertTrue(wait_for(lambda: "herald_node_notifications_subscribed 1" in
                                         n.request("GET", "/metrics", key=None)[1]), n.logs())
            rng = random.Random(6)
            a, b, c = nodes

            async def scenario():
                async with b.connect("x", device="phone") as phone, c.connect("x", device="laptop") as laptop:
                    await recv_json(phone)
                    await recv_json(laptop)
                    got = {"phone": [], "laptop": []}

                    async def receive(count):
                        for name, ws in (("phone", phone), ("laptop", laptop)):
                            for _ in range(count):
                                m = await recv_type(ws, "msg")
                                got[name].append(m["data"]["i"])
                                await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
                    # Only node a publishes: b and c learn of it only from a.
                    sent = [a.publish("x", {"i": i})["seq"] for i in range(10)]
                    await receive(10)
                    sent += [rng.choice(nodes).publish("x", {"i": i})["seq"] for i in range(10, 30)]
                    await receive(20)
                    self.assertEqual(sent, list(range(1, 31)))
                    return got
            got = run(scenario())
            self.assertEqual(got["phone"], list(range(30)))
            self.assertEqual(got["laptop"], list(range(30)))
            _, text, _ = a.request("GET", "/metrics", key=None)
            self.assertRegex(text, r"herald_node_notifications_sent_total [1-9]")

            # Presence answers for every node, with the real node names.
            async def presence():
                async with b.connect("pr", device="phone") as phone, c.connect("pr", device="laptop") as laptop:
                    await recv_json(phone)
                    await recv_json(laptop)
                    status, res, _ = a.request("GET", "/v1/users/pr/presence")
                    self.assertEqual(status, 200, res)
                    return sorted((d["device"], d["node"]) for d in res["devices"])
            self.assertEqual(run(presence()), [("laptop", "c"), ("phone", "b")])
            # The client's close returns once the handshake is done; the node
            # drops the presence entry a moment later, when its session ends.
            self.assertTrue(wait_for(lambda: a.request("GET", "/v1/users/pr/presence")[1]["devices"] == [],
                                     timeout=5))

            # A killed node's devices leave presence within its 5 s alive key.
            async def killed():
                tab = await c.connect("pk", device="tab")
                try:
                    await recv_json(tab)
                    self.assertEqual([d["node"] for d in a.request("GET", "/v1/users/pk/presence")[1]["devices"]],
                                     ["c"])
                    c.stop(signal.SIGKILL)
                    t0 = time.monotonic()
                    self.assertTrue(wait_for(lambda: a.request("GET", "/v1/users/pk/presence")[1]["devices"] == [],
                                             timeout=10))
                    return time.monotonic() - t0
                finally:
                    # The node is dead: there is no closing handshake to wait
                    # for, and trying one races the kernel's reset.
                    tab.transport.abort()
            gone = run(killed())
            print("a killed node left presence after %.1f s" % gone)
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()


class PresenceRecoveryTest(unittest.TestCase):
    """PROTOCOL.md 8: presence lists online devices, and a kick closes the
    user's connections on every node. Crashes and Redis outages must not
    leave devices listed (they count against the per-user limit too), and
    a kick that cannot reach the other nodes must not answer 200."""

    def nodes(self, redis, *names, **env):
        return [Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=n, **env).start()
                for n in names]

    def devices(self, node, user):
        status, res, _ = node.request("GET", "/v1/users/%s/presence" % user)
        return sorted((d["device"], d["node"]) for d in res["devices"]) if status == 200 else None

    def test_a_node_restarted_at_once_under_its_id_drops_its_old_devices(self):
        redis = RedisServer().start()
        a, b = self.nodes(redis, "a", "b", HERALD_MAX_CONNECTIONS_PER_USER=1)
        try:
            async def scenario():
                ws = await b.connect("fr", device="old")
                try:
                    await recv_json(ws)
                    self.assertEqual(self.devices(a, "fr"), [("old", "b")])
                    b.stop(signal.SIGKILL)
                    b.start()  # well within the dead node's 5 s alive key
                    self.assertTrue(wait_for(lambda: self.devices(a, "fr") == [], timeout=2), self.devices(a, "fr"))
                    async with a.connect("fr", device="new") as new:
                        self.assertEqual((await recv_json(new))["type"], "welcome")  # not 429
                finally:
                    ws.transport.abort()
            run(scenario())
        finally:
            for n in (a, b):
                n.cleanup()
            redis.cleanup()

    def test_a_device_that_left_while_redis_was_down_leaves_presence_when_it_returns(self):
        redis = RedisServer("--appendonly", "yes").start()
        a, b = self.nodes(redis, "a", "b")
        try:
            async def scenario():
                async with b.connect("out", device="gone") as ws:
                    await recv_json(ws)
                    self.assertEqual(self.devices(a, "out"), [("gone", "b")])
                    redis.stop()
                # Closed during the outage; its node retries the removal.
                await asyncio.sleep(0.5)
                redis.start()
                self.assertTrue(wait_for(lambda: self.devices(a, "out") == [], timeout=8), self.devices(a, "out"))
            run(scenario())
        finally:
            for n in (a, b):
                n.cleanup()
            redis.cleanup()

    def test_a_kick_that_cannot_reach_the_other_nodes_answers_503(self):
        redis = RedisServer().start()
        a, b = self.nodes(redis, "a", "b")
        try:
            async def scenario():
                async with a.connect("kk", device="here") as here:
                    await recv_json(here)
                    redis.stop()
                    status, body, _ = a.request("DELETE", "/v1/users/kk/connections")
                    self.assertEqual(status, 503, body)
                    self.assertEqual(body["error"]["code"], "store_unavailable")
                    self.assertEqual(await close_code(here), 4010)  # this node's are closed all the same
            run(scenario())
        finally:
            for n in (a, b):
                n.cleanup()
            redis.cleanup()


class CrossNodeConnectionsTest(unittest.TestCase):
    """A device reconnecting to another node closes its older connection
    with 4011; an operator kick on one node closes the user's connections on
    every node with 4010; the per-user limit counts every node's."""
    def test_the_per_user_limit_counts_connections_on_every_node(self):
        redis = RedisServer().start()
        nodes = []
        try:
            for name in ("a", "b"):
                nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=name,
                                    HERALD_MAX_CONNECTIONS_PER_USER=2).start())
            a, b = nodes
            hdr = {"Authorization": "Bearer " + make_token("lim")}

            async def scenario():
                async with a.connect("lim", device="d1") as d1, b.connect("lim", device="d2") as d2:
                    await recv_json(d1)
                    await recv_json(d2)
                    # Either node lists both devices online (d2 through presence).
                    for node in (a, b):
                        _, res, _ = node.request("GET", "/v1/users/lim/messages")
                        self.assertEqual(sorted((d["device"], d["online"]) for d in res["devices"]),
                                         [("d1", True), ("d2", True)], res)
                    for node in (a, b):
                        status, body = node.upgrade_status("?device=d3", hdr)
                        self.assertEqual(status, 429, node.logs())
                        self.assertEqual(body["error"]["code"], "too_many_connections")
                    # A device moving to the other node replaces its connection there.
                    status, _ = b.upgrade_status("?device=d1", hdr)
                    self.assertEqual(status, 101)
            run(scenario())
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()

    def test_replacement_and_kicks_reach_connections_on_other_nodes(self):
        redis = RedisServer().start()
        a = b = None
        try:
            a = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start()
            b = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start()
            for n in (a, b):
                self.assertTrue(wait_for(lambda: "herald_node_notifications_subscribed 1" in
                                         n.request("GET", "/metrics", key=None)[1]), n.logs())

            async def scenario():
                async with a.connect("rep", device="phone") as old, a.connect("rep", device="tablet") as other:
                    await recv_json(old)
                    await recv_json(other)
                    async with b.connect("rep", device="phone") as new:
                        await recv_json(new)
                        self.assertEqual(await close_code(old), 4011)
                        # The other device and the new connection stay and get messages.
                        a.publish("rep", {"after": True})
                        self.assertEqual((await recv_type(new, "msg"))["data"], {"after": True})
                        self.assertEqual((await recv_type(other, "msg"))["data"], {"after": True})
            run(scenario())

            # A stale attempt (docs/protocol.md "Stale attempts") that lands
            # on the other node does not close its client's live connection.
            async def stale():
                async with a.connect("sa", device="phone", query="attempt=s9.2") as live:
                    await recv_json(live)
                    async with b.connect("sa", device="phone", query="attempt=s9.1") as late:
                        # Node b heard of s9.2 moments ago: the stale one goes at once
                        # (hub::RecentRemoteConnects), maybe before its welcome.
                        self.assertEqual(await close_code(late), 4011)
                        await asyncio.sleep(0.5)  # room for the replace notice to reach node a
                        a.publish("sa", "still live")
                        self.assertEqual((await recv_type(live, "msg"))["data"], "still live")
                        # The notice reached node a (and was ignored there).
                        self.assertGreaterEqual(a.metrics().get("herald_node_replaces_received_total", 0), 1)
                        async with b.connect("sa", device="phone", query="attempt=s9.3") as later:
                            await recv_json(later)
                            self.assertEqual(await close_code(live), 4011)
            run(stale())

            async def kicked():
                async with a.connect("kk", device="phone") as phone, b.connect("kk", device="laptop") as laptop, \
                        b.connect("kk", device="tablet") as tablet:
                    for ws in (phone, laptop, tablet):
                        await recv_json(ws)
                    # Through node a, for one device connected to node b.
                    status, res, _ = a.request("DELETE", "/v1/users/kk/connections?device=laptop")
                    self.assertEqual(status, 200, res)
                    self.assertEqual(await close_code(laptop), 4010)
                    # Through node a, for all: b's tablet closes too.
                    a.request("DELETE", "/v1/users/kk/connections")
                    self.assertEqual(await close_code(tablet), 4010)
                    self.assertEqual(await close_code(phone), 4010)
            run(kicked())
        finally:
            for n in (a, b):
                if n:
                    n.cleanup()
            redis.cleanup()


class SimultaneousConnectsTest(unittest.TestCase):
    """PROTOCOL.md 2: a device has at most one live connection, the new one
    wins. Two connections of one device made at the same moment on two
    nodes: exactly one stays (a tie in milliseconds broke both before; a
    notice that came while the other was still being set up closed none),
    and presence names the one that stays."""
    def test_exactly_one_of_two_simultaneous_connections_stays(self):
        redis = RedisServer().start()
        nodes = []
        try:
            for name in ("n1", "n2"):
                nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=name).start())
            a, b = nodes
            for n in nodes:
                self.assertTrue(wait_for(lambda: "herald_node_notifications_subscribed 1" in
                                         n.request("GET", "/metrics", key=None)[1]), n.logs())

            async def outcome(ws):
                """(its welcome or None, its close code or "open" after 1 s of quiet).
                The one that goes may be closed before its welcome."""
                welcome = None
                try:
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                        if frame["type"] == "welcome":
                            welcome = frame
                except asyncio.TimeoutError:
                    return welcome, "open"
                except websockets.exceptions.ConnectionClosed as e:
                    return welcome, e.rcvd.code if e.rcvd is not None else None

            async def round_(device, q1, q2):
                async with contextlib.AsyncExitStack() as stack:
                    conns = await asyncio.gather(stack.enter_async_context(a.connect("sim", device=device, query=q1)),
                                                 stack.enter_async_context(b.connect("sim", device=device, query=q2)))
                    outcomes = await asyncio.gather(*(outcome(ws) for ws in conns))
                    results = [code for _, code in outcomes]
                    self.assertEqual(sorted(results, key=str), [4011, "open"], (device, results))
                    live = outcomes[results.index("open")][0]
                    _, p, _ = a.request("GET", "/v1/users/sim/presence")
                    listed = [(d["node"], d["conn_id"]) for d in p["devices"] if d["device"] == device]
                    self.assertEqual(listed, [(("n1", "n2")[results.index("open")], live["conn_id"])], p)

            for i in range(8):
                run(round_("plain%d" % i, "", ""))
            for i in range(8):  # two client instances (two tabs sharing a device id)
                run(round_("tabs%d" % i, "attempt=x%d.1" % i, "attempt=y%d.1" % i))
            for i in range(8):  # one client whose retry races its first attempt: the later attempt stays
                run(round_("retry%d" % i, "attempt=r%d.1" % i, "attempt=r%d.2" % i))
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()


class CatchUpTest(unittest.TestCase):
    """Notifications dropped by a test switch: the catch-up pass alone gets
    every message to a device on another node within its bound (64 shards x
    20 ms housekeeping, about 1.3 s; docs/cluster.md)."""

    BOUND_S = 3.0  # the 1.3 s cycle plus slack for a loaded CI machine

    def test_every_message_arrives_within_the_catch_up_bound_when_notifications_are_dropped(self):
        redis = RedisServer("--appendonly", "yes").start()
        a = b = None
        try:
            a = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_DROP_NODE_NOTIFICATIONS="true").start()
            b = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start()

            async def scenario():
                async with b.connect("cu", device="d") as ws:
                    await recv_json(ws)
                    delays = []
                    for i in range(5):
                        t0 = time.monotonic()
                        a.publish("cu", {"i": i})
                        m = await recv_type(ws, "msg", timeout=self.BOUND_S)
                        delays.append(time.monotonic() - t0)
                        self.assertEqual(m["data"], {"i": i})
                        await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
                    return delays
            delays = run(scenario())
            print("catch-up delays (s):", ", ".join("%.3f" % d for d in delays))
            self.assertLess(max(delays), self.BOUND_S)
            _, text, _ = b.request("GET", "/metrics", key=None)
            self.assertRegex(text, r"herald_catchup_notified_total [1-9]")
            _, text, _ = a.request("GET", "/metrics", key=None)
            self.assertIn("herald_node_notifications_sent_total 0", text)
        finally:
            for n in (a, b):
                if n:
                    n.cleanup()
            redis.cleanup()


class RedisPasswordTest(unittest.TestCase):
    """redis_url carries credentials as redis-cli takes them: every connection
    (the store's, the notification subscriber's) sends AUTH, and the password
    appears in no log line or error."""
    PASSWORD = "p@ss:w/rd,1"
    ENCODED = "p%40ss%3Aw%2Frd%2C1"

    def test_nodes_authenticate_and_the_password_is_never_shown(self):
        redis = RedisServer("--appendonly", "yes", "--requirepass", self.PASSWORD,
                            "--user", "herald", "on", ">" + self.PASSWORD, "~*", "&*", "+@all").start()
        nodes = []
        try:
            port = redis.port
            # The default user (requirepass) on one node, an ACL user on the other.
            for name, userinfo in (("a", ":" + self.ENCODED), ("b", "herald:" + self.ENCODED)):
                url = "redis://%s@127.0.0.1:%d" % (userinfo, port)
                nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=url, HERALD_NODE_ID=name).start())
            a, b = nodes
            for n in nodes:
                self.assertTrue(wait_for(lambda: "herald_node_notifications_subscribed 1" in
                                         n.request("GET", "/metrics", key=None)[1]), n.logs())

            async def deliver():
                async with b.connect("pw", device="phone") as phone:
                    await recv_json(phone)
                    self.assertEqual(a.publish("pw", {"n": 1})["seq"], 1)
                    return (await recv_type(phone, "msg"))["data"]
            self.assertEqual(run(deliver()), {"n": 1})

            # A wrong password: never ready, and the log says why, without it.
            wrong = Server(HERALD_STORE="redis", HERALD_NODE_ID="c",
                           HERALD_REDIS_URL="redis://:wrong-%s@127.0.0.1:%d" % (self.ENCODED, port))
            nodes.append(wrong)
            wrong.spawn()
            self.assertTrue(wait_for(lambda: "redis refused the credentials" in wrong.logs(), timeout=10),
                            wrong.logs())
            self.assertFalse(os.path.exists(wrong.ready_file))
            for n in nodes:
                n.stop()
                self.assertNotIn("p@ss", n.logs())
                self.assertNotIn(self.ENCODED, n.logs())
            self.assertIn("***", wrong.logs())
        finally:
            for n in nodes:
                n.cleanup()
            redis.cleanup()

    def test_a_bad_redis_url_error_does_not_show_its_password(self):
        s = Server(HERALD_STORE="memory")
        env = dict(s.env, HERALD_STORE="redis", HERALD_REDIS_URL="redis://:%s@127.0.0.1:99999" % self.ENCODED)
        try:
            p = run_herald(["serve"], env, capture_output=True, text=True, timeout=20)
        finally:
            s.cleanup()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad port", p.stderr + p.stdout)
        self.assertIn("***", p.stderr + p.stdout)
        self.assertNotIn(self.ENCODED, p.stderr + p.stdout)


class RedisRefusalLogTest(unittest.TestCase):
    def test_a_redis_that_refuses_writes_gives_a_line_now_and_then_not_one_per_message(self):
        redis = RedisServer("--maxmemory", "3mb", "--maxmemory-policy", "noeviction").start()
        s = Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url).start()
        try:
            blob = "x" * 2000
            for _ in range(20):
                status, _, _ = s.request("POST", "/v1/publish/batch",
                                         {"messages": [{"user": "full", "data": blob} for _ in range(100)]})
                self.assertIn(status, (200, 503))
            _, text, _ = s.request("GET", "/metrics", key=None)
            errors = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("herald_redis_errors_total"))
            self.assertGreater(errors, 100)  # Redis did refuse (OOM)
            lines = [l for l in s.logs().splitlines() if "redis append failed" in l]
            self.assertGreaterEqual(len(lines), 1)
            self.assertLessEqual(len(lines), 3, lines)
            self.assertIn("OOM", lines[0])
        finally:
            s.cleanup()
            redis.cleanup()


class RedisConfigTest(unittest.TestCase):
    def run_serve(self, **env):
        s = Server(HERALD_STORE="memory")
        env_all = dict(s.env)
        env_all.update(env)
        try:
            return run_herald(["serve"], env_all, capture_output=True, text=True, timeout=20)
        finally:
            s.cleanup()

    def test_store_redis_without_a_url_is_a_clear_startup_error(self):
        p = self.run_serve(HERALD_STORE="redis", HERALD_REDIS_URL="")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("redis_url", p.stderr + p.stdout)

    def test_a_redis_url_with_another_scheme_is_a_clear_startup_error(self):
        p = self.run_serve(HERALD_STORE="redis", HERALD_REDIS_URL="http://127.0.0.1:6379")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("redis_url", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
