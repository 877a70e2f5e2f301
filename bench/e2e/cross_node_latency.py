"""Publish-to-client latency across nodes sharing one Redis, against one node.

Usage: HERALD_BIN=build/release/apps/herald/herald /usr/bin/python3 bench/e2e/cross_node_latency.py [N]

Starts a redis-server (appendonly yes, appendfsync always) and herald nodes
on the redis store, connects one device to node b, publishes N messages one
at a time on node a (cross-node) or on b itself (same node), and prints the
P50/P99 of publish request start to message receipt, and the throughput of
batch publishes of 1000 messages spread over 1000 users.
"""
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/e2e"))
from harness import RedisServer, Server, recv_json, recv_type, run  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(publisher, receiver):
    async def go():
        async with receiver.connect("bench", device="d") as ws:
            await recv_json(ws)
            delays = []
            for i in range(N):
                t0 = time.perf_counter()
                publisher.publish("bench", {"i": i})
                m = await recv_type(ws, "msg")
                delays.append((time.perf_counter() - t0) * 1000)
                await ws.send(json.dumps({"type": "ack", "seq": m["seq"]}))
            return delays
    return run(go())


def throughput(node):
    t0 = time.perf_counter()
    for b in range(10):
        msgs = [{"user": "t%d" % i, "data": {"b": b}} for i in range(1000)]
        status, res, _ = node.request("POST", "/v1/publish/batch", {"messages": msgs})
        assert status == 200, res
    return 10000 / (time.perf_counter() - t0)


def main():
    redis = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    nodes = []
    try:
        for name in ("a", "b", "c"):
            nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=name,
                                HERALD_LOG_LEVEL="warn").start())
        time.sleep(0.5)  # subscriptions
        a, b, _ = nodes
        for label, pub in (("same node (b -> b)", b), ("cross node (a -> b)", a)):
            d = measure(pub, b)
            print("%-22s p50 %.2f ms  p99 %.2f ms  (n=%d)" % (label, percentile(d, 0.5), percentile(d, 0.99), N))
        print("batch publish throughput on a: %.0f msg/s" % throughput(a))
    finally:
        for n in nodes:
            n.cleanup()
        redis.cleanup()


if __name__ == "__main__":
    main()
