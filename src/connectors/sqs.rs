//! The SQS pull connector: for networks that take no inbound traffic, an EventBridge
//! rule targets an SQS queue and Sluice consumes it (docs/bridges.md).
//!
//! Long polling (`wait`, up to 20 s), up to 10 messages a receive. Each message body is
//! an EventBridge event envelope, mapped as for API destinations (`sources::envelope`);
//! a body that is not one becomes an event of type `aws.sqs.message` with the body as
//! data, so nothing is lost. The events of one receive are appended in one pipelined
//! round trip (deduplicated on their id within `dedupe`), and only once Redis has
//! acknowledged them are the messages deleted (`DeleteMessageBatch`, in the background
//! while the next receive runs). A crash between the two leaves the messages in the
//! queue; they come back after the queue's visibility timeout and the dedupe window
//! keeps them from being appended twice.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message};
use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bus::{self, BusSpec};
use crate::config::{ConnectorConfig, Errors};
use crate::event::{Data, DataKind, EncodedEvent};
use crate::observability::metrics::{Metrics, Via};
use crate::sources::envelope::{self, Mapped};

/// Checks an `sqs` connector (`at`: its path, e.g. `connectors[0]`).
pub fn check(
    c: &ConnectorConfig,
    bus_names: &std::collections::HashSet<&str>,
    at: &str,
    errors: &mut Errors,
) {
    if !bus_names.contains(c.bus.as_str()) {
        errors.at(format!("{at}.bus"), format!("no bus named {:?}", c.bus));
    }
    match url::Url::parse(&c.queue_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => errors.at(
            format!("{at}.queue_url"),
            "must be the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/events",
        ),
    }
    if let Some(endpoint) = &c.endpoint {
        if endpoint.check().is_err() {
            errors.at(
                format!("{at}.endpoint"),
                "must be an https:// URL (http:// only for loopback addresses)",
            );
        }
    }
    if let Some(peer) = &c.peer {
        errors.check(format!("{at}.peer"), peer.check());
    }
    if c.wait.is_some_and(|w| w > Duration::from_secs(20)) {
        errors.at(format!("{at}.wait"), "must be at most 20s (the SQS limit)");
    }
    if c.max_messages.is_some_and(|m| !(1..=10).contains(&m)) {
        errors.at(
            format!("{at}.max_messages"),
            "must be 1 to 10 (the SQS limit)",
        );
    }
    if c.dedupe.check().is_err() {
        errors.at(format!("{at}.dedupe"), "must be 1ms to 365d, or off");
    }
}

/// One configured SQS connector, ready to run.
pub struct SqsConnector {
    pub name: String,
    pub queue_url: String,
    pub bus: BusSpec,
    pub peer: Option<String>,
    pub gateway_id: String,
    pub wait: Duration,
    pub max_messages: i32,
    pub dedupe: Option<Duration>,
    client: aws_sdk_sqs::Client,
}

impl SqsConnector {
    pub fn new(
        config: &ConnectorConfig,
        sdk: &aws_config::SdkConfig,
        gateway_id: &str,
    ) -> anyhow::Result<SqsConnector> {
        let wait = config.wait.unwrap_or(Duration::from_secs(20));
        let mut builder = aws_sdk_sqs::config::Builder::from(sdk).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(wait + Duration::from_secs(10))
                .build(),
        );
        if let Some(region) = &config.region {
            builder = builder.region(aws_config::Region::new(region.clone()));
        } else if sdk.region().is_none() {
            anyhow::bail!("no AWS region: set region on the connector, or AWS_REGION");
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.0.clone());
        }
        Ok(SqsConnector {
            name: config.name.to_string(),
            queue_url: config.queue_url.clone(),
            bus: BusSpec::new(&config.bus),
            peer: config.peer.as_ref().map(|p| p.0.clone()),
            gateway_id: gateway_id.to_string(),
            wait,
            max_messages: config.max_messages.unwrap_or(10),
            dedupe: config.dedupe.0,
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
        })
    }

    /// The event of one message, or `None` for one that returned to this gateway.
    fn event(&self, message: &Message) -> Option<EncodedEvent> {
        let body = message.body().unwrap_or_default();
        match envelope::map(body.as_bytes(), &self.gateway_id, self.peer.as_deref()) {
            Ok(Mapped::Event(event)) => Some(event),
            Ok(Mapped::Returned { id }) => {
                debug!(connector = %self.name, id, "dropped an event that was on this gateway before");
                None
            }
            Err(reason) => {
                warn!(connector = %self.name, message_id = message.message_id().unwrap_or_default(), %reason, "SQS message is no EventBridge event; appended as aws.sqs.message");
                Some(self.raw_event(message))
            }
        }
    }

    fn raw_event(&self, message: &Message) -> EncodedEvent {
        let id = message
            .message_id()
            .map(String::from)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = message.body().unwrap_or_default();
        let json = serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok();
        let mut attrs = Map::new();
        attrs.insert("specversion".into(), "1.0".into());
        attrs.insert("id".into(), id.clone().into());
        attrs.insert("source".into(), self.queue_url.clone().into());
        attrs.insert("type".into(), "aws.sqs.message".into());
        attrs.insert(
            "datacontenttype".into(),
            Value::from(if json {
                "application/json"
            } else {
                "text/plain"
            }),
        );
        EncodedEvent {
            id,
            attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
            data: Some(Data {
                kind: if json { DataKind::Json } else { DataKind::Text },
                bytes: Bytes::from(body.to_string()),
            }),
        }
    }
}

/// Consumes the queue until `shutdown`.
pub async fn run(
    connector: Arc<SqsConnector>,
    mut redis: ConnectionManager,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let c = connector;
    info!(connector = %c.name, queue = %c.queue_url, bus = %c.bus.name, "SQS connector started");
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let received = tokio::select! {
            r = c.client
                .receive_message()
                .queue_url(&c.queue_url)
                .max_number_of_messages(c.max_messages)
                .wait_time_seconds(c.wait.as_secs() as i32)
                .send() => r,
            _ = shutdown.cancelled() => break,
        };
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                failures += 1;
                warn!(connector = %c.name, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "SQS receive failed; retrying");
                pause(failures, &shutdown).await;
                continue;
            }
        };
        if messages.is_empty() {
            failures = 0;
            continue;
        }
        let events: Vec<Option<EncodedEvent>> = messages.iter().map(|m| c.event(m)).collect();
        let appended = append(&c, &mut redis, &events).await;
        match appended {
            Ok(n) => {
                failures = 0;
                if n > 0 {
                    metrics.ingested(&c.bus.name, Via::Sqs, n);
                }
                debug!(connector = %c.name, received = messages.len(), appended = n, "SQS messages appended");
                // Acknowledged by Redis: now they may leave the queue. Runs while the
                // next receive waits.
                tokio::spawn(delete(c.clone(), messages));
            }
            Err(e) => {
                // Not deleted: they return after the visibility timeout.
                failures += 1;
                warn!(connector = %c.name, error = %e, "appending SQS messages failed; they stay in the queue");
                pause(failures, &shutdown).await;
            }
        }
    }
    info!(connector = %c.name, "SQS connector stopped");
}

async fn pause(failures: u32, shutdown: &CancellationToken) {
    let wait = Duration::from_millis(200 * 2u64.pow(failures.min(6)));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Appends the events (deduplicated on id within the window); returns how many were new.
async fn append(
    c: &SqsConnector,
    redis: &mut ConnectionManager,
    events: &[Option<EncodedEvent>],
) -> Result<usize, bus::BusError> {
    let events: Vec<&EncodedEvent> = events.iter().flatten().collect();
    if events.is_empty() {
        return Ok(0);
    }
    match c.dedupe {
        Some(window) => {
            let keyed: Vec<_> = events
                .iter()
                .map(|e| (&c.bus, *e, bus::dedupe_key(&c.bus.name, "@aws", &e.id)))
                .collect();
            let appended = bus::append_once_each(redis, &keyed, window, "sqs").await?;
            Ok(appended.into_iter().filter(|a| *a).count())
        }
        None => bus::append_to(redis, events.iter().map(|e| (&c.bus, *e)), "sqs")
            .await
            .map(|()| events.len()),
    }
}

async fn delete(c: Arc<SqsConnector>, messages: Vec<Message>) {
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .set_receipt_handle(m.receipt_handle.clone())
                .build()
                .ok()
        })
        .collect();
    let result = c
        .client
        .delete_message_batch()
        .queue_url(&c.queue_url)
        .set_entries(Some(entries))
        .send()
        .await;
    match result {
        Ok(out) if out.failed().is_empty() => {}
        Ok(out) => {
            warn!(connector = %c.name, failed = out.failed().len(), "some SQS messages were not deleted; they will be received again and deduplicated")
        }
        Err(e) => {
            warn!(connector = %c.name, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting SQS messages failed; they will be received again and deduplicated")
        }
    }
}
