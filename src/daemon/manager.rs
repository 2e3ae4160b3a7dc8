//! The dyno manager: makes what runs match the formation of each app's current release.
//!
//! `reconcile(app)` is the only place that starts or stops dynos for the formation, serialized
//! per app. Each running dyno has a watcher task that follows it from `starting` to `up` (a web
//! dyno is up once it accepts connections on `$PORT`), tails its output into the log stream, and
//! on exit either forgets it (the platform stopped it) or treats it as a crash and restarts it
//! after a cool-off that grows with each crash (`Settings::crash_cooloff`). While a dyno runs,
//! its watcher also checks its memory (R14 above the quota; the cgroup's hard limit at twice the
//! quota makes R15) and cycles it once a day. One-off dynos (`oneoff.rs`: `run.N`, the release
//! phase's `release.N`) live in the same table but are never part of the formation: reconcile
//! leaves them alone and their exit is no crash.

use super::{launch, Daemon};
use crate::api;
use crate::logs::LogLine;
use crate::router::{AppRoute, Backend};
use crate::runtime::spool::DROPPED_STREAM;
use crate::runtime::{DynoHandle, OutputLine, Runtime};
use crate::store::{ReleaseRow, SlugRow};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Marks a one-off dyno's state dir, so a restarted daemon re-adopts it as one.
const ONE_OFF_MARKER: &str = "one-off";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynoState {
    Starting,
    Up,
    Crashed,
    Down,
    /// Stopped by idling (`daemon::idle`).
    Idle,
}

impl DynoState {
    pub fn as_str(self) -> &'static str {
        match self {
            DynoState::Starting => "starting",
            DynoState::Up => "up",
            DynoState::Crashed => "crashed",
            DynoState::Down => "down",
            DynoState::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynoEntry {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub process_type: String,
    pub command: String,
    pub release_id: String,
    pub release_version: u32,
    pub port: Option<u16>,
    pub state: DynoState,
    /// The platform asked it to stop: its exit is no crash.
    pub stopping: bool,
    /// A one-off dyno (`run.N`, `release.N`): not part of the formation, never restarted.
    pub one_off: bool,
    pub handle: Option<DynoHandle>,
    pub created_at: String,
    pub updated_at: String,
}

/// Crash bookkeeping per (app, dyno name).
#[derive(Debug, Clone)]
struct Backoff {
    crashes: u32,
    release_id: String,
    not_before: Instant,
}

/// How a one-off dyno ended, with everything it wrote.
#[derive(Debug, Clone)]
pub struct OneOffExit {
    pub status: i32,
    /// Its output, one line each (stdout and stderr interleaved as they came).
    pub output: String,
}

#[derive(Default)]
pub struct Manager {
    dynos: Mutex<HashMap<String, DynoEntry>>,
    backoff: Mutex<HashMap<(String, String), Backoff>>,
    app_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Exit reports of one-off dynos, by dyno id.
    exits: Mutex<HashMap<String, watch::Sender<Option<OneOffExit>>>>,
    /// Serializes release activations per app (`release.rs`).
    release_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Cool-off before the restart following the `crashes`-th crash in a row: `schedule[crashes-1]`,
/// the last entry repeating (the first is 0: the first crash restarts at once).
pub fn cool_off(schedule: &[Duration], crashes: u32) -> Duration {
    let i = (crashes.max(1) - 1) as usize;
    schedule
        .get(i)
        .or(schedule.last())
        .copied()
        .unwrap_or_default()
}

impl Manager {
    pub fn entries(&self, app_id: &str) -> Vec<DynoEntry> {
        let mut v: Vec<_> = self
            .dynos
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.app_id == app_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (
                a.process_type != "web",
                &a.process_type,
                dyno_number(&a.name),
            )
                .cmp(&(
                    b.process_type != "web",
                    &b.process_type,
                    dyno_number(&b.name),
                ))
        });
        v
    }

    pub fn all(&self) -> Vec<DynoEntry> {
        self.dynos.lock().unwrap().values().cloned().collect()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut DynoEntry)) -> Option<DynoEntry> {
        let mut d = self.dynos.lock().unwrap();
        let e = d.get_mut(id)?;
        f(e);
        e.updated_at = crate::store::now();
        Some(e.clone())
    }

    fn app_lock(&self, app_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.app_locks
            .lock()
            .unwrap()
            .entry(app_id.to_string())
            .or_default()
            .clone()
    }

    pub(super) fn release_lock(&self, app_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.release_locks
            .lock()
            .unwrap()
            .entry(app_id.to_string())
            .or_default()
            .clone()
    }

    /// A dyno of the app by name (`web.1`, `run.4821`) or id.
    pub fn find(&self, app_id: &str, key: &str) -> Option<DynoEntry> {
        self.entries(app_id)
            .into_iter()
            .find(|e| e.name == key || e.id == key)
    }
}

fn dyno_number(name: &str) -> u32 {
    name.rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn to_api(e: &DynoEntry, app_name: &str) -> api::Dyno {
    api::Dyno {
        id: e.id.clone(),
        app: api::IdName {
            id: e.app_id.clone(),
            name: app_name.to_string(),
        },
        name: e.name.clone(),
        process_type: e.process_type.clone(),
        command: e.command.clone(),
        state: e.state.as_str().to_string(),
        release: api::ReleaseRef {
            id: e.release_id.clone(),
            version: e.release_version,
        },
        size: "basic".into(),
        attach_url: None,
        created_at: e.created_at.clone(),
        updated_at: e.updated_at.clone(),
        port: e.port,
    }
}

/// Brings the app's dynos in line with its formation and current release. Safe to call any time
/// and from anywhere; calls for one app run one at a time.
pub async fn reconcile(d: &Arc<Daemon>, app_id: &str) -> Result<()> {
    if let Some(wait) = reconcile_once(d, app_id).await? {
        kick_after(d, app_id, wait);
    }
    Ok(())
}

/// One pass; returns when the next pass is due if some dyno waits out a crash cool-off.
async fn reconcile_once(d: &Arc<Daemon>, app_id: &str) -> Result<Option<Duration>> {
    let lock = d.manager.app_lock(app_id);
    let _guard = lock.lock().await;
    if d.shutting_down() {
        return Ok(None);
    }
    let app = d.store.app(app_id)?;
    let release = match &app {
        Some(_) => d.store.current_release(app_id)?,
        None => None,
    };
    let slug = match release.as_ref().and_then(|r| r.slug_id.clone()) {
        Some(id) => d.store.slug(&id)?,
        None => None,
    };
    // (type, number, command) the formation wants.
    let mut desired: Vec<(String, u32, String)> = vec![];
    if let (Some(_), Some(_)) = (&release, &slug) {
        for f in d.store.formation(app_id)? {
            // An idled app has no web dynos until a request wakes it (daemon::idle).
            let idled = f.process_type == "web" && d.idle.is_idle(app_id);
            for n in 1..=if idled { 0 } else { f.quantity } {
                desired.push((f.process_type.clone(), n, f.command.clone()));
            }
        }
    }
    let release_id = release.as_ref().map(|r| r.id.clone()).unwrap_or_default();
    let wanted = |e: &DynoEntry| {
        e.release_id == release_id && desired.iter().any(|(t, n, _)| e.name == format!("{t}.{n}"))
    };

    // Stop what is no longer wanted: scaled away, or of an older release.
    for e in d.manager.entries(app_id) {
        if e.stopping || e.one_off || wanted(&e) {
            continue;
        }
        if e.handle.is_none() {
            // A crashed dyno waiting for its restart: just forget it.
            d.manager.dynos.lock().unwrap().remove(&e.id);
            continue;
        }
        stop_dyno(d, &e);
    }

    // Start what is missing.
    let mut retry_in: Option<Duration> = None;
    if let (Some(app), Some(release), Some(slug)) = (&app, &release, &slug) {
        let live: Vec<DynoEntry> = d
            .manager
            .entries(app_id)
            .into_iter()
            .filter(|e| !e.stopping && !e.one_off && e.release_id == release.id)
            .collect();
        for (ptype, n, command) in &desired {
            let name = format!("{ptype}.{n}");
            if live.iter().any(|e| e.name == name && e.handle.is_some()) {
                continue;
            }
            let key = (app_id.to_string(), name.clone());
            if let Some(b) = d.manager.backoff.lock().unwrap().get(&key) {
                let now = Instant::now();
                if b.release_id == release.id && b.not_before > now {
                    let wait = b.not_before - now;
                    retry_in = Some(retry_in.map_or(wait, |r| r.min(wait)));
                    continue;
                }
            }
            // Forget the crashed entry it replaces.
            let mut replaced = false;
            d.manager.dynos.lock().unwrap().retain(|_, e| {
                let crashed = e.app_id == app_id && e.name == name && e.handle.is_none();
                replaced |= crashed;
                !crashed
            });
            if replaced {
                d.logs
                    .platform(&app.name, &name, "State changed from crashed to starting");
            }
            // Not crashed any more but starting: the router holds requests instead of H10.
            update_routes(d, app_id);
            let port = if ptype == "web" {
                Some(free_port(d)?)
            } else {
                None
            };
            let started = launch(
                d,
                &app.name,
                release,
                slug,
                ptype,
                &name,
                command,
                port,
                &[],
            );
            if let Err(e) = started.await {
                d.logs
                    .platform(&app.name, &name, format!("Error starting process: {e:#}"));
                tracing::warn!(app = %app.name, dyno = %name, "start failed: {e:#}");
                let wait = record_crash(d, app_id, &name, &release.id);
                retry_in = Some(retry_in.map_or(wait, |r| r.min(wait)));
            }
        }
    }
    update_routes(d, app_id);

    Ok(retry_in)
}

/// Reconciles in the background, logging failures.
pub fn kick(d: &Arc<Daemon>, app_id: &str) {
    kick_after(d, app_id, Duration::ZERO);
}

fn kick_after(d: &Arc<Daemon>, app_id: &str, wait: Duration) {
    let d = d.clone();
    let app_id = app_id.to_string();
    tokio::spawn(async move {
        let mut wait = wait;
        loop {
            tokio::time::sleep(wait).await;
            match reconcile_once(&d, &app_id).await {
                Ok(Some(next)) => wait = next,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("reconcile {app_id}: {e:#}");
                    break;
                }
            }
        }
    });
}

/// Counts a crash of `name` and returns its cool-off. A dyno that had stayed up for
/// `Settings::crash_reset` starts counting afresh.
fn record_crash(d: &Daemon, app_id: &str, name: &str, release_id: &str) -> Duration {
    record_crash_after(d, app_id, name, release_id, Duration::ZERO)
}

fn record_crash_after(
    d: &Daemon,
    app_id: &str,
    name: &str,
    release_id: &str,
    uptime: Duration,
) -> Duration {
    let mut b = d.manager.backoff.lock().unwrap();
    let e = b
        .entry((app_id.to_string(), name.to_string()))
        .or_insert(Backoff {
            crashes: 0,
            release_id: release_id.to_string(),
            not_before: Instant::now(),
        });
    if e.release_id != release_id || uptime >= d.settings.crash_reset {
        // A new release, or a dyno that ran fine for a while, resets the count.
        e.crashes = 0;
        e.release_id = release_id.to_string();
    }
    e.crashes += 1;
    let wait = cool_off(&d.settings.crash_cooloff, e.crashes);
    e.not_before = Instant::now() + wait;
    wait
}

/// Forgets the crash history of an app's dynos (scaling, `ps:restart`).
pub fn reset_backoff(d: &Daemon, app_id: &str) {
    d.manager
        .backoff
        .lock()
        .unwrap()
        .retain(|(a, _), _| a != app_id);
}

fn free_port(d: &Daemon) -> Result<u16> {
    let taken: Vec<u16> = d.manager.all().iter().filter_map(|e| e.port).collect();
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if !taken.contains(&port) && Some(port) != d.router_addr.map(|a| a.port()) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port")
}

/// Starts one dyno of `release` (a formation dyno, or a one-off when `ptype` is `run` or
/// `release`) and its watcher. `extra_env` comes last, over config vars and the platform's.
#[allow(clippy::too_many_arguments)]
pub(super) async fn launch(
    d: &Arc<Daemon>,
    app_name: &str,
    release: &ReleaseRow,
    slug: &SlugRow,
    ptype: &str,
    name: &str,
    command: &str,
    port: Option<u16>,
    extra_env: &[(String, String)],
) -> Result<(DynoEntry, Option<watch::Receiver<Option<OneOffExit>>>)> {
    let one_off = is_one_off_type(ptype);
    let spec = launch::dyno_spec(
        d,
        &launch::Launch {
            app_name,
            release,
            slug,
            ptype,
            name,
            command,
            port,
            extra_env,
        },
    )?;
    let id = spec.id.clone();
    d.logs.platform(
        app_name,
        name,
        format!("Starting process with command `{command}`"),
    );
    let handle = d.runtime.start(spec).await?;
    let mut exit = None;
    if one_off {
        let _ = std::fs::write(handle.state_dir.join(ONE_OFF_MARKER), ptype);
        let (tx, rx) = watch::channel(None);
        d.manager.exits.lock().unwrap().insert(id.clone(), tx);
        exit = Some(rx);
    }
    let now = crate::store::now();
    let entry = DynoEntry {
        id: id.clone(),
        app_id: release.app_id.clone(),
        name: name.to_string(),
        process_type: ptype.to_string(),
        command: command.to_string(),
        release_id: release.id.clone(),
        release_version: release.version,
        port,
        state: DynoState::Starting,
        stopping: false,
        one_off,
        handle: Some(handle),
        created_at: now.clone(),
        updated_at: now,
    };
    d.manager
        .dynos
        .lock()
        .unwrap()
        .insert(id.clone(), entry.clone());
    tokio::spawn(watch(d.clone(), id, 0));
    Ok((entry, exit))
}

/// One-off process types: never in a formation (the rule lives in `api::dynos`).
pub use crate::api::dynos::is_one_off_type;

/// Re-adopts a dyno a previous daemon started (its shim kept it running).
pub fn adopt(d: &Arc<Daemon>, handle: DynoHandle) -> Result<()> {
    let env: HashMap<&str, &str> = handle
        .spec
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app_id = env
        .get("HEROKU_APP_ID")
        .context("no HEROKU_APP_ID")?
        .to_string();
    let version: u32 = env
        .get("HEROKU_RELEASE_VERSION")
        .and_then(|v| v.trim_start_matches('v').parse().ok())
        .context("no HEROKU_RELEASE_VERSION")?;
    let release = d
        .store
        .releases(&app_id)?
        .into_iter()
        .find(|r| r.version == version)
        .context("its release is gone")?;
    let name = handle.spec.name.clone();
    let one_off = handle.state_dir.join(ONE_OFF_MARKER).exists();
    if one_off && name.starts_with("release.") {
        // Its release was marked failed at start-up (nobody waits for it any more).
        anyhow::bail!("a release phase of a previous daemon");
    }
    if one_off {
        let (tx, _) = watch::channel(None);
        d.manager
            .exits
            .lock()
            .unwrap()
            .insert(handle.id.clone(), tx);
    }
    let offset = std::fs::read_to_string(handle.state_dir.join("daemon.offset"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let entry = DynoEntry {
        id: handle.id.clone(),
        app_id,
        process_type: name.split('.').next().unwrap_or("").to_string(),
        name,
        command: handle.spec.command.clone(),
        release_id: release.id,
        release_version: version,
        port: env.get("PORT").and_then(|p| p.parse().ok()),
        state: DynoState::Starting,
        stopping: false,
        one_off,
        created_at: handle
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        updated_at: crate::store::now(),
        handle: Some(handle),
    };
    let id = entry.id.clone();
    d.manager.dynos.lock().unwrap().insert(id.clone(), entry);
    tokio::spawn(watch(d.clone(), id, offset));
    Ok(())
}

/// After an upgrade to dyno networking: the adopted dynos that still run on the host's network
/// (started by an older daemon) are replaced one at a time, each new dyno up (web) or started
/// (other types) before the old one stops, so the app keeps serving throughout.
pub async fn move_off_host_network(d: Arc<Daemon>) {
    if d.runtime.net.is_none() {
        return;
    }
    let old: Vec<DynoEntry> = d
        .manager
        .all()
        .into_iter()
        .filter(|e| !e.one_off && e.handle.as_ref().is_some_and(|h| h.spec.network.is_none()))
        .collect();
    if !old.is_empty() {
        tracing::info!(dynos = old.len(), "moving dynos off the host network");
    }
    for e in old {
        if d.shutting_down() {
            return;
        }
        let still_there = d
            .manager
            .dynos
            .lock()
            .unwrap()
            .get(&e.id)
            .is_some_and(|e| !e.stopping);
        if !still_there {
            continue;
        }
        if let Err(err) = replace_dyno(&d, &e).await {
            tracing::warn!(dyno = %e.id, "not moved off the host network: {err:#}");
        }
    }
}

async fn replace_dyno(d: &Arc<Daemon>, old: &DynoEntry) -> Result<()> {
    let new = {
        let lock = d.manager.app_lock(&old.app_id);
        let _guard = lock.lock().await;
        let app = d.store.app(&old.app_id)?.context("the app is gone")?;
        let release = d
            .store
            .current_release(&app.id)?
            .filter(|r| r.id == old.release_id)
            .context("a newer release replaces it anyway")?;
        let slug_id = release.slug_id.clone().context("no slug")?;
        let slug = d.store.slug(&slug_id)?.context("its slug is gone")?;
        let port = if old.process_type == "web" {
            Some(free_port(d)?)
        } else {
            None
        };
        let (new, _) = launch(
            d,
            &app.name,
            &release,
            &slug,
            &old.process_type,
            &old.name,
            &old.command,
            port,
            &[],
        )
        .await?;
        new
    };
    let deadline = Instant::now() + d.settings.boot_timeout + Duration::from_secs(1);
    loop {
        let state = d
            .manager
            .dynos
            .lock()
            .unwrap()
            .get(&new.id)
            .map(|e| (e.state, e.handle.is_some()));
        match state {
            Some((DynoState::Up, _)) => break,
            Some((DynoState::Starting, _)) if old.process_type != "web" => break,
            Some((DynoState::Starting, true)) if Instant::now() < deadline => {}
            _ => {
                let new = d.manager.dynos.lock().unwrap().get(&new.id).cloned();
                if let Some(e) = new {
                    stop_dyno(d, &e);
                }
                anyhow::bail!("its replacement did not come up");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (Taken out first: stop_dyno locks the map again.)
    let old = d.manager.dynos.lock().unwrap().get(&old.id).cloned();
    if let Some(e) = old {
        stop_dyno(d, &e);
    }
    Ok(())
}

/// Asks a dyno to stop (SIGTERM, SIGKILL after the stop timeout); its watcher forgets it.
pub fn stop_dyno(d: &Arc<Daemon>, e: &DynoEntry) {
    let Some(handle) = &e.handle else { return };
    d.manager.update(&e.id, |e| e.stopping = true);
    update_routes(d, &e.app_id);
    if let Some(app) = app_name(d, &e.app_id) {
        d.logs
            .platform(&app, &e.name, "Stopping all processes with SIGTERM");
    }
    if let Err(err) = d.runtime.stop(handle) {
        tracing::warn!(dyno = %e.id, "stop: {err:#}");
    }
    // The shim sends SIGKILL after the stop timeout; say so if the dyno is still there then.
    let (d, id, app_id, name) = (d.clone(), e.id.clone(), e.app_id.clone(), e.name.clone());
    tokio::spawn(async move {
        let grace = d.settings.stop_timeout;
        tokio::time::sleep(grace).await;
        let alive = d
            .manager
            .dynos
            .lock()
            .unwrap()
            .get(&id)
            .is_some_and(|e| e.handle.is_some());
        if let (true, Some(app)) = (alive, app_name(&d, &app_id)) {
            d.logs.platform(&app, &name, format!(
                "Error R12 (Exit timeout) -> At least one process failed to exit within {} seconds of SIGTERM",
                grace.as_secs()
            ));
            d.logs
                .platform(&app, &name, "Stopping remaining processes with SIGKILL");
        }
    });
}

/// Stops the app's dynos matching `target` (a dyno name, a process type, or all when `None`)
/// and lets reconcile replace the formation's: `ps:restart`, `ps:stop`. With `kill`, SIGKILL at
/// once (`ps:kill`). Returns how many dynos were asked.
pub fn stop_matching(d: &Arc<Daemon>, app_id: &str, target: Option<&str>, kill: bool) -> usize {
    let matching: Vec<DynoEntry> = d
        .manager
        .entries(app_id)
        .into_iter()
        .filter(|e| target.is_none_or(|t| e.name == t || e.process_type == t || e.id == t))
        .collect();
    let mut n = 0;
    for e in &matching {
        let Some(handle) = &e.handle else {
            // A crashed dyno waiting out its cool-off: reconcile restarts it now.
            n += 1;
            continue;
        };
        n += 1;
        if e.stopping && !kill {
            continue;
        }
        if kill {
            d.manager.update(&e.id, |e| e.stopping = true);
            update_routes(d, app_id);
            if let Some(app) = app_name(d, app_id) {
                d.logs
                    .platform(&app, &e.name, "Stopping all processes with SIGKILL");
            }
            let _ = d.runtime.kill(handle);
        } else {
            stop_dyno(d, e);
        }
    }
    reset_backoff(d, app_id);
    kick(d, app_id);
    n
}

fn app_name(d: &Daemon, app_id: &str) -> Option<String> {
    d.store.app(app_id).ok().flatten().map(|a| a.name)
}

/// The router's view of the app: its web dynos that are up.
pub fn update_routes(d: &Daemon, app_id: &str) {
    let Some(app) = app_name(d, app_id) else {
        return;
    };
    let web_quantity = d
        .store
        .formation(app_id)
        .unwrap_or_default()
        .iter()
        .find(|f| f.process_type == "web")
        .map_or(0, |f| f.quantity);
    let entries = d.manager.entries(app_id);
    let web: Vec<&DynoEntry> = entries
        .iter()
        .filter(|e| e.process_type == "web" && !e.stopping)
        .collect();
    // Every web dyno crashed and waits out its cool-off: the router answers H10.
    let crashed = !web.is_empty() && web.iter().all(|e| e.state == DynoState::Crashed);
    let backends = entries
        .iter()
        .filter(|e| e.process_type == "web" && e.state == DynoState::Up && !e.stopping)
        .filter_map(|e| {
            let ip = e.handle.as_ref()?.spec.ip();
            Some(Backend {
                dyno: e.name.clone(),
                addr: SocketAddr::new(ip, e.port?),
            })
        })
        .collect();
    d.routes.set(
        &app,
        AppRoute {
            backends,
            web_quantity,
            idle: d.idle.is_idle(app_id),
            crashed,
        },
    );
}

pub(crate) fn set_state(d: &Arc<Daemon>, id: &str, to: DynoState) {
    let mut from = None;
    let Some(e) = d.manager.update(id, |e| {
        from = Some(e.state);
        e.state = to;
    }) else {
        return;
    };
    // An idled dyno said "up to idle" already; its stop is no news.
    if from != Some(to) && from != Some(DynoState::Idle) {
        if let Some(app) = app_name(d, &e.app_id) {
            d.logs.platform(
                &app,
                &e.name,
                format!(
                    "State changed from {} to {}",
                    from.unwrap().as_str(),
                    to.as_str()
                ),
            );
        }
    }
    update_routes(d, &e.app_id);
}

/// Follows one dyno from start to exit.
async fn watch(d: Arc<Daemon>, id: String, offset: u64) {
    let Some(entry) = d.manager.dynos.lock().unwrap().get(&id).cloned() else {
        return;
    };
    let handle = entry.handle.clone().expect("watched dynos have a handle");
    let _router_port = d.serve_router_port(&handle);
    let ip = handle.spec.ip();
    let tail = tokio::spawn(tail_output(
        d.clone(),
        handle.clone(),
        entry.app_id.clone(),
        entry.name.clone(),
        offset,
    ));

    let boot = async {
        match entry.port {
            Some(port) => {
                let deadline = Instant::now() + d.settings.boot_timeout;
                while Instant::now() < deadline {
                    if tokio::net::TcpStream::connect((ip, port)).await.is_ok() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                false
            }
            None => true,
        }
    };
    let exit = d.runtime.wait(&handle);
    tokio::pin!(exit);
    let booted = if entry.one_off {
        None
    } else {
        tokio::select! {
            r = &mut exit => Some(r),
            booted = boot => {
                if booted {
                    set_state(&d, &id, DynoState::Up);
                } else if let Some(app) = app_name(&d, &entry.app_id) {
                    d.logs.platform(&app, &entry.name, format!(
                        "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {} seconds of launch",
                        d.settings.boot_timeout.as_secs()
                    ));
                    d.logs.platform(&app, &entry.name, "Stopping process with SIGKILL");
                    let _ = d.runtime.kill(&handle);
                }
                None
            }
        }
    };
    if entry.one_off {
        set_state(&d, &id, DynoState::Up);
    }
    let result = match booted {
        Some(r) => r,
        None => run_until_exit(&d, &id, &entry, &handle, &mut exit).await,
    };
    // Everything the dyno wrote is in the spool now: take the rest, then forget it.
    tail.abort();
    let _ = tail.await;
    let mut offset = std::fs::read_to_string(handle.state_dir.join("daemon.offset"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(offset);
    // Bounded: the exit is logged and shown within a second whatever the backlog; what is
    // still unread after FINAL_DRAIN is skipped (counted, L10) but for the last lines.
    let deadline = Instant::now() + FINAL_DRAIN;
    loop {
        if d.shutting_down() || Instant::now() >= deadline {
            offset = skip_backlog(&d, &handle, &entry.app_id, &entry.name, offset);
        }
        let next = drain_output(&d, &handle, &entry.app_id, &entry.name, offset);
        if next == offset {
            break;
        }
        offset = next;
    }
    // The release phase's output is kept (`releases:output`); a `run.N`'s is in the stream.
    let output = if entry.process_type == "release" {
        read_output(&handle)
    } else {
        String::new()
    };
    let _ = d.runtime.forget(&handle);

    let status = match &result {
        Ok(x) => x.status,
        Err(e) => {
            tracing::warn!(dyno = %id, "wait: {e:#}");
            -1
        }
    };
    let app = app_name(&d, &entry.app_id);
    if let Some(app) = &app {
        let oom = matches!(&result, Ok(x) if x.oom_killed);
        launch::log_exit(&d, app, &entry.name, status, oom);
    }
    if entry.one_off {
        if let Some(app) = &app {
            d.logs
                .platform(app, &entry.name, "State changed from up to complete");
        }
        d.manager.dynos.lock().unwrap().remove(&id);
        if let Some(tx) = d.manager.exits.lock().unwrap().remove(&id) {
            let _ = tx.send(Some(OneOffExit { status, output }));
        }
        d.dyno_gone.notify_waiters();
        return;
    }
    let stopping = d
        .manager
        .dynos
        .lock()
        .unwrap()
        .get(&id)
        .is_some_and(|e| e.stopping);
    if stopping || d.shutting_down() {
        set_state(&d, &id, DynoState::Down);
        d.manager.dynos.lock().unwrap().remove(&id);
        update_routes(&d, &entry.app_id);
    } else {
        // Any exit the platform did not ask for is a crash, status 0 included.
        set_state(&d, &id, DynoState::Crashed);
        d.manager.update(&id, |e| e.handle = None);
        let uptime = (chrono::Utc::now() - handle.started_at)
            .to_std()
            .unwrap_or_default();
        record_crash_after(&d, &entry.app_id, &entry.name, &entry.release_id, uptime);
        update_routes(&d, &entry.app_id);
        kick(&d, &entry.app_id);
    }
    d.dyno_gone.notify_waiters();
}

/// While a dyno runs: checks its memory every `memory_interval` (R14 above the quota) and
/// cycles formation dynos once a day. Returns its exit.
async fn run_until_exit(
    d: &Arc<Daemon>,
    id: &str,
    entry: &DynoEntry,
    handle: &DynoHandle,
    exit: &mut std::pin::Pin<
        &mut impl std::future::Future<Output = Result<crate::runtime::DynoExit>>,
    >,
) -> Result<crate::runtime::DynoExit> {
    let mut mem = tokio::time::interval(d.settings.memory_interval);
    mem.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    mem.tick().await;
    // Daily cycling: 24 h plus up to 15 % (Heroku: 0–216 min), counted from the dyno's start.
    let cycle_at = d.settings.cycle.filter(|_| !entry.one_off).map(|c| {
        let jitter = c.mul_f64(0.15 * rand::random::<f64>());
        let age = (chrono::Utc::now() - handle.started_at)
            .to_std()
            .unwrap_or_default();
        tokio::time::Instant::now() + (c + jitter).saturating_sub(age)
    });
    let mut cycled = false;
    loop {
        tokio::select! {
            r = exit.as_mut() => return r,
            _ = mem.tick() => {
                if let Some(app) = app_name(d, &entry.app_id) {
                    launch::check_memory(d, &app, &entry.name, handle);
                }
            }
            _ = sleep_until_opt(cycle_at), if !cycled => {
                cycled = true;
                let current = d.manager.dynos.lock().unwrap().get(id).cloned();
                if let Some(e) = current.filter(|e| !e.stopping) {
                    if let Some(app) = app_name(d, &e.app_id) {
                        d.logs.platform(&app, &e.name, "Cycling");
                        d.logs.platform(&app, &e.name, "State changed from up to starting");
                    }
                    stop_dyno(d, &e);
                    kick(d, &e.app_id);
                }
            }
        }
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Follows the dyno's output spool into the app's log stream.
async fn tail_output(
    d: Arc<Daemon>,
    handle: DynoHandle,
    app_id: String,
    name: String,
    mut offset: u64,
) {
    loop {
        let next = drain_output(&d, &handle, &app_id, &name, offset);
        if next == offset {
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            // More may be waiting: go on, but let log readers run between batches.
            tokio::task::yield_now().await;
        }
        offset = next;
    }
}

/// Everything a dyno wrote (its last [`OUTPUT_KEPT`] bytes of spool), as text (for the release
/// phase's `releases:output`).
fn read_output(handle: &DynoHandle) -> String {
    let mut bytes = vec![];
    if let Ok(mut f) = std::fs::File::open(Runtime::output_path(handle)) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.seek(SeekFrom::Start(len.saturating_sub(OUTPUT_KEPT)))
            .is_ok()
        {
            let _ = f.take(OUTPUT_KEPT).read_to_end(&mut bytes);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::new();
    for l in text.lines() {
        if let Ok(l) = serde_json::from_str::<OutputLine>(l) {
            if l.stream == DROPPED_STREAM {
                continue;
            }
            out.push_str(&l.line);
            out.push('\n');
        }
    }
    out
}

/// Spool bytes read back as a release phase's output.
const OUTPUT_KEPT: u64 = 1 << 20;
/// Lines taken from a spool per pass, so that tails and drains get to run between passes.
const DRAIN_BATCH: usize = 2000;
/// How long the spool of a dyno that ended is still read before its exit is logged.
const FINAL_DRAIN: Duration = Duration::from_millis(200);
/// Bytes of a backlog still read when the rest is skipped ([`skip_backlog`]).
const KEEP_TAIL: u64 = 64 * 1024;

/// Skips the unread part of a spool but its last [`KEEP_TAIL`] bytes: the skipped lines are
/// counted and reported as L10. Returns the new offset (the start of a line).
fn skip_backlog(d: &Daemon, handle: &DynoHandle, app_id: &str, name: &str, offset: u64) -> u64 {
    let path = Runtime::output_path(handle);
    let Ok(f) = std::fs::File::open(&path) else {
        return offset;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len <= offset + KEEP_TAIL {
        return offset;
    }
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    if r.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut first = String::new();
    let _ = (&mut r).take(MAX_RECORD).read_line(&mut first);
    let since = serde_json::from_str::<OutputLine>(&first)
        .ok()
        .and_then(|l| chrono::DateTime::parse_from_rfc3339(&l.ts).ok())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        .unwrap_or_default();
    let mut pos = offset + first.len() as u64;
    let mut lines: u64 = 1;
    let stop = len - KEEP_TAIL;
    // Whole lines up to `stop`, then the one `stop` falls in.
    while pos < stop {
        let Ok(buf) = r.fill_buf() else { break };
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min((stop - pos) as usize);
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        r.consume(n);
        pos += n as u64;
    }
    let mut rest = vec![];
    if let Ok(n) = (&mut r).take(MAX_RECORD).read_until(b'\n', &mut rest) {
        pos += n as u64;
        if rest.ends_with(b"\n") {
            lines += 1;
        }
    }
    if let Some(app) = app_name(d, app_id) {
        d.logs.push(&app, dyno_l10(name, lines, &since));
    }
    let _ = std::fs::write(handle.state_dir.join("daemon.offset"), pos.to_string());
    pos
}
/// Heroku's L10 for lines a dyno's spool lost, under the dyno's name (`heroku[web.1]: Error
/// L10 …`), so `logs --ps web` shows it too.
fn dyno_l10(dyno: &str, dropped: u64, since: &str) -> LogLine {
    LogLine {
        dyno: dyno.to_string(),
        ..crate::logs::l10(dropped, since)
    }
}

/// Longest spool record there is (a line of MAX_LINE bytes, all escaped, and its fields).
const MAX_RECORD: u64 = 6 * crate::logs::MAX_LINE as u64 + 256;

/// Reads the spool from `offset`, pushes whole lines to the log, returns the new offset (also
/// kept in the state dir so a restarted daemon neither loses nor repeats lines).
fn drain_output(d: &Daemon, handle: &DynoHandle, app_id: &str, name: &str, offset: u64) -> u64 {
    let path = Runtime::output_path(handle);
    // Polled every 50 ms per dyno: nothing new costs one stat, not an open and a store query.
    if std::fs::metadata(&path).map_or(true, |m| m.len() <= offset) {
        return offset;
    }
    let Ok(mut f) = std::fs::File::open(&path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut r = std::io::BufReader::new(f);
    let mut pos = offset;
    let mut buf = String::new();
    let app = app_name(d, app_id);
    for _ in 0..DRAIN_BATCH {
        buf.clear();
        match r.read_line(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if !buf.ends_with('\n') => {
                let _ = n;
                break; // a line still being written
            }
            Ok(n) => {
                pos += n as u64;
                let Ok(l) = serde_json::from_str::<OutputLine>(&buf) else {
                    continue;
                };
                let Some(app) = &app else { continue };
                if l.stream == DROPPED_STREAM {
                    let since = chrono::DateTime::parse_from_rfc3339(&l.line)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
                        .unwrap_or(l.line);
                    d.logs.push(app, dyno_l10(name, l.dropped, &since));
                } else {
                    d.logs.push(
                        app,
                        LogLine {
                            // One timestamp format in the stream, whatever the shim wrote.
                            ts: chrono::DateTime::parse_from_rfc3339(&l.ts)
                                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false))
                                .unwrap_or(l.ts),
                            source: "app".into(),
                            dyno: name.to_string(),
                            message: l.line,
                        },
                    );
                }
            }
        }
    }
    if pos != offset {
        let _ = std::fs::write(handle.state_dir.join("daemon.offset"), pos.to_string());
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cool_off_follows_the_schedule_and_repeats_its_last_step() {
        let s: Vec<Duration> = [0, 20, 40, 60, 180, 320].map(Duration::from_secs).to_vec();
        assert_eq!(cool_off(&s, 1), Duration::ZERO);
        assert_eq!(cool_off(&s, 2), Duration::from_secs(20));
        assert_eq!(cool_off(&s, 6), Duration::from_secs(320));
        assert_eq!(cool_off(&s, 50), Duration::from_secs(320));
        assert_eq!(cool_off(&[], 3), Duration::ZERO);
    }
}
