//! `kind: token`: a shared token in a header (`Authorization: Bearer` by default).

use serde::Deserialize;

use super::header_name;
use super::verify::Scheme;
use crate::config::Errors;

#[derive(Debug, Clone, Deserialize)]
pub struct TokenConfig {
    /// The header holding the token verbatim (default `Authorization: Bearer <token>`).
    #[serde(default)]
    pub header: Option<String>,
    /// Header carrying a delivery id (the event id, for dedupe).
    #[serde(default)]
    pub id_header: Option<String>,
}

impl TokenConfig {
    pub(super) fn build(&self, at: &str, errors: &mut Errors) -> Scheme {
        Scheme::Token {
            header: header_name(self.header.as_ref(), at, "header", errors),
        }
    }
}
