//! The scheduler: every minute (UTC, on the minute) each app's jobs whose schedule matches run
//! in a one-off dyno `scheduler.N` of the app's current release, through `oneoff::start` (the
//! one launch path), so their output is in the app's log stream like any dyno's.
//!
//! Choices where Heroku leaves room (README "The scheduler"):
//! - **Overlap**: a job whose previous run (of this daemon's lifetime) is still up is skipped
//!   for that minute, with a `heroku[scheduler]` line saying so. Heroku stops a scheduler dyno
//!   after about its interval instead; skipping gives the same "one at a time" without killing
//!   work. `cron:run` always starts one.
//! - **Missed runs**: minutes that passed while the daemon was down are not caught up (as on
//!   Heroku). A tick that comes late (a busy machine) still runs what was due since the last
//!   tick, up to 5 minutes back, once per job.

use super::api_server::{invalid, Fail};
use super::oneoff::{self, OneOffSpec};
use super::Daemon;
use crate::api::scheduler::{next_run, parse_schedule, Job};
use crate::logs::LogLine;
use crate::store::{AppRow, JobRow};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// (app id, job number) → (its last dyno, when it started).
type LastRuns = HashMap<(String, u32), (String, String)>;

/// The last run of each job in this daemon's lifetime (one daemon per process).
static LAST_RUNS: Mutex<Option<LastRuns>> = Mutex::new(None);

fn last_run(app_id: &str, num: u32) -> Option<(String, String)> {
    LAST_RUNS
        .lock()
        .unwrap()
        .as_ref()?
        .get(&(app_id.to_string(), num))
        .cloned()
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// A job as the API shows it, with its next run.
pub fn job_json(j: &JobRow) -> Job {
    let next = parse_schedule(&j.schedule)
        .ok()
        .and_then(|c| next_run(&c, Utc::now()));
    let last = last_run(&j.app_id, j.num);
    Job {
        id: j.num,
        schedule: j.schedule.clone(),
        command: j.command.clone(),
        next_run_at: next.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        last_dyno: last.as_ref().map(|l| l.0.clone()),
        last_run_at: last.map(|l| l.1),
        created_at: j.created_at.clone(),
    }
}

fn log(d: &Daemon, app: &str, msg: String) {
    d.logs.push(app, LogLine::new("heroku", "scheduler", msg));
}

/// Adds a job (its schedule already checked), with an `app[api]` line saying so.
pub fn add_job(d: &Daemon, app: &AppRow, schedule: &str, command: &str) -> anyhow::Result<JobRow> {
    let j = d.store.insert_job(&app.id, schedule, command)?;
    d.api_log(
        &app.name,
        format!(
            "Add scheduler job {}: `{command}` at \"{schedule}\" by user",
            j.num
        ),
    );
    Ok(j)
}

/// Removes a job, with an `app[api]` line saying so.
pub fn remove_job(d: &Daemon, app: &AppRow, job: &JobRow) -> anyhow::Result<()> {
    d.store.delete_job(&app.id, job.num)?;
    d.api_log(
        &app.name,
        format!(
            "Remove scheduler job {}: `{}` by user",
            job.num, job.command
        ),
    );
    Ok(())
}

/// Starts a run of `job` now, in a `scheduler.N` dyno of the current release.
pub async fn run_job(
    d: &Arc<Daemon>,
    app: &AppRow,
    job: &JobRow,
) -> Result<crate::api::Dyno, Fail> {
    let release = d
        .store
        .current_release(&app.id)?
        .filter(|r| r.slug_id.is_some())
        .ok_or_else(|| {
            invalid(format!(
                "{} has no release to run: deploy it first",
                app.name
            ))
        })?;
    d.logs.push(
        &app.name,
        LogLine::new(
            "app",
            "api",
            format!(
                "Starting process with command `{}` by user scheduler@addons.heroku.com",
                job.command
            ),
        ),
    );
    let o = oneoff::start(
        d,
        app,
        &release,
        OneOffSpec {
            process_type: "scheduler".into(),
            command: job.command.clone(),
            env: vec![],
        },
    )
    .await?;
    LAST_RUNS.lock().unwrap().get_or_insert_default().insert(
        (app.id.clone(), job.num),
        (o.dyno.name.clone(), crate::store::now()),
    );
    Ok(super::manager::to_api(&o.dyno, &app.name))
}

/// The tick: at each minute, the jobs due since the last tick.
pub async fn run(d: Arc<Daemon>) {
    // No catching up: the first minute considered is the one after the daemon started.
    let mut last = minute(Utc::now());
    loop {
        let next = last + TimeDelta::minutes(1);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait + std::time::Duration::from_millis(20)).await;
        if d.shutting_down() {
            return;
        }
        let now = minute(Utc::now());
        let due = due_minutes(next, now);
        last = now.max(last);
        tick(&d, &due).await;
    }
}

/// The minutes a tick that expected `next` and woke at `now` (both whole minutes) runs jobs
/// for: `next` to `now`, at most the last 5 (a late tick), none when the clock went back.
fn due_minutes(next: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let from = next.max(now - TimeDelta::minutes(4));
    std::iter::successors(Some(from), |m| Some(*m + TimeDelta::minutes(1)))
        .take_while(|m| *m <= now)
        .collect()
}

async fn tick(d: &Arc<Daemon>, due: &[DateTime<Utc>]) {
    let jobs = match d.store.jobs(None) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!("scheduler: reading jobs: {e:#}");
            return;
        }
    };
    for job in jobs {
        let Ok(cron) = parse_schedule(&job.schedule) else {
            continue;
        };
        if !due
            .iter()
            .any(|m| cron.is_time_matching(m).unwrap_or(false))
        {
            continue;
        }
        let Ok(Some(app)) = d.store.app(&job.app_id) else {
            continue;
        };
        if let Some((dyno, _)) = last_run(&app.id, job.num) {
            if d.manager
                .find(&app.id, &dyno)
                .is_some_and(|e| e.handle.is_some())
            {
                log(
                    d,
                    &app.name,
                    format!(
                        "Skipping job {} (`{}`): its previous run {dyno} is still up",
                        job.num, job.command
                    ),
                );
                continue;
            }
        }
        if let Err(e) = run_job(d, &app, &job).await {
            log(
                d,
                &app.name,
                format!("Job {} (`{}`) did not start: {}", job.num, job.command, e.2),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hm: &str) -> DateTime<Utc> {
        format!("2026-12-08T{hm}:00Z").parse().unwrap()
    }

    #[test]
    fn a_tick_runs_the_minutes_since_the_last_one_never_more_than_five() {
        assert_eq!(due_minutes(at("02:10"), at("02:10")), [at("02:10")]);
        assert_eq!(
            due_minutes(at("02:10"), at("02:12")),
            [at("02:10"), at("02:11"), at("02:12")]
        );
        let late = due_minutes(at("02:10"), at("03:00"));
        assert_eq!(late.len(), 5);
        assert_eq!((late[0], late[4]), (at("02:56"), at("03:00")));
        assert!(due_minutes(at("02:10"), at("02:05")).is_empty());
    }
}
