#!/usr/bin/env bash
# scripts/mariadb.sh: a throwaway MariaDB server for passreset's tests.
#
#   scripts/mariadb.sh start     install mariadb-server if missing, start the server
#                                (if it is not running yet) and print the DSN last
#   scripts/mariadb.sh stop      stop it (a no-op when it is not running)
#   scripts/mariadb.sh restart   stop, then start; prints the DSN last
#   scripts/mariadb.sh status    "running ..." (exit 0) or "stopped" (exit 1)
#   scripts/mariadb.sh dsn       print the DSN
#
# The server listens on 127.0.0.1 only, keeps its data under a private
# directory, runs without systemd and uses utf8mb4. Every subcommand is
# idempotent, and concurrent invocations are serialised with a lock.
#
# Environment:
#   PASSRESET_MARIADB_DIR       base directory (default /tmp/passreset-mariadb)
#   PASSRESET_MARIADB_PORT      TCP port (default 13306)
#   PASSRESET_MARIADB_PASSWORD  password of the database user passreset (default passreset)
#   PASSRESET_MARIADB_ARGS      extra mariadbd options, split on spaces (default none)
#
# Typical use:
#   export PASSRESET_MYSQL_DSN="$(scripts/mariadb.sh start | tail -n 1)"
#   PASSRESET_MARIADB_SCRIPT="$PWD/scripts/mariadb.sh" go test -race ./...
#   scripts/mariadb.sh stop
set -euo pipefail

DIR=${PASSRESET_MARIADB_DIR:-/tmp/passreset-mariadb}
PORT=${PASSRESET_MARIADB_PORT:-13306}
PASSWORD=${PASSRESET_MARIADB_PASSWORD:-passreset}
EXTRA_ARGS=${PASSRESET_MARIADB_ARGS:-}
DATA=$DIR/data
SOCK=$DIR/mariadbd.sock
PIDFILE=$DIR/mariadbd.pid
LOG=$DIR/mariadbd.log
ME=$(id -un)
# The server binaries live in /usr/sbin, which is not on every PATH.
PATH=$PATH:/usr/sbin:/sbin

log() { echo "mariadb.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

dsn() {
	echo "passreset:${PASSWORD}@tcp(127.0.0.1:${PORT})/passreset?parseTime=true"
}

# alive PID: the process exists and is not a zombie. A killed mariadbd can
# linger as a zombie for seconds when nobody reaps it, and kill -0 still
# succeeds on a zombie, so ask ps for its state.
alive() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $stat && $stat != Z* ]]
}

# server_pid prints the PID of our running server, or fails.
server_pid() {
	local pid
	[[ -s $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	# Guard against a recycled PID: it must be a mariadbd.
	[[ $(ps -o comm= -p "$pid" 2>/dev/null) == mariadbd ]] || return 1
	echo "$pid"
}

admin() { mariadb-admin --no-defaults --socket="$SOCK" -u"$ME" "$@"; }
client() { mariadb --no-defaults --socket="$SOCK" -u"$ME" "$@"; }
ping() { admin --connect-timeout=2 ping >/dev/null 2>&1; }

install_server() {
	command -v mariadbd >/dev/null && return 0
	[[ $(id -u) == 0 ]] || die "mariadbd is missing; install it with: apt-get install -y mariadb-server"
	log "installing mariadb-server"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y mariadb-server >&2
	command -v mariadbd >/dev/null || die "mariadbd still missing after installing mariadb-server"
	# The package may start a system service; ours is separate, so leave it.
}

init_datadir() {
	[[ -d $DATA/mysql ]] && return 0
	log "creating data directory $DATA"
	rm -rf "$DATA.tmp"
	local args=(--no-defaults --user="$ME" --datadir="$DATA.tmp"
		--auth-root-authentication-method=socket --skip-test-db)
	# The socket-authenticated admin account is root plus the --user, which
	# must be whoever runs this script.
	[[ $ME == root ]] || args+=(--auth-root-socket-user="$ME")
	if ! mariadb-install-db "${args[@]}" >"$DIR/install.log" 2>&1; then
		cat "$DIR/install.log" >&2
		die "mariadb-install-db failed"
	fi
	mv "$DATA.tmp" "$DATA"
}

start() {
	if server_pid >/dev/null && ping; then
		dsn
		return 0
	fi
	install_server
	init_datadir
	local pid
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE" "$SOCK" "$SOCK.lock"
		: >"$LOG"
		log "starting mariadbd on 127.0.0.1:$PORT"
		local args=(--no-defaults --user="$ME" --datadir="$DATA"
			--socket="$SOCK" --pid-file="$PIDFILE" --port="$PORT"
			--bind-address=127.0.0.1 --skip-name-resolve --log-error="$LOG"
			--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci)
		# shellcheck disable=SC2206 # split on purpose
		[[ -n $EXTRA_ARGS ]] && args+=($EXTRA_ARGS)
		# setsid + nohup: the server outlives this script and its terminal.
		# Fd 9 (our lock) must not leak into it.
		setsid nohup mariadbd "${args[@]}" </dev/null >>"$LOG" 2>&1 9>&- &
		pid=$!
	fi
	# Poll until it answers; it is usually ready in well under a second.
	local i
	for ((i = 0; i < 600; i++)); do
		ping && break
		if ! alive "$pid"; then
			tail -n 30 "$LOG" >&2 || true
			die "mariadbd exited during startup (log: $LOG)"
		fi
		sleep 0.1
	done
	ping || die "mariadbd did not answer within 60 s (log: $LOG)"
	client <<-SQL
		CREATE DATABASE IF NOT EXISTS passreset CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
		CREATE USER IF NOT EXISTS 'passreset'@'%' IDENTIFIED BY '${PASSWORD}';
		ALTER USER 'passreset'@'%' IDENTIFIED BY '${PASSWORD}';
		GRANT ALL PRIVILEGES ON passreset.* TO 'passreset'@'%';
	SQL
	dsn
}

stop() {
	local pid
	if ! pid=$(server_pid); then
		rm -f "$PIDFILE"
		log "not running"
		return 0
	fi
	log "stopping mariadbd (pid $pid)"
	admin --connect-timeout=2 shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 300; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "mariadbd did not stop within 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
	fi
	alive "$pid" && die "could not stop mariadbd (pid $pid)"
	rm -f "$PIDFILE" "$SOCK" "$SOCK.lock"
}

status() {
	local pid
	if pid=$(server_pid) && ping; then
		echo "running: pid $pid, 127.0.0.1:$PORT, data $DATA"
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
