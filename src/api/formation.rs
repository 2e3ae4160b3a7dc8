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
    pub quantity: Option<Quantity>,
    /// The Heroku CLI sends `size`, the schema says `dyno_size`: both are accepted, neither used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<String>,
}

/// A formation update's quantity: a number, or as the Heroku CLI sends it a string, `"2"`, or
/// relative to the current quantity, `"+1"`/`"-1"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub n: i64,
    pub relative: bool,
}

impl From<i64> for Quantity {
    fn from(n: i64) -> Quantity {
        Quantity { n, relative: false }
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.relative {
            write!(f, "{:+}", self.n)
        } else {
            write!(f, "{}", self.n)
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Quantity, String> {
        let t = s.trim();
        let relative = t.starts_with(['+', '-']);
        let digits = t.trim_start_matches(['+', '-']);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "invalid quantity {s:?}: use a whole number, or +N/-N to change it"
            ));
        }
        let n: i64 = t
            .parse()
            .map_err(|_| format!("invalid quantity {s:?}: too large"))?;
        Ok(Quantity { n, relative })
    }
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.relative {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_i64(self.n)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n.into()),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
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
