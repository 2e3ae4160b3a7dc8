//! The daemon's own state in `DYNO_HOME`: it refuses to start without its database when the home
//! still has dynos or slugs (state safety).

use crate::paths::Paths;
use anyhow::{bail, Context, Result};

/// Set to `1` to start on purpose with a missing or empty `dyno.db` although this home still has
/// running dynos or slugs: the daemon then starts with no apps and stops those dynos.
pub const ALLOW_EMPTY_DB: &str = "DYNO_ALLOW_EMPTY_DB";

/// Refuses to start when `dyno.db` is missing (or empty: SQLite would make a new one) or cannot be
/// read while this home has live dynos or slugs: an empty database would make the daemon stop
/// every dyno ("its release is gone") and forget every app. Nothing is touched, so the dynos
/// keep running. Called before the database is opened.
pub fn check_db(paths: &Paths) -> Result<()> {
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
    if std::env::var(ALLOW_EMPTY_DB).is_ok_and(|v| v == "1") {
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
