#!/usr/bin/env bash
# scripts/galera.sh: a throwaway 3-node MariaDB Galera cluster on 127.0.0.1.
#
#   scripts/galera.sh start      install what is missing, start the 3 nodes (if not
#                                running), wait until each reports Synced, print one
#                                DSN per node (the last 3 lines)
#   scripts/galera.sh stop       stop every node (a no-op when none runs)
#   scripts/galera.sh kill N     kill -9 node N (1-3), for failure tests
#   scripts/galera.sh rejoin N   start node N again and wait until it is Synced
#   scripts/galera.sh dsn        print the 3 DSNs
#   scripts/galera.sh status     each node's wsrep state
#
# Nodes run as user mysql (rsync state transfer fails as root), listen on
# 127.0.0.1 only (SQL ports BASE+1..3, Galera replication ports BASE+101..103,
# IST BASE+111..113, SST BASE+121..123), keep their data in private directories
# and need no systemd. The DSNs set wsrep_sync_wait=3 so that reads (bit 1) and
# UPDATE/DELETE (bit 2) on one node see every write committed on another; the
# store refuses a Galera connection without both (see README, "Running on a
# cluster").
#
# Environment:
#   PASSRESET_GALERA_DIR   base directory (default /tmp/passreset-galera)
#   PASSRESET_GALERA_BASE  port base (default 14300)
set -euo pipefail

DIR=${PASSRESET_GALERA_DIR:-/tmp/passreset-galera}
BASE=${PASSRESET_GALERA_BASE:-14300}
PASSWORD=passreset
PATH=$PATH:/usr/sbin:/sbin
PROVIDER=/usr/lib/galera/libgalera_smm.so

log() { echo "galera.sh: $*" >&2; }
die() { log "$*"; exit 1; }

sqlport() { echo $((BASE + $1)); }
gport() { echo $((BASE + 100 + $1)); }
istport() { echo $((BASE + 110 + $1)); }
sstport() { echo $((BASE + 120 + $1)); }
ndir() { echo "$DIR/node$1"; }
sock() { echo "$(ndir "$1")/mariadbd.sock"; }
pidfile() { echo "$(ndir "$1")/mariadbd.pid"; }

dsn() {
	echo "passreset:${PASSWORD}@tcp(127.0.0.1:$(sqlport "$1"))/passreset?parseTime=true&wsrep_sync_wait=3"
}

alive() {
	local stat
	stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $stat && $stat != Z* ]]
}

node_pid() {
	local pid f
	f=$(pidfile "$1")
	[[ -s $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ $(ps -o comm= -p "$pid" 2>/dev/null) == mariadbd ]] || return 1
	echo "$pid"
}

client() { local n=$1; shift; mariadb --no-defaults --socket="$(sock "$n")" -uroot "$@"; }

wsrep_state() {
	client "$1" -N -B -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}'
}

install() {
	local need=()
	command -v mariadbd >/dev/null || need+=(mariadb-server)
	[[ -e $PROVIDER ]] || need+=(galera-4)
	command -v rsync >/dev/null || need+=(rsync)
	command -v lsof >/dev/null || need+=(lsof)
	[[ ${#need[@]} == 0 ]] && return 0
	[[ $(id -u) == 0 ]] || die "missing ${need[*]}; install with: apt-get install -y ${need[*]}"
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y "${need[@]}" >&2
}

cluster_address() {
	echo "gcomm://127.0.0.1:$(gport 1),127.0.0.1:$(gport 2),127.0.0.1:$(gport 3)"
}

# start_node N [--wsrep-new-cluster]
start_node() {
	local n=$1; shift
	local d; d=$(ndir "$n")
	node_pid "$n" >/dev/null && return 0
	mkdir -p "$d/data"
	chown -R mysql:mysql "$d"
	if [[ $n == 1 && ! -d $d/data/mysql ]]; then
		mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
			--auth-root-authentication-method=socket --skip-test-db >"$d/install.log" 2>&1 ||
			die "mariadb-install-db failed: $(tail -5 "$d/install.log")"
	fi
	rm -f "$(sock "$n")"
	setsid nohup mariadbd --no-defaults --user=mysql --datadir="$d/data" \
		--socket="$(sock "$n")" --pid-file="$(pidfile "$n")" --port="$(sqlport "$n")" \
		--bind-address=127.0.0.1 --skip-name-resolve --log-error="$d/error.log" \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
		--binlog-format=ROW --default-storage-engine=InnoDB --innodb-autoinc-lock-mode=2 \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
		--wsrep-on=ON --wsrep-provider="$PROVIDER" --wsrep-cluster-name=passreset \
		--wsrep-cluster-address="$(cluster_address)" --wsrep-node-name="node$n" \
		--wsrep-node-address="127.0.0.1:$(gport "$n")" \
		--wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$(gport "$n");ist.recv_addr=127.0.0.1:$(istport "$n");gcache.size=32M" \
		--wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$(sstport "$n")" \
		"$@" </dev/null >/dev/null 2>&1 9>&- &
	wait_synced "$n"
}

wait_synced() {
	local n=$1 i
	for i in $(seq 1 1200); do # up to 120 s, polling every 0.1 s
		[[ $(wsrep_state "$n") == Synced ]] && return 0
		sleep 0.1
	done
	die "node $n did not reach Synced; see $(ndir "$n")/error.log: $(tail -5 "$(ndir "$n")/error.log")"
}

running_nodes() {
	local n c=0
	for n in 1 2 3; do node_pid "$n" >/dev/null && c=$((c + 1)); done
	echo "$c"
}

start() {
	install
	mkdir -p "$DIR"
	exec 9>"$DIR/.lock"
	flock 9
	if [[ $(running_nodes) == 0 ]]; then
		# Nobody runs: node 1 bootstraps a new cluster from its data.
		local grastate; grastate=$(ndir 1)/data/grastate.dat
		[[ -f $grastate ]] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$grastate"
		start_node 1 --wsrep-new-cluster
	fi
	local n
	for n in 1 2 3; do start_node "$n"; done
	client 1 -e "CREATE DATABASE IF NOT EXISTS passreset CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
		CREATE USER IF NOT EXISTS 'passreset'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
		GRANT ALL ON passreset.* TO 'passreset'@'127.0.0.1';"
	for n in 1 2 3; do dsn "$n"; done
}

stop_node() {
	local n=$1 pid i
	pid=$(node_pid "$n") || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 600); do
		alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

stop() {
	local n
	for n in 3 2 1; do stop_node "$n"; done
}

case ${1:-} in
start) start ;;
stop) stop ;;
kill)
	[[ ${2:-} =~ ^[123]$ ]] || die "usage: galera.sh kill 1|2|3"
	pid=$(node_pid "$2") && kill -KILL "$pid"
	;;
rejoin)
	[[ ${2:-} =~ ^[123]$ ]] || die "usage: galera.sh rejoin 1|2|3"
	start_node "$2"
	;;
dsn) for n in 1 2 3; do dsn "$n"; done ;;
status) for n in 1 2 3; do echo "node$n $(wsrep_state "$n" || true)"; done ;;
*) die "usage: galera.sh start|stop|kill N|rejoin N|dsn|status" ;;
esac
