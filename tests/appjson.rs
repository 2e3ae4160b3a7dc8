//! `app.json` on a first deploy: its `addons` provisioned (a real PostgreSQL database) and its
//! `cron` entries made scheduler jobs, before the deploy's release; the `addons` a buildpack's
//! `bin/release` names provisioned the same way; a bad `app.json` stopping `dyno up` before
//! anything changes.

mod common;

use common::Env;
use std::path::Path;

fn buildpack(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/buildpacks")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn descriptions(env: &Env, app: &str) -> Vec<String> {
    env.json(&["releases", "-a", app, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["description"].as_str().unwrap().to_string())
        .collect()
}

fn services(env: &Env, app: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .json(&["addons", "-a", app, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["addon_service"]["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_first_deploy_gets_the_addons_and_jobs_of_app_json() {
    let env = Env::new("appjson");
    let dir = env.app_dir("examples/hello", "jsonapp");
    std::fs::write(
        dir.join("app.json"),
        r#"{
  "name": "jsonapp",
  "description": "fields dyno leaves alone are fine",
  "env": {"SECRET": {"generator": "secret"}},
  "addons": ["heroku-postgresql"],
  "cron": [{"command": "echo digest from $DYNO", "schedule": "*/10 * * * *"}]
}"#,
    )
    .unwrap();
    let out = env.ok(&["up", "-a", "jsonapp"], Some(&dir));
    assert!(
        out.contains("Provisioning heroku-postgresql:essential-0 (asked for by app.json)"),
        "{out}"
    );
    assert!(out.contains("Scheduled job 1"), "{out}");
    assert_eq!(
        services(&env, "jsonapp"),
        ["heroku-postgresql", "scheduler"]
    );
    let config = env.json(&["config", "-a", "jsonapp", "--json"]);
    assert!(
        config["DATABASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("postgres://"),
        "{config}"
    );
    let jobs = env.json(&["cron", "-a", "jsonapp", "--json"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["schedule"], "*/10 * * * *");
    assert_eq!(jobs[0]["command"], "echo digest from $DYNO");
    // The add-ons' releases come before the deploy's, which has their plans and config.
    let d = descriptions(&env, "jsonapp");
    assert!(
        d[0].starts_with("Attach DATABASE (@ref:postgresql-"),
        "{d:?}"
    );
    assert!(
        d[1].starts_with("Attach SCHEDULER (@ref:scheduler-"),
        "{d:?}"
    );
    assert!(d[2].starts_with("Deploy "), "{d:?}");
    let latest = env.json(&["releases", "-a", "jsonapp", "--json"])[0].clone();
    let plans = latest["addon_plan_names"].as_array().unwrap();
    assert_eq!(plans.len(), 2, "{latest}");
    env.wait_dynos_up("jsonapp", &["web.1"]);
    // The database answers with the app's own credentials.
    let out = env.ok(&["pg:psql", "-a", "jsonapp", "-c", "SELECT 40 + 2"], None);
    assert!(out.contains("42"), "{out}");

    // A second deploy provisions nothing more and adds no job twice.
    let out = env.ok(&["up", "-a", "jsonapp"], Some(&dir));
    assert!(!out.contains("Provisioning"), "{out}");
    assert_eq!(
        services(&env, "jsonapp"),
        ["heroku-postgresql", "scheduler"]
    );
    assert_eq!(
        env.json(&["cron", "-a", "jsonapp", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A bad app.json stops the deploy before anything changes: the release stays.
    let before = descriptions(&env, "jsonapp");
    std::fs::write(
        dir.join("app.json"),
        "{\"addons\": [\"heroku-postgresql\",]}",
    )
    .unwrap();
    let err = env.fails(&["up", "-a", "jsonapp"], Some(&dir));
    assert!(err.contains("app.json is not valid JSON"), "{err}");
    assert_eq!(descriptions(&env, "jsonapp"), before);

    // Jobs and add-ons go with the app: a new app of the same name has none.
    env.ok(&["apps:destroy", "jsonapp", "--confirm", "jsonapp"], None);
    env.ok(&["apps:create", "jsonapp", "--no-remote"], None);
    assert!(env
        .json(&["cron", "-a", "jsonapp", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(services(&env, "jsonapp").is_empty());
}

#[test]
fn a_bad_app_json_creates_nothing() {
    let env = Env::new("appjson-bad");
    for (i, (text, want)) in [
        (
            "{\"addons\": [\"heroku-postgresql\"",
            "app.json is not valid JSON",
        ),
        (
            "{\"addons\": [\"heroku-mysql\"]}",
            "app.json: addons[0]: Couldn't find",
        ),
        (
            "{\"cron\": [{\"command\": \"x\", \"schedule\": \"*/10 * * *\"}]}",
            "app.json: cron[0]: invalid schedule",
        ),
        (
            "{\"cron\": [{\"command\": \"x\", \"schedule\": \"0 0 32 * *\"}]}",
            "the day of month field \"32\"",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = env.app_dir("examples/hello", &format!("badjson{i}"));
        std::fs::write(dir.join("app.json"), text).unwrap();
        let err = env.fails(&["up"], Some(&dir));
        assert!(err.contains(want), "{text}: {err}");
    }
    let apps = env.json(&["apps", "--json"]);
    assert_eq!(apps.as_array().unwrap().len(), 0, "{apps}");
}

#[test]
fn a_buildpack_naming_heroku_redis_gives_its_app_a_redis_url() {
    let env = Env::new("appjson-bp");
    let dir = env.app_dir("examples/hello", "bpapp");
    std::fs::remove_file(dir.join("Procfile")).unwrap();
    env.ok(&["apps:create", "bpapp", "--no-remote"], None);
    env.ok(
        &["buildpacks:set", &buildpack("wants-redis"), "-a", "bpapp"],
        None,
    );
    let out = env.ok(&["up", "-a", "bpapp"], Some(&dir));
    assert!(
        out.contains("Provisioning heroku-redis:mini (asked for by the buildpack)"),
        "{out}"
    );
    let config = env.json(&["config", "-a", "bpapp", "--json"]);
    assert!(
        config["REDIS_URL"]
            .as_str()
            .unwrap()
            .starts_with("redis://:"),
        "{config}"
    );
    assert_eq!(services(&env, "bpapp"), ["heroku-redis"]);
    let out = env.ok(&["redis:cli", "-a", "bpapp", "-c", "PING"], None);
    assert!(out.contains("PONG"), "{out}");
    env.wait_dynos_up("bpapp", &["web.1"]);
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args([
            "-c",
            "user.name=dyno test",
            "-c",
            "user.email=test@localhost",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("running git")
}

#[test]
fn a_pushed_bad_app_json_fails_the_build_before_any_buildpack() {
    let env = Env::new("appjson-push");
    let dir = env.app_dir("examples/hello", "pushjson");
    std::fs::write(dir.join("app.json"), "{\"cron\": [{\"command\": \"x\"}]}").unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "bad app.json"],
    ] {
        assert!(git(&dir, args).status.success(), "git {args:?}");
    }
    env.ok(&["apps:create", "pushjson", "--no-remote"], None);
    env.ok(&["git:remote", "-a", "pushjson"], Some(&dir));
    let o = git(&dir, &["push", "dyno", "main"]);
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{text}");
    assert!(
        text.contains("app.json: cron[0]: needs a \"schedule\" string"),
        "{text}"
    );
    assert!(
        !text.contains("Procfile app detected"),
        "a buildpack ran: {text}"
    );
    assert!(descriptions(&env, "pushjson").is_empty());
    assert!(services(&env, "pushjson").is_empty());
}
