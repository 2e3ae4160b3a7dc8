//! Slugs: `GET /apps/{app}/slugs/{slug}` (Heroku's slug resource) and its blob, the compressed
//! slug itself, which `dyno export` reads to build an image without touching `DYNO_HOME`.

use super::endpoint;
use serde::{Deserialize, Serialize};

/// Where a slug's tarball is read from (Heroku's `blob`: a method and a URL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlugBlob {
    pub method: String,
    pub url: String,
}

/// Heroku's slug resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slug {
    pub id: String,
    /// `sha256:<hex>` of the compressed tarball.
    pub checksum: String,
    /// The compressed tarball's size in bytes.
    pub size: u64,
    /// Process type → command, in Procfile order (a list so the order survives JSON).
    pub process_types: Vec<(String, String)>,
    pub commit: Option<String>,
    pub buildpack_provided_description: Option<String>,
    pub stack: super::IdName,
    pub blob: SlugBlob,
}

endpoint! {
    /// `GET /apps/{app}/slugs/{slug}`: a slug of one of the app's releases.
    Info { app, slug } => GET ["apps", app, "slugs", slug] -> Slug;
    /// `GET /apps/{app}/slugs/{slug}/blob`: the compressed tarball (`app/…`), as bytes (a
    /// slug's `blob.url`, read with `Client::download`).
    Blob { app, slug } => GET ["apps", app, "slugs", slug, "blob"] -> super::Text;
}
