//! `ps:idle [on|off]`: whether the app's web dynos sleep without requests.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

pub async fn idle(paths: &Paths, arg: AppArg, state: Option<&str>, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let r = match state {
        None => c.call(api::idling::Get { app: name.clone() }).await?,
        Some(s) => {
            let enabled = match s {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                other => bail!("ps:idle takes `on` or `off`, not {other:?}"),
            };
            c.call(api::idling::Update {
                app: name.clone(),
                body: api::AppIdling {
                    enabled,
                    ..Default::default()
                },
            })
            .await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let mins = r.idle_after_secs as f64 / 60.0;
    match (r.enabled, r.idle) {
        (false, _) => println!("Idling is off for {name}: its web dynos run until scaled down."),
        (true, false) => println!(
            "Idling is on for {name}: web dynos sleep after {mins} min without requests; the next request wakes them."
        ),
        (true, true) => println!("Idling is on for {name}, and it sleeps now: the next request wakes it."),
    }
    Ok(0)
}
