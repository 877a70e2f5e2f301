"""`herald bench connect` and `herald bench storm`, small: the worker
processes start, every client connects from its loopback address, the
report has its fields, and a restart under the clients loses nothing.
"""
import json
import os
import subprocess
import tempfile
import unittest

HERALD = os.environ.get("HERALD_BIN", os.path.join(os.path.dirname(__file__), "../../build/dev/apps/herald/herald"))


def bench(*args, server_env=(), timeout=240):  # generous: the sanitizer builds are several times slower
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        env_args = [a for kv in server_env for a in ("--server-env", kv)]
        proc = subprocess.run([HERALD, "bench", "--json", out, *env_args, *args], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"herald bench {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}")
        with open(out) as f:
            rows = json.load(f)
    assert len(rows) == 1, rows
    return rows[0], proc.stderr


class BenchFleet(unittest.TestCase):
    def test_connect_opens_every_connection_and_reports_memory(self):
        row, err = bench("connect", "--connections", "200", "--per-worker", "80", "--rate", "1000",
                         "--warmup-connections", "20", "--hold", "0.5")
        self.assertEqual(row["scenario"], "connect")
        self.assertEqual(row["params"]["workers"], "3", err)
        v = row["values"]
        self.assertEqual(v["open_connections"], 200, err)
        self.assertEqual(v["server_connections"], 200, err)
        for key in ("connect_rate_per_s", "server_rss_mib", "rss_bytes_per_connection", "anon_bytes_per_connection",
                    "kernel_tcp_mem_bytes_per_connection", "kernel_slab_bytes_per_connection", "server_fds"):
            self.assertIn(key, v)
        self.assertGreater(v["connect_rate_per_s"], 0)
        self.assertGreaterEqual(v["server_fds"], 200)
        self.assertEqual(row["latency"]["connect -> welcome"]["count"], 200)

    def test_a_run_that_measured_nothing_fails_instead_of_reporting_zeros(self):
        proc = subprocess.run([HERALD, "bench", "--url", "http://127.0.0.1:1", "--api-key", "k", "--secret", "s",
                               "durable", "--sync", "none", "--publishers", "1", "--duration", "0.5"],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("no publish was accepted", proc.stderr)

    def check_storm(self, *extra):
        row, err = bench("storm", "--connections", "200", "--per-worker", "100", "--rate", "1000",
                         "--messages-before", "2", "--messages-after", "3", "--timeout", "60", *extra,
                         server_env=["HERALD_DRAIN_RETRY_AFTER_MS=1000"])
        self.assertEqual(row["scenario"], "storm")
        v = row["values"]
        self.assertEqual(v["clients"], 200, err)
        self.assertEqual(v["resumed"], 200, err)
        self.assertEqual(v["messages_expected"], 1000)
        self.assertEqual(v["lost"], 0, err)
        self.assertEqual(v["duplicates"], 0, err)
        self.assertEqual(v["publish_failures"], 0, err)
        self.assertGreater(v["all_resumed_s"], 0)
        self.assertGreater(v["all_received_s"], 0)
        self.assertEqual(row["latency"]["ready -> welcome"]["count"], 200)
        self.assertEqual(row["latency"]["ready -> all messages"]["count"], 200)

    def test_storm_after_sigterm_loses_nothing(self):
        self.check_storm()

    def test_storm_after_sigkill_loses_nothing(self):
        self.check_storm("--kill")


if __name__ == "__main__":
    unittest.main()
