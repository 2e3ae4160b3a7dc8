//! The impure side of the dashboard: the terminal, the input thread, the clock, the log
//! subscription, and the [`Cmd`]s `update` returns, carried out against the daemon's API.
//!
//! Updates come by subscription: one `tail=true` log session of the app stays open, and a line
//! refetches only the resource it concerns (see `update::log_line`). Fetches of one resource
//! never overlap: a burst of events while one is in flight costs one more fetch, not one each.

use super::model::*;
use super::{update, view};
use crate::api;
use crate::api::Endpoint;
use crate::client::{ApiError, Client};
use anyhow::{bail, Result};
use chrono::Utc;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind,
};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::Terminal;
use std::collections::HashSet;
use std::io::{stdout, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;

/// Gives the terminal back: cooked mode, main screen, no mouse capture, a cursor. Idempotent,
/// so the panic hook, the guard and a signal may all call it.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Restores the terminal when dropped: on `q`, on an error, on a signal.
struct Restore;
impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

pub async fn run(client: Client, app: String) -> Result<()> {
    if !stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("dyno dash needs a terminal (use `dyno ps` and `dyno logs --tail` in scripts)");
    }
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        prev(info);
    }));
    enable_raw_mode()?;
    let _restore = Restore;
    execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut term = Terminal::new(CrosstermBackend::new(stdout()))?;

    let (tx, mut rx) = unbounded_channel();
    // crossterm's reader blocks: a thread of its own, ended with the process.
    let input = tx.clone();
    std::thread::spawn(move || loop {
        let msg = match event::read() {
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
            Ok(Event::Mouse(m)) => Msg::Mouse(m),
            Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
            Ok(_) => continue,
            Err(_) => Msg::Quit,
        };
        if input.send(msg).is_err() {
            return;
        }
    });
    let clock = tx.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            if clock.send(Msg::Tick(Utc::now())).is_err() {
                return;
            }
        }
    });
    let signals = tx.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = hup.recv() => {} }
        let _ = signals.send(Msg::Quit);
    });

    let mut model = Model::new(&app, Utc::now(), color);
    let size = term.size()?;
    model.size = (size.width, size.height);
    let mut rt = Runtime {
        client: Arc::new(client),
        tx,
        log_task: None,
        in_flight: HashSet::new(),
        again: HashSet::new(),
        started: Instant::now(),
    };
    rt.exec(&model, Cmd::Subscribe);
    rt.exec(&model, Cmd::Fetch(Resource::Apps));
    loop {
        term.draw(|f| view::view(&model, f))?;
        let Some(first) = rx.recv().await else { break };
        // Everything already queued (a burst of log lines) is applied before the next draw.
        let mut batch = vec![first];
        while batch.len() < 2000 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        for msg in batch {
            rt.settled(&model, &msg);
            for cmd in update::update(&mut model, msg) {
                rt.exec(&model, cmd);
            }
        }
        if model.quit {
            break;
        }
    }
    if let Some(t) = rt.log_task.take() {
        t.abort();
    }
    Ok(())
}

struct Runtime {
    client: Arc<Client>,
    tx: UnboundedSender<Msg>,
    log_task: Option<JoinHandle<()>>,
    in_flight: HashSet<Resource>,
    /// Resources asked for again while their fetch was in flight.
    again: HashSet<Resource>,
    started: Instant,
}

/// What the user reads when a call fails; an endpoint this daemon lacks says so.
fn explain(e: &anyhow::Error) -> String {
    match e.downcast_ref::<ApiError>() {
        Some(a)
            if a.status == hyper::StatusCode::NOT_FOUND
                && a.body.message.starts_with("no such endpoint") =>
        {
            format!("{} (not in this daemon)", a.body.message)
        }
        Some(a) => a.body.message.clone(),
        None => format!("{e:#}"),
    }
}

/// A call whose answer body doesn't matter: any 2xx is success (an empty or non-JSON body too).
async fn call<E: Endpoint>(c: &Client, e: E) -> Result<(), String>
where
    E::Response: serde::de::DeserializeOwned,
{
    match c.call(e).await {
        Ok(_) => Ok(()),
        Err(e)
            if e.downcast_ref::<ApiError>().is_none()
                && e.to_string().starts_with("bad answer") =>
        {
            Ok(())
        }
        Err(e) => Err(explain(&e)),
    }
}

impl Runtime {
    /// A fetch answered: the next one of that resource may go (at once if asked for meanwhile).
    fn settled(&mut self, model: &Model, msg: &Msg) {
        let r = match msg {
            Msg::Formation(..) => Resource::Formation,
            Msg::Dynos(..) => Resource::Dynos,
            Msg::Releases(..) => Resource::Releases,
            Msg::Apps(..) => Resource::Apps,
            Msg::Addons(..) => Resource::Addons,
            _ => return,
        };
        self.in_flight.remove(&r);
        if self.again.remove(&r) {
            self.exec(model, Cmd::Fetch(r));
        }
    }

    fn exec(&mut self, model: &Model, cmd: Cmd) {
        let c = self.client.clone();
        let tx = self.tx.clone();
        let app = model.app.clone();
        match cmd {
            Cmd::Fetch(r) => {
                if !self.in_flight.insert(r) {
                    self.again.insert(r);
                    return;
                }
                tokio::spawn(async move {
                    let msg = match r {
                        Resource::Formation => {
                            let e = api::formation::List { app: app.clone() };
                            Msg::Formation(app, fetch(&c, e).await)
                        }
                        Resource::Dynos => {
                            let e = api::dynos::List { app: app.clone() };
                            Msg::Dynos(app, fetch(&c, e).await)
                        }
                        Resource::Releases => {
                            let e = api::releases::List { app: app.clone() };
                            Msg::Releases(app, fetch(&c, e).await)
                        }
                        Resource::Addons => {
                            let addons = fetch(&c, api::addons::List { app: app.clone() }).await;
                            let jobs = fetch(&c, api::scheduler::List { app: app.clone() }).await;
                            Msg::Addons(
                                app,
                                addons.and_then(|addons| {
                                    Ok(Addons {
                                        addons,
                                        jobs: jobs?,
                                    })
                                }),
                            )
                        }
                        Resource::Apps => Msg::Apps(
                            fetch(&c, api::apps::List {})
                                .await
                                .map(|v| v.into_iter().map(|a| a.name).collect()),
                        ),
                    };
                    let _ = tx.send(msg);
                });
            }
            Cmd::Subscribe => {
                if let Some(t) = self.log_task.take() {
                    t.abort();
                }
                self.in_flight.clear();
                self.again.clear();
                self.log_task = Some(tokio::spawn(subscribe(c, app, tx)));
            }
            Cmd::Scale {
                process_type,
                quantity,
            } => {
                tokio::spawn(async move {
                    let body = api::FormationBatchUpdate {
                        updates: vec![api::FormationUpdate {
                            process_type: process_type.clone(),
                            quantity: Some((quantity as i64).into()),
                            size: None,
                            dyno_size: None,
                        }],
                    };
                    let r = c
                        .call(api::formation::Update {
                            app: app.clone(),
                            body,
                        })
                        .await;
                    let done = match r {
                        Ok(f) => {
                            let _ = tx.send(Msg::Formation(app, Ok(f)));
                            Ok(format!("Scaled {process_type} to {quantity}."))
                        }
                        Err(e) => Err(format!("Scaling {process_type} failed: {}", explain(&e))),
                    };
                    let _ = tx.send(Msg::Done(done));
                });
            }
            Cmd::Restart { dyno } => {
                tokio::spawn(async move {
                    let e = api::dynos::Restart {
                        app,
                        dyno: dyno.clone(),
                    };
                    let done = call(&c, e)
                        .await
                        .map(|_| format!("Restarting {dyno}."))
                        .map_err(|e| format!("Restart of {dyno} failed: {e}"));
                    let _ = tx.send(Msg::Done(done));
                });
            }
            Cmd::Rollback {
                release_id,
                version,
            } => {
                tokio::spawn(async move {
                    let e = api::releases::Rollback {
                        app,
                        body: api::ReleaseCreate {
                            release: release_id,
                        },
                    };
                    let done = call(&c, e)
                        .await
                        .map(|_| format!("Rolled back to v{version}."))
                        .map_err(|e| format!("Rollback to v{version} failed: {e}"));
                    let _ = tx.send(Msg::Done(done));
                });
            }
            Cmd::ReadStats(ids) => {
                // From the daemon, which reads cgroup v1 and v2 alike; one request for the app.
                let at = self.started.elapsed().as_secs_f64();
                tokio::spawn(async move {
                    let stats = fetch(&c, api::dynos::Stats { app })
                        .await
                        .unwrap_or_default();
                    let _ = tx.send(Msg::Stats(samples(&ids, &stats), at));
                });
            }
            Cmd::Quit => {}
        }
    }
}

async fn fetch<E: Endpoint>(c: &Client, e: E) -> Result<E::Response, String>
where
    E::Response: serde::de::DeserializeOwned,
{
    c.call(e).await.map_err(|e| explain(&e))
}

/// The app's log stream, kept open: reconnects (and so refetches everything once) when the
/// daemon goes away and comes back.
async fn subscribe(c: Arc<Client>, app: String, tx: UnboundedSender<Msg>) {
    let mut lines = crate::logs::HISTORY;
    loop {
        let since = Utc::now();
        let session = c
            .call(api::logs::CreateSession {
                app: app.clone(),
                body: api::LogSessionCreate {
                    lines: Some(lines),
                    tail: Some(true),
                    dyno: None,
                    source: None,
                },
            })
            .await;
        let ended = match session {
            Ok(s) => {
                let _ = tx.send(Msg::Subscribed(app.clone(), since));
                let mut partial = String::new();
                let r = c
                    .stream(&s.logplex_url, |chunk| {
                        partial.push_str(chunk);
                        while let Some(i) = partial.find('\n') {
                            let line: String = partial.drain(..=i).collect();
                            let _ = tx.send(Msg::Log(app.clone(), line.trim_end().to_string()));
                        }
                    })
                    .await;
                match r {
                    Ok(()) => "the log stream ended".to_string(),
                    Err(e) => explain(&e),
                }
            }
            Err(e) => explain(&e),
        };
        if tx.send(Msg::StreamLost(app.clone(), ended)).is_err() {
            return;
        }
        // History was shown already: after a reconnect only what is new.
        lines = 0;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The dashboard's samples for the dynos shown: what the API reported of each, or nothing (a
/// dyno between runs, or one the daemon could not read).
pub fn samples(ids: &[String], stats: &[api::DynoStat]) -> Vec<Sample> {
    ids.iter()
        .map(|id| {
            let s = stats.iter().find(|s| s.id == *id);
            Sample {
                dyno_id: id.clone(),
                rss_bytes: s.map(|s| s.memory_bytes),
                cpu_ns: s.and_then(|s| s.cpu_ns),
            }
        })
        .collect()
}
