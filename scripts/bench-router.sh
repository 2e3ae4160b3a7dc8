#!/usr/bin/env bash
# The router and Logplex benchmarks (issue 5), all on loopback and bounded in time. As root.
#
#  1. dyno's router vs Debian's nginx as reverse proxies to the same fast upstream
#     (benches/router.rs `upstream`, a tiny hyper server), same run, interleaved. The upstream
#     runs where a dyno does: in a network namespace of its own, behind a veth on an isolated
#     bridge port, reached at its own address (UPSTREAM_NS=0: on the host's loopback instead):
#     - saturation: `wrk -t2 -c64 -d${SECS}s` (keep-alive), requests/s, best of ROUNDS;
#     - latency at a fixed rate well below saturation (RATE req/s over 16 connections, the bench
#       binary's fixed-rate loop: wrk2 is not in Debian), p50/p99, and the p99 added over
#       hitting the upstream directly.
#     nginx as a fair production proxy: one worker per core, HTTP/1.1 with keep-alive to the
#     upstream, access log on, X-Forwarded-*/X-Request-Id/X-Request-Start set like dyno's.
#     dyno's router logs every request into a Logplex stream with on-disk history, as in the
#     daemon.
#  2. log throughput: a dyno writing LOG_LINES lines as fast as it can, read by
#     `dyno logs --tail`: lines/s at the reader and lines dropped (L10).
#  3. wake from idle to first byte for examples/node (Express; WAKE_APP=hello for the Python
#     example), WAKE_RUNS times.
#
#   scripts/bench-router.sh                 # everything
#   SECS=10 ROUNDS=3 RATE=2000 LOG_LINES=2000000 WAKE_RUNS=5 scripts/bench-router.sh
#   ONLY=proxy|logs|wake scripts/bench-router.sh
#   UPSTREAM_NS=0 ONLY=proxy scripts/bench-router.sh  # upstream on loopback (before dyno networking)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-2000}
LOG_LINES=${LOG_LINES:-2000000}
WAKE_RUNS=${WAKE_RUNS:-5}
WAKE_APP=${WAKE_APP:-node}
ONLY=${ONLY:-}
UPSTREAM_NS=${UPSTREAM_NS:-1}

if [ "$(id -u)" != 0 ]; then
    echo "bench-router: needs root (apt, and real dynos for the log and wake parts)" >&2
    exit 1
fi
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update -qq
    # policy-rc.d or not, we never want the packaged nginx service running.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk >/dev/null
    service nginx stop >/dev/null 2>&1 || true
fi

cargo build --release -q
BENCH=$(cargo bench --bench router --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "router" and m.get("executable"):
        print(m["executable"])')
DYNO=$ROOT/target/release/dyno

WORK=$(mktemp -d /tmp/dyno-bench-router.XXXXXX)
PIDS=()
NS=dynobench$$
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del dynobenchbr 2>/dev/null || true
    if [ -n "${DYNO_HOME:-}" ]; then timeout 60 "$DYNO" daemon:stop >/dev/null 2>&1 || true; fi
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

UP=127.0.0.1:18080
RTR=127.0.0.1:18081
NGX=127.0.0.1:18082
cores=$(nproc)

proxy_bench() {
    if [ "$UPSTREAM_NS" = 1 ]; then
        # Wired as a dyno is (runtime/net.rs): bridge with the gateway, an isolated port, the
        # namespace's /32 with an on-link route to the gateway, a host route to it.
        UP=198.18.255.2:18080
        ip netns add "$NS"
        ip link add dynobenchbr type bridge
        ip addr add 198.18.255.1/32 dev dynobenchbr
        ip link set dynobenchbr up
        ip link add dvbench0 type veth peer name eth0 netns "$NS"
        ip link set dvbench0 master dynobenchbr
        ip link set dvbench0 type bridge_slave isolated on
        ip link set dvbench0 up
        ip route add 198.18.255.2/32 dev dynobenchbr
        ip -n "$NS" link set lo up
        ip -n "$NS" addr add 198.18.255.2/32 dev eth0
        ip -n "$NS" link set eth0 up
        ip -n "$NS" route add 198.18.255.1/32 dev eth0
        ip -n "$NS" route add default via 198.18.255.1
        ip netns exec "$NS" "$BENCH" upstream 0.0.0.0:18080 & PIDS+=($!)
        echo "== the upstream runs in network namespace $NS at $UP (as a dyno does)"
    else
        "$BENCH" upstream $UP & PIDS+=($!)
    fi
    mkdir -p "$WORK/logs" "$WORK/nginx"
    "$BENCH" router $RTR $UP "$WORK/logs" & PIDS+=($!)
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes $cores;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log $WORK/nginx/access.log combined;
    upstream app { server $UP; keepalive 128; keepalive_requests 1000000; }
    keepalive_requests 1000000;
    server {
        listen $NGX reuseport;
        server_name bench.localhost;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Port \$server_port;
            proxy_set_header X-Request-Id \$request_id;
            proxy_set_header X-Request-Start \$msec;
            proxy_buffering on;
        }
    }
}
EOF
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" & PIDS+=($!)
    sleep 1
    for a in $UP $RTR $NGX; do
        curl -sf -H 'Host: bench.localhost' "http://$a/" >/dev/null || { echo "nothing answers on $a" >&2; exit 1; }
    done

    wrk_rps() { # addr
        wrk -t2 -c64 -d"${SECS}s" -H 'Host: bench.localhost' "http://$1/" | awk '/Requests\/sec/ {print $2}'
    }
    echo "== saturation: wrk -t2 -c64 -d${SECS}s, best of $ROUNDS (interleaved)"
    wrk -t2 -c64 -d2s -H 'Host: bench.localhost' "http://$RTR/" >/dev/null
    wrk -t2 -c64 -d2s -H 'Host: bench.localhost' "http://$NGX/" >/dev/null
    best_d=0; best_r=0; best_n=0; ratios=()
    for i in $(seq "$ROUNDS"); do
        r=$(wrk_rps $RTR); n=$(wrk_rps $NGX); dd=$(wrk_rps $UP)
        ratio=$(python3 -c "print(round($r/$n, 2))")
        ratios+=("$ratio")
        echo "   round $i: upstream direct $dd   dyno router $r   nginx $n   router/nginx ${ratio}x"
        best_r=$(python3 -c "print(max($best_r, $r))")
        best_n=$(python3 -c "print(max($best_n, $n))")
        best_d=$(python3 -c "print(max($best_d, $dd))")
    done
    echo "   best: upstream direct $best_d req/s, dyno router $best_r req/s, nginx $best_n req/s, router/nginx $(python3 -c "print(round($best_r/$best_n, 2))")x"
    echo "   router/nginx per round: ${ratios[*]}; median $(median "${ratios[@]}")x"

    echo "== latency at a fixed $RATE req/s (16 connections, ${SECS}s), p50 / p99 / p99.9 in µs"
    local added_r=() added_n=()
    for i in $(seq "$ROUNDS"); do
        read -r d50 d99 d999 dmax drps derr < <("$BENCH" rate $UP bench.localhost "$RATE" "$SECS" 16)
        read -r r50 r99 r999 rmax rrps rerr < <("$BENCH" rate $RTR bench.localhost "$RATE" "$SECS" 16)
        read -r n50 n99 n999 nmax nrps nerr < <("$BENCH" rate $NGX bench.localhost "$RATE" "$SECS" 16)
        echo "   round $i: direct $d50/$d99/$d999   router $r50/$r99/$r999 (+$((r99 - d99)) µs p99, $rerr errors)   nginx $n50/$n99/$n999 (+$((n99 - d99)) µs p99, $nerr errors)"
        added_r+=($((r99 - d99))); added_n+=($((n99 - d99)))
    done
    echo "   p99 added over direct, median of the rounds: router $(median "${added_r[@]}") µs, nginx $(median "${added_n[@]}") µs"
    echo "   router log lines written: $(cat "$WORK"/logs/bench*.jsonl | wc -l) (history files, rotated), nginx access log: $(wc -l <"$WORK/nginx/access.log") lines"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    PIDS=()
    wait 2>/dev/null || true
}

daemon_start() {
    export DYNO_HOME=$WORK/home DYNO_ROUTER_ADDR=127.0.0.1:0 DYNO_HTTPS_ADDR=off DYNO_IDLE_AFTER=1 NO_COLOR=1
    "$DYNO" apps >/dev/null
}

logs_bench() {
    daemon_start
    mkdir -p "$WORK/flood"
    cp tests/fixtures/routerapp/*.py "$WORK/flood/"
    printf 'web: python3 web.py\nflood: python3 flood.py %s\n' "$LOG_LINES" >"$WORK/flood/Procfile"
    (cd "$WORK/flood" && "$DYNO" apps:create flood >/dev/null && "$DYNO" up >/dev/null)
    "$DYNO" logs -a flood --tail -n 0 --ps flood >"$WORK/tail.fifo.out" 2>&1 &
    local tail_pid=$!
    PIDS+=($tail_pid)
    sleep 0.5
    "$DYNO" ps:scale -a flood flood=1 >/dev/null
    # The reader: count lines as `dyno logs --tail` prints them.
    local out
    out=$(timeout 120 tail -n +1 -f "$WORK/tail.fifo.out" | "$BENCH" count "app[flood.1]: flood " "flood done") || true
    kill "$tail_pid" 2>/dev/null || true
    read -r n rps dropped secs <<<"$out"
    echo "== log throughput: one dyno writing $LOG_LINES lines as fast as it can → dyno logs --tail"
    echo "   received $n lines in ${secs}s: $rps lines/s at the reader; $dropped reported dropped (L10)"
    "$DYNO" ps:scale -a flood flood=0 >/dev/null
}

wake_bench() {
    [ -n "${DYNO_HOME:-}" ] || daemon_start
    local app="wake-$WAKE_APP"
    cp -r "examples/$WAKE_APP" "$WORK/$app"
    rm -rf "$WORK/$app/node_modules"
    (cd "$WORK/$app" && "$DYNO" apps:create "$app" >/dev/null && "$DYNO" up >/dev/null)
    local port
    port=$("$DYNO" daemon:status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["router_addr"].rsplit(":",1)[1])')
    "$DYNO" ps:idle on -a "$app" >/dev/null
    local times=()
    for i in $(seq "$WAKE_RUNS"); do
        for _ in $(seq 100); do
            "$DYNO" ps:idle -a "$app" --json | grep -q '"idle": true' && break
            sleep 0.1
        done
        sleep 0.5 # the web dyno is gone, not only marked idle
        t=$(curl -s -o /dev/null -w '%{time_starttransfer}' -H "Host: $app.localhost" "http://127.0.0.1:$port/")
        times+=("$(python3 -c "print(round($t*1000, 1))")")
    done
    echo "== wake from idle to first byte (examples/$WAKE_APP, $WAKE_RUNS runs): ${times[*]} ms"
    echo "   median $(median "${times[@]}") ms"
}

case "$ONLY" in
    proxy) proxy_bench ;;
    logs) logs_bench ;;
    wake) wake_bench ;;
    *) proxy_bench; logs_bench; wake_bench ;;
esac
