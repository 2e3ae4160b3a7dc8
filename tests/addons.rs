//! Add-ons with real servers: Debian's PostgreSQL and Redis started and supervised by the
//! daemon, a real app from PyPI packages (psycopg, redis) in real dynos, and the host's psql and
//! redis-cli checking what one app's credentials can reach.

mod common;

use common::{wait_until, Env};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn config(env: &Env, app: &str) -> Value {
    env.json(&["config", "-a", app, "--json"])
}

fn release_descriptions(env: &Env, app: &str) -> Vec<String> {
    env.json(&["releases", "-a", app, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["description"].as_str().unwrap().to_string())
        .collect()
}

/// `addons:create`; returns the add-on's name (`Created NAME as VAR`).
fn create(env: &Env, app: &str, plan: &str, extra: &[&str]) -> String {
    let mut args = vec!["addons:create", plan, "-a", app];
    args.extend_from_slice(extra);
    let out = env.ok(&args, None);
    out.lines()
        .find_map(|l| l.strip_prefix("Created "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no add-on name in {out}"))
        .to_string()
}

/// Runs a command that must fail; its stderr (a progress line, then the error).
fn refused(env: &Env, args: &[&str]) -> String {
    let o = env.run(args, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} should have failed: {err}");
    err
}

/// psql on the host over TCP, as a dyno would connect: (success, stdout + stderr).
fn psql(url: &str, sql: &str) -> (bool, String) {
    let o = Command::new(dyno::addons::pg_bin("psql").unwrap())
        .args(["-X", "-A", "-t", "-c", sql, url])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// redis-cli on the host over TCP with a `redis://:pw@host:port` URL.
fn redis(url: &str, args: &[&str]) -> String {
    let (auth, hostport) = url.trim_start_matches("redis://").rsplit_once('@').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let o = Command::new("redis-cli")
        .args(["--no-auth-warning", "-h", host, "-p", port, "-a"])
        .arg(auth.trim_start_matches(':'))
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).trim().to_string();
    match String::from_utf8_lossy(&o.stderr).trim() {
        "" => out,
        err => format!("{err}\n{out}"),
    }
}

/// Processes of this home's add-on servers.
fn server_pids(env: &Env) -> Vec<i32> {
    let needle = format!("/run/dyno-addons/{}/", env.instance);
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

fn postmaster_pid(env: &Env) -> i32 {
    let s = std::fs::read_to_string(env.home.join("addons/postgres/data/postmaster.pid")).unwrap();
    s.lines().next().unwrap().trim().parse().unwrap()
}

/// GETs through the router until the dyno `want` answers 200; returns its body.
fn get_from(env: &Env, app: &str, path: &str, want: &str) -> String {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(30), || {
        let (status, body) = env.get(app, path);
        last = format!("{status} {body}");
        status == 200 && body.starts_with(&format!("{want}\n"))
    });
    assert!(ok, "{path} never answered 200 from {want}: {last}");
    last.split_once(' ').unwrap().1.to_string()
}

#[test]
fn a_python_app_shares_its_data_through_postgres_and_redis() {
    let env = Env::new("addons-app");
    let dir = env.app_dir("tests/fixtures/addons-app", "shop");
    env.ok(&["apps:create", "shop", "--no-remote"], None);
    let pg = create(&env, "shop", "heroku-postgresql", &[]);
    assert!(pg.starts_with("postgresql-"), "{pg}");
    let rd = create(&env, "shop", "heroku-redis", &[]);
    assert!(rd.starts_with("redis-"), "{rd}");
    let vars = config(&env, "shop");
    assert!(vars["DATABASE_URL"]
        .as_str()
        .unwrap()
        .starts_with("postgres://u"));
    assert!(vars["REDIS_URL"].as_str().unwrap().starts_with("redis://:"));
    assert_eq!(
        release_descriptions(&env, "shop"),
        vec![
            format!("Attach DATABASE (@ref:{pg})"),
            format!("Attach REDIS (@ref:{rd})")
        ]
    );

    // psycopg and redis from PyPI; the release phase creates the tables.
    let out = env.ok(&["up", "-a", "shop"], Some(&dir));
    assert!(out.contains("Successfully installed"), "{out}");
    env.ok(&["ps:scale", "-a", "shop", "web=2", "worker=1"], None);
    env.wait_dynos_up("shop", &["web.1", "web.2", "worker.1"]);
    let releases = env.json(&["releases", "-a", "shop", "--json"]);
    // Newest first.
    let last = releases.as_array().unwrap()[0].clone();
    assert_eq!(last["status"], "succeeded", "{last}");
    let mut plans: Vec<&str> = last["addon_plan_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    plans.sort();
    assert_eq!(
        plans,
        vec!["heroku-postgresql:essential-0", "heroku-redis:mini"]
    );

    // A row written through web.1 is read through web.2.
    get_from(&env, "shop", "/write?body=hello", "web.1");
    let body = get_from(&env, "shop", "/read", "web.2");
    assert!(body.contains("hello by web.1"), "{body}");
    let logs = env.logs("shop");
    assert!(
        logs.lines()
            .any(|l| l.contains("path=\"/read\"") && l.contains("dyno=web.2")),
        "{logs}"
    );

    // The worker moves jobs from Redis into Postgres.
    for job in ["job-a", "job-b"] {
        env.get("shop", &format!("/enqueue?job={job}"));
    }
    let ok = wait_until(Duration::from_secs(30), || {
        let (_, body) = env.get("shop", "/done");
        body.contains("job-a by worker.1") && body.contains("job-b by worker.1")
    });
    assert!(ok, "jobs never done: {:?}", env.get("shop", "/done"));

    // The data survives kill -9 of the daemon (servers adopted, not started again) and
    // ps:restart.
    let servers = server_pids(&env);
    let postmaster = postmaster_pid(&env);
    let daemon = env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::thread::sleep(Duration::from_millis(300));
    env.wait_dynos_up("shop", &["web.1", "web.2", "worker.1"]);
    assert_eq!(postmaster_pid(&env), postmaster, "a second postmaster");
    let mut now = server_pids(&env);
    now.sort();
    let mut before = servers.clone();
    before.sort();
    assert!(
        before.iter().all(|p| now.contains(p)),
        "{before:?} → {now:?}"
    );
    env.ok(&["ps:restart", "-a", "shop"], None);
    env.wait_dynos_up("shop", &["web.1", "web.2", "worker.1"]);
    let body = get_from(&env, "shop", "/read", "web.1");
    assert!(body.contains("hello by web.1"), "{body}");
    let (_, done) = env.get("shop", "/done");
    assert!(done.contains("job-b by worker.1"), "{done}");

    // A killed server is started again, and the apps' streams say so.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(postmaster),
        nix::sys::signal::Signal::SIGKILL,
    );
    let ok = wait_until(Duration::from_secs(30), || {
        env.logs("shop")
            .contains("app[heroku-postgres]: PostgreSQL restarted")
    });
    assert!(ok, "{}", env.logs("shop"));
    assert!(env
        .logs("shop")
        .contains("app[heroku-postgres]: PostgreSQL exited unexpectedly; restarting it"));
    get_from(&env, "shop", "/write?body=again", "web.2");
    let body = get_from(&env, "shop", "/read", "web.1");
    assert!(body.contains("again by web.2"), "{body}");

    // addons:destroy: a release without the config var, and the database is gone.
    let url = vars["DATABASE_URL"].as_str().unwrap().to_string();
    assert!(psql(&url, "SELECT 1").0);
    refused(&env, &["addons:destroy", &pg, "-a", "shop"]);
    env.ok(
        &["addons:destroy", &pg, "-a", "shop", "--confirm", "shop"],
        None,
    );
    assert!(release_descriptions(&env, "shop").contains(&format!("Detach DATABASE (@ref:{pg})")));
    let vars = config(&env, "shop");
    assert!(vars.get("DATABASE_URL").is_none(), "{vars}");
    assert!(vars.get("REDIS_URL").is_some(), "{vars}");
    let (ok, out) = psql(&url, "SELECT 1");
    assert!(!ok, "{out}");
    let list = env.json(&["addons", "-a", "shop", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // The detach release restarts the dynos; once they all run it, daemon:stop stops the
    // servers too.
    let version = env.json(&["releases", "-a", "shop", "--json"])[0]["version"].clone();
    let ok = wait_until(Duration::from_secs(30), || {
        let dynos = env.dynos("shop");
        dynos.len() == 3
            && dynos
                .iter()
                .all(|d| d["state"] == "up" && d["release"]["version"] == version)
    });
    assert!(ok, "{:#?}", env.dynos("shop"));
    env.ok(&["daemon:stop"], None);
    assert!(
        wait_until(Duration::from_secs(15), || server_pids(&env).is_empty()),
        "{:?}",
        server_pids(&env)
    );
    env.assert_nothing_left("daemon:stop");
}

#[test]
fn apps_are_isolated_from_each_others_addons() {
    let env = Env::new("addons-iso");
    for app in ["app-a", "app-b"] {
        env.ok(&["apps:create", app, "--no-remote"], None);
    }
    let pg_a = create(&env, "app-a", "heroku-postgresql", &[]);
    let rd_a = create(&env, "app-a", "heroku-redis", &[]);
    create(&env, "app-b", "heroku-postgresql", &[]);
    create(&env, "app-b", "heroku-redis", &[]);
    let (a, b) = (config(&env, "app-a"), config(&env, "app-b"));
    let url = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();

    // B's own credentials with A's database name are refused.
    let (url_a, url_b) = (url(&a, "DATABASE_URL"), url(&b, "DATABASE_URL"));
    let db_a = url_a.rsplit('/').next().unwrap();
    let b_to_a = format!("{}/{db_a}", url_b.rsplit_once('/').unwrap().0);
    assert!(psql(&url_a, "CREATE TABLE secret (x int)").0);
    let (ok, out) = psql(&b_to_a, "SELECT 1");
    assert!(!ok && out.contains("permission denied"), "{out}");
    let (ok, out) = psql(&url_b, "SELECT * FROM pg_tables WHERE tablename = 'secret'");
    assert!(ok && out.trim().is_empty(), "{out}");
    // Nor the cluster's own database.
    let b_to_pg = format!("{}/postgres", url_b.rsplit_once('/').unwrap().0);
    assert!(!psql(&b_to_pg, "SELECT 1").0);

    // B's Redis cannot see A's key, and B's FLUSHALL leaves it.
    let (r_a, r_b) = (url(&a, "REDIS_URL"), url(&b, "REDIS_URL"));
    assert_ne!(r_a, r_b);
    assert_eq!(redis(&r_a, &["SET", "only-a", "1"]), "OK");
    assert_eq!(redis(&r_b, &["GET", "only-a"]), "");
    assert_eq!(redis(&r_b, &["KEYS", "*"]), "");
    assert_eq!(redis(&r_b, &["FLUSHALL"]), "OK");
    assert_eq!(redis(&r_a, &["GET", "only-a"]), "1");
    // A's password is A's only.
    let wrong = format!(
        "redis://:{}@{}",
        r_b.split(['@', ':']).nth(2).unwrap(),
        r_a.rsplit_once('@').unwrap().1
    );
    let out = redis(&wrong, &["GET", "only-a"]);
    assert!(out.contains("WRONGPASS") && !out.contains('1'), "{out}");

    // pg:psql and redis:cli reach the app's own, over the servers' Unix sockets.
    let out = env.ok(
        &[
            "pg:psql",
            "-a",
            "app-a",
            "-c",
            "SELECT count(*) FROM secret",
        ],
        None,
    );
    assert!(out.contains('0'), "{out}");
    assert_eq!(
        env.ok(&["redis:cli", "-a", "app-a", "-c", "GET only-a"], None)
            .trim(),
        "1"
    );
    assert!(env
        .ok(&["pg:info", "-a", "app-a"], None)
        .contains(&format!("Add-on:      {pg_a}")));
    assert!(env.ok(&["redis:info", "-a", "app-a"], None).contains(&rd_a));

    // A's database attached to B as ANALYTICS: a release of B.
    let out = env.run(
        &["addons:attach", &pg_a, "-a", "app-b", "--as", "ANALYTICS"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(url(&config(&env, "app-b"), "ANALYTICS_URL"), url_a);
    assert!(
        release_descriptions(&env, "app-b").contains(&format!("Attach ANALYTICS (@ref:{pg_a})"))
    );
    let table = env.ok(&["addons", "-a", "app-a"], None);
    assert!(table.contains(" └─ as ANALYTICS on app-b app"), "{table}");
    let info = env.json(&["addons:info", &pg_a, "-a", "app-a", "--json"]);
    assert_eq!(info["attachments"].as_array().unwrap().len(), 2, "{info}");
    // Destroying it says another app has it.
    let err = refused(
        &env,
        &["addons:destroy", &pg_a, "-a", "app-a", "--confirm", "app-a"],
    );
    assert!(err.contains("also attached to app-b"), "{err}");
    env.ok(&["addons:detach", "ANALYTICS", "-a", "app-b"], None);
    assert!(config(&env, "app-b").get("ANALYTICS_URL").is_none());
    assert!(
        release_descriptions(&env, "app-b").contains(&format!("Detach ANALYTICS (@ref:{pg_a})"))
    );
    // The last attachment cannot be detached.
    let err = refused(&env, &["addons:detach", "DATABASE", "-a", "app-a"]);
    assert!(err.contains("addons:destroy"), "{err}");

    // apps:destroy takes the app's add-ons along: A's database and Redis server are gone.
    let redis_dir = env.home.join("addons").join(&rd_a);
    assert!(redis_dir.is_dir());
    env.ok(&["apps:destroy", "app-a", "--confirm", "app-a"], None);
    assert!(!redis_dir.exists());
    assert!(!redis(&r_a, &["PING"]).contains("PONG"));
    assert!(!psql(&url_a, "SELECT 1").0);
    assert!(psql(&url_b, "SELECT 1").0);
    let list = env.json(&["addons", "-a", "app-b", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

#[test]
fn bad_input_leaves_nothing_half_made() {
    let env = Env::new("addons-bad");
    env.ok(&["apps:create", "bad-app", "--no-remote"], None);
    let err = env.fails(&["addons:create", "heroku-mysql", "-a", "bad-app"], None);
    assert!(
        err.contains("heroku-postgresql, heroku-redis and scheduler"),
        "{err}"
    );
    let err = env.fails(
        &["addons:create", "heroku-redis:huge", "-a", "bad-app"],
        None,
    );
    assert!(err.contains("mini"), "{err}");
    let err = env.fails(
        &[
            "addons:create",
            "heroku-redis",
            "--as",
            "9X",
            "-a",
            "bad-app",
        ],
        None,
    );
    assert!(err.contains("invalid attachment name"), "{err}");
    let err = env.fails(&["addons:info", "postgresql-none-1", "-a", "bad-app"], None);
    assert!(err.contains("Couldn't find"), "{err}");
    assert!(release_descriptions(&env, "bad-app").is_empty());

    // A name already used in the app.
    create(&env, "bad-app", "heroku-redis", &[]);
    let o = env.run(
        &[
            "addons:create",
            "heroku-redis",
            "--as",
            "REDIS",
            "-a",
            "bad-app",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("already has REDIS_URL"),
        "{err}"
    );

    // A server that cannot start: the error shows the end of its log, and no add-on, database,
    // config var or release is left of the attempt.
    create(&env, "bad-app", "heroku-postgresql", &[]);
    env.ok(&["daemon:stop"], None);
    let conf = env.home.join("addons/postgres/data/postgresql.conf");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nshared_buffers = lots\n")).unwrap();
    let o = env.run(
        &["addons:create", "heroku-postgresql", "-a", "bad-app"],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("PostgreSQL did not start"), "{err}");
    assert!(err.contains("shared_buffers"), "{err}");
    let vars = config(&env, "bad-app");
    assert_eq!(vars.as_object().unwrap().len(), 2, "{vars}");
    assert_eq!(release_descriptions(&env, "bad-app").len(), 2);
    assert_eq!(
        env.json(&["addons", "-a", "bad-app", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    std::fs::write(&conf, good).unwrap();
    create(&env, "bad-app", "heroku-postgresql", &[]);
    let out = env.ok(
        &[
            "pg:psql",
            "-a",
            "bad-app",
            "-c",
            "SELECT datname FROM pg_database",
        ],
        None,
    );
    // The failed attempt's database never existed; the two add-ons' do.
    assert_eq!(out.matches("\n d").count(), 2, "{out}");
}
