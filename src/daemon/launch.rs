//! The one place a dyno's id, environment, limits and spec are made, for every kind of dyno:
//! formation dynos and release-phase / detached one-offs (`manager::launch`) and attached
//! one-offs (`run::create`). Whatever limit a dyno gets (memory, pids, CPU, disk, the syscall
//! filter the shim always applies), every dyno gets; R14/R15 follow from the same quota
//! ([`watch_memory`], [`log_exit`]).

use super::Daemon;
use crate::api;
use crate::runtime::{DynoHandle, DynoSpec};
use crate::store::{ReleaseRow, SlugRow};
use anyhow::{Context, Result};

/// A dyno's default memory quota (`Settings::memory_quota`); the cgroup's hard limit is twice it
/// (Heroku's R15 line).
pub const MEMORY_QUOTA: u64 = 512 * 1024 * 1024;
pub const PIDS_LIMIT: i64 = 256;
/// Below the daemon's (and so the router's) default 1024, so a busy dyno cannot starve it.
pub const CPU_SHARES: u64 = 512;

/// What distinguishes one dyno from another of the same release.
pub struct Launch<'a> {
    pub app_name: &'a str,
    pub release: &'a ReleaseRow,
    pub slug: &'a SlugRow,
    /// `web`, `worker`, … or a one-off's `run` / `release`.
    pub ptype: &'a str,
    /// `web.1`, `run.1234`.
    pub name: &'a str,
    pub command: &'a str,
    pub port: Option<u16>,
    /// Comes last, over config vars and the platform's variables (`dyno run --env`).
    pub extra_env: &'a [(String, String)],
}

/// The spec of the dyno `l` describes: a fresh container id, the env (config vars, then `HOME`,
/// `PATH`, `DYNO`, `HEROKU_*`, `PORT`, then `extra_env`) and this daemon's limits.
pub fn dyno_spec(d: &Daemon, l: &Launch) -> Result<DynoSpec> {
    let sum = l.slug.checksum.trim_start_matches("SHA256:");
    let slug_dir = crate::build::unpack_slug(&d.paths.slugs(), sum)
        .with_context(|| format!("slug {sum} is missing"))?;
    let rand: u16 = rand::random();
    let n = l.name.rsplit('.').next().unwrap_or("0");
    let id = format!(
        "d{}-{}-{}-{}-{:04x}",
        d.paths.instance, l.app_name, l.ptype, n, rand
    );
    let mut env: Vec<(String, String)> = l.release.config.clone();
    let mut set = |k: &str, v: String| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v));
    };
    set("HOME", "/app".into());
    set("PATH", "/app/bin:/usr/local/bin:/usr/bin:/bin".into());
    set("DYNO", l.name.to_string());
    set("HEROKU_APP_ID", l.release.app_id.clone());
    set("HEROKU_APP_NAME", l.app_name.to_string());
    set("HEROKU_RELEASE_VERSION", format!("v{}", l.release.version));
    if let Some(c) = &l.slug.source_version {
        set("HEROKU_SLUG_COMMIT", c.clone());
    }
    if let Some(p) = l.port {
        set("PORT", p.to_string());
    }
    for (k, v) in l.extra_env {
        set(k, v.replace('\0', ""));
    }
    Ok(DynoSpec {
        id,
        app: l.app_name.to_string(),
        name: l.name.to_string(),
        command: l.command.to_string(),
        env,
        slug_dir,
        memory_limit: 2 * d.settings.memory_quota,
        pids_limit: PIDS_LIMIT,
        cpu_shares: CPU_SHARES,
        stop_timeout_secs: d.settings.stop_timeout.as_secs(),
        version: api::VERSION.to_string(),
        network: None,
        disk_limit: d.settings.disk_limit,
    })
}

/// Heroku's R14: above the quota the dyno keeps running (and may swap); the log says so.
pub fn check_memory(d: &Daemon, app: &str, dyno: &str, handle: &DynoHandle) {
    let Ok(stats) = d.runtime.stats(handle) else {
        return;
    };
    let quota = d.settings.memory_quota;
    if stats.memory_bytes <= quota {
        return;
    }
    d.logs.platform(
        app,
        dyno,
        format!(
            "Process running mem={}M({:.1}%)",
            stats.memory_bytes / (1024 * 1024),
            stats.memory_bytes as f64 * 100.0 / quota as f64
        ),
    );
    d.logs
        .platform(app, dyno, "Error R14 (Memory quota exceeded)");
}

/// Checks the dyno's memory every `memory_interval` (R14) until `exit` resolves; returns its
/// output.
pub async fn watch_memory<T>(
    d: &Daemon,
    app: impl Fn() -> Option<String>,
    dyno: &str,
    handle: &DynoHandle,
    exit: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(exit);
    let mut mem = tokio::time::interval(d.settings.memory_interval);
    mem.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    mem.tick().await;
    loop {
        tokio::select! {
            r = &mut exit => return r,
            _ = mem.tick() => {
                if let Some(app) = app() {
                    check_memory(d, &app, dyno, handle);
                }
            }
        }
    }
}

/// The platform's lines for a dyno that ended: R15 when the OOM killer fired, then its status.
pub fn log_exit(d: &Daemon, app: &str, dyno: &str, status: i32, oom_killed: bool) {
    if oom_killed {
        d.logs
            .platform(app, dyno, "Error R15 (Memory quota vastly exceeded)");
    }
    d.logs
        .platform(app, dyno, format!("Process exited with status {status}"));
}
