#!/usr/bin/env bash
# Installs everything Herald needs to build and test on Debian 12, as root.
# Idempotent: packages already present are skipped by apt.
#   --test   also what only the tests need: clang and its fuzzer runtime,
#            Debian's chromium for the browser tests (scripts/test.sh),
#            ip, tc and nft for the lossy-network test, and the peers of
#            bench/compare (mosquitto, nats-server) for its smoke test;
#            running the server (scripts/run.sh) needs none of them.
#   --bench  the peers of bench/compare/run.sh (mosquitto, nats-server).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libboost-system1.81-dev
  librocksdb-dev libhiredis-dev libssl-dev libjemalloc-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libmosquitto-dev libnats-dev libevent-dev
  python3 python3-websockets
  redis-server redis-tools
  curl
)
if [ "${1:-}" = "--test" ]; then
  packages+=(clang libclang-rt-14-dev chromium iproute2 nftables mosquitto nats-server)
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(mosquitto nats-server)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all build and test dependencies present"
