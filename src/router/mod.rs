//! The router: a tokio/hyper reverse proxy that routes by Host to an app's web dynos.
//!
//! `<app>.localhost[:port]` goes to app `<app>`'s up web dynos, round robin, over kept-alive
//! HTTP/1.1 connections. Bodies are streamed both ways; WebSocket and other `Upgrade`s are
//! passed through. Every request routed to an app gets one Heroku-style log line through the
//! [`RouterLog`] callback, written when the response body has finished streaming. Errors are
//! served as 503 pages with Heroku's H-codes (H10, H12, H13, H14, H15, H18, H19, H20, H27, H28,
//! H99). Custom domains resolve through the [`RouteTable`]; an idled app is woken through its
//! wake callback while the request waits. `tls` adds the optional HTTPS listener.
//!
//! `table` is the route table and Host → app; `accept` the listeners, worker threads and
//! per-client caps; `h1` the HTTP/1.1 fast path and `proxy` the hyper path it hands unusual
//! connections to; `headers` the header rules both paths share (hop-by-hop, forwarding, request
//! ids); `errors` the H-codes and their pages.

mod accept;
mod body;
mod errors;
mod h1;
mod headers;
mod pool;
mod proxy;
mod table;
#[cfg(test)]
mod tests;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;

pub use accept::{
    serve, serve_tls, serve_with, serve_with_inbound, serve_with_inbound_and_tls, Inbound,
    InboundGuard, InboundListeners,
};
pub use body::RouterBody;
pub use table::{AppRoute, Backend, RouteTable, WakeFn};

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

/// Body type of requests sent to dynos.
pub(crate) type UpBody = BoxBody<Bytes, body::BoxError>;

/// The variable fields at the end of a log line; `None` prints as empty (`dyno=`).
pub(crate) struct LogFields<'a> {
    pub dyno: Option<&'a str>,
    pub connect: Option<u64>,
    pub service: Option<u64>,
    pub status: u16,
    pub bytes: Option<u64>,
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
