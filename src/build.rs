//! The slug compiler: source tree → classic buildpacks → slug (a gzip tarball stored by its
//! content hash, unpacked once into a read-only tree every dyno of the release shares).
//!
//! Buildpacks run as the dyno user (never root) in a workspace outside `DYNO_HOME` (which may sit
//! under root's 0700 home): `$TMPDIR/dyno-<instance>/`. A failed build changes nothing: the slug
//! and release are only recorded by the caller after everything here succeeded.

use crate::paths::Paths;
use crate::procfile::Procfile;
use crate::runtime::{DYNO_GID, DYNO_UID};
use crate::store::{new_id, SlugRow};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Notify;

/// The stack dynos run on: the host's `/usr` (see the runtime's stack skeleton).
pub const STACK: &str = "dyno-host";
/// Heroku times compile out after 15 minutes.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A build's output as it happens, for `dyno up` to stream and `builds:output` to replay.
#[derive(Default)]
pub struct BuildOutput {
    lines: Mutex<Vec<String>>,
    done: AtomicBool,
    notify: Notify,
}

impl BuildOutput {
    pub fn line(&self, s: impl Into<String>) {
        self.lines.lock().unwrap().push(s.into());
        self.notify.notify_waiters();
    }

    /// A heading: `-----> Compressing...`.
    pub fn heading(&self, s: &str) {
        self.line(format!("-----> {s}"));
    }

    /// A buildpack's line in Heroku's look: headings as they are, the rest indented.
    fn buildpack_line(&self, s: &str) {
        if s.starts_with("-----> ") || s.starts_with("       ") || s.is_empty() {
            self.line(s);
        } else {
            self.line(format!("       {s}"));
        }
    }

    pub fn finish(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.lock().unwrap().join("\n");
        s.push('\n');
        s
    }

    /// Lines from index `from` on; waits for new ones; `None` once finished and drained.
    pub async fn next(&self, from: usize) -> Option<Vec<String>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let lines = self.lines.lock().unwrap();
                if lines.len() > from {
                    return Some(lines[from..].to_vec());
                }
                if self.done.load(Ordering::SeqCst) {
                    return None;
                }
            }
            notified.await;
        }
    }
}

pub struct Builder {
    pub paths: Paths,
    /// Where the shipped buildpacks live (one dir per buildpack).
    pub buildpacks_dir: PathBuf,
}

pub struct Built {
    pub slug: SlugRow,
}

/// Finds the shipped buildpacks: `DYNO_BUILDPACKS`, else `<prefix>/share/dyno/buildpacks` next
/// to an installed binary, else the source tree's `buildpacks/` (a cargo build).
pub fn find_buildpacks() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DYNO_BUILDPACKS") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut candidates = vec![];
    if let Some(bin) = exe.parent() {
        candidates.push(bin.join("../share/dyno/buildpacks"));
        candidates.push(bin.join("../../buildpacks"));
        candidates.push(bin.join("../../../buildpacks"));
    }
    candidates
        .into_iter()
        .find(|p| p.join("procfile/bin/detect").exists())
        .map(|p| p.canonicalize().unwrap_or(p))
        .ok_or_else(|| {
            anyhow!(
                "cannot find dyno's buildpacks: reinstall with ./install.sh or set DYNO_BUILDPACKS"
            )
        })
}

impl Builder {
    fn workspace(&self) -> PathBuf {
        std::env::temp_dir().join(format!("dyno-{}", self.paths.instance))
    }

    pub fn cache_dir(&self, app_id: &str) -> PathBuf {
        self.workspace().join("cache").join(app_id)
    }

    /// Runs the whole build. `config` is the app's config vars (ENV_DIR).
    pub async fn build(
        &self,
        build_id: &str,
        app_id: &str,
        source_dir: &Path,
        config: &[(String, String)],
        out: &BuildOutput,
    ) -> Result<Built> {
        let ws = self.workspace().join("builds").join(build_id);
        let result = self.build_in(&ws, app_id, source_dir, config, out).await;
        let _ = tokio::fs::remove_dir_all(&ws).await;
        result
    }

    async fn build_in(
        &self,
        ws: &Path,
        app_id: &str,
        source_dir: &Path,
        config: &[(String, String)],
        out: &BuildOutput,
    ) -> Result<Built> {
        let app_dir = ws.join("app");
        let env_dir = ws.join("env");
        let home_dir = ws.join("home");
        let cache_dir = self.cache_dir(app_id);
        for d in [&app_dir, &env_dir, &home_dir, &cache_dir] {
            std::fs::create_dir_all(d)?;
        }
        // The dyno user must be able to reach its workspace.
        set_mode(&self.workspace(), 0o755)?;
        set_mode(&self.workspace().join("builds"), 0o755)?;
        set_mode(&self.workspace().join("cache"), 0o755)?;
        set_mode(ws, 0o755)?;

        let src = source_dir.to_path_buf();
        let dst = app_dir.clone();
        let source_version = tokio::task::spawn_blocking(move || copy_source(&src, &dst)).await??;
        for (k, v) in config {
            std::fs::write(env_dir.join(k), v)?;
        }

        // Detect: the first shipped buildpack whose bin/detect exits 0 wins.
        let mut names: Vec<String> = std::fs::read_dir(&self.buildpacks_dir)
            .with_context(|| format!("reading {}", self.buildpacks_dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("bin/detect").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        // The procfile buildpack accepts anything with a Procfile: language ones go first.
        names.sort_by_key(|n| (n == "procfile", n.clone()));
        let bp_root = ws.join("buildpacks");
        std::fs::create_dir_all(&bp_root)?;
        let mut chosen = None;
        for name in &names {
            // A writable copy the dyno user can read (the original may sit under /root).
            let bp = bp_root.join(name);
            copy_dir(&self.buildpacks_dir.join(name), &bp)?;
            let o = self
                .command(&bp.join("bin/detect"), &home_dir, source_version.as_deref())
                .arg(&app_dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .output()
                .await?;
            if o.status.success() {
                let shown = String::from_utf8_lossy(&o.stdout).trim().to_string();
                chosen = Some((
                    name.clone(),
                    bp,
                    if shown.is_empty() {
                        name.clone()
                    } else {
                        shown
                    },
                ));
                break;
            }
        }
        let Some((bp_name, bp, detected)) = chosen else {
            bail!(
                "no buildpack detected this app. Shipped buildpacks: procfile (needs a Procfile, e.g. `web: python3 -m http.server $PORT`)"
            );
        };
        out.heading(&format!("{detected} app detected"));

        chown_tree(&app_dir)?;
        chown_tree(&env_dir)?;
        chown_tree(&home_dir)?;
        chown_tree(&cache_dir)?;
        chown_tree(&bp)?;

        let mut cmd = self.command(
            &bp.join("bin/compile"),
            &home_dir,
            source_version.as_deref(),
        );
        cmd.arg(&app_dir).arg(&cache_dir).arg(&env_dir);
        let status = run_streamed(cmd, out, COMPILE_TIMEOUT).await?;
        if !status.success() {
            bail!(
                "the {bp_name} buildpack's compile failed (exit {}): see the output above",
                status.code().unwrap_or(-1)
            );
        }

        // bin/release is optional; its YAML is read by the full buildpack support. Run it so a
        // broken one fails the build here rather than later.
        let release = bp.join("bin/release");
        if release.exists() {
            let o = self
                .command(&release, &home_dir, source_version.as_deref())
                .arg(&app_dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .await?;
            if !o.status.success() {
                bail!(
                    "the {bp_name} buildpack's bin/release failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
            }
        }

        let procfile = match std::fs::read_to_string(app_dir.join("Procfile")) {
            Ok(t) => Procfile::parse(&t)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no Procfile: declare the app's processes, e.g. `web: python3 -m http.server $PORT`")
            }
            Err(e) => return Err(e.into()),
        };
        if procfile.types.is_empty() {
            bail!("the Procfile declares no process types");
        }
        let process_types: Vec<(String, String)> = procfile
            .types
            .into_iter()
            .map(|t| (t.name, t.command))
            .collect();
        out.heading(&format!(
            "Discovered process types\n       Procfile declares types -> {}",
            process_types
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));

        let slugs = self.paths.slugs();
        let app_dir2 = app_dir.clone();
        let (checksum, size) =
            tokio::task::spawn_blocking(move || pack_slug(&app_dir2, &slugs)).await??;
        out.heading(&format!("Compressing... done, {}", human_size(size)));
        if size > 500 * 1024 * 1024 {
            bail!(
                "the compiled slug is {} (the limit is 500M)",
                human_size(size)
            );
        }
        if size > 300 * 1024 * 1024 {
            out.line("       Warning: your slug size exceeds the 300M soft limit");
        }
        Ok(Built {
            slug: SlugRow {
                id: new_id(),
                checksum: format!("SHA256:{checksum}"),
                size,
                process_types,
                source_version,
                buildpack: Some(bp_name),
            },
        })
    }

    /// A buildpack command: run as the dyno user, in its own process group, clean env.
    fn command(
        &self,
        prog: &Path,
        home: &Path,
        source_version: Option<&str>,
    ) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(prog);
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .env("STACK", STACK)
            .env("SOURCE_VERSION", source_version.unwrap_or(""))
            .uid(DYNO_UID)
            .gid(DYNO_GID)
            .process_group(0)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

/// Runs `cmd` with stdout and stderr streamed into `out` line by line, bounded by `timeout`
/// (after which its whole process group is killed).
async fn run_streamed(
    mut cmd: tokio::process::Command,
    out: &BuildOutput,
    timeout: Duration,
) -> Result<std::process::ExitStatus> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| p as i32);
    let mut so = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut se = BufReader::new(child.stderr.take().unwrap()).lines();
    let pump = async {
        let (mut o_done, mut e_done) = (false, false);
        while !(o_done && e_done) {
            tokio::select! {
                l = so.next_line(), if !o_done => match l? { Some(l) => out.buildpack_line(&l), None => o_done = true },
                l = se.next_line(), if !e_done => match l? { Some(l) => out.buildpack_line(&l), None => e_done = true },
            }
        }
        child.wait().await.map_err(anyhow::Error::from)
    };
    match tokio::time::timeout(timeout, pump).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            bail!("compile timed out after {} minutes", timeout.as_secs() / 60)
        }
    }
}

/// Copies the source tree into `dst`: with git, the files git tracks plus untracked ones it
/// does not ignore; otherwise the whole directory. `.git` never comes along. Returns the HEAD
/// commit when there is one.
pub fn copy_source(src: &Path, dst: &Path) -> Result<Option<String>> {
    let src = src
        .canonicalize()
        .with_context(|| format!("source directory {}", src.display()))?;
    if let Ok(repo) = git2::Repository::discover(&src) {
        if let Some(workdir) = repo.workdir().map(|w| w.canonicalize()).transpose()? {
            let prefix = src
                .strip_prefix(&workdir)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            let mut opts = git2::StatusOptions::new();
            opts.include_untracked(true)
                .recurse_untracked_dirs(true)
                .include_ignored(false)
                .include_unmodified(true)
                .exclude_submodules(false);
            let statuses = repo.statuses(Some(&mut opts))?;
            for entry in statuses.iter() {
                if entry.status().contains(git2::Status::WT_DELETED) {
                    continue;
                }
                let Some(rel) = entry.path() else { continue };
                let rel = Path::new(rel);
                let Ok(inside) = rel.strip_prefix(&prefix) else {
                    continue;
                };
                copy_entry(&workdir.join(rel), &dst.join(inside))?;
            }
            let commit = repo
                .head()
                .ok()
                .and_then(|h| h.peel_to_commit().ok())
                .map(|c| c.id().to_string());
            return Ok(commit);
        }
    }
    copy_dir(&src, dst)?;
    Ok(None)
}

fn copy_entry(from: &Path, to: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(from) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
    } else if meta.is_dir() {
        copy_dir(from, to)?;
    } else if meta.is_file() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// Recursive copy that keeps symlinks as links and skips `.git`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        if e.file_name() == ".git" {
            continue;
        }
        copy_entry(&e.path(), &to.join(e.file_name()))?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Gives a tree to the dyno user, never following links.
pub fn chown_tree(p: &Path) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(DYNO_UID), Some(DYNO_GID))?;
    if std::fs::symlink_metadata(p)?.is_dir() {
        for e in std::fs::read_dir(p)? {
            chown_tree(&e?.path())?;
        }
    }
    Ok(())
}

/// Packs `app_dir` as `app/…` into `<slugs>/<sha256>.tgz` and unpacks it once into
/// `<slugs>/<sha256>/app`, owned by the dyno user. Returns (sha256 hex, tarball size).
pub fn pack_slug(app_dir: &Path, slugs: &Path) -> Result<(String, u64)> {
    std::fs::create_dir_all(slugs)?;
    let tmp = slugs.join(format!(".tmp-{}.tgz", new_id()));
    {
        let f = std::fs::File::create(&tmp)?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Deterministic);
        append_tree(&mut tar, app_dir, Path::new("app"))?;
        tar.into_inner()?.finish()?.sync_all()?;
    }
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(&tmp)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let sum: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::rename(&tmp, slugs.join(format!("{sum}.tgz")))?;
    unpack_slug(slugs, &sum)?;
    Ok((sum, size))
}

/// Deterministic order so the same tree gives the same tarball (and hash).
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, name: &Path) -> Result<()> {
    tar.append_dir(name, dir)?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name() == ".git" {
            continue;
        }
        let path = e.path();
        let child = name.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            append_tree(tar, &path, &child)?;
        } else if ft.is_file() || ft.is_symlink() {
            tar.append_path_with_name(&path, &child)?;
        }
    }
    Ok(())
}

/// Unpacks `<slugs>/<sum>.tgz` into `<slugs>/<sum>/` (atomically, once).
pub fn unpack_slug(slugs: &Path, sum: &str) -> Result<PathBuf> {
    let dest = slugs.join(sum);
    if dest.join("app").exists() {
        return Ok(dest);
    }
    let tmp = slugs.join(format!(".unpack-{}", new_id()));
    std::fs::create_dir_all(&tmp)?;
    let f = std::fs::File::open(slugs.join(format!("{sum}.tgz")))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.set_preserve_permissions(true);
    ar.set_overwrite(false);
    // unpack() refuses absolute paths and `..`, and never writes through a link it made.
    ar.unpack(&tmp)?;
    chown_tree(&tmp.join("app"))?;
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => {}
        Err(_) if dest.join("app").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(dest)
}

pub fn human_size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n}B"),
        n if n < 1024 * 1024 => format!("{:.1}K", n as f64 / 1024.0),
        n if n < 1024 * 1024 * 1024 => format!("{:.1}M", n as f64 / 1048576.0),
        n => format!("{:.1}G", n as f64 / 1073741824.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_git_would_ship() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let repo = git2::Repository::init(&src).unwrap();
        std::fs::write(src.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(src.join("tracked.txt"), "t").unwrap();
        std::fs::write(src.join("ignored.txt"), "i").unwrap();
        std::fs::write(src.join("sub/untracked.txt"), "u").unwrap();
        let mut idx = repo.index().unwrap();
        idx.add_path(Path::new("tracked.txt")).unwrap();
        idx.add_path(Path::new(".gitignore")).unwrap();
        idx.write().unwrap();
        let dst = d.path().join("dst");
        copy_source(&src, &dst).unwrap();
        assert!(dst.join("tracked.txt").exists());
        assert!(dst.join("sub/untracked.txt").exists());
        assert!(!dst.join("ignored.txt").exists());
        assert!(!dst.join(".git").exists());
    }

    #[test]
    fn plain_dirs_are_copied_whole_keeping_links() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join(".git")).unwrap();
        std::fs::write(src.join("a"), "a").unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", src.join("py")).unwrap();
        let dst = d.path().join("dst");
        assert_eq!(copy_source(&src, &dst).unwrap(), None);
        assert!(dst.join("a").exists());
        assert!(!dst.join(".git").exists());
        assert_eq!(
            std::fs::read_link(dst.join("py")).unwrap(),
            Path::new("/usr/bin/python3")
        );
    }

    #[test]
    fn slugs_are_content_addressed_and_unpacked_once() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path().join("app");
        std::fs::create_dir_all(app.join("bin")).unwrap();
        std::fs::write(app.join("Procfile"), "web: x").unwrap();
        std::os::unix::fs::symlink("../Procfile", app.join("bin/link")).unwrap();
        let slugs = d.path().join("slugs");
        let (a, size) = pack_slug(&app, &slugs).unwrap();
        let (b, _) = pack_slug(&app, &slugs).unwrap();
        assert_eq!(a, b, "same tree, same slug");
        assert!(size > 0);
        let unpacked = slugs.join(&a).join("app");
        assert_eq!(
            std::fs::read_to_string(unpacked.join("Procfile")).unwrap(),
            "web: x"
        );
        assert_eq!(
            std::fs::read_link(unpacked.join("bin/link")).unwrap(),
            Path::new("../Procfile")
        );
    }

    #[test]
    fn unpacking_rejects_escapes() {
        let d = tempfile::tempdir().unwrap();
        let slugs = d.path().join("slugs");
        std::fs::create_dir_all(&slugs).unwrap();
        // A tarball with `app/../../evil`, written by hand (tar::Builder refuses such names).
        let mut header = tar::Header::new_gnu();
        let name = b"app/../../evil";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut raw = vec![];
        {
            let gz = flate2::write::GzEncoder::new(&mut raw, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            t.append(&header, &b"x"[..]).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        std::fs::write(slugs.join("bad.tgz"), raw).unwrap();
        let _ = unpack_slug(&slugs, "bad");
        assert!(!d.path().join("evil").exists());
    }

    #[test]
    fn sizes_read_like_heroku() {
        assert_eq!(human_size(1229), "1.2K");
        assert_eq!(human_size(12), "12B");
    }
}
