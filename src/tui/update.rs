//! `update(model, msg)`: the only place the dashboard's state changes. Effects (API calls, the
//! log subscription, stats reads) are returned as [`Cmd`]s for the runtime to carry out.

use super::model::*;
use super::view;
use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind};
use ratatui::layout::{Position, Rect};

pub fn update(m: &mut Model, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(k) => key(m, k),
        Msg::Mouse(e) => {
            let areas = view::layout(Rect::new(0, 0, m.size.0, m.size.1), m.addon_rows());
            let at = Position::new(e.column, e.row);
            let pane = [
                (Pane::Formation, areas.formation),
                (Pane::Dynos, areas.dynos),
                (Pane::Releases, areas.releases),
                (Pane::Logs, areas.logs),
            ]
            .into_iter()
            .find(|(_, r)| r.contains(at))
            .map(|(p, _)| p);
            let Some(pane) = pane else { return vec![] };
            match e.kind {
                MouseEventKind::ScrollUp => scroll(m, pane, -3),
                MouseEventKind::ScrollDown => scroll(m, pane, 3),
                MouseEventKind::Down(MouseButton::Left) => m.focus = pane,
                _ => {}
            }
            vec![]
        }
        Msg::Resize(w, h) => {
            m.size = (w, h);
            vec![]
        }
        Msg::Tick(now) => {
            m.now = now;
            m.metrics.expire(now);
            match m.dynos.ready() {
                Some(d) if !d.is_empty() => {
                    vec![Cmd::ReadStats(d.iter().map(|d| d.id.clone()).collect())]
                }
                _ => vec![],
            }
        }
        Msg::Subscribed(app, at) if app == m.app => {
            m.live_since = Some(at);
            m.stream = Stream::Live;
            // Subscribed first, fetched second: nothing that happens in between is missed.
            vec![
                Cmd::Fetch(Resource::Formation),
                Cmd::Fetch(Resource::Dynos),
                Cmd::Fetch(Resource::Releases),
                Cmd::Fetch(Resource::Addons),
            ]
        }
        Msg::StreamLost(app, e) if app == m.app => {
            m.stream = Stream::Lost(e);
            vec![]
        }
        Msg::Log(app, line) if app == m.app => log_line(m, &line),
        Msg::Apps(r) => {
            m.apps = avail(r);
            vec![]
        }
        Msg::Formation(app, r) if app == m.app => {
            m.formation = avail(r);
            clamp(m);
            vec![]
        }
        Msg::Dynos(app, r) if app == m.app => {
            m.dynos = avail(r.map(|mut d| {
                d.sort_by_key(|d| (d.process_type.clone(), dyno_number(&d.name)));
                d
            }));
            if let Some(d) = m.dynos.ready() {
                let ids: Vec<&String> = d.iter().map(|d| &d.id).collect();
                m.stats.retain(|id, _| ids.contains(&id));
            }
            clamp(m);
            vec![]
        }
        Msg::Releases(app, r) if app == m.app => {
            m.releases = avail(r.map(|mut v| {
                v.sort_by_key(|r| std::cmp::Reverse(r.version));
                v
            }));
            clamp(m);
            vec![]
        }
        Msg::Addons(app, r) if app == m.app => {
            m.addons = avail(r);
            vec![]
        }
        Msg::Stats(samples, at) => {
            for s in samples {
                let st = m.stats.entry(s.dyno_id).or_default();
                st.rss_bytes = s.rss_bytes;
                if let Some(ns) = s.cpu_ns {
                    if let Some((prev, prev_at)) = st.last_cpu {
                        if at > prev_at && ns >= prev {
                            st.cpu_percent =
                                Some((ns - prev) as f64 / ((at - prev_at) * 1e9) * 100.0);
                        }
                    }
                    st.last_cpu = Some((ns, at));
                }
            }
            vec![]
        }
        Msg::Done(r) => {
            m.status = Some(r.unwrap_or_else(|e| e));
            vec![]
        }
        Msg::Quit => quit(m),
        // Answers about an app the user has switched away from.
        Msg::Subscribed(..)
        | Msg::StreamLost(..)
        | Msg::Log(..)
        | Msg::Formation(..)
        | Msg::Dynos(..)
        | Msg::Releases(..)
        | Msg::Addons(..) => vec![],
    }
}

fn avail<T>(r: Result<T, String>) -> Avail<T> {
    match r {
        Ok(v) => Avail::Ready(v),
        Err(e) => Avail::Unavailable(e),
    }
}

fn dyno_number(name: &str) -> u64 {
    name.rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn quit(m: &mut Model) -> Vec<Cmd> {
    m.quit = true;
    vec![Cmd::Quit]
}

fn clamp(m: &mut Model) {
    for p in [Pane::Formation, Pane::Dynos, Pane::Releases] {
        let n = m.rows(p);
        m.selected[p as usize] = m.selected[p as usize].min(n.saturating_sub(1));
    }
}

/// One line of the stream: shown, counted (router metrics, crashes), and, when it is news
/// rather than history, the resource it concerns is refetched.
fn log_line(m: &mut Model, line: &str) -> Vec<Cmd> {
    let e = LogEntry::parse(line);
    let mut cmds = vec![];
    let live = matches!((e.ts, m.live_since), (Some(ts), Some(since)) if ts >= since);
    if e.is_router() {
        if let (Some(ts), Some(status)) = (e.ts, e.field("status").and_then(|s| s.parse().ok())) {
            let service = e
                .field("service")
                .and_then(|s| s.trim_end_matches("ms").parse().ok())
                .unwrap_or(0);
            m.metrics.record(ts, status, service);
        }
    } else if e.source == "heroku" {
        if e.message.contains(" to crashed") {
            *m.restarts.entry(e.dyno.clone()).or_default() += 1;
        }
        if live {
            cmds.push(Cmd::Fetch(Resource::Dynos));
            // A dyno starting or stopping may mean someone scaled from elsewhere.
            if e.message.starts_with("Starting process") || e.message.starts_with("Stopping all") {
                cmds.push(Cmd::Fetch(Resource::Formation));
            }
            // A job skipped or failed to start: its next run moved on.
            if e.dyno == "scheduler" {
                cmds.push(Cmd::Fetch(Resource::Addons));
            }
        }
    } else if e.source == "app" && e.dyno == "api" {
        if e.message.starts_with("Release ") || e.message.starts_with("Rollback") {
            m.restarts.clear();
        }
        if live {
            cmds.push(Cmd::Fetch(Resource::Formation));
            cmds.push(Cmd::Fetch(Resource::Releases));
            // Add-on releases (`Attach …`, `Detach …`), jobs added or removed, a job's run.
            if e.message.starts_with("Attach ")
                || e.message.starts_with("Detach ")
                || e.message.contains("scheduler job")
                || e.message.ends_with("by user scheduler@addons.heroku.com")
            {
                cmds.push(Cmd::Fetch(Resource::Addons));
            }
        }
    }
    m.logs.push_back(e);
    if m.logs.len() > LOG_CAP {
        m.logs.pop_front();
        m.first_seq += 1;
        if let Some(a) = m.log_view.anchor.as_mut() {
            *a = (*a).max(m.first_seq);
        }
    }
    cmds
}

fn key(m: &mut Model, k: KeyEvent) -> Vec<Cmd> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') {
        return quit(m);
    }
    match m.overlay.clone() {
        Overlay::Confirm(c) => {
            m.overlay = Overlay::None;
            if !matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                m.status = Some("Cancelled.".into());
                return vec![];
            }
            return match c {
                Confirm::Restart { dyno } => {
                    m.status = Some(format!("Restarting {dyno}…"));
                    vec![Cmd::Restart { dyno }]
                }
                Confirm::Rollback {
                    release_id,
                    version,
                } => {
                    m.status = Some(format!("Rolling back to v{version}…"));
                    vec![Cmd::Rollback {
                        release_id,
                        version,
                    }]
                }
            };
        }
        Overlay::Help => {
            m.overlay = Overlay::None;
            return vec![];
        }
        Overlay::Apps(i) => return app_switcher(m, i, k.code),
        Overlay::None => {}
    }
    if let Some(t) = m.log_view.typing.as_mut() {
        match k.code {
            KeyCode::Char(c) => t.push(c),
            KeyCode::Backspace => {
                t.pop();
            }
            KeyCode::Enter => m.log_view.search = m.log_view.typing.take().unwrap_or_default(),
            KeyCode::Esc => m.log_view.typing = None,
            _ => {}
        }
        return vec![];
    }
    match k.code {
        KeyCode::Char('q') => return quit(m),
        KeyCode::Char('?') => m.overlay = Overlay::Help,
        KeyCode::Esc => m.status = None,
        KeyCode::Tab => m.focus = Pane::ALL[(m.focus as usize + 1) % 4],
        KeyCode::BackTab => m.focus = Pane::ALL[(m.focus as usize + 3) % 4],
        KeyCode::Char(c @ '1'..='4') => m.focus = Pane::ALL[c as usize - '1' as usize],
        KeyCode::Up | KeyCode::Char('k') => scroll(m, m.focus, -1),
        KeyCode::Down | KeyCode::Char('j') => scroll(m, m.focus, 1),
        KeyCode::PageUp => scroll(m, Pane::Logs, -10),
        KeyCode::PageDown => scroll(m, Pane::Logs, 10),
        KeyCode::End | KeyCode::Char('G') => m.log_view.anchor = None,
        KeyCode::Char('+') | KeyCode::Char('=') => return scale(m, 1),
        KeyCode::Char('-') | KeyCode::Char('_') => return scale(m, -1),
        KeyCode::Char('r') => ask(m),
        KeyCode::Char('a') => {
            let i = m
                .apps
                .ready()
                .and_then(|a| a.iter().position(|x| *x == m.app))
                .unwrap_or(0);
            m.overlay = Overlay::Apps(i);
            return vec![Cmd::Fetch(Resource::Apps)];
        }
        KeyCode::Char('p') | KeyCode::Char(' ') => {
            m.log_view.anchor = match m.log_view.anchor {
                None => m.visible_logs().last().map(|(s, _)| *s),
                Some(_) => None,
            }
        }
        KeyCode::Char('s') => {
            m.log_view.source = match m.log_view.source.unwrap_or(SourceFilter::All).next() {
                SourceFilter::All => None,
                s => Some(s),
            }
        }
        KeyCode::Char('d') => m.log_view.dyno = next_dyno_filter(m),
        KeyCode::Char('/') => m.log_view.typing = Some(m.log_view.search.clone()),
        KeyCode::Char('c') => {
            m.log_view.source = None;
            m.log_view.dyno = None;
            m.log_view.search.clear();
        }
        _ => {}
    }
    vec![]
}

/// `d` cycles: all → each process type → each dyno → all.
fn next_dyno_filter(m: &Model) -> Option<String> {
    let mut choices: Vec<String> = vec![];
    if let Some(f) = m.formation.ready() {
        choices.extend(f.iter().map(|f| f.process_type.clone()));
    }
    if let Some(d) = m.dynos.ready() {
        choices.extend(d.iter().map(|d| d.name.clone()));
    }
    choices.dedup();
    match &m.log_view.dyno {
        None => choices.first().cloned(),
        Some(cur) => {
            let i = choices.iter().position(|c| c == cur);
            i.and_then(|i| choices.get(i + 1).cloned())
        }
    }
}

fn app_switcher(m: &mut Model, i: usize, code: KeyCode) -> Vec<Cmd> {
    let apps = m.apps.ready().cloned().unwrap_or_default();
    match code {
        KeyCode::Up | KeyCode::Char('k') => m.overlay = Overlay::Apps(i.saturating_sub(1)),
        KeyCode::Down | KeyCode::Char('j') => {
            m.overlay = Overlay::Apps((i + 1).min(apps.len().saturating_sub(1)))
        }
        KeyCode::Enter => {
            m.overlay = Overlay::None;
            if let Some(app) = apps.get(i) {
                if *app != m.app {
                    let fresh = Model::new(app, m.now, m.color);
                    let old = std::mem::replace(m, fresh);
                    m.size = old.size;
                    m.apps = old.apps;
                    m.focus = old.focus;
                    return vec![Cmd::Subscribe];
                }
            }
        }
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('a') => m.overlay = Overlay::None,
        _ => {}
    }
    vec![]
}

fn scale(m: &mut Model, by: i64) -> Vec<Cmd> {
    let Some(f) = m.selected_formation() else {
        m.status = Some("No process type to scale.".into());
        return vec![];
    };
    let q = f.quantity as i64 + by;
    if q < 0 {
        m.status = Some(format!("{} is already at 0.", f.process_type));
        return vec![];
    }
    let process_type = f.process_type.clone();
    m.status = Some(format!("Scaling {process_type} to {q}…"));
    vec![Cmd::Scale {
        process_type,
        quantity: q as u32,
    }]
}

/// `r`: restart the selected dyno or roll back to the selected release, after a `y`.
fn ask(m: &mut Model) {
    match m.focus {
        Pane::Dynos => match m.selected_dyno() {
            Some(d) => {
                m.overlay = Overlay::Confirm(Confirm::Restart {
                    dyno: d.name.clone(),
                })
            }
            None => m.status = Some("No dyno to restart.".into()),
        },
        Pane::Releases => match m.selected_release() {
            Some(r) if r.current => {
                m.status = Some(format!("v{} is already the current release.", r.version))
            }
            Some(r) => {
                m.overlay = Overlay::Confirm(Confirm::Rollback {
                    release_id: r.id.clone(),
                    version: r.version,
                })
            }
            None => m.status = Some("No release to roll back to.".into()),
        },
        _ => {
            m.status = Some(
                "r restarts the selected dyno (Dynos) or rolls back to the selected release (Releases): Tab there first."
                    .into(),
            )
        }
    }
}

/// Moves the selection of `pane`, or scrolls the logs (up pauses them, down to the end follows).
fn scroll(m: &mut Model, pane: Pane, by: i64) {
    if pane != Pane::Logs {
        let n = m.rows(pane) as i64;
        let cur = m.sel(pane) as i64;
        m.selected[pane as usize] = (cur + by).clamp(0, (n - 1).max(0)) as usize;
        return;
    }
    let visible = m.visible_logs();
    if visible.is_empty() {
        return;
    }
    let last = visible.len() as i64 - 1;
    let cur = match m.log_view.anchor {
        None => last,
        Some(a) => visible.iter().rposition(|(s, _)| *s <= a).unwrap_or(0) as i64,
    };
    let next = (cur + by).clamp(0, last);
    m.log_view.anchor = if next == last && by > 0 {
        None
    } else {
        Some(visible[next as usize].0)
    };
}

/// "5s", "3m", "2h", "4d" between `from` and `now`.
pub fn age(now: DateTime<Utc>, from: &str) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(from) else {
        return "?".into();
    };
    let s = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}
