//! Idling (`crate::api::idling`): the setting; `daemon::idle` does the idling.

use super::find_app;
use crate::api::{self, idling};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::{routing, Daemon};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(get), Route::json(update)]
}

async fn get(d: Arc<Daemon>, e: idling::Get) -> Result<api::AppIdling, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::idling(&d, &a)?)
}

async fn update(d: Arc<Daemon>, e: idling::Update) -> Result<api::AppIdling, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::set_idling(&d, &a, e.body.enabled)?)
}
