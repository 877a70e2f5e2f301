"""Limits and liveness (issue: gateway core; PROTOCOL.md 5, 6, 9, 10)."""
import asyncio
import json
import os
import resource
import socket
import time
import unittest

from harness import RawWebSocket, Server, ServerTest, under_sanitizer, close_code, make_token, recv_json, recv_type, run, wait_until


class SizeAndRateTest(ServerTest):
    RATE = 10
    ENV = {"HERALD_MAX_MESSAGE_BYTES": 1024, "HERALD_CLIENT_FRAME_RATE": RATE,
           "HERALD_MAX_CONNECTIONS_PER_USER": 2}

    def test_an_oversized_frame_closes_with_1009(self):
        async def go():
            async with self.server.connect("big", device="a") as ws:
                await recv_json(ws)
                await ws.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
                return await close_code(ws)
        self.assertEqual(run(go()), 1009)

    def test_a_fragmented_oversized_message_closes_with_1009(self):
        raw = RawWebSocket(self.server, device="frag", user="frag")
        raw.send_frame(0x1, b'{"type":"ping","pad":"' + b"x" * 600, fin=False)
        raw.send_frame(0x0, b"y" * 600 + b'"}', fin=True)
        code, _ = raw.read_frames_until_close()
        raw.close()
        self.assertEqual(code, 1009)

    def test_too_many_frames_close_with_4029(self):
        async def go():
            async with self.server.connect("chatty", device="a") as ws:
                await recv_json(ws)
                for i in range(60):
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                return await close_code(ws)
        self.assertEqual(run(go()), 4029)

    def test_a_flood_of_websocket_pings_closes_with_4029(self):
        # Control frames count too: the server answers each ping with a pong.
        async def go():
            async with self.server.connect("pinger", device="a") as ws:
                await recv_json(ws)
                for i in range(60):
                    await ws.ping(str(i).encode())
                return await close_code(ws)
        self.assertEqual(run(go()), 4029)

    def test_the_pong_owed_to_the_servers_ping_is_not_counted(self):
        # The server pings right after welcome; websockets answers at once.
        # Then exactly the burst (twice the rate) of frames is allowed.
        async def go():
            async with self.server.connect("burst", device="a") as ws:
                await recv_json(ws)
                for i in range(2 * self.RATE):
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                pongs = [await recv_type(ws, "pong") for _ in range(2 * self.RATE)]
                return len(pongs)
        self.assertEqual(run(go()), 2 * self.RATE)

    def test_the_per_user_limit_refuses_with_429_but_not_a_replacement(self):
        s = self.server

        async def go():
            async with s.connect("lim", device="a") as a, s.connect("lim", device="b") as b:
                await recv_json(a)
                await recv_json(b)
                hdr = {"Authorization": "Bearer " + make_token("lim")}
                status, body = s.upgrade_status("?device=c", hdr)
                self.assertEqual(status, 429)
                self.assertEqual(body["error"]["code"], "too_many_connections")
                status, _ = s.upgrade_status("?device=b", hdr)
                self.assertEqual(status, 101)
        run(go())


class IpLimitTest(ServerTest):
    ENV = {"HERALD_MAX_CONNECTIONS_PER_IP": 2}

    def test_the_per_ip_limit_refuses_with_429_and_others_are_still_served(self):
        s = self.server

        async def go():
            async with s.connect("i1", device="a") as a, s.connect("i2", device="a") as b:
                await recv_json(a)
                await recv_json(b)
                status, _ = s.upgrade_status("", {"Authorization": "Bearer " + make_token("i3")})
                self.assertEqual(status, 429)
                status, _, _ = s.request("GET", "/healthz", key=None)
                self.assertEqual(status, 200)
            await asyncio.sleep(0.2)
            status, _ = s.upgrade_status("", {"Authorization": "Bearer " + make_token("i3")})
            self.assertEqual(status, 101)
        run(go())


class LivenessTest(ServerTest):
    ENV = {"HERALD_HEARTBEAT_MS": 300, "HERALD_IDLE_TIMEOUT_MS": 1000, "HERALD_JWT_LEEWAY_MS": 0}

    def test_a_silent_client_gets_pinged_then_closed_with_4008(self):
        raw = RawWebSocket(self.server, device="mute", user="mute")
        t0 = time.time()
        code, texts = raw.read_frames_until_close(timeout=5)
        raw.close()
        self.assertEqual(code, 4008)
        self.assertGreaterEqual(time.time() - t0, 0.9)
        self.assertEqual(json.loads(texts[0])["type"], "welcome")
        # A ping for every heartbeat of silence, answered or not: one at the
        # welcome, then at about 0.3, 0.6 and 0.9 s.
        self.assertGreaterEqual(len(raw.pings), 3, raw.pings)

    def test_a_silent_client_that_answers_pings_stays_connected(self):
        # PROTOCOL.md 5: a client silent for heartbeat_ms is pinged; its pongs
        # keep it open (the first probe used to be dropped behind the welcome).
        async def go():
            async with self.server.connect("pongs", device="a") as ws:
                await recv_json(ws)
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 2.5)
                self.assertTrue(ws.open)
        run(go())

    def test_client_frames_keep_the_connection_alive(self):
        async def go():
            async with self.server.connect("alive", device="a") as ws:
                await recv_json(ws)
                for i in range(8):
                    await asyncio.sleep(0.25)
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                    await recv_type(ws, "pong")
        run(go())

    def test_an_expiring_token_closes_with_4001_unless_refreshed(self):
        s = self.server

        # exp is whole seconds: exp_in=2 leaves 1 to 2 s, never a token that
        # expires before the upgrade (exp_in=1 could leave a few ms).
        async def go():
            async with s.connect(token=make_token("tok", exp_in=2), device="a") as ws:
                await recv_json(ws)
                self.assertEqual(await close_code(ws, timeout=5), 4001)
            async with s.connect(token=make_token("tok2", exp_in=2), device="a") as ws:
                await recv_json(ws)
                fresh = make_token("tok2", exp_in=3600)
                await ws.send(json.dumps({"type": "refresh", "token": fresh}))
                r = await recv_type(ws, "refreshed")
                self.assertGreater(r["exp"], time.time() + 3000)
                await ws.send(json.dumps({"type": "refresh", "token": make_token("someone-else")}))
                self.assertEqual((await recv_type(ws, "error"))["code"], "invalid_token")
                await ws.send(json.dumps({"type": "refresh", "token": "garbage"}))
                await recv_type(ws, "error")
                for i in range(8):  # past the old expiry (<= 2 s), kept alive by pings
                    await asyncio.sleep(0.3)
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                    await recv_type(ws, "pong")
        run(go())


class CloseWithoutTcpCloseTest(ServerTest):
    ENV = {"HERALD_IDLE_TIMEOUT_MS": 60000}

    def test_a_client_close_frame_ends_the_connection_even_if_its_socket_stays_open(self):
        s = self.server
        raw = RawWebSocket(s, device="ghost", user="ghost")
        try:
            self.assertTrue(wait_until(lambda: metric(s, "herald_connections_active") == 1, 5))
            raw.send_frame(0x8, (1000).to_bytes(2, "big"))  # close 1000, and the socket stays open
            # Released within close_timeout (3 s), as the client's normal end,
            # not at the idle timeout as an unresponsive one.
            deadline = time.time() + 10
            while time.time() < deadline and metric(s, "herald_connections_active") != 0:
                time.sleep(0.1)
            self.assertEqual(metric(s, "herald_connections_active"), 0)
            self.assertEqual(metric(s, 'herald_connections_closed_total{reason="normal"}'), 1)
            self.assertEqual(metric(s, 'herald_connections_closed_total{reason="unresponsive"}'), 0)
            self.assertEqual(s.request("GET", "/v1/users/ghost/presence")[1]["devices"], [])
        finally:
            raw.close()


class SlowConsumerTest(ServerTest):
    ENV = {"HERALD_MAX_SEND_QUEUE_BYTES": 65536, "HERALD_MAX_INFLIGHT": 4000,
           "HERALD_MAX_MESSAGE_BYTES": 65536}

    def test_a_client_that_never_reads_is_closed_with_4009(self):
        s = self.server
        raw = RawWebSocket(s, device="sloth", user="sloth")
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blob = "x" * 60000
        body = {"messages": [{"user": "sloth", "data": blob} for _ in range(100)]}
        for _ in range(4):
            status, _, _ = s.request("POST", "/v1/publish/batch", body)
            self.assertEqual(status, 200)
        deadline = time.time() + 15
        closed = 0
        while time.time() < deadline:
            _, _, _ = s.request("GET", "/healthz", key=None)
            _, text, _ = s.request("GET", "/metrics", key=None)
            for line in text.splitlines():
                if line.startswith('herald_connections_closed_total{reason="slow_consumer"}'):
                    closed = float(line.split()[-1])
            if closed >= 1:
                break
            time.sleep(0.1)
        raw.close()
        self.assertEqual(closed, 1)


class SendTimeoutTest(ServerTest):
    """A client that keeps sending acks but reads nothing, with no redelivery
    to overflow its queue (the ack timeout is far off): the write that waits
    send_timeout_ms for the socket closes it with 4009."""
    ENV = {"HERALD_MAX_SEND_QUEUE_BYTES": 65536, "HERALD_MAX_INFLIGHT": 4000,
           "HERALD_ACK_TIMEOUT_MS": 600000, "HERALD_SEND_TIMEOUT_MS": 1000,
           "HERALD_HEARTBEAT_MS": 500, "HERALD_IDLE_TIMEOUT_MS": 60000}

    def test_a_client_that_sends_but_never_reads_is_closed_with_4009(self):
        s = self.server
        raw = RawWebSocket(s, device="mole", user="mole")
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blob = "x" * 60000
        # More than the kernel's socket buffers hold, so a write stalls.
        for _ in range(2):
            status, _, _ = s.request("POST", "/v1/publish/batch",
                                     {"messages": [{"user": "mole", "data": blob} for _ in range(100)]})
            self.assertEqual(status, 200)
        deadline = time.time() + 20
        while time.time() < deadline and metric(s, "herald_send_timeouts_total") < 1:
            raw.send_frame(0x1, json.dumps({"type": "ack", "seq": 999999}).encode())  # activity
            time.sleep(0.2)
        raw.close()
        self.assertEqual(metric(s, "herald_send_timeouts_total"), 1)
        self.assertEqual(metric(s, 'herald_connections_closed_total{reason="slow_consumer"}'), 1)



def receive_all(server, user, count, timeout=30):
    """Connects as (user, "d") and acks each message until count arrived:
    (their seqs, None), or (what came, the close code) if it closed first."""
    async def go():
        got = []
        async with server.connect(user, device="d") as ws:
            if (await recv_json(ws))["type"] != "welcome":
                return got, "no welcome"
            while len(got) < count:
                try:
                    frame = await recv_json(ws, timeout=timeout)
                except Exception:  # closed, or silent for timeout
                    return got, ws.close_code
                got.append(frame["seq"])
                await ws.send(json.dumps({"type": "ack", "seq": frame["seq"]}))
        return got, None
    return run(go())


def metric(server, line_start):
    _, text, _ = server.request("GET", "/metrics", key=None)
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


class BacklogLargerThanSendQueueTest(ServerTest):
    def test_64_messages_near_the_size_limit_arrive_with_the_default_limits(self):
        # 64 (max_inflight) x 60 KB is 3.8 MB against a 1 MiB send queue:
        # the server used to queue them all at once and close with 4009 on
        # every connect, so the device never got any.
        s = self.server
        for _ in range(64):
            s.publish("bulky", "x" * 60000)
        self.assertEqual(receive_all(s, "bulky", 64), (list(range(1, 65)), None))
        self.assertGreaterEqual(metric(s, "herald_send_queue_waits_total"), 1)
        self.assertEqual(metric(s, 'herald_connections_closed_total{reason="slow_consumer"}'), 0)


class MessageLargerThanSendQueueTest(ServerTest):
    ENV = {"HERALD_MAX_MESSAGE_BYTES": 2097152}  # the send queue stays at 1 MiB

    def test_a_message_larger_than_the_send_queue_is_delivered(self):
        # Used to be accepted with a 200 and then close every connection of
        # the device with 4009, for good.
        s = self.server
        s.publish("huge", "x" * 1500000)
        s.publish("huge", "small")
        self.assertEqual(receive_all(s, "huge", 2), ([1, 2], None))


class HttpConnectionLimitTest(ServerTest):
    ENV = {"HERALD_MAX_HTTP_CONNECTIONS": 2}

    def test_connections_over_the_limit_get_429_and_upgraded_ones_do_not_count(self):
        s = self.server
        # WebSockets count only until their upgrade: three stay open at once.
        async def three_websockets():
            async with s.connect("h1", device="a") as a, s.connect("h2", device="a") as b, \
                    s.connect("h3", device="a") as c:
                for ws in (a, b, c):
                    self.assertEqual((await recv_json(ws))["type"], "welcome")
        run(three_websockets())

        idle = [socket.create_connection((s.host, s.port)) for _ in range(2)]
        try:
            # Accepted at once, but counted by the server a moment later.
            self.assertTrue(wait_until(lambda: s.request("GET", "/healthz", key=None)[0] == 429, 5))
            status, body, headers = s.request("GET", "/healthz", key=None)
            self.assertEqual(status, 429)
            self.assertEqual(body["error"]["code"], "too_many_connections")
            self.assertEqual(headers.get("Retry-After"), "1")
        finally:
            for sock in idle:
                sock.close()
        # The server counts a connection out once it sees the close: a moment later.
        refused = []

        def read_refused():
            status, text, _ = s.request("GET", "/metrics", key=None)
            if status == 200:
                refused.append(sum(float(l.split()[-1]) for l in text.splitlines()
                                   if l.startswith("herald_http_connections_refused_total")))
            return status == 200
        self.assertTrue(wait_until(read_refused, 5))
        self.assertGreaterEqual(refused[-1], 1)


class OutOfDescriptorsTest(ServerTest):
    # Not under sanitizers: their runtime checks whether memory is readable
    # through a pipe, and with no descriptor left UBSan's vptr check then
    # reports every object it looks at as invalid (a false report).
    @unittest.skipIf(under_sanitizer(), "sanitizer runtimes need descriptors of their own")
    def test_running_out_of_file_descriptors_is_counted_logged_and_survived(self):
        s = self.server
        pid = s.proc.pid
        in_use = len(os.listdir("/proc/%d/fd" % pid))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 16, in_use + 16))
        socks = []
        try:
            for _ in range(64):
                socks.append(socket.create_connection((s.host, s.port)))
            self.assertTrue(wait_until(lambda: "cannot accept connections" in s.logs(), 5), s.logs())
        finally:
            for sock in socks:
                sock.close()
        # Back once the descriptors are free, with the failures counted.
        self.assertTrue(wait_until(lambda: s.request("GET", "/healthz", key=None)[0] == 200, 10))
        self.assertGreater(metric(s, "herald_accept_errors_total"), 0)
        self.assertEqual(sum("cannot accept connections" in l for l in s.logs().splitlines()), 1)

    def test_a_connection_limit_above_the_open_file_limit_is_warned_of_at_startup(self):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > 10000000:
            self.skipTest("no finite open file limit below 10,000,000 here")
        other = Server(HERALD_MAX_HTTP_CONNECTIONS=10000000).start()
        try:
            self.assertIn("the open file limit is below max_http_connections", other.logs())
            # ...and the server took the hard limit as its own.
            with open("/proc/%d/limits" % other.proc.pid) as f:
                line = next(l for l in f if l.startswith("Max open files"))
            self.assertEqual(line.split()[3], line.split()[4], line)
        finally:
            other.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
