//! `dyno shim <state-dir>`: one small, strictly single-threaded process per dyno (no tokio, no
//! threads: libcontainer forks with raw clone3 and must not run in a multi-threaded process).
//!
//! It mounts the overlay root, writes the OCI bundle, creates and starts the container, reports
//! `started <pid>` / `error <message>` on stdout, spools the dyno's output to `output.jsonl`,
//! stops it on SIGTERM/SIGINT (SIGTERM to the init, SIGKILL after the stop timeout), reaps it, and
//! cleans up everything (container, overlay, cgroups) before writing `exit.json`.
//!
//! On a setup error it cleans up, reports `error …`, writes `exit.json` with status
//! [`SETUP_FAILED_STATUS`] and exits 1.

use super::host;
use super::spool::Spool;
use super::stack::{ETC_DIRS, ETC_FILES, USR_LINKS};
use super::stdio::{self, AttachOptions};
use super::{BuildSpec, DynoExit, DynoHandle, DynoSpec, DYNO_GID, DYNO_UID};
use crate::paths::Paths;
use anyhow::{anyhow, Context, Result};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use serde_json::json;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `exit.json` status written when the dyno never ran (setup failed).
pub const SETUP_FAILED_STATUS: i32 = 1;
/// Longest line spooled as one [`OutputLine`]; longer ones are split.
pub const MAX_LINE: usize = 10_000;

/// Signals the shim handles through its signalfd.
const SHIM_SIGNALS: &[libc::c_int] = &[libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD];

/// Writes tracing output to a private duplicate of the shim's stderr (`shim.log`), so that
/// libcontainer's container-side process, whose fd 2 becomes the dyno's stderr, still logs there.
#[derive(Clone)]
struct LogFd(std::sync::Arc<std::fs::File>);

impl Write for LogFd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Unbuffered, as stderr is.
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn shim_main(state_dir: PathBuf) -> i32 {
    // A close-on-exec copy of stderr (F_DUPFD_CLOEXEC): the container never inherits it.
    let Ok(log) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return 1;
    };
    let log = LogFd(std::sync::Arc::new(std::fs::File::from(log)));
    let _ = tracing_subscriber::fmt()
        .with_writer(move || log.clone())
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DYNO_SHIM_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(
                    "warn,libcgroups::v1::manager=error,libcontainer::process::init=error",
                )
            }),
        )
        .try_init();

    // Block the signals we handle before anything else, so a stop request during setup is
    // only acted on once the container runs (the init unblocks them for the command).
    let sigfd = match signalfd() {
        Ok(fd) => fd,
        Err(e) => return report_error(&state_dir, None, &e),
    };
    let mut shim = match Shim::load(&state_dir) {
        Ok(s) => s,
        Err(e) => return report_error(&state_dir, None, &e),
    };
    let (pid, streams) = match shim.setup() {
        Ok(v) => v,
        Err(e) => {
            shim.teardown();
            return report_error(&state_dir, Some(&shim), &e);
        }
    };
    let handle = DynoHandle {
        id: shim.spec.id.clone(),
        spec: shim.spec.clone(),
        state_dir: state_dir.clone(),
        shim_pid: std::process::id() as i32,
        container_pid: pid,
        started_at: chrono::Utc::now(),
        router_fd: shim.router_listener.as_ref().map(|f| f.as_raw_fd()),
    };
    let written = serde_json::to_vec(&handle)
        .map_err(anyhow::Error::from)
        .and_then(|j| Ok(host::write_atomic(&state_dir.join("handle.json"), &j)?));
    if let Err(e) = written {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        shim.teardown();
        return report_error(&state_dir, Some(&shim), &e);
    }
    report(&format!("started {pid}"));

    let status = shim.run(pid, streams, &sigfd);
    let oom_killed = shim.oom_killed();
    shim.teardown();
    let exit = DynoExit { status, oom_killed };
    if let Err(e) = write_exit(&state_dir, &exit) {
        tracing::error!("cannot write exit.json: {e:#}");
        return 1;
    }
    0
}

/// One line to the daemon on stdout, then stdout is closed (pointed at /dev/null).
fn report(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", msg.replace('\n', " "));
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

fn report_error(state_dir: &Path, shim: Option<&Shim>, e: &anyhow::Error) -> i32 {
    let mut msg = format!("{e:#}");
    // libcontainer reports root causes only through tracing: quote them from our log.
    if let Some(shim) = shim {
        let log = std::fs::read_to_string(state_dir.join("shim.log")).unwrap_or_default();
        let causes: Vec<&str> = log
            .lines()
            .skip(shim.log_lines_at_start)
            .filter(|l| l.contains("ERROR"))
            .collect();
        let n = causes.len();
        for c in &causes[n.saturating_sub(3)..] {
            msg.push_str(" | ");
            msg.push_str(c.trim());
        }
    }
    tracing::error!("dyno setup failed: {msg}");
    report(&format!("error {msg}"));
    let _ = write_exit(
        state_dir,
        &DynoExit {
            status: SETUP_FAILED_STATUS,
            oom_killed: false,
        },
    );
    1
}

fn write_exit(state_dir: &Path, exit: &DynoExit) -> Result<()> {
    host::write_atomic(&state_dir.join("exit.json"), &serde_json::to_vec(exit)?)?;
    Ok(())
}

fn signalfd() -> Result<OwnedFd> {
    // SAFETY: signal mask manipulation and signalfd(2) in a single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SHIM_SIGNALS {
            libc::sigaddset(&mut set, *s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error()).context("sigprocmask");
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("signalfd");
        }
        Ok(std::os::fd::FromRawFd::from_raw_fd(fd))
    }
}

struct Shim {
    state_dir: PathBuf,
    spec: DynoSpec,
    /// Set for a build container (`build.json`).
    build: Option<BuildSpec>,
    paths: Paths,
    rootfs: PathBuf,
    container: Option<Container>,
    log_lines_at_start: usize,
    /// Set for dynos attached to a client (`dyno run`): their stdio goes to the daemon over
    /// `attach_sock` (our stdin when started) instead of into the output spool.
    attach: Option<AttachOptions>,
    attach_sock: Option<OwnedFd>,
    /// The router's listener inside the dyno's network namespace: kept open for the dyno's
    /// life (the daemon takes a duplicate of it, also after a restart).
    router_listener: Option<OwnedFd>,
    /// The dyno address's lease, held until the shim exits (after teardown).
    net_lease: Option<nix::fcntl::Flock<std::fs::File>>,
    /// Its veth and host route may exist (set before wiring starts, cleared by `unwire`).
    wired: bool,
}

impl Shim {
    fn load(state_dir: &Path) -> Result<Shim> {
        let spec: DynoSpec = serde_json::from_slice(
            &std::fs::read(state_dir.join("spec.json")).context("reading spec.json")?,
        )
        .context("parsing spec.json")?;
        // <home>/run/dynos/<id>
        let home = state_dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("state dir {} is not in a DYNO_HOME", state_dir.display()))?;
        let paths = Paths::new(home)?;
        let build = match std::fs::read(state_dir.join("build.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).context("parsing build.json")?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(anyhow::Error::from(e).context("reading build.json")),
        };
        let log_lines_at_start = std::fs::read_to_string(state_dir.join("shim.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        let attach: Option<AttachOptions> = match std::fs::read(state_dir.join("attach.json")) {
            Ok(b) => Some(serde_json::from_slice(&b).context("parsing attach.json")?),
            Err(_) => None,
        };
        let mut attach_sock = None;
        if attach.is_some() {
            // The daemon's socket came as our stdin: keep it close-on-exec and out of fd 0, so
            // nothing of the container inherits it.
            let fd = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("taking the attach socket")?;
            attach_sock = Some(fd);
            let null = std::fs::File::open("/dev/null")?;
            nix::unistd::dup2(null.as_raw_fd(), 0).context("closing stdin")?;
        }
        Ok(Shim {
            state_dir: state_dir.to_path_buf(),
            rootfs: state_dir.join("rootfs"),
            spec,
            build,
            paths,
            container: None,
            log_lines_at_start,
            attach,
            attach_sock,
            router_listener: None,
            net_lease: None,
            wired: false,
        })
    }

    fn cgroup_rel(&self) -> String {
        format!("{}/{}", self.paths.cgroup_parent(), self.spec.id)
    }

    /// Overlay, bundle, container: returns the init's pid and the output streams to spool
    /// (none for an attached dyno: the daemon has its stdio).
    fn setup(&mut self) -> Result<(i32, Vec<Stream>)> {
        let t0 = Instant::now();
        let sd = &self.state_dir;
        // The writable layer: on the dyno's own ext4 when it has a disk limit (see disk.rs).
        let layer = if self.build.is_none() && self.spec.disk_limit.is_some() {
            let disk = sd.join(super::disk::DIR);
            if !super::disk::is_mounted(&disk) {
                anyhow::bail!("the dyno's disk {} is not mounted", disk.display());
            }
            disk.join(super::disk::MNT)
        } else {
            sd.clone()
        };
        let (upper, work, bundle) = (layer.join("upper"), layer.join("work"), sd.join("bundle"));
        for d in [&self.rootfs, &upper, &work, &bundle] {
            std::fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        // The overlay's upper dir is the dyno's `/` (a merged root takes its upper's mode): it
        // must be 0755 for the dyno user, whatever our umask (077, the daemon's) gave it, on the
        // dyno's disk or not.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod {}", upper.display()))?;
        }
        std::fs::create_dir_all(self.paths.containers())?;
        // A dyno's root: its slug over the stack. A build container's: the stack alone (its
        // `/app` is the build dir, bound read-write).
        let mut lower = vec![];
        if self.build.is_none() {
            if !self.spec.slug_dir.join("app").is_dir() {
                anyhow::bail!("slug dir {} has no app/", self.spec.slug_dir.display());
            }
            lower.push(self.spec.slug_dir.clone());
        }
        lower.push(self.paths.stack());
        for p in lower.iter().chain([&upper, &work]) {
            let s = p.to_string_lossy();
            if s.contains([',', ':', '\\']) {
                anyhow::bail!("path {s} cannot be used in overlay options");
            }
        }
        let lower: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &self.rootfs,
            Some("overlay"),
            nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        )
        .with_context(|| format!("mounting overlay ({opts})"))?;

        // A build's bind mounts at host paths (build/host.rs): their missing parents are made
        // 0755 here, as libcontainer would make them 0700 under the shim's umask and the dyno
        // user could not reach the file.
        for m in self.build.iter().flat_map(|b| &b.mounts) {
            open_mount_parents(&self.rootfs, &m.destination)?;
        }

        let t_mount = t0.elapsed();
        // The shim's own binary (by inode: valid even if an upgrade replaced the file), bound into
        // the dyno as its init.
        let exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        let mut config = oci_config(
            &self.spec,
            self.build.as_ref(),
            &self.paths,
            &self.rootfs,
            &exe,
        );
        let tty = self.attach.as_ref().is_some_and(|a| a.tty);
        config["process"]["terminal"] = json!(tty);
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;

        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (in_r, in_w) = if self.attach.is_some() && !tty {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?
        } else {
            let null: OwnedFd = std::fs::File::open("/dev/null")?.into();
            (null, std::fs::File::open("/dev/null")?.into())
        };
        // A pty: libcontainer's init creates it inside the container and sends the master to a
        // console socket (it needs a path; bound through /proc/self/fd so the path stays short).
        let console = if tty {
            let dir = std::fs::File::open(&self.state_dir)?;
            let path = PathBuf::from(format!("/proc/self/fd/{}/console.sock", dir.as_raw_fd()));
            let listener = std::os::unix::net::UnixListener::bind(&path)
                .with_context(|| format!("binding {}", path.display()))?;
            drop(dir);
            Some(listener)
        } else {
            None
        };
        let mut builder = ContainerBuilder::new(self.spec.id.clone(), SyscallType::default())
            .validate_id()?
            .with_root_path(self.paths.containers())?;
        if tty {
            builder = builder.with_console_socket(Some(self.state_dir.join("console.sock")));
        } else {
            builder = builder
                .with_stdin(in_r)
                .with_stdout(out_w)
                .with_stderr(err_w);
        }
        let container = builder
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| anyhow!("creating container: {e}"))?;
        let t_build = t0.elapsed();
        let container = self.container.insert(container);
        if let Some(dn) = &self.spec.network {
            // The init waits in its namespaces until start(): wire its network now.
            let pid = container
                .pid()
                .ok_or_else(|| anyhow!("container has no pid"))?
                .as_raw();
            self.net_lease = Some(super::net::take_lease(&dn.lease)?);
            self.wired = true;
            self.router_listener =
                super::net::wire(dn, pid).context("wiring the dyno's network")?;
        }
        if let Some(sock) = self.attach_sock.take() {
            // Hand the dyno's stdio to the daemon and keep no copy: when the daemon lets go, the
            // dyno sees a hangup (pty) or EOF/EPIPE (pipes).
            let fds = match console {
                Some(listener) => {
                    let _ = std::fs::remove_file(self.state_dir.join("console.sock"));
                    vec![receive_pty_master(&listener, self.attach.as_ref())?]
                }
                None => vec![in_w, out_r, err_r],
            };
            let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
            stdio::send_fds(sock.as_raw_fd(), &raw).context("handing the stdio to the daemon")?;
            drop(fds);
            drop(sock);
            container
                .start()
                .map_err(|e| anyhow!("starting container: {e}"))?;
            let pid = container
                .pid()
                .ok_or_else(|| anyhow!("container has no pid"))?
                .as_raw();
            return Ok((pid, vec![]));
        }
        drop(in_w);
        container
            .start()
            .map_err(|e| anyhow!("starting container: {e}"))?;
        tracing::debug!(
            target: "dyno::timing",
            ?t_mount,
            ?t_build,
            t_start = ?t0.elapsed(),
            "container started"
        );
        let pid = container
            .pid()
            .ok_or_else(|| anyhow!("container has no pid"))?
            .as_raw();
        for fd in [&out_r, &err_r] {
            stdio::set_nonblocking(fd)?;
        }
        Ok((
            pid,
            vec![Stream::new("out", out_r), Stream::new("err", err_r)],
        ))
    }

    /// Spools output and handles signals until the init has exited and its output is drained.
    /// Returns the dyno's status (exit code, or 128+signal).
    fn run(&mut self, pid: i32, mut streams: Vec<Stream>, sigfd: &OwnedFd) -> i32 {
        let mut spool = match Spool::open(&self.state_dir) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("cannot open output.jsonl: {e}");
                None
            }
        };
        let mut status: Option<i32> = None;
        let mut kill_at: Option<Instant> = None;
        let mut drain_until: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];

        loop {
            if status.is_some() && streams.iter().all(|s| s.fd.is_none()) {
                break;
            }
            let now = Instant::now();
            if let Some(t) = kill_at {
                if now >= t && status.is_none() {
                    tracing::info!(pid, "stop timeout: SIGKILL");
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    kill_at = None;
                }
            }
            if let Some(t) = drain_until {
                if now >= t {
                    break;
                }
            }
            // Lines held back by a full spool are retried every 10 ms.
            let retry = spool
                .as_ref()
                .filter(|s| s.holding())
                .map(|_| now + Duration::from_millis(10));
            let deadline = [kill_at, drain_until, retry].into_iter().flatten().min();
            let timeout_ms = deadline
                .map(|d| d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1)
                .unwrap_or(-1);

            let mut pfds = vec![libc::pollfd {
                fd: sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            for s in &streams {
                pfds.push(libc::pollfd {
                    fd: s.fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            // SAFETY: poll over a valid pollfd array.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, timeout_ms) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!("poll: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            for (i, s) in streams.iter_mut().enumerate() {
                if pfds[i + 1].revents != 0 {
                    s.read_ready(&mut buf, &ts, &mut spool);
                }
            }
            if let Some(w) = spool.as_mut() {
                if w.holding() {
                    w.release();
                }
                w.flush();
            }
            if pfds[0].revents & libc::POLLIN != 0 {
                for sig in read_signals(sigfd) {
                    match sig {
                        libc::SIGCHLD => {
                            if let Some(st) = reap(pid) {
                                status = Some(st);
                                // Its network goes now, not at teardown: the router's connects
                                // to the dead address fail at once (unreachable) instead of
                                // waiting on ARP for a veth that vanished with the namespace.
                                self.unwire();
                                // Every process of the pid namespace is gone with its init;
                                // give the pipes a moment to deliver their last bytes.
                                drain_until = Some(Instant::now() + Duration::from_secs(2));
                                kill_at = None;
                            }
                        }
                        libc::SIGTERM | libc::SIGINT if status.is_none() && kill_at.is_none() => {
                            tracing::info!(pid, "stop requested: SIGTERM");
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGTERM,
                            );
                            kill_at = Some(
                                Instant::now() + Duration::from_secs(self.spec.stop_timeout_secs),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        for s in streams.iter_mut() {
            s.flush_partial(&ts, &mut spool);
        }
        if let Some(w) = spool.as_mut() {
            w.finish(&ts);
        }
        status.unwrap_or_else(|| {
            // Output never closed although the init is gone: should not happen; be safe.
            reap_blocking(pid)
        })
    }

    /// Whether the OOM killer fired in the dyno's memory cgroup (read before it is deleted).
    fn oom_killed(&self) -> bool {
        let rel = self.cgroup_rel();
        let rel = rel.trim_start_matches('/');
        for root in host::cgroup_roots() {
            if root.has_controller("memory") {
                let dir = root.path.join(rel);
                if let Some(n) = flat_value(&dir.join("memory.oom_control"), "oom_kill") {
                    return n > 0;
                }
                if let Ok(s) = std::fs::read_to_string(dir.join("memory.failcnt")) {
                    return s.trim().parse::<u64>().unwrap_or(0) > 0;
                }
            } else if root.v2 {
                if let Some(n) = flat_value(&root.path.join(rel).join("memory.events"), "oom_kill")
                {
                    if n > 0 {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Removes the dyno's veth and host route, once.
    fn unwire(&mut self) {
        if std::mem::take(&mut self.wired) {
            if let Some(dn) = &self.spec.network {
                super::net::unwire(dn);
            }
        }
    }

    /// Deletes the container, unmounts the overlay, removes scratch dirs and cgroups.
    fn teardown(&mut self) {
        if let Some(mut c) = self.container.take() {
            if let Err(e) = c.delete(true) {
                tracing::warn!("container delete: {e}");
            }
        }
        // Our veth and route (unless gone with the init already), while we still hold the
        // address's lease.
        self.unwire();
        // Whatever delete() could not do (or a failed build left behind):
        host::clean_dyno(&self.paths, &self.state_dir, &self.spec.id, false);
        // Reap anything libcontainer left as our child.
        while nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        )
        .map(|s| s.pid().is_some())
        .unwrap_or(false)
        {}
    }
}

/// Accepts libcontainer's connection on the console socket and takes the pty master from it
/// (its init sent it during `build()`), then sets the initial window size (a new pty is 0×0).
fn receive_pty_master(
    listener: &std::os::unix::net::UnixListener,
    opts: Option<&AttachOptions>,
) -> Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("waiting for the container's pty"),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let master = stdio::recv_fds(conn.as_raw_fd(), false)
        .context("receiving the pty master")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no pty master on the console socket"))?;
    let (cols, rows) = opts.and_then(|o| o.size).unwrap_or((80, 24));
    stdio::set_window_size(master.as_raw_fd(), cols, rows).context("setting the window size")?;
    Ok(master)
}

fn flat_value(file: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

fn read_signals(sigfd: &OwnedFd) -> Vec<libc::c_int> {
    let mut sigs = Vec::new();
    loop {
        // SAFETY: reading whole signalfd_siginfo records into a zeroed struct.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe {
            libc::read(
                sigfd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        if n != size as isize {
            break;
        }
        sigs.push(info.ssi_signo as libc::c_int);
    }
    sigs
}

fn decode(ws: nix::sys::wait::WaitStatus) -> Option<(i32, i32)> {
    use nix::sys::wait::WaitStatus::*;
    match ws {
        Exited(p, code) => Some((p.as_raw(), code)),
        Signaled(p, sig, _) => Some((p.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

/// Reaps every exited child; returns the init's status if it was among them.
fn reap(init: i32) -> Option<i32> {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let mut found = None;
    loop {
        match waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => break,
            Ok(ws) => {
                if let Some((p, st)) = decode(ws) {
                    if p == init {
                        found = Some(st);
                    }
                }
            }
        }
    }
    found
}

fn reap_blocking(init: i32) -> i32 {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    );
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init), None) {
        Ok(ws) => decode(ws).map(|(_, st)| st).unwrap_or(137),
        Err(_) => 137,
    }
}

/// One output pipe of the dyno and its incomplete last line.
struct Stream {
    name: &'static str,
    fd: Option<OwnedFd>,
    pending: Vec<u8>,
}

impl Stream {
    fn new(name: &'static str, fd: OwnedFd) -> Stream {
        Stream {
            name,
            fd: Some(fd),
            pending: Vec::new(),
        }
    }

    /// Reads what is available (never blocks) and spools every complete line.
    fn read_ready(&mut self, buf: &mut [u8], ts: &str, spool: &mut Option<Spool>) {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut eof = false;
        // Bounded, so one chatty stream cannot starve the other or the signals.
        for _ in 0..16 {
            // On an error errno stays set for last_os_error below.
            let n = nix::unistd::read(fd, buf).map_or(-1, |n| n as isize);
            if n > 0 {
                self.pending.extend_from_slice(&buf[..n as usize]);
                self.emit_lines(ts, spool);
                if (n as usize) < buf.len() {
                    break;
                }
            } else if n == 0 {
                eof = true;
                break;
            } else {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => continue,
                    std::io::ErrorKind::WouldBlock => break,
                    _ => {
                        eof = true;
                        break;
                    }
                }
            }
        }
        if eof {
            self.flush_partial(ts, spool);
            self.fd = None;
        }
    }

    fn emit_lines(&mut self, ts: &str, spool: &mut Option<Spool>) {
        let mut start = 0;
        let buf = std::mem::take(&mut self.pending);
        while start < buf.len() {
            let rest = &buf[start..];
            match rest.iter().position(|b| *b == b'\n') {
                Some(nl) if nl <= MAX_LINE => {
                    self.write_line(&rest[..nl], ts, spool);
                    start += nl + 1;
                }
                _ if rest.len() > MAX_LINE => {
                    let cut = utf8_cut(rest, MAX_LINE);
                    self.write_line(&rest[..cut], ts, spool);
                    start += cut;
                }
                _ => break,
            }
        }
        self.pending = buf[start..].to_vec();
    }

    fn flush_partial(&mut self, ts: &str, spool: &mut Option<Spool>) {
        self.emit_lines(ts, spool);
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            self.write_line(&p, ts, spool);
        }
    }

    fn write_line(&self, line: &[u8], ts: &str, spool: &mut Option<Spool>) {
        if let Some(w) = spool.as_mut() {
            w.line(ts, self.name, line);
        }
    }
}

/// The largest cut <= max that does not split a UTF-8 sequence (falls back to max).
fn utf8_cut(b: &[u8], max: usize) -> usize {
    let mut cut = max;
    while cut > max.saturating_sub(4) && cut > 0 && (b[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    if cut == 0 {
        max
    } else {
        cut
    }
}

/// Creates the missing parent directories of `dest` in `rootfs`, 0755; stops at the first
/// that is not a plain directory (a link is left for libcontainer to resolve inside the root).
fn open_mount_parents(rootfs: &Path, dest: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let comps: Vec<_> = Path::new(dest)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    let mut at = rootfs.to_path_buf();
    for c in &comps[..comps.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at)?;
                std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o755))?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> serde_json::Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

/// The OCI runtime spec (`config.json`) of a dyno (or, with `build`, of a build container).
pub(crate) fn oci_config(
    spec: &DynoSpec,
    build: Option<&BuildSpec>,
    paths: &Paths,
    rootfs: &Path,
    exe: &Path,
) -> serde_json::Value {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        env.push("PATH=/usr/local/bin:/usr/bin:/bin".into());
    }
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount("/usr", "bind", "/usr", &["rbind", "ro", "nosuid", "nodev"]),
    ];
    for name in USR_LINKS {
        let host = Path::new("/").join(name);
        if !host.is_symlink() && host.is_dir() {
            let h = host.to_string_lossy();
            mounts.push(mount(&h, "bind", &h, &["rbind", "ro", "nosuid", "nodev"]));
        }
    }
    for f in ETC_FILES {
        let host = match (&spec.network, *f) {
            // A namespaced dyno's own: every app's name, resolvers it can reach.
            (Some(n), "hosts") => n.hosts.clone(),
            (Some(n), "resolv.conf") => n.resolv.clone(),
            _ => Path::new("/etc").join(f),
        };
        if host.exists() {
            let dest = Path::new("/etc").join(f);
            let (h, dest) = (host.to_string_lossy(), dest.to_string_lossy());
            mounts.push(mount(&dest, "bind", &h, &["bind", "ro", "nosuid", "nodev"]));
        }
    }
    for d in ETC_DIRS {
        let host = Path::new("/etc").join(d);
        if host.is_dir() {
            let h = host.to_string_lossy();
            mounts.push(mount(&h, "bind", &h, &["rbind", "ro", "nosuid", "nodev"]));
        }
    }
    mounts.push(mount(
        "/.dyno/init",
        "bind",
        &exe.to_string_lossy(),
        &["bind", "ro", "nosuid", "nodev"],
    ));
    for m in build.map(|b| b.mounts.as_slice()).unwrap_or_default() {
        let opts: &[&str] = if m.readonly {
            &["rbind", "ro", "nosuid", "nodev"]
        } else {
            &["rbind", "rw", "nosuid", "nodev"]
        };
        mounts.push(mount(
            &m.destination,
            "bind",
            &m.source.to_string_lossy(),
            opts,
        ));
    }
    let args: Vec<&str> = if build.is_some() {
        // A build step: no `.profile.d` (that is the app's runtime setup, not the build's).
        vec!["/.dyno/init", "init", "--no-profile", "--", &spec.command]
    } else {
        vec!["/.dyno/init", "init", "--", &spec.command]
    };

    let mut memory = json!({ "limit": spec.memory_limit as i64 });
    let memsw = host::cgroup_roots()
        .iter()
        .any(|r| r.has_controller("memory") && r.path.join("memory.memsw.limit_in_bytes").exists());
    if memsw {
        memory["swap"] = json!(spec.memory_limit as i64);
    }
    let no_caps: Vec<String> = vec![];
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "mount"}),
        json!({"type": "uts"}),
        json!({"type": "ipc"}),
    ];
    if spec.network.is_some() {
        namespaces.push(json!({"type": "network"}));
    }

    json!({
        "ociVersion": "1.0.2",
        "root": { "path": rootfs, "readonly": false },
        "hostname": spec.name,
        "mounts": mounts,
        "process": {
            "terminal": false,
            "user": { "uid": DYNO_UID, "gid": DYNO_GID, "additionalGids": [DYNO_GID] },
            "args": args,
            "env": env,
            "cwd": "/app",
            "capabilities": {
                "bounding": no_caps, "effective": no_caps, "inheritable": no_caps,
                "permitted": no_caps, "ambient": no_caps,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 10000, "soft": 10000 }],
            "noNewPrivileges": true,
        },
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("{}/{}", paths.cgroup_parent(), spec.id),
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }],
                "memory": memory,
                "pids": { "limit": spec.pids_limit },
                "cpu": { "shares": spec.cpu_shares },
            },
            "seccomp": super::seccomp::profile(),
            "maskedPaths": oci_spec::runtime::get_default_maskedpaths(),
            "readonlyPaths": oci_spec::runtime::get_default_readonly_paths(),
        },
    })
}
