#!/usr/bin/env bash
# Builds the libFuzzer targets (preset fuzz: clang, ASan+UBSan) and runs each
# for a bounded time from its seed corpus. A crash, leak or broken property
# fails the run; the input is kept in build/fuzz/artifacts/<target>/, to be
# added under fuzz/regressions/<target>/ with the fix.
#   FUZZ_SECONDS   seconds per target (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
command -v clang++ >/dev/null || { echo "fuzz: clang++ is needed (scripts/setup.sh installs it)" >&2; exit 1; }
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
status=0
for bin in build/fuzz/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  t="${bin##*/fuzz_}"
  work="build/fuzz/corpus/$t"
  artifacts="build/fuzz/artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  echo "fuzz: $t for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$artifacts" -print_final_stats=1 \
        "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" > "build/fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (log: build/fuzz/$t.log, input in $artifacts)" >&2
    tail -40 "build/fuzz/$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "build/fuzz/$t.log" | tail -2 | sed "s/^/fuzz: $t: /"
  fi
done
[ $status -eq 0 ] && echo "fuzz: every target ran ${seconds}s without a crash"
exit $status
