//! The router and Logplex end to end, through the real router and real dynos: headers, streams,
//! WebSockets, H-codes with shortened timeouts, custom domains, the HTTPS listener, idling,
//! 1 GB bodies with bounded daemon memory, log filters, history across redeploys and daemon
//! restarts, syslog and HTTP drains, floods and readers that can't keep up.

mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starts the env's daemon with extra settings (later commands find it running).
fn start_daemon(env: &Env, extra: &[(&str, &str)]) {
    let mut c = env.cmd(&["apps"], None);
    c.env("DYNO_HTTPS_ADDR", "off");
    for (k, v) in extra {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// One HTTP/1.1 request on a new connection; returns (status, head, body). `Connection: close`
/// so the body ends with the connection.
fn request(
    port: u16,
    host: &str,
    head_extra: &str,
    method: &str,
    path: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A refused request (e.g. a head over the limit) may be closed while still being written:
    // what matters is what, if anything, came back.
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{head_extra}Connection: close\r\n\r\n"
    );
    let mut buf = vec![];
    let _ = s.read_to_end(&mut buf);
    split_response(&buf)
}

fn split_response(buf: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `key=value` pairs of a router line, in order (quoted values unquoted).
fn router_fields(line: &str) -> Vec<(String, String)> {
    let msg = line
        .split_once("heroku[router]: ")
        .map(|x| x.1)
        .unwrap_or(line);
    let mut out = vec![];
    let mut rest = msg.trim();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').expect("key=value");
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((k.to_string(), v));
        rest = next.trim_start();
    }
    out
}

fn wait_logs(env: &Env, app: &str, want: &str, secs: u64) -> String {
    let mut logs = String::new();
    let ok = wait_until(Duration::from_secs(secs), || {
        logs = env.logs(app);
        logs.contains(want)
    });
    assert!(ok, "no {want:?} in the logs of {app}:\n{logs}");
    logs
}

#[test]
fn router_serves_real_dynos_the_heroku_way() {
    let env = Env::new("rtr");
    start_daemon(
        &env,
        &[
            ("DYNO_ROUTER_REQUEST_TIMEOUT", "1"),
            ("DYNO_ROUTER_IDLE_TIMEOUT", "1"),
            ("DYNO_HTTPS_ADDR", "127.0.0.1:0"),
        ],
    );
    let dir = env.app_dir("tests/fixtures/routerapp", "rtr");
    env.ok(&["up"], Some(&dir));
    let port = env.router_port();

    // Headers the router adds.
    let (status, _, body) = request(
        port,
        "rtr.localhost",
        "X-Request-Id: client-supplied-id-0123456789\r\nX-Forwarded-For: 10.1.2.3\r\n",
        "GET",
        "/headers",
    );
    assert_eq!(status, 200, "{body}");
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-port"], port.to_string());
    assert_eq!(h["x-request-id"], "client-supplied-id-0123456789");
    assert_eq!(h["via"], "1.1 dyno");
    let start: u128 = h["x-request-start"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(now >= start && now - start < 10_000);

    // A streamed response arrives piece by piece, not at the end.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /stream?n=4&gap=0.4 HTTP/1.1\r\nHost: rtr.localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let t = Instant::now();
    let mut first = [0u8; 256];
    let n = s.read(&mut first).unwrap();
    let head = String::from_utf8_lossy(&first[..n]).to_string();
    assert!(head.contains("200 OK"), "{head}");
    let mut rest = vec![];
    s.read_to_end(&mut rest).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(1200),
        "the body waited for the dyno"
    );
    let all = String::from_utf8_lossy(&[&first[..n], &rest[..]].concat()).to_string();
    assert_eq!(
        split_response(all.as_bytes()).2,
        "part 0\npart 1\npart 2\npart 3\n"
    );

    // WebSocket echo through the router.
    let mut ws = TcpStream::connect(("127.0.0.1", port)).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(ws, "GET /ws HTTP/1.1\r\nHost: rtr.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut r = BufReader::new(ws.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 101"), "{line}");
    let mut headers = String::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        if l == "\r\n" {
            break;
        }
        headers.push_str(&l);
    }
    assert!(
        headers.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{headers}"
    );
    let mask = [1u8, 2, 3, 4];
    let payload: Vec<u8> = b"hi there"
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend_from_slice(&payload);
    ws.write_all(&frame).unwrap();
    let mut hdr = [0u8; 2];
    r.read_exact(&mut hdr).unwrap();
    let mut data = vec![0u8; (hdr[1] & 0x7f) as usize];
    r.read_exact(&mut data).unwrap();
    assert_eq!((hdr[0], data.as_slice()), (0x81, &b"echo: hi there"[..]));
    drop(r);
    drop(ws);

    // H12 (no answer within the shortened 1 s) and H15 (a stream stalling for 1 s).
    let (status, _, body) = request(port, "rtr.localhost", "", "GET", "/slow?s=3");
    assert_eq!(status, 503);
    assert!(body.contains("H12"), "{body}");
    let (_, _, body) = request(port, "rtr.localhost", "", "GET", "/stall?n=2&gap=0.1");
    assert!(body.starts_with("part 0\npart 1\n"), "{body:?}");
    wait_logs(&env, "rtr", "code=H15 desc=\"Idle connection\"", 10);
    let logs = wait_logs(&env, "rtr", "code=H12 desc=\"Request timeout\"", 10);

    // Router lines in Heroku's format, fields in Heroku's order.
    let line = logs
        .lines()
        .find(|l| l.contains("heroku[router]: at=info method=GET path=\"/headers\""))
        .expect("a router line for /headers");
    let ts = line.split(' ').next().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{line}");
    assert_eq!(ts.len(), "2026-11-23T17:05:02.123456+00:00".len(), "{line}");
    let f = router_fields(line);
    let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "at",
            "method",
            "path",
            "host",
            "request_id",
            "fwd",
            "dyno",
            "connect",
            "service",
            "status",
            "bytes",
            "protocol"
        ],
        "{line}"
    );
    let v = |k: &str| f.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_eq!(v("host"), "rtr.localhost");
    assert_eq!(v("request_id"), "client-supplied-id-0123456789");
    assert_eq!(v("fwd"), "10.1.2.3, 127.0.0.1");
    assert_eq!(v("dyno"), "web.1");
    assert!(
        v("connect").ends_with("ms") && v("service").ends_with("ms"),
        "{line}"
    );
    assert_eq!(v("status"), "200");
    assert!(v("bytes").parse::<u64>().unwrap() > 100);
    let h12 = logs.lines().find(|l| l.contains("code=H12")).unwrap();
    let f = router_fields(h12);
    assert_eq!(f[0], ("at".into(), "error".into()));
    assert_eq!(f[1], ("code".into(), "H12".into()));
    assert!(h12.contains("status=503"), "{h12}");

    // A request head beyond the limit is refused (431) and the router keeps serving.
    let big = format!("X-Big: {}\r\n", "a".repeat(100 * 1024));
    let (status, _, _) = request(port, "rtr.localhost", &big, "GET", "/");
    // 431, or the connection reset before the answer could be read (the client was still
    // writing when the router closed it).
    assert!(status == 431 || status == 0, "{status}");
    assert_eq!(env.get("rtr", "/"), (200, "web.1".to_string()));

    // Custom domains: bad input changes nothing; added ones route; removed ones don't.
    for bad in [
        "not a domain",
        "rtr.localhost",
        "http://x.example.com",
        "*.com",
    ] {
        let err = env.fails(&["domains:add", bad, "-a", "rtr"], None);
        assert!(err.contains("not a valid domain"), "{err}");
    }
    env.ok(&["domains:add", "www.example.test", "-a", "rtr"], None);
    env.ok(&["domains:add", "*.wild.test", "-a", "rtr"], None);
    let err = env.fails(&["domains:add", "WWW.example.test", "-a", "rtr"], None);
    assert!(err.contains("already"), "{err}");
    let list = env.json(&["domains", "-a", "rtr", "--json"]);
    let hosts: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["rtr.localhost", "*.wild.test", "www.example.test"]);
    assert_eq!(http_get(port, "www.example.test", "/").0, 200);
    assert_eq!(http_get(port, "www.example.test:80", "/").1, "web.1");
    assert_eq!(http_get(port, "a.wild.test", "/").1, "web.1");
    assert_eq!(http_get(port, "other.test", "/").0, 404);

    // HTTPS: the app's name and custom domains, with a certificate of the local CA.
    let certs = env.json(&["certs", "--json"]);
    let https_port: u16 = certs["https_addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ca = certs["ca_cert_pem"].as_str().unwrap().to_string();
    assert!(env.ok(&["certs"], None).contains("update-ca-certificates"));
    for host in ["rtr.localhost", "www.example.test"] {
        let (status, body) = https_get(https_port, &ca, host, "/headers");
        assert_eq!(status, 200, "{host}: {body}");
        let h: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(h["x-forwarded-proto"], "https");
    }
    env.ok(&["domains:remove", "www.example.test", "-a", "rtr"], None);
    assert_eq!(http_get(port, "www.example.test", "/").0, 404);
    assert!(env
        .fails(&["domains:remove", "www.example.test", "-a", "rtr"], None)
        .contains("not a domain"));

    // H10: the only web dyno crashed (twice: the second time it waits out a cool-off).
    let _ = request(port, "rtr.localhost", "", "GET", "/crash");
    wait_logs(&env, "rtr", "State changed from up to crashed", 10);
    env.wait_dynos_up("rtr", &["web.1"]);
    let _ = request(port, "rtr.localhost", "", "GET", "/crash");
    let mut last = (0, String::new());
    let h10 = wait_until(Duration::from_secs(5), || {
        last = env.get("rtr", "/");
        last.1.contains("H10")
    });
    assert!(h10, "no H10 after two crashes: {last:?}");
    assert!(env
        .logs("rtr")
        .contains("at=error code=H10 desc=\"App crashed\""));

    // H14: no web dynos in the formation.
    env.ok(&["ps:scale", "-a", "rtr", "web=0"], None);
    let h14 = wait_until(Duration::from_secs(15), || {
        last = env.get("rtr", "/");
        last.1.contains("H14")
    });
    assert!(h14, "no H14 after scaling to 0: {last:?}");
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos("rtr")
        .is_empty()));
}

/// GET over TLS, trusting only `ca_pem`, with SNI `host`.
fn https_get(port: u16, ca_pem: &str, host: &str, path: &str) -> (u16, String) {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![];
    let _ = tls.read_to_end(&mut buf);
    let (status, _, body) = split_response(&buf);
    (status, body)
}

#[test]
fn idled_apps_wake_on_the_next_request_and_booting_dynos_hold_requests() {
    let env = Env::new("idle");
    start_daemon(&env, &[("DYNO_IDLE_AFTER", "1")]);
    let dir = env.app_dir("tests/fixtures/routerapp", "sleepy");
    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "ticker=1"], Some(&dir));
    env.wait_dynos_up("sleepy", &["web.1", "ticker.1"]);
    let err = env.fails(&["ps:idle", "maybe", "-a", "sleepy"], None);
    assert!(err.contains("`on` or `off`"), "{err}");
    assert_eq!(
        env.json(&["ps:idle", "-a", "sleepy", "--json"])["enabled"],
        false
    );

    env.ok(&["ps:idle", "on", "-a", "sleepy"], None);
    // The ticker keeps running and logging: it does not keep the app awake.
    wait_logs(
        &env,
        "sleepy",
        "heroku[web.1]: State changed from up to idle",
        15,
    );
    assert!(wait_until(Duration::from_secs(15), || {
        let d = env.dynos("sleepy");
        d.len() == 1 && d[0]["name"] == "ticker.1"
    }));
    assert_eq!(
        env.json(&["ps:idle", "-a", "sleepy", "--json"])["idle"],
        true
    );
    env.assert_nothing_left_of("sleepy", "web");

    // An idled app stays idled across a daemon restart: its web dyno is not started again.
    env.ok(&["daemon:stop", "--keep-dynos"], None);
    start_daemon(&env, &[("DYNO_IDLE_AFTER", "1")]);
    env.wait_dynos_up("sleepy", &["ticker.1"]);
    std::thread::sleep(Duration::from_secs(1));
    let names: Vec<_> = env
        .dynos("sleepy")
        .iter()
        .map(|d| d["name"].clone())
        .collect();
    assert_eq!(names, ["ticker.1"]);
    assert_eq!(
        env.json(&["ps:idle", "-a", "sleepy", "--json"])["idle"],
        true
    );

    // The next request wakes it and is served.
    let port = env.router_port();
    let t = Instant::now();
    let (status, body) = http_get(port, "sleepy.localhost", "/");
    let wake = t.elapsed();
    assert_eq!((status, body.as_str()), (200, "web.1"));
    eprintln!("wake from idle to response: {wake:?}");
    assert!(wake < Duration::from_secs(5), "{wake:?}");
    let logs = env.logs("sleepy");
    assert!(logs.contains("heroku[web.1]: Unidling"), "{logs}");
    assert!(!logs.contains("State changed from idle to down"), "{logs}");

    // Idling off: a request while the only web dyno boots is held, then served.
    env.ok(&["ps:idle", "off", "-a", "sleepy"], None);
    env.ok(&["ps:scale", "-a", "sleepy", "web=0"], None);
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos("sleepy")
        .len()
        == 1));
    env.ok(&["ps:scale", "-a", "sleepy", "web=1"], None);
    let (status, body) = http_get(port, "sleepy.localhost", "/");
    assert_eq!((status, body.as_str()), (200, "web.1"));
}

trait Leftovers {
    fn assert_nothing_left_of(&self, app: &str, ptype: &str);
}

impl Leftovers for Env {
    /// No process of the app's `ptype` dynos is left in their cgroups.
    fn assert_nothing_left_of(&self, app: &str, ptype: &str) {
        let needle = format!("-{app}-{ptype}-");
        let ok = wait_until(Duration::from_secs(10), || {
            !self
                .cgroups()
                .iter()
                .any(|c| c.to_string_lossy().contains(&needle))
        });
        assert!(
            ok,
            "cgroups of {app} {ptype} dynos remain: {:?}",
            self.cgroups()
        );
    }
}

fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_gigabyte_up_and_down_keeps_the_daemon_small() {
    const GB: u64 = 1 << 30;
    let env = Env::new("big");
    start_daemon(&env, &[]);
    let dir = env.app_dir("tests/fixtures/routerapp", "big");
    env.ok(&["up"], Some(&dir));
    let port = env.router_port();
    let pid = env.daemon_pid().unwrap();
    let before = rss_kb(pid);
    let peak = Arc::new(Mutex::new(before));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = rss_kb(pid);
                let mut p = peak.lock().unwrap();
                *p = (*p).max(r);
                drop(p);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Upload: 1 GiB generated on the fly.
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "POST /upload HTTP/1.1\r\nHost: big.localhost\r\nContent-Length: {GB}\r\nConnection: close\r\n\r\n").unwrap();
    let block = vec![b'u'; 1 << 20];
    for _ in 0..(GB >> 20) {
        s.write_all(&block).unwrap();
    }
    let mut resp = vec![];
    s.read_to_end(&mut resp).unwrap();
    let (status, _, body) = split_response(&resp);
    assert_eq!((status, body.as_str()), (200, GB.to_string().as_str()));
    let up = t.elapsed();

    // Download: 1 GiB, counted, never kept.
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /download?n={GB} HTTP/1.1\r\nHost: big.localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut head_len = None;
    let mut head = vec![];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head_len.is_none() {
            head.extend_from_slice(&buf[..n]);
            if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                head_len = Some(p + 4);
                total += (head.len() - p - 4) as u64;
            }
        } else {
            total += n as u64;
        }
    }
    assert!(String::from_utf8_lossy(&head[..64]).contains("200 OK"));
    assert_eq!(total, GB);
    let down = t.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = *peak.lock().unwrap();
    eprintln!("1 GiB up {up:?}, down {down:?}; daemon RSS {before} kB before, peak {peak} kB");
    assert!(
        peak < before + 64 * 1024,
        "the daemon grew from {before} kB to {peak} kB while streaming"
    );
    let logs = env.logs("big");
    assert!(
        logs.contains(&format!("bytes={GB} protocol=http")),
        "{logs}"
    );
}

/// A syslog server on loopback: everything received, as text.
fn syslog_server() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(vec![]));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    g.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (port, got)
}

/// An HTTP drain endpoint on loopback: (headers, body) of each POST.
/// (head, body) of each request an HTTP drain endpoint received.
type Posts = Arc<Mutex<Vec<(String, String)>>>;

fn http_drain_server() -> (u16, Posts) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(vec![]));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    g.lock()
                        .unwrap()
                        .push((head, String::from_utf8_lossy(&body).into_owned()));
                    w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                }
            });
        }
    });
    (port, got)
}

/// Checks octet-counted syslog frames; returns their messages.
fn parse_frames(mut b: &[u8]) -> Vec<String> {
    let mut out = vec![];
    while !b.is_empty() {
        let sp = b.iter().position(|&c| c == b' ').expect("octet count");
        let n: usize = std::str::from_utf8(&b[..sp])
            .unwrap()
            .parse()
            .expect("a number");
        let msg = &b[sp + 1..sp + 1 + n];
        out.push(String::from_utf8_lossy(msg).into_owned());
        b = &b[sp + 1 + n..];
    }
    out
}

#[test]
fn logs_filter_persist_drain_and_never_block() {
    let env = Env::new("logs");
    start_daemon(&env, &[]);
    let dir = env.app_dir("tests/fixtures/routerapp", "logsy");
    env.ok(&["apps:create", "logsy"], Some(&dir));

    // Drains: bad URLs change nothing.
    let (sys_port, sys_got) = syslog_server();
    let (http_port, http_got) = http_drain_server();
    for bad in [
        "ftp://x.example.com/",
        "syslog+tcp://127.0.0.1",
        "logs.example.com",
    ] {
        let err = env.fails(&["drains:add", bad, "-a", "logsy"], None);
        assert!(
            err.contains("drain URL") || err.contains("not a URL"),
            "{err}"
        );
    }
    assert!(env
        .json(&["drains", "-a", "logsy", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    let sys_url = format!("syslog+tcp://127.0.0.1:{sys_port}");
    let http_url = format!("http://127.0.0.1:{http_port}/logs?x=1");
    env.ok(&["drains:add", &sys_url, "-a", "logsy"], None);
    env.ok(&["drains:add", &http_url, "-a", "logsy"], None);
    assert!(env
        .fails(&["drains:add", &sys_url, "-a", "logsy"], None)
        .contains("already"));
    let drains = env.json(&["drains", "-a", "logsy", "--json"]);
    assert_eq!(drains.as_array().unwrap().len(), 2);

    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "-a", "logsy", "ticker=1"], None);
    env.wait_dynos_up("logsy", &["web.1", "ticker.1"]);
    assert_eq!(env.get("logsy", "/log?msg=hello&n=3").0, 200);
    wait_logs(&env, "logsy", "app[web.1]: hello 2", 10);

    // -n, --ps, --source.
    let last = env.ok(
        &[
            "logs", "-a", "logsy", "-n", "3", "--ps", "web.1", "--source", "app",
        ],
        None,
    );
    assert_eq!(last.lines().count(), 3, "{last}");
    assert!(last.lines().all(|l| l.contains(" app[web.1]: ")), "{last}");
    wait_logs(&env, "logsy", "app[ticker.1]: tick 5", 10);
    let ticks = env.ok(
        &[
            "logs", "-a", "logsy", "-n", "5", "--ps", "ticker", "--source", "app",
        ],
        None,
    );
    assert_eq!(ticks.lines().count(), 5, "{ticks}");
    assert!(
        ticks.lines().all(|l| l.contains(" app[ticker.1]: tick ")),
        "{ticks}"
    );
    let heroku = env.ok(
        &["logs", "-a", "logsy", "-n", "1500", "--source", "heroku"],
        None,
    );
    assert!(heroku.lines().all(|l| l.contains(" heroku[")), "{heroku}");
    assert!(heroku.contains("heroku[router]: at=info method=GET path=\"/log?msg=hello&n=3\""));

    // --tail follows new lines.
    let mut tail = env
        .cmd(
            &["logs", "-a", "logsy", "--tail", "-n", "0", "--ps", "web"],
            None,
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    env.get("logsy", "/log?msg=tailed&n=1");
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a tailed line");
    assert!(got.ends_with(" app[web.1]: tailed 0"), "{got}");
    let _ = tail.kill();
    let _ = tail.wait();

    // Both drains got lines: octet-counted RFC 5424 frames, logplex-1 batches.
    assert!(wait_until(Duration::from_secs(10), || {
        parse_frames(&sys_got.lock().unwrap())
            .iter()
            .any(|m| m.ends_with(" app web.1 - hello 2"))
    }));
    for m in parse_frames(&sys_got.lock().unwrap()) {
        assert!(m.starts_with("<190>1 "), "{m}");
    }
    assert!(wait_until(Duration::from_secs(10), || {
        http_got
            .lock()
            .unwrap()
            .iter()
            .any(|(_, b)| b.contains(" app web.1 - hello 2"))
    }));
    {
        let posts = http_got.lock().unwrap();
        let (head, body) = &posts[0];
        let h = head.to_ascii_lowercase();
        assert!(h.starts_with("post /logs?x=1 http/1.1"), "{head}");
        assert!(h.contains("content-type: application/logplex-1"), "{head}");
        let count: usize = h
            .lines()
            .find_map(|l| l.strip_prefix("logplex-msg-count: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(parse_frames(body.as_bytes()).len(), count);
        assert!(h.contains("logplex-drain-token: d."), "{head}");
    }
    env.ok(&["drains:remove", &http_url, "-a", "logsy"], None);
    assert_eq!(
        env.json(&["drains", "-a", "logsy", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A flooding dyno: the ticker's lines keep flowing; a tail that doesn't read gets L10.
    let mut slow = env
        .cmd(&["logs", "-a", "logsy", "--tail", "-n", "0"], None)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut ticks = env
        .cmd(
            &[
                "logs", "-a", "logsy", "--tail", "-n", "0", "--ps", "ticker", "--source", "app",
            ],
            None,
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::<Instant>::new()));
    {
        let out = ticks.stdout.take().unwrap();
        let arrivals = arrivals.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if l.contains("app[ticker.1]: tick ") {
                    arrivals.lock().unwrap().push(Instant::now());
                }
            }
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let flood_start = Instant::now();
    env.ok(&["ps:scale", "-a", "logsy", "flood=1"], None);
    wait_logs(&env, "logsy", "app[flood.1]: flood done", 30);
    let flood_end = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let _ = ticks.kill();
    let _ = ticks.wait();
    let during: Vec<Instant> = arrivals
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|t| *t >= flood_start && *t <= flood_end + Duration::from_millis(300))
        .collect();
    let mut gaps: Vec<Duration> = during.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.push(during.first().map_or(Duration::MAX, |t| *t - flood_start));
    let worst = gaps.iter().max().copied().unwrap_or(Duration::MAX);
    eprintln!(
        "flood of 400,000 lines took {:?}; {} ticks arrived meanwhile, worst gap {worst:?}",
        flood_end - flood_start,
        during.len()
    );
    assert!(
        worst < Duration::from_millis(1500),
        "the ticker's lines stalled during the flood: worst gap {worst:?}"
    );
    let mut out = slow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut tail = String::new();
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            tail.push_str(&String::from_utf8_lossy(&buf[..n]));
            if let Some(p) = tail.find("Error L10 (output buffer overflow)") {
                let end = tail[p..].find('\n').map_or(tail.len(), |e| p + e);
                let _ = tx.send(tail[tail[..p].rfind('\n').map_or(0, |s| s + 1)..end].to_string());
                return;
            }
            if tail.len() > 1 << 20 {
                tail.drain(..tail.len() - 4096);
            }
        }
    });
    let l10 = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("an L10 line for the slow reader");
    assert!(
        l10.contains(" heroku[logplex]: Error L10 (output buffer overflow): "),
        "{l10}"
    );
    let _ = slow.kill();
    let _ = slow.wait();

    // History on disk is bounded, and survives a redeploy and a daemon restart.
    for f in std::fs::read_dir(env.home.join("logs")).unwrap().flatten() {
        let n = std::fs::read_to_string(f.path()).unwrap().lines().count();
        assert!(n <= 2000, "{:?}: {n} lines", f.path());
    }
    env.ok(&["ps:scale", "-a", "logsy", "flood=0"], None);
    env.get("logsy", "/log?msg=before-redeploy&n=1");
    wait_logs(&env, "logsy", "before-redeploy 0", 10);
    env.ok(&["up"], Some(&dir));
    let logs = env.logs("logsy");
    assert!(
        logs.contains("app[web.1]: before-redeploy 0"),
        "lost at redeploy"
    );
    assert_eq!(logs.lines().count(), 1500, "a full history");
    env.ok(&["daemon:stop"], None);
    let logs = env.logs("logsy");
    assert!(
        logs.contains("app[web.1]: before-redeploy 0"),
        "lost at daemon restart"
    );
    assert!(logs.contains("app[api]: Release v2 created"), "{logs}");
}
