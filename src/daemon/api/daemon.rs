//! The daemon itself (`crate::api::daemon`): status, settings, stop.

use crate::api::{self, daemon};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::Daemon;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(status),
        Route::json(settings),
        Route::json(gc),
        Route::json(stop),
    ]
}

async fn status(d: Arc<Daemon>, _: daemon::Status) -> Result<api::DaemonStatus, Fail> {
    Ok(api::DaemonStatus {
        version: api::VERSION.into(),
        pid: std::process::id(),
        home: d.paths.home.to_string_lossy().into(),
        instance: d.paths.instance.clone(),
        router_addr: d.router_addr.map(|a| a.to_string()).unwrap_or_default(),
    })
}

async fn settings(
    d: Arc<Daemon>,
    _: daemon::Settings,
) -> Result<Vec<crate::settings::Resolved>, Fail> {
    Ok(d.settings.resolved.clone())
}

async fn gc(d: Arc<Daemon>, e: daemon::Gc) -> Result<api::GcReport, Fail> {
    Ok(crate::daemon::gc::collect(&d, e.body.dry_run)?)
}

async fn stop(d: Arc<Daemon>, e: daemon::Stop) -> Result<api::DaemonStopping, Fail> {
    d.begin_shutdown(e.body.keep_dynos);
    Ok(api::DaemonStopping {
        keep_dynos: e.body.keep_dynos,
        stopping: true,
    })
}
