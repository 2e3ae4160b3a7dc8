//! `dyno run`: one-off dynos with real containers, driven as a user drives them — through pipes,
//! and through a real pty pair for the interactive case. After every case nothing of the dyno is
//! left (container processes, mounts, cgroups), including when the client is SIGKILLed.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

/// Deploys examples/hello as `app` with a config var, then scales web to 0 so that whatever
/// runs afterwards is a one-off dyno (and "nothing left" means exactly that).
fn deployed(env: &Env, app: &str) {
    let dir = env.app_dir("examples/hello", app);
    env.ok(&["apps:create", app, "--no-remote"], None);
    env.ok(&["config:set", "-a", app, "GREETING=hello there"], None);
    env.ok(&["up", "-a", app], Some(&dir));
    env.ok(&["ps:scale", "-a", app, "web=0"], None);
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos(app)
        .is_empty()));
    env.assert_nothing_left("scaling web to 0");
}

/// Runs `dyno ARGS` with `input` on its stdin; returns (exit code, stdout, stderr).
fn run_with_stdin(env: &Env, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = env
        .cmd(args, None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn piped_run_passes_streams_env_and_exit_code() {
    let env = Env::new("run-piped");
    deployed(&env, "oneoff");

    // Several words are quoted as the heroku CLI quotes them; flags go anywhere before `--`.
    let (code, out, err) = run_with_stdin(
        &env,
        &[
            "run",
            "--no-tty",
            "-a",
            "oneoff",
            "--",
            "bash",
            "-c",
            "echo \"[$DYNO]\"",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("[run.") && out.trim_end().ends_with(']'),
        "{out:?}"
    );
    let (code, out, err) = run_with_stdin(
        &env,
        &[
            "run", "printf", "<%s>\\n", "a b", "c", "-a", "oneoff", "--no-tty",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "<a b>\n<c>\n"), "{err}");
    let (code, out, err) = run_with_stdin(&env, &["run", "ls", "-la", "/app", "-a", "oneoff"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Procfile") && out.contains("total"), "{out}");
    let (code, out, _) = run_with_stdin(&env, &["run", "-a", "oneoff", "ls /app | wc -l"], "");
    assert_eq!(code, 0);
    assert!(out.trim().parse::<u32>().is_ok_and(|n| n > 0), "{out}");
    env.ok(&["ps:scale", "web=0", "-a", "oneoff"], None);

    // stdin in, stdout out, exit code back.
    let (code, out, err) =
        run_with_stdin(&env, &["run", "-a", "oneoff", "python3"], "print(6*7)\n");
    assert_eq!((code, out.as_str()), (0, "42\n"), "stderr: {err}");

    // The release's config vars, --env, the dyno's name, /app; stderr apart; the exit code.
    let (code, out, err) = run_with_stdin(
        &env,
        &[
            "run",
            "-a",
            "oneoff",
            "--no-tty",
            "-e",
            "EXTRA=one;MORE=two",
            "--",
            "echo \"$DYNO|$GREETING|$EXTRA|$MORE\"; pwd; ls /app; echo oops >&2; exit 3",
        ],
        "",
    );
    assert_eq!(code, 3, "stdout: {out}\nstderr: {err}");
    let first = out.lines().next().unwrap_or("");
    let (dyno, rest) = first.split_once('|').unwrap();
    assert!(
        dyno.starts_with("run.") && dyno[4..].parse::<u32>().is_ok(),
        "{out}"
    );
    assert_eq!(rest, "hello there|one|two", "{out}");
    assert!(
        out.contains("\n/app\n") && out.contains("Procfile"),
        "{out}"
    );
    assert_eq!(err.trim(), "oops");

    // Every run is a fresh dyno: what one writes, the next does not see.
    let (code, out, _) = run_with_stdin(
        &env,
        &[
            "run",
            "-a",
            "oneoff",
            "echo x > /app/marker; echo y > /tmp/marker; cat /app/marker",
        ],
        "",
    );
    assert_eq!((code, out.as_str()), (0, "x\n"));
    let (code, out, _) = run_with_stdin(
        &env,
        &[
            "run",
            "-a",
            "oneoff",
            "ls /app/marker /tmp/marker 2>/dev/null; echo left=$?",
        ],
        "",
    );
    assert_eq!((code, out.trim()), (0, "left=2"));

    // Command not found: the shell's message and 127.
    let (code, _, err) = run_with_stdin(&env, &["run", "-a", "oneoff", "no-such-command"], "");
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no-such-command: command not found"), "{err}");
    env.assert_nothing_left("piped runs");
    assert!(env.dynos("oneoff").is_empty());

    // Bad input: a clear one-line error.
    let err = env.fails(&["run", "-a", "nope", "bash"], None);
    assert!(err.contains("Couldn't find that app."), "{err}");
    env.ok(&["apps:create", "empty", "--no-remote"], None);
    let err = env.fails(&["run", "-a", "empty", "bash"], None);
    assert!(err.contains("empty has no release yet"), "{err}");
    let err = env.fails(&["run", "-a", "oneoff", "-e", "NOVALUE", "bash"], None);
    assert!(err.contains("invalid --env"), "{err}");
    env.assert_nothing_left("refused runs");
}

#[test]
fn interactive_run_through_a_real_pty() {
    let env = Env::new("run-pty");
    deployed(&env, "shell");
    let pty = Pty::open();
    let before = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    let mut cmd = env.cmd(&["run", "-a", "shell", "bash"], None);
    cmd.env("TERM", "xterm");
    pty.attach(&mut cmd);
    let mut child = cmd.spawn().unwrap();

    let mut at = pty.expect(0, "$ ");
    // A terminal inside, the dyno's name, the size the client had at start.
    pty.send("tty; echo \"DYNO=$DYNO\"; stty size\r");
    at = pty.expect(at, "/dev/pts/0");
    at = pty.expect(at, "DYNO=run.");
    at = pty.expect(at, "24 80");
    assert!(
        env.dynos("shell")
            .iter()
            .any(|d| d["type"] == "run" && d["state"] == "up"),
        "dyno ps lists the one-off dyno"
    );

    // A resize reaches the dyno.
    set_size(&pty.master, 111, 33);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    );
    std::thread::sleep(Duration::from_millis(300));
    pty.send("stty size\r");
    at = pty.expect(at, "33 111");

    // Ctrl-C reaches the foreground program in the dyno, not the CLI.
    pty.send("sleep 30; echo slept\r");
    std::thread::sleep(Duration::from_millis(700));
    pty.send("\x03");
    pty.send("echo \"rc=$?\"\r");
    at = pty.expect(at, "rc=130");
    assert!(!pty.text()[at..].contains("slept"));

    pty.send("exit 7\r");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(15)), 7);
    // The terminal is as it was.
    let after = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
    env.assert_nothing_left("an interactive run");
    assert!(env.dynos("shell").is_empty());
}

#[test]
fn a_vanished_client_or_daemon_ends_the_dyno() {
    let env = Env::new("run-kill");
    deployed(&env, "gone");

    // The client is SIGKILLed mid-session: the daemon notices and removes the dyno.
    let mut child = env
        .cmd(&["run", "-a", "gone", "--no-tty", "sleep 60"], None)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || env
            .dynos("gone")
            .iter()
            .any(|d| d["state"] == "up")),
        "the one-off dyno never came up"
    );
    assert!(!env.cgroups().is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || env.dynos("gone").is_empty()),
        "{:?}",
        env.dynos("gone")
    );
    env.assert_nothing_left("SIGKILL of the client");

    // The daemon dies mid-session: the client says so; the next daemon removes the orphan.
    let mut child = env
        .cmd(&["run", "-a", "gone", "--no-tty", "sleep 60"], None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(15), || env
        .dynos("gone")
        .iter()
        .any(|d| d["state"] == "up")));
    let daemon = env.daemon_pid().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 1);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("lost the connection to the dyno daemon"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(env.dynos("gone").is_empty(), "a new daemon forgets it");
    env.assert_nothing_left("a dead daemon");
}
