//! Log drains: every line of an app's stream forwarded to a syslog server (`syslog+tcp://`, or
//! `syslog+tls://` over TLS; RFC 5424 frames, octet-counted as RFC 6587 has it) or to an HTTP(S)
//! endpoint (`http(s)://`, POSTed in batches as `application/logplex-1`, Heroku's format).
//!
//! TLS drains trust the Mozilla roots (webpki-roots) and the machine's own bundle
//! (`SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`), so a CA added with
//! `update-ca-certificates` is trusted as curl would trust it.
//!
//! Each drain is one task reading the app's broadcast: a drain that is slow, down or refusing
//! never slows the app or the other readers. It falls behind, loses lines, and is told with an
//! `Error L10 (output buffer overflow)` line in its own stream.
//!
//! Frames are Heroku's: `<190>1 2026-11-23T17:05:02.123456+00:00 host app web.1 - message`
//! (HOSTNAME `host`, APP-NAME the source, PROCID the dyno, MSGID `-`, no structured data).

use crate::logs::{LogLine, Logs};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;

/// Lines per HTTP batch / syslog write at most.
const BATCH: usize = 500;
/// One delivery (connect + write, or one POST) may take this long; then its lines are lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a drain sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Syslog { host: String, port: u16, tls: bool },
    Http { uri: Uri, tls: bool },
}

/// Checks a drain URL; the error says what is wrong and what would do.
pub fn parse_url(url: &str) -> Result<Target> {
    let url = url.trim();
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL (e.g. syslog+tcp://logs.example.com:514 or https://example.com/logs)"))?;
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        bail!("drain URL {url:?} has no host");
    }
    match scheme {
        "syslog+tcp" | "syslog" | "syslog+tls" => {
            let Some(port) = uri.port_u16() else {
                bail!("syslog drain URL {url:?} needs a port (e.g. syslog+tcp://{host}:514)");
            };
            if port == 0 {
                bail!("drain URL {url:?}: port 0");
            }
            Ok(Target::Syslog {
                host: host.trim_start_matches('[').trim_end_matches(']').into(),
                port,
                tls: scheme == "syslog+tls",
            })
        }
        "http" | "https" => Ok(Target::Http {
            tls: scheme == "https",
            uri,
        }),
        "" => bail!(
            "drain URL {url:?} has no scheme: use syslog+tcp://, syslog+tls://, http:// or https://"
        ),
        s => bail!(
            "unsupported drain URL scheme {s:?}: use syslog+tcp://, syslog+tls://, http:// or https://"
        ),
    }
}

/// One line as a syslog message (without the octet count).
pub fn syslog_message(l: &LogLine) -> String {
    format!(
        "<190>1 {} host {} {} - {}",
        l.ts, l.source, l.dyno, l.message
    )
}

/// Octet-counted framing: `<length> <message>`.
pub fn frame(l: &LogLine, out: &mut Vec<u8>) {
    let m = syslog_message(l);
    out.extend_from_slice(format!("{} ", m.len()).as_bytes());
    out.extend_from_slice(m.as_bytes());
}

/// The running drains, by drain id.
#[derive(Default)]
pub struct Drains {
    tasks: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// More roots to trust (PEM), beside the usual ones.
    extra_roots: Option<Vec<u8>>,
    /// Built when the first TLS drain starts.
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

impl Drains {
    /// Drains that also trust the CA certificates in `pem`.
    pub fn with_roots(pem: &[u8]) -> Drains {
        Drains {
            extra_roots: Some(pem.to_vec()),
            ..Drains::default()
        }
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .get_or_init(|| client_config(self.extra_roots.as_deref()))
            .clone()
    }

    /// Starts forwarding `app`'s new lines to `url` (already checked with [`parse_url`]).
    pub fn start(&self, logs: &Logs, app: &str, id: &str, url: &str, token: &str) {
        let Ok(target) = parse_url(url) else {
            tracing::warn!(app, url, "drain URL no longer valid; not started");
            return;
        };
        let tls = match target {
            Target::Syslog { tls, .. } | Target::Http { tls, .. } => tls.then(|| self.tls()),
        };
        let (_, rx) = logs.subscribe(app, 0);
        let drain = Drain {
            app: app.to_string(),
            target,
            token: token.to_string(),
            tls,
            conn: None,
        };
        let task = tokio::spawn(drain.run(rx));
        if let Some(old) = self.tasks.lock().unwrap().insert(id.to_string(), task) {
            old.abort();
        }
    }

    pub fn stop(&self, id: &str) {
        if let Some(t) = self.tasks.lock().unwrap().remove(id) {
            t.abort();
        }
    }
}

enum Conn {
    /// A syslog connection, plain or TLS.
    Stream(Box<dyn AsyncWrite + Send + Unpin>),
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
}

struct Drain {
    app: String,
    target: Target,
    token: String,
    /// For `syslog+tls` and `https` drains.
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Conn>,
}

impl Drain {
    async fn run(mut self, mut rx: tokio::sync::broadcast::Receiver<LogLine>) {
        let mut dropped: u64 = 0;
        let mut dropped_since = String::new();
        let mut failures: u32 = 0;
        loop {
            let mut batch = Vec::with_capacity(64);
            match rx.recv().await {
                Ok(l) => batch.push(l),
                Err(RecvError::Lagged(n)) => {
                    if dropped == 0 {
                        dropped_since = now();
                    }
                    dropped += n;
                    continue;
                }
                Err(RecvError::Closed) => return,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(l) => batch.push(l),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                        if dropped == 0 {
                            dropped_since = now();
                        }
                        dropped += n;
                    }
                    Err(_) => break,
                }
            }
            if dropped > 0 {
                batch.insert(0, crate::logs::l10(dropped, &dropped_since));
            }
            let n = batch.len();
            match tokio::time::timeout(DELIVERY_TIMEOUT, self.deliver(&batch)).await {
                Ok(Ok(())) => {
                    dropped = 0;
                    failures = 0;
                }
                failed => {
                    let why = match failed {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => "timeout".into(),
                    };
                    tracing::debug!(app = %self.app, "drain {:?}: {why}", self.target);
                    self.conn = None;
                    if dropped == 0 {
                        dropped_since = batch[0].ts.clone();
                    }
                    // The L10 line itself was in the batch: don't count it.
                    dropped += (n - usize::from(dropped > 0 && batch[0].dyno == "logplex")) as u64;
                    failures += 1;
                    // Back off (lines meanwhile are dropped by the broadcast, and counted).
                    let wait = Duration::from_millis(100u64 << failures.min(6))
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn deliver(&mut self, batch: &[LogLine]) -> Result<()> {
        let mut body = Vec::with_capacity(batch.len() * 128);
        // Octet-counted frames go back to back, with no separator (RFC 6587).
        for l in batch {
            frame(l, &mut body);
        }
        match &self.target {
            Target::Syslog { host, port, .. } => {
                if self.conn.is_none() {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    let s: Box<dyn AsyncWrite + Send + Unpin> = match &self.tls {
                        Some(config) => Box::new(tls_connect(config, host, s).await?),
                        None => Box::new(s),
                    };
                    self.conn = Some(Conn::Stream(s));
                }
                let Some(Conn::Stream(s)) = &mut self.conn else {
                    unreachable!()
                };
                s.write_all(&body).await?;
                // TLS holds written records until flushed.
                s.flush().await?;
                Ok(())
            }
            Target::Http { uri, .. } => {
                let ready = match &mut self.conn {
                    Some(Conn::Http(s)) => s.ready().await.is_ok(),
                    _ => false,
                };
                if !ready {
                    self.conn = Some(Conn::Http(http_connect(uri, self.tls.as_ref()).await?));
                }
                let Some(Conn::Http(sender)) = &mut self.conn else {
                    unreachable!()
                };
                let host = uri.authority().map(|a| a.as_str()).unwrap_or("");
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let req = hyper::Request::post(path)
                    .header("host", host)
                    .header("content-type", "application/logplex-1")
                    .header("logplex-msg-count", batch.len().to_string())
                    .header("logplex-frame-id", crate::store::new_id())
                    .header("logplex-drain-token", &self.token)
                    .header("user-agent", "Logplex/v72 (dyno)")
                    .body(Full::new(Bytes::from(body)))?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                // Read the answer out so the connection can take the next batch.
                let _ = resp.into_body().collect().await;
                if !status.is_success() {
                    bail!("the drain answered {status}");
                }
                Ok(())
            }
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// The TLS client settings of drains: the Mozilla roots, the machine's bundle, and `extra`.
fn client_config(extra: Option<&[u8]>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let system = std::fs::read(&bundle).unwrap_or_default();
    for pem in [Some(system.as_slice()), extra].into_iter().flatten() {
        for cert in CertificateDer::pem_slice_iter(pem).flatten() {
            // A certificate rustls cannot use as a root is skipped, as curl would.
            let _ = roots.add(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn tls_connect(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with {host}"))?;
    Ok(stream)
}

async fn http_connect(
    uri: &Uri,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let host = uri.host().context("no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    if let Some(config) = tls {
        let stream = tls_connect(config, host, tcp).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            parse_url("syslog+tcp://127.0.0.1:514").unwrap(),
            Target::Syslog {
                host: "127.0.0.1".into(),
                port: 514,
                tls: false
            }
        );
        assert!(matches!(
            parse_url("syslog+tls://logs.example.com:6514").unwrap(),
            Target::Syslog { tls: true, .. }
        ));
        assert!(matches!(
            parse_url("https://logs.example.com/x?y=1").unwrap(),
            Target::Http { tls: true, .. }
        ));
        for bad in [
            "",
            "nope",
            "ftp://x.example.com/",
            "syslog+tcp://x.example.com",
            "http:///path",
            "syslog+tcp://:514",
            "syslog+tls://logs.example.com",
            "syslog+udp://logs.example.com:514",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_url("ftp://x.example.com/").unwrap_err().to_string();
        assert!(e.contains("syslog+tcp://"), "{e}");
    }

    #[test]
    fn frames_are_octet_counted() {
        let l = LogLine {
            ts: "2026-11-23T17:05:02.123456+00:00".into(),
            source: "app".into(),
            dyno: "web.1".into(),
            message: "héllo".into(),
        };
        let mut out = vec![];
        frame(&l, &mut out);
        let s = String::from_utf8(out).unwrap();
        let msg = "<190>1 2026-11-23T17:05:02.123456+00:00 host app web.1 - héllo";
        assert_eq!(s, format!("{} {msg}", msg.len()));
    }

    #[tokio::test]
    async fn a_syslog_drain_that_does_not_read_loses_lines_and_is_told() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let logs = Logs::default();
        let drains = Drains::default();
        drains.start(
            &logs,
            "a",
            "1",
            &format!("syslog+tcp://127.0.0.1:{port}"),
            "d.x",
        );
        // The drain connects when it has something to send.
        logs.push("a", LogLine::new("app", "web.1", "first"));
        let (mut sock, _) = listener.accept().await.unwrap();
        // Far more than the socket buffers and the broadcast hold, while nobody reads.
        let big = "y".repeat(1000);
        for i in 0..(crate::logs::BUFFER * 3) {
            logs.push("a", LogLine::new("app", "web.1", format!("{i} {big}")));
            if i % 1000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        // Writers were never held up; now read what arrives.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 20];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            logs.push("a", LogLine::new("app", "web.1", "last"));
            match tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            last = String::from_utf8_lossy(&got).into_owned();
            if last.contains("Error L10 (output buffer overflow)") && last.ends_with(" last") {
                break;
            }
        }
        assert!(
            last.contains("heroku logplex - Error L10 (output buffer overflow): "),
            "no L10"
        );
        drains.stop("1");
    }

    /// A TLS server on loopback with a certificate for `localhost` from a new local CA: its
    /// port, the CA certificate (PEM), and what clients sent, decrypted (for `http`, each POST's
    /// content type and body).
    async fn tls_server(http: bool) -> (u16, Vec<u8>, Arc<Mutex<Vec<u8>>>) {
        let dir = tempfile::tempdir().unwrap();
        let ca = crate::router::tls::LocalCa::load_or_create(dir.path()).unwrap();
        let pem = std::fs::read(&ca.cert_path).unwrap();
        let acceptor =
            crate::router::tls::acceptor(ca, crate::router::RouteTable::default()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(async move {
            let _dir = dir;
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let sink = sink.clone();
                if !http {
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while let Ok(n) = tls.read(&mut buf).await {
                            if n == 0 {
                                return;
                            }
                            sink.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    });
                    continue;
                }
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let sink = sink.clone();
                            async move {
                                let ct = req.headers()["content-type"].as_bytes().to_vec();
                                let body = req.into_body().collect().await?.to_bytes();
                                let mut s = sink.lock().unwrap();
                                s.extend_from_slice(&ct);
                                s.push(b' ');
                                s.extend_from_slice(&body);
                                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::new())))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        (port, pem, got)
    }

    #[tokio::test]
    async fn tls_drains_deliver_to_servers_they_trust_only() {
        for scheme in ["syslog+tls", "https"] {
            let (port, pem, got) = tls_server(scheme == "https").await;
            let url = format!("{scheme}://localhost:{port}/logs");
            let logs = Logs::default();
            // A drain that does not trust the server's CA delivers nothing.
            let strict = Drains::default();
            strict.start(&logs, "a", "2", &url, "d.y");
            for _ in 0..10 {
                logs.push("a", LogLine::new("app", "web.1", "not for you"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            strict.stop("2");
            assert!(
                got.lock().unwrap().is_empty(),
                "{scheme}: delivered untrusted"
            );
            // One that does, does.
            let trusting = Drains::with_roots(&pem);
            trusting.start(&logs, "a", "1", &url, "d.x");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let want = "host app web.1 - over tls";
            loop {
                logs.push("a", LogLine::new("app", "web.1", "over tls"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
                if text.contains(want) {
                    if scheme == "https" {
                        assert!(text.starts_with("application/logplex-1 "), "{text}");
                    }
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{scheme}: nothing arrived"
                );
            }
            trusting.stop("1");
        }
    }
}
