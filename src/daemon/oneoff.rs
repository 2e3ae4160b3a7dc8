//! One-off dynos: a command run once in a fresh dyno of a release, outside the formation.
//!
//! Two uses today: the release phase (`release.N`, run by `release.rs` before a release goes
//! live) and `dyno run:detached` (`run.N`, output in the log stream). They are listed by
//! `dyno ps`, reconcile never stops them, and their exit is no crash: `State changed from up to
//! complete`. [`start`] returns a [`OneOff`] whose [`OneOff::wait`] yields the exit status and
//! what the dyno wrote; an attached `dyno run` can build on the same two calls.

use super::manager::{self, DynoEntry, OneOffExit};
use super::Daemon;
use crate::store::{AppRow, ReleaseRow};
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use tokio::sync::watch;

/// What to run.
#[derive(Debug, Clone)]
pub struct OneOffSpec {
    /// `run` (Heroku's one-off dynos) or `release` (the release phase).
    pub process_type: String,
    /// Run with `bash -c` after `.profile.d` is sourced, as Procfile commands are.
    pub command: String,
    /// Extra environment over the release's config vars (`run -e K=V`).
    pub env: Vec<(String, String)>,
}

/// A started one-off dyno.
pub struct OneOff {
    pub dyno: DynoEntry,
    exit: watch::Receiver<Option<OneOffExit>>,
}

impl OneOff {
    /// Resolves once the dyno has exited and its output has been taken in.
    pub async fn wait(&mut self) -> OneOffExit {
        match self.exit.wait_for(Option::is_some).await {
            Ok(v) => v.clone().expect("checked by wait_for"),
            // The sender went away without a report: the daemon is shutting down.
            Err(_) => OneOffExit {
                status: crate::runtime::SHIM_LOST_STATUS,
                output: String::new(),
            },
        }
    }
}

/// Starts `spec` in a one-off dyno of `release` (which must have a slug), named
/// `<type>.<4 random digits>` as Heroku names them (`run.4821`).
pub async fn start(
    d: &Arc<Daemon>,
    app: &AppRow,
    release: &ReleaseRow,
    spec: OneOffSpec,
) -> Result<OneOff> {
    if !manager::is_one_off_type(&spec.process_type) {
        bail!("{:?} is no one-off process type", spec.process_type);
    }
    if spec.command.trim().is_empty() {
        bail!("no command to run");
    }
    let slug_id = release
        .slug_id
        .as_deref()
        .context("this release has no slug: deploy the app first")?;
    let slug = d
        .store
        .slug(slug_id)?
        .context("the release's slug is gone")?;
    let name = loop {
        let n: u16 = 1000 + rand::random::<u16>() % 9000;
        let name = format!("{}.{n}", spec.process_type);
        if d.manager.find(&app.id, &name).is_none() {
            break name;
        }
    };
    let (dyno, exit) = manager::launch(
        d,
        &app.name,
        release,
        &slug,
        &spec.process_type,
        &name,
        &spec.command,
        None,
        &spec.env,
    )
    .await?;
    let exit = exit.context("a one-off dyno has an exit channel")?;
    Ok(OneOff { dyno, exit })
}
