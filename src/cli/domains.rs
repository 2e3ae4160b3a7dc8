//! `domains`, `domains:add`, `domains:remove`: the app's custom domains, which the router
//! answers for.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(api::domains::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!("=== {name} Heroku Domain");
    for d in list.iter().filter(|d| d.kind == "heroku") {
        println!("{}", d.hostname);
    }
    let custom: Vec<_> = list.iter().filter(|d| d.kind == "custom").collect();
    if !custom.is_empty() {
        println!();
        println!("=== {name} Custom Domains");
        let rows: Vec<Vec<String>> = custom
            .iter()
            .map(|d| {
                vec![
                    d.hostname.clone(),
                    "CNAME".into(),
                    d.cname.clone().unwrap_or_default(),
                ]
            })
            .collect();
        super::table(&["Domain Name", "DNS Record Type", "DNS Target"], &rows);
    }
    Ok(0)
}

pub async fn add(paths: &Paths, arg: AppArg, hostname: &str, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::domains::Create {
            app: name.clone(),
            body: api::DomainCreate {
                hostname: hostname.to_string(),
            },
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(0);
    }
    println!("Adding {} to {name}... done", d.hostname);
    println!(
        " ▸    The router answers for {} now: point its DNS (or /etc/hosts) at this machine.",
        d.hostname
    );
    Ok(0)
}

pub async fn remove(paths: &Paths, arg: AppArg, hostname: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(api::domains::Delete {
            app: name.clone(),
            domain: hostname.to_string(),
        })
        .await?;
    println!("Removing {} from {name}... done", d.hostname);
    Ok(0)
}
