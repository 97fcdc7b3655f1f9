#!/usr/bin/env bash
# Runs every benchmark behind BENCHMARKS.md and prints the figures, with
# benchstat summaries (golang.org/x/perf). Starts MariaDB, PostgreSQL and
# the Galera cluster like scripts/test.sh (and stops what it started).
# About 25 minutes, most of it the delivery at scale (seconds of real
# provider time at 2 calls/s).
#
#   scripts/bench.sh [count, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10}
out=$(mktemp -d)
stop_server=0; stop_cluster=0; stop_pg=0
cleanup() {
  [ "$stop_cluster" = 1 ] && scripts/galera.sh stop >/dev/null 2>&1 || true
  [ "$stop_pg" = 1 ] && scripts/postgres.sh stop >/dev/null 2>&1 || true
  [ "$stop_server" = 1 ] && scripts/mariadb.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/mariadb.sh status >/dev/null 2>&1 || stop_server=1
[ "$(scripts/galera.sh status 2>/dev/null | grep -c Synced || true)" != 0 ] || stop_cluster=1
PASSRESET_MYSQL_DSN=$(scripts/mariadb.sh start | tail -n 1); export PASSRESET_MYSQL_DSN
if [ -z "${PASSRESET_PG_DSN:-}" ]; then
  scripts/postgres.sh status >/dev/null 2>&1 || stop_pg=1
  PASSRESET_PG_DSN=$(scripts/postgres.sh start | tail -n 1)
fi
export PASSRESET_PG_DSN
benchstat="go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"

echo "== $(go env GOVERSION), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"

echo; echo "== core and handler (-count $count)"
go test -run '^$' -bench 'TokenPrimitive|Request|Complete' -benchmem -count "$count" ./reset/ | tee "$out/core.txt" | grep -v '^ok' >/dev/null
go test -run '^$' -bench 'Handler|PublicTiming' -benchmem -count "$count" ./httpadapter/ | tee "$out/http.txt" | grep -v '^ok' >/dev/null
$benchstat "$out/core.txt" "$out/http.txt" 2>/dev/null || cat "$out/core.txt" "$out/http.txt"

echo; echo "== memstore: 1,000,000 rotations over 100,000 users"
go test -run '^$' -bench MemstoreChurn -benchtime 1x ./store/memstore/ | grep Benchmark

echo; echo "== MySQL store vs a raw upsert loop, same server and driver (-count 5)"
go test -run '^$' -bench 'MySQL' -benchtime 2s -count 5 ./store/mysqlstore/ | tee "$out/mysql.txt" | grep Benchmark

echo; echo "== durable outbox on MariaDB"
go test -run '^$' -bench 'Outbox' -benchtime 3s ./store/mysqlstore/ | grep Benchmark

echo; echo "== delivery at scale: three instances, sliding 2 calls/s, MariaDB and PostgreSQL"
PASSRESET_SCALE_BENCH=1 go test -run '^$' -bench . -benchtime 1x -timeout 60m ./internal/scaletest/ | grep Benchmark

echo; echo "== Galera: one node vs three"
PASSRESET_GALERA_DSNS=$(scripts/galera.sh start | tail -n 3 | tr '\n' ' '); export PASSRESET_GALERA_DSNS
go test -run '^$' -bench Cluster -benchtime 3s -count 3 ./store/mysqlstore/clustertest/ | grep Benchmark

echo; echo "== load over loopback (scripts/load.sh)"
scripts/load.sh 10 16
