//! The router: a tokio/hyper reverse proxy that routes by Host to an app's web dynos.
//!
//! STUB: interface only, implemented by the router work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

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
}

/// The routing table, written by the dyno manager, read by the router on every request.
/// Keyed by app name; `<app>.localhost[:port]` resolves to app `<app>`.
#[derive(Clone, Default)]
pub struct RouteTable {
    pub apps: Arc<RwLock<HashMap<String, AppRoute>>>,
}

impl RouteTable {
    pub fn set(&self, app: &str, route: AppRoute) {
        self.apps.write().unwrap().insert(app.to_string(), route);
    }
    pub fn remove(&self, app: &str) {
        self.apps.write().unwrap().remove(app);
    }
}

/// Called for every router log line: (app, line without timestamp/source), e.g.
/// `at=info method=GET path="/" host=hello.localhost request_id=… fwd="127.0.0.1" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 protocol=http`.
pub type RouterLog = Arc<dyn Fn(&str, String) + Send + Sync>;

/// Serves HTTP on `listener` forever.
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _table: RouteTable,
    _log: RouterLog,
) -> anyhow::Result<()> {
    anyhow::bail!("router not implemented")
}
