//! Where everything of one dyno installation lives on disk, derived from `DYNO_HOME`.
//!
//! Everything a daemon creates on the host (container ids, cgroup paths, mount points, state
//! dirs) is namespaced by [`Paths::instance`], a short hash of the canonical `DYNO_HOME`, so two
//! daemons with different homes never touch each other's dynos.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    /// 8 hex chars identifying this `DYNO_HOME` on the host.
    pub instance: String,
}

impl Paths {
    /// `DYNO_HOME` if set, else the platform data dir (`~/.local/share/dyno` on Linux).
    pub fn from_env() -> Result<Self> {
        let home = match std::env::var_os("DYNO_HOME") {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => directories::ProjectDirs::from("", "", "dyno")
                .context("cannot determine a data directory; set DYNO_HOME")?
                .data_dir()
                .to_path_buf(),
        };
        Self::new(&home)
    }

    /// Creates `home` (0700: private to its owner; the daemon tightens an existing one) if needed.
    pub fn new(home: &Path) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(parent) = home.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create DYNO_HOME {}", home.display()))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(home) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e)
                    .with_context(|| format!("cannot create DYNO_HOME {}", home.display()))
            }
            _ => {}
        }
        let home = home.canonicalize()?;
        let digest = Sha256::digest(home.as_os_str().as_encoded_bytes());
        let instance = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Paths { home, instance })
    }

    pub fn db(&self) -> PathBuf {
        self.home.join("dyno.db")
    }
    pub fn socket(&self) -> PathBuf {
        self.home.join("daemon.sock")
    }
    pub fn daemon_lock(&self) -> PathBuf {
        self.home.join("daemon.lock")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.home.join("daemon.log")
    }
    /// Compressed slugs (`<sha256>.tgz`) and their unpacked, read-only trees (`<sha256>/app`).
    pub fn slugs(&self) -> PathBuf {
        self.home.join("slugs")
    }
    /// Per-app buildpack caches (`CACHE_DIR`).
    pub fn cache(&self) -> PathBuf {
        self.home.join("cache")
    }
    /// Buildpacks fetched from the network, per URL and ref (a fallback when a fetch fails).
    pub fn buildpack_cache(&self) -> PathBuf {
        self.home.join("buildpack-cache")
    }
    /// Scratch space of running builds.
    pub fn builds(&self) -> PathBuf {
        self.home.join("builds")
    }
    /// The stack skeleton: the lowest overlay layer of every dyno.
    pub fn stack(&self) -> PathBuf {
        self.home.join("stack")
    }
    /// One state dir per dyno, owned by its shim.
    pub fn dynos(&self) -> PathBuf {
        self.home.join("run").join("dynos")
    }
    /// One state dir per build container (never adopted: builds end with their daemon).
    pub fn build_containers(&self) -> PathBuf {
        self.home.join("run").join("builds")
    }
    /// Formatted spare disk images for the dynos' writable layers (`runtime::disk`).
    pub fn disks(&self) -> PathBuf {
        self.home.join("run").join("disks")
    }
    /// The apps' bare git repositories (`<app>.git`), the targets of `git push dyno main`.
    pub fn repos(&self) -> PathBuf {
        self.home.join("repos")
    }
    /// The add-on servers' data, sockets and logs (`crate::addons`).
    pub fn addons(&self) -> PathBuf {
        self.home.join("addons")
    }
    /// Where the add-on servers see [`Paths::addons`]: a bind mount in their own mount
    /// namespace, so the unprivileged server user needs no way through `DYNO_HOME`'s parents.
    pub fn addons_mount(&self) -> PathBuf {
        PathBuf::from("/run/dyno-addons").join(&self.instance)
    }
    /// libcontainer's state root (`with_root_path`).
    pub fn containers(&self) -> PathBuf {
        self.home.join("run").join("containers")
    }
    /// Relative cgroup path of all of this instance's dynos (under each v1 controller or v2 root).
    pub fn cgroup_parent(&self) -> String {
        format!("/dyno/{}", self.instance)
    }
}
