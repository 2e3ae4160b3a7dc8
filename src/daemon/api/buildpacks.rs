//! The app's buildpacks (`crate::api::buildpacks`): read and replace the list.

use super::find_app;
use crate::api::{self, buildpacks};
use crate::daemon::api_server::{invalid, Fail, Route};
use crate::daemon::Daemon;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(list), Route::json(update)]
}

async fn list(
    d: Arc<Daemon>,
    e: buildpacks::List,
) -> Result<Vec<api::BuildpackInstallation>, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(installations(&d.store.app_buildpacks(&a.id)?))
}

async fn update(
    d: Arc<Daemon>,
    e: buildpacks::Update,
) -> Result<Vec<api::BuildpackInstallation>, Fail> {
    let a = find_app(&d, &e.app)?;
    let urls: Vec<String> = e
        .body
        .updates
        .into_iter()
        .map(|u| u.buildpack.trim().to_string())
        .collect();
    for u in &urls {
        crate::build::buildpacks::parse(u).map_err(|e| invalid(format!("{e:#}")))?;
    }
    d.store.set_app_buildpacks(&a.id, &urls)?;
    Ok(installations(&urls))
}

fn installations(urls: &[String]) -> Vec<api::BuildpackInstallation> {
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
