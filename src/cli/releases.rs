//! `releases`.

use super::{ago, resolve_app, AppArg};
use crate::api;
use crate::client::{enc, Client};
use crate::paths::Paths;
use anyhow::Result;

pub async fn list(paths: &Paths, arg: AppArg, num: usize, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let mut releases: Vec<api::Release> = c.get(&format!("/apps/{}/releases", enc(&name))).await?;
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
