//! The CLI at a terminal and at the ends of pipes, as users meet it: a reader that goes away,
//! an app's escape sequences in `dyno logs`, a deleted daemon socket, and the prompts that stand
//! in for `--confirm` at a terminal (and refuse without one).

mod common;
use common::*;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::Duration;

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE.
fn closed_pipe() -> OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    w
}

#[test]
fn a_closed_output_pipe_ends_any_command_quietly() {
    let env = Env::new("epipe");
    env.ok(&["apps:create", "piped", "--no-remote"], None);
    // Local output (completions, help), answers of the daemon (apps, apps:info), a stream (logs).
    for args in [
        &["completions", "bash"][..],
        &["--help"],
        &["apps"],
        &["apps:info", "-a", "piped"],
        &["logs", "-a", "piped"],
    ] {
        let o = env
            .cmd(args, None)
            .stdout(Stdio::from(closed_pipe()))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.is_empty(),
            "dyno {args:?} to a closed pipe: {} {err}",
            o.status
        );
    }
}

#[test]
fn logs_at_a_terminal_show_an_apps_control_characters_escaped() {
    let env = Env::new("logesc");
    let dir = env.app_dir("examples/hello", "esc");
    env.ok(&["up"], Some(&dir));
    // Clear the screen, set the window title, ring the bell, rewrite the line.
    env.ok(
        &[
            "run:detached",
            "-a",
            "esc",
            r"printf 'evil\033[2J\033]0;pwned\007 over\rwritten\n'",
        ],
        None,
    );
    assert!(
        wait_until(Duration::from_secs(60), || env
            .logs("esc")
            .contains("]: evil")),
        "the one-off's line never reached the log: {}",
        env.logs("esc")
    );

    // Piped: the bytes as the app wrote them.
    let piped = env.logs("esc");
    assert!(
        piped.contains("evil\x1b[2J\x1b]0;pwned\x07 over\rwritten"),
        "{piped:?}"
    );

    // At a terminal: shown, not obeyed.
    let pty = Pty::open();
    let mut cmd = env.cmd(&["logs", "-a", "esc", "-n", "1500"], None);
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), 0);
    pty.expect(0, r"evil\x1b[2J\x1b]0;pwned\x07 over\rwritten");
    let shown = pty.text();
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "a raw control character reached the terminal: {shown:?}"
    );
}

#[test]
fn a_deleted_daemon_socket_is_recovered_or_explained() {
    let env = Env::new("sock");
    env.ok(&["apps:create", "kept", "--no-remote"], None);
    let pid = env.daemon_pid().unwrap();
    std::fs::remove_file(env.home.join("daemon.sock")).unwrap();
    // The daemon holding the lock binds its socket again: the same daemon answers.
    let apps = env.ok(&["apps"], None);
    assert!(apps.contains("kept"), "{apps}");
    assert_eq!(env.daemon_pid(), Some(pid));
    env.ok(&["daemon:stop"], None);

    // Another process holds the lock and nothing answers: said, nothing started.
    // (-o: the lock is flock's own, not inherited by sleep, so killing flock frees it.)
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(env.home.join("daemon.lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains(&format!(" {} ", holder.id()))
    }));
    let err = env.fails(&["apps"], None);
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        err.contains(&format!("process {}", holder.id()))
            && err.contains("daemon.lock")
            && err.contains("stop that process"),
        "{err}"
    );
    assert!(!env.home.join("daemon.sock").exists());
    // Once it is gone, the next command starts a daemon as usual.
    assert!(env.ok(&["apps"], None).contains("kept"));
}

/// Runs `dyno ARGS` on a pty, answers `answer` to its prompt; returns the exit code and what
/// the terminal showed.
fn answer_prompt(env: &Env, args: &[&str], prompt: &str, answer: &str) -> (i32, String) {
    let pty = Pty::open();
    let mut cmd = env.cmd(args, None);
    cmd.env("TERM", "xterm");
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    pty.expect(0, prompt);
    std::thread::sleep(Duration::from_millis(200));
    pty.send(answer);
    pty.send("\r");
    let code = wait_exit(&mut child, Duration::from_secs(60));
    (code, pty.text())
}

#[test]
fn destroying_without_confirm_asks_at_a_terminal_and_refuses_without_one() {
    let env = Env::new("prompt");
    env.ok(&["apps:create", "victim", "--no-remote"], None);
    let has_app = || env.ok(&["apps"], None).contains("victim");

    // No terminal: a clear refusal, nothing destroyed.
    let err = env.fails(&["apps:destroy", "victim"], None);
    assert!(err.contains("confirm with --confirm victim"), "{err}");
    let err = env.fails(&["apps:destroy", "victim", "--confirm", "other"], None);
    assert!(err.contains("did not match victim"), "{err}");
    assert!(has_app());

    // A terminal: the wrong name aborts, the right one destroys.
    let (code, shown) = answer_prompt(
        &env,
        &["apps:destroy", "victim"],
        "To proceed, type victim",
        "victi",
    );
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("did not match victim"), "{shown}");
    assert!(has_app());
    let (code, shown) = answer_prompt(
        &env,
        &["apps:destroy", "victim"],
        "To proceed, type victim",
        "victim",
    );
    assert_eq!(code, 0, "{shown}");
    assert!(!has_app());

    // The same for an add-on.
    env.ok(&["apps:create", "keeper", "--no-remote"], None);
    env.ok(&["addons:create", "heroku-redis", "-a", "keeper"], None);
    let addon = || env.json(&["addons", "-a", "keeper", "--json"]);
    let name = addon()[0]["name"].as_str().unwrap().to_string();
    let err = env.fails(&["addons:destroy", &name, "-a", "keeper"], None);
    assert!(err.contains("confirm with --confirm keeper"), "{err}");
    let (code, shown) = answer_prompt(
        &env,
        &["addons:destroy", &name, "-a", "keeper"],
        "To proceed, type keeper",
        "nope",
    );
    assert_eq!(code, 1, "{shown}");
    assert_eq!(addon().as_array().unwrap().len(), 1);
    let (code, shown) = answer_prompt(
        &env,
        &["addons:destroy", &name, "-a", "keeper"],
        "To proceed, type keeper",
        "keeper",
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(addon().as_array().unwrap().len(), 0);
}
