//! Procfile parsing, with a clear rule and a clear message for every edge case
//! (shared/notes/procfile.md).
//!
//! After Heroku's parser (heroku/buildpacks-procfile SPEC.md): a line is `<type>: <command>`;
//! the type is 1–63 letters, digits, `-` (and, as the classic Procfile allowed, `_`), starting
//! and ending with a letter or digit; uppercase is lowercased with a warning; a type defined
//! again replaces the earlier definition, with a warning. Spaces are allowed around the colon,
//! the command is everything after it (a `#` in it is left to the shell). Blank lines and lines
//! starting with `#` are comments; `\r\n`, `\n` and a lone `\r` end lines; a leading byte-order
//! mark is dropped. Merge-conflict markers, missing colons, empty commands, lines over
//! [`MAX_LINE`] and text that is not UTF-8 are errors naming the line; a file over [`MAX_SIZE`]
//! is refused whole.

use std::fmt;

/// Largest Procfile read; a larger one is refused whole, never read in part.
pub const MAX_SIZE: usize = 1 << 20;
/// Longest line (a command); a dyno's command line must fit the kernel's argument limits.
pub const MAX_LINE: usize = 32 * 1024;
/// Longest process type name (Heroku's limit, a DNS label).
pub const MAX_NAME: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procfile {
    /// In file order (of each type's last definition).
    pub types: Vec<ProcessType>,
    /// What Heroku warns about and accepts: uppercase names (lowercased), duplicate types (the
    /// last one wins).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 0: the file as a whole.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "Procfile: {}", self.message)
        } else {
            write!(f, "Procfile line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

impl Procfile {
    /// Parses a Procfile's bytes: a leading byte-order mark is dropped, text that is not UTF-8
    /// is refused naming the line, a file over [`MAX_SIZE`] is refused whole.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Procfile, ParseError> {
        if bytes.len() > MAX_SIZE {
            return Err(ParseError {
                line: 0,
                message: format!(
                    "the file is {} bytes, more than the {} a Procfile may have",
                    bytes.len(),
                    MAX_SIZE
                ),
            });
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Procfile::parse(text),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                Err(ParseError {
                    line,
                    message: "not UTF-8 text (is the Procfile a binary file?)".into(),
                })
            }
        }
    }

    /// Parses a Procfile after Heroku's (heroku/buildpacks-procfile SPEC.md), kinder where the
    /// classic Procfile was: `_` in names and spaces before the colon are accepted as they are.
    pub fn parse(text: &str) -> Result<Procfile, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.len() > MAX_SIZE {
            return Procfile::parse_bytes(text.as_bytes());
        }
        let mut types: Vec<ProcessType> = Vec::new();
        let mut warnings = Vec::new();
        // \r\n, \n and a lone \r (old Mac editors) all end a line.
        let lines = text.split('\n').flat_map(|l| {
            let l = l.strip_suffix('\r').unwrap_or(l);
            l.split('\r')
        });
        for (i, raw) in lines.enumerate() {
            let n = i + 1;
            let err = |message: String| ParseError { line: n, message };
            if raw.len() > MAX_LINE {
                return Err(err(format!(
                    "the line is {} bytes long, more than {MAX_LINE}",
                    raw.len()
                )));
            }
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
            let given = name.trim();
            let command = command.trim();
            let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            if given.is_empty() || !given.chars().all(ok_char) {
                return Err(err(format!(
                    "invalid process type {given:?}: use letters, digits and `-` (or `_`)"
                )));
            }
            let ends_ok = given.starts_with(|c: char| c.is_ascii_alphanumeric())
                && given.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !ends_ok {
                return Err(err(format!(
                    "invalid process type {given:?}: it must start and end with a letter or digit"
                )));
            }
            if given.len() > MAX_NAME {
                return Err(err(format!(
                    "process type {given:?} is longer than {MAX_NAME} characters"
                )));
            }
            let name = given.to_ascii_lowercase();
            if name != given {
                warnings.push(format!(
                    "Procfile line {n}: process type {given:?} is taken as {name:?} (process types are lowercase)"
                ));
            }
            if command.is_empty() {
                return Err(err(format!("process type {name:?} has no command")));
            }
            if let Some(i) = types.iter().position(|t| t.name == name) {
                warnings.push(format!(
                    "Procfile line {n}: process type {name:?} is defined again; this definition replaces the earlier one"
                ));
                types.remove(i);
            }
            types.push(ProcessType {
                name,
                command: command.to_string(),
            });
        }
        Ok(Procfile { types, warnings })
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
    fn heroku_kindnesses_warn() {
        let p = Procfile::parse("\u{feff}Web: a\nworker: b\nweb: c\n").unwrap();
        let t: Vec<(&str, &str)> = p
            .types
            .iter()
            .map(|t| (t.name.as_str(), t.command.as_str()))
            .collect();
        assert_eq!(t, [("worker", "b"), ("web", "c")]);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("lowercase"));
        assert!(p.warnings[1].contains("line 3") && p.warnings[1].contains("replaces"));
        // CR-only line endings are lines.
        assert_eq!(parse("web: a\rworker: b\r").unwrap().len(), 2);
        // Names up to 63 characters; first and last a letter or digit.
        let long = "a".repeat(63);
        assert!(parse(&format!("{long}: x")).is_ok());
        assert!(parse(&format!("{long}b: x"))
            .unwrap_err()
            .contains("longer than 63"));
        assert!(parse("-web: x").unwrap_err().contains("start and end"));
        assert!(parse("web_worker: x").is_ok());
    }

    #[test]
    fn too_large_input_is_refused_whole() {
        let line = format!("web: {}", "x".repeat(MAX_LINE));
        let e = parse(&format!("worker: a\n{line}\n")).unwrap_err();
        assert!(e.contains("line 2") && e.contains("long"), "{e}");
        let big = "# filler\n".repeat(MAX_SIZE / 9 + 1) + "web: x\n";
        let e = Procfile::parse_bytes(big.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Procfile: ") && e.contains("more than"),
            "{e}"
        );
        let e = Procfile::parse_bytes(b"web: a\nworker: \xff\xfe\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Procfile line 2") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn empty_procfile_has_no_types() {
        assert!(parse("# nothing\n\n").unwrap().is_empty());
    }
}
