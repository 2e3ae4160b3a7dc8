//! Formation: `GET/PATCH /apps/{app}/formation`, and the scale bounds.

use super::{endpoint, IdName};
use serde::{Deserialize, Serialize};

/// Heroku's formation resource: how many dynos of one process type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Formation {
    pub id: String,
    pub app: IdName,
    #[serde(rename = "type")]
    pub process_type: String,
    pub command: String,
    pub quantity: u32,
    pub size: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationBatchUpdate {
    pub updates: Vec<FormationUpdate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormationUpdate {
    #[serde(rename = "type")]
    pub process_type: String,
    pub quantity: Option<i64>,
    /// The Heroku CLI sends `size`, the schema says `dyno_size`: both are accepted, neither used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<String>,
}

endpoint! {
    /// `GET /apps/{app}/formation`.
    List { app } => GET ["apps", app, "formation"] -> Vec<Formation>;
    /// `PATCH /apps/{app}/formation`: scale process types; answers the whole formation.
    Update { app } + body: FormationBatchUpdate => PATCH ["apps", app, "formation"] -> Vec<Formation>;
}

/// The most dynos of one process type.
pub const MAX_QUANTITY: i64 = 100;

/// A quantity for `process_type` within the bounds (0 to [`MAX_QUANTITY`]).
pub fn check_quantity(process_type: &str, quantity: i64) -> Result<u32, String> {
    if quantity < 0 {
        return Err(format!(
            "quantity for {process_type} must be 0 or more, not {quantity}"
        ));
    }
    if quantity > MAX_QUANTITY {
        return Err(format!(
            "quantity for {process_type} must be at most {MAX_QUANTITY}"
        ));
    }
    Ok(quantity as u32)
}
