#!/usr/bin/env bash
# Builds and tests Herald under the sanitizers: for each preset (asan =
# ASan+UBSan, tsan = TSan; default both, in that order) configure, build and
# run every CTest test. Exits non-zero if any step of any preset failed; a
# failing preset does not stop the next one, so one CI run reports both.
#
#   scripts/sanitize.sh            # asan, then tsan
#   scripts/sanitize.sh tsan       # one preset
#   JOBS=4 scripts/sanitize.sh     # build and test parallelism (default: nproc)
#   HERALD_CTEST_ARGS="-LE soak" scripts/sanitize.sh tsan   # more ctest arguments
#
# A sanitizer report fails the test that caused it: test binaries exit
# non-zero, and the e2e harnesses fail on any report from the herald server
# (docs/threading.md "Sanitizers"). Copies of the server's reports are kept
# in build/<preset>/sanitizer-reports for CI to upload.
#
# Expects the machine set up by scripts/setup.sh (compilers, libraries,
# python3-websockets); it does not run it.
set -uo pipefail
cd "$(dirname "$0")/.."

presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(asan tsan)
jobs="${JOBS:-$(nproc)}"

failed=()
summary=()

step() {  # step <preset> <name> <command...>: runs it timed, records failure
  local preset=$1 name=$2
  shift 2
  local start=$SECONDS
  echo "==> [$preset] $name: $*"
  "$@"
  local rc=$?
  local took=$((SECONDS - start))
  summary+=("$(printf '%-5s %-10s %5ds  %s' "$preset" "$name" "$took" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  [ $rc -eq 0 ] || failed+=("$preset $name")
  return $rc
}

for preset in "${presets[@]}"; do
  case "$preset" in
    asan|tsan) ;;
    *) echo "sanitize.sh: unknown preset '$preset' (asan, tsan)" >&2; exit 2 ;;
  esac
  step "$preset" configure cmake --preset "$preset" || continue
  step "$preset" build cmake --build --preset "$preset" -j "$jobs" || continue
  rm -rf "build/$preset/sanitizer-reports"
  # shellcheck disable=SC2086 # HERALD_CTEST_ARGS is a list of ctest arguments
  step "$preset" test ctest --preset "$preset" -j "$jobs" ${HERALD_CTEST_ARGS:-}
  # The test presets retry a failed test once (a timing flake on a loaded
  # 2-core machine), but a sanitizer report is a bug even when the retry
  # passed: any report in any attempt fails the preset.
  if [ -n "$(ls -A "build/$preset/sanitizer-reports" 2>/dev/null)" ] ||
     grep -Eq 'runtime error: |^==[0-9]+==ERROR: |^WARNING: ThreadSanitizer|^SUMMARY: [A-Za-z]+Sanitizer' \
       "build/$preset/Testing/Temporary/LastTest.log" 2>/dev/null; then
    echo "==> [$preset] sanitizer reports (kept in build/$preset/sanitizer-reports and build/$preset/Testing/Temporary/LastTest.log):"
    ls -1 "build/$preset/sanitizer-reports" 2>/dev/null
    grep -E -m 20 'runtime error: |^==[0-9]+==ERROR: |^WARNING: ThreadSanitizer|^SUMMARY: [A-Za-z]+Sanitizer' \
      "build/$preset/Testing/Temporary/LastTest.log"
    summary+=("$(printf '%-5s %-10s %5ds  %s' "$preset" "reports" 0 "FAILED (sanitizer report)")")
    failed+=("$preset reports")
  fi
done

echo
echo "preset step        time  result"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitize.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sanitize.sh: all passed"
