//! `daemon:stop`, `daemon:status`, `daemon:settings`.

use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn stop(paths: &Paths, keep_dynos: bool) -> Result<i32> {
    let Some(c) = Client::existing(paths).await else {
        println!("No dyno daemon runs for {}", paths.home.display());
        return Ok(0);
    };
    eprint!(
        "Stopping the dyno daemon{}... ",
        if keep_dynos {
            " (dynos keep running)"
        } else {
            " and its dynos"
        }
    );
    let pid = c.status().await?.pid;
    c.call(api::daemon::Stop {
        body: api::DaemonStop { keep_dynos },
    })
    .await?;
    c.wait_gone(pid).await?;
    eprintln!("done");
    Ok(0)
}

/// Every setting of the running daemon (started if needed): value and where it came from.
pub async fn settings(paths: &Paths, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let list = c.call(api::daemon::Settings {}).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let origin = match s.origin {
                crate::settings::Origin::Default => "default".to_string(),
                crate::settings::Origin::Env => s.env.clone(),
                crate::settings::Origin::File => s.file.clone().unwrap_or_default(),
            };
            vec![s.key.clone(), s.value.clone(), origin]
        })
        .collect();
    super::table(&["Setting", "Value", "From"], &rows);
    Ok(0)
}

/// `dyno gc [--dry-run]`: what garbage collection removes (or would).
pub async fn gc(paths: &Paths, dry_run: bool, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let r = c
        .call(api::daemon::Gc {
            body: api::GcRequest { dry_run },
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    if r.items.is_empty() {
        println!("Nothing to remove.");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = r
        .items
        .iter()
        .map(|i| {
            vec![
                i.kind.clone(),
                i.name.clone(),
                crate::build::human_size(i.bytes),
            ]
        })
        .collect();
    super::table(&["Kind", "Name", "Size"], &rows);
    println!(
        "{} {} in {} item(s).",
        if dry_run { "Would free" } else { "Freed" },
        crate::build::human_size(r.bytes),
        r.items.len()
    );
    Ok(0)
}

pub async fn status(paths: &Paths, json: bool) -> Result<i32> {
    match Client::existing(paths).await {
        Some(c) => {
            let s = c.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("dyno daemon {} (pid {}) for {}", s.version, s.pid, s.home);
                println!("router: http://{}", s.router_addr);
            }
            Ok(0)
        }
        None => {
            if json {
                println!("null");
            } else {
                println!("No dyno daemon runs for {}", paths.home.display());
            }
            Ok(1)
        }
    }
}
