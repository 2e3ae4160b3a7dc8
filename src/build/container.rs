//! One build step (`bin/detect`, `bin/compile`, `bin/release`) in a build container: a dyno of
//! the same stack, as the dyno user, on the host network, with the build dir bound read-write at
//! `/app`, CACHE_DIR and the buildpacks read-write and ENV_DIR read-only. The shim spools the
//! step's output; this module tails it while the step runs.

use crate::paths::Paths;
use crate::runtime::spool::DROPPED_STREAM;
use crate::runtime::{BindMount, BuildSpec, DynoSpec, OutputLine, Runtime};
use anyhow::Result;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the build's directories appear inside the build container.
pub const APP: &str = "/app";
pub const CACHE: &str = "/tmp/cache";
pub const ENV: &str = "/tmp/env";
pub const BUILDPACKS: &str = "/tmp/buildpacks";

/// A build container's memory hard limit: pip and npm need more than a dyno's quota.
pub const MEMORY_LIMIT: u64 = 4 << 30;
/// Its pids limit (threads count: compilers and npm use many).
pub const PIDS_LIMIT: i64 = 4096;
/// Its cpu.shares: a dyno's (512) doubled, below the router's.
pub const CPU_SHARES: u64 = 1024;

/// The host side of a build's directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub app: PathBuf,
    pub cache: PathBuf,
    pub env: PathBuf,
    pub buildpacks: PathBuf,
    /// The CA bundle's directory (`host::CA_DIR` inside), when there is one.
    pub ca: Option<PathBuf>,
    /// Host files bound read-only where the app's `file://` URLs name them (`host.rs`).
    pub host_files: Vec<BindMount>,
}

impl Dirs {
    fn mounts(&self) -> Vec<BindMount> {
        let m = |source: &Path, destination: &str, readonly: bool| BindMount {
            source: source.to_path_buf(),
            destination: destination.into(),
            readonly,
        };
        let mut v = vec![
            m(&self.app, APP, false),
            m(&self.cache, CACHE, false),
            m(&self.env, ENV, true),
            m(&self.buildpacks, BUILDPACKS, false),
        ];
        if let Some(ca) = &self.ca {
            v.push(m(ca, super::host::CA_DIR, true));
        }
        v.extend(self.host_files.iter().cloned());
        v
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy)]
pub struct StepExit {
    pub status: i32,
    pub timed_out: bool,
    pub oom_killed: bool,
}

impl StepExit {
    pub fn success(&self) -> bool {
        self.status == 0 && !self.timed_out
    }
}

/// Runs `command` (bash) in a fresh build container, calling `on_line` with each output line as
/// it comes; kills the step after `timeout`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    runtime: &Runtime,
    paths: &Paths,
    app: &str,
    step: &str,
    command: String,
    env: Vec<(String, String)>,
    dirs: &Dirs,
    timeout: Duration,
    mut on_line: impl FnMut(&OutputLine),
) -> Result<StepExit> {
    let rand: u16 = rand::random();
    let spec = DynoSpec {
        id: format!("b{}-{app}-{step}-{rand:04x}", paths.instance),
        app: app.to_string(),
        name: "build".into(),
        command,
        env,
        slug_dir: PathBuf::new(),
        memory_limit: MEMORY_LIMIT,
        pids_limit: PIDS_LIMIT,
        cpu_shares: CPU_SHARES,
        stop_timeout_secs: 2,
        version: crate::api::VERSION.to_string(),
        network: None,
        disk_limit: None,
    };
    let handle = runtime
        .start_build(
            spec,
            BuildSpec {
                mounts: dirs.mounts(),
            },
        )
        .await?;
    let spool = Runtime::output_path(&handle);
    let mut offset = 0;
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let wait = runtime.wait(&handle);
    tokio::pin!(wait);
    let exit = loop {
        tokio::select! {
            r = &mut wait => break r,
            _ = tokio::time::sleep(Duration::from_millis(40)) => {
                offset = drain(&spool, offset, &mut on_line);
                if !timed_out && Instant::now() >= deadline {
                    timed_out = true;
                    let _ = runtime.kill(&handle);
                }
            }
        }
    };
    drain(&spool, offset, &mut on_line);
    let _ = runtime.forget(&handle);
    let exit = exit?;
    Ok(StepExit {
        status: exit.status,
        timed_out,
        oom_killed: exit.oom_killed,
    })
}

/// Calls `f` for every complete line of the spool after `offset`; returns the new offset.
fn drain(spool: &Path, offset: u64, f: &mut impl FnMut(&OutputLine)) -> u64 {
    let Ok(mut file) = std::fs::File::open(spool) else {
        return offset;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut r = std::io::BufReader::new(file);
    let mut pos = offset;
    let mut buf = String::new();
    loop {
        buf.clear();
        match r.read_line(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if !buf.ends_with('\n') => break, // still being written
            Ok(n) => {
                pos += n as u64;
                if let Ok(mut l) = serde_json::from_str::<OutputLine>(&buf) {
                    if l.stream == DROPPED_STREAM {
                        l.stream = "err".into();
                        l.line = format!("({} lines of output dropped)", l.dropped);
                    }
                    f(&l);
                }
            }
        }
    }
    if pos != offset {
        // The shim's spool is bounded by what we have not read yet: tell it.
        if let Some(dir) = spool.parent() {
            let _ = std::fs::write(dir.join("daemon.offset"), pos.to_string());
        }
    }
    pos
}

/// Quotes `s` for bash (single quotes).
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::sh_quote("a b"), "'a b'");
        assert_eq!(super::sh_quote("it's"), r"'it'\''s'");
    }
}
