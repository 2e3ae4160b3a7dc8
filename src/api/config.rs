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
    Update { app } + body: ConfigVarsUpdate => PATCH ["apps", app, "config-vars"] -> ConfigVars
        where unix_only = host_buildpack_url;
}

/// `BUILDPACK_URL` names the app's buildpack: a directory or `file://` one is a host path.
fn host_buildpack_url(e: &Update) -> Option<&'static str> {
    e.body
        .get("BUILDPACK_URL")
        .and_then(|v| v.as_deref())
        .is_some_and(super::buildpacks::is_host_path)
        .then_some("a directory or file:// buildpack (BUILDPACK_URL)")
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

/// Heroku's limit on an app's config vars: 32 kB for all keys and values together.
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

/// The size Heroku's limit counts: every key's and every value's bytes.
pub fn total_bytes<'a>(vars: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    vars.into_iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Heroku's 32 kB rule for an app's whole config (checked by the daemon on the config a change
/// would make, before anything is recorded; the CLI checks its own arguments too).
pub fn check_total<'a>(
    vars: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> std::result::Result<(), String> {
    let n = total_bytes(vars);
    if n > MAX_TOTAL_BYTES {
        Err(format!(
            "config vars too large: keys and values would take {n} bytes, over the limit of 32 kB \
             ({MAX_TOTAL_BYTES} bytes) for an app's config vars; nothing was changed"
        ))
    } else {
        Ok(())
    }
}
