//! Config vars (`crate::api::config`): read, and change (a new release).

use super::find_app;
use crate::api::{self, config};
use crate::daemon::api_server::{invalid, Fail, Route};
use crate::daemon::{release, Daemon};
use crate::store::AppRow;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(get), Route::json(update)]
}

async fn get(d: Arc<Daemon>, e: config::Get) -> Result<api::ConfigVars, Fail> {
    let a = find_app(&d, &e.app)?;
    Ok(d.store.config_vars(&a.id)?.into_iter().collect())
}

async fn update(d: Arc<Daemon>, e: config::Update) -> Result<api::ConfigVars, Fail> {
    let a = find_app(&d, &e.app)?;
    update_config(&d, &a, e.body)
}

/// `PATCH /apps/{app}/config-vars`: validates every key first and the size of the config the
/// change makes (Heroku's 32 kB, `config::check_total`): nothing changes on a bad one. Then records a release with the new config, which restarts the dynos (after the release
/// phase, in the background). Answers the whole new map.
fn update_config(
    d: &Arc<Daemon>,
    a: &AppRow,
    changes: api::ConfigVarsUpdate,
) -> Result<api::ConfigVars, Fail> {
    if changes.is_empty() {
        return Err(invalid("no config vars to set or unset"));
    }
    for k in changes.keys() {
        config::validate_key(k).map_err(invalid)?;
    }
    let mut config = api::ConfigVars::new();
    let r = release::record_with(d, a, || -> Result<_, Fail> {
        config = d.store.config_vars(&a.id)?.into_iter().collect();
        let (mut set, mut unset) = (vec![], vec![]);
        for (k, v) in changes {
            match v {
                Some(v) => {
                    config.insert(k.clone(), v);
                    set.push(k);
                }
                None => {
                    config.remove(&k);
                    unset.push(k);
                }
            }
        }
        config::check_total(&config).map_err(invalid)?;
        let mut parts = vec![];
        if !set.is_empty() {
            parts.push(format!("Set {} config vars", set.join(", ")));
        }
        if !unset.is_empty() {
            parts.push(format!("Unset {} config vars", unset.join(", ")));
        }
        Ok(release::NewRelease {
            slug_id: d.store.current_release(&a.id)?.and_then(|r| r.slug_id),
            config: config.clone().into_iter().collect(),
            description: parts.join("; "),
            set_config: true,
            addon_op: None,
        })
    })?;
    super::releases::spawn_activate(d, a, r);
    Ok(config)
}
