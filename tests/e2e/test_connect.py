"""PROTOCOL.md 2, 3, 10 (Connecting): authentication, refusals, welcome."""
import asyncio
import json
import socket
import time
import unittest

from harness import (API_KEY, SECRET, ServerTest, close_code, make_token, recv_json, recv_type, run)


class ConnectTest(ServerTest):
    def test_welcome_carries_the_protocol_defaults(self):
        async def go():
            async with self.server.connect("alice", device="d1") as ws:
                w = await recv_json(ws)
                self.assertEqual(w["type"], "welcome")
                self.assertEqual(w["user"], "alice")
                self.assertEqual(w["device"], "d1")
                self.assertEqual(w["heartbeat_ms"], 25000)
                self.assertEqual(w["idle_timeout_ms"], 75000)
                self.assertEqual(w["max_inflight"], 64)
                self.assertEqual(w["head_seq"], 0)
                self.assertEqual(w["resume_from"], 1)
                self.assertTrue(w["recovered"])
                self.assertTrue(w["conn_id"])
                self.assertTrue(w["epoch"])
                self.assertLess(abs(w["server_time"] - time.time() * 1000), 5000)
        run(go())

    def test_device_defaults_to_the_dev_claim_then_default(self):
        async def go():
            async with self.server.connect(token=make_token("bob", dev="tablet")) as ws:
                self.assertEqual((await recv_json(ws))["device"], "tablet")
            async with self.server.connect(token=make_token("bob")) as ws:
                self.assertEqual((await recv_json(ws))["device"], "default")
        run(go())

    def test_subprotocol_is_offered_when_asked(self):
        async def go():
            async with self.server.connect("carol", subprotocols=["herald.v1"]) as ws:
                self.assertEqual(ws.subprotocol, "herald.v1")
                await recv_json(ws)
            async with self.server.connect("carol") as ws:
                self.assertIsNone(ws.subprotocol)
        run(go())

    def test_token_in_query_and_cookie_are_accepted(self):
        tok = make_token("dave")
        status, _ = self.server.upgrade_status("?token=" + tok)
        self.assertEqual(status, 101)
        status, _ = self.server.upgrade_status("", {"Cookie": "a=b; herald_token=" + tok})
        self.assertEqual(status, 101)

    def test_refusals_are_json_with_the_right_status(self):
        s = self.server
        status, body = s.upgrade_status()
        self.assertEqual(status, 401)
        self.assertIn("code", body["error"])
        self.assertIn("message", body["error"])
        cases = [
            make_token("u", secret="wrong-secret"),
            make_token("u", alg="none"),
            make_token("u", exp_in=-3600),
            make_token("u", nbf=int(time.time()) + 3600),
            make_token(""),
            make_token("x" * 129),
            make_token("a\u0001b"),
            "not.a.jwt",
        ]
        for tok in cases:
            status, body = s.upgrade_status("", {"Authorization": "Bearer " + tok})
            self.assertEqual(status, 401, tok)
            self.assertEqual(body["error"]["code"], "unauthorized")

    def test_a_malformed_websocket_handshake_is_a_json_refusal_counted_as_one(self):
        s = self.server
        tok = {"Authorization": "Bearer " + make_token("hs")}
        for headers, status, field in (({"Sec-WebSocket-Key": ""}, 400, "Sec-WebSocket-Key"),
                                       ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400, "Sec-WebSocket-Key"),
                                       ({"Sec-WebSocket-Version": "8"}, 426, "Sec-WebSocket-Version")):
            got, body = s.upgrade_status("", dict(tok, **headers))
            self.assertEqual(got, status, headers)
            self.assertEqual(body["error"]["field"], field)
        m = s.metrics()
        self.assertEqual(m['herald_connections_refused_total{reason="bad_request"}'], 3)
        self.assertEqual(m.get('herald_connections_closed_total{reason="transport_error"}', 0), 0)
        self.assertEqual(s.upgrade_status("", tok)[0], 101)

    def test_missing_exp_is_refused(self):
        import base64, hashlib, hmac, json
        def b64(d):
            return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
        si = b64(json.dumps({"alg": "HS256"}).encode()) + "." + b64(json.dumps({"sub": "u"}).encode())
        tok = si + "." + b64(hmac.new(SECRET.encode(), si.encode(), hashlib.sha256).digest())
        status, _ = self.server.upgrade_status("", {"Authorization": "Bearer " + tok})
        self.assertEqual(status, 401)

    def test_header_token_wins_without_fallback(self):
        good = make_token("eve")
        status, _ = self.server.upgrade_status("?token=" + good, {"Authorization": "Bearer bad.token.x"})
        self.assertEqual(status, 401)

    def test_token_is_checked_before_parameters(self):
        status, _ = self.server.upgrade_status("?device=")
        self.assertEqual(status, 401)
        hdr = {"Authorization": "Bearer " + make_token("u")}
        for q in ("?device=", "?device=has%20space", "?device=" + "x" * 65, "?last_seq=abc", "?last_seq=-1"):
            status, body = self.server.upgrade_status(q, hdr)
            self.assertEqual(status, 400, q)
            self.assertEqual(body["error"]["code"], "bad_request")
        status, body = self.server.upgrade_status("?device=", hdr)
        self.assertEqual(body["error"].get("field"), "device")

    def test_frames_that_break_the_protocol_close_with_4003(self):
        async def one(payload):
            async with self.server.connect("frank", device="p") as ws:
                await recv_json(ws)
                await ws.send(payload)
                return await close_code(ws)
        for bad in ("not json", "[1,2]", '{"seq":1}', '{"type":5}', b"\x01\x02binary",
                    '{"type":"ping"} x', '{"type":"ping"}{"type":"ping"}', '{"type":"ack","seq":1} 2',
                    '{"type":"ping","id":%s%s}' % ("[" * 256, "]" * 256)):
            self.assertEqual(run(one(bad)), 4003, bad[:40])

    def test_a_raw_non_ascii_byte_in_the_query_is_400_after_the_token_check(self):
        def upgrade(token):
            with socket.create_connection((self.server.host, self.server.port), timeout=10) as sock:
                sock.sendall(b"GET /v1/ws?device=\xc3\xa9 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
                return int(sock.recv(4096).split(b" ")[1])
        self.assertEqual(upgrade(make_token("raw")), 400)
        self.assertEqual(upgrade("not-a-token"), 401)

    def test_json_nested_256_levels_deep_goes_through_both_ways(self):
        s = self.server
        deep = 1
        for _ in range(250):
            deep = [deep]

        async def go():
            async with s.connect("deep", device="p") as ws:
                await recv_json(ws)
                s.publish("deep", deep)
                self.assertEqual((await recv_type(ws, "msg"))["data"], deep)
                await ws.send(json.dumps({"type": "ping", "id": deep}))
                self.assertEqual((await recv_type(ws, "pong"))["id"], deep)
        run(go())
        too_deep = '{"user":"deep","data":%s%s}' % ("[" * 300, "]" * 300)
        status, body, _ = s.request("POST", "/v1/publish", too_deep)
        self.assertEqual(status, 400)
        self.assertEqual(body["error"], {"code": "invalid_json", "message": "body nests JSON deeper than 256 levels"})

    def test_unknown_type_gets_an_error_frame_and_stays_open(self):
        async def go():
            async with self.server.connect("gina") as ws:
                await recv_json(ws)
                await ws.send('{"type":"subscribe","topic":"x"}')
                err = await recv_type(ws, "error")
                self.assertEqual(err["code"], "unknown_type")
                await ws.send('{"type":"ping","id":9,"ts":123}')
                pong = await recv_type(ws, "pong")
                self.assertEqual(pong["id"], 9)
                self.assertEqual(pong["ts"], 123)
                self.assertIn("server_time", pong)
        run(go())


class OriginTest(ServerTest):
    ENV = {"HERALD_ALLOWED_ORIGINS": "https://shop.example,https://m.shop.example"}

    def test_origin_outside_the_list_is_403(self):
        hdr = {"Authorization": "Bearer " + make_token("u")}
        status, body = self.server.upgrade_status("", dict(hdr, Origin="https://evil.example"))
        self.assertEqual(status, 403)
        self.assertEqual(body["error"]["code"], "forbidden_origin")
        status, _ = self.server.upgrade_status("", dict(hdr, Origin="https://m.shop.example"))
        self.assertEqual(status, 101)


class IssuerAudienceTest(ServerTest):
    ENV = {"HERALD_JWT_ISSUER": "shop", "HERALD_JWT_AUDIENCE": "push", "HERALD_JWT_LEEWAY_MS": "0"}

    def test_iss_and_aud_are_required_when_configured(self):
        def st(tok):
            return self.server.upgrade_status("", {"Authorization": "Bearer " + tok})[0]
        self.assertEqual(st(make_token("u", iss="shop", aud="push")), 101)
        self.assertEqual(st(make_token("u", iss="shop", aud=["x", "push"])), 101)
        self.assertEqual(st(make_token("u", iss="other", aud="push")), 401)
        self.assertEqual(st(make_token("u", iss="shop")), 401)
        self.assertEqual(st(make_token("u", iss="shop", aud="push", exp_in=-1)), 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
