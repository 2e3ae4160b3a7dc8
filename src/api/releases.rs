//! Releases: `GET/POST /apps/{app}/releases` (list, rollback), one release, its config vars and
//! its release phase output.

use super::{endpoint, ConfigVars, IdName, Owner, Text};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRef {
    pub id: String,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlugRef {
    pub id: String,
}

/// Heroku's release resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    pub id: String,
    pub app: IdName,
    pub version: u32,
    pub description: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub current: bool,
    pub slug: Option<SlugRef>,
    pub user: Owner,
    pub addon_plan_names: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Where the release phase's output can be read (absent without a release phase).
    #[serde(default)]
    pub output_stream_url: Option<String>,
    /// Whether `releases:rollback` may go back to it: succeeded, with a slug (the Heroku CLI
    /// rolls back to the second of these).
    #[serde(default)]
    pub eligible_for_rollback: bool,
}

/// `POST /apps/{app}/releases`: roll back to this release (id or version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseCreate {
    pub release: String,
}

endpoint! {
    /// `GET /apps/{app}/releases`, oldest first.
    List { app } => GET ["apps", app, "releases"] -> Vec<Release>;
    /// `GET /apps/{app}/releases/{release}` (`v3`, `3` or an id).
    Info { app, release } => GET ["apps", app, "releases", release] -> Release;
    /// `GET /apps/{app}/releases/{release}/config-vars`: the release's config snapshot.
    ConfigVarsOf { app, release } => GET ["apps", app, "releases", release, "config-vars"] -> ConfigVars;
    /// `GET /apps/{app}/releases/{release}/output`: the release phase's output (a release's
    /// `output_stream_url`).
    Output { app, release } => GET ["apps", app, "releases", release, "output"] -> Text;
    /// `POST /apps/{app}/releases {release}`: roll back to an earlier succeeded release.
    Rollback { app } + body: ReleaseCreate => POST ["apps", app, "releases"] -> Release, CREATED;
}
