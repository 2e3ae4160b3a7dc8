//! `releases`.

use super::{ago, resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn list(paths: &Paths, arg: AppArg, num: usize, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let mut releases = c.call(api::releases::List { app: name.clone() }).await?;
    releases.reverse();
    releases.truncate(num);
    if json {
        println!("{}", serde_json::to_string_pretty(&releases)?);
        return Ok(0);
    }
    println!("=== {name} Releases");
    for r in releases {
        let status = match r.status.as_str() {
            "succeeded" => String::new(),
            s => format!(" ({s})"),
        };
        let current = if r.current { "  (current)" } else { "" };
        println!(
            "v{:<4} {}{status}  {}  {}{current}",
            r.version,
            r.description,
            r.user.email,
            ago(&r.created_at)
        );
    }
    Ok(0)
}

/// The release `key` names (`v3`, `3`, an id), or the newest one.
async fn pick(c: &Client, name: &str, key: Option<&str>) -> Result<api::Release> {
    match key {
        Some(k) => {
            c.call(api::releases::Info {
                app: name.into(),
                release: k.into(),
            })
            .await
        }
        None => {
            let releases = c.call(api::releases::List { app: name.into() }).await?;
            releases
                .into_iter()
                .last()
                .ok_or_else(|| anyhow::anyhow!("{name} has no releases yet"))
        }
    }
}

pub async fn info(
    paths: &Paths,
    arg: AppArg,
    release: Option<String>,
    json: bool,
    shell: bool,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let r = pick(&c, &name, release.as_deref()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let vars = c
        .call(api::releases::ConfigVarsOf {
            app: name.clone(),
            release: r.id.clone(),
        })
        .await?;
    if shell {
        return super::config::print(&vars, "", false, true).map(|_| 0);
    }
    let change = match r.status.as_str() {
        "failed" => format!("{} (release command failed)", r.description),
        "pending" => format!("{} (release command executing)", r.description),
        _ => r.description.clone(),
    };
    println!("=== Release v{}", r.version);
    print!(
        "{}",
        super::config::styled(&[
            ("Add-ons".into(), r.addon_plan_names.join(", ")),
            ("Change".into(), change),
            ("By".into(), r.user.email.clone()),
            ("When".into(), r.created_at.clone()),
            ("Current".into(), r.current.to_string()),
        ])
    );
    println!();
    super::config::print(&vars, &format!("v{} Config vars", r.version), false, false)?;
    Ok(0)
}

pub async fn rollback(paths: &Paths, arg: AppArg, release: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let target = match release {
        Some(k) => pick(&c, &name, Some(&k)).await?,
        None => {
            // Heroku's default: the succeeded release before the current one.
            let releases = c.call(api::releases::List { app: name.clone() }).await?;
            let current = releases
                .iter()
                .find(|r| r.current)
                .map_or(u32::MAX, |r| r.version);
            releases
                .into_iter()
                .rev()
                .find(|r| r.status == "succeeded" && r.version < current)
                .ok_or_else(|| {
                    anyhow::anyhow!("{name} has no earlier succeeded release to roll back to")
                })?
        }
    };
    eprint!("Rolling back {name} to v{}... ", target.version);
    let r = c
        .call(api::releases::Rollback {
            app: name.clone(),
            body: api::ReleaseCreate {
                release: target.id.clone(),
            },
        })
        .await?;
    eprintln!("done, v{}", r.version);
    eprintln!("Rollback affects code and config vars; it doesn't add or remove addons.");
    Ok(0)
}

pub async fn output(paths: &Paths, arg: AppArg, release: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let r = pick(&c, &name, release.as_deref()).await?;
    let Some(url) = r.output_stream_url else {
        anyhow::bail!(
            "release v{} of {name} has no release command output",
            r.version
        );
    };
    let mut out = std::io::stdout();
    c.stream(&url, |t| {
        use std::io::Write;
        let _ = out.write_all(t.as_bytes());
        let _ = out.flush();
    })
    .await?;
    Ok(0)
}
