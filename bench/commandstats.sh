#!/usr/bin/env bash
# bench/commandstats.sh [SIMULATE_ARGS...]: one run of `monitor simulate` (default: a
# burst of 100,000 devices over 256 connections) against `monitor all` on the real Redis
# (db 15, leased like the tests do) and MariaDB (database monitor_bench), then what Redis
# did meanwhile: INFO commandstats by total time (a script's inner commands are counted
# both on their own lines and in its EVALSHA), the commands processed, and the batch
# writer's transactions (monitor_batch_reports). BIN picks the binary (default bin/monitor).
# Example: bench/commandstats.sh --mode steady --rate 5000 --duration 10s
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/monitor}
DB=monitor_bench
DSN="root@tcp(127.0.0.1:3306)/$DB?parseTime=true"
LOCK=monitor:testlock:15
TOKEN=commandstats-$$
[ "$(redis-cli SET "$LOCK" "$TOKEN" NX EX 3600)" = OK ] || { echo "redis db 15 is leased by someone else" >&2; exit 1; }
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ "$(redis-cli GET "$LOCK")" = "$TOKEN" ] && redis-cli -n 15 FLUSHDB >/dev/null && redis-cli DEL "$LOCK" >/dev/null
	mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT
[ "$BIN" = bin/monitor ] && make -s build
mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
redis-cli -n 15 FLUSHDB >/dev/null
MONITOR_HTTP_ADDR=127.0.0.1:8888 MONITOR_REDIS_ADDR=127.0.0.1:6379 MONITOR_REDIS_DB=15 MONITOR_MYSQL_DSN="$DSN" \
MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 MONITOR_LOG_LEVEL=warn MONITOR_DEVICE_RATE=1000 MONITOR_DEVICE_BURST=1000 \
	"$BIN" all >bench/out/commandstats-monitor.log 2>&1 &
PID=$!
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8888/healthz)" != 000 ] && break; sleep 0.1; done
redis-cli CONFIG RESETSTAT >/dev/null
args=("$@")
[ ${#args[@]} = 0 ] && args=(--devices 100000 --concurrency 256)
"$BIN" simulate --dsn "$DSN" "${args[@]}" 2>&1 | grep -E 'latency|landed'
curl -s http://127.0.0.1:8888/metrics | grep -E '^monitor_batch_reports_(count|sum)'
echo "usec calls command"
redis-cli INFO commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat/ {print $5, $3, $1}' | sort -rn | head -15
redis-cli INFO stats | tr -d '\r' | grep total_commands_processed
