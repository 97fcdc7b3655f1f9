#!/usr/bin/env bash
# Loads examples/basic and the baseline handler (scripts/baseline) over
# loopback with wrk, the same request to both: a trusted password-lost with
# skipSend "enabled" (the email is not sent, the token is issued). Prints
# wrk's requests/s and latency percentiles for each. See BENCHMARKS.md.
#
#   scripts/load.sh [seconds, default 10] [connections, default 16]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }

bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/basic" ./examples/basic
go build -o "$bin/baseline" ./scripts/baseline

cat >"$bin/lost.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email": "jborder@anywhere.com", "skipSend": "enabled"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=" -- demo-client:demo-secret
LUA

"$bin/basic" -addr 127.0.0.1:18080 >/dev/null 2>&1 &
"$bin/baseline" -addr 127.0.0.1:18081 >/dev/null 2>&1 &
for port in 18080 18081; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

for target in "passreset examples/basic|18080" "baseline|18081"; do
  name=${target%|*}; port=${target#*|}
  echo "== $name: wrk -t2 -c$conns -d${secs}s --latency"
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$bin/lost.lua" \
    "http://127.0.0.1:$port/api/directory/users/password-lost" | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors"
done
