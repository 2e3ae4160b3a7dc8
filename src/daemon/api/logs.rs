//! Logs (`crate::api::logs`): a log session, and the stream its `logplex_url` names (history
//! from `crate::logs`, then the live broadcast).

use super::find_app;
use crate::api::{self, logs, Endpoint};
use crate::daemon::api_server::{Fail, Route};
use crate::daemon::Daemon;
use crate::logs::LogLine;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::mpsc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(create_session), Route::stream(stream)]
}

async fn create_session(d: Arc<Daemon>, e: logs::CreateSession) -> Result<api::LogSession, Fail> {
    let a = find_app(&d, &e.app)?;
    let b = e.body;
    let stream = logs::Stream {
        app: a.id.clone(),
        lines: b.lines.unwrap_or(logs::DEFAULT_LINES),
        tail: b.tail.unwrap_or(false),
        dyno: b.dyno,
        source: b.source,
    };
    // Over HTTPS: a URL with its own secret (EventSource sends no token); here: the stream's
    // path on the socket.
    let logplex_url = match crate::daemon::api_server::https_base() {
        Some(base) => d.log_sessions.create(&base, stream),
        None => stream.path(),
    };
    Ok(api::LogSession {
        id: crate::store::new_id(),
        logplex_url,
    })
}

pub(crate) async fn stream(d: Arc<Daemon>, e: logs::Stream) -> Result<mpsc::Receiver<Bytes>, Fail> {
    let a = find_app(&d, &e.app)?;
    let logs::Stream {
        lines,
        tail,
        dyno,
        source,
        ..
    } = e;
    let (hist, mut live) = d.logs.subscribe(&a.name, crate::logs::HISTORY);
    let keep = move |l: &LogLine| crate::logs::matches(l, dyno.as_deref(), source.as_deref());
    let matching: Vec<_> = hist.into_iter().filter(|l| keep(l)).collect();
    let skip = matching.len().saturating_sub(lines);
    // Few chunks in flight: a slow reader is behind in the broadcast (and gets L10), not
    // in daemon memory.
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for l in matching.into_iter().skip(skip) {
            if tx.send(Bytes::from(l.format() + "\n")).await.is_err() {
                return;
            }
        }
        if !tail {
            return;
        }
        // Lines go out in chunks of whatever is waiting (fast readers keep up with
        // floods); a reader that still falls behind loses lines and is told (L10).
        loop {
            let mut chunk = String::new();
            let mut lagged = 0;
            match live.recv().await {
                Ok(l) if keep(&l) => chunk.push_str(&(l.format() + "\n")),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(_) => return,
            }
            while chunk.len() < 256 * 1024 {
                match live.try_recv() {
                    Ok(l) if keep(&l) => {
                        chunk.push_str(&l.format());
                        chunk.push('\n');
                    }
                    Ok(_) => {}
                    Err(TryRecvError::Lagged(n)) => lagged += n,
                    Err(_) => break,
                }
            }
            if lagged > 0 {
                let since =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
                chunk.insert_str(0, &(crate::logs::l10(lagged, &since).format() + "\n"));
            }
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
