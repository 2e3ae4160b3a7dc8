//! The layering rules of ARCHITECTURE.md that the compiler does not check, checked on the
//! sources: the CLI and the TUI reach state only through the API (`crate::api` +
//! `crate::client`), never the store or the daemon, and they name API paths only through
//! `crate::api`'s endpoints, never with a string.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = vec![];
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut out);
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// Lines of the CLI's and the TUI's code (comments left out) that hold `needle`.
fn offending(needles: &[&str], allowed: &[(&str, &str)]) -> Vec<String> {
    let mut bad = vec![];
    for dir in ["src/cli", "src/tui"] {
        for (path, text) in sources(dir) {
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                let hit = needles.iter().any(|n| code.contains(n));
                let ok = allowed
                    .iter()
                    .any(|(file, what)| path.ends_with(file) && code.contains(what));
                if hit && !ok {
                    bad.push(format!("{}:{}: {}", path.display(), i + 1, code));
                }
            }
        }
    }
    bad
}

#[test]
fn cli_and_tui_import_neither_the_store_nor_the_daemon() {
    // The one exception: `dyno daemon` starts the daemon itself.
    let bad = offending(
        &[
            "crate::store",
            "crate::daemon",
            "dyno::store",
            "dyno::daemon",
        ],
        &[(
            "src/cli/mod.rs",
            "Command::Daemon => return crate::daemon::main()",
        )],
    );
    assert!(
        bad.is_empty(),
        "the CLI and the TUI go through crate::client and crate::api only:\n{}",
        bad.join("\n")
    );
}

#[test]
fn cli_and_tui_build_no_api_paths() {
    // `format!("/apps/{}", ..)`, `"/daemon/stop"`, `format!("{base}/dynos")`, `enc(..)`.
    let needles: Vec<String> = [
        "apps",
        "daemon",
        "local",
        "certs",
        "log-",
        "builds",
        "buildpack",
        "dynos",
        "formation",
        "releases",
        "config-vars",
        "domains",
        "idling",
    ]
    .iter()
    .flat_map(|p| [format!("\"/{p}"), format!("}}/{p}")])
    .chain(["enc(".to_string()])
    .collect();
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let bad = offending(&needles, &[]);
    assert!(
        bad.is_empty(),
        "API paths come from crate::api's endpoints (client.call(api::<topic>::<Endpoint>)):\n{}",
        bad.join("\n")
    );
}
