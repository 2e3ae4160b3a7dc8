//! Log drains: `GET/POST /apps/{app}/log-drains`, `DELETE /apps/{app}/log-drains/{drain}`.

use super::{endpoint, IdName};
use serde::{Deserialize, Serialize};

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

endpoint! {
    /// `GET /apps/{app}/log-drains`.
    List { app } => GET ["apps", app, "log-drains"] -> Vec<LogDrain>;
    /// `POST /apps/{app}/log-drains {url}`.
    Create { app } + body: LogDrainCreate => POST ["apps", app, "log-drains"] -> LogDrain, CREATED;
    /// `DELETE /apps/{app}/log-drains/{drain}` (URL, id or token).
    Delete { app, drain } => DELETE ["apps", app, "log-drains", drain] -> LogDrain;
}
