#!/usr/bin/env bash
# Dyno start latency: builds the release binary, then runs benches/start_latency.rs with it as
# the shim/init of every dyno. Needs root (real containers). Prints a table: median/p90/min of
# Runtime::start -> command running inside the dyno, next to bare `unshare` baselines.
#
#   scripts/bench-start.sh                # 30 runs after 3 warm-ups
#   DYNO_BENCH_RUNS=100 scripts/bench-start.sh
#   DYNO_SHIM_LOG=dyno::timing=debug ...  # (shim log goes to each dyno's shim.log)
set -euo pipefail

cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-start: needs root (dynos are real containers)" >&2
    exit 1
fi

cargo build --release
export DYNO_BENCH_EXE="$PWD/target/release/dyno"
exec timeout --kill-after=30 600 cargo bench --bench start_latency
