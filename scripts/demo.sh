#!/usr/bin/env bash
# The demo: the storefront (Salla's real SDK + the tracker) on 127.0.0.1:8080, the Rust receiver
# on 127.0.0.1:8787, and SALESmanago: the demo server's fake API, or your real account when a
# receiver.env is present (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
PORT="${PORT:-8080}"
RECEIVER_PORT="${RECEIVER_PORT:-8787}"

cargo build -q -p salla-salesmanago-receiver
mkdir -p target/demo
if [ -f receiver.env ]; then
  echo "demo: receiver.env found: events go to the SALESmanago account it names"
  receiver_args=(--env-file receiver.env)
  # The tracker must name the same account as the receiver.
  client_id="${SM_CLIENT_ID:-$(sed -n 's/^\(export \)\{0,1\}SM_CLIENT_ID=["]\{0,1\}\([^"#[:space:]]*\).*/\2/p' receiver.env | tail -n1)}"
else
  # The fake account the demo server checks calls against (www/salesmanago-fake.mjs).
  export SM_API_ENDPOINT="http://127.0.0.1:$PORT" SM_CLIENT_ID=demo-client SM_API_KEY=demo-key \
         SM_API_SECRET=demo-secret SM_OWNER=owner@oud-store.example
  receiver_args=()
  client_id=demo-client
fi
export SM_ALLOWED_ORIGINS="${SM_ALLOWED_ORIGINS:-http://127.0.0.1:$PORT}"
export SM_LISTEN="${SM_LISTEN:-127.0.0.1:$RECEIVER_PORT}" SM_DATA_DIR="${SM_DATA_DIR:-target/demo/receiver-data}"
target/debug/sm-receiver "${receiver_args[@]}" > target/demo/receiver.log 2>&1 &
receiver_pid=$!
trap 'kill $receiver_pid 2>/dev/null || true' EXIT INT TERM
echo "demo: receiver on http://$SM_LISTEN (log: target/demo/receiver.log)"
node www/server.mjs --port "$PORT" --receiver "http://$SM_LISTEN" --client-id "$client_id"
