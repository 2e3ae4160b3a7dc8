//! The app's log stream (Logplex): the last lines of every app in memory, kept on disk too, and
//! a broadcast for `--tail` readers and drains (`crate::drains`). Sources: `app[web.1]` (dyno
//! output), `heroku[web.1]` (platform events), `heroku[router]` and `app[api]` (releases,
//! scaling).
//!
//! History on disk: one append-only JSON-lines file per app, `DYNO_HOME/logs/<app>.jsonl`,
//! written by one thread off the hot path; at [`ROTATE_AT`] lines it becomes `<app>.1.jsonl`
//! (the previous one goes), so an app keeps between `ROTATE_AT` and twice that many lines, at
//! most 10 kB each. A reader that can't keep up with the broadcast loses lines, never slows the
//! writers: it is told how many with `Error L10 (output buffer overflow)`.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use tokio::sync::broadcast;

/// Heroku keeps the last 1,500 lines of each app.
pub const HISTORY: usize = 1500;
/// Lines per history file before it rotates.
pub const ROTATE_AT: usize = 2000;
/// Heroku splits longer lines.
pub const MAX_LINE: usize = 10_000;
/// Lines the history writer may be behind; past it, lines are not written to disk.
const DISK_QUEUE: usize = 16_384;
/// Lines a tail or drain may be behind before it loses some (L10).
pub const BUFFER: usize = 16_384;

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
            ts: timestamp(chrono::Utc::now()),
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

/// `t` as RFC 3339 with microseconds (`2026-11-23T17:05:02.123456+00:00`), exactly as chrono's
/// `to_rfc3339_opts(Micros, false)` writes it, but with the date and time up to the second
/// formatted once per second and thread: the router stamps a line per request.
fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    thread_local! {
        static PREFIX: std::cell::RefCell<(i64, String)> = const {
            std::cell::RefCell::new((i64::MIN, String::new()))
        };
    }
    let micros = t.timestamp_subsec_micros();
    if micros >= 1_000_000 || !(0..=9999).contains(&t.year()) {
        // Leap seconds and years chrono writes differently: its own formatting.
        return t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    }
    PREFIX.with(|p| {
        let mut p = p.borrow_mut();
        let secs = t.timestamp();
        if p.0 != secs {
            p.1.clear();
            let _ = std::fmt::Write::write_fmt(
                &mut p.1,
                format_args!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
            );
            p.0 = secs;
        }
        let mut s = String::with_capacity(32);
        s.push_str(&p.1);
        let mut digits = [b'0'; 6];
        let mut m = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (m % 10) as u8;
            m /= 10;
        }
        s.push_str(std::str::from_utf8(&digits).unwrap_or("000000"));
        s.push_str("+00:00");
        s
    })
}

struct AppLog {
    /// The app's name, shared with the history writer's messages.
    name: std::sync::Arc<str>,
    history: VecDeque<LogLine>,
    tx: broadcast::Sender<LogLine>,
}

/// Messages to the history writer thread.
enum DiskMsg {
    Line(std::sync::Arc<str>, LogLine),
    Forget(String),
    Rename(String, String),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
pub struct Logs {
    apps: Mutex<HashMap<String, AppLog>>,
    /// Where history is kept, and the writer thread's queue; `None` keeps it in memory only.
    disk: Option<(PathBuf, mpsc::SyncSender<DiskMsg>)>,
}

impl Logs {
    /// A log stream whose history is kept in `dir` (made if missing) across restarts.
    pub fn with_dir(dir: &Path) -> std::io::Result<Logs> {
        std::fs::create_dir_all(dir)?;
        let (tx, rx) = mpsc::sync_channel(DISK_QUEUE);
        let d = dir.to_path_buf();
        std::thread::Builder::new()
            .name("log-history".into())
            .spawn(move || history_writer(&d, rx))?;
        Ok(Logs {
            apps: Mutex::default(),
            disk: Some((dir.to_path_buf(), tx)),
        })
    }

    fn with_app<T>(&self, app: &str, f: impl FnOnce(&mut AppLog) -> T) -> T {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up first: the key is only allocated for a new app.
        if let Some(entry) = apps.get_mut(app) {
            return f(entry);
        }
        let entry = apps.entry(app.to_string()).or_insert_with(|| AppLog {
            name: app.into(),
            history: match &self.disk {
                Some((dir, _)) => load_history(dir, app),
                None => VecDeque::with_capacity(64),
            },
            tx: broadcast::channel(BUFFER).0,
        });
        f(entry)
    }

    fn to_disk(&self, msg: DiskMsg) {
        if let Some((_, tx)) = &self.disk {
            let _ = tx.send(msg);
        }
    }

    /// Adds a line to the app's stream; lines over [`MAX_LINE`] bytes become several.
    pub fn push(&self, app: &str, line: LogLine) {
        if line.message.len() > MAX_LINE {
            for part in split_message(&line.message) {
                self.push_one(
                    app,
                    LogLine {
                        message: part.to_string(),
                        ..line.clone()
                    },
                );
            }
        } else {
            self.push_one(app, line);
        }
    }

    fn push_one(&self, app: &str, line: LogLine) {
        self.with_app(app, |a| {
            // The line evicted from the history, if any, is reused for the copy that goes to
            // disk (its strings keep their capacity).
            let evicted = if a.history.len() == HISTORY {
                a.history.pop_front()
            } else {
                None
            };
            if let Some((_, tx)) = &self.disk {
                let copy = match evicted {
                    Some(mut old) => {
                        old.ts.clone_from(&line.ts);
                        old.source.clone_from(&line.source);
                        old.dyno.clone_from(&line.dyno);
                        old.message.clone_from(&line.message);
                        old
                    }
                    None => line.clone(),
                };
                // A full queue (the disk is slower than the stream): the line is in memory and
                // broadcast, only its copy on disk is skipped. The daemon's memory stays bounded.
                let _ = tx.try_send(DiskMsg::Line(a.name.clone(), copy));
            }
            // Nobody listening (checked under the lock `subscribe` takes): no copy to send.
            if a.tx.receiver_count() == 0 {
                a.history.push_back(line);
            } else {
                a.history.push_back(line.clone());
                let _ = a.tx.send(line);
            }
        });
    }

    /// Waits (bounded) until the history writer has written everything pushed so far.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.to_disk(DiskMsg::Flush(tx));
        if self.disk.is_some() {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
        }
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
        self.to_disk(DiskMsg::Forget(app.to_string()));
    }

    pub fn rename(&self, old: &str, new: &str) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = apps.remove(old) {
            apps.insert(new.to_string(), a);
        }
        self.to_disk(DiskMsg::Rename(old.to_string(), new.to_string()));
    }
}

/// `message` in pieces of at most [`MAX_LINE`] bytes, cut at character boundaries.
pub fn split_message(message: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = message;
    while rest.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

/// The Heroku L10 line a tail or drain gets when it lost lines.
pub fn l10(dropped: u64, since: &str) -> LogLine {
    LogLine::new(
        "heroku",
        "logplex",
        format!("Error L10 (output buffer overflow): {dropped} messages dropped since {since}."),
    )
}

fn history_files(dir: &Path, app: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{app}.1.jsonl")),
        dir.join(format!("{app}.jsonl")),
    )
}

/// The last [`HISTORY`] lines kept on disk for `app`.
fn load_history(dir: &Path, app: &str) -> VecDeque<LogLine> {
    let mut out = VecDeque::with_capacity(HISTORY);
    let (old, cur) = history_files(dir, app);
    for path in [old, cur] {
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        for l in std::io::BufReader::new(f).lines() {
            let Ok(l) = l else { break };
            // A torn last line (the daemon was killed mid-write) is skipped.
            if let Ok(line) = serde_json::from_str::<LogLine>(&l) {
                if out.len() == HISTORY {
                    out.pop_front();
                }
                out.push_back(line);
            }
        }
    }
    out
}

/// The history writer: appends every line to its app's file, rotating at [`ROTATE_AT`], and
/// flushes whenever its queue is empty.
fn history_writer(dir: &Path, rx: mpsc::Receiver<DiskMsg>) {
    struct Open {
        w: std::io::BufWriter<std::fs::File>,
        lines: usize,
    }
    let mut files: HashMap<String, Open> = HashMap::new();
    let open = |app: &str| -> std::io::Result<Open> {
        let (_, cur) = history_files(dir, app);
        let lines = std::fs::File::open(&cur)
            .map(|f| std::io::BufReader::new(f).lines().count())
            .unwrap_or(0);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cur)?;
        Ok(Open {
            w: std::io::BufWriter::with_capacity(64 * 1024, f),
            lines,
        })
    };
    let mut msg = rx.recv().ok();
    while let Some(m) = msg {
        match m {
            DiskMsg::Line(app, line) => {
                let app: &str = &app;
                if !files.contains_key(app) {
                    match open(app) {
                        Ok(o) => {
                            files.insert(app.to_string(), o);
                        }
                        Err(e) => tracing::warn!(app, "log history: {e}"),
                    }
                }
                if let Some(o) = files.get_mut(app) {
                    if o.lines >= ROTATE_AT {
                        let _ = o.w.flush();
                        let (old, cur) = history_files(dir, app);
                        let _ = std::fs::rename(&cur, &old);
                        // A fresh file: its writer and buffer are reused, nothing to count.
                        match std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&cur)
                        {
                            Ok(f) => {
                                *o.w.get_mut() = f;
                                o.lines = 0;
                            }
                            Err(e) => {
                                tracing::warn!(app, "log history: {e}");
                                files.remove(app);
                            }
                        }
                    }
                }
                if let Some(o) = files.get_mut(app) {
                    if serde_json::to_writer(&mut o.w, &line).is_ok() {
                        let _ = o.w.write_all(b"\n");
                        o.lines += 1;
                    }
                }
            }
            DiskMsg::Forget(app) => {
                files.remove(&app);
                let (old, cur) = history_files(dir, &app);
                let _ = std::fs::remove_file(old);
                let _ = std::fs::remove_file(cur);
            }
            DiskMsg::Rename(from, to) => {
                if let Some(mut o) = files.remove(&from) {
                    let _ = o.w.flush();
                }
                let (old_a, cur_a) = history_files(dir, &from);
                let (old_b, cur_b) = history_files(dir, &to);
                let _ = std::fs::rename(old_a, old_b);
                let _ = std::fs::rename(cur_a, cur_b);
            }
            DiskMsg::Flush(done) => {
                for o in files.values_mut() {
                    let _ = o.w.flush();
                }
                let _ = done.send(());
            }
        }
        msg = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(mpsc::TryRecvError::Empty) => {
                for o in files.values_mut() {
                    let _ = o.w.flush();
                }
                // Nap before parking: under a steady stream of lines the writer is then never
                // parked, so pushing a line never has to wake a thread.
                std::thread::sleep(std::time::Duration::from_millis(10));
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(mpsc::TryRecvError::Empty) => rx.recv().ok(),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => None,
        };
    }
    for o in files.values_mut() {
        let _ = o.w.flush();
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
    fn history_survives_on_disk_bounded_and_long_lines_split() {
        let dir = tempfile::tempdir().unwrap();
        {
            let logs = Logs::with_dir(dir.path()).unwrap();
            for i in 0..(2 * ROTATE_AT + 10) {
                logs.push("a", LogLine::new("app", "web.1", format!("{i}")));
            }
            logs.push("a", LogLine::new("app", "web.1", "x".repeat(25_000)));
            logs.push("b", LogLine::new("app", "web.1", "only"));
            logs.flush();
        }
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 3, "a.jsonl, a.1.jsonl, b.jsonl");
        for f in &files {
            let n = std::fs::read_to_string(f.path()).unwrap().lines().count();
            assert!(n <= ROTATE_AT, "{:?} has {n} lines", f.path());
        }
        let logs = Logs::with_dir(dir.path()).unwrap();
        let (hist, _) = logs.subscribe("a", HISTORY);
        assert_eq!(hist.len(), HISTORY);
        let tail: Vec<usize> = hist.iter().rev().map(|l| l.message.len()).take(3).collect();
        assert_eq!(tail, vec![5_000, 10_000, 10_000], "25 kB split in 3");
        assert_eq!(
            hist[hist.len() - 4].message,
            format!("{}", 2 * ROTATE_AT + 9)
        );
        logs.rename("b", "c");
        logs.flush();
        let logs2 = Logs::with_dir(dir.path()).unwrap();
        assert_eq!(logs2.subscribe("c", 10).0[0].message, "only");
        logs.forget("c");
        logs.flush();
        assert!(!dir.path().join("c.jsonl").exists());
    }

    #[test]
    fn splits_at_char_boundaries() {
        let s = "é".repeat(6_000); // 12,000 bytes
        let parts = split_message(&s);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.len() <= MAX_LINE));
        assert_eq!(parts.concat(), s);
    }

    #[test]
    fn timestamps_as_chrono_writes_them() {
        use chrono::TimeZone;
        for (secs, nanos) in [
            (0, 0),
            (1_795_453_502, 123_456_789),
            (1_795_453_502, 999_999_999),
            (1_795_453_503, 1_000),
            (951_782_400, 500_000), // 2000-02-29
        ] {
            let t = chrono::Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(
                timestamp(t),
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
            );
        }
        let l = LogLine::new("heroku", "router", "x");
        assert!(
            chrono::DateTime::parse_from_rfc3339(&l.ts).is_ok(),
            "{}",
            l.ts
        );
        assert!(l.ts.ends_with("+00:00") && l.ts.len() == 32, "{}", l.ts);
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
