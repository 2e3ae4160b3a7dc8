//! `auth:token` and `heroku:env`: what the official Heroku CLI needs to drive this daemon over
//! its HTTPS API (shared/notes/heroku-cli.md §1).

use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

/// `dyno auth:token`: the HTTPS API's token.
pub async fn token(paths: &Paths) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let t = c.call(api::account::Token {}).await?;
    println!("{}", t.token);
    Ok(0)
}

/// `dyno heroku:env`: `export` lines for `eval "$(dyno heroku:env)"`.
pub async fn heroku_env(paths: &Paths) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let t = c.call(api::account::Token {}).await?;
    let (Some(url), Some(ca)) = (&t.api_url, &t.ca_cert) else {
        bail!(
            "the HTTPS API is off (DYNO_API_ADDR=off, or its port was taken: see the daemon's log)"
        );
    };
    for (k, v) in env_lines(url, &t.token, ca) {
        println!("export {k}={}", shell_quote(&v));
    }
    Ok(0)
}

/// Every variable the Heroku CLI needs so that no command waits on an outside host or sends the
/// token to one: the API (and particleboard, which `apps`/`run` wait for) here, telemetry and
/// update checks off, the local CA trusted by node (API, rendezvous) and git (push).
pub fn env_lines(url: &str, token: &str, ca: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HEROKU_HOST", url.to_string()),
        ("HEROKU_API_KEY", token.to_string()),
        ("HEROKU_PARTICLEBOARD_URL", url.to_string()),
        ("DISABLE_TELEMETRY", "true".into()),
        ("HEROKU_SKIP_NEW_VERSION_CHECK", "true".into()),
        ("HEROKU_DISABLE_AUTOUPDATE", "true".into()),
        ("NODE_EXTRA_CA_CERTS", ca.to_string()),
        ("GIT_SSL_CAINFO", ca.to_string()),
    ]
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
