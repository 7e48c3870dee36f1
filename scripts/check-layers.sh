#!/usr/bin/env bash
# Each crate's doc says what it must never depend on; this checks it from
# cargo's own dependency graph, so that a layer cannot quietly grow a
# dependency on one above it (or core on a runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deps() { cargo tree --offline -e normal --prefix none "$@" | awk '{print $1}' | sort -u; }
refuse() {
  local crate=$1 pattern=$2; shift 2
  local all found
  all=$(deps "$@")
  found=$(grep -E "^($pattern)$" <<<"$all" || true)
  if [ -n "$found" ]; then
    echo "layers: $crate must not depend on: $(echo $found)"
    fail=1
  else
    echo "layers: $crate: ok"
  fi
}

refuse batchboard-core 'tokio|reqwest|sqlx|axum|leptos|leptos_axum|hyper|batchboard|batchboard-(upstream|sandbox|server|app)' -p batchboard-core
refuse batchboard-upstream 'batchboard-sandbox|batchboard-server|batchboard-app|sqlx|axum|leptos' -p batchboard-upstream
refuse batchboard-sandbox 'batchboard-upstream|batchboard-server|batchboard-app|sqlx|leptos' -p batchboard-sandbox
refuse batchboard-server 'batchboard-app|batchboard' -p batchboard-server
refuse 'batchboard-app (browser)' 'batchboard-server|batchboard-upstream|batchboard-sandbox|tokio|sqlx|axum|reqwest|leptos_axum' \
  -p batchboard-app --target wasm32-unknown-unknown --no-default-features --features hydrate
exit $fail
