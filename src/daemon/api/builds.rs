//! Builds (`crate::api::builds`): list, start (`daemon::deploy`), one build, its output.

use super::{app_ref, find_app};
use crate::api::{self, builds, Endpoint};
use crate::daemon::api_server::{invalid, not_found, Fail, Route};
use crate::daemon::{deploy, Daemon};
use crate::store::{AppRow, BuildRow};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(create),
        Route::json(info),
        Route::stream(output),
    ]
}

async fn list(d: Arc<Daemon>, e: builds::List) -> Result<Vec<api::Build>, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(d.store
        .builds(&a.id)?
        .iter()
        .map(|b| build_json(&d, &a, b))
        .collect())
}

async fn create(d: Arc<Daemon>, e: builds::Create) -> Result<api::Build, Fail> {
    let a = find_app(&d, &e.app)?;
    let source = build_source(&d, &a, e.body)?;
    let build = deploy::start(&d, &a, source)?;
    Ok(build_json(&d, &a, &build))
}

async fn info(d: Arc<Daemon>, e: builds::Info) -> Result<api::Build, Fail> {
    let a = find_app(&d, &e.app)?;
    let b = find_build(&d, &a, &e.build)?;
    Ok(build_json(&d, &a, &b))
}

async fn output(d: Arc<Daemon>, e: builds::Output) -> Result<mpsc::Receiver<Bytes>, Fail> {
    let a = find_app(&d, &e.app)?;
    let b = find_build(&d, &a, &e.build)?;
    let (tx, rx) = mpsc::channel(64);
    // Live while the build runs, then from the store.
    let live = d.builds.lock().unwrap().get(e.build.as_str()).cloned();
    match live {
        Some(out) => {
            tokio::spawn(async move {
                let mut from = 0;
                while let Some(lines) = out.next(from).await {
                    from += lines.len();
                    let mut text = lines.join("\n");
                    text.push('\n');
                    if tx.send(Bytes::from(text)).await.is_err() {
                        break;
                    }
                }
            });
        }
        None => {
            let text = d.store.build_output(&b.id)?.unwrap_or_default();
            let _ = tx.try_send(Bytes::from(text));
        }
    }
    Ok(rx)
}

fn find_build(d: &Daemon, a: &AppRow, id: &str) -> Result<BuildRow, Fail> {
    d.store
        .build(id)?
        .filter(|b| b.app_id == a.id)
        .ok_or_else(|| not_found("build"))
}

/// What `POST /apps/{app}/builds` builds: a directory, or a commit pushed to the app's repo.
fn build_source(d: &Daemon, a: &AppRow, b: api::BuildCreate) -> Result<crate::build::Source, Fail> {
    if let Some(g) = b.git {
        if g.commit.len() != 40 || !g.commit.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(format!("{:?} is not a commit id", g.commit)));
        }
        let repo = crate::git::repo_path(&d.paths, &a.name);
        let quarantine = g.quarantine.map(std::path::PathBuf::from);
        if let Some(q) = &quarantine {
            // Only ever an object directory inside the app's own repository.
            if !q.is_absolute() || !q.starts_with(repo.join("objects")) {
                return Err(invalid(
                    "the quarantine path must be in the app's repository",
                ));
            }
        }
        return Ok(crate::build::Source::Git {
            repo,
            commit: g.commit,
            quarantine,
            over_https: g.over_https,
        });
    }
    let dir = std::path::PathBuf::from(&b.source_dir);
    if !dir.is_absolute() || !dir.is_dir() {
        return Err(invalid(format!("{} is not a directory", b.source_dir)));
    }
    Ok(crate::build::Source::Dir(dir))
}

fn build_json(d: &Daemon, a: &AppRow, b: &BuildRow) -> api::Build {
    let slug = b
        .slug_id
        .as_deref()
        .and_then(|id| d.store.slug(id).ok().flatten());
    let release = b.release_id.as_deref().and_then(|id| {
        d.store
            .releases(&a.id)
            .ok()?
            .into_iter()
            .find(|r| r.id == id)
    });
    api::Build {
        id: b.id.clone(),
        app: app_ref(a),
        status: b.status.clone(),
        buildpacks: b
            .buildpacks
            .iter()
            .map(|n| api::BuildpackRef {
                url: n.clone(),
                name: n.clone(),
            })
            .collect(),
        output_stream_url: builds::Output {
            app: a.id.clone(),
            build: b.id.clone(),
        }
        .path(),
        release: release.map(|r| api::ReleaseRef {
            id: r.id,
            version: r.version,
        }),
        slug: b.slug_id.clone().map(|id| api::SlugRef { id }),
        source_blob: api::SourceBlob {
            url: format!("file://{}", b.source_dir),
            version: b.source_version.clone(),
        },
        created_at: b.created_at.clone(),
        updated_at: b.updated_at.clone(),
        error: b.error.clone(),
        process_types: slug
            .map(|s| s.process_types.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default(),
        slug_size: b.slug_size,
        dirty: b.dirty,
        buildpack_description: b.buildpack.clone(),
        addons: b.addons.clone(),
    }
}
