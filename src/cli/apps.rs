//! `apps`, `apps:create`, `apps:info`, `apps:destroy`, `apps:rename`.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

pub async fn list(paths: &Paths, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let apps = c.call(api::apps::List {}).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&apps)?);
    } else if apps.is_empty() {
        println!("You have no apps. Create one with `dyno up` in a project directory.");
    } else {
        println!("=== Apps");
        for a in apps {
            println!("{}", a.name);
        }
    }
    Ok(0)
}

pub async fn create(
    paths: &Paths,
    name: Option<String>,
    link_dir: bool,
    json: bool,
) -> Result<i32> {
    if let Some(n) = &name {
        api::apps::validate_name(n).map_err(anyhow::Error::msg)?;
    }
    let c = Client::connect(paths).await?;
    let app = c
        .call(api::apps::Create {
            body: api::AppCreate { name },
        })
        .await?;
    if link_dir {
        link(&c, &app.name).await?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&app)?);
    } else {
        println!("Creating {}... done", app.name);
        println!("{}", app.web_url);
    }
    Ok(0)
}

/// Records the current directory as the app's source (never a file in the tree itself).
pub async fn link(c: &Client, app: &str) -> Result<()> {
    let dir = std::env::current_dir()?.canonicalize()?;
    c.call(api::local::SetDir {
        body: api::DirApp {
            dir: dir.to_string_lossy().into(),
            app: Some(app.into()),
        },
    })
    .await?;
    Ok(())
}

pub async fn info(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let mut app = c.call(api::apps::Info { app: name.clone() }).await?;
    let disk = c.call(api::apps::Disk { app: name.clone() }).await?;
    app.disk_usage = Some(disk.bytes);
    app.repo_size = Some(disk.repo_bytes);
    let dynos = c.call(api::dynos::List { app: name.clone() }).await?;
    let formation = c.call(api::formation::List { app: name.clone() }).await?;
    let releases = c.call(api::releases::List { app: name.clone() }).await?;
    if json {
        // The shape of `heroku apps:info --json`: the app resource under `app`.
        let v = serde_json::json!({
            "addons": [],
            "app": app,
            "collaborators": [],
            "dynos": dynos,
            "pipeline_coupling": null,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let current = releases.iter().rev().find(|r| r.current);
    let dyno_line: Vec<String> = formation
        .iter()
        .map(|f| format!("{}: {}", f.process_type, f.quantity))
        .collect();
    println!("=== {}", app.name);
    let row = |k: &str, v: String| println!("{:<15}{}", format!("{k}:"), v);
    row("Dynos", dyno_line.join(", "));
    row("Git URL", app.git_url.clone().unwrap_or_default());
    row(
        "Release",
        current
            .map(|r| format!("v{}", r.version))
            .unwrap_or_else(|| "none".into()),
    );
    row(
        "Slug Size",
        app.slug_size
            .map(crate::build::human_size)
            .unwrap_or_default(),
    );
    if let Some(b) = app.disk_usage {
        row(
            "Disk Use",
            format!(
                "{} (slugs kept, build cache, repository; dyno gc)",
                crate::build::human_size(b)
            ),
        );
    }
    row("Stack", app.stack.name.clone());
    row(
        "Buildpack",
        app.buildpack_provided_description
            .clone()
            .unwrap_or_default(),
    );
    row("Created", app.created_at.clone());
    row("Web URL", app.web_url.clone());
    Ok(0)
}

pub async fn destroy(paths: &Paths, name: Option<String>, confirm: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = match name {
        Some(n) => n,
        None => resolve_app(&c, &AppArg::default()).await?,
    };
    c.call(api::apps::Info { app: name.clone() }).await?;
    if confirm.as_deref() != Some(name.as_str()) {
        if let Some(c) = confirm {
            bail!("confirmation {c:?} did not match {name}: nothing destroyed");
        }
        super::confirm_by_typing(
            &format!("This will delete {name} including all add-ons, releases and dynos."),
            &name,
            format!(
                "this would destroy {name} and everything of it: confirm with --confirm {name}"
            ),
        )?;
    }
    // Backups go with the app (they are under its id in DYNO_HOME): say so first.
    let backups = c
        .call(api::pg_backups::List { app: name.clone() })
        .await
        .map_or(0, |l| l.len());
    if backups > 0 {
        eprintln!("Removing {name}'s {backups} Postgres backup(s) with it (download them first with dyno pg:backups:download)");
    }
    eprint!("Destroying {name} (including all add-ons)... ");
    c.call(api::apps::Destroy { app: name.clone() }).await?;
    eprintln!("done");
    Ok(0)
}

pub async fn rename(paths: &Paths, arg: AppArg, newname: &str) -> Result<i32> {
    api::apps::validate_name(newname).map_err(anyhow::Error::msg)?;
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let app = c
        .call(api::apps::Update {
            app: name.clone(),
            body: api::AppUpdate {
                name: Some(newname.to_string()),
            },
        })
        .await?;
    println!("Renaming {name} to {}... done", app.name);
    println!("{}", app.web_url);
    // As Heroku's CLI does: a `dyno` remote of the old app follows the rename.
    if let (Ok(repo), Some(url)) = (
        git2::Repository::discover(std::env::current_dir()?),
        app.git_url.as_deref(),
    ) {
        let old = repo
            .find_remote("dyno")
            .ok()
            .and_then(|r| r.url().map(str::to_string));
        if old.is_some_and(|u| u.trim_end_matches('/').ends_with(&format!("/{name}.git"))) {
            repo.remote_set_url("dyno", url)?;
            println!("Git remote dyno updated to {url}");
        }
    }
    Ok(0)
}
