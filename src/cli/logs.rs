//! `logs`.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;
use std::io::Write;

pub async fn logs(
    paths: &Paths,
    arg: AppArg,
    num: usize,
    tail: bool,
    dyno: Option<String>,
    source: Option<String>,
) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let session = c
        .call(api::logs::CreateSession {
            app: name.clone(),
            body: api::LogSessionCreate {
                lines: Some(num),
                tail: Some(tail),
                dyno,
                source,
            },
        })
        .await?;
    let mut out = std::io::stdout().lock();
    c.stream(&session.logplex_url, |text| {
        if out.write_all(text.as_bytes()).is_err() || out.flush().is_err() {
            // The reader went away (`dyno logs --tail | head`): stop like any Unix tool.
            std::process::exit(0);
        }
    })
    .await?;
    Ok(0)
}
