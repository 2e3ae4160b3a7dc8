//! Getting the app's source into the build dir: a working tree as it is (`dyno up`, uncommitted
//! changes included) or one commit of a bare repository (`git push`). `.git` never comes along.

use crate::runtime::{DYNO_GID, DYNO_UID};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

/// Where a build's source comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory on this machine, built as it is.
    Dir(std::path::PathBuf),
    /// A commit of a bare repository, pushed with `git push`. `quarantine` is the object
    /// directory git keeps a push's objects in until the pre-receive hook accepted it.
    Git {
        repo: std::path::PathBuf,
        commit: String,
        quarantine: Option<std::path::PathBuf>,
        /// Pushed over the HTTPS API (by anyone holding the token): its `.buildpacks` may not
        /// name host paths.
        over_https: bool,
    },
}

/// What was built: the commit (if any) and whether the tree differed from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceVersion {
    pub commit: Option<String>,
    pub dirty: bool,
}

impl SourceVersion {
    /// `Deploy 1a2b3c4` / `Deploy 1a2b3c4 (dirty)`, or `None` without a commit.
    pub fn describe(&self) -> Option<String> {
        let c = self.commit.as_deref()?;
        let short = &c[..7.min(c.len())];
        Some(if self.dirty {
            format!("Deploy {short} (dirty)")
        } else {
            format!("Deploy {short}")
        })
    }
}

/// Copies `source` into `dst` (which must exist and be empty).
pub fn fetch(source: &Source, dst: &Path) -> Result<SourceVersion> {
    match source {
        Source::Dir(dir) => copy_source(dir, dst),
        Source::Git {
            repo,
            commit,
            quarantine,
            ..
        } => {
            checkout_commit(repo, commit, quarantine.as_deref(), dst)?;
            Ok(SourceVersion {
                commit: Some(commit.clone()),
                dirty: false,
            })
        }
    }
}

/// Copies the source tree into `dst`: with git, the files git tracks plus untracked ones it
/// does not ignore; otherwise the whole directory. `.git` never comes along. Returns the HEAD
/// commit when there is one, and whether the tree had changes not committed.
pub fn copy_source(src: &Path, dst: &Path) -> Result<SourceVersion> {
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
            let mut dirty = false;
            for entry in statuses.iter() {
                let Some(rel) = entry.path() else { continue };
                let rel = Path::new(rel);
                let Ok(inside) = rel.strip_prefix(&prefix) else {
                    continue;
                };
                if entry.status() != git2::Status::CURRENT {
                    dirty = true;
                }
                if entry.status().contains(git2::Status::WT_DELETED) {
                    continue;
                }
                copy_entry(&workdir.join(rel), &dst.join(inside))?;
            }
            let commit = repo
                .head()
                .ok()
                .and_then(|h| h.peel_to_commit().ok())
                .map(|c| c.id().to_string());
            return Ok(SourceVersion {
                dirty: dirty && commit.is_some(),
                commit,
            });
        }
    }
    copy_ignoring(&src, dst)?;
    Ok(SourceVersion::default())
}

/// Copies a directory outside git as `git add -A` would take it: `.gitignore` files in the tree
/// are honoured (the user's global excludes are not: the build must not depend on who runs it),
/// `.git` is skipped, links stay links.
fn copy_ignoring(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst)?;
    let walk = ignore::WalkBuilder::new(src)
        .standard_filters(false)
        .git_ignore(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walk {
        let entry = entry.with_context(|| format!("reading {}", src.display()))?;
        let Ok(rel) = entry.path().strip_prefix(src) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let to = dst.join(rel);
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            std::fs::create_dir_all(&to)?;
        } else {
            copy_entry(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Writes the tree of `commit` into `dst`: files with their executable bit, symlinks as links;
/// submodules are skipped (their commits are not in this repository).
pub fn checkout_commit(
    repo: &Path,
    commit: &str,
    quarantine: Option<&Path>,
    dst: &Path,
) -> Result<()> {
    let repo = git2::Repository::open_bare(repo)
        .with_context(|| format!("opening the repository {}", repo.display()))?;
    if let Some(q) = quarantine {
        // The pushed objects are only here until the hook accepts the push.
        repo.odb()?
            .add_disk_alternate(&q.to_string_lossy())
            .context("reading the pushed objects")?;
    }
    let oid = git2::Oid::from_str(commit).context("bad commit id")?;
    let tree = repo
        .find_commit(oid)
        .with_context(|| format!("commit {commit} is not in the repository"))?
        .tree()?;
    write_tree(&repo, &tree, dst)
}

fn write_tree(repo: &git2::Repository, tree: &git2::Tree, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in tree.iter() {
        let Some(name) = entry.name() else { continue };
        if !is_plain_name(name) || name == ".git" {
            continue;
        }
        let path = dir.join(name);
        match entry.filemode() {
            0o040000 => {
                let sub = repo.find_tree(entry.id())?;
                write_tree(repo, &sub, &path)?;
            }
            0o120000 => {
                let blob = repo.find_blob(entry.id())?;
                let target = std::ffi::OsStr::from_encoded_bytes_checked(blob.content());
                std::os::unix::fs::symlink(target, &path)?;
            }
            mode @ (0o100644 | 0o100755) => {
                let blob = repo.find_blob(entry.id())?;
                let perm = if mode == 0o100755 { 0o755 } else { 0o644 };
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(perm)
                    .open(&path)?;
                std::io::Write::write_all(&mut f, blob.content())?;
            }
            _ => {} // submodules
        }
    }
    Ok(())
}

/// `OsStr::from_encoded_bytes_unchecked` without the unsafe: Unix paths are bytes.
trait FromBytes {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytes for std::ffi::OsStr {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

/// A single path component that is neither empty, `.` nor `..`.
fn is_plain_name(name: &str) -> bool {
    let mut c = Path::new(name).components();
    matches!((c.next(), c.next()), (Some(Component::Normal(_)), None))
}

pub(crate) fn copy_entry(from: &Path, to: &Path) -> Result<()> {
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

/// Takes group and other permissions off a tree, never following links.
pub fn private_tree(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::symlink_metadata(p)?;
    if m.file_type().is_symlink() {
        return Ok(());
    }
    if m.permissions().mode() & 0o077 != 0 {
        let mode = m.permissions().mode() & 0o7700;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    }
    if m.is_dir() {
        for e in std::fs::read_dir(p)? {
            private_tree(&e?.path())?;
        }
    }
    Ok(())
}

/// Reads `dir/name` (a plain name) as text without following a symlink: the build dir is
/// written by buildpacks, and the daemon reading it is root. `None` when it does not exist.
pub fn read_nofollow(dir: &Path, name: &str, limit: u64) -> Result<Option<String>> {
    match read_nofollow_bytes(dir, name, limit)? {
        Some(b) => Ok(Some(
            String::from_utf8(b).with_context(|| format!("{name} is not UTF-8 text"))?,
        )),
        None => Ok(None),
    }
}

/// [`read_nofollow`]'s bytes: at most `limit` of them (read `limit + 1` to tell a file that is
/// too large from one that fits).
pub fn read_nofollow_bytes(dir: &Path, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    if !is_plain_name(name) {
        bail!("bad file name {name:?}");
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join(name));
    let f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("{name} is a symbolic link: it must be a plain file")
        }
        Err(e) => return Err(anyhow::Error::from(e).context(format!("reading {name}"))),
    };
    if !f.metadata()?.is_file() {
        bail!("{name} is not a plain file");
    }
    let mut bytes = Vec::new();
    f.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {name}"))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_git_would_ship_and_notices_changes() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let repo = git2::Repository::init(&src).unwrap();
        std::fs::write(src.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(src.join("tracked.txt"), "t").unwrap();
        std::fs::write(src.join("ignored.txt"), "i").unwrap();
        let mut idx = repo.index().unwrap();
        idx.add_path(Path::new("tracked.txt")).unwrap();
        idx.add_path(Path::new(".gitignore")).unwrap();
        idx.write().unwrap();
        let tree = repo.find_tree(idx.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@localhost").unwrap();
        let c = repo
            .commit(Some("HEAD"), &sig, &sig, "one", &tree, &[])
            .unwrap();

        let clean = copy_source(&src, &d.path().join("clean")).unwrap();
        assert_eq!(
            clean,
            SourceVersion {
                commit: Some(c.to_string()),
                dirty: false
            }
        );
        assert_eq!(
            clean.describe().unwrap(),
            format!("Deploy {}", &c.to_string()[..7])
        );

        std::fs::write(src.join("sub/untracked.txt"), "u").unwrap();
        let dst = d.path().join("dst");
        let v = copy_source(&src, &dst).unwrap();
        assert!(v.dirty);
        assert!(v.describe().unwrap().ends_with("(dirty)"));
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
        assert_eq!(copy_source(&src, &dst).unwrap(), SourceVersion::default());
        assert!(dst.join("a").exists());
        assert!(!dst.join(".git").exists());
        assert_eq!(
            std::fs::read_link(dst.join("py")).unwrap(),
            Path::new("/usr/bin/python3")
        );
    }

    #[test]
    fn outside_git_gitignore_is_honoured() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("big/inner")).unwrap();
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join(".gitignore"), "secret.env\nbig/\n*.log\n").unwrap();
        std::fs::write(src.join("sub/.gitignore"), "local.txt\n").unwrap();
        for f in [
            "secret.env",
            "big/inner/x",
            "a.log",
            "sub/local.txt",
            "sub/kept.txt",
            "app.py",
        ] {
            std::fs::write(src.join(f), "x").unwrap();
        }
        let dst = d.path().join("dst");
        copy_source(&src, &dst).unwrap();
        for gone in ["secret.env", "big", "a.log", "sub/local.txt"] {
            assert!(!dst.join(gone).exists(), "{gone} was shipped");
        }
        for kept in ["app.py", "sub/kept.txt", ".gitignore"] {
            assert!(dst.join(kept).exists(), "{kept} is missing");
        }
    }

    #[test]
    fn a_commit_is_checked_out_with_modes_and_links() {
        let d = tempfile::tempdir().unwrap();
        let bare = git2::Repository::init_bare(d.path().join("r.git")).unwrap();
        let blob = bare.blob(b"#!/bin/sh\necho hi\n").unwrap();
        let link = bare.blob(b"run.sh").unwrap();
        let mut sub = bare.treebuilder(None).unwrap();
        sub.insert("run.sh", blob, 0o100755).unwrap();
        sub.insert("link", link, 0o120000).unwrap();
        let sub = sub.write().unwrap();
        let mut root = bare.treebuilder(None).unwrap();
        root.insert("bin", sub, 0o040000).unwrap();
        root.insert("Procfile", bare.blob(b"web: x").unwrap(), 0o100644)
            .unwrap();
        let tree = bare.find_tree(root.write().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@localhost").unwrap();
        let c = bare.commit(None, &sig, &sig, "m", &tree, &[]).unwrap();
        let dst = d.path().join("out");
        let v = fetch(
            &Source::Git {
                repo: d.path().join("r.git"),
                commit: c.to_string(),
                quarantine: None,
                over_https: false,
            },
            &dst,
        )
        .unwrap();
        assert_eq!(v.commit.as_deref(), Some(c.to_string().as_str()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dst.join("bin/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(
            std::fs::read_link(dst.join("bin/link")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("Procfile")).unwrap(),
            "web: x"
        );
    }

    #[test]
    fn reading_the_build_dir_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), d.path().join("Procfile")).unwrap();
        let e = read_nofollow(d.path(), "Procfile", 1000).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(read_nofollow(d.path(), "missing", 1000).unwrap(), None);
        assert!(read_nofollow(d.path(), "../secret", 1000).is_err());
        assert_eq!(
            read_nofollow(d.path(), "secret", 1000).unwrap().as_deref(),
            Some("s")
        );
    }
}
