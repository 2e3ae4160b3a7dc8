//! Keep-alive connections to dynos: one HTTP/1.1 connection per in-flight request, idle ones kept
//! per backend address and reused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::UpBody;

/// Why a connection to a dyno could not be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// No answer within the connect timeout (H19).
    Timeout,
    /// Refused, reset, unreachable, or the HTTP handshake failed.
    Failed(String),
}

/// A connection ready to take one request.
pub(crate) struct Conn {
    pub sender: SendRequest<UpBody>,
    /// Taken from the idle pool (it may have been closed by the dyno in the meantime).
    pub reused: bool,
}

/// The dyno connection a client connection used last. Its next request (HTTP/1.1 keep-alive)
/// mostly goes to the same dyno and takes it back without touching the shared pool or waiting
/// for hyper to finish the previous exchange in another task.
pub(crate) type Slot = Arc<Mutex<Option<(SocketAddr, SendRequest<UpBody>)>>>;

/// Idle connections per dyno address, with the time each went idle: the part both pools share.
struct Idle<T> {
    by_addr: Mutex<HashMap<SocketAddr, Vec<(Instant, T)>>>,
    max_per_backend: usize,
    timeout: Duration,
}

impl<T> Idle<T> {
    fn new(max_per_backend: usize, timeout: Duration) -> Self {
        Idle {
            by_addr: Mutex::new(HashMap::new()),
            max_per_backend,
            timeout,
        }
    }

    /// The most recently idled connection to `addr` that is young enough and `usable`.
    fn take(&self, addr: SocketAddr, usable: impl Fn(&T) -> bool) -> Option<T> {
        let mut idle = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(&addr)?;
        let mut found = None;
        while let Some((since, c)) = list.pop() {
            if since.elapsed() < self.timeout && usable(&c) {
                found = Some(c);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(&addr);
        }
        found
    }

    /// Keeps `c` (unless the list is full), dropping the ones too old or no longer `alive`.
    fn put(&self, addr: SocketAddr, c: T, alive: impl Fn(&T) -> bool) {
        let mut idle = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr).or_default();
        let now = Instant::now();
        list.retain(|(since, c)| now.duration_since(*since) < self.timeout && alive(c));
        if list.len() < self.max_per_backend {
            list.push((now, c));
        }
    }
}

pub(crate) struct Pool {
    idle: Idle<SendRequest<UpBody>>,
    connect_timeout: Duration,
}

impl Pool {
    pub fn new(
        max_idle_per_backend: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Pool {
            idle: Idle::new(max_idle_per_backend, idle_timeout),
            connect_timeout,
        }
    }

    /// An idle connection to `addr` if there is a usable one, else a new one.
    pub async fn get(&self, addr: SocketAddr) -> Result<Conn, ConnectError> {
        if let Some(sender) = self.checkout(addr) {
            return Ok(Conn {
                sender,
                reused: true,
            });
        }
        let sender = self.connect(addr).await?;
        Ok(Conn {
            sender,
            reused: false,
        })
    }

    fn checkout(&self, addr: SocketAddr) -> Option<SendRequest<UpBody>> {
        self.idle
            .take(addr, |sender| !sender.is_closed() && sender.is_ready())
    }

    /// Opens a new connection to `addr` (never from the pool).
    pub async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<UpBody>, ConnectError> {
        let stream = connect_tcp(addr, self.connect_timeout).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError::Failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("router: connection to {addr}: {e}");
            }
        });
        Ok(sender)
    }

    /// Gives a connection back once its exchange is over; it goes idle when hyper says it can
    /// take the next request.
    pub fn checkin(self: &Arc<Self>, addr: SocketAddr, mut sender: SendRequest<UpBody>) {
        if sender.is_closed() || self.idle.max_per_backend == 0 {
            return;
        }
        let pool = self.clone();
        let put = move |sender: SendRequest<UpBody>| {
            pool.idle.put(addr, sender, |s| !s.is_closed());
        };
        if sender.is_ready() {
            put(sender);
            return;
        }
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), sender.ready()).await {
                put(sender);
            }
        });
    }
}

/// Opens a TCP connection to a dyno within `timeout`.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(ConnectError::Timeout),
        Ok(Err(e)) => Err(ConnectError::Failed(e.to_string())),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// Idle kept-alive dyno connections of the fast path (`h1`), as plain sockets at a message
/// boundary; per router worker, like [`Pool`].
pub(crate) struct StreamPool {
    idle: Idle<TcpStream>,
    connect_timeout: Duration,
}

impl StreamPool {
    pub fn new(
        max_idle_per_backend: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        StreamPool {
            idle: Idle::new(max_idle_per_backend, idle_timeout),
            connect_timeout,
        }
    }

    /// The most recently idled connection to `addr` that is young enough.
    pub fn checkout(&self, addr: SocketAddr) -> Option<TcpStream> {
        self.idle.take(addr, |_| true)
    }

    pub fn checkin(&self, addr: SocketAddr, s: TcpStream) {
        self.idle.put(addr, s, |_| true);
    }

    pub async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, ConnectError> {
        connect_tcp(addr, self.connect_timeout).await
    }
}
