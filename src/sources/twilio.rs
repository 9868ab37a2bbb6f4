//! `kind: twilio`: Twilio's `X-Twilio-Signature`, which signs the URL Twilio called.

use serde::Deserialize;

use super::verify::Scheme;
use crate::config::Errors;

#[derive(Debug, Clone, Deserialize)]
pub struct TwilioConfig {
    /// The public URL Twilio calls (and signs).
    #[serde(default)]
    pub url: Option<String>,
}

impl TwilioConfig {
    pub(super) fn build(&self, at: &str, errors: &mut Errors) -> Scheme {
        let mut err = |message: &str| errors.at(format!("{at}.url"), message);
        let url = self.url.clone().unwrap_or_default();
        match url::Url::parse(&url) {
            _ if self.url.is_none() => {
                err("kind twilio needs the public URL Twilio calls (it is signed)")
            }
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
            Ok(_) => err(
                "must be an http(s) URL without query string (the request's own query is appended)",
            ),
            Err(e) => err(&format!("invalid URL: {e}")),
        }
        Scheme::Twilio { url }
    }
}
