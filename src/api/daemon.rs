//! The daemon itself (dyno extension): `GET /daemon`, `POST /daemon/stop`.

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

endpoint! {
    /// `GET /daemon`.
    Status {} => GET ["daemon"] -> DaemonStatus;
    /// `POST /daemon/stop {keep_dynos}`: the daemon stops after answering.
    Stop {} + body: DaemonStop => POST ["daemon", "stop"] -> DaemonStopping
        where unix_only = always;
}

fn always(_: &Stop) -> Option<&'static str> {
    Some("stopping the daemon")
}
