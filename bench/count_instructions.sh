#!/usr/bin/env bash
# Instructions per Ledger pair and per cache-hit pair, counted by callgrind:
# each workload runs COUNT and 2*COUNT pairs, and the difference over COUNT
# cancels the setup. Stable across runs, unlike timings on a shared machine.
# usage: bench/count_instructions.sh [BUILD_DIR] [COUNT]   (default build-rel, 100000)
set -euo pipefail
build=${1:-build-rel}
count=${2:-100000}
pairs="$build/bench/oomguard_pairs"
[ -x "$pairs" ] || { echo "no $pairs: cmake --build $build --target oomguard_pairs" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$pairs" "$@" 2>&1 |
    awk '/Collected :/ {print $4} /I *refs:/ {gsub(",", "", $4); print $4}' | tail -n 1
}
per_pair() {  # workload args before the count
  local one two
  one=$(instructions "$@" "$count")
  two=$(instructions "$@" $((2 * count)))
  echo $(((two - one) / count))
}
echo "Ledger record+release pair:        $(per_pair ledger) instructions"
echo "cache-hit pair, 1,000 live:        $(per_pair cache 1000) instructions"
echo "cache-hit pair, 10,000 live:       $(per_pair cache 10000) instructions"
