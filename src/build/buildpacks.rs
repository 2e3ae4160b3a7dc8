//! Which buildpacks a build runs and where they come from: the shipped ones (`buildpacks/` of
//! this repository, installed under `<prefix>/share/dyno/buildpacks`), a local directory, or a
//! git URL (cloned with the host's git: `file://`, `https://`, `http://`, each optionally `#ref`),
//! or a `.tgz` URL; what comes from the network is kept per URL and ref (`net`).
//!
//! Precedence: the app's buildpacks (`buildpacks:set`/`add`) → the `BUILDPACK_URL` config var →
//! the app's `.buildpacks` file → detection over the shipped buildpacks in [`SHIPPED`] order.

mod net;

use super::source::{copy_dir, read_nofollow};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Component, Path, PathBuf};

/// The shipped buildpacks in detection order, each with what its `bin/detect` looks for.
/// (Languages first; `static` and `procfile` accept almost anything, so they come last.)
pub const SHIPPED: &[(&str, &str)] = &[
    ("ruby", "a Gemfile"),
    ("nodejs", "a package.json"),
    (
        "python",
        "requirements.txt, pyproject.toml, uv.lock, Pipfile, setup.py, .python-version or runtime.txt",
    ),
    ("go", "a go.mod"),
    (
        "static",
        "static.json, or index.html (at the top or in public_html/) without a Procfile",
    ),
    ("procfile", "a Procfile"),
];

/// Files whose presence makes some shipped buildpack accept a directory (checked by `dyno up`
/// before it creates an app for a directory nothing could build).
const MARKERS: &[&str] = &[
    "Gemfile",
    "package.json",
    "requirements.txt",
    "pyproject.toml",
    "uv.lock",
    "Pipfile",
    "setup.py",
    ".python-version",
    "runtime.txt",
    "go.mod",
    "static.json",
    "index.html",
    "public_html/index.html",
    "Procfile",
    ".buildpacks",
];

/// Whether any shipped buildpack (or a `.buildpacks` file) could take `dir`.
pub fn looks_buildable(dir: &Path) -> bool {
    MARKERS.iter().any(|m| dir.join(m).exists())
}

/// The "nothing detected" error: what each shipped buildpack looks for.
pub fn nothing_detected() -> anyhow::Error {
    let list: Vec<String> = SHIPPED
        .iter()
        .map(|(n, what)| format!("{n} ({what})"))
        .collect();
    anyhow!(
        "no buildpack detected this app: no Procfile and nothing a shipped buildpack looks for: {}; or set one with `dyno buildpacks:set`",
        list.join("; ")
    )
}

/// Where one buildpack comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A shipped buildpack, by directory name.
    Shipped(String),
    /// A directory: absolute, or relative to the app's source (`.buildpacks` only).
    Path(PathBuf),
    /// A git repository and an optional branch, tag or commit.
    Git {
        url: String,
        reference: Option<String>,
    },
    /// A gzipped tarball over http(s) (`….tgz`, `….tar.gz`).
    Tarball(String),
}

/// One buildpack of a build: what the user wrote and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Buildpack {
    /// As written (`heroku/python`, `/src/my-bp`, `file:///bp.git#v2`); shown in `dyno builds`.
    pub url: String,
    pub location: Location,
}

/// Heroku's names for the official buildpacks dyno ships an equivalent of.
fn shipped_alias(s: &str) -> Option<&'static str> {
    let s = s.trim_end_matches('/').trim_end_matches(".git");
    let name = s
        .strip_prefix("heroku/")
        .or_else(|| s.strip_prefix("heroku-community/"))
        .or_else(|| s.strip_prefix("https://github.com/heroku/heroku-buildpack-"))
        .or_else(|| s.strip_prefix("https://github.com/heroku/buildpacks-"))
        .unwrap_or(s);
    SHIPPED.iter().map(|(n, _)| *n).find(|n| *n == name)
}

/// Parses one buildpack location (a `.buildpacks` line, `BUILDPACK_URL`, `buildpacks:add`).
pub fn parse(s: &str) -> Result<Buildpack> {
    let url = s.trim().to_string();
    if url.is_empty() {
        bail!("empty buildpack location");
    }
    let (base, reference) = match url.split_once('#') {
        Some((b, r)) if !r.is_empty() => (b.to_string(), Some(r.to_string())),
        Some((b, _)) => (b.to_string(), None),
        None => (url.clone(), None),
    };
    let is_url = base.contains("://");
    // Heroku's official URLs mean dyno's own buildpack only as they are: with a `#ref` the user
    // asked for that version of Heroku's code, which is fetched.
    let location = if let Some(name) = shipped_alias(&base).filter(|_| reference.is_none()) {
        Location::Shipped(name.to_string())
    } else if !is_url && reference.is_some() && shipped_alias(&base).is_some() {
        bail!("buildpack {url:?}: a shipped buildpack has no versions (#ref); give its git URL to fetch one");
    } else if (base.starts_with("https://") || base.starts_with("http://"))
        && (base.ends_with(".tgz") || base.ends_with(".tar.gz"))
    {
        if reference.is_some() {
            bail!("buildpack {url:?}: a tarball URL takes no #ref");
        }
        Location::Tarball(base)
    } else if ["file://", "https://", "http://", "git://", "ssh://", "git@"]
        .iter()
        .any(|p| base.starts_with(p))
        || base.ends_with(".git")
    {
        Location::Git {
            url: base,
            reference,
        }
    } else if base.starts_with('/') || base.starts_with("./") || base.starts_with("../") {
        Location::Path(PathBuf::from(base))
    } else {
        let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        bail!(
            "unknown buildpack {url:?}: use a shipped one ({}), a directory or a git URL",
            names.join(", ")
        );
    };
    Ok(Buildpack { url, location })
}

/// The lines of a `.buildpacks` file: one location a line, `#` comments and blank lines skipped.
pub fn parse_list(text: &str) -> Result<Vec<Buildpack>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| parse(l).with_context(|| format!(".buildpacks line {}", i + 1)))
        .collect()
}

/// The build's explicit buildpacks, by precedence, or `None` to detect among the shipped ones.
/// Returns where the list came from too (for the build output).
pub fn explicit(
    app_buildpacks: &[String],
    config: &[(String, String)],
    app_dir: &Path,
) -> Result<Option<(Vec<Buildpack>, &'static str)>> {
    if !app_buildpacks.is_empty() {
        let list = app_buildpacks
            .iter()
            .map(|u| parse(u))
            .collect::<Result<_>>()?;
        return Ok(Some((list, "the app's buildpacks")));
    }
    if let Some((_, url)) = config.iter().find(|(k, _)| k == "BUILDPACK_URL") {
        if !url.trim().is_empty() {
            return Ok(Some((vec![parse(url)?], "BUILDPACK_URL")));
        }
    }
    if let Some(text) = read_nofollow(app_dir, ".buildpacks", 64 * 1024)? {
        let list = parse_list(&text)?;
        if !list.is_empty() {
            return Ok(Some((list, ".buildpacks")));
        }
    }
    Ok(None)
}

/// The shipped buildpacks present in `dir`, in detection order (unknown extra directories go
/// before `static` and `procfile`, alphabetically).
pub fn shipped_in(dir: &Path) -> Result<Vec<String>> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bin/compile").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let rank = |n: &str| match SHIPPED.iter().position(|(s, _)| *s == n) {
        Some(i) if i >= SHIPPED.len() - 2 => (2, i, String::new()),
        Some(i) => (0, i, String::new()),
        None => (1, 0, n.to_string()),
    };
    found.sort_by_key(|n| rank(n));
    Ok(found)
}

/// What a fetch put in place: what ran, as `builds` shows it, and a warning for the build output.
#[derive(Debug, Default)]
pub struct Fetched {
    pub ran: String,
    pub warning: Option<String>,
}

/// Puts a writable copy of `bp` at `dst`. `shipped` is the shipped buildpacks' dir, `source`
/// the app's source copy (for relative paths in `.buildpacks`), `net_cache` where buildpacks
/// from the network are kept per URL and ref (used when a later fetch fails).
pub fn fetch(
    bp: &Buildpack,
    shipped: &Path,
    source: &Path,
    dst: &Path,
    net_cache: &Path,
) -> Result<Fetched> {
    let mut fetched = Fetched {
        ran: bp.url.clone(),
        warning: None,
    };
    match &bp.location {
        Location::Shipped(name) => {
            copy_dir(&shipped.join(name), dst)?;
            if bp.url != *name {
                fetched.ran = format!("{} (dyno's shipped {name})", bp.url);
            }
        }
        Location::Path(p) => {
            let dir = if p.is_absolute() {
                p.clone()
            } else {
                if p.components().any(|c| c == Component::ParentDir) {
                    bail!(
                        "buildpack {}: a relative path must stay inside the app",
                        bp.url
                    );
                }
                source.join(p)
            };
            let meta = std::fs::symlink_metadata(&dir)
                .with_context(|| format!("buildpack {}: no such directory", bp.url))?;
            if !meta.is_dir() || !dir.join("bin/compile").is_file() {
                bail!(
                    "buildpack {}: not a buildpack (a directory with bin/compile)",
                    bp.url
                );
            }
            copy_dir(&dir, dst)?;
        }
        Location::Git { url, reference } => {
            let local = url.starts_with("file://") || url.starts_with('/');
            let got = if local {
                clone(url, reference.as_deref(), dst).map(|c| (c, None))
            } else {
                net::cached(net_cache, &bp.url, dst, |tmp| {
                    clone(url, reference.as_deref(), tmp)
                })
            };
            let (commit, warning) =
                got.with_context(|| format!("fetching buildpack {}", bp.url))?;
            fetched.ran = format!("{} (commit {})", bp.url, &commit[..commit.len().min(7)]);
            fetched.warning = warning;
        }
        Location::Tarball(url) => {
            let (sum, warning) = net::cached(net_cache, url, dst, |tmp| net::download(url, tmp))
                .with_context(|| format!("fetching buildpack {}", bp.url))?;
            fetched.ran = format!("{} (sha256 {})", bp.url, &sum[..sum.len().min(12)]);
            fetched.warning = warning;
        }
    }
    if !dst.join("bin/compile").is_file() {
        bail!("buildpack {}: it has no bin/compile", bp.url);
    }
    // Executable bits get lost on some filesystems and archives: buildpack scripts need them.
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(dst.join("bin"))?.flatten() {
        let m = std::fs::symlink_metadata(e.path())?;
        if m.is_file() {
            let mode = m.permissions().mode() | 0o500;
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(fetched)
}

/// Clones `url` with the host's git (https and http with the machine's CAs, or the daemon's
/// `GIT_SSL_CAINFO`/`SSL_CERT_FILE`), checks out `reference` (a branch, tag or commit), and
/// leaves the tree without `.git`. Returns the commit.
fn clone(url: &str, reference: Option<&str>, dst: &Path) -> Result<String> {
    let to = dst.to_string_lossy().into_owned();
    // The shallow clone of a branch or tag first; a commit needs the history.
    let mut shallow = vec!["clone", "--quiet", "--depth", "1"];
    if let Some(r) = reference {
        shallow.extend(["--branch", r]);
    }
    shallow.extend(["--", url, &to]);
    if let Err(e) = net::git(&shallow) {
        let _ = std::fs::remove_dir_all(dst);
        let Some(r) = reference else { return Err(e) };
        net::git(&["clone", "--quiet", "--no-checkout", "--", url, &to])?;
        net::git(&["-C", &to, "checkout", "--quiet", "--detach", r])
            .map_err(|_| anyhow!("no branch, tag or commit {r:?} in {url}"))?;
    }
    let commit = net::git(&["-C", &to, "rev-parse", "HEAD"])?;
    std::fs::remove_dir_all(dst.join(".git"))?;
    Ok(commit.trim().to_string())
}

/// A short directory name for the buildpack's copy: `01-python`.
pub fn dir_name(i: usize, bp: &Buildpack) -> String {
    let base = match &bp.location {
        Location::Shipped(n) => n.clone(),
        Location::Path(p) => p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Location::Git { url, .. } => url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".git")
            .to_string(),
        Location::Tarball(url) => url
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim_end_matches(".tgz")
            .trim_end_matches(".tar.gz")
            .to_string(),
    };
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{:02}-{clean}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_every_kind() {
        assert_eq!(
            parse("python").unwrap().location,
            Location::Shipped("python".into())
        );
        assert_eq!(
            parse("heroku/nodejs").unwrap().location,
            Location::Shipped("nodejs".into())
        );
        assert_eq!(
            parse("https://github.com/heroku/heroku-buildpack-python.git")
                .unwrap()
                .location,
            Location::Shipped("python".into())
        );
        assert_eq!(
            parse("file:///srv/bp.git#v2").unwrap().location,
            Location::Git {
                url: "file:///srv/bp.git".into(),
                reference: Some("v2".into())
            }
        );
        assert_eq!(
            parse("/srv/my-bp").unwrap().location,
            Location::Path("/srv/my-bp".into())
        );
        assert_eq!(
            parse("./vendor/bp").unwrap().location,
            Location::Path("./vendor/bp".into())
        );
        // Heroku's official URL is dyno's own buildpack only without a #ref.
        assert_eq!(
            parse("https://github.com/heroku/heroku-buildpack-nodejs#v250")
                .unwrap()
                .location,
            Location::Git {
                url: "https://github.com/heroku/heroku-buildpack-nodejs".into(),
                reference: Some("v250".into())
            }
        );
        let e = parse("heroku/nodejs#v250").unwrap_err().to_string();
        assert!(e.contains("no versions"), "{e}");
        assert_eq!(
            parse("https://example.com/bp/v1.tgz").unwrap().location,
            Location::Tarball("https://example.com/bp/v1.tgz".into())
        );
        assert!(parse("https://example.com/bp.tgz#v1").is_err());
        let e = parse("nosuch").unwrap_err().to_string();
        assert!(e.contains("python") && e.contains("git URL"), "{e}");
        let list = parse_list("# chain\nheroku/nodejs\n\n  python  \n").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].url, "python");
        let e = format!("{:#}", parse_list("python\nbogus\n").unwrap_err());
        assert!(e.contains(".buildpacks line 2"), "{e}");
    }

    #[test]
    fn precedence_app_then_buildpack_url_then_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".buildpacks"), "nodejs\npython\n").unwrap();
        let cfg = vec![("BUILDPACK_URL".to_string(), "go".to_string())];
        let (l, from) = explicit(&["ruby".into()], &cfg, d.path()).unwrap().unwrap();
        assert_eq!((l[0].url.as_str(), from), ("ruby", "the app's buildpacks"));
        let (l, from) = explicit(&[], &cfg, d.path()).unwrap().unwrap();
        assert_eq!((l[0].url.as_str(), from), ("go", "BUILDPACK_URL"));
        let (l, from) = explicit(&[], &[], d.path()).unwrap().unwrap();
        assert_eq!((l.len(), from), (2, ".buildpacks"));
        std::fs::remove_file(d.path().join(".buildpacks")).unwrap();
        assert!(explicit(&[], &[], d.path()).unwrap().is_none());
    }

    #[test]
    fn shipped_order_puts_catch_alls_last() {
        let d = tempfile::tempdir().unwrap();
        for n in ["procfile", "static", "python", "zeta", "nodejs"] {
            std::fs::create_dir_all(d.path().join(n).join("bin")).unwrap();
            std::fs::write(d.path().join(n).join("bin/compile"), "").unwrap();
        }
        assert_eq!(
            shipped_in(d.path()).unwrap(),
            vec!["nodejs", "python", "zeta", "static", "procfile"]
        );
    }

    #[test]
    fn git_buildpacks_clone_at_a_ref() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("bp");
        let repo = git2::Repository::init(&src).unwrap();
        let sig = git2::Signature::now("t", "t@localhost").unwrap();
        let commit = |text: &str, parent: Option<git2::Oid>| {
            std::fs::create_dir_all(src.join("bin")).unwrap();
            std::fs::write(src.join("bin/compile"), text).unwrap();
            let mut idx = repo.index().unwrap();
            idx.add_path(Path::new("bin/compile")).unwrap();
            idx.write().unwrap();
            let tree = repo.find_tree(idx.write_tree().unwrap()).unwrap();
            let parents: Vec<git2::Commit> = parent
                .iter()
                .map(|p| repo.find_commit(*p).unwrap())
                .collect();
            let refs: Vec<&git2::Commit> = parents.iter().collect();
            repo.commit(Some("HEAD"), &sig, &sig, text, &tree, &refs)
                .unwrap()
        };
        let v1 = commit("v1", None);
        repo.tag_lightweight("v1", &repo.find_object(v1, None).unwrap(), false)
            .unwrap();
        commit("v2", Some(v1));
        let url = format!("file://{}", src.display());
        for (spec, want) in [(url.clone(), "v2"), (format!("{url}#v1"), "v1")] {
            let dst = d.path().join(format!("out-{want}"));
            let got = fetch(&parse(&spec).unwrap(), d.path(), d.path(), &dst, d.path()).unwrap();
            assert!(got.ran.starts_with(&format!("{spec} (commit ")), "{got:?}");
            assert_eq!(
                std::fs::read_to_string(dst.join("bin/compile")).unwrap(),
                want
            );
            assert!(!dst.join(".git").exists());
        }
        let e = format!(
            "{:#}",
            fetch(
                &parse("https://example.invalid/bp.git").unwrap(),
                d.path(),
                d.path(),
                &d.path().join("x"),
                &d.path().join("cache")
            )
            .unwrap_err()
        );
        // Offline (or no such host): the error names the URL.
        assert!(
            e.contains("fetching buildpack https://example.invalid/bp.git"),
            "{e}"
        );
    }
}
