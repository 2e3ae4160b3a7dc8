//! `dyno up`: the whole deploy in one command, as `git push heroku main` feels.

use super::{app_from_dir_record, app_from_git_remote, AppArg};
use crate::api;
use crate::client::{ApiError, Client};
use crate::paths::Paths;
use anyhow::{bail, Result};
use hyper::StatusCode;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub async fn up(paths: &Paths, arg: AppArg) -> Result<i32> {
    let dir = std::env::current_dir()?.canonicalize()?;
    // Check what can be checked here before anything changes on the daemon's side.
    match std::fs::read(dir.join("Procfile")) {
        Ok(bytes) => {
            crate::procfile::Procfile::parse_bytes(&bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::read(dir.join(crate::appjson::FILE)) {
        Ok(bytes) => {
            crate::appjson::parse(&bytes).map_err(anyhow::Error::msg)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let c = Client::connect(paths).await?;
    let name = match &arg.app {
        Some(a) => a.clone(),
        None => match app_from_git_remote(&dir) {
            Some(a) => a,
            None => match app_from_dir_record(&c, &dir).await? {
                Some(a) => a,
                None => {
                    let base = dir
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match crate::names::from_dir_name(&base) {
                        Some(n) => n,
                        None => {
                            bail!("{base:?} cannot be turned into an app name: pass --app NAME")
                        }
                    }
                }
            },
        },
    };
    api::apps::validate_name(&name).map_err(anyhow::Error::msg)?;

    let app = match c.call(api::apps::Info { app: name.clone() }).await {
        Ok(a) => a,
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|e| e.status == StatusCode::NOT_FOUND) =>
        {
            // No app for a directory nothing could build.
            if !crate::build::buildpacks::looks_buildable(&dir) {
                bail!(
                    "nothing to deploy in {}: no Procfile, and nothing a shipped buildpack looks for (requirements.txt, package.json, Gemfile, go.mod, index.html…)",
                    dir.display()
                );
            }
            print!("-----> Creating app {name}... ");
            std::io::stdout().flush()?;
            let a = c
                .call(api::apps::Create {
                    body: api::AppCreate {
                        name: Some(name.clone()),
                    },
                })
                .await?;
            println!("done");
            a
        }
        Err(e) => return Err(e),
    };
    super::apps::link(&c, &app.name).await?;

    println!("-----> Building slug from {} ...", dir.display());
    let started = Instant::now();
    let mut out = std::io::stdout();
    let build = build(
        &c,
        &app.name,
        &api::BuildCreate {
            source_dir: dir.to_string_lossy().into(),
            git: None,
        },
        &mut out,
    )
    .await?;
    if build.status != "succeeded" {
        bail!(
            "build failed: {}; the app's running release is unchanged",
            build.error.unwrap_or_else(|| "see the output above".into())
        );
    }
    release(&c, &app, &build, &mut out).await?;
    tracing::debug!("deployed in {:?}", started.elapsed());
    Ok(0)
}

/// Starts a build and copies its output to `out` as it comes; returns the finished build.
pub async fn build(
    c: &Client,
    app: &str,
    req: &api::BuildCreate,
    out: &mut dyn Write,
) -> Result<api::Build> {
    let build = c
        .call(api::builds::Create {
            app: app.into(),
            body: req.clone(),
        })
        .await?;
    c.stream(&build.output_stream_url, |t| {
        let _ = out.write_all(t.as_bytes());
        let _ = out.flush();
    })
    .await?;
    c.call(api::builds::Info {
        app: app.into(),
        build: build.id,
    })
    .await
}

/// After a successful build: waits for the new release's dynos, prints the URL and how to
/// scale the types that run no dyno.
pub async fn release(
    c: &Client,
    app: &api::App,
    build: &api::Build,
    out: &mut dyn Write,
) -> Result<()> {
    let formation = c
        .call(api::formation::List {
            app: app.name.clone(),
        })
        .await?;
    let web = formation
        .iter()
        .find(|f| f.process_type == "web")
        .map_or(0, |f| f.quantity);
    let scaled: Vec<String> = formation
        .iter()
        .filter(|f| f.quantity > 0)
        .map(|f| format!("{}={}", f.process_type, f.quantity))
        .collect();
    if !scaled.is_empty() {
        write!(out, "-----> Scaling {}... ", scaled.join(" "))?;
        out.flush()?;
        let crashed = wait_up(c, &app.name, build, &formation).await?;
        writeln!(out, "done")?;
        // The release is live and web is up: other types that crashed are a warning, not a
        // failed deploy (scripts read the exit code).
        for name in crashed {
            writeln!(
                out,
                " !     {name} crashed at boot: see `dyno logs -a {} --dyno {name}`",
                app.name
            )?;
        }
    }
    let others: Vec<&str> = formation
        .iter()
        .filter(|f| f.quantity == 0 && f.process_type != "web")
        .map(|f| f.process_type.as_str())
        .collect();
    if web > 0 {
        writeln!(out, "       {}", app.web_url)?;
        if let Some(https) = super::certs::trusted_https_url(c, &app.name).await {
            writeln!(out, "       {https}")?;
        }
    } else if formation.iter().all(|f| f.process_type != "web") {
        writeln!(out, "       No web process type: nothing answers HTTP.")?;
    }
    if !others.is_empty() {
        writeln!(
            out,
            "       Scale other process types with `dyno ps:scale {}`",
            others
                .iter()
                .map(|t| format!("{t}=1"))
                .collect::<Vec<_>>()
                .join(" ")
        )?;
    }
    Ok(())
}

/// Waits until the release's web dynos are up (they answer on their port), with a spinner on a
/// terminal, and the other types up or crashed (a second at most after web); returns the names
/// of those that crashed. A crashed web dyno, or web not up in time, is an error that points to
/// the logs.
async fn wait_up(
    c: &Client,
    app: &str,
    build: &api::Build,
    formation: &[api::Formation],
) -> Result<Vec<String>> {
    let version = build.release.as_ref().map_or(0, |r| r.version);
    let want: u32 = formation.iter().map(|f| f.quantity).sum();
    let want_web: u32 = formation
        .iter()
        .filter(|f| f.process_type == "web")
        .map(|f| f.quantity)
        .sum();
    let spinner = std::io::stderr().is_terminal().then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.enable_steady_tick(Duration::from_millis(100));
        s.set_message("waiting for dynos");
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut web_ready_at: Option<Instant> = None;
    let result = loop {
        let dynos = c.call(api::dynos::List { app: app.into() }).await?;
        let current: Vec<&api::Dyno> = dynos
            .iter()
            .filter(|d| d.release.version == version && d.process_type != "run")
            .collect();
        let is_web = |d: &&&api::Dyno| d.process_type == "web";
        if let Some(d) = current.iter().filter(is_web).find(|d| d.state == "crashed") {
            break Err(anyhow::anyhow!(
                "{} crashed: see `dyno logs -a {app}`",
                d.name
            ));
        }
        let web_up = current
            .iter()
            .filter(is_web)
            .filter(|d| d.state == "up")
            .count() as u32;
        // Other types count once crashed, or once they have stayed up past a second after web
        // (a worker that fails at boot exits within it).
        let settled = current
            .iter()
            .filter(|d| d.state == "crashed" || (d.state == "up" && is_web(d)))
            .count() as u32;
        let crashed: Vec<String> = current
            .iter()
            .filter(|d| d.state == "crashed")
            .map(|d| d.name.clone())
            .collect();
        if web_up >= want_web {
            let at = *web_ready_at.get_or_insert_with(Instant::now);
            if settled >= want || at.elapsed() > Duration::from_secs(1) {
                break Ok(crashed);
            }
        }
        if Instant::now() > deadline {
            break Err(anyhow::anyhow!(
                "dynos not up after 90 s: see `dyno logs -a {app}`"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    result
}
