//! The app's buildpacks: `GET/PUT /apps/{app}/buildpack-installations`.

use super::endpoint;
use serde::{Deserialize, Serialize};

/// Heroku's buildpack-installation resource (`GET /apps/{app}/buildpack-installations`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildpackInstallation {
    pub ordinal: u32,
    pub buildpack: BuildpackRef,
}

/// `PUT /apps/{app}/buildpack-installations`: replaces the app's whole list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildpackInstallationsUpdate {
    pub updates: Vec<BuildpackUpdate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildpackUpdate {
    /// A shipped buildpack's name, a directory or a git URL (`#ref` allowed).
    pub buildpack: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildpackRef {
    pub url: String,
    pub name: String,
}

endpoint! {
    /// `GET /apps/{app}/buildpack-installations`, in order.
    List { app } => GET ["apps", app, "buildpack-installations"] -> Vec<BuildpackInstallation>;
    /// `PUT /apps/{app}/buildpack-installations`: the whole new list.
    Update { app } + body: BuildpackInstallationsUpdate
        => PUT ["apps", app, "buildpack-installations"] -> Vec<BuildpackInstallation>
        where unix_only = host_paths_of_update;
}

/// A buildpack that is a directory or a `file://` URL names a host path (as
/// `build::buildpacks::parse` reads them); shipped names and network URLs do not.
pub fn is_host_path(buildpack: &str) -> bool {
    let b = buildpack.trim();
    b.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("file://"))
        || b.starts_with('/')
        || b.starts_with("./")
        || b.starts_with("../")
}

fn host_paths_of_update(e: &Update) -> Option<&'static str> {
    e.body
        .updates
        .iter()
        .any(|u| is_host_path(&u.buildpack))
        .then_some("a directory or file:// buildpack")
}
