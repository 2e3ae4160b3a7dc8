//! Add-ons in the daemon: provisioning (a database in the home's PostgreSQL cluster, or a
//! `redis-server` of its own), attachments as releases, and the supervision of the servers.
//!
//! Servers outlive the daemon like shims: they run in their own session, and a starting daemon
//! finds them again through `postmaster.pid` / `redis.pid` (checked against the process's
//! environment, `DYNO_HOME` and `DYNO_ADDON`), never starting a second one. Each running server
//! has a watcher on its pidfd; a server that dies without being asked to is started again, with
//! an `app[heroku-postgres]`/`app[heroku-redis]` line in the streams of the apps it is attached
//! to. `daemon:stop` stops them unless the dynos are kept.
//!
//! Nothing half-made is left: the add-on's record is written (`provisioning`) before its
//! database or server exists, and becomes `provisioned` in the transaction of the release that
//! sets its config var; a failure in between removes both, and a daemon that died in between
//! leaves a `provisioning` record the next one cleans up.

use super::api_server::{invalid, not_found_msg, Fail};
use super::release::{self, NewRelease};
use super::Daemon;
use crate::addons::{self, postgres, redis, Launch};
use crate::api::addons::{Service, SERVICES};
use crate::logs::LogLine;
use crate::store::{new_id, now, AddonOp, AddonRow, AppRow, AttachmentRow, ReleaseRow};
use anyhow::{Context, Result};
use hyper::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The servers this daemon runs or has adopted, by key (`postgres`, `redis:<name>`).
#[derive(Default)]
pub struct Addons {
    /// Serializes provisioning, destroying, starting and stopping.
    pub lock: tokio::sync::Mutex<()>,
    servers: Mutex<HashMap<String, Running>>,
}

#[derive(Clone, Copy)]
struct Running {
    pid: i32,
    stopping: bool,
}

const COLORS: &[&str] = &[
    "AMBER", "BLACK", "BLUE", "BRONZE", "BROWN", "CHARCOAL", "COBALT", "COPPER", "CORAL",
    "CRIMSON", "CYAN", "GOLD", "GRAY", "GREEN", "IVORY", "JADE", "LIME", "MAGENTA", "MAROON",
    "MAUVE", "NAVY", "OLIVE", "ONYX", "ORANGE", "PINK", "PUCE", "PURPLE", "RED", "ROSE", "SILVER",
    "TEAL", "VIOLET", "WHITE", "YELLOW",
];

pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

fn is_postgres(a: &AddonRow) -> bool {
    a.service == "heroku-postgresql"
}

/// Whether the add-on has a server (and a config var): not the scheduler.
pub fn has_server(a: &AddonRow) -> bool {
    service(&a.service).is_none_or(|s| s.server)
}

fn key(a: &AddonRow) -> String {
    if is_postgres(a) {
        postgres::KEY.to_string()
    } else {
        format!("redis:{}", a.name)
    }
}

/// How servers of this home are started (creates the server user when missing).
fn launch(d: &Daemon) -> Result<Launch> {
    let (uid, gid) = addons::ensure_user()?;
    let l = Launch {
        uid,
        gid,
        addons: d.paths.addons(),
        mount: d.paths.addons_mount(),
        home: d.paths.home.clone(),
    };
    l.prepare()?;
    Ok(l)
}

/// The URL dynos use: at the services address, with the add-on's own credentials.
pub fn url(d: &Daemon, a: &AddonRow) -> String {
    let host = d.runtime.services_addr();
    if is_postgres(a) {
        format!(
            "postgres://{}:{}@{host}:{}/{}",
            postgres::role_of(&a.database),
            a.password,
            a.port,
            a.database
        )
    } else {
        format!("redis://:{}@{host}:{}", a.password, a.port)
    }
}

/// Where the host reaches it: Postgres' socket directory or Redis' socket.
pub fn socket(d: &Daemon, a: &AddonRow) -> String {
    if is_postgres(a) {
        d.paths
            .addons()
            .join("postgres")
            .join("run")
            .display()
            .to_string()
    } else {
        d.paths
            .addons()
            .join(&a.name)
            .join("redis.sock")
            .display()
            .to_string()
    }
}

/// The apps an add-on is attached to (for its log lines).
fn attached_apps(d: &Daemon, a: Option<&AddonRow>) -> Vec<String> {
    let addons = match a {
        Some(a) => vec![a.clone()],
        None => d
            .store
            .addons()
            .unwrap_or_default()
            .into_iter()
            .filter(is_postgres)
            .collect(),
    };
    let mut apps = vec![];
    for a in addons {
        for t in d.store.attachments(None, Some(&a.id)).unwrap_or_default() {
            if let Ok(Some(app)) = d.store.app(&t.app_id) {
                if !apps.contains(&app.name) {
                    apps.push(app.name);
                }
            }
        }
    }
    apps
}

fn log_to_apps(d: &Daemon, k: &str, msg: &str) {
    let (dyno, addon) = if k == postgres::KEY {
        ("heroku-postgres", None)
    } else {
        let name = k.trim_start_matches("redis:");
        ("heroku-redis", d.store.addon(name).ok().flatten())
    };
    if k != postgres::KEY && addon.is_none() {
        return;
    }
    for app in attached_apps(d, addon.as_ref()) {
        d.logs
            .push(&app, LogLine::new("app", dyno, msg.to_string()));
    }
}

// ---- servers ----

/// Makes sure the server of `a` runs (adopting a running one); blocking. Caller holds `lock`.
fn ensure_server(d: &Arc<Daemon>, a: &AddonRow) -> Result<()> {
    let k = key(a);
    if let Some(r) = d.addons.servers.lock().unwrap().get(&k) {
        if !r.stopping && addons::alive(r.pid) {
            return Ok(());
        }
    }
    let l = launch(d)?;
    let addr = d.runtime.services_addr();
    let (pid, adopted, port) = if is_postgres(a) {
        let c = postgres::Cluster::new(&l);
        if !c.exists() {
            let port = addons::free_port(addr)?;
            c.init(port)?;
        }
        match c.running() {
            Some(pid) => (pid, true, c.port()?),
            None => {
                let pid = c.start(addr)?;
                // Idempotent, and cheap: a cluster is never open to add-on roles, however it
                // was made.
                c.lock_down()?;
                (pid, false, c.port()?)
            }
        }
    } else {
        let s = redis::Server::new(&l, &a.name);
        match s.running() {
            Some(pid) => (pid, true, a.port),
            None => (s.start(addr, &a.password)?, false, a.port),
        }
    };
    d.runtime
        .allow_service(port)
        .context("opening the add-on's port to the dynos")?;
    tracing::info!(server = %k, pid, adopted, "add-on server running");
    d.addons.servers.lock().unwrap().insert(
        k.clone(),
        Running {
            pid,
            stopping: false,
        },
    );
    watch(d, k, pid);
    Ok(())
}

/// Follows a server's process; restarts it when it dies unasked.
fn watch(d: &Arc<Daemon>, k: String, pid: i32) {
    let d = d.clone();
    tokio::spawn(async move {
        if let Some(fd) = addons::pidfd(pid) {
            if addons::alive(pid) {
                // SAFETY: the AsyncFd owns the pidfd, which stays open for its whole lifetime.
                let afd = unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        fd,
                        tokio::io::Interest::READABLE,
                    )
                };
                match afd {
                    Ok(afd) => {
                        let _ = afd.readable().await;
                    }
                    Err(e) => tracing::warn!("watching {k}: {e}"),
                }
            }
        }
        addons::reap(pid);
        let asked = {
            let mut servers = d.addons.servers.lock().unwrap();
            match servers.get(&k) {
                Some(r) if r.pid == pid && !r.stopping => {
                    servers.remove(&k);
                    false
                }
                Some(r) if r.pid == pid => {
                    servers.remove(&k);
                    true
                }
                _ => true,
            }
        };
        if asked || d.shutting_down() {
            return;
        }
        let what = if k == postgres::KEY {
            "PostgreSQL".to_string()
        } else {
            format!("Redis {}", k.trim_start_matches("redis:"))
        };
        tracing::warn!(server = %k, pid, "add-on server exited; restarting");
        log_to_apps(
            &d,
            &k,
            &format!("{what} exited unexpectedly; restarting it"),
        );
        let mut wait = Duration::from_millis(200);
        loop {
            tokio::time::sleep(wait).await;
            if d.shutting_down() {
                return;
            }
            let _guard = d.addons.lock.lock().await;
            let addon = if k == postgres::KEY {
                d.store
                    .addons()
                    .unwrap_or_default()
                    .into_iter()
                    .find(is_postgres)
            } else {
                d.store.addon(k.trim_start_matches("redis:")).ok().flatten()
            };
            let Some(addon) = addon else { return };
            let d2 = d.clone();
            let res = tokio::task::spawn_blocking(move || ensure_server(&d2, &addon)).await;
            match res {
                Ok(Ok(())) => {
                    log_to_apps(&d, &k, &format!("{what} restarted"));
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(server = %k, "restarting: {e:#}");
                    log_to_apps(&d, &k, &format!("{what} failed to restart: {e:#}"));
                }
                Err(e) => tracing::warn!(server = %k, "restarting: {e}"),
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    });
}

/// Stops a server and waits for it (SIGKILL after 15 s); blocking. Caller holds `lock`.
fn stop_server(d: &Daemon, k: &str) {
    let pid = {
        let mut servers = d.addons.servers.lock().unwrap();
        match servers.get_mut(k) {
            Some(r) => {
                r.stopping = true;
                r.pid
            }
            None => return,
        }
    };
    // Postgres: SIGINT is the fast shutdown (sessions disconnected, data flushed).
    use nix::sys::signal::{kill, Signal};
    let sig = if k == postgres::KEY {
        Signal::SIGINT
    } else {
        Signal::SIGTERM
    };
    // A pid verified as ours above.
    let _ = kill(nix::unistd::Pid::from_raw(pid), sig);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while addons::alive(pid) {
        if std::time::Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    d.addons.servers.lock().unwrap().remove(k);
}

/// At daemon start: add-ons a dead daemon left half-made are removed; every server of the
/// others is adopted, or started.
pub async fn start_all(d: &Arc<Daemon>) {
    let _guard = d.addons.lock.lock().await;
    let d2 = d.clone();
    let res = tokio::task::spawn_blocking(move || -> Result<()> {
        let d = &d2;
        let all = d.store.addons()?;
        for a in all.iter().filter(|a| a.state == "provisioning") {
            tracing::warn!(addon = %a.name, "removing an add-on whose provisioning was interrupted");
            if let Err(e) = remove_data(d, a) {
                tracing::warn!(addon = %a.name, "{e:#}");
            }
            d.store.delete_addon(&a.id)?;
        }
        let mut pg_done = false;
        for a in d.store.addons()?.into_iter().filter(has_server) {
            if is_postgres(&a) && std::mem::replace(&mut pg_done, true) {
                continue;
            }
            if let Err(e) = ensure_server(d, &a) {
                tracing::error!(addon = %a.name, "starting its server: {e:#}");
                log_to_apps(d, &key(&a), &format!("the server did not start: {e:#}"));
            }
        }
        Ok(())
    })
    .await;
    match res {
        Ok(Err(e)) => tracing::error!("add-on servers: {e:#}"),
        Err(e) => tracing::error!("add-on servers: {e}"),
        Ok(Ok(())) => {}
    }
}

/// At `daemon:stop` (dynos not kept): every server stops.
pub async fn stop_all(d: &Arc<Daemon>) {
    let _guard = d.addons.lock.lock().await;
    let d2 = d.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let keys: Vec<String> = d2.addons.servers.lock().unwrap().keys().cloned().collect();
        for k in keys {
            stop_server(&d2, &k);
        }
        let _ = std::fs::remove_dir(d2.paths.addons_mount());
    })
    .await;
}

/// Removes an add-on's database (its role too) or its Redis server and data; blocking.
fn remove_data(d: &Arc<Daemon>, a: &AddonRow) -> Result<()> {
    if !has_server(a) {
        // The scheduler's data is its jobs.
        d.store.delete_jobs(&a.app_id)?;
        return Ok(());
    }
    let l = launch(d)?;
    if is_postgres(a) {
        let c = postgres::Cluster::new(&l);
        if c.exists() {
            ensure_server(d, a)?;
            c.drop_database(&a.database, &postgres::role_of(&a.database))?;
        }
    } else {
        let s = redis::Server::new(&l, &a.name);
        stop_server(d, &key(a));
        if let Some(pid) = s.running() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        s.remove();
    }
    Ok(())
}

// ---- provisioning and attachments ----

/// The attachment name of a new add-on of `svc` in `app`: `DATABASE`/`REDIS` for the first,
/// then `HEROKU_POSTGRESQL_<COLOR>` / `HEROKU_REDIS_<COLOR>`.
fn default_name(d: &Daemon, app: &AppRow, svc: &Service) -> Result<String> {
    let taken: Vec<String> = d
        .store
        .attachments(Some(&app.id), None)?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if !taken.iter().any(|t| t == svc.first_name) {
        return Ok(svc.first_name.to_string());
    }
    use rand::seq::SliceRandom;
    let mut colors = COLORS.to_vec();
    colors.shuffle(&mut rand::thread_rng());
    colors
        .into_iter()
        .map(|c| format!("{}_{c}", svc.color_prefix))
        .find(|n| !taken.contains(n))
        .context("no attachment name left")
}

fn check_name_free(d: &Daemon, app: &AppRow, name: &str) -> Result<(), Fail> {
    let vars = d.store.config_vars(&app.id)?;
    if d.store
        .attachments(Some(&app.id), None)?
        .iter()
        .any(|t| t.name == name)
        || vars.iter().any(|(k, _)| *k == format!("{name}_URL"))
    {
        return Err(invalid(format!(
            "{} already has {name}_URL: choose another name with --as",
            app.name
        )));
    }
    Ok(())
}

/// Records the release that attaches `addon` to `app` as `name` (config var `<name>_URL`).
fn attach_release(
    d: &Arc<Daemon>,
    app: &AppRow,
    addon: &AddonRow,
    name: &str,
) -> Result<(AttachmentRow, ReleaseRow), Fail> {
    let att = AttachmentRow {
        id: new_id(),
        addon_id: addon.id.clone(),
        app_id: app.id.clone(),
        name: name.to_string(),
        created_at: now(),
    };
    let value = has_server(addon).then(|| url(d, addon));
    let r = release::record_with(d, app, || -> Result<_, Fail> {
        let mut config = d.store.config_vars(&app.id)?;
        if let Some(value) = &value {
            config.retain(|(k, _)| *k != format!("{name}_URL"));
            config.push((format!("{name}_URL"), value.clone()));
            config.sort();
        }
        Ok(NewRelease {
            slug_id: d.store.current_release(&app.id)?.and_then(|r| r.slug_id),
            config,
            description: format!("Attach {name} (@ref:{})", addon.name),
            set_config: true,
            addon_op: Some(AddonOp::Attach(att.clone())),
        })
    })?;
    super::api::releases::spawn_activate(d, app, r.clone());
    Ok((att, r))
}

/// Records the release that detaches `att` (unsets its config var).
fn detach_release(
    d: &Arc<Daemon>,
    app: &AppRow,
    addon: &AddonRow,
    att: &AttachmentRow,
) -> Result<ReleaseRow, Fail> {
    let r = release::record_with(d, app, || -> Result<_, Fail> {
        let mut config = d.store.config_vars(&app.id)?;
        config.retain(|(k, _)| *k != format!("{}_URL", att.name));
        Ok(NewRelease {
            slug_id: d.store.current_release(&app.id)?.and_then(|r| r.slug_id),
            config,
            description: format!("Detach {} (@ref:{})", att.name, addon.name),
            set_config: true,
            addon_op: Some(AddonOp::Detach(att.id.clone())),
        })
    })?;
    super::api::releases::spawn_activate(d, app, r.clone());
    Ok(r)
}

fn unique_name(d: &Daemon, svc: &Service) -> Result<String> {
    loop {
        let n = crate::names::random();
        // `misty-meadow-12345` → `postgresql-misty-12345`, as Heroku names add-ons.
        let mut parts = n.split('-');
        let name = format!(
            "{}-{}-{}",
            svc.prefix,
            parts.next().unwrap_or("quiet"),
            parts.next_back().unwrap_or("00000")
        );
        if d.store.addon(&name)?.is_none() {
            return Ok(name);
        }
    }
}

fn server_failed(e: anyhow::Error) -> Fail {
    Fail(
        StatusCode::SERVICE_UNAVAILABLE,
        "addon_failed",
        format!("{e:#}"),
    )
}

/// `addons:create`: the add-on, its database or server, and the release attaching it.
pub async fn create(
    d: &Arc<Daemon>,
    app: &AppRow,
    plan: &str,
    as_name: Option<String>,
) -> Result<(AddonRow, ReleaseRow), Fail> {
    let (svc, plan) = crate::api::addons::parse_plan(plan).map_err(invalid)?;
    let _guard = d.addons.lock.lock().await;
    if !svc.server {
        if let Some(a) = d
            .store
            .addons()?
            .into_iter()
            .find(|a| a.app_id == app.id && a.service == svc.name)
        {
            return Err(invalid(format!(
                "{} already has {} ({})",
                app.name, svc.name, a.name
            )));
        }
    }
    let name = match as_name {
        Some(n) => crate::api::addons::validate_attachment_name(&n).map_err(invalid)?,
        None => default_name(d, app, svc)?,
    };
    check_name_free(d, app, &name)?;
    let pg = svc.name == "heroku-postgresql";
    let t = now();
    let row = AddonRow {
        id: new_id(),
        name: unique_name(d, svc)?,
        app_id: app.id.clone(),
        service: svc.name.to_string(),
        plan,
        state: "provisioning".into(),
        port: 0,
        password: addons::random_token(32),
        database: if pg {
            format!("d{}", addons::random_token(13))
        } else {
            String::new()
        },
        created_at: t.clone(),
        updated_at: t,
    };
    if !svc.server {
        // Nothing to run: the record, then the release attaching it.
        d.store.insert_addon(&row)?;
        return match attach_release(d, app, &row, &name) {
            Ok((_, r)) => Ok((d.store.addon(&row.id)?.unwrap_or(row), r)),
            Err(e) => {
                let _ = d.store.delete_addon(&row.id);
                Err(e)
            }
        };
    }
    // The port: the cluster's (created with the first database), or a new server's own.
    let d2 = d.clone();
    let mut row = row;
    let prepared = {
        let mut r = row.clone();
        tokio::task::spawn_blocking(move || -> Result<AddonRow> {
            let l = launch(&d2)?;
            if pg {
                addons::pg_bin("postgres")?;
                addons::pg_bin("initdb")?;
                let c = postgres::Cluster::new(&l);
                r.port = if c.exists() {
                    c.port()?
                } else {
                    addons::free_port(d2.runtime.services_addr())?
                };
            } else {
                addons::redis_bin("redis-server")?;
                r.port = addons::free_port(d2.runtime.services_addr())?;
            }
            Ok(r)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    };
    row = prepared.map_err(server_failed)?;
    d.store.insert_addon(&row)?;
    let d2 = d.clone();
    let r2 = row.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<()> {
        let l = launch(&d2)?;
        if pg {
            if !postgres::Cluster::new(&l).exists() {
                postgres::Cluster::new(&l).init(r2.port)?;
            }
            ensure_server(&d2, &r2)?;
            postgres::Cluster::new(&l).create_database(
                &r2.database,
                &postgres::role_of(&r2.database),
                &r2.password,
            )?;
        } else {
            redis::Server::new(&l, &r2.name).create(r2.port, &r2.password)?;
            ensure_server(&d2, &r2)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let undo = |d: &Arc<Daemon>, row: &AddonRow| {
        let (d2, r2) = (d.clone(), row.clone());
        async move {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = remove_data(&d2, &r2) {
                    tracing::warn!(addon = %r2.name, "undoing: {e:#}");
                }
                let _ = d2.store.delete_addon(&r2.id);
            })
            .await;
        }
    };
    if let Err(e) = made {
        undo(d, &row).await;
        return Err(server_failed(e));
    }
    match attach_release(d, app, &row, &name) {
        Ok((_, r)) => {
            let row = d.store.addon(&row.id)?.unwrap_or(row);
            Ok((row, r))
        }
        Err(e) => {
            undo(d, &row).await;
            Err(e)
        }
    }
}

/// `addons:attach`: a release of `app` with the add-on's config var.
pub async fn attach(
    d: &Arc<Daemon>,
    app: &AppRow,
    addon: &AddonRow,
    as_name: Option<String>,
) -> Result<AttachmentRow, Fail> {
    let _guard = d.addons.lock.lock().await;
    let svc = service(&addon.service).context("unknown service")?;
    if !svc.server {
        return Err(invalid(format!(
            "{} runs {}'s own jobs: it cannot be attached to another app (create a scheduler there)",
            addon.name,
            d.store.app(&addon.app_id)?.map(|a| a.name).unwrap_or_default()
        )));
    }
    let name = match as_name {
        Some(n) => crate::api::addons::validate_attachment_name(&n).map_err(invalid)?,
        None => default_name(d, app, svc)?,
    };
    check_name_free(d, app, &name)?;
    Ok(attach_release(d, app, addon, &name)?.0)
}

/// `addons:detach`: a release of `app` without the config var. The last attachment of an
/// add-on cannot go (destroy the add-on instead).
pub async fn detach(
    d: &Arc<Daemon>,
    app: &AppRow,
    key: &str,
) -> Result<(AttachmentRow, AddonRow), Fail> {
    let _guard = d.addons.lock.lock().await;
    let att = d
        .store
        .attachments(Some(&app.id), None)?
        .into_iter()
        .find(|t| t.name == key.to_ascii_uppercase() || t.id == key)
        .ok_or_else(|| {
            not_found_msg(format!(
                "Couldn't find an attachment {key} on {}.",
                app.name
            ))
        })?;
    let addon = d
        .store
        .addon(&att.addon_id)?
        .ok_or_else(|| not_found_msg("Couldn't find that add-on.".into()))?;
    if d.store.attachments(None, Some(&addon.id))?.len() == 1 {
        return Err(invalid(format!(
            "{} is the last attachment of {}: destroy the add-on instead (dyno addons:destroy {} -a {})",
            att.name, addon.name, addon.name, app.name
        )));
    }
    detach_release(d, app, &addon, &att)?;
    Ok((att, addon))
}

/// `addons:destroy`: detached everywhere (a release per app, except `dying`, an app being
/// destroyed), then its database or server and data removed, then its record. Another app's
/// attachment stops it unless `force`.
pub async fn destroy(
    d: &Arc<Daemon>,
    addon: &AddonRow,
    force: bool,
    dying: Option<&str>,
) -> Result<(), Fail> {
    let _guard = d.addons.lock.lock().await;
    let atts = d.store.attachments(None, Some(&addon.id))?;
    let mut others = vec![];
    for t in &atts {
        if t.app_id != addon.app_id {
            if let Some(a) = d.store.app(&t.app_id)? {
                others.push(a.name);
            }
        }
    }
    if !others.is_empty() && !force {
        return Err(invalid(format!(
            "{} is also attached to {}: detach it there first, or use --force",
            addon.name,
            others.join(", ")
        )));
    }
    for t in &atts {
        if Some(t.app_id.as_str()) == dying {
            continue;
        }
        if let Some(app) = d.store.app(&t.app_id)? {
            detach_release(d, &app, addon, t)?;
        }
    }
    let (d2, a2) = (d.clone(), addon.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        remove_data(&d2, &a2)?;
        d2.store.delete_addon(&a2.id)?;
        // The cluster stops with its last database (its data stays for the next one).
        if is_postgres(&a2) && !d2.store.addons()?.iter().any(is_postgres) {
            stop_server(&d2, postgres::KEY);
        }
        Ok(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))??;
    Ok(())
}

/// `apps:destroy`: the app's own add-ons go (detached from other apps first); its attachments
/// to other apps' add-ons go with the app's records.
pub async fn destroy_app_addons(d: &Arc<Daemon>, app: &AppRow) -> Result<(), Fail> {
    for a in d.store.addons()? {
        if a.app_id == app.id {
            destroy(d, &a, true, Some(&app.id)).await?;
        }
    }
    Ok(())
}
