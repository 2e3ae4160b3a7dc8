//! Formation (`crate::api::formation`): list and scale.

use super::{app_ref, find_app};
use crate::api::{self, formation};
use crate::daemon::api_server::{invalid, Fail, Route};
use crate::daemon::{manager, Daemon};
use crate::store::AppRow;
use hyper::StatusCode;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![Route::json(list), Route::json(update)]
}

async fn list(d: Arc<Daemon>, e: formation::List) -> Result<Vec<api::Formation>, Fail> {
    let a = find_app(&d, &e.app)?;
    formation_json(&d, &a)
}

async fn update(d: Arc<Daemon>, e: formation::Update) -> Result<Vec<api::Formation>, Fail> {
    let a = find_app(&d, &e.app)?;
    scale(&d, &a, e.body)?;
    formation_json(&d, &a)
}

fn scale(d: &Arc<Daemon>, a: &AppRow, b: api::FormationBatchUpdate) -> Result<(), Fail> {
    let formation = d.store.formation(&a.id)?;
    let mut updates = vec![];
    for u in b.updates {
        if !formation.iter().any(|f| f.process_type == u.process_type) {
            let known: Vec<_> = formation.iter().map(|f| f.process_type.as_str()).collect();
            return Err(Fail(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                    "Couldn't find that process type ({}). This app has: {}",
                    u.process_type,
                    if known.is_empty() {
                        "no process types yet (deploy first)".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if let Some(q) = u.quantity {
            let current = formation
                .iter()
                .find(|f| f.process_type == u.process_type)
                .map_or(0, |f| f.quantity as i64);
            let q = if q.relative { current + q.n } else { q.n };
            let q = formation::check_quantity(&u.process_type, q).map_err(invalid)?;
            updates.push((u.process_type, q));
        }
    }
    d.store.scale(&a.id, &updates)?;
    // The router knows the new web quantity when this answers (holds requests, or H14), not
    // only once reconcile has run.
    manager::update_routes(d, &a.id);
    manager::reset_backoff(d, &a.id);
    manager::kick(d, &a.id);
    Ok(())
}

fn formation_json(d: &Daemon, a: &AppRow) -> Result<Vec<api::Formation>, Fail> {
    Ok(d.store
        .formation(&a.id)?
        .into_iter()
        .map(|f| api::Formation {
            id: f.id,
            app: app_ref(a),
            process_type: f.process_type,
            command: f.command,
            quantity: f.quantity,
            size: "basic".into(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        })
        .collect())
}
