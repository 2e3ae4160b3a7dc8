//! The API over HTTPS on `DYNO_API_ADDR`, so the official `heroku` CLI (and git) drive dyno:
//! TLS with the local CA of `dyno certs`, then authentication for every request before
//! anything else looks at it (a Bearer token, or Basic with the token as password for git), then
//! the same route table as the Unix socket (`api_server::handle`, which refuses host-path
//! inputs over this transport), git's smart HTTP (`git_http`) and log sessions' event streams
//! (`log_sessions`, whose URL carries its own secret because EventSource sends no token).

use super::api_server::{self, error, Fail, Resp, Route, Transport};
use super::Daemon;
use crate::paths::Paths;
use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the daemon knows of its HTTPS API (also when it is off: the token exists anyway).
#[derive(Clone, Default)]
pub struct ApiInfo {
    /// `https://127.0.0.1:<port>` (a loopback name: the Heroku CLI only sends its token to
    /// `localhost` and `127.0.0.1`).
    pub url: Option<String>,
    pub token: String,
    /// The world-readable copy of the CA certificate (`NODE_EXTRA_CA_CERTS`, `GIT_SSL_CAINFO`).
    pub ca_public: Option<PathBuf>,
}

/// Never prints the token.
impl std::fmt::Debug for ApiInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiInfo")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("ca_public", &self.ca_public)
            .finish()
    }
}

/// The bound listener and its TLS acceptor.
pub struct Listener {
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// The API token: 32 random bytes as hex, made once and kept in `DYNO_HOME/api-token` (0600).
pub fn load_or_create_token(paths: &Paths) -> Result<String> {
    use std::io::Write;
    let path = paths.home.join("api-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    let bytes: [u8; 32] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

/// Where the world-readable copy of this home's CA certificate goes: outside `DYNO_HOME`
/// (0700), so a user's `heroku` and `git` can read it.
pub fn ca_public_path(paths: &Paths) -> PathBuf {
    PathBuf::from("/run/dyno").join(format!("{}-ca.pem", paths.instance))
}

/// Writes the CA certificate (never the key) where anyone may read it.
fn publish_ca(paths: &Paths, ca_cert: &std::path::Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dst = ca_public_path(paths);
    let dir = dst.parent().expect("a parent");
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let tmp = dst.with_extension("tmp");
    std::fs::copy(ca_cert, &tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, &dst)?;
    Ok(dst)
}

/// Removes the public CA copy (daemon stop).
pub fn unpublish_ca(paths: &Paths) {
    let _ = std::fs::remove_file(ca_public_path(paths));
}

/// Binds `addr` (warning when it is not loopback) with a certificate for `localhost`,
/// `127.0.0.1` and the bound address, signed by the local CA; publishes the CA certificate.
pub async fn bind(paths: &Paths, addr: &str) -> Result<(Listener, PathBuf)> {
    let ca = crate::router::tls::LocalCa::load_or_create(&paths.home.join("tls"))
        .context("the local certificate authority")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set DYNO_API_ADDR, or `off`)"))?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        tracing::warn!(
            "DYNO_API_ADDR={addr}: the platform API listens beyond this machine; anyone who \
             reaches {bound} with the token controls every app"
        );
        eprintln!("dyno daemon: warning: the HTTPS API on {bound} is reachable from other machines: anyone with the token controls every app");
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !bound.ip().is_unspecified() && !names.contains(&bound.ip().to_string()) {
        names.push(bound.ip().to_string());
    }
    let acceptor = crate::router::tls::fixed_acceptor(&ca, &names)?;
    let public = publish_ca(paths, &ca.cert_path).context("publishing the CA certificate")?;
    Ok((
        Listener {
            listener,
            addr: bound,
            acceptor,
        },
        public,
    ))
}

/// The base URL clients use: a loopback name when the listener takes every address.
pub fn base_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("https://{host}:{}", addr.port())
}

pub async fn serve(d: Arc<Daemon>, l: Listener) {
    let routes: Arc<Vec<Route>> = Arc::new(super::api::routes());
    loop {
        let (tcp, peer) = match l.listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("api (https): accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (d, routes, acceptor) = (d.clone(), routes.clone(), l.acceptor.clone());
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    _ => return,
                };
            let svc = hyper::service::service_fn(move |req| {
                let (d, routes) = (d.clone(), routes.clone());
                async move { Ok::<_, Infallible>(handle(d, &routes, req, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Every request over HTTPS: log streams by their own secret, everything else by the token
/// first.
async fn handle(
    d: Arc<Daemon>,
    routes: &[Route],
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Resp {
    let base = d.api.url.clone().unwrap_or_default();
    if let Some(secret) = req.uri().path().strip_prefix(super::log_sessions::PATH) {
        let secret = secret.to_string();
        return super::log_sessions::serve(&d, &secret, req).await;
    }
    if !authorized(&d.api.token, &req) {
        tracing::info!(%peer, method = %req.method(), path = %req.uri().path(), "api (https): 401");
        return unauthorized();
    }
    let req = match super::git_http::serve(&d, req).await {
        Ok(resp) => return resp,
        Err(req) => req,
    };
    api_server::handle(d, routes, req, Transport::Https { base }).await
}

/// 401 with Heroku's error JSON; `WWW-Authenticate: Basic` makes git ask its credential helper
/// (`heroku git:credentials`).
pub fn unauthorized() -> Resp {
    let mut r = error(Fail(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Invalid credentials provided.".into(),
    ));
    r.headers_mut().insert(
        "www-authenticate",
        hyper::header::HeaderValue::from_static("Basic realm=\"dyno\""),
    );
    r
}

/// `Authorization: Bearer <token>`, or `Basic base64(<any user>:<token>)` (git).
pub fn authorized<B>(token: &str, req: &Request<B>) -> bool {
    let Some(h) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, value) = h.trim().split_once(' ').unwrap_or((h, ""));
    let given = if scheme.eq_ignore_ascii_case("bearer") {
        value.trim().as_bytes().to_vec()
    } else if scheme.eq_ignore_ascii_case("basic") {
        match base64_decode(value.trim()) {
            Some(creds) => match creds.iter().position(|&b| b == b':') {
                Some(i) => creds[i + 1..].to_vec(),
                None => return false,
            },
            None => return false,
        }
    } else {
        return false;
    };
    constant_time_eq(&given, token.as_bytes())
}

/// Compares without an early exit, so the time taken says nothing of where a guess differs.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | ((a.len() ^ b.len()) >> 8) as u8;
    for (i, y) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(0) ^ y;
    }
    diff == 0 && a.len() == b.len()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }

    #[test]
    fn basic_and_bearer() {
        let req = |h: &str| {
            Request::builder()
                .header("authorization", h)
                .body(())
                .unwrap()
        };
        // base64("heroku:secret-token")
        assert!(authorized(
            "secret-token",
            &req("Basic aGVyb2t1OnNlY3JldC10b2tlbg==")
        ));
        assert!(authorized("secret-token", &req("Bearer secret-token")));
        assert!(!authorized("secret-token", &req("Bearer secret-tokeN")));
        assert!(!authorized("secret-token", &req("Basic aGVyb2t1")));
        assert!(!authorized("secret-token", &req("Token secret-token")));
        assert!(!authorized(
            "secret-token",
            &Request::builder().body(()).unwrap()
        ));
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
    }
}
