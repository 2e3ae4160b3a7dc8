//! Postgres backups with the real tools: `pg:backups:capture` (pg_dump -Fc) of a real add-on,
//! rows deleted with `pg:psql -c`, `pg:backups:restore` (pg_restore) bringing them back and
//! restarting the dynos, the download, and what bad input gets.

mod common;

use common::{wait_until, Env};
use std::time::Duration;

fn count(env: &Env, app: &str) -> String {
    env.ok(
        &[
            "pg:psql",
            "-a",
            app,
            "-c",
            "SELECT 'rows=' || count(*) FROM fruit",
        ],
        None,
    )
    .lines()
    .find_map(|l| l.trim().strip_prefix("rows=").map(str::to_string))
    .unwrap_or_default()
}

/// Runs a command that must fail; its stderr (maybe a progress line, then the error).
fn refused(env: &Env, args: &[&str]) -> String {
    let o = env.run(args, None);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{args:?} should have failed: {err}");
    err
}

fn backup_ids(env: &Env, app: &str) -> Vec<String> {
    env.json(&["pg:backups", "-a", app, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn capture_delete_restore_brings_the_rows_back() {
    let env = Env::new("pg-backups");
    let dir = env.app_dir("examples/hello", "fruitapp");
    env.ok(&["up", "-a", "fruitapp"], Some(&dir));
    env.ok(
        &["addons:create", "heroku-postgresql", "-a", "fruitapp"],
        None,
    );
    env.ok(
        &[
            "pg:psql",
            "-a",
            "fruitapp",
            "-c",
            "CREATE TABLE fruit (name text); INSERT INTO fruit VALUES ('apple'), ('pear'), ('plum')",
        ],
        None,
    );
    assert_eq!(count(&env, "fruitapp"), "3");
    assert_eq!(backup_ids(&env, "fruitapp"), Vec::<String>::new());

    let out = env.ok(&["pg:backups:capture", "-a", "fruitapp"], None);
    assert!(out.contains("to b001"), "{out}");
    let table = env.ok(&["pg:backups", "-a", "fruitapp"], None);
    let row = table
        .lines()
        .find(|l| l.starts_with("b001"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("Completed") && row.contains("DATABASE"),
        "{table}"
    );
    let list = env.json(&["pg:backups", "-a", "fruitapp", "--json"]);
    let size = list[0]["processed_bytes"].as_u64().unwrap();
    assert!(size > 100, "{list}");
    // Root's alone: the dump and its directory.
    let dump = env
        .home
        .join("backups")
        .join(
            env.json(&["apps:info", "-a", "fruitapp", "--json"])["app"]["id"]
                .as_str()
                .unwrap(),
        )
        .join("b001.dump");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(dump.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    env.ok(
        &["pg:psql", "-a", "fruitapp", "-c", "DELETE FROM fruit"],
        None,
    );
    assert_eq!(count(&env, "fruitapp"), "0");

    // Bad input changes nothing.
    let err = env.fails(&["pg:backups:restore", "b001", "-a", "fruitapp"], None);
    assert!(err.contains("--confirm fruitapp"), "{err}");
    let err = env.fails(
        &[
            "pg:backups:restore",
            "b001",
            "-a",
            "fruitapp",
            "--confirm",
            "other",
        ],
        None,
    );
    assert!(err.contains("did not match fruitapp"), "{err}");
    let err = env.fails(
        &[
            "pg:backups:restore",
            "b007",
            "-a",
            "fruitapp",
            "--confirm",
            "fruitapp",
        ],
        None,
    );
    assert!(
        err.contains("Couldn't find backup b007") && err.contains("b001"),
        "{err}"
    );
    let err = env.fails(
        &[
            "pg:backups:restore",
            "x1",
            "-a",
            "fruitapp",
            "--confirm",
            "fruitapp",
        ],
        None,
    );
    assert!(err.contains("invalid backup id"), "{err}");
    let err = refused(
        &env,
        &[
            "pg:backups:restore",
            "b001",
            "NOPE",
            "-a",
            "fruitapp",
            "--confirm",
            "fruitapp",
        ],
    );
    assert!(err.contains("no Postgres database NOPE"), "{err}");
    assert_eq!(count(&env, "fruitapp"), "0");

    // The restore: rows back, dynos restarted.
    let before = env.wait_dynos_up("fruitapp", &["web.1"])[0]["id"].clone();
    let out = env.ok(
        &[
            "pg:backups:restore",
            "-a",
            "fruitapp",
            "--confirm",
            "fruitapp",
        ],
        None,
    );
    assert!(out.contains("Restored b001 into DATABASE"), "{out}");
    assert_eq!(count(&env, "fruitapp"), "3");
    let restarted = wait_until(Duration::from_secs(60), || {
        env.dynos("fruitapp")
            .iter()
            .any(|d| d["name"] == "web.1" && d["state"] == "up" && d["id"] != before)
    });
    assert!(
        restarted,
        "web.1 was not restarted: {:?}",
        env.dynos("fruitapp")
    );
    assert!(env.logs("fruitapp").contains("Restored backup b001"));

    // The download: the same bytes as the dump, in pg_restore's custom format.
    let out_dir = env.home.parent().unwrap().join("dl");
    std::fs::create_dir_all(&out_dir).unwrap();
    env.ok(&["pg:backups:download", "-a", "fruitapp"], Some(&out_dir));
    let got = std::fs::read(out_dir.join("latest.dump")).unwrap();
    assert_eq!(got.len() as u64, size);
    assert!(got.starts_with(b"PGDMP"));
    assert_eq!(got, std::fs::read(&dump).unwrap());
    let err = env.fails(
        &["pg:backups:download", "b002", "-a", "fruitapp"],
        Some(&out_dir),
    );
    assert!(err.contains("Couldn't find backup b002"), "{err}");

    // A second capture is b002; apps:destroy says the backups go, and they do.
    env.ok(&["pg:backups:capture", "DATABASE", "-a", "fruitapp"], None);
    assert_eq!(backup_ids(&env, "fruitapp"), ["b001", "b002"]);
    let o = env.run(&["apps:destroy", "fruitapp", "--confirm", "fruitapp"], None);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 Postgres backup(s)"), "{err}");
    assert!(!dump.parent().unwrap().exists());
}

#[test]
fn backups_need_a_postgres_database() {
    let env = Env::new("pg-backups-bad");
    env.ok(&["apps:create", "plain", "--no-remote"], None);
    let err = refused(&env, &["pg:backups:capture", "-a", "plain"]);
    assert!(
        err.contains("plain has no Postgres database DATABASE"),
        "{err}"
    );
    assert!(err.contains("addons:create heroku-postgresql"), "{err}");
    let err = env.fails(
        &["pg:backups:restore", "-a", "plain", "--confirm", "plain"],
        None,
    );
    assert!(err.contains("plain has no backups"), "{err}");
    let out = env.ok(&["pg:backups", "-a", "plain"], None);
    assert!(out.contains("No backups"), "{out}");
    env.ok(&["addons:create", "heroku-redis", "-a", "plain"], None);
    let err = refused(&env, &["pg:backups:capture", "REDIS", "-a", "plain"]);
    assert!(err.contains("is a heroku-redis add-on"), "{err}");
    assert!(backup_ids(&env, "plain").is_empty());
    assert!(
        !env.home.join("backups").exists()
            || std::fs::read_dir(env.home.join("backups"))
                .unwrap()
                .all(|e| std::fs::read_dir(e.unwrap().path())
                    .unwrap()
                    .next()
                    .is_none())
    );
}
