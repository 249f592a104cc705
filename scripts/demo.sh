#!/usr/bin/env bash
# Runs the demo storefront and the local receiver on 127.0.0.1 (after setup and build).
set -euo pipefail
cd "$(dirname "$0")/.."
exec node www/server.mjs --port "${PORT:-8080}"
