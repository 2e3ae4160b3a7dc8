//! Builds: `GET/POST /apps/{app}/builds`, one build, and its output stream.

use super::{endpoint, BuildpackRef, IdName, ReleaseRef, SlugRef, Text};
use serde::{Deserialize, Serialize};

/// `POST /apps/{app}/builds`. Heroku takes a source URL; dyno, running on the same machine,
/// takes the directory to build from, or (`git push`) a commit of the app's repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildCreate {
    #[serde(default)]
    pub source_dir: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
}

/// A pushed commit of the app's bare repository, built from the pre-receive hook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GitSource {
    pub commit: String,
    /// `GIT_QUARANTINE_PATH`: where git keeps the push's objects until the hook accepts it.
    #[serde(default)]
    pub quarantine: Option<String>,
    /// Pushed over the HTTPS API (`git_http` tells the hook): the commit's `.buildpacks` may
    /// not name directories or `file://` buildpacks of the daemon's host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub over_https: bool,
}

/// Heroku's build resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Build {
    pub id: String,
    pub app: IdName,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub buildpacks: Vec<BuildpackRef>,
    pub output_stream_url: String,
    pub release: Option<ReleaseRef>,
    pub slug: Option<SlugRef>,
    pub source_blob: SourceBlob,
    pub created_at: String,
    pub updated_at: String,
    /// dyno extension: why a failed build failed.
    pub error: Option<String>,
    /// dyno extension: process types of the Procfile (and buildpack defaults), in order.
    pub process_types: Vec<String>,
    /// dyno extension: the compressed slug's size in bytes.
    #[serde(default)]
    pub slug_size: Option<u64>,
    /// dyno extension: the source had uncommitted changes.
    #[serde(default)]
    pub dirty: bool,
    /// dyno extension: what `bin/detect` called the app (`Python`).
    #[serde(default)]
    pub buildpack_description: Option<String>,
    /// dyno extension: add-on plans `bin/release` asked for (not provisioned).
    #[serde(default)]
    pub addons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceBlob {
    pub url: String,
    pub version: Option<String>,
}

endpoint! {
    /// `GET /apps/{app}/builds`, oldest first.
    List { app } => GET ["apps", app, "builds"] -> Vec<Build>;
    /// `POST /apps/{app}/builds`: starts a build; its output follows at `output_stream_url`.
    Create { app } + body: BuildCreate => POST ["apps", app, "builds"] -> Build, CREATED
        where unix_only = host_paths_of_build;
    /// `GET /apps/{app}/builds/{build}`.
    Info { app, build } => GET ["apps", app, "builds", build] -> Build;
    /// `GET /apps/{app}/builds/{build}/output`: live while the build runs, then stored (a
    /// build's `output_stream_url`).
    Output { app, build } => GET ["apps", app, "builds", build, "output"] -> Text;
}

/// A build from a host directory, or from a push's quarantine directory, names host paths.
fn host_paths_of_build(e: &Create) -> Option<&'static str> {
    if !e.body.source_dir.is_empty() {
        return Some("a build from a host directory (source_dir)");
    }
    match &e.body.git {
        Some(GitSource {
            quarantine: Some(_),
            ..
        }) => Some("a build from a push's quarantine directory"),
        _ => None,
    }
}
