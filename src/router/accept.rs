//! Accepting connections: the `serve*` entry points, the worker threads and the hand-off
//! between them, the connection slots and per-client caps, the dyno inbound listeners, and the
//! TLS sniffing on the HTTP port.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper::header::HeaderValue;

use super::pool::{Pool, StreamPool};
use super::proxy::Router;
use super::{RouteTable, RouterConfig, RouterLog};

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
