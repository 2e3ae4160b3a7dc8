//! Releases, config vars and the dyno manager with real dynos: config changes and rollbacks
//! make releases that reach the dynos, the release phase guards them, crashes restart with a
//! growing cool-off, stops escalate to SIGKILL, memory gets R14/R15, one-off dynos run beside
//! the formation, and dynos outlive a kill -9 of the daemon. Timeouts are shortened through the
//! daemon's environment (`DYNO_*`), so each test stays within seconds.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// An `Env` whose daemon runs with shortened timeouts (every command passes them, so whichever
/// starts the daemon, it gets them).
struct M {
    env: Env,
    vars: Vec<(&'static str, String)>,
    dir: PathBuf,
}

impl M {
    fn new(name: &str, vars: &[(&'static str, &str)]) -> M {
        let env = Env::new(name);
        let dir = env.app_dir("tests/fixtures/manager", "mapp");
        let mut all: Vec<(&'static str, String)> = vec![
            ("DYNO_CRASH_COOLOFF", "0,1,2,3".into()),
            ("DYNO_MEMORY_INTERVAL", "0.5".into()),
            ("DYNO_BOOT_TIMEOUT", "10".into()),
        ];
        for (k, v) in vars {
            all.retain(|(key, _)| key != k);
            all.push((k, v.to_string()));
        }
        M {
            env,
            vars: all,
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.env.cmd(args, Some(&self.dir));
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c.output().expect("running dyno")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "dyno {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Fails with a one-line error; returns it.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "dyno {args:?} should have failed");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "one-line error expected: {err}"
        );
        err
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    /// The ledger, oldest first.
    fn releases(&self) -> Vec<Value> {
        let mut v = self
            .json(&["releases", "-a", "mapp", "--json", "-n", "100"])
            .as_array()
            .unwrap()
            .clone();
        v.sort_by_key(|r| r["version"].as_u64());
        v
    }

    /// Waits for release `v` to leave `pending`; returns its status.
    fn release_status(&self, v: u64) -> String {
        let mut status = String::new();
        wait_until(Duration::from_secs(20), || {
            status = self
                .releases()
                .iter()
                .find(|r| r["version"] == v)
                .map(|r| r["status"].as_str().unwrap().to_string())
                .unwrap_or_default();
            status == "succeeded" || status == "failed"
        });
        status
    }

    fn logs(&self) -> String {
        self.env.logs("mapp")
    }

    /// Waits until the log holds `want`.
    fn wait_log(&self, want: &str, secs: u64) -> String {
        let mut logs = String::new();
        let ok = wait_until(Duration::from_secs(secs), || {
            logs = self.logs();
            logs.contains(want)
        });
        assert!(ok, "no {want:?} in the log within {secs} s:\n{logs}");
        logs
    }

    /// The web dyno's answer: the slug marker and its environment.
    fn web(&self) -> Value {
        let (status, body) = self.env.get("mapp", "/");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until web.1 is up on release `v`; returns its answer.
    fn web_on(&self, v: u64) -> Value {
        let ok = wait_until(Duration::from_secs(20), || {
            let d = self.env.dynos("mapp");
            d.len() == 1 && d[0]["state"] == "up" && d[0]["release"]["version"] == v
        });
        assert!(
            ok,
            "web.1 of v{v} never came up: {:#?}",
            self.env.dynos("mapp")
        );
        self.web()
    }

    fn dyno(&self, name: &str) -> Option<Value> {
        self.env
            .dynos("mapp")
            .into_iter()
            .find(|d| d["name"] == name)
    }
}

/// Timestamps of log lines containing `needle`.
fn times(logs: &str, needle: &str) -> Vec<chrono::DateTime<chrono::FixedOffset>> {
    logs.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| chrono::DateTime::parse_from_rfc3339(l.split(' ').next()?).ok())
        .collect()
}

fn set_procfile_line(dir: &Path, line: &str) {
    let p = dir.join("Procfile");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(line);
    text.push('\n');
    std::fs::write(p, text).unwrap();
}

#[test]
fn config_changes_make_releases_that_reach_the_dynos() {
    let m = M::new("config", &[]);
    m.ok(&["up"]);
    assert_eq!(m.web_on(1)["env"]["FOO"], Value::Null);

    // Values may hold anything, newlines and quotes included.
    let multi = "line one\nit's line two";
    let o = m.run(&["config:set", "FOO=bar", &format!("MULTI={multi}")]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("done, v2"), "{err}");
    assert_eq!(m.release_status(2), "succeeded");
    let r = &m.releases()[1];
    assert_eq!(r["description"], "Set FOO, MULTI config vars");
    let env = &m.web_on(2)["env"];
    assert_eq!(env["FOO"], "bar");
    assert_eq!(env["MULTI"], multi);

    // Heroku's three output formats, and config:get.
    let plain = m.ok(&["config"]);
    assert_eq!(
        plain,
        format!("=== mapp Config Vars\n\nFOO:   bar\nMULTI: {multi}\n")
    );
    let shell = m.ok(&["config", "--shell"]);
    assert_eq!(shell, "FOO='bar'\nMULTI='line one\nit'\\''s line two'\n");
    let sh = std::process::Command::new("sh")
        .args(["-c", &format!("{shell}printf %s \"$MULTI\"")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&sh.stdout), multi);
    let json = m.json(&["config", "--json"]);
    assert_eq!(json["MULTI"], multi);
    assert_eq!(m.ok(&["config:get", "FOO"]), "bar\n");
    assert_eq!(m.ok(&["config:get", "NOPE"]), "\n");

    // Unset: a new release, the variable gone from the new dynos.
    m.ok(&["config:unset", "FOO"]);
    assert_eq!(m.release_status(3), "succeeded");
    assert_eq!(m.releases()[2]["description"], "Unset FOO config vars");
    let env = &m.web_on(3)["env"];
    assert_eq!(env["FOO"], Value::Null);
    assert_eq!(env["MULTI"], multi);
    assert!(m
        .logs()
        .contains("app[api]: Set FOO, MULTI config vars by user"));

    // Bad input: a clear one-line error, and nothing changes.
    for (args, want) in [
        (vec!["config:set", "1FOO=x"], "invalid config var name"),
        (vec!["config:set", "FOO-BAR=x"], "invalid config var name"),
        (vec!["config:set", "FOO"], "KEY=value"),
        (vec!["config:unset", "A B"], "invalid config var name"),
        (vec!["config", "-a", "ghost"], "Couldn't find that app"),
    ] {
        let err = m.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(m.releases().len(), 3);
    assert_eq!(m.json(&["config", "--json"]).as_object().unwrap().len(), 1);

    // Two changes at once: two releases, neither change lost.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| m.run(&["config:set", "C1=x"]));
        let b = s.spawn(|| m.run(&["config:set", "C2=y"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    let cfg = m.json(&["config", "--json"]);
    assert_eq!(
        (cfg["C1"].as_str(), cfg["C2"].as_str()),
        (Some("x"), Some("y"))
    );
    assert_eq!(m.release_status(5), "succeeded");
    let env = &m.web_on(5)["env"];
    assert_eq!(
        (env["C1"].as_str(), env["C2"].as_str()),
        (Some("x"), Some("y"))
    );
}

#[test]
fn rollback_restores_slug_and_config() {
    let m = M::new("rollback", &[]);
    m.ok(&["up"]); // v1: slug "one"
    m.ok(&["config:set", "FOO=first"]); // v2
    assert_eq!(m.release_status(2), "succeeded");
    std::fs::write(m.dir.join("version.txt"), "two\n").unwrap();
    m.ok(&["up"]); // v3: slug "two", FOO=first
    m.ok(&["config:set", "FOO=second"]); // v4
    assert_eq!(m.release_status(4), "succeeded");
    let now = m.web_on(4);
    assert_eq!(
        (now["slug"].as_str(), now["env"]["FOO"].as_str()),
        (Some("two"), Some("second"))
    );

    // Default: the succeeded release before the current one (v3).
    let o = m.run(&["releases:rollback"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Rolling back mapp to v3... done, v5"));
    let r = m.web_on(5);
    assert_eq!(
        (r["slug"].as_str(), r["env"]["FOO"].as_str()),
        (Some("two"), Some("first"))
    );

    // An explicit target: slug and config of v2.
    m.ok(&["releases:rollback", "v2"]);
    assert_eq!(m.release_status(6), "succeeded");
    let r = m.web_on(6);
    assert_eq!(
        (r["slug"].as_str(), r["env"]["FOO"].as_str()),
        (Some("one"), Some("first"))
    );
    assert_eq!(m.ok(&["config:get", "FOO"]), "first\n");
    let info = m.ok(&["releases:info", "v6"]);
    assert!(info.contains("=== Release v6"), "{info}");
    assert!(info.contains("Change:  Rollback to v2"), "{info}");
    assert!(info.contains("=== v6 Config vars\n\nFOO: first"), "{info}");
    assert_eq!(
        m.json(&["releases:info", "--json"])["description"],
        "Rollback to v2"
    );

    let err = m.fails(&["releases:rollback", "v99"]);
    assert!(err.contains("Couldn't find release v99"), "{err}");
    assert_eq!(m.releases().len(), 6);
}

#[test]
fn a_failing_release_phase_leaves_the_old_release_serving() {
    let m = M::new("relphase", &[]);
    set_procfile_line(&m.dir, "release: python3 release.py");
    let out = m.ok(&["up"]);
    assert!(out.contains("release phase of v1 on release."), "{out}");
    assert_eq!(m.release_status(1), "succeeded");
    assert!(m.ok(&["releases:output", "v1"]).contains("migrations done"));
    assert_eq!(m.web_on(1)["env"]["RELEASE_FAIL"], Value::Null);
    // The release phase is a one-off dyno, never part of the formation.
    assert!(m
        .json(&["ps", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["type"] != "release"));

    // A config change whose release phase fails: v2 failed, v1 keeps serving.
    m.ok(&["config:set", "RELEASE_FAIL=1"]);
    assert_eq!(m.release_status(2), "failed");
    let rel = m.ok(&["releases"]);
    assert!(
        rel.contains("Set RELEASE_FAIL config vars (failed)"),
        "{rel}"
    );
    assert!(m
        .ok(&["releases:output"])
        .contains("release phase failing on purpose"));
    let logs = m.logs();
    assert!(
        logs.contains("app[api]: Release v2 command failed by user"),
        "{logs}"
    );
    assert!(
        logs.contains("]: release phase failing on purpose"),
        "{logs}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let d = m.env.dynos("mapp");
    assert_eq!(
        (d.len(), &d[0]["release"]["version"]),
        (1, &Value::from(1)),
        "{d:#?}"
    );
    assert_eq!(m.web()["env"]["RELEASE_FAIL"], Value::Null);

    // A failed release cannot be rolled back to; fixing the config goes live again.
    let err = m.fails(&["releases:rollback", "v2"]);
    assert!(err.contains("only a succeeded release"), "{err}");
    m.ok(&["config:unset", "RELEASE_FAIL"]);
    assert_eq!(m.release_status(3), "succeeded");
    m.web_on(3);

    // A deploy whose release phase fails is reported by `up`, and changes nothing running.
    m.ok(&["config:set", "RELEASE_FAIL=yes"]);
    assert_eq!(m.release_status(4), "failed");
    std::fs::write(m.dir.join("version.txt"), "two\n").unwrap();
    let o = m.run(&["up"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("release command of v5 failed"), "{err}");
    assert_eq!(m.web_on(3)["slug"], "one");
}

#[test]
fn crashes_restart_with_a_growing_cool_off_and_exit_0_is_a_crash_too() {
    let m = M::new("crash", &[]);
    m.ok(&["up"]);
    m.ok(&["ps:scale", "web=0", "crasher=1", "quitter=1"]);
    // crasher: up 1 s, exits 1. Restarts at once, then after 1, 2, 3 s (DYNO_CRASH_COOLOFF).
    let mut logs = String::new();
    let five = wait_until(Duration::from_secs(25), || {
        logs = m.logs();
        times(&logs, "heroku[crasher.1]: Starting process").len() >= 5
    });
    assert!(five, "crasher.1 was not restarted 4 times:\n{logs}");
    let t = times(&logs, "heroku[crasher.1]: Starting process");
    let gaps: Vec<f64> = t
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0)
        .collect();
    // Each gap is the 1 s run plus the cool-off: ~1, ~2, ~3, ~4 s.
    for (i, want) in [1.0, 2.0, 3.0, 4.0].iter().enumerate() {
        assert!(
            gaps[i] >= want - 0.3 && gaps[i] < want + 1.5,
            "gap {i} is {} s, want ~{want} s: {gaps:?}\n{logs}",
            gaps[i]
        );
    }
    assert!(logs.contains("heroku[crasher.1]: Process exited with status 1"));
    assert!(logs.contains("heroku[crasher.1]: State changed from up to crashed"));
    assert!(logs.contains("heroku[crasher.1]: State changed from crashed to starting"));
    // quitter exits 0 at once: still a crash, still restarted.
    assert!(
        logs.contains("heroku[quitter.1]: Process exited with status 0"),
        "{logs}"
    );
    assert!(logs.contains("heroku[quitter.1]: State changed from up to crashed"));
    assert!(
        times(&logs, "heroku[quitter.1]: Starting process").len() >= 3,
        "{logs}"
    );

    // Waiting out a cool-off costs the daemon no CPU.
    let daemon = m.env.daemon_pid().unwrap();
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    m.ok(&["ps:scale", "quitter=0"]);
    std::thread::sleep(Duration::from_millis(500));
    let (c0, t0) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let ticks = cpu() - c0;
    assert!(
        ticks <= 10,
        "the daemon used {ticks} ticks in {:?}",
        t0.elapsed()
    );

    // ps:restart resets the count: crasher.1 starts again at once, not after its 3 s cool-off.
    let starts = times(&m.logs(), "heroku[crasher.1]: Starting process").len();
    m.ok(&["ps:restart", "crasher"]);
    assert!(wait_until(Duration::from_millis(1500), || times(
        &m.logs(),
        "heroku[crasher.1]: Starting process"
    )
    .len()
        > starts));
    m.ok(&["ps:scale", "crasher=0"]);
    assert!(wait_until(Duration::from_secs(10), || m
        .env
        .dynos("mapp")
        .is_empty()));
    m.env.assert_nothing_left("scaling the crashers to 0");
}

#[test]
fn stopping_escalates_to_sigkill_and_shell_wrappers_stop_at_once() {
    let m = M::new("stop", &[("DYNO_STOP_TIMEOUT", "2")]);
    m.ok(&["up"]);
    m.ok(&["ps:scale", "web=0", "stubborn=1", "wrapper=1"]);
    let up = wait_until(Duration::from_secs(15), || {
        let d = m.env.dynos("mapp");
        d.len() == 2 && d.iter().all(|d| d["state"] == "up")
    });
    assert!(up, "{:#?}", m.env.dynos("mapp"));
    m.wait_log("app[stubborn.1]: ignoring SIGTERM", 10);

    // A `sh -c` that does not exec its child still stops within a second of SIGTERM.
    let old = m.dyno("wrapper.1").unwrap()["id"].clone();
    let t0 = Instant::now();
    m.ok(&["ps:stop", "wrapper.1"]);
    assert!(wait_until(Duration::from_secs(10), || m
        .dyno("wrapper.1")
        .is_none_or(|d| d["id"] != old)));
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "wrapper took {took:?} to stop"
    );
    let logs = m.logs();
    assert!(logs.contains("heroku[wrapper.1]: Stopping all processes with SIGTERM"));
    // ps:stop of a formation dyno: the manager starts a new one.
    assert!(wait_until(Duration::from_secs(10), || m
        .dyno("wrapper.1")
        .is_some_and(|d| d["state"] == "up" && d["id"] != old)));

    // One that ignores SIGTERM is killed after the (2 s) grace: R12.
    let old = m.dyno("stubborn.1").unwrap()["id"].clone();
    let t0 = Instant::now();
    m.ok(&["ps:stop", "stubborn.1"]);
    // Its replacement starts at once (as on Heroku): wait for the old one itself to be gone.
    assert!(wait_until(Duration::from_secs(10), || m
        .env
        .dynos("mapp")
        .iter()
        .all(|d| d["id"] != old)));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(5),
        "stubborn took {took:?}:\n{}",
        m.logs()
    );
    let logs = m.wait_log("heroku[stubborn.1]: Process exited with status 137", 5);
    assert!(
        logs.contains("heroku[stubborn.1]: Error R12 (Exit timeout) -> At least one process failed to exit within 2 seconds of SIGTERM"),
        "{logs}"
    );
    assert!(logs.contains("heroku[stubborn.1]: Stopping remaining processes with SIGKILL"));

    // ps:kill does not wait for the grace.
    assert!(wait_until(Duration::from_secs(10), || m
        .dyno("stubborn.1")
        .is_some_and(|d| d["state"] == "up")));
    m.wait_log("app[stubborn.1]: ignoring SIGTERM", 10);
    let t0 = Instant::now();
    m.ok(&["ps:scale", "stubborn=0", "wrapper=0"]);
    m.ok(&["ps:kill", "stubborn"]);
    assert!(wait_until(Duration::from_secs(10), || m
        .env
        .dynos("mapp")
        .is_empty()));
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    m.env.assert_nothing_left("stopping everything");

    let err = m.fails(&["ps:stop", "nope.1"]);
    assert!(err.contains("Couldn't find that dyno"), "{err}");
}

#[test]
fn memory_over_the_quota_is_r14_and_over_twice_is_r15() {
    // Quota 64 MB (hard limit 128 MB): r14 holds 100 MB, r15 wants 400 MB.
    let m = M::new("memory", &[("DYNO_MEMORY_QUOTA", "64")]);
    m.ok(&["up"]);
    m.ok(&["ps:scale", "web=0", "r14=1", "r15=1"]);
    let logs = m.wait_log("heroku[r14.1]: Error R14 (Memory quota exceeded)", 20);
    assert!(
        logs.contains("heroku[r14.1]: Process running mem="),
        "{logs}"
    );
    let logs = m.wait_log(
        "heroku[r15.1]: Error R15 (Memory quota vastly exceeded)",
        20,
    );
    assert!(
        logs.contains("heroku[r15.1]: Process exited with status 137"),
        "{logs}"
    );
    // R14 does not stop the dyno; R15 did (and it is restarted as a crash).
    assert!(!logs.contains("heroku[r14.1]: Process exited"), "{logs}");
    assert!(m.dyno("r14.1").is_some_and(|d| d["state"] == "up"));
    m.ok(&["ps:scale", "r14=0", "r15=0"]);
    assert!(wait_until(Duration::from_secs(10), || m
        .env
        .dynos("mapp")
        .is_empty()));
    m.env.assert_nothing_left("scaling the memory hogs to 0");
}

fn container_pids(env: &Env) -> Vec<(String, i64)> {
    let mut out = vec![];
    for e in std::fs::read_dir(env.home.join("run/dynos"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(h) = std::fs::read_to_string(e.path().join("handle.json")) {
            let v: Value = serde_json::from_str(&h).unwrap();
            out.push((
                v["id"].as_str().unwrap().to_string(),
                v["container_pid"].as_i64().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn dynos_outlive_a_killed_daemon_with_their_output() {
    let m = M::new("survive", &[]);
    m.ok(&["up"]);
    m.ok(&["ps:scale", "worker=1"]);
    m.ok(&["config:set", "A=1"]);
    assert_eq!(m.release_status(2), "succeeded");
    let up = wait_until(Duration::from_secs(15), || {
        let d = m.env.dynos("mapp");
        d.len() == 2
            && d.iter()
                .all(|d| d["state"] == "up" && d["release"]["version"] == 2)
    });
    assert!(up, "{:#?}", m.env.dynos("mapp"));
    let before = container_pids(&m.env);
    assert_eq!(before.len(), 2);

    // kill -9 the daemon; the dynos keep printing while nobody reads them.
    let daemon = m.env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::thread::sleep(Duration::from_millis(300));
    let last_seen: u64 = m.logs_of_spool("worker").unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let while_down = m.logs_of_spool("worker").unwrap();
    assert!(while_down > last_seen + 3, "{last_seen} → {while_down}");

    // The next daemon re-adopts the same dynos (same host pids) with their spooled lines.
    m.ok(&["apps"]);
    assert_ne!(m.env.daemon_pid(), Some(daemon));
    let up = wait_until(Duration::from_secs(15), || {
        let d = m.env.dynos("mapp");
        d.len() == 2 && d.iter().all(|d| d["state"] == "up")
    });
    assert!(up, "{:#?}", m.env.dynos("mapp"));
    assert_eq!(container_pids(&m.env), before);
    assert_eq!(m.web()["env"]["A"], "1");
    let logs = m.wait_log(&format!("app[worker.1]: worker tick {while_down}"), 5);
    assert!(logs.contains(&format!("app[worker.1]: worker tick {}\n", while_down - 1)));
    assert_eq!(m.json(&["config", "--json"])["A"], "1");
    assert_eq!(m.releases().len(), 2);

    // A dyno killed while the daemon is down is restarted when it comes back.
    let daemon = m.env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    let worker_pid = before
        .iter()
        .find(|(id, _)| id.contains("-worker-"))
        .unwrap()
        .1;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    std::thread::sleep(Duration::from_millis(500));
    m.ok(&["apps"]);
    let back = wait_until(Duration::from_secs(15), || {
        let d = m.env.dynos("mapp");
        d.len() == 2 && d.iter().all(|d| d["state"] == "up")
    });
    assert!(back, "{:#?}", m.env.dynos("mapp"));
    let after = container_pids(&m.env);
    let web = |v: &Vec<(String, i64)>| v.iter().find(|(id, _)| id.contains("-web-")).cloned();
    assert_eq!(web(&after), web(&before), "web.1 was re-adopted");
    assert!(
        !after.iter().any(|(_, pid)| *pid == worker_pid),
        "worker.1 was restarted"
    );
}

impl M {
    /// The highest `worker tick N` in the worker's output spool (what the shim wrote to disk).
    fn logs_of_spool(&self, ptype: &str) -> Option<u64> {
        let dir = self.env.home.join("run/dynos");
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            if !e
                .file_name()
                .to_string_lossy()
                .contains(&format!("-{ptype}-"))
            {
                continue;
            }
            let text = std::fs::read_to_string(e.path().join("output.jsonl")).ok()?;
            return text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["line"].as_str()?.rsplit(' ').next()?.parse().ok())
                .max();
        }
        None
    }
}

#[test]
fn a_process_type_dropped_by_a_deploy_stops_running() {
    let m = M::new("dropped", &[]);
    m.ok(&["up"]);
    m.ok(&["ps:scale", "worker=1"]);
    assert!(wait_until(Duration::from_secs(15), || m
        .dyno("worker.1")
        .is_some_and(|d| d["state"] == "up")));
    let text = std::fs::read_to_string(m.dir.join("Procfile")).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("worker:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(m.dir.join("Procfile"), without).unwrap();
    m.ok(&["up"]);
    assert!(
        wait_until(Duration::from_secs(15), || {
            let d = m.env.dynos("mapp");
            d.len() == 1 && d[0]["name"] == "web.1" && d[0]["release"]["version"] == 2
        }),
        "{:#?}",
        m.env.dynos("mapp")
    );
    let f = m.json(&["ps", "--json"]);
    assert!(f.as_array().unwrap().iter().all(|d| d["type"] != "worker"));
}

#[test]
fn one_off_dynos_run_beside_the_formation_and_dynos_cycle() {
    let m = M::new("oneoff", &[("DYNO_CYCLE", "4")]);
    m.ok(&["up"]);
    let o = m.run(&[
        "run:detached",
        "-e",
        "GREETING=hello",
        "echo $GREETING from $DYNO; sleep 3",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let name = err
        .split("up, ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("{err}"))
        .to_string();
    assert!(name.starts_with("run."), "{name}");
    // Listed by ps; a reconcile (scaling) leaves it alone.
    let ps = m.ok(&["ps"]);
    assert!(ps.contains("=== run: one-off processes (1)"), "{ps}");
    m.ok(&["ps:scale", "web=1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(m.dyno(&name).is_some(), "{:#?}", m.env.dynos("mapp"));
    let logs = m.wait_log(
        &format!("heroku[{name}]: State changed from up to complete"),
        10,
    );
    assert!(
        logs.contains(&format!("app[{name}]: hello from {name}")),
        "{logs}"
    );
    assert!(logs.contains(&format!("heroku[{name}]: Process exited with status 0")));
    assert!(!logs.contains(&format!("heroku[{name}]: State changed from up to crashed")));
    assert!(m.dyno(&name).is_none());

    // Daily cycling (here every 4 s + jitter): web.1 is replaced, one-offs are not cycled.
    let logs = m.wait_log("heroku[web.1]: Cycling", 10);
    assert!(!logs.contains(&format!("heroku[{name}]: Cycling")));
    assert!(wait_until(Duration::from_secs(10), || m
        .dyno("web.1")
        .is_some_and(|d| d["state"] == "up")));

    let err = m.fails(&["run:detached", "-e", "1X=y", "true"]);
    assert!(err.contains("invalid config var name"), "{err}");
}

#[test]
fn a_web_dyno_that_never_binds_its_port_gets_r10() {
    let m = M::new("r10", &[("DYNO_BOOT_TIMEOUT", "1")]);
    std::fs::write(
        m.dir.join("Procfile"),
        "web: echo not listening; sleep 1000\n",
    )
    .unwrap();
    m.ok(&["apps"]); // starts the daemon with the short boot timeout
    let _ = m.run(&["up"]); // waits for web.1, which never comes up
    let logs = m.wait_log(
        "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 1 seconds of launch",
        15,
    );
    assert!(
        logs.contains("heroku[web.1]: Stopping process with SIGKILL"),
        "{logs}"
    );
    let logs = m.wait_log("heroku[web.1]: State changed from starting to crashed", 10);
    assert!(
        logs.contains("heroku[web.1]: Process exited with status 137"),
        "{logs}"
    );
}

#[test]
fn up_succeeds_when_web_is_up_and_warns_about_a_crashed_worker() {
    let env = Env::new("up-worker");
    let dir = env.app_dir("examples/hello", "crashy");
    std::fs::write(
        dir.join("Procfile"),
        "web: python3 web.py\nworker: echo no queue configured; exit 1\n",
    )
    .unwrap();
    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "worker=1", "-a", "crashy"], None);
    // A new deploy with the worker crashing at boot: the release is live and web is up.
    std::fs::write(dir.join("changed.txt"), "x").unwrap();
    let o = env.run(&["up"], Some(&dir));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("worker.1 crashed at boot") && out.contains("dyno logs -a crashy"),
        "{out}"
    );
    // A web dyno that crashes at boot still fails the deploy.
    std::fs::write(dir.join("Procfile"), "web: exit 3\n").unwrap();
    let o = env.run(&["up"], Some(&dir));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("web.1 crashed"));
}

/// A `PATCH /apps/{app}/config-vars` sent straight to the daemon's socket (a 1 MB value is
/// longer than a command-line argument may be): the status and the body.
fn patch_config(env: &Env, app: &str, body: &Value) -> (u16, String) {
    use std::io::{Read, Write};
    let body = serde_json::to_vec(body).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(env.home.join("daemon.sock")).unwrap();
    write!(
        s,
        "PATCH /apps/{app}/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    (status, out)
}

#[test]
fn config_vars_over_32_kb_are_refused_and_change_nothing() {
    let m = M::new("cfgsize", &[]);
    m.ok(&["up"]);
    let twenty_kb = "x".repeat(20 * 1024);
    m.ok(&["config:set", &format!("HALF={twenty_kb}")]); // v2: 20 kB is fine
    m.web_on(2);
    let before = (m.releases(), m.json(&["config", "--json"]));

    // A 40 kB change: refused by the CLI before it asks.
    let err = m.fails(&[
        "config:set",
        &format!("A={twenty_kb}"),
        &format!("B={twenty_kb}"),
    ]);
    assert!(
        err.contains("32 kB") && err.contains("nothing was changed"),
        "{err}"
    );
    // 20 kB more: the daemon refuses the 40 kB config it would make.
    let err = m.fails(&["config:set", &format!("MORE={twenty_kb}")]);
    assert!(
        err.contains("32 kB") && err.contains("nothing was changed"),
        "{err}"
    );
    // A 1 MB single value, and a 40 kB change, straight at the API.
    for body in [
        serde_json::json!({ "BIG": "y".repeat(1 << 20) }),
        serde_json::json!({ "A": twenty_kb, "B": twenty_kb, "HALF": null }),
    ] {
        let (status, answer) = patch_config(&m.env, "mapp", &body);
        assert_eq!(status, 422, "{answer}");
        assert!(answer.contains("32 kB"), "{answer}");
    }

    // Nothing changed: the same ledger and config, and web.1 still runs v2.
    assert_eq!((m.releases(), m.json(&["config", "--json"])), before);
    assert_eq!(m.web_on(2)["env"]["HALF"], twenty_kb.as_str());
    assert!(!m.logs().contains("Release v3"));
}

#[test]
fn a_missing_database_is_refused_while_dynos_run() {
    let m = M::new("nodb", &[]);
    m.ok(&["up"]);
    m.web_on(1);
    let before = container_pids(&m.env);
    assert_eq!(before.len(), 1);
    m.ok(&["daemon:stop", "--keep-dynos"]);
    let aside = m.env.home.with_file_name("db-aside");
    std::fs::create_dir_all(&aside).unwrap();
    let files = ["dyno.db", "dyno.db-wal", "dyno.db-shm"];
    for f in files {
        let _ = std::fs::rename(m.env.home.join(f), aside.join(f));
    }

    // Missing, then empty: the daemon refuses to start and says what to do.
    for empty in [false, true] {
        if empty {
            std::fs::write(m.env.home.join("dyno.db"), "").unwrap();
        }
        let o = m.run(&["ps"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "ps should fail: {err}");
        let what = if empty { "is empty" } else { "is missing" };
        for want in [
            "refusing to start",
            "dyno.db",
            what,
            "1 running dyno",
            "Restore dyno.db",
        ] {
            assert!(err.contains(want), "{want:?} not in: {err}");
        }
        assert_eq!(m.env.daemon_pid(), None);
        // The dyno was left alone.
        assert_eq!(container_pids(&m.env), before);
        assert!(Path::new(&format!("/proc/{}", before[0].1)).exists());
    }

    // Doing what the error says brings everything back: the same dyno, adopted.
    let _ = std::fs::remove_file(m.env.home.join("dyno.db"));
    for f in files {
        let _ = std::fs::rename(aside.join(f), m.env.home.join(f));
    }
    m.web_on(1);
    assert_eq!(container_pids(&m.env), before);
}

/// Garbage collection: after 12 deploys of an app whose 20 MB incompressible file changes every
/// time, with DYNO_KEEP_RELEASES=3, exactly the last three releases' slugs remain; rolling back
/// to a kept one works, to a pruned one is refused with a clear error and changes nothing.
#[test]
fn gc_keeps_the_last_releases_slugs_and_rollback_says_when_one_is_gone() {
    let m = M::new("gc", &[("DYNO_KEEP_RELEASES", "3")]);
    m.ok(&["apps:create", "mapp", "--no-remote"]);
    let big = m.dir.join("big.bin");
    for i in 0..12 {
        let mut bytes = vec![0u8; 20 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (i + 1);
        for chunk in bytes.chunks_mut(8) {
            // xorshift: incompressible, different each deploy.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(&big, &bytes).unwrap();
        m.ok(&["up", "-a", "mapp"]);
    }
    let releases = m.releases();
    let with_slug: Vec<&Value> = releases.iter().filter(|r| !r["slug"].is_null()).collect();
    assert_eq!(with_slug.len(), 12, "{releases:#?}");
    // What a deploy left for the next gc (the last old dynos may still have been stopping).
    let dry = m.json(&["gc", "--dry-run", "--json"]);
    assert_eq!(dry["dry_run"], true);
    m.ok(&["gc"]);
    // The last three releases' slugs, as the ledger records them.
    let db = rusqlite::Connection::open(m.env.home.join("dyno.db")).unwrap();
    let mut st = db
        .prepare(
            "SELECT s.checksum FROM releases r JOIN slugs s ON r.slug_id = s.id
             ORDER BY r.version DESC LIMIT 3",
        )
        .unwrap();
    let kept: std::collections::BTreeSet<String> = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|c| c.unwrap().trim_start_matches("SHA256:").to_string())
        .collect();
    assert_eq!(kept.len(), 3);
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(m.env.home.join("slugs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| n.trim_end_matches(".tgz").to_string())
        .collect();
    assert_eq!(on_disk, kept, "exactly the last 3 releases' slugs remain");
    let info = m.json(&["apps:info", "-a", "mapp", "--json"]);
    let disk = info["app"]["disk_usage"].as_u64().unwrap();
    assert!((3 * (20 << 20)..8 * (20 << 20)).contains(&disk), "{disk}");

    // A pruned release: refused, nothing recorded.
    let pruned = &with_slug[0];
    let err = m.fails(&[
        "releases:rollback",
        &format!("v{}", pruned["version"]),
        "-a",
        "mapp",
    ]);
    assert!(
        err.contains("removed by garbage collection") && err.contains("DYNO_KEEP_RELEASES"),
        "{err}"
    );
    assert_eq!(m.releases().len(), releases.len());
    // A kept one rolls back and serves.
    let target = &releases[releases.len() - 2];
    m.ok(&[
        "releases:rollback",
        &format!("v{}", target["version"]),
        "-a",
        "mapp",
    ]);
    let v = releases.last().unwrap()["version"].as_u64().unwrap() + 1;
    assert_eq!(m.release_status(v), "succeeded");
    m.env.wait_dynos_up("mapp", &["web.1"]);
}
