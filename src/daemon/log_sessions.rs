//! Log sessions over HTTPS, as the Heroku CLI reads them: a `logplex_url` that carries its own
//! secret (EventSource sends no token), answered as Server-Sent Events (`text/event-stream`,
//! one `data:` event a line with an `id:`), starting with `retry: 10` so a finished history
//! ends the CLI at once, and `: keep-alive` comments while a tail is quiet (the CLI drops a
//! stream silent for 300 s). The URL stays valid: a `--tail` reconnects to it with
//! `Last-Event-ID` and then gets only live lines.

use super::api_server::{self, Fail, Resp};
use super::Daemon;
use crate::api::logs;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where log sessions' streams live on the HTTPS API.
pub const PATH: &str = "/log-streams/";
/// A session unused this long is forgotten.
const TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are kept (the least recently used go first).
const MAX_SESSIONS: usize = 1000;

#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, (logs::Stream, Instant)>>);

impl Sessions {
    /// A new session's secret URL under `base`.
    pub fn create(&self, base: &str, stream: logs::Stream) -> String {
        let bytes: [u8; 24] = rand::random();
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.0.lock().unwrap();
        map.retain(|_, (_, used)| used.elapsed() < TTL);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(secret.clone(), (stream, Instant::now()));
        format!("{base}{PATH}{secret}")
    }

    fn get(&self, secret: &str) -> Option<logs::Stream> {
        let mut map = self.0.lock().unwrap();
        let (s, used) = map.get_mut(secret)?;
        *used = Instant::now();
        Some(s.clone())
    }
}

/// `GET /log-streams/<secret>`: the session's lines as events.
pub async fn serve(d: &Arc<Daemon>, secret: &str, req: Request<Incoming>) -> Resp {
    if req.method() != Method::GET {
        return api_server::error(Fail(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "a log stream is read with GET".into(),
        ));
    }
    let Some(mut stream) = d.log_sessions.get(secret) else {
        return api_server::error(Fail(
            StatusCode::NOT_FOUND,
            "not_found",
            "Couldn't find that log session.".into(),
        ));
    };
    // A reconnect has seen the history already: live lines only.
    let resumed = req.headers().contains_key("last-event-id");
    let mut next_id: u64 = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(|n: u64| n + 1)
        .unwrap_or(1);
    if resumed {
        stream.lines = 0;
    }
    let tail = stream.tail;
    let mut lines = match super::api::logs::stream(d.clone(), stream).await {
        Ok(rx) => rx,
        Err(f) => return api_server::error(f),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let keep_alive = d.settings.log_keepalive;
    tokio::spawn(async move {
        if tx.send(Bytes::from_static(b"retry: 10\n\n")).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(keep_alive);
        ticker.tick().await;
        loop {
            let chunk = tokio::select! {
                c = lines.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = ticker.tick(), if tail => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let mut out = String::new();
            for line in String::from_utf8_lossy(&chunk).lines() {
                out.push_str(&format!("id: {next_id}\ndata: {line}\n\n"));
                next_id += 1;
            }
            if tx.send(Bytes::from(out)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(BodyExt::boxed(api_server::ChannelBody(rx)))
        .unwrap()
}
