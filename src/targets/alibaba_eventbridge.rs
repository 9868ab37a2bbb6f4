//! `alibaba-eventbridge`: events to an Alibaba Cloud EventBridge bus through its
//! data-plane PutEvents API, `POST /openapi/putEvents` on
//! `{account_id}.eventbridge.{region}.aliyuncs.com` (or `endpoint`).
//!
//! The body is a JSON array of CloudEvents (`application/cloudevents-batch+json`), each
//! event in the structured JSON format with the bus in the `aliyuneventbusname`
//! extension. The request is signed as the Alibaba EventBridge SDKs sign it, with the
//! string to sign of `compat::alibaba::acs` (the same code that verifies inbound requests):
//! `authorization: acs:{AccessKeyId}:{base64 HMAC-SHA1}`, with the headers the public
//! Alibaba EventBridge SDKs send (no `content-md5`, as they: the body is protected by
//! TLS). With an STS token, `x-acs-accesskey-id` and `x-acs-security-token` are sent
//! (and signed).
//!
//! Entries of concurrent deliveries share requests ([`super::batch`]); the answer's
//! `EntryList` gives each its own result: an `ErrorCode` of throttling or an internal
//! error is retried, any other goes to the DLQ. An HTTP error of the whole request
//! fails every entry of it like an `http` target's answer would (5xx/429 retried).

use std::time::Duration;

use serde::Deserialize;

use super::batch::{self, Batcher, Sink};
use super::bridge::{retryable_code, Bridge, BridgeFields};
use super::{BuildContext, Delivered, DeliveryError};
use crate::compat::alibaba::acs::{sign, string_to_sign_of};
use crate::compat::alibaba::putevents::BUS_EXTENSION;
use crate::config::{Endpoint, Errors, PeerId, SecretRef};
use crate::event::Event;

/// PutEvents limits: entries per request and bytes per request body.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_BYTES: usize = 256 * 1024;
/// How long the batcher waits for more entries after the first.
const LINGER: Duration = Duration::from_millis(5);
const PATH: &str = "/openapi/putEvents";
const CONTENT_TYPE: &str = "application/cloudevents-batch+json; charset=utf-8";

/// The fields of `alibaba-eventbridge` targets (docs/bridges.md).
#[derive(Debug, Clone, Deserialize)]
pub struct AlibabaEventBridgeConfig {
    /// The id of the gateway or cloud bus events go to, for loop prevention. Required.
    #[serde(default)]
    pub peer: Option<PeerId>,
    /// Events that crossed this many bridges (`sluicehops`) are not sent on. Default 8.
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// The destination bus's name. Required.
    #[serde(default)]
    pub event_bus: Option<String>,
    /// The region, e.g. `cn-hangzhou`; required unless `endpoint` is set.
    #[serde(default)]
    pub region: Option<String>,
    /// The API endpoint (default `https://{account_id}.eventbridge.{region}.aliyuncs.com`);
    /// `http://` only for loopback addresses.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// The account id (the endpoint's host name starts with it).
    #[serde(default)]
    pub account_id: Option<String>,
    /// The AccessKey id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The AccessKey secret (`env:NAME`, `file:PATH` or literal).
    #[serde(default)]
    pub access_key_secret: Option<SecretRef>,
    /// An STS security token, with temporary AccessKeys.
    #[serde(default)]
    pub security_token: Option<SecretRef>,
}

/// An `alibaba-eventbridge` target as the plan built it: secrets resolved.
#[derive(Debug)]
pub struct AlibabaEventBridgeSpec {
    config: AlibabaEventBridgeConfig,
    bridge: Bridge,
    secret: Vec<u8>,
    token: Option<String>,
}

impl AlibabaEventBridgeConfig {
    pub fn build(
        &self,
        has_transform: bool,
        cx: &BuildContext<'_>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<AlibabaEventBridgeSpec> {
        let before = errors.len();
        let resolve = |field: &str, reference: &Option<SecretRef>, errors: &mut Errors| {
            reference.as_ref().and_then(|r| match r.resolve() {
                Ok(secret) => Some(secret),
                Err(message) => {
                    errors.at(format!("{at}.{field}"), message);
                    None
                }
            })
        };
        let secret = resolve("access_key_secret", &self.access_key_secret, errors);
        let token = resolve("security_token", &self.security_token, errors);
        let fields = BridgeFields {
            peer: self.peer.as_ref(),
            max_hops: self.max_hops,
            endpoint: self.endpoint.as_ref(),
            transform: has_transform,
        };
        let bridge = Bridge::build("alibaba-eventbridge", fields, cx.gateway_id, at, errors);
        if self.event_bus.as_deref().is_none_or(str::is_empty) {
            errors.at(
                format!("{at}.event_bus"),
                "an alibaba-eventbridge target needs event_bus: the name of the bus",
            );
        }
        if self.access_key_id.as_deref().is_none_or(str::is_empty) {
            errors.at(
                format!("{at}.access_key_id"),
                "an alibaba-eventbridge target needs access_key_id",
            );
        }
        if self.access_key_secret.is_none() {
            errors.at(
                format!("{at}.access_key_secret"),
                "an alibaba-eventbridge target needs access_key_secret (env:NAME, file:PATH or a literal)",
            );
        }
        if self.endpoint.is_none() {
            let dns = |v: &Option<String>| {
                v.as_deref().is_some_and(|v| {
                    !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
            };
            if !dns(&self.account_id) {
                errors.at(
                    format!("{at}.account_id"),
                    "needed (digits) to build the endpoint {account_id}.eventbridge.{region}.aliyuncs.com, unless endpoint is set",
                );
            }
            if !dns(&self.region) {
                errors.at(
                    format!("{at}.region"),
                    "needed (e.g. cn-hangzhou) to build the endpoint, unless endpoint is set",
                );
            }
        }
        let token = match token.map(|t| String::from_utf8(t.0)).transpose() {
            Ok(token) => token,
            Err(_) => {
                errors.at(format!("{at}.security_token"), "is not UTF-8");
                None
            }
        };
        if errors.len() > before {
            return None;
        }
        Some(AlibabaEventBridgeSpec {
            config: self.clone(),
            bridge: bridge?,
            secret: secret?.0,
            token,
        })
    }
}

/// A configured `alibaba-eventbridge` target.
#[derive(Debug)]
pub struct AlibabaEventBridgeTarget {
    bus: String,
    bridge: Bridge,
    batcher: Batcher<Vec<u8>>,
}

struct Client {
    http: reqwest::Client,
    url: String,
    key_id: String,
    secret: Vec<u8>,
    token: Option<String>,
    /// Sent as `x-eventbridge-regionId`, as the SDKs do when given a region.
    region: Option<String>,
    timeout: Duration,
}

impl AlibabaEventBridgeTarget {
    pub fn new(spec: AlibabaEventBridgeSpec, timeout: Duration) -> anyhow::Result<Self> {
        let AlibabaEventBridgeSpec {
            config,
            bridge,
            secret,
            token,
        } = spec;
        let base = match &config.endpoint {
            Some(e) => e.0.trim_end_matches('/').to_string(),
            None => format!(
                "https://{}.eventbridge.{}.aliyuncs.com",
                config.account_id.as_deref().unwrap_or_default(),
                config.region.as_deref().unwrap_or_default()
            ),
        };
        let client = Client {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!("{base}{PATH}"),
            key_id: config.access_key_id.clone().unwrap_or_default(),
            secret,
            token,
            region: config.region.clone(),
            timeout,
        };
        Ok(AlibabaEventBridgeTarget {
            bus: config.event_bus.clone().unwrap_or_default(),
            bridge,
            batcher: Batcher::spawn(
                client,
                batch::Limits {
                    max_entries: MAX_ENTRIES,
                    max_bytes: MAX_BYTES,
                    linger: LINGER,
                },
            ),
        })
    }

    pub async fn deliver(&self, event: &Event) -> Result<Delivered, DeliveryError> {
        let Some((mut attrs, _)) = self.bridge.depart(event) else {
            return Ok(Delivered::default());
        };
        attrs.insert(BUS_EXTENSION.into(), self.bus.clone().into());
        let json = Event {
            attrs,
            data: event.data.clone(),
        }
        .to_structured_json();
        if json.len() + 2 > MAX_BYTES {
            return Err(DeliveryError::Invalid(format!(
                "the event is {} bytes in JSON, over the {MAX_BYTES}-byte PutEvents limit",
                json.len()
            )));
        }
        let size = json.len() + 1;
        self.batcher.submit(json, size).await?;
        Ok(Delivered::default())
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "FailedEntryCount", default)]
    failed: u64,
    #[serde(rename = "EntryList", default)]
    entries: Vec<EntryResult>,
}

#[derive(Deserialize)]
struct EntryResult {
    #[serde(rename = "ErrorCode", default)]
    code: Option<String>,
    #[serde(rename = "ErrorMessage", default)]
    message: Option<String>,
}

impl Client {
    /// The signed request headers for `body`, at `date`.
    fn headers(&self, date: &str) -> Vec<(String, String)> {
        let mut acs = vec![
            (
                "x-acs-signature-nonce".to_string(),
                uuid::Uuid::new_v4().to_string(),
            ),
            ("x-acs-signature-method".into(), "HMAC-SHA1".into()),
            ("x-acs-signature-version".into(), "1.0".into()),
        ];
        if let Some(token) = &self.token {
            acs.push(("x-acs-accesskey-id".into(), self.key_id.clone()));
            acs.push(("x-acs-security-token".into(), token.clone()));
        }
        // No content-md5, as the SDKs: the string to sign has an empty line for it.
        let to_sign = string_to_sign_of("POST", ["", CONTENT_TYPE, date], acs.clone(), PATH, "");
        let mut headers = acs;
        headers.push(("date".into(), date.to_string()));
        if let Some(region) = &self.region {
            headers.push(("x-eventbridge-regionId".into(), region.clone()));
        }
        headers.push(("content-type".into(), CONTENT_TYPE.into()));
        headers.push(("accept".into(), "application/json".into()));
        headers.push(("x-eventbridge-version".into(), "2015-06-06".into()));
        headers.push((
            "authorization".into(),
            format!("acs:{}:{}", self.key_id, sign(&self.secret, &to_sign)),
        ));
        headers
    }

    async fn put_events(&self, items: &[Vec<u8>]) -> Result<Answer, DeliveryError> {
        let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.push(b']');
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let mut request = self.http.post(&self.url);
        for (name, value) in self.headers(&date) {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout(self.timeout)
            } else {
                DeliveryError::Request(e.to_string())
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            tracing::warn!(status = status.as_u16(), answer = %text.chars().take(300).collect::<String>(), "Alibaba PutEvents refused the request");
            return Err(DeliveryError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| DeliveryError::Request(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            DeliveryError::Request(format!(
                "PutEvents answered something else than its result: {e}"
            ))
        })
    }
}

impl Sink for Client {
    type Item = Vec<u8>;

    async fn send(&self, items: Vec<Vec<u8>>) -> Vec<Result<(), DeliveryError>> {
        let answer = match self.put_events(&items).await {
            Ok(answer) => answer,
            Err(e) => {
                // One error for the whole request: each entry gets its copy.
                let retryable = e.is_retryable();
                let (status, retry_after) = (e.status(), e.retry_after());
                let message = e.to_string();
                return items
                    .iter()
                    .map(|_| {
                        Err(match status {
                            Some(status) => DeliveryError::Status {
                                status,
                                retry_after,
                            },
                            None => DeliveryError::Failed {
                                message: message.clone(),
                                retryable,
                            },
                        })
                    })
                    .collect();
            }
        };
        if answer.failed == 0 {
            return items.iter().map(|_| Ok(())).collect();
        }
        // EntryList is in request order.
        (0..items.len())
            .map(|i| match answer.entries.get(i) {
                Some(EntryResult {
                    code: Some(code),
                    message,
                    ..
                }) if !code.is_empty() => Err(DeliveryError::Failed {
                    message: format!(
                        "PutEvents entry failed: {code}: {}",
                        message.as_deref().unwrap_or("")
                    ),
                    retryable: retryable_code(code),
                }),
                Some(_) => Ok(()),
                None => Err(DeliveryError::Failed {
                    message: "PutEvents reported failures but no result for this entry".into(),
                    retryable: true,
                }),
            })
            .collect()
    }
}
