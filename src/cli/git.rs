//! `git:remote` (adds the `dyno` remote to the current repository) and `git:hook pre-receive`
//! (run by git in the app's bare repository on every push; see `crate::git`).

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};

pub async fn remote(paths: &Paths, arg: AppArg, name: &str) -> Result<i32> {
    let cwd = std::env::current_dir()?;
    let repo = git2::Repository::discover(&cwd).with_context(|| {
        format!(
            "{} is not in a git repository: run `git init` first",
            cwd.display()
        )
    })?;
    let c = Client::connect(paths).await?;
    let app = resolve_app(&c, &arg).await?;
    let a = c.call(api::apps::Info { app: app.clone() }).await?;
    let Some(url) = a.git_url else {
        bail!("{app} has no git repository");
    };
    match repo.find_remote(name) {
        Ok(r) if r.url() == Some(url.as_str()) => {}
        Ok(_) => repo.remote_set_url(name, &url)?,
        Err(_) => {
            repo.remote(name, &url)?;
        }
    }
    println!("set git remote {name} to {url}");
    println!("Deploy with `git push {name} main` (or master).");
    Ok(0)
}

/// The pre-receive hook: builds the commit pushed to main/master and streams its output to
/// stderr (git shows it to the pusher as `remote:` lines). Exit 1 rejects the push.
pub async fn pre_receive(paths: &Paths) -> Result<i32> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let quarantine = std::env::var("GIT_QUARANTINE_PATH").ok().map(|q| {
        let p = std::path::PathBuf::from(q);
        std::env::current_dir()
            .map(|d| d.join(&p))
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    });
    // Set by the daemon's git over HTTPS for the push it runs (never by a local `git push`).
    let over_https = std::env::var_os("DYNO_PUSH_OVER_HTTPS").is_some();
    // A daemon this hook starts must not inherit the push's git environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            std::env::remove_var(k);
        }
    }
    let repo_dir = std::env::current_dir()?.canonicalize()?;
    let app = repo_dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".git"))
        .map(str::to_string)
        .context("the hook must run in an app's repository (<app>.git)")?;
    let updates = crate::git::parse_updates(&input);
    let mut err = std::io::stderr();
    let Some(update) = crate::git::to_deploy(&updates) else {
        for u in &updates {
            let branch = u.name.trim_start_matches("refs/heads/");
            writeln!(
                err,
                "Stored {branch}: only pushes to main or master are deployed."
            )?;
        }
        return Ok(0);
    };
    let branch = update.name.trim_start_matches("refs/heads/");
    writeln!(err, "Building {app} from {branch} ({})", &update.new[..7])?;
    let c = Client::connect(paths).await?;
    let a = c.call(api::apps::Info { app: app.clone() }).await?;
    let build = super::up::build(
        &c,
        &a.name,
        &api::BuildCreate {
            source_dir: String::new(),
            git: Some(api::GitSource {
                commit: update.new.clone(),
                quarantine,
                over_https,
            }),
        },
        &mut err,
    )
    .await?;
    if build.status != "succeeded" {
        writeln!(err, " !     Push rejected, failed to compile {app}.")?;
        writeln!(err, " !     The running release is unchanged.")?;
        return Ok(1);
    }
    super::up::release(&c, &a, &build, &mut err).await?;
    writeln!(err, "-----> Deployed {}", &update.new[..7])?;
    Ok(0)
}
