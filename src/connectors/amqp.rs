//! The RabbitMQ connector: consumes a queue over AMQP 0-9-1 and appends what arrives to
//! a bus (docs/connectors/rabbitmq.md).
//!
//! One connection and one channel per connector and replica, with `basic.qos(prefetch)`:
//! the broker never has more than `prefetch` unacknowledged messages out to us, so
//! nothing is buffered without bound. The loop takes what arrived (up to `prefetch`, or
//! what comes within a few milliseconds of the first message), appends it in one
//! [`Intake::append`], and only once Redis acknowledged the append acknowledges the
//! batch upstream with one `basic.ack(multiple)`. A crash before that leaves the
//! messages unacknowledged: the broker redelivers them (to this or another replica, as
//! competing consumers share a queue) and the dedupe window keeps what did get in from
//! being appended twice.
//!
//! The CloudEvents AMQP binding: a message whose `content-type` is
//! `application/cloudevents+json` is a structured-mode event; one with a
//! `cloudEvents:specversion` header (or the JMS-compatible `cloudEvents_specversion`)
//! is a binary-mode event, its attributes in `cloudEvents:*` headers and its
//! `content-type` the `datacontenttype`. Any other message becomes an event of type
//! `sluice.rabbitmq.message` (see [`plain_event`]). A message that claims to be an
//! event but is not a valid one is rejected without requeue (the queue's dead-letter
//! exchange, if any, gets it) and counted as invalid.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::config::value::SecretRef;
use crate::config::Errors;
use crate::event::cloudevents;
use crate::event::{is_json_media_type, is_text_media_type, Data, DataKind, EncodedEvent};

/// How long the loop waits for more messages after the first of a batch.
const LINGER: Duration = Duration::from_millis(5);
/// How long connecting (TCP, TLS, AMQP handshake, channel, qos, consume) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The `type` of events made from messages that are not CloudEvents.
pub const PLAIN_TYPE: &str = "sluice.rabbitmq.message";

/// `kind: rabbitmq`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSourceConfig {
    /// The broker: `amqp://user:pass@host:5672/vhost` or `amqps://`; `env:NAME` or
    /// `file:PATH` to keep the password out of the file.
    pub url: SecretRef,
    /// The queue to consume.
    #[serde(default)]
    pub queue: Option<String>,
    /// Unacknowledged messages the broker may send ahead (`basic.qos`), which is also
    /// the largest batch appended at once. Default 100.
    #[serde(default)]
    pub prefetch: Option<u16>,
    /// Declare the queue (durable, not exclusive, no auto-delete) if it does not exist.
    /// Default false: the queue must exist.
    #[serde(default)]
    pub declare: bool,
}

impl AmqpSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        if let Err(e) = broker_url(&self.url) {
            errors.at(format!("{at}.url"), e);
        }
        match self.queue.as_deref() {
            None | Some("") => {
                errors.at(format!("{at}.queue"), "a rabbitmq connector needs a queue")
            }
            Some(q) if q.len() > 255 => {
                errors.at(format!("{at}.queue"), "must be at most 255 bytes (AMQP)")
            }
            Some(_) => {}
        }
        if self.prefetch == Some(0) {
            errors.at(format!("{at}.prefetch"), "must be 1 to 65535");
        }
    }

    fn prefetch(&self) -> u16 {
        self.prefetch.unwrap_or(100)
    }
}

/// The broker URL of `url` (resolved), checked: an `amqp://` or `amqps://` URI.
pub fn broker_url(url: &SecretRef) -> Result<String, String> {
    let resolved = url.resolve()?;
    let text = String::from_utf8(resolved.0).map_err(|_| "must be UTF-8".to_string())?;
    if !(text.starts_with("amqp://") || text.starts_with("amqps://")) {
        return Err(
            "must be an amqp:// or amqps:// URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f".into(),
        );
    }
    text.parse::<lapin::uri::AMQPUri>()
        .map_err(|e| format!("not a valid AMQP URL: {e}"))?;
    Ok(text)
}

/// The broker a URL names, without its credentials or query: `amqp://host:port/vhost`
/// (the vhost percent-encoded, `%2F` for the default `/`).
pub fn broker_name(url: &str) -> String {
    match url.parse::<lapin::uri::AMQPUri>() {
        Ok(u) => {
            let scheme = match u.scheme {
                lapin::uri::AMQPScheme::AMQP => "amqp",
                lapin::uri::AMQPScheme::AMQPS => "amqps",
            };
            format!(
                "{scheme}://{}:{}/{}",
                u.authority.host,
                u.authority.port,
                encode(&u.vhost)
            )
        }
        Err(_) => "amqp://unknown".into(),
    }
}

/// What a URI path segment keeps as it is: RFC 3986 unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// What a message is.
#[derive(Debug)]
pub enum Received {
    Event(EncodedEvent),
    /// It claims to be a CloudEvent (structured content type or a `specversion`
    /// header) but is not a valid one.
    Invalid(String),
}

/// The event of one message (`source`: the URI naming broker and queue, for messages
/// that are not CloudEvents).
pub fn event_of(properties: &BasicProperties, body: Vec<u8>, source: &str) -> Received {
    let content_type = properties.content_type().as_ref().map(|c| c.as_str());
    let body = Bytes::from(body);
    if content_type.is_some_and(crate::event::cloudevents::is_structured) {
        return match cloudevents::parse_structured(&body) {
            Ok(e) => Received::Event(e),
            Err(e) => Received::Invalid(describe(e)),
        };
    }
    let mut attrs: Vec<(&str, Cow<str>)> = Vec::new();
    if let Some(headers) = properties.headers() {
        for (name, value) in headers.inner() {
            let name = name.as_str();
            let Some(bare) = name
                .strip_prefix("cloudEvents:")
                .or_else(|| name.strip_prefix("cloudEvents_"))
            else {
                continue;
            };
            match text_of(value) {
                Some(text) => attrs.push((bare, text)),
                None => {
                    return Received::Invalid(format!(
                        "header {name}: an attribute must be a string, number, boolean or timestamp"
                    ))
                }
            }
        }
    }
    if attrs.iter().any(|(n, _)| *n == "specversion") {
        return match cloudevents::parse_attributes(attrs, content_type, body) {
            Ok(e) => Received::Event(e),
            Err(e) => Received::Invalid(describe(e)),
        };
    }
    Received::Event(plain_event(properties, body, source))
}

fn describe(e: cloudevents::FieldError) -> String {
    if e.field.is_empty() {
        e.message
    } else {
        format!("{}: {}", e.field, e.message)
    }
}

/// An attribute header's value as text: strings as they are, numbers and booleans as
/// their text, an AMQP timestamp (seconds) as RFC 3339.
fn text_of(value: &AMQPValue) -> Option<Cow<'_, str>> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()),
        AMQPValue::ShortString(s) => Cow::Borrowed(s.as_str()),
        AMQPValue::Boolean(b) => Cow::Owned(b.to_string()),
        AMQPValue::ShortShortInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::ShortShortUInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::ShortInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::ShortUInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::LongInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::LongUInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::LongLongInt(n) => Cow::Owned(n.to_string()),
        AMQPValue::Timestamp(t) => Cow::Owned(
            chrono::DateTime::from_timestamp(i64::try_from(*t).ok()?, 0)?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        AMQPValue::ByteArray(b) => Cow::Owned(String::from_utf8(b.as_slice().to_vec()).ok()?),
        _ => return None,
    })
}

/// The event of a message that is not a CloudEvent: `id` the `message-id` property
/// (else a new UUID), `source` the broker and queue, `type` `sluice.rabbitmq.message`,
/// `datacontenttype` the `content-type` property (else `application/json` when the body
/// parses as JSON, else `application/octet-stream`), the body as data.
pub fn plain_event(properties: &BasicProperties, body: Bytes, source: &str) -> EncodedEvent {
    let id = properties
        .message_id()
        .as_ref()
        .map(|m| m.as_str().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let parses = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    let content_type = match properties.content_type() {
        Some(ct) if !ct.as_str().is_empty() => ct.as_str().to_string(),
        _ if parses && !body.is_empty() => "application/json".into(),
        _ => "application/octet-stream".into(),
    };
    let kind = if is_json_media_type(&content_type) && parses {
        DataKind::Json
    } else if is_text_media_type(&content_type) && std::str::from_utf8(&body).is_ok() {
        DataKind::Text
    } else {
        DataKind::Binary
    };
    let mut attrs = Map::new();
    attrs.insert("specversion".into(), "1.0".into());
    attrs.insert("id".into(), id.clone().into());
    attrs.insert("source".into(), source.into());
    attrs.insert("type".into(), PLAIN_TYPE.into());
    attrs.insert("datacontenttype".into(), Value::from(content_type));
    EncodedEvent {
        id,
        attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
        data: (!body.is_empty()).then_some(Data { kind, bytes: body }),
    }
}

/// Consumes until `shutdown`, reconnecting with [`super::pause`] after the broker or
/// the connection went away.
pub async fn run(config: AmqpSourceConfig, mut intake: Intake, shutdown: CancellationToken) {
    let url = match broker_url(&config.url) {
        Ok(url) => url,
        Err(e) => {
            warn!(error = %e, "rabbitmq connector has no usable url; not started");
            return;
        }
    };
    let queue = config.queue.clone().unwrap_or_default();
    let source = format!("{}/{}", broker_name(&url), encode(&queue));
    info!(broker = %broker_name(&url), queue = %queue, "rabbitmq connector started");
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let opened = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, open(&url, &config, intake.name())) => r,
            _ = shutdown.cancelled() => break,
        };
        let (connection, channel, consumer) = match opened {
            Ok(Ok(open)) => open,
            Ok(Err(e)) => {
                failures += 1;
                warn!(error = %e, failures, "connecting to RabbitMQ failed; retrying");
                super::pause(failures, &shutdown).await;
                continue;
            }
            Err(_) => {
                failures += 1;
                warn!(failures, "connecting to RabbitMQ timed out; retrying");
                super::pause(failures, &shutdown).await;
                continue;
            }
        };
        info!(queue = %queue, "consuming");
        match consume(&channel, consumer, &config, &source, &mut intake, &shutdown).await {
            Ok(()) => {
                // Shutdown: unacknowledged messages go back to the queue on close.
                let _ = connection.close(200, "shutdown".into()).await;
                break;
            }
            Err(Lost { error, consumed }) => {
                if consumed {
                    failures = 0;
                }
                failures += 1;
                warn!(error = %error, "RabbitMQ consumer lost; reconnecting (unacknowledged messages are redelivered)");
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(320, "reconnecting".into()),
                )
                .await;
                super::pause(failures, &shutdown).await;
            }
        }
    }
    info!("rabbitmq connector stopped");
}

/// Connects, opens the channel, sets the prefetch and starts consuming.
async fn open(
    url: &str,
    config: &AmqpSourceConfig,
    name: &str,
) -> lapin::Result<(Connection, Channel, lapin::Consumer)> {
    let properties =
        ConnectionProperties::default().with_connection_name(format!("sluice {name}").into());
    let connection = Connection::connect(url, properties).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.prefetch(), BasicQosOptions::default())
        .await?;
    let queue = config.queue.as_deref().unwrap_or_default();
    if config.declare {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
    }
    let tag = format!(
        "sluice-{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let consumer = channel
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((connection, channel, consumer))
}

/// Why consuming stopped (other than shutdown).
struct Lost {
    error: String,
    /// Whether at least one batch went through first (the failure count starts over).
    consumed: bool,
}

/// Takes batches off `consumer` until shutdown (`Ok`) or the channel is lost.
async fn consume(
    channel: &Channel,
    mut consumer: lapin::Consumer,
    config: &AmqpSourceConfig,
    source: &str,
    intake: &mut Intake,
    shutdown: &CancellationToken,
) -> Result<(), Lost> {
    let max = usize::from(config.prefetch());
    let mut consumed = false;
    let lost = |error: String, consumed: bool| Lost { error, consumed };
    loop {
        let first = tokio::select! {
            d = consumer.next() => d,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let mut batch = match first {
            Some(Ok(d)) => vec![d],
            Some(Err(e)) => return Err(lost(e.to_string(), consumed)),
            None => return Err(lost("the broker cancelled the consumer".into(), consumed)),
        };
        // What else arrived, up to the prefetch, waiting at most LINGER for it.
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut ended = None;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Ok(Some(Ok(d))) => batch.push(d),
                Ok(Some(Err(e))) => {
                    ended = Some(e.to_string());
                    break;
                }
                Ok(None) => {
                    ended = Some("the broker cancelled the consumer".into());
                    break;
                }
                Err(_) => break,
            }
        }
        if let Some(error) = ended {
            // The channel is gone: nothing of this batch can be acknowledged any more,
            // so it is not appended either; the broker redelivers all of it.
            return Err(lost(error, consumed));
        }

        let mut events = Vec::with_capacity(batch.len());
        let mut last_event_tag = None;
        let mut invalid = Vec::new();
        for delivery in batch {
            let tag = delivery.delivery_tag;
            match event_of(&delivery.properties, delivery.data, source) {
                Received::Event(e) => {
                    events.push(e);
                    last_event_tag = Some(tag);
                }
                Received::Invalid(reason) => {
                    warn!(delivery_tag = tag, %reason, "message is no valid CloudEvent; rejected without requeue (dead-lettered if the queue has a dead-letter exchange)");
                    invalid.push(tag);
                }
            }
        }
        let count = events.len();
        let done = match intake.append(events).await {
            Ok(done) => done,
            Err(e) => {
                // Not acknowledged: closing the channel gives the messages back.
                return Err(lost(format!("appending to the bus failed: {e}"), consumed));
            }
        };
        debug!(
            received = count + invalid.len(),
            appended = done.appended,
            duplicates = done.duplicates,
            returned = done.returned,
            "RabbitMQ messages appended"
        );
        // Rejected first: the multiple ack below would otherwise acknowledge them.
        if !invalid.is_empty() {
            intake.invalid(invalid.len());
            for tag in invalid {
                channel
                    .basic_reject(tag, BasicRejectOptions { requeue: false })
                    .await
                    .map_err(|e| lost(e.to_string(), consumed))?;
            }
        }
        if let Some(tag) = last_event_tag {
            channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await
                .map_err(|e| lost(e.to_string(), consumed))?;
        }
        consumed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::cloudevents::STRUCTURED;
    use lapin::types::ShortString;

    fn headers(pairs: &[(&str, &str)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert(ShortString::from(*k), AMQPValue::LongString((*v).into()));
        }
        t
    }

    fn attrs(e: &EncodedEvent) -> Map<String, Value> {
        serde_json::from_slice(&e.attrs).unwrap()
    }

    #[test]
    fn binary_mode_takes_both_prefixes() {
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(headers(&[
                ("cloudEvents:specversion", "1.0"),
                ("cloudEvents:id", "e1"),
                ("cloudEvents_source", "/s"),
                ("cloudEvents:type", "t"),
                ("other", "x"),
            ]));
        let Received::Event(e) = event_of(&props, b"hello".to_vec(), "amqp://h:1/%2F/q") else {
            panic!("not an event")
        };
        let a = attrs(&e);
        assert_eq!(a["id"], "e1");
        assert_eq!(a["source"], "/s");
        assert_eq!(a["datacontenttype"], "text/plain");
        assert!(!a.contains_key("other"));
        let data = e.data.unwrap();
        assert_eq!(data.kind, DataKind::Text);
        assert_eq!(&data.bytes[..], b"hello");
    }

    #[test]
    fn typed_header_values_become_text() {
        let mut h = headers(&[
            ("cloudEvents:specversion", "1.0"),
            ("cloudEvents:id", "e1"),
            ("cloudEvents:source", "/s"),
            ("cloudEvents:type", "t"),
        ]);
        h.insert("cloudEvents:count".into(), AMQPValue::LongInt(42));
        h.insert("cloudEvents:time".into(), AMQPValue::Timestamp(0));
        let props = BasicProperties::default().with_headers(h);
        let Received::Event(e) = event_of(&props, vec![], "x") else {
            panic!("not an event")
        };
        let a = attrs(&e);
        assert_eq!(a["count"], "42");
        assert_eq!(a["time"], "1970-01-01T00:00:00Z");
        assert!(e.data.is_none());
    }

    #[test]
    fn invalid_cloudevents_are_told_apart_from_plain_messages() {
        let props =
            BasicProperties::default().with_headers(headers(&[("cloudEvents:specversion", "1.0")]));
        assert!(matches!(
            event_of(&props, vec![], "x"),
            Received::Invalid(_)
        ));
        let props = BasicProperties::default().with_content_type(STRUCTURED.into());
        assert!(matches!(
            event_of(&props, b"{not json".to_vec(), "x"),
            Received::Invalid(_)
        ));
    }

    #[test]
    fn plain_messages_become_the_documented_event() {
        let props = BasicProperties::default().with_message_id("m-1".into());
        let Received::Event(e) = event_of(&props, br#"{"a":1}"#.to_vec(), "amqp://h:5672/%2F/q")
        else {
            panic!("not an event")
        };
        let a = attrs(&e);
        assert_eq!(e.id, "m-1");
        assert_eq!(a["type"], PLAIN_TYPE);
        assert_eq!(a["source"], "amqp://h:5672/%2F/q");
        assert_eq!(a["datacontenttype"], "application/json");
        assert_eq!(e.data.unwrap().kind, DataKind::Json);

        let Received::Event(e) = event_of(&BasicProperties::default(), vec![0, 159, 146], "x")
        else {
            panic!("not an event")
        };
        assert_eq!(attrs(&e)["datacontenttype"], "application/octet-stream");
        assert_eq!(e.data.unwrap().kind, DataKind::Binary);
        assert!(uuid::Uuid::parse_str(&e.id).is_ok());
    }

    #[test]
    fn broker_names_carry_no_credentials() {
        assert_eq!(
            broker_name("amqp://user:secret@rabbit.example:5673/%2f"),
            "amqp://rabbit.example:5673/%2F"
        );
        assert_eq!(broker_name("amqps://h/prod"), "amqps://h:5671/prod");
    }

    #[test]
    fn config_is_checked() {
        let mut errors = Errors::default();
        let c = AmqpSourceConfig {
            url: SecretRef("http://x".into()),
            queue: None,
            prefetch: Some(0),
            declare: false,
        };
        c.check("connectors[0]", &mut errors);
        let text = format!("{errors:?}");
        assert!(text.contains("connectors[0].url"), "{text}");
        assert!(text.contains("connectors[0].queue"), "{text}");
        assert!(text.contains("connectors[0].prefetch"), "{text}");
    }
}
