//! Tools for `scripts/bench-router.sh` (the router vs nginx, log throughput, wake from idle).
//!
//! - `upstream ADDR`: a tiny hyper server answering every request with 13 bytes, the fast
//!   upstream both proxies forward to (2 tokio workers: cheap enough not to be the bottleneck).
//! - `router ADDR UPSTREAM LOGDIR`: dyno's router, as the daemon runs it (2 workers, every request
//!   logged into a Logplex stream with on-disk history in LOGDIR), routing `bench.localhost` to
//!   UPSTREAM; `BENCH_HYPER=1` turns the HTTP/1.1 fast path off.
//! - `rate ADDR HOST RATE SECS CONNS`: a fixed-rate load loop (wrk2 is not in Debian): request i
//!   is due at start + i/RATE and goes out on the next of CONNS kept-alive connections; latency
//!   counts from when it was due when it goes out late because its connection was busy, so a
//!   stalled server is not hidden (no coordinated omission), else from when it was sent.
//!   Prints `p50_us p99_us p999_us max_us achieved_rps errors`.
//! - `count MARKER END`: reads lines on stdin; prints how many contained MARKER, their rate from
//!   the first to the last, and the messages an `Error L10` line said were dropped; stops at a
//!   line containing END.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    match a(0).as_str() {
        "upstream" => rt.block_on(upstream(a(1).parse().unwrap())),
        "router" => rt.block_on(router(
            a(1).parse().unwrap(),
            a(2).parse().unwrap(),
            a(3).into(),
        )),
        "rate" => rt.block_on(rate(
            a(1).parse().unwrap(),
            a(2),
            a(3).parse().unwrap(),
            a(4).parse().unwrap(),
            a(5).parse().unwrap(),
        )),
        "count" => count(&a(1), &a(2)),
        "" => eprintln!("router bench tools: run scripts/bench-router.sh"),
        other => panic!("unknown mode {other}"),
    }
}

async fn upstream(addr: SocketAddr) {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    loop {
        let (s, _) = l.accept().await.unwrap();
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"Hello, world\n",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn router(addr: SocketAddr, up: SocketAddr, logdir: std::path::PathBuf) {
    let table = dyno::router::RouteTable::default();
    table.set(
        "bench",
        dyno::router::AppRoute {
            backends: vec![dyno::router::Backend {
                dyno: "web.1".into(),
                addr: up,
            }],
            web_quantity: 1,
            idle: false,
            crashed: false,
        },
    );
    // The daemon's path for router lines: a Logplex stream with on-disk history.
    let logs = Arc::new(dyno::logs::Logs::with_dir(&logdir).unwrap());
    let nolog = std::env::var_os("BENCH_NOLOG").is_some();
    let log: dyno::router::RouterLog = Arc::new(move |app: &str, line: String| {
        if !nolog {
            logs.push(app, dyno::logs::LogLine::new("heroku", "router", line));
        }
    });
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    // BENCH_HYPER=1: every connection on the hyper path (the fast path's A/B baseline).
    let config = dyno::router::RouterConfig {
        fast_path: std::env::var_os("BENCH_HYPER").is_none(),
        ..Default::default()
    };
    dyno::router::serve_with(l, table, log, config)
        .await
        .unwrap();
}

async fn rate(addr: SocketAddr, host: String, rps: f64, secs: f64, conns: usize) {
    let total = (rps * secs) as usize;
    let start = Instant::now() + Duration::from_millis(200);
    let interval = Duration::from_secs_f64(1.0 / rps);
    let host = Arc::new(host);
    let mut tasks = vec![];
    for c in 0..conns {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let connect = || async {
                let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.set_nodelay(true).unwrap();
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                sender
            };
            let mut sender = connect().await;
            let mut lat = Vec::with_capacity(total / conns + 1);
            let mut errors = 0u64;
            let mut i = c;
            while i < total {
                let due = start + interval * i as u32;
                tokio::time::sleep_until(due.into()).await;
                // A server that closed the kept-alive connection: open another (counted in
                // the latency, as a real client would pay it).
                if sender.ready().await.is_err() {
                    sender = connect().await;
                }
                // Latency counts from when the request was due if it goes out late because this
                // connection was still busy (no coordinated omission), but not for the timer's
                // own ~1 ms granularity, which would drown sub-millisecond differences.
                let now = Instant::now();
                let from = if now > due + Duration::from_micros(1500) {
                    due
                } else {
                    now
                };
                let req = Request::get("/")
                    .header("host", host.as_str())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let ok = match sender.send_request(req).await {
                    Ok(resp) => resp.into_body().collect().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(from.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += conns;
            }
            (lat, errors)
        }));
    }
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "{} {} {} {} {:.0} {}",
        p(0.50),
        p(0.99),
        p(0.999),
        all[all.len() - 1],
        all.len() as f64 / elapsed,
        errors
    );
}

fn count(marker: &str, end: &str) {
    let stdin = std::io::stdin();
    let mut n = 0u64;
    let mut first = None;
    let mut last = Instant::now();
    let mut dropped = 0u64;
    for line in stdin.lock().lines().map_while(Result::ok) {
        if line.contains(marker) {
            n += 1;
            last = Instant::now();
            first.get_or_insert(last);
        }
        if let Some(p) = line.find("Error L10 (output buffer overflow): ") {
            let rest = &line[p + "Error L10 (output buffer overflow): ".len()..];
            dropped += rest
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if !end.is_empty() && line.contains(end) {
            break;
        }
    }
    let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
    println!(
        "{n} {:.0} {dropped} {secs:.3}",
        if secs > 0.0 { n as f64 / secs } else { 0.0 }
    );
}
