//! The MQTT target: each event a QoS 1 PUBLISH (not retained) to one topic; the
//! delivery succeeds when the broker's PUBACK for it arrived (docs/connectors/mqtt.md).
//!
//! One client and one event-loop task per target, started on the first delivery. The
//! packet id of a PUBLISH is chosen inside rumqttc's event loop, which reports each
//! PUBLISH it sends in the order the requests were queued: a delivery queues its
//! request and its waiter together (under one short lock), the event-loop task pairs
//! the next reported packet id with the oldest waiter and completes it on the PUBACK of
//! that id. When the connection drops, every waiting delivery fails as retryable (the
//! dispatcher retries; the broker may have got some of them: at-least-once) and
//! rumqttc's own resend queue is emptied so nothing is paired twice; the task
//! reconnects with backoff, and until it is connected again deliveries fail at once
//! (retryable) rather than wait for their timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{info, warn};

use super::{Delivered, DeliveryError, Message, MessageMode};
use crate::config::value::SecretRef;
use crate::config::Errors;
use crate::connectors::mqtt::{
    check_client_id, check_protocol, check_topic, client, Broker, Client, EventLoop, Polled,
    Protocol, ProtocolField, Session,
};
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: mqtt`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttTargetConfig {
    /// `mqtt://host:port` or `mqtts://`; user info is the login.
    #[serde(default)]
    pub url: Option<String>,
    /// The topic every event is published to.
    #[serde(default)]
    pub topic: Option<String>,
    /// `5` (default) or `"3.1.1"`.
    #[serde(default)]
    pub protocol: Option<ProtocolField>,
    /// `binary` (default; MQTT 5 only) or `structured` (the default for 3.1.1).
    #[serde(default)]
    pub mode: Option<MessageMode>,
    /// Default `sluice-{gateway_id}-{rule}-{target}-{random}`: a clean session each start.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// A checked `mqtt` target.
#[derive(Debug)]
pub struct MqttSpec {
    broker: Broker,
    topic: String,
    mode: MessageMode,
    client_id: Option<String>,
    transform: Option<Transform>,
}

impl MqttTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<MqttSpec> {
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
            None => errors.at(format!("{at}.topic"), "an mqtt target needs a topic"),
            Some(t) => errors.check(format!("{at}.topic"), check_topic(t)),
        }
        if let Some(id) = &self.client_id {
            errors.check(format!("{at}.client_id"), check_client_id(id));
        }
        let mode = match (self.mode, protocol) {
            (Some(MessageMode::Binary), Protocol::V311) => {
                errors.at(
                    format!("{at}.mode"),
                    "MQTT 3.1.1 has no properties to carry attributes: only structured mode",
                );
                MessageMode::Structured
            }
            (Some(mode), _) => mode,
            (None, Protocol::V5) => MessageMode::Binary,
            (None, Protocol::V311) => MessageMode::Structured,
        };
        if errors.len() > before {
            return None;
        }
        Some(MqttSpec {
            broker: broker?,
            topic: self.topic.clone()?,
            mode,
            client_id: self.client_id.clone(),
            transform,
        })
    }
}

/// A delivery waiting for its PUBACK.
type Waiter = oneshot::Sender<Result<(), DeliveryError>>;

/// The connection of a started target: the client and the deliveries whose PUBLISH
/// the event loop has not reported yet, oldest first.
struct Connection {
    client: Client,
    queued: Mutex<VecDeque<Waiter>>,
    /// The last connection attempt failed: deliveries fail at once (retried by the
    /// dispatcher) instead of piling up in rumqttc's request channel.
    down: AtomicBool,
    /// Stops the event-loop task when the target is dropped (a new plan).
    _stop: DropGuard,
}

/// A started `mqtt` target.
pub struct MqttTarget {
    spec: MqttSpec,
    timeout: Duration,
    concurrency: usize,
    gateway_id: String,
    connection: OnceLock<Arc<Connection>>,
}

impl std::fmt::Debug for MqttTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttTarget")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl MqttTarget {
    pub fn new(
        spec: MqttSpec,
        timeout: Duration,
        concurrency: usize,
        gateway_id: &str,
    ) -> anyhow::Result<MqttTarget> {
        Ok(MqttTarget {
            spec,
            timeout,
            concurrency: concurrency.max(1),
            gateway_id: gateway_id.to_string(),
            connection: OnceLock::new(),
        })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.spec.transform.as_ref()
    }

    /// The connection, started on first use (the event loop connects on its own).
    fn connection(&self) -> &Arc<Connection> {
        self.connection.get_or_init(|| {
            let client_id = self.spec.client_id.clone().unwrap_or_else(|| {
                let id = uuid::Uuid::new_v4().simple().to_string();
                format!("sluice-{}-{}", self.gateway_id, &id[..12])
            });
            let inflight = self.concurrency.clamp(1, 1000) as u16;
            let (client, event_loop) = client(
                &self.spec.broker,
                &Session {
                    client_id: client_id.clone(),
                    persistent: false,
                    expiry: Duration::ZERO,
                    manual_acks: false,
                    // rumqttc numbers packets up to its inflight limit: leave room so
                    // a slow PUBACK rarely meets its id again.
                    inflight: inflight.saturating_mul(4).max(16),
                    requests: self.concurrency + 16,
                },
            );
            let stop = CancellationToken::new();
            let connection = Arc::new(Connection {
                client,
                queued: Mutex::new(VecDeque::new()),
                down: AtomicBool::new(false),
                _stop: stop.clone().drop_guard(),
            });
            info!(broker = ?self.spec.broker, topic = %self.spec.topic, %client_id, "MQTT target connecting");
            tokio::spawn(drive(event_loop, Arc::downgrade(&connection), stop));
            connection
        })
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let payload = super::function::transformed(self.transform(), event, ctx);
        let stamped = Message::stamped(event, &self.gateway_id);
        let message = Message::of(&stamped, self.spec.mode, payload);
        let properties = match self.spec.broker.protocol {
            Protocol::V5 => message
                .attributes
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            // No properties in 3.1.1: the body is all there is.
            Protocol::V311 => Vec::new(),
        };
        let content_type = message.content_type.map(|c| c.into_owned());
        let connection = self.connection();
        if connection.down.load(Ordering::Relaxed) {
            return Err(lost("not connected to the MQTT broker (reconnecting)"));
        }
        let (tx, rx) = oneshot::channel();
        {
            // The waiter joins the queue in the order of the request: no await here.
            let mut queued = connection.queued.lock().expect("not poisoned");
            connection
                .client
                .try_publish(&self.spec.topic, message.body, content_type, properties)
                .map_err(|e| DeliveryError::Failed {
                    message: format!("MQTT publish not queued: {e}"),
                    retryable: true,
                })?;
            queued.push_back(tx);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(Ok(()))) => Ok(Delivered::default()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(DeliveryError::Failed {
                message: "MQTT connection closed before the PUBACK".into(),
                retryable: true,
            }),
            Err(_) => Err(DeliveryError::Timeout(self.timeout)),
        }
    }
}

/// The event-loop task of one target: pairs packet ids with waiting deliveries,
/// completes them on PUBACK, fails them when the connection drops, reconnects.
async fn drive(
    mut event_loop: EventLoop,
    connection: std::sync::Weak<Connection>,
    stop: CancellationToken,
) {
    let mut sent: HashMap<u16, Waiter> = HashMap::new();
    // A PUBLISH rumqttc holds back until its packet id is free (rumqttc's "collision").
    let mut held: Option<Waiter> = None;
    let mut failures = 0u32;
    loop {
        let polled = tokio::select! {
            p = event_loop.poll() => p,
            _ = stop.cancelled() => break,
        };
        let Some(conn) = connection.upgrade() else {
            break;
        };
        let pop = || conn.queued.lock().expect("not poisoned").pop_front();
        match polled {
            Ok(Polled::Connected { .. }) => {
                if failures > 0 {
                    info!("MQTT target reconnected");
                }
                failures = 0;
                conn.down.store(false, Ordering::Relaxed);
            }
            Ok(Polled::Published(pkid)) => {
                if let Some(w) = held.take().or_else(pop) {
                    if let Some(old) = sent.insert(pkid, w) {
                        let _ = old.send(Err(lost("its packet id was reused")));
                    }
                }
            }
            Ok(Polled::AwaitAck) => held = held.take().or_else(pop),
            Ok(Polled::PubAck { pkid, refused }) => {
                if let Some(w) = sent.remove(&pkid) {
                    let _ = w.send(match refused {
                        None => Ok(()),
                        Some(reason) => Err(DeliveryError::Failed {
                            retryable: !matches!(
                                reason.as_str(),
                                "NotAuthorized" | "TopicNameInvalid" | "PayloadFormatInvalid"
                            ),
                            message: format!("MQTT broker refused the message: {reason}"),
                        }),
                    });
                }
            }
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                conn.down.store(true, Ordering::Relaxed);
                warn!(error = %e, failures, "MQTT target connection failed; reconnecting");
                // Whatever was on its way is failed (retried by the dispatcher), and
                // rumqttc must not resend it behind our back. Its resend list holds the
                // PUBLISHes sent and not acknowledged (`sent`, `held`), then those it
                // took from its request channel, which are the oldest `queued`; later
                // requests are still in the channel and keep their waiters.
                let pending = event_loop.drop_pending();
                let taken = pending.saturating_sub(sent.len() + usize::from(held.is_some()));
                let reason = format!("MQTT connection lost: {e}");
                for w in sent.drain().map(|(_, w)| w).chain(held.take()) {
                    let _ = w.send(Err(lost(&reason)));
                }
                {
                    let mut queued = conn.queued.lock().expect("not poisoned");
                    let taken = taken.min(queued.len());
                    for w in queued.drain(..taken) {
                        let _ = w.send(Err(lost(&reason)));
                    }
                }
                drop(conn);
                crate::connectors::pause(failures, &stop).await;
            }
        }
    }
}

fn lost(reason: &str) -> DeliveryError {
    DeliveryError::Failed {
        message: reason.to_string(),
        retryable: true,
    }
}
