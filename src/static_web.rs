//! `dyno static`: the web process the static buildpack declares (`web: /.dyno/init static`,
//! the dyno binary every dyno has bound at `/.dyno/init`). Serves the app's files on `$PORT`,
//! configured by `static.json` as Heroku's static buildpack was: `root` (default `public_html/`
//! when it exists, else the app's top directory), `clean_urls` (`/about` serves `about.html`),
//! `error_page` (served with 404), `headers` (`{"/path" or "/prefix/**": {"Header": "value"}}`).
//!
//! Only GET and HEAD; never serves a file outside the root (links are resolved and checked);
//! one access line per request on stdout.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct Config {
    pub root: Option<String>,
    #[serde(default)]
    pub clean_urls: bool,
    pub error_page: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, BTreeMap<String, String>>,
}

pub struct Site {
    root: PathBuf,
    cfg: Config,
}

impl Site {
    /// Reads `dir/static.json` (if any) and resolves the root.
    pub fn load(dir: &Path) -> Result<Site> {
        let cfg: Config = match std::fs::read_to_string(dir.join("static.json")) {
            Ok(t) => serde_json::from_str(&t).context("static.json")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(e.into()),
        };
        let root = match &cfg.root {
            Some(r) => dir.join(r.trim_start_matches('/')),
            None if dir.join("public_html").is_dir() => dir.join("public_html"),
            None => dir.to_path_buf(),
        };
        let root = root
            .canonicalize()
            .with_context(|| format!("the site's root {}", root.display()))?;
        Ok(Site { root, cfg })
    }

    /// The file a request path maps to, or a redirect (directories get their `/`).
    fn resolve(&self, path: &str) -> Resolved {
        let mut rel = PathBuf::new();
        for seg in path.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Resolved::NotFound,
                s if s.contains('\0') => return Resolved::NotFound,
                s => rel.push(s),
            }
        }
        let candidate = self.root.join(&rel);
        let inside = |p: &Path| -> Option<PathBuf> {
            let c = p.canonicalize().ok()?;
            (c.starts_with(&self.root) && c.is_file()).then_some(c)
        };
        if candidate.is_dir() {
            if !path.ends_with('/') {
                return Resolved::Redirect(format!("{path}/"));
            }
            return inside(&candidate.join("index.html"))
                .map(Resolved::File)
                .unwrap_or(Resolved::NotFound);
        }
        if let Some(f) = inside(&candidate) {
            return Resolved::File(f);
        }
        if self.cfg.clean_urls && !path.ends_with('/') {
            let mut html = candidate.into_os_string();
            html.push(".html");
            if let Some(f) = inside(Path::new(&html)) {
                return Resolved::File(f);
            }
        }
        Resolved::NotFound
    }

    fn extra_headers(&self, path: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        for (pattern, headers) in &self.cfg.headers {
            let hit = match pattern.strip_suffix("/**") {
                Some(prefix) => path == prefix || path.starts_with(&format!("{prefix}/")),
                None => pattern == path,
            };
            if hit {
                out.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }

    async fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        }
        let (status, file) = match self.resolve(path) {
            Resolved::File(f) => (StatusCode::OK, Some(f)),
            Resolved::Redirect(to) => {
                return Response::builder()
                    .status(StatusCode::MOVED_PERMANENTLY)
                    .header("location", to)
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            }
            Resolved::NotFound => {
                let page = self.cfg.error_page.as_deref().and_then(|p| {
                    match self.resolve(&format!("/{}", p.trim_start_matches('/'))) {
                        Resolved::File(f) => Some(f),
                        _ => None,
                    }
                });
                (StatusCode::NOT_FOUND, page)
            }
        };
        let Some(file) = file else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let body = match tokio::fs::read(&file).await {
            Ok(b) => b,
            Err(_) => return plain(StatusCode::FORBIDDEN, "Forbidden\n"),
        };
        let mut r = Response::builder()
            .status(status)
            .header("content-type", content_type(&file))
            .header("content-length", body.len());
        for (k, v) in self.extra_headers(path) {
            r = r.header(k, v);
        }
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(body)
        };
        r.body(Full::new(body))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "bad header\n"))
    }
}

enum Resolved {
    File(PathBuf),
    Redirect(String),
    NotFound,
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap()
}

fn content_type(p: &Path) -> &'static str {
    let ext = p
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Decodes `%XX` escapes of a request path.
fn decode_path(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn main() -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dyno static: {e:#}");
            1
        }
    }
}

async fn run() -> Result<()> {
    let port: u16 = std::env::var("PORT")
        .context("PORT is not set")?
        .parse()
        .context("PORT is not a port number")?;
    let dir = std::env::current_dir()?;
    let site = Arc::new(Site::load(&dir)?);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!(
        "serving {} on port {port}",
        site.root
            .strip_prefix(&dir)
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_else(|_| site.root.display().to_string())
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let site = site.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let site = site.clone();
                async move {
                    let path = decode_path(req.uri().path());
                    let r = site.respond(req.method(), &path).await;
                    println!(
                        "{} {} {} {}",
                        req.method(),
                        req.uri().path(),
                        r.status().as_u16(),
                        hyper::body::Body::size_hint(r.body()).exact().unwrap_or(0)
                    );
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(cfg: &str) -> (tempfile::TempDir, Site) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("public");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("about.html"), "about").unwrap();
        std::fs::write(root.join("404.html"), "lost").unwrap();
        std::fs::write(root.join("docs/index.html"), "docs").unwrap();
        std::fs::write(d.path().join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret.txt"), root.join("leak.txt")).unwrap();
        std::fs::write(d.path().join("static.json"), cfg).unwrap();
        let s = Site::load(d.path()).unwrap();
        (d, s)
    }

    async fn get(s: &Site, path: &str) -> (u16, String) {
        let r = s.respond(&Method::GET, path).await;
        let status = r.status().as_u16();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn serves_like_herokus_static_buildpack() {
        let (_d, s) = site(
            r#"{"root": "public/", "clean_urls": true, "error_page": "404.html",
                "headers": {"/docs/**": {"Cache-Control": "no-store"}}}"#,
        );
        assert_eq!(get(&s, "/").await, (200, "home".into()));
        assert_eq!(get(&s, "/about").await, (200, "about".into()));
        assert_eq!(get(&s, "/docs/").await, (200, "docs".into()));
        assert_eq!(get(&s, "/docs").await.0, 301);
        assert_eq!(get(&s, "/nope").await, (404, "lost".into()));
        assert_eq!(get(&s, "/../secret.txt").await.0, 404);
        assert_eq!(get(&s, "/leak.txt").await.0, 404, "links out of the root");
        let r = s.respond(&Method::GET, "/docs/").await;
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(s.respond(&Method::POST, "/").await.status(), 405);
    }

    #[test]
    fn paths_are_decoded() {
        assert_eq!(decode_path("/a%20b"), "/a b");
        assert_eq!(decode_path("/%zz"), "/%zz");
        assert_eq!(decode_path("/x%2"), "/x%2");
    }
}
