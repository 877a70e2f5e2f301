#!/usr/bin/env bash
# Sets everything up on a fresh Debian 12 machine, builds Herald with
# warnings as errors, fuzzes the parsers of outside input for a bounded time
# (scripts/fuzz.sh), runs every test under ASan+UBSan and all but the soak,
# the lossy network and the browser pages under TSan (scripts/sanitize.sh),
# then every test on the ci build with CTest.
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
# The whole suite under ASan+UBSan (any report fails its test).
bash scripts/sanitize.sh asan
# The threaded code under TSan: every test but the soak, the lossy network
# and the browser pages, which ASan runs (docs/threading.md).
HERALD_CTEST_ARGS="-LE soak|network|browser" bash scripts/sanitize.sh tsan
# Last, so that CTest's summary closes the output: the suite on the ci build.
cmake --preset ci >/dev/null
cmake --build --preset ci
ctest --preset ci -j"$(nproc)"
