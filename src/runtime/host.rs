//! Host-side helpers shared by the daemon and the shim: cgroup hierarchies, mounts, processes,
//! and the clean-up of a dyno's leftovers. Everything here is synchronous, thread-free and safe to
//! call from the single-threaded shim.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One mounted cgroup hierarchy: a v1 controller (`/sys/fs/cgroup/memory`) or the v2 unified root.
#[derive(Debug, Clone)]
pub(crate) struct CgroupRoot {
    pub path: PathBuf,
    /// Mount options (for v1 they name the controllers, e.g. `rw,relatime,memory`).
    pub options: String,
    pub v2: bool,
}

impl CgroupRoot {
    pub fn has_controller(&self, ctrl: &str) -> bool {
        !self.v2 && self.options.split(',').any(|o| o == ctrl)
    }
}

/// Decodes the octal escapes (`\040` …) of /proc/self/mounts fields.
fn unescape_mount_field(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// (mount point, fs type, options) of every mount of this mount namespace.
pub(crate) fn mounts() -> Vec<(PathBuf, String, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let _src = f.next()?;
            let mp = f.next()?;
            let typ = f.next()?;
            let opts = f.next()?;
            Some((unescape_mount_field(mp), typ.to_string(), opts.to_string()))
        })
        .collect()
}

/// Every mounted cgroup hierarchy of the host (deduplicated by mount point).
pub(crate) fn cgroup_roots() -> Vec<CgroupRoot> {
    let mut roots: Vec<CgroupRoot> = Vec::new();
    for (mp, typ, opts) in mounts() {
        let v2 = match typ.as_str() {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        if roots.iter().any(|r| r.path == mp) {
            continue;
        }
        roots.push(CgroupRoot {
            path: mp,
            options: opts,
            v2,
        });
    }
    roots
}

/// `<root>/<rel>` for every hierarchy where that directory exists.
pub(crate) fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    cgroup_roots()
        .into_iter()
        .map(|r| r.path.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

fn read_pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Pids of every process in the cgroup `rel` (any hierarchy, recursively).
pub(crate) fn cgroup_pids(rel: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for dir in cgroup_dirs(rel) {
        collect_pids(&dir, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) {
    pids.extend(read_pids(&dir.join("cgroup.procs")));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

/// SIGKILLs every process of the cgroup `rel` until it is empty (or `timeout` passes).
pub(crate) fn kill_cgroup(rel: &str, timeout: Duration) {
    // A frozen task never acts on SIGKILL: thaw first (libcontainer freezes a cgroup while it
    // kills it, and a shim that died then left its container frozen for good).
    for dir in cgroup_dirs(rel) {
        let v1 = dir.join("freezer.state");
        if v1.exists() {
            let _ = std::fs::write(&v1, "THAWED");
        }
        let v2 = dir.join("cgroup.freeze");
        if v2.exists() {
            let _ = std::fs::write(&v2, "0");
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let pids = cgroup_pids(rel);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if Instant::now() >= deadline {
            tracing::warn!(rel, "processes remain in cgroup after SIGKILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes the cgroup dir `rel` (and its sub-cgroups) in every hierarchy; kills what is still in
/// it first. Returns false when some directory could not be removed.
pub(crate) fn remove_cgroup(rel: &str) -> bool {
    if cgroup_dirs(rel).is_empty() {
        return true;
    }
    kill_cgroup(rel, Duration::from_secs(2));
    let mut ok = true;
    for dir in cgroup_dirs(rel) {
        ok &= rmdir_tree(&dir);
    }
    ok
}

/// rmdir of a cgroup dir, deepest first, retrying while the kernel still holds it (EBUSY).
fn rmdir_tree(dir: &Path) -> bool {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    for attempt in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(e) => {
                if attempt == 199 {
                    tracing::warn!(?dir, %e, "cannot remove cgroup dir");
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    false
}

/// Mount points at or below `prefix`, deepest first.
pub(crate) fn mounts_under(prefix: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|(mp, _, _)| mp)
        .filter(|mp| mp.starts_with(prefix))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    v
}

/// Unmounts `path` (every mount stacked on it), lazily when it is busy.
pub(crate) fn unmount_all(path: &Path) {
    use nix::mount::{umount2, MntFlags};
    for _ in 0..16 {
        match umount2(path, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EBUSY) => {
                let _ = umount2(path, MntFlags::MNT_DETACH);
            }
            Err(_) => return, // EINVAL: not a mount point (any more); ENOENT: gone.
        }
    }
}

/// The argv of process `pid`, or None when it is gone (or a zombie).
pub(crate) fn cmdline(pid: i32) -> Option<Vec<Vec<u8>>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| a.to_vec())
            .collect(),
    )
}

/// True when `pid` is alive and is `<exe> shim <state_dir>`.
pub(crate) fn is_shim_of(pid: i32, state_dir: &Path) -> bool {
    if pid <= 0 {
        return false;
    }
    let Some(args) = cmdline(pid) else {
        return false;
    };
    let dir = state_dir.as_os_str().as_bytes();
    args.windows(2)
        .any(|w| w[0].as_slice() == b"shim" && w[1].as_slice() == dir)
}

/// Pids of live shims serving `state_dir` (found by scanning /proc).
pub(crate) fn find_shims(state_dir: &Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| is_shim_of(*pid, state_dir))
        .collect()
}

/// True when host process `pid` is in the dyno cgroup `rel` (`/dyno/<instance>/<id>`).
pub(crate) fn pid_in_cgroup(pid: i32, rel: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    text.lines().any(|l| {
        l.splitn(3, ':')
            .nth(2)
            .is_some_and(|p| p == rel || p.starts_with(&format!("{rel}/")))
    })
}

/// Writes `data` to `path` atomically (temp file + rename).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Tears down what is left of one dyno whose shim is gone (or must go): its shim(s), every process
/// of its cgroup, mounts below its state dir, libcontainer's state, its cgroup dirs, and the
/// per-dyno scratch dirs. With `remove_state_dir` the state dir itself goes too.
pub(crate) fn clean_dyno(
    paths: &crate::paths::Paths,
    state_dir: &Path,
    id: &str,
    remove_state_dir: bool,
) {
    let me = std::process::id() as i32;
    let network = super::net::of_state_dir(state_dir);
    for pid in find_shims(state_dir).into_iter().filter(|p| *p != me) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let rel = format!("{}/{}", paths.cgroup_parent(), id);
    kill_cgroup(&rel, Duration::from_secs(2));
    // The overlay root first: it holds the dyno's disk busy.
    unmount_all(&state_dir.join("rootfs"));
    for mp in mounts_under(state_dir) {
        unmount_all(&mp);
    }
    if !id.is_empty() && !id.contains('/') {
        let _ = std::fs::remove_dir_all(paths.containers().join(id));
    }
    remove_cgroup(&rel);
    if let Some(n) = &network {
        super::net::unwire_unowned(n);
    }
    if remove_state_dir {
        let _ = std::fs::remove_dir_all(state_dir);
    } else {
        for d in ["rootfs", "upper", "work", "bundle", super::disk::DIR] {
            let _ = std::fs::remove_dir_all(state_dir.join(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape() {
        assert_eq!(unescape_mount_field("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mount_field("/plain"), PathBuf::from("/plain"));
        assert_eq!(unescape_mount_field("/x\\"), PathBuf::from("/x\\"));
    }
}
