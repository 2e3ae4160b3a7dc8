//! The slug compiler: source → classic buildpacks (`bin/detect`, `bin/compile`, `bin/release`)
//! in build containers → slug (a gzip tarball stored by its content hash, unpacked once into a
//! read-only tree every dyno of the release shares).
//!
//! A build's workspace is `DYNO_HOME/builds/<id>/` (`app/` = BUILD_DIR, `env/` = ENV_DIR,
//! `buildpacks/` = writable copies of the buildpacks); CACHE_DIR is `DYNO_HOME/cache/<app id>`.
//! Every buildpack step runs in a build container (see [`container`]) as the dyno user; the
//! daemon only copies, reads (never following a link) and packs. A failed build changes
//! nothing: the slug and release are only recorded by the caller after everything here
//! succeeded. Builds of one app run one at a time (they share CACHE_DIR).

pub mod buildpacks;
pub mod container;
pub mod host;
mod output;
pub mod release;
pub mod slug;
pub mod source;
pub mod stack;

pub use output::BuildOutput;
pub use slug::{human_size, pack_slug, unpack_slug};
pub use source::{copy_source, Source, SourceVersion};
pub use stack::STACK;

use crate::paths::Paths;
use crate::procfile::Procfile;
use crate::runtime::{Runtime, DYNO_GID, DYNO_UID};
use crate::store::{new_id, SlugRow};
use anyhow::{anyhow, bail, Context, Result};
use buildpacks::{Buildpack, Location};
use container::{sh_quote, Dirs, BUILDPACKS, CACHE, ENV};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `bin/detect` and `bin/release` are quick by contract.
const STEP_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct Builder {
    pub paths: Paths,
    /// Where the shipped buildpacks live (one dir per buildpack).
    pub buildpacks_dir: PathBuf,
    compile_timeout: Duration,
    /// One lock per app: its builds share CACHE_DIR.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What to build.
pub struct BuildRequest<'a> {
    pub build_id: &'a str,
    pub app_id: &'a str,
    pub app_name: &'a str,
    pub source: &'a Source,
    /// The app's config vars (ENV_DIR; `BUILDPACK_URL`).
    pub config: &'a [(String, String)],
    /// The app's buildpacks (`buildpacks:set`), empty for none.
    pub buildpacks: &'a [String],
    /// Whether host files named by `file://` URLs may be bound into the build (`host.rs`): only
    /// for requests from the machine itself (the Unix socket), never over a network API.
    pub host_files: bool,
}

pub struct Built {
    pub slug: SlugRow,
    pub version: SourceVersion,
    /// The buildpacks that ran, as their locations were written.
    pub buildpacks: Vec<String>,
    /// Add-on plans `bin/release` asked for (provisioned by the app's first deploy).
    pub addons: Vec<String>,
    /// The source's `app.json` (checked before any buildpack ran), empty without one.
    pub app_json: crate::appjson::AppJson,
}

/// Finds the shipped buildpacks: the `buildpacks` setting, else `<prefix>/share/dyno/buildpacks`
/// next to an installed binary, else the source tree's `buildpacks/` (a cargo build).
pub fn find_buildpacks(setting: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(p) = setting {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    let mut candidates = vec![];
    if let Some(bin) = exe.parent() {
        candidates.push(bin.join("../share/dyno/buildpacks"));
        candidates.push(bin.join("../../buildpacks"));
        candidates.push(bin.join("../../../buildpacks"));
    }
    candidates
        .into_iter()
        .find(|p| p.join("procfile/bin/detect").exists())
        .map(|p| p.canonicalize().unwrap_or(p))
        .ok_or_else(|| {
            anyhow!(
                "cannot find dyno's buildpacks: reinstall with ./install.sh or set DYNO_BUILDPACKS"
            )
        })
}

/// One buildpack of this build, fetched.
struct Fetched {
    bp: Buildpack,
    /// Its directory inside the build container (`/tmp/buildpacks/01-python`).
    dir: String,
    host_dir: PathBuf,
    /// What ran, as `builds` shows it (`heroku/python (dyno's shipped python)`, a commit).
    ran: String,
}

impl Builder {
    pub fn new(paths: Paths, buildpacks_dir: PathBuf, compile_timeout: Duration) -> Builder {
        Builder {
            paths,
            buildpacks_dir,
            compile_timeout,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a build of the app is running (its cache is in use).
    pub fn building(&self, app_id: &str) -> bool {
        self.locks
            .lock()
            .unwrap()
            .get(app_id)
            .is_some_and(|l| l.try_lock().is_err())
    }

    /// CACHE_DIR of an app (kept between builds, removed with the app).
    pub fn cache_dir(&self, app_id: &str) -> PathBuf {
        self.paths.cache().join(app_id)
    }

    /// Runs the whole build; `out` gets its output as it happens.
    pub async fn build(
        &self,
        runtime: &Runtime,
        req: &BuildRequest<'_>,
        out: &BuildOutput,
    ) -> Result<Built> {
        let lock = self
            .locks
            .lock()
            .unwrap()
            .entry(req.app_id.to_string())
            .or_default()
            .clone();
        let _guard = match lock.clone().try_lock_owned() {
            Ok(g) => g,
            Err(_) => {
                out.heading("Waiting for the app's previous build to finish...");
                lock.lock_owned().await
            }
        };
        let ws = self.paths.builds().join(req.build_id);
        let result = self.build_in(runtime, &ws, req, out).await;
        // remove_dir_all never follows links: safe on a tree the build wrote.
        let _ = tokio::fs::remove_dir_all(&ws).await;
        result
    }

    async fn build_in(
        &self,
        runtime: &Runtime,
        ws: &Path,
        req: &BuildRequest<'_>,
        out: &BuildOutput,
    ) -> Result<Built> {
        out.heading(&format!("Building on the {STACK} stack"));
        let t0 = std::time::Instant::now();
        let mark = |phase: &str| {
            tracing::debug!(target: "dyno::timing", build = req.build_id, phase, elapsed = ?t0.elapsed());
        };
        let mut dirs = Dirs {
            app: ws.join("app"),
            cache: self.cache_dir(req.app_id),
            env: ws.join("env"),
            buildpacks: ws.join("buildpacks"),
            ca: None,
            host_files: vec![],
        };
        for d in [&dirs.app, &dirs.env, &dirs.buildpacks] {
            std::fs::create_dir_all(d).with_context(|| format!("mkdir {}", d.display()))?;
        }
        if !dirs.cache.exists() {
            std::fs::create_dir_all(&dirs.cache)?;
            std::os::unix::fs::lchown(&dirs.cache, Some(DYNO_UID), Some(DYNO_GID))?;
        }

        let (src, dst) = (req.source.clone(), dirs.app.clone());
        let version = tokio::task::spawn_blocking(move || source::fetch(&src, &dst)).await??;
        // app.json as the source has it, before any buildpack could change it; a bad one stops
        // the build here.
        let limit = crate::appjson::MAX_SIZE as u64 + 1;
        let app_json = match source::read_nofollow_bytes(&dirs.app, crate::appjson::FILE, limit)? {
            Some(b) => crate::appjson::parse(&b).map_err(anyhow::Error::msg)?,
            None => Default::default(),
        };
        write_env_dir(&dirs.env, req.config)?;

        // Which buildpacks: the explicit list, or every shipped one as detection candidates.
        let explicit = buildpacks::explicit(req.buildpacks, req.config, &dirs.app)?;
        // A push over HTTPS comes from anyone holding the token: its own `.buildpacks` must
        // not make the root daemon copy a host directory into the build.
        if let (
            Source::Git {
                over_https: true, ..
            },
            Some((list, ".buildpacks")),
        ) = (req.source, &explicit)
        {
            if let Some(b) = list
                .iter()
                .find(|b| crate::api::buildpacks::is_host_path(&b.url))
            {
                anyhow::bail!(
                    ".buildpacks names {}, a path on the daemon's host: a push over HTTPS may use shipped buildpacks and git URLs only",
                    b.url
                );
            }
        }
        let is_explicit = explicit.is_some();
        let candidates: Vec<Buildpack> = match explicit {
            Some((list, from)) => {
                out.heading(&format!("Using buildpacks from {from}:"));
                for (i, b) in list.iter().enumerate() {
                    out.detail(&format!("{}. {}", i + 1, b.url));
                }
                list
            }
            None => buildpacks::shipped_in(&self.buildpacks_dir)?
                .into_iter()
                .map(|n| Buildpack {
                    url: n.clone(),
                    location: Location::Shipped(n),
                })
                .collect(),
        };
        let fetched = {
            let (cands, shipped, app, root, net_cache) = (
                candidates.clone(),
                self.buildpacks_dir.clone(),
                dirs.app.clone(),
                dirs.buildpacks.clone(),
                self.paths.buildpack_cache(),
            );
            let (v, warnings) =
                tokio::task::spawn_blocking(move || -> Result<(Vec<Fetched>, Vec<String>)> {
                    let (mut v, mut warnings) = (vec![], vec![]);
                    for (i, bp) in cands.into_iter().enumerate() {
                        let name = buildpacks::dir_name(i, &bp);
                        let host_dir = root.join(&name);
                        let got = buildpacks::fetch(&bp, &shipped, &app, &host_dir, &net_cache)?;
                        warnings.extend(got.warning);
                        v.push(Fetched {
                            bp,
                            dir: format!("{BUILDPACKS}/{name}"),
                            host_dir,
                            ran: got.ran,
                        });
                    }
                    source::chown_tree(&app)?;
                    source::chown_tree(&root)?;
                    source::private_tree(&root)?;
                    Ok((v, warnings))
                })
                .await??;
            for w in warnings {
                out.warn(&w);
            }
            v
        };

        // What the build sees of the host: the CA bundle, and the files its buildpacks and
        // config name (checked now: a refusal fails the build before any step runs).
        let named = host::named_files(req.buildpacks, req.config, &dirs.app);
        if !named.is_empty() {
            if !req.host_files {
                let (what, url) = &named[0];
                bail!("{what} names {url}: host files are shared with builds started on this machine only");
            }
            dirs.host_files = host::mounts_for(&named)?;
        }
        if host::write_ca_bundle(&ws.join("ca"))? {
            dirs.ca = Some(ws.join("ca"));
        }
        mark("source and buildpacks copied");
        let mut env = build_env(&version);
        if dirs.ca.is_some() {
            env.extend(
                host::CA_VARS
                    .iter()
                    .map(|k| (k.to_string(), host::CA_FILE.to_string())),
            );
        }
        // The shipped buildpacks: the first whose bin/detect accepts the app. An explicit list
        // (Heroku's way): each buildpack's bin/detect runs right before its compile, on the tree
        // the previous ones left (a monorepo buildpack moves the app up, then nodejs finds it).
        let mut detected = if is_explicit {
            vec![]
        } else {
            self.detect(runtime, req, &dirs, &env, &fetched, false)
                .await?
        };
        let plan: Vec<usize> = if is_explicit {
            (0..fetched.len()).collect()
        } else {
            detected.iter().map(|(i, _)| *i).collect()
        };

        mark("detected");
        // Compile, each buildpack sourcing the `export` of those before it.
        let mut exports = String::new();
        for (k, i) in plan.into_iter().enumerate() {
            let f = &fetched[i];
            let name = if is_explicit {
                let one = self
                    .detect(runtime, req, &dirs, &env, std::slice::from_ref(f), true)
                    .await?;
                let name = one[0].1.clone();
                detected.push((i, name.clone()));
                name
            } else {
                detected[k].1.clone()
            };
            out.heading(&format!("{name} app detected"));
            let command = format!(
                "{exports}exec {}/bin/compile /app {CACHE} {ENV}",
                sh_quote(&f.dir)
            );
            let exit = container::run(
                runtime,
                &self.paths,
                req.app_name,
                &format!("compile{}", k + 1),
                command,
                env.clone(),
                &dirs,
                self.compile_timeout,
                |l| out.buildpack_line(&l.line),
            )
            .await?;
            if exit.timed_out {
                bail!(
                    "the {} buildpack's compile timed out after {}",
                    f.bp.url,
                    human_duration(self.compile_timeout)
                );
            }
            if !exit.success() {
                bail!(
                    "the {} buildpack's compile failed (exit {}{}): see the output above",
                    f.bp.url,
                    exit.status,
                    if exit.oom_killed {
                        ", out of memory"
                    } else {
                        ""
                    }
                );
            }
            exports.push_str(&format!(
                "if [ -f {0}/export ]; then . {0}/export; fi; ",
                sh_quote(&f.dir)
            ));
        }

        mark("compiled");
        // bin/release of the last buildpack gives the default process types.
        let (last, _) = detected.last().expect("at least one buildpack");
        let last = &fetched[*last];
        let info = if last.host_dir.join("bin/release").is_file() {
            let mut yaml = String::new();
            let exit = container::run(
                runtime,
                &self.paths,
                req.app_name,
                "release",
                format!("exec {}/bin/release /app", sh_quote(&last.dir)),
                env.clone(),
                &dirs,
                STEP_TIMEOUT,
                |l| {
                    if l.stream == "out" {
                        yaml.push_str(&l.line);
                        yaml.push('\n');
                    } else {
                        out.buildpack_line(&l.line);
                    }
                },
            )
            .await?;
            if !exit.success() {
                bail!(
                    "the {} buildpack's bin/release failed (exit {})",
                    last.bp.url,
                    exit.status
                );
            }
            release::parse(&yaml).with_context(|| format!("buildpack {}", last.bp.url))?
        } else {
            release::ReleaseInfo::default()
        };

        mark("released");
        let app_dir = dirs.app.clone();
        let (removed, unsupported) =
            tokio::task::spawn_blocking(move || slug::apply_slugignore(&app_dir)).await??;
        if removed > 0 {
            out.heading(&format!(
                "Removed {removed} path{} matched by .slugignore",
                if removed == 1 { "" } else { "s" }
            ));
        }
        for l in unsupported {
            out.warn(&format!(
                ".slugignore: {l:?} is not supported (no negation), ignored"
            ));
        }

        // One byte past the limit: a Procfile too large is refused whole, never read in part.
        let limit = crate::procfile::MAX_SIZE as u64 + 1;
        let procfile = match source::read_nofollow_bytes(&dirs.app, "Procfile", limit)? {
            Some(b) => {
                let p = Procfile::parse_bytes(&b)?;
                for w in &p.warnings {
                    out.warn(w);
                }
                Some(p)
            }
            None => None,
        };
        let (process_types, _) =
            release::process_types(procfile.as_ref(), &info.default_process_types);
        out.heading("Discovering process types");
        let names = |v: &mut dyn Iterator<Item = &String>| {
            let v: Vec<&str> = v.map(String::as_str).collect();
            if v.is_empty() {
                "(none)".to_string()
            } else {
                v.join(", ")
            }
        };
        out.detail(&format!(
            "Procfile declares types     -> {}",
            names(
                &mut procfile
                    .iter()
                    .flat_map(|p| p.types.iter().map(|t| &t.name))
            )
        ));
        if !info.default_process_types.is_empty() {
            out.detail(&format!(
                "Default types for buildpack -> {}",
                names(&mut info.default_process_types.iter().map(|(n, _)| n))
            ));
        }
        if !info.addons.is_empty() {
            out.detail(&format!(
                "Add-ons the buildpack asks for -> {}",
                info.addons.join(", ")
            ));
        }

        let (app_dir, slugs) = (dirs.app.clone(), self.paths.slugs());
        let packed = tokio::task::spawn_blocking(move || slug::pack(&app_dir, &slugs)).await??;
        mark("packed");
        let size = packed.size;
        if size > slug::HARD_LIMIT {
            packed.discard();
            bail!(
                "the compiled slug is {} and the limit is {}: remove what the app does not need at run time (.slugignore)",
                human_size(size),
                human_size(slug::HARD_LIMIT)
            );
        }
        out.heading(&format!("Compressing... done, {}", human_size(size)));
        if size > slug::SOFT_LIMIT {
            out.warn(&format!(
                "Warning: the slug ({}) exceeds the soft limit of {}, which may slow deploys",
                human_size(size),
                human_size(slug::SOFT_LIMIT)
            ));
        }
        let checksum = packed.checksum.clone();
        // The built tree itself becomes the unpacked slug (builds/ and slugs/ share DYNO_HOME).
        let (slugs, tree) = (self.paths.slugs(), dirs.app.clone());
        tokio::task::spawn_blocking(move || packed.store_tree(&slugs, &tree)).await??;

        mark("unpacked");
        let ran: Vec<&Fetched> = detected.iter().map(|(i, _)| &fetched[*i]).collect();
        Ok(Built {
            slug: SlugRow {
                id: new_id(),
                checksum: format!("SHA256:{checksum}"),
                size,
                process_types,
                source_version: version.commit.clone(),
                buildpack: detected.last().map(|(_, n)| n.clone()),
            },
            version,
            buildpacks: ran.iter().map(|f| f.ran.clone()).collect(),
            addons: info.addons,
            app_json,
        })
    }

    /// Runs `bin/detect` in one build container: over the shipped buildpacks, the first that
    /// accepts wins; over an explicit list, every one must accept (Heroku's "App not compatible
    /// with buildpack"). Returns (index in `fetched`, detected name) of the buildpacks to run.
    async fn detect(
        &self,
        runtime: &Runtime,
        req: &BuildRequest<'_>,
        dirs: &Dirs,
        env: &[(String, String)],
        fetched: &[Fetched],
        explicit: bool,
    ) -> Result<Vec<(usize, String)>> {
        let nonce = format!("::dyno-detect-{}::", &new_id()[..8]);
        let mut script = String::new();
        for (i, f) in fetched.iter().enumerate() {
            let d = sh_quote(&f.dir);
            script.push_str(&format!(
                "if [ -e {d}/bin/detect ]; then out=$({d}/bin/detect /app 2>/dev/null); rc=$?; else out=; rc=0; fi; \
                 printf '%s\\n' \"{nonce} {i} $rc\" \"$out\"; "
            ));
            if !explicit {
                script.push_str("if [ $rc = 0 ]; then exit 0; fi; ");
            }
        }
        script.push_str("exit 0");
        let mut results: Vec<(usize, i32, String)> = vec![];
        let exit = container::run(
            runtime,
            &self.paths,
            req.app_name,
            "detect",
            script,
            env.to_vec(),
            dirs,
            STEP_TIMEOUT,
            |l| {
                if l.stream != "out" {
                    return;
                }
                if let Some(rest) = l.line.strip_prefix(&nonce) {
                    let mut it = rest.split_whitespace();
                    let i = it.next().and_then(|s| s.parse().ok());
                    let rc = it.next().and_then(|s| s.parse().ok());
                    if let (Some(i), Some(rc)) = (i, rc) {
                        results.push((i, rc, String::new()));
                    }
                } else if let Some(last) = results.last_mut() {
                    if !l.line.trim().is_empty() && last.2.is_empty() {
                        last.2 = l.line.trim().to_string();
                    }
                }
            },
        )
        .await?;
        if !exit.success() {
            bail!("detecting the app's language failed (exit {})", exit.status);
        }
        let name_of = |i: usize, shown: &str| {
            if shown.is_empty() {
                fetched[i].bp.url.clone()
            } else {
                shown.to_string()
            }
        };
        if explicit {
            let mut chosen = vec![];
            for (i, f) in fetched.iter().enumerate() {
                match results.iter().find(|r| r.0 == i) {
                    Some((_, 0, shown)) => chosen.push((i, name_of(i, shown))),
                    _ => bail!(
                        "App not compatible with buildpack: {} (its bin/detect refused this app)",
                        f.bp.url
                    ),
                }
            }
            Ok(chosen)
        } else {
            results
                .iter()
                .find(|r| r.1 == 0)
                .map(|(i, _, shown)| vec![(*i, name_of(*i, shown))])
                .ok_or_else(buildpacks::nothing_detected)
        }
    }
}

/// The build containers' environment (config vars are only in ENV_DIR, as on Heroku).
fn build_env(version: &SourceVersion) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), stack::PATH.into()),
        ("HOME".into(), "/app".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("STACK".into(), STACK.into()),
        (
            "SOURCE_VERSION".into(),
            version.commit.clone().unwrap_or_default(),
        ),
    ]
}

/// ENV_DIR: one file per config var, readable by the build user only.
fn write_env_dir(dir: &Path, config: &[(String, String)]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (k, v) in config {
        if k.is_empty() || k.contains('/') || k == "." || k == ".." || k.contains('\0') {
            continue;
        }
        let p = dir.join(k);
        std::fs::write(&p, v)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400))?;
        std::os::unix::fs::lchown(&p, Some(DYNO_UID), Some(DYNO_GID))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::lchown(dir, Some(DYNO_UID), Some(DYNO_GID))?;
    Ok(())
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} s")
    }
}
