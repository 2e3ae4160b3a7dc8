//! The container runtime: starts, stops, watches and cleans up dynos. Nothing of OCI or
//! libcontainer leaks out of this module; callers speak in [`DynoSpec`] and [`DynoHandle`].
//!
//! Process model: the tokio daemon never calls libcontainer itself (see
//! shared/notes/containers.md: it deadlocks in multi-threaded processes). For every dyno it spawns
//! `dyno shim <state-dir>`, a small single-threaded helper that mounts the overlay root, creates
//! and starts the container, spools the dyno's output to `<state-dir>/output.jsonl`, reaps it,
//! and cleans up after it. Shims outlive daemon restarts; a new daemon re-adopts them.
//!

pub mod disk;
mod host;
mod init;
pub mod net;
mod netlink;
mod seccomp;
mod shim;
pub mod spool;
mod stack;
mod stdio;
#[cfg(test)]
mod tests;

pub use init::init_main;
pub use shim::shim_main;
pub use stdio::{set_nonblocking, set_window_size, AttachOptions, DynoStdio};

use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, Interest};

/// The fixed non-root user every dyno runs as (and that owns slugs and build caches).
pub const DYNO_UID: u32 = 47000;
pub const DYNO_GID: u32 = 47000;

/// Everything needed to start one dyno. Written by the daemon to `<state-dir>/spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynoSpec {
    /// Container id, unique on the host: `d<instance>-<app>-<type>-<n>-<rand>`.
    pub id: String,
    pub app: String,
    /// Dyno name, e.g. `web.1`; also the container's hostname.
    pub name: String,
    /// The Procfile command, run with `bash -c` after `.profile.d` is sourced.
    pub command: String,
    /// Full environment (PORT, DYNO, HOME, HEROKU_*, config vars). The init adds nothing secret.
    pub env: Vec<(String, String)>,
    /// Unpacked slug: a directory holding `app/`, shared read-only by every dyno of the release.
    pub slug_dir: PathBuf,
    /// Cgroup hard memory limit in bytes (2× the dyno's quota).
    pub memory_limit: u64,
    /// Cgroup pids limit.
    pub pids_limit: i64,
    /// cgroup v1 cpu.shares of the dyno.
    pub cpu_shares: u64,
    /// Seconds between SIGTERM and SIGKILL when the dyno is stopped.
    pub stop_timeout_secs: u64,
    /// Version of the dyno binary that wrote the spec.
    pub version: String,
    /// Its network namespace's wiring; `None`: the host's network (dynos of versions before
    /// dyno networking, and `DYNO_NETWORK=host`).
    #[serde(default)]
    pub network: Option<net::DynoNet>,
    /// Size in bytes of the loop-backed ext4 the dyno's writable layer lives on
    /// (`DYNO_DISK_LIMIT`, see `disk.rs`); `None`: the upper layer is a directory on the host's
    /// filesystem (build containers, dynos of versions before the limit, `DYNO_DISK_LIMIT=0`).
    #[serde(default)]
    pub disk_limit: Option<u64>,
}

impl DynoSpec {
    /// The address the dyno's ports are reached at from the host.
    pub fn ip(&self) -> std::net::IpAddr {
        match &self.network {
            Some(n) => n.address.into(),
            None => std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }
}

/// What turns a dyno spec into a build container (`build.json` next to `spec.json`): no slug
/// layer (the root is the stack alone), these bind mounts (the build dir at `/app`, CACHE_DIR,
/// ENV_DIR, the buildpacks), and the command runs without sourcing `.profile.d`. Everything else
/// (non-root user, cgroup limits, host network, output spooling) is a dyno's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildSpec {
    pub mounts: Vec<BindMount>,
}

/// A host directory bound into a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    pub readonly: bool,
}

/// A running dyno, held through its shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynoHandle {
    pub id: String,
    pub spec: DynoSpec,
    pub state_dir: PathBuf,
    pub shim_pid: i32,
    /// Host pid of the container's init.
    pub container_pid: i32,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The shim's descriptor of the router's listener inside the dyno (see `net.rs`).
    #[serde(default)]
    pub router_fd: Option<i32>,
}

/// How a dyno ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DynoExit {
    /// Exit code of the Procfile command (128+N when killed by signal N).
    pub status: i32,
    /// True when the cgroup's OOM killer fired.
    pub oom_killed: bool,
}

pub struct Runtime {
    pub paths: Paths,
    /// The dyno binary run as `<exe> shim <state-dir>` (and bound into dynos as their init).
    pub exe: PathBuf,
    /// This home's dyno network; `None`: dynos share the host's network.
    pub net: Option<net::Network>,
    /// Spare disk images for the dynos' writable layers (see `disk.rs`).
    pub disks: Option<disk::Pool>,
}

/// How long [`Runtime::start`] waits for the shim's `started`/`error` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `DynoExit::status` reported when a shim died without writing `exit.json`.
pub const SHIM_LOST_STATUS: i32 = 255;

impl Runtime {
    /// Prepares the stack skeleton and directories. Must be called by root.
    pub fn new(paths: &Paths) -> Result<Self> {
        for d in [paths.dynos(), paths.containers()] {
            std::fs::create_dir_all(&d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        stack::write_stack(&paths.stack()).context("writing the stack skeleton")?;
        Ok(Runtime {
            paths: paths.clone(),
            // The daemon's own binary even after an upgrade replaced the file on disk, so a
            // daemon's shims and inits are always of its own version.
            exe: PathBuf::from("/proc/self/exe"),
            net: None,
            disks: None,
        })
    }

    /// Gives every dyno and build container started from now on a network namespace of its own.
    pub fn with_network(mut self, net: net::Network) -> Self {
        self.net = Some(net);
        self
    }

    /// Takes the dynos' disk images from `pool` (else each one is formatted when it starts).
    pub fn with_disks(mut self, pool: disk::Pool) -> Self {
        self.disks = Some(pool);
        self
    }

    /// Puts a mounted disk of the dyno's disk limit into its state dir (a dyno, not a build
    /// container: its build dir becomes the slug by a rename, so it is no loop filesystem).
    fn provide_disk(&self, spec: &DynoSpec, state_dir: &Path) -> Result<()> {
        let Some(size) = spec.disk_limit else {
            return Ok(());
        };
        let dest = state_dir.join(disk::DIR);
        match &self.disks {
            Some(p) if p.size() == size => p.take(&dest),
            _ => disk::prepare(&dest, size),
        }
        .context("preparing the dyno's disk")
    }

    /// Opens `port` on [`Runtime::services_addr`] to every dyno (a platform service).
    pub fn allow_service(&self, port: u16) -> Result<()> {
        match &self.net {
            Some(n) => n.allow_service(port),
            None => Ok(()),
        }
    }

    /// The address dynos reach the platform's services at (loopback on the host network).
    pub fn services_addr(&self) -> std::net::Ipv4Addr {
        self.net
            .as_ref()
            .map_or(std::net::Ipv4Addr::LOCALHOST, |n| n.services_addr())
    }

    /// The router's listener inside a dyno's namespace, duplicated from its shim (pidfd_getfd):
    /// the caller serves it, and closes it when the dyno is gone.
    pub fn router_listener(&self, dyno: &DynoHandle) -> Result<Option<std::net::TcpListener>> {
        let Some(remote) = dyno.router_fd else {
            return Ok(None);
        };
        // SAFETY: pidfd_open(2) returns a new fd or -1.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, dyno.shim_pid, 0) } as i32;
        if pidfd < 0 {
            return Err(std::io::Error::last_os_error()).context("pidfd_open of the shim");
        }
        // SAFETY: a fresh fd we own.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        if !host::is_shim_of(dyno.shim_pid, &dyno.state_dir) {
            bail!("the shim of {} is gone", dyno.id);
        }
        // SAFETY: pidfd_getfd(2) returns a new fd (close-on-exec) or -1.
        let fd =
            unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), remote, 0) } as i32;
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .context("pidfd_getfd of the router's port");
        }
        // SAFETY: a fresh fd we own, a listening TCP socket.
        let l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        l.set_nonblocking(true)?;
        Ok(Some(l))
    }

    /// Uses `exe` as the dyno binary for shims and inits (default: the current executable).
    pub fn with_exe(mut self, exe: PathBuf) -> Self {
        self.exe = exe;
        self
    }

    fn cgroup_rel(&self, id: &str) -> String {
        format!("{}/{}", self.paths.cgroup_parent(), id)
    }

    /// Spawns the shim for `spec` and returns once the Procfile command has been started in the
    /// container (or with the shim's error, after everything of the dyno has been cleaned up).
    pub async fn start(&self, spec: DynoSpec) -> Result<DynoHandle> {
        self.start_in(&self.paths.dynos(), spec, None).await
    }

    /// Starts a build container: `spec` with the build's mounts (see [`BuildSpec`]). Its state
    /// dir lives under `run/builds`, so it is never adopted as a dyno; a daemon that starts
    /// cleans up what builds of its predecessor left ([`Runtime::clean_builds`]).
    pub async fn start_build(&self, spec: DynoSpec, build: BuildSpec) -> Result<DynoHandle> {
        for m in &build.mounts {
            if !m.destination.starts_with('/') || m.destination.split('/').any(|c| c == "..") {
                bail!("bad mount destination {:?}", m.destination);
            }
        }
        self.start_in(&self.paths.build_containers(), spec, Some(build))
            .await
    }

    async fn start_in(
        &self,
        root: &Path,
        mut spec: DynoSpec,
        build: Option<BuildSpec>,
    ) -> Result<DynoHandle> {
        check_id(&spec.id)?;
        // Held until the shim has made the veth: then the address shows as taken.
        let _address = self.assign_network(&mut spec, build.is_none())?;
        let state_dir = root.join(&spec.id);
        std::fs::create_dir_all(root)?;
        std::fs::create_dir(&state_dir)
            .with_context(|| format!("creating state dir {}", state_dir.display()))?;
        let prepared = match &build {
            Some(b) => {
                spec.disk_limit = None;
                host::write_atomic(&state_dir.join("build.json"), &serde_json::to_vec(b)?)
                    .map_err(anyhow::Error::from)
            }
            None => self.provide_disk(&spec, &state_dir),
        };
        if let Err(e) = prepared {
            host::clean_dyno(&self.paths, &state_dir, &spec.id, true);
            return Err(e);
        }
        match self.spawn_shim(&spec, &state_dir, None).await {
            Ok(h) => Ok(h),
            Err(e) => {
                host::clean_dyno(&self.paths, &state_dir, &spec.id, true);
                Err(e)
            }
        }
    }

    /// Like [`Runtime::start`], for a dyno attached to a client (`dyno run`): its stdio is not
    /// spooled but handed to the caller, who holds the only copies (see `stdio.rs`).
    pub async fn start_attached(
        &self,
        spec: DynoSpec,
        opts: AttachOptions,
    ) -> Result<(DynoHandle, DynoStdio)> {
        check_id(&spec.id)?;
        let mut spec = spec;
        let _address = self.assign_network(&mut spec, true)?;
        let state_dir = self.paths.dynos().join(&spec.id);
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        std::fs::create_dir_all(self.paths.dynos())?;
        std::fs::create_dir(&state_dir)
            .with_context(|| format!("creating state dir {}", state_dir.display()))?;
        let prepared =
            host::write_atomic(&state_dir.join("attach.json"), &serde_json::to_vec(&opts)?)
                .map_err(anyhow::Error::from)
                .and_then(|()| self.provide_disk(&spec, &state_dir));
        let spawned = match prepared {
            Ok(()) => {
                self.spawn_shim(&spec, &state_dir, Some(OwnedFd::from(theirs)))
                    .await
            }
            Err(e) => Err(e),
        };
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => {
                host::clean_dyno(&self.paths, &state_dir, &spec.id, true);
                return Err(e);
            }
        };
        // Sent before the shim reported `started`: already queued.
        let stdio = stdio::recv_fds(ours.as_raw_fd(), true)
            .map_err(anyhow::Error::from)
            .and_then(|fds| DynoStdio::from_fds(opts.tty, fds));
        match stdio {
            Ok(s) => Ok((handle, s)),
            Err(e) => {
                let _ = self.kill(&handle);
                let _ = self.wait(&handle).await;
                let _ = self.forget(&handle);
                Err(e.context("receiving the dyno's stdio from its shim"))
            }
        }
    }

    /// Whether a dyno (an adopted one, say) was started attached to a client.
    /// Gives `spec` an address on this home's network (with the router's port inside when
    /// `router`), unless dynos share the host's network.
    fn assign_network(
        &self,
        spec: &mut DynoSpec,
        router: bool,
    ) -> Result<Option<net::Reservation>> {
        let Some(n) = &self.net else {
            return Ok(None);
        };
        let (dn, reservation) = n.allocate(router)?;
        spec.network = Some(dn);
        Ok(Some(reservation))
    }

    pub fn is_attached(dyno: &DynoHandle) -> bool {
        dyno.state_dir.join("attach.json").exists()
    }

    async fn spawn_shim(
        &self,
        spec: &DynoSpec,
        state_dir: &Path,
        attach_sock: Option<OwnedFd>,
    ) -> Result<DynoHandle> {
        host::write_atomic(&state_dir.join("spec.json"), &serde_json::to_vec(spec)?)?;
        let log = std::fs::File::create(state_dir.join("shim.log"))?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("shim")
            .arg(state_dir)
            .stdin(attach_sock.map_or_else(Stdio::null, Stdio::from))
            .stdout(Stdio::piped())
            .stderr(log);
        // SAFETY: setsid(2) is async-signal-safe. Its own session: the shim survives the daemon
        // and a Ctrl-C to the daemon's terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {} shim", self.exe.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = tokio::time::timeout(
            START_TIMEOUT,
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let line = line.trim_end().to_string();
        if let Some(pid) = line.strip_prefix("started ") {
            let _pid: i32 = pid.parse().context("bad shim report")?;
            // Reap the shim whenever it exits; wait() uses a pidfd so adopted shims work alike.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            let handle: DynoHandle =
                serde_json::from_slice(&std::fs::read(state_dir.join("handle.json"))?)
                    .context("reading handle.json")?;
            return Ok(handle);
        }
        if read.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
            bail!(
                "dyno {}: shim did not report within {START_TIMEOUT:?}",
                spec.id
            );
        }
        // The shim cleans up after itself before exiting; wait for it (bounded).
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        match line.strip_prefix("error ") {
            Some(msg) => bail!("dyno {}: {msg}", spec.id),
            None => {
                let log = std::fs::read_to_string(state_dir.join("shim.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                bail!(
                    "dyno {}: shim failed without a report ({line:?}); log: {}",
                    spec.id,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            }
        }
    }

    /// At daemon start: returns the dynos whose shim is still alive (to re-adopt) and cleans up
    /// every leftover of this instance whose shim is gone (state dirs, mounts, cgroups,
    /// libcontainer state). Never touches another instance's dynos.
    pub fn adopt_or_clean(&self) -> Result<Vec<DynoHandle>> {
        let mut adopted = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.paths.dynos()) {
            for e in rd.flatten() {
                let dir = e.path();
                let Some(id) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if !dir.is_dir() {
                    continue;
                }
                let handle: Option<DynoHandle> = std::fs::read(dir.join("handle.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(h) = handle {
                    if h.state_dir == dir && host::is_shim_of(h.shim_pid, &dir) {
                        adopted.push(h);
                        continue;
                    }
                }
                tracing::info!(id, "cleaning up leftover dyno");
                host::clean_dyno(&self.paths, &dir, &id, true);
            }
        }
        let keep: HashSet<&str> = adopted.iter().map(|h| h.id.as_str()).collect();
        // Cgroups of this instance that belong to no adopted dyno.
        let parent = self.paths.cgroup_parent();
        for dir in host::cgroup_dirs(&parent) {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if e.path().is_dir() && !keep.contains(name.as_str()) {
                        host::remove_cgroup(&self.cgroup_rel(&name));
                    }
                }
            }
            if keep.is_empty() {
                let _ = std::fs::remove_dir(&dir);
            }
        }
        // Mounts below our state dirs that belong to no adopted dyno.
        let dynos = self.paths.dynos();
        for mp in host::mounts_under(&dynos) {
            let owner = mp
                .strip_prefix(&dynos)
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            if owner.is_none_or(|o| !keep.contains(o.as_str())) {
                host::unmount_all(&mp);
            }
        }
        // libcontainer state of no adopted dyno.
        if let Ok(rd) = std::fs::read_dir(self.paths.containers()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(name.as_str()) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(adopted)
    }

    /// At daemon start: kills and cleans up every build container a previous daemon left (a
    /// build never outlives the daemon that runs it).
    pub fn clean_builds(&self) {
        let Ok(rd) = std::fs::read_dir(self.paths.build_containers()) else {
            return;
        };
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            tracing::info!(id, "cleaning up a leftover build container");
            host::clean_dyno(&self.paths, &e.path(), &id, true);
        }
    }

    /// Asks the shim to stop the dyno: SIGTERM to every process of it, SIGKILL after the
    /// spec's stop timeout. Returns at once; [`Runtime::wait`] tells when it is gone.
    pub fn stop(&self, dyno: &DynoHandle) -> Result<()> {
        if host::is_shim_of(dyno.shim_pid, &dyno.state_dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(dyno.shim_pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        Ok(())
    }

    /// SIGKILL every process of the dyno now.
    pub fn kill(&self, dyno: &DynoHandle) -> Result<()> {
        let rel = self.cgroup_rel(&dyno.id);
        if host::pid_in_cgroup(dyno.container_pid, &rel) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(dyno.container_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for pid in host::cgroup_pids(&rel) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Ok(())
    }

    /// Resolves when the dyno has ended and its shim has cleaned up (container deleted, overlay
    /// unmounted, cgroup removed, state dir removed except what the caller still reads).
    /// Works for adopted dynos too (they are not children of this daemon).
    pub async fn wait(&self, dyno: &DynoHandle) -> Result<DynoExit> {
        // SAFETY: pidfd_open(2) returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, dyno.shim_pid, 0) } as i32;
        if fd >= 0 {
            // SAFETY: a fresh fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // Checked after opening the pidfd, so the pid cannot be recycled in between.
            if host::is_shim_of(dyno.shim_pid, &dyno.state_dir) {
                // SAFETY: the AsyncFd owns the pidfd, which stays open for its whole lifetime.
                let afd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                    .map_err(|e| anyhow::anyhow!("registering pidfd: {e}"))?;
                let _ = afd.readable().await?;
            }
        }
        let exit_path = dyno.state_dir.join("exit.json");
        match std::fs::read(&exit_path) {
            Ok(b) => Ok(serde_json::from_slice(&b).context("parsing exit.json")?),
            Err(_) => {
                // The shim died without reporting (killed): clean up in its place.
                let (paths, dir, id) =
                    (self.paths.clone(), dyno.state_dir.clone(), dyno.id.clone());
                tokio::task::spawn_blocking(move || host::clean_dyno(&paths, &dir, &id, false))
                    .await?;
                Ok(DynoExit {
                    status: SHIM_LOST_STATUS,
                    oom_killed: false,
                })
            }
        }
    }

    /// The dyno's memory use and CPU time from its cgroup, v1 or v2 (see [`stats_v1`],
    /// [`stats_v2`]).
    pub fn stats(&self, dyno: &DynoHandle) -> Result<DynoStats> {
        let rel = self.cgroup_rel(&dyno.id);
        let rel = rel.trim_start_matches('/');
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        let roots = host::cgroup_roots();
        for root in &roots {
            if root.has_controller("memory") {
                let Some(mem) = read(root.path.join(rel).join("memory.stat")) else {
                    continue;
                };
                let cpu = roots
                    .iter()
                    .find(|r| r.has_controller("cpuacct"))
                    .and_then(|r| read(r.path.join(rel).join("cpuacct.usage")));
                if let Some(s) = stats_v1(&mem, cpu.as_deref()) {
                    return Ok(s);
                }
            } else if root.v2 {
                let dir = root.path.join(rel);
                let Some(mem) = read(dir.join("memory.stat")) else {
                    continue;
                };
                let swap = read(dir.join("memory.swap.current"));
                let cpu = read(dir.join("cpu.stat"));
                if let Some(s) = stats_v2(&mem, swap.as_deref(), cpu.as_deref()) {
                    return Ok(s);
                }
            }
        }
        bail!("dyno {}: no memory cgroup", dyno.id)
    }

    /// The dyno's output spool: JSON lines of [`OutputLine`], appended by the shim.
    pub fn output_path(dyno: &DynoHandle) -> PathBuf {
        dyno.state_dir.join("output.jsonl")
    }

    /// Removes the state dir once the daemon has read everything it needs from it.
    pub fn forget(&self, dyno: &DynoHandle) -> Result<()> {
        let _ = std::fs::remove_dir_all(&dyno.state_dir);
        Ok(())
    }
}

/// Ids of this home's dynos whose shim is alive (as `adopt_or_clean` would adopt them), without
/// touching anything: what a daemon checks before it trusts an empty database.
pub fn live_dynos(paths: &Paths) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(paths.dynos()) else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| {
            let dir = e.path();
            let h: DynoHandle =
                serde_json::from_slice(&std::fs::read(dir.join("handle.json")).ok()?).ok()?;
            (h.state_dir == dir && host::is_shim_of(h.shim_pid, &dir)).then_some(h.id)
        })
        .collect()
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.starts_with('.')
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
    {
        bail!("invalid dyno id {id:?}");
    }
    Ok(())
}

/// What [`Runtime::stats`] measures of a running dyno.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct DynoStats {
    /// Resident memory plus swap, in bytes. Not the cgroup's usage: that counts page cache,
    /// which the kernel reclaims before any OOM.
    #[serde(default)]
    pub memory_bytes: u64,
    /// CPU time used so far, in nanoseconds.
    #[serde(default)]
    pub cpu_ns: Option<u64>,
}

/// A `key value` line's value from a cgroup stat file (`memory.stat`, `cpu.stat`).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v1: `total_rss + total_swap` of `memory.stat`, and `cpuacct.usage` (ns).
pub fn stats_v1(memory_stat: &str, cpuacct_usage: Option<&str>) -> Option<DynoStats> {
    let rss = stat_value(memory_stat, "total_rss")?;
    Some(DynoStats {
        memory_bytes: rss + stat_value(memory_stat, "total_swap").unwrap_or(0),
        cpu_ns: cpuacct_usage.and_then(|s| s.trim().parse().ok()),
    })
}

/// cgroup v2: `anon` of `memory.stat` plus `memory.swap.current`, and `usage_usec` of `cpu.stat`.
pub fn stats_v2(
    memory_stat: &str,
    swap_current: Option<&str>,
    cpu_stat: Option<&str>,
) -> Option<DynoStats> {
    let anon = stat_value(memory_stat, "anon")?;
    let swap = swap_current.and_then(|s| s.trim().parse::<u64>().ok());
    Some(DynoStats {
        memory_bytes: anon + swap.unwrap_or(0),
        cpu_ns: cpu_stat
            .and_then(|s| stat_value(s, "usage_usec"))
            .map(|us| us * 1000),
    })
}

/// One line a dyno wrote, as spooled by its shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputLine {
    /// RFC 3339 with microseconds, when the shim read the line.
    pub ts: String,
    /// `out` or `err`; [`spool::DROPPED_STREAM`] for the report of lines the spool dropped
    /// (`line` is then the time of the first one).
    pub stream: String,
    pub line: String,
    /// How many lines were dropped (a `dropped` record).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
