//! Releases (`crate::api::releases`): list, one release, its config vars and release phase
//! output, rollback; and activating a recorded release in the background (config changes too).

use super::{app_ref, find_app, owner};
use crate::api::{self, releases, Endpoint};
use crate::daemon::api_server::{invalid, not_found, not_found_msg, Fail, Route};
use crate::daemon::{release, Daemon};
use crate::store::{AppRow, ReleaseRow};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(info),
        Route::json(config_vars),
        Route::stream(output),
        Route::json(rollback),
    ]
}

async fn list(d: Arc<Daemon>, e: releases::List) -> Result<Vec<api::Release>, Fail> {
    let a = find_app(&d, &e.app)?;
    releases_json(&d, &a)
}

async fn info(d: Arc<Daemon>, e: releases::Info) -> Result<api::Release, Fail> {
    let a = find_app(&d, &e.app)?;
    let r = find_release(&d, &a, &e.release)?;
    release_json(&d, &a, &r.id)
}

async fn config_vars(d: Arc<Daemon>, e: releases::ConfigVarsOf) -> Result<api::ConfigVars, Fail> {
    let a = find_app(&d, &e.app)?;
    let r = find_release(&d, &a, &e.release)?;
    Ok(r.config.into_iter().collect())
}

async fn output(d: Arc<Daemon>, e: releases::Output) -> Result<mpsc::Receiver<Bytes>, Fail> {
    let a = find_app(&d, &e.app)?;
    let r = find_release(&d, &a, &e.release)?;
    let out = d
        .store
        .release_output(&r.id)?
        .ok_or_else(|| not_found_msg(format!("Release v{} has no release output.", r.version)))?;
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(out));
    Ok(rx)
}

/// `POST /apps/{app}/releases {release}`: a new release with the slug and config of an earlier
/// succeeded one (its config vars become the app's again).
async fn rollback(d: Arc<Daemon>, e: releases::Rollback) -> Result<api::Release, Fail> {
    let a = find_app(&d, &e.app)?;
    let target = find_release(&d, &a, &e.body.release)?;
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
    // Garbage collection keeps the slugs of the last releases only: say so rather than record a
    // release no dyno could start.
    let slug = target
        .slug_id
        .as_deref()
        .map(|id| d.store.slug(id))
        .transpose()?
        .flatten();
    if let Some(s) = slug.filter(|s| !crate::daemon::gc::slug_present(&d, &s.checksum)) {
        let rebuild = match &s.source_version {
            Some(c) => format!(
                "check out {} and run `dyno up` (or push it)",
                &c[..c.len().min(12)]
            ),
            None => "deploy that source again with `dyno up`".to_string(),
        };
        return Err(invalid(format!(
            "v{}'s slug was removed by garbage collection (the slugs of each app's last {} \
             releases are kept; DYNO_KEEP_RELEASES): nothing was changed. To run that code again, {rebuild}",
            target.version, d.settings.keep_releases
        )));
    }
    let new = release::NewRelease {
        slug_id: target.slug_id.clone(),
        config: target.config.clone(),
        description: format!("Rollback to v{}", target.version),
        set_config: true,
        addon_op: None,
    };
    let r = release::record(&d, &a, &new)?;
    spawn_activate(&d, &a, r.clone());
    release_json(&d, &a, &r.id)
}

/// Activates a recorded release (release phase, then the dynos) in the background.
pub fn spawn_activate(d: &Arc<Daemon>, a: &AppRow, r: ReleaseRow) {
    let (d, a) = (d.clone(), a.clone());
    tokio::spawn(async move {
        if let Err(e) = release::activate(&d, &a, r, None).await {
            tracing::warn!(app = %a.name, "activating a release: {e:#}");
        }
    });
}

fn find_release(d: &Daemon, a: &AppRow, key: &str) -> Result<ReleaseRow, Fail> {
    d.store
        .release(&a.id, key)?
        .ok_or_else(|| not_found_msg(format!("Couldn't find release {key} of {}.", a.name)))
}

fn release_json(d: &Daemon, a: &AppRow, id: &str) -> Result<api::Release, Fail> {
    releases_json(d, a)?
        .into_iter()
        .find(|x| x.id == id)
        .ok_or_else(|| not_found("release"))
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
            output_stream_url: d.store.release_output(&r.id).ok().flatten().map(|_| {
                releases::Output {
                    app: a.id.clone(),
                    release: r.id.clone(),
                }
                .path()
            }),
            id: r.id,
            app: app_ref(a),
            version: r.version,
            description: r.description,
            status: r.status,
            slug: r.slug_id.map(|id| api::SlugRef { id }),
            user: owner(),
            addon_plan_names: r.addons,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}
