//! The account (`crate::api::account`): the one user of a local install, and the HTTPS API's
//! token for `dyno auth:token` and `dyno heroku:env`.

use super::owner;
use crate::api::{self, account};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::Daemon;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(info), Route::json(token)]
}

async fn info(_: Arc<Daemon>, _: account::Info) -> Result<api::Account, Fail> {
    let o = owner();
    Ok(api::Account {
        id: o.id,
        email: o.email,
        name: Some("dyno".into()),
        verified: true,
        two_factor_authentication: false,
        created_at: "2024-01-01T00:00:00Z".into(),
        updated_at: "2024-01-01T00:00:00Z".into(),
    })
}

async fn token(d: Arc<Daemon>, _: account::Token) -> Result<api::ApiToken, Fail> {
    Ok(api::ApiToken {
        token: d.api.token.clone(),
        api_url: d.api.url.clone(),
        ca_cert: d.api.ca_public.as_ref().map(|p| p.display().to_string()),
    })
}
