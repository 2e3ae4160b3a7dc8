//! The daemon's handlers of the API, one module per topic of `crate::api` (the same names:
//! `api/formation.rs` holds the endpoints, `daemon/api/formation.rs` their handlers,
//! `cli/ps.rs` the commands). Each topic's `routes()` pairs its endpoints with their handlers;
//! `api_server` dispatches requests over [`routes`].

use super::api_server::{not_found, Fail, Route};
use super::Daemon;
use crate::api;
use crate::store::AppRow;

pub mod account;
pub mod addons;
pub mod apps;
pub mod buildpacks;
pub mod builds;
pub mod certs;
pub mod config;
pub mod daemon;
pub mod domains;
pub mod drains;
pub mod dynos;
pub mod formation;
pub mod idling;
pub mod local;
pub mod logs;
pub mod pg_backups;
pub mod releases;
pub mod scheduler;
pub mod slugs;

/// The route table: every endpoint the daemon answers.
pub fn routes() -> Vec<Route> {
    [
        daemon::routes(),
        account::routes(),
        apps::routes(),
        addons::routes(),
        pg_backups::routes(),
        scheduler::routes(),
        formation::routes(),
        dynos::routes(),
        releases::routes(),
        slugs::routes(),
        config::routes(),
        builds::routes(),
        buildpacks::routes(),
        logs::routes(),
        domains::routes(),
        drains::routes(),
        idling::routes(),
        certs::routes(),
        local::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The app a path names (by name or id).
pub fn find_app(d: &Daemon, key: &str) -> Result<AppRow, Fail> {
    d.store.app(key)?.ok_or_else(|| not_found("app"))
}

/// The one user of a local install.
pub fn owner() -> api::Owner {
    api::Owner {
        email: "user@localhost".into(),
        id: "00000000-0000-4000-8000-000000000000".into(),
    }
}

/// An app as resources refer to it.
pub fn app_ref(a: &AppRow) -> api::IdName {
    api::IdName {
        id: a.id.clone(),
        name: a.name.clone(),
    }
}
