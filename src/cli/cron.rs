//! `cron`, `cron:add`, `cron:run`, `cron:remove`: the scheduler add-on's jobs (Dokku's command
//! names; Heroku Scheduler has only its dashboard). Each run is a one-off dyno `scheduler.N`
//! whose output is in `dyno logs`.

use super::{resolve_app, AppArg};
use crate::api::scheduler::{self as ep, parse_schedule};
use crate::client::Client;
use crate::paths::Paths;
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// List the app's scheduled jobs and their next run (UTC)
    #[command(name = "cron")]
    List {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Schedule a command: dyno cron:add "*/10 * * * *" -- python manage.py send_digest
    #[command(name = "cron:add")]
    Add {
        /// A 5-field cron expression in UTC (minute hour day-of-month month day-of-week), or @hourly, @daily…
        schedule: String,
        /// The command, run in a one-off dyno scheduler.N of the current release (quoted as dyno run quotes it: one word as it is)
        #[arg(last = true, required = true)]
        command: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Run a scheduled job now (its number in dyno cron)
    #[command(name = "cron:run")]
    RunNow {
        id: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a scheduled job (its number in dyno cron)
    #[command(name = "cron:remove")]
    Remove {
        id: String,
        #[command(flatten)]
        app: AppArg,
    },
}

pub async fn run(paths: &Paths, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::List { app, json } => list(paths, app, json).await,
        Cmd::Add {
            schedule,
            command,
            app,
        } => add(paths, app, &schedule, &super::run::build_command(&command)).await,
        Cmd::RunNow { id, app } => run_now(paths, app, &id).await,
        Cmd::Remove { id, app } => remove(paths, app, &id).await,
    }
}

/// `2026-12-08T02:40:00Z` → `2026-12-08 02:40:00 UTC`.
fn utc(t: &str) -> String {
    format!("{} UTC", t.replace('T', " ").trim_end_matches('Z'))
}

/// The jobs as a table: ID, schedule, next run, command.
pub fn table(jobs: &[ep::Job]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.schedule.clone(),
                j.next_run_at.as_deref().map_or("never".into(), |t| {
                    utc(t).trim_end_matches(" UTC").to_string()
                }),
                j.command.clone(),
            ]
        })
        .collect();
    super::table::render(&["ID", "Schedule", "Next run (UTC)", "Command"], &rows)
}

async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let jobs = c.call(ep::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
    } else if jobs.is_empty() {
        println!("{name} has no scheduled jobs.");
    } else {
        print!("{}", table(&jobs));
    }
    Ok(0)
}

async fn add(paths: &Paths, arg: AppArg, schedule: &str, command: &str) -> Result<i32> {
    // Checked here too, so a typo costs no daemon start.
    parse_schedule(schedule).map_err(anyhow::Error::msg)?;
    if command.trim().is_empty() {
        anyhow::bail!("no command to schedule: dyno cron:add \"{schedule}\" -- COMMAND");
    }
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let j = c
        .call(ep::Create {
            app: name.clone(),
            body: ep::JobCreate {
                schedule: schedule.to_string(),
                command: command.to_string(),
            },
        })
        .await?;
    println!(
        "Added job {} to {name}: `{}` at \"{}\", next at {}",
        j.id,
        j.command,
        j.schedule,
        j.next_run_at.as_deref().map_or("never".into(), utc)
    );
    Ok(0)
}

async fn run_now(paths: &Paths, arg: AppArg, id: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let d = c
        .call(ep::Run {
            app: name.clone(),
            job: id.to_string(),
        })
        .await?;
    println!(
        "Running `{}` on {name}... up, {} (see dyno logs --ps {})",
        d.command, d.name, d.name
    );
    Ok(0)
}

async fn remove(paths: &Paths, arg: AppArg, id: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let j = c
        .call(ep::Destroy {
            app: name.clone(),
            job: id.to_string(),
        })
        .await?;
    println!("Removed job {} (`{}`) from {name}", j.id, j.command);
    Ok(0)
}
