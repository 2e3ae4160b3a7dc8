//! The dashboard from fixed model states: snapshots of every pane and overlay (ratatui's
//! `TestBackend` + insta, committed under `snapshots/`), and `update`'s behaviour message by
//! message. Nothing here reads a clock or a daemon: the same state always draws the same screen.

use super::model::*;
use super::{update, view};
use crate::api;
use chrono::{DateTime, Duration, Utc};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::style::Color;
use ratatui::Terminal;
use serde_json::json;

const APP: &str = "hello";

fn now() -> DateTime<Utc> {
    "2026-11-23T17:05:00Z".parse().unwrap()
}

fn ts(secs_ago: i64) -> String {
    (now() - Duration::seconds(secs_ago)).to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn formation(t: &str, n: u32, cmd: &str) -> api::Formation {
    serde_json::from_value(json!({
        "id": format!("f-{t}"), "app": {"id": "a1", "name": APP}, "type": t, "command": cmd,
        "quantity": n, "size": "basic", "created_at": ts(600), "updated_at": ts(600)
    }))
    .unwrap()
}

fn dyno(name: &str, state: &str, version: u32, secs_ago: i64) -> api::Dyno {
    serde_json::from_value(json!({
        "id": format!("d0123abcd-{APP}-{}", name.replace('.', "-")), "app": {"id": "a1", "name": APP},
        "name": name, "type": name.split('.').next().unwrap(), "command": "python3 web.py",
        "state": state, "release": {"id": format!("r{version}"), "version": version},
        "size": "basic", "attach_url": null, "created_at": ts(secs_ago), "updated_at": ts(secs_ago),
        "port": null
    }))
    .unwrap()
}

fn release(v: u32, desc: &str, status: &str, current: bool, secs_ago: i64) -> api::Release {
    serde_json::from_value(json!({
        "id": format!("r{v}"), "app": {"id": "a1", "name": APP}, "version": v,
        "description": desc, "status": status, "current": current, "slug": null,
        "user": {"email": "user@localhost", "id": "u1"}, "addon_plan_names": [],
        "created_at": ts(secs_ago), "updated_at": ts(secs_ago)
    }))
    .unwrap()
}

fn log(m: &mut Model, secs_ago: i64, who: &str, msg: &str) -> Vec<Cmd> {
    update(
        m,
        Msg::Log(APP.into(), format!("{} {who}: {msg}", ts(secs_ago))),
    )
}

fn router_line(status: u16, service: u64, path: &str) -> String {
    format!(
        "at=info method=GET path=\"{path}\" host=hello.localhost fwd=\"127.0.0.1\" dyno=web.1 connect=0ms service={service}ms status={status} bytes=13 protocol=http"
    )
}

/// A running app: two web dynos and a crashed worker, three releases, traffic and logs.
fn model(color: bool) -> Model {
    let mut m = Model::new(APP, now(), color);
    update(
        &mut m,
        Msg::Subscribed(APP.into(), now() - Duration::seconds(30)),
    );
    update(
        &mut m,
        Msg::Formation(
            APP.into(),
            Ok(vec![
                formation("web", 2, "python3 web.py"),
                formation("worker", 1, "python3 worker.py"),
            ]),
        ),
    );
    update(
        &mut m,
        Msg::Dynos(
            APP.into(),
            Ok(vec![
                dyno("worker.1", "crashed", 3, 95),
                dyno("web.2", "starting", 3, 4),
                dyno("web.1", "up", 3, 3720),
            ]),
        ),
    );
    update(
        &mut m,
        Msg::Releases(
            APP.into(),
            Ok(vec![
                release(1, "Deploy 1a2b3c4", "succeeded", false, 86400 * 2),
                release(2, "Set FOO config vars", "failed", false, 7200),
                release(3, "Deploy 9f8e7d6", "succeeded", true, 3725),
            ]),
        ),
    );
    update(
        &mut m,
        Msg::Stats(
            vec![
                Sample {
                    dyno_id: "d0123abcd-hello-web-1".into(),
                    rss_bytes: Some(24_641_536),
                    cpu_ns: Some(1_000_000_000),
                },
                Sample {
                    dyno_id: "d0123abcd-hello-web-2".into(),
                    rss_bytes: Some(9_437_184),
                    cpu_ns: Some(0),
                },
            ],
            10.0,
        ),
    );
    update(
        &mut m,
        Msg::Stats(
            vec![Sample {
                dyno_id: "d0123abcd-hello-web-1".into(),
                rss_bytes: Some(25_165_824),
                cpu_ns: Some(1_125_000_000),
            }],
            11.0,
        ),
    );
    // History (before the subscription) and live lines.
    log(&mut m, 3725, "app[api]", "Release v3 created by user");
    log(
        &mut m,
        3720,
        "heroku[web.1]",
        "Starting process with command `python3 web.py`",
    );
    log(
        &mut m,
        3719,
        "heroku[web.1]",
        "State changed from starting to up",
    );
    log(
        &mut m,
        120,
        "heroku[worker.1]",
        "State changed from up to crashed",
    );
    log(
        &mut m,
        95,
        "heroku[worker.1]",
        "State changed from starting to crashed",
    );
    for i in 0..40i64 {
        let status = match i % 10 {
            0 => 500,
            1 | 2 => 404,
            3 => 302,
            _ => 200,
        };
        log(
            &mut m,
            200 - i * 5,
            "heroku[router]",
            &router_line(status, 10 + (i as u64 * 7) % 90, "/"),
        );
    }
    log(
        &mut m,
        4,
        "heroku[web.2]",
        "Starting process with command `python3 web.py`",
    );
    log(&mut m, 3, "app[web.1]", "hello listening on port 5001");
    log(&mut m, 2, "heroku[router]", &router_line(200, 18, "/hello"));
    log(
        &mut m,
        1,
        "heroku[router]",
        "at=error code=H12 desc=\"Request timeout\" method=GET path=\"/slow\" host=hello.localhost dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http",
    );
    update(&mut m, Msg::Done(Ok("Scaled web to 2.".into())));
    m
}

fn addon(name: &str, plan: &str, state: &str) -> api::Addon {
    let service = plan.split(':').next().unwrap();
    serde_json::from_value(json!({
        "id": format!("id-{name}"), "name": name, "addon_service": {"id": service, "name": service},
        "plan": {"id": plan, "name": plan, "price": {"cents": 0, "unit": "month"}},
        "app": {"id": "a1", "name": APP}, "state": state, "config_vars": [], "attachments": [],
        "web_url": null, "created_at": ts(600), "updated_at": ts(600)
    }))
    .unwrap()
}

fn job(id: u32, schedule: &str, command: &str, next_in: i64) -> api::scheduler::Job {
    api::scheduler::Job {
        id,
        schedule: schedule.into(),
        command: command.into(),
        next_run_at: Some(
            (now() + Duration::seconds(next_in)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        last_dyno: None,
        last_run_at: None,
        created_at: ts(600),
    }
}

/// The running app with add-ons and scheduled jobs.
fn model_with_addons() -> Model {
    let mut m = model(false);
    update(
        &mut m,
        Msg::Addons(
            APP.into(),
            Ok(Addons {
                addons: vec![
                    addon(
                        "postgresql-curved-12345",
                        "heroku-postgresql:essential-0",
                        "provisioned",
                    ),
                    addon("redis-misty-67890", "heroku-redis:mini", "provisioning"),
                    addon("scheduler-quiet-24680", "scheduler:standard", "provisioned"),
                ],
                jobs: vec![
                    job(1, "*/10 * * * *", "python manage.py send_digest", 290),
                    job(3, "@daily", "python manage.py cleanup", 25_500),
                ],
            }),
        ),
    );
    m
}

fn render(m: &Model, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(m, f)).unwrap();
    t
}

fn key(m: &mut Model, c: KeyCode) -> Vec<Cmd> {
    update(m, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

fn keys(m: &mut Model, s: &str) -> Vec<Cmd> {
    s.chars().flat_map(|c| key(m, KeyCode::Char(c))).collect()
}

#[test]
fn snapshot_dashboard_100x30() {
    insta::assert_snapshot!(render(&model(false), 100, 30).backend());
}

#[test]
fn snapshot_addons_and_scheduler_100x30() {
    insta::assert_snapshot!(render(&model_with_addons(), 100, 30).backend());
}

#[test]
fn snapshot_addons_and_scheduler_80x24() {
    insta::assert_snapshot!(render(&model_with_addons(), 80, 24).backend());
}

#[test]
fn the_addons_pane_shows_only_with_addons_or_jobs() {
    let mut m = model(false);
    assert_eq!(m.addon_rows(), 0);
    update(&mut m, Msg::Addons(APP.into(), Ok(Addons::default())));
    assert_eq!(m.addon_rows(), 0);
    let m = model_with_addons();
    assert_eq!(m.addon_rows(), 3);
    // No scheduler yet: the jobs side says how to add one.
    let mut m = model(false);
    update(
        &mut m,
        Msg::Addons(
            APP.into(),
            Ok(Addons {
                addons: vec![addon(
                    "redis-misty-67890",
                    "heroku-redis:mini",
                    "provisioned",
                )],
                jobs: vec![],
            }),
        ),
    );
    assert_eq!(m.addon_rows(), 1);
    let screen = format!("{:?}", render(&m, 100, 30).backend());
    assert!(
        screen.contains("no scheduler: dyno addons:create scheduler"),
        "{screen}"
    );
    assert!(screen.contains("redis-misty-67890"), "{screen}");
}

#[test]
fn snapshot_dashboard_80x24() {
    insta::assert_snapshot!(render(&model(false), 80, 24).backend());
}

#[test]
fn snapshot_help_overlay() {
    let mut m = model(false);
    keys(&mut m, "?");
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_restart_confirmation() {
    let mut m = model(false);
    keys(&mut m, "2jr");
    assert_eq!(
        m.overlay,
        Overlay::Confirm(Confirm::Restart {
            dyno: "web.2".into()
        })
    );
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_rollback_confirmation() {
    let mut m = model(false);
    keys(&mut m, "3jjr");
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_app_switcher() {
    let mut m = model(false);
    assert_eq!(keys(&mut m, "a"), vec![Cmd::Fetch(Resource::Apps)]);
    update(
        &mut m,
        Msg::Apps(Ok(vec!["api".into(), "hello".into(), "worker-app".into()])),
    );
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_panes_not_available_or_loading() {
    let mut m = Model::new(APP, now(), false);
    update(
        &mut m,
        Msg::Releases(
            APP.into(),
            Err("no such endpoint: GET /apps/hello/releases (not in this daemon)".into()),
        ),
    );
    update(
        &mut m,
        Msg::Formation(APP.into(), Ok(vec![formation("web", 0, "python3 web.py")])),
    );
    update(&mut m, Msg::Dynos(APP.into(), Ok(vec![])));
    update(
        &mut m,
        Msg::StreamLost(APP.into(), "connecting to daemon.sock".into()),
    );
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_logs_filtered_paused_and_searching() {
    let mut m = model(false);
    keys(&mut m, "4");
    keys(&mut m, "sss"); // all → app → heroku → router
    assert_eq!(m.log_view.source, Some(SourceFilter::Router));
    keys(&mut m, "/slow");
    update(
        &mut m,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    keys(&mut m, "c");
    keys(&mut m, "s"); // app
    keys(&mut m, "p");
    log(&mut m, 0, "app[web.1]", "hello again, while paused");
    keys(&mut m, "/hel");
    insta::assert_snapshot!(render(&m, 80, 24).backend());
}

#[test]
fn snapshot_logs_scrolled_back_by_the_mouse() {
    let mut m = model(false);
    m.size = (80, 24);
    let wheel = |kind| {
        Msg::Mouse(MouseEvent {
            kind,
            column: 10,
            row: 16,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut m, wheel(MouseEventKind::ScrollUp));
    update(&mut m, wheel(MouseEventKind::ScrollUp));
    assert!(m.log_view.anchor.is_some(), "scrolling up holds the view");
    insta::assert_snapshot!(render(&m, 80, 24).backend());
    for _ in 0..3 {
        update(&mut m, wheel(MouseEventKind::ScrollDown));
    }
    assert_eq!(m.log_view.anchor, None, "back at the end, it follows again");
}

#[test]
fn only_the_resource_an_event_concerns_is_refetched() {
    let mut m = model(false);
    assert_eq!(
        log(
            &mut m,
            0,
            "heroku[web.2]",
            "State changed from starting to up"
        ),
        vec![Cmd::Fetch(Resource::Dynos)]
    );
    assert_eq!(
        log(&mut m, 0, "app[api]", "Release v4 created by user"),
        vec![
            Cmd::Fetch(Resource::Formation),
            Cmd::Fetch(Resource::Releases)
        ]
    );
    assert_eq!(
        log(&mut m, 0, "heroku[router]", &router_line(200, 5, "/")),
        vec![]
    );
    assert_eq!(log(&mut m, 0, "app[web.1]", "GET / 200"), vec![]);
    // History replayed at subscription time refetches nothing.
    assert_eq!(
        log(
            &mut m,
            3600,
            "heroku[web.1]",
            "State changed from starting to up"
        ),
        vec![]
    );
    // The clock reads the stats of the dynos shown (one `dyno-stats` request for them all).
    let cmds = update(&mut m, Msg::Tick(now()));
    assert!(
        matches!(&cmds[..], [Cmd::ReadStats(ids)] if ids.len() == 3),
        "{cmds:?}"
    );
    // Add-on releases, jobs added and scheduled runs refetch the add-ons pane.
    for msg in [
        "Attach DATABASE (@ref:postgresql-curved-12345) by user",
        "Detach REDIS (@ref:redis-misty-11111) by user",
        "Add scheduler job 2: `echo hi` at \"* * * * *\" by user",
        "Starting process with command `echo hi` by user scheduler@addons.heroku.com",
    ] {
        let cmds = log(&mut m, 0, "app[api]", msg);
        assert!(
            cmds.contains(&Cmd::Fetch(Resource::Addons)),
            "{msg}: {cmds:?}"
        );
    }
    let cmds = log(
        &mut m,
        0,
        "heroku[scheduler]",
        "Skipping job 1 (`sleep 600`): its previous run scheduler.1234 is still up",
    );
    assert!(cmds.contains(&Cmd::Fetch(Resource::Addons)), "{cmds:?}");
    // A (re)subscription fetches each pane once.
    assert_eq!(
        update(&mut m, Msg::Subscribed(APP.into(), now())),
        vec![
            Cmd::Fetch(Resource::Formation),
            Cmd::Fetch(Resource::Dynos),
            Cmd::Fetch(Resource::Releases),
            Cmd::Fetch(Resource::Addons)
        ]
    );
}

#[test]
fn plus_and_minus_scale_the_selected_process_type() {
    let mut m = model(false);
    assert_eq!(
        keys(&mut m, "+"),
        vec![Cmd::Scale {
            process_type: "web".into(),
            quantity: 3
        }]
    );
    keys(&mut m, "1j");
    assert_eq!(
        keys(&mut m, "-"),
        vec![Cmd::Scale {
            process_type: "worker".into(),
            quantity: 0
        }]
    );
    update(
        &mut m,
        Msg::Formation(APP.into(), Ok(vec![formation("web", 0, "x")])),
    );
    assert_eq!(keys(&mut m, "-"), vec![], "never below 0");
    assert_eq!(m.status.as_deref(), Some("web is already at 0."));
}

#[test]
fn restart_and_rollback_ask_first() {
    let mut m = model(false);
    keys(&mut m, "2r");
    assert_eq!(keys(&mut m, "n"), vec![], "anything but y cancels");
    assert_eq!(m.overlay, Overlay::None);
    keys(&mut m, "r");
    assert_eq!(
        keys(&mut m, "y"),
        vec![Cmd::Restart {
            dyno: "web.1".into()
        }]
    );
    keys(&mut m, "3r");
    assert_eq!(
        m.overlay,
        Overlay::None,
        "the current release is no rollback target"
    );
    assert_eq!(
        m.status.as_deref(),
        Some("v3 is already the current release.")
    );
    keys(&mut m, "jjr");
    assert_eq!(
        keys(&mut m, "y"),
        vec![Cmd::Rollback {
            release_id: "r1".into(),
            version: 1
        }]
    );
}

#[test]
fn switching_apps_starts_over_with_a_new_subscription() {
    let mut m = model(false);
    keys(&mut m, "a");
    update(&mut m, Msg::Apps(Ok(vec!["api".into(), "hello".into()])));
    key(&mut m, KeyCode::Up);
    assert_eq!(key(&mut m, KeyCode::Enter), vec![Cmd::Subscribe]);
    assert_eq!(m.app, "api");
    assert!(matches!(m.formation, Avail::Loading));
    assert!(m.logs.is_empty());
    // Late answers about the old app are dropped.
    update(
        &mut m,
        Msg::Dynos(APP.into(), Ok(vec![dyno("web.1", "up", 1, 1)])),
    );
    assert!(matches!(m.dynos, Avail::Loading));
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut m = model(false);
    assert_eq!(keys(&mut m, "q"), vec![Cmd::Quit]);
    let mut m = model(false);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(update(&mut m, Msg::Key(ctrl_c)), vec![Cmd::Quit]);
    assert!(m.quit);
    // While typing a search, q is a letter.
    let mut m = model(false);
    keys(&mut m, "/q");
    assert!(!m.quit);
}

#[test]
fn router_metrics_count_classes_and_percentiles() {
    let m = model(false);
    let minute = m.metrics.summary(now(), 60);
    // 12 lines within the last minute (at 55 … 0 s ago: 200 − 5i for i ≥ 29) + 2 live ones.
    assert_eq!(minute.count, 13);
    assert_eq!(minute.classes.iter().sum::<u64>(), 13);
    assert_eq!(percentile(&[5, 1, 3, 2, 4], 50.0), 3);
    assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 100], 95.0), 100);
    assert_eq!(percentile(&[], 95.0), 0);
    let mut m = m;
    update(
        &mut m,
        Msg::Tick(now() + Duration::seconds(WINDOW_SECS + 10)),
    );
    assert!(m.metrics.buckets.is_empty(), "older than 5 min is dropped");
}

#[test]
fn dyno_stats_come_from_the_api() {
    let m = model(false);
    let s = &m.stats["d0123abcd-hello-web-1"];
    assert_eq!(s.rss_bytes, Some(25_165_824));
    assert_eq!(s.cpu_percent, Some(12.5), "125 ms of CPU in 1 s");
    let stats = vec![crate::api::DynoStat {
        id: "d1-web-1".into(),
        name: "web.1".into(),
        memory_bytes: 1_052_672,
        cpu_ns: Some(125_000_000),
    }];
    let ids = ["d1-web-1".to_string(), "d1-web-2".to_string()];
    let got = super::samples(&ids, &stats);
    assert_eq!(
        (got[0].rss_bytes, got[0].cpu_ns),
        (Some(1_052_672), Some(125_000_000))
    );
    // A dyno the daemon has no stats for (between runs) has no numbers rather than an error.
    assert_eq!((got[1].rss_bytes, got[1].cpu_ns), (None, None));
}

#[test]
fn no_color_draws_without_colours() {
    let plain = render(&model(false), 100, 30);
    assert!(plain
        .backend()
        .buffer()
        .content()
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    let coloured = render(&model(true), 100, 30);
    let buf = coloured.backend().buffer();
    // The crashed worker's state cell (row 3 of the dynos table) is red.
    let (x, y) = (0..100u16)
        .flat_map(|x| (0..30u16).map(move |y| (x, y)))
        .find(|&(x, y)| {
            buf[(x, y)].symbol() == "c"
                && buf[(x + 1, y)].symbol() == "r"
                && buf[(x + 2, y)].symbol() == "a"
                && buf[(x + 6, y)].symbol() == "d"
        })
        .unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

#[test]
fn log_lines_parse_in_herokus_format() {
    let e = LogEntry::parse("2026-11-23T17:05:02.123456+00:00 app[web.1]: hello: world");
    assert_eq!(
        (e.source.as_str(), e.dyno.as_str(), e.message.as_str()),
        ("app", "web.1", "hello: world")
    );
    assert!(e.ts.is_some());
    let e = LogEntry::parse("Error L10 (output buffer overflow): 3 messages dropped");
    assert_eq!((e.source.as_str(), e.ts), ("logplex", None));
    let r = LogEntry::parse(&format!(
        "{} heroku[router]: {}",
        ts(0),
        router_line(404, 7, "/x")
    ));
    assert_eq!(
        (r.field("status"), r.field("service"), r.field("path")),
        (Some("404"), Some("7ms"), Some("/x"))
    );
    assert!(r.matches(SourceFilter::Router, None, "/X"));
    let w = LogEntry::parse(&format!("{} app[web.12]: x", ts(0)));
    assert!(w.matches(SourceFilter::All, Some("web"), ""));
    assert!(!w.matches(SourceFilter::All, Some("web.1"), ""));
}
