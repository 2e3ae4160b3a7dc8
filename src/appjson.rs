//! `app.json` (Heroku's app manifest), the parts dyno acts on: `addons` (Heroku's schema:
//! `"heroku-postgresql"`, `"heroku-postgresql:essential-0"` or `{"plan": …, "as": …}`),
//! provisioned on an app's first deploy, and `cron` (Dokku's: `[{"command": …, "schedule":
//! …}]`), which become scheduler jobs. Every other key is Heroku's business (`name`, `env`,
//! `scripts`, `formation`…) and is left alone.
//!
//! Checked as a whole before anything changes: by `dyno up` before it creates the app, and by
//! the build before any buildpack runs. Errors name the file.

use crate::api::{addons::parse_plan, addons::validate_attachment_name, scheduler::parse_schedule};
use serde_json::Value;

pub const FILE: &str = "app.json";
/// Larger files are refused whole, never read in part.
pub const MAX_SIZE: usize = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppJson {
    pub addons: Vec<AddonSpec>,
    pub cron: Vec<CronEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AddonSpec {
    /// The full plan, `heroku-postgresql:essential-0`.
    pub plan: String,
    /// `as`: the attachment's name.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CronEntry {
    pub command: String,
    pub schedule: String,
}

fn err(msg: impl std::fmt::Display) -> String {
    format!("{FILE}: {msg}")
}

/// Parses and checks an `app.json`; the error names the file and the entry.
pub fn parse(bytes: &[u8]) -> Result<AppJson, String> {
    if bytes.len() > MAX_SIZE {
        return Err(err(format!("larger than {} bytes", MAX_SIZE)));
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{FILE} is not valid JSON: {e}"))?;
    let Value::Object(map) = v else {
        return Err(err(
            "must be a JSON object ({\"addons\": […], \"cron\": […]})",
        ));
    };
    let mut out = AppJson::default();
    match map.get("addons") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, a) in list.iter().enumerate() {
                let (plan, name) = match a {
                    Value::String(s) => (s.as_str(), None),
                    Value::Object(o) => match o.get("plan") {
                        Some(Value::String(p)) => (
                            p.as_str(),
                            match o.get("as") {
                                None | Some(Value::Null) => None,
                                Some(Value::String(n)) => Some(
                                    validate_attachment_name(n)
                                        .map_err(|e| err(format!("addons[{i}]: {e}")))?,
                                ),
                                Some(_) => {
                                    return Err(err(format!(
                                        "addons[{i}]: \"as\" must be a string"
                                    )))
                                }
                            },
                        ),
                        _ => {
                            return Err(err(format!(
                                "addons[{i}]: an object needs a \"plan\" string"
                            )))
                        }
                    },
                    _ => {
                        return Err(err(format!(
                        "addons[{i}]: expected a plan (\"heroku-postgresql\") or {{\"plan\": …}}"
                    )))
                    }
                };
                let (_, full) = parse_plan(plan).map_err(|e| err(format!("addons[{i}]: {e}")))?;
                out.addons.push(AddonSpec { plan: full, name });
            }
        }
        Some(_) => return Err(err("\"addons\" must be a list")),
    }
    match map.get("cron") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                let field = |k: &str| -> Result<String, String> {
                    match c.get(k) {
                        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                        _ => Err(err(format!("cron[{i}]: needs a \"{k}\" string"))),
                    }
                };
                let (command, schedule) = (field("command")?, field("schedule")?);
                parse_schedule(&schedule).map_err(|e| err(format!("cron[{i}]: {e}")))?;
                out.cron.push(CronEntry {
                    command,
                    schedule: schedule.split_whitespace().collect::<Vec<_>>().join(" "),
                });
            }
        }
        Some(_) => return Err(err("\"cron\" must be a list")),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heroku_addons_and_dokku_cron() {
        let j = parse(
            br#"{"name": "x", "env": {"A": {"value": "b"}},
                 "addons": ["heroku-postgresql", "heroku-redis:mini",
                            {"plan": "heroku-postgresql:essential-1", "as": "analytics"}],
                 "cron": [{"command": "python digest.py", "schedule": "*/10  * * * *"}]}"#,
        )
        .unwrap();
        assert_eq!(
            j.addons,
            vec![
                AddonSpec {
                    plan: "heroku-postgresql:essential-0".into(),
                    name: None
                },
                AddonSpec {
                    plan: "heroku-redis:mini".into(),
                    name: None
                },
                AddonSpec {
                    plan: "heroku-postgresql:essential-1".into(),
                    name: Some("ANALYTICS".into())
                },
            ]
        );
        assert_eq!(
            j.cron,
            vec![CronEntry {
                command: "python digest.py".into(),
                schedule: "*/10 * * * *".into()
            }]
        );
        assert_eq!(parse(b"{}").unwrap(), AppJson::default());
    }

    #[test]
    fn errors_name_the_file_and_the_entry() {
        for (text, want) in [
            (
                &b"{\"addons\": [\"heroku-postgresql\",]}"[..],
                "app.json is not valid JSON",
            ),
            (b"[1]", "app.json: must be a JSON object"),
            (
                b"{\"addons\": \"heroku-postgresql\"}",
                "app.json: \"addons\" must be a list",
            ),
            (
                b"{\"addons\": [\"heroku-mysql\"]}",
                "app.json: addons[0]: Couldn't find",
            ),
            (
                b"{\"addons\": [{\"as\": \"X\"}]}",
                "app.json: addons[0]: an object needs",
            ),
            (b"{\"addons\": [3]}", "app.json: addons[0]: expected a plan"),
            (
                b"{\"cron\": [{\"command\": \"x\"}]}",
                "app.json: cron[0]: needs a \"schedule\"",
            ),
            (
                b"{\"cron\": [{\"command\": \"x\", \"schedule\": \"* 99 * * *\"}]}",
                "app.json: cron[0]: invalid schedule \"* 99 * * *\": the hour field",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(text));
        }
    }
}
