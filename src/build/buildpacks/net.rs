//! Buildpacks from the network, fetched by the daemon on the host (never in a build container,
//! so whatever network builds get does not matter): git over https/http with the host's `git`,
//! tarballs with the host's `curl`. Trust is the machine's CA store, or the daemon's
//! `GIT_SSL_CAINFO`/`SSL_CERT_FILE` (so tests trust their own CA without touching the machine).
//! Each URL and ref is kept in `DYNO_HOME/buildpack-cache`: a build whose fetch fails (offline)
//! uses the copy a previous build fetched, with a warning; without one it fails naming the URL.

use crate::build::source::copy_dir;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fetch of git or curl that takes longer is stopped (a host that swallows packets).
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The CA bundle the daemon was told to trust, if any (else the tools' own default: the
/// machine's store).
fn ca_file() -> Option<String> {
    ["GIT_SSL_CAINFO", "SSL_CERT_FILE"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Runs a fetching tool; its stdout, or an error carrying the end of its stderr.
fn run(mut cmd: Command, what: &str) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {what}"))?;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    let out_reader = std::thread::spawn(move || {
        let _ = out.read_to_string(&mut stdout);
        stdout
    });
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} took over {} s", FETCH_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    let stdout = out_reader.join().unwrap_or_default();
    if !status.success() {
        let msg: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let tail = msg[msg.len().saturating_sub(2)..].join(" ");
        bail!(
            "{what} failed: {}",
            if tail.is_empty() {
                status.to_string()
            } else {
                tail
            }
        );
    }
    Ok(stdout)
}

/// The host's git, never asking for credentials (there is nobody to ask).
pub fn git(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
        .env("GIT_HTTP_LOW_SPEED_TIME", "60");
    if let Some(ca) = ca_file() {
        cmd.env("GIT_SSL_CAINFO", ca);
    }
    run(cmd, "git")
}

/// Downloads a gzipped tarball and unpacks it at `dst` (entries checked as a slug's are; a
/// single top directory, as GitHub's archives have, is the buildpack). Returns its sha256.
pub fn download(url: &str, dst: &Path) -> Result<String> {
    let parent = dst.parent().context("no parent directory")?;
    let file = parent.join(format!(
        ".download-{}",
        dst.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut cmd = Command::new("curl");
    cmd.args(["--fail", "--silent", "--show-error", "--location"])
        .args(["--proto", "=https,http", "--max-filesize", "1000000000"])
        .arg("--output")
        .arg(&file);
    if let Some(ca) = ca_file() {
        cmd.arg("--cacert").arg(ca);
    }
    cmd.arg("--").arg(url);
    let got = run(cmd, "curl");
    let result = got.and_then(|_| {
        let bytes = std::fs::read(&file)?;
        let sum = format!("{:x}", Sha256::digest(&bytes));
        let tmp = parent.join(format!(
            ".unpack-{}",
            dst.file_name().unwrap_or_default().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        crate::build::slug::unpack_tree(&bytes[..], &tmp, "buildpack tarball entry")
            .context("not a buildpack tarball")?;
        let entries: Vec<_> = std::fs::read_dir(&tmp)?.flatten().collect();
        let root = match &entries[..] {
            [one] if !tmp.join("bin").exists() && one.path().is_dir() => one.path(),
            _ => tmp.clone(),
        };
        std::fs::rename(&root, dst)?;
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(sum)
    });
    let _ = std::fs::remove_file(&file);
    result
}

/// Fetches `key` (a URL with its `#ref`) with `fetch` into a fresh directory, keeps it in
/// `cache`, and copies it to `dst`. When the fetch fails and an earlier copy is kept, that copy
/// is used and a warning says so. Returns what `fetch` returned (a commit, a checksum).
pub fn cached(
    cache: &Path,
    key: &str,
    dst: &Path,
    fetch: impl FnOnce(&Path) -> Result<String>,
) -> Result<(String, Option<String>)> {
    std::fs::create_dir_all(cache)?;
    let name = format!("{:x}", Sha256::digest(key.as_bytes()))[..24].to_string();
    let (dir, id_file) = (cache.join(&name), cache.join(format!("{name}.id")));
    let tmp = cache.join(format!(".{name}-{}", rand::random::<u32>()));
    match fetch(&tmp) {
        Ok(id) => {
            // Another build may have put the same URL there meanwhile: the newest wins.
            // DYNO_HOME's rule: nothing in it grants group or others anything (a tarball's
            // entries come with their own modes).
            crate::build::source::private_tree(&tmp)?;
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir)?;
            std::fs::write(&id_file, format!("{id}\n{key}\n"))?;
            copy_dir(&dir, dst)?;
            Ok((id, None))
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            let id = std::fs::read_to_string(&id_file).ok();
            match id.as_deref().and_then(|t| t.lines().next()) {
                Some(id) if dir.is_dir() => {
                    copy_dir(&dir, dst)?;
                    Ok((
                        id.to_string(),
                        Some(format!(
                            "fetching {key} failed ({e:#}): using the copy an earlier build fetched"
                        )),
                    ))
                }
                _ => Err(anyhow!("{e:#}")),
            }
        }
    }
}
