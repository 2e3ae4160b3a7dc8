#!/usr/bin/env bash
# Add-on figures: in a fresh DYNO_HOME, times `dyno addons:create heroku-postgresql` (the first
# one creates the cluster: initdb + the first start) and the next ones, `heroku-redis` ones,
# then the servers' idle memory (PSS from /proc/<pid>/smaps_rollup, so pages the postmaster
# shares with its children count once). Builds the release binary unless DYNO=<binary> is given;
# needs root.
#
#   scripts/bench-addons.sh
#   DYNO=target/debug/dyno RUNS=5 scripts/bench-addons.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench-addons: needs root (the servers run as their own user, dynos as containers)" >&2
  exit 1
fi
if [ -z "${DYNO:-}" ]; then
  cargo build --release --quiet
  DYNO="$PWD/target/release/dyno"
fi
runs=${RUNS:-5}
work=$(mktemp -d /tmp/dyno-bench-addons-XXXXXX)
export DYNO_HOME="$work/home" DYNO_ROUTER_ADDR=127.0.0.1:0 DYNO_HTTPS_ADDR=off NO_COLOR=1
cleanup() {
  "$DYNO" daemon:stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ms() { echo $(( ($2 - $1) / 1000000 )); }
"$DYNO" apps:create bench-addons --no-remote >/dev/null 2>&1
"$DYNO" daemon:status >/dev/null
for plan in heroku-postgresql heroku-redis; do
  for i in $(seq "$runs"); do
    t0=$(date +%s%N)
    "$DYNO" addons:create "$plan" -a bench-addons >/dev/null 2>&1
    t1=$(date +%s%N)
    echo "$plan #$i: $(ms "$t0" "$t1") ms"
  done
done
sleep 5
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
postmaster=$(head -1 "$DYNO_HOME/addons/postgres/data/postmaster.pid")
pg_total=0; pg_n=0
for pid in "$postmaster" $(pgrep -P "$postmaster"); do
  pg_total=$(( pg_total + $(pss "$pid") )); pg_n=$(( pg_n + 1 ))
done
echo "PostgreSQL cluster with $runs databases, idle: $(( pg_total / 1024 )) MB PSS over $pg_n processes"
for f in "$DYNO_HOME"/addons/*/redis.pid; do
  pid=$(cat "$f")
  echo "redis-server $(basename "$(dirname "$f")"), idle: $(( $(pss "$pid") / 1024 )) MB PSS"
done
