//! `kind: basic`: HTTP basic authentication; the password is the source's secret.

use serde::Deserialize;

use super::verify::Scheme;
use crate::config::Errors;

#[derive(Debug, Clone, Deserialize)]
pub struct BasicConfig {
    /// The user name (the password is `secret`).
    #[serde(default)]
    pub username: Option<String>,
    /// Header carrying a delivery id (the event id, for dedupe).
    #[serde(default)]
    pub id_header: Option<String>,
}

impl BasicConfig {
    pub(super) fn build(&self, at: &str, errors: &mut Errors) -> Scheme {
        let username = self.username.clone().unwrap_or_default();
        if username.is_empty() || username.contains(':') {
            errors.at(
                format!("{at}.username"),
                "kind basic needs a user name (without ':'); the password is the secret",
            );
        }
        Scheme::Basic { username }
    }
}
