//! The daemon's own state in `DYNO_HOME`: it refuses to start without its database when the home
//! still has dynos or slugs (state safety).

use crate::paths::Paths;
use anyhow::{bail, Context, Result};

/// Set to `1` (or `true`) to start on purpose with a missing or empty `dyno.db` although this home still has
/// running dynos or slugs: the daemon then starts with no apps and stops those dynos.
pub const ALLOW_EMPTY_DB: &str = "DYNO_ALLOW_EMPTY_DB";

/// Refuses to start when `dyno.db` is missing (or empty: SQLite would make a new one) or cannot be
/// read while this home has live dynos or slugs: an empty database would make the daemon stop
/// every dyno ("its release is gone") and forget every app. Nothing is touched, so the dynos
/// keep running. Called before the database is opened.
pub fn check_db(paths: &Paths, allow_empty: bool) -> Result<()> {
    let db = paths.db();
    let problem = match std::fs::metadata(&db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing".to_string(),
        Err(e) => format!("cannot be read ({e})"),
        Ok(m) if !m.is_file() => "is not a file".to_string(),
        Ok(m) if m.len() == 0 => "is empty".to_string(),
        Ok(_) => match std::fs::File::open(&db) {
            Ok(_) => return Ok(()),
            Err(e) => format!("cannot be read ({e})"),
        },
    };
    let dynos = crate::runtime::live_dynos(paths);
    let slugs = std::fs::read_dir(paths.slugs())
        .map(|rd| rd.flatten().count())
        .unwrap_or(0);
    if dynos.is_empty() && slugs == 0 {
        return Ok(()); // a new home (or one with nothing to lose)
    }
    if allow_empty {
        tracing::warn!(
            "{} {problem}; starting empty as {ALLOW_EMPTY_DB}=1 asks ({} running dynos will stop)",
            db.display(),
            dynos.len()
        );
        return Ok(());
    }
    bail!(
        "refusing to start: the database {} {problem}, but this DYNO_HOME has {} running \
         dyno(s) and {slugs} slug(s); starting without it would forget every app and stop those \
         dynos. Nothing was changed and the dynos keep running. Restore dyno.db (with its -wal \
         and -shm files) from a backup and run any dyno command again; to start over with no \
         apps instead (stopping those dynos), start once with {ALLOW_EMPTY_DB}=1",
        db.display(),
        dynos.len()
    )
}

/// Opens the store, saying what to do when the database exists but cannot be used.
pub fn open_store(paths: &Paths) -> Result<crate::store::Store> {
    crate::store::Store::open(&paths.db()).with_context(|| {
        format!(
            "refusing to start: the database {} cannot be read; nothing was changed and the \
             dynos keep running. Restore it (with its -wal and -shm files) from a backup",
            paths.db().display()
        )
    })
}

/// Written once an existing home has been tightened deeply (so that walk runs once).
const TIGHTENED: &str = ".private";

/// Makes this home private to root (see ARCHITECTURE.md, "Private state"): `DYNO_HOME` 0700 and
/// no group or other permission on anything directly in it, every start (cheap); once per home
/// (the first daemon of this version), the same deep in the trees an older daemon made readable:
/// the database, logs, slugs (their trees keep the dyno user as owner), the apps' repositories,
/// the TLS keys, the state of dynos and containers, the caches' roots. Never inside `stack/` and
/// `net/` (the system files dynos read, no secrets) nor a dyno's own layer; never across a mount
/// or through a link. Failures are warnings: a home that cannot be tightened still serves.
pub fn tighten(paths: &Paths) {
    let home = &paths.home;
    let chmod = |p: &Path| {
        if let Err(e) = private(p).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }) {
            tracing::warn!("making {} private: {e:#}", p.display());
        }
    };
    if let Err(e) = std::fs::set_permissions(home, Permissions::from_mode(0o700)) {
        tracing::warn!("making {} private: {e:#}", home.display());
    }
    let Ok(rd) = std::fs::read_dir(home) else {
        return;
    };
    let top: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    top.iter().for_each(|p| chmod(p));
    if home.join(TIGHTENED).exists() {
        return;
    }
    let dev = match std::fs::metadata(home) {
        Ok(m) => m.dev(),
        Err(_) => return,
    };
    let walk = |p: &Path| {
        if let Err(e) = private_tree(p, dev) {
            tracing::warn!("making {} private: {e:#}", p.display());
        }
    };
    for name in ["logs", "slugs", "repos", "tls", "builds"] {
        walk(&home.join(name));
    }
    walk(&paths.containers());
    // A dyno's or build container's state dir: what the daemon and shim write (the spec, the
    // OCI bundle with the env, the spool); its layers (`upper`, `work`, `rootfs`) are the dyno's.
    for dir in [paths.dynos(), paths.build_containers()] {
        chmod(&dir);
        for state in children(&dir) {
            chmod(&state);
            for f in children(&state) {
                if !f.ends_with("upper") && !f.ends_with("work") && !f.ends_with("rootfs") {
                    walk(&f);
                }
            }
        }
    }
    for cache in children(&paths.cache()) {
        chmod(&cache);
    }
    if let Err(e) = std::fs::write(home.join(TIGHTENED), "1\n") {
        tracing::warn!("marking {} tightened: {e:#}", home.display());
    }
}

use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Takes group and other permissions off `p` (never a link's target).
fn private(p: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(p)?;
    let mode = m.permissions().mode();
    if m.file_type().is_symlink() || mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(p, Permissions::from_mode(mode & 0o7700))
}

/// [`private`] over a tree, staying on the device `dev` (a running dyno's mounts are its own).
fn private_tree(p: &Path, dev: u64) -> std::io::Result<()> {
    let m = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if m.dev() != dev || m.file_type().is_symlink() {
        return Ok(());
    }
    private(p)?;
    if m.is_dir() {
        for e in std::fs::read_dir(p)?.flatten() {
            private_tree(&e.path(), dev)?;
        }
    }
    Ok(())
}
