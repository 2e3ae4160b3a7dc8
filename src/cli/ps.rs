//! `ps`, `ps:scale`, `ps:restart`, `ps:stop`, `ps:kill`, `run:detached`.

use super::{ago, resolve_app, AppArg};
use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Result};

pub async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let dynos = c.call(api::dynos::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&dynos)?);
        return Ok(0);
    }
    if dynos.is_empty() {
        println!("No dynos on {name}");
        return Ok(0);
    }
    let formation = c.call(api::formation::List { app: name.clone() }).await?;
    let color = super::color();
    let mut last_type = String::new();
    for d in &dynos {
        if d.process_type != last_type {
            if !last_type.is_empty() {
                println!();
            }
            last_type = d.process_type.clone();
            let n = dynos
                .iter()
                .filter(|x| x.process_type == d.process_type)
                .count();
            let cmd = formation
                .iter()
                .find(|f| f.process_type == d.process_type)
                .map_or(d.command.as_str(), |f| f.command.as_str());
            if is_one_off(d) {
                println!("=== {}: one-off processes ({n})", d.process_type);
            } else {
                println!("=== {} (Basic): {} ({n})", d.process_type, cmd);
            }
        }
        let state = if color {
            let code = match d.state.as_str() {
                "up" => "32",
                "starting" => "33",
                "crashed" => "31",
                _ => "2",
            };
            format!("\x1b[{code}m{}\x1b[0m", d.state)
        } else {
            d.state.clone()
        };
        let one_off = if is_one_off(d) {
            format!(": {}", d.command)
        } else {
            String::new()
        };
        println!(
            "{}: {} {} (~ {}) v{}{one_off}",
            d.name,
            state,
            d.updated_at,
            ago(&d.created_at),
            d.release.version
        );
    }
    Ok(0)
}

fn is_one_off(d: &api::Dyno) -> bool {
    api::dynos::is_one_off_type(&d.process_type)
}

/// `ps:restart [DYNO|TYPE]`, `ps:stop DYNO|TYPE`, `ps:kill DYNO|TYPE`.
pub async fn stop(paths: &Paths, arg: AppArg, target: Option<String>, how: &str) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let what = match &target {
        None => "dynos".to_string(),
        Some(t) if t.contains('.') => format!("{t} dyno"),
        Some(t) => format!("{t} dynos"),
    };
    let verb = match (how, &target) {
        ("restart", _) => "Restarting",
        (_, None) => bail!("name the dyno or process type to stop"),
        ("kill", _) => "Killing",
        _ => "Stopping",
    };
    eprint!("{verb} {what} on {name}... ");
    let app = name.clone();
    match (how, target) {
        ("restart", None) => c.call(api::dynos::RestartAll { app }).await?,
        ("restart", Some(dyno)) => c.call(api::dynos::Restart { app, dyno }).await?,
        ("kill", Some(dyno)) => c.call(api::dynos::Kill { app, dyno }).await?,
        // No target was ruled out above.
        (_, dyno) => {
            let dyno = dyno.unwrap_or_default();
            c.call(api::dynos::Stop { app, dyno }).await?
        }
    };
    eprintln!("done");
    Ok(0)
}

/// `run:detached COMMAND`: a one-off dyno whose output goes to the log stream.
pub async fn run_detached(
    paths: &Paths,
    arg: AppArg,
    command: &[String],
    env: Option<String>,
) -> Result<i32> {
    let command = super::run::build_command(command);
    if command.trim().is_empty() {
        bail!("no command given: dyno run:detached COMMAND");
    }
    // Heroku's `--env 'A=1;B=2'`.
    let mut vars = std::collections::BTreeMap::new();
    for kv in env
        .iter()
        .flat_map(|e| e.split(';'))
        .filter(|s| !s.is_empty())
    {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("invalid --env {kv:?}: use KEY=value;KEY2=value2");
        };
        api::config::validate_key(k).map_err(anyhow::Error::msg)?;
        vars.insert(k.to_string(), v.to_string());
    }
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!("Running `{command}` on {name}... ");
    let d = c
        .call(api::dynos::Create {
            app: name.clone(),
            body: api::DynoCreate {
                command,
                attach: Some(false),
                env: (!vars.is_empty()).then_some(vars),
                force_no_tty: None,
                size: None,
                process_type: Some("run".into()),
                time_to_live: None,
            },
        })
        .await?;
    eprintln!("up, {} (Basic)", d.name);
    println!(
        "Run `dyno logs -a {name} --dyno {}` to view the output.",
        d.name
    );
    Ok(0)
}

/// One `ps:scale` argument: `web=3`, `web+1`, `worker-1` (a `:size` suffix is accepted and
/// ignored: every dyno here has the same size).
#[derive(Debug, PartialEq)]
pub enum Change {
    Set(String, i64),
    Add(String, i64),
}

pub fn parse_change(s: &str) -> Result<Change> {
    let bad = || {
        anyhow::anyhow!("invalid scale argument {s:?}: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3)")
    };
    let pos = s.find(['=', '+', '-'].as_slice()).ok_or_else(bad)?;
    // A dash inside a type name (`my-worker=2`) belongs to the name when `=` follows.
    let pos = match s.find('=') {
        Some(eq) => eq,
        None => pos,
    };
    let (name, rest) = s.split_at(pos);
    let op = &rest[..1];
    let n = rest[1..].split(':').next().unwrap_or("");
    if name.is_empty() {
        return Err(bad());
    }
    let n: i64 = n.parse().map_err(|_| bad())?;
    match op {
        "=" if n < 0 => bail!("invalid scale argument {s:?}: the quantity must be 0 or more"),
        "=" => Ok(Change::Set(name.into(), n)),
        "+" if n >= 0 => Ok(Change::Add(name.into(), n)),
        "-" if n >= 0 => Ok(Change::Add(name.into(), -n)),
        _ => Err(bad()),
    }
}

pub async fn scale(paths: &Paths, arg: AppArg, changes: &[String]) -> Result<i32> {
    let parsed: Vec<Change> = changes
        .iter()
        .map(|s| parse_change(s))
        .collect::<Result<_>>()?;
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let formation = c.call(api::formation::List { app: name.clone() }).await?;
    let mut updates = vec![];
    for ch in parsed {
        let (ptype, q) = match ch {
            Change::Set(t, n) => (t, n),
            Change::Add(t, n) => {
                let cur = formation
                    .iter()
                    .find(|f| f.process_type == t)
                    .map(|f| f.quantity as i64);
                let Some(cur) = cur else {
                    bail!("no process type {t} on {name}");
                };
                if cur + n < 0 {
                    bail!("cannot scale {t} below 0 (it has {cur})");
                }
                (t, cur + n)
            }
        };
        api::formation::check_quantity(&ptype, q).map_err(anyhow::Error::msg)?;
        updates.push(api::FormationUpdate {
            process_type: ptype,
            quantity: Some(q.into()),
            size: None,
            dyno_size: None,
        });
    }
    let summary: Vec<String> = updates
        .iter()
        .map(|u| format!("{}={}", u.process_type, u.quantity.unwrap_or(0.into())))
        .collect();
    eprint!("Scaling dynos... ");
    c.call(api::formation::Update {
        app: name.clone(),
        body: api::FormationBatchUpdate { updates },
    })
    .await?;
    eprintln!("done, now running {}", summary.join(", "));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scale_arguments() {
        assert_eq!(parse_change("web=3").unwrap(), Change::Set("web".into(), 3));
        assert_eq!(
            parse_change("web=2:basic").unwrap(),
            Change::Set("web".into(), 2)
        );
        assert_eq!(parse_change("web+1").unwrap(), Change::Add("web".into(), 1));
        assert_eq!(
            parse_change("worker-2").unwrap(),
            Change::Add("worker".into(), -2)
        );
        assert_eq!(
            parse_change("my-worker=2").unwrap(),
            Change::Set("my-worker".into(), 2)
        );
        assert!(parse_change("web=-1")
            .unwrap_err()
            .to_string()
            .contains("0 or more"));
        assert!(parse_change("web").is_err());
        assert!(parse_change("=3").is_err());
        assert!(parse_change("web=x").is_err());
    }
}
