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
        std::process::exit(init_main(cmd));
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid never fails.
    unsafe { libc::geteuid() == 0 }
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
        let rt = Runtime::new(&paths)
            .unwrap()
            .with_exe(std::env::current_exe().unwrap());
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
        for m in host::mounts_under(&h.state_dir) {
            panic!("mount left: {}", m.display());
        }
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
