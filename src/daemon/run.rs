//! Attached one-off dynos (`dyno run`): a fresh container of the app's current release, named
//! `run.N`, whose stdio (a pty, or plain pipes) travels to the client over an upgraded API
//! connection speaking `crate::attach`'s frames.
//!
//! They live in their own registry, not in the manager's: `reconcile` stops whatever is not in
//! the formation, and a one-off dyno never is. Each one ends when its command does, when its
//! client goes away (the connection drops: stdio released, then SIGTERM/SIGKILL), or when no
//! client attaches within [`ATTACH_TIMEOUT`]. The shim removes container, mounts and cgroup.

use super::Daemon;
use crate::api;
use crate::attach::Frame;
use crate::runtime::{set_nonblocking, AttachOptions, DynoHandle, DynoStdio, Runtime};
use crate::store::AppRow;
use bytes::{Bytes, BytesMut};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// A started dyno nobody attaches to within this time is stopped.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// A refusal, turned into Heroku's `{id, message}` by the API server.
#[derive(Debug)]
pub struct RunError {
    pub status: StatusCode,
    pub id: &'static str,
    pub message: String,
}

impl RunError {
    fn new(status: StatusCode, id: &'static str, message: impl Into<String>) -> RunError {
        RunError {
            status,
            id,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("{e:#}"),
        )
    }
}

struct RunDyno {
    app_id: String,
    name: String,
    command: String,
    release: api::ReleaseRef,
    state: &'static str,
    created_at: String,
    updated_at: String,
    handle: DynoHandle,
    /// Until a client attaches.
    stdio: Option<DynoStdio>,
    /// The dyno's status once it has ended and been cleaned up.
    exit: watch::Receiver<Option<i32>>,
}

/// The attached one-off dynos of this daemon, by container id.
#[derive(Default)]
pub struct RunDynos {
    dynos: Mutex<HashMap<String, RunDyno>>,
}

impl RunDynos {
    fn to_api(&self, e: &RunDyno, id: &str, app_name: &str) -> api::Dyno {
        api::Dyno {
            id: id.to_string(),
            app: api::IdName {
                id: e.app_id.clone(),
                name: app_name.to_string(),
            },
            name: e.name.clone(),
            process_type: "run".into(),
            command: e.command.clone(),
            state: e.state.into(),
            release: e.release.clone(),
            size: "basic".into(),
            attach_url: Some(attach_url(app_name, &e.name)),
            created_at: e.created_at.clone(),
            updated_at: e.updated_at.clone(),
            port: None,
        }
    }

    /// The app's attached one-off dynos, for `GET /apps/{app}/dynos` (`dyno ps`).
    pub fn list(&self, app: &AppRow) -> Vec<api::Dyno> {
        let map = self.dynos.lock().unwrap();
        let mut v: Vec<api::Dyno> = map
            .iter()
            .filter(|(_, e)| e.app_id == app.id)
            .map(|(id, e)| self.to_api(e, id, &app.name))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn handles(&self) -> Vec<DynoHandle> {
        let map = self.dynos.lock().unwrap();
        map.values().map(|e| e.handle.clone()).collect()
    }
}

fn attach_url(app_name: &str, dyno: &str) -> String {
    use api::Endpoint;
    api::dynos::Attach {
        app: app_name.into(),
        dyno: dyno.into(),
    }
    .path()
}

/// `POST /apps/{app}/dynos {command, attach: true, env, force_no_tty}`: starts the dyno and
/// answers its resource; the client then connects to its `attach_url`.
pub async fn create(
    d: &Arc<Daemon>,
    app: &AppRow,
    req: api::DynoCreate,
) -> Result<api::Dyno, RunError> {
    let invalid = |m: String| RunError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", m);
    if req.command.trim().is_empty() {
        return Err(invalid("command must not be empty".into()));
    }
    if req.attach != Some(true) {
        return Err(invalid(
            "only attached one-off dynos are supported here (attach: true)".into(),
        ));
    }
    if let Some(t) = req.process_type.as_deref().filter(|t| *t != "run") {
        return Err(invalid(format!("one-off dynos are of type run, not {t:?}")));
    }
    let no_release = || {
        RunError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_release",
            format!(
                "{} has no release yet: deploy it first (dyno up -a {})",
                app.name, app.name
            ),
        )
    };
    let release = d.store.current_release(&app.id)?.ok_or_else(no_release)?;
    let slug = match &release.slug_id {
        Some(id) => d.store.slug(id)?.ok_or_else(no_release)?,
        None => return Err(no_release()),
    };
    let tty = !req.force_no_tty.unwrap_or(false);
    let mut extra = req.env.unwrap_or_default();
    // Heroku's CLI sends the terminal's size as COLUMNS/LINES: the pty's first size. Left in the
    // environment they would contradict every later resize.
    let cols = extra.remove("COLUMNS").and_then(|v| v.parse().ok());
    let rows = extra.remove("LINES").and_then(|v| v.parse().ok());
    for k in extra.keys() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(invalid(format!("invalid environment variable name {k:?}")));
        }
    }

    let name = free_name(d, &app.id);
    let extra: Vec<(String, String)> = extra.into_iter().collect();
    let spec = super::launch::dyno_spec(
        d,
        &super::launch::Launch {
            app_name: &app.name,
            release: &release,
            slug: &slug,
            ptype: "run",
            name: &name,
            command: &req.command,
            port: None,
            extra_env: &extra,
        },
    )?;
    let id = spec.id.clone();
    d.logs.platform(
        &app.name,
        &name,
        format!(
            "Starting process with command `{}` by user user@localhost",
            req.command
        ),
    );
    let opts = AttachOptions {
        tty,
        size: cols.zip(rows),
    };
    let (handle, stdio) = match d.runtime.start_attached(spec, opts).await {
        Ok(v) => v,
        Err(e) => {
            d.logs
                .platform(&app.name, &name, format!("Error starting process: {e:#}"));
            return Err(e.into());
        }
    };
    tracing::info!(app = %app.name, dyno = %name, %id, tty, "one-off dyno started");
    d.logs
        .platform(&app.name, &name, "State changed from starting to up");
    let now = crate::store::now();
    let (exit_tx, exit_rx) = watch::channel(None);
    let entry = RunDyno {
        app_id: app.id.clone(),
        name,
        command: req.command,
        release: api::ReleaseRef {
            id: release.id.clone(),
            version: release.version,
        },
        state: "up",
        created_at: now.clone(),
        updated_at: now,
        handle: handle.clone(),
        stdio: Some(stdio),
        exit: exit_rx,
    };
    let answer = d.runs.to_api(&entry, &id, &app.name);
    d.runs.dynos.lock().unwrap().insert(id.clone(), entry);
    tokio::spawn(watch_dyno(d.clone(), id.clone(), handle.clone(), exit_tx));
    // Nobody came: a dyno nobody sees must not run forever.
    let dd = d.clone();
    tokio::spawn(async move {
        tokio::time::sleep(ATTACH_TIMEOUT).await;
        let unattached = dd
            .runs
            .dynos
            .lock()
            .unwrap()
            .get_mut(&id)
            .and_then(|e| e.stdio.take());
        if let Some(stdio) = unattached {
            tracing::info!(dyno = %id, "no client attached: stopping it");
            drop(stdio);
            let _ = dd.runtime.stop(&handle);
        }
    });
    Ok(answer)
}

/// `run.N` with a random four-digit N (as Heroku names them) no dyno of the app has.
fn free_name(d: &Daemon, app_id: &str) -> String {
    let taken: Vec<String> = {
        let map = d.runs.dynos.lock().unwrap();
        map.values()
            .filter(|e| e.app_id == app_id)
            .map(|e| e.name.clone())
            .chain(d.manager.entries(app_id).into_iter().map(|e| e.name))
            .collect()
    };
    loop {
        let name = format!("run.{}", rand::random::<u16>() % 9000 + 1000);
        if !taken.contains(&name) {
            return name;
        }
    }
}

/// Waits for the dyno to end (its shim has cleaned up by then), publishes its status and forgets
/// it.
async fn watch_dyno(
    d: Arc<Daemon>,
    id: String,
    handle: DynoHandle,
    exit_tx: watch::Sender<Option<i32>>,
) {
    let _router_port = d.serve_router_port(&handle);
    let (app_id, name) = match d.runs.dynos.lock().unwrap().get(&id) {
        Some(e) => (e.app_id.clone(), e.name.clone()),
        None => (String::new(), String::new()),
    };
    let app_name = || d.store.app(&app_id).ok().flatten().map(|a| a.name);
    let exit = super::launch::watch_memory(&d, app_name, &name, &handle, d.runtime.wait(&handle));
    let (status, oom_killed) = match exit.await {
        Ok(x) => (x.status, x.oom_killed),
        Err(e) => {
            tracing::warn!(dyno = %id, "wait: {e:#}");
            (crate::runtime::SHIM_LOST_STATUS, false)
        }
    };
    let _ = d.runtime.forget(&handle);
    let gone = d.runs.dynos.lock().unwrap().remove(&id);
    let _ = exit_tx.send(Some(status));
    if let Some(e) = gone {
        if let Some(app) = d.store.app(&e.app_id).ok().flatten() {
            super::launch::log_exit(&d, &app.name, &e.name, status, oom_killed);
            d.logs
                .platform(&app.name, &e.name, "State changed from up to complete");
        }
    }
    tracing::info!(dyno = %id, status, "one-off dyno ended");
    d.dyno_gone.notify_waiters();
}

/// Stops every attached one-off dyno (daemon shutdown).
pub fn stop_all(d: &Daemon) {
    for h in d.runs.handles() {
        let _ = d.runtime.stop(&h);
    }
}

/// At start-up: a dyno a previous daemon had attached to a client lost that client with it.
pub fn reap_orphan(d: &Daemon, h: &DynoHandle) -> bool {
    if !Runtime::is_attached(h) {
        return false;
    }
    tracing::info!(dyno = %h.id, "one-off dyno lost its client with the previous daemon: killing it");
    let _ = d.runtime.kill(h);
    true
}

type Body = BoxBody<Bytes, Infallible>;

/// `POST /apps/{app}/dynos/{name}/attach` with `Upgrade: dyno-attach`: answers 101 and relays
/// the dyno's stdio over the connection.
pub fn attach(
    d: &Arc<Daemon>,
    app: &AppRow,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, RunError> {
    let upgrade = req
        .headers()
        .get(hyper::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !upgrade.eq_ignore_ascii_case(crate::attach::PROTOCOL) {
        return Err(RunError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("attach needs `Upgrade: {}`", crate::attach::PROTOCOL),
        ));
    }
    let (id, handle, stdio, exit) = claim(d, app, name)?;
    let d = d.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => relay(d, id, handle, TokioIo::new(up), stdio, exit).await,
            Err(e) => {
                tracing::warn!(dyno = %id, "attach upgrade failed: {e}");
                drop(stdio);
                let _ = d.runtime.stop(&handle);
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, crate::attach::PROTOCOL)
        .header(api::VERSION_HEADER, api::VERSION)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap())
}

/// What a client attaching to an attached one-off dyno takes over: its id, handle, stdio (once:
/// a second client gets 409) and exit status.
pub type Claimed = (String, DynoHandle, DynoStdio, watch::Receiver<Option<i32>>);

/// Takes the stdio of the app's attached one-off dyno `name` for a client.
pub fn claim(d: &Daemon, app: &AppRow, name: &str) -> Result<Claimed, RunError> {
    let mut map = d.runs.dynos.lock().unwrap();
    let Some((id, e)) = map
        .iter_mut()
        .find(|(_, e)| e.app_id == app.id && e.name == name)
    else {
        return Err(RunError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Couldn't find that dyno ({name} of {}).", app.name),
        ));
    };
    let Some(stdio) = e.stdio.take() else {
        return Err(RunError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{name} is already attached to a client"),
        ));
    };
    e.updated_at = crate::store::now();
    Ok((id.clone(), e.handle.clone(), stdio, e.exit.clone()))
}

type Fd = Arc<AsyncFd<OwnedFd>>;

fn async_fd(fd: OwnedFd) -> std::io::Result<Fd> {
    set_nonblocking(&fd)?;
    // SAFETY: the AsyncFd owns the descriptor and keeps it open for its whole lifetime.
    let afd = unsafe { AsyncFd::register(fd) }.map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Arc::new(afd))
}

/// Reads what is there; `Ok(0)` at the end (EIO on a pty master: every slave is closed).
async fn read_fd(fd: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        let r = guard.try_io(|inner| {
            // SAFETY: read(2) into our buffer.
            let n = unsafe { libc::read(inner.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

async fn write_fd(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut guard = fd.writable().await?;
        let r = guard.try_io(|inner| {
            // SAFETY: write(2) from our buffer.
            let n = unsafe { libc::write(inner.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

/// Pipes the dyno's stdio through the client's connection until the dyno ends (then sends its
/// status) or the client goes away (then the dyno is stopped).
pub async fn relay<S>(
    d: Arc<Daemon>,
    id: String,
    handle: DynoHandle,
    conn: S,
    stdio: DynoStdio,
    mut exit: watch::Receiver<Option<i32>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let fds = match stdio {
        DynoStdio::Pty(m) => async_fd(m).map(|m| (m.clone(), None, vec![(true, m)])),
        DynoStdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => (|| {
            let out = async_fd(stdout)?;
            let err = async_fd(stderr)?;
            Ok((async_fd(stdin)?, Some(()), vec![(true, out), (false, err)]))
        })(),
    };
    let (input, pipes, outputs) = match fds {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(dyno = %id, "attach: {e}");
            let _ = d.runtime.stop(&handle);
            return;
        }
    };
    let pty = pipes.is_none().then(|| input.clone());
    let (mut rd, mut wr) = tokio::io::split(conn);

    // Client → dyno: stdin through its own task and queue, so a dyno that does not read its
    // input never blocks its output.
    let (in_tx, mut in_rx) = mpsc::channel::<Option<Vec<u8>>>(64);
    let writer = tokio::spawn(async move {
        let mut input = Some(input);
        while let Some(chunk) = in_rx.recv().await {
            let close = match (chunk, &input) {
                // A failed write: the dyno closed its stdin.
                (Some(b), Some(fd)) => write_fd(fd, &b).await.is_err(),
                // EOF on plain stdin: close it (a pty has no EOF of its own; Ctrl-D is a byte).
                (None, Some(_)) => pipes.is_some(),
                _ => false,
            };
            if close {
                input = None;
            }
        }
    });
    let mut reader = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            loop {
                match Frame::decode(&mut buf) {
                    Ok(Some(Frame::Stdin(b))) => {
                        let _ = in_tx.send(Some(b)).await;
                    }
                    Ok(Some(Frame::StdinEof)) => {
                        let _ = in_tx.send(None).await;
                    }
                    Ok(Some(Frame::Resize { cols, rows })) => {
                        if let Some(m) = &pty {
                            let _ = crate::runtime::set_window_size(m.as_raw_fd(), cols, rows);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => return format!("bad frame: {e}"),
                }
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) => return "connection closed".to_string(),
                Ok(_) => {}
                Err(e) => return format!("connection error: {e}"),
            }
        }
    });

    // Dyno → client.
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(16);
    let mut readers = vec![];
    for (is_stdout, fd) in outputs {
        let tx = out_tx.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            while let Ok(n) = read_fd(&fd, &mut buf).await {
                if n == 0 {
                    break;
                }
                let b = buf[..n].to_vec();
                let f = if is_stdout {
                    Frame::Stdout(b)
                } else {
                    Frame::Stderr(b)
                };
                if tx.send(f).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(out_tx);

    let client_gone: Option<String> = 'relay: {
        loop {
            tokio::select! {
                f = out_rx.recv() => match f {
                    Some(f) => {
                        if let Err(e) = wr.write_all(&f.encode()).await {
                            break 'relay Some(format!("connection error: {e}"));
                        }
                    }
                    None => break,
                },
                why = &mut reader => break 'relay Some(why.unwrap_or_else(|e| e.to_string())),
            }
        }
        // Output is done: the dyno's status follows once its shim has cleaned up.
        let code = tokio::select! {
            st = exit.wait_for(|s| s.is_some()) => st.map(|s| s.unwrap_or(255)).unwrap_or(255),
            why = &mut reader => break 'relay Some(why.unwrap_or_else(|e| e.to_string())),
        };
        let _ = wr.write_all(&Frame::Exit(code).encode()).await;
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
        None
    };
    reader.abort();
    writer.abort();
    for r in readers {
        r.abort();
    }
    if let Some(why) = client_gone {
        // Nobody sees this dyno any more: its stdio is released (a hangup for a pty) and it is
        // stopped; the watcher forgets it once the shim has cleaned up.
        tracing::info!(dyno = %id, "client went away ({why}): stopping the one-off dyno");
        if d.runs.dynos.lock().unwrap().contains_key(&id) {
            let _ = d.runtime.stop(&handle);
        }
    }
}
