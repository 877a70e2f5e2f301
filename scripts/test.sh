#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds Herald with
# warnings as errors, fuzzes the parsers of outside input for a bounded time
# (scripts/fuzz.sh), runs every test under ASan+UBSan (scripts/sanitize.sh),
# then every test (unit, contract, e2e, browser) on the ci build with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache hits across clones in other folders (CI clones anew each run).
export CCACHE_BASEDIR="$PWD"
bash scripts/setup.sh --test
# JavaScript SDK and browser-test dependencies (exact versions from the
# package-lock.json files; playwright-core drives Debian's chromium, it
# downloads no browser).
(cd clients/js && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# Every parser of outside input under libFuzzer for a bounded time.
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" bash scripts/fuzz.sh
# The whole suite under ASan+UBSan (any report fails its test). TSan runs
# by hand for now: scripts/sanitize.sh tsan (docs/threading.md).
bash scripts/sanitize.sh asan
# Last, so that CTest's summary closes the output: the suite on the ci build.
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j"$(nproc)"
