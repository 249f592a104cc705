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
cargo clippy -q -p salla-salesmanago --target wasm32-unknown-unknown --all-targets -- -D warnings

# A throw-away PostgreSQL server (scripts/pg.sh) for every stage from here on, at
# SM_TEST_DATABASE_URL (its `postgres` database; tests create databases of their own). This run's
# own, in target/pg/run-<pid>, so that two runs in one checkout never share one; stopped when this
# script ends, however it ends (a failing stage, Ctrl-C, kill), and removed unless a stage failed
# (then its server.log stays, until the next run). First: the servers of runs killed outright
# (kill -9: no trap ran) are stopped and removed.
for run in target/pg/run-*; do
  if { [ -d "$run" ] || [ -L "$run" ]; } && [ ! -d "/proc/${run##*-}" ]; then
    echo "stopping and removing $run (the test server of an earlier run)"
    SM_PG_DIR=$run bash scripts/pg.sh stop && rm -rf "$(realpath -m "$run")" "$run"
  fi
done
pg_dir=target/pg/run-$$
mkdir -p target/pg
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PWD/target/pg" 2>/dev/null; then
  # As root the server runs as `postgres` (PostgreSQL refuses root), which cannot enter this
  # checkout (a directory of mode 700 above it, as `mktemp -d` or a home directory makes): its
  # directory is a fresh one in /tmp, linked from here so that the cleanup above finds it.
  ln -s "$(mktemp -d /tmp/sm-pg.XXXXXX)" "$pg_dir"
fi
pg_stop() {
  local rc=$?
  # The wasm stage's proxy, if the run stopped while it was up.
  if [ -n "${PROXY_PID:-}" ]; then kill "$PROXY_PID" 2>/dev/null || true; fi
  SM_PG_DIR=$pg_dir bash scripts/pg.sh stop || rc=1
  if [ "$rc" = 0 ]; then
    rm -rf "$(realpath -m "$pg_dir")" "$pg_dir"
  elif [ -f "$pg_dir/server.log" ]; then
    echo "(the test server's log: $pg_dir/server.log)" >&2
  fi
  exit "$rc"
}
trap pg_stop EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
SM_TEST_DATABASE_URL=$(SM_PG_DIR=$pg_dir bash scripts/pg.sh start)
export SM_TEST_DATABASE_URL
echo "PostgreSQL for the tests: $SM_TEST_DATABASE_URL"

stage "native tests (core, mapping table, properties; the receiver on SQLite against the fake SALESmanago)"
cargo test -q --workspace

stage "the receiver's suite again, on PostgreSQL (a database per test on the server above)"
SM_TEST_BACKEND=postgres SM_REQUIRE_POSTGRES=1 cargo test -q -p salla-salesmanago-receiver

stage "wasm tests in headless Chromium"
SM_WASM_TOOLCHAIN=rustup
# shellcheck disable=SC1091
[ -f target/toolchain.env ] && . target/toolchain.env
if [ "$SM_WASM_TOOLCHAIN" != rustup ]; then
  echo "the browser tests need rustup's wasm32 target; scripts/setup.sh could not add it" >&2
  exit 1
fi
# Chromium reaches the runner's page server through a proxy that sends one request per
# connection (see tests/support/one-request-per-connection.mjs for why): its port goes into a copy
# of webdriver.json.
PROXY_PORT_FILE=target/wasm-proxy.port
node tests/support/one-request-per-connection.mjs > "$PROXY_PORT_FILE" &
PROXY_PID=$!
for _ in $(seq 50); do [ -s "$PROXY_PORT_FILE" ] && break; sleep 0.1; done
if [ ! -s "$PROXY_PORT_FILE" ]; then
  echo "the wasm tests' proxy (tests/support/one-request-per-connection.mjs) did not start" >&2
  exit 1
fi
node -e '
  const fs = require("fs");
  const caps = JSON.parse(fs.readFileSync("webdriver.json", "utf8"));
  const port = fs.readFileSync(process.argv[1], "utf8").trim();
  caps["goog:chromeOptions"].args.push(`--proxy-server=http://127.0.0.1:${port}`, "--proxy-bypass-list=<-loopback>");
  fs.writeFileSync("target/webdriver.json", JSON.stringify(caps, null, 2));
' "$PROXY_PORT_FILE"
WASM_BINDGEN_TEST_WEBDRIVER_JSON=target/webdriver.json \
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p salla-salesmanago --target wasm32-unknown-unknown --test web
kill "$PROXY_PID"
PROXY_PID=

stage "build"
bash scripts/build.sh
node scripts/sizes.mjs --check
cargo build -q -p salla-salesmanago-receiver
# The fake SALESmanago API (sm-fake) the end-to-end suite and the demo deliver to.
cargo build -q -p fake-salesmanago

stage "end-to-end tests (Chromium, Salla SDK, the relay → sm-receiver → sm-fake)"
# Each file starts the sm-receiver and sm-fake built above (www/stack.mjs).
node --test --test-concurrency=1 --test-timeout=120000 tests/e2e/*.test.mjs
