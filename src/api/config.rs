//! Config vars: `GET/PATCH /apps/{app}/config-vars`, and the rule for their names.

use super::endpoint;

/// `GET /apps/{app}/config-vars`: the whole map.
pub type ConfigVars = std::collections::BTreeMap<String, String>;
/// `PATCH /apps/{app}/config-vars`: `null` deletes a key.
pub type ConfigVarsUpdate = std::collections::BTreeMap<String, Option<String>>;

endpoint! {
    /// `GET /apps/{app}/config-vars`.
    Get { app } => GET ["apps", app, "config-vars"] -> ConfigVars;
    /// `PATCH /apps/{app}/config-vars`: a new release with the changed config; answers the
    /// whole new map.
    Update { app } + body: ConfigVarsUpdate => PATCH ["apps", app, "config-vars"] -> ConfigVars;
}

/// Heroku's rule for config var keys: letters, digits and underscores, not starting with a digit.
pub fn validate_key(key: &str) -> std::result::Result<(), String> {
    let ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid config var name {key:?}: use letters, digits and underscores, not starting with a digit"
        ))
    }
}
