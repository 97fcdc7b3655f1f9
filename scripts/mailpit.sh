#!/usr/bin/env bash
# scripts/mailpit.sh: throwaway Mailpit SMTP servers for mailer/smtpmailer's tests.
#
#   scripts/mailpit.sh start     install Mailpit if missing, start the three servers
#                                (those not running yet), wait until each is ready
#                                and print the environment for the tests last
#   scripts/mailpit.sh stop      stop them (a no-op for those not running)
#   scripts/mailpit.sh restart   stop, then start; prints the environment last
#   scripts/mailpit.sh status    "running ..." (exit 0) or "stopped" (exit 1)
#   scripts/mailpit.sh env       print the environment for the tests
#   scripts/mailpit.sh dev       start one development Mailpit (below) and print
#                                its SMTP_URL and web UI address
#   scripts/mailpit.sh dev-stop  stop it (its mail is kept)
#
# Three Mailpit processes listen on 127.0.0.1 only, each with its HTTP API:
#
#   plain     SMTP 11025, API 18025: no TLS; any AUTH accepted (PLAIN and LOGIN
#             allowed in the clear); chaos enabled (PUT /api/v1/chaos);
#             recipients outside example.com and example.org refused with 550
#   starttls  SMTP 11026, API 18026: STARTTLS required; AUTH required, only
#             the user passreset with $PASSRESET_MAILPIT_PASSWORD
#   tls       SMTP 11027, API 18027: implicit TLS; AUTH as for starttls
#
# The TLS servers use a throwaway self-signed certificate for 127.0.0.1 and
# localhost, made with openssl at the first start; the tests trust it
# through PASSRESET_MAILPIT_CA. The environment printed last, one
# "export NAME=value" line each:
#
#   PASSRESET_MAILPIT_SMTP, PASSRESET_MAILPIT_API                    plain
#   PASSRESET_MAILPIT_STARTTLS_SMTP, PASSRESET_MAILPIT_STARTTLS_API  starttls
#   PASSRESET_MAILPIT_TLS_SMTP, PASSRESET_MAILPIT_TLS_API            tls
#   PASSRESET_MAILPIT_CA      the certificate (PEM) the TLS servers present
#   PASSRESET_MAILPIT_AUTH    user:password the TLS servers accept
#
# The development Mailpit (dev, dev-stop) is for running the examples by
# hand: one server on 127.0.0.1 that accepts every recipient and any AUTH,
# keeps its mail in $PASSRESET_MAILPIT_DEV_DIR/mail.db across restarts,
# and shows it at http://127.0.0.1:$PASSRESET_MAILPIT_DEV_UI. Point a
# program at it with SMTP_URL=smtp+plain://127.0.0.1:$PASSRESET_MAILPIT_DEV_SMTP.
#
# Every subcommand is idempotent, and concurrent invocations are serialised
# with a lock. Mailpit is installed with `go install` into a private
# directory, only when missing.
#
# Environment:
#   PASSRESET_MAILPIT_DIR       base directory (default /tmp/passreset-mailpit)
#   PASSRESET_MAILPIT_PORT      first SMTP port (default 11025; then +1, +2;
#                               the API ports are these plus 7000)
#   PASSRESET_MAILPIT_PASSWORD  password of the SMTP user passreset (default mailpit-secret)
#   PASSRESET_TOOLS_BIN         where mailpit is installed (default /tmp/passreset-tools/bin)
#   PASSRESET_MAILPIT_DEV_DIR   the development server's directory (default
#                               $HOME/.cache/passreset/mailpit)
#   PASSRESET_MAILPIT_DEV_SMTP  its SMTP port (default 1025)
#   PASSRESET_MAILPIT_DEV_UI    its web UI and API port (default 8025)
#
# Typical use:
#   eval "$(scripts/mailpit.sh start | grep '^export ')"
#   CI=true go test -race ./mailer/smtpmailer/
#   scripts/mailpit.sh stop
set -euo pipefail

VERSION=v1.33.1
DIR=${PASSRESET_MAILPIT_DIR:-/tmp/passreset-mailpit}
PORT=${PASSRESET_MAILPIT_PORT:-11025}
PASSWORD=${PASSRESET_MAILPIT_PASSWORD:-mailpit-secret}
BIN=${PASSRESET_TOOLS_BIN:-/tmp/passreset-tools/bin}
MAILPIT=$BIN/mailpit
NAMES=(plain starttls tls)
DEV_DIR=${PASSRESET_MAILPIT_DEV_DIR:-${HOME:-/root}/.cache/passreset/mailpit}
DEV_SMTP=${PASSRESET_MAILPIT_DEV_SMTP:-1025}
DEV_UI=${PASSRESET_MAILPIT_DEV_UI:-8025}

log() { echo "mailpit.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# smtp_port NAME and api_port NAME print the instance's ports.
smtp_port() {
	case $1 in
	plain) echo $((PORT)) ;;
	starttls) echo $((PORT + 1)) ;;
	tls) echo $((PORT + 2)) ;;
	esac
}
api_port() { echo $(($(smtp_port "$1") + 7000)); }

env_lines() {
	echo "export PASSRESET_MAILPIT_SMTP=127.0.0.1:$(smtp_port plain)"
	echo "export PASSRESET_MAILPIT_API=http://127.0.0.1:$(api_port plain)"
	echo "export PASSRESET_MAILPIT_STARTTLS_SMTP=127.0.0.1:$(smtp_port starttls)"
	echo "export PASSRESET_MAILPIT_STARTTLS_API=http://127.0.0.1:$(api_port starttls)"
	echo "export PASSRESET_MAILPIT_TLS_SMTP=127.0.0.1:$(smtp_port tls)"
	echo "export PASSRESET_MAILPIT_TLS_API=http://127.0.0.1:$(api_port tls)"
	echo "export PASSRESET_MAILPIT_CA=$DIR/cert.pem"
	echo "export PASSRESET_MAILPIT_AUTH=passreset:$PASSWORD"
}

# alive PID: the process exists and is not a zombie.
alive() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $stat && $stat != Z* ]]
}

# server_pid NAME prints the PID of our running instance NAME, or fails.
server_pid() {
	local pid file=$DIR/$1.pid
	[[ -s $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	alive "$pid" || return 1
	# Guard against a recycled PID: it must be a mailpit.
	[[ $(ps -o comm= -p "$pid" 2>/dev/null) == mailpit ]] || return 1
	echo "$pid"
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(api_port "$1")/readyz" 2>/dev/null; }

install_mailpit() {
	[[ -x $MAILPIT ]] && return 0
	command -v go >/dev/null || die "go is needed to install Mailpit"
	log "installing mailpit $VERSION into $BIN (about a minute the first time)"
	mkdir -p "$BIN"
	# Outside the module, so that its dependencies do not touch go.mod.
	(cd / && GOBIN=$BIN GOFLAGS=-mod=mod go install "github.com/axllent/mailpit@$VERSION") >&2
	[[ -x $MAILPIT ]] || die "mailpit still missing after go install"
}

make_files() {
	if [[ ! -s $DIR/cert.pem || ! -s $DIR/key.pem ]]; then
		command -v openssl >/dev/null || die "openssl is needed for the test certificate"
		log "making a throwaway certificate for 127.0.0.1 and localhost"
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj /CN=passreset-mailpit-test -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
			-keyout "$DIR/key.pem.tmp" -out "$DIR/cert.pem.tmp" 2>/dev/null
		mv "$DIR/key.pem.tmp" "$DIR/key.pem"
		mv "$DIR/cert.pem.tmp" "$DIR/cert.pem"
	fi
	# A plain-text htpasswd line, as Mailpit accepts.
	printf 'passreset:%s\n' "$PASSWORD" >"$DIR/auth"
}

start_one() {
	local name=$1 pid
	if pid=$(server_pid "$name"); then
		echo "$pid"
		return 0
	fi
	local args=(--listen "127.0.0.1:$(api_port "$name")" --smtp "127.0.0.1:$(smtp_port "$name")"
		--database "$DIR/$name.db" --disable-version-check --smtp-disable-rdns --max 2000)
	case $name in
	plain)
		args+=(--smtp-auth-accept-any --smtp-auth-allow-insecure --enable-chaos
			--smtp-allowed-recipients '@example\.(com|org)$')
		;;
	starttls)
		args+=(--smtp-tls-cert "$DIR/cert.pem" --smtp-tls-key "$DIR/key.pem"
			--smtp-require-starttls --smtp-auth-file "$DIR/auth")
		;;
	tls)
		args+=(--smtp-tls-cert "$DIR/cert.pem" --smtp-tls-key "$DIR/key.pem"
			--smtp-require-tls --smtp-auth-file "$DIR/auth")
		;;
	esac
	rm -f "$DIR/$name.db" "$DIR/$name.db-"*
	log "starting mailpit $name: SMTP 127.0.0.1:$(smtp_port "$name"), API 127.0.0.1:$(api_port "$name")"
	# setsid + nohup: the server outlives this script and its terminal.
	# Fd 9 (our lock) must not leak into it.
	setsid nohup "$MAILPIT" "${args[@]}" </dev/null >"$DIR/$name.log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$DIR/$name.pid"
	echo "$pid"
}

start() {
	install_mailpit
	make_files
	local name pid pids=()
	for name in "${NAMES[@]}"; do
		pids+=("$(start_one "$name")")
	done
	# Poll /readyz; Mailpit is usually ready in well under a second.
	local i j
	for j in "${!NAMES[@]}"; do
		name=${NAMES[$j]}
		pid=${pids[$j]}
		for ((i = 0; i < 300; i++)); do
			ready "$name" && break
			if ! alive "$pid"; then
				tail -n 20 "$DIR/$name.log" >&2 || true
				die "mailpit $name exited during startup (log: $DIR/$name.log)"
			fi
			sleep 0.1
		done
		ready "$name" || die "mailpit $name was not ready within 30 s (log: $DIR/$name.log)"
	done
	env_lines
}

stop() {
	local name pid i
	for name in "${NAMES[@]}"; do
		if ! pid=$(server_pid "$name"); then
			rm -f "$DIR/$name.pid"
			continue
		fi
		log "stopping mailpit $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "mailpit $name did not stop within 10 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$DIR/$name.pid" "$DIR/$name.db" "$DIR/$name.db-"*
	done
}

status() {
	local name pid out=() ok=0
	for name in "${NAMES[@]}"; do
		if pid=$(server_pid "$name") && ready "$name"; then
			out+=("$name pid $pid SMTP 127.0.0.1:$(smtp_port "$name") API 127.0.0.1:$(api_port "$name")")
		else
			ok=1
		fi
	done
	if [[ $ok == 0 ]]; then
		printf 'running: %s\n' "${out[@]}"
		return 0
	fi
	echo "stopped"
	return 1
}

# dev_pid prints the PID of the running development server, or fails.
dev_pid() {
	local pid file=$DEV_DIR/mailpit.pid
	[[ -s $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
	[[ $(ps -o comm= -p "$pid" 2>/dev/null) == mailpit ]] || return 1
	echo "$pid"
}

dev_ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$DEV_UI/readyz" 2>/dev/null; }

dev_start() {
	install_mailpit
	local pid i
	if ! pid=$(dev_pid); then
		log "starting the development mailpit: SMTP 127.0.0.1:$DEV_SMTP, web UI 127.0.0.1:$DEV_UI, mail kept in $DEV_DIR/mail.db"
		setsid nohup "$MAILPIT" --listen "127.0.0.1:$DEV_UI" --smtp "127.0.0.1:$DEV_SMTP" \
			--database "$DEV_DIR/mail.db" --disable-version-check --smtp-disable-rdns \
			--smtp-auth-accept-any --smtp-auth-allow-insecure \
			</dev/null >"$DEV_DIR/mailpit.log" 2>&1 9>&- &
		pid=$!
		echo "$pid" >"$DEV_DIR/mailpit.pid"
	fi
	for ((i = 0; i < 300; i++)); do
		dev_ready && break
		if ! alive "$pid"; then
			tail -n 20 "$DEV_DIR/mailpit.log" >&2 || true
			die "the development mailpit exited during startup (log: $DEV_DIR/mailpit.log)"
		fi
		sleep 0.1
	done
	dev_ready || die "the development mailpit was not ready within 30 s (log: $DEV_DIR/mailpit.log)"
	echo "web UI:   http://127.0.0.1:$DEV_UI/"
	echo "SMTP_URL=smtp+plain://127.0.0.1:$DEV_SMTP"
}

dev_stop() {
	local pid i
	pid=$(dev_pid) || {
		rm -f "$DEV_DIR/mailpit.pid"
		return 0
	}
	log "stopping the development mailpit (pid $pid); its mail stays in $DEV_DIR/mail.db"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	rm -f "$DEV_DIR/mailpit.pid"
}

main() {
	local cmd=${1:-}
	case $cmd in
	env)
		env_lines
		return 0
		;;
	dev | dev-stop)
		mkdir -p "$DEV_DIR"
		exec 9>"$DEV_DIR/lock"
		flock 9
		if [[ $cmd == dev ]]; then dev_start; else dev_stop; fi
		return 0
		;;
	start | stop | restart | status) ;;
	*) die "usage: $0 start|stop|restart|status|env|dev|dev-stop" ;;
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
