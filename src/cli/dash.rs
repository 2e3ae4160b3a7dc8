//! `dash`: the terminal dashboard of an app (see `crate::tui`).

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;

pub async fn dash(paths: &Paths, arg: AppArg) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    // An unknown app fails here, as a one-line error, before the screen is taken over.
    c.call(api::apps::Info { app: name.clone() }).await?;
    crate::tui::run(c, name).await?;
    Ok(0)
}
