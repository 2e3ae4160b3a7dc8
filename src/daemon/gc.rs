//! Garbage collection of what deploys leave on disk, after every deploy and on `dyno gc`:
//! - slugs (`<slugs>/<sha>.tgz` and its unpacked `<slugs>/<sha>/`) that none of the last
//!   `keep_releases` releases of any app uses, nor the current release, nor any dyno whose state
//!   dir names it (a running dyno's overlay reads its slug directory: never pulled from under it);
//! - build workspaces of builds that are not running (a killed daemon's leftovers);
//! - build caches of apps that no longer exist, and any cache over `build_cache_limit` (the next
//!   build starts cold, as after Heroku's `builds:cache:purge`).
//!
//! Releases stay in the ledger; rolling back to one whose slug is gone says so
//! (`api/releases.rs`). A slug file or row younger than [`IN_FLIGHT`] with no release yet is a
//! deploy in progress (stored, not yet released) and is left alone.

use super::Daemon;
use crate::api::{GcItem, GcReport};
use anyhow::Result;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a slug nobody refers to yet may be a deploy in progress.
const IN_FLIGHT: Duration = Duration::from_secs(3600);

/// Bytes under `p` (files and links as stored; never follows links).
pub fn disk_usage(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

fn young(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age < IN_FLIGHT)
}

/// Slug checksums (hex, no `SHA256:`) that must stay.
fn kept_slugs(d: &Daemon) -> Result<HashSet<String>> {
    let keep = d.settings.keep_releases;
    let mut kept = HashSet::new();
    let sum = |d: &Daemon, slug_id: &str| -> Result<Option<String>> {
        Ok(d.store
            .slug(slug_id)?
            .map(|s| s.checksum.trim_start_matches("SHA256:").to_string()))
    };
    for app in d.store.apps()? {
        let releases = d.store.releases(&app.id)?;
        let current = releases.iter().rev().find(|r| r.status == "succeeded");
        let last = releases.iter().rev().take(keep);
        for r in last.chain(current) {
            if let Some(s) = r.slug_id.as_deref().map(|id| sum(d, id)).transpose()? {
                kept.extend(s);
            }
        }
    }
    // A slug recorded but not released yet: a deploy between its two steps.
    let since = chrono::Utc::now() - chrono::Duration::from_std(IN_FLIGHT)?;
    let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for s in d.store.unreleased_slug_checksums(&since)? {
        kept.insert(s.trim_start_matches("SHA256:").to_string());
    }
    // Whatever a dyno's state dir names (running, starting, or not yet cleaned up).
    for dir in std::fs::read_dir(d.paths.dynos())
        .into_iter()
        .flatten()
        .flatten()
    {
        let spec = std::fs::read(dir.path().join("spec.json")).ok();
        let slug = spec
            .and_then(|b| serde_json::from_slice::<crate::runtime::DynoSpec>(&b).ok())
            .map(|s| s.slug_dir);
        if let Some(name) = slug.as_deref().and_then(Path::file_name) {
            kept.insert(name.to_string_lossy().into_owned());
        }
    }
    Ok(kept)
}

/// Collects (or with `dry_run`, lists) what can go.
pub fn collect(d: &Daemon, dry_run: bool) -> Result<GcReport> {
    let mut items: Vec<(PathBuf, GcItem)> = vec![];
    let kept = kept_slugs(d)?;
    let slugs = d.paths.slugs();
    for e in std::fs::read_dir(&slugs).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // In-progress packs and unpacks are their writers' to clean.
        if name.starts_with('.') {
            continue;
        }
        let sum = name.trim_end_matches(".tgz");
        if kept.contains(sum) || young(&e.path()) && !d.store.slug_checksum_known(sum)? {
            continue;
        }
        items.push((
            e.path(),
            GcItem {
                kind: "slug".into(),
                name: name.clone(),
                bytes: disk_usage(&e.path()),
            },
        ));
    }
    // Build workspaces of builds not running.
    let running: HashSet<String> = d.builds.lock().unwrap().keys().cloned().collect();
    for e in std::fs::read_dir(d.paths.builds())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if !running.contains(&name) {
            items.push((
                e.path(),
                GcItem {
                    kind: "build".into(),
                    name,
                    bytes: disk_usage(&e.path()),
                },
            ));
        }
    }
    // Build caches: of destroyed apps, or over the cap.
    let apps: HashSet<String> = d.store.apps()?.into_iter().map(|a| a.id).collect();
    let limit = d.settings.build_cache_limit;
    for e in std::fs::read_dir(d.paths.cache())
        .into_iter()
        .flatten()
        .flatten()
    {
        let id = e.file_name().to_string_lossy().into_owned();
        let bytes = disk_usage(&e.path());
        let over = limit.is_some_and(|l| bytes > l) && !d.builder.building(&id);
        if !apps.contains(&id) || over {
            items.push((
                e.path(),
                GcItem {
                    kind: if over {
                        "cache (over the limit)"
                    } else {
                        "cache"
                    }
                    .into(),
                    name: id,
                    bytes,
                },
            ));
        }
    }
    if !dry_run {
        for (path, item) in &items {
            let r = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                // remove_dir_all never follows links: safe on trees builds wrote.
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            match r {
                Ok(()) => {
                    tracing::info!(kind = %item.kind, name = %item.name, bytes = item.bytes, "gc: removed")
                }
                Err(e) => tracing::warn!(path = %path.display(), "gc: {e}"),
            }
        }
    }
    let items: Vec<GcItem> = items.into_iter().map(|(_, i)| i).collect();
    Ok(GcReport {
        dry_run,
        bytes: items.iter().map(|i| i.bytes).sum(),
        items,
    })
}

/// After a deploy: collect, logging rather than failing (the deploy already succeeded).
pub fn after_deploy(d: &Daemon) {
    match collect(d, false) {
        Ok(r) if !r.items.is_empty() => {
            tracing::info!(items = r.items.len(), bytes = r.bytes, "gc after deploy")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("gc after deploy: {e:#}"),
    }
}

/// Whether `sum`'s slug can still be started (its tarball or its unpacked tree is there).
pub fn slug_present(d: &Daemon, checksum: &str) -> bool {
    let sum = checksum.trim_start_matches("SHA256:");
    let slugs = d.paths.slugs();
    slugs.join(sum).join("app").is_dir() || slugs.join(format!("{sum}.tgz")).is_file()
}
