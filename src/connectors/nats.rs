//! The NATS connector: a JetStream durable pull consumer (at-least-once), or a core NATS
//! subscription (at-most-once), appending what it receives to a bus
//! (docs/connectors/nats.md).
//!
//! JetStream: the durable pull consumer `consumer` of `stream` (created when missing, with
//! explicit acks) feeds a pull stream that keeps at most `batch` messages on the client.
//! The loop waits for one message, takes every other one already there (up to `batch`),
//! appends their events in one [`Intake::append`] and only then acks each message. A
//! crash or an append error leaves the messages unacked: the server redelivers them
//! after `ack_wait` (the dedupe window keeps those that did get in from being appended
//! twice). Replicas with the same `consumer` compete for messages, as JetStream pull
//! consumers are meant to be used. Acks are explicit per message: `AckAll` would also
//! ack messages another replica still holds.
//!
//! Core NATS (`subject` without `stream`): a plain or queue-group subscription; core
//! NATS has no acks, so a message in flight when the gateway dies is lost.
//!
//! The CloudEvents NATS binding, both modes: binary (`ce-*` headers, `Content-Type` is
//! `datacontenttype`) and structured (`Content-Type: application/cloudevents+json`). A
//! message that is neither becomes an event of type `sluice.nats.message` (see
//! [`plain_event`]); one that claims to be a CloudEvent but is invalid is counted as
//! invalid, logged and terminated (`+TERM`: JetStream never redelivers it; an advisory
//! is published on `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>`).
//!
//! Reconnects: async-nats reconnects by itself; when the pull stream fails anyway (say
//! missed heartbeats while the server restarts), the session is dropped and built
//! again after [`super::pause`].

use std::borrow::Cow;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, AckKind};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::config::value::opt_duration;
use crate::config::Errors;
use crate::event::cloudevents::{parse_attributes, parse_structured};
use crate::event::EncodedEvent;

/// Default messages per append.
pub const DEFAULT_BATCH: usize = 100;
/// Default `ack_wait` of a consumer the connector creates.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// The `type` of events made from messages that are not CloudEvents.
pub const PLAIN_TYPE: &str = "sluice.nats.message";

/// `kind: nats`: the server and what is consumed.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsSourceConfig {
    /// The server: `nats://host:port` (`tls://` for TLS); user and password may be in
    /// the URL.
    pub url: String,
    /// The JetStream stream (it must exist). Without it: core NATS on `subject`.
    #[serde(default)]
    pub stream: Option<String>,
    /// The durable pull consumer of `stream`, created when missing (explicit acks).
    #[serde(default)]
    pub consumer: Option<String>,
    /// JetStream: the consumer's filter subject (for a consumer the connector creates);
    /// core NATS: the subject subscribed to (wildcards allowed). Required for core NATS.
    #[serde(default)]
    pub subject: Option<String>,
    /// Core NATS: the queue group, so replicas share the messages instead of each
    /// getting every one.
    #[serde(default)]
    pub queue_group: Option<String>,
    /// Messages per append (and at most held on the client). Default 100.
    #[serde(default)]
    pub batch: Option<usize>,
    /// JetStream: the ack wait of a consumer the connector creates. Default 30s.
    #[serde(default, deserialize_with = "opt_duration")]
    pub ack_wait: Option<Duration>,
}

/// Whether `s` is a valid NATS subject; `wildcards`: `*` and a last `>` are allowed.
pub fn valid_subject(s: &str, wildcards: bool) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    !s.is_empty()
        && tokens.iter().enumerate().all(|(i, t)| {
            !t.is_empty()
                && !t.chars().any(|c| c.is_whitespace() || c.is_control())
                && match *t {
                    "*" => wildcards,
                    ">" => wildcards && i == tokens.len() - 1,
                    t => !t.contains(['*', '>']),
                }
        })
}

/// Whether `s` may name a JetStream stream or consumer.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
}

/// Whether `url` is a NATS server URL (`nats://` or `tls://` with a host; WebSocket URLs
/// need async-nats' `websockets` feature, which is not built).
pub fn valid_url(url: &str) -> bool {
    url::Url::parse(url)
        .is_ok_and(|u| matches!(u.scheme(), "nats" | "tls") && u.host_str().is_some())
}

/// `url` without user and password, for `source` attributes and logs.
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => url.to_string(),
    }
}

impl NatsSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        if !valid_url(&self.url) {
            errors.at(
                format!("{at}.url"),
                "must be a NATS server URL, e.g. nats://127.0.0.1:4222 (tls:// for TLS)",
            );
        }
        if let Some(stream) = &self.stream {
            if !valid_name(stream) {
                errors.at(
                    format!("{at}.stream"),
                    "must be a JetStream stream name (no spaces, `.`, `*`, `>`, `/`)",
                );
            }
            match &self.consumer {
                None => errors.at(
                    format!("{at}.consumer"),
                    "required with `stream`: the durable pull consumer's name",
                ),
                Some(c) if !valid_name(c) => errors.at(
                    format!("{at}.consumer"),
                    "must be a JetStream consumer name (no spaces, `.`, `*`, `>`, `/`)",
                ),
                Some(_) => {}
            }
            if self.queue_group.is_some() {
                errors.at(
                    format!("{at}.queue_group"),
                    "is for core NATS (no `stream`): JetStream replicas share `consumer`",
                );
            }
        } else {
            if self.subject.is_none() {
                errors.at(
                    format!("{at}.subject"),
                    "required without `stream` (core NATS); or set `stream` and `consumer` for JetStream",
                );
            }
            if self.consumer.is_some() {
                errors.at(format!("{at}.consumer"), "needs `stream` (JetStream)");
            }
            if self.ack_wait.is_some() {
                errors.at(
                    format!("{at}.ack_wait"),
                    "needs `stream`: core NATS has no acks",
                );
            }
            if let Some(q) = &self.queue_group {
                if q.is_empty() || q.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    errors.at(format!("{at}.queue_group"), "must be a name without spaces");
                }
            }
        }
        if let Some(subject) = &self.subject {
            if !valid_subject(subject, true) {
                errors.at(
                    format!("{at}.subject"),
                    "must be a NATS subject such as orders.* or orders.> (dot-separated tokens, no spaces)",
                );
            }
        }
        if self.batch.is_some_and(|b| !(1..=10_000).contains(&b)) {
            errors.at(format!("{at}.batch"), "must be 1 to 10000");
        }
        if self
            .ack_wait
            .is_some_and(|w| w < Duration::from_secs(1) || w > Duration::from_secs(12 * 3600))
        {
            errors.at(format!("{at}.ack_wait"), "must be 1s to 12h");
        }
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: NatsSourceConfig, mut intake: Intake, shutdown: CancellationToken) {
    let server = display_url(&config.url);
    info!(%server, stream = config.stream.as_deref(), consumer = config.consumer.as_deref(), subject = config.subject.as_deref(), "NATS connector started");
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let result = match &config.stream {
            Some(stream) => {
                jetstream_session(&config, stream, &mut intake, &shutdown, &mut failures).await
            }
            None => core_session(&config, &mut intake, &shutdown, &mut failures).await,
        };
        if let Err(e) = result {
            failures += 1;
            warn!(%server, error = %e, failures, "NATS connector lost its consumer; reconnecting");
            super::pause(failures, &shutdown).await;
        }
    }
    info!("NATS connector stopped");
}

async fn connect(
    config: &NatsSourceConfig,
    intake: &Intake,
    capacity: usize,
) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .name(format!(
            "sluice {} connector {}",
            intake.gateway_id(),
            intake.name()
        ))
        .connection_timeout(Duration::from_secs(5))
        .subscription_capacity(capacity)
        .connect(config.url.as_str())
        .await?)
}

/// One connection's JetStream consumption: returns Ok on shutdown, Err when the
/// consumer must be set up again.
async fn jetstream_session(
    config: &NatsSourceConfig,
    stream_name: &str,
    intake: &mut Intake,
    shutdown: &CancellationToken,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let batch = config.batch.unwrap_or(DEFAULT_BATCH);
    let consumer_name = config.consumer.as_deref().unwrap_or_default();
    let client = connect(config, intake, batch.max(64) * 2).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(stream_name).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            consumer_name,
            pull::Config {
                durable_name: Some(consumer_name.to_string()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait.unwrap_or(DEFAULT_ACK_WAIT),
                filter_subject: config.subject.clone().unwrap_or_default(),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(15))
        .messages()
        .await?;
    let source = format!("{}/{stream_name}", display_url(&config.url));
    info!(
        stream = stream_name,
        consumer = consumer_name,
        "NATS JetStream consumer ready"
    );
    loop {
        let first = tokio::select! {
            m = messages.next() => m,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let mut pulled = match first {
            Some(Ok(m)) => vec![m],
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the pull stream ended"),
        };
        let mut broken = None;
        while pulled.len() < batch {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => pulled.push(m),
                Some(Some(Err(e))) => {
                    broken = Some(anyhow::Error::from(e));
                    break;
                }
                Some(None) => {
                    broken = Some(anyhow::anyhow!("the pull stream ended"));
                    break;
                }
                None => break,
            }
        }
        let mut events = Vec::with_capacity(pulled.len());
        let mut accepted = Vec::with_capacity(pulled.len());
        for m in pulled {
            let (plain_id, published) = match m.info() {
                Ok(i) => (
                    format!("{}:{}", i.stream, i.stream_sequence),
                    rfc3339(i.published.unix_timestamp_nanos()),
                ),
                Err(_) => (uuid::Uuid::new_v4().to_string(), None),
            };
            match event_of(&m.message, &source, plain_id, published.as_deref()) {
                Ok(event) => {
                    events.push(event);
                    accepted.push(m);
                }
                Err(reason) => {
                    intake.invalid(1);
                    warn!(subject = %m.subject, %reason, "NATS message claims to be a CloudEvent but is invalid; terminated (+TERM)");
                    if let Err(e) = m.ack_with(AckKind::Term).await {
                        warn!(error = %e, "terminating an invalid NATS message failed");
                    }
                }
            }
        }
        match intake.append(events).await {
            Ok(done) => {
                *failures = 0;
                debug!(
                    pulled = accepted.len(),
                    appended = done.appended,
                    duplicates = done.duplicates,
                    returned = done.returned,
                    "NATS messages appended"
                );
                // In Redis now: only now may JetStream forget them. A lost ack means a
                // redelivery after ack_wait, which the dedupe window absorbs.
                for m in &accepted {
                    if let Err(e) = m.ack().await {
                        warn!(error = %e, "acking a NATS message failed; it will be redelivered and deduplicated");
                    }
                }
            }
            Err(e) => {
                *failures += 1;
                warn!(error = %e, "appending NATS messages failed; they are redelivered");
                for m in &accepted {
                    let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
                }
                super::pause(*failures, shutdown).await;
            }
        }
        if let Some(e) = broken {
            return Err(e);
        }
    }
}

/// One connection's core NATS subscription (at-most-once: nothing to ack).
async fn core_session(
    config: &NatsSourceConfig,
    intake: &mut Intake,
    shutdown: &CancellationToken,
    failures: &mut u32,
) -> anyhow::Result<()> {
    let batch = config.batch.unwrap_or(DEFAULT_BATCH);
    let subject = config.subject.clone().unwrap_or_default();
    // The client holds at most this many messages for the subscription; beyond it the
    // server's slow-consumer handling drops them (core NATS is at-most-once).
    let client = connect(config, intake, (batch * 8).max(1024)).await?;
    let mut subscriber = match &config.queue_group {
        Some(group) => {
            client
                .queue_subscribe(subject.clone(), group.clone())
                .await?
        }
        None => client.subscribe(subject.clone()).await?,
    };
    let source = format!("{}/{subject}", display_url(&config.url));
    info!(
        subject,
        queue_group = config.queue_group.as_deref(),
        "NATS core subscription ready"
    );
    loop {
        let first = tokio::select! {
            m = subscriber.next() => m,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let Some(first) = first else {
            anyhow::bail!("the subscription ended");
        };
        let mut pulled = vec![first];
        while pulled.len() < batch {
            match subscriber.next().now_or_never() {
                Some(Some(m)) => pulled.push(m),
                _ => break,
            }
        }
        let mut events = Vec::with_capacity(pulled.len());
        for m in &pulled {
            let plain_id = header(m, "nats-msg-id")
                .map(String::from)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            match event_of(m, &source, plain_id, None) {
                Ok(event) => events.push(event),
                Err(reason) => {
                    intake.invalid(1);
                    warn!(subject = %m.subject, %reason, "NATS message claims to be a CloudEvent but is invalid; dropped");
                }
            }
        }
        match intake.append(events).await {
            Ok(done) => {
                *failures = 0;
                debug!(
                    received = pulled.len(),
                    appended = done.appended,
                    "NATS messages appended"
                );
            }
            Err(e) => {
                *failures += 1;
                warn!(error = %e, lost = pulled.len(), "appending core NATS messages failed; they are lost (core NATS has no redelivery)");
                super::pause(*failures, shutdown).await;
            }
        }
    }
}

/// The value of header `name` (any case).
fn header<'m>(m: &'m async_nats::Message, name: &str) -> Option<&'m str> {
    m.headers.as_ref()?.iter().find_map(|(n, values)| {
        let n: &str = n.as_ref();
        n.eq_ignore_ascii_case(name)
            .then(|| values.first().map(|v| v.as_str()))
            .flatten()
    })
}

/// The event a NATS message carries, by the CloudEvents NATS binding; a message that is
/// no CloudEvent becomes one ([`plain_event`], id `plain_id`); Err: it claims to be a
/// CloudEvent but is not a valid one.
pub fn event_of(
    m: &async_nats::Message,
    source: &str,
    plain_id: String,
    published: Option<&str>,
) -> Result<EncodedEvent, String> {
    let content_type = header(m, "content-type");
    let structured = content_type.is_some_and(crate::event::cloudevents::is_structured);
    if structured {
        return parse_structured(&m.payload).map_err(|e| field_error(&e.field, &e.message));
    }
    let mut attrs: Vec<(String, &str)> = Vec::new();
    if let Some(headers) = &m.headers {
        for (name, values) in headers.iter() {
            let name: &str = name.as_ref();
            if name.len() > 3 && name[..3].eq_ignore_ascii_case("ce-") {
                if let Some(v) = values.first() {
                    attrs.push((name[3..].to_ascii_lowercase(), v.as_str()));
                }
            }
        }
    }
    if attrs.iter().any(|(n, _)| n == "specversion") {
        let attrs = attrs
            .iter()
            .map(|(n, v)| (n.as_str(), Cow::Borrowed(*v)))
            .collect();
        return parse_attributes(attrs, content_type, m.payload.clone())
            .map_err(|e| field_error(&e.field, &e.message));
    }
    Ok(plain_event(m, source, plain_id, published, content_type))
}

/// Nanoseconds since the epoch as an RFC 3339 UTC time (`time` of plain events).
fn rfc3339(nanos: i128) -> Option<String> {
    let nanos = i64::try_from(nanos).ok()?;
    Some(
        chrono::DateTime::from_timestamp_nanos(nanos)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

fn field_error(field: &str, message: &str) -> String {
    if field.is_empty() {
        message.to_string()
    } else {
        format!("{field}: {message}")
    }
}

/// A message that is no CloudEvent as an event: `id` = `plain_id` (`{stream}:{seq}` for
/// JetStream, stable on redelivery; the `Nats-Msg-Id` header or a new UUID for core
/// NATS), `source` = server URL + `/` + stream (JetStream) or subscribed subject (core),
/// `type` = `sluice.nats.message`, `subject` = the message's subject, `time` = when
/// JetStream stored it (`published`; core NATS: none), `datacontenttype`
/// = its `Content-Type` header, else `application/json` when the body is JSON, else
/// `application/octet-stream`; data = the body bytes.
pub fn plain_event(
    m: &async_nats::Message,
    source: &str,
    plain_id: String,
    published: Option<&str>,
    content_type: Option<&str>,
) -> EncodedEvent {
    let body: Bytes = m.payload.clone();
    let build = |ct: Option<&str>| {
        let mut attrs: Vec<(&str, Cow<str>)> = vec![
            ("specversion", Cow::Borrowed("1.0")),
            ("id", Cow::Borrowed(plain_id.as_str())),
            ("source", Cow::Borrowed(source)),
            ("type", Cow::Borrowed(PLAIN_TYPE)),
        ];
        attrs.push(("subject", Cow::Borrowed(m.subject.as_str())));
        if let Some(t) = published {
            attrs.push(("time", Cow::Borrowed(t)));
        }
        parse_attributes(attrs, ct, body.clone())
    };
    let guessed = if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let first = build(Some(content_type.unwrap_or(guessed)));
    // A Content-Type that says JSON over a body that is not: keep the bytes as binary.
    first.unwrap_or_else(|_| {
        build(Some("application/octet-stream"))
            .expect("an event of fixed valid attributes and binary data")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &[(&str, &str)], body: &[u8]) -> async_nats::Message {
        let mut map = async_nats::HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, *v);
        }
        async_nats::Message {
            subject: "orders.created".into(),
            reply: None,
            payload: Bytes::copy_from_slice(body),
            headers: (!headers.is_empty()).then_some(map),
            status: None,
            description: None,
            length: body.len(),
        }
    }

    fn attrs(e: &EncodedEvent) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_slice(&e.attrs).unwrap()
    }

    #[test]
    fn binary_mode_reads_ce_headers_and_content_type() {
        let m = message(
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "a1"),
                ("Ce-Source", "/orders"),
                ("ce-type", "order.created"),
                ("ce-tenant", "acme"),
                ("content-type", "application/json"),
            ],
            br#"{"n":1}"#,
        );
        let e = event_of(&m, "nats://x/S", "S:1".into(), None).unwrap();
        let a = attrs(&e);
        assert_eq!(e.id, "a1");
        assert_eq!(a["source"], "/orders");
        assert_eq!(a["tenant"], "acme");
        assert_eq!(a["datacontenttype"], "application/json");
        assert_eq!(&e.data.unwrap().bytes[..], br#"{"n":1}"#);
    }

    #[test]
    fn structured_mode_by_content_type() {
        let body = br#"{"specversion":"1.0","id":"s1","source":"/x","type":"t","data":"hi"}"#;
        let m = message(
            &[(
                "Content-Type",
                "application/cloudevents+json; charset=utf-8",
            )],
            body,
        );
        let e = event_of(&m, "nats://x/S", "S:1".into(), None).unwrap();
        assert_eq!(e.id, "s1");
    }

    #[test]
    fn invalid_cloudevents_are_refused() {
        let m = message(&[("ce-specversion", "1.0"), ("ce-id", "a1")], b"x");
        assert!(event_of(&m, "nats://x/S", "S:1".into(), None).is_err());
        let m = message(&[("content-type", "application/cloudevents+json")], b"{");
        assert!(event_of(&m, "nats://x/S", "S:1".into(), None).is_err());
    }

    #[test]
    fn plain_messages_become_documented_events() {
        let m = message(&[], br#"{"a":1}"#);
        let e = event_of(
            &m,
            "nats://h:4222/S",
            "S:7".into(),
            Some("2026-12-03T18:00:00Z"),
        )
        .unwrap();
        let a = attrs(&e);
        assert_eq!(e.id, "S:7");
        assert_eq!(a["source"], "nats://h:4222/S");
        assert_eq!(a["type"], PLAIN_TYPE);
        assert_eq!(a["subject"], "orders.created");
        assert_eq!(a["datacontenttype"], "application/json");
        assert_eq!(a["time"], "2026-12-03T18:00:00Z");
        let m = message(&[], &[0, 159, 146, 150]);
        let a = attrs(&event_of(&m, "s", "S:8".into(), None).unwrap());
        assert_eq!(a["datacontenttype"], "application/octet-stream");
        let m = message(&[("content-type", "application/json")], b"not json");
        let a = attrs(&event_of(&m, "s", "S:9".into(), None).unwrap());
        assert_eq!(a["datacontenttype"], "application/octet-stream");
        let m = message(&[("content-type", "text/plain")], b"hello");
        let a = attrs(&event_of(&m, "s", "S:9".into(), None).unwrap());
        assert_eq!(a["datacontenttype"], "text/plain");
    }

    #[test]
    fn published_times() {
        assert_eq!(
            rfc3339(1_796_320_000_123_456_789).as_deref(),
            Some("2026-12-03T17:46:40.123456789Z")
        );
    }

    #[test]
    fn subjects_and_urls() {
        assert!(valid_subject("orders.*", true));
        assert!(valid_subject("orders.>", true));
        assert!(!valid_subject("orders.>.x", true));
        assert!(!valid_subject("orders.*", false));
        assert!(!valid_subject("orders..x", false));
        assert!(!valid_subject("a b", false));
        assert!(valid_url("nats://127.0.0.1:4222"));
        assert!(!valid_url("http://127.0.0.1:4222"));
        assert!(!valid_url("ws://127.0.0.1:4222"));
        assert_eq!(display_url("nats://u:p@h:4222"), "nats://h:4222");
    }
}
