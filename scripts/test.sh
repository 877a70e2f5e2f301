#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds Herald with
# warnings as errors, and runs every test (unit, contract, e2e) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# JavaScript SDK dependencies (exact versions from package-lock.json).
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j"$(nproc)"
