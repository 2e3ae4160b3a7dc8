//! The account: `GET /account` (the one user of a local install, as the Heroku CLI asks for it
//! before `apps`, `ps` and `run`), and the API token of the HTTPS API (dyno extension,
//! `GET /account/token`, Unix socket only).

use super::endpoint;
use serde::{Deserialize, Serialize};

/// Heroku's account resource. `scheduled_suspension_time`/`scheduled_deletion_time` stay
/// absent: the Heroku CLI warns when they are set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub verified: bool,
    pub two_factor_authentication: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// What a client of the HTTPS API needs: where it listens, the token, the CA to trust.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub token: String,
    /// `https://127.0.0.1:<port>`, absent when the HTTPS API is off.
    pub api_url: Option<String>,
    /// A world-readable copy of the local CA's certificate (never its key).
    pub ca_cert: Option<String>,
}

endpoint! {
    /// `GET /account`.
    Info {} => GET ["account"] -> Account;
    /// `GET /account/token` (dyno extension): the HTTPS API's token; Unix socket only.
    Token {} => GET ["account", "token"] -> ApiToken where unix_only = token_is_local;
}

fn token_is_local(_: &Token) -> Option<&'static str> {
    Some("the API token")
}
