//! The add-on servers themselves: Debian's PostgreSQL (one cluster per `DYNO_HOME`,
//! [`postgres`]) and Redis (one `redis-server` per add-on, [`redis`]), run as the unprivileged
//! user [`USER`]. The daemon supervises them (`daemon::addons`); this module only knows how to
//! find the binaries, start a server, recognise a running one, and reach it.
//!
//! How the server user reaches its data: `DYNO_HOME` may be 0700 and under a 0700 home
//! directory, so the user could not walk the path to its data. Each server is started in a mount
//! namespace of its own (`unshare(CLONE_NEWNS)` between fork and exec) where
//! `DYNO_HOME/addons` is bind-mounted at `/run/dyno-addons/<instance>` (an empty 0755 directory
//! on the host); the server and its files use that path. The host's directories keep their
//! modes, and nothing else gains a way in.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod postgres;
pub mod redis;

/// The system user every add-on server runs as (PostgreSQL refuses to run as root).
pub const USER: &str = "dyno-addons";

/// The user's uid and gid, creating the system user when it is missing.
pub fn ensure_user() -> Result<(u32, u32)> {
    for attempt in 0..5 {
        if let Some(u) = nix::unistd::User::from_name(USER)? {
            return Ok((u.uid.as_raw(), u.gid.as_raw()));
        }
        // Several daemons (tests) may race: one creates it, the others find it next round.
        let out = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "dyno add-on servers",
                USER,
            ])
            .output()
            .context("running useradd (package passwd)")?;
        if !out.status.success() && attempt == 4 {
            bail!(
                "creating the system user {USER}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100 * (attempt + 1)));
    }
    bail!("the system user {USER} could not be created")
}

/// The newest PostgreSQL's binary `name` where Debian puts it (`/usr/lib/postgresql/<v>/bin`).
pub fn pg_bin(name: &str) -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, p)) => Ok(p),
        None => bail!(
            "PostgreSQL's {name} is not installed (no /usr/lib/postgresql/<version>/bin/{name}): install the Debian package postgresql (apt-get install postgresql)"
        ),
    }
}

/// Redis' binary `name` (`redis-server` from the Debian package redis-server, `redis-cli` from
/// redis-tools).
pub fn redis_bin(name: &str) -> Result<PathBuf> {
    let p = Path::new("/usr/bin").join(name);
    if p.is_file() {
        return Ok(p);
    }
    let package = if name == "redis-server" {
        "redis-server"
    } else {
        "redis-tools"
    };
    bail!(
        "{name} is not installed: install the Debian package {package} (apt-get install {package})"
    )
}

/// A random string of lowercase letters and digits (passwords, role names).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A port nobody listens on at `addr` now.
pub fn free_port(addr: std::net::Ipv4Addr) -> Result<u16> {
    let l = std::net::TcpListener::bind((addr, 0))
        .with_context(|| format!("finding a free port on {addr}"))?;
    Ok(l.local_addr()?.port())
}

/// The last `n` lines of a server's log (shown when it fails to start).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How a server process is started: as [`USER`], in its own session and mount namespace with
/// `addons` (the host's `DYNO_HOME/addons`) bind-mounted at `mount` (see the module's doc).
pub struct Launch {
    pub uid: u32,
    pub gid: u32,
    pub addons: PathBuf,
    pub mount: PathBuf,
    /// Marks the process (and its children) as this home's: `DYNO_HOME=<home>`, `DYNO_ADDON=<key>`.
    pub home: PathBuf,
}

impl Launch {
    /// Creates the host side: `addons` (0711, root) and the empty mount point.
    pub fn prepare(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.addons)?;
        std::fs::set_permissions(&self.addons, std::fs::Permissions::from_mode(0o711))?;
        std::fs::create_dir_all(&self.mount)
            .with_context(|| format!("creating {}", self.mount.display()))?;
        std::fs::set_permissions(&self.mount, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    /// `host` (under `addons`) as the server sees it (under `mount`).
    pub fn inside(&self, host: &Path) -> PathBuf {
        match host.strip_prefix(&self.addons) {
            Ok(rel) => self.mount.join(rel),
            Err(_) => host.to_path_buf(),
        }
    }

    /// A directory of the server's own under `addons`, owned by [`USER`], 0700.
    pub fn own_dir(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::os::unix::fs::chown(dir, Some(self.uid), Some(self.gid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// A command whose process runs as described above; its output goes to `log` (appended).
    pub fn command(&self, program: &Path, key: &str, log: &Path) -> Result<Command> {
        use std::os::unix::fs::OpenOptionsExt;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("DYNO_HOME", &self.home)
            .env("DYNO_ADDON", key)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let src = CString::new(self.addons.as_os_str().as_bytes())?;
        let dst = CString::new(self.mount.as_os_str().as_bytes())?;
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: between fork and exec only async-signal-safe system calls are made, on
        // strings prepared before the fork.
        unsafe {
            c.pre_exec(move || {
                let check = |r: libc::c_int| {
                    if r < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                };
                check(libc::setsid())?;
                check(libc::unshare(libc::CLONE_NEWNS))?;
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                check(libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
                Ok(())
            });
        }
        Ok(c)
    }
}

/// Whether `pid` is the add-on server whose command line names `path` (its data directory or
/// configuration file as the server sees it, unique to this home): how a restarted daemon
/// recognises a server it did not start. Not the environment: Redis and PostgreSQL overwrite it
/// with their process titles.
pub fn is_server(pid: i32, path: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = path.as_os_str().as_bytes();
    cmdline.windows(needle.len()).any(|w| w == needle)
}

/// A pidfd for `pid` (closed on drop), if it still exists.
pub fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open(2) returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    // SAFETY: a fresh fd we own.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Waits until the server `pid` just started is `ready` (polled every `every`), or kills and
/// reaps it when it died or `within` passed, with the end of its log in the error.
pub fn wait_ready(
    pid: i32,
    what: &str,
    log: &std::path::Path,
    within: std::time::Duration,
    every: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<i32> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if ready() {
            return Ok(pid);
        }
        if !alive(pid) || std::time::Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            reap(pid);
            anyhow::bail!(
                "{what} did not start; the end of {}:\n{}",
                log.display(),
                log_tail(log, 15)
            );
        }
        std::thread::sleep(every);
    }
}

/// Reaps `pid` if it is a child of this process that has exited (no-op otherwise).
pub fn reap(pid: i32) {
    // SAFETY: waitpid on one pid with WNOHANG.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
}

/// Whether `pid` is still running (a zombie child counts as gone, and is reaped).
pub fn alive(pid: i32) -> bool {
    reap(pid);
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command's closing parenthesis.
    !matches!(
        stat.rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next()),
        Some('Z') | Some('X') | None
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_its_debian_package() {
        let e = pg_bin("no-such-program").unwrap_err().to_string();
        assert!(e.contains("Debian package postgresql"), "{e}");
        let e = redis_bin("redis-nothing").unwrap_err().to_string();
        assert!(e.contains("Debian package redis-tools"), "{e}");
    }

    #[test]
    fn servers_are_recognised_by_their_command_line() {
        let me = std::process::id() as i32;
        let exe = std::fs::read(format!("/proc/{me}/cmdline")).unwrap();
        let first = String::from_utf8_lossy(exe.split(|b| *b == 0).next().unwrap()).into_owned();
        assert!(is_server(me, Path::new(&first)));
        assert!(!is_server(
            me,
            Path::new("/run/dyno-addons/none/postgres/data")
        ));
        assert!(alive(me));
        assert_eq!(random_token(20).len(), 20);
    }
}
