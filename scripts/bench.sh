#!/usr/bin/env bash
# The benchmark suite (not part of `make test`): release build, then every
# benchmark, then one summary table in markdown. Takes about 15 minutes on
# 2 cores after the build. `make bench` runs it.
#
#   BENCH_WINDOW_SECS  fan-out window per row (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --bench
export LEPTOS_OUTPUT_NAME=batchboard
echo "bench: release build of server and WASM (cargo leptos build --release --precompress --split)"
cargo leptos build --release --precompress --split
out=target/bench
mkdir -p "$out"
export BENCH_SUMMARY="$PWD/$out/summary.md"
: > "$BENCH_SUMMARY"
log="$out/bench.log"
: > "$log"
run() { echo "bench: $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log" | grep -v '^summary: ' || true; }
run cargo bench -p batchboard --bench suite
BENCH_VIEWERS=1,500 BENCH_WINDOW_SECS="${BENCH_WINDOW_SECS:-15}" \
  run cargo bench -p batchboard --bench live
run cargo bench -p batchboard --bench validator
run scripts/lighthouse.sh
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo
  echo "## Benchmark summary ($(date -u +%Y-%m-%d), $(nproc) cores, ${cpu:-unknown CPU}, $(free -g | awk '/Mem:/ {print $2}') GiB)"
  echo
  echo "| what | measured | target | |"
  echo "| --- | --- | --- | --- |"
  cat "$BENCH_SUMMARY"
  echo
  echo "### In the browser (Lighthouse 12.2.3, mobile, default throttling)"
  echo
  cat "$out/lighthouse/summary.md"
} | tee "$out/summary-table.md"
echo "bench: full output in $log, table in $out/summary-table.md"
