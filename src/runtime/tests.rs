//! Real-container tests (run as root): `cargo test runtime -- --test-threads=2`.
//!
//! The test binary itself serves as the dyno binary: an `.init_array` hook runs before libtest's
//! main and turns `<test-binary> shim <dir>` / `<test-binary> init -- <cmd>` into the shim and the
//! init, so the tests never run a stale `target/debug/dyno`.

use super::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

#[used]
#[link_section = ".init_array"]
static DISPATCH: extern "C" fn() = dispatch;

extern "C" fn dispatch() {
    let Ok(raw) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    if args.len() >= 3 && args[1] == b"shim" {
        let dir = PathBuf::from(OsStr::from_bytes(args[2]));
        std::process::exit(shim_main(dir));
    }
    if args.len() >= 4 && args[1] == b"init" && args[2] == b"--" {
        let cmd = String::from_utf8_lossy(args[3]).into_owned();
        std::process::exit(init_main(cmd, true));
    }
    if args.len() >= 5 && args[1] == b"init" && args[2] == b"--no-profile" && args[3] == b"--" {
        let cmd = String::from_utf8_lossy(args[4]).into_owned();
        std::process::exit(init_main(cmd, false));
    }
}

/// The dyno binary for shims and inits: this test binary (see [`dispatch`]), or `DYNO_TEST_EXE`
/// (e.g. `target/debug/dyno`, to check the real CLI entry points).
fn test_exe() -> PathBuf {
    match std::env::var_os("DYNO_TEST_EXE") {
        Some(p) => std::fs::canonicalize(p).unwrap(),
        None => std::env::current_exe().unwrap(),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid never fails.
    nix::unistd::geteuid().is_root()
}

/// A temp DYNO_HOME with a runtime and a fake slug; kills and cleans everything on drop.
struct TestEnv {
    tmp: tempfile::TempDir,
    rt: Runtime,
    slug: PathBuf,
    started: Vec<DynoHandle>,
    n: u32,
}

impl TestEnv {
    fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("dyno-rt-test")
            .tempdir_in("/tmp")
            .unwrap();
        let paths = Paths::new(&tmp.path().join("home")).unwrap();
        let rt = Runtime::new(&paths).unwrap().with_exe(test_exe());
        let slug = paths.slugs().join("fake");
        let app = slug.join("app");
        std::fs::create_dir_all(app.join(".profile.d")).unwrap();
        std::fs::write(
            app.join(".profile.d/50-test.sh"),
            "export FROM_PROFILE_D=yes\nexport PATH=/app/bin:$PATH\n",
        )
        .unwrap();
        std::fs::write(app.join(".profile"), "export FROM_PROFILE=yes\n").unwrap();
        std::fs::create_dir_all(app.join("bin")).unwrap();
        let script = app.join("bin/hello");
        std::fs::write(&script, "#!/bin/bash\necho \"hello $1\"\necho oops >&2\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_r(&app);
        TestEnv {
            tmp,
            rt,
            slug,
            started: vec![],
            n: 0,
        }
    }

    fn spec(&mut self, command: &str) -> DynoSpec {
        self.n += 1;
        let id = format!("d{}-test-web-{}", self.rt.paths.instance, self.n);
        DynoSpec {
            id,
            app: "test".into(),
            name: format!("web.{}", self.n),
            command: command.into(),
            env: vec![
                ("DYNO".into(), format!("web.{}", self.n)),
                ("PORT".into(), "5123".into()),
                ("HOME".into(), "/app".into()),
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ],
            slug_dir: self.slug.clone(),
            memory_limit: 256 << 20,
            pids_limit: 256,
            cpu_shares: 512,
            stop_timeout_secs: 2,
            version: "test".into(),
            network: None,
            disk_limit: None,
        }
    }

    async fn start(&mut self, spec: DynoSpec) -> DynoHandle {
        let h = self.rt.start(spec).await.expect("start");
        self.started.push(h.clone());
        h
    }

    /// Runs `command` to completion; returns its exit and its output lines.
    async fn run(&mut self, command: &str) -> (DynoExit, Vec<OutputLine>) {
        let spec = self.spec(command);
        self.run_spec(spec).await
    }

    async fn run_spec(&mut self, spec: DynoSpec) -> (DynoExit, Vec<OutputLine>) {
        let h = self.start(spec).await;
        let exit = tokio::time::timeout(Duration::from_secs(20), self.rt.wait(&h))
            .await
            .expect("dyno did not end")
            .expect("wait");
        let out = output(&h);
        if exit.status == SHIM_LOST_STATUS {
            let log = std::fs::read_to_string(h.state_dir.join("shim.log")).unwrap_or_default();
            eprintln!("shim.log of {}:\n{log}", h.id);
        }
        self.assert_dyno_clean(&h);
        (exit, out)
    }

    /// Everything of one ended dyno is gone but output.jsonl/exit.json.
    fn assert_dyno_clean(&self, h: &DynoHandle) {
        let mounts = host::mounts_under(&h.state_dir);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        for d in ["rootfs", "upper", "work", "bundle"] {
            assert!(!h.state_dir.join(d).exists(), "{d} left");
        }
        assert!(!self.rt.paths.containers().join(&h.id).exists());
        let rel = format!("{}/{}", self.rt.paths.cgroup_parent(), h.id);
        assert!(host::cgroup_dirs(&rel).is_empty(), "cgroup left: {rel}");
    }

    /// Asserts the whole instance is clean (after the dynos ended): no mounts under the home, no
    /// cgroup below `/dyno/<instance>`; then removes the instance cgroup dirs.
    fn finish(self) {
        let home = self.rt.paths.home.clone();
        assert!(
            host::mounts_under(&home).is_empty(),
            "mounts left under {home:?}"
        );
        for dir in host::cgroup_dirs(&self.rt.paths.cgroup_parent()) {
            let children: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect();
            assert!(children.is_empty(), "cgroups left: {children:?}");
        }
        drop(self);
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for h in &self.started {
            let _ = self.rt.kill(h);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for h in &self.started {
            while host::is_shim_of(h.shim_pid, &h.state_dir) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.rt.adopt_or_clean();
        let parent = self.rt.paths.cgroup_parent();
        for d in host::cgroup_dirs(&parent) {
            let _ = std::fs::remove_dir(d);
        }
        for m in host::mounts_under(self.tmp.path()) {
            host::unmount_all(&m);
        }
        let left = host::cgroup_dirs(&parent);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("instance cgroups left: {left:?}");
        }
    }
}

fn chown_r(p: &Path) {
    std::os::unix::fs::lchown(p, Some(DYNO_UID), Some(DYNO_GID)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_r(&e.path());
        }
    }
}

fn output(h: &DynoHandle) -> Vec<OutputLine> {
    std::fs::read_to_string(Runtime::output_path(h))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lines(out: &[OutputLine], stream: &str) -> Vec<String> {
    out.iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

#[tokio::test]
async fn runs_command_with_env_profile_and_streams() {
    require_root!();
    let mut env = TestEnv::new();
    let (exit, out) = env
        .run(
            "hello world; echo \"DYNO=$DYNO PORT=$PORT HOME=$HOME PD=$FROM_PROFILE_D P=$FROM_PROFILE\"; \
             echo \"uid=$(id -u) gid=$(id -g) user=$(id -un) pwd=$PWD host=$(hostname)\"; \
             printf 'no newline at end'",
        )
        .await;
    assert_eq!(exit.status, 0, "{out:?}");
    assert!(!exit.oom_killed);
    let o = lines(&out, "out");
    assert_eq!(o[0], "hello world", "{out:?}");
    assert_eq!(o[1], "DYNO=web.1 PORT=5123 HOME=/app PD=yes P=yes");
    assert_eq!(o[2], "uid=47000 gid=47000 user=dyno pwd=/app host=web.1");
    assert_eq!(o[3], "no newline at end");
    assert_eq!(lines(&out, "err"), vec!["oops"]);
    assert!(chrono::DateTime::parse_from_rfc3339(&out[0].ts).is_ok());
    env.finish();
}

#[tokio::test]
async fn isolation_and_exit_status() {
    require_root!();
    let mut env = TestEnv::new();
    let marker = format!("/root/dyno-test-marker-{}", std::process::id());
    std::fs::write(&marker, "secret").unwrap();
    let (exit, out) = env
        .run(
            "ls /proc | grep -E '^[0-9]+$' | wc -l; ps -e -o comm= | sort | tr '\\n' ' '; echo; \
             touch /usr/x 2>/dev/null && echo usr-writable || echo usr-ro; \
             cat /etc/passwd | grep -c '^dyno:'; ls -a /root 2>&1 | grep -c marker; \
             echo data > /app/x && cat /app/x; echo tmp > /tmp/t && cat /tmp/t; exit 7",
        )
        .await;
    let _ = std::fs::remove_file(&marker);
    let o = lines(&out, "out");
    assert_eq!(exit.status, 7, "{out:?}");
    // init, bash, ls/grep/wc pipeline… only this dyno's processes, at most a handful.
    let nprocs: usize = o[0].trim().parse().unwrap();
    assert!(nprocs < 10, "{out:?}");
    assert!(o[1].contains("init") && o[1].contains("ps"), "{out:?}");
    assert_eq!(o[2], "usr-ro");
    assert_eq!(o[3], "1");
    assert_eq!(o[4], "0", "host /root visible: {out:?}");
    assert_eq!(o[5], "data");
    assert_eq!(o[6], "tmp");
    // A second dyno of the same slug does not see the first one's writes.
    let (exit, out) = env
        .run("test -e /app/x && echo seen || echo unseen; test -e /tmp/t && echo seen || echo unseen")
        .await;
    assert_eq!(exit.status, 0);
    assert_eq!(lines(&out, "out"), vec!["unseen", "unseen"]);
    assert!(!env.slug.join("app/x").exists());
    env.finish();
}

#[tokio::test]
async fn stop_reaches_children_of_a_non_exec_shell() {
    require_root!();
    let mut env = TestEnv::new();
    let mut spec = env.spec("bash -c 'sleep 1000; echo after'; echo done");
    spec.stop_timeout_secs = 10;
    let h = env.start(spec).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    env.rt.stop(&h).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(15), env.rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    // bash got SIGTERM itself: 128+15.
    assert_eq!(exit.status, 143, "{:?}", output(&h));
    assert!(!exit.oom_killed);
    env.assert_dyno_clean(&h);
    env.finish();
}

#[tokio::test]
async fn stop_kills_after_timeout() {
    require_root!();
    let mut env = TestEnv::new();
    let mut spec = env.spec("trap '' TERM; echo ready; sleep 1000 & wait; sleep 1000");
    spec.stop_timeout_secs = 1;
    let h = env.start(spec).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    env.rt.stop(&h).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(15), env.rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "stop took {took:?}"
    );
    assert_eq!(exit.status, 137);
    env.assert_dyno_clean(&h);
    env.finish();
}

#[tokio::test]
async fn kill_is_immediate() {
    require_root!();
    let mut env = TestEnv::new();
    let spec = env.spec("sleep 1000");
    let h = env.start(spec).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    env.rt.kill(&h).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(5), env.rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.status, 137);
    env.assert_dyno_clean(&h);
    env.finish();
}

#[tokio::test]
async fn memory_limit_oom_kills() {
    require_root!();
    let mut env = TestEnv::new();
    let mut spec = env.spec(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; \
         head -c 200M /dev/zero | tail; echo survived",
    );
    spec.memory_limit = 64 << 20;
    let rel = format!("{}/{}", env.rt.paths.cgroup_parent(), spec.id);
    let h = env.start(spec).await;
    // Read the limit from the host side while it runs.
    let limit = host::cgroup_roots()
        .into_iter()
        .find(|r| r.has_controller("memory"))
        .map(|r| r.path.join(rel.trim_start_matches('/')))
        .and_then(|d| std::fs::read_to_string(d.join("memory.limit_in_bytes")).ok());
    let exit = tokio::time::timeout(Duration::from_secs(20), env.rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    let limit = limit.expect("memory cgroup of the running dyno");
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    assert!(exit.oom_killed, "{exit:?} {:?}", output(&h));
    env.assert_dyno_clean(&h);
    env.finish();
}

#[tokio::test]
async fn pids_limit_stops_fork_bomb() {
    require_root!();
    let mut env = TestEnv::new();
    let mut spec = env.spec("bomb() { bomb | bomb & }; bomb; sleep 2; echo still-here");
    spec.pids_limit = 64;
    let rel = format!("{}/{}", env.rt.paths.cgroup_parent(), spec.id);
    let h = env.start(spec).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let n = host::cgroup_pids(&rel).len();
    assert!(n <= 64, "{n} processes");
    let exit = tokio::time::timeout(Duration::from_secs(15), env.rt.wait(&h))
        .await
        .unwrap()
        .unwrap();
    // The command ends (or fails to fork) and the shim tears everything down.
    let _ = exit;
    env.assert_dyno_clean(&h);
    env.finish();
}

#[tokio::test]
async fn adopt_live_and_clean_leftovers() {
    require_root!();
    let mut env = TestEnv::new();
    let spec = env.spec("sleep 1000");
    let live = env.start(spec).await;

    // A leftover: state dir with a mounted overlay and a cgroup, whose shim is dead.
    let paths = env.rt.paths.clone();
    let id = format!("d{}-test-web-99", paths.instance);
    let dir = paths.dynos().join(&id);
    for d in ["rootfs", "upper", "work", "lower"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    nix::mount::mount(
        Some("overlay"),
        &dir.join("rootfs"),
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(opts.as_str()),
    )
    .unwrap();
    let mut fake = live.clone();
    fake.id = id.clone();
    fake.state_dir = dir.clone();
    fake.shim_pid = 999_999;
    std::fs::write(dir.join("handle.json"), serde_json::to_vec(&fake).unwrap()).unwrap();
    let mem = host::cgroup_roots()
        .into_iter()
        .find(|r| r.has_controller("memory"))
        .unwrap();
    let cg = mem
        .path
        .join(paths.cgroup_parent().trim_start_matches('/'))
        .join(&id);
    std::fs::create_dir_all(&cg).unwrap();
    std::fs::create_dir_all(paths.containers().join(&id)).unwrap();

    // "Restarted daemon": a new Runtime on the same home.
    let rt2 = Runtime::new(&paths).unwrap().with_exe(test_exe());
    let adopted = rt2.adopt_or_clean().unwrap();
    assert_eq!(adopted.len(), 1);
    assert_eq!(adopted[0].id, live.id);
    assert_eq!(adopted[0].shim_pid, live.shim_pid);
    assert!(!dir.exists());
    assert!(!cg.exists());
    assert!(!paths.containers().join(&id).exists());
    assert!(host::mounts_under(&dir).is_empty());
    // The adopted dyno still works through the new runtime.
    rt2.stop(&adopted[0]).unwrap();
    let exit = tokio::time::timeout(Duration::from_secs(10), rt2.wait(&adopted[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.status, 143);
    env.assert_dyno_clean(&live);
    env.finish();
}

#[tokio::test]
async fn start_error_is_reported_and_cleaned() {
    require_root!();
    let mut env = TestEnv::new();
    let mut spec = env.spec("true");
    spec.slug_dir = env.tmp.path().join("no-such-slug");
    let id = spec.id.clone();
    let err = env.rt.start(spec).await.unwrap_err();
    assert!(format!("{err:#}").contains("no app/"), "{err:#}");
    assert!(!env.rt.paths.dynos().join(&id).exists());
    env.finish();
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Start latency: from `Runtime::start` to the command running inside (median of 20).
#[tokio::test]
async fn start_latency() {
    require_root!();
    let mut env = TestEnv::new();
    let mut dyno = vec![];
    for _ in 0..20 {
        let spec = env.spec("date +%s%N");
        let t0 = now_ns();
        let (exit, out) = env.run_spec(spec).await;
        assert_eq!(exit.status, 0);
        let t1: u128 = lines(&out, "out")[0].parse().unwrap();
        dyno.push((t1 - t0) as f64 / 1e6);
    }
    // With DYNO_SHIM_LOG=dyno::timing=debug the shim logs where the time goes.
    for h in env.started.iter().rev().take(3) {
        let log = std::fs::read_to_string(h.state_dir.join("shim.log")).unwrap_or_default();
        for l in log.lines().filter(|l| l.contains("container started")) {
            eprintln!("{l}");
        }
    }
    let mut unshare = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        let st = std::process::Command::new("unshare")
            .args(["--fork", "--pid", "--mount", "--uts", "--ipc", "/bin/true"])
            .status()
            .unwrap();
        assert!(st.success());
        unshare.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    eprintln!(
        "start latency: dyno start->command median {:.1} ms (min {:.1}); unshare /bin/true median {:.1} ms",
        median(&mut dyno),
        dyno[0],
        median(&mut unshare)
    );
    env.finish();
}

#[tokio::test]
async fn long_lines_are_split_and_output_never_blocks() {
    require_root!();
    let mut env = TestEnv::new();
    // 25,000 bytes without a newline, then ~50 MB of spool nobody reads while the dyno runs:
    // past the spool's cap lines are dropped and counted, the dyno never waits.
    let (exit, out) = env
        .run("head -c 25000 /dev/zero | tr '\\0' a; echo; seq 1 700000 >&2; echo end")
        .await;
    assert_eq!(exit.status, 0);
    let o = lines(&out, "out");
    assert_eq!(
        o.iter().take(3).map(|l| l.len()).collect::<Vec<_>>(),
        vec![10_000, 10_000, 5_000]
    );
    let e = lines(&out, "err");
    assert_eq!(e[0], "1");
    let dropped: u64 = out
        .iter()
        .filter(|l| l.stream == super::spool::DROPPED_STREAM)
        .map(|l| l.dropped)
        .sum();
    assert!(dropped > 0);
    // Every line is either spooled or counted.
    assert_eq!(e.len() as u64 + (o.len() as u64 - 3) + dropped, 700_001);
    env.finish();
}

/// Stats from cgroup v2 files (captured in the kernel's format: these machines are hybrid, with no
/// v2 memory controller to read live) and from v1's.
#[test]
fn dyno_stats_read_cgroup_v1_and_v2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup-v2");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let s = super::stats_v2(
        &read("memory.stat"),
        Some(&read("memory.swap.current")),
        Some(&read("cpu.stat")),
    )
    .unwrap();
    // anon (not file: page cache is reclaimed before any OOM) plus swap; usage_usec in ns.
    assert_eq!(s.memory_bytes, 26_214_400 + 1_048_576);
    assert_eq!(s.cpu_ns, Some(125_000_000));
    // No swap accounting, no cpu controller: memory alone.
    let s = super::stats_v2(&read("memory.stat"), None, None).unwrap();
    assert_eq!((s.memory_bytes, s.cpu_ns), (26_214_400, None));
    assert!(super::stats_v2("file 1\n", None, None).is_none());

    let v1 = "cache 4096\nrss 1\ntotal_cache 8192\ntotal_rss 1048576\ntotal_swap 4096\n";
    let s = super::stats_v1(v1, Some("125000000\n")).unwrap();
    assert_eq!((s.memory_bytes, s.cpu_ns), (1_052_672, Some(125_000_000)));
    assert!(super::stats_v1("cache 1\n", None).is_none());
}
