//! What the stack provides. dyno's stack is the host's `/usr`, bound read-only into every dyno
//! and build container, so its runtimes are the host's: `dyno stack` reports their versions.

use std::process::{Command, Stdio};

/// The stack's name (Heroku's are `heroku-24` and the like).
pub const STACK: &str = "dyno-host";
/// The PATH of build containers and dynos before any buildpack adds to it.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// One runtime the shipped buildpacks use.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Runtime {
    /// `python3`, `node`, …
    pub name: String,
    /// `3.11.2`; `None` when missing.
    pub version: Option<String>,
    /// Where it is (inside the stack, which is the host's /usr).
    pub path: Option<String>,
    /// The Debian package(s) that provide it.
    pub package: String,
}

/// (command, version flag, Debian package).
const RUNTIMES: &[(&str, &str, &str)] = &[
    ("python3", "--version", "python3 python3-venv"),
    ("node", "--version", "nodejs"),
    ("npm", "--version", "npm"),
    ("ruby", "--version", "ruby"),
    ("bundle", "--version", "ruby-bundler"),
    ("go", "version", "golang-go"),
];

/// The flag that makes runtime `name` print its version (`--version`; `version` for go).
pub fn version_flag(name: &str) -> &'static str {
    RUNTIMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, f, _)| *f)
        .unwrap_or("--version")
}

/// Finds `cmd` on the stack's PATH (the host's /usr, as dynos see it).
fn which(cmd: &str) -> Option<String> {
    PATH.split(':')
        .map(|d| format!("{d}/{cmd}"))
        .find(|p| std::path::Path::new(p).is_file())
}

/// The first version-looking word of a `--version` answer: `Python 3.11.2` → `3.11.2`,
/// `go version go1.19.8 linux/amd64` → `1.19.8`, `v20.20.2` → `20.20.2`.
pub fn version_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches("go").trim_start_matches('v'))
        .find(|w| w.split('.').count() >= 2 && w.split('.').next().unwrap().parse::<u32>().is_ok())
        .map(|w| {
            w.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect()
        })
}

/// Probes every runtime (runs each `--version`, a few ms each).
pub fn probe() -> Vec<Runtime> {
    RUNTIMES
        .iter()
        .map(|(name, flag, package)| {
            let path = which(name);
            let version = path.as_ref().and_then(|p| {
                let o = Command::new(p)
                    .arg(flag)
                    .env("PATH", PATH)
                    .stdin(Stdio::null())
                    .output()
                    .ok()?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                version_in(&text)
            });
            Runtime {
                name: name.to_string(),
                version,
                path,
                package: package.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_every_style() {
        assert_eq!(version_in("Python 3.11.2").as_deref(), Some("3.11.2"));
        assert_eq!(version_in("v20.20.2\n").as_deref(), Some("20.20.2"));
        assert_eq!(
            version_in("go version go1.19.8 linux/amd64").as_deref(),
            Some("1.19.8")
        );
        assert_eq!(
            version_in("ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]")
                .as_deref(),
            Some("3.1.2p20")
        );
        assert_eq!(
            version_in("Bundler version 2.3.15").as_deref(),
            Some("2.3.15")
        );
        assert_eq!(version_in("nothing here"), None);
    }

    #[test]
    fn probing_finds_the_hosts_python() {
        let p = probe();
        let py = p.iter().find(|r| r.name == "python3").unwrap();
        assert!(py.version.is_some(), "{py:?}");
    }
}
