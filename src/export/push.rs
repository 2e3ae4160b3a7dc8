//! `dyno export --push`: the image to a registry over the OCI distribution API (blobs by
//! chunked upload, then the manifest under its tag), with no container engine. Plain http only
//! to a loopback registry; credentials from `--creds user:pass` or `REGISTRY_AUTH_FILE`
//! (containers-auth.json: `{"auths": {"host:port": {"auth": base64("user:pass")}}}`), sent as
//! Basic or traded for a Bearer token as the registry's `WWW-Authenticate` asks.

use super::oci::{self, Image};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use std::io::Read;

/// Bytes per upload request: big layers go in several PATCHes.
const CHUNK: usize = 8 << 20;

/// `registry.example.com:5000/team/myapp:v12`, split.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// `team/myapp`.
    pub repository: String,
    pub tag: String,
}

impl Reference {
    /// A reference must name its registry (`host.domain/…`, `host:port/…` or `localhost/…`):
    /// pushing to a default registry on the internet by accident is not an option.
    pub fn parse(s: &str, default_tag: &str) -> Result<Reference> {
        let bad =
            |why: &str| anyhow!("--push {s:?}: {why} (e.g. registry.example.com/team/app:v12)");
        let (registry, rest) = s.split_once('/').ok_or_else(|| bad("no registry host"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("the first part must be a registry host"));
        }
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (rest, default_tag),
        };
        if s.contains('@') {
            return Err(bad("a digest cannot be pushed to; give a tag"));
        }
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| {
                !c.is_empty()
                    && c.chars().all(|ch| {
                        ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)
                    })
                    && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            });
        if !repo_ok {
            return Err(bad(
                "the repository must be lowercase letters, digits, '.', '_', '-'",
            ));
        }
        let tag_ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            && !tag.starts_with(['.', '-']);
        if !tag_ok {
            return Err(bad("bad tag"));
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }

    fn host(&self) -> &str {
        let r = &self.registry;
        if r.starts_with('[') {
            r.split(']').next().unwrap_or(r).trim_start_matches('[')
        } else {
            r.rsplit_once(':').map(|(h, _)| h).unwrap_or(r)
        }
    }

    /// Plain http is for this machine only: anything else gets TLS.
    pub fn is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .map(|a| a.is_loopback())
                .unwrap_or(false)
    }

    pub fn full(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// `user:pass` from `--creds`, else from `REGISTRY_AUTH_FILE` for this registry.
pub fn credentials(creds: Option<&str>, registry: &str) -> Result<Option<(String, String)>> {
    if let Some(c) = creds {
        let (u, p) = c
            .split_once(':')
            .filter(|(u, _)| !u.is_empty())
            .ok_or_else(|| anyhow!("--creds must be USER:PASSWORD"))?;
        return Ok(Some((u.into(), p.into())));
    }
    let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("REGISTRY_AUTH_FILE {}", file.to_string_lossy()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("REGISTRY_AUTH_FILE {} is not JSON", file.to_string_lossy()))?;
    let Some(auth) = v["auths"][registry]["auth"].as_str() else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| anyhow!("REGISTRY_AUTH_FILE: the auth of {registry} is not base64"))?;
    let s = String::from_utf8(raw)?;
    let (u, p) = s.split_once(':').ok_or_else(|| {
        anyhow!("REGISTRY_AUTH_FILE: the auth of {registry} is not user:password")
    })?;
    Ok(Some((u.into(), p.into())))
}

struct Registry {
    base: String,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    creds: Option<(String, String)>,
    /// The Authorization header once known (Basic, or a Bearer token).
    auth: Option<String>,
    repository: String,
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Registry {
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Answer> {
        let uri: Uri = if url.starts_with("http") {
            url.parse()?
        } else {
            format!("{}{url}", self.base).parse()?
        };
        let mut sender = crate::drains::http_connect(&uri, self.tls.as_ref())
            .await
            .with_context(|| format!("cannot reach the registry at {}", self.base))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header("host", uri.authority().map(|a| a.as_str()).unwrap_or(""))
            .header("user-agent", concat!("dyno/", env!("CARGO_PKG_VERSION")));
        if let Some(a) = &self.auth {
            req = req.header("authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = sender.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// `GET /v2/`: learns how the registry wants to be authenticated and gets a token if so.
    async fn login(&mut self) -> Result<()> {
        let a = self.send(Method::GET, "/v2/", &[], Bytes::new()).await?;
        if a.status.is_success() {
            return Ok(());
        }
        if a.status != StatusCode::UNAUTHORIZED {
            bail!(
                "the registry answered {} to /v2/: is it an OCI registry?",
                a.status
            );
        }
        let challenge = a
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let Some((user, pass)) = self.creds.clone() else {
            bail!("the registry wants credentials: --creds USER:PASSWORD or REGISTRY_AUTH_FILE");
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        if challenge.to_ascii_lowercase().starts_with("bearer") {
            let params = challenge_params(&challenge);
            let realm = params
                .get("realm")
                .ok_or_else(|| anyhow!("the registry's token challenge has no realm"))?;
            let mut url = format!("{realm}?scope=repository:{}:pull,push", self.repository);
            if let Some(s) = params.get("service") {
                url.push_str(&format!("&service={s}"));
            }
            self.auth = Some(basic);
            let t = self.send(Method::GET, &url, &[], Bytes::new()).await?;
            if !t.status.is_success() {
                bail!("the registry refused these credentials ({})", t.status);
            }
            let v: serde_json::Value = serde_json::from_slice(&t.body)?;
            let token = v["token"]
                .as_str()
                .or(v["access_token"].as_str())
                .ok_or_else(|| anyhow!("the registry's token answer has no token"))?;
            self.auth = Some(format!("Bearer {token}"));
        } else {
            self.auth = Some(basic);
        }
        let a = self.send(Method::GET, "/v2/", &[], Bytes::new()).await?;
        if !a.status.is_success() {
            bail!("the registry refused these credentials ({})", a.status);
        }
        Ok(())
    }

    async fn has_blob(&self, digest: &str) -> Result<bool> {
        let a = self
            .send(
                Method::HEAD,
                &format!("/v2/{}/blobs/{digest}", self.repository),
                &[],
                Bytes::new(),
            )
            .await?;
        Ok(a.status.is_success())
    }

    /// POST, PATCH chunk by chunk, PUT with the digest (the registry checks it).
    async fn upload(&self, digest: &str, size: u64, mut read: impl Read) -> Result<()> {
        let a = self
            .send(
                Method::POST,
                &format!("/v2/{}/blobs/uploads/", self.repository),
                &[("content-length", "0".into())],
                Bytes::new(),
            )
            .await?;
        if a.status != StatusCode::ACCEPTED {
            bail!(
                "the registry refused an upload: {} {}",
                a.status,
                text(&a.body)
            );
        }
        let mut location = location(&a)?;
        let mut sent = 0u64;
        let mut buf = vec![0u8; CHUNK];
        while sent < size {
            let mut n = 0;
            while n < CHUNK {
                let m = read.read(&mut buf[n..])?;
                if m == 0 {
                    break;
                }
                n += m;
            }
            if n == 0 {
                bail!("the blob {digest} ended early");
            }
            let a = self
                .send(
                    Method::PATCH,
                    &location,
                    &[
                        ("content-type", "application/octet-stream".into()),
                        ("content-range", format!("{}-{}", sent, sent + n as u64 - 1)),
                        ("content-length", n.to_string()),
                    ],
                    Bytes::copy_from_slice(&buf[..n]),
                )
                .await?;
            if a.status != StatusCode::ACCEPTED {
                bail!(
                    "the registry refused a chunk: {} {}",
                    a.status,
                    text(&a.body)
                );
            }
            location = location_of(&a, &location)?;
            sent += n as u64;
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let a = self
            .send(
                Method::PUT,
                &format!("{location}{sep}digest={digest}"),
                &[("content-length", "0".into())],
                Bytes::new(),
            )
            .await?;
        if a.status != StatusCode::CREATED {
            bail!(
                "the registry did not take {digest}: {} {}",
                a.status,
                text(&a.body)
            );
        }
        Ok(())
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(300).collect()
}

fn location(a: &Answer) -> Result<String> {
    a.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| anyhow!("the registry gave no upload location"))
}

fn location_of(a: &Answer, previous: &str) -> Result<String> {
    Ok(location(a).unwrap_or_else(|_| previous.to_string()))
}

/// `Bearer realm="…",service="…"` → its parameters.
fn challenge_params(c: &str) -> std::collections::HashMap<String, String> {
    let rest = c.split_once(' ').map(|x| x.1).unwrap_or("");
    rest.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            Some((k.to_ascii_lowercase(), v.trim_matches('"').to_string()))
        })
        .collect()
}

/// Pushes `image` as `r`; returns the manifest's digest as the registry reports it.
pub async fn push(image: &Image, r: &Reference, creds: Option<(String, String)>) -> Result<String> {
    let scheme = if r.is_loopback() { "http" } else { "https" };
    let mut reg = Registry {
        base: format!("{scheme}://{}", r.registry),
        tls: (scheme == "https").then(|| crate::drains::client_config(None)),
        creds,
        auth: None,
        repository: r.repository.clone(),
    };
    reg.login().await?;
    for layer in &image.layers {
        if !reg.has_blob(&layer.blob.digest).await? {
            let f = std::fs::File::open(&layer.blob.path)?;
            reg.upload(
                &layer.blob.digest,
                layer.blob.size,
                std::io::BufReader::new(f),
            )
            .await?;
        }
    }
    let cd = image.config_digest();
    if !reg.has_blob(&cd).await? {
        reg.upload(&cd, image.config.len() as u64, &image.config[..])
            .await?;
    }
    let a = reg
        .send(
            Method::PUT,
            &format!("/v2/{}/manifests/{}", r.repository, r.tag),
            &[
                ("content-type", oci::MANIFEST.into()),
                ("content-length", image.manifest.len().to_string()),
            ],
            Bytes::from(image.manifest.clone()),
        )
        .await?;
    if a.status != StatusCode::CREATED {
        bail!(
            "the registry did not take the manifest: {} {}",
            a.status,
            text(&a.body)
        );
    }
    let digest = a
        .headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| image.digest());
    if digest != image.digest() {
        bail!(
            "the registry reports {digest} for the manifest, not {}",
            image.digest()
        );
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_their_registry() {
        let r = Reference::parse("registry.example.com/team/myapp:v12", "v1").unwrap();
        assert_eq!(r.registry, "registry.example.com");
        assert_eq!(r.repository, "team/myapp");
        assert_eq!(r.tag, "v12");
        assert!(!r.is_loopback());
        let r = Reference::parse("127.0.0.1:5999/myapp", "v3").unwrap();
        assert_eq!((r.tag.as_str(), r.is_loopback()), ("v3", true));
        assert!(Reference::parse("localhost/a:b", "v1")
            .unwrap()
            .is_loopback());
        assert!(Reference::parse("[::1]:5000/a", "v1")
            .unwrap()
            .is_loopback());
        for bad in [
            "myapp",
            "team/myapp:v1",
            "registry.example.com/",
            "registry.example.com/Team/app",
            "registry.example.com/app:",
            "registry.example.com/app:-x",
            "registry.example.com/app@sha256:abc",
        ] {
            assert!(Reference::parse(bad, "v1").is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn credentials_come_from_the_flag_or_the_auth_file() {
        assert_eq!(
            credentials(Some("u:p:q"), "x").unwrap(),
            Some(("u".into(), "p:q".into()))
        );
        assert!(credentials(Some("nocolon"), "x").is_err());
        assert!(credentials(Some(":p"), "x").is_err());
        let p = challenge_params(r#"Bearer realm="https://auth.example.com/token",service="reg""#);
        assert_eq!(p["realm"], "https://auth.example.com/token");
        assert_eq!(p["service"], "reg");
    }
}
