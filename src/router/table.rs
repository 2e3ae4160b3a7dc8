//! The route table: which app a Host names, its up web dynos, custom domains, idle wake-ups and
//! the last request time idling reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hyper::header;
use hyper::Request;

use super::unix_ms;

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
    pub(super) changed: Arc<tokio::sync::Notify>,
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
    pub(super) fn app_for_lower_host(&self, host: &str) -> Option<String> {
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

    pub(super) fn wake(&self, app: &str) -> bool {
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

/// The Host header (or the authority of an absolute-form request line), lowercased.
pub(super) fn request_host<B>(req: &Request<B>) -> String {
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
