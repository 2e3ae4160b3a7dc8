//! `builds` and `builds:output`.

use super::{ago, resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};
use std::io::Write;

/// Seconds between two RFC 3339 times.
fn duration(from: &str, to: &str) -> Option<i64> {
    let a = chrono::DateTime::parse_from_rfc3339(from).ok()?;
    let b = chrono::DateTime::parse_from_rfc3339(to).ok()?;
    Some((b - a).num_seconds().max(0))
}

pub async fn list(paths: &Paths, arg: AppArg, num: usize, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let app = resolve_app(&c, &arg).await?;
    let mut builds = c.call(api::builds::List { app: app.clone() }).await?;
    builds.reverse();
    builds.truncate(num);
    if json {
        println!("{}", serde_json::to_string_pretty(&builds)?);
        return Ok(0);
    }
    println!("=== {app} Builds");
    if builds.is_empty() {
        println!("No builds yet: deploy with `dyno up` or `git push dyno main`.");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = builds
        .iter()
        .map(|b| {
            let commit = match &b.source_blob.version {
                Some(c) => format!(
                    "{}{}",
                    &c[..7.min(c.len())],
                    if b.dirty { " (dirty)" } else { "" }
                ),
                None => "-".into(),
            };
            let release = b
                .release
                .as_ref()
                .map(|r| format!("v{}", r.version))
                .unwrap_or_else(|| "-".into());
            let took = if b.status == "pending" {
                "-".into()
            } else {
                duration(&b.created_at, &b.updated_at)
                    .map(|s| format!("{s}s"))
                    .unwrap_or_else(|| "-".into())
            };
            vec![
                b.id[..8].to_string(),
                b.status.clone(),
                b.buildpacks
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                commit,
                b.slug_size
                    .map(crate::build::human_size)
                    .unwrap_or_else(|| "-".into()),
                took,
                release,
                ago(&b.created_at),
            ]
        })
        .collect();
    super::table(
        &[
            "id",
            "status",
            "buildpacks",
            "commit",
            "slug",
            "took",
            "release",
            "started",
        ],
        &rows,
    );
    Ok(0)
}

/// `builds:output [ID]`: the latest build's output by default; an id prefix is enough.
pub async fn output(paths: &Paths, arg: AppArg, id: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let app = resolve_app(&c, &arg).await?;
    let builds = c.call(api::builds::List { app: app.clone() }).await?;
    let build = match &id {
        None => builds.last(),
        Some(id) => {
            let hits: Vec<&api::Build> = builds.iter().filter(|b| b.id.starts_with(id)).collect();
            if hits.len() > 1 {
                bail!("{id} matches {} builds: give more of the id", hits.len());
            }
            hits.first().copied()
        }
    };
    let Some(build) = build else {
        match id {
            Some(id) => bail!("Couldn't find build {id} of {app}"),
            None => bail!("{app} has no builds yet"),
        }
    };
    let mut out = std::io::stdout();
    c.stream(&build.output_stream_url, |t| {
        let _ = out.write_all(t.as_bytes());
        let _ = out.flush();
    })
    .await?;
    Ok(0)
}
