//! HTTP targets: one request per event in the CloudEvents HTTP binding, binary mode by
//! default (attributes as `ce-*` headers, data bytes as the body) or structured mode.
//!
//! With a transform other than ORIGINAL the body is the transform's payload, with its
//! content type, and the attributes still travel as `ce-*` headers (so receivers can
//! deduplicate on `ce-id`). URL path parameters, query parameters and headers may take
//! their values from the event through JSONPaths, like EventBridge's `HttpParameters`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::Value;

use super::batch::{self, Batcher};
use crate::config::{Errors, SecretRef};
use crate::event::{DataKind, Event};
use crate::rules::select::{Document, Path};
use crate::rules::transform::{Context, Payload, Transform};

pub use super::DeliveryError;

/// Characters the CloudEvents HTTP binding requires percent-encoded in header values
/// (non-ASCII bytes are always encoded).
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Parses a `Retry-After` value: delay seconds or an HTTP date (a date in the past is
/// zero).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

/// The fields of `http` and `cloudevents` targets (the kind of [`crate::config::TargetConfig`]).
#[derive(Debug, Clone, Deserialize)]
pub struct HttpConfig {
    /// The endpoint; `{name}` placeholders are filled from `path_params`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra request headers: a literal, or a JSONPath into the event (`$...`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// CloudEvents HTTP mode of the request. Default binary.
    #[serde(default)]
    pub mode: DeliveryMode,
    /// Values for `{name}` placeholders in `url`: a JSONPath into the event (`$...`) or
    /// a literal.
    #[serde(default)]
    pub path_params: BTreeMap<String, String>,
    /// Query parameters added to `url`: a JSONPath into the event (`$...`) or a literal.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Standard Webhooks signing of every request.
    #[serde(default)]
    pub signing: Option<SigningConfig>,
    /// OAuth 2.0 client credentials: a bearer token fetched and renewed by Sluice.
    #[serde(default)]
    pub oauth: Option<super::oauth::OAuthConfig>,
    /// The CloudEvents webhook abuse-protection handshake before the first delivery
    /// (`targets::handshake`).
    #[serde(default)]
    pub handshake: Option<super::handshake::HandshakeConfig>,
    /// Batched delivery: concurrent deliveries gathered into one request in the
    /// CloudEvents batch format (`application/cloudevents-batch+json`).
    #[serde(default)]
    pub batch: Option<BatchConfig>,
}

/// `batch:` of an HTTP target.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most events in one request. Default 100.
    #[serde(default = "default_batch_events")]
    pub max_events: usize,
    /// Most bytes of one request's body. Default 1 MiB.
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: usize,
    /// How long the first event of a batch waits for others. Default 10ms.
    #[serde(
        default = "default_batch_window",
        deserialize_with = "crate::config::value::duration"
    )]
    pub window: Duration,
}

fn default_batch_events() -> usize {
    100
}
fn default_batch_bytes() -> usize {
    1 << 20
}
fn default_batch_window() -> Duration {
    Duration::from_millis(10)
}

fn default_method() -> String {
    "POST".into()
}

/// `signing:` of an HTTP target: Standard Webhooks headers on every request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// `whsec_` + base64 of the key: a literal, `env:NAME` or `file:PATH`.
    pub secret: SecretRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    #[default]
    Binary,
    Structured,
}

/// An HTTP target as the plan built it: everything checked, compiled and resolved.
#[derive(Debug)]
pub struct HttpSpec {
    shape: RequestShape,
    method: reqwest::Method,
    headers: HeaderMap,
    mode: DeliveryMode,
    signing_key: Option<Vec<u8>>,
    oauth: Option<Box<super::oauth::OAuth>>,
    handshake: Option<super::handshake::HandshakeConfig>,
    batch: Option<BatchConfig>,
}

impl HttpSpec {
    /// The decoded Standard Webhooks signing key, if the target signs.
    pub fn signing_key(&self) -> Option<&[u8]> {
        self.signing_key.as_deref()
    }
}

impl HttpConfig {
    /// Checks the fields and compiles the request shape; errors go to `errors` at
    /// `at.field` (`at` is the target's path). `kind` is `http` or `cloudevents`.
    pub fn build(
        &self,
        kind: &str,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<HttpSpec> {
        let before = errors.len();
        let Some(configured) = self.url.as_deref() else {
            errors.at(format!("{at}.url"), format!("a {kind} target needs a url"));
            return None;
        };
        // Placeholders, parameters and the transform compile here exactly once.
        let shape = RequestShape::compile(self, configured, transform);
        if let Err(list) = &shape {
            for (field, message) in list {
                errors.at(format!("{at}.{field}"), message.clone());
            }
        }
        let sample_url = shape
            .as_ref()
            .map_or_else(|_| configured.to_string(), RequestShape::sample_url);
        match url::Url::parse(&sample_url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    errors.at(format!("{at}.url"), "URL has no host");
                }
            }
            Ok(u) => errors.at(
                format!("{at}.url"),
                format!("scheme {:?} is not http or https", u.scheme()),
            ),
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                errors.at(format!("{at}.url"), "relative URL")
            }
            Err(e) => errors.at(format!("{at}.url"), format!("invalid URL: {e}")),
        }
        if !matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            errors.at(
                format!("{at}.method"),
                format!("{:?} is not POST, PUT or PATCH", self.method),
            );
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let lower = name.to_ascii_lowercase();
            if lower == "content-type" || lower.starts_with("ce-") {
                errors.at(
                    format!("{at}.headers.{name}"),
                    "set by Sluice from the event (or the transform); use a transform to change the body",
                );
                continue;
            }
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Err(_), _) => errors.at(format!("{at}.headers.{name}"), "invalid header name"),
                (_, Err(_)) => errors.at(format!("{at}.headers.{name}"), "invalid header value"),
                (Ok(n), Ok(v)) => {
                    // Values from the event are set per request (`RequestShape`).
                    if !value.starts_with('$') {
                        headers.insert(n, v);
                    }
                }
            }
        }
        let signing_key = self.signing.as_ref().and_then(|s| {
            match s
                .secret
                .resolve()
                .and_then(|k| crate::config::decode_whsec(&k.0))
            {
                Ok(key) => Some(key),
                Err(message) => {
                    errors.at(format!("{at}.signing.secret"), message);
                    None
                }
            }
        });
        let oauth = self
            .oauth
            .as_ref()
            .and_then(|o| o.build(&format!("{at}.oauth"), errors))
            .map(Box::new);
        if let Some(b) = &self.batch {
            self.check_batch(b, &sample_url, configured, at, errors);
        }
        if let Some(h) = &self.handshake {
            errors.check(
                format!("{at}.handshake.origin"),
                h.check().map_err(String::from),
            );
        }
        if self.oauth.is_some()
            && self
                .headers
                .keys()
                .any(|h| h.eq_ignore_ascii_case("authorization"))
        {
            errors.at(
                format!("{at}.headers.Authorization"),
                "set by oauth (the bearer token): leave it out",
            );
        }
        if errors.len() > before {
            return None;
        }
        Some(HttpSpec {
            shape: shape.ok()?,
            method: self.method.parse().ok()?,
            headers,
            mode: self.mode,
            signing_key,
            oauth,
            handshake: self.handshake.clone(),
            batch: self.batch,
        })
    }

    /// A batch is one request for many events: its URL, headers and body cannot come
    /// from one event.
    fn check_batch(
        &self,
        b: &BatchConfig,
        _sample_url: &str,
        configured: &str,
        at: &str,
        errors: &mut Errors,
    ) {
        if !(1..=10_000).contains(&b.max_events) {
            errors.at(format!("{at}.batch.max_events"), "must be 1 to 10000");
        }
        if b.max_bytes < 1024 {
            errors.at(format!("{at}.batch.max_bytes"), "must be at least 1024");
        }
        if b.window > Duration::from_secs(10) {
            errors.at(format!("{at}.batch.window"), "must be at most 10s");
        }
        let per_event =
            "a batch is one request for many events: it cannot take values from one event";
        if configured.contains('{') || !self.path_params.is_empty() {
            errors.at(
                format!("{at}.batch"),
                format!("{per_event} (url placeholders, path_params)"),
            );
        }
        if self.query.values().any(|v| v.starts_with('$')) {
            errors.at(format!("{at}.batch"), format!("{per_event} (query)"));
        }
        if self.headers.values().any(|v| v.starts_with('$')) {
            errors.at(format!("{at}.batch"), format!("{per_event} (headers)"));
        }
    }
}

/// A value taken from the event or fixed.
#[derive(Debug)]
enum Param {
    Literal(String),
    Path(Path),
}

impl Param {
    fn compile(text: &str) -> Result<Param, String> {
        if text.starts_with('$') {
            Path::new(text).map(Param::Path)
        } else {
            Ok(Param::Literal(text.to_string()))
        }
    }

    /// The value as text (strings bare, other JSON as JSON text); `None` if the path
    /// matches nothing.
    fn eval(&self, doc: &Document<'_>) -> Option<String> {
        match self {
            Param::Literal(s) => Some(s.clone()),
            Param::Path(p) => p.select_text(doc),
        }
    }
}

#[derive(Debug)]
enum UrlPart {
    Literal(String),
    Param(Param),
}

/// The parts of a request that depend on the event, compiled from the configuration.
#[derive(Debug)]
pub struct RequestShape {
    /// The URL split at `{name}` placeholders; one literal part when there are none.
    url: Vec<UrlPart>,
    query: Vec<(String, Param)>,
    /// Headers whose values come from the event (fixed ones are set once).
    dynamic_headers: Vec<(HeaderName, Param)>,
    transform: Option<Transform>,
}

impl RequestShape {
    /// Compiles URL placeholders and parameters; each error carries the field it is
    /// about, relative to the target (`path_params.id`).
    fn compile(
        config: &HttpConfig,
        configured: &str,
        transform: Option<Transform>,
    ) -> Result<RequestShape, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut url = Vec::new();
        let mut rest = configured;
        let mut used = Vec::new();
        while let Some(open) = rest.find('{') {
            let Some(len) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + len];
            // Only whole path segments: a value elsewhere could change the host, the
            // query or the userinfo.
            let before = &configured[..configured.len() - rest.len() + open];
            let after = &rest[open + len + 1..];
            let in_path = before.ends_with('/')
                && !before.contains(['?', '#'])
                && before
                    .split_once("://")
                    .is_some_and(|(_, r)| r.find('/').is_some_and(|i| i > 0));
            if !in_path || !(after.is_empty() || after.starts_with(['/', '?', '#'])) {
                errors.push((
                    "url".into(),
                    format!("placeholder {{{name}}} must be a whole path segment, e.g. /orders/{{{name}}}/events"),
                ));
            }
            url.push(UrlPart::Literal(rest[..open].to_string()));
            match config.path_params.get(name).map(|v| Param::compile(v)) {
                Some(Ok(param)) => url.push(UrlPart::Param(param)),
                Some(Err(e)) => errors.push((format!("path_params.{name}"), e)),
                None => errors.push((
                    "url".into(),
                    format!("placeholder {{{name}}} has no entry in path_params"),
                )),
            }
            used.push(name);
            rest = &rest[open + len + 1..];
        }
        url.push(UrlPart::Literal(rest.to_string()));
        for name in config.path_params.keys() {
            if !used.contains(&name.as_str()) {
                errors.push((
                    format!("path_params.{name}"),
                    format!("url has no {{{name}}} placeholder"),
                ));
            }
        }
        let mut query = Vec::new();
        for (name, value) in &config.query {
            match Param::compile(value) {
                Ok(p) => query.push((name.clone(), p)),
                Err(e) => errors.push((format!("query.{name}"), e)),
            }
        }
        let mut dynamic_headers = Vec::new();
        for (name, value) in &config.headers {
            if value.starts_with('$') {
                match (
                    HeaderName::from_bytes(name.as_bytes()),
                    Param::compile(value),
                ) {
                    (Ok(n), Ok(p)) => dynamic_headers.push((n, p)),
                    (_, Err(e)) => errors.push((format!("headers.{name}"), e)),
                    (Err(_), _) => {} // reported by the header-name check
                }
            }
        }
        if errors.is_empty() {
            Ok(RequestShape {
                url,
                query,
                dynamic_headers,
                transform,
            })
        } else {
            Err(errors)
        }
    }

    /// The URL with placeholders replaced by `x`, for validating its shape.
    fn sample_url(&self) -> String {
        self.url
            .iter()
            .map(|p| match p {
                UrlPart::Literal(l) => l.as_str(),
                UrlPart::Param(_) => "x",
            })
            .collect()
    }

    /// The URL for one event: placeholders filled (percent-encoded as one path segment)
    /// and query parameters appended; parameters whose path matches nothing are omitted.
    fn url(&self, doc: &Document<'_>) -> Result<reqwest::Url, DeliveryError> {
        let mut text = String::new();
        for part in &self.url {
            match part {
                UrlPart::Literal(l) => text.push_str(l),
                UrlPart::Param(p) => {
                    // `.` and `..` would be dot segments, which URL parsing resolves
                    // (even percent-encoded): they leave the segment empty instead.
                    let value = p
                        .eval(doc)
                        .filter(|v| v != "." && v != "..")
                        .unwrap_or_default();
                    text.extend(percent_encoding::utf8_percent_encode(&value, PATH_SEGMENT));
                }
            }
        }
        let mut url = reqwest::Url::parse(&text)
            .map_err(|e| DeliveryError::Invalid(format!("invalid URL {text:?}: {e}")))?;
        let present: Vec<(&str, String)> = self
            .query
            .iter()
            .filter_map(|(name, param)| Some((name.as_str(), param.eval(doc)?)))
            .collect();
        if !present.is_empty() {
            url.query_pairs_mut().extend_pairs(present);
        }
        Ok(url)
    }
}

/// Characters escaped in a path parameter value, so it stays one path segment.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A configured HTTP target: its connection pool and, in batch mode, the task that
/// gathers concurrent deliveries into one request.
#[derive(Debug)]
pub struct HttpTarget {
    core: Arc<HttpCore>,
    batcher: Option<Batcher<Bytes>>,
}

impl HttpTarget {
    /// Starts the target built by the plan: its own connection pool, sized for
    /// `concurrency` requests of at most `timeout`.
    pub fn new(spec: HttpSpec, timeout: Duration, concurrency: usize) -> anyhow::Result<Self> {
        let batch = spec.batch;
        let core = Arc::new(HttpCore::new(spec, timeout, concurrency)?);
        let batcher = batch.map(|limits| {
            Batcher::spawn(
                BatchSink {
                    url: core.fixed_url(),
                    core: core.clone(),
                },
                batch::Limits {
                    max_entries: limits.max_events,
                    // The brackets of the array; each item counts its comma.
                    max_bytes: limits.max_bytes.saturating_sub(2),
                    linger: limits.window,
                },
            )
        });
        Ok(HttpTarget { core, batcher })
    }

    /// Sends one event (in batch mode: in the next batch); a 2xx answer is success.
    /// Returns the status code (none in batch mode: the batch's answer was 2xx).
    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Option<u16>, DeliveryError> {
        match &self.batcher {
            Some(batcher) => {
                let json = Bytes::from(event.to_structured_json());
                let size = json.len() + 1;
                batcher.submit(json, size).await.map(|()| None)
            }
            None => self.core.deliver(event, ctx).await.map(Some),
        }
    }

    /// The transformed body for `event`, when the target has a transform.
    pub fn payload(&self, event: &Event, ctx: &Context<'_>) -> Option<Payload> {
        self.core.payload(event, ctx)
    }

    /// Builds the request for one event (not sent).
    pub fn request(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<reqwest::RequestBuilder, DeliveryError> {
        self.core.request(event, ctx)
    }
}

/// The request side of an HTTP target.
#[derive(Debug)]
struct HttpCore {
    client: reqwest::Client,
    shape: RequestShape,
    method: reqwest::Method,
    headers: HeaderMap,
    mode: DeliveryMode,
    timeout: Duration,
    /// Standard Webhooks signing key (decoded `whsec_`).
    signing_key: Option<Vec<u8>>,
    oauth: Option<Box<super::oauth::OAuth>>,
    handshake: Option<super::handshake::Handshake>,
}

impl HttpCore {
    fn new(spec: HttpSpec, timeout: Duration, concurrency: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpCore {
            client,
            shape: spec.shape,
            method: spec.method,
            headers: spec.headers,
            mode: spec.mode,
            timeout,
            signing_key: spec.signing_key,
            oauth: spec.oauth,
            handshake: spec
                .handshake
                .as_ref()
                .map(super::handshake::Handshake::new),
        })
    }

    /// Sends one event; a 2xx answer is success. Returns the status code.
    async fn deliver(&self, event: &Event, ctx: &Context<'_>) -> Result<u16, DeliveryError> {
        let request = self.request(event, ctx)?;
        self.send(request).await
    }

    /// The URL of a target whose URL takes nothing from events (batch mode).
    fn fixed_url(&self) -> reqwest::Url {
        let none = Event {
            attrs: serde_json::Map::new(),
            data: None,
        };
        self.shape
            .url(&Document::new(&none))
            .ok()
            .or_else(|| reqwest::Url::parse(&self.shape.sample_url()).ok())
            .expect("the plan checked the URL")
    }

    /// Sends a built request with the target's OAuth token and handshake; maps the
    /// answer (2xx is success; `Retry-After` of 429/503; a 401 renews the token).
    async fn send(&self, mut request: reqwest::RequestBuilder) -> Result<u16, DeliveryError> {
        let token = match &self.oauth {
            Some(oauth) => Some(oauth.token(&self.client).await?),
            None => None,
        };
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        if let Some(handshake) = &self.handshake {
            let built = request
                .build()
                .map_err(|e| DeliveryError::Invalid(error_chain(&e)))?;
            handshake.admit(&self.client, built.url()).await?;
            request = reqwest::RequestBuilder::from_parts(self.client.clone(), built);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout(self.timeout)
            } else {
                DeliveryError::Request(error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        let retry_after = match status {
            429 | 503 => response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now())),
            _ => None,
        };
        // Drain the body so the connection can be reused.
        let _ = response.bytes().await;
        if (200..300).contains(&status) {
            Ok(status)
        } else if let (401, Some(oauth), Some(token)) = (status, &self.oauth, &token) {
            // The token was revoked or expired early: a new one for the next attempt.
            oauth.refused(token).await;
            Err(DeliveryError::Failed {
                message: "target answered HTTP 401 to the OAuth token; a new token is fetched for the next attempt".into(),
                retryable: true,
            })
        } else {
            Err(DeliveryError::Status {
                status,
                retry_after,
            })
        }
    }

    /// The transformed body for `event`, when the target has a transform.
    fn payload(&self, event: &Event, ctx: &Context<'_>) -> Option<Payload> {
        let doc = Document::new(event);
        self.shape.transform.as_ref()?.apply(&doc, ctx)
    }

    /// Builds the request for one event (not sent).
    fn request(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<reqwest::RequestBuilder, DeliveryError> {
        let doc = Document::new(event);
        let mut request = self
            .client
            .request(self.method.clone(), self.shape.url(&doc)?)
            .headers(self.headers.clone());
        for (name, param) in &self.shape.dynamic_headers {
            if let Some(value) = param
                .eval(&doc)
                .and_then(|v| HeaderValue::from_str(&v).ok())
            {
                request = request.header(name.clone(), value);
            }
        }
        let (headers, body) = match self
            .shape
            .transform
            .as_ref()
            .and_then(|t| t.apply(&doc, ctx))
        {
            Some(payload) => {
                let mut headers = ce_headers(event);
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(payload.content_type));
                (headers, Some(payload.body))
            }
            None => match self.mode {
                DeliveryMode::Binary => {
                    let mut headers = ce_headers(event);
                    if let Some(data) = &event.data {
                        let content_type = event.attr_str("datacontenttype").unwrap_or(match data
                            .kind
                        {
                            DataKind::Json => "application/json",
                            DataKind::Text => "text/plain; charset=utf-8",
                            DataKind::Binary => "application/octet-stream",
                        });
                        if let Ok(v) = HeaderValue::from_str(content_type) {
                            headers.insert(CONTENT_TYPE, v);
                        }
                    }
                    (headers, event.data.as_ref().map(|d| d.bytes.clone()))
                }
                DeliveryMode::Structured => {
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/cloudevents+json; charset=utf-8"),
                    );
                    (headers, Some(Bytes::from(event.to_structured_json())))
                }
            },
        };
        let request = self.signed(request.headers(headers), event.id(), body.as_deref());
        Ok(match body {
            Some(body) => request.body(body),
            None => request,
        })
    }

    /// Adds the Standard Webhooks headers when the target signs.
    fn signed(
        &self,
        request: reqwest::RequestBuilder,
        id: &str,
        body: Option<&[u8]>,
    ) -> reqwest::RequestBuilder {
        let Some(key) = &self.signing_key else {
            return request;
        };
        let timestamp = chrono::Utc::now().timestamp();
        // The id is sent percent-encoded like `ce-id` (so it is always a valid,
        // ASCII header value) and signed exactly as sent; never unsigned.
        let id = percent_encoding::utf8_percent_encode(id, HEADER_ESCAPES).to_string();
        let signature = sign_standard_webhook(key, &id, timestamp, body.unwrap_or(b""));
        request
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
    }
}

/// Batch mode: one request for the events of concurrent deliveries, all of whose
/// results are the request's (a failed batch fails each of its events, which then
/// retry, or dead-letter, one by one like any failed delivery).
struct BatchSink {
    core: Arc<HttpCore>,
    url: reqwest::Url,
}

impl batch::Sink for BatchSink {
    type Item = Bytes;

    async fn send(&self, items: Vec<Bytes>) -> Vec<Result<(), DeliveryError>> {
        let n = items.len();
        let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.push(b']');
        // The signature's id: the same for the same events, so a receiver can tell a
        // repeated batch (a retry regroups events, so it rarely repeats).
        let id = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&body);
            format!("batch_{}", &hex_lower(&digest)[..32])
        };
        let core = &self.core;
        let request = core
            .client
            .request(core.method.clone(), self.url.clone())
            .headers(core.headers.clone())
            .header(CONTENT_TYPE, crate::event::cloudevents::BATCH);
        let request = core.signed(request, &id, Some(&body));
        let outcome = core.send(request.body(body)).await;
        (0..n)
            .map(|_| outcome.as_ref().map(|_| ()).map_err(Clone::clone))
            .collect()
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Standard Webhooks signature header value: `v1,` + base64 of
/// HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn sign_standard_webhook(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The attributes as binary-mode `ce-*` headers (all but `datacontenttype`).
fn ce_headers(event: &Event) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(event.attrs.len() + 1);
    for (name, value) in &event.attrs {
        if name == "datacontenttype" {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let encoded = percent_encoding::utf8_percent_encode(&text, HEADER_ESCAPES).to_string();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
            HeaderValue::from_str(&encoded),
        ) {
            headers.insert(n, v);
        }
    }
    headers
}

/// The error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::cloudevents::parse_structured;
    use crate::plan::Plan;

    fn target(extra: &str) -> HttpTarget {
        let yaml = format!(
            "buses: [{{name: b}}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {{name: t, kind: http, {extra}}}\n"
        );
        let mut plan = Plan::parse(&yaml).unwrap_or_else(|e| panic!("{e:?}"));
        let target = &mut plan.buses[0].targets[0];
        match target.built.take() {
            Some(crate::targets::BuiltTarget::Http(spec)) => {
                HttpTarget::new(spec, target.timeout, target.concurrency).unwrap()
            }
            other => panic!("not an http target: {other:?}"),
        }
    }

    fn url_for(target: &HttpTarget, id: &str) -> String {
        let json = format!(
            r#"{{"specversion":"1.0","id":"e","source":"/s","type":"t","data":{{"id":{}}}}}"#,
            serde_json::to_string(id).unwrap()
        );
        let event = parse_structured(&bytes::Bytes::from(json))
            .unwrap()
            .decode();
        let request = target
            .request(&event, &Context::default())
            .unwrap()
            .build()
            .unwrap();
        request.url().to_string()
    }

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let key = crate::config::decode_whsec(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign_standard_webhook(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn errors_are_classified() {
        let status = |s| DeliveryError::Status {
            status: s,
            retry_after: None,
        };
        for s in [408, 429, 500, 502, 503, 599] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [300, 400, 401, 404, 409, 422] {
            assert!(!status(s).is_retryable(), "{s}");
        }
        assert!(DeliveryError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(DeliveryError::Request("refused".into()).is_retryable());
    }

    #[test]
    fn path_parameters_stay_one_segment() {
        let t = target(
            r#"url: "http://h/orders/{id}/events", path_params: {id: "$.data.id"}, query: {q: "$.data.nope"}"#,
        );
        for (id, url) in [
            ("o-1", "http://h/orders/o-1/events"),
            ("a/b c", "http://h/orders/a%2Fb%20c/events"),
            ("a\\b", "http://h/orders/a%5Cb/events"),
            ("..", "http://h/orders//events"),
            (".", "http://h/orders//events"),
            ("?x=1#f", "http://h/orders/%3Fx=1%23f/events"),
        ] {
            assert_eq!(url_for(&t, id), url, "{id}");
        }
    }

    #[test]
    fn placeholders_must_be_whole_path_segments() {
        for url in [
            "http://{a}.h/x",
            "http://h/x?q={a}",
            "http://h/x#{a}",
            "http://h/x/{a}.json",
            "http://h/x-{a}/y",
        ] {
            let yaml = format!(
                "buses: [{{name: b}}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {{name: t, kind: http, url: \"{url}\", path_params: {{a: x}}}}\n"
            );
            let errors: Vec<String> = Plan::parse(&yaml)
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains("placeholder {a} must be a whole path segment")),
                "{url}: {errors:?}"
            );
        }
        let t = target(r#"url: "http://h/{id}?x=1", path_params: {id: "$.data.id"}"#);
        assert_eq!(url_for(&t, "v&w"), "http://h/v&w?x=1");
    }

    #[test]
    fn headers_sluice_sets_cannot_be_configured() {
        let yaml = "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: t, kind: http, url: \"http://h/\", headers: {Content-Type: x, ce-id: y}}\n";
        let errors: Vec<String> = Plan::parse(yaml)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("rules[0].targets[0].headers.Content-Type: set by Sluice"),
            "{errors:?}"
        );
    }
}
