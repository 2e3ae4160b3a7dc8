//! `dyno dash` end to end: the real binary in a real terminal (tmux), against a real daemon and
//! real dynos. The keyboard scales web from 1 to 2; `web.2` shows on screen and in `dyno ps`.
//! A counting proxy in front of the daemon's socket shows that updates come by subscription:
//! an idle dashboard makes no API request.

mod common;
use common::*;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// tmux comes from scripts/deps.sh; installed here too so `cargo test` alone works.
fn ensure_tmux() {
    let ok = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
    if ok(Command::new("tmux").arg("-V")) {
        return;
    }
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    assert!(
        ok(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "tmux"])
            .env("DEBIAN_FRONTEND", "noninteractive")),
        "tmux is needed for this test: apt-get install tmux"
    );
}

/// A tmux server of its own (`-L`), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(env: &Env, w: u16, h: u16, args: &[&str]) -> Tmux {
        let t = Tmux {
            socket: format!("dyno-dash-test-{}-{:08x}", std::process::id(), rand_u32()),
        };
        // The session's command gets the test's environment explicitly; after the dash exits,
        // its status is printed on the (restored) main screen.
        let cmd = format!(
            "env DYNO_HOME='{}' DYNO_ROUTER_ADDR=127.0.0.1:0 DYNO_STOP_TIMEOUT=3 NO_COLOR=1 {BIN} {}; echo \"dash exited with $?\"; sleep 30",
            env.home.display(),
            args.join(" ")
        );
        let (w, h) = (w.to_string(), h.to_string());
        t.tmux(&["new-session", "-d", "-s", "dash", "-x", &w, "-y", &h, &cmd]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "dash"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Waits until the screen satisfies `f`; returns it.
    fn wait_for(&self, what: &str, secs: u64, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(secs), || {
            last = self.screen();
            f(&last)
        });
        assert!(ok, "the dashboard never showed {what}; the screen:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// Stands in for the daemon's socket and counts connections (the client opens one per API
/// request), passing each through to the real socket, moved aside.
struct CountingProxy {
    /// Each connection's first request line (`GET /apps/hello/dynos HTTP/1.1`).
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl CountingProxy {
    fn install(home: &Path) -> CountingProxy {
        let sock = home.join("daemon.sock");
        let real = home.join("daemon.real.sock");
        std::fs::rename(&sock, &real).unwrap();
        let listener = UnixListener::bind(&sock).unwrap();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { return };
                let Ok(upstream) = UnixStream::connect(&real) else {
                    continue;
                };
                let (mut c1, mut u1) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let r = r.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut first = [0u8; 512];
                    let n = c1.read(&mut first).unwrap_or(0);
                    let head = String::from_utf8_lossy(&first[..n]);
                    r.lock()
                        .unwrap()
                        .push(head.lines().next().unwrap_or("").to_string());
                    let _ = u1.write_all(&first[..n]);
                    let _ = std::io::copy(&mut c1, &mut u1);
                    let _ = u1.shutdown(std::net::Shutdown::Write);
                });
                let (mut c2, mut u2) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CountingProxy { requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests after the first `from`, but the once-a-second stats poll.
    fn others_since(&self, from: usize) -> usize {
        self.requests()[from..]
            .iter()
            .filter(|l| !l.contains("/dyno-stats "))
            .count()
    }
}

/// The dynos pane's row of `name` in state `state` (columns: dyno, state, …).
fn dyno_row(screen: &str, name: &str, state: &str) -> bool {
    screen.lines().any(|l| {
        let cells: Vec<&str> = l
            .split(['│', '┃', '›'])
            .flat_map(str::split_whitespace)
            .collect();
        cells.windows(2).any(|w| w[0] == name && w[1] == state)
    })
}

#[test]
fn dash_scales_web_from_the_keyboard_and_updates_by_subscription() {
    ensure_tmux();
    let env = Env::new("dash");
    let dir = env.app_dir("examples/hello", "hello");
    env.ok(&["up"], Some(&dir));
    env.wait_dynos_up("hello", &["web.1"]);
    let proxy = CountingProxy::install(&env.home);

    let tmux = Tmux::start(&env, 100, 30, &["dash", "-a", "hello"]);
    tmux.wait_for("web.1 up, live", 15, |s| {
        dyno_row(s, "web.1", "up") && s.contains("● live") && s.contains("Deploy")
    });

    // The first fetches settle (the add-ons pane's, hidden while the app has none, may land
    // after the rest is drawn on a busy machine): a whole second of nothing but stats polls.
    let mut seen = proxy.requests().len();
    let settled = wait_until(Duration::from_secs(10), || {
        std::thread::sleep(Duration::from_secs(1));
        let all = proxy.requests();
        let quiet = all[seen..]
            .iter()
            .all(|l| l.starts_with("GET /apps/hello/dyno-stats "));
        seen = all.len();
        quiet
    });
    assert!(settled, "the dashboard's first fetches never settled");
    // Idle: the stream stays open and nothing is polled but the dynos' stats (memory and CPU,
    // which the daemon reads from their cgroups), at most once a second.
    let before = proxy.requests().len();
    std::thread::sleep(Duration::from_secs(3));
    let idle: Vec<String> = proxy.requests()[before..].to_vec();
    assert!(
        idle.len() <= 4
            && idle
                .iter()
                .all(|l| l.starts_with("GET /apps/hello/dyno-stats ")),
        "an idle dashboard made these API requests in 3 s: {idle:#?}"
    );

    // `+` scales the selected process type (web, the first row of the focused Formation pane).
    tmux.keys(&["+"]);
    let screen = tmux.wait_for("web.2 up", 20, |s| {
        dyno_row(s, "web.2", "up") && s.contains("2/2 up")
    });
    assert!(screen.contains("Scaled web to 2."), "{screen}");
    env.wait_dynos_up("hello", &["web.1", "web.2"]);
    let ps = env.ok(&["ps", "-a", "hello"], None);
    assert!(ps.contains("web.2: up"), "{ps}");
    // The scale cost the PATCH and a few refetches triggered by the dyno's state lines.
    let busy = proxy.others_since(before);
    assert!((1..=12).contains(&busy), "scaling made {busy} API requests");

    // Traffic shows in the router pane and the logs, without any fetch.
    for _ in 0..5 {
        assert_eq!(env.get("hello", "/").0, 200);
    }
    let n = proxy.requests().len();
    let screen = tmux.wait_for("router lines", 10, |s| {
        s.contains("heroku[router]: 200 GET /") && s.contains("2xx 5")
    });
    assert!(
        proxy.others_since(n) <= 1,
        "router lines refetched resources"
    );
    println!("{screen}");

    // 80×24 still shows every pane.
    tmux.tmux(&["resize-window", "-t", "dash", "-x", "80", "-y", "24"]);
    let small = tmux.wait_for("the 80×24 layout", 10, |s| {
        // Wait for the whole redraw: a capture can land between two halves of one.
        s.lines().count() <= 24
            && s.contains("4 Logs")
            && s.contains("1 Formation")
            && s.contains("Router")
            && dyno_row(s, "web.2", "up")
    });
    assert!(
        small.contains("1 Formation") && small.contains("Router"),
        "{small}"
    );

    // The add-ons pane appears with the first add-on, live: the scheduler and a job with its
    // next run (refetched on the `Attach` release and the job's `app[api]` line).
    assert!(!small.contains("Add-ons"), "{small}");
    env.ok(&["addons:create", "scheduler", "-a", "hello"], None);
    env.ok(
        &[
            "cron:add",
            "*/10 * * * *",
            "-a",
            "hello",
            "--",
            "echo",
            "digest",
        ],
        None,
    );
    let with = tmux.wait_for("the add-ons pane", 15, |s| {
        s.contains("Add-ons (1)") && s.contains("Scheduler (1 jobs)") && s.contains("*/10 * * * *")
    });
    assert!(
        with.contains("scheduler-") && with.contains("standard"),
        "{with}"
    );
    println!("{with}");

    // q quits with status 0 and gives the terminal back (the shell's echo is on the main screen).
    tmux.keys(&["q"]);
    let after = tmux.wait_for("the shell again", 10, |s| s.contains("dash exited with"));
    assert!(after.contains("dash exited with 0"), "{after}");
    assert!(
        !after.contains("Formation"),
        "the alternate screen was left:\n{after}"
    );
}

#[test]
fn dash_for_an_unknown_app_fails_before_taking_the_screen() {
    let env = Env::new("dash-noterm");
    let err = env.fails(&["dash", "-a", "nope"], None);
    assert!(err.contains("Couldn't find that app"), "{err}");
}
