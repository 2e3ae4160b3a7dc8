//! Dynos: `GET/POST/DELETE /apps/{app}/dynos`, one dyno's restart, stop and kill, the attach
//! upgrade of `dyno run`, and which process types are one-offs.

use super::{endpoint, Empty, IdName, ReleaseRef, Upgrade};
use serde::{Deserialize, Serialize};

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
    /// Values may come as numbers: the Heroku CLI sends `"COLUMNS": 120`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "env_values"
    )]
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

/// What a dyno uses now (dyno extension, for the dashboard): read by the daemon from the
/// dyno's cgroup, v1 or v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DynoStat {
    pub id: String,
    pub name: String,
    /// Resident memory plus swap.
    pub memory_bytes: u64,
    /// CPU time used so far, in nanoseconds.
    pub cpu_ns: Option<u64>,
}

endpoint! {
    /// `GET /apps/{app}/dyno-stats` (dyno extension): memory and CPU of the running dynos.
    Stats { app } => GET ["apps", app, "dyno-stats"] -> Vec<DynoStat>;
    /// `GET /apps/{app}/dynos`: the formation's dynos and the one-offs.
    List { app } => GET ["apps", app, "dynos"] -> Vec<Dyno>;
    /// `GET /apps/{app}/dynos/{dyno}`.
    Info { app, dyno } => GET ["apps", app, "dynos", dyno] -> Dyno;
    /// `POST /apps/{app}/dynos`: a one-off dyno (`dyno run`, `run:detached`).
    Create { app } + body: DynoCreate => POST ["apps", app, "dynos"] -> Dyno, CREATED;
    /// `DELETE /apps/{app}/dynos`: restart every dyno (`ps:restart`).
    RestartAll { app } => DELETE ["apps", app, "dynos"] -> Empty;
    /// `DELETE /apps/{app}/dynos/{dyno}`: restart a dyno or every dyno of a process type.
    Restart { app, dyno } => DELETE ["apps", app, "dynos", dyno] -> Empty;
    /// `POST /apps/{app}/dynos/{dyno}/actions/stop` (`ps:stop`, a dyno or a process type).
    Stop { app, dyno } => POST ["apps", app, "dynos", dyno, "actions", "stop"] -> Empty;
    /// `DELETE /apps/{app}/formations/{type}`: restart every dyno of a process type
    /// (`heroku ps:restart --process-type`).
    RestartType { app, process_type } => DELETE ["apps", app, "formations", process_type] -> Empty;
    /// `POST /apps/{app}/formations/{type}/actions/stop` (`heroku ps:stop --process-type`).
    StopType { app, process_type }
        => POST ["apps", app, "formations", process_type, "actions", "stop"] -> Empty;
    /// `POST /apps/{app}/dynos/{dyno}/actions/kill` (`ps:kill`: SIGKILL at once).
    Kill { app, dyno } => POST ["apps", app, "dynos", dyno, "actions", "kill"] -> Empty;
    /// `POST /apps/{app}/dynos/{dyno}/attach` with `Upgrade: dyno-attach`: an attached one-off
    /// dyno's stdio (its `attach_url`).
    Attach { app, dyno } => POST ["apps", app, "dynos", dyno, "attach"] -> Upgrade;
}

/// An `env` map whose values are strings, numbers or booleans (as text).
fn env_values<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::collections::BTreeMap<String, String>>, D::Error> {
    let raw: Option<std::collections::BTreeMap<String, serde_json::Value>> =
        Option::deserialize(d)?;
    raw.map(|m| {
        m.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                serde_json::Value::Number(n) => Ok((k, n.to_string())),
                serde_json::Value::Bool(b) => Ok((k, b.to_string())),
                other => Err(serde::de::Error::custom(format!(
                    "env {k}: expected a string or a number, not {other}"
                ))),
            })
            .collect()
    })
    .transpose()
}

/// One-off dynos (`run.N`, `release.N`, `scheduler.N`) are never part of the formation.
pub fn is_one_off_type(ptype: &str) -> bool {
    matches!(ptype, "run" | "release" | "scheduler")
}
