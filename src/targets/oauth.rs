//! OAuth 2.0 client credentials (RFC 6749 §4.4) for HTTP targets, as AWS EventBridge
//! connections model them: the target fetches an access token from `token_url` with
//! its client id and secret (HTTP Basic), keeps it until shortly before `expires_in`,
//! sends it as `Authorization: Bearer`, and fetches a new one when the endpoint answers
//! 401 (that attempt is retried). Each replica holds its own token.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::DeliveryError;
use crate::config::{Errors, SecretRef};

/// A token is renewed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// After a failed fetch, deliveries fail at once for this long instead of each waiting
/// for a fetch of its own (a token endpoint that hangs would hold every one up).
const FAILURE_HOLD: Duration = Duration::from_secs(2);
/// The longest a token is kept, whatever its `expires_in`.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The lifetime of a token whose answer has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// `oauth:` of an HTTP target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's token endpoint.
    pub token_url: String,
    pub client_id: String,
    /// A literal, `env:NAME` or `file:PATH`.
    pub client_secret: SecretRef,
    #[serde(default)]
    pub scope: Option<String>,
    /// `POST` (default; parameters as a form body), `GET` or `PUT`.
    #[serde(default = "post")]
    pub method: String,
    /// Extra form parameters (`grant_type` defaults to `client_credentials`).
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    /// Extra query parameters of the token request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra headers of the token request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn post() -> String {
    "POST".into()
}

/// The token source of one target, as the plan built it.
pub struct OAuth {
    token_url: url::Url,
    client_id: String,
    client_secret: String,
    method: reqwest::Method,
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    token: tokio::sync::Mutex<Held>,
}

impl OAuthConfig {
    pub fn build(&self, at: &str, errors: &mut Errors) -> Option<OAuth> {
        let before = errors.len();
        let token_url = match url::Url::parse(&self.token_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                errors.at(
                    format!("{at}.token_url"),
                    "must be an absolute http:// or https:// URL",
                );
                None
            }
        };
        if self.client_id.is_empty() {
            errors.at(format!("{at}.client_id"), "must not be empty");
        }
        let secret = match self.client_secret.resolve() {
            Ok(s) => String::from_utf8(s.0).ok(),
            Err(message) => {
                errors.at(format!("{at}.client_secret"), message);
                None
            }
        };
        let method = self.method.to_ascii_uppercase();
        if !matches!(method.as_str(), "POST" | "GET" | "PUT") {
            errors.at(format!("{at}.method"), "must be POST, GET or PUT");
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.at(format!("{at}.headers.{name}"), "invalid header name");
            }
        }
        if errors.len() > before {
            return None;
        }
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if let Some(scope) = &self.scope {
            form.push(("scope".into(), scope.clone()));
        }
        for (k, v) in &self.body {
            form.retain(|(name, _)| name != k);
            form.push((k.clone(), v.clone()));
        }
        Some(OAuth {
            token_url: token_url?,
            client_id: self.client_id.clone(),
            client_secret: secret?,
            method: method.parse().ok()?,
            form,
            query: self.query.clone().into_iter().collect(),
            headers: self.headers.clone().into_iter().collect(),
            token: tokio::sync::Mutex::new(Held::default()),
        })
    }
}

/// The token held, and the last failed fetch.
#[derive(Default)]
struct Held {
    token: Option<(String, Instant)>,
    failed: Option<(Instant, String)>,
}

impl std::fmt::Debug for OAuth {
    // The client secret and the token stay out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    /// Seconds; some servers send it as a string or a float.
    expires_in: Option<serde_json::Value>,
}

impl OAuth {
    /// A valid access token: the one held, or a new one from the token endpoint.
    /// Concurrent deliveries wait for one fetch.
    pub async fn token(&self, client: &reqwest::Client) -> Result<String, DeliveryError> {
        let mut held = self.token.lock().await;
        if let Some((token, until)) = held.token.as_ref() {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        if let Some((at, message)) = held.failed.as_ref() {
            if at.elapsed() < FAILURE_HOLD {
                return Err(DeliveryError::Failed {
                    message: message.clone(),
                    retryable: true,
                });
            }
        }
        match self.fetch(client).await {
            Ok((token, lifetime)) => {
                let until = Instant::now()
                    + lifetime
                        .saturating_sub(EXPIRY_MARGIN)
                        .max(Duration::from_secs(1));
                held.token = Some((token.clone(), until));
                held.failed = None;
                Ok(token)
            }
            Err(e) => {
                held.failed = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// Forgets `token` (the endpoint refused it): the next delivery fetches a new one.
    pub async fn refused(&self, token: &str) {
        let mut held = self.token.lock().await;
        if held.token.as_ref().is_some_and(|(t, _)| t == token) {
            held.token = None;
        }
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<(String, Duration), DeliveryError> {
        let failed = |message: String| DeliveryError::Failed {
            message: format!("OAuth token from {}: {message}", self.token_url),
            retryable: true,
        };
        let mut request = client
            .request(self.method.clone(), self.token_url.clone())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&self.query);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request = if self.method == reqwest::Method::GET {
            request.query(&self.form)
        } else {
            request.form(&self.form)
        };
        let response = request.send().await.map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            return Err(failed(format!("answered HTTP {}", status.as_u16())));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("no access_token in the answer ({e})")))?;
        let seconds = answer.expires_in.as_ref().and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let lifetime = match seconds {
            Some(s) if s.is_finite() && s > 0.0 => {
                Duration::from_secs_f64(s.min(MAX_LIFETIME.as_secs_f64()))
            }
            _ => DEFAULT_LIFETIME,
        };
        Ok((answer.access_token, lifetime))
    }
}
