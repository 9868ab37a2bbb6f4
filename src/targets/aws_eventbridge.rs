//! `aws-eventbridge`: events to an Amazon EventBridge bus through `PutEvents`
//! (`aws-sdk-eventbridge`; credentials, region and the rest from the AWS environment,
//! as `aws-config` loads it, with `region` and `endpoint` of the target on top).
//!
//! Mapping (docs/bridges.md): `Source` = `source`, `DetailType` = `type`, `Time` =
//! `time`, `Resources` = the comma-separated value of the `resources_from` attribute
//! (default `resources`), `EventBusName` = `event_bus`, and `Detail` = the data when it
//! is a JSON object, otherwise an object wrapping it: `{"data": <JSON or text>}` or
//! `{"data_base64": "..."}`. An entry has no room for extension attributes, so the
//! bridge trace travels inside `Detail` as `"_sluice": {"origin", "path", "hops"}` (with
//! `"wrapped": true` when the data was wrapped); Sluice's inbound AWS connectors read it
//! and take it out again.
//!
//! Entries of concurrent deliveries share requests ([`super::batch`], 10 entries or
//! 256 KB as EventBridge counts them). A failed entry's `ErrorCode`
//! (`ThrottlingException`, `InternalException`, ...) decides: throttling and internal
//! errors are retried, others go to the DLQ. The SDK's own retries are off: the
//! dispatcher's retry policy applies.

use std::time::Duration;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use base64::Engine;

use super::batch::{self, Batcher, Sink};
use serde::Deserialize;

use super::bridge::{retryable_code, Bridge, BridgeFields};
use super::{BuildContext, Delivered, DeliveryError};
use crate::config::{Endpoint, Errors, PeerId};
use crate::event::bridge::Trace;
use crate::event::{DataKind, Event};

pub const MAX_ENTRIES: usize = 10;
/// Total entry size of one request, counted the EventBridge way.
pub const MAX_BYTES: usize = 256 * 1024;
const LINGER: Duration = Duration::from_millis(5);
use crate::event::bridge::DETAIL_KEY as TRACE_KEY;

/// The fields of `aws-eventbridge` targets (docs/bridges.md).
#[derive(Debug, Clone, Deserialize)]
pub struct AwsEventBridgeConfig {
    /// The id of the gateway or cloud bus events go to, for loop prevention. Required.
    #[serde(default)]
    pub peer: Option<PeerId>,
    /// Events that crossed this many bridges (`sluicehops`) are not sent on. Default 8.
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// The destination bus: a name or ARN. Default `default`.
    #[serde(default)]
    pub event_bus: Option<String>,
    /// The region (default from the AWS environment, `AWS_REGION` or the profile).
    #[serde(default)]
    pub region: Option<String>,
    /// The API endpoint, overriding the region's (the SDK's `endpoint_url`, e.g. a local
    /// emulator); `http://` only for loopback addresses.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// The event attribute whose value (comma-separated) becomes the entry's
    /// `Resources`. Default `resources`.
    #[serde(default)]
    pub resources_from: Option<String>,
}

/// An `aws-eventbridge` target as the plan built it.
#[derive(Debug)]
pub struct AwsEventBridgeSpec {
    config: AwsEventBridgeConfig,
    bridge: Bridge,
}

impl AwsEventBridgeConfig {
    pub fn build(
        &self,
        has_transform: bool,
        cx: &BuildContext<'_>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<AwsEventBridgeSpec> {
        let fields = BridgeFields {
            peer: self.peer.as_ref(),
            max_hops: self.max_hops,
            endpoint: self.endpoint.as_ref(),
            transform: has_transform,
        };
        let bridge = Bridge::build("aws-eventbridge", fields, cx.gateway_id, at, errors)?;
        Some(AwsEventBridgeSpec {
            config: self.clone(),
            bridge,
        })
    }
}

/// A configured `aws-eventbridge` target.
#[derive(Debug)]
pub struct AwsEventBridgeTarget {
    bus: String,
    resources_from: String,
    bridge: Bridge,
    batcher: Batcher<PutEventsRequestEntry>,
}

struct Client {
    client: aws_sdk_eventbridge::Client,
}

impl AwsEventBridgeTarget {
    pub fn new(
        spec: AwsEventBridgeSpec,
        timeout: Duration,
        sdk: &aws_config::SdkConfig,
    ) -> anyhow::Result<Self> {
        let AwsEventBridgeSpec { config, bridge } = spec;
        let mut builder = aws_sdk_eventbridge::config::Builder::from(sdk)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            builder = builder.region(aws_config::Region::new(region.clone()));
        } else if sdk.region().is_none() {
            anyhow::bail!("no AWS region: set region on the target, or AWS_REGION");
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.0.clone());
        }
        let client = Client {
            client: aws_sdk_eventbridge::Client::from_conf(builder.build()),
        };
        Ok(AwsEventBridgeTarget {
            bus: config.event_bus.clone().unwrap_or_else(|| "default".into()),
            resources_from: config
                .resources_from
                .clone()
                .unwrap_or_else(|| "resources".into()),
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
        let Some((_, trace)) = self.bridge.depart(event) else {
            return Ok(Delivered::default());
        };
        let source = event.attr_str("source").unwrap_or_default();
        let detail_type = event.attr_str("type").unwrap_or_default();
        let detail = detail(event, &trace);
        let resources: Vec<String> = event
            .attr_str(&self.resources_from)
            .map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let time = event
            .attr_str("time")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let size = time.map_or(0, |_| 14)
            + source.len()
            + detail_type.len()
            + detail.len()
            + resources.iter().map(String::len).sum::<usize>();
        if size > MAX_BYTES {
            return Err(DeliveryError::Invalid(format!(
                "the entry is {size} bytes, over EventBridge's {MAX_BYTES}-byte limit"
            )));
        }
        let mut entry = PutEventsRequestEntry::builder()
            .source(source)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(&self.bus)
            .set_resources((!resources.is_empty()).then_some(resources));
        if let Some(t) = time {
            entry = entry.time(
                aws_sdk_eventbridge::primitives::DateTime::from_secs_and_nanos(
                    t.timestamp(),
                    t.timestamp_subsec_nanos(),
                ),
            );
        }
        self.batcher.submit(entry.build(), size).await?;
        Ok(Delivered::default())
    }
}

/// The `Detail` of an event: its JSON object data with the trace added, or a wrapper
/// object (see the module documentation). JSON object data keeps its bytes: the trace
/// is written in front of its first member.
pub fn detail(event: &Event, trace: &Trace) -> String {
    let mut trace_json = trace.to_json();
    let object = match &event.data {
        Some(d) if d.kind == DataKind::Json => std::str::from_utf8(&d.bytes)
            .ok()
            .map(str::trim_start)
            .filter(|s| s.starts_with('{')),
        _ => None,
    };
    if let Some(object) = object {
        let rest = &object[1..];
        let sep = if rest.trim_start().starts_with('}') {
            ""
        } else {
            ","
        };
        return format!("{{\"{TRACE_KEY}\":{trace_json}{sep}{rest}");
    }
    trace_json["wrapped"] = true.into();
    let trace_json = trace_json.to_string();
    match &event.data {
        None => format!("{{\"{TRACE_KEY}\":{trace_json}}}"),
        Some(d) => match d.kind {
            DataKind::Json => format!(
                "{{\"data\":{},\"{TRACE_KEY}\":{trace_json}}}",
                String::from_utf8_lossy(&d.bytes)
            ),
            DataKind::Text => format!(
                "{{\"data\":{},\"{TRACE_KEY}\":{trace_json}}}",
                serde_json::Value::from(String::from_utf8_lossy(&d.bytes).into_owned())
            ),
            DataKind::Binary => format!(
                "{{\"data_base64\":\"{}\",\"{TRACE_KEY}\":{trace_json}}}",
                base64::engine::general_purpose::STANDARD.encode(&d.bytes)
            ),
        },
    }
}

impl Sink for Client {
    type Item = PutEventsRequestEntry;

    async fn send(&self, items: Vec<PutEventsRequestEntry>) -> Vec<Result<(), DeliveryError>> {
        let n = items.len();
        let sent = self
            .client
            .put_events()
            .set_entries(Some(items))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e) => {
                let code = e.code().unwrap_or("").to_string();
                let status = e.raw_response().map(|r| r.status().as_u16());
                let message = match e.message() {
                    Some(m) => format!("PutEvents failed: {code}: {m}"),
                    None => format!(
                        "PutEvents failed: {}",
                        aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                    ),
                };
                // Throttling, internal errors, 5xx and transport errors may pass later;
                // a refused request (bad credentials, unknown bus) will not.
                let retryable =
                    retryable_code(&code) || status.is_none_or(|s| s >= 500 || s == 429);
                tracing::warn!(code, status, retryable, "EventBridge PutEvents failed");
                return (0..n)
                    .map(|_| {
                        Err(DeliveryError::Failed {
                            message: message.clone(),
                            retryable,
                        })
                    })
                    .collect();
            }
        };
        let entries = output.entries();
        (0..n)
            .map(|i| match entries.get(i) {
                Some(entry) => match entry.error_code() {
                    Some(code) if !code.is_empty() => Err(DeliveryError::Failed {
                        message: format!(
                            "PutEvents entry failed: {code}: {}",
                            entry.error_message().unwrap_or("")
                        ),
                        retryable: retryable_code(code),
                    }),
                    _ => Ok(()),
                },
                None if output.failed_entry_count() == 0 => Ok(()),
                None => Err(DeliveryError::Failed {
                    message: "PutEvents reported failures but no result for this entry".into(),
                    retryable: true,
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Data;
    use bytes::Bytes;

    fn event(kind: DataKind, data: &'static [u8]) -> Event {
        Event {
            attrs: serde_json::Map::new(),
            data: Some(Data {
                kind,
                bytes: Bytes::from_static(data),
            }),
        }
    }

    #[test]
    fn detail_keeps_object_bytes_and_wraps_the_rest() {
        let t = Trace {
            path: vec!["idc".into()],
            hops: 1,
        };
        let tj = r#""_sluice":{"origin":"idc","path":"idc","hops":1"#;
        assert_eq!(
            detail(&event(DataKind::Json, br#"{"a": 1.50}"#), &t),
            format!(r#"{{{tj}}},"a": 1.50}}"#)
        );
        assert_eq!(
            detail(&event(DataKind::Json, b" { } "), &t),
            format!(r#"{{{tj}}} }} "#)
        );
        assert_eq!(
            detail(&event(DataKind::Json, b"[1]"), &t),
            format!(r#"{{"data":[1],{tj},"wrapped":true}}}}"#)
        );
        assert_eq!(
            detail(&event(DataKind::Text, b"hi \"x\""), &t),
            format!(r#"{{"data":"hi \"x\"",{tj},"wrapped":true}}}}"#)
        );
        assert_eq!(
            detail(&event(DataKind::Binary, &[0, 255]), &t),
            format!(r#"{{"data_base64":"AP8=",{tj},"wrapped":true}}}}"#)
        );
        for d in [
            detail(&event(DataKind::Json, br#"{"a": 1.50}"#), &t),
            detail(&event(DataKind::Binary, &[0, 255]), &t),
        ] {
            serde_json::from_str::<serde_json::Value>(&d).unwrap();
        }
    }
}
