#!/usr/bin/env bash
# The benchmark suite (not part of `make test`): release build, then every
# benchmark, then one summary table in markdown. Takes about 15 minutes on
# 2 cores after the build, and the 30-minute soak after that. `make bench`
# runs it.
#
#   BENCH_WINDOW_SECS  fan-out window per row (default 15)
#   BENCH_SOAK_SECS    length of the soak (default 1800; 0: no soak)
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
# The soak's 500 streams and the streams part's 3,000 each take a socket
# on both ends.
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 8192 ] || ulimit -n 8192 2>/dev/null || true
: > "$log"
run() { echo "bench: $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log" | grep -v '^summary: ' || true; }
run cargo bench -p batchboard --bench suite
BENCH_VIEWERS=1,500 BENCH_WINDOW_SECS="${BENCH_WINDOW_SECS:-15}" \
  run cargo bench -p batchboard --bench live
run cargo bench -p batchboard --bench validator
run scripts/lighthouse.sh
# Last, and the longest: the soak (30 minutes unless BENCH_SOAK_SECS says
# otherwise; 0 leaves it out).
soak_secs=${BENCH_SOAK_SECS:-1800}
if [ "$soak_secs" != 0 ]; then
  BENCH_ONLY=soak BENCH_SOAK_SECS=$soak_secs run cargo bench -p batchboard --bench suite
fi
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
