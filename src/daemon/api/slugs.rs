//! Slugs (`crate::api::slugs`): a slug of one of the app's releases and its tarball, read by
//! `dyno export` (the CLI never reads `DYNO_HOME` itself).

use super::find_app;
use crate::api::{self, slugs, Endpoint};
use crate::daemon::api_server::{not_found_msg, Fail, Route};
use crate::daemon::Daemon;
use crate::store::{AppRow, SlugRow};
use bytes::Bytes;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(info), Route::stream(blob)]
}

/// The slug, if one of the app's releases uses it (a slug id of another app is not found).
fn find_slug(d: &Daemon, a: &AppRow, id: &str) -> Result<SlugRow, Fail> {
    let missing = || not_found_msg(format!("Couldn't find slug {id} of {}.", a.name));
    if !d
        .store
        .releases(&a.id)?
        .iter()
        .any(|r| r.slug_id.as_deref() == Some(id))
    {
        return Err(missing());
    }
    d.store.slug(id)?.ok_or_else(missing)
}

async fn info(d: Arc<Daemon>, e: slugs::Info) -> Result<api::Slug, Fail> {
    let a = find_app(&d, &e.app)?;
    let s = find_slug(&d, &a, &e.slug)?;
    Ok(api::Slug {
        checksum: format!(
            "sha256:{}",
            s.checksum.trim_start_matches("SHA256:").to_lowercase()
        ),
        size: s.size,
        process_types: s.process_types,
        commit: s.source_version,
        buildpack_provided_description: s.buildpack,
        stack: api::IdName {
            id: "00000000-0000-4000-8000-000000000001".into(),
            name: crate::build::STACK.into(),
        },
        blob: api::SlugBlob {
            method: "get".into(),
            url: slugs::Blob {
                app: a.id.clone(),
                slug: s.id.clone(),
            }
            .path(),
        },
        id: s.id,
    })
}

/// The tarball in 256 kB chunks, read by a blocking thread (slugs go up to 500 MB).
async fn blob(d: Arc<Daemon>, e: slugs::Blob) -> Result<mpsc::Receiver<Bytes>, Fail> {
    let a = find_app(&d, &e.app)?;
    let s = find_slug(&d, &a, &e.slug)?;
    let sum = s.checksum.trim_start_matches("SHA256:").to_string();
    let path = d.paths.slugs().join(format!("{sum}.tgz"));
    let mut f = std::fs::File::open(&path)
        .map_err(|_| not_found_msg(format!("The tarball of slug {} is missing.", s.id)))?;
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.truncate(n);
                if tx.blocking_send(Bytes::from(buf)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(rx)
}
