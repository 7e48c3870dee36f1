# The README's two commands. Both bootstrap first (installing only what is missing).
.PHONY: run test build bootstrap bench soak bench-live bench-validator lighthouse

# Build in release mode and serve the dashboard at http://127.0.0.1:3000.
run: build
	LEPTOS_SITE_ROOT=target/site ./target/release/batchboard serve

build: bootstrap
	LEPTOS_OUTPUT_NAME=batchboard cargo leptos build --release --precompress --split

# Formatting, lints (server and browser builds), Rust tests and browser tests.
test:
	scripts/test.sh

bootstrap:
	scripts/bootstrap.sh

# The benchmark suite (not part of the tests): release build, every
# benchmark, and the README's summary table (target/bench/summary-table.md).
bench:
	scripts/bench.sh

# Load and soak: 500 live viewers and page traffic for 5 minutes, memory sampled.
soak:
	scripts/soak.sh

# Index queries and event fan-out only (1, 10, 100, 500 viewers).
bench-live: bootstrap
	LEPTOS_OUTPUT_NAME=batchboard cargo bench -p batchboard --bench live

# Validator throughput: native, Python json.loads, and WASM in headless
# Chromium (needs the release site, which this builds).
bench-validator: build
	LEPTOS_OUTPUT_NAME=batchboard cargo bench -p batchboard --bench validator

# Lighthouse on three pages of a signed-in release server, transfer sizes
# cold and warm, WASM sizes (target/bench/lighthouse/summary.md).
lighthouse: build
	scripts/lighthouse.sh
