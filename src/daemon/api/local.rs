//! Local settings (`crate::api::local`): which app a source directory deploys to.

use super::find_app;
use crate::api::{self, local};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::Daemon;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(get_dir), Route::json(set_dir)]
}

async fn get_dir(d: Arc<Daemon>, e: local::GetDir) -> Result<api::DirApp, Fail> {
    let app = d.store.dir_app(&e.dir)?;
    Ok(api::DirApp { dir: e.dir, app })
}

async fn set_dir(d: Arc<Daemon>, e: local::SetDir) -> Result<api::DirApp, Fail> {
    let b = e.body;
    let a = find_app(&d, b.app.as_deref().unwrap_or(""))?;
    d.store.set_dir_app(&b.dir, &a.id)?;
    Ok(api::DirApp {
        dir: b.dir,
        app: Some(a.name),
    })
}
