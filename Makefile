# The README's two commands. Both bootstrap first (installing only what is missing).
.PHONY: run test build bootstrap bench bench-validator

# Build in release mode and serve the dashboard at http://127.0.0.1:3000.
run: build
	LEPTOS_SITE_ROOT=target/site ./target/release/batchboard serve

build: bootstrap
	LEPTOS_OUTPUT_NAME=batchboard cargo leptos build --release

# Formatting, lints (server and browser builds), Rust tests and browser tests.
test:
	scripts/test.sh

bootstrap:
	scripts/bootstrap.sh

# Benchmarks (not part of the tests): prints the README's performance tables.
bench: bootstrap
	LEPTOS_OUTPUT_NAME=batchboard cargo bench --features ssr --bench live

# Validator throughput: native, Python json.loads, and WASM in headless
# Chromium (needs the release site, which this builds).
bench-validator: build
	LEPTOS_OUTPUT_NAME=batchboard cargo bench --features ssr --bench validator
