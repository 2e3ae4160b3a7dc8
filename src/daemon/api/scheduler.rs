//! The scheduler's jobs (`crate::api::scheduler`): list, add, remove, run now. The ticking and
//! the runs are `daemon::scheduler`'s.

use super::find_app;
use crate::api::scheduler::{self as ep, parse_schedule, Job};
use crate::api::Dyno;
use crate::daemon::api_server::{invalid, not_found_msg, Fail, Route};
use crate::daemon::{scheduler, Daemon};
use crate::store::{AppRow, JobRow};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(create),
        Route::json(destroy),
        Route::json(run),
    ]
}

fn find_job(d: &Daemon, app: &AppRow, key: &str) -> Result<JobRow, Fail> {
    let num: Option<u32> = key.trim().parse().ok();
    d.store
        .jobs(Some(&app.id))?
        .into_iter()
        .find(|j| Some(j.num) == num)
        .ok_or_else(|| {
            not_found_msg(format!(
                "Couldn't find job {key} of {}: see dyno cron",
                app.name
            ))
        })
}

async fn list(d: Arc<Daemon>, e: ep::List) -> Result<Vec<Job>, Fail> {
    let app = find_app(&d, &e.app)?;
    Ok(d.store
        .jobs(Some(&app.id))?
        .iter()
        .map(scheduler::job_json)
        .collect())
}

async fn create(d: Arc<Daemon>, e: ep::Create) -> Result<Job, Fail> {
    let app = find_app(&d, &e.app)?;
    parse_schedule(&e.body.schedule).map_err(invalid)?;
    let command = e.body.command.trim();
    if command.is_empty() {
        return Err(invalid("no command to schedule"));
    }
    if !d
        .store
        .addons()?
        .iter()
        .any(|a| a.app_id == app.id && a.service == "scheduler")
    {
        return Err(invalid(format!(
            "{} has no scheduler: add it with dyno addons:create scheduler",
            app.name
        )));
    }
    // Stored as written, spaces normalised: `cron` shows what the user typed.
    let schedule = e
        .body
        .schedule
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let row = scheduler::add_job(&d, &app, &schedule, command)?;
    Ok(scheduler::job_json(&row))
}

async fn destroy(d: Arc<Daemon>, e: ep::Destroy) -> Result<Job, Fail> {
    let app = find_app(&d, &e.app)?;
    let job = find_job(&d, &app, &e.job)?;
    scheduler::remove_job(&d, &app, &job)?;
    Ok(scheduler::job_json(&job))
}

async fn run(d: Arc<Daemon>, e: ep::Run) -> Result<Dyno, Fail> {
    let app = find_app(&d, &e.app)?;
    let job = find_job(&d, &app, &e.job)?;
    scheduler::run_job(&d, &app, &job).await
}
