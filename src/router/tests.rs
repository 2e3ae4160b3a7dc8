//! Router tests on real sockets: small hyper upstreams, the router on 127.0.0.1:0, hyper and raw
//! TCP clients.

use super::headers::{new_request_id, strip_hop_by_hop, valid_request_id};
use super::table::app_for_host;
use super::*;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

type Logs = Arc<Mutex<Vec<(String, String)>>>;
type TestBody = BoxBody<Bytes, Infallible>;

/// Bounds every test.
const LIMIT: Duration = Duration::from_secs(20);

macro_rules! bounded {
    ($body:expr) => {
        tokio::time::timeout(LIMIT, $body)
            .await
            .expect("test took too long")
    };
}

/// A body fed from a channel (chunked, no length).
struct ChanBody(mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn full(b: impl Into<Bytes>) -> TestBody {
    Full::new(b.into()).boxed()
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

struct Upstream {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// `/stream` waits for this between its first and second chunk.
    release: Arc<Notify>,
}

/// An upstream dyno answering with its `name` on `/`, and:
/// `/headers` the request line's path and headers, `/echo` the length and checksum of the body,
/// `/stream` a chunked body in three parts, `/hang` nothing ever, `/ws` an upgrade that echoes.
async fn upstream(name: &'static str) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (c, r, rel) = (conns.clone(), requests.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let (r, rel) = (r.clone(), rel.clone());
            let svc = service_fn(move |req: Request<Incoming>| {
                r.fetch_add(1, Ordering::SeqCst);
                let rel = rel.clone();
                async move { Ok::<_, Infallible>(upstream_answer(name, req, rel).await) }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Upstream {
        addr,
        conns,
        requests,
        release,
    }
}

async fn upstream_answer(
    name: &'static str,
    mut req: Request<Incoming>,
    release: Arc<Notify>,
) -> Response<TestBody> {
    match req.uri().path() {
        "/headers" => {
            let mut s = format!("path: {}\n", req.uri());
            for (k, v) in req.headers() {
                s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap()));
            }
            Response::new(full(s))
        }
        "/echo" => {
            let data = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(full(format!("{} {}", data.len(), checksum(&data))))
        }
        "/stream" => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                tx.send(Bytes::from("first;")).await.unwrap();
                release.notified().await;
                tx.send(Bytes::from("second;")).await.unwrap();
                tx.send(Bytes::from("third")).await.unwrap();
            });
            Response::new(ChanBody(rx).boxed())
        }
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(full(""))
        }
        "/ws" => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let upgraded = on.await.unwrap();
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut out = format!("{name}:").into_bytes();
                            out.extend_from_slice(&buf[..n]);
                            if io.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "echo")
                .header("connection", "upgrade")
                .body(full(""))
                .unwrap()
        }
        _ => Response::new(full(name)),
    }
}

fn collector() -> (Logs, RouterLog) {
    let logs: Logs = Default::default();
    let l = logs.clone();
    let log: RouterLog = Arc::new(move |app: &str, line: String| {
        l.lock().unwrap().push((app.to_string(), line));
    });
    (logs, log)
}

async fn start_router(table: RouteTable, config: RouterConfig) -> (SocketAddr, Logs) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (logs, log) = collector();
    tokio::spawn(serve_with(listener, table, log, config));
    (addr, logs)
}

fn test_config() -> RouterConfig {
    RouterConfig {
        boot_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        ..RouterConfig::default()
    }
}

fn backend(dyno: &str, addr: SocketAddr) -> Backend {
    Backend {
        dyno: dyno.to_string(),
        addr,
    }
}

fn route(backends: Vec<Backend>) -> AppRoute {
    AppRoute {
        idle: false,
        crashed: false,
        web_quantity: backends.len().max(1) as u32,
        backends,
    }
}

/// Sends one request on a new connection to the router.
async fn send<B>(router: SocketAddr, req: Request<B>) -> Response<Incoming>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(router).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(req).await.unwrap()
}

fn get_req(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn text(resp: Response<Incoming>) -> (StatusCode, HeaderMap, String) {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn get(router: SocketAddr, host: &str, path: &str) -> (StatusCode, HeaderMap, String) {
    text(send(router, get_req(host, path)).await).await
}

/// Waits (briefly) until `n` log lines are there and returns them.
async fn wait_logs(logs: &Logs, n: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let l = logs.lock().unwrap().clone();
        if l.len() >= n {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} log lines, got {:?}", logs.lock().unwrap());
}

/// A log line's `key=value` / `key="value"` fields, in order.
fn fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, r) = rest.split_once('=').expect("key=value");
        let (val, r) = if let Some(r) = r.strip_prefix('"') {
            let (v, r) = r.split_once('"').expect("closing quote");
            (v, r.strip_prefix(' ').unwrap_or(r))
        } else {
            r.split_once(' ').unwrap_or((r, ""))
        };
        out.push((key.to_string(), val.to_string()));
        rest = r;
    }
    out
}

fn field_map(line: &str) -> HashMap<String, String> {
    fields(line).into_iter().collect()
}

fn header_lines(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn routes_by_host() {
    bounded!(async {
        let (a, b) = (upstream("hello-web").await, upstream("world-web").await);
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        table.set("world", route(vec![backend("web.1", b.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        let (status, _, body) = get(router, "hello.localhost", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-web"));
        let (status, _, body) = get(router, "WORLD.localhost:5000", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "world-web"));
        let logs = wait_logs(&logs, 2).await;
        assert_eq!(logs[0].0, "hello");
        assert_eq!(logs[1].0, "world");
    });
}

#[tokio::test]
async fn unknown_host_is_404() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        for host in [
            "nope.localhost",
            "example.com",
            "localhost",
            "hello.localhost.evil",
        ] {
            let (status, headers, body) = get(router, host, "/").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{host}");
            assert!(body.contains("No such app"), "{body}");
            assert!(headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(logs.lock().unwrap().is_empty());
        assert_eq!(a.requests.load(Ordering::SeqCst), 0);
    });
}

#[tokio::test]
async fn no_web_dynos_is_h14() {
    bounded!(async {
        let table = RouteTable::default();
        table.set(
            "hello",
            AppRoute {
                backends: vec![],
                web_quantity: 0,
                idle: false,
                crashed: false,
            },
        );
        let (router, logs) = start_router(table, test_config()).await;
        let (status, _, body) = get(router, "hello.localhost", "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Application Error"), "{body}");
        let logs = wait_logs(&logs, 1).await;
        let (app, line) = &logs[0];
        assert_eq!(app, "hello");
        assert!(
            line.starts_with(
                "at=error code=H14 desc=\"No web processes running\" method=GET path=\"/\" host=hello.localhost request_id="
            ),
            "{line}"
        );
        assert!(
            line.ends_with(
                "fwd=\"127.0.0.1\" dyno= connect= service= status=503 bytes= protocol=http"
            ),
            "{line}"
        );
    });
}

#[tokio::test]
async fn round_robin_over_three_backends() {
    bounded!(async {
        let ups = [
            upstream("web-1").await,
            upstream("web-2").await,
            upstream("web-3").await,
        ];
        let table = RouteTable::default();
        table.set(
            "hello",
            route(
                ups.iter()
                    .enumerate()
                    .map(|(i, u)| backend(&format!("web.{}", i + 1), u.addr))
                    .collect(),
            ),
        );
        let (router, logs) = start_router(table, test_config()).await;
        let mut seen: HashMap<String, usize> = HashMap::new();
        for _ in 0..30 {
            let (status, _, body) = get(router, "hello.localhost", "/").await;
            assert_eq!(status, StatusCode::OK);
            *seen.entry(body).or_default() += 1;
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        for (name, n) in &seen {
            assert!((8..=12).contains(n), "{name}: {n} of 30 ({seen:?})");
        }
        let logs = wait_logs(&logs, 30).await;
        let mut dynos: HashMap<String, usize> = HashMap::new();
        for (_, line) in &logs {
            *dynos.entry(field_map(line)["dyno"].clone()).or_default() += 1;
        }
        assert_eq!(dynos.len(), 3, "{dynos:?}");
    });
}

#[tokio::test]
async fn forwarding_headers() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        let id = "client-supplied-id-0123456789";
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let req = Request::builder()
            .uri("/headers?x=1&y=2")
            .header("host", "hello.localhost")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-request-id", id)
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "hop")
            .header("x-custom", "kept")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, _, body) = text(send(router, req).await).await;
        assert_eq!(status, StatusCode::OK);
        let h = header_lines(&body);
        assert_eq!(h["path"], "/headers?x=1&y=2");
        assert_eq!(h["host"], "hello.localhost");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-port"], router.port().to_string());
        assert_eq!(h["x-request-id"], id);
        assert_eq!(h["via"], "1.1 dyno");
        assert_eq!(h["x-custom"], "kept");
        assert!(!h.contains_key("x-secret"), "{body}");
        let start: u128 = h["x-request-start"].parse().unwrap();
        assert!(
            start >= before && start < before + 5000,
            "{start} vs {before}"
        );

        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(f["request_id"], id);
        assert_eq!(f["fwd"], "10.0.0.1, 127.0.0.1");
        assert_eq!(f["path"], "/headers?x=1&y=2");
    });
}

#[tokio::test]
async fn request_id_generated_when_missing_or_invalid() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        let mut ids = Vec::new();
        for bad in [None, Some("short"), Some("has spaces and is long enough")] {
            let mut req = get_req("hello.localhost", "/headers");
            if let Some(bad) = bad {
                req.headers_mut()
                    .insert("x-request-id", HeaderValue::from_static(bad));
            }
            let (_, _, body) = text(send(router, req).await).await;
            let id = header_lines(&body)["x-request-id"].clone();
            assert_eq!(id.len(), 36, "{id}");
            assert!(valid_request_id(&id));
            assert_eq!(id.as_bytes()[14], b'4');
            ids.push(id);
        }
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
        let logs = wait_logs(&logs, 3).await;
        for (i, (_, line)) in logs.iter().enumerate() {
            assert_eq!(field_map(line)["request_id"], ids[i]);
        }
    });
}

#[tokio::test]
async fn large_request_body_streams_intact() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        // 8 MiB, chunked (no Content-Length), in 64 KiB pieces.
        let data: Vec<u8> = (0..8 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let expected = format!("{} {}", data.len(), checksum(&data));
        let (tx, rx) = mpsc::channel(8);
        let chunks: Vec<Bytes> = data.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
        tokio::spawn(async move {
            for c in chunks {
                tx.send(c).await.unwrap();
            }
        });
        let req = Request::builder()
            .method("POST")
            .uri("/echo")
            .header("host", "hello.localhost")
            .body(ChanBody(rx))
            .unwrap();
        let (status, _, body) = text(send(router, req).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, expected);

        // And with a Content-Length.
        let req = Request::builder()
            .method("PUT")
            .uri("/echo")
            .header("host", "hello.localhost")
            .body(Full::new(Bytes::from(data)))
            .unwrap();
        let (status, _, body) = text(send(router, req).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, expected);
        let logs = wait_logs(&logs, 2).await;
        assert_eq!(field_map(&logs[0].1)["method"], "POST");
        assert_eq!(field_map(&logs[1].1)["method"], "PUT");
    });
}

#[tokio::test]
async fn chunked_response_is_streamed() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        let resp = send(router, get_req("hello.localhost", "/stream")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        // The first chunk arrives while the dyno still holds back the rest.
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first;");
        assert!(logs.lock().unwrap().is_empty(), "logged before the end");
        a.release.notify_one();
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(&rest[..], b"second;third");
        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(f["at"], "info");
        assert_eq!(f["bytes"], "18");
        assert_eq!(f["status"], "200");
    });
}

#[tokio::test]
async fn idle_response_body_is_h15() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let config = RouterConfig {
            idle_timeout: Some(Duration::from_millis(300)),
            ..test_config()
        };
        let (router, logs) = start_router(table, config).await;
        let resp = send(router, get_req("hello.localhost", "/stream")).await;
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first;");
        // The dyno never sends the rest: the router cuts the response off.
        assert!(body.collect().await.is_err());
        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(f["code"], "H15");
        assert_eq!(f["desc"], "Idle connection");
        assert_eq!(f["bytes"], "6");
    });
}

#[tokio::test]
async fn request_timeout_is_h12() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let config = RouterConfig {
            request_timeout: Duration::from_millis(300),
            ..test_config()
        };
        let (router, logs) = start_router(table, config).await;
        let t = Instant::now();
        let (status, _, body) = get(router, "hello.localhost", "/hang").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("H12"));
        assert!(t.elapsed() >= Duration::from_millis(300));
        let logs = wait_logs(&logs, 1).await;
        let line = &logs[0].1;
        assert!(
            line.starts_with(
                "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/hang\""
            ),
            "{line}"
        );
        let f = field_map(line);
        assert_eq!(f["dyno"], "web.1");
        assert_eq!(f["status"], "503");
        assert_eq!(f["bytes"], "0");
        let service: u64 = f["service"].strip_suffix("ms").unwrap().parse().unwrap();
        assert!((300..2000).contains(&service), "{line}");

        // The router still works afterwards.
        let (status, _, body) = get(router, "hello.localhost", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-web"));
    });
}

#[tokio::test]
async fn client_gone_while_waiting_is_h27() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"GET /hang HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(s);
        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(f["code"], "H27", "{}", logs[0].1);
        assert_eq!(f["status"], "499");
        assert_eq!(f["dyno"], "web.1");
    });
}

#[tokio::test]
async fn request_is_held_until_a_backend_is_up() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set(
            "hello",
            AppRoute {
                backends: vec![],
                web_quantity: 1,
                idle: false,
                crashed: false,
            },
        );
        let (router, logs) = start_router(table.clone(), test_config()).await;
        let t = Instant::now();
        let pending = tokio::spawn(get(router, "hello.localhost", "/"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!pending.is_finished());
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (status, _, body) = pending.await.unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-web"));
        assert!(t.elapsed() >= Duration::from_millis(300));
        let logs = wait_logs(&logs, 1).await;
        assert_eq!(field_map(&logs[0].1)["at"], "info");
    });
}

#[tokio::test]
async fn boot_timeout_is_h20() {
    bounded!(async {
        let table = RouteTable::default();
        table.set(
            "hello",
            AppRoute {
                backends: vec![],
                web_quantity: 1,
                idle: false,
                crashed: false,
            },
        );
        let config = RouterConfig {
            boot_timeout: Duration::from_millis(300),
            ..test_config()
        };
        let (router, logs) = start_router(table, config).await;
        let t = Instant::now();
        let (status, _, _) = get(router, "hello.localhost", "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(t.elapsed() >= Duration::from_millis(300));
        let logs = wait_logs(&logs, 1).await;
        let line = &logs[0].1;
        assert!(
            line.starts_with("at=error code=H20 desc=\"App boot timeout\" method=GET"),
            "{line}"
        );
        assert!(
            line.contains(" dyno= connect= service= status=503 bytes= "),
            "{line}"
        );
    });
}

#[tokio::test]
async fn refused_backend_is_skipped() {
    bounded!(async {
        let a = upstream("alive").await;
        let table = RouteTable::default();
        table.set(
            "hello",
            route(vec![
                backend("web.1", dead_addr()),
                backend("web.2", a.addr),
            ]),
        );
        let (router, logs) = start_router(table, test_config()).await;
        for _ in 0..6 {
            let (status, _, body) = get(router, "hello.localhost", "/").await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "alive"));
        }
        let logs = wait_logs(&logs, 6).await;
        assert_eq!(logs.len(), 6);
        for (_, line) in &logs {
            assert_eq!(field_map(line)["dyno"], "web.2", "{line}");
        }
    });
}

#[tokio::test]
async fn all_backends_refused_is_h10() {
    bounded!(async {
        let table = RouteTable::default();
        table.set(
            "hello",
            route(vec![
                backend("web.1", dead_addr()),
                backend("web.2", dead_addr()),
            ]),
        );
        let (router, logs) = start_router(table, test_config()).await;
        let (status, _, _) = get(router, "hello.localhost", "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(f["code"], "H10");
        assert_eq!(f["status"], "503");
    });
}

#[tokio::test]
async fn closed_without_response_is_h13() {
    bounded!(async {
        // A dyno that reads the request and hangs up.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                drop(s);
            }
        });
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        let (status, _, _) = get(router, "hello.localhost", "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let logs = wait_logs(&logs, 1).await;
        let line = &logs[0].1;
        assert!(
            line.starts_with("at=error code=H13 desc=\"Connection closed without response\""),
            "{line}"
        );
        assert_eq!(field_map(line)["dyno"], "web.1");
    });
}

#[tokio::test]
async fn log_line_format() {
    bounded!(async {
        let a = upstream("hello").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        let (status, _, body) = get(router, "hello.localhost", "/?q=1").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
        let logs = wait_logs(&logs, 1).await;
        let (app, line) = &logs[0];
        assert_eq!(app, "hello");
        let f = fields(line);
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
            ]
        );
        let m = field_map(line);
        assert_eq!(m["at"], "info");
        assert_eq!(m["method"], "GET");
        assert_eq!(m["path"], "/?q=1");
        assert_eq!(m["host"], "hello.localhost");
        assert!(valid_request_id(&m["request_id"]));
        assert_eq!(m["fwd"], "127.0.0.1");
        assert_eq!(m["dyno"], "web.1");
        for k in ["connect", "service"] {
            let v = m[k].strip_suffix("ms").expect("ms suffix");
            assert!(v.parse::<u64>().is_ok(), "{k}={v}");
        }
        assert_eq!(m["status"], "200");
        assert_eq!(m["bytes"], "5");
        assert_eq!(m["protocol"], "http");
        assert!(line.contains(" path=\"/?q=1\" ") && line.contains(" fwd=\"127.0.0.1\" "));
    });
}

#[tokio::test]
async fn dyno_connections_are_kept_alive() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        for _ in 0..10 {
            let (status, _, _) = get(router, "hello.localhost", "/").await;
            assert_eq!(status, StatusCode::OK);
            // Also a POST with a body.
            let req = Request::builder()
                .method("POST")
                .uri("/echo")
                .header("host", "hello.localhost")
                .body(Full::new(Bytes::from_static(b"abc")))
                .unwrap();
            let (status, _, body) = text(send(router, req).await).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.starts_with("3 "));
        }
        assert_eq!(a.requests.load(Ordering::SeqCst), 20);
        let conns = a.conns.load(Ordering::SeqCst);
        assert!(conns <= 3, "{conns} connections for 20 requests");
        wait_logs(&logs, 20).await;
    });
}

#[tokio::test]
async fn client_connection_is_kept_alive() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        let stream = TcpStream::connect(router).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        for (method, path, expect) in [
            ("GET", "/", "hello-web"),
            ("HEAD", "/", ""),
            ("GET", "/nothing", "hello-web"),
            ("POST", "/echo", "0 14695981039346656037"),
        ] {
            sender.ready().await.unwrap();
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "hello.localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let (status, headers, body) = text(sender.send_request(req).await.unwrap()).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, expect),
                "{method} {path}"
            );
            if method == "HEAD" {
                assert_eq!(headers["content-length"], "9");
            }
        }
        let logs = wait_logs(&logs, 4).await;
        let head = field_map(&logs[1].1);
        assert_eq!(
            (head["method"].as_str(), head["bytes"].as_str()),
            ("HEAD", "0")
        );
        assert_eq!(a.conns.load(Ordering::SeqCst), 1);
    });
}

#[tokio::test]
async fn stale_kept_alive_connection_is_retried() {
    bounded!(async {
        // A dyno that answers the first request of each connection, keeps it open, and hangs up
        // on the second one without answering (a keep-alive race, made certain).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let c = conns.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    let _ = s.read(&mut buf).await;
                });
            }
        });
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        for _ in 0..3 {
            let (status, _, body) = get(router, "hello.localhost", "/").await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 3);
        // A POST is not sent twice: H13.
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "hello.localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, _, _) = text(send(router, req).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let logs = wait_logs(&logs, 4).await;
        assert_eq!(field_map(&logs[3].1)["code"], "H13");
    });
}

#[tokio::test]
async fn upgrade_passes_through() {
    bounded!(async {
        let a = upstream("web-1").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let (router, logs) = start_router(table, test_config()).await;

        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: hello.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).await.unwrap(), 1);
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: echo"), "{head}");
        for msg in ["ping", "pong"] {
            s.write_all(msg.as_bytes()).await.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], format!("web-1:{msg}").as_bytes());
        }
        let logs = wait_logs(&logs, 1).await;
        assert_eq!(field_map(&logs[0].1)["status"], "101");
    });
}

#[tokio::test]
async fn slow_client_headers_are_dropped() {
    bounded!(async {
        let table = RouteTable::default();
        let config = RouterConfig {
            header_read_timeout: Duration::from_millis(300),
            ..test_config()
        };
        let (router, _) = start_router(table, config).await;
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: hel").await.unwrap();
        let t = Instant::now();
        let mut buf = Vec::new();
        // The router closes the connection (possibly after a 408).
        let _ = s.read_to_end(&mut buf).await;
        assert!(t.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn host_to_app() {
    assert_eq!(app_for_host("hello.localhost").as_deref(), Some("hello"));
    assert_eq!(
        app_for_host("Hello.LocalHost:8080").as_deref(),
        Some("hello")
    );
    assert_eq!(app_for_host("my-app.localhost.").as_deref(), Some("my-app"));
    assert_eq!(app_for_host("localhost"), None);
    assert_eq!(app_for_host(".localhost"), None);
    assert_eq!(app_for_host("example.com"), None);
    assert_eq!(app_for_host("hello.localhost.com"), None);
    assert_eq!(app_for_host(""), None);
}

#[test]
fn request_ids() {
    assert!(valid_request_id("abcdefghij0123456789"));
    assert!(valid_request_id("a+b/c=d-e0123456789012"));
    assert!(!valid_request_id("abcdefghij012345678")); // 19
    assert!(!valid_request_id(&"a".repeat(201)));
    assert!(valid_request_id(&"a".repeat(200)));
    assert!(!valid_request_id("abcdefghij0123456789_"));
    let id = new_request_id();
    assert!(valid_request_id(&id));
    assert_eq!(id.matches('-').count(), 4);
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut h = HeaderMap::new();
    h.insert("connection", HeaderValue::from_static("close, X-Foo"));
    h.insert("x-foo", HeaderValue::from_static("1"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h.insert("te", HeaderValue::from_static("trailers"));
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("x-bar", HeaderValue::from_static("2"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1);
    assert_eq!(h["x-bar"], "2");
}

#[tokio::test]
async fn client_stalling_mid_body_is_h28() {
    bounded!(async {
        let a = upstream("web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let config = RouterConfig {
            client_idle_timeout: Duration::from_millis(300),
            ..test_config()
        };
        let (router, logs) = start_router(table, config).await;
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        let logs = wait_logs(&logs, 1).await;
        let f = field_map(&logs[0].1);
        assert_eq!(
            (f["code"].as_str(), f["desc"].as_str()),
            ("H28", "Client Connection Idle")
        );
    });
}

#[tokio::test]
async fn custom_domains_and_idle_apps_wake() {
    bounded!(async {
        let a = upstream("web").await;
        let table = RouteTable::default();
        table.set(
            "hello",
            AppRoute {
                backends: vec![],
                web_quantity: 1,
                idle: true,
                crashed: false,
            },
        );
        table.set_domains(
            [
                ("www.example.test".to_string(), "hello".to_string()),
                ("*.wild.test".to_string(), "hello".to_string()),
            ]
            .into(),
        );
        let woken = Arc::new(AtomicUsize::new(0));
        let (w, t, addr) = (woken.clone(), table.clone(), a.addr);
        table.set_wake(Arc::new(move |app: &str| {
            assert_eq!(app, "hello");
            w.fetch_add(1, Ordering::SeqCst);
            let t = t.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                t.set("hello", route(vec![backend("web.1", addr)]));
            });
        }));
        let (router, _) = start_router(table.clone(), test_config()).await;
        let (status, _, body) = get(router, "www.example.test:5000", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "web"));
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert!(table.last_request("hello").is_some());
        assert_eq!(get(router, "a.wild.test", "/").await.2, "web");
        assert_eq!(get(router, "wild.test", "/").await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            get(router, "other.test", "/").await.0,
            StatusCode::NOT_FOUND
        );
    });
}

/// App `hello` with one web dyno (`upstream("hello-web")`) behind a router with `config`.
async fn hello_app(config: RouterConfig) -> (Upstream, SocketAddr, Logs) {
    let a = upstream("hello-web").await;
    let table = RouteTable::default();
    table.set("hello", route(vec![backend("web.1", a.addr)]));
    let (router, logs) = start_router(table, config).await;
    (a, router, logs)
}

/// A dyno speaking raw HTTP: answers every request head it reads with `answer` (then closes the
/// connection when `close_after`).
async fn raw_upstream(answer: &'static [u8], close_after: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(answer).await.is_err() || close_after {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Reads from `s` until `want` responses' worth of `marker` were seen (or EOF).
async fn read_until_count(s: &mut TcpStream, marker: &str, want: usize) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&out).matches(marker).count() < want {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    bounded!(async {
        let (_a, router, logs) = hello_app(test_config()).await;
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(
            b"GET /headers?n=1 HTTP/1.1\r\nHost: hello.localhost\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 5\r\n\r\nhello\
              GET /headers?n=3 HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        )
        .await
        .unwrap();
        let out = read_until_count(&mut s, "HTTP/1.1 200", 3).await;
        let (one, two, three) = (
            out.find("path: /headers?n=1").unwrap(),
            out.find(&format!("5 {}", checksum(b"hello"))).unwrap(),
            out.find("path: /headers?n=3").unwrap(),
        );
        assert!(one < two && two < three, "{out}");
        let logs = wait_logs(&logs, 3).await;
        let methods: Vec<_> = logs
            .iter()
            .map(|l| field_map(&l.1)["method"].clone())
            .collect();
        assert_eq!(methods, ["GET", "POST", "GET"]);
    });
}

#[tokio::test]
async fn head_http10_and_chunked_uploads_are_served() {
    bounded!(async {
        let (_a, router, logs) = hello_app(test_config()).await;

        // HEAD: the head only, and the connection goes on.
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"HEAD / HTTP/1.1\r\nHost: hello.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
            .await
            .unwrap();
        let out = read_until_count(&mut s, "hello-web", 1).await;
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
        assert_eq!(out.matches("hello-web").count(), 1, "{out}");

        // HTTP/1.0 (hyper's path): answered, then closed.
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: hello.localhost\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(
            out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
            "{out}"
        );
        assert!(out.ends_with("hello-web"), "{out}");

        // A chunked upload written by hand, in pieces, then a second request on the connection.
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: hello.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.write_all(b"4;x=y\r\ndefg\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
            .await
            .unwrap();
        let out = read_until_count(&mut s, "hello-web", 1).await;
        assert!(
            out.contains(&format!("7 {}", checksum(b"abcdefg"))),
            "{out}"
        );
        // HEAD, GET, the HTTP/1.0 GET, the chunked POST, GET.
        let l = wait_logs(&logs, 5).await;
        assert_eq!(field_map(&l[3].1)["method"], "POST", "{l:?}");
    });
}

#[tokio::test]
async fn close_delimited_and_malformed_responses() {
    bounded!(async {
        let table = RouteTable::default();
        // No Content-Length, no chunking: the body ends when the dyno closes.
        let eof = raw_upstream(b"HTTP/1.1 200 OK\r\nX-Kind: eof\r\n\r\nuntil the end", true).await;
        let bad = raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n", false).await;
        let garbage = raw_upstream(b"hello there\r\n\r\n", false).await;
        table.set("eof", route(vec![backend("web.1", eof)]));
        table.set("bad", route(vec![backend("web.1", bad)]));
        table.set("garbage", route(vec![backend("web.1", garbage)]));
        let (router, logs) = start_router(table, test_config()).await;

        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: eof.localhost\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nuntil the end"), "{out}");
        let l = wait_logs(&logs, 1).await;
        assert_eq!(field_map(&l[0].1)["bytes"], "13", "{}", l[0].1);

        for host in ["bad.localhost", "garbage.localhost"] {
            let (status, _, body) = get(router, host, "/").await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(body.contains("H17"), "{body}");
        }
        let l = wait_logs(&logs, 3).await;
        for (_, line) in &l[1..] {
            assert!(
                line.starts_with("at=error code=H17 desc=\"Poorly formatted HTTP response\""),
                "{line}"
            );
        }
    });
}

#[tokio::test]
async fn the_hyper_path_serves_alone_too() {
    bounded!(async {
        let config = RouterConfig {
            fast_path: false,
            ..test_config()
        };
        let (_a, router, logs) = hello_app(config).await;
        let (status, _, body) = get(router, "hello.localhost", "/headers").await;
        assert_eq!(status, StatusCode::OK);
        let h = header_lines(&body);
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["via"], "1.1 dyno");
        let (status, _, _) = get(router, "nope.localhost", "/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let logs = wait_logs(&logs, 1).await;
        assert_eq!(field_map(&logs[0].1)["status"], "200");
    });
}

#[tokio::test]
async fn an_error_page_after_a_body_was_sent_keeps_the_next_request_whole() {
    bounded!(async {
        // A dyno that reads a request and hangs up (H13 for each).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
            }
        });
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", addr)]));
        let (router, logs) = start_router(table, test_config()).await;
        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(
            b"POST /first HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 5\r\n\r\nhello\
              GET /next HTTP/1.1\r\nHost: hello.localhost\r\n\r\n",
        )
        .await
        .unwrap();
        let out = read_until_count(&mut s, "HTTP/1.1 503", 2).await;
        assert_eq!(out.matches("H13").count(), 2, "{out}");
        let l = wait_logs(&logs, 2).await;
        let f: Vec<_> = l.iter().map(|(_, line)| field_map(line)).collect();
        assert_eq!(
            (f[0]["method"].as_str(), f[0]["path"].as_str()),
            ("POST", "/first")
        );
        assert_eq!(
            (f[1]["method"].as_str(), f[1]["path"].as_str()),
            ("GET", "/next")
        );
    });
}

#[tokio::test]
async fn interim_responses_pass_and_chunking_beats_a_content_length() {
    bounded!(async {
        let table = RouteTable::default();
        let both = raw_upstream(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            false,
        )
        .await;
        let hints = raw_upstream(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        )
        .await;
        table.set("both", route(vec![backend("web.1", both)]));
        table.set("hints", route(vec![backend("web.1", hints)]));
        let (router, logs) = start_router(table, test_config()).await;

        let (status, headers, body) = get(router, "both.localhost", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello"));
        assert!(!headers.contains_key("content-length"), "{headers:?}");

        let mut s = TcpStream::connect(router).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: hints.localhost\r\n\r\n")
            .await
            .unwrap();
        let out = read_until_count(&mut s, "\r\n\r\nok", 1).await;
        assert!(out.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{out}");
        assert!(out.contains("HTTP/1.1 200 OK\r\n"), "{out}");
        // Each request's line, found by its host: a line is written when its response body
        // ends, so the two may come in either order.
        let l = wait_logs(&logs, 2).await;
        let of = |host: &str| {
            l.iter()
                .map(|(_, line)| field_map(line))
                .find(|f| f["host"] == host)
                .unwrap_or_else(|| panic!("no line for {host}: {l:?}"))
        };
        assert_eq!(of("both.localhost")["bytes"], "5");
        assert_eq!(of("hints.localhost")["status"], "200");
    });
}

#[tokio::test]
async fn malformed_requests_get_4xx_and_the_router_goes_on() {
    bounded!(async {
        let (_a, router, logs) = hello_app(test_config()).await;
        let big = format!(
            "GET / HTTP/1.1\r\nHost: hello.localhost\r\nX-Big: {}\r\n\r\n",
            "x".repeat(70 * 1024)
        );
        for (req, want) in [
            ("NOT HTTP AT ALL\r\n\r\n".to_string(), "400"),
            (
                "POST / HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: abc\r\n\r\n".into(),
                "400",
            ),
            (big, "431"),
        ] {
            let mut s = TcpStream::connect(router).await.unwrap();
            // The router may answer and close before it has read all of a head that is too big.
            let _ = s.write_all(req.as_bytes()).await;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            let out = String::from_utf8_lossy(&out);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {want}")),
                "{want} for {:?}: {out}",
                &req[..req.len().min(60)]
            );
        }
        assert!(logs.lock().unwrap().is_empty(), "no app was routed to");
        let (status, _, body) = get(router, "hello.localhost", "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-web"));
    });
}

// ---- fairness: per-client caps ----

/// Floods run one at a time (a container may cap RLIMIT_NOFILE at 20,000 even for root).
static FLOODING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Raises this process's open-file limit for a flood of 10,000+ sockets: to 65536 when allowed,
/// else to the hard limit.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers to rlimit structs on our stack.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let want = lim.rlim_max.max(65536);
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    assert!(
        lim.rlim_cur >= 15_000,
        "RLIMIT_NOFILE too low: {}",
        lim.rlim_cur
    );
}

/// Opens `n` connections from `from` to `to` (64 at a time) and leaves them silent.
async fn idle_sockets(from: std::net::IpAddr, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..(n - v.len()).min(64) {
            batch.spawn(idle_socket(from, to));
        }
        v.extend(batch.join_all().await);
    }
    v
}

async fn idle_socket(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    // The port is picked at connect (per destination), not by bind's slow search.
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a c_int that outlives the call.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of_val(&one) as libc::socklen_t,
        );
    }
    s.bind(SocketAddr::new(from, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// A raw GET on a new connection to `to`: the status line's code, and how long it took.
async fn timed_get(to: SocketAddr, host: &str) -> (u16, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, t0.elapsed())
}

/// Whether a connection from `from` is closed by the router without an answer to a request.
async fn refused_from(from: std::net::IpAddr, to: SocketAddr) -> bool {
    let mut s = idle_sockets(from, to, 1).await.pop().unwrap();
    let _ = s
        .write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out.is_empty()
}

const FLOOD: usize = 10_100;

/// Bounds a flood test: opening 10,000 sockets takes seconds on a loaded machine.
macro_rules! flood_bounded {
    ($body:expr) => {
        tokio::time::timeout(Duration::from_secs(120), $body)
            .await
            .expect("test took too long")
    };
}

#[tokio::test]
async fn one_client_holding_10000_idle_sockets_does_not_delay_another() {
    let _one_flood = FLOODING.lock().await;
    raise_nofile();
    let other = "127.0.0.2".parse().unwrap();
    for fast_path in [true, false] {
        flood_bounded!(async {
            let a = upstream("hello-web").await;
            let table = RouteTable::default();
            table.set("hello", route(vec![backend("web.1", a.addr)]));
            let config = RouterConfig {
                fast_path,
                ..test_config()
            };
            let (router, _logs) = start_router(table, config).await;

            let t0 = Instant::now();
            let flood = idle_sockets(other, router, FLOOD).await;
            let opened = t0.elapsed();
            let (code, took) = timed_get(router, "hello.localhost").await;
            eprintln!(
                "fast_path={fast_path}: {FLOOD} idle sockets from 127.0.0.2 opened in {opened:?}; \
                 a request from 127.0.0.1 answered in {took:?}"
            );
            assert_eq!(code, 200);
            assert!(took < Duration::from_secs(1), "{took:?}");
            // The flooding client itself is over its cap of silent connections…
            assert!(refused_from(other, router).await);
            // …until it lets them go: then it is served again.
            drop(flood);
            let served = async {
                loop {
                    if timed_get_from(other, router).await == 200 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(5), served)
                .await
                .expect("the flooding client's slots were never given back");
        });
    }
}

/// A GET from `from`: the status (0 when refused).
async fn timed_get_from(from: std::net::IpAddr, to: SocketAddr) -> u16 {
    let mut s = idle_sockets(from, to, 1).await.pop().unwrap();
    let _ = s
        .write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn open_connections_per_client_are_capped_apart_from_silent_ones() {
    bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let config = RouterConfig {
            max_client_connections: 3,
            max_client_pending: 2,
            ..test_config()
        };
        let (router, _logs) = start_router(table, config).await;
        let me: std::net::IpAddr = "127.0.0.3".parse().unwrap();
        // Three kept-alive connections that each sent a request: open, no longer pending.
        let mut kept = vec![];
        for _ in 0..3 {
            let mut s = idle_sockets(me, router, 1).await.pop().unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            kept.push(s);
        }
        assert!(refused_from(me, router).await, "a 4th open connection");
        drop(kept.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(timed_get_from(me, router).await, 200);
        // Another address is counted apart.
        assert_eq!(timed_get(router, "hello.localhost").await.0, 200);
    });
}

#[tokio::test]
async fn each_inbound_listener_counts_its_clients_apart() {
    let _one_flood = FLOODING.lock().await;
    raise_nofile();
    flood_bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (_logs, log) = collector();
        let (inbound, listeners) = Inbound::channel();
        tokio::spawn(serve_with_inbound(
            main,
            table,
            log,
            test_config(),
            listeners,
        ));
        // Two dynos' listeners: every client of both is 127.0.0.1.
        let (l1, l2) = (
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        );
        let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
        l1.set_nonblocking(true).unwrap();
        l2.set_nonblocking(true).unwrap();
        let _g = (inbound.add(l1), inbound.add(l2));
        let local = "127.0.0.1".parse().unwrap();
        let _flood = idle_sockets(local, a1, FLOOD).await;
        let (code, took) = timed_get(a2, "hello.localhost").await;
        assert_eq!(code, 200);
        assert!(took < Duration::from_secs(1), "{took:?}");
    });
}

#[tokio::test]
async fn the_https_listener_caps_silent_clients_too() {
    let _one_flood = FLOODING.lock().await;
    raise_nofile();
    flood_bounded!(async {
        let a = upstream("hello-web").await;
        let table = RouteTable::default();
        table.set("hello", route(vec![backend("web.1", a.addr)]));
        let dir = tempfile::tempdir().unwrap();
        let ca = tls::LocalCa::load_or_create(dir.path()).unwrap();
        let ca_pem = std::fs::read(&ca.cert_path).unwrap();
        let acceptor = tls::acceptor(ca, table.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let router = listener.local_addr().unwrap();
        let (_logs, log) = collector();
        tokio::spawn(serve_tls(listener, table, log, test_config(), acceptor));

        let _flood = idle_sockets("127.0.0.4".parse().unwrap(), router, FLOOD).await;
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem[..]) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let t0 = Instant::now();
        let tcp = TcpStream::connect(router).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("hello.localhost").unwrap();
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: hello.localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let took = t0.elapsed();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(took < Duration::from_secs(1), "{took:?}");
    });
}
