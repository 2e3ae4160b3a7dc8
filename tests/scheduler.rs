//! The scheduler add-on: jobs with real 5-field cron schedules, run by the daemon's minute tick
//! in real one-off dynos `scheduler.N` whose output reaches `dyno logs`; a job whose previous
//! run is still up is skipped; bad schedules and missing add-ons are refused.
//!
//! One test waits for a real minute boundary (up to ~70 s): the tick is the daemon's own, not
//! shortened, so what runs is what a user gets.

mod common;

use common::{wait_until, Env};
use std::time::Duration;

/// Runs a command that must fail; its stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let o = env.run(args, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} should have failed: {err}");
    err
}

fn job_count(env: &Env, app: &str) -> usize {
    env.json(&["cron", "-a", app, "--json"])
        .as_array()
        .unwrap()
        .len()
}

/// The `scheduler.N` dynos that wrote `needle` in the app's log stream.
fn scheduler_dynos_saying(env: &Env, app: &str, needle: &str) -> Vec<String> {
    let mut out: Vec<String> = env
        .logs(app)
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let start = l.find("app[scheduler.")? + 4;
            let end = start + l[start..].find(']')?;
            Some(l[start..end].to_string())
        })
        .collect();
    out.dedup();
    out
}

#[test]
fn a_job_every_minute_logs_from_a_scheduler_dyno() {
    let env = Env::new("scheduler");
    let dir = env.app_dir("examples/hello", "cronapp");
    env.ok(&["up", "-a", "cronapp"], Some(&dir));

    // No scheduler yet; bad schedules name their field; nothing is added.
    let err = env.fails(
        &["cron:add", "* * * * *", "-a", "cronapp", "--", "echo", "hi"],
        None,
    );
    assert!(
        err.contains("cronapp has no scheduler") && err.contains("addons:create scheduler"),
        "{err}"
    );
    let out = env.ok(&["addons:create", "scheduler", "-a", "cronapp"], None);
    assert!(out.contains("Created scheduler-"), "{out}");
    let err = refused(&env, &["addons:create", "scheduler", "-a", "cronapp"]);
    assert!(err.contains("already has scheduler"), "{err}");
    for (expr, want) in [
        ("61 * * * *", "the minute field \"61\""),
        ("* 25 * * *", "the hour field \"25\""),
        ("* * * jan-foo *", "the month field"),
        ("* * * * 9", "the day of week field \"9\""),
        ("* * * *", "5 fields"),
        ("0 * * * * *", "5 fields"),
    ] {
        let err = env.fails(
            &["cron:add", expr, "-a", "cronapp", "--", "echo", "x"],
            None,
        );
        assert!(err.contains(want), "{expr}: {err}");
    }
    let err = env.fails(&["cron:run", "1", "-a", "cronapp"], None);
    assert!(err.contains("Couldn't find job 1"), "{err}");
    assert_eq!(job_count(&env, "cronapp"), 0);

    // Job 1 every minute; job 2 every minute but still running from a manual run.
    let out = env.ok(
        &[
            "cron:add",
            "* * * * *",
            "-a",
            "cronapp",
            "--",
            "echo tick from $DYNO",
        ],
        None,
    );
    assert!(out.contains("Added job 1"), "{out}");
    env.ok(
        &[
            "cron:add",
            "*/1 * * * *",
            "-a",
            "cronapp",
            "--",
            "echo long-start; sleep 600",
        ],
        None,
    );
    let table = env.ok(&["cron", "-a", "cronapp"], None);
    let row = table
        .lines()
        .find(|l| l.starts_with("1 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("* * * * *") && row.contains("echo tick from $DYNO"),
        "{table}"
    );
    let jobs = env.json(&["cron", "-a", "cronapp", "--json"]);
    assert!(
        jobs[0]["next_run_at"].as_str().unwrap().ends_with(":00Z"),
        "{jobs}"
    );

    // cron:run starts one now.
    let out = env.ok(&["cron:run", "2", "-a", "cronapp"], None);
    assert!(out.contains("scheduler."), "{out}");
    let long = wait_until(Duration::from_secs(30), || {
        !scheduler_dynos_saying(&env, "cronapp", "long-start").is_empty()
    });
    assert!(long, "{}", env.logs("cronapp"));
    assert!(env
        .dynos("cronapp")
        .iter()
        .any(|d| d["type"] == "scheduler" && d["state"] == "up"));

    // The tick: job 1 runs in its own scheduler.N dyno, whose output names itself; job 2 is
    // skipped, its previous run still up.
    let ran = wait_until(Duration::from_secs(80), || {
        scheduler_dynos_saying(&env, "cronapp", "tick from scheduler.")
            .iter()
            .any(|d| {
                env.logs("cronapp")
                    .contains(&format!("app[{d}]: tick from {d}"))
            })
    });
    let logs = env.logs("cronapp");
    assert!(ran, "no scheduled run logged:\n{logs}");
    assert!(
        logs.contains("by user scheduler@addons.heroku.com"),
        "{logs}"
    );
    let skipped = wait_until(Duration::from_secs(10), || {
        env.logs("cronapp")
            .contains("Skipping job 2 (`echo long-start; sleep 600`): its previous run scheduler.")
    });
    assert!(skipped, "{}", env.logs("cronapp"));
    assert_eq!(
        scheduler_dynos_saying(&env, "cronapp", "long-start").len(),
        1
    );

    // Removing: job 1 goes; an unknown one is refused; destroying the add-on takes the rest.
    env.ok(&["cron:remove", "1", "-a", "cronapp"], None);
    let err = env.fails(&["cron:remove", "1", "-a", "cronapp"], None);
    assert!(err.contains("Couldn't find job 1"), "{err}");
    assert_eq!(job_count(&env, "cronapp"), 1);
    // Several words are quoted as `dyno run` quotes them; the numbers go on.
    let out = env.ok(
        &[
            "cron:add", "@daily", "-a", "cronapp", "--", "printf", "<%s>\\n", "a b",
        ],
        None,
    );
    assert!(out.contains("Added job 3"), "{out}");
    let jobs = env.json(&["cron", "-a", "cronapp", "--json"]);
    assert_eq!(jobs[1]["command"], "printf '<%s>\\n' 'a b'", "{jobs}");
    let name = env.json(&["addons", "-a", "cronapp", "--json"])[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(
        &[
            "addons:destroy",
            &name,
            "-a",
            "cronapp",
            "--confirm",
            "cronapp",
        ],
        None,
    );
    assert_eq!(job_count(&env, "cronapp"), 0);
    env.ok(&["ps:stop", "scheduler", "-a", "cronapp"], None);
}
