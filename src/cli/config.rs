//! `config`, `config:get`, `config:set`, `config:unset`: the app's config vars, printed as
//! Heroku's CLI prints them. Every change makes a new release that restarts the dynos.

use super::{resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

/// `KEY='value'`, safe to `eval` in a POSIX shell whatever the value holds.
pub fn shell_line(key: &str, value: &str) -> String {
    format!("{key}='{}'", value.replace('\'', r"'\''"))
}

/// Heroku's `styledObject`: `KEY:` padded so the values line up.
pub fn styled(vars: &[(String, String)]) -> String {
    let w = vars.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    vars.iter()
        .map(|(k, v)| format!("{:<w$}{v}\n", format!("{k}:")))
        .collect()
}

/// Prints config vars as `--json`, `--shell` or Heroku's aligned listing under `header`.
pub fn print(vars: &api::ConfigVars, header: &str, json: bool, shell: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(vars)?);
    } else if shell {
        for (k, v) in vars {
            println!("{}", shell_line(k, v));
        }
    } else {
        println!("=== {header}\n");
        let pairs: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        print!("{}", styled(&pairs));
    }
    Ok(())
}

pub async fn list(paths: &Paths, arg: AppArg, json: bool, shell: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let vars = c.call(api::config::Get { app: name.clone() }).await?;
    print(&vars, &format!("{name} Config Vars"), json, shell)?;
    Ok(0)
}

pub async fn get(paths: &Paths, arg: AppArg, key: &str, shell: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let vars = c.call(api::config::Get { app: name.clone() }).await?;
    // As Heroku: an unset key prints an empty line.
    let value = vars.get(key).map(String::as_str).unwrap_or("");
    if shell {
        println!("{}", shell_line(key, value));
    } else {
        println!("{value}");
    }
    Ok(0)
}

/// Parses `KEY=value` arguments (the value may hold `=` and newlines), checking every key.
pub fn parse_assignments(args: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = vec![];
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            bail!("invalid argument {a:?}: use KEY=value");
        };
        api::config::validate_key(k).map_err(anyhow::Error::msg)?;
        out.retain(|(key, _)| key != k);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

async fn latest_version(c: &Client, name: &str) -> Result<u32> {
    let releases = c.call(api::releases::List { app: name.into() }).await?;
    Ok(releases.last().map_or(0, |r| r.version))
}

fn and_list(keys: &[String]) -> String {
    match keys {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

pub async fn set(paths: &Paths, arg: AppArg, args: &[String]) -> Result<i32> {
    let vars = parse_assignments(args)?;
    // The new values alone over the limit: no need to ask the daemon (which checks the whole
    // config the change makes).
    api::config::check_total(vars.iter().map(|(k, v)| (k, v))).map_err(anyhow::Error::msg)?;
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let keys: Vec<String> = vars.iter().map(|(k, _)| k.clone()).collect();
    eprint!("Setting {} and restarting {name}... ", and_list(&keys));
    let update: api::ConfigVarsUpdate = vars
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    c.call(api::config::Update {
        app: name.clone(),
        body: update,
    })
    .await?;
    eprintln!("done, v{}", latest_version(&c, &name).await?);
    print!("{}", styled(&vars));
    Ok(0)
}

pub async fn unset(paths: &Paths, arg: AppArg, keys: &[String]) -> Result<i32> {
    for k in keys {
        api::config::validate_key(k).map_err(anyhow::Error::msg)?;
    }
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!("Unsetting {} and restarting {name}... ", and_list(keys));
    let update: api::ConfigVarsUpdate = keys.iter().map(|k| (k.clone(), None)).collect();
    c.call(api::config::Update {
        app: name.clone(),
        body: update,
    })
    .await?;
    eprintln!("done, v{}", latest_version(&c, &name).await?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_heroku() {
        assert_eq!(shell_line("A", "it's"), r"A='it'\''s'");
        assert_eq!(shell_line("B", "x\ny"), "B='x\ny'");
        let v = vec![
            ("FOO".to_string(), "bar".to_string()),
            ("LONGER_KEY".to_string(), "v".to_string()),
        ];
        assert_eq!(styled(&v), "FOO:        bar\nLONGER_KEY: v\n");
        assert_eq!(
            and_list(&["A".into(), "B".into(), "C".into()]),
            "A, B and C"
        );
    }

    #[test]
    fn parses_assignments() {
        let v = parse_assignments(&["A=1".into(), "B=x=y".into(), "A=2".into()]).unwrap();
        assert_eq!(
            v,
            vec![("B".into(), "x=y".into()), ("A".into(), "2".into())]
        );
        assert!(parse_assignments(&["A".into()])
            .unwrap_err()
            .to_string()
            .contains("KEY=value"));
        assert!(parse_assignments(&["1A=x".into()]).is_err());
        assert!(parse_assignments(&["A-B=x".into()]).is_err());
    }
}
