"""Parking: a connection silent both ways for ws_park_after_ms drops its
frame-layer state and is rebuilt when the client sends or the server has
something to send (docs/protocol.md "Idle connections"). Nothing about it
may be visible to a client: every test here checks that a parked connection
behaves exactly as a live one, including frames that straddle the moment it
parks.
"""
import asyncio
import json
import time
import unittest

from harness import RawWebSocket, Server, ServerTest, close_code, recv_type, run, wait_until

PARK_AFTER_MS = 50


def parked(server):
    return server.metrics().get("herald_connections_parked", 0)


def unparks(server):
    return server.metrics().get("herald_connection_unparks_total", 0)


async def wait_parked(server, n, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if parked(server) == n:
            return True
        await asyncio.sleep(0.02)
    return parked(server) == n


class ParkingTest(ServerTest):
    ENV = {"HERALD_WS_PARK_AFTER_MS": str(PARK_AFTER_MS)}

    def test_an_idle_connection_parks_and_a_publish_wakes_it(self):
        async def go():
            async with self.server.connect(user="park-pub", device="d") as ws:
                await recv_type(ws, "welcome")
                self.assertTrue(await wait_parked(self.server, 1), "the silent connection did not park")
                woken = unparks(self.server)
                for i in range(3):
                    self.server.publish("park-pub", {"n": i})
                    msg = await recv_type(ws, "msg")
                    self.assertEqual(msg["data"], {"n": i})
                    await ws.send(json.dumps({"type": "ack", "seq": msg["seq"]}))
                    # Each message finds the connection parked again.
                    self.assertTrue(await wait_parked(self.server, 1))
                self.assertGreaterEqual(unparks(self.server), woken + 3)
        run(go())

    def test_a_parked_connection_answers_the_clients_ping_frames(self):
        async def go():
            async with self.server.connect(user="park-ping", device="d") as ws:
                await recv_type(ws, "welcome")
                self.assertTrue(await wait_parked(self.server, 1))
                await ws.send(json.dumps({"type": "ping", "id": 7}))
                pong = await recv_type(ws, "pong")
                self.assertEqual(pong["id"], 7)
                self.assertTrue(await wait_parked(self.server, 1))
                # A WebSocket ping control frame, answered by the frame layer.
                waiter = await ws.ping(b"hi")
                await asyncio.wait_for(waiter, 5)
        run(go())

    def test_messages_published_while_offline_then_parked_are_all_delivered_in_order(self):
        async def go():
            async with self.server.connect(user="park-order", device="d") as ws:
                await recv_type(ws, "welcome")
                self.assertTrue(await wait_parked(self.server, 1))
                for i in range(50):
                    self.server.publish("park-order", {"n": i})
                got = []
                while len(got) < 50:
                    msg = await recv_type(ws, "msg")
                    got.append(msg["data"]["n"])
                    await ws.send(json.dumps({"type": "ack", "seq": msg["seq"]}))
                self.assertEqual(got, list(range(50)))
        run(go())

    def test_a_frame_split_across_the_park_moment_is_read_whole(self):
        raw = RawWebSocket(self.server, user="park-split", device="d")
        try:
            code, texts = raw.read_frames_until_close(timeout=0.5)
            self.assertIsNone(code)
            self.assertIn("welcome", texts[0])
            self.assertTrue(wait_until(lambda: parked(self.server) == 1, 5))
            frame = json.dumps({"type": "ping", "id": 1}).encode()
            # The header alone, then the payload after several park periods:
            # the server must not park with half a frame read.
            whole = self.masked_text_frame(frame)
            raw.sock.sendall(whole[:1])
            time.sleep(4 * PARK_AFTER_MS / 1000)
            raw.sock.sendall(whole[1:6])
            time.sleep(4 * PARK_AFTER_MS / 1000)
            raw.sock.sendall(whole[6:])
            code, texts = raw.read_frames_until_close(timeout=1)
            self.assertIsNone(code)
            self.assertEqual([json.loads(t)["id"] for t in texts], [1])
            # Two frames in one segment, right as the connection is parked.
            self.assertTrue(wait_until(lambda: parked(self.server) == 1, 5))
            raw.sock.sendall(self.masked_text_frame(json.dumps({"type": "ping", "id": 2}).encode()) +
                             self.masked_text_frame(json.dumps({"type": "ping", "id": 3}).encode()))
            code, texts = raw.read_frames_until_close(timeout=1)
            self.assertIsNone(code)
            self.assertEqual([json.loads(t)["id"] for t in texts], [2, 3])
        finally:
            raw.close()

    def test_a_fragmented_message_spanning_park_periods_is_read_whole(self):
        raw = RawWebSocket(self.server, user="park-frag", device="d")
        try:
            raw.read_frames_until_close(timeout=0.5)
            self.assertTrue(wait_until(lambda: parked(self.server) == 1, 5))
            text = json.dumps({"type": "ping", "id": 9}).encode()
            raw.send_frame(0x1, text[:5], fin=False)
            time.sleep(4 * PARK_AFTER_MS / 1000)
            raw.send_frame(0x0, text[5:10], fin=False)
            time.sleep(4 * PARK_AFTER_MS / 1000)
            raw.send_frame(0x0, text[10:], fin=True)
            code, texts = raw.read_frames_until_close(timeout=1)
            self.assertIsNone(code)
            self.assertEqual([json.loads(t)["id"] for t in texts], [9])
        finally:
            raw.close()

    def test_a_parked_connection_is_closed_with_the_right_code(self):
        async def go():
            async with self.server.connect(user="park-kick", device="d") as old:
                await recv_type(old, "welcome")
                self.assertTrue(await wait_parked(self.server, 1))
                # The same device connects again: the parked one gets 4011.
                async with self.server.connect(user="park-kick", device="d") as new:
                    await recv_type(new, "welcome")
                    self.assertEqual(await close_code(old), 4011)
        run(go())

    def test_a_client_that_goes_away_while_parked_is_cleaned_up(self):
        async def go():
            base = self.server.metrics().get("herald_connections_active", 0)
            raw = RawWebSocket(self.server, user="park-gone", device="d")
            raw.read_frames_until_close(timeout=0.3)
            self.assertTrue(await wait_parked(self.server, 1))
            raw.close()
            self.assertTrue(wait_until(lambda: self.server.metrics().get("herald_connections_active", 0) == base, 5))
            self.assertEqual(parked(self.server), 0)
        run(go())

    @staticmethod
    def masked_text_frame(payload):
        assert len(payload) < 126
        mask = b"\x01\x02\x03\x04"
        return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class ParkedShutdownTest(unittest.TestCase):
    def test_sigterm_reaches_parked_connections_with_1001(self):
        server = Server(HERALD_WS_PARK_AFTER_MS=str(PARK_AFTER_MS)).start()
        self.addCleanup(server.cleanup)

        async def go():
            clients = [server.connect(user="park-term-%d" % i, device="d") for i in range(5)]
            sockets = [await c.__aenter__() for c in clients]
            for ws in sockets:
                await recv_type(ws, "welcome")
            self.assertTrue(await wait_parked(server, 5))
            server.proc.send_signal(15)
            codes = [await close_code(ws) for ws in sockets]
            self.assertEqual(codes, [1001] * 5)
        run(go())


class NeverParkTest(ServerTest):
    ENV = {"HERALD_WS_PARK_AFTER_MS": "0"}

    def test_park_after_zero_keeps_every_connection_live(self):
        async def go():
            async with self.server.connect(user="no-park", device="d") as ws:
                await recv_type(ws, "welcome")
                await asyncio.sleep(0.3)
                self.assertEqual(parked(self.server), 0)
                self.server.publish("no-park", {"n": 1})
                self.assertEqual((await recv_type(ws, "msg"))["data"], {"n": 1})
        run(go())


class QuickParkingTest(ServerTest):
    """After the opening and after a heartbeat exchange the checks come every
    ws_park_after_ms/8: the connection parks again well within one period,
    where whole periods would take two to four seconds here."""
    ENV = {"HERALD_WS_PARK_AFTER_MS": "2000"}

    def test_a_new_connection_and_a_heartbeat_exchange_park_within_a_period(self):
        async def go():
            async with self.server.connect(user="quick-park", device="d") as ws:
                await recv_type(ws, "welcome")
                self.assertTrue(await wait_parked(self.server, 1, timeout=1.5), "the new connection did not park soon")
                for i in range(3):
                    woken = unparks(self.server)
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                    self.assertEqual((await recv_type(ws, "pong"))["id"], i)
                    self.assertEqual(unparks(self.server), woken + 1)
                    self.assertTrue(await wait_parked(self.server, 1, timeout=1.5), "the heartbeat kept it awake")
        run(go())

    def test_a_connection_in_use_is_not_parked_between_its_frames(self):
        async def go():
            async with self.server.connect(user="quick-busy", device="d") as ws:
                await recv_type(ws, "welcome")
                self.assertTrue(await wait_parked(self.server, 1, timeout=1.5))
                woken = unparks(self.server)
                # A ping every 100 ms for 1.5 s: quick checks find traffic,
                # so the connection goes back to whole periods and stays up.
                for i in range(15):
                    await ws.send(json.dumps({"type": "ping", "id": i}))
                    await recv_type(ws, "pong")
                    await asyncio.sleep(0.1)
                self.assertEqual(unparks(self.server), woken + 1)
        run(go())


if __name__ == "__main__":
    unittest.main(verbosity=2)
