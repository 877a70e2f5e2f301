"""Hostile networks (issue 7): delivery over a lossy link, a slow link and a
partition, with real TCP between a real `herald serve` and clients in a
network namespace of their own.

    root namespace                          client namespace (ip netns)
    herald on 10.201.X.1:PORT  <-- veth -->  10.201.X.2: lossy_client.py
    publisher (HTTP, same host)              nft table: drops packets
                                             tc tbf: rate limit

The client (lossy_client.py, run with `ip netns exec`) acks as an SDK does
(`upto` the highest contiguous seq), drops duplicates by seq, and
reconnects with backoff, resuming with last_seq. It logs what the app saw as
JSON lines; this side publishes at a steady rate and checks that every
publish answered 200 reached every device, in seq order, once. Latency
percentiles (server accept `ts` to client receipt) are printed, not asserted.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for `ip netns`): without it the
test exits with SKIP_CODE (CTest SKIP_RETURN_CODE) and says why. A missing
`ip`, `tc` or `nft` is a failure: scripts/setup.sh --test installs them.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import API_KEY, Server, make_token

SKIP_CODE = 77
HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
USERS = 20
PAD = "x" * 48
# Server liveness short enough that a partition of a few seconds outlasts it.
LIVENESS = {"HERALD_HEARTBEAT_MS": 1000, "HERALD_IDLE_TIMEOUT_MS": 3000}
# Under loss: an ack timeout that TCP's retransmissions (RTO >= 200 ms)
# regularly outlast, so that the server redelivers messages the client
# already has and the client's dedup by seq has work to do.
FAST_ACKS = {"HERALD_ACK_TIMEOUT_MS": 400, "HERALD_RETRY_INITIAL_MS": 200}
# Bounds on waiting, generous for 2 loaded cores, and small enough that even
# three failing scenarios end before CTest's 300 s timeout (which kills the
# test without its cleanup: see sweep_stale()).
# Two publishing connections; a machine that cannot keep the rate stops
# publishing at PUBLISH_OVERRUN x the planned time (the report says so).
PUBLISHERS = 2
PUBLISH_OVERRUN = 2.0
WELCOME_TIMEOUT = 30
COMPLETE_TIMEOUT = 45


def tool(name):
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/sbin"):
        if os.access(os.path.join(d, name), os.X_OK):
            return os.path.join(d, name)
    return None


def sh(*args, ns=None, input=None, check=True):
    cmd = list(args)
    if ns is not None:
        cmd = [tool("ip"), "netns", "exec", ns] + cmd
    p = subprocess.run(cmd, input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def netns_unavailable():
    """None when this process may create network namespaces, else why not."""
    probe = "herald-probe-%d" % os.getpid()
    p = subprocess.run([tool("ip"), "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return "`ip netns add` failed (needs root / CAP_NET_ADMIN + CAP_SYS_ADMIN): " + p.stderr.strip()
    try:
        p = subprocess.run([tool("ip"), "-n", probe, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return "cannot create a veth pair: " + p.stderr.strip()
        return None
    finally:
        subprocess.run([tool("ip"), "netns", "del", probe], capture_output=True)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class Link:
    """A client namespace joined to the root namespace by a veth pair, with an
    nft table of its own in the client namespace for impairments. Names carry
    the pid (and a counter) so that parallel runs do not collide; cleanup()
    removes everything and is safe to call on a half-built link."""

    TABLE = "herald_lossy"
    NS_PREFIX = "herald-lossy-"
    count = 0

    def __init__(self):
        Link.count += 1
        tag = "%d-%d" % (os.getpid(), Link.count)
        self.ns = self.NS_PREFIX + tag
        self.host_if = ("hlh" + tag)[:15]
        self.cli_if = ("hlc" + tag)[:15]
        used = sh(tool("ip"), "-4", "-o", "addr", "show").stdout
        octet = (os.getpid() * 7 + Link.count) % 250 + 1
        while "10.201.%d." % octet in used:
            octet = octet % 250 + 1
        self.host_ip = "10.201.%d.1" % octet
        self.cli_ip = "10.201.%d.2" % octet
        self.created_ns = self.created_if = False

    @classmethod
    def sweep_stale(cls):
        """Removes the namespaces of runs whose process is gone (a run killed
        by a timeout cleans nothing up); their veth pairs go with them."""
        for line in sh(tool("ip"), "netns", "list").stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            m = re.fullmatch(re.escape(cls.NS_PREFIX) + r"(\d+)-\d+", name)
            if m and not os.path.exists("/proc/" + m.group(1)):
                sh(tool("ip"), "netns", "del", name, check=False)

    def up(self):
        ip = tool("ip")
        self.sweep_stale()
        sh(ip, "netns", "add", self.ns)
        self.created_ns = True
        sh(ip, "link", "add", self.host_if, "type", "veth", "peer", "name", self.cli_if)
        self.created_if = True
        sh(ip, "link", "set", self.cli_if, "netns", self.ns)
        sh(ip, "addr", "add", self.host_ip + "/24", "dev", self.host_if)
        sh(ip, "link", "set", self.host_if, "up")
        sh(ip, "addr", "add", self.cli_ip + "/24", "dev", self.cli_if, ns=self.ns)
        sh(ip, "link", "set", self.cli_if, "up", ns=self.ns)
        sh(ip, "link", "set", "lo", "up", ns=self.ns)
        # Every packet on the client's veth passes through impair_in/impair_out;
        # the two counters see all of them (before any drop).
        sh(tool("nft"), "-f", "-", ns=self.ns, input="""
table inet %(t)s {
  chain impair_in { }
  chain impair_out { }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "%(i)s" counter comment "in_all"
    iifname "%(i)s" jump impair_in
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oifname "%(i)s" counter comment "out_all"
    oifname "%(i)s" jump impair_out
  }
}
""" % {"t": self.TABLE, "i": self.cli_if})
        return self

    def impair(self, rule, label):
        """Replaces the impairment of both directions by `rule` (nft syntax,
        without verdict): matching packets are counted and dropped."""
        script = "flush chain inet {t} impair_in\nflush chain inet {t} impair_out\n".format(t=self.TABLE)
        if rule:
            for chain, d in (("impair_in", "in"), ("impair_out", "out")):
                script += 'add rule inet %s %s %s counter drop comment "%s_%s"\n' % (self.TABLE, chain, rule, d, label)
        sh(tool("nft"), "-f", "-", ns=self.ns, input=script)

    def counters(self):
        out = json.loads(sh(tool("nft"), "-j", "list", "table", "inet", self.TABLE, ns=self.ns).stdout)
        found = {}
        for item in out.get("nftables", []):
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            for e in rule.get("expr", []):
                if "counter" in e:
                    found[rule["comment"]] = e["counter"]["packets"]
        return found

    def shape(self, rate, burst, latency):
        """tbf on both ends of the veth: server to client on the host side,
        client to server on the client side."""
        tc = tool("tc")
        for dev, ns in ((self.host_if, None), (self.cli_if, self.ns)):
            sh(tc, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", burst, "latency", latency, ns=ns)

    def shaper_stats(self):
        stats = {}
        for name, dev, ns in (("down", self.host_if, None), ("up", self.cli_if, self.ns)):
            for q in json.loads(sh(tool("tc"), "-s", "-j", "qdisc", "show", "dev", dev, ns=ns).stdout or "[]"):
                if q.get("kind") == "tbf":
                    stats[name] = {k: q.get(k) for k in ("packets", "bytes", "drops", "overlimits")}
        return stats

    def cleanup(self):
        ip = tool("ip")
        if self.created_ns:
            sh(tool("nft"), "delete", "table", "inet", self.TABLE, ns=self.ns, check=False)
        if self.created_if:
            # Deleting one end deletes the pair (also when the peer is in the namespace).
            sh(ip, "link", "del", self.host_if, check=False)
        if self.created_ns:
            sh(ip, "netns", "del", self.ns, check=False)
        self.created_ns = self.created_if = False


class Publisher:
    """POST /v1/publish over one keep-alive connection. Every message has an
    id, so a retry after a broken connection is idempotent (PROTOCOL.md 7)."""

    def __init__(self, server):
        self.server = server
        self.conn = None

    def publish(self, user, i):
        body = json.dumps({"user": user, "id": "%s-%d" % (user, i), "data": {"i": i, "pad": PAD}})
        headers = {"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"}
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
                self.conn.request("POST", "/v1/publish", body, headers)
                res = self.conn.getresponse()
                raw = res.read()
                if res.will_close:
                    self.close()
                return res.status, json.loads(raw) if raw else None
            except (OSError, http.client.HTTPException):
                self.close()
        return None, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class ClientLog:
    """Reads the client's JSON lines as they are written."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = ""
        self.records = []

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                chunk = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        text = self.partial + chunk
        lines = text.split("\n")
        self.partial = lines.pop()
        new = [json.loads(line) for line in lines if line]
        self.records.extend(new)
        return new


def metrics(server):
    status, body, _ = server.request("GET", "/metrics", key=None)
    values = {}
    if status == 200 and isinstance(body, str):
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    values[name] = float(value)
                except ValueError:
                    pass
    return values


class LossyNetworkTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="herald-lossy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for name in ("ip", "tc", "nft"):
            if tool(name) is None:
                self.fail("`%s` is missing: scripts/setup.sh --test installs it" % name)
        self.link = Link()
        self.addCleanup(self.link.cleanup)
        self.link.up()
        self.server = None
        self.client = None
        # 20 users; every other one with two devices.
        self.devices = []
        for u in range(USERS):
            user = "lossy-u%02d" % u
            for d in range(2 if u % 2 == 0 else 1):
                self.devices.append({"user": user, "device": "dev%d" % d, "token": make_token(user)})
        self.users = sorted({d["user"] for d in self.devices})

    # ---- the server, and the client process in the namespace
    def start_server(self, **env):
        env = dict(LIVENESS, **env)
        self.server = Server(HERALD_LISTEN=self.link.host_ip + ":0", **env)
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.server_env = env

    def start_client(self):
        self.addCleanup(self.stop_client)
        cfg = os.path.join(self.tmp, "client.json")
        with open(cfg, "w") as f:
            json.dump({"url": "ws://%s:%d/v1/ws" % (self.link.host_ip, self.server.port), "devices": self.devices}, f)
        self.client_out = os.path.join(self.tmp, "client.jsonl")
        self.client_log_path = os.path.join(self.tmp, "client.log")
        self.client_log_file = open(self.client_log_path, "wb")
        self.client = subprocess.Popen(
            [tool("ip"), "netns", "exec", self.link.ns, PYTHON, os.path.join(HERE, "lossy_client.py"), cfg, self.client_out],
            stdout=self.client_log_file, stderr=subprocess.STDOUT)
        self.log = ClientLog(self.client_out)

    def stop_client(self):
        if self.client is None:
            return
        if self.client.poll() is None:
            self.client.send_signal(signal.SIGTERM)
            try:
                self.client.wait(20)
            except subprocess.TimeoutExpired:
                self.client.kill()
                self.client.wait()
        self.client_log_file.close()
        self.client = None
        self.log.poll()

    def client_tail(self):
        try:
            with open(self.client_log_path, "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait_for_welcomes(self):
        want = {(d["user"], d["device"]) for d in self.devices}
        deadline = time.time() + WELCOME_TIMEOUT
        got = set()
        while time.time() < deadline:
            got |= {(r["u"], r["d"]) for r in self.log.poll() if r["ev"] == "welcome"}
            if got >= want:
                return
            self.assertIsNone(self.client.poll(), "client exited: " + self.client_tail())
            time.sleep(0.1)
        self.fail("devices never welcomed: %s\n%s" % (sorted(want - got)[:10], self.client_tail()))

    # ---- one run
    def run_scenario(self, per_user, duration, events=(), server_env=None):
        """Publishes per_user messages to every user, spread evenly over
        `duration` s; events are (at_s, fn) run on that schedule. Returns
        accepted[user] = {seq: i} after every device got
        all of them (or COMPLETE_TIMEOUT passed)."""
        self.start_server(**(server_env or {}))
        self.start_client()
        self.wait_for_welcomes()
        accepted = {u: {} for u in self.users}
        failed = []
        published = [0] * PUBLISHERS
        errors = []
        t0 = time.time()

        def publish(n):
            # Publisher n takes every PUBLISHERS-th user, so that each user's
            # messages go out in order from one connection.
            users = self.users[n::PUBLISHERS]
            count = per_user * len(users)
            pub = Publisher(self.server)
            try:
                for k in range(count):
                    due = t0 + duration * k / count
                    if time.time() - t0 > duration * PUBLISH_OVERRUN:
                        break  # a machine too slow to keep the rate: publish less, check all the same
                    left = due - time.time()
                    if left > 0:
                        time.sleep(left)
                    user, i = users[k % len(users)], k // len(users)
                    status, body = pub.publish(user, i)
                    published[n] += 1
                    if status == 200:
                        accepted[user][body["results"][0]["seq"]] = i
                    else:
                        failed.append((user, i, status, body))
            except BaseException as e:  # noqa: BLE001 - fails the test after the join
                errors.append(e)
            finally:
                pub.close()

        threads = [threading.Thread(target=publish, args=(n,), daemon=True) for n in range(PUBLISHERS)]
        for t in threads:
            t.start()
        try:
            for at, fn in sorted(events, key=lambda e: e[0]):
                left = t0 + at - time.time()
                if left > 0:
                    time.sleep(left)
                fn()
        finally:
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        publish_s = time.time() - t0
        self.published = sum(published)
        self.planned = per_user * len(self.users)
        self.failed_publishes = failed

        # Wait until every device has every accepted seq.
        want = {(d["user"], d["device"]): set(accepted[d["user"]]) for d in self.devices}
        have = {key: set() for key in want}
        for r in self.log.records:
            if r["ev"] == "msg":
                have[(r["u"], r["d"])].add(r["seq"])
        deadline = time.time() + COMPLETE_TIMEOUT
        while True:
            for r in self.log.poll():
                if r["ev"] == "msg":
                    have[(r["u"], r["d"])].add(r["seq"])
            if all(want[k] <= have[k] for k in want) or time.time() > deadline:
                break
            self.assertIsNone(self.client.poll(), "client exited: " + self.client_tail())
            time.sleep(0.1)
        complete_s = time.time() - t0
        time.sleep(0.3)  # redeliveries in flight show up as transport duplicates, not as app deliveries
        self.server_metrics = metrics(self.server)
        self.stop_client()
        self.timing = (publish_s, complete_s)
        return accepted

    def check_and_report(self, name, accepted, extra=None):
        by_dev = {(d["user"], d["device"]): [] for d in self.devices}
        welcomes = {key: [] for key in by_dev}
        stats = {}
        transport_dups = 0
        for r in self.log.records:
            key = (r.get("u"), r.get("d"))
            if r["ev"] == "msg":
                by_dev[key].append(r)
            elif r["ev"] == "welcome":
                welcomes[key].append(r)
            elif r["ev"] == "dup":
                transport_dups += 1
            elif r["ev"] == "stats":
                stats[key] = r
        latencies = sorted(r["rx"] - r["ts"] for msgs in by_dev.values() for r in msgs)
        expected_deliveries = sum(len(accepted[u]) for (u, _d) in by_dev)
        delivered = sum(len(m) for m in by_dev.values())
        lost = 0
        app_dups = 0
        problems = []
        for key, msgs in sorted(by_dev.items()):
            user = key[0]
            seqs = [r["seq"] for r in msgs]
            want = sorted(accepted[user])
            missing = sorted(set(want) - set(seqs))
            lost += len(missing)
            app_dups += len(seqs) - len(set(seqs))
            if missing:
                problems.append("%s/%s missing %d seqs, first %s" % (key[0], key[1], len(missing), missing[:5]))
            if seqs != sorted(set(seqs)):
                problems.append("%s/%s: not in seq order or duplicated: %s" % (key[0], key[1], seqs[:50]))
            if not self.failed_publishes and set(seqs) - set(want):
                problems.append("%s/%s got seqs never accepted: %s" % (key[0], key[1], sorted(set(seqs) - set(want))[:5]))
            for r in msgs:
                if r["seq"] in accepted[user] and r["i"] != accepted[user][r["seq"]]:
                    problems.append("%s/%s seq %d carries i=%s, published i=%s" % (
                        key[0], key[1], r["seq"], r["i"], accepted[user][r["seq"]]))
                    break
            for w in welcomes[key]:
                if not w["recovered"]:
                    problems.append("%s/%s welcome with recovered=false: %s" % (key[0], key[1], w))
                if w["conn"] > 1 and w["resume_from"] != w["last_seq"] + 1:
                    problems.append("%s/%s resumed at %s after last_seq %s" % (key[0], key[1], w["resume_from"], w["last_seq"]))
        reconnects = sum(max(0, len(w) - 1) for w in welcomes.values())
        m = self.server_metrics
        closes = {k[len('herald_connections_closed_total{reason="'):-2]: int(v)
                  for k, v in m.items() if k.startswith("herald_connections_closed_total{")}
        report = {
            "scenario": name,
            "users": len(self.users), "devices": len(self.devices),
            "planned": self.planned, "published": self.published,
            "accepted_200": sum(len(a) for a in accepted.values()),
            "failed_publishes": len(self.failed_publishes),
            "expected_deliveries": expected_deliveries, "delivered_to_app": delivered,
            "lost": lost, "duplicates_delivered_to_app": app_dups,
            "duplicates_dropped_by_seq": transport_dups,
            "reconnects": reconnects,
            "failed_connects": sum(st.get("connect_failures", 0) for st in stats.values()),
            "latency_ms": {"p50": round(percentile(latencies, 50)), "p90": round(percentile(latencies, 90)),
                           "p99": round(percentile(latencies, 99)), "max": round(latencies[-1]) if latencies else None},
            "publish_s": round(self.timing[0], 1), "all_delivered_after_s": round(self.timing[1], 1),
            "server": {"redelivered": int(m.get("herald_messages_redelivered_total", 0)),
                       "ack_timeouts": int(m.get("herald_ack_timeouts_total", 0)), "closed": closes},
        }
        report.update(extra or {})
        print("\nLOSSY-NETWORK REPORT " + json.dumps(report), flush=True)
        print("  %s: %d published, %d accepted, %d deliveries to %d devices, lost %d, duplicates delivered %d "
              "(%d dropped by seq), %d reconnects; latency ms p50 %s p90 %s p99 %s max %s"
              % (name, report["published"], report["accepted_200"], delivered, len(self.devices), lost, app_dups,
                 transport_dups, reconnects, *report["latency_ms"].values()), flush=True)
        tail = self.client_tail()
        if tail:
            print("  client output (last 3000 characters):\n" + tail, flush=True)
        self.assertEqual(self.failed_publishes, [], "publishes not answered 200 (over loopback)")
        self.assertFalse(problems, "\n".join(problems[:30]) + "\nclient log:\n" + self.client_tail()
                         + "\nserver log:\n" + self.server.logs())
        self.assertEqual(delivered, expected_deliveries)
        return report

    # ---- the scenarios
    def test_random_loss_10_percent_both_ways(self):
        self.link.impair("numgen random mod 100 < 10", "dropped")
        accepted = self.run_scenario(per_user=200, duration=15, server_env=FAST_ACKS)
        c = self.link.counters()
        self.check_and_report("10% random loss both ways", accepted, {"packets": {
            "to_client": c.get("in_all"), "dropped_to_client": c.get("in_dropped"),
            "from_client": c.get("out_all"), "dropped_from_client": c.get("out_dropped")}})

    def test_rate_limited_link(self):
        self.link.shape("256kbit", "4kb", "300ms")
        accepted = self.run_scenario(per_user=60, duration=12)
        self.check_and_report("tbf 256kbit each way, about twice the load it carries", accepted, {"tbf": self.link.shaper_stats()})

    def test_partition_longer_than_the_idle_timeout(self):
        counted = {}

        def partition():
            counted["partitioned_ms"] = time.time() * 1000
            self.link.impair("meta nfproto ipv4", "partition")

        def heal():
            counted.update(self.link.counters())
            counted["healed_ms"] = time.time() * 1000  # before: a device may be back before nft returns
            self.link.impair(None, "")

        partition_s = 8.0
        accepted = self.run_scenario(per_user=150, duration=16,
                                     events=[(4.0, partition), (4.0 + partition_s, heal)])
        back = {}  # device -> s from the heal to its first welcome after it
        for r in self.log.records:
            if r["ev"] == "welcome" and r["t"] > counted["healed_ms"]:
                back.setdefault((r["u"], r["d"]), (r["t"] - counted["healed_ms"]) / 1000)
        back_s = sorted(back.values())
        report = self.check_and_report("partition of %.0f s (idle timeout %d ms)" % (partition_s, LIVENESS["HERALD_IDLE_TIMEOUT_MS"]),
                                       accepted, {"partition_s": partition_s, "back_after_heal_s": {
                                           "devices": len(back_s), "p50": round(percentile(back_s, 50), 2),
                                           "max": round(back_s[-1], 2) if back_s else None}, "packets": {
                                           "dropped_to_client": counted.get("in_partition"),
                                           "dropped_from_client": counted.get("out_partition")}})
        # Every device came back after the heal, and the server closed as
        # unresponsive (4008) every connection that was open when the
        # partition began (all 30, unless one was between connections).
        self.assertEqual(sorted(back), sorted((d["user"], d["device"]) for d in self.devices))
        open_at_partition = set()
        for r in self.log.records:
            if r.get("t", float("inf")) >= counted["partitioned_ms"]:
                continue
            if r["ev"] == "welcome":
                open_at_partition.add((r["u"], r["d"]))
            elif r["ev"] == "closed":
                open_at_partition.discard((r["u"], r["d"]))
        self.assertGreaterEqual(report["server"]["closed"].get("unresponsive", 0), len(open_at_partition),
                                "the server should have closed every partitioned connection (4008)")


if __name__ == "__main__":
    missing = [name for name in ("ip", "tc", "nft") if tool(name) is None]
    if missing:
        print("FAIL: %s missing: run scripts/setup.sh --test (packages iproute2, nftables)" % ", ".join(missing))
        sys.exit(1)
    why = netns_unavailable()
    if why:
        print("SKIPPED: " + why)
        sys.exit(SKIP_CODE)
    unittest.main(verbosity=2)
