"""The rocksdb store across restarts and crashes (PROTOCOL.md 1, 10)."""
import asyncio
import json
import signal
import threading
import time
import unittest

from harness import Server, recv_json, recv_type, run


class RestartTest(unittest.TestCase):
    def test_inbox_epoch_cursors_and_dedup_survive_a_graceful_restart(self):
        s = Server(HERALD_STORE="rocksdb").start()
        try:
            for i in range(5):
                s.publish("ru", {"i": i}, id="m%d" % i)

            async def first():
                async with s.connect("ru", device="d") as ws:
                    w = await recv_json(ws)
                    for _ in range(5):
                        await recv_type(ws, "msg")
                    await ws.send(json.dumps({"type": "ack", "upto": 3}))
                    await asyncio.sleep(0.2)
                    return w["epoch"]
            epoch = run(first())
            self.assertEqual(s.stop(), 0)
            s.start()
            self.assertTrue(s.publish("ru", 0, id="m0")["duplicate"])
            self.assertEqual(s.publish("ru", 5)["seq"], 6)

            async def second():
                async with s.connect("ru", device="d") as ws:
                    w = await recv_json(ws)
                    self.assertEqual(w["epoch"], epoch)
                    self.assertTrue(w["recovered"])
                    self.assertEqual(w["resume_from"], 4)
                    return [(await recv_type(ws, "msg"))["seq"] for _ in range(3)]
            self.assertEqual(run(second()), [4, 5, 6])
        finally:
            s.cleanup()

    def test_a_scheduled_message_survives_a_graceful_restart_and_is_delivered_when_due(self):
        s = Server(HERALD_STORE="rocksdb").start()
        try:
            # Far enough out that a restart under TSan (~2 s) still ends before it.
            deliver_at = int(time.time() * 1000) + 4000
            first = s.publish("later", {"n": 1}, id="sched-1", deliver_at=deliver_at)
            self.assertEqual(first, {"user": "later", "id": "sched-1", "scheduled": True})
            self.assertEqual(s.stop(), 0)
            s.start()
            restarted_ms = time.time() * 1000
            # PROTOCOL.md 10: dedup covers scheduled messages, across the restart too.
            again = s.publish("later", {"n": 2}, id="sched-1", deliver_at=deliver_at)
            self.assertTrue(again["duplicate"], again)
            if restarted_ms < deliver_at - 100:  # still scheduled, not yet appended
                _, stats, _ = s.request("GET", "/v1/stats")
                self.assertEqual(stats["messages"]["scheduled"], 1)

            async def receive():
                async with s.connect("later", device="d") as ws:
                    await recv_json(ws)
                    m = await recv_type(ws, "msg", timeout=10)
                    return m, time.time() * 1000
            m, received_ms = run(receive())
            self.assertEqual((m["seq"], m["id"], m["data"]), (1, "sched-1", {"n": 1}))
            self.assertGreaterEqual(received_ms, deliver_at - 20)
            self.assertGreaterEqual(m["ts"], deliver_at)
            # Appended, then removed from the schedule (just after the send may
            # have started): from then on the inbox's dedup answers.
            deadline = time.time() + 5
            while s.request("GET", "/v1/stats")[1]["messages"]["scheduled"] != 0:
                self.assertLess(time.time(), deadline, "still scheduled after it was delivered")
                time.sleep(0.02)
            self.assertTrue(s.publish("later", {"n": 3}, id="sched-1",
                                      deliver_at=int(time.time() * 1000) + 1000)["duplicate"])
            _, res, _ = s.request("GET", "/v1/users/later/messages")
            self.assertEqual([x["id"] for x in res["messages"]], ["sched-1"])
        finally:
            s.cleanup()

    def test_every_publish_that_got_200_survives_kill_9(self):
        for sync in ("always", "batch"):
            with self.subTest(sync=sync):
                self.crash_run(sync)

    def crash_run(self, sync):
        s = Server(HERALD_STORE="rocksdb", HERALD_SYNC=sync).start()
        try:
            accepted = []
            stop = threading.Event()

            def publisher():
                i = 0
                while not stop.is_set():
                    try:
                        status, res, _ = s.request("POST", "/v1/publish", {"user": "crash", "data": i, "id": "c%d" % i})
                    except OSError:
                        continue
                    if status == 200:
                        accepted.append("c%d" % i)
                    i += 1
            for round_ in range(3):
                stop.clear()
                t = threading.Thread(target=publisher)
                t.start()
                time.sleep(0.4)
                s.stop(sig=signal.SIGKILL)
                stop.set()
                t.join()
                s.start()
            self.assertGreater(len(accepted), 10)

            async def drain():
                ids = []
                async with s.connect("crash", device="d") as ws:
                    w = await recv_json(ws)
                    head = w["head_seq"]
                    seq = 0
                    while seq < head:
                        m = await recv_type(ws, "msg")
                        seq = m["seq"]
                        ids.append(m["id"])
                        await ws.send(json.dumps({"type": "ack", "seq": seq}))
                return ids
            got = set(run(drain()))
            missing = [a for a in accepted if a not in got]
            self.assertEqual(missing, [], "accepted but lost under sync=%s" % sync)
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
