//! Custom domains (`crate::api::domains`); the router's domain map is kept by
//! `daemon::routing`.

use super::find_app;
use crate::api::{self, domains};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::{routing, Daemon};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(create),
        Route::json(delete),
        Route::json(sni_endpoints),
    ]
}

async fn sni_endpoints(
    d: Arc<Daemon>,
    e: domains::SniEndpoints,
) -> Result<Vec<domains::SniEndpoint>, Fail> {
    find_app(&d, &e.app)?;
    Ok(vec![])
}

async fn list(d: Arc<Daemon>, e: domains::List) -> Result<Vec<api::Domain>, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::domains(&d, &a)?)
}

async fn create(d: Arc<Daemon>, e: domains::Create) -> Result<api::Domain, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::add_domain(&d, &a, &e.body.hostname)?)
}

async fn delete(d: Arc<Daemon>, e: domains::Delete) -> Result<api::Domain, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(routing::remove_domain(&d, &a, &e.domain)?)
}
