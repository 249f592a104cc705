#!/usr/bin/env bash
# npm run bench:receiver: the receiver's load benchmark (receiver/benches/load.rs) on SQLite, then
# on PostgreSQL with 1 and 2 instances sharing one database, on a throw-away server that
# scripts/pg.sh starts here and stops on the way out (also when the benchmark fails or is
# interrupted). Arguments go to the benchmark; SM_BENCH_QUICK=1 makes a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# Built first, so the server does not sit through the compile.
cargo bench -p salla-salesmanago-receiver --bench load --no-run
# A server of the benchmark's own (not one started by hand in target/pg, which stop would end).
export SM_PG_DIR=target/pg/bench
bash scripts/pg.sh start >/dev/null
trap 'status=$?; bash scripts/pg.sh stop || true; exit $status' EXIT
SM_BENCH_DATABASE_URL="$(bash scripts/pg.sh url)" \
  cargo bench -p salla-salesmanago-receiver --bench load -- --postgres "$@"
