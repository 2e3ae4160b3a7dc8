//! A deploy: build the source into a slug, record it and a release, sync the formation with the
//! new process types and let the manager roll the dynos. A failed build records nothing but the
//! build itself, so the running release is untouched.

use super::{release, Daemon};
use crate::build::BuildOutput;
use crate::store::{AppRow, BuildRow};
use std::path::PathBuf;
use std::sync::Arc;

/// Starts a build in the background; its output is in `d.builds[build.id]`.
pub fn start(d: &Arc<Daemon>, app: &AppRow, source_dir: PathBuf) -> anyhow::Result<BuildRow> {
    let build = d
        .store
        .create_build(&app.id, &source_dir.to_string_lossy())?;
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
        let result = d
            .builder
            .build(&b.id, &app.id, &source_dir, &config, &out)
            .await;
        let recorded = result.and_then(|built| {
            let slug = built.slug;
            d.store.insert_slug(&app.id, &slug)?;
            let description = match &slug.source_version {
                Some(c) => format!("Deploy {}", &c[..7.min(c.len())]),
                None => format!(
                    "Deploy {}",
                    &slug.checksum.trim_start_matches("SHA256:")[..7]
                ),
            };
            b.source_version = slug.source_version.clone();
            b.buildpack = slug.buildpack.clone();
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
                out.line(format!(" !     Build failed: {e:#}"));
                tracing::info!(app = %app.name, build = %b.id, "build failed: {e:#}");
            }
        }
        if let Err(e) = d.store.finish_build(&b, &out.text()) {
            tracing::error!("recording build {}: {e:#}", b.id);
        }
        out.finish();
    });
    Ok(build)
}
