//! `view(model, frame)`: the screen as a pure function of the [`Model`]. No widget keeps state
//! of its own; selections and scroll positions live in the model.

use super::model::*;
use super::update::age;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, HighlightSpacing, Paragraph, Row, Sparkline, Table,
    TableState, Wrap,
};
use ratatui::Frame;

/// Where each pane goes; `update` uses it too, to know what the mouse points at.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub formation: Rect,
    pub dynos: Rect,
    pub releases: Rect,
    pub router: Rect,
    /// Zero-sized when the app has no add-ons or jobs.
    pub addons: Rect,
    pub jobs: Rect,
    pub logs: Rect,
    pub footer: Rect,
}

/// `addon_rows`: the add-ons pane's rows (`Model::addon_rows`), 0 for none.
pub fn layout(area: Rect, addon_rows: usize) -> Areas {
    // 80×24 gives each upper row 4 lines of content; taller terminals share the extra height.
    let extra = area.height.saturating_sub(24) / 4;
    // Borders and a header line around the rows; nothing at all without add-ons.
    let strip = if addon_rows == 0 {
        0
    } else {
        3 + addon_rows as u16
    };
    let [header, top, mid, strip, logs, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(6 + extra),
        Constraint::Length(6 + extra),
        Constraint::Length(strip),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let [addons, jobs] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(strip);
    let [formation, dynos] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(20)]).areas(top);
    let [releases, router] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(mid);
    Areas {
        header,
        formation,
        dynos,
        releases,
        router,
        addons,
        jobs,
        logs,
        footer,
    }
}

pub fn view(m: &Model, f: &mut Frame) {
    let a = layout(f.area(), m.addon_rows());
    header(m, f, a.header);
    formation(m, f, a.formation);
    dynos(m, f, a.dynos);
    releases(m, f, a.releases);
    router(m, f, a.router);
    if m.addon_rows() > 0 {
        addons(m, f, a.addons, a.jobs);
    }
    logs(m, f, a.logs);
    footer(m, f, a.footer);
    match &m.overlay {
        Overlay::None => {}
        Overlay::Help => help(m, f),
        Overlay::Confirm(c) => confirm(m, f, c),
        Overlay::Apps(i) => apps(m, f, *i),
    }
}

/// A foreground colour, or nothing under `NO_COLOR`.
fn fg(m: &Model, c: Color) -> Style {
    if m.color {
        Style::default().fg(c)
    } else {
        Style::default()
    }
}

fn dim(m: &Model) -> Style {
    fg(m, Color::DarkGray)
}

fn block<'a>(m: &Model, pane: Pane, title: String) -> Block<'a> {
    let focused = m.focus == pane;
    let n = pane as usize + 1;
    let b = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {n} {title} "));
    if focused {
        // Thick borders mark focus even without colour.
        b.border_type(BorderType::Thick)
            .border_style(fg(m, Color::Cyan).add_modifier(Modifier::BOLD))
    } else {
        b.border_style(dim(m))
    }
}

fn highlight(m: &Model, pane: Pane) -> Style {
    if m.focus == pane {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

fn state_style(m: &Model, state: &str) -> Style {
    match state {
        "up" => fg(m, Color::Green),
        "starting" => fg(m, Color::Yellow),
        "crashed" => fg(m, Color::Red).add_modifier(Modifier::BOLD),
        _ => dim(m),
    }
}

fn status_style(m: &Model, status: u16) -> Style {
    match status / 100 {
        2 => fg(m, Color::Green),
        3 => fg(m, Color::Cyan),
        4 => fg(m, Color::Yellow),
        5 => fg(m, Color::Red),
        _ => Style::default(),
    }
}

/// "not available: …" / "loading…" in a pane whose resource isn't there.
fn placeholder<T>(m: &Model, f: &mut Frame, area: Rect, b: Block, what: &Avail<T>) -> bool {
    let text = match what {
        Avail::Ready(_) => return false,
        Avail::Loading => "loading…".to_string(),
        Avail::Unavailable(e) => format!("not available: {e}"),
    };
    let p = Paragraph::new(text).wrap(Wrap { trim: true });
    f.render_widget(p.style(dim(m)).block(b), area);
    true
}

fn header(m: &Model, f: &mut Frame, area: Rect) {
    let stream = match &m.stream {
        Stream::Connecting => Span::styled("◌ connecting", fg(m, Color::Yellow)),
        Stream::Live => Span::styled("● live", fg(m, Color::Green)),
        Stream::Lost(_) => Span::styled("✕ reconnecting", fg(m, Color::Red)),
    };
    let mut spans = vec![
        Span::styled(" dyno dash", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(" · "),
        Span::styled(
            m.app.clone(),
            fg(m, Color::Magenta).add_modifier(Modifier::BOLD),
        ),
        Span::raw(" · "),
    ];
    if let Some(d) = m.dynos.ready() {
        let up = d.iter().filter(|d| d.state == "up").count();
        spans.push(Span::raw(format!("{up}/{} up · ", d.len())));
    }
    spans.push(stream);
    f.render_widget(Paragraph::new(Line::from(spans)), area);
    f.render_widget(
        Paragraph::new(m.now.format("%H:%M:%S UTC ").to_string())
            .alignment(Alignment::Right)
            .style(dim(m)),
        area,
    );
}

fn formation(m: &Model, f: &mut Frame, area: Rect) {
    let b = block(m, Pane::Formation, "Formation".into());
    if placeholder(m, f, area, b.clone(), &m.formation) {
        return;
    }
    let list = m.formation.ready().unwrap();
    if list.is_empty() {
        let p = Paragraph::new("no process types yet").style(dim(m));
        f.render_widget(p.block(b), area);
        return;
    }
    let rows = list.iter().map(|x| {
        Row::new(vec![
            Cell::from(x.process_type.clone()),
            Cell::from(Line::from(x.quantity.to_string()).alignment(Alignment::Right)),
            Cell::from(x.command.clone()).style(dim(m)),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(3),
            Constraint::Fill(1),
        ],
    )
    .block(b)
    .row_highlight_style(highlight(m, Pane::Formation))
    .highlight_symbol("› ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut st = TableState::default().with_selected(Some(m.sel(Pane::Formation)));
    f.render_stateful_widget(t, area, &mut st);
}

fn bytes(n: u64) -> String {
    let mb = n as f64 / (1024.0 * 1024.0);
    if mb >= 1000.0 {
        format!("{:.1}G", mb / 1024.0)
    } else {
        format!("{mb:.1}M")
    }
}

fn dynos(m: &Model, f: &mut Frame, area: Rect) {
    let n = m.dynos.ready().map_or(0, Vec::len);
    let b = block(m, Pane::Dynos, format!("Dynos ({n})"));
    if placeholder(m, f, area, b.clone(), &m.dynos) {
        return;
    }
    let list = m.dynos.ready().unwrap();
    if list.is_empty() {
        let p = Paragraph::new("no dynos running: press + to scale up").style(dim(m));
        f.render_widget(p.block(b), area);
        return;
    }
    let rows = list.iter().map(|d| {
        let st = m.stats.get(&d.id);
        let mem = st.and_then(|s| s.rss_bytes).map_or("–".into(), bytes);
        let cpu = st
            .and_then(|s| s.cpu_percent)
            .map_or("–".into(), |c| format!("{c:.1}%"));
        let restarts = m.restarts.get(&d.name).copied().unwrap_or(0);
        Row::new(vec![
            Cell::from(d.name.clone()),
            Cell::from(d.state.clone()).style(state_style(m, &d.state)),
            Cell::from(format!("v{}", d.release.version)),
            Cell::from(age(m.now, &d.created_at)),
            Cell::from(Line::from(mem).alignment(Alignment::Right)),
            Cell::from(Line::from(cpu).alignment(Alignment::Right)),
            Cell::from(Line::from(restarts.to_string()).alignment(Alignment::Right)),
        ])
    });
    let header = Row::new(["dyno", "state", "rel", "up", "mem", "cpu", "rst"]).style(dim(m));
    let t = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(3),
        ],
    )
    .header(header)
    .block(b)
    .row_highlight_style(highlight(m, Pane::Dynos))
    .highlight_symbol("› ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut st = TableState::default().with_selected(Some(m.sel(Pane::Dynos)));
    f.render_stateful_widget(t, area, &mut st);
}

fn releases(m: &Model, f: &mut Frame, area: Rect) {
    let b = block(m, Pane::Releases, "Releases".into());
    if placeholder(m, f, area, b.clone(), &m.releases) {
        return;
    }
    let list = m.releases.ready().unwrap();
    if list.is_empty() {
        let p = Paragraph::new("no releases yet: dyno up").style(dim(m));
        f.render_widget(p.block(b), area);
        return;
    }
    let rows = list.iter().map(|r| {
        let (mark, style) = match (r.current, r.status.as_str()) {
            (true, _) => ("*", fg(m, Color::Green).add_modifier(Modifier::BOLD)),
            (_, "failed") => ("✕", fg(m, Color::Red)),
            (_, "pending") => ("…", fg(m, Color::Yellow)),
            _ => (" ", Style::default()),
        };
        Row::new(vec![
            Cell::from(format!("v{}", r.version)).style(style),
            Cell::from(mark).style(style),
            Cell::from(r.description.clone()),
            Cell::from(Line::from(age(m.now, &r.created_at)).alignment(Alignment::Right)),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(4),
        ],
    )
    .block(b)
    .row_highlight_style(highlight(m, Pane::Releases))
    .highlight_symbol("› ")
    .highlight_spacing(HighlightSpacing::Always);
    let mut st = TableState::default().with_selected(Some(m.sel(Pane::Releases)));
    f.render_stateful_widget(t, area, &mut st);
}

fn router(m: &Model, f: &mut Frame, area: Rect) {
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(dim(m))
        .title(" Router · last 5 min ");
    let inner = b.inner(area);
    f.render_widget(b, area);
    let [l1, l2, l3, l4] = Layout::vertical([Constraint::Length(1); 4]).areas(inner);
    let minute = m.metrics.summary(m.now, 60);
    let label_w = 13;
    let series = m.metrics.series(
        m.now,
        (inner.width.saturating_sub(label_w) as usize).min((WINDOW_SECS / BUCKET_SECS) as usize),
    );
    let p50: Vec<u64> = series
        .iter()
        .map(|b| percentile(&b.service_ms, 50.0))
        .collect();
    let p95: Vec<u64> = series
        .iter()
        .map(|b| percentile(&b.service_ms, 95.0))
        .collect();
    let count: Vec<u64> = series.iter().map(|b| b.count).collect();
    let rows = [
        (
            l1,
            format!("req/s {:>6.2}", minute.count as f64 / 60.0),
            count,
            Color::Cyan,
        ),
        (
            l2,
            format!("p50 {:>6}ms", percentile(&minute.service_ms, 50.0)),
            p50,
            Color::Green,
        ),
        (
            l3,
            format!("p95 {:>6}ms", percentile(&minute.service_ms, 95.0)),
            p95,
            Color::Yellow,
        ),
    ];
    for (r, label, data, c) in rows {
        let [lab, spark] =
            Layout::horizontal([Constraint::Length(label_w), Constraint::Fill(1)]).areas(r);
        f.render_widget(Paragraph::new(label), lab);
        f.render_widget(Sparkline::default().data(&data).style(fg(m, c)), spark);
    }
    let mut classes = vec![];
    for (i, n) in minute.classes.iter().enumerate().skip(1) {
        let code = (i as u16 + 1) * 100;
        classes.push(Span::styled(
            format!("{}xx {n}", i + 1),
            status_style(m, code),
        ));
        classes.push(Span::raw("  "));
    }
    classes.push(Span::styled("(last 60 s)", dim(m)));
    f.render_widget(Paragraph::new(Line::from(classes)), l4);
}

/// The state as Heroku's CLI says it: `created`, `creating`.
fn addon_state(s: &str) -> &str {
    match s {
        "provisioned" => "created",
        "provisioning" => "creating",
        s => s,
    }
}

/// "in 42s", "in 7m", "in 3h", "in 2d" until `at`.
fn until(now: chrono::DateTime<chrono::Utc>, at: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(at) else {
        return "?".into();
    };
    let s = (t.with_timezone(&chrono::Utc) - now).num_seconds().max(0);
    match s {
        s if s < 60 => format!("in {s}s"),
        s if s < 3600 => format!("in {}m", s / 60),
        s if s < 86400 => format!("in {}h", s / 3600),
        s => format!("in {}d", s / 86400),
    }
}

/// The add-ons (name, plan, state) and, beside them, the scheduler's jobs with their next run.
fn addons(m: &Model, f: &mut Frame, left: Rect, right: Rect) {
    let Some(a) = m.addons.ready() else { return };
    let more = |n: usize| {
        if n > ADDON_ROWS {
            format!(", {} shown", ADDON_ROWS)
        } else {
            String::new()
        }
    };
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(dim(m))
        .title(format!(
            " Add-ons ({}{}) ",
            a.addons.len(),
            more(a.addons.len())
        ));
    let rows = a.addons.iter().take(ADDON_ROWS).map(|x| {
        let plan = x
            .plan
            .name
            .split_once(':')
            .map_or(x.plan.name.as_str(), |(_, p)| p);
        Row::new(vec![
            Cell::from(x.name.clone()),
            Cell::from(plan.to_string()),
            Cell::from(addon_state(&x.state).to_string()).style(if x.state == "provisioned" {
                fg(m, Color::Green)
            } else {
                fg(m, Color::Yellow)
            }),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(["add-on", "plan", "state"]).style(dim(m)))
    .block(b);
    f.render_widget(t, left);

    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(dim(m))
        .title(format!(
            " Scheduler ({} jobs{}) ",
            a.jobs.len(),
            more(a.jobs.len())
        ));
    if a.jobs.is_empty() {
        let has = a.addons.iter().any(|x| x.addon_service.name == "scheduler");
        let text = if has {
            "no jobs: dyno cron:add"
        } else {
            "no scheduler: dyno addons:create scheduler"
        };
        f.render_widget(Paragraph::new(text).style(dim(m)).block(b), right);
        return;
    }
    let rows = a.jobs.iter().take(ADDON_ROWS).map(|j| {
        Row::new(vec![
            Cell::from(j.id.to_string()),
            Cell::from(j.schedule.clone()),
            Cell::from(
                j.next_run_at
                    .as_deref()
                    .map_or("never".into(), |t| until(m.now, t)),
            ),
            Cell::from(j.command.clone()).style(dim(m)),
        ])
    });
    let t = Table::new(
        rows,
        [
            Constraint::Length(2),
            Constraint::Length(13),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["id", "schedule", "next", "command"]).style(dim(m)))
    .block(b);
    f.render_widget(t, right);
}

fn logs(m: &Model, f: &mut Frame, area: Rect) {
    let v = &m.log_view;
    let visible = m.visible_logs();
    let bottom = match v.anchor {
        None => visible.len(),
        Some(a) => visible
            .iter()
            .rposition(|(s, _)| *s <= a)
            .map_or(0, |i| i + 1),
    };
    let mut title = match v.anchor {
        None => "Logs · following".to_string(),
        Some(_) => format!("Logs · paused, {} newer", visible.len() - bottom),
    };
    if let Some(s) = v.source {
        title.push_str(&format!(" · source {}", s.label()));
    }
    if let Some(d) = &v.dyno {
        title.push_str(&format!(" · dyno {d}"));
    }
    if !v.search.is_empty() && v.typing.is_none() {
        title.push_str(&format!(" · /{}", v.search));
    }
    let b = block(m, Pane::Logs, title);
    let h = b.inner(area).height as usize;
    let lines: Vec<Line> = visible[bottom.saturating_sub(h)..bottom]
        .iter()
        .map(|(_, e)| log_line(m, e))
        .collect();
    f.render_widget(Paragraph::new(lines).block(b), area);
}

fn log_line<'a>(m: &Model, e: &'a LogEntry) -> Line<'a> {
    let ts =
        e.ts.map(|t| t.format("%H:%M:%S ").to_string())
            .unwrap_or_default();
    if e.source == "logplex" {
        return Line::from(vec![Span::styled(e.message.as_str(), fg(m, Color::Red))]);
    }
    let who_style = match (e.source.as_str(), e.is_router()) {
        (_, true) => fg(m, Color::Blue),
        ("heroku", _) => fg(m, Color::Magenta),
        (_, _) if e.dyno == "api" => fg(m, Color::Yellow),
        _ => fg(m, Color::Cyan),
    };
    let msg_style = if e.is_router() {
        e.field("status")
            .and_then(|s| s.parse().ok())
            .map_or(Style::default(), |s| status_style(m, s))
    } else {
        Style::default()
    };
    let message = if e.is_router() {
        router_summary(e)
    } else {
        e.message.clone()
    };
    Line::from(vec![
        Span::styled(ts, dim(m)),
        Span::styled(format!("{}[{}]: ", e.source, e.dyno), who_style),
        Span::styled(message, msg_style),
    ])
}

/// A router line as the pane shows it, what matters first (the search still sees it all):
/// `503 GET /slow 30000ms web.1 H12 Request timeout`.
fn router_summary(e: &LogEntry) -> String {
    let f = |k| e.field(k).unwrap_or("-");
    let mut s = format!(
        "{} {} {} {} {}",
        f("status"),
        f("method"),
        f("path"),
        f("service"),
        f("dyno")
    );
    if let Some(code) = e.field("code") {
        let desc = e
            .message
            .split_once("desc=\"")
            .and_then(|(_, r)| r.split_once('"'))
            .map_or("", |(d, _)| d);
        s.push_str(&format!(" {code} {desc}"));
    }
    s
}

fn footer(m: &Model, f: &mut Frame, area: Rect) {
    let line = if let Some(t) = &m.log_view.typing {
        Line::from(vec![
            Span::styled(" search: ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{t}▏")),
            Span::styled("  Enter keep · Esc drop", dim(m)),
        ])
    } else if let Some(s) = &m.status {
        Line::from(Span::raw(format!(" {s}")))
    } else {
        let keys = [
            ("Tab", "pane"),
            ("+/-", "scale"),
            ("r", "restart/rollback"),
            ("a", "apps"),
            ("p", "pause"),
            ("/", "search"),
            ("?", "help"),
            ("q", "quit"),
        ];
        let mut spans = vec![Span::raw(" ")];
        for (k, what) in keys {
            spans.push(Span::styled(
                k,
                Style::default().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(format!(" {what}  "), dim(m)));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A box of `w`×`h` in the middle of the screen (shrunk to fit).
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub const HELP: &[(&str, &str)] = &[
    ("Tab, Shift-Tab, 1-4", "focus a pane"),
    ("↑ ↓  j k  mouse wheel", "select / scroll"),
    ("+ -", "scale the selected process type"),
    ("r", "restart the selected dyno (Dynos) or roll"),
    ("", "back to the selected release (Releases)"),
    ("a", "switch app"),
    ("p, space", "pause / follow the logs"),
    ("PgUp PgDn, End", "scroll the logs / back to live"),
    ("s", "logs: cycle source (app, heroku, router)"),
    ("d", "logs: cycle process type / dyno"),
    ("/", "logs: search (Enter keeps, Esc drops)"),
    ("c", "logs: clear filters"),
    ("?", "this help (any key closes)"),
    ("q, Ctrl-C", "quit"),
];

fn help(m: &Model, f: &mut Frame) {
    let area = centered(f.area(), 68, HELP.len() as u16 + 2);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {k:<22}"),
                    fg(m, Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Double)
                .title(" Keys "),
        ),
        area,
    );
}

fn confirm(m: &Model, f: &mut Frame, c: &Confirm) {
    let (title, text) = match c {
        Confirm::Restart { dyno } => (" Restart ", format!("Restart {dyno} of {}?", m.app)),
        Confirm::Rollback { version, .. } => (
            " Rollback ",
            format!("Roll back {} to v{version}? (a new release)", m.app),
        ),
    };
    let area = centered(f.area(), text.chars().count().max(26) as u16 + 6, 5);
    f.render_widget(Clear, area);
    let lines = vec![
        Line::from(text).alignment(Alignment::Center),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(" yes   "),
            Span::styled(
                "any other key",
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(" no"),
        ])
        .alignment(Alignment::Center),
    ];
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_type(BorderType::Double)
                .border_style(fg(m, Color::Yellow))
                .title(title),
        ),
        area,
    );
}

fn apps(m: &Model, f: &mut Frame, sel: usize) {
    let b = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .title(" Switch app ");
    let n = m.apps.ready().map_or(1, Vec::len) as u16;
    let area = centered(f.area(), 40, n.min(12) + 2);
    f.render_widget(Clear, area);
    if placeholder(m, f, area, b.clone(), &m.apps) {
        return;
    }
    let rows = m.apps.ready().unwrap().iter().map(|a| {
        let mark = if *a == m.app { "*" } else { " " };
        Row::new(vec![Cell::from(mark), Cell::from(a.clone())])
    });
    let t = Table::new(rows, [Constraint::Length(1), Constraint::Fill(1)])
        .block(b)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("› ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut st = TableState::default().with_selected(Some(sel));
    f.render_stateful_widget(t, area, &mut st);
}
