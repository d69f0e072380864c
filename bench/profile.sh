#!/usr/bin/env bash
# bench/profile.sh [DEVICES]: one burst against `monitor all` on the real Redis (db 15,
# leased like the tests do) and MariaDB (database monitor_bench), with CPU profiles of
# monitor (through MONITOR_PPROF_ADDR) and of the simulator, and the CPU each process
# used per report. Profiles land in bench/out/: inspect with
#   go tool pprof -top bin/monitor bench/out/monitor.cpu.prof
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${1:-100000}
DB=monitor_bench
DSN="root@tcp(127.0.0.1:3306)/$DB?parseTime=true"
LOCK=monitor:testlock:15
TOKEN=profile-$$
OUT=bench/out
mkdir -p "$OUT"
[ "$(redis-cli SET "$LOCK" "$TOKEN" NX EX 3600)" = OK ] || { echo "redis db 15 is leased by someone else" >&2; exit 1; }
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ "$(redis-cli GET "$LOCK")" = "$TOKEN" ] && redis-cli -n 15 FLUSHDB >/dev/null && redis-cli DEL "$LOCK" >/dev/null
	mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB" || true
}
trap cleanup EXIT
make -s build
mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
redis-cli -n 15 FLUSHDB >/dev/null
MONITOR_HTTP_ADDR=127.0.0.1:8888 MONITOR_PPROF_ADDR=127.0.0.1:6060 MONITOR_REDIS_ADDR=127.0.0.1:6379 MONITOR_REDIS_DB=15 \
MONITOR_MYSQL_DSN="$DSN" MONITOR_OPERATOR_TOKEN=bench-operator-token-0123456789 MONITOR_LOG_LEVEL=warn \
	bin/monitor all >"$OUT/profile-monitor.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8888/healthz)" != 000 ] && break; sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rp=$(redis-cli INFO server | awk -F: '/^process_id/ {print $2}' | tr -d '\r') mp=$(cat "$(mysql -uroot -h127.0.0.1 -N -e 'SELECT @@pid_file')")
s0=$(ticks "$PID") r0=$(ticks "$rp") m0=$(ticks "$mp")
curl -s -o "$OUT/monitor.cpu.prof" "http://127.0.0.1:6060/debug/pprof/profile?seconds=${PROFILE_SECONDS:-15}" &
CURL=$!
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
bin/monitor simulate --devices "$DEVICES" --concurrency 256 --dsn "$DSN" --cpuprofile "$OUT/simulate.cpu.prof"
hz=$(getconf CLK_TCK)
echo "CPU µs per report: monitor $(( ($(ticks "$PID") - s0) * 1000000 / hz / DEVICES )), redis $(( ($(ticks "$rp") - r0) * 1000000 / hz / DEVICES )), mariadb $(( ($(ticks "$mp") - m0) * 1000000 / hz / DEVICES ))"
grep VmHWM "/proc/$PID/status"
wait "$CURL"
