"""bench/compare/run.sh, small: the one command starts Mosquitto and
nats-server from their packages, runs the fanout and connect scenarios
against them and against Herald, and reports them side by side. Checks that
every peer was really measured (every accepted message reached its device,
every idle connection opened) and that the table and the plot are written.
"""
import glob
import json
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.join(os.path.dirname(__file__), "../..")
HERALD = os.environ.get("HERALD_BIN", os.path.join(ROOT, "build/dev/apps/herald/herald"))
COMPARE = os.environ.get("COMPARE_BIN", os.path.join(ROOT, "build/dev/bench/compare/herald-compare"))


def tail(path, n=2000):
    with open(path, errors="replace") as f:
        return path + ":\n" + f.read()[-n:]


class BenchCompare(unittest.TestCase):
    def test_every_peer_is_measured_and_reported(self):
        with tempfile.TemporaryDirectory() as out:
            env = dict(os.environ, SKIP_SETUP="1", HERALD_BIN=HERALD, COMPARE_BIN=COMPARE, OUT=out,
                       CONNECTIONS="100", RATES="200,400", DURATION="1", WARMUP="0.5", IDLE="200")
            proc = subprocess.run(["bash", os.path.join(ROOT, "bench/compare/run.sh")], env=env,
                                  capture_output=True, text=True, timeout=400)
            logs = "\n".join(tail(p) for p in glob.glob(out + "/*/server.log"))
            self.assertEqual(proc.returncode, 0, proc.stderr[-4000:] + proc.stdout + logs)

            for peer in ("herald", "mosquitto", "nats"):
                with open(os.path.join(out, "fanout-%s.json" % peer)) as f:
                    rows = json.load(f)
                self.assertEqual([r["params"]["rate"] for r in rows], ["200", "400"], peer)
                for r in rows:
                    v = r["values"]
                    self.assertEqual(v["open_connections"], 100, (peer, v))
                    self.assertGreater(v["accepted"], 0, (peer, v))
                    self.assertEqual(v["missing"], 0, (peer, v))
                    self.assertEqual(v["received"], v["expected_deliveries"], (peer, v))
                    self.assertGreater(r["latency"]["publish -> client"]["count"], 0, (peer, r))
                with open(os.path.join(out, "connect-%s.json" % peer)) as f:
                    (row,) = json.load(f)
                v = row["values"]
                self.assertEqual(v["open_connections"], 200, (peer, v))
                self.assertIn("rss_bytes_per_connection", v, peer)
                self.assertIn("kernel_tcp_mem_bytes_per_connection", v, peer)

            with open(os.path.join(out, "report.txt")) as f:
                report = f.read()
            for peer in ("herald", "mosquitto", "nats"):
                self.assertIn(peer, report)
            with open(os.path.join(out, "latency.svg")) as f:
                self.assertIn("<polyline", f.read())


if __name__ == "__main__":
    unittest.main()
