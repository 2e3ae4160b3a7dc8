//! The daemon itself (dyno extension): `GET /daemon`, `GET /daemon/settings`, `POST /daemon/stop`.

use super::endpoint;
use serde::{Deserialize, Serialize};

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

/// The answer of `POST /daemon/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStopping {
    pub keep_dynos: bool,
    pub stopping: bool,
}

/// One thing garbage collection removed (or would remove).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GcItem {
    /// `slug`, `build`, `cache`, `cache (over the limit)`.
    pub kind: String,
    /// The slug's checksum file or directory, the build's id, the app id of a cache.
    pub name: String,
    pub bytes: u64,
}

/// `POST /gc` (dyno extension).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GcRequest {
    #[serde(default)]
    pub dry_run: bool,
}

/// What `POST /gc` removed, or with `dry_run` would remove.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub items: Vec<GcItem>,
    pub bytes: u64,
}

endpoint! {
    /// `POST /gc {dry_run}`: slugs past each app's last releases, stale build dirs and caches.
    Gc {} + body: GcRequest => POST ["gc"] -> GcReport;
    /// `GET /daemon`.
    Status {} => GET ["daemon"] -> DaemonStatus;
    /// `GET /daemon/settings`: every setting, its value and where it came from.
    Settings {} => GET ["daemon", "settings"] -> Vec<crate::settings::Resolved>;
    /// `POST /daemon/stop {keep_dynos}`: the daemon stops after answering.
    Stop {} + body: DaemonStop => POST ["daemon", "stop"] -> DaemonStopping;
}
