#!/usr/bin/env bash
# scripts/postgres.sh: a throwaway PostgreSQL 15 server for passreset's tests.
#
#   scripts/postgres.sh start     install postgresql if its binaries are missing, create the
#                                 cluster and start the server (if it is not running yet);
#                                 prints the DSN last
#   scripts/postgres.sh stop      stop it (a no-op when it is not running)
#   scripts/postgres.sh restart   stop, then start; prints the DSN last
#   scripts/postgres.sh status    "running ..." (exit 0) or "stopped" (exit 1)
#   scripts/postgres.sh dsn       print the DSN
#
# The server listens on 127.0.0.1 only (and a Unix socket in its own
# directory), keeps its cluster under a private directory, runs without
# systemd and trusts local connections of the user passreset, which owns the
# database passreset. Run as root, the cluster belongs to the postgres user
# (initdb refuses root) and the script drops to it with runuser. Every
# subcommand is idempotent, and concurrent invocations are serialised with a
# lock.
#
# Environment:
#   PASSRESET_PG_DIR    base directory (default /tmp/passreset-postgres); as root its
#                       parent directories must be searchable by the postgres user
#   PASSRESET_PG_PORT   TCP port (default 15432)
#   PASSRESET_PG_BIN    server binaries (default /usr/lib/postgresql/15/bin)
#
# Typical use:
#   export PASSRESET_PG_DSN="$(scripts/postgres.sh start | tail -n 1)"
#   PASSRESET_PG_SCRIPT="$PWD/scripts/postgres.sh" go test -race ./store/pgstore/
#   scripts/postgres.sh stop
set -euo pipefail

DIR=${PASSRESET_PG_DIR:-/tmp/passreset-postgres}
PORT=${PASSRESET_PG_PORT:-15432}
BIN=${PASSRESET_PG_BIN:-/usr/lib/postgresql/15/bin}
DATA=$DIR/data
LOG=$DIR/postgres.log
ROLE=passreset
DB=passreset

log() { echo "postgres.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

dsn() {
	echo "postgres://${ROLE}@127.0.0.1:${PORT}/${DB}?sslmode=disable"
}

# owner runs a command as the cluster's owner: postgres when we are root.
owner() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U "$ROLE" -t 2 >/dev/null 2>&1; }

# running: the cluster's postmaster is alive (pg_ctl checks postmaster.pid).
running() { [[ -f $DATA/PG_VERSION ]] && owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

install_server() {
	[[ -x $BIN/initdb && -x $BIN/pg_ctl && -x $BIN/postgres ]] && return 0
	[[ $(id -u) == 0 ]] || die "$BIN has no PostgreSQL server; install it with: apt-get install -y postgresql"
	log "installing postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y postgresql >&2
	[[ -x $BIN/initdb ]] || die "$BIN/initdb still missing after installing postgresql"
	# The package may start a system cluster on port 5432; ours is separate.
}

init_cluster() {
	[[ -f $DATA/PG_VERSION ]] && return 0
	log "creating cluster $DATA"
	rm -rf "$DATA.tmp"
	if ! owner "$BIN/initdb" -D "$DATA.tmp" -A trust -U "$ROLE" --encoding=UTF8 --locale=C.UTF-8 \
		>"$DIR/initdb.log" 2>&1; then
		cat "$DIR/initdb.log" >&2
		die "initdb failed"
	fi
	mv "$DATA.tmp" "$DATA"
}

start() {
	if running && ready; then
		dsn
		return 0
	fi
	install_server
	if [[ $(id -u) == 0 ]]; then
		id postgres >/dev/null 2>&1 || die "there is no postgres user to own the cluster (install postgresql)"
		chown postgres: "$DIR"
	fi
	init_cluster
	if ! running; then
		log "starting postgres on 127.0.0.1:$PORT"
		# pg_ctl detaches the server and sends its output to the log. Fd 9
		# (our lock) must not leak into it.
		owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
			-o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=200" \
			start </dev/null >&2 9>&- || {
			tail -n 30 "$LOG" >&2 || true
			die "postgres did not start (log: $LOG)"
		}
	fi
	local i
	for ((i = 0; i < 600; i++)); do
		ready && break
		sleep 0.1
	done
	ready || die "postgres did not answer within 60 s (log: $LOG)"
	if [[ -z $(psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
		psql -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -c "CREATE DATABASE $DB" >&2
	fi
	dsn
}

stop() {
	if ! running; then
		log "not running"
		return 0
	fi
	log "stopping postgres"
	owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2 ||
		owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >&2 ||
		die "could not stop postgres (log: $LOG)"
}

status() {
	if running && ready; then
		echo "running: 127.0.0.1:$PORT, cluster $DATA"
		return 0
	fi
	echo "stopped"
	return 1
}

main() {
	local cmd=${1:-}
	case $cmd in
	dsn)
		dsn
		return 0
		;;
	start | stop | restart | status) ;;
	*) die "usage: $0 start|stop|restart|status|dsn" ;;
	esac
	mkdir -p "$DIR"
	exec 9>"$DIR/lock"
	flock 9
	case $cmd in
	start) start ;;
	stop) stop ;;
	restart)
		stop
		start
		;;
	status) status ;;
	esac
}

main "$@"
