//! Log drains (`crate::api::drains`); the running drains are kept by `daemon::routing`.

use super::find_app;
use crate::api::{self, drains};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::{routing, Daemon};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(list), Route::json(create), Route::json(delete)]
}

async fn list(d: Arc<Daemon>, e: drains::List) -> Result<Vec<api::LogDrain>, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::drains(&d, &a)?)
}

async fn create(d: Arc<Daemon>, e: drains::Create) -> Result<api::LogDrain, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::add_drain(&d, &a, &e.body.url)?)
}

async fn delete(d: Arc<Daemon>, e: drains::Delete) -> Result<api::LogDrain, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::remove_drain(&d, &a, &e.drain)?)
}
