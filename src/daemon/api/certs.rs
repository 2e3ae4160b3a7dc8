//! Certificates (`crate::api::certs`): the HTTPS listener and the local CA.

use crate::api::{self, certs};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::{routing, Daemon};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(get)]
}

async fn get(d: Arc<Daemon>, _: certs::Get) -> Result<api::Certs, Fail> {
    Ok(routing::certs(&d))
}
