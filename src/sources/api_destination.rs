//! `kind: aws-api-destination`: requests of an EventBridge API destination (the event
//! envelope, mapped by [`super::envelope`]), authenticated as its connection says: API
//! key (a header and its value), basic auth (user name and password), or without
//! either, `Authorization: Bearer`.

use serde::Deserialize;

use super::header_name;
use super::verify::Scheme;
use crate::config::Errors;

#[derive(Debug, Clone, Deserialize)]
pub struct ApiDestinationConfig {
    /// API key auth: the header holding the key.
    #[serde(default)]
    pub header: Option<String>,
    /// Basic auth: the user name (the password is `secret`).
    #[serde(default)]
    pub username: Option<String>,
    /// The id of the AWS side (the first id of the bridge trace of events that carry
    /// none; docs/bridges.md).
    #[serde(default)]
    pub peer: Option<String>,
}

impl ApiDestinationConfig {
    pub(super) fn build(&self, at: &str, errors: &mut Errors) -> Scheme {
        if self
            .peer
            .as_deref()
            .is_some_and(|p| !crate::event::bridge::valid_id(p))
        {
            errors.at(
                format!("{at}.peer"),
                "must be non-empty, without commas or spaces",
            );
        }
        match &self.username {
            Some(username) => {
                if self.header.is_some() {
                    errors.at(
                        format!("{at}.header"),
                        "set header (API key auth) or username (basic auth), not both",
                    );
                }
                Scheme::Basic {
                    username: username.clone(),
                }
            }
            None => Scheme::Token {
                header: header_name(self.header.as_ref(), at, "header", errors),
            },
        }
    }
}
