//! Local settings of this machine (dyno extension): which app a source directory deploys to,
//! `GET /local/dirs?dir=..` and `PUT /local/dirs`.

use super::{enc, endpoint, Endpoint, Seg};
use serde::{Deserialize, Serialize};

/// `GET/PUT /local/dirs` (dyno extension): which app a source directory deploys to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirApp {
    pub dir: String,
    pub app: Option<String>,
}

endpoint! {
    /// `PUT /local/dirs {dir, app}`: records the directory as the app's.
    SetDir {} + body: DirApp => PUT ["local", "dirs"] -> DirApp
        where unix_only = directory;
}

/// `GET /local/dirs?dir=..`: the app recorded for exactly this directory, if any.
#[derive(Debug, Clone)]
pub struct GetDir {
    pub dir: String,
}

impl Endpoint for GetDir {
    type Response = DirApp;
    const METHOD: hyper::Method = hyper::Method::GET;
    const SEGMENTS: &'static [Seg] = &[Seg::Lit("local"), Seg::Lit("dirs")];

    fn path(&self) -> String {
        format!("/local/dirs?dir={}", enc(&self.dir))
    }

    fn decode(_: Vec<String>, query: &[(String, String)], _: &[u8]) -> serde_json::Result<Self> {
        let dir = query
            .iter()
            .find(|(k, _)| k == "dir")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Ok(GetDir { dir })
    }

    fn unix_only(&self) -> Option<&'static str> {
        Some("an app's directory")
    }
}

fn directory(_: &SetDir) -> Option<&'static str> {
    Some("an app's directory")
}
