#!/usr/bin/env bash
# bench/run.sh: `make bench`. Runs monitor, the one-INSERT-per-request baseline and the
# floor (Echo decoding each report, storing nothing) side by side against the real Redis
# and MariaDB, REPEAT times, and writes BENCHMARKS.md.
#
# Redis: db $BENCH_REDIS_DB (default 15), leased like internal/testenv does with the lock
# key monitor:testlock:N in db 0, so tests running at the same time never share it.
# MariaDB: fresh databases monitor_bench and monitor_bench_baseline, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_ADDR=${BENCH_REDIS_ADDR:-127.0.0.1:6379}
REDIS_HOST=${REDIS_ADDR%:*}
REDIS_PORT=${REDIS_ADDR##*:}
REDIS_DB=${BENCH_REDIS_DB:-15}
MYSQL_BASE=${BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
MYSQL_CLI=(${BENCH_MYSQL_CLI:-mysql -uroot -h127.0.0.1 -P3306})
DB=monitor_bench
BASE_DB=monitor_bench_baseline
REPEAT=${BENCH_REPEAT:-3}
DEVICES=${BENCH_DEVICES:-100000}
CONNS=${BENCH_CONNS:-256}
STEADY_RATE=${BENCH_STEADY_RATE:-5000}
STEADY_FOR=${BENCH_STEADY_FOR:-30s}
SUSTAIN_RATES=${BENCH_SUSTAIN_RATES:-6000 10000 15000}
SUSTAIN_FOR=${BENCH_SUSTAIN_FOR:-15s}
PORT=${BENCH_PORT:-8888}
BASE_PORT=${BENCH_BASE_PORT:-8899}
FLOOR_PORT=${BENCH_FLOOR_PORT:-8877}
OUT=bench/out
BIN=bin/monitor

rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
sql() { "${MYSQL_CLI[@]}" -N -e "$1"; }
log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

LOCK=monitor:testlock:$REDIS_DB
TOKEN=bench-$$-$RANDOM
MON_PID= BASE_PID= FLOOR_PID=
cleanup() {
	[ -n "$FLOOR_PID" ] && kill "$FLOOR_PID" 2>/dev/null && wait "$FLOOR_PID" 2>/dev/null
	[ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null
	[ -n "$BASE_PID" ] && kill "$BASE_PID" 2>/dev/null && wait "$BASE_PID" 2>/dev/null
	if [ "$(rcli GET "$LOCK")" = "$TOKEN" ]; then rcli -n "$REDIS_DB" FLUSHDB >/dev/null; rcli DEL "$LOCK" >/dev/null; fi
	sql "DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS $BASE_DB" || true
}
trap cleanup EXIT

for i in $(seq 240); do
	[ "$(rcli SET "$LOCK" "$TOKEN" NX EX 3600)" = OK ] && break
	[ "$i" = 240 ] && { log "redis db $REDIS_DB stays leased by someone else"; exit 1; }
	sleep 0.5
done

log "building $BIN"
# The commit the binary is built from, taken now: HEAD may move while the run goes on.
# BENCHMARKS.md, the output of a run before, does not make the source dirty.
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':(exclude)BENCHMARKS.md' || echo -dirty)
make -s build
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt

dsn() { echo "${MYSQL_BASE%/}/$1?parseTime=true"; }
fresh_db() { sql "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 CHARACTER SET utf8mb4"; }
wait_http() { # any HTTP answer, even a 404, means the server is up
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz")" != 000 ] && return 0
		sleep 0.1
	done
	log "nothing listens on :$1"; return 1
}
start_monitor() {
	fresh_db "$DB"
	# The lease must still be ours: a Redis restart by someone else would lose it.
	[ "$(rcli GET "$LOCK")" = "$TOKEN" ] || { log "lost the lease on redis db $REDIS_DB"; exit 1; }
	rcli -n "$REDIS_DB" FLUSHDB >/dev/null
	MONITOR_HTTP_ADDR=127.0.0.1:$PORT MONITOR_REDIS_ADDR=$REDIS_ADDR MONITOR_REDIS_DB=$REDIS_DB \
	MONITOR_MYSQL_DSN="$(dsn $DB)" MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 \
	MONITOR_LOG_LEVEL=warn MONITOR_DEVICE_RATE=1000 MONITOR_DEVICE_BURST=1000 \
		"$BIN" all >"$OUT/monitor-$1.log" 2>&1 &
	MON_PID=$!
	wait_http "$PORT"
}
stop_monitor() { kill "$MON_PID"; wait "$MON_PID" || true; MON_PID=; }
start_baseline() {
	fresh_db "$BASE_DB"
	"$BIN" simulate baseline --addr "127.0.0.1:$BASE_PORT" --dsn "$(dsn $BASE_DB)" >"$OUT/baseline-$1.log" 2>&1 &
	BASE_PID=$!
	wait_http "$BASE_PORT"
}
stop_baseline() { kill "$BASE_PID"; wait "$BASE_PID" || true; BASE_PID=; }
start_floor() {
	"$BIN" simulate floor --addr "127.0.0.1:$FLOOR_PORT" >"$OUT/floor-$1.log" 2>&1 &
	FLOOR_PID=$!
	wait_http "$FLOOR_PORT"
}
stop_floor() { kill "$FLOOR_PID"; wait "$FLOOR_PID" || true; FLOOR_PID=; }
# server_pid is the pid of the MariaDB the bench uses (other tests may run mariadbds of their own).
server_pid() { cat "$(sql 'SELECT @@pid_file')"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
sim() { # sim NAME PORT DBNAME SERVER_PID ARGS...: one simulator run, its JSON summary in $OUT/NAME.json
	local name=$1 port=$2 db=$3 pid=$4; shift 4
	local redis_pid mysql_pid s0 r0 m0
	redis_pid=$(rcli INFO server | awk -F: '/^process_id/ {print $2}' | tr -d '\r') mysql_pid=$(server_pid)
	awk '{print $1, $2, $3}' /proc/loadavg >"$OUT/$name.load"
	s0=$(ticks "$pid") r0=$(ticks "$redis_pid") m0=$(ticks "$mysql_pid")
	local land=()
	[ -n "$db" ] && land=(--dsn "$(dsn "$db")") # the floor stores nothing: no landing to wait for
	"$BIN" simulate --url "http://127.0.0.1:$port" "${land[@]}" --json "$@" >"$OUT/$name.json"
	# CPU ticks used during the run (sending and landing) by the server, Redis and MariaDB.
	echo "$(($(ticks "$pid") - s0)) $(($(ticks "$redis_pid") - r0)) $(($(ticks "$mysql_pid") - m0)) $(getconf CLK_TCK)" >"$OUT/$name.cpu"
	log "$name: $(cat "$OUT/$name.json") cpu ticks: $(cat "$OUT/$name.cpu")"
}
peak_rss() { awk '/VmHWM/ {print $2}' "/proc/$MON_PID/status" >"$OUT/$1.rss"; }

for r in $(seq "$REPEAT"); do
	log "round $r/$REPEAT: monitor burst"
	start_monitor "burst-$r"
	sim "burst-$r" "$PORT" "$DB" "$MON_PID" --devices "$DEVICES" --concurrency "$CONNS"
	peak_rss "burst-$r"
	log "round $r/$REPEAT: monitor steady $STEADY_RATE/s for $STEADY_FOR"
	sim "steady-$r" "$PORT" "$DB" "$MON_PID" --mode steady --rate "$STEADY_RATE" --duration "$STEADY_FOR" --devices "$DEVICES" --concurrency "$CONNS"
	stop_monitor
	log "round $r/$REPEAT: baseline burst"
	start_baseline "$r"
	sim "baseline-$r" "$BASE_PORT" "$BASE_DB" "$BASE_PID" --devices "$DEVICES" --concurrency "$CONNS"
	stop_baseline
	log "round $r/$REPEAT: floor burst"
	start_floor "$r"
	sim "floor-$r" "$FLOOR_PORT" "" "$FLOOR_PID" --devices "$DEVICES" --concurrency "$CONNS"
	stop_floor
done

for rate in $SUSTAIN_RATES; do
	log "sustained: monitor steady $rate/s for $SUSTAIN_FOR"
	start_monitor "sustain-$rate"
	sim "sustain-$rate" "$PORT" "$DB" "$MON_PID" --mode steady --rate "$rate" --duration "$SUSTAIN_FOR" --devices "$DEVICES" --concurrency "$CONNS"
	peak_rss "sustain-$rate"
	stop_monitor
done

{
	echo "nproc=$(nproc)"
	echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "mem=$(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')"
	echo "go=$(go version)"
	echo "redis=$(rcli INFO server | awk -F: '/^redis_version/ {print $2}' | tr -d '\r')"
	echo "mariadb=$(sql 'SELECT VERSION()')"
	echo "kernel=$(uname -sr)"
	echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
	echo "commit=$COMMIT"
	echo "command=make bench (BENCH_REPEAT=$REPEAT BENCH_DEVICES=$DEVICES BENCH_CONNS=$CONNS)"
} >"$OUT/machine.txt"
go run ./bench/report -dir "$OUT" -o BENCHMARKS.md
log "wrote BENCHMARKS.md"
