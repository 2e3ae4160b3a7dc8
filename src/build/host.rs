//! What a build container sees of the host besides its own directories: the CA bundle the
//! daemon trusts (so buildpacks that call curl, git, pip or npm themselves trust what the daemon
//! does), and host files the app's buildpacks and config name with `file://` URLs (the official
//! nodejs buildpack's `NODE_BINARY_URL`, a multi buildpack's `.buildpacks`), bound read-only at
//! the same path when the dyno user could read them on the host, else refused with the reason.

use super::source::read_nofollow;
use crate::runtime::{BindMount, DYNO_GID, DYNO_UID};
use anyhow::{bail, Result};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Where the bundle appears in a build container, and the variables that point to it.
pub const CA_DIR: &str = "/tmp/ca";
pub const CA_FILE: &str = "/tmp/ca/ca-certificates.crt";
pub const CA_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
];
const MACHINE_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Writes `dir/ca-certificates.crt`: the machine's bundle plus the daemon's `SSL_CERT_FILE` and
/// `GIT_SSL_CAINFO` (each file once), owned by the dyno user.
/// Returns false when there is nothing to trust beyond the tools' defaults.
pub fn write_ca_bundle(dir: &Path) -> Result<bool> {
    let mut files: Vec<PathBuf> = vec![PathBuf::from(MACHINE_BUNDLE)];
    for k in ["SSL_CERT_FILE", "GIT_SSL_CAINFO"] {
        if let Some(v) = std::env::var_os(k).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(v);
            let same = |a: &Path, b: &Path| {
                a == b
                    || a.canonicalize()
                        .ok()
                        .is_some_and(|c| Some(c) == b.canonicalize().ok())
            };
            if !files.iter().any(|f| same(f, &p)) {
                files.push(p);
            }
        }
    }
    let mut bundle = Vec::new();
    for f in &files {
        if let Ok(pem) = std::fs::read(f) {
            bundle.extend_from_slice(&pem);
            if !pem.ends_with(b"\n") {
                bundle.push(b'\n');
            }
        }
    }
    if bundle.is_empty() {
        return Ok(false);
    }
    // The dyno user's alone, as ENV_DIR is (nothing in DYNO_HOME is readable by others).
    std::fs::create_dir_all(dir)?;
    let file = dir.join("ca-certificates.crt");
    std::fs::write(&file, bundle)?;
    for (p, mode) in [(&file, 0o400), (&dir.to_path_buf(), 0o700)] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::lchown(p, Some(DYNO_UID), Some(DYNO_GID))?;
    }
    Ok(true)
}

/// The `file://` URLs a build container may read itself, with where each was named (`config
/// var NODE_BINARY_URL`): in config vars, and in `.buildpacks` when a buildpack of the app's
/// (heroku-buildpack-multi) reads it rather than the daemon. The buildpacks the daemon fetches
/// (the app's list, `BUILDPACK_URL`, `.buildpacks` otherwise) are not: it reads them as root.
pub fn named_files(
    buildpacks: &[String],
    config: &[(String, String)],
    app_dir: &Path,
) -> Vec<(String, String)> {
    let mut found = vec![];
    let mut scan = |what: String, text: &str| {
        let mut rest = text;
        while let Some(i) = rest.find("file://") {
            let url: String = rest[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'<>;,".contains(*c))
                .collect();
            rest = &rest[i + url.len().max(7)..];
            found.push((what.clone(), url));
        }
    };
    let buildpack_url = config
        .iter()
        .any(|(k, v)| k == "BUILDPACK_URL" && !v.trim().is_empty());
    for (k, v) in config.iter().filter(|(k, _)| k != "BUILDPACK_URL") {
        scan(format!("config var {k}"), v);
    }
    if !buildpacks.is_empty() || buildpack_url {
        if let Ok(Some(text)) = read_nofollow(app_dir, ".buildpacks", 64 * 1024) {
            scan(".buildpacks".into(), &text);
        }
    }
    found
}

/// Read-only bind mounts for the files `named_files` found, or the reason one cannot be.
pub fn mounts_for(named: &[(String, String)]) -> Result<Vec<BindMount>> {
    let mut mounts: Vec<BindMount> = vec![];
    for (what, url) in named {
        let path = url
            .strip_prefix("file://")
            .unwrap_or(url)
            .split(['#', '?'])
            .next()
            .unwrap_or("");
        let path = path.strip_prefix("localhost").unwrap_or(path);
        if let Err(why) = check(Path::new(path)) {
            bail!("{what} names {url}, which a build cannot see: {why}");
        }
        if !mounts.iter().any(|m| m.destination == path) {
            mounts.push(BindMount {
                source: Path::new(path).canonicalize()?,
                destination: path.to_string(),
                readonly: true,
            });
        }
    }
    Ok(mounts)
}

/// Why the dyno user (uid/gid 47000, no other groups) could not read `path` on the host, or
/// why it cannot appear at that path in a build container.
fn check(path: &Path) -> Result<(), String> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err("a file:// URL needs an absolute path without `..`".into());
    }
    // The container's own directories are not shadowed by host ones.
    let own_dirs = [
        "/app",
        "/proc",
        "/sys",
        "/dev",
        "/.dyno",
        "/run",
        super::container::CACHE,
        super::container::ENV,
        super::container::BUILDPACKS,
        CA_DIR,
    ];
    for own in own_dirs {
        if path.starts_with(own) {
            return Err(format!("{own} is the build container's own"));
        }
    }
    if path == Path::new("/") {
        return Err("the host's whole filesystem is never shared".into());
    }
    let real = path
        .canonicalize()
        .map_err(|e| format!("{} on the host: {e}", path.display()))?;
    let mut at = PathBuf::from("/");
    let comps: Vec<Component> = real.components().skip(1).collect();
    for (i, c) in comps.iter().enumerate() {
        at.push(c);
        let m = std::fs::metadata(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        let last = i + 1 == comps.len();
        let need = match (last, m.is_dir()) {
            (false, _) => 0o1,    // search
            (true, true) => 0o5,  // list and search
            (true, false) => 0o4, // read
        };
        let bits = if m.uid() == DYNO_UID {
            (m.mode() >> 6) & 0o7
        } else if m.gid() == DYNO_GID {
            (m.mode() >> 3) & 0o7
        } else {
            m.mode() & 0o7
        };
        if bits & need != need {
            return Err(format!(
                "the dyno user (uid {DYNO_UID}) cannot {} {} on the host (mode {:o}, owner uid {}); make it readable by others",
                if last { "read" } else { "enter" },
                at.display(),
                m.mode() & 0o7777,
                m.uid()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_are_found_where_the_app_names_them() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(".buildpacks"),
            "file:///srv/bp.git#v1\nnodejs\n",
        )
        .unwrap();
        let config = vec![
            (
                "NODE_BINARY_URL".to_string(),
                "file:///srv/node.tgz and 'file:///x y'".to_string(),
            ),
            (
                "BUILDPACK_URL".to_string(),
                "file:///opt/daemon.git".to_string(),
            ),
        ];
        // BUILDPACK_URL is the daemon's to fetch; `.buildpacks` then belongs to the buildpack.
        let named = named_files(&[], &config, d.path());
        let urls: Vec<&str> = named.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            urls,
            ["file:///srv/node.tgz", "file:///x", "file:///srv/bp.git#v1"]
        );
        assert_eq!(named[0].0, "config var NODE_BINARY_URL");
        assert_eq!(named[2].0, ".buildpacks");
        // Without an app list or BUILDPACK_URL, the daemon reads `.buildpacks` itself.
        let named = named_files(&[], &config[..1], d.path());
        assert_eq!(named.len(), 2);
    }

    #[test]
    fn only_what_the_dyno_user_can_read_is_shared() {
        assert!(check(Path::new("/etc/passwd")).is_ok());
        let e = check(Path::new("/etc/shadow")).unwrap_err();
        assert!(e.contains("cannot read /etc/shadow"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("node.tgz");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = check(&f).unwrap_err();
        assert!(e.contains("cannot enter") && e.contains("mode 700"), "{e}");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(check(&f), Ok(()));
        assert!(check(Path::new("/app/x"))
            .unwrap_err()
            .contains("/app is the build container's own"));
        assert!(check(Path::new("/tmp/cache/x")).is_err());
        assert!(check(Path::new("/srv/../etc/passwd")).is_err());
        assert!(check(Path::new("etc/passwd")).is_err());
        let e = check(Path::new("/nonexistent/x")).unwrap_err();
        assert!(e.contains("/nonexistent/x on the host"), "{e}");
    }
}
