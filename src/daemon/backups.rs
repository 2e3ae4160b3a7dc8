//! Postgres backups (`pg:backups:*`): `pg_dump -Fc` of an add-on's database into
//! `DYNO_HOME/backups/<app id>/b001.dump` (root's, 0600 in a 0700 directory), described by
//! `b001.json` next to it; `pg_restore` of one back into a database, then the app's dynos
//! restart. The tools are Debian's, of the server's version (`addons::pg_bin`), run by the
//! daemon as root over the cluster's Unix socket with the add-on's own role and password, so a
//! backup holds exactly what the app itself can read.
//!
//! A capture is written to `b00N.dump.partial` and renamed once `pg_dump` succeeded, and its
//! description is written last: a failed or interrupted capture leaves no backup. A restore runs
//! in one transaction (`--single-transaction`): it changes everything or nothing.

use super::api_server::{invalid, not_found_msg, Fail};
use super::Daemon;
use crate::addons::{pg_bin, postgres};
use crate::store::{now, AddonRow, AppRow};
use anyhow::{bail, Context, Result};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

/// A backup's description (`b001.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupMeta {
    pub num: u32,
    pub from_name: String,
    pub from_attachment: String,
    pub size: u64,
    pub created_at: String,
    pub finished_at: String,
}

impl BackupMeta {
    pub fn id(&self) -> String {
        format!("b{:03}", self.num)
    }
}

/// Captures and restores of an app run one at a time (a restore must not read a dump being
/// written, two captures must not take the same number).
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn dir(d: &Daemon, app: &AppRow) -> PathBuf {
    d.paths.home.join("backups").join(&app.id)
}

fn dump_path(d: &Daemon, app: &AppRow, num: u32) -> PathBuf {
    dir(d, app).join(format!("b{num:03}.dump"))
}

/// The app's backups, oldest first.
pub fn list(d: &Daemon, app: &AppRow) -> Vec<BackupMeta> {
    let mut out: Vec<BackupMeta> = std::fs::read_dir(dir(d, app))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .filter(|m: &BackupMeta| dump_path(d, app, m.num).is_file())
        .collect();
    out.sort_by_key(|m| m.num);
    out
}

/// `b001` or `latest` → that backup, or a not-found naming what there is.
pub fn find(d: &Daemon, app: &AppRow, id: &str) -> Result<BackupMeta, Fail> {
    let all = list(d, app);
    let found = if id == "latest" {
        all.last().cloned()
    } else {
        all.iter().find(|m| m.id() == id).cloned()
    };
    found.ok_or_else(|| {
        let have: Vec<String> = all.iter().map(BackupMeta::id).collect();
        not_found_msg(if have.is_empty() {
            format!(
                "{} has no backups: capture one with dyno pg:backups:capture",
                app.name
            )
        } else {
            format!(
                "Couldn't find backup {id} of {}: it has {}",
                app.name,
                have.join(", ")
            )
        })
    })
}

/// The path of a backup's dump (for the download).
pub fn dump_of(d: &Daemon, app: &AppRow, m: &BackupMeta) -> PathBuf {
    dump_path(d, app, m.num)
}

/// Runs a Postgres client tool against `a`'s database as its own role, over the Unix socket.
fn pg_tool(d: &Daemon, tool: &str, a: &AddonRow) -> Result<std::process::Command> {
    let mut c = std::process::Command::new(pg_bin(tool)?);
    c.arg("-h")
        .arg(super::addons::socket(d, a))
        .arg("-p")
        .arg(a.port.to_string())
        .arg("-U")
        .arg(postgres::role_of(&a.database))
        .arg("-d")
        .arg(&a.database)
        .env("PGPASSWORD", &a.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", format!("dyno {tool}"));
    Ok(c)
}

fn failed(e: anyhow::Error) -> Fail {
    Fail(
        StatusCode::SERVICE_UNAVAILABLE,
        "backup_failed",
        format!("{e:#}"),
    )
}

fn check_postgres(a: &AddonRow) -> Result<(), Fail> {
    if a.service != "heroku-postgresql" {
        return Err(invalid(format!(
            "{} is a {} add-on: backups are of heroku-postgresql databases",
            a.name, a.service
        )));
    }
    Ok(())
}

/// `pg:backups:capture`: the next `b00N` of the app, from `addon` (attached as `attachment`).
pub async fn capture(
    d: &Arc<Daemon>,
    app: &AppRow,
    addon: &AddonRow,
    attachment: &str,
) -> Result<BackupMeta, Fail> {
    check_postgres(addon)?;
    let _guard = LOCK.lock().await;
    let (d2, app2, a2, att) = (
        d.clone(),
        app.clone(),
        addon.clone(),
        attachment.to_string(),
    );
    tokio::task::spawn_blocking(move || -> Result<BackupMeta> {
        let d = &d2;
        let dir = dir(d, &app2);
        std::fs::create_dir_all(&dir)?;
        // Both levels root's alone, whatever the umask.
        std::fs::set_permissions(
            dir.parent().unwrap(),
            std::fs::Permissions::from_mode(0o700),
        )?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let num = list(d, &app2).last().map_or(1, |m| m.num + 1);
        let dump = dump_path(d, &app2, num);
        let partial = dump.with_extension("dump.partial");
        let created_at = now();
        let out = pg_tool(d, "pg_dump", &a2)?
            .args(["-Fc", "--no-owner", "--no-privileges", "-f"])
            .arg(&partial)
            .output()
            .context("running pg_dump")?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "pg_dump of {} failed: {}",
                a2.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))?;
        let size = std::fs::metadata(&partial)?.len();
        std::fs::rename(&partial, &dump)?;
        let meta = BackupMeta {
            num,
            from_name: a2.name.clone(),
            from_attachment: att,
            size,
            created_at,
            finished_at: now(),
        };
        let json = dir.join(format!("{}.json", meta.id()));
        std::fs::write(&json, serde_json::to_vec_pretty(&meta)?)?;
        std::fs::set_permissions(&json, std::fs::Permissions::from_mode(0o600))?;
        Ok(meta)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .map_err(failed)
}

/// `pg:backups:restore`: the backup's contents replace `addon`'s (objects of the dump are
/// dropped and made again, in one transaction), then the app's dynos restart so none keeps a
/// connection or cache from before.
pub async fn restore(
    d: &Arc<Daemon>,
    app: &AppRow,
    m: &BackupMeta,
    addon: &AddonRow,
) -> Result<(), Fail> {
    check_postgres(addon)?;
    let _guard = LOCK.lock().await;
    let dump = dump_path(d, app, m.num);
    let (d2, a2) = (d.clone(), addon.clone());
    tokio::task::spawn_blocking(move || -> Result<()> {
        // A dyno holding a lock on a table the restore replaces would make it wait forever: it
        // gives up instead (in one transaction, so nothing changed) and says so.
        let out = pg_tool(&d2, "pg_restore", &a2)?
            .env("PGOPTIONS", "-c lock_timeout=60s")
            .args([
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
            ])
            .arg(&dump)
            .output()
            .context("running pg_restore")?;
        if !out.status.success() {
            bail!(
                "pg_restore into {} failed (nothing was changed): {}",
                a2.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .map_err(failed)?;
    d.logs.push(
        &app.name,
        crate::logs::LogLine::new(
            "app",
            "heroku-postgres",
            format!(
                "Restored backup {} into {} ({}); restarting all dynos",
                m.id(),
                addon.name,
                m.from_name
            ),
        ),
    );
    super::manager::stop_matching(d, &app.id, None, false);
    Ok(())
}

/// `apps:destroy`: the app's backups go with it; returns how many there were.
pub fn remove_app(d: &Daemon, app: &AppRow) -> usize {
    let n = list(d, app).len();
    let _ = std::fs::remove_dir_all(dir(d, app));
    n
}
