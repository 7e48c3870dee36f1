#!/usr/bin/env bash
# Installs what building, running and testing Batchboard needs, and only what
# is missing. Safe to run again and again: every step first checks.
#
#   scripts/bootstrap.sh          tools to build and run (Rust targets, cargo-leptos,
#                                 wasm-bindgen, wasm-opt)
#   scripts/bootstrap.sh --test   the above plus what the tests need (Chromium,
#                                 Playwright's npm packages, PostgreSQL)
#   scripts/bootstrap.sh --bench  the test tools plus wrk (load generator),
#                                 perf and inferno (profiles) and Lighthouse
#                                 for the benchmark and soak scripts
#
# Used by the Makefile (README commands), .ci/run and the Dockerfile.
set -euo pipefail

cd "$(dirname "$0")/.."
want_test=0
want_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_test=1; want_bench=1 ;;
    *) echo "bootstrap: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { echo "bootstrap: $*"; }
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION=0.3.10
BINARYEN_VERSION=132.0.0
OPENAI_PY_VERSION=3.57.0
ANTHROPIC_PY_VERSION=2.14.0
STANDARDWEBHOOKS_PY_VERSION=1.1.0

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@"
}

# --- Rust: the wasm32 target -------------------------------------------------
if ! command -v cargo >/dev/null; then
  say "cargo not found: install Rust (rustup) first"; exit 1
fi
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown target: present"
else
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# --- cargo-leptos ------------------------------------------------------------
have=$(cargo leptos --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$CARGO_LEPTOS_VERSION" ]; then
  say "cargo-leptos $have: present"
else
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 13 minutes on 2 cores, once)"
  cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked
fi

# --- wasm-bindgen CLI, exactly the version in Cargo.lock ---------------------
wbg=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/"/, "", $3); print $3; exit}' Cargo.lock)
if [ -z "$wbg" ]; then say "no wasm-bindgen in Cargo.lock"; exit 1; fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$wbg" ]; then
  say "wasm-bindgen $have: present (matches Cargo.lock)"
else
  say "installing wasm-bindgen-cli $wbg to match Cargo.lock (found: ${have:-none})"
  # Not --locked: the CLI's own lock names a yanked crate.
  cargo install wasm-bindgen-cli --version "$wbg" --force
fi

# --- wasm-opt (release builds), from npm's binaryen --------------------------
if ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
have=$(wasm-opt --version 2>/dev/null | grep -oE '[0-9]+' | head -1 || true)
if [ "$have" = "${BINARYEN_VERSION%%.*}" ]; then
  say "wasm-opt $have: present"
else
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
  npm install -g --no-fund --no-audit "binaryen@$BINARYEN_VERSION"
fi

if [ $want_test = 1 ]; then
  # --- Chromium for the end-to-end tests -------------------------------------
  if [ -x /usr/bin/chromium ]; then
    say "chromium: present"
  else
    apt_install chromium
  fi
  # Korean glyphs, so the Korean pages' layout tests and screenshots measure
  # real text rather than empty boxes.
  if fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    say "fonts-noto-cjk: present"
  else
    apt_install fonts-noto-cjk
  fi

  # --- PostgreSQL server binaries: tests start their own throwaway cluster --
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "postgresql: present"
  else
    apt_install postgresql
  fi

  # --- The official openai and anthropic Python SDKs, to prove the sandbox
  #     speaks their shapes (OpenAI, Azure, Anthropic dialects), and an
  #     independent Standard Webhooks implementation to sign test webhooks
  for pkg in "openai==$OPENAI_PY_VERSION" "anthropic==$ANTHROPIC_PY_VERSION" \
    "standardwebhooks==$STANDARDWEBHOOKS_PY_VERSION"; do
    name=${pkg%%==*}
    want=${pkg##*==}
    if [ "$(python3 -c "import importlib.metadata as m; print(m.version('$name'))" 2>/dev/null)" = "$want" ]; then
      say "python $name SDK $want: present"
      continue
    fi
    if ! command -v pip3 >/dev/null && ! python3 -m pip --version >/dev/null 2>&1; then
      apt_install python3-pip
    fi
    say "pip install $pkg"
    python3 -m pip install --quiet --disable-pip-version-check "$pkg" \
      || python3 -m pip install --quiet --break-system-packages "$pkg"
  done

  # --- Playwright's npm packages (never its browser downloads) ---------------
  stamp=end2end/node_modules/.bootstrap-lock
  if [ -f "$stamp" ] && cmp -s "$stamp" end2end/package-lock.json; then
    say "end2end npm packages: present"
  else
    say "npm ci in end2end (browser downloads skipped)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-fund --no-audit)
    cp end2end/package-lock.json "$stamp"
  fi
fi
if [ $want_bench = 1 ]; then
  # --- wrk: page traffic for the benchmark and soak scripts -------------------
  if command -v wrk >/dev/null; then
    say "wrk: present"
  else
    apt_install wrk
  fi
  # --- perf and inferno: the profiles behind the README's performance notes --
  if command -v perf >/dev/null; then
    say "perf: present"
  else
    apt_install linux-perf
  fi
  if command -v inferno-flamegraph >/dev/null; then
    say "inferno: present"
  else
    say "cargo install inferno 0.12.8 (flame graphs from perf)"
    cargo install inferno --version 0.12.8 --locked
  fi
  # --- Lighthouse 12.2.3 (pinned: it runs on Node 20 with Debian Chromium) --
  stamp=end2end/lighthouse/node_modules/.bootstrap-lock
  if [ -f "$stamp" ] && cmp -s "$stamp" end2end/lighthouse/package-lock.json; then
    say "lighthouse: present"
  else
    say "npm ci in end2end/lighthouse (Lighthouse 12.2.3)"
    (cd end2end/lighthouse && npm ci --no-fund --no-audit)
    cp end2end/lighthouse/package-lock.json "$stamp"
  fi
fi
say "done"
