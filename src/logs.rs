//! The app's log stream (a first Logplex): the last lines of every app in memory, and a
//! broadcast for `--tail`. Sources: `app[web.1]` (dyno output), `heroku[web.1]` (platform
//! events), `heroku[router]` and `app[api]` (releases, scaling).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Heroku keeps the last 1,500 lines of each app.
pub const HISTORY: usize = 1500;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    /// RFC 3339 with microseconds, e.g. `2026-11-23T17:05:02.123456+00:00`.
    pub ts: String,
    /// `app` or `heroku`.
    pub source: String,
    /// `web.1`, `router`, `api`.
    pub dyno: String,
    pub message: String,
}

impl LogLine {
    pub fn new(source: &str, dyno: &str, message: impl Into<String>) -> Self {
        LogLine {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            source: source.into(),
            dyno: dyno.into(),
            message: message.into(),
        }
    }

    /// Heroku's format: `2026-11-23T17:05:02.123456+00:00 app[web.1]: message`.
    pub fn format(&self) -> String {
        format!(
            "{} {}[{}]: {}",
            self.ts, self.source, self.dyno, self.message
        )
    }
}

struct AppLog {
    history: VecDeque<LogLine>,
    tx: broadcast::Sender<LogLine>,
}

#[derive(Default)]
pub struct Logs {
    apps: Mutex<HashMap<String, AppLog>>,
}

impl Logs {
    fn with_app<T>(&self, app: &str, f: impl FnOnce(&mut AppLog) -> T) -> T {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        let entry = apps.entry(app.to_string()).or_insert_with(|| AppLog {
            history: VecDeque::with_capacity(64),
            tx: broadcast::channel(4096).0,
        });
        f(entry)
    }

    pub fn push(&self, app: &str, line: LogLine) {
        self.with_app(app, |a| {
            if a.history.len() == HISTORY {
                a.history.pop_front();
            }
            a.history.push_back(line.clone());
            let _ = a.tx.send(line);
        });
    }

    /// Shorthand for a platform line, e.g. `heroku[web.1]: State changed from starting to up`.
    pub fn platform(&self, app: &str, dyno: &str, message: impl Into<String>) {
        self.push(app, LogLine::new("heroku", dyno, message));
    }

    /// The last `n` lines and a receiver for what comes after them, atomically.
    pub fn subscribe(&self, app: &str, n: usize) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        self.with_app(app, |a| {
            let skip = a.history.len().saturating_sub(n);
            (
                a.history.iter().skip(skip).cloned().collect(),
                a.tx.subscribe(),
            )
        })
    }

    pub fn forget(&self, app: &str) {
        self.apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(app);
    }

    pub fn rename(&self, old: &str, new: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = apps.remove(old) {
            apps.insert(new.to_string(), a);
        }
    }
}

/// Does `line` pass the `--ps` / `--source` filters of `dyno logs`?
pub fn matches(line: &LogLine, dyno: Option<&str>, source: Option<&str>) -> bool {
    let dyno_ok = match dyno {
        None => true,
        // `--ps web` matches web.1, web.2; `--ps web.1` only that one.
        Some(d) if d.contains('.') => line.dyno == d,
        Some(d) => line.dyno == d || line.dyno.split('.').next() == Some(d),
    };
    dyno_ok && source.is_none_or(|s| line.source == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_and_broadcasts_new_ones() {
        let logs = Logs::default();
        for i in 0..HISTORY + 10 {
            logs.push("a", LogLine::new("app", "web.1", format!("{i}")));
        }
        let (hist, mut rx) = logs.subscribe("a", 3);
        let msgs: Vec<_> = hist.iter().map(|l| l.message.clone()).collect();
        assert_eq!(msgs, vec!["1507", "1508", "1509"]);
        logs.platform("a", "web.1", "State changed from starting to up");
        let l = rx.try_recv().unwrap();
        assert!(l
            .format()
            .ends_with(" heroku[web.1]: State changed from starting to up"));
        assert_eq!(logs.subscribe("a", 10_000).0.len(), HISTORY);
    }

    #[test]
    fn filters() {
        let l = LogLine::new("app", "web.2", "x");
        assert!(matches(&l, Some("web"), None));
        assert!(matches(&l, Some("web.2"), Some("app")));
        assert!(!matches(&l, Some("web.1"), None));
        assert!(!matches(&l, None, Some("heroku")));
    }
}
