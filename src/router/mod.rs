//! The router: a tokio/hyper reverse proxy that routes by Host to an app's web dynos.
//!
//! `<app>.localhost[:port]` goes to app `<app>`'s up web dynos, round robin, over kept-alive
//! HTTP/1.1 connections. Bodies are streamed both ways; WebSocket and other `Upgrade`s are
//! passed through. Every request routed to an app gets one Heroku-style log line through the
//! [`RouterLog`] callback, written when the response body has finished streaming. Errors are
//! served as 503 pages with Heroku's H-codes (H10, H12, H13, H14, H15, H18, H19, H20, H27, H28,
//! H99). Custom domains resolve through the [`RouteTable`]; an idled app is woken through its
//! wake callback while the request waits. `tls` adds the optional HTTPS listener.

mod body;
mod h1;
mod pool;
#[cfg(test)]
mod tests;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::RngCore;

use body::PendingLog;
pub use body::RouterBody;
use pool::{ConnectError, Pool, Slot, StreamPool};

/// One web dyno that is `up` and takes requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Dyno name, e.g. `web.1`.
    pub dyno: String,
    pub addr: SocketAddr,
}

/// What the router knows of one app.
#[derive(Debug, Clone, Default)]
pub struct AppRoute {
    /// Web dynos that are up, in name order.
    pub backends: Vec<Backend>,
    /// Desired web quantity of the formation (0 → H14 "No web dynos running").
    pub web_quantity: u32,
    /// The app is idled: a request wakes it (through the table's wake callback) and waits.
    pub idle: bool,
    /// Every web dyno has crashed (and waits to be restarted): H10 instead of waiting.
    pub crashed: bool,
}

/// Wakes an idled app (by name); called by the router, must not block for long.
pub type WakeFn = Arc<dyn Fn(&str) + Send + Sync>;

/// The routing table, written by the dyno manager, read by the router on every request.
/// Keyed by app name; `<app>.localhost[:port]` resolves to app `<app>`, custom domains through
/// `domains`.
#[derive(Clone, Default)]
pub struct RouteTable {
    pub apps: Arc<RwLock<HashMap<String, AppRoute>>>,
    /// Custom domains: hostname (lowercase, `*.example.com` for a wildcard) → app name.
    pub domains: Arc<RwLock<HashMap<String, String>>>,
    /// Unix milliseconds of each app's last routed request (idling reads it).
    activity: Arc<RwLock<HashMap<String, Arc<AtomicU64>>>>,
    wake: Arc<RwLock<Option<WakeFn>>>,
    /// Notified on every change, so held requests go on at once.
    changed: Arc<tokio::sync::Notify>,
}

impl RouteTable {
    pub fn set(&self, app: &str, route: AppRoute) {
        self.apps.write().unwrap().insert(app.to_string(), route);
        self.changed.notify_waiters();
    }
    pub fn remove(&self, app: &str) {
        self.apps.write().unwrap().remove(app);
        self.changed.notify_waiters();
    }

    /// Replaces the custom domains (hostname → app name).
    pub fn set_domains(&self, domains: HashMap<String, String>) {
        *self.domains.write().unwrap() = domains;
    }

    pub fn set_wake(&self, wake: WakeFn) {
        *self.wake.write().unwrap() = Some(wake);
    }

    /// The app a Host header names: `<app>.localhost[:port]` or a custom domain.
    pub fn app_for_host(&self, host: &str) -> Option<String> {
        self.app_for_lower_host(&host.trim().to_ascii_lowercase())
    }

    /// [`Self::app_for_host`] for a host already trimmed and lowercased.
    fn app_for_lower_host(&self, host: &str) -> Option<String> {
        if let Some(app) = app_for_lower_host(host) {
            return Some(app.to_string());
        }
        let name = strip_port(host);
        let domains = self.domains.read().unwrap_or_else(|e| e.into_inner());
        if domains.is_empty() {
            return None;
        }
        if let Some(app) = domains.get(name) {
            return Some(app.clone());
        }
        let (_, parent) = name.split_once('.')?;
        domains.get(&format!("*.{parent}")).cloned()
    }

    /// Records a request to `app` now.
    pub fn touch(&self, app: &str) {
        let now = unix_ms();
        if let Some(a) = self
            .activity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(app)
        {
            a.store(now, Ordering::Relaxed);
            return;
        }
        self.activity
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(app.to_string())
            .or_default()
            .store(now, Ordering::Relaxed);
    }

    /// Unix milliseconds of the app's last request, if any since the daemon started.
    pub fn last_request(&self, app: &str) -> Option<u64> {
        self.activity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(app)
            .map(|a| a.load(Ordering::Relaxed))
    }

    fn wake(&self, app: &str) -> bool {
        let wake = self.wake.read().unwrap_or_else(|e| e.into_inner()).clone();
        match wake {
            Some(w) => {
                w(app);
                true
            }
            None => false,
        }
    }
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Called for every router log line: (app, line without timestamp/source), e.g.
/// `at=info method=GET path="/" host=hello.localhost request_id=… fwd="127.0.0.1" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 protocol=http`.
pub type RouterLog = Arc<dyn Fn(&str, String) + Send + Sync>;

/// The router's timeouts and limits. `RouterConfig::default()` has Heroku's numbers.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How long a request is held while the app wants web dynos but none is up yet (H20).
    pub boot_timeout: Duration,
    /// How often a held request looks at the route table again.
    pub boot_poll_interval: Duration,
    /// Opening a TCP connection to a dyno (H19).
    pub connect_timeout: Duration,
    /// From sending the request to the dyno to the response's headers (H12).
    pub request_timeout: Duration,
    /// Longest gap between two chunks of a dyno's response body (H15); `None` for no limit.
    pub idle_timeout: Option<Duration>,
    /// A client must send a request's headers within this time, else its connection is dropped
    /// (slow clients, and kept-alive connections left idle).
    pub header_read_timeout: Duration,
    /// Longest gap while a client sends a request body (H28, "Client Connection Idle").
    pub client_idle_timeout: Duration,
    /// Largest request head (request line and headers) a client may send; beyond: 431.
    pub max_header_bytes: usize,
    /// Client connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Open connections one client address may have on one listener (each dyno's inbound
    /// listener counts apart: every dyno connects from its own 127.0.0.1); more are closed as
    /// soon as they are accepted, so one client cannot take the router's slots from others.
    pub max_client_connections: usize,
    /// Of those, connections still without a complete first request head (or TLS handshake):
    /// idle sockets opened and left silent. More are closed as soon as they are accepted.
    pub max_client_pending: usize,
    /// Threads serving connections, each with its own event loop (default: one per core).
    pub workers: usize,
    /// Idle kept-alive connections kept per dyno.
    pub max_idle_per_backend: usize,
    /// An idle connection to a dyno older than this is not reused (servers close idle ones).
    pub pool_idle_timeout: Duration,
    /// Serve ordinary HTTP/1.1 requests on the fast path (`h1`); `false` sends every
    /// connection through hyper (for A/B benchmarks and tests of the hyper path).
    pub fast_path: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            boot_timeout: Duration::from_secs(75),
            boot_poll_interval: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(55)),
            header_read_timeout: Duration::from_secs(30),
            client_idle_timeout: Duration::from_secs(55),
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            max_client_connections: 1_000,
            max_client_pending: 128,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_idle_per_backend: 128,
            pool_idle_timeout: Duration::from_millis(1500),
            fast_path: true,
        }
    }
}

/// Serves HTTP on `listener` forever, with the default [`RouterConfig`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
) -> anyhow::Result<()> {
    serve_with(listener, table, log, RouterConfig::default()).await
}

/// Serves HTTP on `listener` forever.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
) -> anyhow::Result<()> {
    serve_any(listener, table, log, config, None, None, None).await
}

/// Listeners the router serves besides its own: the router's port inside each dyno's network
/// namespace (apps calling apps at `127.0.0.1:<router port>`). Each lives until its
/// [`InboundGuard`] is dropped.
#[derive(Clone)]
pub struct Inbound(tokio::sync::mpsc::UnboundedSender<(std::net::TcpListener, InboundStop)>);

type InboundStop = tokio::sync::oneshot::Receiver<()>;

/// The receiving end of [`Inbound`], given to [`serve_with_inbound`].
pub struct InboundListeners(
    tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpListener, InboundStop)>,
);

/// Stops serving (and closes) an inbound listener when dropped.
pub struct InboundGuard(#[allow(dead_code)] tokio::sync::oneshot::Sender<()>);

impl Inbound {
    pub fn channel() -> (Inbound, InboundListeners) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Inbound(tx), InboundListeners(rx))
    }

    /// Serves `listener` (non-blocking) until the returned guard is dropped.
    pub fn add(&self, listener: std::net::TcpListener) -> InboundGuard {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self.0.send((listener, rx));
        InboundGuard(tx)
    }
}

/// [`serve_with`], also serving every listener that comes through `inbound`.
pub async fn serve_with_inbound(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
    inbound: InboundListeners,
) -> anyhow::Result<()> {
    serve_any(listener, table, log, config, None, Some(inbound), None).await
}

/// [`serve_with_inbound`], also answering TLS on the same port: a connection whose first byte
/// is a TLS handshake record (0x16) is served as HTTPS with `acceptor`'s certificates. So an app
/// that redirects to `https://<same host:port>/` (forcing HTTPS behind Heroku's router) ends on
/// its page.
pub async fn serve_with_inbound_and_tls(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
    inbound: InboundListeners,
    acceptor: tokio_rustls::TlsAcceptor,
) -> anyhow::Result<()> {
    serve_any(
        listener,
        table,
        log,
        config,
        None,
        Some(inbound),
        Some(acceptor),
    )
    .await
}

/// Serves HTTPS on `listener` forever, with certificates from `acceptor`.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
    acceptor: tokio_rustls::TlsAcceptor,
) -> anyhow::Result<()> {
    serve_any(listener, table, log, config, Some(acceptor), None, None).await
}

/// Runs `config.workers` accept loops, each on its own thread with a single-threaded runtime
/// (nginx's worker model): a request's tasks (client connection, dyno connection, body) wake each
/// other on one thread, with no cross-thread hand-offs. Each worker has its own pool of dyno
/// connections; the route table, round robin and log are shared. Dropping the returned future
/// stops the workers.
async fn serve_any(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    inbound: Option<InboundListeners>,
    sniff: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let port = listener.local_addr()?.port();
    let listener = listener.into_std()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let gate = Gate {
        slots: slots.clone(),
        fair: Fairness::new(&config),
    };
    let rr = Arc::new(RwLock::new(HashMap::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let (fail_tx, mut fail_rx) = tokio::sync::mpsc::unbounded_channel::<anyhow::Error>();
    let n = config.workers.max(1);
    let (handoff, handed): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let workers = Arc::new(Workers {
        load: (0..n).map(|_| AtomicUsize::new(0)).collect(),
        handoff,
    });
    for (i, handed) in handed.into_iter().enumerate() {
        let workers = workers.clone();
        let listener = listener.try_clone()?;
        let make = |proto: &'static str| {
            Arc::new(Router {
                table: table.clone(),
                log: log.clone(),
                config: config.clone(),
                port_header: HeaderValue::from(port),
                proto,
                pool: Arc::new(Pool::new(
                    config.max_idle_per_backend,
                    config.pool_idle_timeout,
                    config.connect_timeout,
                )),
                streams: StreamPool::new(
                    config.max_idle_per_backend,
                    config.pool_idle_timeout,
                    config.connect_timeout,
                ),
                rr: rr.clone(),
            })
        };
        let router = make(if tls.is_some() { "https" } else { "http" });
        let sniff = sniff.clone().map(|a| (a, make("https")));
        let (tls, gate, mut stop, fail) =
            (tls.clone(), gate.clone(), stop_rx.clone(), fail_tx.clone());
        std::thread::Builder::new()
            .name(format!("router-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = fail.send(e.into());
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = fail.send(e.into());
                            return;
                        }
                    };
                    tokio::select! {
                        _ = accept_loop(listener, router, tls, sniff, gate, workers, i, handed) => {}
                        _ = stop.changed() => {}
                    }
                });
            })?;
    }
    drop(fail_tx);
    // Inbound listeners are accepted here and handed to the workers like their own accepts.
    let _inbound = inbound.map(|InboundListeners(mut rx)| {
        let (workers, slots, config) = (workers.clone(), slots.clone(), config.clone());
        AbortOnDrop(tokio::spawn(async move {
            while let Some((listener, stop)) = rx.recv().await {
                let (workers, slots, config) = (workers.clone(), slots.clone(), config.clone());
                tokio::spawn(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Every dyno's clients come from its own 127.0.0.1: counted per listener.
                    let gate = Gate {
                        slots,
                        fair: Fairness::new(&config),
                    };
                    let accepts = async {
                        while let Some((stream, peer, slot, conn)) =
                            accept_fair(&listener, &gate).await
                        {
                            let to = workers.assign(0);
                            workers.hand_off(to, stream, peer, slot, conn);
                        }
                    };
                    tokio::select! {
                        _ = accepts => {}
                        _ = stop => {}
                    }
                });
            }
        }))
    });
    let _keep = stop_tx;
    match fail_rx.recv().await {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Aborts a task when dropped (the router's own helper tasks end with it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Per-client-address counts of one listener (the router's, the HTTPS one, or one dyno's
/// inbound listener): open connections and those still without a complete first request head,
/// capped by [`RouterConfig::max_client_connections`] and [`RouterConfig::max_client_pending`].
/// A connection over a cap is closed as soon as it is accepted, before it holds a slot.
pub(crate) struct Fairness {
    max_open: usize,
    max_pending: usize,
    /// Per address: (open, pending).
    counts: std::sync::Mutex<HashMap<IpAddr, (usize, usize)>>,
}

impl Fairness {
    fn new(config: &RouterConfig) -> Arc<Fairness> {
        Arc::new(Fairness {
            max_open: config.max_client_connections.max(1),
            max_pending: config.max_client_pending.max(1),
            counts: Default::default(),
        })
    }

    /// Counts a new connection from `ip` as open and pending; `None` when it is over a cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientConn> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(ip).or_insert((0, 0));
        if c.0 >= self.max_open || c.1 >= self.max_pending {
            return None;
        }
        (c.0, c.1) = (c.0 + 1, c.1 + 1);
        Some(ClientConn {
            fair: self.clone(),
            ip,
            pending: AtomicBool::new(true),
        })
    }

    fn release(&self, ip: IpAddr, open: usize, pending: usize) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = counts.get_mut(&ip) {
            (c.0, c.1) = (c.0.saturating_sub(open), c.1.saturating_sub(pending));
            if c.0 == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// One admitted client connection: counted open until dropped, pending until its first request
/// head is complete ([`ClientConn::head_complete`], called by both paths).
pub(crate) struct ClientConn {
    fair: Arc<Fairness>,
    ip: IpAddr,
    pending: AtomicBool,
}

impl ClientConn {
    pub(crate) fn head_complete(&self) {
        if self.pending.swap(false, Ordering::Relaxed) {
            self.fair.release(self.ip, 0, 1);
        }
    }
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        let pending = usize::from(*self.pending.get_mut());
        self.fair.release(self.ip, 1, pending);
    }
}

/// What lets a listener's connection in: a free slot of the router's `max_connections`, then
/// its client's caps on that listener.
#[derive(Clone)]
struct Gate {
    slots: Arc<tokio::sync::Semaphore>,
    fair: Arc<Fairness>,
}

/// Accepts the next connection the gate admits (closing those over a client's caps at once);
/// `None` when the router stops.
async fn accept_fair(
    listener: &tokio::net::TcpListener,
    gate: &Gate,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
    ClientConn,
)> {
    loop {
        let (stream, peer, slot) = accept_one(listener, &gate.slots).await?;
        match gate.fair.admit(peer.ip()) {
            Some(conn) => return Some((stream, peer, slot, conn)),
            None => {
                tracing::debug!("router: {peer}: over the client's connection caps, closed");
                drop((stream, slot));
            }
        }
    }
}

/// The router's workers as accept loops see them: how many client connections each serves, and
/// where to hand one over. Every worker accepts, then gives the connection to the least loaded
/// worker (itself on a tie), so kept-alive clients that connect all at once spread evenly
/// instead of piling onto whichever thread woke first (nginx gets the same from `reuseport`).
struct Workers {
    load: Vec<AtomicUsize>,
    handoff: Vec<tokio::sync::mpsc::UnboundedSender<Handoff>>,
}

/// A connection accepted by one worker for another to serve.
struct Handoff {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    slot: tokio::sync::OwnedSemaphorePermit,
    conn: ClientConn,
}

impl Workers {
    fn least_loaded(&self, me: usize) -> usize {
        let mut best = me;
        let mut least = self.load[me].load(Ordering::Relaxed);
        for (i, l) in self.load.iter().enumerate() {
            let l = l.load(Ordering::Relaxed);
            if l < least {
                (best, least) = (i, l);
            }
        }
        best
    }

    /// The worker a new connection goes to, counted in its load at once (so a burst of
    /// accepts spreads).
    fn assign(&self, me: usize) -> usize {
        let to = self.least_loaded(me);
        self.load[to].fetch_add(1, Ordering::Relaxed);
        to
    }

    /// Hands an accepted connection to worker `to` (counted by [`Workers::assign`]); as a std
    /// socket, since it leaves this thread's reactor for the other's.
    fn hand_off(
        &self,
        to: usize,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        slot: tokio::sync::OwnedSemaphorePermit,
        conn: ClientConn,
    ) {
        let sent = stream.into_std().ok().is_some_and(|stream| {
            self.handoff[to]
                .send(Handoff {
                    stream,
                    peer,
                    slot,
                    conn,
                })
                .is_ok()
        });
        if !sent {
            self.load[to].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Counts a connection in its worker's load while it lives.
struct LoadGuard(Arc<Workers>, usize);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.load[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Arc<Router>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    sniff: Option<(tokio_rustls::TlsAcceptor, Arc<Router>)>,
    gate: Gate,
    workers: Arc<Workers>,
    me: usize,
    mut handed: tokio::sync::mpsc::UnboundedReceiver<Handoff>,
) {
    loop {
        let (stream, peer, slot, conn) = tokio::select! {
            accepted = accept_fair(&listener, &gate) => {
                let Some((stream, peer, slot, conn)) = accepted else { return };
                let to = workers.assign(me);
                if to != me {
                    workers.hand_off(to, stream, peer, slot, conn);
                    continue;
                }
                (stream, peer, slot, conn)
            }
            Some(h) = handed.recv() => {
                match tokio::net::TcpStream::from_std(h.stream) {
                    Ok(s) => (s, h.peer, h.slot, h.conn),
                    Err(e) => {
                        tracing::warn!("router: handed-over connection: {e}");
                        workers.load[me].fetch_sub(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        };
        let load = LoadGuard(workers.clone(), me);
        let router = router.clone();
        match (&tls, &sniff) {
            (None, None) => {
                tokio::spawn(async move {
                    router.serve_client(stream, peer, conn).await;
                    drop((slot, load));
                });
            }
            (None, Some((acceptor, https))) => {
                let (acceptor, https) = (acceptor.clone(), https.clone());
                tokio::spawn(async move {
                    // TLS on the HTTP port: a handshake record starts with 0x16, a request
                    // line with a letter. Waiting for that byte is bounded like a request head.
                    let mut first = [0u8; 1];
                    let peeked = tokio::time::timeout(
                        router.config.header_read_timeout,
                        stream.peek(&mut first),
                    )
                    .await;
                    match peeked {
                        Ok(Ok(1)) if first[0] == 0x16 => {
                            handshake(https, &acceptor, stream, peer, conn).await
                        }
                        Ok(Ok(_)) => router.serve_client(stream, peer, conn).await,
                        _ => {}
                    }
                    drop((slot, load));
                });
            }
            (Some(acceptor), _) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    handshake(router, &acceptor, stream, peer, conn).await;
                    drop((slot, load));
                });
            }
        }
    }
}

/// A TLS handshake, bounded like a request's headers (slow clients), then the client served.
async fn handshake(
    router: Arc<Router>,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    conn: ClientConn,
) {
    let hs = tokio::time::timeout(router.config.header_read_timeout, acceptor.accept(stream)).await;
    match hs {
        Ok(Ok(s)) => router.serve_client(s, peer, conn).await,
        Ok(Err(e)) => tracing::debug!("router: TLS handshake {peer}: {e}"),
        Err(_) => tracing::debug!("router: TLS handshake {peer}: timeout"),
    }
}

/// Accepts one connection once a connection slot is free; `None` when the router stops.
async fn accept_one(
    listener: &tokio::net::TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    // Past max_connections, stop accepting: the kernel's backlog holds the rest.
    let slot = slots.clone().acquire_owned().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, peer, slot));
            }
            Err(e) => {
                // EMFILE and friends: don't spin.
                tracing::warn!("router: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Body type of requests sent to dynos.
pub(crate) type UpBody = BoxBody<Bytes, body::BoxError>;

/// A Heroku router error: code and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HCode(&'static str, &'static str);

pub(crate) const H10: HCode = HCode("H10", "App crashed");
pub(crate) const H12: HCode = HCode("H12", "Request timeout");
pub(crate) const H13: HCode = HCode("H13", "Connection closed without response");
pub(crate) const H14: HCode = HCode("H14", "No web processes running");
pub(crate) const H15: HCode = HCode("H15", "Idle connection");
pub(crate) const H17: HCode = HCode("H17", "Poorly formatted HTTP response");
pub(crate) const H18: HCode = HCode("H18", "Server Request Interrupted");
pub(crate) const H19: HCode = HCode("H19", "Backend connection timeout");
pub(crate) const H20: HCode = HCode("H20", "App boot timeout");
pub(crate) const H27: HCode = HCode("H27", "Client Request Interrupted");
pub(crate) const H28: HCode = HCode("H28", "Client Connection Idle");
pub(crate) const H99: HCode = HCode("H99", "Platform error");

struct Router {
    table: RouteTable,
    log: RouterLog,
    config: RouterConfig,
    /// The listener's port (X-Forwarded-Port).
    port_header: HeaderValue,
    /// `http` or `https` (X-Forwarded-Proto, the log line's `protocol=`).
    proto: &'static str,
    pool: Arc<Pool>,
    /// The fast path's kept-alive dyno connections.
    streams: StreamPool,
    /// Round-robin counters per app.
    rr: Arc<RwLock<HashMap<String, Arc<AtomicUsize>>>>,
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

/// The variable fields at the end of a log line; `None` prints as empty (`dyno=`).
pub(crate) struct LogFields<'a> {
    pub dyno: Option<&'a str>,
    pub connect: Option<u64>,
    pub service: Option<u64>,
    pub status: u16,
    pub bytes: Option<u64>,
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

enum Wait {
    NoSuchApp,
    Error(HCode),
}

impl Router {
    /// Serves a client connection: the fast path, which hands unusual requests to hyper.
    async fn serve_client<S>(self: Arc<Self>, stream: S, peer: SocketAddr, conn: ClientConn)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        if self.config.fast_path {
            h1::serve(self, stream, peer, conn).await
        } else {
            self.serve_connection(stream, peer, conn).await
        }
    }

    async fn serve_connection<S>(self: Arc<Self>, stream: S, peer: SocketAddr, conn: ClientConn)
    where
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
    async fn wait_for_backends(&self, app: &str, request_id: &str) -> Result<Vec<Backend>, Wait> {
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
    fn connect_code(&self, backend: &Backend, e: ConnectError) -> HCode {
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

    fn log_error(&self, info: &ReqInfo, code: HCode, f: &LogFields) {
        (self.log)(&info.app, info.line(Some(code), f));
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
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

/// The Host header (or the authority of an absolute-form request line), lowercased.
fn request_host<B>(req: &Request<B>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// `Host: www.example.com.:5000` → `www.example.com` (the caller lowercases).
fn strip_port(host: &str) -> &str {
    let host = host.trim();
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// `<app>.localhost[:port]` → `<app>`.
#[cfg(test)]
pub(crate) fn app_for_host(host: &str) -> Option<String> {
    app_for_lower_host(&host.trim().to_ascii_lowercase()).map(str::to_string)
}

/// [`app_for_host`] for a host already trimmed and lowercased.
fn app_for_lower_host(host: &str) -> Option<&str> {
    let name = strip_port(host);
    let app = name.strip_suffix(".localhost")?;
    let valid = !app.is_empty()
        && app
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then_some(app)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect()
}

fn log_path(uri: &Uri) -> String {
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    pq.replace('"', "%22")
}

fn joined(h: &HeaderMap, name: HeaderName) -> Option<String> {
    let values: Vec<&str> = h
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A client connection's peer, as its requests' headers and log lines show it.
struct Peer {
    /// The client's address (X-Forwarded-For, `fwd=`).
    ip: String,
}

/// X-Forwarded-For (the client's values, joined) with the client's address appended.
fn forwarded_for(prev: Option<String>, peer: &Peer) -> String {
    let ip = peer.ip.clone();
    match prev {
        Some(prev) => {
            let mut hops: Vec<String> = prev
                .split(',')
                .map(sanitize)
                .filter(|s| !s.is_empty())
                .collect();
            hops.push(ip);
            hops.join(", ")
        }
        None => ip,
    }
}

/// The client's X-Request-Id if valid (20–200 of `[A-Za-z0-9+=/-]`), else a new one.
pub(crate) fn request_id(h: &HeaderMap) -> String {
    request_id_from(h.get("x-request-id").and_then(|v| v.to_str().ok()))
}

/// The client's id if it is valid, else a new one.
pub(crate) fn request_id_from(id: Option<&str>) -> String {
    match id {
        Some(id) if valid_request_id(id) => id.to_string(),
        _ => new_request_id(),
    }
}

pub(crate) fn valid_request_id(id: &str) -> bool {
    (20..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'/' | b'-'))
}

/// A random UUID (version 4).
pub(crate) fn new_request_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

fn connection_tokens(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE) && connection_tokens(h).iter().any(|t| t == "upgrade")
}

/// Removes hop-by-hop headers, including those the Connection header names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    for t in connection_tokens(h) {
        if let Ok(name) = HeaderName::from_bytes(t.as_bytes()) {
            h.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

fn html_response(status: StatusCode, html: String) -> Response<RouterBody> {
    let mut resp = Response::new(RouterBody::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    resp
}

fn not_found() -> Response<RouterBody> {
    let (status, html) = not_found_page();
    html_response(status, html)
}

/// The page for a host that names no app.
fn not_found_page() -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        page(
            "No such app",
            "There is no app configured at that hostname. Apps are served at <code>http://&lt;app&gt;.localhost</code>.",
        ),
    )
}

fn error_page(status: StatusCode, code: HCode) -> Response<RouterBody> {
    html_response(status, error_html(code))
}

/// The page served with an H-code error.
fn error_html(code: HCode) -> String {
    let HCode(code, desc) = code;
    page(
        "Application Error",
        &format!(
            "An error occurred in the application and your page could not be served \
             ({code}: {desc}). If you are the application owner, check your logs for details: \
             <code>dyno logs --tail</code>"
        ),
    )
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif;margin:4em auto;max-width:40em;color:#333}}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body>\n</html>\n"
    )
}
