//! Test harness: each test gets its own `DYNO_HOME` (and so its own daemon, router port,
//! container ids, cgroups and mounts) and runs the real `dyno` binary as a user would. Dropping
//! the harness stops the daemon and its dynos, then removes anything that still remains (so a
//! failing test leaves nothing behind either).

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dyno");

pub fn require_root() {
    assert!(
        nix_euid_is_root(),
        "dyno's integration tests start real containers: run them as root (CI does)"
    );
}

fn nix_euid_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub struct Env {
    pub home: PathBuf,
    pub instance: String,
    tmp: PathBuf,
}

impl Env {
    pub fn new(name: &str) -> Env {
        require_root();
        let tmp = std::env::temp_dir().join(format!(
            "dyno-test-{name}-{}-{:08x}",
            std::process::id(),
            rand_u32()
        ));
        let home = tmp.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let instance = dyno::paths::Paths::new(&home).unwrap().instance;
        Env {
            home,
            instance,
            tmp,
        }
    }

    /// A fresh copy of a fixture or example app, outside any git repository.
    pub fn app_dir(&self, src: &str, name: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
        let to = self.tmp.join("src").join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    }

    pub fn cmd(&self, args: &[&str], cwd: Option<&Path>) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("DYNO_HOME", &self.home)
            .env("DYNO_ROUTER_ADDR", "127.0.0.1:0")
            .env("DYNO_STOP_TIMEOUT", "3")
            .env("NO_COLOR", "1")
            .env_remove("DYNO_APP")
            .stdin(Stdio::null());
        c.current_dir(cwd.unwrap_or(&self.tmp));
        c
    }

    pub fn run(&self, args: &[&str], cwd: Option<&Path>) -> Output {
        self.cmd(args, cwd).output().expect("running dyno")
    }

    /// Runs `dyno ARGS`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str], cwd: Option<&Path>) -> String {
        let o = self.run(args, cwd);
        assert!(
            o.status.success(),
            "dyno {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `dyno ARGS`, asserting failure with a one-line error; returns stderr.
    pub fn fails(&self, args: &[&str], cwd: Option<&Path>) -> String {
        let o = self.run(args, cwd);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success(),
            "dyno {args:?} should have failed:\nstdout: {}\nstderr: {err}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "one-line error expected, got: {err}"
        );
        err
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, None)).expect("JSON output")
    }

    pub fn router_port(&self) -> u16 {
        let s = self.json(&["daemon:status", "--json"]);
        let addr = s["router_addr"].as_str().unwrap();
        addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Where the host reaches a dyno's `$PORT` (a dyno of `ps --json`): its address in its own
    /// network namespace.
    pub fn dyno_addr(&self, dyno: &Value) -> SocketAddr {
        let id = dyno["id"].as_str().expect("dyno id");
        let port = dyno["port"].as_u64().expect("dyno port") as u16;
        let spec: Value = serde_json::from_slice(
            &std::fs::read(self.home.join("run/dynos").join(id).join("spec.json"))
                .expect("the dyno's spec.json"),
        )
        .unwrap();
        let ip = spec["network"]["address"].as_str().unwrap_or("127.0.0.1");
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    /// This home's network links (bridge and dyno veths).
    pub fn links(&self) -> Vec<String> {
        let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| {
                *n == format!("dyno{}", self.instance)
                    || n.starts_with(&format!("dv{}", self.instance))
            })
            .collect()
    }

    /// This home's dyno veths (host side).
    pub fn veths(&self) -> Vec<String> {
        let bridge = format!("dyno{}", self.instance);
        self.links().into_iter().filter(|l| *l != bridge).collect()
    }

    /// Whether this home's firewall table exists.
    pub fn has_nft_table(&self) -> bool {
        Command::new("nft")
            .args(["list", "table", "inet", &format!("dyno_{}", self.instance)])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn daemon_pid(&self) -> Option<i32> {
        let o = self.run(&["daemon:status", "--json"], None);
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        v["pid"].as_i64().map(|p| p as i32)
    }

    pub fn dynos(&self, app: &str) -> Vec<Value> {
        self.json(&["ps", "-a", app, "--json"])
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until `app` has exactly these dynos up (by name).
    pub fn wait_dynos_up(&self, app: &str, names: &[&str]) -> Vec<Value> {
        let mut last = vec![];
        let ok = wait_until(Duration::from_secs(30), || {
            last = self.dynos(app);
            let mut up: Vec<&str> = last
                .iter()
                .filter(|d| d["state"] == "up")
                .map(|d| d["name"].as_str().unwrap())
                .collect();
            up.sort();
            let mut want = names.to_vec();
            want.sort();
            up == want && last.len() == names.len()
        });
        assert!(ok, "dynos of {app} never became {names:?}: {last:#?}");
        last
    }

    /// GET through the router with `Host: <app>.localhost`.
    pub fn get(&self, app: &str, path: &str) -> (u16, String) {
        http_get(self.router_port(), &format!("{app}.localhost"), path)
    }

    /// The log stream as text.
    pub fn logs(&self, app: &str) -> String {
        self.ok(&["logs", "-a", app, "-n", "1500"], None)
    }

    /// Mount points of this home's dynos still mounted (not the daemon's spare disks).
    pub fn mounts(&self) -> Vec<String> {
        let spares = self.home.join("run/disks").to_string_lossy().into_owned();
        self.all_mounts()
            .into_iter()
            .filter(|l| !l.contains(&spares))
            .collect()
    }

    /// Every mount point of this home, the daemon's spare disks included.
    pub fn all_mounts(&self) -> Vec<String> {
        let home = self.home.to_string_lossy().into_owned();
        std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&home))
            .map(str::to_string)
            .collect()
    }

    /// Overlay roots of this home's dynos still mounted (one per running dyno; each also has
    /// its disk mounted below its state dir).
    pub fn dyno_roots(&self) -> Vec<String> {
        self.mounts()
            .into_iter()
            .filter(|m| m.starts_with("overlay "))
            .collect()
    }

    /// Cgroup dirs of this instance's dynos, in every hierarchy.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        let mut out = vec![];
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let dir = h.path().join("dyno").join(&self.instance);
            if let Ok(rd) = std::fs::read_dir(&dir) {
                out.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
            }
        }
        out
    }

    /// Host pids of processes inside this instance's dyno cgroups.
    pub fn dyno_processes(&self) -> Vec<i32> {
        let needle = format!("/dyno/{}/", self.instance);
        let mut out = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
                if cg.contains(&needle) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// Loop devices backed by a file of this home's dynos (not the daemon's spare disks).
    pub fn loop_devices(&self) -> Vec<String> {
        dyno::runtime::disk::loop_devices_under(&self.home.join("run/dynos"))
    }

    /// No process, mount or cgroup of this instance's dynos is left (waits a little for
    /// asynchronous teardown).
    pub fn assert_nothing_left(&self, what: &str) {
        let clean = wait_until(Duration::from_secs(15), || {
            self.mounts().is_empty()
                && self.cgroups().is_empty()
                && self.dyno_processes().is_empty()
                && self.veths().is_empty()
                && self.loop_devices().is_empty()
        });
        assert!(
            clean,
            "after {what}: mounts {:?}, cgroups {:?}, processes {:?}, veths {:?}, loop devices {:?}",
            self.mounts(),
            self.cgroups(),
            self.dyno_processes(),
            self.veths(),
            self.loop_devices()
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.cmd(&["daemon:stop"], None).output();
        // Whatever survived (a failed test, a killed daemon): thaw (a frozen task ignores
        // SIGKILL), kill, unmount, remove.
        for cg in self.cgroups() {
            let _ = std::fs::write(cg.join("freezer.state"), "THAWED");
        }
        for pid in self.dyno_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        kill_matching(&self.home.to_string_lossy());
        // Add-on servers name their data or configuration under this home's mount point.
        let addons = format!("/run/dyno-addons/{}/", self.instance);
        kill_matching(&addons);
        std::thread::sleep(Duration::from_millis(200));
        let mut mounts = self.all_mounts();
        mounts.reverse();
        for m in mounts {
            if let Some(target) = m.split_whitespace().nth(1) {
                let _ = Command::new("umount").arg("-l").arg(target).status();
            }
        }
        for dev in dyno::runtime::disk::loop_devices_under(&self.home) {
            let _ = Command::new("losetup")
                .args(["-d", &format!("/dev/{dev}")])
                .status();
        }
        for cg in self.cgroups() {
            for sub in std::fs::read_dir(&cg).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            let _ = std::fs::remove_dir(&cg);
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join("dyno").join(&self.instance));
        }
        for link in self.links() {
            let _ = Command::new("ip").args(["link", "del", &link]).status();
        }
        if let Ok(subnet) = std::fs::read_to_string(self.home.join("net/subnet")) {
            let _ = Command::new("ip")
                .args([
                    "route",
                    "del",
                    "unreachable",
                    &format!("{}/24", subnet.trim()),
                ])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new("nft")
            .args([
                "delete",
                "table",
                "inet",
                &format!("dyno_{}", self.instance),
            ])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir(&addons);
        let _ = std::fs::remove_dir_all(&self.tmp);
        let _ =
            std::fs::remove_dir_all(std::env::temp_dir().join(format!("dyno-{}", self.instance)));
    }
}

/// Kills processes whose command line mentions `needle` (the daemon and shims of a home).
pub fn kill_matching(needle: &str) {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline);
        if (cmd.contains(BIN) || cmd.contains("dyno"))
            && (cmd.contains(needle) || String::from_utf8_lossy(&environ).contains(needle))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal HTTP/1.0 GET (no client library: what goes over the wire is plain to see).
pub fn http_get(port: u16, host: &str, path: &str) -> (u16, String) {
    http_get_at(SocketAddr::from(([127, 0, 0, 1], port)), host, path)
}

/// [`http_get`] to any address.
pub fn http_get_at(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    // Generous: a first request may wait for an app still importing behind a bound port (gunicorn
    // binds before its workers load the app), which takes long on a loaded 2-core machine.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut buf = vec![];
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// GET straight to a dyno's port (to ask one particular dyno), at [`Env::dyno_addr`].
pub fn dyno_get(addr: SocketAddr, path: &str) -> String {
    let (status, body) = http_get_at(addr, "localhost", path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

/// A pty pair whose master side the test reads in the background.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    pub fn open() -> Pty {
        let p = nix::pty::openpty(None, None).unwrap();
        set_size(&p.master, 80, 24);
        let output = Arc::new(Mutex::new(Vec::new()));
        let out = output.clone();
        let mut reader = std::fs::File::from(p.master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master: p.master,
            slave: p.slave,
            output,
        }
    }

    /// Makes `cmd` run on this terminal as a shell would start it: stdio on the slave, a
    /// session of its own with the pty as its controlling terminal.
    pub fn attach(&self, cmd: &mut Command) {
        cmd.stdin(Stdio::from(self.slave.try_clone().unwrap()))
            .stdout(Stdio::from(self.slave.try_clone().unwrap()))
            .stderr(Stdio::from(self.slave.try_clone().unwrap()));
        // SAFETY: between fork and exec only setsid(2) and ioctl(2), async-signal-safe, no
        // allocation.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
    }

    pub fn send(&self, s: &str) {
        nix::unistd::write(&self.master, s.as_bytes()).unwrap();
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output (from `from` on) contains `want`; returns where it ends.
    pub fn expect(&self, from: usize, want: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let t = self.text();
            if let Some(i) = t.get(from..).and_then(|s| s.find(want)) {
                return from + i + want.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} in the terminal output:\n{}",
                t.get(from..).unwrap_or(&t)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn set_size(fd: &OwnedFd, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    assert_eq!(
        // SAFETY: TIOCSWINSZ on a pty we own, with a pointer to a winsize that outlives the call.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
}

/// Waits for `child` to exit (killing it and failing past `within`); its exit code.
pub fn wait_exit(child: &mut std::process::Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dyno did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
