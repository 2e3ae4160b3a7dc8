//! Logs: `POST /apps/{app}/log-sessions` and the stream a session's `logplex_url` names.

use super::{enc, endpoint, Endpoint, Seg, Text};
use serde::{Deserialize, Serialize};

/// `POST /apps/{app}/log-sessions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogSessionCreate {
    pub lines: Option<usize>,
    pub tail: Option<bool>,
    pub dyno: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogSession {
    pub id: String,
    pub logplex_url: String,
}

endpoint! {
    /// `POST /apps/{app}/log-sessions`: answers the `logplex_url` to stream ([`Stream`]).
    CreateSession { app } + body: LogSessionCreate
        => POST ["apps", app, "log-sessions"] -> LogSession, CREATED;
}

/// How many history lines a log stream sends when not told.
pub const DEFAULT_LINES: usize = 100;

/// `GET /apps/{app}/log-stream?lines=N&tail=true&dyno=..&source=..`: the last `lines` lines
/// that match, then (`tail`) the live ones. A log session's `logplex_url`.
#[derive(Debug, Clone)]
pub struct Stream {
    pub app: String,
    pub lines: usize,
    pub tail: bool,
    pub dyno: Option<String>,
    pub source: Option<String>,
}

impl Endpoint for Stream {
    type Response = Text;
    const METHOD: hyper::Method = hyper::Method::GET;
    const SEGMENTS: &'static [Seg] = &[Seg::Lit("apps"), Seg::Param, Seg::Lit("log-stream")];

    fn path(&self) -> String {
        let mut url = format!("/apps/{}/log-stream?lines={}", enc(&self.app), self.lines);
        if self.tail {
            url.push_str("&tail=true");
        }
        if let Some(x) = &self.dyno {
            url.push_str(&format!("&dyno={}", enc(x)));
        }
        if let Some(x) = &self.source {
            url.push_str(&format!("&source={}", enc(x)));
        }
        url
    }

    fn decode(
        params: Vec<String>,
        query: &[(String, String)],
        _: &[u8],
    ) -> serde_json::Result<Self> {
        let get = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        Ok(Stream {
            app: params.into_iter().next().unwrap_or_default(),
            lines: get("lines")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_LINES),
            tail: get("tail").as_deref() == Some("true"),
            dyno: get("dyno"),
            source: get("source"),
        })
    }
}
