//! The stack layer of an exported image: a real Debian root filesystem (an image cannot bind the
//! host's `/usr` as a dyno does) that carries exactly the runtime versions `dyno stack` reports,
//! because slugs were built against them. Built once with `mmdebstrap` from Debian's mirror,
//! cached under `DYNO_STACK_CACHE` and reused by every export while the recipe stays the same.
//!
//! A runtime whose host package is Debian's (the same upstream version is in the mirror) is
//! installed from the mirror; one whose host package is not (node from NodeSource) has that
//! package's files copied in from the host (`dpkg -L`). Every runtime's version is then checked
//! inside the new root; a mismatch is refused with its name. The init's shared libraries are
//! installed and checked by running the init inside the root.

use super::oci::{Layer, LayerWriter};
use crate::build::stack as host_stack;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bumped when what a stack layer holds changes for the same packages.
const FORMAT: u32 = 1;
/// Always in the stack: the init runs the command with bash; apps make TLS calls.
const BASE: &[&str] = &["bash", "ca-certificates"];
/// Debian's mirrors for the stack (`DYNO_STACK_MIRROR` replaces the main one).
const MIRROR: &str = "http://deb.debian.org/debian";
const SECURITY: &str = "http://deb.debian.org/debian-security";

/// A built stack layer, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackLayer {
    pub layer: Layer,
    /// (runtime, version) checked inside the root.
    pub runtimes: Vec<(String, String)>,
    /// Bytes of the files in the layer, uncompressed.
    pub unpacked: u64,
    /// Whether this export built it (false: taken from the cache).
    #[serde(skip)]
    pub built: bool,
}

/// What a stack is made of; its hash names the cache entry.
#[derive(Debug, Clone, Serialize)]
struct Recipe {
    format: u32,
    suite: String,
    mirrors: Vec<String>,
    /// Debian packages installed from the mirror.
    include: Vec<String>,
    /// Host packages copied in, with their versions.
    copy: Vec<(String, String)>,
    /// Host trees copied in whole (a runtime living in `/usr/lib/<tree>/`, updated in place
    /// past its package: `npm install -g npm` rewrites `/usr/lib/node_modules`).
    trees: Vec<String>,
    /// (runtime, version, path) as `dyno stack` reports them.
    runtimes: Vec<(String, String, String)>,
}

/// `DYNO_STACK_CACHE`, else `<data dir>/stack-cache`.
pub fn cache_dir(home: &Path) -> PathBuf {
    match std::env::var_os("DYNO_STACK_CACHE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => home.join("stack-cache"),
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let o = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !o.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The package owning `path` on the host (`dpkg -S`; dpkg may know a file by its path before
/// the /usr merge, `/lib/…`, or through a link, so each spelling is tried).
fn owner(path: &Path) -> Result<String> {
    let real = std::fs::canonicalize(path)?;
    let mut tries = vec![path.to_path_buf(), real.clone()];
    for p in [path, real.as_path()] {
        if let Ok(rest) = p.strip_prefix("/usr") {
            tries.push(Path::new("/").join(rest));
        }
    }
    for p in &tries {
        if let Ok(out) = run(Command::new("dpkg").arg("-S").arg(p)) {
            let pkg = out
                .lines()
                .next()
                .unwrap_or("")
                .split(": ")
                .next()
                .unwrap_or("");
            let pkg = pkg.split(',').next().unwrap_or("").trim();
            return Ok(pkg.split(':').next().unwrap_or(pkg).to_string());
        }
    }
    bail!("{} belongs to no Debian package", real.display())
}

fn installed_version(pkg: &str) -> Result<String> {
    run(Command::new("dpkg-query").args(["-W", "-f", "${Version}", pkg]))
}

/// `1:3.11.2-6+deb12u6` → `3.11.2`, `18.20.4+dfsg-1~deb12u3` → `18.20.4`.
pub fn upstream(version: &str) -> String {
    let v = version.split_once(':').map(|x| x.1).unwrap_or(version);
    v.chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<String>()
        .trim_end_matches('.')
        .to_string()
}

/// The versions of `pkg` Debian's mirror offers (from `apt-cache policy`'s version table).
fn mirror_versions(pkg: &str, mirror: &str) -> Result<Vec<String>> {
    let out = run(Command::new("apt-cache").args(["policy", pkg]))?;
    let mut found = vec![];
    let mut current: Option<String> = None;
    for line in out.lines() {
        let t = line.trim_start_matches(" *** ").trim();
        let words: Vec<&str> = t.split_whitespace().collect();
        // A version line: "<version> <priority>"; its sources follow, indented deeper.
        if words.len() == 2 && words[1].parse::<i32>().is_ok() && !t.starts_with("Version") {
            current = Some(words[0].to_string());
        } else if words.len() >= 2 && words[0].parse::<i32>().is_ok() {
            let from_mirror = words[1].starts_with(mirror) || words[1].starts_with(SECURITY);
            if let (true, Some(v)) = (from_mirror, &current) {
                found.push(v.clone());
            }
        }
    }
    Ok(found)
}

fn codename() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VERSION_CODENAME=").map(|v| v.to_string()))
        })
        .unwrap_or_else(|| "bookworm".into())
}

/// The shared libraries `exe` loads, resolved (`ldd`).
fn shared_libs(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = run(Command::new("ldd").arg(exe))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let p = l.split("=>").nth(1).unwrap_or(l).trim();
            let p = p.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect())
}

/// Decides where each runtime comes from.
fn recipe(init: &Path) -> Result<Recipe> {
    let mirror = std::env::var("DYNO_STACK_MIRROR").unwrap_or_else(|_| MIRROR.into());
    let mut include: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
    let mut copy: Vec<(String, String)> = vec![];
    let mut trees: Vec<String> = vec![];
    let mut runtimes = vec![];
    for rt in host_stack::probe() {
        let (Some(version), Some(path)) = (rt.version.clone(), rt.path.clone()) else {
            continue; // not on the host: not in `dyno stack`'s list either
        };
        runtimes.push((rt.name.clone(), version.clone(), path.clone()));
        let pkg = owner(Path::new(&path))?;
        let installed = installed_version(&pkg)?;
        let offered = mirror_versions(&pkg, &mirror)?;
        if offered.iter().any(|v| upstream(v) == upstream(&installed)) {
            include.extend(rt.package.split_whitespace().map(String::from));
        } else {
            // Not Debian's (NodeSource's node): the host's own files, and what they depend on.
            if !copy.iter().any(|(p, _)| *p == pkg) {
                copy.push((pkg.clone(), installed));
                for dep in depends(&pkg)? {
                    include.push(dep);
                }
            }
            if let Some(t) = own_tree(Path::new(&path)) {
                if !trees.contains(&t) {
                    trees.push(t);
                }
            }
        }
    }
    for lib in shared_libs(init)? {
        include.push(owner(&lib)?);
    }
    include.sort();
    include.dedup();
    let suite = codename();
    Ok(Recipe {
        format: FORMAT,
        mirrors: vec![
            format!("deb {mirror} {suite} main"),
            format!("deb {mirror} {suite}-updates main"),
            format!("deb {SECURITY} {suite}-security main"),
        ],
        suite,
        include,
        copy,
        trees,
        runtimes,
    })
}

/// `/usr/lib/<tree>` when the runtime at `path` resolves into one (npm → `/usr/lib/node_modules`).
fn own_tree(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).ok()?;
    let rest = real.strip_prefix("/usr/lib").ok()?;
    let first = rest.components().next()?;
    (rest.components().count() > 1)
        .then(|| format!("/usr/lib/{}", first.as_os_str().to_string_lossy()))
}

/// The installed packages `pkg` depends on (first alternatives that are installed here).
fn depends(pkg: &str) -> Result<Vec<String>> {
    let out = run(Command::new("dpkg-query").args(["-W", "-f", "${Depends}", pkg]))?;
    Ok(out
        .split(',')
        .filter_map(|d| {
            let name = d.split('|').next()?.split_whitespace().next()?;
            let name = name.split(':').next()?.to_string();
            installed_version(&name).ok().filter(|v| !v.is_empty())?;
            Some(name)
        })
        .collect())
}

/// The cached stack layer for this host, built first when there is none. `say` gets progress.
pub fn ensure(cache: &Path, init: &Path, say: &mut dyn FnMut(&str)) -> Result<StackLayer> {
    let recipe = recipe(init)?;
    let key = super::oci::sha256_hex(&serde_json::to_vec(&recipe)?);
    // 0700 when we make it: the default lives in DYNO_HOME, where nothing grants others anything.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache)
        .with_context(|| format!("mkdir {}", cache.display()))?;
    let dir = cache.join(&key[..16]);
    // One build per cache at a time: concurrent exports (tests) wait and then reuse it.
    let lock = std::fs::File::create(cache.join(".lock"))?;
    // SAFETY: flock on a file we own; released when `lock` is dropped.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}", cache.display());
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("stack.json")) {
        if let Ok(s) = serde_json::from_str::<StackLayer>(&text) {
            if s.layer.blob.path.is_file() {
                return Ok(s);
            }
        }
    }
    say(&format!(
        "Building the stack layer (once, cached in {}): Debian {} with {}{}",
        cache.display(),
        recipe.suite,
        recipe.include.join(" "),
        if recipe.copy.is_empty() {
            String::new()
        } else {
            format!(
                "; from this host: {}",
                recipe
                    .copy
                    .iter()
                    .map(|(p, v)| format!("{p} {v}"))
                    .chain(recipe.trees.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    // What an interrupted build left (we hold the lock: no build is running), and the layers of
    // older recipes (the host's runtimes changed): hundreds of MB each.
    for e in std::fs::read_dir(cache)?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        // Only names of ours: DYNO_STACK_CACHE may point into a directory holding other things.
        let ours = (n.len() == 16 && n.chars().all(|c| c.is_ascii_hexdigit()))
            || n.strip_prefix("build-")
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if ours && e.path().is_dir() && n != key[..16] {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let work = cache.join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = build(&recipe, init, &work, &dir);
    let _ = std::fs::remove_dir_all(&work);
    let mut s = result?;
    s.built = true;
    Ok(s)
}

/// The runtime's version as found in the new root against what `dyno stack` reports.
fn check_version(name: &str, path: &str, want: &str, answer: Result<String>) -> Result<String> {
    match answer.as_ref().ok().and_then(|t| host_stack::version_in(t)) {
        Some(v) if v == want => Ok(v),
        Some(v) => bail!(
            "the stack layer would carry {name} {v} but `dyno stack` reports {name} {want}: \
             the host's {name} is not the one Debian's mirror has"
        ),
        None => bail!(
            "the stack layer has no working {name} ({path}: {}) but `dyno stack` reports \
             {name} {want}",
            answer.err().map(|e| e.to_string()).unwrap_or_default()
        ),
    }
}

fn build(recipe: &Recipe, init: &Path, work: &Path, dir: &Path) -> Result<StackLayer> {
    let root = work.join("root");
    let mut mm = Command::new("mmdebstrap");
    mm.args(["--variant=minbase", "--quiet"])
        .arg(format!("--include={}", recipe.include.join(",")))
        .arg(&recipe.suite)
        .arg(&root)
        .args(&recipe.mirrors);
    match mm.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("mmdebstrap is not installed: apt-get install mmdebstrap (scripts/deps.sh does)")
        }
        Err(e) => return Err(e.into()),
        Ok(o) if !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(15).collect();
            bail!(
                "mmdebstrap could not build the stack:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(_) => {}
    }
    for (pkg, _) in &recipe.copy {
        copy_package(pkg, &root)?;
    }
    for t in &recipe.trees {
        let dst = root.join(t.trim_start_matches('/'));
        let _ = std::fs::remove_dir_all(&dst);
        copy_tree(Path::new(t), &dst)?;
    }
    // The dyno user, as in every dyno (`runtime::stack`), and the app's and init's places.
    let (uid, gid) = (crate::runtime::DYNO_UID, crate::runtime::DYNO_GID);
    append(
        &root.join("etc/passwd"),
        &format!("dyno:x:{uid}:{gid}:dyno:/app:/bin/bash\n"),
    )?;
    append(&root.join("etc/group"), &format!("dyno:x:{gid}:\n"))?;
    std::fs::create_dir_all(root.join(".dyno"))?;
    std::fs::create_dir_all(root.join("app"))?;
    // Build-time leftovers of this host that must not be in an image.
    std::fs::write(root.join("etc/hostname"), "localhost\n")?;
    std::fs::write(root.join("etc/resolv.conf"), "")?;

    let mut runtimes = vec![];
    for (name, want, path) in &recipe.runtimes {
        let answer = chroot_output(&root, &[path, host_stack::version_flag(name)]);
        runtimes.push((name.clone(), check_version(name, path, want, answer)?));
    }
    // The init must start in this root: its shared libraries are there.
    let check = root.join(".dyno/init");
    std::fs::copy(init, &check)?;
    let ok = chroot_output(&root, &["/.dyno/init", "--version"]);
    std::fs::remove_file(&check)?;
    ok.context("dyno's init does not start inside the stack layer (a shared library missing?)")?;

    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("stack.tar.gz.part");
    let mut w = LayerWriter::create(&tmp)?;
    let unpacked = append_tree(w.tar(), &root, Path::new(""))?;
    let mut layer = w.finish(&format!(
        "dyno export: stack {} (Debian {}; {})",
        crate::build::STACK,
        recipe.suite,
        runtimes
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let final_path = dir.join("stack.tar.gz");
    std::fs::rename(&tmp, &final_path)?;
    layer.blob.path = final_path;
    let s = StackLayer {
        layer,
        runtimes,
        unpacked,
        built: false,
    };
    let json = dir.join("stack.json.part");
    std::fs::write(&json, serde_json::to_vec_pretty(&s)?)?;
    std::fs::rename(&json, dir.join("stack.json"))?;
    Ok(s)
}

fn append(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

fn chroot_output(root: &Path, argv: &[&str]) -> Result<String> {
    // By its path: the child's PATH (the stack's) has no sbin.
    let o = Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(argv)
        .env_clear()
        .env("PATH", host_stack::PATH)
        .env("HOME", "/")
        .output()?;
    if !o.status.success() {
        bail!(
            "{} failed in the stack: {}",
            argv.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ))
}

/// Copies the files of the host's package `pkg` into `root` (`dpkg -L`), keeping modes and
/// links; directories it shares with other packages are only created.
fn copy_package(pkg: &str, root: &Path) -> Result<()> {
    let list = run(Command::new("dpkg").args(["-L", pkg]))?;
    for line in list.lines() {
        let src = Path::new(line.trim());
        if !src.is_absolute() || src == Path::new("/.") {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(src) else {
            continue; // listed but removed on this host (docs excluded by dpkg filters)
        };
        let dst = root.join(src.strip_prefix("/")?);
        // Through the root's own links (merged /usr: /lib → usr/lib).
        let dst = resolve_in(root, &dst);
        if meta.is_dir() {
            std::fs::create_dir_all(&dst)?;
            continue;
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&dst);
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, &dst)?;
        } else if meta.is_file() {
            std::fs::copy(src, &dst).with_context(|| format!("copy {}", src.display()))?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Copies a host directory as it is (modes, links; owners are root's in both).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let m = std::fs::symlink_metadata(&from)?;
        if m.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if m.is_dir() {
            copy_tree(&from, &to)?;
        } else if m.is_file() {
            std::fs::copy(&from, &to).with_context(|| format!("copy {}", from.display()))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// `dst` with its parent directories resolved through symlinks inside `root` (never outside).
fn resolve_in(root: &Path, dst: &Path) -> PathBuf {
    let rel = dst.strip_prefix(root).unwrap_or(dst);
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let next = cur.join(c);
        if i + 1 < comps.len() {
            if let Ok(t) = std::fs::read_link(&next) {
                cur = if t.is_absolute() {
                    root.join(t.strip_prefix("/").unwrap_or(&t))
                } else {
                    cur.join(t)
                };
                continue;
            }
        }
        cur = next;
    }
    cur
}

/// Appends `dir` (a root filesystem) under `name`, sorted so the same tree gives the same layer;
/// `/dev`, `/proc` and `/sys` stay empty (the engine mounts them). Returns the files' bytes.
fn append_tree<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
) -> Result<u64> {
    let mut total = 0;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = name.join(e.file_name());
        let meta = std::fs::symlink_metadata(&path)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_mode(meta.mode() & 0o7777);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, &rel, std::io::empty())?;
            let top = name.as_os_str().is_empty();
            if !(top && ["dev", "proc", "sys"].contains(&&*e.file_name().to_string_lossy())) {
                total += append_tree(tar, &path, &rel)?;
            }
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, &rel, std::fs::read_link(&path)?)?;
        } else if ft.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            tar.append_data(&mut h, &rel, std::fs::File::open(&path)?)?;
            total += meta.len();
        }
        // Device nodes, sockets, fifos: none belong in an image's layer.
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_mismatch_is_refused_naming_the_runtime() {
        let ok = check_version("node", "/usr/bin/node", "20.20.2", Ok("v20.20.2\n".into()));
        assert_eq!(ok.unwrap(), "20.20.2");
        let e = check_version("node", "/usr/bin/node", "20.20.2", Ok("v18.20.4\n".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node 18.20.4") && e.contains("reports node 20.20.2"),
            "{e}"
        );
        let e = check_version(
            "npm",
            "/usr/bin/npm",
            "11.19.1",
            Err(anyhow::anyhow!("boom")),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no working npm") && e.contains("boom"), "{e}");
    }

    #[test]
    fn upstream_versions_drop_epoch_revision_and_repacks() {
        assert_eq!(upstream("3.11.2-6+deb12u6"), "3.11.2");
        assert_eq!(upstream("18.20.4+dfsg-1~deb12u3"), "18.20.4");
        assert_eq!(upstream("20.20.2-1nodesource1+repack1"), "20.20.2");
        assert_eq!(upstream("2:1.19~1"), "1.19");
        assert_eq!(upstream("3.1.7+really3.1.2-0+deb12u1"), "3.1.7");
    }
}
