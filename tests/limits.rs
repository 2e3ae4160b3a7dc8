//! Bounded dynos, with real containers: the syscall filter, the disk limit, the bounded log
//! spool under a `yes` flood, and R14/R15 for attached one-off dynos (the one launch path).

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deploys examples/hello as `app` (the daemon started with `vars`) and scales it to `web`.
fn deployed(env: &Env, app: &str, vars: &[(&str, &str)], web: u32) {
    let dir = env.app_dir("examples/hello", app);
    let mut c = env.cmd(&["apps:create", app, "--no-remote"], None);
    for (k, v) in vars {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    env.ok(&["up", "-a", app], Some(&dir));
    env.ok(&["ps:scale", "-a", app, &format!("web={web}")], None);
    if web == 0 {
        assert!(wait_until(Duration::from_secs(15), || env
            .dynos(app)
            .is_empty()));
    }
}

/// `dyno run --no-tty -a APP -- CMD`: (exit code, stdout + stderr).
fn run(env: &Env, app: &str, cmd: &str) -> (i32, String) {
    let o = env.run(&["run", "--no-tty", "-a", app, "--", cmd], None);
    let mut out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), out)
}

const SYSCALLS: &str = r#"
import ctypes, errno, os, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return errno.errorcode.get(ctypes.get_errno(), "?") if r < 0 else f"ok {r}"
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
print("clone_newuser", call(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))
print("unshare_newuser", call(272, CLONE_NEWUSER))
print("clone3", call(435, 0, 0))
print("keyctl", call(250, 0, 0, 0, 0, 0))
print("bpf", call(321, 0, 0, 0))
t = threading.Thread(target=lambda: print("thread ran"))
t.start(); t.join()
pid = os.fork()
if pid == 0:
    os._exit(0)
print("fork", os.waitpid(pid, 0)[1])
"#;

#[test]
fn the_syscall_filter_refuses_namespaces_and_clone3_and_keeps_runtimes_working() {
    let env = Env::new("seccomp");
    deployed(&env, "filtered", &[], 0);
    let (code, out) = run(&env, "filtered", "grep Seccomp: /proc/self/status");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");

    let (code, out) = run(&env, "filtered", "unshare -U true; echo unshare=$?");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unshare=1"), "{out}");
    assert!(!out.contains("unshare=0"), "{out}");

    let (code, out) = run(
        &env,
        "filtered",
        &format!("python3 - <<'EOF'\n{SYSCALLS}\nEOF"),
    );
    assert_eq!(code, 0, "{out}");
    for want in [
        "clone_newuser EPERM",
        "unshare_newuser EPERM",
        "clone3 ENOSYS",
        "keyctl EPERM",
        "bpf EPERM",
        "thread ran",
        "fork 0",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    // Runtimes with threads of their own.
    let (code, out) = run(
        &env,
        "filtered",
        "node -e 'require(\"fs\").readFile(\"/app/Procfile\", (e, b) => console.log(\"node read\", b.length))'",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("node read"), "{out}");
    drop(env);
}

/// Bytes of blocks held by the files under `dir` (what the dynos cost the host's disk).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let Ok(m) = e.path().symlink_metadata() else {
            continue;
        };
        if m.is_dir() {
            // Not into mounts: the overlay view of a dyno's disk counts once, as its image.
            if m.dev() == dir.symlink_metadata().map(|d| d.dev()).unwrap_or(0) {
                total += disk_usage(&e.path());
            }
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

#[test]
fn writes_past_the_disk_limit_fail_with_enospc_and_the_host_grows_by_at_most_the_limit() {
    let env = Env::new("disk");
    let limit_mb = 64;
    deployed(&env, "disky", &[("DYNO_DISK_LIMIT", "64")], 0);
    let before = disk_usage(&env.home);
    let mut child = env
        .cmd(
            &[
                "run",
                "--no-tty",
                "-a",
                "disky",
                "--",
                "dd if=/dev/zero of=/app/big bs=1M count=200 2>&1; echo dd=$?; echo written; sleep 30",
            ],
            None,
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        out.push_str(&l);
        out.push('\n');
        if l == "written" {
            break;
        }
    }
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("dd=1"), "{out}");
    let during = disk_usage(&env.home);
    let grown = during.saturating_sub(before);
    assert!(
        grown <= limit_mb << 20,
        "the home grew by {grown} bytes with a {limit_mb} MB limit"
    );
    assert!(grown >= 32 << 20, "the dd wrote nowhere? grew {grown}");
    let _ = child.kill();
    let _ = child.wait();
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos("disky")
        .is_empty()));
    env.assert_nothing_left("a one-off with a full disk");
    // The daemon's spares (formatted, mounted) go with it.
    assert!(!env.all_mounts().is_empty(), "no spare disks mounted");
    env.ok(&["daemon:stop"], None);
    let spares: Vec<_> = std::fs::read_dir(env.home.join("run/disks"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(spares.is_empty(), "spare disks left: {spares:?}");
    assert!(env.all_mounts().is_empty(), "{:?}", env.all_mounts());
    assert!(wait_until(Duration::from_secs(5), || {
        dyno::runtime::disk::loop_devices_under(&env.home).is_empty()
    }));
}

/// The blocks of every dyno spool of `home` (max over them).
fn largest_spool(home: &Path) -> u64 {
    std::fs::read_dir(home.join("run/dynos"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::metadata(e.path().join("output.jsonl")).ok())
        .map(|m| m.blocks() * 512)
        .max()
        .unwrap_or(0)
}

#[test]
fn a_yes_flood_is_bounded_dropped_reported_and_stops_in_time() {
    let env = Env::new("flood");
    deployed(&env, "steady", &[], 1);
    env.wait_dynos_up("steady", &["web.1"]);
    deployed(&env, "flood", &[], 0);

    // Everything the flooding app's stream says, as it says it (only the lines that matter kept).
    let mut tail = env
        .cmd(&["logs", "--tail", "-a", "flood"], None)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(Mutex::new(0u64));
    let last_y = Arc::new(Mutex::new(String::new()));
    {
        let (seen, count, last_y) = (seen.clone(), count.clone(), last_y.clone());
        let stdout = tail.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                *count.lock().unwrap() += 1;
                if !l.ends_with(": y") {
                    seen.lock().unwrap().push(l);
                } else {
                    *last_y.lock().unwrap() = l;
                }
            }
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    env.ok(
        &["run:detached", "-a", "flood", "--", "timeout 8 yes"],
        None,
    );
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    let mut spool_max = 0;
    while t0.elapsed() < Duration::from_secs(7) {
        let t = Instant::now();
        let (status, body) = env.get("steady", "/");
        assert_eq!(status, 200, "{body}");
        worst = worst.max(t.elapsed());
        spool_max = spool_max.max(largest_spool(&env.home));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        worst < Duration::from_secs(1),
        "another app's request took {worst:?} during the flood"
    );
    let cap = dyno::runtime::spool::SPOOL_CAP + dyno::runtime::spool::PUNCH_AT;
    assert!(spool_max <= cap + (1 << 20), "spool held {spool_max} bytes");
    assert!(spool_max > 0, "no spool seen");

    // The exit is logged (and ps shows it gone) within a second of the flood's end.
    let ok = wait_until(Duration::from_secs(15), || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Process exited with status 124"))
    });
    let lines = seen.lock().unwrap().clone();
    assert!(ok, "no exit logged: {lines:#?}");
    let ts = |needle: &str| {
        let l = lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:#?}"));
        chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next().unwrap()).unwrap()
    };
    // The flood's last lines (held back by the full spool, then written at its end) are
    // stamped when the shim read them: the exit follows within a second.
    let last = last_y.lock().unwrap().clone();
    let last = chrono::DateTime::parse_from_rfc3339(last.split_whitespace().next().unwrap_or(""))
        .unwrap_or_else(|_| panic!("no line of the flood reached the tail: {last:?}"));
    let exited = ts("Process exited with status 124");
    eprintln!(
        "flood: last line read {last}, exit logged {exited}; {:#?}",
        &lines[lines.len().saturating_sub(4)..]
    );
    assert!(
        exited - last < chrono::Duration::milliseconds(1000),
        "the exit was logged {} ms after the flood's last line",
        (exited - last).num_milliseconds()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": Error L10 (output buffer overflow): ")
                && l.contains(" messages dropped since ")),
        "no L10 in {lines:#?}"
    );
    assert!(env.dynos("flood").is_empty(), "{:?}", env.dynos("flood"));
    eprintln!(
        "flood: {} lines reached the tail, spool at most {spool_max} bytes, worst request {worst:?}",
        count.lock().unwrap()
    );

    // A flood that never ends: daemon:stop still returns within the stop timeout (3 s here).
    env.ok(&["run:detached", "-a", "flood", "--", "yes"], None);
    std::thread::sleep(Duration::from_secs(3));
    let t = Instant::now();
    env.ok(&["daemon:stop"], None);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(8), "daemon:stop took {took:?}");
    let _ = tail.kill();
    let _ = tail.wait();
    env.assert_nothing_left("daemon:stop during a flood");
}

#[test]
fn an_attached_one_off_gets_r14_and_r15() {
    let env = Env::new("attached-memory");
    let vars = [("DYNO_MEMORY_QUOTA", "64"), ("DYNO_MEMORY_INTERVAL", "0.5")];
    let dir = env.app_dir("tests/fixtures/manager", "mem");
    let mut c = env.cmd(&["apps:create", "mem", "--no-remote"], None);
    c.envs(vars);
    assert!(c.status().unwrap().success());
    env.ok(&["up", "-a", "mem"], Some(&dir));
    env.ok(&["ps:scale", "-a", "mem", "web=0"], None);
    let (code, out) = run(
        &env,
        "mem",
        "timeout 4 python3 mem.py 100; python3 mem.py 400",
    );
    assert_eq!(code, 137, "{out}");
    let logs = env.logs("mem");
    let r14 = logs
        .lines()
        .find(|l| l.contains("Error R14 (Memory quota exceeded)"))
        .unwrap_or_else(|| panic!("no R14:\n{logs}"));
    assert!(r14.contains("heroku[run."), "{r14}");
    assert!(
        logs.lines()
            .any(|l| l.contains("heroku[run.")
                && l.contains("Error R15 (Memory quota vastly exceeded)")),
        "no R15:\n{logs}"
    );
    env.assert_nothing_left("an attached memory hog");
}
