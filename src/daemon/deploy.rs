//! A deploy: build the source (a directory, or a commit pushed to the app's repository) into a
//! slug, record it and a release (`Deploy 1a2b3c4`, `(dirty)` when the tree had uncommitted
//! changes), sync the formation with the new process types and let the manager roll the dynos.
//! A failed build records nothing but the build itself, so the running release is untouched.

use super::{release, Daemon};
use crate::build::{BuildOutput, BuildRequest, Source};
use crate::store::{AppRow, BuildRow};
use std::sync::Arc;

/// How a build's source is recorded (`source_blob.url`): the directory, or `git:<repo>`.
fn source_label(source: &Source) -> String {
    match source {
        Source::Dir(p) => p.to_string_lossy().into_owned(),
        Source::Git { repo, .. } => format!("git:{}", repo.display()),
    }
}

/// Starts a build in the background; its output is in `d.builds[build.id]`.
pub fn start(d: &Arc<Daemon>, app: &AppRow, source: Source) -> anyhow::Result<BuildRow> {
    let build = d.store.create_build(&app.id, &source_label(&source))?;
    let out = Arc::new(BuildOutput::default());
    d.builds
        .lock()
        .unwrap()
        .insert(build.id.clone(), out.clone());
    let d = d.clone();
    let app = app.clone();
    let b = build.clone();
    tokio::spawn(async move {
        let mut b = b;
        let config = d.store.config_vars(&app.id).unwrap_or_default();
        let buildpacks = d.store.app_buildpacks(&app.id).unwrap_or_default();
        let req = BuildRequest {
            build_id: &b.id,
            app_id: &app.id,
            app_name: &app.name,
            source: &source,
            config: &config,
            buildpacks: &buildpacks,
            // Host `file://` paths are bound into builds only for what came over the Unix
            // socket (root on this machine), never for a push over the HTTPS API.
            host_files: !matches!(
                source,
                Source::Git {
                    over_https: true,
                    ..
                }
            ),
        };
        let result = d.builder.build(&d.runtime, &req, &out).await;
        let recorded = result.and_then(|built| {
            let slug = built.slug;
            d.store.insert_slug(&app.id, &slug)?;
            let description = built.version.describe().unwrap_or_else(|| {
                format!(
                    "Deploy {}",
                    &slug.checksum.trim_start_matches("SHA256:")[..7]
                )
            });
            b.source_version = built.version.commit.clone();
            b.dirty = built.version.dirty;
            b.buildpack = slug.buildpack.clone();
            b.buildpacks = built.buildpacks;
            b.slug_size = Some(slug.size);
            b.addons = built.addons;
            b.slug_id = Some(slug.id.clone());
            Ok((slug, description))
        });
        // The release (and its release phase, if the Procfile has one) decides whether it goes live.
        let released = match recorded {
            Ok((slug, description)) => {
                let new = release::NewRelease {
                    slug_id: Some(slug.id.clone()),
                    config: d.store.config_vars(&app.id).unwrap_or(config),
                    description,
                    set_config: false,
                    addon_op: None,
                };
                release::create(&d, &app, new, Some(&out)).await
            }
            Err(e) => Err(e),
        };
        match released {
            Ok(release) if release.status == "succeeded" => {
                b.release_id = Some(release.id.clone());
                b.status = "succeeded".into();
                out.heading(&format!("Release v{} created", release.version));
            }
            Ok(release) => {
                b.release_id = Some(release.id.clone());
                b.status = "failed".into();
                b.error = Some(format!(
                    "the release command of v{} failed (see `dyno releases:output v{}`)",
                    release.version, release.version
                ));
            }
            Err(e) => {
                b.status = "failed".into();
                b.error = Some(format!("{e:#}"));
                out.warn(&format!("Build failed: {e:#}"));
                tracing::info!(app = %app.name, build = %b.id, "build failed: {e:#}");
            }
        }
        if let Err(e) = d.store.finish_build(&b, &out.text()) {
            tracing::error!("recording build {}: {e:#}", b.id);
        }
        out.finish();
        // The stored output replays it from now on.
        d.builds.lock().unwrap().remove(&b.id);
        // What the new release made old goes (slugs past the kept releases, stale caches).
        if b.status == "succeeded" {
            let d2 = d.clone();
            let _ = tokio::task::spawn_blocking(move || super::gc::after_deploy(&d2)).await;
        }
    });
    Ok(build)
}
