//! The dashboard's whole state ([`Model`]), what can happen to it ([`Msg`]) and what it asks the
//! outside world to do ([`Cmd`]). Plain data: `update` and `view` are pure functions of it.

use crate::api;
use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyEvent, MouseEvent};
use std::collections::{HashMap, VecDeque};

/// Lines kept for the logs pane (Heroku's history per app).
pub const LOG_CAP: usize = crate::logs::HISTORY;

/// A resource shown by a pane, refetched when an event concerns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Formation,
    Dynos,
    Releases,
    Apps,
    /// The app's add-ons and the scheduler's jobs (one pane, one fetch of each).
    Addons,
}

/// What a pane shows: still loading, the daemon's answer, or why there is none (an endpoint
/// this daemon lacks answers 404: the pane says "not available" and the rest keeps working).
#[derive(Debug, Clone, PartialEq)]
pub enum Avail<T> {
    Loading,
    Ready(T),
    Unavailable(String),
}

impl<T> Avail<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Avail::Ready(t) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Formation,
    Dynos,
    Releases,
    Logs,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Formation, Pane::Dynos, Pane::Releases, Pane::Logs];
}

/// What the add-ons pane shows: the app's add-ons (name, plan, state) and its scheduler's jobs
/// with their next run.
#[derive(Debug, Clone, Default)]
pub struct Addons {
    pub addons: Vec<api::Addon>,
    pub jobs: Vec<api::scheduler::Job>,
}

/// Rows of the add-ons pane at most; more are counted in its title.
pub const ADDON_ROWS: usize = 3;

/// An action that changes the app and so asks first.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    Restart { dyno: String },
    Rollback { release_id: String, version: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    Confirm(Confirm),
    /// The app switcher, with the highlighted row.
    Apps(usize),
}

/// `--source` of the logs pane, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFilter {
    All,
    App,
    Heroku,
    Router,
}

impl SourceFilter {
    pub fn next(self) -> Self {
        match self {
            SourceFilter::All => SourceFilter::App,
            SourceFilter::App => SourceFilter::Heroku,
            SourceFilter::Heroku => SourceFilter::Router,
            SourceFilter::Router => SourceFilter::All,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SourceFilter::All => "all",
            SourceFilter::App => "app",
            SourceFilter::Heroku => "heroku",
            SourceFilter::Router => "router",
        }
    }
}

/// One line of the app's log stream, parsed from Heroku's format
/// `2026-11-23T17:05:02.123456+00:00 app[web.1]: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub ts: Option<DateTime<Utc>>,
    pub source: String,
    pub dyno: String,
    pub message: String,
}

impl LogEntry {
    pub fn parse(line: &str) -> LogEntry {
        let parsed = (|| {
            let (ts, rest) = line.split_once(' ')?;
            let ts = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
            let (head, message) = rest.split_once("]: ").or_else(|| {
                rest.strip_suffix(']')
                    .map(|h| (h, ""))
                    .or_else(|| rest.split_once("]:"))
            })?;
            let (source, dyno) = head.split_once('[')?;
            Some(LogEntry {
                ts: Some(ts),
                source: source.to_string(),
                dyno: dyno.to_string(),
                message: message.to_string(),
            })
        })();
        // Anything else (`Error L10 …` from the stream itself) is kept as a logplex line.
        parsed.unwrap_or_else(|| LogEntry {
            ts: None,
            source: "logplex".into(),
            dyno: String::new(),
            message: line.to_string(),
        })
    }

    pub fn is_router(&self) -> bool {
        self.source == "heroku" && self.dyno == "router"
    }

    /// The router line's `key=value` field, e.g. `status`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.message.split_whitespace().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.trim_matches('"'))
        })
    }

    pub fn matches(&self, source: SourceFilter, dyno: Option<&str>, search: &str) -> bool {
        let source_ok = match source {
            SourceFilter::All => true,
            SourceFilter::App => self.source == "app",
            SourceFilter::Heroku => self.source == "heroku",
            SourceFilter::Router => self.is_router(),
        };
        // `web` matches web.1, web.2 (as `--ps web` does); `web.1` only itself.
        let dyno_ok = dyno.is_none_or(|d| {
            self.dyno == d || self.dyno.split('.').next() == Some(d) && !d.contains('.')
        });
        let search_ok = search.is_empty()
            || self.message.to_lowercase().contains(&search.to_lowercase())
            || self.dyno.contains(search);
        source_ok && dyno_ok && search_ok
    }
}

/// Requests seen in the router's lines, in 5-second buckets over the last 5 minutes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouterMetrics {
    /// (bucket start in unix seconds, bucket), oldest first.
    pub buckets: VecDeque<(i64, Bucket)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub count: u64,
    /// 1xx … 5xx.
    pub classes: [u64; 5],
    pub service_ms: Vec<u64>,
}

pub const BUCKET_SECS: i64 = 5;
pub const WINDOW_SECS: i64 = 300;

impl RouterMetrics {
    pub fn record(&mut self, at: DateTime<Utc>, status: u16, service_ms: u64) {
        let start = at.timestamp() - at.timestamp().rem_euclid(BUCKET_SECS);
        let pos = self.buckets.iter().rposition(|(s, _)| *s <= start);
        let b = match pos {
            Some(i) if self.buckets[i].0 == start => &mut self.buckets[i].1,
            Some(i) => {
                self.buckets.insert(i + 1, (start, Bucket::default()));
                &mut self.buckets[i + 1].1
            }
            None => {
                self.buckets.push_front((start, Bucket::default()));
                &mut self.buckets[0].1
            }
        };
        b.count += 1;
        if (100..600).contains(&status) {
            b.classes[(status / 100 - 1) as usize] += 1;
        }
        b.service_ms.push(service_ms);
    }

    /// Drops buckets older than the window.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| *s <= now.timestamp() - WINDOW_SECS)
        {
            self.buckets.pop_front();
        }
    }

    /// The last `n` buckets up to `now` (oldest first), empty ones included.
    pub fn series(&self, now: DateTime<Utc>, n: usize) -> Vec<Bucket> {
        let last = now.timestamp() - now.timestamp().rem_euclid(BUCKET_SECS);
        (0..n as i64)
            .rev()
            .map(|i| {
                let s = last - i * BUCKET_SECS;
                self.buckets
                    .iter()
                    .find(|(b, _)| *b == s)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Everything of the last `secs` seconds in one bucket.
    pub fn summary(&self, now: DateTime<Utc>, secs: i64) -> Bucket {
        let mut out = Bucket::default();
        for b in self.series(now, (secs / BUCKET_SECS) as usize) {
            out.count += b.count;
            for i in 0..5 {
                out.classes[i] += b.classes[i];
            }
            out.service_ms.extend(b.service_ms);
        }
        out
    }
}

/// The `p`th percentile (nearest rank) of `v`, 0 when empty.
pub fn percentile(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// Memory and CPU of one dyno, from the API (`dyno-stats`: the daemon reads its cgroup).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynoStats {
    pub rss_bytes: Option<u64>,
    pub cpu_percent: Option<f64>,
    /// The previous CPU sample: (cumulative ns, when in seconds), for the next percentage.
    pub last_cpu: Option<(u64, f64)>,
}

/// One reading of a dyno's memory and CPU time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub dyno_id: String,
    pub rss_bytes: Option<u64>,
    pub cpu_ns: Option<u64>,
}

/// Where the logs pane looks: following the stream, or held at a line (paused or scrolled back).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogView {
    /// Sequence number of the bottom line shown; `None` follows the stream.
    pub anchor: Option<u64>,
    pub source: Option<SourceFilter>,
    pub dyno: Option<String>,
    pub search: String,
    /// `Some` while the search is being typed.
    pub typing: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stream {
    Connecting,
    Live,
    Lost(String),
}

pub struct Model {
    pub app: String,
    pub apps: Avail<Vec<String>>,
    pub now: DateTime<Utc>,
    /// When the current log subscription started: older lines are history and refetch nothing.
    pub live_since: Option<DateTime<Utc>>,
    pub stream: Stream,
    pub color: bool,
    /// Terminal size (for mouse hit-testing with the same layout the view uses).
    pub size: (u16, u16),
    pub formation: Avail<Vec<api::Formation>>,
    pub dynos: Avail<Vec<api::Dyno>>,
    pub releases: Avail<Vec<api::Release>>,
    /// Shown only once the app has add-ons or jobs (the screen stays as it was for the others).
    pub addons: Avail<Addons>,
    pub stats: HashMap<String, DynoStats>,
    /// Crashes per dyno name seen in the log since the current release.
    pub restarts: HashMap<String, u32>,
    pub logs: VecDeque<LogEntry>,
    /// Sequence number of `logs[0]`.
    pub first_seq: u64,
    pub log_view: LogView,
    pub metrics: RouterMetrics,
    pub focus: Pane,
    /// Highlighted row per pane (indexed by `Pane as usize`).
    pub selected: [usize; 4],
    pub overlay: Overlay,
    /// The outcome of the last action, shown in the footer.
    pub status: Option<String>,
    pub quit: bool,
}

impl Model {
    pub fn new(app: &str, now: DateTime<Utc>, color: bool) -> Model {
        Model {
            app: app.to_string(),
            apps: Avail::Loading,
            now,
            live_since: None,
            stream: Stream::Connecting,
            color,
            size: (80, 24),
            formation: Avail::Loading,
            dynos: Avail::Loading,
            releases: Avail::Loading,
            addons: Avail::Loading,
            stats: HashMap::new(),
            restarts: HashMap::new(),
            logs: VecDeque::new(),
            first_seq: 0,
            log_view: LogView::default(),
            metrics: RouterMetrics::default(),
            focus: Pane::Formation,
            selected: [0; 4],
            overlay: Overlay::None,
            status: None,
            quit: false,
        }
    }

    /// The add-ons pane's rows (0: not shown).
    pub fn addon_rows(&self) -> usize {
        match self.addons.ready() {
            Some(a) if !a.addons.is_empty() || !a.jobs.is_empty() => {
                a.addons.len().max(a.jobs.len()).clamp(1, ADDON_ROWS)
            }
            _ => 0,
        }
    }

    pub fn sel(&self, pane: Pane) -> usize {
        self.selected[pane as usize]
    }

    pub fn rows(&self, pane: Pane) -> usize {
        match pane {
            Pane::Formation => self.formation.ready().map_or(0, Vec::len),
            Pane::Dynos => self.dynos.ready().map_or(0, Vec::len),
            Pane::Releases => self.releases.ready().map_or(0, Vec::len),
            Pane::Logs => self.logs.len(),
        }
    }

    pub fn selected_formation(&self) -> Option<&api::Formation> {
        self.formation.ready()?.get(self.sel(Pane::Formation))
    }
    pub fn selected_dyno(&self) -> Option<&api::Dyno> {
        self.dynos.ready()?.get(self.sel(Pane::Dynos))
    }
    pub fn selected_release(&self) -> Option<&api::Release> {
        self.releases.ready()?.get(self.sel(Pane::Releases))
    }

    /// The log lines the pane shows, with their sequence numbers, after the filters.
    pub fn visible_logs(&self) -> Vec<(u64, &LogEntry)> {
        let v = &self.log_view;
        let search = v.typing.as_deref().unwrap_or(&v.search);
        self.logs
            .iter()
            .enumerate()
            .map(|(i, l)| (self.first_seq + i as u64, l))
            .filter(|(_, l)| {
                l.matches(
                    v.source.unwrap_or(SourceFilter::All),
                    v.dyno.as_deref(),
                    search,
                )
            })
            .collect()
    }
}

/// Everything that can happen to the dashboard.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Once a second: the clock moves (ages, uptimes, sparklines) and stats are read.
    Tick(DateTime<Utc>),
    /// The log subscription of `app` is open from this moment on.
    Subscribed(String, DateTime<Utc>),
    StreamLost(String, String),
    /// One line of the app's log stream.
    Log(String, String),
    Apps(Result<Vec<String>, String>),
    Formation(String, Result<Vec<api::Formation>, String>),
    Dynos(String, Result<Vec<api::Dyno>, String>),
    Releases(String, Result<Vec<api::Release>, String>),
    Addons(String, Result<Addons, String>),
    /// stats readings and when (seconds on a monotonic clock).
    Stats(Vec<Sample>, f64),
    /// An action finished: what to tell the user.
    Done(Result<String, String>),
    Quit,
}

/// What `update` asks the runtime to do; results come back as [`Msg`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Fetch(Resource),
    /// Open the log subscription of the model's app (replacing any other).
    Subscribe,
    Scale {
        process_type: String,
        quantity: u32,
    },
    Restart {
        dyno: String,
    },
    Rollback {
        release_id: String,
        version: u32,
    },
    ReadStats(Vec<String>),
    Quit,
}
