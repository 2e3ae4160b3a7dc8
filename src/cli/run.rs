//! `dyno run`: a one-off dyno attached to this terminal (a pty inside the dyno, raw mode here),
//! or, without a terminal or with `--no-tty`, to plain stdin/stdout/stderr. The dyno's exit
//! code becomes ours.

use super::{resolve_app, AppArg};
use crate::api;
use crate::attach::{self, Frame};
use crate::client::{error_body, ApiError, Client};
use crate::paths::Paths;
use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// `--env "K=V;K2=V2"` (Heroku's form), repeatable.
pub fn parse_env(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for arg in args {
        for kv in arg.split(';').filter(|s| !s.trim().is_empty()) {
            match kv.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    env.insert(k.trim().to_string(), v.to_string());
                }
                _ => bail!("invalid --env {kv:?}: use KEY=value (several as \"K1=v1;K2=v2\")"),
            }
        }
    }
    Ok(env)
}

/// The terminal's size (cols, rows), if `fd` is one.
fn window_size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } < 0 || ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_col, ws.ws_row))
}

/// Puts the terminal into raw mode and restores it when dropped, whatever the way out.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).context("setting raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

pub async fn run(
    paths: &Paths,
    arg: AppArg,
    no_tty: bool,
    env_args: &[String],
    command: &[String],
) -> Result<i32> {
    // Heroku's CLI joins the words with spaces: the dyno's shell parses them.
    let command = build_command(command);
    if command.trim().is_empty() {
        bail!("no command given: dyno run [-a APP] -- COMMAND (e.g. dyno run bash)");
    }
    let mut env = parse_env(env_args)?;
    let tty = !no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if tty {
        env.entry("TERM".into())
            .or_insert_with(|| std::env::var("TERM").unwrap_or_else(|_| "xterm".into()));
        if let Some((cols, rows)) = window_size(std::io::stdout().as_raw_fd()) {
            env.insert("COLUMNS".into(), cols.to_string());
            env.insert("LINES".into(), rows.to_string());
        }
    }

    let client = Client::connect(paths).await?;
    let app = resolve_app(&client, &arg).await?;
    let dyno = client
        .call(api::dynos::Create {
            app: app.clone(),
            body: api::DynoCreate {
                command: command.clone(),
                attach: Some(true),
                env: Some(env),
                force_no_tty: Some(!tty),
                size: None,
                process_type: Some("run".into()),
                time_to_live: None,
            },
        })
        .await?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "Running `{command}` on ⬢ {app}... up, {} (Basic)",
            dyno.name
        );
    }
    let url = dyno
        .attach_url
        .clone()
        .ok_or_else(|| anyhow!("the daemon gave {} no attach URL", dyno.name))?;
    let conn = upgrade(&client, &url).await?;

    let raw = if tty { Some(RawMode::enter()?) } else { None };
    let result = session(conn, tty).await;
    drop(raw);
    result.map_err(|e| {
        let restored = if tty { " (terminal restored)" } else { "" };
        anyhow!("{e:#}: {} of {app} is gone{restored}", dyno.name)
    })
}

/// `POST <attach_url>` with `Upgrade: dyno-attach`; the connection then carries frames.
async fn upgrade(client: &Client, url: &str) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
    let stream = tokio::net::UnixStream::connect(client.paths.socket())
        .await
        .with_context(|| format!("connecting to {}", client.paths.socket().display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(hyper::header::HOST, "dyno")
        .header(hyper::header::CONNECTION, "Upgrade")
        .header(hyper::header::UPGRADE, attach::PROTOCOL)
        .header(api::VERSION_HEADER, api::VERSION)
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        return Err(ApiError {
            status,
            body: error_body(&bytes),
        }
        .into());
    }
    Ok(TokioIo::new(hyper::upgrade::on(resp).await?))
}

/// Our stdin, read on a plain thread (a blocking read must not hold the runtime at exit);
/// `None` at EOF.
fn stdin_reader() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
            }
        }
    });
    rx
}

async fn session<S>(conn: S, tty: bool) -> Result<i32>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut input = stdin_reader();
    let mut stdin_open = true;
    let mut winch = signal(SignalKind::window_change())?;
    // In raw mode the keyboard sends no signals (Ctrl-C is a byte for the dyno); these come
    // from elsewhere and end the session with the terminal restored.
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        while let Some(f) = Frame::decode(&mut buf).map_err(|e| anyhow!("{e}"))? {
            match f {
                Frame::Stdout(b) => {
                    stdout.write_all(&b)?;
                    stdout.flush()?;
                }
                Frame::Stderr(b) => {
                    stderr.write_all(&b)?;
                    stderr.flush()?;
                }
                Frame::Exit(code) => return Ok(code),
                Frame::Error(m) => bail!("{m}"),
                _ => {}
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => {
                if n.unwrap_or(0) == 0 {
                    bail!("lost the connection to the dyno daemon; the dyno is gone");
                }
            }
            chunk = input.recv(), if stdin_open => match chunk.flatten() {
                Some(b) => wr.write_all(&Frame::Stdin(b).encode()).await?,
                None => {
                    stdin_open = false;
                    if !tty {
                        wr.write_all(&Frame::StdinEof.encode()).await?;
                    }
                }
            },
            _ = winch.recv(), if tty => {
                if let Some((cols, rows)) = window_size(std::io::stdout().as_raw_fd()) {
                    wr.write_all(&Frame::Resize { cols, rows }.encode()).await?;
                }
            }
            _ = term.recv() => return Ok(128 + libc::SIGTERM),
            _ = hup.recv() => return Ok(128 + libc::SIGHUP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_takes_herokus_form() {
        let env = parse_env(&["A=1;B=x=y".into(), "C=".into()]).unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x=y");
        assert_eq!(env["C"], "");
        assert!(parse_env(&["novalue".into()]).is_err());
        assert!(parse_env(&["=v".into()]).is_err());
    }
}

/// The command line a one-off dyno runs, from `dyno run`'s words, as the heroku CLI's
/// `buildCommand` makes it: one word is taken as it is (`dyno run 'ls -la | wc -l'`); of several,
/// each word the dyno's shell would split or expand is single-quoted (`printf '<%s>\n' 'a b' c`
/// prints `<a b>` and `<c>`), except shell operators given as words of their own
/// (`dyno run ls '|' wc -l` pipes, as it does with heroku).
pub fn build_command(words: &[String]) -> String {
    if let [one] = words {
        return one.clone();
    }
    const OPERATORS: &[&str] = &[
        "|", "||", "&&", "&", ";", ">", ">>", "<", "<<", "2>", "2>>", "2>&1", "1>&2", "&>",
    ];
    let safe = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
    };
    words
        .iter()
        .map(|w| {
            if safe(w) || OPERATORS.contains(&w.as_str()) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod quoting_tests {
    use super::build_command;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands_are_quoted_as_heroku_does() {
        assert_eq!(build_command(&words(&["ls -la | wc -l"])), "ls -la | wc -l");
        assert_eq!(
            build_command(&words(&["bash", "-c", "echo \"[$DYNO]\""])),
            "bash -c 'echo \"[$DYNO]\"'"
        );
        assert_eq!(
            build_command(&words(&["printf", "<%s>\\n", "a b", "c"])),
            "printf '<%s>\\n' 'a b' c"
        );
        assert_eq!(build_command(&words(&["echo", "it's"])), "echo 'it'\\''s'");
        assert_eq!(
            build_command(&words(&["ls", "|", "wc", "-l"])),
            "ls | wc -l"
        );
        assert_eq!(build_command(&words(&["echo", ""])), "echo ''");
    }
}
