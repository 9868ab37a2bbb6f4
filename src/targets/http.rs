//! HTTP targets: one request per event in the CloudEvents HTTP binding, binary mode by
//! default (attributes as `ce-*` headers, data bytes as the body) or structured mode.

use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde_json::Value;

use crate::config::{DeliveryMode, TargetConfig};
use crate::event::{DataKind, Event};

/// Characters the CloudEvents HTTP binding requires percent-encoded in header values
/// (non-ASCII bytes are always encoded).
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("target answered HTTP {status}")]
    Status { status: u16 },
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// A configured HTTP target with its own connection pool.
#[derive(Debug)]
pub struct HttpTarget {
    client: reqwest::Client,
    url: reqwest::Url,
    method: reqwest::Method,
    headers: HeaderMap,
    mode: DeliveryMode,
    timeout: Duration,
}

impl HttpTarget {
    /// Builds the target from its (validated) configuration.
    pub fn new(config: &TargetConfig) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes())?,
                HeaderValue::from_str(value)?,
            );
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(config.concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpTarget {
            client,
            url: config.url.parse()?,
            method: config.method.parse()?,
            headers,
            mode: config.mode,
            timeout: config.timeout,
        })
    }

    /// Sends one event; a 2xx answer is success. Returns the status code.
    pub async fn deliver(&self, event: &Event) -> Result<u16, DeliveryError> {
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        request = match self.mode {
            DeliveryMode::Binary => {
                let mut headers = HeaderMap::with_capacity(event.attrs.len() + 1);
                for (name, value) in &event.attrs {
                    if name == "datacontenttype" {
                        continue;
                    }
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let encoded =
                        percent_encoding::utf8_percent_encode(&text, HEADER_ESCAPES).to_string();
                    if let (Ok(n), Ok(v)) = (
                        HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
                        HeaderValue::from_str(&encoded),
                    ) {
                        headers.insert(n, v);
                    }
                }
                if let Some(data) = &event.data {
                    let content_type =
                        event
                            .attr_str("datacontenttype")
                            .unwrap_or(match data.kind {
                                DataKind::Json => "application/json",
                                DataKind::Text => "text/plain; charset=utf-8",
                                DataKind::Binary => "application/octet-stream",
                            });
                    if let Ok(v) = HeaderValue::from_str(content_type) {
                        headers.insert(CONTENT_TYPE, v);
                    }
                }
                let request = request.headers(headers);
                match &event.data {
                    Some(data) => request.body(data.bytes.clone()),
                    None => request,
                }
            }
            DeliveryMode::Structured => request
                .header(CONTENT_TYPE, "application/cloudevents+json; charset=utf-8")
                .body(event.to_structured_json()),
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout(self.timeout)
            } else {
                DeliveryError::Request(error_chain(&e))
            }
        })?;
        let status = response.status().as_u16();
        // Drain the body so the connection can be reused.
        let _ = response.bytes().await;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(DeliveryError::Status { status })
        }
    }
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
