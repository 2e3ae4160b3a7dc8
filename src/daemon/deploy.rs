//! A deploy: build the source (a directory, or a commit pushed to the app's repository) into a
//! slug, record it and a release (`Deploy 1a2b3c4`, `(dirty)` when the tree had uncommitted
//! changes), sync the formation with the new process types and let the manager roll the dynos.
//! A failed build records nothing but the build itself, so the running release is untouched.

use super::{addons, release, Daemon};
use crate::api::addons::parse_plan;
use crate::appjson::AppJson;
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
        let mut result = d.builder.build(&d.runtime, &req, &out).await;
        // Add-ons and jobs before the slug and release are recorded: the release (and its
        // release phase) gets their config vars, and a failure here records neither.
        if let Ok(built) = &result {
            if let Err(e) = provision(&d, &app, &built.addons, &built.app_json, &out).await {
                result = Err(e);
            }
        }
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

/// What a deploy asks of add-ons: on the app's first deploy, the add-ons its `app.json` lists
/// and those its buildpack's `bin/release` names (each unless the app already has one of that
/// service, or that attachment name); on every deploy, `app.json`'s `cron` entries as
/// scheduler jobs (the scheduler add-on created if needed; a job already there is not added
/// twice, and jobs are only removed by `cron:remove`).
async fn provision(
    d: &Arc<Daemon>,
    app: &AppRow,
    buildpack_addons: &[String],
    app_json: &AppJson,
    out: &BuildOutput,
) -> anyhow::Result<()> {
    let first = !d
        .store
        .releases(&app.id)?
        .iter()
        .any(|r| r.slug_id.is_some());
    if first {
        let mut wanted: Vec<(String, Option<String>, &str)> = app_json
            .addons
            .iter()
            .map(|a| (a.plan.clone(), a.name.clone(), "app.json"))
            .collect();
        for a in buildpack_addons {
            // Buildpacks name older plans too (`heroku-postgresql:hobby-dev`): the service's
            // default plan stands in; a service dyno lacks is said and skipped.
            let service = a.split(':').next().unwrap_or_default();
            match parse_plan(a).or_else(|_| parse_plan(service)) {
                Ok((_, plan)) => wanted.push((plan, None, "the buildpack")),
                Err(_) => out.warn(&format!(
                    "The buildpack asks for {a}, which dyno does not provide: skipped"
                )),
            }
        }
        for (plan, name, from) in wanted {
            let service = plan.split(':').next().unwrap_or_default().to_string();
            let atts = d.store.attachments(Some(&app.id), None)?;
            let have = match &name {
                Some(n) => atts.iter().any(|t| &t.name == n),
                None => atts.iter().any(|t| {
                    d.store
                        .addon(&t.addon_id)
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.service == service)
                }),
            };
            if have {
                continue;
            }
            out.heading(&format!("Provisioning {plan} (asked for by {from})"));
            let (row, _) = addons::create(d, app, &plan, name)
                .await
                .map_err(|f| anyhow::anyhow!("provisioning {plan}: {}", f.2))?;
            let att = d
                .store
                .attachments(Some(&app.id), Some(&row.id))?
                .into_iter()
                .next()
                .map(|t| t.name)
                .unwrap_or_default();
            if addons::has_server(&row) {
                out.detail(&format!("Created {} as {att}_URL", row.name));
            } else {
                out.detail(&format!("Created {}", row.name));
            }
        }
    }
    if !app_json.cron.is_empty() {
        let has_scheduler = d
            .store
            .addons()?
            .iter()
            .any(|a| a.app_id == app.id && a.service == "scheduler");
        if !has_scheduler {
            out.heading("Provisioning scheduler:standard (asked for by app.json's cron)");
            let (row, _) = addons::create(d, app, "scheduler", None)
                .await
                .map_err(|f| anyhow::anyhow!("provisioning the scheduler: {}", f.2))?;
            out.detail(&format!("Created {}", row.name));
        }
        let jobs = d.store.jobs(Some(&app.id))?;
        for c in &app_json.cron {
            if jobs
                .iter()
                .any(|j| j.schedule == c.schedule && j.command == c.command)
            {
                continue;
            }
            let j = super::scheduler::add_job(d, app, &c.schedule, &c.command)?;
            out.detail(&format!(
                "Scheduled job {}: `{}` at \"{}\" (app.json)",
                j.num, j.command, j.schedule
            ));
        }
    }
    Ok(())
}
