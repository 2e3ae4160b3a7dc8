//! Apps: `GET/POST /apps`, `GET/PATCH/DELETE /apps/{app}`, and Heroku's app name rules.

use super::{endpoint, IdName, Owner};
use serde::{Deserialize, Serialize};

/// Heroku's app resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub released_at: Option<String>,
    pub web_url: String,
    pub git_url: Option<String>,
    pub stack: IdName,
    pub build_stack: IdName,
    pub region: IdName,
    pub owner: Owner,
    pub maintenance: bool,
    pub buildpack_provided_description: Option<String>,
    pub repo_size: Option<u64>,
    pub slug_size: Option<u64>,
    pub archived_at: Option<String>,
    pub acm: bool,
    pub internal_routing: Option<bool>,
    pub organization: Option<IdName>,
    pub space: Option<IdName>,
    pub team: Option<IdName>,
    /// dyno extension, filled in by `dyno apps:info` from [`Disk`]: bytes on disk for the app
    /// (its slugs still stored, its build cache and its git repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_usage: Option<u64>,
    /// `basic`: never `eco`, for which the Heroku CLI asks for quotas.
    #[serde(default)]
    pub process_tier: Option<String>,
    /// `complete` (Heroku: `creating` while an app is made).
    #[serde(default)]
    pub create_status: Option<String>,
    /// `cedar`: classic buildpacks and dynos (the Heroku CLI switches modes on `fir`).
    #[serde(default)]
    pub generation: Option<IdName>,
}

/// `POST /apps`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppCreate {
    pub name: Option<String>,
}

/// `PATCH /apps/{app}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppUpdate {
    pub name: Option<String>,
}

/// `GET /apps/{app}/disk-usage` (dyno extension): what the app holds on disk. Its own request,
/// because it walks trees: `GET /apps/{app}` is on every Heroku CLI command's path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppDisk {
    /// Slugs still stored, build cache and repository.
    pub bytes: u64,
    /// The git repository alone (Heroku's `repo_size`).
    pub repo_bytes: u64,
}

endpoint! {
    /// `GET /apps/{app}/disk-usage`.
    Disk { app } => GET ["apps", app, "disk-usage"] -> AppDisk;
    /// `GET /apps`: every app.
    List {} => GET ["apps"] -> Vec<App>;
    /// `POST /apps`: a new app (a random name without one).
    Create {} + body: AppCreate => POST ["apps"] -> App, CREATED;
    /// `GET /users/{user}/apps`: the apps of a user, `~` for oneself (`heroku apps`); there is
    /// one user.
    ListOfUser { user } => GET ["users", user, "apps"] -> Vec<App>;
    /// `GET /apps/{app}` (name or id).
    Info { app } => GET ["apps", app] -> App;
    /// `PATCH /apps/{app}`: rename.
    Update { app } + body: AppUpdate => PATCH ["apps", app] -> App;
    /// `DELETE /apps/{app}`: the app, its dynos, releases, repository and logs; answers once its
    /// dynos are gone.
    Destroy { app } => DELETE ["apps", app] -> App;
}

/// Heroku: starts with a letter, only lowercase letters, digits and dashes, 3 to 30 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if !(3..=30).contains(&name.len()) || !ok_chars || !starts || name.ends_with('-') {
        return Err(format!(
            "invalid app name {name:?}: use 3 to 30 lowercase letters, digits and dashes, starting with a letter and not ending with a dash"
        ));
    }
    Ok(())
}
