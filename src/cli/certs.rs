//! `certs`: the HTTPS listener and the local certificate authority to trust.

use crate::api;
use crate::client::Client;
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's update-ca-certificates takes local authorities from, and the bundle it makes.
const LOCAL_CAS: &str = "/usr/local/share/ca-certificates";
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub async fn show(paths: &Paths, json: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let r = c.call(api::certs::Get {}).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    let (Some(addr), Some(ca)) = (&r.https_addr, &r.ca_cert_path) else {
        println!("The HTTPS listener is off (DYNO_HTTPS_ADDR=off, or its port was taken: see the daemon's log).");
        return Ok(0);
    };
    let port = addr.rsplit(':').next().unwrap_or("443");
    let port = if port == "443" {
        String::new()
    } else {
        format!(":{port}")
    };
    println!("HTTPS listener:  {addr}  (https://<app>.localhost{port}/)");
    println!("Local CA:        {ca}");
    println!();
    println!(
        "Each app gets a certificate signed by this local certificate authority. Trust it once:"
    );
    println!("  Debian/Ubuntu:  sudo cp {ca} /usr/local/share/ca-certificates/dyno-local-ca.crt && sudo update-ca-certificates");
    println!("  Chrome/Firefox: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n dyno -i {ca}");
    println!(
        "                  (or import it as an authority in the browser's certificate settings)"
    );
    println!("  curl only:      curl --cacert {ca} https://<app>.localhost{port}/");
    println!(
        "The CA's key ({}) never leaves this machine; it signs only names the router serves.",
        ca.trim_end_matches("ca.pem").to_string() + "ca-key.pem"
    );
    Ok(0)
}

/// This home's CA file in the system store (one per `DYNO_HOME`: several homes coexist).
fn store_file(paths: &Paths) -> PathBuf {
    Path::new(LOCAL_CAS).join(format!("dyno-local-ca-{}.crt", paths.instance))
}

/// The NSS nickname of this home's CA.
fn nss_name(paths: &Paths) -> String {
    format!("dyno local CA {}", paths.instance)
}

/// Whether the system bundle holds `pem` (a trusted CA: `dyno up` then prints the https URL).
pub fn system_trusts(pem: &str) -> bool {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let bundle = std::fs::read_to_string(SYSTEM_BUNDLE).unwrap_or_default();
    !body.is_empty() && bundle.lines().collect::<String>().contains(&body)
}

/// The NSS databases of the user who ran the command (through sudo: that user's): Chrome's
/// `~/.pki/nssdb` and Firefox's profiles.
fn nss_databases() -> Vec<PathBuf> {
    let home = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
        .map(|u| PathBuf::from("/home").join(u))
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    let Some(home) = home else { return vec![] };
    let mut dbs = vec![];
    if home.join(".pki/nssdb/cert9.db").exists() {
        dbs.push(home.join(".pki/nssdb"));
    }
    for profile in std::fs::read_dir(home.join(".mozilla/firefox"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if profile.path().join("cert9.db").exists() {
            dbs.push(profile.path());
        }
    }
    dbs
}

fn run(cmd: &mut Command) -> Result<()> {
    let what = format!("{cmd:?}");
    let o = cmd.output().with_context(|| format!("running {what}"))?;
    if !o.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// `certs:trust` (`on`) and `certs:untrust`: the local CA into or out of the system store and
/// the NSS databases where present.
pub async fn trust(paths: &Paths, on: bool) -> Result<i32> {
    let c = Client::connect(paths).await?;
    let r = c.call(api::certs::Get {}).await?;
    let (Some(pem), Some(ca)) = (r.ca_cert_pem, r.ca_cert_path) else {
        bail!("the HTTPS listener is off (DYNO_HTTPS_ADDR=off, or its port was taken): there is no local CA to trust");
    };
    if which("update-ca-certificates").is_none() {
        bail!("update-ca-certificates is missing: install Debian's ca-certificates package");
    }
    let file = store_file(paths);
    if on {
        std::fs::create_dir_all(LOCAL_CAS)?;
        std::fs::write(&file, &pem).with_context(|| format!("writing {}", file.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    } else if let Err(e) = std::fs::remove_file(&file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e).with_context(|| format!("removing {}", file.display()));
        }
    }
    run(&mut Command::new("update-ca-certificates"))?;
    let trusted = system_trusts(&pem);
    if trusted != on {
        bail!(
            "update-ca-certificates ran, but {SYSTEM_BUNDLE} {} the CA",
            if on { "still lacks" } else { "still holds" }
        );
    }
    let name = nss_name(paths);
    let dbs = nss_databases();
    let certutil = which("certutil");
    for db in &dbs {
        let Some(certutil) = &certutil else { break };
        let db_arg = format!("sql:{}", db.display());
        let mut cmd = Command::new(certutil);
        if on {
            cmd.args(["-A", "-t", "C,,", "-n", &name, "-i", &ca, "-d", &db_arg]);
            run(&mut cmd)?;
        } else {
            // Absent already is fine: untrust is idempotent.
            let _ = cmd.args(["-D", "-n", &name, "-d", &db_arg]).output();
        }
    }
    if on {
        println!("The local CA ({ca}) is trusted by this machine ({SYSTEM_BUNDLE}).");
    } else {
        println!("The local CA ({ca}) is no longer trusted by this machine.");
    }
    match (&certutil, dbs.is_empty()) {
        (_, true) => {}
        (Some(_), false) => println!(
            "NSS databases ({}): {}",
            if on { "added" } else { "removed" },
            dbs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
        (None, false) => println!(
            "Browsers' NSS databases were found but certutil is missing (Debian: libnss3-tools); without it they {} the CA.",
            if on { "do not trust" } else { "keep" }
        ),
    }
    Ok(0)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The app's https URL when this machine trusts the local CA (else `None`: a browser would
/// warn, so `dyno up` does not offer it).
pub async fn trusted_https_url(c: &Client, app: &str) -> Option<String> {
    let r = c.call(api::certs::Get {}).await.ok()?;
    let port = r.https_addr?.rsplit(':').next()?.to_string();
    if !system_trusts(&r.ca_cert_pem?) {
        return None;
    }
    Some(match port.as_str() {
        "443" => format!("https://{app}.localhost/"),
        p => format!("https://{app}.localhost:{p}/"),
    })
}
