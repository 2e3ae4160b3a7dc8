//! Add-ons: `GET/POST /apps/{app}/addons`, `GET /addons/{addon}`, `DELETE
//! /apps/{app}/addons/{addon}`, `GET /apps/{app}/addon-attachments`, `POST /addon-attachments`,
//! `DELETE /apps/{app}/addon-attachments/{attachment}`, and the services dyno provides.
//!
//! Heroku's shapes (shared/notes/heroku-behaviour.md). `…/addons/{addon}/connection` is dyno's
//! own: what `pg:psql` and `redis:cli` need to reach the server from the host.

use super::{endpoint, IdName};
use serde::{Deserialize, Serialize};

#[derive(Debug)]
/// A service dyno provides: its name, its plans (the first is the default) and what its
/// add-ons' names start with.
pub struct Service {
    pub name: &'static str,
    pub plans: &'static [&'static str],
    /// `postgresql` → `postgresql-curved-12345`.
    pub prefix: &'static str,
    /// The attachment name of the first add-on of this service in an app (`DATABASE`).
    pub first_name: &'static str,
    /// Later ones: `HEROKU_POSTGRESQL` → `HEROKU_POSTGRESQL_COPPER`.
    pub color_prefix: &'static str,
    /// Whether it runs a server and sets `<NAME>_URL` in the apps it is attached to (the
    /// scheduler does neither: it runs the app's own commands).
    pub server: bool,
}

pub const SERVICES: &[Service] = &[
    Service {
        name: "heroku-postgresql",
        plans: &[
            "essential-0",
            "essential-1",
            "essential-2",
            "mini",
            "basic",
            "standard-0",
            "premium-0",
        ],
        prefix: "postgresql",
        first_name: "DATABASE",
        color_prefix: "HEROKU_POSTGRESQL",
        server: true,
    },
    Service {
        name: "heroku-redis",
        plans: &["mini", "premium-0", "premium-1", "private-0"],
        prefix: "redis",
        first_name: "REDIS",
        color_prefix: "HEROKU_REDIS",
        server: true,
    },
    Service {
        name: "scheduler",
        plans: &["standard"],
        prefix: "scheduler",
        first_name: "SCHEDULER",
        color_prefix: "SCHEDULER",
        server: false,
    },
];

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.to_string(),
        None => String::new(),
    }
}

/// `heroku-postgresql[:plan]` → the service and the full plan name. Unknown services list the
/// known ones; unknown plans list the service's plans.
pub fn parse_plan(spec: &str) -> Result<(&'static Service, String), String> {
    let (svc, plan) = match spec.split_once(':') {
        Some((s, p)) => (s, Some(p)),
        None => (spec, None),
    };
    let Some(service) = SERVICES.iter().find(|s| s.name == svc) else {
        let known: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        return Err(format!(
            "Couldn't find either the add-on service or the add-on plan of {spec:?}: dyno provides {}",
            and_list(&known)
        ));
    };
    let plan = plan.unwrap_or(service.plans[0]);
    if !service.plans.contains(&plan) {
        return Err(format!(
            "Couldn't find the plan {svc}:{plan}: its plans are {}",
            service.plans.join(", ")
        ));
    }
    Ok((service, format!("{svc}:{plan}")))
}

/// An attachment name (`--as`): as a config var prefix, upper case.
pub fn validate_attachment_name(name: &str) -> Result<String, String> {
    let up = name.to_ascii_uppercase();
    let ok = up.starts_with(|c: char| c.is_ascii_uppercase())
        && up.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok && !up.ends_with("_URL") {
        Ok(up)
    } else {
        Err(format!(
            "invalid attachment name {name:?}: use letters, digits and underscores, starting with a letter (the config var is NAME_URL)"
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Price {
    pub cents: u32,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub price: Price,
}

/// Heroku's add-on resource (with dyno's `attachments` expanded, as `addons` prints them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Addon {
    pub id: String,
    pub name: String,
    pub addon_service: IdName,
    pub plan: Plan,
    /// What the app pays: the Heroku CLI prints it as the price (always free here).
    #[serde(default)]
    pub billed_price: Option<Price>,
    /// The app that created it.
    pub app: IdName,
    /// `provisioning`, `provisioned`.
    pub state: String,
    /// The config vars it sets in the app that created it (`DATABASE_URL`).
    pub config_vars: Vec<String>,
    pub attachments: Vec<AddonAttachment>,
    pub web_url: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentAddon {
    pub id: String,
    pub name: String,
    pub app: IdName,
}

/// Heroku's add-on attachment: the add-on under a name in one app (config var `<name>_URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonAttachment {
    pub id: String,
    pub name: String,
    pub addon: AttachmentAddon,
    pub app: IdName,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachmentName {
    pub name: Option<String>,
}

/// `POST /apps/{app}/addons {plan, attachment: {name}}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddonCreate {
    /// `heroku-postgresql[:plan]`; the Heroku CLI sends it as `{"name": …}`.
    #[serde(deserialize_with = "plan_name")]
    pub plan: String,
    #[serde(default)]
    pub attachment: Option<AttachmentName>,
}

fn plan_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Plan {
        Name(String),
        Object { name: String },
    }
    Ok(match Plan::deserialize(d)? {
        Plan::Name(n) | Plan::Object { name: n } => n,
    })
}

/// `DELETE /apps/{app}/addons/{addon}`: `force` also destroys an add-on other apps have
/// attached (they are detached first, each in a release).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AddonDelete {
    #[serde(default)]
    pub force: bool,
}

/// `POST /addon-attachments {app, addon, name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttachmentCreate {
    pub app: String,
    pub addon: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// How the host reaches an add-on's server (`pg:psql`, `redis:cli`): its Unix socket and
/// credentials; `url` is what dynos use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonConnection {
    pub addon: String,
    pub service: String,
    pub url: String,
    /// The directory of Postgres' socket, or Redis' socket itself.
    pub socket: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

endpoint! {
    /// `GET /apps/{app}/addons`: the add-ons attached to the app.
    List { app } => GET ["apps", app, "addons"] -> Vec<Addon>;
    /// `POST /apps/{app}/addons`: provisions an add-on and attaches it (a release).
    Create { app } + body: AddonCreate => POST ["apps", app, "addons"] -> Addon, CREATED;
    /// `GET /addons/{addon}` (name or id).
    Info { addon } => GET ["addons", addon] -> Addon;
    /// `GET /apps/{app}/addons/{addon}`: an add-on by name, id, or its attachment's name in the
    /// app (`DATABASE`).
    InfoOf { app, addon } => GET ["apps", app, "addons", addon] -> Addon;
    /// `DELETE /apps/{app}/addons/{addon}`: detaches it everywhere (releases), then removes its
    /// database or server and its data.
    Destroy { app, addon } + body: AddonDelete => DELETE ["apps", app, "addons", addon] -> Addon;
    /// `GET /apps/{app}/addon-attachments`.
    Attachments { app } => GET ["apps", app, "addon-attachments"] -> Vec<AddonAttachment>;
    /// `GET /addons`: every add-on of every app (`heroku addons` outside an app).
    ListAll {} => GET ["addons"] -> Vec<Addon>;
    /// `GET /addon-attachments`: every attachment of every app (`heroku addons` asks).
    AllAttachments {} => GET ["addon-attachments"] -> Vec<AddonAttachment>;
    /// `POST /addon-attachments`: attaches an add-on to another app (a release of that app).
    Attach {} + body: AttachmentCreate => POST ["addon-attachments"] -> AddonAttachment, CREATED;
    /// `DELETE /apps/{app}/addon-attachments/{attachment}` (name or id): a release unsetting
    /// its config var.
    Detach { app, attachment } => DELETE ["apps", app, "addon-attachments", attachment] -> AddonAttachment;
    /// `GET /apps/{app}/addons/{addon}/connection`: dyno's own, for `pg:psql` and `redis:cli`.
    Connection { app, addon } => GET ["apps", app, "addons", addon, "connection"] -> AddonConnection;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_and_names() {
        let (s, p) = parse_plan("heroku-postgresql").unwrap();
        assert_eq!(
            (s.name, p.as_str()),
            ("heroku-postgresql", "heroku-postgresql:essential-0")
        );
        assert_eq!(
            parse_plan("heroku-redis:mini").unwrap().1,
            "heroku-redis:mini"
        );
        let e = parse_plan("heroku-mysql").unwrap_err();
        assert!(
            e.contains("heroku-postgresql, heroku-redis and scheduler"),
            "{e}"
        );
        assert_eq!(parse_plan("scheduler").unwrap().1, "scheduler:standard");
        assert!(parse_plan("heroku-redis:huge")
            .unwrap_err()
            .contains("mini"));
        assert_eq!(validate_attachment_name("analytics").unwrap(), "ANALYTICS");
        assert!(validate_attachment_name("1X").is_err());
        assert!(validate_attachment_name("DATABASE_URL").is_err());
    }
}
