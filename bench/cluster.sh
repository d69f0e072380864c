#!/usr/bin/env bash
# bench/cluster.sh: `make bench-cluster`. The same burst against `monitor all` on one Redis
# and on a local 3-master Redis Cluster, alternating round by round, so the figures are
# side by side on whatever load the machine has. Every Redis is a redis-server this script
# starts on free ports in a temporary folder (persistence off), so the single Redis and the
# cluster nodes run alike; MariaDB is the shared one (fresh database per run).
#
# Runs per round: one Redis with MONITOR_INGEST_QUEUES=1, one Redis with $QUEUES queues,
# and the cluster with $QUEUES queues. Prints a Markdown table of each run and the medians,
# with the CPU time per report of monitor and of every Redis (summed over the nodes, and
# the busiest node alone), to bench/out-cluster/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

MYSQL_BASE=${BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
MYSQL_CLI=(${BENCH_MYSQL_CLI:-mysql -uroot -h127.0.0.1 -P3306})
DB=monitor_bench_cluster
REPEAT=${BENCH_REPEAT:-3}
DEVICES=${BENCH_DEVICES:-50000}
CONNS=${BENCH_CONNS:-128}
QUEUES=${BENCH_QUEUES:-6}
PORT=${BENCH_PORT:-8897}
OUT=bench/out-cluster
BIN=bin/monitor
TMP=$(mktemp -d)
PIDS=()
MON_PID=

log() { printf '%s bench-cluster: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
sql() { "${MYSQL_CLI[@]}" -N -e "$1"; }
cleanup() {
	[ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
	sql "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
start_redis() { # start_redis NAME ARGS...: sets PORT and PID of the new server
	local name=$1; shift
	PORT_=$(free_port)
	mkdir -p "$TMP/$name"
	redis-server --port "$PORT_" --bind 127.0.0.1 --dir "$TMP/$name" --save "" --appendonly no \
		--logfile "$TMP/$name/redis.log" "$@" </dev/null >/dev/null 2>&1 &
	PID_=$!
	PIDS+=("$PID_")
	for _ in $(seq 100); do redis-cli -p "$PORT_" ping >/dev/null 2>&1 && break; sleep 0.05; done
}
ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
max_ticks() { # max_ticks "BEFORE..." PIDS...: the largest per-process delta
	local -a before=($1); shift
	local i=0 m=0 d
	for p in "$@"; do d=$(($(ticks "$p") - before[i])); [ "$d" -gt "$m" ] && m=$d; i=$((i + 1)); done
	echo "$m"
}

summarize() { # the Markdown tables of the runs in $OUT
	{
		echo "Burst of $DEVICES devices over $CONNS connections, $REPEAT rounds alternating the three set-ups"
		echo "($(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD))."
		echo
		echo "| run | accepted/s | p99 ms | landing s | lost | dup | monitor µs/report | Redis µs/report (all nodes) | busiest Redis node µs/report |"
		echo "|---|---|---|---|---|---|---|---|---|"
		rows=$(for f in "$OUT"/*.json; do
			n=$(basename "$f" .json)
			read -r m rs rmax hz <"$OUT/$n.cpu"
			acc=$(jq .accepted "$f")
			us() { awk -v t="$1" -v hz="$hz" -v n="$acc" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }'; }
			echo "| $n | $(jq '.accepted_per_s | floor' "$f") | $(jq .p99_ms "$f") | $(jq '.land.landing_s * 10 | round / 10' "$f") | $(jq .land.lost "$f") | $(jq .land.duplicated "$f") | $(us "$m") | $(us "$rs") | $(us "$rmax") |"
		done)
		echo "$rows"
		echo
		echo "Medians per set-up:"
		echo
		echo "| set-up | accepted/s | landing s | monitor µs/report | Redis µs/report (all nodes) | busiest Redis node µs/report |"
		echo "|---|---|---|---|---|---|"
		for setup in single-q1 "single-q$QUEUES" "cluster-q$QUEUES"; do
			med() { sort -n | awk '{v[NR] = $1} END { printf "%s", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
			col() { grep "^| $setup-[0-9]* |" <<<"$rows" | awk -F' \\| ' -v c="$1" '{print $c}' | med; }
			echo "| $setup | $(col 2) | $(col 4) | $(col 7) | $(col 8) | $(col 9 | tr -d ' |') |"
		done
	} >"$OUT/summary.md"
}
if [ "${1:-}" = --summary ]; then summarize; cat "$OUT/summary.md"; exit 0; fi

log "building $BIN"
make -s build
mkdir -p "$OUT"
rm -f "$OUT"/*

start_redis single
single_port=$PORT_ single_pid=$PID_
cluster_ports=() cluster_pids=()
for i in 1 2 3; do
	# The bus port defaults to the port + 10000, past 65535 for a high free port.
	start_redis "node$i" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$(free_port)"
	cluster_ports+=("$PORT_") cluster_pids+=("$PID_")
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
for p in "${cluster_ports[@]}"; do
	for _ in $(seq 100); do redis-cli -p "$p" cluster info 2>/dev/null | grep -q cluster_state:ok && break; sleep 0.1; done
done
cluster_addrs=$(printf '127.0.0.1:%s,' "${cluster_ports[@]}"); cluster_addrs=${cluster_addrs%,}

run() { # run NAME QUEUES REDIS-ENV...: one burst on a fresh database and flushed Redis
	local name=$1 queues=$2; shift 2
	local -a pids
	sql "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
	if [ "${1%%=*}" = MONITOR_REDIS_CLUSTER ]; then
		pids=("${cluster_pids[@]}")
		for p in "${cluster_ports[@]}"; do redis-cli -p "$p" flushall >/dev/null; done
	else
		pids=("$single_pid")
		redis-cli -p "$single_port" flushall >/dev/null
	fi
	env "$@" MONITOR_HTTP_ADDR=127.0.0.1:$PORT MONITOR_INGEST_QUEUES="$queues" \
		MONITOR_MYSQL_DSN="${MYSQL_BASE%/}/$DB?parseTime=true" MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 \
		MONITOR_LOG_LEVEL=warn MONITOR_DEVICE_RATE=1000 MONITOR_DEVICE_BURST=1000 \
		"$BIN" all >"$OUT/$name.log" 2>&1 &
	MON_PID=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
	local m0 r0 before
	m0=$(ticks "$MON_PID") r0=$(ticks "${pids[@]}") before=$(for p in "${pids[@]}"; do ticks "$p"; done | tr '\n' ' ')
	"$BIN" simulate --url "http://127.0.0.1:$PORT" --dsn "${MYSQL_BASE%/}/$DB?parseTime=true" --json \
		--devices "$DEVICES" --concurrency "$CONNS" >"$OUT/$name.json"
	echo "$(($(ticks "$MON_PID") - m0)) $(($(ticks "${pids[@]}") - r0)) $(max_ticks "$before" "${pids[@]}") $(getconf CLK_TCK)" >"$OUT/$name.cpu"
	kill "$MON_PID"; wait "$MON_PID" || true; MON_PID=
	log "$name: $(jq -c '{accepted, accepted_per_s, p99_ms, landing_s: .land.landing_s, lost: .land.lost, dup: .land.duplicated}' "$OUT/$name.json") cpu $(cat "$OUT/$name.cpu")"
}

for r in $(seq "$REPEAT"); do
	run "single-q1-$r" 1 MONITOR_REDIS_ADDR=127.0.0.1:$single_port
	run "single-q$QUEUES-$r" "$QUEUES" MONITOR_REDIS_ADDR=127.0.0.1:$single_port
	run "cluster-q$QUEUES-$r" "$QUEUES" MONITOR_REDIS_CLUSTER=$cluster_addrs
done

summarize

cat "$OUT/summary.md"
