//! The NATS target: events published to a subject, by the CloudEvents NATS binding
//! (docs/connectors/nats.md).
//!
//! `jetstream: true` (the default): a JetStream publish whose `PubAck` is awaited; the
//! delivery succeeds only once the stream stored the message. `Nats-Msg-Id` is the event
//! id, so a redelivery within the stream's duplicate window is stored once. `false`: a
//! core publish followed by a flush (the server has the message; subscribers that are
//! not connected never see it: at-most-once to the subscribers present).
//!
//! Binary mode (default): attributes as `ce-*` headers, `datacontenttype` as
//! `Content-Type`, the data bytes as the payload. Structured mode: the event in the JSON
//! format, `Content-Type: application/cloudevents+json; charset=utf-8`. With a transform
//! the payload is its result and the attributes still travel as headers.
//!
//! The connection is made on the first delivery (not when the plan is built); after that
//! async-nats reconnects by itself, and an attempt made meanwhile fails as retryable
//! when the target's `timeout` passes.

use std::time::Duration;

use async_nats::jetstream;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{Delivered, DeliveryError, Message, MessageMode};
use crate::config::Errors;
use crate::connectors::nats::{display_url, valid_subject, valid_url};
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: nats`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsTargetConfig {
    /// The server: `nats://host:port` (`tls://` for TLS); user and password may be in
    /// the URL.
    pub url: String,
    /// The subject published to; `{attribute}` parts are filled from the event
    /// (`events.{type}`).
    #[serde(default)]
    pub subject: Option<String>,
    /// Publish to JetStream and await the PubAck (default `true`), or core NATS.
    #[serde(default)]
    pub jetstream: Option<bool>,
    /// `binary` (default) or `structured`.
    #[serde(default)]
    pub mode: Option<MessageMode>,
}

/// One part of a subject template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Attr(String),
}

/// A checked `nats` target.
#[derive(Debug)]
pub struct NatsSpec {
    url: String,
    subject: Vec<Part>,
    jetstream: bool,
    mode: MessageMode,
    transform: Option<Transform>,
}

/// Splits `events.{type}` into text and attribute parts; None when a brace is unmatched
/// or an attribute name is not one (lower-case letters and digits).
fn template(s: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let (text, after) = rest.split_at(open);
        if text.contains('}') {
            return None;
        }
        if !text.is_empty() {
            parts.push(Part::Text(text.to_string()));
        }
        let close = after.find('}')?;
        let name = &after[1..close];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return None;
        }
        parts.push(Part::Attr(name.to_string()));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return None;
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Some(parts)
}

impl NatsTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<NatsSpec> {
        let before = errors.len();
        if !valid_url(&self.url) {
            errors.at(
                format!("{at}.url"),
                "must be a NATS server URL, e.g. nats://127.0.0.1:4222 (tls:// for TLS)",
            );
        }
        let subject = match &self.subject {
            None => {
                errors.at(
                    format!("{at}.subject"),
                    "required: the subject published to",
                );
                None
            }
            Some(s) => match template(s) {
                // Checked with every attribute part as one token.
                Some(parts)
                    if valid_subject(
                        &parts
                            .iter()
                            .map(|p| match p {
                                Part::Text(t) => t.as_str(),
                                Part::Attr(_) => "x",
                            })
                            .collect::<String>(),
                        false,
                    ) =>
                {
                    Some(parts)
                }
                _ => {
                    errors.at(
                        format!("{at}.subject"),
                        "must be a NATS subject without wildcards (dot-separated tokens, no spaces), `{attribute}` parts allowed, e.g. events.{type}",
                    );
                    None
                }
            },
        };
        if errors.len() > before {
            return None;
        }
        Some(NatsSpec {
            url: self.url.clone(),
            subject: subject?,
            jetstream: self.jetstream.unwrap_or(true),
            mode: self.mode.unwrap_or_default(),
            transform,
        })
    }
}

/// A started `nats` target.
#[derive(Debug)]
pub struct NatsTarget {
    spec: NatsSpec,
    timeout: Duration,
    gateway_id: String,
    /// Made on the first delivery; async-nats keeps it connected from then on.
    /// Boxed: the client and context are large, and `Target` holds every kind inline.
    connection: OnceCell<Box<(async_nats::Client, jetstream::Context)>>,
}

impl NatsTarget {
    pub fn new(
        spec: NatsSpec,
        timeout: Duration,
        _concurrency: usize,
        gateway_id: &str,
    ) -> anyhow::Result<NatsTarget> {
        Ok(NatsTarget {
            spec,
            timeout,
            gateway_id: gateway_id.to_string(),
            connection: OnceCell::new(),
        })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.spec.transform.as_ref()
    }

    async fn connection(&self) -> Result<&(async_nats::Client, jetstream::Context), DeliveryError> {
        self.connection
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .name(format!("sluice {} target", self.gateway_id))
                    .connection_timeout(self.timeout)
                    .connect(self.spec.url.as_str())
                    .await
                    .map_err(|e| DeliveryError::Failed {
                        message: format!("connecting to {}: {e}", display_url(&self.spec.url)),
                        retryable: true,
                    })?;
                let js = jetstream::ContextBuilder::new()
                    .timeout(self.timeout)
                    .build(client.clone());
                Ok(Box::new((client, js)))
            })
            .await
            .map(|boxed| &**boxed)
    }

    /// The subject for `event`: the template filled from its attributes.
    fn subject(&self, event: &Event) -> Result<String, DeliveryError> {
        let mut out = String::new();
        for part in &self.spec.subject {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Attr(name) => match event.attrs.get(name) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(v) if !v.is_null() => out.push_str(&v.to_string()),
                    _ => {
                        return Err(DeliveryError::Invalid(format!(
                            "the subject needs attribute {name}, which the event lacks"
                        )))
                    }
                },
            }
        }
        if !valid_subject(&out, false) {
            return Err(DeliveryError::Invalid(format!(
                "{out:?} is not a NATS subject to publish to"
            )));
        }
        Ok(out)
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let subject = self.subject(event)?;
        let payload = crate::targets::function::transformed(self.transform(), event, ctx);
        let stamped = Message::stamped(event, &self.gateway_id);
        let message = Message::of(&stamped, self.spec.mode, payload);
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &message.attributes {
            if value.contains(['\r', '\n']) {
                return Err(DeliveryError::Invalid(format!(
                    "attribute {name} holds a line break, which a NATS header cannot carry"
                )));
            }
            headers.insert(format!("ce-{name}").as_str(), value.as_ref());
        }
        if let Some(ct) = &message.content_type {
            headers.insert("Content-Type", ct.as_ref());
        }
        let attempt = async {
            let (client, js) = self.connection().await?;
            if self.spec.jetstream {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(message.body.clone())
                    .headers(headers)
                    .message_id(event.id());
                let ack = js
                    .send_publish(subject.clone(), publish)
                    .await
                    .map_err(publish_error)?;
                ack.await.map_err(|e| DeliveryError::Failed {
                    message: format!("JetStream did not confirm the publish to {subject}: {e}"),
                    retryable: true,
                })?;
            } else {
                client
                    .publish_with_headers(subject.clone(), headers, message.body.clone())
                    .await
                    .map_err(|e| DeliveryError::Failed {
                        message: format!("publishing to {subject}: {e}"),
                        retryable: !matches!(
                            e.kind(),
                            async_nats::client::PublishErrorKind::MaxPayloadExceeded
                        ),
                    })?;
                client.flush().await.map_err(|e| DeliveryError::Failed {
                    message: format!("flushing the publish to {subject}: {e}"),
                    retryable: true,
                })?;
            }
            Ok::<_, DeliveryError>(())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result.map(|()| Delivered::default()),
            Err(_) => Err(DeliveryError::Timeout(self.timeout)),
        }
    }
}

fn publish_error(e: jetstream::context::PublishError) -> DeliveryError {
    use jetstream::context::PublishErrorKind;
    let retryable = !matches!(e.kind(), PublishErrorKind::MaxPayloadExceeded);
    DeliveryError::Failed {
        message: format!("JetStream publish failed: {e}"),
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_templates() {
        assert_eq!(
            template("events.{type}.x"),
            Some(vec![
                Part::Text("events.".into()),
                Part::Attr("type".into()),
                Part::Text(".x".into())
            ])
        );
        assert_eq!(template("a.b"), Some(vec![Part::Text("a.b".into())]));
        assert_eq!(template("a.{b"), None);
        assert_eq!(template("a.}b"), None);
        assert_eq!(template("a.{B}"), None);
    }
}
