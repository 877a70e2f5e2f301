#!/usr/bin/env bash
# Herald side by side with Mosquitto and NATS JetStream, in one run on this
# machine (docs/benchmarks.md "Side by side"): installs the peers from
# Debian's packages, builds the release preset, then for each scenario runs
# Herald (`herald bench`, which starts its own server) and each peer (a
# fresh server started here from bench/compare/*.conf.in, loaded by
# `herald-compare`), and prints the figures and ratios (report.py), with a
# plot of latency percentiles against offered load.
#
#   bench/compare/run.sh                        # everything, defaults below
#   SCENARIOS=fanout RATES=2000,10000 bench/compare/run.sh
#   LINGER_MS=0 SCENARIOS=fanout bench/compare/run.sh      # Herald: one publish request per message
#   PEERS="herald mosquitto" CONNECTIONS=2000 DURATION=5 bench/compare/run.sh
#   SCENARIOS=connect PEERS="herald mosquitto" HOLD=15 bench/compare/run.sh  # 15 s idle for every peer
#   SKIP_SETUP=1 HERALD_BIN=... COMPARE_BIN=... bench/compare/run.sh   # binaries already built
#
# Results: $OUT (default build/compare/<time>): one JSON file per run,
# report.txt, latency.svg, and each peer server's log.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCENARIOS="${SCENARIOS:-fanout connect}"
PEERS="${PEERS:-herald mosquitto nats}"
CONNECTIONS="${CONNECTIONS:-10000}"   # fanout devices
RATES="${RATES:-2000,10000,20000}"    # fanout messages per second, one run each
DURATION="${DURATION:-15}"            # fanout seconds measured per rate
WARMUP="${WARMUP:-3}"
# Herald's publishers send what falls due within LINGER_MS as one batch
# request, as a producer with a linger does; the MQTT publishers keep 100
# QoS 1 publishes in flight each instead. 0: one request per message.
LINGER_MS="${LINGER_MS:-1}"
IDLE="${IDLE:-19000}"                 # connect: idle connections
HOLD="${HOLD:-5}"                     # connect: seconds idle before memory is read, every peer
PRESET="${PRESET:-release}"
OUT="${OUT:-build/compare/$(date +%Y%m%d-%H%M%S)}"

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh --bench
  cmake --preset "$PRESET" >/dev/null
  cmake --build --preset "$PRESET" --target herald herald-compare
fi
HERALD="${HERALD_BIN:-build/$PRESET/apps/herald/herald}"
COMPARE="${COMPARE_BIN:-build/$PRESET/bench/compare/herald-compare}"
mkdir -p "$OUT"
ulimit -n 20000  # 19k connections in one server process

peer_pid=""
stop_peer() {
  if [ -n "$peer_pid" ]; then
    kill "$peer_pid" 2>/dev/null || true
    wait "$peer_pid" 2>/dev/null || true
    peer_pid=""
  fi
}
trap stop_peer EXIT

# start_peer <mosquitto|nats> <run name>: a fresh server in $OUT/<run>/ on a
# free port; sets peer_pid and peer_port.
start_peer() {
  local peer=$1 dir="$OUT/$2"
  rm -rf "$dir" && mkdir -p "$dir/data"
  peer_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -e "s/@PORT@/$peer_port/" -e "s#@DIR@#$(cd "$dir/data" && pwd)#" "bench/compare/$peer.conf.in" > "$dir/$peer.conf"
  case "$peer" in
    mosquitto) mosquitto -c "$dir/$peer.conf" > "$dir/server.log" 2>&1 & ;;
    nats) nats-server -c "$dir/$peer.conf" > "$dir/server.log" 2>&1 & ;;
  esac
  peer_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$peer_port") 2>/dev/null; then return 0; fi
    kill -0 "$peer_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "compare: $peer did not start; its log:" >&2
  cat "$dir/server.log" >&2
  exit 1
}

for scenario in $SCENARIOS; do
  for peer in $PEERS; do
    echo "==> $scenario: $peer" >&2
    json="$OUT/$scenario-$peer.json"
    case "$scenario/$peer" in
      fanout/herald)
        "$HERALD" bench --json "$json" fanout --connections "$CONNECTIONS" --rate "$RATES" \
          --duration "$DURATION" --warmup "$WARMUP" --linger-ms "$LINGER_MS" --sync batch ;;
      connect/herald)
        "$HERALD" bench --json "$json" connect --connections "$IDLE" --hold "$HOLD" --sync batch ;;
      fanout/*)
        start_peer "$peer" "$scenario-$peer"
        "$COMPARE" "$peer" --port "$peer_port" --pid "$peer_pid" --json "$json" fanout \
          --connections "$CONNECTIONS" --rate "$RATES" --duration "$DURATION" --warmup "$WARMUP"
        stop_peer ;;
      connect/*)
        start_peer "$peer" "$scenario-$peer"
        "$COMPARE" "$peer" --port "$peer_port" --pid "$peer_pid" --json "$json" connect --connections "$IDLE" --hold "$HOLD"
        stop_peer ;;
      *) echo "compare: unknown scenario/peer $scenario/$peer" >&2; exit 2 ;;
    esac
  done
done

python3 bench/compare/report.py --svg "$OUT/latency.svg" "$OUT"/*.json | tee "$OUT/report.txt"
echo "compare: results in $OUT" >&2
