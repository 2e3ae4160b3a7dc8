//! The hyper path: a client connection served by hyper, each request routed to a dyno through
//! the pool of kept-alive hyper connections, with upgrades, timeouts and the log line. The
//! fast path (`h1`) hands it the connections it does not handle, and uses its routing helpers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::accept::ClientConn;
use super::body::PendingLog;
use super::errors::{error_page, not_found, HCode, H10, H12, H13, H14, H19, H20, H27, H28, H99};
use super::headers::{
    forwarded_for, is_upgrade, joined, log_path, request_id, sanitize, strip_hop_by_hop, Peer,
};
use super::pool::{ConnectError, Pool, Slot, StreamPool};
use super::table::{request_host, Backend, RouteTable};
use super::{body, h1, pool};
use super::{millis, unix_ms, LogFields, RouterBody, RouterConfig, RouterLog, UpBody};

pub(super) struct Router {
    pub(super) table: RouteTable,
    pub(super) log: RouterLog,
    pub(super) config: RouterConfig,
    /// The listener's port (X-Forwarded-Port).
    pub(super) port_header: HeaderValue,
    /// `http` or `https` (X-Forwarded-Proto, the log line's `protocol=`).
    pub(super) proto: &'static str,
    pub(super) pool: Arc<Pool>,
    /// The fast path's kept-alive dyno connections.
    pub(super) streams: StreamPool,
    /// Round-robin counters per app.
    pub(super) rr: Arc<RwLock<HashMap<String, Arc<AtomicUsize>>>>,
}

/// The request's fields that go into its log line.
#[derive(Debug, Clone)]
pub(crate) struct ReqInfo {
    pub app: String,
    pub method: String,
    pub path: String,
    pub host: String,
    pub request_id: String,
    pub fwd: String,
    /// `http` or `https`.
    pub protocol: &'static str,
}

impl ReqInfo {
    /// The log line in Heroku's format.
    pub fn line(&self, error: Option<HCode>, f: &LogFields) -> String {
        let mut s = String::with_capacity(256);
        match error {
            None => s.push_str("at=info "),
            Some(HCode(code, desc)) => {
                let _ = write!(s, "at=error code={code} desc=\"{desc}\" ");
            }
        }
        let _ = write!(
            s,
            "method={} path=\"{}\" host={} request_id={} fwd=\"{}\" dyno={} connect=",
            self.method,
            self.path,
            self.host,
            self.request_id,
            self.fwd,
            f.dyno.unwrap_or(""),
        );
        if let Some(v) = f.connect {
            let _ = write!(s, "{v}ms");
        }
        s.push_str(" service=");
        if let Some(v) = f.service {
            let _ = write!(s, "{v}ms");
        }
        let _ = write!(s, " status={} bytes=", f.status);
        if let Some(b) = f.bytes {
            let _ = write!(s, "{b}");
        }
        s.push_str(" protocol=");
        s.push_str(self.protocol);
        s
    }
}

/// How far a request got, for the log line if the client goes away before the response.
#[derive(Default)]
struct Progress {
    dyno: Option<String>,
    connect_ms: Option<u64>,
}

/// Logs H27 (client request interrupted) when the client disconnects while the router is still
/// waiting: hyper then drops the request's future, and this with it.
struct InterruptGuard {
    log: RouterLog,
    info: Arc<ReqInfo>,
    progress: Progress,
    started: Instant,
    armed: bool,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if self.armed {
            let line = self.info.line(
                Some(H27),
                &LogFields {
                    dyno: self.progress.dyno.as_deref(),
                    connect: self.progress.connect_ms,
                    service: Some(millis(self.started.elapsed())),
                    status: 499,
                    bytes: None,
                },
            );
            (self.log)(&self.info.app, line);
        }
    }
}

pub(super) enum Wait {
    NoSuchApp,
    Error(HCode),
}

impl Router {
    /// Serves a client connection: the fast path, which hands unusual requests to hyper.
    pub(super) async fn serve_client<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        conn: ClientConn,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        if self.config.fast_path {
            h1::serve(self, stream, peer, conn).await
        } else {
            self.serve_connection(stream, peer, conn).await
        }
    }

    pub(super) async fn serve_connection<S>(
        self: Arc<Self>,
        stream: S,
        peer: SocketAddr,
        conn: ClientConn,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.clone();
        let slot: Slot = Arc::default();
        let conn_slot = slot.clone();
        let client = Arc::new(Peer {
            ip: peer.ip().to_canonical().to_string(),
        });
        let conn = Arc::new(conn);
        let svc = service_fn(move |req| {
            let router = router.clone();
            let slot = conn_slot.clone();
            let client = client.clone();
            // hyper calls the service once a request's head is complete.
            conn.head_complete();
            async move { Ok::<_, Infallible>(router.handle(req, &client, slot).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_read_timeout)
            .max_buf_size(self.config.max_header_bytes.max(8192));
        if let Err(e) = builder
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades()
            .await
        {
            tracing::debug!("router: client connection {peer}: {e}");
        }
        // The client is gone; its dyno connection serves others.
        let last = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((addr, sender)) = last {
            self.pool.checkin(addr, sender);
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: &Peer,
        slot: Slot,
    ) -> Response<RouterBody> {
        let host = request_host(&req);
        let Some(app) = self.table.app_for_lower_host(&host) else {
            return not_found();
        };
        self.table.touch(&app);
        let info = Arc::new(ReqInfo {
            app,
            method: req.method().as_str().to_string(),
            path: log_path(req.uri()),
            host: sanitize(&host),
            request_id: request_id(req.headers()),
            fwd: forwarded_for(
                joined(req.headers(), HeaderName::from_static("x-forwarded-for")),
                peer,
            ),
            protocol: self.proto,
        });
        let mut guard = InterruptGuard {
            log: self.log.clone(),
            info: Arc::clone(&info),
            progress: Progress::default(),
            started: Instant::now(),
            armed: true,
        };
        let resp = self.route(req, &info, &mut guard.progress, slot).await;
        guard.armed = false;
        resp
    }

    /// Routes one request to a dyno of `info.app`; `progress` follows it for the H27 line.
    async fn route(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        info: &Arc<ReqInfo>,
        progress: &mut Progress,
        slot: Slot,
    ) -> Response<RouterBody> {
        let backends = match self.wait_for_backends(&info.app, &info.request_id).await {
            Ok(b) => b,
            Err(Wait::NoSuchApp) => return not_found(),
            Err(Wait::Error(code)) => {
                return self.error(
                    info,
                    code,
                    LogFields {
                        dyno: None,
                        connect: None,
                        service: None,
                        status: 503,
                        bytes: None,
                    },
                )
            }
        };

        // Upgrades (WebSocket): take the client side's upgrade before the request moves on.
        let upgrade = if is_upgrade(req.headers()) {
            let proto = req.headers().get(header::UPGRADE).cloned();
            proto.map(|p| (p, hyper::upgrade::on(&mut req)))
        } else {
            None
        };
        let upgrade_proto = upgrade.as_ref().map(|(p, _)| p.clone());
        let (parts, body) = self.upstream_request(req, info, upgrade_proto).into_parts();
        // Bodiless idempotent requests can be sent again when a kept-alive connection turns out
        // to have been closed by the dyno.
        let resend =
            (body.is_end_stream() && parts.method.is_idempotent()).then(|| copy_parts(&parts));
        let client_idle = Arc::new(AtomicBool::new(false));
        let body = if body.is_end_stream() {
            // Nothing to stream (and no idle window to watch).
            empty_body()
        } else {
            body::ClientBody::new(body, self.config.client_idle_timeout, client_idle.clone())
                .boxed()
        };
        let mut up_req = Request::from_parts(parts, body);

        // The dyno picked round robin; on a connect failure the next one, once.
        let mut failure = None;
        let mut chosen = None;
        for b in &backends {
            let t = Instant::now();
            let kept = {
                let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
                match s.as_ref() {
                    Some((a, _)) if *a == b.addr => s.take().map(|(_, sender)| sender),
                    _ => None,
                }
            };
            let got = match kept {
                // Ready at once, or as soon as hyper has finished the previous exchange.
                Some(mut sender) => {
                    match tokio::time::timeout(self.config.connect_timeout, sender.ready()).await {
                        Ok(Ok(())) => Ok(pool::Conn {
                            sender,
                            reused: true,
                        }),
                        _ => self.pool.get(b.addr).await,
                    }
                }
                None => self.pool.get(b.addr).await,
            };
            match got {
                Ok(conn) => {
                    chosen = Some((b, conn, t.elapsed()));
                    break;
                }
                Err(e) => {
                    tracing::debug!("router: {} {}: connect {}: {e:?}", info.app, b.dyno, b.addr);
                    failure = Some((b, e, t.elapsed()));
                }
            }
        }
        let Some((backend, mut conn, connect_time)) = chosen else {
            let (b, e, t) = failure.expect("at least one backend tried");
            return self.connect_error(info, b, e, t);
        };
        let mut connect_ms = millis(connect_time);
        progress.dyno = Some(backend.dyno.clone());
        progress.connect_ms = Some(connect_ms);

        let sent_at = Instant::now();
        let deadline = tokio::time::Instant::from_std(sent_at + self.config.request_timeout);
        let mut resp = loop {
            let sent =
                tokio::time::timeout_at(deadline, conn.sender.try_send_request(up_req)).await;
            match sent {
                Ok(Ok(resp)) => break resp,
                Err(_elapsed) => {
                    return self.error(
                        info,
                        H12,
                        LogFields {
                            dyno: Some(&backend.dyno),
                            connect: Some(connect_ms),
                            service: Some(millis(sent_at.elapsed())),
                            status: 503,
                            bytes: Some(0),
                        },
                    )
                }
                Ok(Err(mut e)) => {
                    // A kept-alive connection the dyno had closed: send again on a new one.
                    let again = if !conn.reused {
                        None
                    } else if let Some(r) = e.take_message() {
                        Some(r)
                    } else {
                        resend
                            .as_ref()
                            .map(|p| Request::from_parts(copy_parts(p), empty_body()))
                    };
                    let Some(r) = again else {
                        tracing::debug!("router: {} {}: {}", info.app, backend.dyno, e.error());
                        // The client stopped sending its body: H28, not the dyno's fault.
                        let code = if client_idle.load(Ordering::Relaxed) {
                            H28
                        } else {
                            H13
                        };
                        return self.error(
                            info,
                            code,
                            LogFields {
                                dyno: Some(&backend.dyno),
                                connect: Some(connect_ms),
                                service: Some(millis(sent_at.elapsed())),
                                status: 503,
                                bytes: Some(0),
                            },
                        );
                    };
                    up_req = r;
                    let t = Instant::now();
                    match self.pool.connect(backend.addr).await {
                        Ok(sender) => {
                            conn = pool::Conn {
                                sender,
                                reused: false,
                            };
                            connect_ms += millis(t.elapsed());
                        }
                        Err(e) => return self.connect_error(info, backend, e, t.elapsed()),
                    }
                }
            }
        };

        let status = resp.status();
        if let (StatusCode::SWITCHING_PROTOCOLS, Some((_, client_upgrade))) = (status, upgrade) {
            let dyno_upgrade = hyper::upgrade::on(&mut resp);
            let sender = conn.sender;
            let app = info.app.clone();
            tokio::spawn(async move {
                let (client, dyno) = match tokio::join!(client_upgrade, dyno_upgrade) {
                    (Ok(c), Ok(d)) => (c, d),
                    (c, d) => {
                        tracing::debug!(
                            "router: {app}: upgrade failed: {:?} {:?}",
                            c.err(),
                            d.err()
                        );
                        return;
                    }
                };
                drop(sender);
                let mut client = TokioIo::new(client);
                let mut dyno = TokioIo::new(dyno);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut dyno).await;
            });
            let line = info.line(
                None,
                &LogFields {
                    dyno: Some(&backend.dyno),
                    connect: Some(connect_ms),
                    service: Some(millis(sent_at.elapsed())),
                    status: 101,
                    bytes: Some(0),
                },
            );
            (self.log)(&info.app, line);
            let (mut parts, _) = resp.into_parts();
            let proto = parts.headers.get(header::UPGRADE).cloned();
            strip_hop_by_hop(&mut parts.headers);
            if let Some(p) = proto {
                parts.headers.insert(header::UPGRADE, p);
            }
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            return Response::from_parts(parts, RouterBody::empty());
        }

        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let pending = PendingLog {
            log: self.log.clone(),
            info: Arc::clone(info),
            dyno: backend.dyno.clone(),
            connect_ms,
            sent_at,
            status: status.as_u16(),
            conn: Some((self.pool.clone(), backend.addr, conn.sender)),
            slot: Some(slot),
        };
        Response::from_parts(
            parts,
            RouterBody::upstream(body, pending, self.config.idle_timeout),
        )
    }

    /// The app's up backends this request may try (the next one round robin, then the one after
    /// it), holding the request while the app boots (or wakes from idle).
    pub(super) async fn wait_for_backends(
        &self,
        app: &str,
        request_id: &str,
    ) -> Result<Vec<Backend>, Wait> {
        let deadline = Instant::now() + self.config.boot_timeout;
        let mut woken = false;
        loop {
            // Registered before looking, so a change in between is not missed.
            let changed = self.table.changed.notified();
            let idle = {
                let apps = self.table.apps.read().unwrap_or_else(|e| e.into_inner());
                match apps.get(app) {
                    None => return Err(Wait::NoSuchApp),
                    Some(r) if r.idle => true,
                    Some(r) if r.web_quantity == 0 => return Err(Wait::Error(H14)),
                    Some(r) if !r.backends.is_empty() => {
                        // The ones this request may try: round robin, and the next on failure.
                        let n = r.backends.len();
                        let first = self.next_index(app);
                        let tried = (0..n.min(2)).map(|i| r.backends[(first + i) % n].clone());
                        return Ok(tried.collect());
                    }
                    Some(r) if r.crashed => return Err(Wait::Error(H10)),
                    Some(_) => false,
                }
            };
            if idle && !woken {
                if !self.table.wake(app) {
                    // An idle route and nobody to wake it: the platform's fault.
                    tracing::error!(app, request_id, "idle app and no wake callback");
                    return Err(Wait::Error(H99));
                }
                woken = true;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Wait::Error(H20));
            }
            let wait = self.config.boot_poll_interval.min(deadline - now);
            let _ = tokio::time::timeout(wait, changed).await;
        }
    }

    fn next_index(&self, app: &str) -> usize {
        let counter = {
            let rr = self.rr.read().unwrap_or_else(|e| e.into_inner());
            rr.get(app).cloned()
        };
        let counter = counter.unwrap_or_else(|| {
            let mut rr = self.rr.write().unwrap_or_else(|e| e.into_inner());
            rr.entry(app.to_string()).or_default().clone()
        });
        counter.fetch_add(1, Ordering::Relaxed)
    }

    fn upstream_request(
        &self,
        req: Request<Incoming>,
        info: &ReqInfo,
        upgrade: Option<HeaderValue>,
    ) -> Request<Incoming> {
        let (mut parts, body) = req.into_parts();
        let host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let via = joined(&parts.headers, header::VIA);
        let h = &mut parts.headers;
        strip_hop_by_hop(h);
        // The router answers `Expect: 100-continue` itself.
        h.remove(header::EXPECT);
        if let Some(host) = host {
            h.insert(header::HOST, host);
        }
        if let Some(p) = upgrade {
            h.insert(header::UPGRADE, p);
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        set(h, "x-forwarded-for", &info.fwd);
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(self.proto),
        );
        h.insert(
            HeaderName::from_static("x-forwarded-port"),
            self.port_header.clone(),
        );
        // The client's own (valid) id, when it sent just that one, is already there as is.
        let mut ids = h.get_all("x-request-id").iter();
        let kept = ids.next().map(HeaderValue::as_bytes) == Some(info.request_id.as_bytes())
            && ids.next().is_none();
        if !kept {
            set(h, "x-request-id", &info.request_id);
        }
        h.insert(
            HeaderName::from_static("x-request-start"),
            HeaderValue::from(unix_ms()),
        );
        match via {
            Some(v) => set(h, "via", &format!("{v}, 1.1 dyno")),
            None => {
                h.insert(header::VIA, HeaderValue::from_static("1.1 dyno"));
            }
        }
        // Origin form (`/path?query`) already; an absolute-form target loses its authority.
        if parts.uri.scheme().is_some()
            || parts.uri.authority().is_some()
            || parts.uri.path_and_query().is_none()
        {
            parts.uri = parts
                .uri
                .path_and_query()
                .and_then(|pq| Uri::try_from(pq.as_str()).ok())
                .unwrap_or_else(|| Uri::from_static("/"));
        }
        parts.version = Version::HTTP_11;
        Request::from_parts(parts, body)
    }

    /// The H-code for a dyno that could not be connected to.
    pub(super) fn connect_code(&self, backend: &Backend, e: ConnectError) -> HCode {
        match e {
            ConnectError::Timeout => H19,
            ConnectError::Failed(msg) => {
                tracing::debug!(dyno = %backend.dyno, "connect failed: {msg}");
                H10
            }
        }
    }

    fn connect_error(
        &self,
        info: &ReqInfo,
        backend: &Backend,
        e: ConnectError,
        t: Duration,
    ) -> Response<RouterBody> {
        let code = self.connect_code(backend, e);
        self.error(
            info,
            code,
            LogFields {
                dyno: Some(&backend.dyno),
                connect: Some(millis(t)),
                service: None,
                status: 503,
                bytes: None,
            },
        )
    }

    /// Logs an error line and returns the 503 error page.
    fn error(&self, info: &ReqInfo, code: HCode, f: LogFields) -> Response<RouterBody> {
        self.log_error(info, code, &f);
        error_page(StatusCode::SERVICE_UNAVAILABLE, code)
    }

    pub(super) fn log_error(&self, info: &ReqInfo, code: HCode, f: &LogFields) {
        (self.log)(&info.app, info.line(Some(code), f));
    }
}

fn empty_body() -> UpBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn copy_parts(p: &hyper::http::request::Parts) -> hyper::http::request::Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = p.method.clone();
    parts.uri = p.uri.clone();
    parts.version = p.version;
    parts.headers = p.headers.clone();
    parts
}
