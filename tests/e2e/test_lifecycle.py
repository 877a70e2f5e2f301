"""Start-up, graceful shutdown and hostile input (issue: gateway core)."""
import asyncio
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import websockets

from harness import RawWebSocket, Server, close_code, make_token, recv_json, run, run_herald


class ShutdownTest(unittest.TestCase):
    def test_sigterm_closes_connections_with_1001_and_exits_0(self):
        s = Server(HERALD_DRAIN_RETRY_AFTER_MS=3000).start()
        try:
            async def go():
                async with s.connect("z", device="a") as ws:
                    await recv_json(ws)
                    s.proc.send_signal(signal.SIGTERM)
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 10)
                    except websockets.exceptions.ConnectionClosed as e:
                        return e.rcvd.code, e.rcvd.reason
            code, reason = run(go())
            self.assertEqual(code, 1001)
            self.assertTrue(reason.startswith("retry_after="), reason)
            self.assertLessEqual(int(reason.split("=")[1]), 3000)
            self.assertEqual(s.proc.wait(15), 0)
        finally:
            s.cleanup()

    def test_while_draining_new_connections_and_publishes_get_503(self):
        # PROTOCOL.md 10. A client that never answers the close keeps the
        # drain going (up to drain_timeout_ms); meanwhile the port still
        # accepts, and answers 503 draining. The drain ends before the 3 s
        # close timeout, so the server also stops with that connection still
        # open (sanitizer builds check its teardown).
        s = Server(HERALD_DRAIN_TIMEOUT_MS=1500).start()
        try:
            mute = RawWebSocket(s, device="mute", user="mute")
            s.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            status, res, headers = s.request("POST", "/v1/publish", {"user": "u", "data": 1})
            self.assertEqual(status, 503)
            self.assertEqual(res["error"]["code"], "draining")
            # When to come back: drain_retry_after_ms (default 5000) in seconds.
            self.assertEqual(headers.get("Retry-After"), "5")

            async def connect():
                try:
                    async with s.connect("late", device="a"):
                        return 101, None
                except websockets.exceptions.InvalidStatusCode as e:
                    return e.status_code, e.headers.get("Retry-After")
            self.assertEqual(run(connect()), (503, "5"))
            self.assertEqual(s.proc.wait(15), 0)
            mute.close()
        finally:
            s.cleanup()

    def test_bad_configuration_exits_non_zero_with_one_clear_line(self):
        env = dict(os.environ, HERALD_MAX_INFLIGHT="lots", HERALD_LISTEN="127.0.0.1:0")
        p = run_herald(["serve"], env, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("max_inflight", p.stderr)
        env = dict(os.environ, HERALD_STORE="postgres", HERALD_LISTEN="127.0.0.1:0")
        p = run_herald(["serve"], env, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        # `--demo` alone turns demo mode on, which mints HS256 tokens only.
        env = dict(os.environ, HERALD_LISTEN="127.0.0.1:0", HERALD_JWT_ALG="RS256",
                   HERALD_JWT_PUBLIC_KEY_FILE="/nonexistent.pem")
        p = run_herald(["serve", "--demo"], env, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("demo needs jwt_alg HS256", p.stderr)
        # A bad log level is a configuration error, found before any secret
        # is generated into the data directory.
        with tempfile.TemporaryDirectory() as data:
            env = dict(os.environ, HERALD_LOG_LEVEL="verbose", HERALD_LISTEN="127.0.0.1:0", HERALD_DATA_DIR=data)
            env.pop("HERALD_JWT_SECRET", None)
            env.pop("HERALD_API_KEYS", None)
            p = run_herald(["serve"], env, capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 2)
            self.assertIn("configuration error: log_level", p.stderr)
            self.assertEqual(os.listdir(data), [])

    def test_an_unwritable_ready_file_a_missing_config_file_or_a_bad_flag_exit_2(self):
        tmp = tempfile.mkdtemp(prefix="herald-e2e-")
        try:
            os.mkdir(os.path.join(tmp, "a-directory"))
            cases = [
                ({"HERALD_READY_FILE": os.path.join(tmp, "missing", "ready.json")}, ["serve"], "ready_file"),
                ({"HERALD_READY_FILE": os.path.join(tmp, "a-directory")}, ["serve"], "ready_file"),
                ({}, ["serve", "--config", os.path.join(tmp, "missing.toml")], "--config"),
                ({}, ["serve", "--no-such-flag"], "--no-such-flag"),
            ]
            for extra, args, named in cases:
                env = dict(os.environ, HERALD_LISTEN="127.0.0.1:0", HERALD_DATA_DIR=os.path.join(tmp, "data"),
                           HERALD_JWT_SECRET="s", HERALD_API_KEYS="k", **extra)
                p = run_herald(args, env, capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 2, (args, extra, p.stderr))
                self.assertIn(named, p.stderr)
                self.assertEqual(len([l for l in p.stderr.splitlines() if l.startswith("herald:")]), 1, p.stderr)
                self.assertNotIn("terminate called", p.stderr)
            self.assertEqual(os.listdir(os.path.join(tmp, "a-directory")), [])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_the_configuration_page_has_every_row_config_doc_prints(self):
        # docs/configuration.md is made from `herald config-doc`: a row edited
        # on one side only (a default, a range, a description) shows here.
        p = run_herald(["config-doc"], dict(os.environ), capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        printed = [l for l in p.stdout.splitlines() if l.startswith("| `")]
        self.assertGreater(len(printed), 40)
        page = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "configuration.md")
        with open(page, encoding="utf-8") as f:
            documented = set(f.read().splitlines())
        self.assertEqual([row for row in printed if row not in documented], [])

    def test_with_no_secrets_they_are_generated_with_a_warning(self):
        s = Server()
        del s.env["HERALD_JWT_SECRET"]
        del s.env["HERALD_API_KEYS"]
        s.start()
        try:
            path = os.path.join(s.env["HERALD_DATA_DIR"], "secrets.toml")
            self.assertTrue(os.path.exists(path))
            self.assertIn("generated", s.logs())
            with open(path) as f:
                key = re.search(r"hk_[0-9a-f]+", f.read()).group(0)
            status, _, _ = s.request("POST", "/v1/publish", {"user": "u", "data": 1}, key=key)
            self.assertEqual(status, 200)
        finally:
            s.cleanup()


class GarbageTest(unittest.TestCase):
    def test_garbage_and_bad_http_never_stop_the_server(self):
        s = Server(HERALD_HTTP_HEADER_TIMEOUT_MS=500).start()
        try:
            payloads = [b"\x00\xff" * 500, b"GET / HTTP/9.9\r\n\r\n", b"HELLO\r\n\r\n",
                        b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                        b"POST /v1/publish HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
                        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
                        b"GET /healthz HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n"]
            for p in payloads:
                c = socket.create_connection((s.host, s.port), timeout=5)
                try:
                    c.sendall(p)
                    c.recv(1024)
                except OSError:
                    pass
                c.close()
            # A slowloris that never finishes its headers is cut off.
            slow = socket.create_connection((s.host, s.port), timeout=5)
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            t0 = time.time()
            self.assertEqual(slow.recv(1024), b"")
            self.assertLess(time.time() - t0, 3)
            slow.close()

            async def frames():
                async with s.connect("g", device="a") as ws:
                    await recv_json(ws)
                    await ws.send("\x00" * 100)
                    return await close_code(ws)
            self.assertEqual(run(frames()), 4003)
            self.assertEqual(s.request("GET", "/healthz", key=None)[0], 200)
            self.assertEqual(s.publish("g", "ok")["seq"], 1)
            self.assertIsNone(s.proc.poll())
        finally:
            s.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
