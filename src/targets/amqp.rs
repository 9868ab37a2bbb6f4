//! The RabbitMQ target: publishes each event to an exchange over AMQP 0-9-1, with
//! publisher confirms (docs/connectors/rabbitmq.md).
//!
//! One connection and one confirm-mode channel per target and replica, opened on the
//! first delivery and again after an error; concurrent deliveries publish on the same
//! channel and each waits for its own confirm. A delivery succeeds only when the broker
//! acknowledged the message (`basic.ack` of the confirm), which for a durable queue
//! means it is stored; then the dispatcher acknowledges the event. A `basic.nack`, a
//! message returned as unroutable (`mandatory`, the default), a lost connection or a
//! timeout is a retryable failure: the target's retry policy and DLQ apply.
//!
//! The message is the CloudEvents AMQP binding: binary mode (default) puts the
//! attributes in `cloudEvents:*` headers and `datacontenttype` in `content-type`, the
//! data bytes as the body; structured mode sends the event in the JSON format with
//! `content-type: application/cloudevents+json`. Messages are persistent
//! (`delivery-mode` 2) and carry the event id as `message-id`.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::{info, warn};

use super::{Delivered, DeliveryError, Message, MessageMode};
use crate::config::value::SecretRef;
use crate::config::Errors;
use crate::connectors::amqp::{broker_name, broker_url};
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// How long connecting (TCP, TLS, AMQP handshake, channel, confirm.select) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `kind: rabbitmq`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpTargetConfig {
    /// The broker: `amqp://user:pass@host:5672/vhost` or `amqps://`; `env:NAME` or
    /// `file:PATH` to keep the password out of the file.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// The exchange to publish to. Default `""` (the default exchange: the routing key
    /// names the queue).
    #[serde(default)]
    pub exchange: Option<String>,
    /// The routing key of every message. Default: the event's `type`.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// `binary` (default) or `structured`.
    #[serde(default)]
    pub mode: MessageMode,
    /// Publish with `mandatory`, so that a message no queue takes is returned and the
    /// delivery fails (retried, then the DLQ) instead of being dropped. Default true.
    #[serde(default)]
    pub mandatory: Option<bool>,
}

/// A checked `rabbitmq` target.
pub struct AmqpSpec {
    url: String,
    broker: String,
    exchange: String,
    routing_key: Option<String>,
    mode: MessageMode,
    mandatory: bool,
    transform: Option<Transform>,
}

impl std::fmt::Debug for AmqpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold the password.
        f.debug_struct("AmqpSpec")
            .field("broker", &self.broker)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("mode", &self.mode)
            .field("mandatory", &self.mandatory)
            .finish_non_exhaustive()
    }
}

impl AmqpTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<AmqpSpec> {
        let before = errors.len();
        let url = match &self.url {
            None => {
                errors.at(format!("{at}.url"), "a rabbitmq target needs a url");
                None
            }
            Some(u) => match broker_url(u) {
                Ok(url) => Some(url),
                Err(e) => {
                    errors.at(format!("{at}.url"), e);
                    None
                }
            },
        };
        let exchange = self.exchange.clone().unwrap_or_default();
        if exchange.len() > 255 {
            errors.at(format!("{at}.exchange"), "must be at most 255 bytes (AMQP)");
        }
        match self.routing_key.as_deref() {
            Some(k) if k.len() > 255 => errors.at(
                format!("{at}.routing_key"),
                "must be at most 255 bytes (AMQP)",
            ),
            _ => {}
        }
        if errors.len() > before {
            return None;
        }
        let url = url?;
        Some(AmqpSpec {
            broker: broker_name(&url),
            url,
            exchange,
            routing_key: self.routing_key.clone(),
            mode: self.mode,
            mandatory: self.mandatory.unwrap_or(true),
            transform,
        })
    }
}

/// The open connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    channel: Channel,
    /// Which link this is (a failed delivery closes only the link it used).
    generation: u64,
}

/// A started `rabbitmq` target.
pub struct AmqpTarget {
    spec: Box<AmqpSpec>,
    timeout: Duration,
    gateway_id: String,
    /// Opened on the first delivery and after a failure. Held across the connect only,
    /// so concurrent deliveries wait for one connect instead of each opening its own.
    link: Mutex<Option<Box<Link>>>,
    generations: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AmqpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpTarget")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl AmqpTarget {
    pub fn new(
        spec: AmqpSpec,
        timeout: Duration,
        _concurrency: usize,
        gateway_id: &str,
    ) -> anyhow::Result<AmqpTarget> {
        Ok(AmqpTarget {
            spec: Box::new(spec),
            timeout,
            gateway_id: gateway_id.to_string(),
            link: Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.spec.transform.as_ref()
    }

    /// The channel to publish on, connecting first if there is none.
    async fn channel(&self) -> Result<(Channel, u64), DeliveryError> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref() {
            if l.channel.status().connected() && l.connection.status().connected() {
                return Ok((l.channel.clone(), l.generation));
            }
        }
        if let Some(old) = link.take() {
            tokio::spawn(async move {
                let _ = old.connection.close(320, "reconnecting".into()).await;
            });
        }
        let open = async {
            let connection = Connection::connect(
                &self.spec.url,
                ConnectionProperties::default().with_connection_name("sluice target".into()),
            )
            .await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            lapin::Result::Ok((connection, channel))
        };
        let (connection, channel) = match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(Ok(open)) => open,
            Ok(Err(e)) => {
                return Err(DeliveryError::Failed {
                    message: format!("connecting to RabbitMQ at {} failed: {e}", self.spec.broker),
                    retryable: true,
                })
            }
            Err(_) => return Err(DeliveryError::Timeout(CONNECT_TIMEOUT)),
        };
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        info!(broker = %self.spec.broker, "connected to RabbitMQ");
        *link = Some(Box::new(Link {
            connection,
            channel: channel.clone(),
            generation,
        }));
        Ok((channel, generation))
    }

    /// Closes link `generation` after it failed (not a newer one another delivery
    /// opened meanwhile); the next delivery connects again.
    async fn drop_link(&self, generation: u64) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.generation == generation) {
            let old = link.take().expect("checked");
            tokio::spawn(async move {
                let _ = old.connection.close(320, "reconnecting".into()).await;
            });
        }
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let stamped = Message::stamped(event, &self.gateway_id);
        let payload = super::function::transformed(self.transform(), event, ctx);
        let message = Message::of(&stamped, self.spec.mode, payload);
        let routing_key = match &self.spec.routing_key {
            Some(k) => k.as_str(),
            None => event.attr_str("type").unwrap_or_default(),
        };
        let routing_key = ShortString::try_new(routing_key).map_err(|_| {
            DeliveryError::Invalid(
                "the routing key (the event's type) is longer than 255 bytes".into(),
            )
        })?;
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(ct) = &message.content_type {
            let ct = ShortString::try_new(ct.as_ref()).map_err(|_| {
                DeliveryError::Invalid("the content type is longer than 255 bytes".into())
            })?;
            properties = properties.with_content_type(ct);
        }
        if let Ok(id) = ShortString::try_new(event.id()) {
            properties = properties.with_message_id(id);
        }
        if !message.attributes.is_empty() {
            let mut headers = FieldTable::default();
            for (name, value) in &message.attributes {
                headers.insert(
                    format!("cloudEvents:{name}").into(),
                    AMQPValue::LongString(value.as_bytes().into()),
                );
            }
            properties = properties.with_headers(headers);
        }

        // Bounded too: while one delivery connects, the others wait for it here.
        let (channel, generation) = match tokio::time::timeout(self.timeout, self.channel()).await {
            Ok(open) => open?,
            Err(_) => return Err(DeliveryError::Timeout(self.timeout)),
        };
        let publish = async {
            channel
                .basic_publish(
                    self.spec.exchange.as_str().into(),
                    routing_key,
                    BasicPublishOptions {
                        mandatory: self.spec.mandatory,
                        ..BasicPublishOptions::default()
                    },
                    &message.body,
                    properties,
                )
                .await?
                .await
        };
        let failed = |message: String| DeliveryError::Failed {
            message,
            retryable: true,
        };
        match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(Delivered::default()),
            Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(failed(format!(
                "RabbitMQ returned the message as unroutable ({} {}): no queue is bound to exchange {:?} for routing key {:?}",
                returned.reply_code, returned.reply_text, self.spec.exchange, returned.delivery.routing_key.as_str()
            ))),
            Ok(Ok(Confirmation::Nack(_))) => {
                Err(failed("RabbitMQ refused the message (basic.nack)".into()))
            }
            Ok(Ok(Confirmation::NotRequested)) => {
                // Cannot happen on a confirm-mode channel; never count it as stored.
                self.drop_link(generation).await;
                Err(failed("RabbitMQ did not confirm the message".into()))
            }
            Ok(Err(e)) => {
                warn!(broker = %self.spec.broker, error = %e, "publishing to RabbitMQ failed; reconnecting");
                self.drop_link(generation).await;
                Err(failed(format!("publishing to RabbitMQ failed: {e}")))
            }
            Err(_) => {
                self.drop_link(generation).await;
                Err(DeliveryError::Timeout(self.timeout))
            }
        }
    }
}
