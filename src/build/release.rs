//! `bin/release` output (YAML: `default_process_types`, `addons`) and the slug's process types:
//! the Procfile's, plus buildpack defaults for the types the Procfile does not define.

use crate::procfile::Procfile;
use anyhow::{bail, Context, Result};
use serde_norway::Value;

/// What a buildpack's `bin/release` declared.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReleaseInfo {
    /// (type, command) in the order the YAML lists them.
    pub default_process_types: Vec<(String, String)>,
    /// Add-on plans the buildpack asks for (recorded; dyno has no add-ons yet).
    pub addons: Vec<String>,
}

/// Parses `bin/release` output. Empty output, a missing leading `---` and `key:` with no value
/// are all fine; anything but a mapping at the top is an error.
pub fn parse(yaml: &str) -> Result<ReleaseInfo> {
    if yaml.trim().is_empty() {
        return Ok(ReleaseInfo::default());
    }
    let v: Value = serde_norway::from_str(yaml).context("bin/release printed invalid YAML")?;
    let map = match v {
        Value::Null => return Ok(ReleaseInfo::default()),
        Value::Mapping(m) => m,
        _ => bail!("bin/release must print a YAML mapping (default_process_types, addons)"),
    };
    let mut info = ReleaseInfo::default();
    match map.get("default_process_types") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(types)) => {
            for (k, v) in types {
                let (Some(name), Some(cmd)) = (scalar(k), scalar(v)) else {
                    bail!("bin/release: default_process_types must map names to commands");
                };
                info.default_process_types.push((name, cmd));
            }
        }
        Some(_) => bail!("bin/release: default_process_types must be a mapping"),
    }
    match map.get("addons") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(list)) => {
            for a in list {
                info.addons
                    .push(scalar(a).context("bin/release: addons must be a list of names")?);
            }
        }
        Some(_) => bail!("bin/release: addons must be a list"),
    }
    Ok(info)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The slug's process types: the Procfile's in its order, then the buildpack's defaults for the
/// types the Procfile does not define. Returns (all types, the defaults that were used).
pub fn process_types(
    procfile: Option<&Procfile>,
    defaults: &[(String, String)],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut types: Vec<(String, String)> = procfile
        .map(|p| {
            p.types
                .iter()
                .map(|t| (t.name.clone(), t.command.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut used = vec![];
    for (name, cmd) in defaults {
        if valid_type_name(name) && !types.iter().any(|(n, _)| n == name) {
            types.push((name.clone(), cmd.clone()));
            used.push(name.clone());
        }
    }
    (types, used)
}

fn valid_type_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_yaml_in_every_shape_buildpacks_print() {
        assert_eq!(parse("").unwrap(), ReleaseInfo::default());
        assert_eq!(parse("---\n").unwrap(), ReleaseInfo::default());
        assert_eq!(parse("--- {}\n").unwrap(), ReleaseInfo::default());
        let want = ReleaseInfo {
            default_process_types: vec![
                ("web".into(), "npm start".into()),
                ("worker".into(), "node worker.js".into()),
            ],
            addons: vec!["heroku-postgresql:essential-0".into()],
        };
        let with = "---\naddons:\n  - heroku-postgresql:essential-0\ndefault_process_types:\n  web: npm start\n  worker: node worker.js\n";
        assert_eq!(parse(with).unwrap(), want);
        let without = with.trim_start_matches("---\n");
        assert_eq!(parse(without).unwrap(), want);
        assert_eq!(
            parse("default_process_types:\naddons:\nconfig_vars:\n  A: b\n").unwrap(),
            ReleaseInfo::default()
        );
        // A quoted command with YAML-special characters.
        let q = parse("default_process_types:\n  web: \"bin/start --port=$PORT # x\"\n").unwrap();
        assert_eq!(q.default_process_types[0].1, "bin/start --port=$PORT # x");
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("default_process_types: [a]\n").is_err());
        assert!(parse("default_process_types: {web: [x]}\n").is_err());
        assert!(parse("{unclosed\n").is_err());
    }

    #[test]
    fn the_procfile_wins_over_defaults() {
        let p = Procfile::parse("web: gunicorn app:app\nworker: celery\n").unwrap();
        let defaults = vec![
            ("web".to_string(), "npm start".to_string()),
            ("console".to_string(), "node".to_string()),
        ];
        let (types, used) = process_types(Some(&p), &defaults);
        assert_eq!(
            types,
            vec![
                ("web".to_string(), "gunicorn app:app".to_string()),
                ("worker".to_string(), "celery".to_string()),
                ("console".to_string(), "node".to_string()),
            ]
        );
        assert_eq!(used, vec!["console".to_string()]);
        let (types, used) = process_types(None, &defaults);
        assert_eq!(types.len(), 2);
        assert_eq!(used.len(), 2);
        let (types, _) = process_types(None, &[("bad name".into(), "x".into())]);
        assert!(types.is_empty());
    }
}
