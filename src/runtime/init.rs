//! `dyno init <command>`: PID 1 inside every dyno (uid 47000). Forwards stop signals to every
//! process of the dyno, reaps zombies, and exits with the Procfile command's status.

use std::ffi::CString;

/// Signals forwarded to every process of the dyno.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Runs the command as it is (a build step).
const RAW: &str = "exec bash -c \"$1\"";

/// Sources `.profile.d/*.sh` and `.profile`, then runs the command with a fresh `bash -c`.
const WRAPPER: &str = "__dyno_cmd=\"$1\"; \
for f in /app/.profile.d/*.sh; do if [ -r \"$f\" ]; then . \"$f\"; fi; done; unset f; \
if [ -r /app/.profile ]; then . /app/.profile; fi; \
exec bash -c \"$__dyno_cmd\"";

fn status_of(ws: libc::c_int) -> i32 {
    if libc::WIFEXITED(ws) {
        libc::WEXITSTATUS(ws)
    } else if libc::WIFSIGNALED(ws) {
        128 + libc::WTERMSIG(ws)
    } else {
        1
    }
}

/// `profile`: source the app's `.profile.d` first (dynos); build steps run without.
pub fn init_main(command: String, profile: bool) -> i32 {
    // kill(-1) from anything but a dyno's PID 1 would hit every process of the host.
    // SAFETY: getpid never fails.
    if std::process::id() != 1 {
        eprintln!("dyno init: must run as PID 1 inside a dyno");
        return 2;
    }
    // Everything the child needs is allocated before fork().
    let bash = CString::new("/bin/bash").unwrap();
    let args: Vec<CString> = [
        "bash",
        "-c",
        if profile { WRAPPER } else { RAW },
        "dyno-init",
    ]
    .iter()
    .map(|s| CString::new(*s).unwrap())
    .chain(std::iter::once(
        CString::new(command.replace('\0', "")).unwrap(),
    ))
    .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());

    // SAFETY: plain libc signal-mask and process calls in a single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());

        let child = libc::fork();
        if child < 0 {
            libc::_exit(126);
        }
        if child == 0 {
            // The shim and libcontainer may hand us blocked or ignored signals: start clean.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            for s in 1..32 {
                if s != libc::SIGKILL && s != libc::SIGSTOP {
                    libc::signal(s, libc::SIG_DFL);
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::execv(bash.as_ptr(), argv.as_ptr());
            let msg = b"dyno init: cannot exec /bin/bash\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(127);
        }

        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig < 0 {
                continue; // EINTR
            }
            if sig == libc::SIGCHLD {
                loop {
                    let mut ws: libc::c_int = 0;
                    let pid = libc::waitpid(-1, &mut ws, libc::WNOHANG);
                    if pid <= 0 {
                        break;
                    }
                    if pid == child {
                        let code = status_of(ws);
                        // The command is done: nothing else of the dyno may outlive it.
                        libc::kill(-1, libc::SIGKILL);
                        while libc::waitpid(-1, &mut ws, 0) > 0 {}
                        return code;
                    }
                }
            } else {
                // To every process of the dyno (kill(-1) skips ourselves), so a shell that does
                // not exec its command (`npm start`, `bash -c 'a; b'`) still stops promptly.
                libc::kill(-1, sig);
            }
        }
    }
}
