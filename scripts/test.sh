#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds Herald with
# warnings as errors, and runs every test (unit, contract, e2e, browser) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
# JavaScript SDK and browser-test dependencies (exact versions from the
# package-lock.json files; playwright-core drives Debian's chromium, it
# downloads no browser).
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j"$(nproc)"
