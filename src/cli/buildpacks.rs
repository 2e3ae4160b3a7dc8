//! `buildpacks`, `buildpacks:set`, `buildpacks:add`, `buildpacks:remove`, `buildpacks:clear`:
//! the app's buildpack list, as Heroku's CLI manages it (1-based indexes).

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

/// What to do to the list.
pub enum Change {
    /// Replace the buildpack at INDEX (default 1; the whole list becomes this one when it had
    /// at most one).
    Set(String, Option<usize>),
    /// Insert at INDEX (default: append).
    Add(String, Option<usize>),
    /// Remove by URL or INDEX.
    Remove(Option<String>, Option<usize>),
    Clear,
}

async fn current(c: &Client, app: &str) -> Result<Vec<String>> {
    let list = c.call(api::buildpacks::List { app: app.into() }).await?;
    Ok(list.into_iter().map(|b| b.buildpack.url).collect())
}

fn print(app: &str, list: &[String]) {
    if list.is_empty() {
        println!("{app} has no buildpack set: shipped buildpacks are detected on each build.");
        return;
    }
    println!(
        "=== {app} Buildpack URL{}",
        if list.len() == 1 { "" } else { "s" }
    );
    if list.len() == 1 {
        println!("{}", list[0]);
    } else {
        for (i, u) in list.iter().enumerate() {
            println!("{}. {u}", i + 1);
        }
    }
}

pub async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let app = resolve_app(&c, &arg).await?;
    let list = current(&c, &app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print(&app, &list);
    }
    Ok(0)
}

/// A relative directory given on the command line means the caller's directory, not the app's.
fn absolute(url: String) -> Result<String> {
    if url.starts_with("./") || url.starts_with("../") || url == "." {
        let p = std::env::current_dir()?.join(&url);
        return Ok(p.canonicalize().unwrap_or(p).to_string_lossy().into_owned());
    }
    Ok(url)
}

/// Applies `change` to `list` (pure, for tests).
pub fn apply(mut list: Vec<String>, change: Change) -> Result<Vec<String>> {
    let check = |i: usize, max: usize| -> Result<usize> {
        if i == 0 || i > max {
            bail!("invalid index {i}: use 1 to {max}");
        }
        Ok(i - 1)
    };
    match change {
        Change::Set(url, None) if list.len() <= 1 => list = vec![url],
        Change::Set(url, None) => list[0] = url,
        Change::Set(url, Some(i)) => {
            if i == list.len() + 1 {
                list.push(url);
            } else {
                let i = check(i, list.len().max(1))?;
                if list.is_empty() {
                    list.push(url);
                } else {
                    list[i] = url;
                }
            }
        }
        Change::Add(url, _) if list.contains(&url) => {
            bail!("the buildpack {url} is already set on this app")
        }
        Change::Add(url, None) => list.push(url),
        Change::Add(url, Some(i)) => {
            let i = check(i.min(list.len() + 1), list.len() + 1)?;
            list.insert(i, url);
        }
        Change::Remove(Some(url), _) => {
            let before = list.len();
            list.retain(|u| *u != url);
            if list.len() == before {
                bail!("the buildpack {url} is not set on this app");
            }
        }
        Change::Remove(None, Some(i)) => {
            let i = check(i, list.len())?;
            list.remove(i);
        }
        Change::Remove(None, None) => bail!("name a buildpack URL or pass --index"),
        Change::Clear => list.clear(),
    }
    Ok(list)
}

pub async fn change(paths: &Paths, arg: AppArg, change: Change) -> Result<i32> {
    let change = match change {
        Change::Set(u, i) => Change::Set(absolute(u)?, i),
        Change::Add(u, i) => Change::Add(absolute(u)?, i),
        other => other,
    };
    let c = Client::connect(paths).await?;
    let app = resolve_app(&c, &arg).await?;
    let cleared = matches!(change, Change::Clear);
    let list = apply(current(&c, &app).await?, change)?;
    let body = api::BuildpackInstallationsUpdate {
        updates: list
            .iter()
            .map(|u| api::BuildpackUpdate {
                buildpack: u.clone(),
            })
            .collect(),
    };
    c.call(api::buildpacks::Update {
        app: app.clone(),
        body,
    })
    .await?;
    if cleared {
        println!("Buildpacks cleared. The next build of {app} detects its buildpack.");
    } else {
        print(&app, &list);
        println!("Next release on {app} will use {}.", list.join(", "));
    }
    Ok(0)
}

/// `dyno stack`: the stack and the runtimes it gives the buildpacks and dynos.
pub fn stack(json: bool) -> Result<i32> {
    let runtimes = crate::build::stack::probe();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "name": crate::build::STACK,
                "runtimes": runtimes,
            }))?
        );
        return Ok(0);
    }
    println!(
        "=== Stack {} (the host's /usr, read-only in every dyno and build)",
        crate::build::STACK
    );
    let rows: Vec<Vec<String>> = runtimes
        .iter()
        .map(|r| match (&r.version, &r.path) {
            (Some(v), Some(p)) => vec![r.name.clone(), v.clone(), p.clone()],
            _ => vec![
                r.name.clone(),
                "missing".into(),
                format!("apt-get install {}", r.package),
            ],
        })
        .collect();
    super::table(&["runtime", "version", "where"], &rows);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn list_changes_follow_herokus_cli() {
        assert_eq!(
            apply(v(&[]), Change::Set("python".into(), None)).unwrap(),
            v(&["python"])
        );
        assert_eq!(
            apply(v(&["ruby"]), Change::Set("python".into(), None)).unwrap(),
            v(&["python"])
        );
        assert_eq!(
            apply(v(&["a", "b"]), Change::Set("c".into(), Some(2))).unwrap(),
            v(&["a", "c"])
        );
        assert_eq!(
            apply(v(&["a"]), Change::Add("b".into(), None)).unwrap(),
            v(&["a", "b"])
        );
        assert_eq!(
            apply(v(&["a"]), Change::Add("b".into(), Some(1))).unwrap(),
            v(&["b", "a"])
        );
        assert!(apply(v(&["a"]), Change::Add("a".into(), None)).is_err());
        assert_eq!(
            apply(v(&["a", "b"]), Change::Remove(Some("a".into()), None)).unwrap(),
            v(&["b"])
        );
        assert_eq!(
            apply(v(&["a", "b"]), Change::Remove(None, Some(2))).unwrap(),
            v(&["a"])
        );
        assert!(apply(v(&["a"]), Change::Remove(None, Some(3))).is_err());
        assert!(apply(v(&["a", "b"]), Change::Clear).unwrap().is_empty());
    }
}
