#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds Herald and runs it
# with its embedded defaults (RocksDB store in ./herald-data, 127.0.0.1:8080).
# Extra arguments go to `herald serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target herald
exec ./build/release/apps/herald/herald serve "$@"
