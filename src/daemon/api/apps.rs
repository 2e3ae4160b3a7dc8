//! Apps (`crate::api::apps`): list, create, info, rename, destroy.

use super::{find_app, owner};
use crate::api::{self, apps};
use crate::daemon::api_server::not_found;
use crate::daemon::api_server::{invalid, Fail, Route};
use crate::daemon::{manager, Daemon};
use crate::store::AppRow;
use hyper::StatusCode;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(list_of_user),
        Route::json(create),
        Route::json(info),
        Route::json(disk),
        Route::json(update),
        Route::json(destroy),
    ]
}

async fn list(d: Arc<Daemon>, _: apps::List) -> Result<Vec<api::App>, Fail> {
    Ok(d.store.apps()?.iter().map(|a| app_json(&d, a)).collect())
}

async fn list_of_user(d: Arc<Daemon>, e: apps::ListOfUser) -> Result<Vec<api::App>, Fail> {
    let me = owner();
    if ![me.email.as_str(), me.id.as_str(), "~"].contains(&e.user.as_str()) {
        return Err(not_found("user"));
    }
    list(d, apps::List {}).await
}

async fn create(d: Arc<Daemon>, e: apps::Create) -> Result<api::App, Fail> {
    let a = create_app(&d, e.body.name)?;
    Ok(app_json(&d, &a))
}

async fn info(d: Arc<Daemon>, e: apps::Info) -> Result<api::App, Fail> {
    Ok(app_json(&d, &find_app(&d, &e.app)?))
}

/// The app's slugs still on disk (each counted once), its build cache and its repository.
async fn disk(d: Arc<Daemon>, e: apps::Disk) -> Result<api::AppDisk, Fail> {
    use crate::daemon::gc::disk_usage as du;
    let a = find_app(&d, &e.app)?;
    let mut sums = std::collections::BTreeSet::new();
    for r in d.store.releases(&a.id)? {
        if let Some(s) = r.slug_id.and_then(|id| d.store.slug(&id).ok().flatten()) {
            sums.insert(s.checksum.trim_start_matches("SHA256:").to_string());
        }
    }
    let slugs = d.paths.slugs();
    let slug_bytes: u64 = sums
        .iter()
        .map(|s| du(&slugs.join(s)) + du(&slugs.join(format!("{s}.tgz"))))
        .sum();
    let repo_bytes = du(&crate::git::repo_path(&d.paths, &a.name));
    Ok(api::AppDisk {
        bytes: slug_bytes + du(&d.builder.cache_dir(&a.id)) + repo_bytes,
        repo_bytes,
    })
}

async fn update(d: Arc<Daemon>, e: apps::Update) -> Result<api::App, Fail> {
    let a = find_app(&d, &e.app)?;
    if let Some(name) = e.body.name {
        rename_app(&d, &a, &name)?;
    }
    Ok(app_json(&d, &find_app(&d, &a.id)?))
}

async fn destroy(d: Arc<Daemon>, e: apps::Destroy) -> Result<api::App, Fail> {
    let a = find_app(&d, &e.app)?;
    destroy_app(&d, &a).await?;
    Ok(app_json(&d, &a))
}

fn name_taken(name: &str) -> Fail {
    Fail(
        StatusCode::CONFLICT,
        "invalid_params",
        format!("Name {name} is already taken"),
    )
}

fn create_app(d: &Arc<Daemon>, name: Option<String>) -> Result<AppRow, Fail> {
    let name = match name {
        Some(n) => {
            apps::validate_name(&n).map_err(invalid)?;
            if d.store.app(&n)?.is_some() {
                return Err(name_taken(&n));
            }
            n
        }
        None => loop {
            let n = crate::names::random();
            if d.store.app(&n)?.is_none() {
                break n;
            }
        },
    };
    let a = d.store.create_app(&name)?;
    d.apps_changed();
    if let Err(e) = crate::git::ensure_repo(&d.paths, &a.name, &crate::git::dyno_exe()) {
        // The app exists; the daemon's next start creates the repository again.
        tracing::warn!(app = %a.name, "creating its git repository: {e:#}");
    }
    manager::update_routes(d, &a.id);
    Ok(a)
}

fn rename_app(d: &Arc<Daemon>, a: &AppRow, name: &str) -> Result<(), Fail> {
    if name == a.name {
        return Ok(());
    }
    apps::validate_name(name).map_err(invalid)?;
    if d.store.app(name)?.is_some() {
        return Err(name_taken(name));
    }
    d.store.rename_app(&a.id, name)?;
    d.apps_changed();
    if let Err(e) = crate::git::rename_repo(&d.paths, &a.name, name) {
        tracing::warn!(app = %name, "renaming its git repository: {e:#}");
    }
    d.routes.remove(&a.name);
    d.logs.rename(&a.name, name);
    manager::update_routes(d, &a.id);
    crate::daemon::routing::reload_domains(d);
    Ok(())
}

async fn destroy_app(d: &Arc<Daemon>, a: &AppRow) -> Result<(), Fail> {
    d.store.scale(
        &a.id,
        &d.store
            .formation(&a.id)?
            .iter()
            .map(|f| (f.process_type.clone(), 0))
            .collect::<Vec<_>>(),
    )?;
    manager::reconcile(d, &a.id).await?;
    // Wait until its dynos are gone, so the caller sees nothing left.
    let deadline =
        tokio::time::Instant::now() + d.settings.stop_timeout + std::time::Duration::from_secs(10);
    while d.manager.entries(&a.id).iter().any(|e| e.handle.is_some())
        && tokio::time::Instant::now() < deadline
    {
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            d.dyno_gone.notified(),
        )
        .await;
    }
    crate::daemon::addons::destroy_app_addons(d, a).await?;
    let n = crate::daemon::backups::remove_app(d, a);
    if n > 0 {
        tracing::info!(app = %a.name, "removed its {n} Postgres backup(s)");
    }
    d.store.delete_app(&a.id)?;
    d.apps_changed();
    d.routes.remove(&a.name);
    d.logs.forget(&a.name);
    crate::daemon::routing::reload_domains(d);
    let _ = std::fs::remove_dir_all(d.builder.cache_dir(&a.id));
    crate::git::remove_repo(&d.paths, &a.name);
    Ok(())
}

fn app_json(d: &Daemon, a: &AppRow) -> api::App {
    let releases = d.store.releases(&a.id).unwrap_or_default();
    let current = releases.iter().rev().find(|r| r.status == "succeeded");
    let slug = current
        .and_then(|r| r.slug_id.as_deref())
        .and_then(|id| d.store.slug(id).ok().flatten());
    let stack = api::IdName {
        id: "00000000-0000-4000-8000-000000000001".into(),
        name: crate::build::STACK.into(),
    };
    api::App {
        id: a.id.clone(),
        name: a.name.clone(),
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
        released_at: current.map(|r| r.created_at.clone()),
        web_url: d.web_url(&a.name),
        // Over HTTPS, where `git push` reaches it (git_http); here, the bare repository.
        git_url: Some(match crate::daemon::api_server::https_base() {
            Some(base) => format!("{base}/{}.git", a.name),
            None => crate::git::repo_path(&d.paths, &a.name)
                .to_string_lossy()
                .into_owned(),
        }),
        stack: stack.clone(),
        build_stack: stack,
        region: api::IdName {
            id: "00000000-0000-4000-8000-000000000002".into(),
            name: "local".into(),
        },
        owner: owner(),
        maintenance: false,
        buildpack_provided_description: slug.as_ref().and_then(|s| s.buildpack.clone()),
        repo_size: None,
        slug_size: slug.map(|s| s.size),
        archived_at: None,
        acm: false,
        internal_routing: None,
        organization: None,
        space: None,
        team: None,
        disk_usage: None,
        process_tier: Some("basic".into()),
        create_status: Some("complete".into()),
        generation: Some(api::IdName {
            id: "00000000-0000-4000-8000-000000000003".into(),
            name: "cedar".into(),
        }),
    }
}
