//! Idling (dyno extension): `GET/PATCH /apps/{app}/idling`.

use super::endpoint;
use serde::{Deserialize, Serialize};

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

endpoint! {
    /// `GET /apps/{app}/idling`.
    Get { app } => GET ["apps", app, "idling"] -> AppIdling;
    /// `PATCH /apps/{app}/idling {enabled}` (`ps:idle on|off`).
    Update { app } + body: AppIdling => PATCH ["apps", app, "idling"] -> AppIdling;
}
