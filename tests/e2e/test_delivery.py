"""PROTOCOL.md 1, 4: publish -> deliver -> ack, retries, resume, replacement."""
import asyncio
import json
import signal
import time
import unittest

import websockets

from harness import ServerTest, close_code, make_token, recv_json, recv_type, run, wait_until


async def ack(ws, seq):
    await ws.send(json.dumps({"type": "ack", "seq": seq}))


class DeliveryTest(ServerTest):
    def test_a_published_message_reaches_an_online_device_with_every_field(self):
        s = self.server

        async def go():
            async with s.connect("ann", device="phone") as ws:
                await recv_json(ws)
                r = s.publish("ann", {"order": "77", "big": 9007199254740993, "huge": 12345678901234567890123, "s": "é\u4e2d"},
                              event="order.status", id="ord-77", trace_id="abc123")
                self.assertEqual(r["seq"], 1)
                self.assertEqual(r["user"], "ann")
                self.assertEqual(r["id"], "ord-77")
                self.assertFalse(r["duplicate"])
                m = await recv_type(ws, "msg")
                self.assertEqual(m["seq"], 1)
                self.assertEqual(m["id"], "ord-77")
                self.assertEqual(m["event"], "order.status")
                self.assertEqual(m["data"], {"order": "77", "big": 9007199254740993, "huge": 12345678901234567890123, "s": "é\u4e2d"})
                self.assertEqual(m["attempt"], 1)
                self.assertEqual(m["trace_id"], "abc123")
                self.assertLess(abs(m["ts"] - time.time() * 1000), 5000)
                await ack(ws, 1)
                for _ in range(50):
                    _, st, _ = s.request("GET", "/v1/users/ann/messages/1")
                    if st["state"] == "acked":
                        break
                    await asyncio.sleep(0.05)
                self.assertEqual(st["state"], "acked")
                self.assertEqual(st["acked_by"], ["phone"])
        run(go())

    def test_messages_arrive_in_order_for_every_device_of_the_user(self):
        s = self.server

        async def go():
            async with s.connect("bo", device="a") as a, s.connect("bo", device="b") as b:
                await recv_json(a)
                await recv_json(b)
                for i in range(20):
                    s.publish("bo", i)
                for ws in (a, b):
                    seqs = []
                    while len(seqs) < 20:
                        m = await recv_type(ws, "msg")
                        seqs.append(m["seq"])
                        await ack(ws, m["seq"])
                    self.assertEqual(seqs, list(range(1, 21)))
        run(go())

    def test_offline_messages_are_delivered_on_connect_and_resume_from_the_cursor(self):
        s = self.server

        async def go():
            for i in range(3):
                s.publish("cy", {"i": i})
            async with s.connect("cy", device="d") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["head_seq"], 3)
                self.assertEqual(w["resume_from"], 1)
                for seq in (1, 2, 3):
                    m = await recv_type(ws, "msg")
                    self.assertEqual(m["seq"], seq)
                await ack(ws, 1)
                await ws.send(json.dumps({"type": "ack", "upto": 2}))
                await asyncio.sleep(0.3)  # cursor writes are batched every 100 ms
            s.publish("cy", {"i": 3})
            async with s.connect("cy", device="d") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["resume_from"], 3)
                self.assertTrue(w["recovered"])
                self.assertEqual((await recv_type(ws, "msg"))["seq"], 3)
                self.assertEqual((await recv_type(ws, "msg"))["seq"], 4)
            # last_seq decides what is sent, even below the cursor.
            async with s.connect("cy", device="d", query="last_seq=1&epoch=" + w["epoch"]) as ws:
                w2 = await recv_json(ws)
                self.assertEqual(w2["resume_from"], 2)
                self.assertEqual((await recv_type(ws, "msg"))["seq"], 2)
            async with s.connect("cy", device="d", query="last_seq=1&epoch=other") as ws:
                w3 = await recv_json(ws)
                self.assertFalse(w3["recovered"])
        run(go())

    def test_a_new_device_gets_what_no_device_has_acknowledged(self):
        s = self.server

        async def go():
            for i in range(4):
                s.publish("di", i)
            async with s.connect("di", device="old") as ws:
                await recv_json(ws)
                for _ in range(4):
                    await recv_type(ws, "msg")
                await ws.send(json.dumps({"type": "ack", "upto": 2}))
                await asyncio.sleep(0.3)
            async with s.connect("di", device="new") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["resume_from"], 3)
                self.assertEqual((await recv_type(ws, "msg"))["seq"], 3)
        run(go())

    def test_nothing_pending_means_resume_from_head_plus_one(self):
        s = self.server

        async def go():
            s.publish("ed", 1)
            async with s.connect("ed", device="x", query="last_seq=1") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["head_seq"], 1)
                self.assertEqual(w["resume_from"], 2)
        run(go())

    def test_a_newer_connection_of_the_device_replaces_the_older_with_4011(self):
        s = self.server

        async def go():
            async with s.connect("fa", device="same") as old:
                await recv_json(old)
                async with s.connect("fa", device="same") as new:
                    await recv_json(new)
                    self.assertEqual(await close_code(old), 4011)
                    s.publish("fa", "still here")
                    self.assertEqual((await recv_type(new, "msg"))["data"], "still here")
        run(go())

    def test_a_stale_attempt_of_a_client_does_not_replace_its_later_attempt(self):
        # docs/protocol.md "Stale attempts": an attempt its client gave up on
        # (a timed-out connect) that reaches the server after the client's
        # next attempt connected gets 409 instead of closing it with 4011.
        s = self.server

        async def go():
            async with s.connect("st", device="d", query="attempt=sess1.2") as live:
                await recv_json(live)
                with self.assertRaises(websockets.exceptions.InvalidStatusCode) as refused:
                    async with s.connect("st", device="d", query="attempt=sess1.1"):
                        pass
                self.assertEqual(refused.exception.status_code, 409)
                s.publish("st", "live")
                self.assertEqual((await recv_type(live, "msg"))["data"], "live")
                # A later attempt of the session, as before, replaces it.
                async with s.connect("st", device="d", query="attempt=sess1.3") as later:
                    await recv_json(later)
                    self.assertEqual(await close_code(live), 4011)
                    # So does another client (session) of the same device.
                    async with s.connect("st", device="d", query="attempt=other.1") as other:
                        await recv_json(other)
                        self.assertEqual(await close_code(later), 4011)
        run(go())
        self.assertEqual(s.metrics().get('herald_connections_refused_total{reason="stale_attempt"}'), 1)

    def test_a_replacing_connection_resumes_after_what_the_replaced_one_acked(self):
        s = self.server

        async def go():
            # Several rounds, so that the two connections land on different
            # I/O workers (whose cursor batches are flushed separately).
            for rnd in range(6):
                user = "rp%d" % rnd
                for i in range(3):
                    s.publish(user, i)
                async with s.connect(user, device="same") as old:
                    await recv_json(old)
                    for _ in range(3):
                        await recv_type(old, "msg")
                    await old.send(json.dumps({"type": "ack", "upto": 3}))
                    for _ in range(100):
                        _, pres, _ = s.request("GET", "/v1/users/%s/presence" % user)
                        if pres["devices"] and pres["devices"][0]["cursor"] == 3:
                            break
                        await asyncio.sleep(0.01)
                    async with s.connect(user, device="same") as new:
                        w = await recv_json(new)
                        self.assertEqual(w["resume_from"], 4, "round %d" % rnd)
                        _, pres, _ = s.request("GET", "/v1/users/%s/presence" % user)
                        self.assertEqual(pres["devices"][0]["cursor"], 3, "round %d" % rnd)
        run(go())

    def test_kick_closes_the_connections_with_4010(self):
        s = self.server

        async def go():
            async with s.connect("gu", device="a") as a, s.connect("gu", device="b") as b:
                await recv_json(a)
                await recv_json(b)
                status, body, _ = s.request("DELETE", "/v1/users/gu/connections?device=a")
                self.assertEqual(status, 200)
                self.assertEqual(await close_code(a), 4010)
                status, body, _ = s.request("GET", "/v1/users/gu/presence")
                devices = [d["device"] for d in body["devices"]]
                self.assertEqual(devices, ["b"])
                d = body["devices"][0]
                for key in ("device", "conn_id", "node", "connected_at", "rtt_ms", "cursor"):
                    self.assertIn(key, d)
                # Only b is closed now (a, already closed, is not counted again).
                _, body, _ = s.request("DELETE", "/v1/users/gu/connections")
                self.assertEqual(body, {"user": "gu", "closed": 1})
                self.assertEqual(await close_code(b), 4010)
        run(go())

    def test_the_window_holds_at_most_max_inflight_unacked(self):
        s = self.server

        async def go():
            for i in range(70):
                s.publish("hu", i)
            async with s.connect("hu", device="w") as ws:
                await recv_json(ws)
                got = []
                try:
                    while True:
                        got.append((await recv_type(ws, "msg", timeout=0.7))["seq"])
                except asyncio.TimeoutError:
                    pass
                self.assertEqual(got, list(range(1, 65)))
                await ws.send(json.dumps({"type": "ack", "upto": 10}))
                more = [(await recv_type(ws, "msg"))["seq"] for _ in range(6)]
                self.assertEqual(more, list(range(65, 71)))
        run(go())

    def test_a_device_resumes_after_an_abrupt_tcp_drop_without_loss(self):
        s = self.server

        async def go():
            ws = await s.connect("ab", device="phone")
            w = await recv_json(ws)
            for i in range(5):
                s.publish("ab", {"i": i})
            processed = []
            for _ in range(5):
                m = await recv_type(ws, "msg")
                processed.append(m["seq"])
                if m["seq"] <= 3:  # 4 and 5 arrive but their acks are lost with the link
                    await ack(ws, m["seq"])
            await asyncio.sleep(0.3)
            ws.transport.abort()  # no close frame, no FIN handshake: a phone leaving the network
            for i in range(5, 8):
                s.publish("ab", {"i": i})
            # The client processed 1..5 (it acks after processing; the acks of
            # 4 and 5 never reached the server) and resumes from its own storage.
            async with s.connect("ab", device="phone", query="last_seq=5&epoch=" + w["epoch"]) as ws2:
                w2 = await recv_json(ws2)
                self.assertTrue(w2["recovered"])
                self.assertEqual((w2["resume_from"], w2["head_seq"]), (6, 8))
                got = []
                while len(got) < 3:
                    m = await recv_type(ws2, "msg")
                    got.append(m["seq"])
                    await ack(ws2, m["seq"])
                self.assertEqual(got, [6, 7, 8])
            await asyncio.sleep(0.3)
            async with s.connect("ab", device="phone") as ws4:
                w4 = await recv_json(ws4)
                self.assertEqual(w4["resume_from"], 9)
        run(go())

    def test_without_last_seq_a_dropped_device_gets_its_unacked_messages_again(self):
        s = self.server

        async def go():
            ws = await s.connect("ac", device="phone")
            await recv_json(ws)
            for i in range(4):
                s.publish("ac", i)
            for _ in range(4):
                m = await recv_type(ws, "msg")
                if m["seq"] <= 2:
                    await ack(ws, m["seq"])
            await asyncio.sleep(0.3)
            ws.transport.abort()
            s.publish("ac", 4)
            async with s.connect("ac", device="phone") as ws2:
                w = await recv_json(ws2)
                self.assertEqual(w["resume_from"], 3)
                got = [(await recv_type(ws2, "msg"))["seq"] for _ in range(3)]
                self.assertEqual(got, [3, 4, 5])
        run(go())


class RetryTest(ServerTest):
    # The state is read after the 3rd send, before the 4008 that comes one
    # ack timeout later: 1 s leaves that read room on a loaded machine.
    ENV = {"HERALD_ACK_TIMEOUT_MS": 1000, "HERALD_RETRY_INITIAL_MS": 200, "HERALD_MAX_ATTEMPTS": 3}

    def test_unacked_messages_are_resent_then_the_connection_closes_4008(self):
        s = self.server

        async def go():
            async with s.connect("ra", device="slow") as ws:
                await recv_json(ws)
                s.publish("ra", "x")
                t0 = time.time()
                attempts = []
                times = []
                for _ in range(3):
                    m = await recv_type(ws, "msg")
                    attempts.append(m["attempt"])
                    times.append(time.time() - t0)
                self.assertEqual(attempts, [1, 2, 3])
                _, st, _ = s.request("GET", "/v1/users/ra/messages/1")
                self.assertEqual(st["state"], "inflight")
                self.assertEqual(st["devices"], [{"device": "slow", "state": "inflight", "attempts": 3}])
                self.assertGreaterEqual(times[1] - times[0], 0.25)  # ack timeout
                self.assertGreaterEqual(times[2] - times[1], 0.3)   # initial x 2 -20 %
                self.assertEqual(await close_code(ws), 4008)
            async with s.connect("ra", device="slow") as ws:
                await recv_json(ws)
                m = await recv_type(ws, "msg")
                self.assertEqual((m["seq"], m["attempt"]), (1, 1))
                # attempts of section 8 count over all connections of the device
                _, st, _ = s.request("GET", "/v1/users/ra/messages/1")
                self.assertEqual(st["devices"][0]["attempts"], 4)
                await ws.send(json.dumps({"type": "ack", "seq": 1}))
                for _ in range(40):
                    _, st, _ = s.request("GET", "/v1/users/ra/messages/1")
                    if st["state"] == "acked":
                        break
                    await asyncio.sleep(0.05)
                self.assertEqual(st["state"], "acked")
        run(go())


class LeftWhileInFlightTest(ServerTest):
    """PROTOCOL.md 1: a message that expires or is collapsed away while in
    flight has left the inbox: it is not sent again, it is no reason for a
    4008, and the cursor (which counts retained messages) moves past it."""
    ENV = {"HERALD_ACK_TIMEOUT_MS": 500, "HERALD_RETRY_INITIAL_MS": 300, "HERALD_RETRY_MAX_MS": 600,
           "HERALD_MAX_ATTEMPTS": 2}

    def presence_cursor(self, user):
        _, res, _ = self.server.request("GET", "/v1/users/%s/presence" % user)
        return res["devices"][0]["cursor"]

    async def assert_quiet_and_open(self, ws, seconds):
        """No msg frame for `seconds` (past every retry and the 4008 the
        old behaviour gave), and the connection still answers."""
        end = time.time() + seconds
        while time.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
            except asyncio.TimeoutError:
                break
            self.assertNotEqual(json.loads(raw)["type"], "msg", raw)
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        self.assertEqual((await recv_type(ws, "pong"))["id"], 1)

    def test_an_expired_message_is_not_resent_and_the_cursor_passes_it(self):
        s = self.server

        async def go():
            async with s.connect("lx", device="d") as ws:
                await recv_json(ws)
                s.publish("lx", "one")
                s.publish("lx", "short-lived", ttl_ms=200)
                s.publish("lx", "three")
                got = [await recv_type(ws, "msg") for _ in range(3)]
                self.assertEqual([m["seq"] for m in got], [1, 2, 3])
                for seq in (1, 3):  # 2 is left unacked until it expires
                    await ws.send(json.dumps({"type": "ack", "seq": seq}))
                await self.assert_quiet_and_open(ws, 2.0)
                self.assertEqual(self.presence_cursor("lx"), 3)
            # Nothing comes again on the next connection either.
            async with s.connect("lx", device="d") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["resume_from"], 4)
                await self.assert_quiet_and_open(ws, 0.5)
        run(go())

    def test_a_message_collapsed_away_is_not_resent(self):
        s = self.server

        async def go():
            async with s.connect("lc", device="d") as ws:
                await recv_json(ws)
                s.publish("lc", {"v": 1}, collapse_key="k")
                first = await recv_type(ws, "msg")
                s.publish("lc", {"v": 2}, collapse_key="k")
                second = await recv_type(ws, "msg")
                self.assertEqual((first["seq"], second["seq"], second["data"]), (1, 2, {"v": 2}))
                await ws.send(json.dumps({"type": "ack", "seq": 2}))
                await self.assert_quiet_and_open(ws, 2.0)
                self.assertEqual(self.presence_cursor("lc"), 2)
        run(go())


class AckAboveGapTest(ServerTest):
    """PROTOCOL.md 10: "trimmed or expired messages are dead letters only if
    some device of the user had not acked them". An ack by seq above a gap
    (an earlier message still unacked) counts, during the connection and
    after it."""
    ENV = {"HERALD_ACK_TIMEOUT_MS": 20000, "HERALD_RETENTION_MAX_MESSAGES": 3, "HERALD_STORE": "memory"}

    def message(self, user, seq):
        status, res, _ = self.server.request("GET", "/v1/users/%s/messages/%d" % (user, seq))
        self.assertEqual(status, 200, res)
        return res

    def dead_seqs(self, user):
        _, res, _ = self.server.request("GET", "/v1/dead-letters?limit=1000")
        return sorted(d["seq"] for d in res["dead_letters"] if d["user"] == user)

    def test_a_message_acked_above_a_gap_is_no_dead_letter_when_it_expires_or_is_trimmed(self):
        s = self.server
        user = "gap-" + self.id().rsplit(".", 2)[-2]

        async def go():
            async with s.connect(user, device="a") as ws:
                await recv_json(ws)
                s.publish(user, {"n": 1})                # seq 1: left unacked
                s.publish(user, {"n": 2}, ttl_ms=1000)   # seq 2: acked, then expires
                s.publish(user, {"n": 3})                # seq 3: acked, then trimmed
                got = [await recv_type(ws, "msg") for _ in range(3)]
                self.assertEqual([m["seq"] for m in got], [1, 2, 3])
                for seq in (2, 3):
                    await ws.send(json.dumps({"type": "ack", "seq": seq}))
                await asyncio.sleep(0.3)
                self.assertEqual(self.message(user, 2)["acked_by"], ["a"])
            # After the connection, the acks still count.
            self.assertEqual(self.message(user, 3)["acked_by"], ["a"])
            self.assertEqual(self.message(user, 1)["acked_by"], [])
            await asyncio.sleep(1.3)  # seq 2's TTL passes
            for n in (4, 5, 6):  # the cap of 3 trims seq 1 and seq 3
                s.publish(user, {"n": n})
            self.assertTrue(wait_until(lambda: self.dead_seqs(user) != [], 5))
            self.assertEqual(self.message(user, 2)["acked_by"], ["a"])
            self.assertEqual(self.message(user, 3)["acked_by"], ["a"])
            self.assertEqual(self.dead_seqs(user), [1])
        run(go())


class AckAboveGapRocksDbTest(AckAboveGapTest):
    ENV = dict(AckAboveGapTest.ENV, HERALD_STORE="rocksdb")


class AckAboveGapRedisTest(AckAboveGapTest):
    """On redis the dead-letter decision runs in a Lua script, maybe on
    another node: the acks above a gap are kept in Redis for it."""
    ENV = dict(AckAboveGapTest.ENV, HERALD_STORE="redis")

    def test_the_acks_outlive_a_crash_of_the_node(self):
        s = self.server
        user = "gap-crash"

        async def go():
            async with s.connect(user, device="a") as ws:
                await recv_json(ws)
                s.publish(user, {"n": 1})               # seq 1: left unacked
                s.publish(user, {"n": 2}, ttl_ms=1500)  # seq 2: acked, then expires
                got = [await recv_type(ws, "msg") for _ in range(2)]
                self.assertEqual([m["seq"] for m in got], [1, 2])
                await ws.send(json.dumps({"type": "ack", "seq": 2}))
                await asyncio.sleep(0.5)  # past the 100 ms cursor batch
        run(go())
        s.stop(signal.SIGKILL)  # the node's own memory of the ack is gone
        s.start()
        time.sleep(1.2)  # seq 2's TTL passes
        for n in (3, 4, 5):  # the cap of 3 trims seq 1
            s.publish(user, {"n": n})
        self.assertTrue(wait_until(lambda: self.message(user, 2)["state"] != "pending", 10))
        self.assertTrue(wait_until(lambda: self.dead_seqs(user) != [], 5))
        self.assertEqual(self.message(user, 2)["state"], "expired")
        self.assertEqual(self.dead_seqs(user), [1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
