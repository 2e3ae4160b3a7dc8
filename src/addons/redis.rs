//! One `redis-server` per Redis add-on: `addons/<name>/` (its `redis.conf` with the
//! password, data, Unix socket and pid file; owned by [`super::USER`], 0700) and its log
//! `addons/<name>.log`. Its own port and `requirepass`: key-pattern ACLs in a shared server
//! would break unmodified apps (Bull's and rq's keys have no prefix, and FLUSHALL can't be
//! confined), and an idle server costs a few MB.

use super::{alive, is_server, redis_bin, wait_ready, Launch};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

pub struct Server<'a> {
    pub launch: &'a Launch,
    /// The add-on's name.
    pub name: String,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl<'a> Server<'a> {
    pub fn new(launch: &'a Launch, name: &str) -> Self {
        Server {
            launch,
            name: name.to_string(),
            dir: launch.addons.join(name),
            log: launch.addons.join(format!("{name}.log")),
        }
    }

    /// The marker of its process (`DYNO_ADDON=redis:<name>`).
    pub fn key(&self) -> String {
        format!("redis:{}", self.name)
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("redis.conf")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("redis.pid")
    }

    /// Its directory and configuration.
    pub fn create(&self, port: u16, password: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        redis_bin("redis-server")?;
        self.launch.own_dir(&self.dir)?;
        let inside = |p: PathBuf| self.launch.inside(&p).display().to_string();
        let conf = format!(
            "# Written by dyno; the address to bind comes on the command line.\n\
             port {port}\n\
             unixsocket {}\n\
             unixsocketperm 700\n\
             requirepass {password}\n\
             dir {}\n\
             pidfile {}\n\
             daemonize no\n\
             logfile \"\"\n\
             appendonly yes\n\
             appendfsync everysec\n\
             save 3600 1 300 100 60 10000\n\
             proc-title-template \"{{title}} {{listen-addr}} {{config-file}}\"\n",
            inside(self.socket()),
            inside(self.dir.clone()),
            inside(self.pidfile()),
        );
        let path = self.conf();
        std::fs::write(&path, conf)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&path, Some(self.launch.uid), Some(self.launch.gid))?;
        Ok(())
    }

    /// Its running process (from its pid file), if any.
    pub fn running(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (alive(pid) && is_server(pid, &self.launch.inside(&self.conf()))).then_some(pid)
    }

    /// Starts it on `addr`; returns once it answers `PING` with the password, or fails with the
    /// end of its log.
    pub fn start(&self, addr: std::net::Ipv4Addr, password: &str) -> Result<i32> {
        let bin = redis_bin("redis-server")?;
        let _ = std::fs::remove_file(self.pidfile());
        let mut c = self.launch.command(&bin, &self.key(), &self.log)?;
        c.arg(self.launch.inside(&self.conf()))
            .arg("--bind")
            .arg(addr.to_string());
        let child = c.spawn().context("starting redis-server")?;
        let pid = child.id() as i32;
        // Answered by this very process (not one that already held the socket).
        wait_ready(
            pid,
            "redis-server",
            &self.log,
            Duration::from_secs(30),
            Duration::from_millis(30),
            || self.ping(password).unwrap_or(false) && alive(pid),
        )
    }

    /// `AUTH` then `PING` over the Unix socket.
    pub fn ping(&self, password: &str) -> Result<bool> {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("AUTH {password}\r\nPING\r\n").as_bytes())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&got).contains("+PONG") {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.starts_with(b"-") {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&got).contains("+PONG"))
    }

    /// Removes its data, configuration and log (the server must be stopped).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.log);
    }
}
