#!/usr/bin/env bash
# Warm redeploy of examples/node: after one cold deploy (npm ci from the registry), each run
# changes the source (same dependencies) and times `dyno up` start -> the first response through
# the router that shows the change. Builds the release binary; needs root (real containers).
# Prints every run and the median/p90/min/max. Target: <= 3 s.
#
#   scripts/bench-redeploy.sh              # 10 runs
#   DYNO_BENCH_RUNS=20 scripts/bench-redeploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench-redeploy: needs root (dynos are real containers)" >&2
  exit 1
fi

cargo build --release --quiet
bin="$PWD/target/release/dyno"
runs=${DYNO_BENCH_RUNS:-10}
work=$(mktemp -d /tmp/dyno-bench-redeploy-XXXXXX)
export DYNO_HOME="$work/home" DYNO_ROUTER_ADDR=127.0.0.1:0 NO_COLOR=1
cleanup() {
  "$bin" daemon:stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r examples/node "$work/bench-node"
cd "$work/bench-node"
echo "cold deploy (npm ci from the registry)..."
"$bin" up >/dev/null
port=$("$bin" daemon:status --json | sed -n 's/.*"router_addr": *"[^"]*:\([0-9]*\)".*/\1/p')

times=()
for i in $(seq "$runs"); do
  sed -i "s/^const GREETING = .*/const GREETING = \"Redeploy $i\";/" server.js
  t0=$(date +%s%N)
  "$bin" up >/dev/null
  until curl -fs -H "Host: bench-node.localhost" "http://127.0.0.1:$port/" | grep -q "^Redeploy $i on"; do
    sleep 0.005
  done
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  times+=("$ms")
  echo "run $i: $ms ms"
done

printf '%s\n' "${times[@]}" | sort -n | awk '
  { v[NR] = $1 }
  END {
    p90 = v[int((NR * 9 + 9) / 10)]; if (p90 == "") p90 = v[NR]
    med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "warm redeploy (dyno up -> changed response), %d runs: median %.0f ms, p90 %d ms, min %d ms, max %d ms (target <= 3000 ms)\n", NR, med, p90, v[1], v[NR]
  }'
