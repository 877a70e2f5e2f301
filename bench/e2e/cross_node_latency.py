"""Publish-to-client latency across nodes sharing one Redis, against one node.

Usage: HERALD_BIN=build/release/apps/herald/herald /usr/bin/python3 bench/e2e/cross_node_latency.py [N]

Starts a redis-server (appendonly yes, appendfsync always) and herald nodes
on the redis store, connects one device to node b, publishes N messages one
at a time on node a (cross-node) or on b itself (same node), and prints the
P50/P99 of publish request start to message receipt, and the throughput of
batch publishes of 1000 messages spread over 1000 users: on one node, and
from three publishers at once, one per node. Then the same on a single
node with a Redis of its own, for comparison.
"""
import asyncio
import json
import os
import sys
import threading
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


def publish_batches(node, prefix, batches=10):
    for b in range(batches):
        msgs = [{"user": "%s%d" % (prefix, i), "data": {"b": b}} for i in range(1000)]
        status, res, _ = node.request("POST", "/v1/publish/batch", {"messages": msgs})
        assert status == 200, res


def throughput(nodes):
    """Messages per second with one publisher per node, all at once."""
    threads = [threading.Thread(target=publish_batches, args=(n, "t%d-" % k)) for k, n in enumerate(nodes)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 10000 * len(nodes) / (time.perf_counter() - t0)


def cluster(names):
    redis = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    nodes = []
    try:
        for name in names:
            nodes.append(Server(HERALD_STORE="redis", HERALD_REDIS_URL=redis.url, HERALD_NODE_ID=name,
                                HERALD_LOG_LEVEL="warn").start())
        time.sleep(0.5)  # subscriptions
        yield redis, nodes
    finally:
        for n in nodes:
            n.cleanup()
        redis.cleanup()


def report(label, d):
    print("%-34s p50 %.2f ms  p99 %.2f ms  (n=%d)" % (label, percentile(d, 0.5), percentile(d, 0.99), N))


def main():
    for _, (a, b, c) in cluster(("a", "b", "c")):
        report("3 nodes, same node (b -> b)", measure(b, b))
        report("3 nodes, cross node (a -> b)", measure(a, b))
        print("3 nodes, batch publishes on a: %.0f msg/s" % throughput([a]))
        print("3 nodes, batch publishes on a, b, c at once: %.0f msg/s" % throughput([a, b, c]))
    for _, (only,) in cluster(("solo",)):
        report("1 node", measure(only, only))
        print("1 node, batch publishes: %.0f msg/s" % throughput([only]))
        print("1 node, 3 batch publishers at once: %.0f msg/s" % throughput([only, only, only]))


if __name__ == "__main__":
    main()
