#!/usr/bin/env bash
# Load and soak (not part of `make test`): a release server with 10,000
# indexed batches, 3 batches running, 500 live viewers (SSE) and page
# traffic from wrk, memory sampled every 10 s. Prints the samples and
# whether memory stayed flat.
#
#   BENCH_SOAK_SECS     how long (default 300)
#   BENCH_SOAK_VIEWERS  open event streams (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --bench
export LEPTOS_OUTPUT_NAME=batchboard
ulimit -n 8192 2>/dev/null || true
BENCH_ONLY=soak cargo bench -p batchboard --bench suite
