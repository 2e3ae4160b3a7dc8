//! Custom domains: `GET/POST /apps/{app}/domains`, `DELETE /apps/{app}/domains/{hostname}`.

use super::{endpoint, IdName};
use serde::{Deserialize, Serialize};

/// Heroku's domain resource (`GET/POST/DELETE /apps/{app}/domains`). `kind` is `heroku` for
/// the app's own `<app>.localhost`, `custom` for the user's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub app: IdName,
    pub hostname: String,
    pub kind: String,
    /// Where the user points a CNAME (the app's own host name).
    pub cname: Option<String>,
    pub status: String,
    pub acm_status: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DomainCreate {
    pub hostname: String,
}

/// Heroku's SNI endpoint (a custom certificate for custom domains): dyno has none, the local
/// CA signs every name the router serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SniEndpoint {
    pub id: String,
    pub name: String,
}

endpoint! {
    /// `GET /apps/{app}/sni-endpoints`: always empty (`heroku domains:add` asks).
    SniEndpoints { app } => GET ["apps", app, "sni-endpoints"] -> Vec<SniEndpoint>;
    /// `GET /apps/{app}/domains`: the app's own host name, then the custom ones.
    List { app } => GET ["apps", app, "domains"] -> Vec<Domain>;
    /// `POST /apps/{app}/domains {hostname}`.
    Create { app } + body: DomainCreate => POST ["apps", app, "domains"] -> Domain, CREATED;
    /// `DELETE /apps/{app}/domains/{domain}` (host name or id).
    Delete { app, domain } => DELETE ["apps", app, "domains", domain] -> Domain;
}
