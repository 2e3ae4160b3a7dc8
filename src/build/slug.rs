//! Slugs: the built `/app` as a gzip tarball stored by its content hash, unpacked once into a
//! read-only tree every dyno of the release shares. `.slugignore` trims the tree first.
//!
//! The tree is written by buildpacks (untrusted code) and read by the daemon (root), so packing
//! never follows a link, and unpacking refuses every entry that could write outside the target:
//! absolute paths, `..`, paths through a link, hard links, and anything but files, directories
//! and symlinks. Symlinks themselves are kept as they are (`bin/python -> /usr/bin/python3`).

use super::source::{chown_tree, read_nofollow};
use crate::store::new_id;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Heroku warns above this compressed size...
pub const SOFT_LIMIT: u64 = 300 * 1024 * 1024;
/// ...and refuses above this one.
pub const HARD_LIMIT: u64 = 500 * 1024 * 1024;

/// A packed slug, not yet unpacked.
pub struct Packed {
    /// sha256 hex of the tarball.
    pub checksum: String,
    pub size: u64,
    tmp: PathBuf,
}

/// Packs `app_dir` as `app/…` into a temporary tarball under `slugs`. `.git` is never packed.
pub fn pack(app_dir: &Path, slugs: &Path) -> Result<Packed> {
    std::fs::create_dir_all(slugs)?;
    let tmp = slugs.join(format!(".tmp-{}.tgz", new_id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Deterministic);
        append_tree(&mut tar, app_dir, Path::new("app"))?;
        tar.into_inner()?.finish()?.sync_all()?;
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
        let checksum = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        anyhow::Ok((checksum, size))
    })();
    match result {
        Ok((checksum, size)) => Ok(Packed {
            checksum,
            size,
            tmp,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

impl Packed {
    /// Stores the tarball as `<slugs>/<sha256>.tgz` and unpacks it (once) into
    /// `<slugs>/<sha256>/app`, owned by the dyno user.
    pub fn store(self, slugs: &Path) -> Result<PathBuf> {
        std::fs::rename(&self.tmp, slugs.join(format!("{}.tgz", self.checksum)))?;
        unpack_slug(slugs, &self.checksum)
    }

    /// Like [`Packed::store`], but the tree the tarball was packed from becomes the unpacked
    /// slug (normalized as unpacking would, then renamed: no copy). `tree` must be on the same
    /// filesystem as `slugs` and is consumed.
    pub fn store_tree(self, slugs: &Path, tree: &Path) -> Result<PathBuf> {
        std::fs::rename(&self.tmp, slugs.join(format!("{}.tgz", self.checksum)))?;
        let dest = slugs.join(&self.checksum);
        if dest.join("app").exists() {
            return Ok(dest);
        }
        let tmp = slugs.join(format!(".unpack-{}", new_id()));
        std::fs::create_dir_all(&tmp)?;
        let moved = normalize_tree(tree).and_then(|()| {
            std::fs::rename(tree, tmp.join("app"))?;
            Ok(())
        });
        if let Err(e) = moved {
            let _ = std::fs::remove_dir_all(&tmp);
            // The tarball is complete: fall back to unpacking it.
            tracing::warn!("using the built tree as the slug: {e:#}; unpacking the tarball");
            return unpack_slug(slugs, &self.checksum);
        }
        match std::fs::rename(&tmp, &dest) {
            Ok(()) => {}
            Err(_) if dest.join("app").exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(dest)
    }

    /// Drops the tarball (a slug refused for its size).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Packs and stores in one go; returns (sha256 hex, tarball size).
pub fn pack_slug(app_dir: &Path, slugs: &Path) -> Result<(String, u64)> {
    let p = pack(app_dir, slugs)?;
    let (sum, size) = (p.checksum.clone(), p.size);
    p.store(slugs)?;
    Ok((sum, size))
}

/// Permissions as the slug keeps them: directories and user-executable files 0700, other files
/// 0600 (as Heroku's `/app`: no setuid, the dyno user owns everything, and no other local user
/// of the host reads an app's code).
fn slug_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.is_dir() || meta.permissions().mode() & 0o100 != 0 {
        0o700
    } else {
        0o600
    }
}

/// A header for `meta`: slug permissions, the file's own mtime (kept, so Python's `.pyc` files
/// stay valid), owner root (unpacking gives everything to the dyno user).
fn header(meta: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(slug_mode(meta));
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    h
}

/// Deterministic order so the same tree gives the same tarball (and hash).
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, name: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let mut h = header(&meta, tar::EntryType::Directory);
    tar.append_data(&mut h, name, std::io::empty())?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name() == ".git" {
            continue;
        }
        let path = e.path();
        let child = name.join(e.file_name());
        // file_type() is lstat's: a link to a directory is a link.
        let ft = e.file_type()?;
        if ft.is_dir() {
            append_tree(tar, &path, &child)?;
        } else if ft.is_file() {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            let meta = f.metadata()?;
            let mut h = header(&meta, tar::EntryType::Regular);
            h.set_size(meta.len());
            tar.append_data(&mut h, &child, f)?;
        } else if ft.is_symlink() {
            let meta = std::fs::symlink_metadata(&path)?;
            let mut h = header(&meta, tar::EntryType::Symlink);
            h.set_mode(0o777);
            tar.append_link(&mut h, &child, std::fs::read_link(&path)?)?;
        }
        // Sockets, fifos and devices have no place in a slug.
    }
    Ok(())
}

/// Turns a built tree into what unpacking its tarball would give, in place: `.git` and special
/// files removed, slug permissions, owned by the dyno user. Never follows a link (and nothing
/// else writes to the tree any more: the build's processes are gone).
fn normalize_tree(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, meta: &std::fs::Metadata| -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(slug_mode(meta)))?;
        std::os::unix::fs::lchown(
            p,
            Some(crate::runtime::DYNO_UID),
            Some(crate::runtime::DYNO_GID),
        )?;
        Ok(())
    };
    set(dir, &std::fs::symlink_metadata(dir)?)?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let ft = e.file_type()?;
        if ft.is_dir() && e.file_name() == ".git" {
            std::fs::remove_dir_all(&path)?;
        } else if ft.is_dir() {
            normalize_tree(&path)?;
        } else if ft.is_file() {
            set(&path, &std::fs::symlink_metadata(&path)?)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::lchown(
                &path,
                Some(crate::runtime::DYNO_UID),
                Some(crate::runtime::DYNO_GID),
            )?;
        } else {
            std::fs::remove_file(&path)?;
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
    let result = (|| {
        let f = std::fs::File::open(slugs.join(format!("{sum}.tgz")))?;
        unpack_into(f, &tmp)?;
        if !tmp.join("app").is_dir() {
            bail!("the slug has no app/ directory");
        }
        chown_tree(&tmp.join("app"))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("unpacking slug {sum}")));
    }
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => {}
        Err(_) if dest.join("app").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(e.into()),
    }
    Ok(dest)
}

/// Unpacks a gzip tarball into `target`, refusing (with an error, before writing it) every entry
/// that is not under `app/`, has an absolute path or `..`, would pass through a symlink or
/// replace an existing entry, is a hard link, or is not a file, directory or symlink.
pub fn unpack_into(r: impl Read, target: &Path) -> Result<()> {
    unpack_checked(r, target, Some("app"), "slug entry")
}

/// The same checks for any tarball (a buildpack's): entries anywhere under `target`.
pub fn unpack_tree(r: impl Read, target: &Path, noun: &str) -> Result<()> {
    unpack_checked(r, target, None, noun)
}

fn unpack_checked(r: impl Read, target: &Path, top: Option<&str>, noun: &str) -> Result<()> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(r));
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let shown = path.display().to_string();
        let mut comps = vec![];
        for c in path.components() {
            match c {
                Component::Normal(n) => comps.push(n.to_owned()),
                Component::CurDir => {}
                _ => {
                    bail!("refusing {noun} {shown:?}: absolute paths and `..` are not allowed")
                }
            }
        }
        if comps.is_empty() && top.is_none() {
            continue; // `./` of a tarball made with `tar -C dir .`
        }
        if let Some(t) = top.filter(|t| comps.first().is_none_or(|c| c != t)) {
            bail!("refusing {noun} {shown:?}: everything must be under {t}/");
        }
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        if !matches!(kind, T::Regular | T::Directory | T::Symlink | T::Continuous) {
            bail!("refusing {noun} {shown:?}: only files, directories and symlinks are allowed ({kind:?})");
        }
        // Every parent must be a real directory we made: never a link.
        let mut at = target.to_path_buf();
        for c in &comps[..comps.len() - 1] {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!(
                    "refusing {noun} {shown:?}: it would pass through {} (not a directory)",
                    at.strip_prefix(target).unwrap_or(&at).display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&at)?,
                Err(e) => return Err(e.into()),
            }
        }
        let dest = target.join(comps.iter().collect::<PathBuf>());
        match std::fs::symlink_metadata(&dest) {
            Ok(m) if kind == T::Directory && m.is_dir() => {}
            Ok(_) => bail!("refusing {noun} {shown:?}: it would replace an existing entry"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        // Permissions are masked to 0o777 (no setuid); a symlink is created, never followed.
        entry
            .unpack(&dest)
            .with_context(|| format!("unpacking {shown}"))?;
    }
    Ok(())
}

pub fn human_size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n}B"),
        n if n < 1024 * 1024 => format!("{:.1}K", n as f64 / 1024.0),
        n if n < 1024 * 1024 * 1024 => format!("{:.1}M", n as f64 / 1048576.0),
        n => format!("{:.1}G", n as f64 / 1073741824.0),
    }
}

// ---- .slugignore ----

/// One `.slugignore` line (Heroku's syntax: `.gitignore`'s, without `!`).
#[derive(Debug)]
struct Pattern {
    /// Path segments; `**` matches any number of segments.
    segments: Vec<String>,
    dir_only: bool,
}

/// Parses `.slugignore`: blank lines and `#` comments skipped; a pattern with a slash before its
/// end is relative to the app's root, one without matches at any depth; a trailing `/` matches
/// directories only. Returns the patterns and the lines it cannot honour (`!` negations).
fn parse_slugignore(text: &str) -> (Vec<Pattern>, Vec<String>) {
    let mut pats = vec![];
    let mut unsupported = vec![];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('!') {
            unsupported.push(line.to_string());
            continue;
        }
        let dir_only = line.ends_with('/');
        let body = line.trim_end_matches('/');
        let anchored = body.contains('/');
        let mut segments: Vec<String> = body
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_string)
            .collect();
        if segments.is_empty() || segments.iter().any(|s| s == "..") {
            unsupported.push(line.to_string());
            continue;
        }
        if !anchored {
            segments.insert(0, "**".into());
        }
        pats.push(Pattern { segments, dir_only });
    }
    (pats, unsupported)
}

impl Pattern {
    fn matches(&self, rel: &[&str], is_dir: bool) -> bool {
        (!self.dir_only || is_dir) && match_segments(&self.segments, rel)
    }
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, prest)) => wildcard(p.as_bytes(), s.as_bytes()) && match_segments(rest, prest),
            None => false,
        },
    }
}

/// `fnmatch` within one path segment: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\x`.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| wildcard(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && wildcard(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(&c) = s.first() else { return false };
            let mut i = 1;
            let negate = matches!(p.get(1), Some(b'!') | Some(b'^'));
            if negate {
                i += 1;
            }
            let mut hit = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != b']') {
                first = false;
                if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hit |= p[i] <= c && c <= p[i + 2];
                    i += 3;
                } else {
                    hit |= p[i] == c;
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal `[`.
                return c == b'[' && wildcard(&p[1..], &s[1..]);
            }
            hit != negate && wildcard(&p[i + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && wildcard(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && wildcard(&p[1..], &s[1..]),
    }
}

/// Applies `app_dir/.slugignore` (if any): removes what it matches, never following a link.
/// Returns the number of entries removed and the lines that were not honoured.
pub fn apply_slugignore(app_dir: &Path) -> Result<(usize, Vec<String>)> {
    let Some(text) = read_nofollow(app_dir, ".slugignore", 1 << 20)? else {
        return Ok((0, vec![]));
    };
    let (pats, unsupported) = parse_slugignore(&text);
    let mut removed = 0;
    remove_matching(app_dir, &mut vec![], &pats, &mut removed)?;
    Ok((removed, unsupported))
}

fn remove_matching(
    dir: &Path,
    rel: &mut Vec<String>,
    pats: &[Pattern],
    removed: &mut usize,
) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type()?;
        rel.push(name);
        let parts: Vec<&str> = rel.iter().map(String::as_str).collect();
        let hit = pats.iter().any(|p| p.matches(&parts, ft.is_dir()));
        if hit {
            if ft.is_dir() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
            *removed += 1;
        } else if ft.is_dir() {
            remove_matching(&e.path(), rel, pats, removed)?;
        }
        rel.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_buildpack_tarball_is_checked_like_a_slug() {
        let tgz = |entries: &[(&str, &[u8])]| {
            let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
            for (path, data) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Regular);
                // set_path refuses `..`: write the name as a hostile archive would.
                h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            b.into_inner().unwrap().finish().unwrap()
        };
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("ok")).unwrap();
        std::fs::create_dir_all(d.path().join("bad")).unwrap();
        let ok = tgz(&[("./bp/bin/compile", b"#!/bin/sh\n")]);
        unpack_tree(&ok[..], &d.path().join("ok"), "buildpack tarball entry").unwrap();
        assert!(d.path().join("ok/bp/bin/compile").is_file());
        let bad = tgz(&[("../escape", b"x")]);
        let e = unpack_tree(&bad[..], &d.path().join("bad"), "buildpack tarball entry")
            .unwrap_err()
            .to_string();
        assert!(e.contains("refusing buildpack tarball entry"), "{e}");
        assert!(!d.path().join("escape").exists());
    }

    use super::*;

    #[test]
    fn slugs_are_content_addressed_and_unpacked_once() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path().join("app");
        std::fs::create_dir_all(app.join("bin")).unwrap();
        std::fs::create_dir_all(app.join(".git")).unwrap();
        std::fs::write(app.join(".git/HEAD"), "x").unwrap();
        std::fs::write(app.join("Procfile"), "web: x").unwrap();
        std::os::unix::fs::symlink("../Procfile", app.join("bin/link")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", app.join("bin/python")).unwrap();
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
        assert_eq!(
            std::fs::read_link(unpacked.join("bin/python")).unwrap(),
            Path::new("/usr/bin/python3")
        );
        assert!(!unpacked.join(".git").exists(), ".git is never in a slug");
    }

    #[test]
    fn the_built_tree_becomes_the_same_slug_as_its_tarball() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let make = |root: &Path| {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::create_dir_all(root.join("lib/.git")).unwrap();
            std::fs::write(root.join("lib/.git/HEAD"), "x").unwrap();
            std::fs::write(root.join("bin/run"), "#!/bin/sh").unwrap();
            std::fs::set_permissions(
                root.join("bin/run"),
                std::fs::Permissions::from_mode(0o4700),
            )
            .unwrap();
            std::fs::write(root.join("secret"), "s").unwrap();
            std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
            std::os::unix::fs::symlink("/usr/bin/python3", root.join("bin/python")).unwrap();
            nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        };
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        make(&a);
        make(&b);
        let slugs_a = d.path().join("slugs-a");
        let slugs_b = d.path().join("slugs-b");
        let pa = pack(&a, &slugs_a).unwrap();
        let pb = pack(&b, &slugs_b).unwrap();
        let unpacked = pa.store(&slugs_a).unwrap().join("app");
        let renamed = pb.store_tree(&slugs_b, &b).unwrap().join("app");
        assert!(!b.exists(), "the tree was moved, not copied");
        for tree in [&unpacked, &renamed] {
            let mode = |p: &str| std::fs::symlink_metadata(tree.join(p)).unwrap().mode() & 0o7777;
            assert_eq!(mode("bin/run"), 0o700, "{}", tree.display());
            assert_eq!(mode("secret"), 0o600);
            assert_eq!(mode("bin"), 0o700);
            assert!(!tree.join("lib/.git").exists());
            assert!(!tree.join("fifo").exists());
            assert_eq!(
                std::fs::read_link(tree.join("bin/python")).unwrap(),
                Path::new("/usr/bin/python3")
            );
            let owner = std::fs::symlink_metadata(tree.join("secret"))
                .unwrap()
                .uid();
            assert_eq!(owner, crate::runtime::DYNO_UID);
        }
        // Files keep their mtime either way.
        let m = |t: &Path| std::fs::metadata(t.join("secret")).unwrap().mtime();
        assert_eq!(m(&unpacked), m(&renamed));
    }

    /// (name, type, data or link target) of one tarball entry.
    type Entry<'a> = (&'a str, tar::EntryType, &'a str);

    /// A gzip tarball with raw entry names (tar::Builder refuses the bad ones).
    fn tarball(entries: &[Entry]) -> Vec<u8> {
        let mut raw = vec![];
        {
            let gz = flate2::write::GzEncoder::new(&mut raw, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            for (name, kind, data) in entries {
                let mut h = tar::Header::new_gnu();
                h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_entry_type(*kind);
                h.set_mode(0o755);
                match kind {
                    tar::EntryType::Symlink | tar::EntryType::Link => {
                        h.set_link_name(data).unwrap();
                        h.set_size(0);
                        h.set_cksum();
                        t.append(&h, &b""[..]).unwrap();
                    }
                    _ => {
                        h.set_size(data.len() as u64);
                        h.set_cksum();
                        t.append(&h, data.as_bytes()).unwrap();
                    }
                }
            }
            t.into_inner().unwrap().finish().unwrap();
        }
        raw
    }

    #[test]
    fn unpacking_refuses_everything_that_could_escape() {
        use tar::EntryType::*;
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "untouched").unwrap();
        let out = outside.to_string_lossy().into_owned();
        let victim = format!("{out}/victim");
        let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
            (
                "absolute",
                vec![(victim.as_str(), Regular, "x")],
                "absolute",
            ),
            (
                "dotdot",
                vec![("app/../../outside/victim", Regular, "x")],
                "`..`",
            ),
            (
                "through a link",
                vec![
                    ("app/", Directory, ""),
                    ("app/link", Symlink, out.as_str()),
                    ("app/link/victim", Regular, "x"),
                ],
                "pass through",
            ),
            (
                "replacing a link",
                vec![
                    ("app/", Directory, ""),
                    ("app/x", Symlink, victim.as_str()),
                    ("app/x", Regular, "x"),
                ],
                "replace",
            ),
            (
                "hard link",
                vec![("app/", Directory, ""), ("app/h", Link, victim.as_str())],
                "only files",
            ),
            (
                "outside app/",
                vec![("etc/passwd", Regular, "x")],
                "under app/",
            ),
            ("a device", vec![("app/dev", Char, "")], "only files"),
        ];
        for (what, entries, want) in cases {
            let target = d.path().join(format!("t-{}", what.replace(' ', "-")));
            std::fs::create_dir_all(&target).unwrap();
            let e = unpack_into(&tarball(&entries)[..], &target)
                .expect_err(what)
                .to_string();
            assert!(e.contains(want), "{what}: {e}");
            assert_eq!(
                std::fs::read_to_string(outside.join("victim")).unwrap(),
                "untouched",
                "{what}"
            );
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "{what}");
        }
        // A good one still unpacks, links kept as links.
        let target = d.path().join("good");
        std::fs::create_dir_all(&target).unwrap();
        unpack_into(
            &tarball(&[
                ("app/", Directory, ""),
                ("app/bin/run", Regular, "#!/bin/sh"),
                ("app/py", Symlink, "/usr/bin/python3"),
            ])[..],
            &target,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_link(target.join("app/py")).unwrap(),
            Path::new("/usr/bin/python3")
        );
        assert!(target.join("app/bin/run").is_file());
    }

    #[test]
    fn a_bad_slug_leaves_nothing_unpacked() {
        let d = tempfile::tempdir().unwrap();
        let slugs = d.path().join("slugs");
        std::fs::create_dir_all(&slugs).unwrap();
        std::fs::write(
            slugs.join("bad.tgz"),
            tarball(&[("app/../../evil", tar::EntryType::Regular, "x")]),
        )
        .unwrap();
        assert!(unpack_slug(&slugs, "bad").is_err());
        assert!(!d.path().join("evil").exists());
        assert!(!slugs.join("bad").exists());
        assert_eq!(std::fs::read_dir(&slugs).unwrap().count(), 1);
    }

    #[test]
    fn sizes_read_like_heroku() {
        assert_eq!(human_size(1229), "1.2K");
        assert_eq!(human_size(12), "12B");
        assert_eq!(human_size(3 * 1048576 + 104858), "3.1M");
    }

    #[test]
    fn wildcards_match_one_segment() {
        assert!(wildcard(b"*.psd", b"a.psd"));
        assert!(!wildcard(b"*.psd", b"a.psdx"));
        assert!(wildcard(b"te?t", b"test"));
        assert!(wildcard(b"[a-c]x", b"bx"));
        assert!(!wildcard(b"[!a-c]x", b"bx"));
        assert!(wildcard(b"\\*", b"*"));
        assert!(!wildcard(b"\\*", b"a"));
    }

    #[test]
    fn slugignore_follows_gitignore_rules() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path();
        for f in [
            "docs/guide.md",
            "src/docs/keep.md",
            "a/b/huge.psd",
            "top.psd",
            "test/unit.py",
            "spec",
            "src/test/x",
            "keep.txt",
        ] {
            let p = app.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::create_dir_all(app.join("linked")).unwrap();
        std::fs::write(app.join("linked/target.psd"), "x").unwrap();
        std::os::unix::fs::symlink(app.join("linked"), app.join("via-link")).unwrap();
        std::fs::write(
            app.join(".slugignore"),
            "# comment\n\n*.psd\n/docs\nsrc/test/\nspec/\n!keep.txt\n",
        )
        .unwrap();
        let (n, unsupported) = apply_slugignore(app).unwrap();
        assert_eq!(unsupported, vec!["!keep.txt".to_string()]);
        assert!(!app.join("top.psd").exists());
        assert!(!app.join("a/b/huge.psd").exists());
        assert!(!app.join("docs").exists());
        assert!(app.join("src/docs/keep.md").exists(), "/docs is anchored");
        assert!(!app.join("src/test").exists());
        assert!(app.join("test/unit.py").exists());
        assert!(app.join("spec").exists(), "spec/ matches directories only");
        assert!(app.join("keep.txt").exists());
        assert!(!app.join("linked/target.psd").exists());
        assert!(app.join("via-link").is_symlink(), "links are not followed");
        assert_eq!(n, 5);
    }
}
