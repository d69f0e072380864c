#!/usr/bin/env bash
# bench/memory.sh: Redis memory and commands per report, for docs/SCALING.md. Starts its
# own redis-server (persistence off) on a free port, runs `monitor api` alone, sends a
# burst of $DEVICES reports (each device once), and reads INFO: the memory the queued
# reports and the fleet state take, and the Redis commands per accepted report. Then it
# starts `monitor worker`, waits until every report is in tb_status, and reads again:
# what stays is the fleet state of $DEVICES devices, and the commands of the landing.
set -euo pipefail
cd "$(dirname "$0")/.."

MYSQL_BASE=${BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
MYSQL_CLI=(${BENCH_MYSQL_CLI:-mysql -uroot -h127.0.0.1 -P3306})
DB=monitor_bench_memory
DEVICES=${BENCH_DEVICES:-50000}
QUEUES=${BENCH_QUEUES:-1}
PORT=${BENCH_PORT:-8896}
BIN=bin/monitor
TMP=$(mktemp -d)
PIDS=()
log() { printf '%s bench-memory: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
sql() { "${MYSQL_CLI[@]}" -N -e "$1"; }
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
	sql "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT

rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
redis-server --port "$rport" --bind 127.0.0.1 --dir "$TMP" --save "" --appendonly no --logfile "$TMP/redis.log" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
rc() { redis-cli -p "$rport" "$@"; }
used() { rc info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }
calls() { rc info commandstats | awk -F'[=,:]' '/^cmdstat_/ {n += $3} END {print n}'; }

make -s build
sql "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
export MONITOR_REDIS_ADDR=127.0.0.1:$rport MONITOR_MYSQL_DSN="${MYSQL_BASE%/}/$DB?parseTime=true" \
	MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 MONITOR_LOG_LEVEL=warn MONITOR_INGEST_QUEUES=$QUEUES \
	MONITOR_DEVICE_RATE=1000 MONITOR_DEVICE_BURST=1000 MONITOR_HTTP_ADDR=127.0.0.1:$PORT
"$BIN" migrate
"$BIN" api >"$TMP/api.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
m0=$(used) c0=$(calls)
"$BIN" simulate --url "http://127.0.0.1:$PORT" --devices "$DEVICES" --concurrency 64 --json >"$TMP/sim.json"
acc=$(jq .accepted "$TMP/sim.json")
m1=$(used) c1=$(calls)
"$BIN" worker >"$TMP/worker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do
	[ "$(sql "SELECT COUNT(*) FROM $DB.tb_status")" -ge "$acc" ] && break
	sleep 0.2
done
sleep 3 # the last batch's task is deleted after its commit
m2=$(used) c2=$(calls)
rc info commandstats | tr -d '\r' >"$TMP/commandstats"
awk -v acc="$acc" -v q="$QUEUES" -v m0="$m0" -v m1="$m1" -v m2="$m2" -v c0="$c0" -v c1="$c1" -v c2="$c2" 'BEGIN {
	printf "MONITOR_INGEST_QUEUES=%d, %d reports accepted (each device once)\n", q, acc
	printf "queued, with fleet state: %.0f bytes of Redis memory per report\n", (m1 - m0) / acc
	printf "after landing (fleet state of %d devices): %.0f bytes per device\n", acc, (m2 - m0) / acc
	printf "Redis commands per report: %.2f while accepting (API), %.2f while landing (worker, incl. its polling)\n", (c1 - c0) / acc, (c2 - c1) / acc
}'
