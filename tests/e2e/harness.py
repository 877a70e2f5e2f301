"""Starts a real `herald serve` and talks to it as an outside client would.

Independent of the C++ code on purpose: tokens are signed here with hmac,
frames go through the `websockets` package (or raw sockets for clients that
misbehave on purpose), HTTP through http.client.
"""
import asyncio
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import websockets

HERALD = os.environ.get("HERALD_BIN", os.path.join(os.path.dirname(__file__), "../../build/dev/apps/herald/herald"))
SECRET = "test-secret-0123456789abcdef0123456789"
API_KEY = "test-key-1"


# Sanitized builds (presets asan, tsan): the runtimes write their reports to
# <prefix>.<pid> instead of stderr, so that a report is found even though the
# server log is deleted with the temp dir, and fails the test (CTest shows
# it). Options already in the environment (suppressions, ...) are kept.
# GCC's libubsan ignores log_path when libasan is loaded too: its reports
# ("file:line: runtime error: ...") stay on stderr, the server log, which is
# searched for them (and for any other report that reached stderr).
SANITIZER_OPTION_VARS = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")
SANITIZER_REPORT_IN_LOG = re.compile(r"runtime error: |^==\d+==ERROR: |^WARNING: ThreadSanitizer|^SUMMARY: \w+Sanitizer",
                                     re.MULTILINE)


def sanitizer_env(env, prefix):
    for var in SANITIZER_OPTION_VARS:
        opts = env.get(var, "")
        env[var] = (opts + ":" if opts else "") + "log_path=" + prefix
    return env


def take_sanitizer_reports(prefix, keep_as):
    """Reports written under prefix, removed so each is reported once; copies
    are kept in $HERALD_SANITIZER_LOG_DIR (CI artifacts) when it is set."""
    reports = []
    keep_dir = os.environ.get("HERALD_SANITIZER_LOG_DIR")
    for path in sorted(glob.glob(glob.escape(prefix) + ".*")):
        with open(path, "rb") as f:
            reports.append(f.read().decode(errors="replace"))
        if keep_dir:
            os.makedirs(keep_dir, exist_ok=True)
            shutil.copy(path, os.path.join(keep_dir, keep_as + "." + os.path.basename(path)))
        os.unlink(path)
    return reports


def sanitizer_failure(reports):
    text = "\n".join(reports)
    if len(text) > 30000:
        text = text[:30000] + "\n[... truncated]"
    return AssertionError("herald wrote %d sanitizer report(s):\n%s" % (len(reports), text))


def under_sanitizer():
    """Whether HERALD_BIN is a sanitized build: sanitizer runtimes keep
    freed memory in quarantine, so bounds on its RSS do not hold there."""
    out = subprocess.run(["ldd", HERALD], capture_output=True, text=True).stdout
    return "libasan" in out or "libtsan" in out


def run_herald(args, env, **kw):
    """subprocess.run of the herald binary; fails on a sanitizer report."""
    prefix_dir = tempfile.mkdtemp(prefix="herald-run-")
    try:
        p = subprocess.run([HERALD] + args, env=sanitizer_env(dict(env), os.path.join(prefix_dir, "sanitizer")), **kw)
        reports = take_sanitizer_reports(os.path.join(prefix_dir, "sanitizer"), os.path.basename(prefix_dir))
        err = p.stderr if isinstance(p.stderr, str) else (p.stderr or b"").decode(errors="replace")
        found = SANITIZER_REPORT_IN_LOG.search(err)
        if found:
            start = err.rfind("\n", 0, found.start()) + 1
            reports.append("stderr: " + err[start:start + 20000])
        if reports:
            raise sanitizer_failure(reports)
        return p
    finally:
        shutil.rmtree(prefix_dir, ignore_errors=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(sub="u1", exp_in=3600, secret=SECRET, alg="HS256", **claims):
    header = {"alg": alg, "typ": "JWT"}
    payload = {"sub": sub, "exp": int(time.time()) + exp_in}
    payload.update(claims)
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


REDIS_SERVER = "/usr/bin/redis-server"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server on a free loopback port in a temp directory.

    A missing redis-server raises: the test fails, it never skips. stop()
    kills it as a crash would; start() again keeps the port and directory
    (with appendonly yes, what it had acknowledged comes back)."""

    def __init__(self, *args):
        if not os.access(REDIS_SERVER, os.X_OK):
            raise RuntimeError(REDIS_SERVER + " is missing: run scripts/setup.sh")
        self.dir = tempfile.mkdtemp(prefix="herald-redis-")
        self.port = free_port()
        self.args = list(args)
        self.proc = None

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self, timeout=10):
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--daemonize", "no"] + self.args, stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited: " + self.logs())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # up (a password may be set)
                        return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server not ready in time: " + self.logs())

    def logs(self):
        with open(os.path.join(self.dir, "redis.log"), "rb") as f:
            return f.read().decode(errors="replace")[-2000:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """One herald process on 127.0.0.1:0 with its own data directory. With
    the redis store and no HERALD_REDIS_URL, it brings its own redis-server."""

    def __init__(self, **env):
        self.data_dir = tempfile.mkdtemp(prefix="herald-e2e-")
        self.ready_file = os.path.join(self.data_dir, "ready.json")
        self.env = dict(os.environ)
        self.env.update({
            "HERALD_LISTEN": "127.0.0.1:0",
            "HERALD_READY_FILE": self.ready_file,
            "HERALD_DATA_DIR": os.path.join(self.data_dir, "data"),
            "HERALD_STORE": os.environ.get("HERALD_E2E_STORE", "memory"),
            "HERALD_JWT_SECRET": SECRET,
            "HERALD_API_KEYS": API_KEY,
            "HERALD_IO_THREADS": "2",
        })
        self.env.update({k: str(v) for k, v in env.items()})
        self.redis = None
        if self.env["HERALD_STORE"] == "redis" and not self.env.get("HERALD_REDIS_URL"):
            self.redis = RedisServer("--appendonly", "yes").start()
            self.env["HERALD_REDIS_URL"] = self.redis.url
        self.sanitizer_prefix = os.path.join(self.data_dir, "sanitizer")
        sanitizer_env(self.env, self.sanitizer_prefix)
        self.log_checked = 0  # server.log is searched for sanitizer reports from here on
        self.proc = None
        self.url = None

    def start(self, timeout=15):
        return self.spawn().wait_ready(timeout)

    def spawn(self):
        """Starts the process without waiting for its ready file."""
        if os.path.exists(self.ready_file):
            os.unlink(self.ready_file)
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen([HERALD, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    info = json.load(f)
                self.url = info["url"]
                self.host, port = self.url[len("http://"):].rsplit(":", 1)
                self.port = int(port)
                self.ws_url = "ws://%s:%d/v1/ws" % (self.host, self.port)
                return self
            if self.proc.poll() is not None:
                self.check_sanitizers()
                raise RuntimeError("herald exited with %s: %s" % (self.proc.returncode, self.logs()))
            time.sleep(0.02)
        raise RuntimeError("herald not ready in time: " + self.logs())

    def logs(self):
        try:
            with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the server (if running) and returns its exit status; raises
        AssertionError when it wrote sanitizer reports (any time since the
        last check: also a server that died by itself)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.check_sanitizers()
        return self.proc.returncode if self.proc else None

    def check_sanitizers(self):
        keep_as = os.path.basename(self.data_dir)
        reports = take_sanitizer_reports(self.sanitizer_prefix, keep_as)
        try:
            with open(os.path.join(self.data_dir, "server.log"), "rb") as f:
                f.seek(self.log_checked)
                text = f.read().decode(errors="replace")
                self.log_checked = f.tell()
        except OSError:
            text = ""
        found = SANITIZER_REPORT_IN_LOG.search(text)
        if found:
            reports.append("server.log: " + text[max(0, found.start() - 2000):found.start() + 20000])
        if not reports:
            return
        keep_dir = os.environ.get("HERALD_SANITIZER_LOG_DIR")
        if keep_dir and os.path.exists(os.path.join(self.data_dir, "server.log")):
            os.makedirs(keep_dir, exist_ok=True)
            shutil.copy(os.path.join(self.data_dir, "server.log"), os.path.join(keep_dir, keep_as + ".server.log"))
        raise sanitizer_failure(reports)

    def cleanup(self):
        try:
            self.stop()
        finally:
            if getattr(self, "log", None):
                self.log.close()
            if self.redis:
                self.redis.cleanup()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---- HTTP
    def request(self, method, path, body=None, key=API_KEY, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        res = conn.getresponse()
        raw = res.read()
        conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return res.status, parsed, dict(res.getheaders())

    def metrics(self):
        """{series (with labels): value} from /metrics."""
        _, text, _ = self.request("GET", "/metrics", key=None)
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def publish(self, user, data, **fields):
        body = {"user": user, "data": data}
        body.update(fields)
        status, res, _ = self.request("POST", "/v1/publish", body)
        if status != 200:
            raise AssertionError("publish failed: %s %s" % (status, res))
        return res["results"][0]

    def upgrade_status(self, query="", headers=None):
        """Raw upgrade request: (status, json body) of a refusal, or 101."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
        h.update(headers or {})
        conn.request("GET", "/v1/ws" + query, headers=h)
        res = conn.getresponse()
        status = res.status
        body = None
        if status != 101:
            raw = res.read()
            body = json.loads(raw) if raw else None
        conn.close()
        return status, body

    # ---- WebSocket
    def connect(self, user="u1", device=None, token=None, query="", **kw):
        token = token or make_token(user)
        q = []
        if device is not None:
            q.append("device=" + device)
        if query:
            q.append(query)
        uri = self.ws_url + ("?" + "&".join(q) if q else "")
        kw.setdefault("extra_headers", {"Authorization": "Bearer " + token})
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", 2 ** 24)
        return websockets.connect(uri, **kw)


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, type_, timeout=5):
    """Next frame of this type, skipping others."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            raise asyncio.TimeoutError("no %s frame" % type_)
        f = await recv_json(ws, left)
        if f.get("type") == type_:
            return f


async def close_code(ws, timeout=10):
    """Reads until the server closes; returns the close code it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd is not None else None


def run(coro):
    return asyncio.run(coro)


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate until it holds or timeout seconds pass; its last value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class RawWebSocket:
    """A deliberately minimal client socket for clients that misbehave:
    never reads, never pongs, sends raw frames."""

    def __init__(self, server, token=None, device="raw", user="u1"):
        token = token or make_token(user)
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /v1/ws?device=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n"
               % (device, server.host, key, token))
        self.sock.sendall(req.encode())
        self.buf = b""
        self.pings = []  # time.time() of each ping frame read_frames_until_close() saw
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))

    def send_frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = bytes([b0, 0x80 | n])
        elif n < 65536:
            hdr = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def read_frames_until_close(self, timeout=10):
        """Returns (close_code, [text frames]) reading until a close frame or EOF."""
        self.sock.settimeout(timeout)
        texts = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            while len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n = b1 & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) < 4:
                        break
                    n = int.from_bytes(self.buf[2:4], "big")
                    off = 4
                elif n == 127:
                    if len(self.buf) < 10:
                        break
                    n = int.from_bytes(self.buf[2:10], "big")
                    off = 10
                if len(self.buf) < off + n:
                    break
                payload = self.buf[off:off + n]
                self.buf = self.buf[off + n:]
                op = b0 & 0x0F
                if op == 0x8:
                    return (int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None), texts
                if op == 0x1:
                    texts.append(payload.decode())
                if op == 0x9:
                    self.pings.append(time.time())
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return None, texts
            self.buf += chunk
        return None, texts

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ServerTest(unittest.TestCase):
    """One fresh server per test class; ENV customises it."""
    ENV = {}

    @classmethod
    def setUpClass(cls):
        cls.server = Server(**cls.ENV).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
