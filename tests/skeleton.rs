//! The walking skeleton end to end, with real containers: `dyno up`, the router, scaling,
//! isolation, limits, teardown, leftovers of a crashed daemon, and two daemons side by side.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn up_serves_the_app_through_the_router_and_scales() {
    let env = Env::new("up");
    let dir = env.app_dir("examples/hello", "hello");
    let out = env.ok(&["up"], Some(&dir));
    assert!(out.contains("-----> Creating app hello... done"), "{out}");
    assert!(out.contains("Release v1 created"), "{out}");
    let port = env.router_port();
    assert!(
        out.contains(&format!("http://hello.localhost:{port}/")),
        "{out}"
    );

    // The app answers through the router.
    assert_eq!(
        env.get("hello", "/"),
        (200, "Hello from web.1\n".to_string())
    );

    // -a defaults to the directory's app; a second `up` redeploys the same app.
    let out = env.ok(&["up"], Some(&dir));
    assert!(!out.contains("Creating app"), "{out}");
    assert!(out.contains("Release v2 created"), "{out}");
    let ps = env.ok(&["ps"], Some(&dir));
    assert!(ps.contains("web.1: up"), "{ps}");

    // Three dynos, 30 requests, all three answer.
    env.ok(&["ps:scale", "web=3"], Some(&dir));
    env.wait_dynos_up("hello", &["web.1", "web.2", "web.3"]);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..30 {
        let (status, body) = env.get("hello", "/");
        assert_eq!(status, 200);
        *seen.entry(body.trim().to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        vec!["Hello from web.1", "Hello from web.2", "Hello from web.3"],
        "{seen:?}"
    );
    let ps = env.ok(&["ps", "-a", "hello"], None);
    for n in ["web.1: up", "web.2: up", "web.3: up"] {
        assert!(ps.contains(n), "{ps}");
    }

    // Logs: the platform's lines, the app's output and the router's.
    let logs = env.logs("hello");
    for want in [
        "app[api]: Release v1 created by user",
        "heroku[web.1]: Starting process with command `python3 web.py`",
        "heroku[web.1]: State changed from starting to up",
        "app[web.1]: hello listening on port",
        "heroku[router]: at=info method=GET path=\"/\" host=hello.localhost",
    ] {
        assert!(logs.contains(want), "missing {want:?} in logs:\n{logs}");
    }

    // Scaling to 0 leaves nothing of the app running; the router answers H14.
    env.ok(&["ps:scale", "web=0"], Some(&dir));
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos("hello")
        .is_empty()));
    env.assert_nothing_left("ps:scale web=0");
    let (status, _) = env.get("hello", "/");
    assert_eq!(status, 503);
    assert!(env
        .logs("hello")
        .contains("at=error code=H14 desc=\"No web processes running\""));

    // Unknown host: 404.
    assert_eq!(env.get("nope", "/").0, 404);
}

#[test]
fn apps_commands_follow_heroku() {
    let env = Env::new("apps");
    let created = env.json(&["apps:create", "--json", "--no-remote"]);
    let random = created["name"].as_str().unwrap().to_string();
    dyno::names::validate(&random).unwrap();
    env.ok(&["apps:create", "myapp", "--no-remote"], None);
    let apps = env.ok(&["apps"], None);
    assert!(apps.contains("myapp") && apps.contains(&random), "{apps}");

    let info = env.json(&["apps:info", "-a", "myapp", "--json"]);
    let app = &info["app"];
    assert_eq!(app["name"], "myapp");
    let port = env.router_port();
    assert_eq!(app["web_url"], format!("http://myapp.localhost:{port}/"));
    for field in [
        "id",
        "created_at",
        "updated_at",
        "stack",
        "region",
        "owner",
        "build_stack",
        "maintenance",
    ] {
        assert!(
            !app[field].is_null(),
            "apps:info --json lacks {field}: {info}"
        );
    }

    env.ok(&["apps:rename", "renamed", "-a", "myapp"], None);
    assert!(env.run(&["apps:info", "-a", "myapp"], None).status.code() != Some(0));
    assert_eq!(
        env.json(&["apps:info", "-a", "renamed", "--json"])["app"]["name"],
        "renamed"
    );

    // destroy wants confirmation
    let err = env.fails(&["apps:destroy", "renamed"], None);
    assert!(err.contains("--confirm renamed"), "{err}");
    env.ok(&["apps:destroy", "renamed", "--confirm", "renamed"], None);
    assert!(!env.ok(&["apps"], None).contains("renamed"));
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let env = Env::new("bad");
    let good = env.app_dir("examples/hello", "hello");
    env.ok(&["up"], Some(&good));
    let before = env.ok(&["apps"], None);

    for bad in ["../x", "Hello", "ab", &"a".repeat(31), "x_y"] {
        let err = env.fails(&["apps:create", bad], None);
        assert!(err.contains("invalid app name"), "{bad}: {err}");
    }
    let err = env.fails(&["up", "-a", "../x"], Some(&good));
    assert!(err.contains("invalid app name"), "{err}");

    // A directory without a Procfile.
    let empty = env.home.parent().unwrap().join("src/empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = env.fails(&["up"], Some(&empty));
    assert!(err.contains("no Procfile"), "{err}");

    // A Procfile that does not parse.
    let broken = env.home.parent().unwrap().join("src/broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("Procfile"), "web: ok\n<<<<<<< HEAD\nweb: dup\n").unwrap();
    let err = env.fails(&["up"], Some(&broken));
    assert!(err.contains("Procfile line 2"), "{err}");
    // Binary content names the file and the line; a file too large is refused whole.
    std::fs::write(broken.join("Procfile"), b"web: a\nworker: \xff\xfe\n").unwrap();
    let err = env.fails(&["up"], Some(&broken));
    assert!(
        err.contains("Procfile line 2") && err.contains("UTF-8"),
        "{err}"
    );
    let big = "# filler\n".repeat(200_000) + "web: a\n";
    std::fs::write(broken.join("Procfile"), big).unwrap();
    let err = env.fails(&["up"], Some(&broken));
    assert!(err.contains("Procfile: the file is"), "{err}");
    let long = format!("web: echo {}\n", "x".repeat(40_000));
    std::fs::write(broken.join("Procfile"), long).unwrap();
    let err = env.fails(&["up"], Some(&broken));
    assert!(
        err.contains("Procfile line 1") && err.contains("long"),
        "{err}"
    );

    // What Heroku accepts with a warning: a byte-order mark, CR line ends, an uppercase type, a
    // type defined twice (the last wins).
    let kind = env.app_dir("examples/hello", "kind");
    std::fs::write(
        kind.join("Procfile"),
        "\u{feff}Web: python3 web.py\r\nworker: sleep 1\rworker: sleep 2\r\n",
    )
    .unwrap();
    let out = env.ok(&["up"], Some(&kind));
    assert!(out.contains("\"Web\" is taken as \"web\""), "{out}");
    assert!(out.contains("\"worker\" is defined again"), "{out}");
    let ps = env.json(&["ps", "-a", "kind", "--json"]);
    assert!(ps.to_string().contains("python3 web.py"), "{ps}");
    env.ok(&["apps:destroy", "-a", "kind", "--confirm", "kind"], None);

    // A Procfile without web is valid: up says how to scale the other types.
    let worker = env.home.parent().unwrap().join("src/worker-only");
    std::fs::create_dir_all(&worker).unwrap();
    std::fs::write(worker.join("Procfile"), "worker: sleep 1000\n").unwrap();
    let out = env.ok(&["up"], Some(&worker));
    assert!(out.contains("dyno ps:scale worker=1"), "{out}");
    env.ok(
        &["apps:destroy", "worker-only", "--confirm", "worker-only"],
        None,
    );

    // A directory name that is no app name: told to pass --app.
    let odd = env.home.parent().unwrap().join("src/__");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join("Procfile"), "web: true\n").unwrap();
    let err = env.fails(&["up"], Some(&odd));
    assert!(err.contains("--app"), "{err}");

    // ps:scale: unknown type, negative count, garbage.
    let err = env.fails(&["ps:scale", "worker=1"], Some(&good));
    assert!(err.contains("process type"), "{err}");
    let err = env.fails(&["ps:scale", "web=-1"], Some(&good));
    assert!(err.contains("0 or more"), "{err}");
    let err = env.fails(&["ps:scale", "web=lots"], Some(&good));
    assert!(err.contains("invalid scale argument"), "{err}");
    let err = env.fails(&["ps", "-a", "ghost"], None);
    assert!(err.contains("Couldn't find that app"), "{err}");

    // Nothing changed.
    assert_eq!(env.ok(&["apps"], None), before);
    let f = env.json(&["ps", "-a", "hello", "--json"]);
    assert_eq!(f.as_array().unwrap().len(), 1);
    let releases = env.json(&["releases", "-a", "hello", "--json"]);
    assert_eq!(releases.as_array().unwrap().len(), 1);
}

#[test]
fn the_daemon_refuses_to_run_without_root() {
    let env = Env::new("noroot");
    // A home the unprivileged user can write to, so only root-ness is missing.
    let home = env.home.parent().unwrap().join("nobody-home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let o = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "apps",
        ])
        .env("DYNO_HOME", &home)
        .env("DYNO_ROUTER_ADDR", "127.0.0.1:0")
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("needs root") && err.contains("sudo"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn dynos_are_isolated_containers() {
    let env = Env::new("iso");
    let dir = env.app_dir("tests/fixtures/probe", "probe");
    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "web=2"], Some(&dir));
    let dynos = env.wait_dynos_up("probe", &["web.1", "web.2"]);
    let port_of = |name: &str| env.dyno_addr(dynos.iter().find(|d| d["name"] == name).unwrap());
    let (p1, p2) = (port_of("web.1"), port_of("web.2"));

    // Not root, a passwd entry, hostname = dyno name.
    assert_eq!(dyno_get(p1, "/whoami"), "47000:47000");
    assert_eq!(dyno_get(p1, "/hostname"), "web.1");
    let env_vars: serde_json::Value = serde_json::from_str(&dyno_get(p1, "/env")).unwrap();
    assert_eq!(env_vars["DYNO"], "web.1");
    assert_eq!(env_vars["HOME"], "/app");
    assert_eq!(env_vars["PORT"], p1.port().to_string());
    assert_eq!(env_vars["HEROKU_APP_NAME"], "probe");
    assert_eq!(env_vars["HEROKU_RELEASE_VERSION"], "v1");

    // Its own pid namespace: a handful of processes, the init as PID 1.
    let pids: Vec<i32> = dyno_get(p1, "/pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.contains(&1) && pids.len() < 10, "{pids:?}");
    let daemon = env.daemon_pid().unwrap();
    assert!(!pids.contains(&daemon) || daemon < 10);

    // Host secrets are not there.
    let marker = format!("dyno-marker-{:08x}", rand_u32());
    std::fs::write(format!("/root/{marker}"), "secret").unwrap();
    std::fs::write(format!("/etc/{marker}"), "secret").unwrap();
    let root_seen = dyno_get(p1, &format!("/exists?path=/root/{marker}"));
    let etc_seen = dyno_get(p1, &format!("/exists?path=/etc/{marker}"));
    let shadow_seen = dyno_get(p1, "/exists?path=/etc/shadow");
    let _ = std::fs::remove_file(format!("/root/{marker}"));
    let _ = std::fs::remove_file(format!("/etc/{marker}"));
    assert_eq!(
        (root_seen.as_str(), etc_seen.as_str(), shadow_seen.as_str()),
        ("no", "no", "no")
    );

    // /usr is a read-only mount.
    let mountinfo = dyno_get(p1, "/mountinfo");
    let usr = mountinfo
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/usr"))
        .unwrap_or_else(|| panic!("no /usr mount: {mountinfo}"));
    assert!(
        usr.split_whitespace()
            .nth(5)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{usr}"
    );
    assert!(dyno_get(p1, "/write?path=/usr/x").starts_with("error"));

    // /app and /tmp are writable, and private to each dyno.
    assert_eq!(dyno_get(p1, "/write?path=/app/written-by-web1"), "ok");
    assert_eq!(dyno_get(p1, "/write?path=/tmp/written-by-web1"), "ok");
    assert_eq!(dyno_get(p1, "/exists?path=/app/written-by-web1"), "yes");
    assert_eq!(dyno_get(p2, "/exists?path=/app/written-by-web1"), "no");
    assert_eq!(dyno_get(p2, "/exists?path=/tmp/written-by-web1"), "no");

    // A restart (here: the app crashes) starts from a fresh copy of the slug.
    let old_id = dynos.iter().find(|d| d["name"] == "web.1").unwrap()["id"].clone();
    let _ = std::panic::catch_unwind(|| http_get_at(p1, "localhost", "/crash"));
    let restarted = wait_until(Duration::from_secs(20), || {
        env.dynos("probe")
            .iter()
            .any(|d| d["name"] == "web.1" && d["state"] == "up" && d["id"] != old_id)
    });
    assert!(
        restarted,
        "web.1 was not restarted: {:#?}",
        env.dynos("probe")
    );
    let dynos = env.dynos("probe");
    let p1 = env.dyno_addr(dynos.iter().find(|d| d["name"] == "web.1").unwrap());
    assert_eq!(dyno_get(p1, "/exists?path=/app/written-by-web1"), "no");
    let logs = env.logs("probe");
    assert!(
        logs.contains("heroku[web.1]: Process exited with status 3"),
        "{logs}"
    );
    assert!(
        logs.contains("heroku[web.1]: State changed from up to crashed"),
        "{logs}"
    );
}

fn cgroup_file(env: &Env, controller: &str, dyno_id: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!(
        "/sys/fs/cgroup/{controller}/dyno/{}/{dyno_id}/{file}",
        env.instance
    ))
    .ok()
    .map(|s| s.trim().to_string())
}

#[test]
fn limits_stop_fork_bombs_and_memory_hogs() {
    let env = Env::new("limits");
    let dir = env.app_dir("tests/fixtures/probe", "probe");
    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "web=1", "bomb=1"], Some(&dir));
    let dynos = env.wait_dynos_up("probe", &["web.1", "bomb.1"]);
    let bomb_id = dynos.iter().find(|d| d["name"] == "bomb.1").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The fork bomb hits the pids limit and stays there.
    let max = cgroup_file(&env, "pids", &bomb_id, "pids.max").expect("bomb's pids cgroup");
    assert_eq!(max, "256");
    let capped = wait_until(Duration::from_secs(20), || {
        cgroup_file(&env, "pids", &bomb_id, "pids.current").as_deref() == Some("256")
    });
    assert!(
        capped,
        "pids.current: {:?}",
        cgroup_file(&env, "pids", &bomb_id, "pids.current")
    );
    // ... while the web dyno keeps answering.
    for _ in 0..5 {
        assert_eq!(env.get("probe", "/"), (200, "web.1".to_string()));
    }
    env.ok(&["ps:scale", "bomb=0"], Some(&dir));
    assert!(wait_until(Duration::from_secs(20), || env
        .dynos("probe")
        .len()
        == 1));
    assert!(
        cgroup_file(&env, "pids", &bomb_id, "pids.max").is_none(),
        "bomb's cgroup is left"
    );

    // A memory hog is OOM-killed at the hard limit (2 × the 512 MB quota).
    env.ok(&["ps:scale", "hog=1"], Some(&dir));
    let mut hog_id = String::new();
    assert!(wait_until(Duration::from_secs(10), || {
        if let Some(d) = env.dynos("probe").iter().find(|d| d["name"] == "hog.1") {
            hog_id = d["id"].as_str().unwrap().to_string();
        }
        !hog_id.is_empty()
    }));
    let limit =
        cgroup_file(&env, "memory", &hog_id, "memory.limit_in_bytes").expect("hog's memory cgroup");
    assert_eq!(limit, (1024u64 * 1024 * 1024).to_string());
    // Watch the cgroup's counters closely in a thread of their own: the shim removes the cgroup
    // right after the kill, so a slow poll could miss them.
    let cg = format!("/sys/fs/cgroup/memory/dyno/{}/{hog_id}", env.instance);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut failcnt, mut oom_kills) = (0u64, 0u64);
            let read = |f: &str| std::fs::read_to_string(format!("{cg}/{f}")).ok();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(f) = read("memory.failcnt") {
                    failcnt = failcnt.max(f.trim().parse().unwrap_or(0));
                }
                if let Some(o) = read("memory.oom_control") {
                    let n = o
                        .lines()
                        .find_map(|l| l.strip_prefix("oom_kill "))
                        .and_then(|n| n.trim().parse().ok());
                    oom_kills = oom_kills.max(n.unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (failcnt, oom_kills)
        })
    };
    wait_until(Duration::from_secs(30), || {
        env.logs("probe")
            .contains("heroku[hog.1]: Error R15 (Memory quota vastly exceeded)")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (failcnt, oom_kills) = watcher.join().unwrap();
    let logs = env.logs("probe");
    assert!(
        logs.contains("heroku[hog.1]: Error R15 (Memory quota vastly exceeded)"),
        "{logs}"
    );
    assert!(
        logs.contains("heroku[hog.1]: Process exited with status 137"),
        "{logs}"
    );
    assert!(!logs.contains("hog survived"), "{logs}");
    assert!(
        failcnt > 0 || oom_kills > 0,
        "the cgroup never hit its limit (failcnt {failcnt}, oom_kill {oom_kills})"
    );
    env.ok(&["ps:scale", "hog=0", "web=0"], Some(&dir));
    assert!(wait_until(Duration::from_secs(20), || env
        .dynos("probe")
        .is_empty()));
    env.assert_nothing_left("scaling everything to 0");
}

#[test]
fn teardown_leaves_nothing_behind() {
    let env = Env::new("teardown");
    let dir = env.app_dir("examples/hello", "hello");
    env.ok(&["up"], Some(&dir));
    env.ok(&["ps:scale", "web=2"], Some(&dir));
    env.wait_dynos_up("hello", &["web.1", "web.2"]);
    assert_eq!(env.dyno_roots().len(), 2, "{:?}", env.mounts());
    assert_eq!(
        env.mounts().len(),
        4,
        "an overlay and a disk each: {:?}",
        env.mounts()
    );
    env.ok(&["apps:destroy", "hello", "--confirm", "hello"], None);
    env.assert_nothing_left("apps:destroy");

    env.ok(&["up"], Some(&dir));
    env.wait_dynos_up("hello", &["web.1"]);
    let daemon = env.daemon_pid().unwrap();
    env.ok(&["daemon:stop"], None);
    env.assert_nothing_left("daemon:stop");
    assert!(!std::path::Path::new(&format!("/proc/{daemon}")).exists() || is_zombie(daemon));
    assert!(!env.home.join("daemon.sock").exists());

    // The next command starts a daemon that brings the formation back.
    env.ok(&["apps"], None);
    env.wait_dynos_up("hello", &["web.1"]);
    assert_eq!(env.get("hello", "/").0, 200);
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().unwrap_or("").trim().starts_with('Z'))
        .unwrap_or(true)
}

fn shim_pids(env: &Env) -> Vec<i32> {
    let dir = env.home.join("run/dynos");
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(h) = std::fs::read_to_string(e.path().join("handle.json")) {
            let v: serde_json::Value = serde_json::from_str(&h).unwrap();
            out.push(v["shim_pid"].as_i64().unwrap() as i32);
        }
    }
    out
}

#[test]
fn dynos_survive_a_daemon_restart_and_leftovers_of_a_crash_are_cleaned() {
    let env = Env::new("adopt");
    let dir = env.app_dir("examples/hello", "hello");
    env.ok(&["up"], Some(&dir));
    let before = env.wait_dynos_up("hello", &["web.1"]);

    // kill -9 of the daemon: the dyno keeps running and the next daemon re-adopts it.
    let daemon = env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_until(Duration::from_secs(5), || env
        .daemon_pid()
        .is_none()
        || env.daemon_pid() != Some(daemon)));
    let after = env.wait_dynos_up("hello", &["web.1"]);
    assert_eq!(
        before[0]["id"], after[0]["id"],
        "the dyno was replaced, not re-adopted"
    );
    assert_eq!(env.get("hello", "/").0, 200);

    // daemon:stop --keep-dynos (an upgrade) also leaves it running for the next daemon.
    env.ok(&["daemon:stop", "--keep-dynos"], None);
    assert!(!env.dyno_processes().is_empty());
    let again = env.wait_dynos_up("hello", &["web.1"]);
    assert_eq!(before[0]["id"], again[0]["id"]);

    // A crashed daemon *and* shim: the container, its mount and cgroup are leftovers that the
    // next daemon cleans up before bringing the formation back with a new dyno.
    let daemon = env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    for pid in shim_pids(&env) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let old_cgroups = env.cgroups();
    assert!(
        !old_cgroups.is_empty(),
        "the planted leftovers should include the cgroup"
    );
    let fresh = env.wait_dynos_up("hello", &["web.1"]);
    assert_ne!(before[0]["id"], fresh[0]["id"]);
    for cg in old_cgroups {
        assert!(!cg.exists(), "{} is left", cg.display());
    }
    assert_eq!(env.dyno_roots().len(), 1, "{:?}", env.mounts());
    assert_eq!(env.mounts().len(), 2, "{:?}", env.mounts());
    assert_eq!(env.get("hello", "/").0, 200);
}

#[test]
fn two_daemons_run_side_by_side() {
    let a = Env::new("side-a");
    let b = Env::new("side-b");
    assert_ne!(a.instance, b.instance);
    let da = a.app_dir("examples/hello", "hello");
    let db = b.app_dir("examples/hello", "hello");
    a.ok(&["up"], Some(&da));
    b.ok(&["up"], Some(&db));
    a.wait_dynos_up("hello", &["web.1"]);
    b.wait_dynos_up("hello", &["web.1"]);
    assert_ne!(a.router_port(), b.router_port());
    assert_eq!(a.get("hello", "/").0, 200);
    assert_eq!(b.get("hello", "/").0, 200);

    // Stopping (and restarting) one daemon touches nothing of the other.
    a.ok(&["daemon:stop"], None);
    a.assert_nothing_left("daemon:stop of a");
    let ids: std::collections::BTreeSet<_> = b
        .cgroups()
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "b's one dyno keeps its cgroup: {ids:?}");
    assert_eq!(b.get("hello", "/").0, 200);
    a.ok(&["apps"], None);
    a.wait_dynos_up("hello", &["web.1"]);
    assert_eq!(b.dynos("hello")[0]["state"], "up");
    assert_eq!(b.get("hello", "/").0, 200);
}

/// Settings: the environment wins over `DYNO_HOME/config.toml`, `daemon:settings` says where each
/// value came from, and a bad value in either place stops the daemon at start, naming it.
#[test]
fn settings_come_from_the_environment_then_the_file_and_bad_ones_are_refused() {
    let env = Env::new("settings");
    let file = env.home.join("config.toml");
    // A bad value in the environment: the daemon does not start, the error names the variable.
    let mut c = env.cmd(&["apps"], None);
    c.env("DYNO_BOOT_TIMEOUT", "1.5x");
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("DYNO_BOOT_TIMEOUT=\"1.5x\": expected a number of seconds"),
        "{err}"
    );
    // Unknown keys and bad values in the file: refused, naming the file.
    for (text, says) in [
        ("boot_timout = 60\n", "unknown setting `boot_timout`"),
        ("memory_quota = \"lots\"\n", "memory_quota = \"lots\" in "),
        ("router_addr = \n", "is not valid TOML"),
    ] {
        std::fs::write(&file, text).unwrap();
        let o = env.run(&["apps"], None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{text}: {err}");
        assert!(
            err.contains(says) && err.contains(&file.display().to_string()),
            "{text}: {err}"
        );
    }
    // Good ones: fractions allowed, the environment wins, and the daemon says where from.
    std::fs::write(
        &file,
        "boot_timeout = 1.5\nstop_timeout = 9\nidle_after = 600\n",
    )
    .unwrap();
    let v = env.json(&["daemon:settings", "--json"]);
    let get = |k: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == k)
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .clone()
    };
    assert_eq!(get("boot_timeout")["value"], "1.5");
    assert_eq!(get("boot_timeout")["origin"], "file");
    // Env::cmd sets DYNO_STOP_TIMEOUT=3: the environment wins over the file's 9.
    assert_eq!(get("stop_timeout")["value"], "3");
    assert_eq!(get("stop_timeout")["origin"], "env");
    assert_eq!(get("memory_quota")["origin"], "default");
    let table = env.ok(&["daemon:settings"], None);
    assert!(
        table.contains("idle_after") && table.contains(&file.display().to_string()),
        "{table}"
    );
}
