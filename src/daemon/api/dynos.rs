//! Dynos (`crate::api::dynos`): list, one dyno, one-off dynos (attached: `daemon::run`;
//! detached: `daemon::oneoff`), restart, stop, kill, and the attach upgrade.

use super::find_app;
use crate::api::{self, dynos, Empty};
use crate::daemon::api_server::{invalid, not_found, not_found_msg, Fail, Resp, Route};
use crate::daemon::{manager, oneoff, run, Daemon};
use crate::store::AppRow;
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(stats),
        Route::json(info),
        Route::json(create),
        Route::json(restart_all),
        Route::json(restart),
        Route::json(stop),
        Route::json(kill),
        Route::upgrade(attach),
    ]
}

async fn list(d: Arc<Daemon>, e: dynos::List) -> Result<Vec<api::Dyno>, Fail> {
    let a = find_app(&d, &e.app)?;
    let mut dynos: Vec<api::Dyno> = d
        .manager
        .entries(&a.id)
        .iter()
        .map(|e| manager::to_api(e, &a.name))
        .collect();
    dynos.extend(d.runs.list(&a));
    Ok(dynos)
}

/// The formation's running dynos, as their cgroups say (a dyno between runs has none).
async fn stats(d: Arc<Daemon>, e: dynos::Stats) -> Result<Vec<api::DynoStat>, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(d.manager
        .entries(&a.id)
        .iter()
        .filter_map(|e| {
            let s = d.runtime.stats(e.handle.as_ref()?).ok()?;
            Some(api::DynoStat {
                id: e.id.clone(),
                name: e.name.clone(),
                memory_bytes: s.memory_bytes,
                cpu_ns: s.cpu_ns,
            })
        })
        .collect())
}

async fn info(d: Arc<Daemon>, e: dynos::Info) -> Result<api::Dyno, Fail> {
    let a = find_app(&d, &e.app)?;
    let entry = d
        .manager
        .find(&a.id, &e.dyno)
        .ok_or_else(|| not_found("dyno"))?;
    Ok(manager::to_api(&entry, &a.name))
}

async fn create(d: Arc<Daemon>, e: dynos::Create) -> Result<api::Dyno, Fail> {
    let a = find_app(&d, &e.app)?;
    // Attached (`dyno run`): held by `run`; detached (`run:detached`): `oneoff`.
    if e.body.attach == Some(true) {
        Ok(run::create(&d, &a, e.body).await?)
    } else {
        run_detached(&d, &a, e.body).await
    }
}

async fn restart_all(d: Arc<Daemon>, e: dynos::RestartAll) -> Result<Empty, Fail> {
    let a = find_app(&d, &e.app)?;
    manager::stop_matching(&d, &a.id, None, false);
    Ok(Empty {})
}

async fn restart(d: Arc<Daemon>, e: dynos::Restart) -> Result<Empty, Fail> {
    stop_dynos(&d, &e.app, &e.dyno, false)
}

async fn stop(d: Arc<Daemon>, e: dynos::Stop) -> Result<Empty, Fail> {
    stop_dynos(&d, &e.app, &e.dyno, false)
}

async fn kill(d: Arc<Daemon>, e: dynos::Kill) -> Result<Empty, Fail> {
    stop_dynos(&d, &e.app, &e.dyno, true)
}

async fn attach(d: Arc<Daemon>, e: dynos::Attach, req: Request<Incoming>) -> Result<Resp, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(run::attach(&d, &a, &e.dyno, req)?)
}

/// A detached one-off dyno of the current release (`run:detached`).
async fn run_detached(d: &Arc<Daemon>, a: &AppRow, b: api::DynoCreate) -> Result<api::Dyno, Fail> {
    if b.command.trim().is_empty() {
        return Err(invalid("no command to run"));
    }
    let ptype = b.process_type.unwrap_or_else(|| "run".into());
    if ptype != "run" {
        return Err(invalid(format!(
            "one-off dynos are of type run, not {ptype:?}"
        )));
    }
    let env: Vec<(String, String)> = b.env.unwrap_or_default().into_iter().collect();
    for (k, _) in &env {
        api::config::validate_key(k).map_err(invalid)?;
    }
    let release = d
        .store
        .current_release(&a.id)?
        .filter(|r| r.slug_id.is_some())
        .ok_or_else(|| invalid(format!("{} has no release to run: deploy it first", a.name)))?;
    let spec = oneoff::OneOffSpec {
        process_type: ptype,
        command: b.command,
        env,
    };
    let o = oneoff::start(d, a, &release, spec).await?;
    Ok(manager::to_api(&o.dyno, &a.name))
}

/// `ps:restart`/`ps:stop`/`ps:kill` of a dyno name or a process type.
fn stop_dynos(d: &Arc<Daemon>, app: &str, target: &str, kill: bool) -> Result<Empty, Fail> {
    let a = find_app(d, app)?;
    let is_type = d
        .store
        .formation(&a.id)?
        .iter()
        .any(|f| f.process_type == target);
    if manager::stop_matching(d, &a.id, Some(target), kill) == 0 && !is_type {
        return Err(not_found_msg(format!(
            "Couldn't find that dyno ({target}) on {}.",
            a.name
        )));
    }
    Ok(Empty {})
}
