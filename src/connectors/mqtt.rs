//! The MQTT connector: a QoS 1 subscription (MQTT 5 or 3.1.1, through `rumqttc`) whose
//! messages are appended to a bus and acknowledged (PUBACK) only after Redis
//! acknowledged the append (docs/connectors/mqtt.md).
//!
//! Two tasks per connector: the *poller* drives the client's event loop (network,
//! keep-alive, reconnects with [`super::pause`] backoff, resubscribing when the broker
//! kept no session) and hands each PUBLISH to the *appender* over a bounded channel;
//! the appender takes what is there (at most `batch` messages, the receive maximum the
//! broker is told, so the broker never has more than that unacknowledged on the way),
//! builds the events, appends them in one round trip, then PUBACKs them in the order
//! they came (MQTT requires it). A failed append is retried with backoff; nothing is
//! acknowledged meanwhile. A message of a connection that has since dropped is not
//! acknowledged: the broker redelivers it in the resumed session (the client id is
//! stable and the session persistent).
//!
//! The binding (CloudEvents MQTT protocol binding 1.0): MQTT 5 binary mode carries
//! every attribute as a user property and `datacontenttype` as the content type
//! property; structured mode is the content type `application/cloudevents+json`. MQTT
//! 3.1.1 has no properties: a payload that is a JSON object with `specversion` is a
//! structured event; anything else is a plain message, wrapped as documented.
//!
//! The shared client layer ([`Broker`], [`Client`], [`EventLoop`]) is used by the MQTT
//! target too (`targets/mqtt.rs`).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5 as m5;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::config::value::{opt_duration, SecretRef};
use crate::config::Errors;
use crate::event::cloudevents;
use crate::event::{is_json_media_type, is_text_media_type, Data, DataKind, EncodedEvent};

/// Default messages per batch (and receive maximum told to the broker).
pub const DEFAULT_BATCH: u16 = 100;
/// Largest MQTT packet accepted or sent (the broker may allow less).
const MAX_PACKET: usize = 2 * 1024 * 1024;

/// The MQTT protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 5.0: properties, so both CloudEvents modes.
    #[default]
    V5,
    /// MQTT 3.1.1: no properties, structured mode only.
    V311,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::V5 => "5",
            Protocol::V311 => "3.1.1",
        })
    }
}

/// `protocol:` as written: `5` (a YAML number or string) or `"3.1.1"`; anything else is
/// kept to be refused by the check with the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolField(pub Result<Protocol, String>);

impl<'de> Deserialize<'de> for ProtocolField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let text = match &v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        Ok(ProtocolField(match text.trim() {
            "5" | "5.0" => Ok(Protocol::V5),
            "3.1.1" | "4" => Ok(Protocol::V311),
            _ => Err(text),
        }))
    }
}

/// Checks `protocol` and returns it (default 5).
pub(crate) fn check_protocol(
    field: &Option<ProtocolField>,
    at: &str,
    errors: &mut Errors,
) -> Protocol {
    match field {
        None => Protocol::V5,
        Some(ProtocolField(Ok(p))) => *p,
        Some(ProtocolField(Err(text))) => {
            errors.at(
                format!("{at}.protocol"),
                format!("must be 5 or \"3.1.1\", not {text}"),
            );
            Protocol::V5
        }
    }
}

/// Where a broker is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub protocol: Protocol,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password in logs.
        write!(f, "{}", self.uri())
    }
}

impl Broker {
    /// Checks `url` (and the credentials) at `at`; `None` after reporting an error.
    pub(crate) fn check(
        url: Option<&str>,
        username: Option<&str>,
        password: Option<&SecretRef>,
        protocol: Protocol,
        at: &str,
        errors: &mut Errors,
    ) -> Option<Broker> {
        let Some(url) = url else {
            errors.at(
                format!("{at}.url"),
                "an mqtt connector or target needs a url, e.g. mqtt://127.0.0.1:1883",
            );
            return None;
        };
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => {
                errors.at(format!("{at}.url"), format!("not a URL ({e})"));
                return None;
            }
        };
        let tls = match parsed.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => {
                errors.at(
                    format!("{at}.url"),
                    format!("scheme {other:?} is not mqtt or mqtts"),
                );
                return None;
            }
        };
        let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
            errors.at(format!("{at}.url"), "URL has no host");
            return None;
        };
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            errors.at(
                format!("{at}.url"),
                "must be mqtt://host:port only (the topic is the `topic` field)",
            );
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        // The fields win over the URL's user info.
        let username = username
            .map(String::from)
            .or_else(|| (!parsed.username().is_empty()).then(|| decode(parsed.username())));
        let password = match password {
            Some(secret) => match secret.resolve() {
                Ok(s) => Some(String::from_utf8_lossy(&s.0).into_owned()),
                Err(e) => {
                    errors.at(format!("{at}.password"), e);
                    return None;
                }
            },
            None => parsed.password().map(decode),
        };
        if password.is_some() && username.is_none() {
            errors.at(format!("{at}.password"), "a password needs a username");
            return None;
        }
        Some(Broker {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: parsed.port().unwrap_or(if tls { 8883 } else { 1883 }),
            tls,
            username,
            password,
            protocol,
        })
    }

    /// `mqtt://host:port` (no credentials), for logs and event sources.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Checks a subscription filter (`$share/GROUP/FILTER` for a shared subscription).
fn check_filter(filter: &str) -> Result<(), String> {
    let inner = match filter.strip_prefix("$share/") {
        Some(rest) => {
            let (group, inner) = rest
                .split_once('/')
                .ok_or("a shared subscription is $share/GROUP/FILTER")?;
            if group.is_empty() || group.contains(['+', '#']) {
                return Err("the $share group must be a non-empty name without + or #".into());
            }
            inner
        }
        None => filter,
    };
    if inner.is_empty() {
        return Err("must not be empty".into());
    }
    let levels: Vec<&str> = inner.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be a whole level, the last one".into());
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level".into());
        }
    }
    Ok(())
}

/// Checks a topic to publish to: no wildcards, not empty.
pub(crate) fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("must not be empty".into());
    }
    if topic.contains(['+', '#']) {
        return Err("a topic to publish to has no wildcards (+, #)".into());
    }
    if topic.starts_with('$') {
        return Err("topics starting with $ are the broker's".into());
    }
    Ok(())
}

/// Checks a client id: what brokers accept without question.
pub(crate) fn check_client_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.starts_with(' ') || id.len() > 128 {
        return Err("must be 1 to 128 characters, not starting with a space".into());
    }
    Ok(())
}

/// The default client id: stable for this gateway and connector (and host, when the
/// environment names it), so a restart resumes the persistent session.
pub(crate) fn default_client_id(gateway_id: &str, name: &str) -> String {
    let mut id = format!("sluice-{gateway_id}-{name}");
    if let Ok(host) = std::env::var("HOSTNAME") {
        let host = host.trim();
        if !host.is_empty() && host != gateway_id {
            id.push('-');
            id.push_str(host);
        }
    }
    id
}

// ---------------------------------------------------------------------------------
// The client layer: one face for rumqttc's MQTT 5 and 3.1.1 clients.
// ---------------------------------------------------------------------------------

/// How a client connects.
pub(crate) struct Session {
    pub client_id: String,
    /// Keep the session (and its unacknowledged messages) across reconnects.
    pub persistent: bool,
    /// MQTT 5: how long the broker keeps the session after a disconnect.
    pub expiry: Duration,
    /// Acknowledge incoming QoS 1 messages by hand ([`Client::ack`]).
    pub manual_acks: bool,
    /// MQTT 5 receive maximum (unacknowledged incoming QoS 1 messages), and the 3.1.1
    /// outgoing inflight limit.
    pub inflight: u16,
    /// Capacity of the client's request channel.
    pub requests: usize,
}

/// A client handle of either version (cheap to clone).
#[derive(Clone)]
pub(crate) enum Client {
    V5(rumqttc::v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

/// The event loop of a client: polled, it drives the connection and reconnects.
pub(crate) enum EventLoop {
    V5(Box<rumqttc::v5::EventLoop>),
    V311(Box<rumqttc::EventLoop>),
}

/// An incoming PUBLISH.
#[derive(Debug, Clone)]
pub(crate) enum Publish {
    V5(m5::Publish),
    V311(rumqttc::Publish),
}

/// What one poll of an event loop yielded, reduced to what Sluice uses.
#[derive(Debug)]
pub(crate) enum Polled {
    Connected {
        session_present: bool,
    },
    Message(Publish),
    /// A SUBACK; `refused` when the broker refused a filter.
    SubAck {
        refused: bool,
    },
    /// An outgoing PUBLISH with this packet id went out.
    Published(u16),
    /// An outgoing PUBLISH waits for a packet id to be free (rumqttc's collision).
    AwaitAck,
    /// A PUBACK; `refused` names the MQTT 5 reason code of a refusal.
    PubAck {
        pkid: u16,
        refused: Option<String>,
    },
    Other,
}

/// Installs the process's rustls crypto provider (aws-lc-rs), once, for `mqtts://`.
fn tls_transport() -> rumqttc::Transport {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    rumqttc::Transport::tls_with_default_config()
}

/// A client and its event loop (nothing is connected before the first poll).
pub(crate) fn client(broker: &Broker, s: &Session) -> (Client, EventLoop) {
    let keep_alive = Duration::from_secs(30);
    match broker.protocol {
        Protocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(&s.client_id, &broker.host, broker.port);
            o.set_keep_alive(keep_alive)
                .set_clean_start(!s.persistent)
                .set_manual_acks(s.manual_acks)
                .set_receive_maximum(Some(s.inflight))
                // Bounds the outgoing packet ids (and the table rumqttc allocates for
                // them: 64K entries otherwise).
                .set_outgoing_inflight_upper_limit(s.inflight)
                .set_max_packet_size(Some(MAX_PACKET as u32));
            if s.persistent {
                o.set_session_expiry_interval(Some(s.expiry.as_secs().min(u32::MAX as u64) as u32));
            }
            if let Some(user) = &broker.username {
                o.set_credentials(user, broker.password.as_deref().unwrap_or_default());
            }
            if broker.tls {
                o.set_transport(tls_transport());
            }
            let (c, l) = rumqttc::v5::AsyncClient::new(o, s.requests);
            (Client::V5(c), EventLoop::V5(Box::new(l)))
        }
        Protocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(&s.client_id, &broker.host, broker.port);
            o.set_keep_alive(keep_alive)
                .set_clean_session(!s.persistent)
                .set_manual_acks(s.manual_acks)
                .set_inflight(s.inflight.max(2))
                .set_max_packet_size(MAX_PACKET, MAX_PACKET);
            if let Some(user) = &broker.username {
                o.set_credentials(user, broker.password.as_deref().unwrap_or_default());
            }
            if broker.tls {
                o.set_transport(tls_transport());
            }
            let (c, l) = rumqttc::AsyncClient::new(o, s.requests);
            (Client::V311(c), EventLoop::V311(Box::new(l)))
        }
    }
}

impl Client {
    /// Queues a QoS 1 subscription (sent by the event loop).
    pub fn try_subscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Client::V5(c) => c
                .try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Client::V311(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues the PUBACK of `publish`.
    pub async fn ack(&self, publish: &Publish) -> Result<(), String> {
        match (self, publish) {
            (Client::V5(c), Publish::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            (Client::V311(c), Publish::V311(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            _ => Err("a message of the other protocol version".into()),
        }
    }

    /// Queues a QoS 1 PUBLISH (not retained); its packet id is known when the event loop
    /// reports [`Polled::Published`], in the order of these calls.
    pub fn try_publish(
        &self,
        topic: &str,
        body: Bytes,
        content_type: Option<String>,
        user_properties: Vec<(String, String)>,
    ) -> Result<(), String> {
        match self {
            Client::V5(c) => {
                let properties = m5::PublishProperties {
                    content_type,
                    user_properties,
                    ..Default::default()
                };
                c.try_publish_with_properties(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    body,
                    properties,
                )
                .map_err(|e| e.to_string())
            }
            Client::V311(c) => c
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, false, body.to_vec())
                .map_err(|e| e.to_string()),
        }
    }
}

impl EventLoop {
    /// The next event; an error means the connection is gone (the next poll reconnects).
    pub async fn poll(&mut self) -> Result<Polled, String> {
        use rumqttc::v5::{Event as E5, Incoming as I5};
        use rumqttc::{Event as E4, Outgoing as O4, Packet as P4};
        match self {
            EventLoop::V5(l) => Ok(match l.poll().await.map_err(|e| e.to_string())? {
                E5::Incoming(I5::ConnAck(c)) => Polled::Connected {
                    session_present: c.session_present,
                },
                E5::Incoming(I5::Publish(p)) => Polled::Message(Publish::V5(p)),
                E5::Incoming(I5::SubAck(s)) => Polled::SubAck {
                    refused: s
                        .return_codes
                        .iter()
                        .any(|c| !matches!(c, m5::SubscribeReasonCode::Success(_))),
                },
                E5::Incoming(I5::PubAck(a)) => Polled::PubAck {
                    pkid: a.pkid,
                    refused: (!matches!(
                        a.reason,
                        m5::PubAckReason::Success | m5::PubAckReason::NoMatchingSubscribers
                    ))
                    .then(|| format!("{:?}", a.reason)),
                },
                E5::Outgoing(rumqttc::Outgoing::Publish(pkid)) => Polled::Published(pkid),
                E5::Outgoing(rumqttc::Outgoing::AwaitAck(_)) => Polled::AwaitAck,
                _ => Polled::Other,
            }),
            EventLoop::V311(l) => Ok(match l.poll().await.map_err(|e| e.to_string())? {
                E4::Incoming(P4::ConnAck(c)) => Polled::Connected {
                    session_present: c.session_present,
                },
                E4::Incoming(P4::Publish(p)) => Polled::Message(Publish::V311(p)),
                E4::Incoming(P4::SubAck(s)) => Polled::SubAck {
                    refused: s
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                },
                E4::Incoming(P4::PubAck(a)) => Polled::PubAck {
                    pkid: a.pkid,
                    refused: None,
                },
                E4::Outgoing(O4::Publish(pkid)) => Polled::Published(pkid),
                E4::Outgoing(O4::AwaitAck(_)) => Polled::AwaitAck,
                _ => Polled::Other,
            }),
        }
    }

    /// Forgets the requests rumqttc kept to resend after a reconnect (the target fails
    /// their deliveries instead: the dispatcher retries them); returns how many of them
    /// were PUBLISHes.
    pub fn drop_pending(&mut self) -> usize {
        match self {
            EventLoop::V5(l) => l
                .pending
                .drain(..)
                .filter(|r| matches!(r, rumqttc::v5::Request::Publish(_)))
                .count(),
            EventLoop::V311(l) => l
                .pending
                .drain(..)
                .filter(|r| matches!(r, rumqttc::Request::Publish(_)))
                .count(),
        }
    }
}

impl Publish {
    pub fn topic(&self) -> Cow<'_, str> {
        match self {
            Publish::V5(p) => String::from_utf8_lossy(&p.topic),
            Publish::V311(p) => Cow::Borrowed(p.topic.as_str()),
        }
    }

    pub fn payload(&self) -> &Bytes {
        match self {
            Publish::V5(p) => &p.payload,
            Publish::V311(p) => &p.payload,
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        match self {
            Publish::V5(p) => p.properties.as_ref()?.content_type.as_deref(),
            Publish::V311(_) => None,
        }
    }

    pub fn user_properties(&self) -> &[(String, String)] {
        match self {
            Publish::V5(p) => p
                .properties
                .as_ref()
                .map_or(&[][..], |p| p.user_properties.as_slice()),
            Publish::V311(_) => &[],
        }
    }
}

// ---------------------------------------------------------------------------------
// The connector
// ---------------------------------------------------------------------------------

/// `kind: mqtt`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttSourceConfig {
    /// `mqtt://host:port` (or `mqtts://`, TLS with the system's roots); user info
    /// `mqtt://user:pass@host` is the login unless `username`/`password` are set.
    #[serde(default)]
    pub url: Option<String>,
    /// The topic filter; `$share/GROUP/FILTER` for a shared subscription (replicas
    /// split the messages).
    #[serde(default)]
    pub topic: Option<String>,
    /// `5` (default) or `"3.1.1"`.
    #[serde(default)]
    pub protocol: Option<ProtocolField>,
    /// The client id of the persistent session. Default `sluice-{gateway_id}-{name}`
    /// (`-{HOSTNAME}` added when set and not the gateway id).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// A literal, `env:NAME` or `file:PATH`.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Messages appended in one round trip, and the MQTT 5 receive maximum (1 to
    /// 65535). Default 100.
    #[serde(default)]
    pub batch: Option<u16>,
    /// MQTT 5: how long the broker keeps the session while the gateway is away.
    /// Default 1d.
    #[serde(default, deserialize_with = "opt_duration")]
    pub session_expiry: Option<Duration>,
}

/// A checked source configuration.
struct Settings {
    broker: Broker,
    filter: String,
    client_id: Option<String>,
    batch: u16,
    expiry: Duration,
}

impl MqttSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        self.settings(at, errors);
    }

    fn settings(&self, at: &str, errors: &mut Errors) -> Option<Settings> {
        let before = errors.len();
        let protocol = check_protocol(&self.protocol, at, errors);
        let broker = Broker::check(
            self.url.as_deref(),
            self.username.as_deref(),
            self.password.as_ref(),
            protocol,
            at,
            errors,
        );
        match &self.topic {
            None => errors.at(
                format!("{at}.topic"),
                "an mqtt connector needs a topic filter, e.g. orders/# or $share/sluice/orders/#",
            ),
            Some(t) => errors.check(format!("{at}.topic"), check_filter(t)),
        }
        if let Some(id) = &self.client_id {
            errors.check(format!("{at}.client_id"), check_client_id(id));
        }
        if self.batch == Some(0) {
            errors.at(format!("{at}.batch"), "must be 1 to 65535");
        }
        if self
            .session_expiry
            .is_some_and(|d| d.as_secs() > u32::MAX as u64)
        {
            errors.at(format!("{at}.session_expiry"), "must be at most 136y");
        }
        if errors.len() > before {
            return None;
        }
        Some(Settings {
            broker: broker?,
            filter: self.topic.clone()?,
            client_id: self.client_id.clone(),
            batch: self.batch.unwrap_or(DEFAULT_BATCH),
            expiry: self
                .session_expiry
                .unwrap_or(Duration::from_secs(24 * 3600)),
        })
    }
}

/// A message on its way from the poller to the appender.
struct Received {
    publish: Publish,
    /// The connection it came on (see [`run`]).
    connection: u64,
    /// The id of the event if the message is not a CloudEvent (one per message, so a
    /// retried append does not make a second event of it).
    plain_id: String,
}

/// Consumes until `shutdown`.
pub async fn run(config: MqttSourceConfig, mut intake: Intake, shutdown: CancellationToken) {
    let mut errors = Errors::default();
    let Some(s) = config.settings("connector", &mut errors) else {
        warn!(errors = ?errors.0, "mqtt connector not started: invalid configuration");
        return;
    };
    let client_id = s
        .client_id
        .clone()
        .unwrap_or_else(|| default_client_id(intake.gateway_id(), intake.name()));
    let (client, event_loop) = client(
        &s.broker,
        &Session {
            client_id: client_id.clone(),
            persistent: true,
            expiry: s.expiry,
            manual_acks: true,
            inflight: s.batch,
            // Room for a PUBACK of every packet id: queuing an ack never waits, so
            // the appender never blocks on a poller that waits for the appender (a
            // broker may resend more than the receive maximum when a session resumes).
            requests: usize::from(u16::MAX),
        },
    );
    info!(broker = ?s.broker, topic = %s.filter, %client_id, protocol = %s.broker.protocol, "MQTT connector started");
    let stop = shutdown.child_token();
    // Incremented when a connection drops: messages of an older connection are not
    // acknowledged on the new one (their packet ids belong to the old one; the broker
    // redelivers them in the resumed session).
    let connection = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel::<Received>(s.batch as usize * 2);
    let poller = tokio::spawn(poll(
        event_loop,
        client.clone(),
        s.filter.clone(),
        tx,
        connection.clone(),
        stop.clone(),
    ));
    let base = source_base(&s.broker);
    let mut batch: Vec<Received> = Vec::with_capacity(s.batch as usize);
    'consume: loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(m) => batch.push(m),
                None => break,
            },
            _ = stop.cancelled() => break,
        }
        while batch.len() < s.batch as usize {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut failures = 0u32;
        loop {
            let mut invalid = 0;
            let events: Vec<EncodedEvent> = batch
                .iter()
                .filter_map(|m| match event_of(m, &base) {
                    Ok(e) => Some(e),
                    Err(reason) => {
                        invalid += 1;
                        warn!(topic = %m.publish.topic(), %reason, "MQTT message claims to be a CloudEvent but is invalid; acknowledged and dropped");
                        None
                    }
                })
                .collect();
            match intake.append(events).await {
                Ok(done) => {
                    intake.invalid(invalid);
                    debug!(
                        received = batch.len(),
                        appended = done.appended,
                        duplicates = done.duplicates,
                        returned = done.returned,
                        "MQTT messages appended"
                    );
                    break;
                }
                Err(e) => {
                    // Not acknowledged: retried with the same messages (MQTT redelivers
                    // only after a reconnect).
                    failures += 1;
                    warn!(error = %e, "appending MQTT messages failed; retrying");
                    super::pause(failures, &stop).await;
                    if stop.is_cancelled() {
                        break 'consume;
                    }
                }
            }
        }
        let now = connection.load(Ordering::SeqCst);
        for m in batch.drain(..) {
            if m.connection != now {
                continue;
            }
            if let Err(e) = client.ack(&m.publish).await {
                warn!(error = %e, "could not queue a PUBACK; the broker redelivers the message");
            }
        }
    }
    stop.cancel();
    let _ = poller.await;
    info!("MQTT connector stopped");
}

/// Drives the event loop: hands messages to the appender, subscribes when the broker
/// kept no session, reconnects with backoff.
async fn poll(
    mut event_loop: EventLoop,
    client: Client,
    filter: String,
    tx: mpsc::Sender<Received>,
    connection: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    let mut subscribed = false;
    loop {
        let polled = tokio::select! {
            p = event_loop.poll() => p,
            _ = stop.cancelled() => break,
        };
        match polled {
            Ok(Polled::Connected { session_present }) => {
                info!(session_present, "connected to the MQTT broker");
                failures = 0;
                if !session_present || !subscribed {
                    match client.try_subscribe(&filter) {
                        Ok(()) => subscribed = true,
                        Err(e) => warn!(error = %e, "could not subscribe"),
                    }
                }
            }
            Ok(Polled::SubAck { refused: true }) => {
                warn!(topic = %filter, "the broker refused the subscription");
            }
            Ok(Polled::SubAck { refused: false }) => {
                info!(topic = %filter, "MQTT subscription in force");
            }
            Ok(Polled::Message(publish)) => {
                let m = Received {
                    publish,
                    connection: connection.load(Ordering::SeqCst),
                    plain_id: uuid::Uuid::new_v4().to_string(),
                };
                tokio::select! {
                    sent = tx.send(m) => if sent.is_err() { break },
                    _ = stop.cancelled() => break,
                }
            }
            Ok(_) => {}
            Err(e) => {
                connection.fetch_add(1, Ordering::SeqCst);
                failures += 1;
                warn!(error = %e, failures, "MQTT connection failed; reconnecting");
                super::pause(failures, &stop).await;
                if stop.is_cancelled() {
                    break;
                }
            }
        }
    }
}

/// Characters percent-encoded in a topic written into a URI path.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The `source` of plain messages, without the topic: `mqtt://host:port`.
fn source_base(broker: &Broker) -> String {
    broker.uri()
}

/// Whether `name` can be a CloudEvents attribute name (lower-case letters and digits).
fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether a payload is a JSON object with a `specversion` member (a structured event
/// sent without a content type, as over MQTT 3.1.1).
fn looks_structured(payload: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        specversion: Option<serde::de::IgnoredAny>,
    }
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    first == Some(&b'{')
        && serde_json::from_slice::<Probe>(payload).is_ok_and(|p| p.specversion.is_some())
}

/// The event of one message: structured (content type `application/cloudevents+json`,
/// or no content type and a JSON object with `specversion`), binary (a `specversion`
/// user property) or plain (anything else). `Err` for a message that claims to be a
/// CloudEvent and is not a valid one.
fn event_of(m: &Received, base: &str) -> Result<EncodedEvent, String> {
    let p = &m.publish;
    let payload = p.payload();
    let content_type = p.content_type();
    let why = |e: cloudevents::FieldError| {
        if e.field.is_empty() {
            e.message
        } else {
            format!("{}: {}", e.field, e.message)
        }
    };
    if content_type.is_some_and(cloudevents::is_structured) {
        return cloudevents::parse_structured(payload).map_err(why);
    }
    let props = p.user_properties();
    if props.iter().any(|(k, _)| k == "specversion") {
        // Other user properties (not attribute names) are the publisher's own.
        let attrs: Vec<(&str, Cow<str>)> = props
            .iter()
            .filter(|(k, _)| is_attribute_name(k))
            .map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str())))
            .collect();
        return cloudevents::parse_attributes(attrs, content_type, payload.clone()).map_err(why);
    }
    if content_type.is_none() && looks_structured(payload) {
        return cloudevents::parse_structured(payload).map_err(why);
    }
    Ok(plain_event(m, base))
}

/// A message that is no CloudEvent, as one: a new id, `source` the broker and topic,
/// `type` `sluice.mqtt.message`, `subject` the topic, the payload as data.
fn plain_event(m: &Received, base: &str) -> EncodedEvent {
    let p = &m.publish;
    let topic = p.topic();
    let payload = p.payload();
    let is_json = || serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok();
    let (content_type, kind) = match p.content_type() {
        Some(ct) if is_json_media_type(ct) && is_json() => (ct.to_string(), DataKind::Json),
        Some(ct) if is_text_media_type(ct) && std::str::from_utf8(payload).is_ok() => {
            (ct.to_string(), DataKind::Text)
        }
        Some(ct) => (ct.to_string(), DataKind::Binary),
        None if is_json() => ("application/json".to_string(), DataKind::Json),
        None => ("application/octet-stream".to_string(), DataKind::Binary),
    };
    let mut attrs = Map::new();
    attrs.insert("specversion".into(), "1.0".into());
    attrs.insert("id".into(), m.plain_id.clone().into());
    let path = percent_encoding::utf8_percent_encode(&topic, PATH);
    let sep = if topic.starts_with('/') { "" } else { "/" };
    attrs.insert("source".into(), format!("{base}{sep}{path}").into());
    attrs.insert("type".into(), "sluice.mqtt.message".into());
    attrs.insert("subject".into(), Value::from(topic.as_ref()));
    let data = (!payload.is_empty()).then(|| {
        attrs.insert("datacontenttype".into(), content_type.into());
        Data {
            kind,
            bytes: payload.clone(),
        }
    });
    EncodedEvent {
        id: m.plain_id.clone(),
        attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::cloudevents::STRUCTURED;

    fn config(yaml: &str) -> MqttSourceConfig {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn errors_of(yaml: &str) -> Vec<String> {
        let mut errors = Errors::default();
        config(yaml).check("connectors[0]", &mut errors);
        errors.0.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn fields_are_checked_with_their_paths() {
        assert!(errors_of("{url: 'mqtt://127.0.0.1:1883', topic: 'a/#'}").is_empty());
        assert!(
            errors_of("{url: 'mqtt://h', topic: '$share/g/a/+/b', protocol: '3.1.1'}").is_empty()
        );
        assert!(errors_of("{url: 'mqtt://h', topic: 'a', protocol: 5}").is_empty());
        let e = errors_of("{topic: 'a'}");
        assert!(e[0].starts_with("connectors[0].url: "), "{e:?}");
        let e = errors_of("{url: 'http://h', topic: 'a'}");
        assert!(e[0].contains("not mqtt or mqtts"), "{e:?}");
        let e = errors_of("{url: 'mqtt://h'}");
        assert!(e[0].starts_with("connectors[0].topic: "), "{e:?}");
        let e = errors_of("{url: 'mqtt://h', topic: 'a/#/b'}");
        assert!(e[0].starts_with("connectors[0].topic: "), "{e:?}");
        let e = errors_of("{url: 'mqtt://h', topic: '$share/g'}");
        assert!(e[0].starts_with("connectors[0].topic: "), "{e:?}");
        let e = errors_of("{url: 'mqtt://h', topic: 'a', protocol: 4.5}");
        assert_eq!(
            e,
            ["connectors[0].protocol: must be 5 or \"3.1.1\", not 4.5"]
        );
        let e = errors_of("{url: 'mqtt://h', topic: 'a', batch: 0}");
        assert!(e[0].starts_with("connectors[0].batch: "), "{e:?}");
        let e = errors_of("{url: 'mqtt://h', topic: 'a', client_id: ''}");
        assert!(e[0].starts_with("connectors[0].client_id: "), "{e:?}");
    }

    #[test]
    fn url_credentials_and_defaults() {
        let mut errors = Errors::default();
        let b = Broker::check(
            Some("mqtt://u%40x:p%3Ay@example.com"),
            None,
            None,
            Protocol::V5,
            "t",
            &mut errors,
        )
        .unwrap();
        assert_eq!(b.port, 1883);
        assert_eq!(b.username.as_deref(), Some("u@x"));
        assert_eq!(b.password.as_deref(), Some("p:y"));
        assert_eq!(b.uri(), "mqtt://example.com:1883");
        assert_eq!(format!("{b:?}"), "mqtt://example.com:1883");
        let b = Broker::check(
            Some("mqtts://h"),
            None,
            None,
            Protocol::V5,
            "t",
            &mut errors,
        )
        .unwrap();
        assert_eq!((b.tls, b.port), (true, 8883));
        assert!(errors.is_empty());
    }

    fn received(publish: Publish) -> Received {
        Received {
            publish,
            connection: 0,
            plain_id: "plain-1".into(),
        }
    }

    fn v5(payload: &[u8], ct: Option<&str>, props: &[(&str, &str)]) -> Received {
        let mut p = m5::Publish::new(
            "a/b c",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            payload.to_vec(),
            None,
        );
        p.properties = Some(m5::PublishProperties {
            content_type: ct.map(String::from),
            user_properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        });
        received(Publish::V5(p))
    }

    #[test]
    fn binary_structured_and_plain_messages() {
        let base = "mqtt://h:1883";
        let e = event_of(
            &v5(
                b"{\"x\":1}",
                Some("application/json"),
                &[
                    ("specversion", "1.0"),
                    ("id", "e1"),
                    ("source", "/s"),
                    ("type", "t"),
                    ("X-Other", "kept out"),
                ],
            ),
            base,
        )
        .unwrap();
        let ev = e.decode();
        assert_eq!(ev.id(), "e1");
        assert_eq!(ev.attr_str("datacontenttype"), Some("application/json"));
        assert_eq!(ev.attrs.len(), 5);
        assert_eq!(ev.data.unwrap().kind, DataKind::Json);

        let structured = br#"{"specversion":"1.0","id":"e2","source":"/s","type":"t","data":"hi"}"#;
        let e = event_of(&v5(structured, Some(STRUCTURED), &[]), base).unwrap();
        assert_eq!(e.id, "e2");
        let e = event_of(&v5(structured, None, &[]), base).unwrap();
        assert_eq!(e.id, "e2");

        let e = event_of(&v5(b"\x00\x01", None, &[]), base)
            .unwrap()
            .decode();
        assert_eq!(e.id(), "plain-1");
        assert_eq!(e.attr_str("source"), Some("mqtt://h:1883/a/b%20c"));
        assert_eq!(e.attr_str("type"), Some("sluice.mqtt.message"));
        assert_eq!(e.attr_str("subject"), Some("a/b c"));
        assert_eq!(
            e.attr_str("datacontenttype"),
            Some("application/octet-stream")
        );
        let e = event_of(&v5(b"[1]", None, &[]), base).unwrap().decode();
        assert_eq!(e.attr_str("datacontenttype"), Some("application/json"));
        let e = event_of(&v5(b"hello", Some("text/plain"), &[]), base)
            .unwrap()
            .decode();
        assert_eq!(e.data.unwrap().kind, DataKind::Text);

        // Claims to be an event and is not: an error (the connector drops it).
        assert!(event_of(&v5(b"{}", Some(STRUCTURED), &[]), base).is_err());
        assert!(event_of(&v5(b"x", None, &[("specversion", "1.0")]), base).is_err());
        let v3 = received(Publish::V311(rumqttc::Publish::new(
            "t",
            rumqttc::QoS::AtLeastOnce,
            br#"{"specversion":"1.0","id":"x"}"#.to_vec(),
        )));
        assert!(event_of(&v3, base).is_err());
    }
}
