#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). On a fresh Debian 12
# machine with Go it installs and starts what the tests need, runs every
# check and every test with the race detector, and stops what it started.
#
#   scripts/test.sh            everything
#   PASSRESET_MYSQL_DSN=...    use an existing MySQL/MariaDB instead of a throwaway one
#   PASSRESET_PG_DSN=...       use an existing PostgreSQL instead of a throwaway one
#   PASSRESET_GALERA_DSNS=...  three DSNs (space-separated) of an existing Galera cluster,
#                              with PASSRESET_GALERA_SCRIPT=... able to kill and rejoin nodes
#   PASSRESET_MAILPIT_SMTP=... use existing Mailpit servers instead of throwaway ones (set every
#                              PASSRESET_MAILPIT_* variable that scripts/mailpit.sh env prints)
#   PASSRESET_FUZZTIME=10s     how long each fuzz target runs (default 5s; 0 skips)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n== %s\n' "$*"; }

# Stop at the end only what this run started.
stop_server=0
stop_cluster=0
stop_mailpit=0
stop_pg=0
cleanup() {
  if [ "$stop_mailpit" = 1 ]; then scripts/mailpit.sh stop >/dev/null 2>&1 || true; fi
  if [ "$stop_pg" = 1 ]; then scripts/postgres.sh stop >/dev/null 2>&1 || true; fi
  if [ "$stop_cluster" = 1 ]; then scripts/galera.sh stop >/dev/null 2>&1 || true; fi
  if [ "$stop_server" = 1 ]; then scripts/mariadb.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

step "go $(go env GOVERSION), $(nproc) cores"

if [ -z "${PASSRESET_MYSQL_DSN:-}" ]; then
  step "starting a throwaway MariaDB (scripts/mariadb.sh)"
  # Stop it at the end only if this run started it.
  if ! scripts/mariadb.sh status >/dev/null 2>&1; then
    stop_server=1
  fi
  PASSRESET_MYSQL_DSN=$(scripts/mariadb.sh start | tail -n 1)
  export PASSRESET_MARIADB_SCRIPT="$root/scripts/mariadb.sh"
fi
export PASSRESET_MYSQL_DSN

if [ -z "${PASSRESET_PG_DSN:-}" ]; then
  step "starting a throwaway PostgreSQL (scripts/postgres.sh)"
  # Stop it at the end only if this run started it.
  if ! scripts/postgres.sh status >/dev/null 2>&1; then
    stop_pg=1
  fi
  PASSRESET_PG_DSN=$(scripts/postgres.sh start | tail -n 1)
  export PASSRESET_PG_SCRIPT="$root/scripts/postgres.sh"
fi
export PASSRESET_PG_DSN

if [ -z "${PASSRESET_GALERA_DSNS:-}" ]; then
  step "starting a throwaway 3-node Galera cluster (scripts/galera.sh)"
  if [ "$(scripts/galera.sh status 2>/dev/null | grep -c Synced || true)" = 0 ]; then
    stop_cluster=1
  fi
  PASSRESET_GALERA_DSNS=$(scripts/galera.sh start | tail -n 3 | tr '\n' ' ')
  export PASSRESET_GALERA_SCRIPT="$root/scripts/galera.sh"
fi
export PASSRESET_GALERA_DSNS

# Mailpit for mailer/smtpmailer: plain, STARTTLS and implicit TLS servers.
if [ -z "${PASSRESET_MAILPIT_SMTP:-}" ]; then
  step "starting throwaway Mailpit servers (scripts/mailpit.sh)"
  # Stop them at the end only if this run started them.
  if ! scripts/mailpit.sh status >/dev/null 2>&1; then
    stop_mailpit=1
  fi
  mailpit_env=$(scripts/mailpit.sh start | grep '^export PASSRESET_MAILPIT_')
  eval "$mailpit_env"
fi

step "Chromium and axe-core for the browser tests (scripts/chromium.sh)"
# Installs them when missing (apt-get, npm) and exports PASSRESET_CHROMIUM
# and PASSRESET_AXE, which httpadapter's browser tests read.
eval "$(scripts/chromium.sh)"

step "Node.js and the linkifiers for the text-email tests (scripts/linkifiers.sh)"
# Installs them when missing (apt-get, npm) and exports PASSRESET_LINKIFIERS,
# which reset's linkifier tests read (with CI=true they fail without it).
eval "$(scripts/linkifiers.sh)"

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

step "reset imports the standard library only (and the module's internal packages and reset/password)"
# -deps lists every package reset depends on, directly or not: a third-party
# import anywhere below reset/password or internal/ shows up here too.
nonstd=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./reset | grep -v -e '^github.com/passreset/passreset/reset$' -e '^github.com/passreset/passreset/reset/password\(/.*\)\{0,1\}$' -e '^github.com/passreset/passreset/internal/' || true)
if [ -n "$nonstd" ] || go list -deps ./reset | grep -qx 'net/http'; then
  echo "package reset must import the standard library only (and not net/http): $nonstd"; exit 1
fi

step "go test -race ./..."
go test -race -count=1 ./...

step "benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null

fuzztime=${PASSRESET_FUZZTIME:-5s}
if [ "$fuzztime" != 0 ]; then
  step "fuzzing, $fuzztime per target"
  for pkg in $(go list ./...); do
    for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      echo "$pkg $f"
      # Quiet when it passes; the whole output (the failing input and
      # where it was written) when it does not.
      if ! out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
        printf '%s\n' "$out"
        exit 1
      fi
    done
  done
fi

step "all checks passed"
