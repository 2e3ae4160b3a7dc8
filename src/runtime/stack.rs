//! The stack skeleton: the lowest overlay layer of every dyno. A few empty directories, symlinks
//! into `/usr` (bound read-only from the host at start), our own `/etc/passwd` and `/etc/group`,
//! and empty mount points for the host `/etc` files every dyno gets read-only.

use super::{DYNO_GID, DYNO_UID};
use anyhow::{Context, Result};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// Host `/etc` files bind-mounted read-only into each dyno (when they exist on the host).
pub(crate) const ETC_FILES: &[&str] = &[
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "ld.so.cache",
    "localtime",
    "protocols",
    "services",
];
/// Host `/etc` directories bind-mounted read-only into each dyno (when they exist on the host).
pub(crate) const ETC_DIRS: &[&str] = &["ssl", "ca-certificates", "alternatives"];

/// Top-level directories that are symlinks into `/usr` on a merged-/usr host (Debian 12). When
/// the host has a real directory instead, the stack gets an empty dir and the shim binds the
/// host's one read-only.
pub(crate) const USR_LINKS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

fn passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
         dyno:x:{DYNO_UID}:{DYNO_GID}:dyno:/app:/bin/bash\n"
    )
}

fn group() -> String {
    format!("root:x:0:\ntty:x:5:\nnogroup:x:65534:\ndyno:x:{DYNO_GID}:\n")
}

fn dir(path: &Path, mode: u32) -> Result<()> {
    if path.is_symlink() || (path.exists() && !path.is_dir()) {
        std::fs::remove_file(path)?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("mkdir {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn link(path: &Path, target: &str) -> Result<()> {
    if let Ok(cur) = std::fs::read_link(path) {
        if cur == Path::new(target) {
            return Ok(());
        }
    }
    if path.is_symlink() || path.is_file() {
        std::fs::remove_file(path)?;
    } else if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    }
    symlink(target, path).with_context(|| format!("symlink {}", path.display()))
}

/// An empty file (mount point); replaces whatever else is there.
fn file_mountpoint(path: &Path) -> Result<()> {
    if path.is_symlink() || path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
        let _ = std::fs::remove_file(path);
    }
    if !path.exists() {
        std::fs::write(path, b"")?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

fn content(path: &Path, data: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(data) || path.is_symlink() {
        let _ = std::fs::remove_file(path);
        super::host::write_atomic(path, data.as_bytes())?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// (Re)writes the skeleton at `stack`, idempotently.
pub(crate) fn write_stack(stack: &Path) -> Result<()> {
    // The stack's own directory is root's alone: it is only ever read as an overlay layer,
    // through the (root) mounter's credentials; what is inside keeps the modes a system has.
    dir(stack, 0o700)?;
    for d in [
        "usr", "etc", "proc", "sys", "dev", "run", "var", "app", ".dyno",
    ] {
        dir(&stack.join(d), 0o755)?;
    }
    dir(&stack.join("tmp"), 0o1777)?;
    dir(&stack.join("var/tmp"), 0o1777)?;
    dir(&stack.join("root"), 0o700)?;
    for name in USR_LINKS {
        let host = Path::new("/").join(name);
        let p = stack.join(name);
        if let Ok(target) = std::fs::read_link(&host) {
            link(&p, &target.to_string_lossy())?;
        } else if host.is_dir() {
            dir(&p, 0o755)?;
        } else if p.is_symlink() {
            std::fs::remove_file(&p)?;
        }
    }
    let etc = stack.join("etc");
    content(&etc.join("passwd"), &passwd())?;
    content(&etc.join("group"), &group())?;
    link(&etc.join("os-release"), "../usr/lib/os-release")?;
    link(&etc.join("mtab"), "../proc/self/mounts")?;
    for f in ETC_FILES {
        if Path::new("/etc").join(f).exists() {
            file_mountpoint(&etc.join(f))?;
        }
    }
    for d in ETC_DIRS {
        if Path::new("/etc").join(d).is_dir() {
            dir(&etc.join(d), 0o755)?;
        }
    }
    file_mountpoint(&stack.join(".dyno/init"))?;
    std::fs::set_permissions(
        stack.join(".dyno/init"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    Ok(())
}
