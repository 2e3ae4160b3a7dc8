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
        => PUT ["apps", app, "buildpack-installations"] -> Vec<BuildpackInstallation>;
}
