//! The PostgreSQL cluster of a `DYNO_HOME`: `addons/postgres/data` (initdb'd once, as
//! [`super::USER`]), its Unix socket in `addons/postgres/run`, its log `addons/postgres.log`.
//!
//! Authentication: over TCP (the dynos) every role logs in with its password (scram-sha-256)
//! and the superuser not at all; over the Unix socket the superuser `postgres` is only reachable
//! by root and the server user (peer authentication, mapped), which is how the daemon creates
//! and drops databases (`psql` as root), and the add-ons' roles log in with their password
//! (`pg:psql`). Each add-on has its own role and database, with `CONNECT` revoked from `PUBLIC`.

use super::{alive, is_server, log_tail, pg_bin, wait_ready, Launch, USER};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// The marker of the cluster's processes (`DYNO_ADDON=postgres`).
pub const KEY: &str = "postgres";

pub struct Cluster<'a> {
    pub launch: &'a Launch,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl<'a> Cluster<'a> {
    pub fn new(launch: &'a Launch) -> Self {
        Cluster {
            launch,
            dir: launch.addons.join("postgres"),
            log: launch.addons.join("postgres.log"),
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The Unix socket's directory (`psql -h`).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn port_file(&self) -> PathBuf {
        self.launch.addons.join("postgres.port")
    }

    pub fn exists(&self) -> bool {
        self.data().join("PG_VERSION").is_file()
    }

    /// The cluster's port, chosen when it was created.
    pub fn port(&self) -> Result<u16> {
        let s = std::fs::read_to_string(self.port_file()).context("the cluster's port")?;
        Ok(s.trim().parse()?)
    }

    /// initdb into a scratch directory, configured, then renamed into place: a cluster is there
    /// completely or not at all.
    pub fn init(&self, port: u16) -> Result<()> {
        let initdb = pg_bin("initdb")?;
        pg_bin("postgres")?;
        self.launch.own_dir(&self.dir)?;
        let scratch = self.dir.join("data.new");
        let _ = std::fs::remove_dir_all(&scratch);
        let mut c = self.launch.command(&initdb, KEY, &self.log)?;
        c.arg("-D").arg(self.launch.inside(&scratch)).args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
        ]);
        let status = c.status().context("running initdb")?;
        if !status.success() {
            bail!(
                "initdb failed ({status}); the end of {}:\n{}",
                self.log.display(),
                log_tail(&self.log, 15)
            );
        }
        std::fs::write(
            scratch.join("pg_hba.conf"),
            "# Written by dyno: the superuser over the Unix socket for root and the server user\n\
             # only; every add-on role with its password.\n\
             local all postgres peer map=dyno\n\
             local all all scram-sha-256\n\
             host all postgres all reject\n\
             host all all all scram-sha-256\n",
        )?;
        std::fs::write(
            scratch.join("pg_ident.conf"),
            format!("dyno root postgres\ndyno {USER} postgres\n"),
        )?;
        let mut conf = std::fs::read_to_string(scratch.join("postgresql.conf"))?;
        conf.push_str(
            "\n# dyno: small and quiet; the address, port and socket directory come on the command line.\n\
             password_encryption = 'scram-sha-256'\n\
             unix_socket_permissions = 0700\n\
             shared_buffers = 16MB\n\
             max_connections = 100\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n",
        );
        std::fs::write(scratch.join("postgresql.conf"), conf)?;
        std::fs::write(self.port_file(), format!("{port}\n"))?;
        std::fs::rename(&scratch, self.data())?;
        Ok(())
    }

    /// The running postmaster of this cluster (from `postmaster.pid`), if any.
    pub fn running(&self) -> Option<i32> {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: i32 = pidfile.lines().next()?.trim().parse().ok()?;
        (alive(pid) && is_server(pid, &self.launch.inside(&self.data()))).then_some(pid)
    }

    /// Starts the postmaster listening on `addr` and the Unix socket; returns once it accepts
    /// connections, or fails with the end of its log.
    pub fn start(&self, addr: std::net::Ipv4Addr) -> Result<i32> {
        let postgres = pg_bin("postgres")?;
        let port = self.port()?;
        self.launch.own_dir(&self.socket_dir())?;
        // A postmaster.pid whose process is gone (or is not ours) would stop it.
        if self.running().is_none() {
            let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        }
        let mut c = self.launch.command(&postgres, KEY, &self.log)?;
        c.arg("-D")
            .arg(self.launch.inside(&self.data()))
            .arg("-p")
            .arg(port.to_string())
            .arg("-c")
            .arg(format!("listen_addresses={addr}"))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.launch.inside(&self.socket_dir()).display()
            ));
        let child = c.spawn().context("starting postgres")?;
        let pid = child.id() as i32;
        let pidfile = self.data().join("postmaster.pid");
        wait_ready(
            pid,
            "PostgreSQL",
            &self.log,
            Duration::from_secs(60),
            Duration::from_millis(50),
            || {
                std::fs::read_to_string(&pidfile).ok().is_some_and(|s| {
                    s.lines().next().map(str::trim) == Some(&pid.to_string())
                        && s.lines().nth(7).map(str::trim) == Some("ready")
                })
            },
        )
    }

    /// Runs SQL statements as the superuser over the Unix socket, each on its own (`CREATE
    /// DATABASE` cannot run in a transaction). Returns psql's output.
    pub fn admin(&self, statements: &[String]) -> Result<String> {
        let psql = pg_bin("psql")?;
        let mut c = std::process::Command::new(psql);
        c.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port()?.to_string())
            .args(["-U", "postgres", "-d", "postgres"])
            .env("PGCONNECT_TIMEOUT", "10");
        for s in statements {
            c.arg("-c").arg(s);
        }
        let out = c.output().context("running psql")?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The cluster's own databases are closed to add-on roles.
    pub fn lock_down(&self) -> Result<()> {
        self.admin(&[
            "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC".into(),
            "REVOKE CONNECT ON DATABASE template1 FROM PUBLIC".into(),
        ])?;
        Ok(())
    }

    /// A role with `password` and its own database, which nobody else may connect to.
    pub fn create_database(&self, database: &str, role: &str, password: &str) -> Result<()> {
        check_ident(database)?;
        check_ident(role)?;
        check_ident(password)?;
        self.admin(&[format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE"
        )])?;
        let created = self.admin(&[
            format!("CREATE DATABASE {database} OWNER {role}"),
            format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        ]);
        if let Err(e) = created {
            let _ = self.drop_database(database, role);
            return Err(e);
        }
        Ok(())
    }

    /// Drops the database (disconnecting its sessions) and its role; missing ones are fine.
    pub fn drop_database(&self, database: &str, role: &str) -> Result<()> {
        check_ident(database)?;
        check_ident(role)?;
        self.admin(&[
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS {role}"),
        ])?;
        Ok(())
    }

    /// The databases that exist (tests, `pg:info`).
    pub fn databases(&self) -> Result<Vec<String>> {
        Ok(self
            .admin(&["SELECT datname FROM pg_database WHERE NOT datistemplate".into()])?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Removes the cluster's data (the server must be stopped).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.port_file());
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Names and passwords dyno generates: lowercase letters and digits only, so they are safe
/// inside SQL text.
fn check_ident(s: &str) -> Result<()> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        bail!("unexpected name {s:?}");
    }
    Ok(())
}

/// The role of an add-on's database: `d<x>` → `u<x>`.
pub fn role_of(database: &str) -> String {
    format!("u{}", database.get(1..).unwrap_or_default())
}
