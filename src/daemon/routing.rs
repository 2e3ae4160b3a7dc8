//! The daemon's side of the router and Logplex: custom domains, log drains, idling, the HTTPS
//! listener. `api_server` routes the endpoints here; this module keeps the router's table and the
//! running drains in line with the store.

use super::{idle, Daemon};
use crate::api;
use crate::paths::Paths;
use crate::router::RouteTable;
use crate::store::AppRow;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Why an API call about domains, drains or idling failed.
pub enum ApiError {
    /// 422: bad input; nothing changed.
    Invalid(String),
    NotFound(String),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

type R<T> = std::result::Result<T, ApiError>;

/// The bound HTTPS listener and what it serves with.
pub struct Https {
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub ca_cert: PathBuf,
}

pub async fn https_listener(paths: &Paths, addr: &str, routes: &RouteTable) -> Result<Https> {
    let ca = crate::router::tls::LocalCa::load_or_create(&paths.home.join("tls"))
        .context("the local certificate authority")?;
    let ca_cert = ca.cert_path.clone();
    let acceptor = crate::router::tls::acceptor(ca, routes.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set DYNO_HTTPS_ADDR, or `off`)"))?;
    Ok(Https {
        addr: listener.local_addr()?,
        listener,
        acceptor,
        ca_cert,
    })
}

/// At daemon start: domains into the route table, the wake callback, every drain, idling.
pub fn start(d: &Arc<Daemon>) {
    reload_domains(d);
    let weak = Arc::downgrade(d);
    // The router calls this on its own threads: the wake runs on the daemon's runtime.
    let rt = tokio::runtime::Handle::current();
    d.routes.set_wake(Arc::new(move |app: &str| {
        if let Some(d) = weak.upgrade() {
            let app = app.to_string();
            rt.spawn(async move { idle::wake(&d, &app) });
        }
    }));
    if let Ok(apps) = d.store.apps() {
        for app in apps {
            for drain in d.store.drains(Some(&app.id)).unwrap_or_default() {
                d.drains
                    .start(&d.logs, &app.name, &drain.id, &drain.url, &drain.token);
            }
        }
    }
    tokio::spawn(idle::run(d.clone()));
}

/// The router's custom domains from the store (after any change, or a rename).
pub fn reload_domains(d: &Daemon) {
    let names: HashMap<String, String> = d
        .store
        .apps()
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    let domains = d
        .store
        .domains(None)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| Some((r.hostname, names.get(&r.app_id)?.clone())))
        .collect();
    d.routes.set_domains(domains);
}

/// A custom domain as the router matches it: lowercase, no trailing dot, valid DNS labels, at
/// least two of them; `*.` only as a whole first label. `.localhost` names are the router's own.
pub fn normalize_hostname(input: &str) -> std::result::Result<String, String> {
    let h = input.trim().to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h).to_string();
    let bad = |why: &str| Err(format!("{input:?} is not a valid domain: {why}"));
    if h.is_empty() {
        return bad("empty");
    }
    if h.len() > 253 {
        return bad("longer than 253 characters");
    }
    if h.contains(':') || h.contains('/') {
        return bad("give a host name only, without scheme, port or path");
    }
    let labels: Vec<&str> = h.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels, like www.example.com");
    }
    for (i, l) in labels.iter().enumerate() {
        if *l == "*" && i == 0 {
            continue;
        }
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return bad(&format!(
                "label {l:?} (letters, digits and inner hyphens, at most 63)"
            ));
        }
    }
    if labels.len() == 2 && labels[0] == "*" {
        return bad("a wildcard needs a parent domain, like *.example.com");
    }
    if h == "localhost" || h.ends_with(".localhost") {
        return bad("<app>.localhost names are the router's own");
    }
    Ok(h)
}

fn domain_json(a: &AppRow, id: &str, hostname: &str, kind: &str, created: &str) -> api::Domain {
    api::Domain {
        id: id.into(),
        app: api::IdName {
            id: a.id.clone(),
            name: a.name.clone(),
        },
        hostname: hostname.into(),
        kind: kind.into(),
        cname: (kind == "custom").then(|| format!("{}.localhost", a.name)),
        status: "succeeded".into(),
        acm_status: None,
        created_at: created.into(),
        updated_at: created.into(),
    }
}

pub fn domains(d: &Daemon, a: &AppRow) -> R<Vec<api::Domain>> {
    let mut out = vec![domain_json(
        a,
        &a.id,
        &format!("{}.localhost", a.name),
        "heroku",
        &a.created_at,
    )];
    for r in d.store.domains(Some(&a.id))? {
        out.push(domain_json(a, &r.id, &r.hostname, "custom", &r.created_at));
    }
    Ok(out)
}

pub fn add_domain(d: &Daemon, a: &AppRow, hostname: &str) -> R<api::Domain> {
    let h = normalize_hostname(hostname).map_err(ApiError::Invalid)?;
    if let Some(other) = d.store.domain(&h)? {
        let owner = d
            .store
            .app(&other.app_id)?
            .map(|x| x.name)
            .unwrap_or_default();
        return Err(ApiError::Invalid(if other.app_id == a.id {
            format!("{h} is already added to {owner}")
        } else {
            format!("{h} is already in use by another app ({owner})")
        }));
    }
    let r = d.store.add_domain(&a.id, &h)?;
    reload_domains(d);
    Ok(domain_json(a, &r.id, &r.hostname, "custom", &r.created_at))
}

pub fn remove_domain(d: &Daemon, a: &AppRow, key: &str) -> R<api::Domain> {
    let key = key.trim().to_ascii_lowercase();
    let key = key.strip_suffix('.').unwrap_or(&key);
    let row = d
        .store
        .domains(Some(&a.id))?
        .into_iter()
        .find(|r| r.hostname == key || r.id == key)
        .ok_or_else(|| ApiError::NotFound(format!("{key} is not a domain of {}", a.name)))?;
    d.store.remove_domain(&a.id, &row.id)?;
    reload_domains(d);
    Ok(domain_json(
        a,
        &row.id,
        &row.hostname,
        "custom",
        &row.created_at,
    ))
}

fn drain_json(a: &AppRow, r: &crate::store::DrainRow) -> api::LogDrain {
    api::LogDrain {
        id: r.id.clone(),
        url: r.url.clone(),
        token: r.token.clone(),
        addon: None,
        app: api::IdName {
            id: a.id.clone(),
            name: a.name.clone(),
        },
        created_at: r.created_at.clone(),
        updated_at: r.created_at.clone(),
    }
}

pub fn drains(d: &Daemon, a: &AppRow) -> R<Vec<api::LogDrain>> {
    Ok(d.store
        .drains(Some(&a.id))?
        .iter()
        .map(|r| drain_json(a, r))
        .collect())
}

pub fn add_drain(d: &Daemon, a: &AppRow, url: &str) -> R<api::LogDrain> {
    let url = url.trim();
    crate::drains::parse_url(url).map_err(|e| ApiError::Invalid(format!("{e:#}")))?;
    if d.store.drains(Some(&a.id))?.iter().any(|r| r.url == url) {
        return Err(ApiError::Invalid(format!(
            "{url} is already a drain of {}",
            a.name
        )));
    }
    let r = d.store.add_drain(&a.id, url)?;
    d.drains.start(&d.logs, &a.name, &r.id, &r.url, &r.token);
    Ok(drain_json(a, &r))
}

pub fn remove_drain(d: &Daemon, a: &AppRow, key: &str) -> R<api::LogDrain> {
    let r = d
        .store
        .remove_drain(&a.id, key.trim())?
        .ok_or_else(|| ApiError::NotFound(format!("{key} is not a drain of {}", a.name)))?;
    d.drains.stop(&r.id);
    Ok(drain_json(a, &r))
}

pub fn idling(d: &Daemon, a: &AppRow) -> R<api::AppIdling> {
    Ok(api::AppIdling {
        enabled: d.store.idling(&a.id)?,
        idle: d.idle.is_idle(&a.id),
        idle_after_secs: d.settings.idle_after.as_secs(),
    })
}

pub fn set_idling(d: &Arc<Daemon>, a: &AppRow, enabled: bool) -> R<api::AppIdling> {
    idle::set(d, &a.id, &a.name, enabled)?;
    idling(d, a)
}

pub fn certs(d: &Daemon) -> api::Certs {
    api::Certs {
        https_addr: d.https_addr.map(|a| a.to_string()),
        ca_cert_path: d.ca_cert.as_ref().map(|p| p.display().to_string()),
        ca_cert_pem: d
            .ca_cert
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_hostname;

    #[test]
    fn hostnames() {
        assert_eq!(
            normalize_hostname(" WWW.Example.COM. ").unwrap(),
            "www.example.com"
        );
        assert_eq!(
            normalize_hostname("*.example.com").unwrap(),
            "*.example.com"
        );
        for bad in [
            "",
            "example",
            "http://example.com",
            "example.com:80",
            "a..b",
            "-a.example.com",
            "a_b.example.com",
            "*.com",
            "www.*.example.com",
            "hello.localhost",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(normalize_hostname(bad).is_err(), "{bad:?} accepted");
        }
    }
}
