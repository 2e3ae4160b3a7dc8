//! A release going live, whatever made it (a deploy, a config change, a rollback).
//!
//! [`record`] appends it to the ledger (`pending` when its slug has a `release:` process type,
//! else `succeeded`); [`activate`] runs that release phase in a one-off dyno `release.N` of the
//! new release, marks it `succeeded` or `failed` (the only change a release ever sees), and when
//! it succeeded lets the manager replace the app's dynos. A failed release phase leaves the
//! current release running. Activations of one app run one at a time, in order.

use super::oneoff::{self, OneOffSpec};
use super::{manager, Daemon};
use crate::build::BuildOutput;
use crate::store::{AppRow, ReleaseRow};
use anyhow::{Context, Result};
use std::sync::Arc;

/// What a new release is made of.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub slug_id: Option<String>,
    pub config: Vec<(String, String)>,
    /// `Deploy 1a2b3c4`, `Set FOO, BAR config vars`, `Rollback to v3`.
    pub description: String,
    /// Whether `config` also becomes the app's config vars (config changes, rollbacks), in the
    /// same transaction as the release.
    pub set_config: bool,
    /// An add-on attached or detached in the same transaction (needs `set_config`).
    pub addon_op: Option<crate::store::AddonOp>,
}

/// The release phase's command of a slug, if its Procfile has one.
fn release_command(d: &Daemon, slug_id: Option<&str>) -> Result<Option<String>> {
    let Some(id) = slug_id else { return Ok(None) };
    let slug = d.store.slug(id)?.context("the release's slug is gone")?;
    Ok(slug
        .process_types
        .into_iter()
        .find(|(t, _)| t == "release")
        .map(|(_, c)| c))
}

/// Serializes read-modify-write of an app's config with the release recording it.
static RECORDING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Like [`record`], with the release computed from the store while no other release can be
/// recorded (two concurrent `config:set` never lose each other's change).
pub fn record_with<E: From<anyhow::Error>>(
    d: &Daemon,
    app: &AppRow,
    f: impl FnOnce() -> std::result::Result<NewRelease, E>,
) -> std::result::Result<ReleaseRow, E> {
    let _guard = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
    let new = f()?;
    Ok(record_locked(d, app, &new)?)
}

/// Appends the release to the ledger and logs it (`Release v5 created by user`).
pub fn record(d: &Daemon, app: &AppRow, new: &NewRelease) -> Result<ReleaseRow> {
    let _guard = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
    record_locked(d, app, new)
}

fn record_locked(d: &Daemon, app: &AppRow, new: &NewRelease) -> Result<ReleaseRow> {
    let status = match release_command(d, new.slug_id.as_deref())? {
        Some(_) => "pending",
        None => "succeeded",
    };
    let release = if new.set_config {
        d.store.create_release_with_config(
            &app.id,
            new.slug_id.as_deref(),
            &new.config,
            &new.description,
            status,
            new.addon_op.as_ref(),
        )?
    } else {
        d.store.create_release(
            &app.id,
            new.slug_id.as_deref(),
            &new.config,
            &new.description,
            status,
        )?
    };
    d.api_log(
        &app.name,
        format!("Release v{} created by user", release.version),
    );
    d.api_log(&app.name, format!("{} by user", new.description));
    Ok(release)
}

/// Runs the release phase of a `pending` release and makes a succeeded release live. Returns the
/// release as it ends up. `out` gets the phase's output too (a deploy's build output).
pub async fn activate(
    d: &Arc<Daemon>,
    app: &AppRow,
    release: ReleaseRow,
    out: Option<&BuildOutput>,
) -> Result<ReleaseRow> {
    let lock = d.manager.release_lock(&app.id);
    let _guard = lock.lock().await;
    let v = release.version;
    if release.status == "pending" {
        let ok = match release_command(d, release.slug_id.as_deref())? {
            Some(command) => run_phase(d, app, &release, command, out).await,
            None => true,
        };
        let status = if ok { "succeeded" } else { "failed" };
        d.store.set_release_status(&release.id, status)?;
        if !ok {
            d.api_log(&app.name, format!("Release v{v} command failed by user"));
            if let Some(out) = out {
                out.line(format!(
                    " !     Release command failed: v{v} is marked failed, the current release keeps running"
                ));
            }
        }
    }
    let release = d
        .store
        .release(&app.id, &release.id)?
        .context("the release is gone")?;
    if release.status == "succeeded" {
        go_live(d, app, &release)?;
    }
    Ok(release)
}

/// Records and activates in one go.
pub async fn create(
    d: &Arc<Daemon>,
    app: &AppRow,
    new: NewRelease,
    out: Option<&BuildOutput>,
) -> Result<ReleaseRow> {
    let release = record(d, app, &new)?;
    activate(d, app, release, out).await
}

/// The new release's process types become the formation's (if it is the current release: an
/// older one finishing late changes nothing) and the manager replaces the dynos.
fn go_live(d: &Arc<Daemon>, app: &AppRow, release: &ReleaseRow) -> Result<()> {
    let current = d.store.current_release(&app.id)?;
    if current.as_ref().map(|c| &c.id) != Some(&release.id) {
        return Ok(());
    }
    if let Some(slug) = match &release.slug_id {
        Some(id) => d.store.slug(id)?,
        None => None,
    } {
        d.store.sync_formation(&app.id, &slug.process_types)?;
    }
    manager::reset_backoff(d, &app.id);
    manager::kick(d, &app.id);
    Ok(())
}

/// The release phase: the command in a one-off dyno of the new release; true on exit 0.
async fn run_phase(
    d: &Arc<Daemon>,
    app: &AppRow,
    release: &ReleaseRow,
    command: String,
    out: Option<&BuildOutput>,
) -> bool {
    let v = release.version;
    d.api_log(&app.name, format!("Running release v{v} commands by user"));
    if let Some(out) = out {
        out.heading(&format!("Running release command `{command}`..."));
    }
    let spec = OneOffSpec {
        process_type: "release".into(),
        command,
        env: vec![],
    };
    let (status, output) = match oneoff::start(d, app, release, spec).await {
        Ok(mut o) => {
            let exit = o.wait().await;
            (exit.status, exit.output)
        }
        Err(e) => {
            tracing::warn!(app = %app.name, "release phase of v{v}: {e:#}");
            (-1, format!("Error starting the release command: {e:#}\n"))
        }
    };
    if let Err(e) = d.store.set_release_output(&release.id, &output) {
        tracing::warn!("recording the release output of v{v}: {e:#}");
    }
    if let Some(out) = out {
        for l in output.lines() {
            out.line(format!("       {l}"));
        }
    }
    status == 0
}

/// At daemon start: a release still `pending` lost its release phase with the previous daemon;
/// it is marked failed (the ledger never holds a release half-done).
pub fn fail_interrupted(d: &Daemon) -> Result<()> {
    for (id, app_id, version) in d.store.pending_releases()? {
        d.store.set_release_status(&id, "failed")?;
        tracing::warn!(app = %app_id, "release v{version} was interrupted: marked failed");
        if let Some(app) = d.store.app(&app_id)? {
            d.api_log(
                &app.name,
                format!(
                    "Release v{version} command failed by user (interrupted by a daemon restart)"
                ),
            );
        }
    }
    Ok(())
}
