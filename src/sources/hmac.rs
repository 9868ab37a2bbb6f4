//! `kind: hmac`: a generic HMAC signature scheme for providers without a kind of their
//! own: the signature header, algorithm, encoding, prefix, an optional signed
//! timestamp and the signed-content template.

use actix_web::http::header::HeaderName;
use serde::Deserialize;

use super::header_name;
use super::verify::{self, Scheme};
use crate::config::Errors;

#[derive(Debug, Clone, Deserialize)]
pub struct HmacConfig {
    /// The signature header.
    #[serde(default)]
    pub header: Option<String>,
    /// sha1, sha256 (default) or sha512.
    #[serde(default)]
    pub algorithm: Option<HmacAlgorithm>,
    /// hex (default) or base64.
    #[serde(default)]
    pub encoding: Option<SignatureEncoding>,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Header carrying the signed Unix timestamp (enables the tolerance window).
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// What is signed, from `{timestamp}` and `{body}`. Default `{body}`, or
    /// `{timestamp}.{body}` with `timestamp_header`.
    #[serde(default)]
    pub signed_content: Option<String>,
    /// Header carrying a delivery id (the event id, for dedupe).
    #[serde(default)]
    pub id_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

impl HmacConfig {
    pub(super) fn build(&self, at: &str, errors: &mut Errors) -> Scheme {
        let header = header_name(self.header.as_ref(), at, "header", errors);
        if self.header.is_none() {
            errors.at(
                format!("{at}.header"),
                "kind hmac needs the signature header",
            );
        }
        let timestamp_header = header_name(
            self.timestamp_header.as_ref(),
            at,
            "timestamp_header",
            errors,
        );
        let default_template = if self.timestamp_header.is_some() {
            "{timestamp}.{body}"
        } else {
            "{body}"
        };
        let template = self.signed_content.as_deref().unwrap_or(default_template);
        let field = format!("{at}.signed_content");
        let template = verify::parse_template(template).unwrap_or_else(|m| {
            errors.at(&field, m);
            Vec::new()
        });
        let uses_ts = template.contains(&verify::Part::Timestamp);
        if uses_ts && self.timestamp_header.is_none() {
            errors.at(&field, "uses {timestamp} but timestamp_header is not set");
        }
        // An unsigned timestamp could be replaced by a replayer: the tolerance window
        // would then prove nothing.
        if !uses_ts && self.timestamp_header.is_some() && !template.is_empty() {
            errors.at(
                &field,
                "must contain {timestamp} when timestamp_header is set (an unsigned timestamp does not prevent replays)",
            );
        }
        Scheme::Hmac(Box::new(verify::HmacScheme {
            header: header.unwrap_or(HeaderName::from_static("x-signature")),
            algorithm: self.algorithm.unwrap_or(HmacAlgorithm::Sha256),
            encoding: self.encoding.unwrap_or(SignatureEncoding::Hex),
            prefix: self.prefix.clone().unwrap_or_default(),
            timestamp_header,
            template,
        }))
    }
}
