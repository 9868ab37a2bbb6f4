//! Pull connectors (sources): consumers of other systems that append what they receive
//! to a bus, acknowledging upstream only after Redis acknowledged the append
//! (docs/connectors.md). One module per system; what they share is here:
//!
//! - the configuration (`connectors[]`: `name`, `kind`, `bus`, `dedupe` and the kind's
//!   own fields, checked like a target's: a field of another kind is named as such);
//! - [`Intake`]: the append of a batch of events with loop prevention (`sluicepath`),
//!   deduplication on (connector, event id) within `dedupe`, and per-connector metrics;
//! - [`pause`]: the reconnect backoff.
//!
//! A connector's loop is: pull at most a bounded batch (the broker's prefetch / max
//! messages), build the events, [`Intake::append`] (one pipelined round trip), then
//! acknowledge the batch upstream. A slow Redis slows the loop: nothing is pulled while
//! an append is outstanding, so nothing is buffered without bound.

pub mod amqp;
pub mod mqtt;
pub mod nats;
pub mod outbox;
pub mod redis_stream;
pub mod sqs;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::bus::{self, BusError, BusSpec};
use crate::config::value::fields_of;
use crate::config::{ConnectorConfig, Errors};
use crate::event::EncodedEvent;
use crate::observability::metrics::{Metrics, Via};

/// The kind of a connector and its own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConnectorKindConfig {
    /// An Amazon SQS queue, typically the target of an EventBridge rule.
    Sqs(sqs::SqsConfig),
    /// A RabbitMQ (AMQP 0-9-1) queue.
    Rabbitmq(amqp::AmqpSourceConfig),
    /// A NATS JetStream durable consumer, or a core NATS subject.
    Nats(nats::NatsSourceConfig),
    /// An MQTT 3.1.1 / 5 topic filter, QoS 1.
    Mqtt(mqtt::MqttSourceConfig),
    /// A stream of another Redis, through a consumer group.
    Redis(redis_stream::RedisSourceConfig),
    /// A transactional outbox table in PostgreSQL.
    PostgresOutbox(outbox::OutboxConfig),
}

impl ConnectorKindConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorKindConfig::Sqs(_) => "sqs",
            ConnectorKindConfig::Rabbitmq(_) => "rabbitmq",
            ConnectorKindConfig::Nats(_) => "nats",
            ConnectorKindConfig::Mqtt(_) => "mqtt",
            ConnectorKindConfig::Redis(_) => "redis",
            ConnectorKindConfig::PostgresOutbox(_) => "postgres-outbox",
        }
    }
}

/// Each kind's own fields, kinds in the order error messages name them.
fn kind_fields() -> [(&'static str, &'static [&'static str]); 6] {
    [
        ("sqs", fields_of::<sqs::SqsConfig>()),
        ("rabbitmq", fields_of::<amqp::AmqpSourceConfig>()),
        ("nats", fields_of::<nats::NatsSourceConfig>()),
        ("mqtt", fields_of::<mqtt::MqttSourceConfig>()),
        ("redis", fields_of::<redis_stream::RedisSourceConfig>()),
        ("postgres-outbox", fields_of::<outbox::OutboxConfig>()),
    ]
}

/// Checks connector `c` (at path `at`, e.g. `connectors[0]`): its bus, its fields and
/// the kind's own checks.
pub fn check(c: &ConnectorConfig, bus_names: &HashSet<&str>, at: &str, errors: &mut Errors) {
    if !bus_names.contains(c.bus.as_str()) {
        errors.at(format!("{at}.bus"), format!("no bus named {:?}", c.bus));
    }
    if c.dedupe.check().is_err() {
        errors.at(format!("{at}.dedupe"), "must be 1ms to 365d, or off");
    }
    let kind = c.kind.kind();
    crate::config::value::check_kind_fields(
        kind,
        &kind_fields(),
        &c.other_fields,
        at,
        errors,
        |owners| {
            format!(
                "applies only to {} connectors, not {kind}",
                crate::config::value::and_list(owners)
            )
        },
        |field| format!("unknown field `{field}` of a {kind} connector (see docs/connectors.md)"),
    );
    match &c.kind {
        ConnectorKindConfig::Sqs(k) => k.check(at, errors),
        ConnectorKindConfig::Rabbitmq(k) => k.check(at, errors),
        ConnectorKindConfig::Nats(k) => k.check(at, errors),
        ConnectorKindConfig::Mqtt(k) => k.check(at, errors),
        ConnectorKindConfig::Redis(k) => k.check(at, errors),
        ConnectorKindConfig::PostgresOutbox(k) => k.check(at, errors),
    }
}

/// Starts every connector of the file on `tasks` (connectors change with a restart).
pub fn spawn_all(
    connectors: &[ConnectorConfig],
    env: Env,
    tasks: &tokio_util::task::TaskTracker,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tracing::Instrument;
    for c in connectors {
        let intake = Intake {
            name: c.name.to_string(),
            kind: c.kind.kind(),
            bus: BusSpec::of(&c.bus, &env.buses, &env.replica),
            dedupe: c.dedupe.0,
            dedupe_tag: match c.kind {
                ConnectorKindConfig::Sqs(_) => "@aws".to_string(),
                _ => format!("@{}", c.name),
            },
            gateway_id: env.gateway_id.clone(),
            replica: env.replica.clone(),
            redis: env.redis.clone(),
            metrics: env.metrics.clone(),
        };
        let span = tracing::info_span!("connector", connector = %c.name, kind = intake.kind);
        let shutdown = env.shutdown.clone();
        match &c.kind {
            ConnectorKindConfig::Sqs(k) => {
                let sdk = env
                    .aws
                    .as_ref()
                    .context("the AWS environment is not loaded")?;
                let connector = sqs::SqsConnector::new(k, sdk, intake)
                    .with_context(|| format!("connector {}", c.name))?;
                tasks.spawn(sqs::run(Arc::new(connector), shutdown).instrument(span));
            }
            ConnectorKindConfig::Rabbitmq(k) => {
                tasks.spawn(amqp::run(k.clone(), intake, shutdown).instrument(span));
            }
            ConnectorKindConfig::Nats(k) => {
                tasks.spawn(nats::run(k.clone(), intake, shutdown).instrument(span));
            }
            ConnectorKindConfig::Mqtt(k) => {
                tasks.spawn(mqtt::run(k.clone(), intake, shutdown).instrument(span));
            }
            ConnectorKindConfig::Redis(k) => {
                tasks.spawn(redis_stream::run(k.clone(), intake, shutdown).instrument(span));
            }
            ConnectorKindConfig::PostgresOutbox(k) => {
                tasks.spawn(outbox::run(k.clone(), intake, shutdown).instrument(span));
            }
        }
    }
    Ok(())
}

/// What the connectors of one gateway share.
pub struct Env {
    pub buses: Vec<crate::config::BusConfig>,
    /// This replica's consumer id (the `via` mark of traced buses).
    pub replica: String,
    pub gateway_id: String,
    pub redis: ConnectionManager,
    pub metrics: Arc<Metrics>,
    pub aws: Option<aws_config::SdkConfig>,
    pub shutdown: CancellationToken,
}

/// Where a connector's events go: its bus, through the shared Redis connection.
pub struct Intake {
    name: String,
    kind: &'static str,
    bus: BusSpec,
    dedupe: Option<Duration>,
    /// The dedupe key's source part: `@NAME`, `@aws` for SQS (the key AWS PutEvents
    /// uses, so an event that comes both ways is appended once).
    dedupe_tag: String,
    gateway_id: String,
    /// This replica's consumer id.
    replica: String,
    redis: ConnectionManager,
    metrics: Arc<Metrics>,
}

/// What became of a batch given to [`Intake::append`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// New events now in the bus.
    pub appended: usize,
    /// Events whose id this connector appended within `dedupe`.
    pub duplicates: usize,
    /// Events that were on this gateway before (`sluicepath`), dropped.
    pub returned: usize,
}

impl Intake {
    /// The connector's name (`connectors[].name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bus the events go to.
    pub fn bus(&self) -> &str {
        &self.bus.name
    }

    /// This replica's consumer id (unique per process): the consumer name where the
    /// broker has consumer groups.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// This gateway's id, for loop prevention by connectors that see it elsewhere.
    pub fn gateway_id(&self) -> &str {
        &self.gateway_id
    }

    /// Appends `events` in one pipelined round trip and returns once Redis acknowledged
    /// them; only then may the connector acknowledge them upstream. On an error nothing
    /// is to be acknowledged: the broker redelivers, and the dedupe window keeps what did
    /// get in from being appended twice.
    pub async fn append(&mut self, mut events: Vec<EncodedEvent>) -> Result<Appended, BusError> {
        let returned = crate::ingress::arrive_all(&mut events, &self.gateway_id);
        self.append_arrived(events, returned).await
    }

    /// [`Intake::append`] of events whose `sluicepath` the connector already applied
    /// (`returned` of them dropped), as the SQS connector does with the AWS envelope.
    pub async fn append_arrived(
        &mut self,
        events: Vec<EncodedEvent>,
        returned: usize,
    ) -> Result<Appended, BusError> {
        let pulled = events.len() + returned;
        let mut result = Appended {
            returned,
            ..Appended::default()
        };
        if !events.is_empty() {
            let appended = match self.dedupe {
                Some(window) => {
                    let keyed: Vec<_> = events
                        .iter()
                        .map(|e| {
                            let key = bus::dedupe_key(&self.bus.name, &self.dedupe_tag, &e.id);
                            (&self.bus, e, key)
                        })
                        .collect();
                    bus::append_once_each(&mut self.redis, &keyed, window, self.kind)
                        .await
                        .map(|each| each.into_iter().filter(|a| *a).count())
                }
                None => bus::append(&mut self.redis, &self.bus, &events, self.kind)
                    .await
                    .map(|()| events.len()),
            };
            match appended {
                Ok(n) => {
                    result.appended = n;
                    result.duplicates = events.len() - n;
                }
                Err(e) => {
                    self.metrics.connector(&self.name, "failed", pulled);
                    return Err(e);
                }
            }
        }
        self.metrics
            .ingested(&self.bus.name, Via::Connector(self.kind), result.appended);
        self.metrics
            .connector(&self.name, "appended", result.appended);
        self.metrics
            .connector(&self.name, "duplicate", result.duplicates);
        self.metrics
            .connector(&self.name, "returned", result.returned);
        Ok(result)
    }

    /// Counts `n` messages that are not events (logged and settled by the connector as
    /// docs/connectors.md says for its kind).
    pub fn invalid(&self, n: usize) {
        self.metrics.connector(&self.name, "invalid", n);
    }
}

/// Waits before the next try after `failures` failures in a row (200 ms doubling, at
/// most 12.8 s), or until shutdown.
pub async fn pause(failures: u32, shutdown: &CancellationToken) {
    let wait = Duration::from_millis(200 * 2u64.pow(failures.clamp(1, 7) - 1));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}
