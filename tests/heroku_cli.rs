//! The official `heroku` CLI (heroku@11.10.0 from npm, installed once into
//! `/var/cache/dyno-tests/heroku-cli/<version>`, outside the clone) drives a real daemon over
//! its HTTPS API, with its own HOME (it writes `~/.gitconfig` and `~/.netrc`) and only the
//! exports of `dyno heroku:env`. Every command of a user's day, each checked by its effect in
//! dyno: apps, git push over HTTPS (and a failed build rejecting one), scale, ps, config,
//! releases and rollback, domains, drains, buildpacks, a real add-on, run through a pty and
//! piped, `run -x` exit codes, a client that goes away, run:detached, logs and `logs --tail`,
//! apps:destroy.

mod common;

use common::{wait_until, Env};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const VERSION: &str = "11.10.0";

/// The CLI's directory, installed from npm the first time.
fn heroku_bin_dir() -> PathBuf {
    let root = PathBuf::from("/var/cache/dyno-tests/heroku-cli").join(VERSION);
    let bin = root.join("node_modules/.bin");
    if bin.join("heroku").exists() {
        return bin;
    }
    let tmp = root.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let o = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&tmp)
        .arg(format!("heroku@{VERSION}"))
        .output()
        .expect("npm (Debian's nodejs and npm: scripts/deps.sh)");
    assert!(
        o.status.success(),
        "npm install heroku@{VERSION}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Another test process may have won the race: theirs is as good as ours.
    if std::fs::rename(&tmp, &root).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(bin.join("heroku").exists());
    bin
}

struct Heroku {
    bin: PathBuf,
    home: PathBuf,
    vars: Vec<(String, String)>,
}

impl Heroku {
    fn new(env: &Env) -> Heroku {
        let bin = heroku_bin_dir();
        let home = env.home.parent().unwrap().join("user-home");
        std::fs::create_dir_all(&home).unwrap();
        let exports = env.ok(&["heroku:env"], None);
        let vars = exports
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Heroku { bin, home, vars }
    }

    fn cmd(&self, program: &str, args: &[&str], cwd: &Path) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("HEROKU_") || k.starts_with("GIT_") {
                c.env_remove(k);
            }
        }
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.args(args)
            .current_dir(cwd)
            .env("HOME", &self.home)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@localhost")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@localhost")
            .env_remove("DYNO_HOME")
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], cwd: &Path) -> Output {
        let o = self.cmd("heroku", args, cwd).output().expect("heroku");
        eprintln!(
            "$ heroku {}  → {}\n{}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// Runs `heroku ARGS`, asserting success; stdout and stderr together.
    fn ok(&self, args: &[&str], cwd: &Path) -> String {
        let o = self.run(args, cwd);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "heroku {args:?} failed: {all}");
        all
    }

    fn sh(&self, script: &str, cwd: &Path) -> Output {
        let o = self.cmd("sh", &["-c", script], cwd).output().expect("sh");
        eprintln!(
            "$ {script}  → {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_dynos(env: &Env, app: &str) -> Vec<Value> {
    env.dynos(app)
        .into_iter()
        .filter(|d| d["type"] == "run")
        .collect()
}

#[test]
fn the_heroku_cli_drives_dyno() {
    let env = Env::new("heroku-cli");
    let h = Heroku::new(&env);
    let started = Instant::now();
    let src = env.app_dir("examples/hello", "myapp");
    let git = |args: &[&str]| {
        let o = h.cmd("git", args, &src).output().unwrap();
        assert!(o.status.success(), "git {args:?}: {}", text(&o));
        text(&o)
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "hello"]);

    // apps:create adds the `heroku` remote: https on the API's own port.
    let out = h.ok(&["apps:create", "myapp"], &src);
    let api_url = &h.vars.iter().find(|(k, _)| k == "HEROKU_HOST").unwrap().1;
    assert!(out.contains(&format!("{api_url}/myapp.git")), "{out}");
    assert!(git(&["remote", "-v"]).contains(&format!("heroku\t{api_url}/myapp.git")));
    assert_eq!(env.json(&["apps", "--json"])[0]["name"], "myapp");
    // The CLI wrote its credential helper into its own HOME.
    let gitconfig = std::fs::read_to_string(h.home.join(".gitconfig")).unwrap();
    assert!(gitconfig.contains("heroku git:credentials"), "{gitconfig}");

    // git push over HTTPS builds and releases; the result is served.
    let push = h.sh("git push heroku main 2>&1", &src);
    let out = text(&push);
    assert!(push.status.success(), "{out}");
    assert!(
        out.contains("remote: -----> Release v1 created") && out.contains("Deployed"),
        "{out}"
    );
    env.wait_dynos_up("myapp", &["web.1"]);
    let (status, body) = env.get("myapp", "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello"), "{body}");

    // `heroku apps` against `dyno apps`.
    let t = Instant::now();
    let out = h.ok(&["apps"], &src);
    let heroku_apps = t.elapsed();
    assert!(out.contains("myapp"), "{out}");
    let t = Instant::now();
    env.ok(&["apps"], None);
    eprintln!(
        "wall time: heroku apps {:.2} s, dyno apps {:.3} s",
        heroku_apps.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );

    // Scale: absolute, then relative ("+1" as a string); ps lists them.
    h.ok(&["ps:scale", "web=2"], &src);
    env.wait_dynos_up("myapp", &["web.1", "web.2"]);
    h.ok(&["ps:scale", "web+1"], &src);
    env.wait_dynos_up("myapp", &["web.1", "web.2", "web.3"]);
    let out = h.ok(&["ps"], &src);
    assert!(
        out.contains("web.1: up") && out.contains("web.3: up"),
        "{out}"
    );
    h.ok(&["ps:scale", "web=1"], &src);
    let before = env.wait_dynos_up("myapp", &["web.1"])[0]["id"].clone();
    // ps:restart of a process type: a new web.1.
    h.ok(&["ps:restart", "--process-type", "web"], &src);
    assert!(
        wait_until(Duration::from_secs(30), || env.dynos("myapp").iter().any(
            |d| { d["name"] == "web.1" && d["state"] == "up" && d["id"] != before }
        )),
        "web.1 was not restarted: {:?}",
        env.dynos("myapp")
    );

    // Config, releases, rollback.
    let out = h.ok(&["config:set", "FOO=bar baz"], &src);
    assert!(out.contains("done, v2"), "{out}");
    assert_eq!(
        env.json(&["config", "-a", "myapp", "--json"])["FOO"],
        "bar baz"
    );
    let out = h.ok(&["releases"], &src);
    let (v2, v1) = (out.find("v2").unwrap(), out.find("v1 ").unwrap());
    assert!(v2 < v1 && out.contains("Current: v2"), "{out}");
    let out = h.ok(&["releases:rollback"], &src);
    assert!(out.contains("v3"), "{out}");
    let releases = env.json(&["releases", "-a", "myapp", "--json"]);
    let v3 = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == 3)
        .cloned()
        .unwrap_or_default();
    assert_eq!(v3["description"], "Rollback to v1", "{releases}");
    assert!(env
        .json(&["config", "-a", "myapp", "--json"])
        .get("FOO")
        .is_none());

    // Domains, drains, buildpacks.
    h.ok(&["domains:add", "www.example.com"], &src);
    assert!(h.ok(&["domains"], &src).contains("www.example.com"));
    let domains = env.json(&["domains", "-a", "myapp", "--json"]);
    assert!(domains.to_string().contains("www.example.com"), "{domains}");
    h.ok(&["drains:add", "syslog+tcp://127.0.0.1:9"], &src);
    assert!(h.ok(&["drains"], &src).contains("syslog+tcp://127.0.0.1:9"));
    assert!(env
        .json(&["drains", "-a", "myapp", "--json"])
        .to_string()
        .contains("syslog+tcp://127.0.0.1:9"));
    let bp = "https://github.com/heroku/heroku-buildpack-python";
    h.ok(&["buildpacks:set", bp], &src);
    assert!(h.ok(&["buildpacks"], &src).contains(bp));
    assert!(env
        .json(&["buildpacks", "-a", "myapp", "--json"])
        .to_string()
        .contains(bp));
    h.ok(&["buildpacks:clear"], &src);
    assert!(!env
        .json(&["buildpacks", "-a", "myapp", "--json"])
        .to_string()
        .contains(bp));

    // A real add-on.
    let out = h.ok(&["addons"], &src);
    assert!(out.contains("No add-ons for app myapp"), "{out}");
    let out = h.ok(&["addons:create", "heroku-postgresql"], &src);
    assert!(out.contains("DATABASE_URL"), "{out}");
    let addons = env.json(&["addons", "-a", "myapp", "--json"]);
    let name = addons[0]["name"].as_str().unwrap().to_string();
    let out = h.ok(&["addons"], &src);
    assert!(
        out.contains(&name) && out.contains("essential-0") && out.contains("free"),
        "{out}"
    );
    let url = env.ok(&["config:get", "DATABASE_URL", "-a", "myapp"], None);
    assert!(url.starts_with("postgres://"), "{url}");

    // run through a pty (util-linux `script` gives the CLI a terminal).
    let o = h.sh(
        "script -qec \"heroku run -- 'echo pty-\\$((6*7)); tty'\" /dev/null",
        &src,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("pty-42") && out.contains("/dev/pts/"), "{out}");
    // Piped, with a pty in the dyno (the CLI's 0x04 is the terminal's end of input) and
    // without one (--no-tty: 0x04 closes the dyno's stdin).
    let o = h.sh("printf 'echo from-$((2+3))\\n' | heroku run bash", &src);
    assert!(text(&o).contains("from-5"), "{}", text(&o));
    let o = h.sh(
        "printf 'one\\ntwo\\n' | heroku run --no-tty -- 'cat; echo piped-done'",
        &src,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains("one\ntwo\npiped-done"), "{out}");
    // run -x: the command's status is the CLI's.
    let o = h.run(&["run", "-x", "--", "sh -c 'echo x-out; exit 3'"], &src);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("x-out"));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("heroku-command-exit-status"));
    let o = h.run(&["run", "-x", "--no-tty", "--", "true"], &src);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Ended runs leave no dyno; a client that goes away takes its dyno with it.
    assert!(wait_until(Duration::from_secs(15), || run_dynos(
        &env, "myapp"
    )
    .is_empty()));
    let mut client = h
        .cmd("heroku", &["run", "--no-tty", "--", "sleep 300"], &src)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || run_dynos(&env, "myapp")
            .iter()
            .any(|d| d["state"] == "up")),
        "the run dyno never came up"
    );
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || run_dynos(&env, "myapp")
            .is_empty()),
        "the run dyno outlived its client: {:?}",
        run_dynos(&env, "myapp")
    );

    // run:detached, logs, logs --tail receiving a new line.
    let out = h.ok(&["run:detached", "--", "echo detached-marker"], &src);
    assert!(out.contains("run."), "{out}");
    assert!(wait_until(Duration::from_secs(20), || env
        .logs("myapp")
        .contains("app[run.")
        && env.logs("myapp").contains("detached-marker")));
    let t = Instant::now();
    let out = h.ok(&["logs", "-n", "200"], &src);
    eprintln!("heroku logs: {:.2} s", t.elapsed().as_secs_f64());
    assert!(out.contains("detached-marker"), "{out}");
    let tail_out = env.home.parent().unwrap().join("tail.txt");
    let mut tail = h
        .cmd("heroku", &["logs", "--tail", "-n", "1"], &src)
        .stdout(std::fs::File::create(&tail_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    h.ok(&["run:detached", "--", "echo tail-marker"], &src);
    let got = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&tail_out)
            .unwrap_or_default()
            .contains("tail-marker")
    });
    let still_running = tail.try_wait().unwrap().is_none();
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(
        got,
        "logs --tail: {}",
        std::fs::read_to_string(&tail_out).unwrap_or_default()
    );
    assert!(still_running, "logs --tail ended by itself");

    // A failed build rejects the push and leaves the running release alone: here a
    // `.buildpacks` naming a host directory, which a push over HTTPS may not use.
    std::fs::write(src.join(".buildpacks"), "/root\n").unwrap();
    git(&["add", "-A"]);
    git(&["commit", "-qm", "a host directory as buildpack"]);
    let push = h.sh("git push heroku main 2>&1", &src);
    let out = text(&push);
    assert!(!push.status.success(), "{out}");
    assert!(
        out.contains("Push rejected") && out.contains("a path on the daemon's host"),
        "{out}"
    );
    let after = env.json(&["releases", "-a", "myapp", "--json"]);
    assert_eq!(
        after.as_array().unwrap().len(),
        releases.as_array().unwrap().len() + 1,
        "only the add-on's release was added: {after}"
    );
    assert_eq!(env.get("myapp", "/").0, 200);

    // apps:destroy: the app, its dynos and its remote are gone.
    h.ok(&["apps:destroy", "myapp", "--confirm", "myapp"], &src);
    assert_eq!(env.json(&["apps", "--json"]), Value::Array(vec![]));
    assert!(!git(&["remote"]).contains("heroku"));
    // Measured, not asserted: the machine's load is not the CLI's doing.
    eprintln!("the whole run: {:.1} s", started.elapsed().as_secs_f64());
    env.assert_nothing_left("after apps:destroy");
}
