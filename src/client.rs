//! The CLI's side of the socket: typed requests to the daemon's HTTP API over the Unix socket,
//! starting the daemon when none answers and replacing it when its version differs.

use crate::api::{self, DaemonStatus, Endpoint, ErrorBody};
use crate::paths::Paths;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

/// An error the daemon answered with (Heroku's `{id, message}`), kept typed so callers can
/// react to `not_found`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.body.message)
    }
}
impl std::error::Error for ApiError {}

pub struct Client {
    pub paths: Paths,
}

impl Client {
    /// Connects to this `DYNO_HOME`'s daemon, starting (or upgrading) it as needed.
    pub async fn connect(paths: &Paths) -> Result<Client> {
        let c = Client {
            paths: paths.clone(),
        };
        match c.status().await {
            Ok(s) if s.version == api::VERSION => return Ok(c),
            Ok(s) => {
                // After an upgrade: the old daemon goes, its dynos stay and are re-adopted.
                eprintln!(
                    "dyno: restarting the daemon (it runs {}, this is {})",
                    s.version,
                    api::VERSION
                );
                c.call(api::daemon::Stop {
                    body: api::DaemonStop { keep_dynos: true },
                })
                .await?;
                c.wait_gone(s.pid).await?;
            }
            Err(_) => {
                if c.reach_lock_holder().await? {
                    return Ok(c);
                }
            }
        }
        c.start_daemon().await?;
        Ok(c)
    }

    /// No daemon answers on the socket: if one holds `daemon.lock` all the same (its socket
    /// was deleted, or it is still starting), asks it with SIGHUP to bind its socket again and
    /// waits for its answer. `false` when nobody holds the lock (start one); an error that says
    /// what to do when the holder is not a dyno daemon or never answers.
    async fn reach_lock_holder(&self) -> Result<bool> {
        let Some(pid) = lock_holder(&self.paths.daemon_lock()) else {
            return Ok(false);
        };
        let sock = self.paths.socket();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) != Some("daemon") {
            let what = match args.join(" ").trim() {
                "" => "which has exited: a process it started keeps the lock open".to_string(),
                cmd => cmd.to_string(),
            };
            bail!(
                "no dyno daemon answers on {}, and process {pid} ({}) holds {}, so none can start: stop that process",
                sock.display(),
                what,
                self.paths.daemon_lock().display()
            );
        }
        // Its SIGHUP handler is installed before it takes the lock: this never kills it.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGHUP,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.status().await.is_ok() {
                return Ok(true);
            }
            if lock_holder(&self.paths.daemon_lock()).is_none() {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "the dyno daemon (pid {pid}) holds {} but does not answer on {}: stop it with `kill {pid}` and run the command again (its dynos keep running)",
            self.paths.daemon_lock().display(),
            sock.display()
        )
    }

    /// Connects only if a daemon is already running.
    pub async fn existing(paths: &Paths) -> Option<Client> {
        let c = Client {
            paths: paths.clone(),
        };
        c.status().await.ok().map(|_| c)
    }

    pub async fn status(&self) -> Result<DaemonStatus> {
        self.call(api::daemon::Status {}).await
    }

    async fn start_daemon(&self) -> Result<()> {
        if !nix::unistd::geteuid().is_root() {
            bail!("dyno's daemon needs root (dynos are containers: cgroups and mounts); run dyno with sudo");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.paths.daemon_log())?;
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("daemon")
            .env("DYNO_HOME", &self.paths.home)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Its own session: a Ctrl-C in this terminal must not reach it.
        // SAFETY: the closure runs between fork and exec and only calls setsid(2), which is
        // async-signal-safe and allocates nothing.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting the dyno daemon")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.status().await.is_ok() {
                return Ok(());
            }
            if let Some(st) = child.try_wait()? {
                let tail = std::fs::read_to_string(self.paths.daemon_log()).unwrap_or_default();
                let last: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "the dyno daemon exited ({st}): {}",
                    last.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "the dyno daemon did not answer within 20 s; see {}",
                    self.paths.daemon_log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until no daemon answers and its process has exited (after `daemon:stop`), so the
    /// caller sees it fully gone (its teardown runs after the socket is removed).
    pub async fn wait_gone(&self, pid: u32) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.status().await.is_ok() || process_alive(pid) {
            if Instant::now() > deadline {
                bail!("the daemon did not stop within 90 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(self.paths.socket())
            .await
            .with_context(|| format!("connecting to {}", self.paths.socket().display()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "dyno")
            .header("accept", "application/vnd.heroku+json; version=3")
            .header("content-type", "application/json")
            .header(api::VERSION_HEADER, api::VERSION)
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        Ok(sender.send_request(req).await?)
    }

    /// Sends one endpoint of the API (`crate::api`) and decodes its typed answer; an error
    /// answer becomes an [`ApiError`].
    pub async fn call<E: Endpoint>(&self, e: E) -> Result<E::Response>
    where
        E::Response: DeserializeOwned,
    {
        let resp = self.send(E::METHOD, &e.path(), e.body()?).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(ApiError {
                status,
                body: error_body(&bytes),
            }
            .into());
        }
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("bad answer from the daemon: {e}"))
    }

    /// A streamed answer (build output, a log tail, a release phase's output): follows a URL
    /// the daemon handed out in a resource (`output_stream_url`, `logplex_url`) and calls `f`
    /// with each chunk of text.
    pub async fn stream(&self, url: &str, mut f: impl FnMut(&str)) -> Result<()> {
        let resp = self.send(Method::GET, url, None).await?;
        if !resp.status().is_success() {
            let bytes = resp.into_body().collect().await?.to_bytes();
            bail!("{}", error_body(&bytes).message);
        }
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                f(&String::from_utf8_lossy(&data));
            }
        }
        Ok(())
    }

    /// A binary answer (a backup's dump): follows a URL the daemon handed out
    /// (`download_url`) and writes its bytes to `out`; returns how many there were.
    pub async fn download(&self, url: &str, out: &mut impl std::io::Write) -> Result<u64> {
        let resp = self.send(Method::GET, url, None).await?;
        if !resp.status().is_success() {
            let bytes = resp.into_body().collect().await?.to_bytes();
            bail!("{}", error_body(&bytes).message);
        }
        let mut body = resp.into_body();
        let mut n = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write_all(&data)?;
                n += data.len() as u64;
            }
        }
        Ok(n)
    }
}

/// Heroku's `{id, message}`, or the answer's text as the message.
pub fn error_body(bytes: &[u8]) -> ErrorBody {
    serde_json::from_slice(bytes).unwrap_or(ErrorBody {
        id: "unknown".into(),
        message: String::from_utf8_lossy(bytes).into_owned(),
    })
}

/// The process holding the `flock` on `lock`, from `/proc/locks` (None: nobody does).
fn lock_holder(lock: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(lock).ok()?;
    // The kernel prints the device as hex major:minor, then the inode in decimal.
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(m.dev()),
        libc::minor(m.dev()),
        m.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiters (`1: -> FLOCK …`) skipped.
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&"FLOCK") {
            return None;
        }
        (f.get(5) == Some(&id.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// Is `pid` a live process (not a zombie left for a parent that never reaps)?
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
