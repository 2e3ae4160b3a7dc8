//! `drains`, `drains:add`, `drains:remove`: the app's log drains (Logplex forwards its log
//! stream to each).

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(api::drains::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("{name} has no drains.");
    }
    for d in list {
        println!("{} ({})", d.url, d.token);
    }
    Ok(0)
}

pub async fn add(paths: &Paths, arg: AppArg, url: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::drains::Create {
            app: name.clone(),
            body: api::LogDrainCreate {
                url: url.to_string(),
            },
        })
        .await?;
    println!("Successfully added drain {}", d.url);
    Ok(0)
}

pub async fn remove(paths: &Paths, arg: AppArg, url: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::drains::Delete {
            app: name.clone(),
            drain: url.to_string(),
        })
        .await?;
    println!("Successfully removed drain {}", d.url);
    Ok(0)
}
