//! Add-ons (`crate::api::addons`): list, create, info, destroy, attach, detach, and how the
//! host reaches one (`pg:psql`, `redis:cli`). The work is `daemon::addons`'.

use super::{app_ref, find_app};
use crate::api::addons::{self as ep, Addon, AddonAttachment, AddonConnection, AttachmentAddon};
use crate::api::IdName;
use crate::daemon::api_server::{not_found_msg, Fail, Route};
use crate::daemon::{addons, Daemon};
use crate::store::{AddonRow, AppRow, AttachmentRow};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        Route::json(list),
        Route::json(create),
        Route::json(info),
        Route::json(info_of),
        Route::json(destroy),
        Route::json(attachments),
        Route::json(all_attachments),
        Route::json(list_all),
        Route::json(attach),
        Route::json(detach),
        Route::json(connection),
    ]
}

/// An add-on by name or id, or by its attachment's name in `app` (`DATABASE`).
pub(super) fn find_addon(d: &Daemon, app: Option<&AppRow>, key: &str) -> Result<AddonRow, Fail> {
    if let Some(a) = d.store.addon(key)? {
        return Ok(a);
    }
    if let Some(app) = app {
        let upper = key.to_ascii_uppercase();
        let name = upper.strip_suffix("_URL").unwrap_or(&upper);
        if let Some(t) = d
            .store
            .attachments(Some(&app.id), None)?
            .into_iter()
            .find(|t| t.name == name)
        {
            if let Some(a) = d.store.addon(&t.addon_id)? {
                return Ok(a);
            }
        }
    }
    Err(not_found_msg(format!("Couldn't find that add-on: {key}.")))
}

fn attachment_json(d: &Daemon, t: &AttachmentRow, addon: &AddonRow) -> AddonAttachment {
    let app_of = |id: &str| {
        d.store
            .app(id)
            .ok()
            .flatten()
            .map(|a| app_ref(&a))
            .unwrap_or(IdName {
                id: id.to_string(),
                name: String::new(),
            })
    };
    AddonAttachment {
        id: t.id.clone(),
        name: t.name.clone(),
        addon: AttachmentAddon {
            id: addon.id.clone(),
            name: addon.name.clone(),
            app: app_of(&addon.app_id),
        },
        app: app_of(&t.app_id),
        created_at: t.created_at.clone(),
        updated_at: t.created_at.clone(),
    }
}

fn addon_json(d: &Daemon, a: &AddonRow) -> Result<Addon, Fail> {
    let atts = d.store.attachments(None, Some(&a.id))?;
    let owner = d
        .store
        .app(&a.app_id)?
        .map(|x| app_ref(&x))
        .unwrap_or(IdName {
            id: a.app_id.clone(),
            name: String::new(),
        });
    Ok(Addon {
        id: a.id.clone(),
        name: a.name.clone(),
        addon_service: IdName {
            id: a.service.clone(),
            name: a.service.clone(),
        },
        plan: ep::Plan {
            id: a.plan.clone(),
            name: a.plan.clone(),
            price: ep::Price {
                cents: 0,
                unit: "month".into(),
            },
        },
        billed_price: Some(ep::Price {
            cents: 0,
            unit: "month".into(),
        }),
        app: owner,
        state: a.state.clone(),
        config_vars: atts
            .iter()
            .filter(|t| t.app_id == a.app_id && addons::has_server(a))
            .map(|t| format!("{}_URL", t.name))
            .collect(),
        attachments: atts.iter().map(|t| attachment_json(d, t, a)).collect(),
        web_url: None,
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
    })
}

async fn list(d: Arc<Daemon>, e: ep::List) -> Result<Vec<Addon>, Fail> {
    let app = find_app(&d, &e.app)?;
    let mut ids: Vec<String> = vec![];
    for t in d.store.attachments(Some(&app.id), None)? {
        if !ids.contains(&t.addon_id) {
            ids.push(t.addon_id);
        }
    }
    let mut out = vec![];
    for a in d.store.addons()? {
        if a.app_id == app.id && a.state == "provisioned" || ids.contains(&a.id) {
            out.push(addon_json(&d, &a)?);
        }
    }
    Ok(out)
}

async fn create(d: Arc<Daemon>, e: ep::Create) -> Result<Addon, Fail> {
    let app = find_app(&d, &e.app)?;
    let as_name = e.body.attachment.and_then(|a| a.name);
    let (row, _) = addons::create(&d, &app, &e.body.plan, as_name).await?;
    addon_json(&d, &row)
}

async fn info(d: Arc<Daemon>, e: ep::Info) -> Result<Addon, Fail> {
    addon_json(&d, &find_addon(&d, None, &e.addon)?)
}

async fn info_of(d: Arc<Daemon>, e: ep::InfoOf) -> Result<Addon, Fail> {
    let app = find_app(&d, &e.app)?;
    addon_json(&d, &find_addon(&d, Some(&app), &e.addon)?)
}

async fn destroy(d: Arc<Daemon>, e: ep::Destroy) -> Result<Addon, Fail> {
    let app = find_app(&d, &e.app)?;
    let a = find_addon(&d, Some(&app), &e.addon)?;
    if a.app_id != app.id {
        let owner = d.store.app(&a.app_id)?.map(|o| o.name).unwrap_or_default();
        return Err(crate::daemon::api_server::invalid(format!(
            "{} belongs to {owner}: destroy it there, or detach it from {} (dyno addons:detach)",
            a.name, app.name
        )));
    }
    let json = addon_json(&d, &a)?;
    addons::destroy(&d, &a, e.body.force, None).await?;
    Ok(json)
}

async fn attachments(d: Arc<Daemon>, e: ep::Attachments) -> Result<Vec<AddonAttachment>, Fail> {
    let app = find_app(&d, &e.app)?;
    let mut out = vec![];
    for t in d.store.attachments(Some(&app.id), None)? {
        if let Some(a) = d.store.addon(&t.addon_id)? {
            out.push(attachment_json(&d, &t, &a));
        }
    }
    Ok(out)
}

async fn list_all(d: Arc<Daemon>, _: ep::ListAll) -> Result<Vec<Addon>, Fail> {
    let mut out = vec![];
    for a in d.store.addons()? {
        if a.state == "provisioned" {
            out.push(addon_json(&d, &a)?);
        }
    }
    Ok(out)
}

async fn all_attachments(
    d: Arc<Daemon>,
    _: ep::AllAttachments,
) -> Result<Vec<AddonAttachment>, Fail> {
    let mut out = vec![];
    for app in d.store.apps()? {
        out.extend(attachments(d.clone(), ep::Attachments { app: app.id }).await?);
    }
    Ok(out)
}

async fn attach(d: Arc<Daemon>, e: ep::Attach) -> Result<AddonAttachment, Fail> {
    let app = find_app(&d, &e.body.app)?;
    let a = find_addon(&d, None, &e.body.addon)?;
    let t = addons::attach(&d, &app, &a, e.body.name).await?;
    Ok(attachment_json(&d, &t, &a))
}

async fn detach(d: Arc<Daemon>, e: ep::Detach) -> Result<AddonAttachment, Fail> {
    let app = find_app(&d, &e.app)?;
    let (t, a) = addons::detach(&d, &app, &e.attachment).await?;
    Ok(attachment_json(&d, &t, &a))
}

async fn connection(d: Arc<Daemon>, e: ep::Connection) -> Result<AddonConnection, Fail> {
    let app = find_app(&d, &e.app)?;
    let a = find_addon(&d, Some(&app), &e.addon)?;
    let (user, database) = if a.service == "heroku-postgresql" {
        (
            crate::addons::postgres::role_of(&a.database),
            a.database.clone(),
        )
    } else {
        (String::new(), String::new())
    };
    Ok(AddonConnection {
        addon: a.name.clone(),
        service: a.service.clone(),
        url: addons::url(&d, &a),
        socket: addons::socket(&d, &a),
        port: a.port,
        user,
        database,
        password: a.password.clone(),
    })
}
