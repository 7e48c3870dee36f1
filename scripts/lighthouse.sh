#!/usr/bin/env bash
# Lighthouse 12.2.3 (mobile, default throttling) on `/`, a finished batch's
# page and New batch of a signed-in release server, plus transfer sizes
# cold and warm and the WASM sizes. Part of `make bench`; alone:
# `make lighthouse` (after `make build`). Writes target/bench/lighthouse/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --bench
bin=target/release/batchboard
[ -x "$bin" ] || { echo "lighthouse: no release build; run make build first" >&2; exit 1; }
out=target/bench/lighthouse
mkdir -p "$out"
data=$(mktemp -d)
port=${LIGHTHOUSE_PORT:-3390}
password=lighthouse-password-not-secret
printf '%s\n' "$password" | "$bin" user add lh --role operator --password-stdin --data-dir "$data" >/dev/null
echo "lighthouse: release server on 127.0.0.1:$port (data in $data)"
RUST_LOG=warn "$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" --site-root target/site \
  --sandbox-rps 200 --sandbox-validation-ms 100 --sandbox-finalizing-ms 100 --watch-interval-ms 500 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
node end2end/bench/lighthouse.mjs "http://127.0.0.1:$port" lh "$password" "$out" target/site/pkg
