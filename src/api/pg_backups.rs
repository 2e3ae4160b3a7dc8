//! Postgres backups: `GET/POST /apps/{app}/pg-backups`, `POST
//! /apps/{app}/pg-backups/{backup}/restores`, `GET /apps/{app}/pg-backups/{backup}/download`.
//!
//! Heroku serves these from its Postgres service (`transfers`), not the Platform API; the shape
//! here keeps its names (`b001`, `num`, `from_name`, `processed_bytes`) and lives under the app.

use super::{endpoint, Text};
use serde::{Deserialize, Serialize};

/// One backup: `pg_dump -Fc` of an add-on's database, kept under `DYNO_HOME/backups`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Backup {
    /// `b001`: Heroku's name for a manual backup, numbered per app.
    pub id: String,
    pub num: u32,
    /// The add-on it was taken from (`postgresql-curved-12345`).
    pub from_name: String,
    /// Its attachment name in the app when it was taken (`DATABASE`).
    pub from_attachment: String,
    /// The dump's size in bytes.
    pub processed_bytes: u64,
    pub created_at: String,
    pub finished_at: String,
    /// Follow with `Client::download`: the dump itself.
    pub download_url: String,
}

/// `POST /apps/{app}/pg-backups`: `database` is an add-on or attachment name (default
/// `DATABASE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupCapture {
    #[serde(default)]
    pub database: Option<String>,
}

/// `POST /apps/{app}/pg-backups/{backup}/restores`: `confirm` must be the app's name, as the
/// CLI's `--confirm` (a restore replaces the database's contents).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackupRestore {
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub confirm: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restore {
    pub backup: String,
    /// The add-on restored into.
    pub to_name: String,
    pub to_attachment: String,
    pub finished_at: String,
}

endpoint! {
    /// `GET /apps/{app}/pg-backups`: the app's backups, oldest first.
    List { app } => GET ["apps", app, "pg-backups"] -> Vec<Backup>;
    /// `POST /apps/{app}/pg-backups`: captures a backup now (answers when it is done).
    Capture { app } + body: BackupCapture => POST ["apps", app, "pg-backups"] -> Backup, CREATED;
    /// `GET /apps/{app}/pg-backups/{backup}` (`b001`, or `latest`).
    Info { app, backup } => GET ["apps", app, "pg-backups", backup] -> Backup;
    /// `POST /apps/{app}/pg-backups/{backup}/restores`: replaces the database's contents with
    /// the backup's, then restarts the app's dynos.
    RestoreCreate { app, backup } + body: BackupRestore
        => POST ["apps", app, "pg-backups", backup, "restores"] -> Restore, CREATED;
    /// `GET /apps/{app}/pg-backups/{backup}/download`: the dump's bytes (a backup's
    /// `download_url`).
    Download { app, backup } => GET ["apps", app, "pg-backups", backup, "download"] -> Text;
}

/// `b1`, `b001`, `B001`, `latest` → what the daemon looks up (`b001`, `latest`); anything else
/// is refused with the expected shape.
pub fn parse_id(s: &str) -> Result<String, String> {
    let l = s.trim().to_ascii_lowercase();
    if l == "latest" {
        return Ok(l);
    }
    match l.strip_prefix('b').and_then(|n| n.parse::<u32>().ok()) {
        Some(n) if n > 0 => Ok(format!("b{n:03}")),
        _ => Err(format!(
            "invalid backup id {s:?}: backups are named b001, b002, … (see dyno pg:backups)"
        )),
    }
}

/// Bytes as Heroku's CLI prints sizes: `812B`, `4.2kB`, `1.3MB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_sizes() {
        assert_eq!(parse_id("b1").unwrap(), "b001");
        assert_eq!(parse_id("B012").unwrap(), "b012");
        assert_eq!(parse_id("latest").unwrap(), "latest");
        for bad in ["", "b", "b0", "a001", "b-1", "b001x", "../b001"] {
            assert!(parse_id(bad).unwrap_err().contains("b001"), "{bad}");
        }
        assert_eq!(human_size(812), "812B");
        assert_eq!(human_size(4200), "4.2kB");
        assert_eq!(human_size(1_300_000), "1.3MB");
    }
}
