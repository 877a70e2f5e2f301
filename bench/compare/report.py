#!/usr/bin/env python3
"""Herald and its peers side by side, from the JSON files of `herald bench`
and `herald-compare` (bench/compare/run.sh writes them).

    report.py [--svg latency.svg] RESULTS.json...

Prints, per scenario, each peer's figures and the ratio to Herald's; with
--svg, draws publish -> client latency percentiles (P50, P99, P99.9)
against offered load for every peer, on a log scale (a dependency-free SVG).
"""
import argparse
import json
import math

PEER_ORDER = ["herald", "mosquitto", "nats"]
COLOURS = {"herald": "#1f6feb", "mosquitto": "#d1242f", "nats": "#1a7f37"}


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for row in json.load(f):
                row.setdefault("params", {}).setdefault("peer", "herald")
                rows.append(row)
    return rows


def peers_of(rows):
    found = {r["params"]["peer"] for r in rows}
    return [p for p in PEER_ORDER if p in found] + sorted(found - set(PEER_ORDER))


def lat(row, name, q):
    h = row.get("latency", {}).get(name)
    return h.get(q) if h and h.get("count") else None


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return ("%." + str(digits) + "f") % v
    return "%d" % v


def ratio(peer_value, herald_value):
    if peer_value is None or herald_value in (None, 0):
        return "-"
    return "%.1fx" % (peer_value / herald_value)


def duplicates(row):
    v = row["values"]
    # Herald's SDK drops redeliveries before the application sees them
    # (duplicates_dropped_by_sdk); a peer's duplicates reach the application.
    return v.get("duplicates", 0)


def fanout_table(rows):
    fan = [r for r in rows if r["scenario"] == "fanout"]
    if not fan:
        return []
    out = ["fanout: publish -> client latency (ms) at each offered rate; accepted = publishes the server acknowledged,",
           "failed = publishes it refused or never acknowledged; p99 vs herald = the peer's p99 / Herald's;",
           "server/loadgen us/msg = CPU per delivered message of the server and of the load generator",
           "%-10s %7s %8s %8s %8s %8s %6s %8s %8s %8s %8s %9s %10s %10s %10s" % (
               "peer", "rate", "conns", "accepted", "failed", "missing", "dups", "p50", "p90", "p99", "p99.9", "max",
               "p99 vs herald", "server", "loadgen")]
    herald = {float(r["params"]["rate"]): r for r in fan if r["params"]["peer"] == "herald"}
    for rate in sorted({float(r["params"]["rate"]) for r in fan}):
        for peer in peers_of(fan):
            for r in fan:
                if r["params"]["peer"] != peer or float(r["params"]["rate"]) != rate:
                    continue
                v = r["values"]
                p99 = lat(r, "publish -> client", "p99_ms")
                h = herald.get(rate)
                out.append("%-10s %7d %8d %8d %8d %8d %6d %8s %8s %8s %8s %9s %10s %10s %10s" % (
                    peer, rate, v.get("open_connections", 0), v.get("accepted", 0),
                    v.get("failed", 0) + v.get("refused", 0), v.get("missing", 0),
                    duplicates(r), fmt(lat(r, "publish -> client", "p50_ms")),
                    fmt(lat(r, "publish -> client", "p90_ms")), fmt(p99),
                    fmt(lat(r, "publish -> client", "p99.9_ms")), fmt(lat(r, "publish -> client", "max_ms"), 1),
                    "" if peer == "herald" else ratio(p99, lat(h, "publish -> client", "p99_ms") if h else None),
                    fmt(v.get("server_cpu_us_per_msg"), 1), fmt(v.get("bench_cpu_us_per_msg"), 1)))
    out.append("")
    return out


def connect_table(rows):
    con = [r for r in rows if r["scenario"] == "connect"]
    if not con:
        return []
    out = ["connect: what idle connections cost (user space over a baseline; the kernel's socket memory apart)",
           "%-10s %7s %10s %12s %12s %16s %12s %12s" % (
               "peer", "open", "conn/s", "RSS B/conn", "anon B/conn", "kernel slab B/conn", "RSS MiB", "vs herald")]
    herald = next((r for r in con if r["params"]["peer"] == "herald"), None)
    for peer in peers_of(con):
        for r in con:
            if r["params"]["peer"] != peer:
                continue
            v = r["values"]
            rss = v.get("rss_bytes_per_connection")
            out.append("%-10s %7d %10s %12s %12s %18s %12s %12s" % (
                peer, v.get("open_connections", 0), fmt(v.get("connect_rate_per_s"), 0), fmt(rss, 0),
                fmt(v.get("anon_bytes_per_connection"), 0), fmt(v.get("kernel_slab_bytes_per_connection"), 0),
                fmt(v.get("server_rss_mib"), 1),
                "" if peer == "herald" or herald is None else ratio(rss, herald["values"].get("rss_bytes_per_connection"))))
    out.append("")
    return out


def svg(rows, path):
    fan = [r for r in rows if r["scenario"] == "fanout"]
    quantiles = [("p50_ms", "P50", ""), ("p99_ms", "P99", "6,3"), ("p99.9_ms", "P99.9", "2,3")]
    points = {}  # (peer, q) -> [(rate, ms)]
    for r in fan:
        for q, _, _ in quantiles:
            ms = lat(r, "publish -> client", q)
            if ms:
                points.setdefault((r["params"]["peer"], q), []).append((float(r["params"]["rate"]), ms))
    if not points:
        return
    w, h, left, right, top, bottom = 740, 420, 80, 150, 30, 45
    rates = sorted({x for pts in points.values() for x, _ in pts})
    ys = [y for pts in points.values() for _, y in pts]
    ylo = 10 ** math.floor(math.log10(max(min(ys), 0.01)))
    yhi = 10 ** math.ceil(math.log10(max(ys)))
    xlo, xhi = 0, max(rates) * 1.05

    def px(x):
        return left + (w - left - right) * (x - xlo) / (xhi - xlo)

    def py(y):
        return top + (h - top - bottom) * (1 - (math.log10(y) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (w, h), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="13">fanout: publish -> client latency against offered load</text>' % left]
    decade = ylo
    while decade <= yhi * 1.0001:
        y = py(decade)
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>' % (left, w - right, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g ms</text>' % (left - 5, y + 4, decade))
        decade *= 10
    for rate in rates:
        x = px(rate)
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (x, x, top, h - bottom))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%dk</text>' % (x, h - bottom + 15, rate / 1000))
    out.append('<text x="%d" y="%d" text-anchor="middle">offered load (messages per second)</text>'
               % ((left + w - right) // 2, h - 8))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
               % (left, top, w - left - right, h - top - bottom))
    legend_y = top + 10
    for peer in peers_of(fan):
        for q, label, dash in quantiles:
            pts = sorted(points.get((peer, q), []))
            if not pts:
                continue
            colour = COLOURS.get(peer, "#555")
            out.append('<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>'
                       % (colour, dash, " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in pts)))
            for x, y in pts:
                out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), colour))
            lx = w - right + 12
            out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>'
                       % (lx, lx + 25, legend_y, legend_y, colour, dash))
            out.append('<text x="%d" y="%d">%s %s</text>' % (lx + 30, legend_y + 4, peer, label))
            legend_y += 16
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--svg", help="write the latency plot here")
    ap.add_argument("results", nargs="+")
    args = ap.parse_args()
    rows = load(args.results)
    print("\n".join(fanout_table(rows) + connect_table(rows)))
    if args.svg:
        svg(rows, args.svg)


if __name__ == "__main__":
    main()
