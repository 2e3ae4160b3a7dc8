//! The daemon's HTTP API on the Unix socket: one `match` from (method, path) to a handler.
//! Shapes follow Heroku's Platform API v3 (`crate::api`).

use super::{deploy, manager, run, Daemon};
use crate::api::{self, ErrorBody};
use crate::store::AppRow;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;
type Resp = Response<Body>;

pub async fn serve(d: Arc<Daemon>) -> Result<()> {
    let path = d.paths.socket();
    let _ = std::fs::remove_file(&path);
    // Created 0600 from the start: no window in which another user could connect.
    let old = unsafe { libc::umask(0o177) };
    let listener = tokio::net::UnixListener::bind(&path);
    unsafe { libc::umask(old) };
    let listener = listener?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let d = d.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, Infallible>(handle(d, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// An API failure: HTTP status, Heroku error id, message.
struct Fail(StatusCode, &'static str, String);

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("{e:#}"),
        )
    }
}

impl From<run::RunError> for Fail {
    fn from(e: run::RunError) -> Self {
        Fail(e.status, e.id, e.message)
    }
}

impl From<super::routing::ApiError> for Fail {
    fn from(e: super::routing::ApiError) -> Self {
        use super::routing::ApiError as E;
        match e {
            E::Invalid(m) => invalid(m),
            E::NotFound(m) => Fail(StatusCode::NOT_FOUND, "not_found", m),
            E::Internal(e) => e.into(),
        }
    }
}

fn not_found(what: &str) -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Couldn't find that {what}."),
    )
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_params",
        msg.into(),
    )
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header(api::VERSION_HEADER, api::VERSION)
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

fn ok<T: Serialize>(v: &T) -> Result<Resp, Fail> {
    Ok(json(StatusCode::OK, v))
}

/// A streamed text body fed by a channel (build output, log tails).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn streamed(rx: mpsc::Receiver<Bytes>) -> Resp {
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .header(api::VERSION_HEADER, api::VERSION)
        .body(BodyExt::boxed(ChannelBody(rx)))
        .unwrap()
}

async fn body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Fail> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| invalid(format!("reading the request: {e}")))?
        .to_bytes();
    let bytes = if bytes.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("invalid request body: {e}")))
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(d: Arc<Daemon>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let result = route(&d, method, &segs, req).await;
    match result {
        Ok(r) => r,
        Err(Fail(status, id, message)) => json(
            status,
            &ErrorBody {
                id: id.into(),
                message,
            },
        ),
    }
}

async fn route(
    d: &Arc<Daemon>,
    method: Method,
    segs: &[&str],
    req: Request<Incoming>,
) -> Result<Resp, Fail> {
    use Method as M;
    match (&method, segs) {
        (&M::GET, ["daemon"]) => ok(&api::DaemonStatus {
            version: api::VERSION.into(),
            pid: std::process::id(),
            home: d.paths.home.to_string_lossy().into(),
            instance: d.paths.instance.clone(),
            router_addr: d.router_addr.map(|a| a.to_string()).unwrap_or_default(),
        }),
        (&M::POST, ["daemon", "stop"]) => {
            let b: api::DaemonStop = body(req).await?;
            d.begin_shutdown(b.keep_dynos);
            ok(&serde_json::json!({"stopping": true, "keep_dynos": b.keep_dynos}))
        }
        (&M::GET, ["apps"]) => {
            let apps: Vec<api::App> = d.store.apps()?.iter().map(|a| app_json(d, a)).collect();
            ok(&apps)
        }
        (&M::POST, ["apps"]) => {
            let b: api::AppCreate = body(req).await?;
            create_app(d, b.name)
        }
        (&M::GET, ["apps", app]) => ok(&app_json(d, &find_app(d, app)?)),
        (&M::PATCH, ["apps", app]) => {
            let a = find_app(d, app)?;
            let b: api::AppUpdate = body(req).await?;
            if let Some(name) = b.name {
                rename_app(d, &a, &name)?;
            }
            ok(&app_json(d, &find_app(d, &a.id)?))
        }
        (&M::DELETE, ["apps", app]) => {
            let a = find_app(d, app)?;
            destroy_app(d, &a).await?;
            ok(&app_json(d, &a))
        }
        (&M::GET, ["apps", app, "formation"]) => {
            let a = find_app(d, app)?;
            ok(&formation_json(d, &a)?)
        }
        (&M::PATCH, ["apps", app, "formation"]) => {
            let a = find_app(d, app)?;
            let b: api::FormationBatchUpdate = body(req).await?;
            scale(d, &a, b)?;
            ok(&formation_json(d, &a)?)
        }
        (&M::GET, ["apps", app, "releases"]) => {
            let a = find_app(d, app)?;
            ok(&releases_json(d, &a)?)
        }
        (&M::POST, ["apps", app, "releases"]) => {
            let a = find_app(d, app)?;
            let b: api::ReleaseCreate = body(req).await?;
            let r = rollback(d, &a, &b.release)?;
            Ok(json(StatusCode::CREATED, &r))
        }
        (&M::GET, ["apps", app, "releases", key]) => {
            let a = find_app(d, app)?;
            let r = find_release(d, &a, key)?;
            let all = releases_json(d, &a)?;
            ok(&all.into_iter().find(|x| x.id == r.id))
        }
        (&M::GET, ["apps", app, "releases", key, "config-vars"]) => {
            let a = find_app(d, app)?;
            let r = find_release(d, &a, key)?;
            ok(&r.config.into_iter().collect::<api::ConfigVars>())
        }
        (&M::GET, ["apps", app, "releases", key, "output"]) => {
            let a = find_app(d, app)?;
            let r = find_release(d, &a, key)?;
            let out = d.store.release_output(&r.id)?.ok_or_else(|| {
                not_found_msg(format!("Release v{} has no release output.", r.version))
            })?;
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.try_send(Bytes::from(out));
            Ok(streamed(rx))
        }
        (&M::GET, ["apps", app, "config-vars"]) => {
            let a = find_app(d, app)?;
            ok(&d
                .store
                .config_vars(&a.id)?
                .into_iter()
                .collect::<api::ConfigVars>())
        }
        (&M::PATCH, ["apps", app, "config-vars"]) => {
            let a = find_app(d, app)?;
            let b: api::ConfigVarsUpdate = body(req).await?;
            ok(&update_config(d, &a, b)?)
        }
        (&M::POST, ["apps", app, "dynos"]) => {
            let a = find_app(d, app)?;
            let b: api::DynoCreate = body(req).await?;
            // Attached (`dyno run`): held by `run`; detached (`run:detached`): `oneoff`.
            let dyno = if b.attach == Some(true) {
                run::create(d, &a, b).await?
            } else {
                run_one_off(d, &a, b).await?
            };
            Ok(json(StatusCode::CREATED, &dyno))
        }
        (&M::GET, ["apps", app, "dynos", dyno]) => {
            let a = find_app(d, app)?;
            let e = d
                .manager
                .find(&a.id, dyno)
                .ok_or_else(|| not_found("dyno"))?;
            ok(&manager::to_api(&e, &a.name))
        }
        (&M::DELETE, ["apps", app, "dynos"]) => {
            let a = find_app(d, app)?;
            manager::stop_matching(d, &a.id, None, false);
            ok(&serde_json::json!({}))
        }
        (&M::DELETE, ["apps", app, "dynos", dyno]) => {
            let a = find_app(d, app)?;
            stop_dynos(d, &a, dyno, false)?;
            ok(&serde_json::json!({}))
        }
        (&M::POST, ["apps", app, "dynos", dyno, "actions", "stop"]) => {
            let a = find_app(d, app)?;
            stop_dynos(d, &a, dyno, false)?;
            ok(&serde_json::json!({}))
        }
        (&M::POST, ["apps", app, "dynos", dyno, "actions", "kill"]) => {
            let a = find_app(d, app)?;
            stop_dynos(d, &a, dyno, true)?;
            ok(&serde_json::json!({}))
        }
        (&M::GET, ["apps", app, "dynos"]) => {
            let a = find_app(d, app)?;
            let mut dynos: Vec<api::Dyno> = d
                .manager
                .entries(&a.id)
                .iter()
                .map(|e| manager::to_api(e, &a.name))
                .collect();
            dynos.extend(d.runs.list(&a));
            ok(&dynos)
        }
        (&M::POST, ["apps", app, "dynos", name, "attach"]) => {
            let a = find_app(d, app)?;
            Ok(run::attach(d, &a, name, req)?)
        }
        (&M::GET, ["apps", app, "builds"]) => {
            let a = find_app(d, app)?;
            let builds: Vec<api::Build> = d
                .store
                .builds(&a.id)?
                .iter()
                .map(|b| build_json(d, &a, b))
                .collect();
            ok(&builds)
        }
        (&M::POST, ["apps", app, "builds"]) => {
            let a = find_app(d, app)?;
            let b: api::BuildCreate = body(req).await?;
            let source = build_source(d, &a, b)?;
            let build = deploy::start(d, &a, source)?;
            Ok(json(StatusCode::CREATED, &build_json(d, &a, &build)))
        }
        (&M::GET, ["apps", app, "builds", id]) => {
            let a = find_app(d, app)?;
            let b = d
                .store
                .build(id)?
                .filter(|b| b.app_id == a.id)
                .ok_or_else(|| not_found("build"))?;
            ok(&build_json(d, &a, &b))
        }
        (&M::GET, ["apps", app, "builds", id, "output"]) => {
            let a = find_app(d, app)?;
            let b = d
                .store
                .build(id)?
                .filter(|b| b.app_id == a.id)
                .ok_or_else(|| not_found("build"))?;
            let (tx, rx) = mpsc::channel(64);
            // Live while the build runs, then from the store.
            let live = d.builds.lock().unwrap().get(*id).cloned();
            match live {
                Some(out) => {
                    tokio::spawn(async move {
                        let mut from = 0;
                        while let Some(lines) = out.next(from).await {
                            from += lines.len();
                            let mut text = lines.join("\n");
                            text.push('\n');
                            if tx.send(Bytes::from(text)).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                None => {
                    let text = d.store.build_output(&b.id)?.unwrap_or_default();
                    let _ = tx.try_send(Bytes::from(text));
                }
            }
            Ok(streamed(rx))
        }
        (&M::GET, ["apps", app, "buildpack-installations"]) => {
            let a = find_app(d, app)?;
            ok(&buildpacks_json(&d.store.app_buildpacks(&a.id)?))
        }
        (&M::PUT, ["apps", app, "buildpack-installations"]) => {
            let a = find_app(d, app)?;
            let b: api::BuildpackInstallationsUpdate = body(req).await?;
            let urls: Vec<String> = b
                .updates
                .into_iter()
                .map(|u| u.buildpack.trim().to_string())
                .collect();
            for u in &urls {
                crate::build::buildpacks::parse(u).map_err(|e| invalid(format!("{e:#}")))?;
            }
            d.store.set_app_buildpacks(&a.id, &urls)?;
            ok(&buildpacks_json(&urls))
        }
        (&M::POST, ["apps", app, "log-sessions"]) => {
            let a = find_app(d, app)?;
            let b: api::LogSessionCreate = body(req).await?;
            let mut url = format!("/apps/{}/log-stream?lines={}", a.id, b.lines.unwrap_or(100));
            if b.tail.unwrap_or(false) {
                url.push_str("&tail=true");
            }
            if let Some(x) = b.dyno {
                url.push_str(&format!("&dyno={}", crate::api::enc(&x)));
            }
            if let Some(x) = b.source {
                url.push_str(&format!("&source={}", crate::api::enc(&x)));
            }
            Ok(json(
                StatusCode::CREATED,
                &api::LogSession {
                    id: crate::store::new_id(),
                    logplex_url: url,
                },
            ))
        }
        (&M::GET, ["apps", app, "log-stream"]) => {
            let a = find_app(d, app)?;
            let q = query(&req);
            let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let lines: usize = get("lines").and_then(|v| v.parse().ok()).unwrap_or(100);
            let tail = get("tail").as_deref() == Some("true");
            let dyno = get("dyno");
            let source = get("source");
            let (hist, mut live) = d.logs.subscribe(&a.name, crate::logs::HISTORY);
            let matching: Vec<_> = hist
                .into_iter()
                .filter(|l| crate::logs::matches(l, dyno.as_deref(), source.as_deref()))
                .collect();
            let skip = matching.len().saturating_sub(lines);
            // Few chunks in flight: a slow reader is behind in the broadcast (and gets L10), not
            // in daemon memory.
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                for l in matching.into_iter().skip(skip) {
                    if tx.send(Bytes::from(l.format() + "\n")).await.is_err() {
                        return;
                    }
                }
                if !tail {
                    return;
                }
                // Lines go out in chunks of whatever is waiting (fast readers keep up with
                // floods); a reader that still falls behind loses lines and is told (L10).
                let keep = |l: &crate::logs::LogLine| {
                    crate::logs::matches(l, dyno.as_deref(), source.as_deref())
                };
                loop {
                    let mut chunk = String::new();
                    let mut lagged = 0;
                    match live.recv().await {
                        Ok(l) if keep(&l) => chunk.push_str(&(l.format() + "\n")),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lagged += n,
                        Err(_) => return,
                    }
                    while chunk.len() < 256 * 1024 {
                        match live.try_recv() {
                            Ok(l) if keep(&l) => {
                                chunk.push_str(&l.format());
                                chunk.push('\n');
                            }
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                                lagged += n
                            }
                            Err(_) => break,
                        }
                    }
                    if lagged > 0 {
                        let since = chrono::Utc::now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
                        chunk.insert_str(0, &(crate::logs::l10(lagged, &since).format() + "\n"));
                    }
                    if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            Ok(streamed(rx))
        }
        (&M::GET, ["apps", app, "domains"]) => {
            let a = find_app(d, app)?;
            ok(&super::routing::domains(d, &a)?)
        }
        (&M::POST, ["apps", app, "domains"]) => {
            let a = find_app(d, app)?;
            let b: api::DomainCreate = body(req).await?;
            let r = super::routing::add_domain(d, &a, &b.hostname)?;
            Ok(json(StatusCode::CREATED, &r))
        }
        (&M::DELETE, ["apps", app, "domains", host]) => {
            let a = find_app(d, app)?;
            ok(&super::routing::remove_domain(d, &a, host)?)
        }
        (&M::GET, ["apps", app, "log-drains"]) => {
            let a = find_app(d, app)?;
            ok(&super::routing::drains(d, &a)?)
        }
        (&M::POST, ["apps", app, "log-drains"]) => {
            let a = find_app(d, app)?;
            let b: api::LogDrainCreate = body(req).await?;
            let r = super::routing::add_drain(d, &a, &b.url)?;
            Ok(json(StatusCode::CREATED, &r))
        }
        (&M::DELETE, ["apps", app, "log-drains", key]) => {
            let a = find_app(d, app)?;
            ok(&super::routing::remove_drain(d, &a, key)?)
        }
        (&M::GET, ["apps", app, "idling"]) => {
            let a = find_app(d, app)?;
            ok(&super::routing::idling(d, &a)?)
        }
        (&M::PATCH, ["apps", app, "idling"]) => {
            let a = find_app(d, app)?;
            let b: api::AppIdling = body(req).await?;
            ok(&super::routing::set_idling(d, &a, b.enabled)?)
        }
        (&M::GET, ["certs"]) => ok(&super::routing::certs(d)),
        (&M::GET, ["local", "dirs"]) => {
            let q = query(&req);
            let dir = q
                .iter()
                .find(|(k, _)| k == "dir")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let app = d.store.dir_app(&dir)?;
            ok(&api::DirApp { dir, app })
        }
        (&M::PUT, ["local", "dirs"]) => {
            let b: api::DirApp = body(req).await?;
            let a = find_app(d, b.app.as_deref().unwrap_or(""))?;
            d.store.set_dir_app(&b.dir, &a.id)?;
            ok(&api::DirApp {
                dir: b.dir,
                app: Some(a.name),
            })
        }
        _ => Err(Fail(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {method} /{}", segs.join("/")),
        )),
    }
}

fn find_app(d: &Daemon, key: &str) -> Result<AppRow, Fail> {
    d.store.app(key)?.ok_or_else(|| not_found("app"))
}

fn create_app(d: &Arc<Daemon>, name: Option<String>) -> Result<Resp, Fail> {
    let name = match name {
        Some(n) => {
            crate::names::validate(&n).map_err(invalid)?;
            if d.store.app(&n)?.is_some() {
                return Err(Fail(
                    StatusCode::CONFLICT,
                    "invalid_params",
                    format!("Name {n} is already taken"),
                ));
            }
            n
        }
        None => loop {
            let n = crate::names::random();
            if d.store.app(&n)?.is_none() {
                break n;
            }
        },
    };
    let a = d.store.create_app(&name)?;
    if let Err(e) = crate::git::ensure_repo(&d.paths, &a.name, &crate::git::dyno_exe()) {
        // The app exists; the daemon's next start creates the repository again.
        tracing::warn!(app = %a.name, "creating its git repository: {e:#}");
    }
    manager::update_routes(d, &a.id);
    Ok(json(StatusCode::CREATED, &app_json(d, &a)))
}

fn rename_app(d: &Arc<Daemon>, a: &AppRow, name: &str) -> Result<(), Fail> {
    if name == a.name {
        return Ok(());
    }
    crate::names::validate(name).map_err(invalid)?;
    if d.store.app(name)?.is_some() {
        return Err(Fail(
            StatusCode::CONFLICT,
            "invalid_params",
            format!("Name {name} is already taken"),
        ));
    }
    d.store.rename_app(&a.id, name)?;
    if let Err(e) = crate::git::rename_repo(&d.paths, &a.name, name) {
        tracing::warn!(app = %name, "renaming its git repository: {e:#}");
    }
    d.routes.remove(&a.name);
    d.logs.rename(&a.name, name);
    manager::update_routes(d, &a.id);
    super::routing::reload_domains(d);
    Ok(())
}

async fn destroy_app(d: &Arc<Daemon>, a: &AppRow) -> Result<(), Fail> {
    d.store.scale(
        &a.id,
        &d.store
            .formation(&a.id)?
            .iter()
            .map(|f| (f.process_type.clone(), 0))
            .collect::<Vec<_>>(),
    )?;
    manager::reconcile(d, &a.id).await?;
    // Wait until its dynos are gone, so the caller sees nothing left.
    let deadline =
        tokio::time::Instant::now() + d.settings.stop_timeout + std::time::Duration::from_secs(10);
    while d.manager.entries(&a.id).iter().any(|e| e.handle.is_some())
        && tokio::time::Instant::now() < deadline
    {
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            d.dyno_gone.notified(),
        )
        .await;
    }
    d.store.delete_app(&a.id)?;
    d.routes.remove(&a.name);
    d.logs.forget(&a.name);
    super::routing::reload_domains(d);
    let _ = std::fs::remove_dir_all(d.builder.cache_dir(&a.id));
    crate::git::remove_repo(&d.paths, &a.name);
    Ok(())
}

/// What `POST /apps/{app}/builds` builds: a directory, or a commit pushed to the app's repo.
fn build_source(d: &Daemon, a: &AppRow, b: api::BuildCreate) -> Result<crate::build::Source, Fail> {
    if let Some(g) = b.git {
        if g.commit.len() != 40 || !g.commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(format!("{:?} is not a commit id", g.commit)));
        }
        let repo = crate::git::repo_path(&d.paths, &a.name);
        let quarantine = g.quarantine.map(std::path::PathBuf::from);
        if let Some(q) = &quarantine {
            // Only ever an object directory inside the app's own repository.
            if !q.is_absolute() || !q.starts_with(repo.join("objects")) {
                return Err(invalid(
                    "the quarantine path must be in the app's repository",
                ));
            }
        }
        return Ok(crate::build::Source::Git {
            repo,
            commit: g.commit,
            quarantine,
        });
    }
    let dir = std::path::PathBuf::from(&b.source_dir);
    if !dir.is_absolute() || !dir.is_dir() {
        return Err(invalid(format!("{} is not a directory", b.source_dir)));
    }
    Ok(crate::build::Source::Dir(dir))
}

fn buildpacks_json(urls: &[String]) -> Vec<api::BuildpackInstallation> {
    urls.iter()
        .enumerate()
        .map(|(i, u)| api::BuildpackInstallation {
            ordinal: i as u32,
            buildpack: api::BuildpackRef {
                url: u.clone(),
                name: u.clone(),
            },
        })
        .collect()
}

fn scale(d: &Arc<Daemon>, a: &AppRow, b: api::FormationBatchUpdate) -> Result<(), Fail> {
    let formation = d.store.formation(&a.id)?;
    let mut updates = vec![];
    for u in b.updates {
        if !formation.iter().any(|f| f.process_type == u.process_type) {
            let known: Vec<_> = formation.iter().map(|f| f.process_type.as_str()).collect();
            return Err(Fail(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "Couldn't find that process type ({}). This app has: {}",
                    u.process_type,
                    if known.is_empty() {
                        "no process types yet (deploy first)".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        match u.quantity {
            Some(q) if q < 0 => {
                return Err(invalid(format!(
                    "quantity for {} must be 0 or more, not {q}",
                    u.process_type
                )))
            }
            Some(q) if q > 100 => {
                return Err(invalid(format!(
                    "quantity for {} must be at most 100",
                    u.process_type
                )))
            }
            Some(q) => updates.push((u.process_type, q as u32)),
            None => {}
        }
    }
    d.store.scale(&a.id, &updates)?;
    // The router knows the new web quantity when this answers (holds requests, or H14), not
    // only once reconcile has run.
    manager::update_routes(d, &a.id);
    manager::reset_backoff(d, &a.id);
    manager::kick(d, &a.id);
    Ok(())
}

fn app_json(d: &Daemon, a: &AppRow) -> api::App {
    let releases = d.store.releases(&a.id).unwrap_or_default();
    let current = releases.iter().rev().find(|r| r.status == "succeeded");
    let slug = current
        .and_then(|r| r.slug_id.as_deref())
        .and_then(|id| d.store.slug(id).ok().flatten());
    let stack = api::IdName {
        id: "00000000-0000-4000-8000-000000000001".into(),
        name: crate::build::STACK.into(),
    };
    api::App {
        id: a.id.clone(),
        name: a.name.clone(),
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
        released_at: current.map(|r| r.created_at.clone()),
        web_url: d.web_url(&a.name),
        git_url: Some(
            crate::git::repo_path(&d.paths, &a.name)
                .to_string_lossy()
                .into_owned(),
        ),
        stack: stack.clone(),
        build_stack: stack,
        region: api::IdName {
            id: "00000000-0000-4000-8000-000000000002".into(),
            name: "local".into(),
        },
        owner: owner(),
        maintenance: false,
        buildpack_provided_description: slug.as_ref().and_then(|s| s.buildpack.clone()),
        repo_size: None,
        slug_size: slug.map(|s| s.size),
        archived_at: None,
        acm: false,
        internal_routing: None,
        organization: None,
        space: None,
        team: None,
    }
}

fn owner() -> api::Owner {
    api::Owner {
        email: "user@localhost".into(),
        id: "00000000-0000-4000-8000-000000000000".into(),
    }
}

fn formation_json(d: &Daemon, a: &AppRow) -> Result<Vec<api::Formation>, Fail> {
    Ok(d.store
        .formation(&a.id)?
        .into_iter()
        .map(|f| api::Formation {
            id: f.id,
            app: api::IdName {
                id: a.id.clone(),
                name: a.name.clone(),
            },
            process_type: f.process_type,
            command: f.command,
            quantity: f.quantity,
            size: "basic".into(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        })
        .collect())
}

fn releases_json(d: &Daemon, a: &AppRow) -> Result<Vec<api::Release>, Fail> {
    let rows = d.store.releases(&a.id)?;
    let current = rows
        .iter()
        .rev()
        .find(|r| r.status == "succeeded")
        .map(|r| r.id.clone());
    Ok(rows
        .into_iter()
        .map(|r| api::Release {
            current: Some(&r.id) == current.as_ref(),
            output_stream_url: d
                .store
                .release_output(&r.id)
                .ok()
                .flatten()
                .map(|_| format!("/apps/{}/releases/{}/output", a.id, r.id)),
            id: r.id,
            app: api::IdName {
                id: a.id.clone(),
                name: a.name.clone(),
            },
            version: r.version,
            description: r.description,
            status: r.status,
            slug: r.slug_id.map(|id| api::SlugRef { id }),
            user: owner(),
            addon_plan_names: vec![],
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

fn not_found_msg(msg: String) -> Fail {
    Fail(StatusCode::NOT_FOUND, "not_found", msg)
}

fn find_release(d: &Daemon, a: &AppRow, key: &str) -> Result<crate::store::ReleaseRow, Fail> {
    d.store
        .release(&a.id, key)?
        .ok_or_else(|| not_found_msg(format!("Couldn't find release {key} of {}.", a.name)))
}

/// `PATCH /apps/{app}/config-vars`: validates every key first (nothing changes on a bad one),
/// then records a release with the new config, which restarts the dynos (after the release
/// phase, in the background). Answers the whole new map.
fn update_config(
    d: &Arc<Daemon>,
    a: &AppRow,
    changes: api::ConfigVarsUpdate,
) -> Result<api::ConfigVars, Fail> {
    if changes.is_empty() {
        return Err(invalid("no config vars to set or unset"));
    }
    for k in changes.keys() {
        crate::api::config::validate_key(k).map_err(invalid)?;
    }
    let mut config = api::ConfigVars::new();
    let r = super::release::record_with(d, a, || -> Result<_, Fail> {
        config = d.store.config_vars(&a.id)?.into_iter().collect();
        let (mut set, mut unset) = (vec![], vec![]);
        for (k, v) in changes {
            match v {
                Some(v) => {
                    config.insert(k.clone(), v);
                    set.push(k);
                }
                None => {
                    config.remove(&k);
                    unset.push(k);
                }
            }
        }
        let mut parts = vec![];
        if !set.is_empty() {
            parts.push(format!("Set {} config vars", set.join(", ")));
        }
        if !unset.is_empty() {
            parts.push(format!("Unset {} config vars", unset.join(", ")));
        }
        Ok(super::release::NewRelease {
            slug_id: d.store.current_release(&a.id)?.and_then(|r| r.slug_id),
            config: config.clone().into_iter().collect(),
            description: parts.join("; "),
            set_config: true,
        })
    })?;
    spawn_activate(d, a, r);
    Ok(config)
}

/// `POST /apps/{app}/releases {release}`: a new release with the slug and config of an earlier
/// succeeded one (its config vars become the app's again).
fn rollback(d: &Arc<Daemon>, a: &AppRow, key: &str) -> Result<api::Release, Fail> {
    let target = find_release(d, a, key)?;
    if target.status != "succeeded" {
        return Err(invalid(format!(
            "v{} is {}: only a succeeded release can be rolled back to",
            target.version, target.status
        )));
    }
    if target.slug_id.is_none() {
        return Err(invalid(format!(
            "v{} has no slug (it precedes the first deploy): nothing to roll back to",
            target.version
        )));
    }
    let new = super::release::NewRelease {
        slug_id: target.slug_id.clone(),
        config: target.config.clone(),
        description: format!("Rollback to v{}", target.version),
        set_config: true,
    };
    let r = spawn_release(d, a, new)?;
    releases_json(d, a)?
        .into_iter()
        .find(|x| x.id == r.id)
        .ok_or_else(|| not_found("release"))
}

/// Records a release now and activates it (release phase, then the dynos) in the background.
fn spawn_release(
    d: &Arc<Daemon>,
    a: &AppRow,
    new: super::release::NewRelease,
) -> Result<crate::store::ReleaseRow, Fail> {
    let r = super::release::record(d, a, &new)?;
    spawn_activate(d, a, r.clone());
    Ok(r)
}

/// Activates a recorded release (release phase, then the dynos) in the background.
fn spawn_activate(d: &Arc<Daemon>, a: &AppRow, r: crate::store::ReleaseRow) {
    let (d, a) = (d.clone(), a.clone());
    tokio::spawn(async move {
        if let Err(e) = super::release::activate(&d, &a, r, None).await {
            tracing::warn!(app = %a.name, "activating a release: {e:#}");
        }
    });
}

/// `POST /apps/{app}/dynos`: a detached one-off dyno of the current release.
async fn run_one_off(d: &Arc<Daemon>, a: &AppRow, b: api::DynoCreate) -> Result<api::Dyno, Fail> {
    if b.attach == Some(true) {
        return Err(invalid(
            "attached one-off dynos are not available yet: use `dyno run:detached`",
        ));
    }
    if b.command.trim().is_empty() {
        return Err(invalid("no command to run"));
    }
    let ptype = b.process_type.unwrap_or_else(|| "run".into());
    if ptype != "run" {
        return Err(invalid(format!(
            "one-off dynos are of type run, not {ptype:?}"
        )));
    }
    let env: Vec<(String, String)> = b.env.unwrap_or_default().into_iter().collect();
    for (k, _) in &env {
        crate::api::config::validate_key(k).map_err(invalid)?;
    }
    let release = d
        .store
        .current_release(&a.id)?
        .filter(|r| r.slug_id.is_some())
        .ok_or_else(|| invalid(format!("{} has no release to run: deploy it first", a.name)))?;
    let spec = super::oneoff::OneOffSpec {
        process_type: ptype,
        command: b.command,
        env,
    };
    let o = super::oneoff::start(d, a, &release, spec).await?;
    Ok(manager::to_api(&o.dyno, &a.name))
}

/// `ps:restart`/`ps:stop`/`ps:kill` of a dyno name or a process type.
fn stop_dynos(d: &Arc<Daemon>, a: &AppRow, target: &str, kill: bool) -> Result<(), Fail> {
    let is_type = d
        .store
        .formation(&a.id)?
        .iter()
        .any(|f| f.process_type == target);
    if manager::stop_matching(d, &a.id, Some(target), kill) == 0 && !is_type {
        return Err(not_found_msg(format!(
            "Couldn't find that dyno ({target}) on {}.",
            a.name
        )));
    }
    Ok(())
}

fn build_json(d: &Daemon, a: &AppRow, b: &crate::store::BuildRow) -> api::Build {
    let slug = b
        .slug_id
        .as_deref()
        .and_then(|id| d.store.slug(id).ok().flatten());
    let release = b.release_id.as_deref().and_then(|id| {
        d.store
            .releases(&a.id)
            .ok()?
            .into_iter()
            .find(|r| r.id == id)
    });
    api::Build {
        id: b.id.clone(),
        app: api::IdName {
            id: a.id.clone(),
            name: a.name.clone(),
        },
        status: b.status.clone(),
        buildpacks: b
            .buildpacks
            .iter()
            .map(|n| api::BuildpackRef {
                url: n.clone(),
                name: n.clone(),
            })
            .collect(),
        output_stream_url: format!("/apps/{}/builds/{}/output", a.id, b.id),
        release: release.map(|r| api::ReleaseRef {
            id: r.id,
            version: r.version,
        }),
        slug: b.slug_id.clone().map(|id| api::SlugRef { id }),
        source_blob: api::SourceBlob {
            url: format!("file://{}", b.source_dir),
            version: b.source_version.clone(),
        },
        created_at: b.created_at.clone(),
        updated_at: b.updated_at.clone(),
        error: b.error.clone(),
        process_types: slug
            .map(|s| s.process_types.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default(),
        slug_size: b.slug_size,
        dirty: b.dirty,
        buildpack_description: b.buildpack.clone(),
        addons: b.addons.clone(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(super::decode("%2Fsrc%2Fhello"), "/src/hello");
        assert_eq!(super::decode("a+b%"), "a b%");
    }
}
