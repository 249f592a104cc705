#!/usr/bin/env bash
# Every test: lint, native unit/integration/property tests, the crate's wasm tests in headless
# Chromium, the build, and the end-to-end suite (real Chromium, real HTTP, real Salla SDK).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
stage() { printf '\n=== %s\n' "$*"; }

stage "format and lints"
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
cargo clippy -q -p salla-salesmanago --target wasm32-unknown-unknown --lib --tests -- -D warnings

stage "native tests (core, mapping table, properties; the receiver against the fake SALESmanago)"
cargo test -q --workspace

stage "wasm tests in headless Chromium"
SM_WASM_TOOLCHAIN=rustup
# shellcheck disable=SC1091
[ -f target/toolchain.env ] && . target/toolchain.env
if [ "$SM_WASM_TOOLCHAIN" != rustup ]; then
  echo "the browser tests need rustup's wasm32 target; scripts/setup.sh could not add it" >&2
  exit 1
fi
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p salla-salesmanago --target wasm32-unknown-unknown --test web

stage "build"
bash scripts/build.sh
node scripts/sizes.mjs --check
cargo build -q -p salla-salesmanago-receiver
# The fake SALESmanago API (sm-fake) the end-to-end suite and the demo deliver to.
cargo build -q -p fake-salesmanago

stage "end-to-end tests (Chromium, Salla SDK, the relay → sm-receiver → sm-fake)"
# Each file starts the sm-receiver and sm-fake built above (www/stack.mjs).
node --test --test-concurrency=1 --test-timeout=120000 tests/e2e/*.test.mjs
