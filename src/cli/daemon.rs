//! `daemon:stop`, `daemon:status`.

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
