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
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::config::value::{opt_duration, Endpoint, PeerId};
use crate::config::Errors;
use crate::event::{Data, DataKind, EncodedEvent};
use crate::sources::envelope::{self, Mapped};

/// `kind: sqs`: the queue and how it is polled.
#[derive(Debug, Clone, Deserialize)]
pub struct SqsConfig {
    /// The queue URL.
    pub queue_url: String,
    /// The region (default from the AWS environment).
    #[serde(default)]
    pub region: Option<String>,
    /// The endpoint, overriding the region's (`http://` for loopback only).
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// The id of the cloud bus the queue is fed from, written first in the trace of
    /// events that carry none (loop prevention, docs/bridges.md).
    #[serde(default)]
    pub peer: Option<PeerId>,
    /// Long-polling wait of one receive (at most 20s). Default 20s.
    #[serde(default, deserialize_with = "opt_duration")]
    pub wait: Option<Duration>,
    /// Messages per receive (1 to 10). Default 10.
    #[serde(default)]
    pub max_messages: Option<i32>,
}

impl SqsConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        match url::Url::parse(&self.queue_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => errors.at(
                format!("{at}.queue_url"),
                "must be the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/events",
            ),
        }
        if let Some(endpoint) = &self.endpoint {
            if endpoint.check().is_err() {
                errors.at(
                    format!("{at}.endpoint"),
                    "must be an https:// URL (http:// only for loopback addresses)",
                );
            }
        }
        if let Some(peer) = &self.peer {
            errors.check(format!("{at}.peer"), peer.check());
        }
        if self.wait.is_some_and(|w| w > Duration::from_secs(20)) {
            errors.at(format!("{at}.wait"), "must be at most 20s (the SQS limit)");
        }
        if self.max_messages.is_some_and(|m| !(1..=10).contains(&m)) {
            errors.at(
                format!("{at}.max_messages"),
                "must be 1 to 10 (the SQS limit)",
            );
        }
    }
}

/// One configured SQS connector, ready to run.
pub struct SqsConnector {
    pub queue_url: String,
    pub peer: Option<String>,
    pub wait: Duration,
    pub max_messages: i32,
    intake: Mutex<Intake>,
    client: aws_sdk_sqs::Client,
}

impl SqsConnector {
    pub fn new(
        config: &SqsConfig,
        sdk: &aws_config::SdkConfig,
        intake: Intake,
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
            queue_url: config.queue_url.clone(),
            peer: config.peer.as_ref().map(|p| p.0.clone()),
            wait,
            max_messages: config.max_messages.unwrap_or(10),
            intake: Mutex::new(intake),
            client: aws_sdk_sqs::Client::from_conf(builder.build()),
        })
    }

    /// The event of one message, or `None` for one that returned to this gateway.
    fn event(&self, message: &Message, gateway_id: &str) -> Option<EncodedEvent> {
        let body = message.body().unwrap_or_default();
        match envelope::map(body.as_bytes(), gateway_id, self.peer.as_deref()) {
            Ok(Mapped::Event(event)) => Some(event),
            Ok(Mapped::Returned { id }) => {
                debug!(id, "dropped an event that was on this gateway before");
                None
            }
            Err(reason) => {
                warn!(message_id = message.message_id().unwrap_or_default(), %reason, "SQS message is no EventBridge event; appended as aws.sqs.message");
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
pub async fn run(connector: Arc<SqsConnector>, shutdown: CancellationToken) {
    let c = connector;
    info!(queue = %c.queue_url, "SQS connector started");
    let mut failures = 0u32;
    let mut intake = c.intake.lock().await;
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
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "SQS receive failed; retrying");
                super::pause(failures, &shutdown).await;
                continue;
            }
        };
        if messages.is_empty() {
            failures = 0;
            continue;
        }
        let mapped: Vec<Option<EncodedEvent>> = messages
            .iter()
            .map(|m| c.event(m, intake.gateway_id()))
            .collect();
        let returned = mapped.iter().filter(|e| e.is_none()).count();
        let events: Vec<EncodedEvent> = mapped.into_iter().flatten().collect();
        match intake.append_arrived(events, returned).await {
            Ok(done) => {
                failures = 0;
                debug!(
                    received = messages.len(),
                    appended = done.appended,
                    "SQS messages appended"
                );
                // Acknowledged by Redis: now they may leave the queue. Runs while the
                // next receive waits.
                tokio::spawn(delete(c.clone(), messages));
            }
            Err(e) => {
                // Not deleted: they return after the visibility timeout.
                failures += 1;
                warn!(error = %e, "appending SQS messages failed; they stay in the queue");
                super::pause(failures, &shutdown).await;
            }
        }
    }
    info!("SQS connector stopped");
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
            warn!(
                failed = out.failed().len(),
                "some SQS messages were not deleted; they will be received again and deduplicated"
            )
        }
        Err(e) => {
            warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "deleting SQS messages failed; they will be received again and deduplicated")
        }
    }
}
