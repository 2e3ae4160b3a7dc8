//! `pg:backups`, `pg:backups:capture`, `pg:backups:restore`, `pg:backups:download`: Postgres
//! backups kept by the daemon (`pg_dump` custom format), printed as Heroku's CLI prints them.

use super::{resolve_app, AppArg};
use crate::api::pg_backups::{self as ep, human_size};
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// List the app's Postgres backups (id, time, size, database)
    #[command(name = "pg:backups")]
    List {
        #[command(flatten)]
        app: AppArg,
        #[arg(long)]
        json: bool,
    },
    /// Capture a backup of a Postgres database now (default: DATABASE)
    #[command(name = "pg:backups:capture")]
    Capture {
        /// The add-on or attachment (DATABASE, HEROKU_POSTGRESQL_RED, postgresql-…)
        database: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Replace a database's data with a backup's (default: the latest, into DATABASE); the dynos restart
    #[command(name = "pg:backups:restore")]
    Restore {
        /// The backup (b001; default: the latest)
        backup: Option<String>,
        /// The add-on or attachment to restore into (default: DATABASE)
        database: Option<String>,
        /// The app's name: a restore replaces the database's data
        #[arg(short = 'c', long)]
        confirm: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Download a backup's dump (pg_restore's custom format) to the current directory
    #[command(name = "pg:backups:download")]
    Download {
        /// The backup (b001; default: the latest)
        backup: Option<String>,
        /// Where to write it (default: latest.dump)
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        app: AppArg,
    },
}

pub async fn run(paths: &Paths, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::List { app, json } => list(paths, app, json).await,
        Cmd::Capture { database, app } => capture(paths, app, database).await,
        Cmd::Restore {
            backup,
            database,
            confirm,
            app,
        } => restore(paths, app, backup, database, confirm).await,
        Cmd::Download {
            backup,
            output,
            app,
        } => download(paths, app, backup, output).await,
    }
}

/// `2026-12-08T01:02:03Z` → `2026-12-08 01:02:03 +0000`, as Heroku's table shows times.
fn time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %z").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// Heroku's `=== Backups` table, newest first.
pub fn table(list: &[ep::Backup]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .rev()
        .map(|b| {
            vec![
                b.id.clone(),
                time(&b.created_at),
                format!("Completed {}", time(&b.finished_at)),
                human_size(b.processed_bytes),
                b.from_attachment.clone(),
            ]
        })
        .collect();
    let head = ["ID", "Created at", "Status", "Size", "Database"];
    "=== Backups\n".to_string() + &super::table::render(&head, &rows)
}

async fn list(paths: &Paths, arg: AppArg, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let list = c.call(ep::List { app: name.clone() }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!("=== Backups\nNo backups. Capture one with dyno pg:backups:capture");
    } else {
        print!("{}", table(&list));
    }
    Ok(0)
}

async fn capture(paths: &Paths, arg: AppArg, database: Option<String>) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    eprint!(
        "Backing up {} on {name}... ",
        database.as_deref().unwrap_or("DATABASE")
    );
    match c
        .call(ep::Capture {
            app: name,
            body: ep::BackupCapture { database },
        })
        .await
    {
        Ok(b) => {
            eprintln!("done");
            println!(
                "Backed up {} ({}) to {}: {}",
                b.from_attachment,
                b.from_name,
                b.id,
                human_size(b.processed_bytes)
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("failed");
            Err(e)
        }
    }
}

fn backup_arg(backup: Option<String>) -> Result<String> {
    ep::parse_id(backup.as_deref().unwrap_or("latest")).map_err(anyhow::Error::msg)
}

async fn restore(
    paths: &Paths,
    arg: AppArg,
    backup: Option<String>,
    database: Option<String>,
    confirm: Option<String>,
) -> Result<i32> {
    let id = backup_arg(backup)?;
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let b = c
        .call(ep::Info {
            app: name.clone(),
            backup: id,
        })
        .await?;
    let target = database.clone().unwrap_or_else(|| "DATABASE".into());
    match confirm {
        Some(c) if c != name => {
            bail!("confirmation {c:?} did not match {name}: nothing restored")
        }
        Some(_) => {}
        None => super::confirm_by_typing(
            &format!(
                "This will replace the data of {target} on {name} with {}.",
                b.id
            ),
            &name,
            format!(
                "restoring {} replaces the data of {target}: confirm with --confirm {name}",
                b.id
            ),
        )?,
    }
    eprint!("Restoring {} to {target} on {name}... ", b.id);
    match c
        .call(ep::RestoreCreate {
            app: name.clone(),
            backup: b.id.clone(),
            body: ep::BackupRestore {
                database,
                confirm: Some(name.clone()),
            },
        })
        .await
    {
        Ok(r) => {
            eprintln!("done, dynos restarting");
            println!(
                "Restored {} into {} ({})",
                r.backup, r.to_attachment, r.to_name
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("failed");
            Err(e)
        }
    }
}

async fn download(
    paths: &Paths,
    arg: AppArg,
    backup: Option<String>,
    output: Option<PathBuf>,
) -> Result<i32> {
    let id = backup_arg(backup)?;
    let c = Client::connect(paths).await?;
    let name = resolve_app(&c, &arg).await?;
    let b = c
        .call(ep::Info {
            app: name,
            backup: id,
        })
        .await?;
    let out = output.unwrap_or_else(|| PathBuf::from("latest.dump"));
    // Written beside the target then renamed: a failed download leaves no half dump.
    let partial = out.with_extension("dump.partial");
    eprint!("Downloading {} to {}... ", b.id, out.display());
    let res = async {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?,
        );
        let n = c.download(&b.download_url, &mut f).await?;
        std::io::Write::flush(&mut f)?;
        if n != b.processed_bytes {
            bail!("got {n} bytes of {}", b.processed_bytes);
        }
        std::fs::rename(&partial, &out)?;
        Ok(n)
    }
    .await;
    match res {
        Ok(n) => {
            eprintln!("done, {}", human_size(n));
            Ok(0)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            eprintln!("failed");
            Err(e)
        }
    }
}
