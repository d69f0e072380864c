#!/usr/bin/env bash
# bench/ab.sh OLD_BIN NEW_BIN: runs the same burst (and steady run) against two builds
# of monitor, alternating them round by round, so that a change can be judged by ratios
# measured side by side rather than against figures from another day or machine.
# Same servers, leases and CPU accounting as bench/run.sh; prints one line per run.
# BENCH_REPEAT, BENCH_DEVICES, BENCH_CONNS, BENCH_STEADY_RATE and
# BENCH_STEADY_FOR change the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: bench/ab.sh OLD_BIN NEW_BIN}
NEW=${2:?usage: bench/ab.sh OLD_BIN NEW_BIN}
REDIS_ADDR=${BENCH_REDIS_ADDR:-127.0.0.1:6379}
REDIS_HOST=${REDIS_ADDR%:*} REDIS_PORT=${REDIS_ADDR##*:} REDIS_DB=${BENCH_REDIS_DB:-15}
MYSQL_BASE=${BENCH_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/}
MYSQL_CLI=(${BENCH_MYSQL_CLI:-mysql -uroot -h127.0.0.1 -P3306})
DB=monitor_ab REPEAT=${BENCH_REPEAT:-3} DEVICES=${BENCH_DEVICES:-100000} CONNS=${BENCH_CONNS:-256}
STEADY_RATE=${BENCH_STEADY_RATE:-5000} STEADY_FOR=${BENCH_STEADY_FOR:-20s} PORT=${BENCH_PORT:-8888}
OUT=bench/out/ab
rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "$@"; }
sql() { "${MYSQL_CLI[@]}" -N -e "$1"; }
LOCK=monitor:testlock:$REDIS_DB TOKEN=ab-$$-$RANDOM MON_PID=
cleanup() {
	[ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null && wait "$MON_PID" 2>/dev/null
	if [ "$(rcli GET "$LOCK")" = "$TOKEN" ]; then rcli -n "$REDIS_DB" FLUSHDB >/dev/null; rcli DEL "$LOCK" >/dev/null; fi
	sql "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT
for i in $(seq 240); do
	[ "$(rcli SET "$LOCK" "$TOKEN" NX EX 3600)" = OK ] && break
	[ "$i" = 240 ] && { echo "redis db $REDIS_DB stays leased" >&2; exit 1; }
	sleep 0.5
done
mkdir -p "$OUT"
dsn="${MYSQL_BASE%/}/$DB?parseTime=true"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
run() { # run NAME BIN SIMARGS...
	local name=$1 bin=$2; shift 2
	sql "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4"
	rcli -n "$REDIS_DB" FLUSHDB >/dev/null
	MONITOR_HTTP_ADDR=127.0.0.1:$PORT MONITOR_REDIS_ADDR=$REDIS_ADDR MONITOR_REDIS_DB=$REDIS_DB MONITOR_MYSQL_DSN="$dsn" \
		MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 MONITOR_LOG_LEVEL=warn \
		MONITOR_DEVICE_RATE=1000 MONITOR_DEVICE_BURST=1000 "$bin" all >"$OUT/$name.log" 2>&1 &
	MON_PID=$!
	for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" != 000 ] && break; sleep 0.1; done
	local rp mp s0 r0 m0
	rp=$(rcli INFO server | awk -F: '/^process_id/ {print $2}' | tr -d '\r') mp=${BENCH_MYSQL_PID:-$(cat "$(sql 'SELECT @@pid_file')")}
	s0=$(ticks $MON_PID) r0=$(ticks "$rp") m0=$(ticks "$mp")
	"$NEW" simulate --url "http://127.0.0.1:$PORT" --dsn "$dsn" --json "$@" >"$OUT/$name.json"
	echo "$(($(ticks $MON_PID) - s0)) $(($(ticks "$rp") - r0)) $(($(ticks "$mp") - m0)) $(getconf CLK_TCK)" >"$OUT/$name.cpu"
	kill "$MON_PID"; wait "$MON_PID" || true; MON_PID=
	python3 - "$name" "$OUT/$name.json" "$OUT/$name.cpu" <<'PY'
import json, sys
name, j, c = sys.argv[1:]
r = json.load(open(j)); s, rd, m, hz = map(int, open(c).read().split())
n = r["accepted"]; us = lambda t: t / hz * 1e6 / n
print(f'{name:14} accepted {n} p50 {r["p50_ms"]:.2f} p99 {r["p99_ms"]:.1f} ms landed {r["land"]["landing_s"]:.2f} s '
      f'lost {r["land"]["lost"]} dup {r["land"]["duplicated"]} cpu/report: server {us(s):.0f} redis {us(rd):.0f} mariadb {us(m):.0f} µs')
PY
}
for r in $(seq "$REPEAT"); do
	for v in old new; do
		bin=$OLD; [ $v = new ] && bin=$NEW
		run "burst-$v-$r" "$bin" --devices "$DEVICES" --concurrency "$CONNS"
		run "steady-$v-$r" "$bin" --mode steady --rate "$STEADY_RATE" --duration "$STEADY_FOR" --devices "$DEVICES" --concurrency "$CONNS"
	done
done
