//! The scheduler (`addons:create scheduler`, `cron`, `cron:add`, `cron:run`, `cron:remove`):
//! `GET/POST /apps/{app}/scheduler/jobs`, `DELETE /apps/{app}/scheduler/jobs/{job}`, `POST
//! /apps/{app}/scheduler/jobs/{job}/runs`, and the schedule's rule both sides check.
//!
//! Schedules are standard 5-field cron expressions (minute hour day-of-month month
//! day-of-week, or `@hourly`/`@daily`…), in UTC as Heroku Scheduler's, parsed by `croner`.

use super::{endpoint, Dyno};
use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// One scheduled job of an app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// `1`, `2`…: numbered per app (`cron:run 1`, `cron:remove 1`).
    pub id: u32,
    pub schedule: String,
    pub command: String,
    /// The next time it runs (UTC), if ever.
    pub next_run_at: Option<String>,
    /// The dyno of its last run of this daemon's lifetime (`scheduler.4821`).
    pub last_dyno: Option<String>,
    pub last_run_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobCreate {
    pub schedule: String,
    pub command: String,
}

endpoint! {
    /// `GET /apps/{app}/scheduler/jobs`.
    List { app } => GET ["apps", app, "scheduler", "jobs"] -> Vec<Job>;
    /// `POST /apps/{app}/scheduler/jobs`: the app must have the scheduler add-on.
    Create { app } + body: JobCreate => POST ["apps", app, "scheduler", "jobs"] -> Job, CREATED;
    /// `DELETE /apps/{app}/scheduler/jobs/{job}`.
    Destroy { app, job } => DELETE ["apps", app, "scheduler", "jobs", job] -> Job;
    /// `POST /apps/{app}/scheduler/jobs/{job}/runs`: runs it now, in a `scheduler.N` dyno.
    Run { app, job } => POST ["apps", app, "scheduler", "jobs", job, "runs"] -> Dyno, CREATED;
}

const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// A 5-field cron expression (or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`), as
/// croner parses it; an invalid one's error names the field that is wrong.
pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    let expr = expr.trim();
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let nickname = fields.len() == 1 && fields[0].starts_with('@');
    if !nickname && fields.len() != 5 {
        return Err(format!(
            "invalid schedule {expr:?}: a cron expression has 5 fields (minute hour day-of-month month day-of-week, e.g. \"*/10 * * * *\"), this one has {}",
            fields.len()
        ));
    }
    match parser().parse(expr) {
        Ok(c) => Ok(c),
        Err(e) if nickname => Err(format!(
            "invalid schedule {expr:?}: {e} (known: @hourly, @daily, @weekly, @monthly, @yearly)"
        )),
        Err(e) => {
            // Which field: the first that is wrong among otherwise-everything fields.
            let bad = (0..5).find(|&i| {
                let mut probe = ["*"; 5];
                probe[i] = fields[i];
                parser().parse(&probe.join(" ")).is_err()
            });
            Err(match bad {
                Some(i) => format!(
                    "invalid schedule {expr:?}: the {} field {:?} is not valid ({e})",
                    FIELDS[i], fields[i]
                ),
                None => format!("invalid schedule {expr:?}: {e}"),
            })
        }
    }
}

/// The first time strictly after `after` (whole minutes, UTC) the schedule matches.
pub fn next_run(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_and_errors_naming_the_field() {
        let c = parse_schedule("*/10 * * * *").unwrap();
        let t = DateTime::parse_from_rfc3339("2026-12-08T01:03:20Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            next_run(&c, t).unwrap().to_rfc3339(),
            "2026-12-08T01:10:00+00:00"
        );
        let c = parse_schedule("@daily").unwrap();
        assert_eq!(
            next_run(&c, t).unwrap().to_rfc3339(),
            "2026-12-09T00:00:00+00:00"
        );
        assert!(parse_schedule("30 2 * * mon-fri").is_ok());

        for (expr, want) in [
            ("61 * * * *", "minute field \"61\""),
            ("* 24 * * *", "hour field \"24\""),
            ("* * 0 * *", "day of month field \"0\""),
            ("* * * 13 *", "month field \"13\""),
            ("* * * * funday", "day of week field \"funday\""),
            ("*/x * * * *", "minute field"),
        ] {
            let e = parse_schedule(expr).unwrap_err();
            assert!(e.contains(want), "{expr}: {e}");
        }
        for expr in ["* * * *", "0 * * * * *", "", "every minute"] {
            let e = parse_schedule(expr).unwrap_err();
            assert!(e.contains("5 fields"), "{expr}: {e}");
        }
        assert!(parse_schedule("@sometimes")
            .unwrap_err()
            .contains("@hourly"));
    }
}
