//! The CLI's shape: help, completions and man pages in the repository match the binary.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_dyno");

fn run(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn committed_completions_are_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    for (shell, file) in [
        ("bash", "dyno.bash"),
        ("zsh", "_dyno"),
        ("fish", "dyno.fish"),
    ] {
        let committed = std::fs::read_to_string(format!("{root}/completions/{file}")).unwrap();
        assert_eq!(
            run(&["completions", shell]),
            committed,
            "run scripts/gen-docs.sh"
        );
    }
}

#[test]
fn committed_man_pages_are_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    run(&["man", dir.path().to_str().unwrap()]);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        let committed =
            std::fs::read_to_string(format!("{root}/man/{}", e.file_name().to_string_lossy()))
                .unwrap_or_else(|_| {
                    panic!(
                        "man/{} is missing: run scripts/gen-docs.sh",
                        e.file_name().to_string_lossy()
                    )
                });
        assert_eq!(
            std::fs::read_to_string(e.path()).unwrap(),
            committed,
            "run scripts/gen-docs.sh"
        );
    }
}

#[test]
fn heroku_command_names_are_there() {
    let help = run(&["--help"]);
    for cmd in [
        "up",
        "apps",
        "apps:create",
        "apps:info",
        "apps:destroy",
        "apps:rename",
        "ps",
        "ps:scale",
        "logs",
        "releases",
        "daemon:stop",
    ] {
        assert!(
            help.contains(&format!("  {cmd} ")),
            "missing {cmd} in:\n{help}"
        );
    }
    let scale = run(&["ps:scale", "--help"]);
    assert!(scale.contains("-a, --app"), "{scale}");
}

#[test]
fn usage_errors_exit_non_zero() {
    let o = Command::new(BIN).args(["ps:scale"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN)
        .args(["no-such-command"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
