#!/usr/bin/env bash
# Everything CI checks, in the order that fails fastest. Starts what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# cargo-leptos compiles with this set; setting it for plain cargo too keeps
# one set of build artifacts instead of rebuilding leptos between steps.
export LEPTOS_OUTPUT_NAME=batchboard

started=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - started ))s] $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (server, ssr)"
cargo clippy --workspace --all-targets -- -D warnings

step "clippy (browser, hydrate on wasm32)"
cargo clippy -p batchboard-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

step "layers: no crate depends on one above it (cargo tree)"
scripts/check-layers.sh

step "cargo leptos build --split (debug server + WASM site, one chunk per page)"
cargo leptos build --split

step "Rust tests"
# The core crate on its own: its property-test dependencies (proptest, rand)
# would otherwise change the features of crates the server shares, and the
# server and its tests would be compiled a second time.
cargo test -p batchboard-core
cargo test --workspace --exclude batchboard-core

step "Playwright (headless Debian Chromium)"
cd end2end
npx playwright test
