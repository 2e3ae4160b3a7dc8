//! Dyno idling (opt-in per app, `dyno ps:idle on`): an app whose web dynos got no request for
//! `DYNO_IDLE_AFTER` (30 min) has them stopped (`State changed from up to idle`); its route stays
//! with `idle: true`, so the router holds the next request and calls [`wake`], which lets
//! `manager::reconcile` start the web dynos again. Worker dynos are left alone and don't keep an
//! app awake: only routed requests count.
//!
//! The manager's only part: while an app is idled, `reconcile` treats its web quantity as 0 and
//! `update_routes` marks the route idle.

use super::{manager, Daemon};
use crate::router::unix_ms;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Idle {
    /// Apps (by id) whose web dynos are idled.
    idled: Mutex<HashSet<String>>,
    /// Unix ms each app last woke or had idling turned on: idle time counts from the later of
    /// this, the daemon's start and the app's last request.
    awake_since: Mutex<HashMap<String, u64>>,
}

impl Idle {
    /// The idled apps as the store has them: an app idled before a daemon restart stays idled
    /// (its web dynos are not started again until a request comes).
    pub fn load(store: &crate::store::Store) -> anyhow::Result<Idle> {
        Ok(Idle {
            idled: Mutex::new(store.idled_apps()?.into_iter().collect()),
            awake_since: Mutex::default(),
        })
    }

    pub fn is_idle(&self, app_id: &str) -> bool {
        self.idled.lock().unwrap().contains(app_id)
    }

    fn awake(&self, app_id: &str) {
        self.awake_since
            .lock()
            .unwrap()
            .insert(app_id.to_string(), unix_ms());
    }
}

/// The router's wake callback: an idled app's web dynos start again. Returns at once; the
/// router holds the request until a web dyno is up.
pub fn wake(d: &Arc<Daemon>, app_name: &str) {
    let Ok(Some(app)) = d.store.app(app_name) else {
        return;
    };
    if !d.idle.idled.lock().unwrap().remove(&app.id) {
        return;
    }
    if let Err(e) = d.store.set_idled(&app.id, false) {
        tracing::warn!(app = %app.name, "idle state not stored: {e:#}");
    }
    d.idle.awake(&app.id);
    tracing::info!(app = %app.name, "waking from idle");
    let web = d
        .store
        .formation(&app.id)
        .unwrap_or_default()
        .into_iter()
        .find(|f| f.process_type == "web")
        .map_or(0, |f| f.quantity);
    for n in 1..=web {
        d.logs.platform(&app.name, &format!("web.{n}"), "Unidling");
    }
    manager::kick(d, &app.id);
}

/// Turns idling on or off for an app; turning it off wakes an idled app.
pub fn set(d: &Arc<Daemon>, app_id: &str, app_name: &str, enabled: bool) -> anyhow::Result<()> {
    d.store.set_idling(app_id, enabled)?;
    d.idle.awake(app_id);
    if !enabled {
        wake(d, app_name);
    }
    Ok(())
}

/// Idles the apps that have been without web requests for `DYNO_IDLE_AFTER`; runs for the
/// daemon's lifetime.
pub async fn run(d: Arc<Daemon>) {
    let after = d.settings.idle_after;
    let started = unix_ms();
    // Often enough that an app idles within ~10% of its idle time (bounded for short test times).
    let every = (after / 10).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        tokio::time::sleep(every).await;
        if d.shutting_down() {
            return;
        }
        let Ok(apps) = d.store.apps() else { continue };
        for app in apps {
            if d.idle.is_idle(&app.id) || !d.store.idling(&app.id).unwrap_or(false) {
                continue;
            }
            let web_up: Vec<manager::DynoEntry> = d
                .manager
                .entries(&app.id)
                .into_iter()
                .filter(|e| {
                    e.process_type == "web" && e.state == manager::DynoState::Up && !e.stopping
                })
                .collect();
            if web_up.is_empty() {
                continue;
            }
            let since = d
                .idle
                .awake_since
                .lock()
                .unwrap()
                .get(&app.id)
                .copied()
                .unwrap_or(0)
                .max(started)
                .max(d.routes.last_request(&app.name).unwrap_or(0));
            if unix_ms().saturating_sub(since) < after.as_millis() as u64 {
                continue;
            }
            tracing::info!(app = %app.name, "idling");
            d.idle.idled.lock().unwrap().insert(app.id.clone());
            if let Err(e) = d.store.set_idled(&app.id, true) {
                tracing::warn!(app = %app.name, "idle state not stored: {e:#}");
            }
            for e in &web_up {
                d.logs.platform(&app.name, &e.name, "Idling");
                manager::set_state(&d, &e.id, manager::DynoState::Idle);
            }
            manager::kick(&d, &app.id);
        }
    }
}
