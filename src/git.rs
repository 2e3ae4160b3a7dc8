//! `git push` deploys: every app has a bare repository `DYNO_HOME/repos/<app>.git` whose
//! `pre-receive` hook runs `dyno git:hook pre-receive`. That asks the daemon to build the commit
//! pushed to `main` (or `master`) from the app's repository and streams the build's output back
//! to the pusher (git shows it as `remote:` lines); a failed build makes the hook exit non-zero,
//! which rejects the push. Pushes to other branches are stored, not deployed.

use crate::paths::Paths;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The branches a push deploys, in preference order when one push updates several.
pub const DEPLOY_BRANCHES: &[&str] = &["refs/heads/main", "refs/heads/master"];

/// The dyno binary hooks call: this process's own (an upgrade that replaced the file leaves
/// ` (deleted)` on the link; the new file sits at the same path).
pub fn dyno_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("dyno"));
    let s = exe.to_string_lossy();
    match s.strip_suffix(" (deleted)") {
        Some(p) => PathBuf::from(p),
        None => exe,
    }
}

pub fn repo_path(paths: &Paths, app: &str) -> PathBuf {
    paths.repos().join(format!("{app}.git"))
}

/// The `pre-receive` hook: the dyno binary, told which `DYNO_HOME` it serves.
fn hook_script(paths: &Paths, exe: &Path) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    format!(
        "#!/bin/sh\n\
         # Installed by dyno: a push to main or master builds and releases that commit.\n\
         DYNO_HOME={} exec {} git:hook pre-receive\n",
        q(&paths.home.to_string_lossy()),
        q(&exe.to_string_lossy())
    )
}

/// Creates the app's bare repository if needed (default branch `main`) and (re)writes its hook,
/// so the hook always calls this daemon's binary. Returns the repository's path.
pub fn ensure_repo(paths: &Paths, app: &str, exe: &Path) -> Result<PathBuf> {
    let path = repo_path(paths, app);
    if !path.join("HEAD").exists() {
        std::fs::create_dir_all(paths.repos())?;
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).initial_head("main");
        git2::Repository::init_opts(&path, &opts)
            .with_context(|| format!("creating the repository {}", path.display()))?;
    }
    // What `git push` writes stays private whatever the pusher's umask (0600 files, 0700 dirs).
    let repo = git2::Repository::open_bare(&path)?;
    let mut config = repo.config()?;
    if config.get_string("core.sharedRepository").ok().as_deref() != Some("0600") {
        config.set_str("core.sharedRepository", "0600")?;
    }
    let hooks = path.join("hooks");
    std::fs::create_dir_all(&hooks)?;
    let hook = hooks.join("pre-receive");
    let text = hook_script(paths, exe);
    if std::fs::read_to_string(&hook).ok().as_deref() != Some(text.as_str()) {
        let tmp = hooks.join(".pre-receive.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700))?;
        std::fs::rename(&tmp, &hook)?;
    }
    Ok(path)
}

/// Follows an app rename (the remote of a clone must then be updated: `dyno git:remote`).
pub fn rename_repo(paths: &Paths, old: &str, new: &str) -> Result<()> {
    let from = repo_path(paths, old);
    if from.exists() {
        std::fs::rename(&from, repo_path(paths, new))?;
    }
    Ok(())
}

pub fn remove_repo(paths: &Paths, app: &str) {
    let _ = std::fs::remove_dir_all(repo_path(paths, app));
}

/// One line of a pre-receive hook's input: `<old> <new> <ref>`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    pub fn is_delete(&self) -> bool {
        self.new.chars().all(|c| c == '0')
    }
}

pub fn parse_updates(input: &str) -> Vec<RefUpdate> {
    input
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(RefUpdate {
                old: it.next()?.to_string(),
                new: it.next()?.to_string(),
                name: it.next()?.to_string(),
            })
        })
        .collect()
}

/// The update a push deploys: `main` first, else `master`; deletions deploy nothing.
pub fn to_deploy(updates: &[RefUpdate]) -> Option<&RefUpdate> {
    DEPLOY_BRANCHES
        .iter()
        .find_map(|b| updates.iter().find(|u| u.name == *b && !u.is_delete()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_or_master_deploys_other_branches_are_stored() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let input = format!("{z} {a} refs/heads/feature\n{z} {b} refs/heads/master\n");
        let u = parse_updates(&input);
        assert_eq!(u.len(), 2);
        assert_eq!(to_deploy(&u).unwrap().new, b);
        let input = format!("{z} {a} refs/heads/master\n{z} {b} refs/heads/main\n");
        assert_eq!(to_deploy(&parse_updates(&input)).unwrap().new, b);
        let input = format!("{a} {z} refs/heads/main\n{z} {a} refs/tags/v1\n");
        assert_eq!(to_deploy(&parse_updates(&input)), None);
    }

    #[test]
    fn repos_are_bare_with_a_hook_calling_dyno() {
        let d = tempfile::tempdir().unwrap();
        let paths = Paths::new(d.path()).unwrap();
        let exe = Path::new("/opt/dyno it's/bin/dyno");
        let p = ensure_repo(&paths, "my-app", exe).unwrap();
        assert!(p.ends_with("repos/my-app.git"));
        let repo = git2::Repository::open_bare(&p).unwrap();
        assert_eq!(
            repo.find_reference("HEAD").unwrap().symbolic_target(),
            Some("refs/heads/main")
        );
        let hook = std::fs::read_to_string(p.join("hooks/pre-receive")).unwrap();
        assert!(
            hook.contains(r"'/opt/dyno it'\''s/bin/dyno' git:hook pre-receive"),
            "{hook}"
        );
        let mode = std::fs::metadata(p.join("hooks/pre-receive"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "executable, by root alone");
        let config = git2::Repository::open_bare(&p).unwrap().config().unwrap();
        assert_eq!(config.get_string("core.sharedRepository").unwrap(), "0600");
        // Idempotent; rename and remove follow the app.
        ensure_repo(&paths, "my-app", exe).unwrap();
        rename_repo(&paths, "my-app", "other").unwrap();
        assert!(repo_path(&paths, "other").join("HEAD").exists());
        remove_repo(&paths, "other");
        assert!(!repo_path(&paths, "other").exists());
    }
}
