//! Postgres backups (`crate::api::pg_backups`): list, capture, restore, download. The work is
//! `daemon::backups`'.

use super::addons::find_addon;
use super::find_app;
use crate::api::pg_backups::{self as ep, Backup, Restore};
use crate::api::Endpoint;
use crate::daemon::api_server::{invalid, Fail, Route};
use crate::daemon::backups::{self, BackupMeta};
use crate::daemon::Daemon;
use crate::store::{now, AddonRow, AppRow};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(capture),
        Route::json(info),
        Route::json(restore),
        Route::stream(download),
    ]
}

fn backup_json(app: &AppRow, m: &BackupMeta) -> Backup {
    Backup {
        id: m.id(),
        num: m.num,
        from_name: m.from_name.clone(),
        from_attachment: m.from_attachment.clone(),
        processed_bytes: m.size,
        created_at: m.created_at.clone(),
        finished_at: m.finished_at.clone(),
        download_url: ep::Download {
            app: app.id.clone(),
            backup: m.id(),
        }
        .path(),
    }
}

/// The Postgres add-on a `pg:backups` command names (default: `DATABASE`), with its attachment
/// name in the app.
fn database(d: &Daemon, app: &AppRow, key: Option<&str>) -> Result<(AddonRow, String), Fail> {
    let key = key.unwrap_or("DATABASE");
    let a = find_addon(d, Some(app), key).map_err(|_| {
        invalid(format!(
            "{} has no Postgres database {key}: add one with dyno addons:create heroku-postgresql",
            app.name
        ))
    })?;
    let attachment = d
        .store
        .attachments(Some(&app.id), Some(&a.id))?
        .into_iter()
        .next()
        .map(|t| t.name)
        .unwrap_or_default();
    Ok((a, attachment))
}

fn backup_id(s: &str) -> Result<String, Fail> {
    ep::parse_id(s).map_err(invalid)
}

async fn list(d: Arc<Daemon>, e: ep::List) -> Result<Vec<Backup>, Fail> {
    let app = find_app(&d, &e.app)?;
    Ok(backups::list(&d, &app)
        .iter()
        .map(|m| backup_json(&app, m))
        .collect())
}

async fn capture(d: Arc<Daemon>, e: ep::Capture) -> Result<Backup, Fail> {
    let app = find_app(&d, &e.app)?;
    let (a, attachment) = database(&d, &app, e.body.database.as_deref())?;
    let m = backups::capture(&d, &app, &a, &attachment).await?;
    Ok(backup_json(&app, &m))
}

async fn info(d: Arc<Daemon>, e: ep::Info) -> Result<Backup, Fail> {
    let app = find_app(&d, &e.app)?;
    let m = backups::find(&d, &app, &backup_id(&e.backup)?)?;
    Ok(backup_json(&app, &m))
}

async fn restore(d: Arc<Daemon>, e: ep::RestoreCreate) -> Result<Restore, Fail> {
    let app = find_app(&d, &e.app)?;
    let id = backup_id(&e.backup)?;
    let m = backups::find(&d, &app, &id)?;
    let (a, attachment) = database(&d, &app, e.body.database.as_deref())?;
    if e.body.confirm.as_deref() != Some(app.name.as_str()) {
        return Err(invalid(format!(
            "restoring {} replaces the data of {attachment} ({}): confirm with --confirm {}",
            m.id(),
            a.name,
            app.name
        )));
    }
    backups::restore(&d, &app, &m, &a).await?;
    Ok(Restore {
        backup: m.id(),
        to_name: a.name,
        to_attachment: attachment,
        finished_at: now(),
    })
}

async fn download(d: Arc<Daemon>, e: ep::Download) -> Result<mpsc::Receiver<Bytes>, Fail> {
    let app = find_app(&d, &e.app)?;
    let m = backups::find(&d, &app, &backup_id(&e.backup)?)?;
    let path = backups::dump_of(&d, &app, &m);
    let mut file = std::fs::File::open(&path).map_err(anyhow::Error::from)?;
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(rx)
}
