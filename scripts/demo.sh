#!/usr/bin/env bash
# The demo: the storefront (Salla's real SDK + the tracker) on 127.0.0.1:8080, relaying the
# tracker's /collect to the Rust receiver (sm-receiver) on 127.0.0.1:8787, which delivers to the
# fake SALESmanago API (sm-fake), or to your real account when a receiver.env is present (see the
# README). www/server.mjs starts and stops both binaries (www/stack.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build -q -p salla-salesmanago-receiver -p fake-salesmanago
args=(--port "${PORT:-8080}" --receiver-port "${RECEIVER_PORT:-8787}")
if [ -f receiver.env ]; then
  echo "demo: receiver.env found: events go to the SALESmanago account it names"
  args+=(--env-file receiver.env)
fi
exec node www/server.mjs "${args[@]}"
