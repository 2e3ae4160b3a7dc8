//! Procfile parsing, with a clear rule and a clear message for every edge case
//! (shared/notes/procfile.md).
//!
//! A line is `<type>: <command>`: the type is `[A-Za-z0-9_-]+`, spaces are allowed around the
//! colon, the command is everything after it (a `#` in it is left to the shell). Blank lines and
//! lines starting with `#` are comments. Duplicate types, merge-conflict markers, missing colons
//! and empty commands are errors naming the line.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procfile {
    /// In file order.
    pub types: Vec<ProcessType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Procfile line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Procfile {
    pub fn parse(text: &str) -> Result<Procfile, ParseError> {
        let mut types: Vec<(usize, ProcessType)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let err = |message: String| ParseError { line: n, message };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if ["<<<<<<<", "=======", ">>>>>>>"]
                .iter()
                .any(|m| line.starts_with(m))
            {
                return Err(err(
                    "merge-conflict marker: resolve the conflict first".into()
                ));
            }
            let Some((name, command)) = line.split_once(':') else {
                return Err(err(format!(
                    "expected `<process type>: <command>`, got {line:?}"
                )));
            };
            let name = name.trim();
            let command = command.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(err(format!(
                    "invalid process type {name:?}: use letters, digits, `_` and `-`"
                )));
            }
            if name.len() > 30 {
                return Err(err(format!(
                    "process type {name:?} is longer than 30 characters"
                )));
            }
            if command.is_empty() {
                return Err(err(format!("process type {name:?} has no command")));
            }
            if let Some((first, _)) = types.iter().find(|(_, t)| t.name == name) {
                return Err(err(format!(
                    "process type {name:?} is defined twice (lines {first} and {n})"
                )));
            }
            types.push((
                n,
                ProcessType {
                    name: name.to_string(),
                    command: command.to_string(),
                },
            ));
        }
        Ok(Procfile {
            types: types.into_iter().map(|(_, t)| t).collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&ProcessType> {
        self.types.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<(String, String)>, String> {
        Procfile::parse(s)
            .map(|p| p.types.into_iter().map(|t| (t.name, t.command)).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_types_in_order() {
        let p = parse("web: ./server --port $PORT\n\n# comment\nworker:python w.py\n").unwrap();
        assert_eq!(
            p,
            vec![
                ("web".into(), "./server --port $PORT".into()),
                ("worker".into(), "python w.py".into())
            ]
        );
    }

    #[test]
    fn spaces_around_colon_and_inline_hash() {
        let p = parse("  web   :  gunicorn app # not a comment \r\n").unwrap();
        assert_eq!(
            p,
            vec![("web".into(), "gunicorn app # not a comment".into())]
        );
    }

    #[test]
    fn command_may_hold_colons() {
        let p = parse("web: python -c 'print(1)' http://x:80/").unwrap();
        assert_eq!(p[0].1, "python -c 'print(1)' http://x:80/");
    }

    #[test]
    fn release_is_a_type() {
        let p = parse("release: ./migrate\nweb: x").unwrap();
        assert_eq!(p[0].0, "release");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("web: a\nweb: b").unwrap_err();
        assert!(e.contains("line 2") && e.contains("lines 1 and 2"), "{e}");
        let e = parse("web: a\n<<<<<<< HEAD\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("merge-conflict"), "{e}");
        let e = parse("just a command").unwrap_err();
        assert!(e.contains("line 1") && e.contains("expected"), "{e}");
        let e = parse("web:").unwrap_err();
        assert!(e.contains("no command"), "{e}");
        let e = parse("we b: x").unwrap_err();
        assert!(e.contains("invalid process type"), "{e}");
        let e = parse(": x").unwrap_err();
        assert!(e.contains("invalid process type"), "{e}");
    }

    #[test]
    fn empty_procfile_has_no_types() {
        assert!(parse("# nothing\n\n").unwrap().is_empty());
    }
}
