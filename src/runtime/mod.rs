//! The container runtime: starts, stops, watches and cleans up dynos. Nothing of OCI or
//! libcontainer leaks out of this module; callers speak in [`DynoSpec`] and [`DynoHandle`].
//!
//! Process model: the tokio daemon never calls libcontainer itself (see
//! shared/notes/containers.md: it deadlocks in multi-threaded processes). For every dyno it spawns
//! `dyno shim <state-dir>`, a small single-threaded helper that mounts the overlay root, creates
//! and starts the container, spools the dyno's output to `<state-dir>/output.jsonl`, reaps it,
//! and cleans up after it. Shims outlive daemon restarts; a new daemon re-adopts them.
//!
//! STUB: interface only, implemented by the runtime work.

use crate::paths::Paths;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
}

impl Runtime {
    /// Prepares the stack skeleton and directories. Must be called by root.
    pub fn new(paths: &Paths) -> Result<Self> {
        Ok(Runtime { paths: paths.clone() })
    }

    /// Spawns the shim for `spec` and returns once the Procfile command has been started in the
    /// container (or with the shim's error).
    pub async fn start(&self, _spec: DynoSpec) -> Result<DynoHandle> {
        anyhow::bail!("runtime not implemented")
    }

    /// At daemon start: returns the dynos whose shim is still alive (to re-adopt) and cleans up
    /// every leftover of this instance whose shim is gone (state dirs, mounts, cgroups,
    /// libcontainer state). Never touches another instance's dynos.
    pub fn adopt_or_clean(&self) -> Result<Vec<DynoHandle>> {
        Ok(vec![])
    }

    /// Asks the shim to stop the dyno: SIGTERM to every process of it, SIGKILL after the
    /// spec's stop timeout. Returns at once; [`Runtime::wait`] tells when it is gone.
    pub fn stop(&self, _dyno: &DynoHandle) -> Result<()> {
        Ok(())
    }

    /// SIGKILL every process of the dyno now.
    pub fn kill(&self, _dyno: &DynoHandle) -> Result<()> {
        Ok(())
    }

    /// Resolves when the dyno has ended and its shim has cleaned up (container deleted, overlay
    /// unmounted, cgroup removed, state dir removed except what the caller still reads).
    /// Works for adopted dynos too (they are not children of this daemon).
    pub async fn wait(&self, _dyno: &DynoHandle) -> Result<DynoExit> {
        anyhow::bail!("runtime not implemented")
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

/// One line a dyno wrote, as spooled by its shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputLine {
    /// RFC 3339 with microseconds, when the shim read the line.
    pub ts: String,
    /// `out` or `err`.
    pub stream: String,
    pub line: String,
}

/// Entry points of the hidden subcommands `dyno shim <state-dir>` and `dyno init <command>`.
pub fn shim_main(_state_dir: PathBuf) -> i32 {
    eprintln!("shim not implemented");
    1
}

pub fn init_main(_command: String) -> i32 {
    eprintln!("init not implemented");
    1
}
