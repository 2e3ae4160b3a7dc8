//! The daemon's HTTP API, as typed structs shared by the CLI and the daemon.
//!
//! Resources and field names follow Heroku's Platform API v3 (apps, formation, releases, dynos,
//! builds); see shared/notes/heroku-behaviour.md. Everything here is plain data.

use serde::{Deserialize, Serialize};

/// Sent by both sides on every request/response so a mismatch is noticed.
pub const VERSION_HEADER: &str = "x-dyno-version";
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+", env!("DYNO_BUILD_ID"));

/// `{"id": "not_found", "message": "Couldn't find that app."}`, as Heroku answers errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdName {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Owner {
    pub email: String,
    pub id: String,
}

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

/// Heroku's formation resource: how many dynos of one process type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Formation {
    pub id: String,
    pub app: IdName,
    #[serde(rename = "type")]
    pub process_type: String,
    pub command: String,
    pub quantity: u32,
    pub size: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationBatchUpdate {
    pub updates: Vec<FormationUpdate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationUpdate {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: Option<i64>,
    /// The Heroku CLI sends `size`, the schema says `dyno_size`: both are accepted, neither used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseRef {
    pub id: String,
    pub version: u32,
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
}

/// `POST /apps/{app}/releases`: roll back to this release (id or version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseCreate {
    pub release: String,
}

/// `GET /apps/{app}/config-vars`: the whole map.
pub type ConfigVars = std::collections::BTreeMap<String, String>;
/// `PATCH /apps/{app}/config-vars`: `null` deletes a key.
pub type ConfigVarsUpdate = std::collections::BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlugRef {
    pub id: String,
}

/// Heroku's dyno resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dyno {
    pub id: String,
    pub app: IdName,
    pub name: String,
    #[serde(rename = "type")]
    pub process_type: String,
    pub command: String,
    /// `starting`, `up`, `crashed`, `down`.
    pub state: String,
    pub release: ReleaseRef,
    pub size: String,
    pub attach_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// dyno extension: the host port the dyno listens on (web dynos).
    pub port: Option<u16>,
}

/// `POST /apps/{app}/dynos`: a one-off dyno, with Heroku's fields. `attach: true` answers a
/// dyno whose `attach_url` (a path on the daemon's socket, see `crate::attach`) carries its stdio.
/// Like Heroku's CLI, `dyno run` sends `TERM`, `COLUMNS` and `LINES` in `env`; the daemon takes
/// `COLUMNS`/`LINES` as the pty's first window size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DynoCreate {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// No pty even when attached: plain stdin/stdout/stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_no_tty: Option<bool>,
    /// Accepted, not used: every dyno here has the same size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `run` (the default).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    /// Accepted, not enforced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<u64>,
}

/// `POST /apps/{app}/builds`. Heroku takes a source URL; dyno, running on the same machine,
/// takes the directory to build from, or (`git push`) a commit of the app's repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildCreate {
    #[serde(default)]
    pub source_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

/// A pushed commit of the app's bare repository, built from the pre-receive hook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitSource {
    pub commit: String,
    /// `GIT_QUARANTINE_PATH`: where git keeps the push's objects until the hook accepts it.
    #[serde(default)]
    pub quarantine: Option<String>,
}

/// Heroku's build resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub id: String,
    pub app: IdName,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub buildpacks: Vec<BuildpackRef>,
    pub output_stream_url: String,
    pub release: Option<ReleaseRef>,
    pub slug: Option<SlugRef>,
    pub source_blob: SourceBlob,
    pub created_at: String,
    pub updated_at: String,
    /// dyno extension: why a failed build failed.
    pub error: Option<String>,
    /// dyno extension: process types of the Procfile (and buildpack defaults), in order.
    pub process_types: Vec<String>,
    /// dyno extension: the compressed slug's size in bytes.
    #[serde(default)]
    pub slug_size: Option<u64>,
    /// dyno extension: the source had uncommitted changes.
    #[serde(default)]
    pub dirty: bool,
    /// dyno extension: what `bin/detect` called the app (`Python`).
    #[serde(default)]
    pub buildpack_description: Option<String>,
    /// dyno extension: add-on plans `bin/release` asked for (not provisioned).
    #[serde(default)]
    pub addons: Vec<String>,
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceBlob {
    pub url: String,
    pub version: Option<String>,
}

/// `POST /apps/{app}/log-sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogSessionCreate {
    pub lines: Option<usize>,
    pub tail: Option<bool>,
    pub dyno: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSession {
    pub id: String,
    pub logplex_url: String,
}

/// `GET /daemon` (dyno extension): who answers and where the router listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub version: String,
    pub pid: u32,
    pub home: String,
    pub instance: String,
    pub router_addr: String,
}

/// `POST /daemon/stop` (dyno extension).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DaemonStop {
    /// Leave the dynos running, to be re-adopted by the next daemon (upgrades).
    pub keep_dynos: bool,
}

/// `GET/PUT /local/dirs` (dyno extension): which app a source directory deploys to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirApp {
    pub dir: String,
    pub app: Option<String>,
}

/// Heroku's domain resource (`GET/POST/DELETE /apps/{app}/domains`). `kind` is `heroku` for
/// the app's own `<app>.localhost`, `custom` for the user's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub app: IdName,
    pub hostname: String,
    pub kind: String,
    /// Where the user points a CNAME (the app's own host name).
    pub cname: Option<String>,
    pub status: String,
    pub acm_status: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainCreate {
    pub hostname: String,
}

/// Heroku's log drain resource (`GET/POST/DELETE /apps/{app}/log-drains`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogDrain {
    pub id: String,
    pub url: String,
    pub token: String,
    pub addon: Option<IdName>,
    pub app: IdName,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogDrainCreate {
    pub url: String,
}

/// `GET/PATCH /apps/{app}/idling` (dyno extension): whether the app's web dynos sleep after
/// `idle_after_secs` without requests, and whether they sleep now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppIdling {
    pub enabled: bool,
    #[serde(default)]
    pub idle: bool,
    #[serde(default)]
    pub idle_after_secs: u64,
}

/// `GET /certs` (dyno extension): the HTTPS listener and its local certificate authority.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certs {
    pub https_addr: Option<String>,
    pub ca_cert_path: Option<String>,
    pub ca_cert_pem: Option<String>,
}
