//! Targets: where matched events are delivered. A target turns an event into a request
//! and reports the outcome; it knows nothing about Redis, retries or acknowledgements.

pub mod alibaba_eventbridge;
pub mod amqp;
pub mod aws_eventbridge;
pub mod aws_lambda;
pub mod batch;
pub mod bridge;
pub mod bus;
pub mod function;
pub mod handshake;
pub mod http;
pub mod mqtt;
pub mod nats;
pub mod oauth;
pub mod redis_stream;
pub mod sql;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

pub use alibaba_eventbridge::{AlibabaEventBridgeConfig, AlibabaEventBridgeTarget};
pub use aws_eventbridge::{AwsEventBridgeConfig, AwsEventBridgeTarget};
pub use aws_lambda::{AwsLambdaConfig, AwsLambdaTarget};
pub use bus::BusTargetConfig;
pub use function::{FunctionTarget, FunctionTargetConfig};
pub use http::{HttpConfig, HttpTarget};

use crate::config::value::fields_of;
use crate::config::{Delivery, Errors, FunctionConfig, TargetConfig, TargetKind};
use crate::event::Event;
use crate::rules::transform::{Context, Payload, Transform};

/// The kind of a target and its own fields: one arm per kind, its config struct in the
/// kind's module. Adding a kind: a module with its config, `build` and runtime, an arm
/// here, in [`TargetKind`] and in [`Target`] (docs/architecture.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetKindConfig {
    /// An HTTP endpoint, in the CloudEvents HTTP binding.
    Http(HttpConfig),
    /// The same as `http`: named for Knative Services, OpenFaaS and other CloudEvents sinks.
    Cloudevents(HttpConfig),
    /// A function hosted by Sluice (`functions:`).
    Function(FunctionTargetConfig),
    AwsLambda(AwsLambdaConfig),
    AwsEventbridge(AwsEventBridgeConfig),
    AlibabaEventbridge(AlibabaEventBridgeConfig),
    /// Another bus of this gateway: forwarded by the router (`bus.rs`).
    Bus(BusTargetConfig),
    /// A RabbitMQ (AMQP 0-9-1) exchange, with publisher confirms.
    Rabbitmq(amqp::AmqpTargetConfig),
    /// A NATS JetStream stream (or a core NATS subject).
    Nats(nats::NatsTargetConfig),
    /// An MQTT topic, QoS 1.
    Mqtt(mqtt::MqttTargetConfig),
    /// A stream of another Redis (XADD).
    Redis(redis_stream::RedisTargetConfig),
    /// Rows of a PostgreSQL table.
    Postgres(sql::SqlTargetConfig),
    /// Rows of a MySQL / MariaDB table.
    Mysql(sql::SqlTargetConfig),
}

impl TargetKindConfig {
    pub fn kind(&self) -> TargetKind {
        match self {
            TargetKindConfig::Http(_) => TargetKind::Http,
            TargetKindConfig::Cloudevents(_) => TargetKind::Cloudevents,
            TargetKindConfig::Function(_) => TargetKind::Function,
            TargetKindConfig::AwsLambda(_) => TargetKind::AwsLambda,
            TargetKindConfig::AwsEventbridge(_) => TargetKind::AwsEventbridge,
            TargetKindConfig::AlibabaEventbridge(_) => TargetKind::AlibabaEventbridge,
            TargetKindConfig::Bus(_) => TargetKind::Bus,
            TargetKindConfig::Rabbitmq(_) => TargetKind::Rabbitmq,
            TargetKindConfig::Nats(_) => TargetKind::Nats,
            TargetKindConfig::Mqtt(_) => TargetKind::Mqtt,
            TargetKindConfig::Redis(_) => TargetKind::Redis,
            TargetKindConfig::Postgres(_) => TargetKind::Postgres,
            TargetKindConfig::Mysql(_) => TargetKind::Mysql,
        }
    }
}

/// Each kind's own fields, kinds in the order error messages name them.
fn kind_fields() -> [(TargetKind, &'static [&'static str]); 13] {
    [
        (
            TargetKind::AwsEventbridge,
            fields_of::<AwsEventBridgeConfig>(),
        ),
        (
            TargetKind::AlibabaEventbridge,
            fields_of::<AlibabaEventBridgeConfig>(),
        ),
        (TargetKind::Function, fields_of::<FunctionTargetConfig>()),
        (TargetKind::AwsLambda, fields_of::<AwsLambdaConfig>()),
        (TargetKind::Http, fields_of::<HttpConfig>()),
        (TargetKind::Cloudevents, fields_of::<HttpConfig>()),
        (TargetKind::Bus, fields_of::<BusTargetConfig>()),
        (TargetKind::Rabbitmq, fields_of::<amqp::AmqpTargetConfig>()),
        (TargetKind::Nats, fields_of::<nats::NatsTargetConfig>()),
        (TargetKind::Mqtt, fields_of::<mqtt::MqttTargetConfig>()),
        (
            TargetKind::Redis,
            fields_of::<redis_stream::RedisTargetConfig>(),
        ),
        (TargetKind::Postgres, fields_of::<sql::SqlTargetConfig>()),
        (TargetKind::Mysql, fields_of::<sql::SqlTargetConfig>()),
    ]
}

/// Refuses fields of other kinds (naming the kinds they are for) and unknown fields.
pub(crate) fn check_fields(config: &TargetConfig, at: &str, errors: &mut Errors) {
    let kind = config.kind.kind();
    crate::config::value::check_kind_fields(
        kind,
        &kind_fields(),
        &config.other_fields,
        at,
        errors,
        |owners| {
            let names: Vec<&str> = owners.iter().map(|k| k.as_str()).collect();
            format!(
                "applies only to {} targets, not {}",
                crate::config::value::and_list(&names),
                kind.as_str()
            )
        },
        |field| {
            format!(
                "unknown field `{field}` of a {} target (see docs/configuration.md)",
                kind.as_str()
            )
        },
    );
}

/// What a target's build may consult besides its own fields.
pub struct BuildContext<'a> {
    pub buses: &'a HashSet<&'a str>,
    pub functions: &'a [FunctionConfig],
    pub delivery: &'a Delivery,
    pub gateway_id: &'a str,
    /// The account and region of the AWS view of events without AWS extensions
    /// (`envelope: aws`): the `aws:` section's, else `000000000000` and `us-east-1`.
    pub aws_identity: (&'a str, &'a str),
}

/// A target as the plan built it: checked, compiled, secrets resolved; started by
/// [`Target::start`].
#[derive(Debug)]
pub enum BuiltTarget {
    Http(http::HttpSpec),
    AwsEventBridge(aws_eventbridge::AwsEventBridgeSpec),
    AlibabaEventBridge(alibaba_eventbridge::AlibabaEventBridgeSpec),
    Function(function::FunctionSpec),
    AwsLambda(aws_lambda::AwsLambdaSpec),
    Amqp(amqp::AmqpSpec),
    Nats(nats::NatsSpec),
    Mqtt(mqtt::MqttSpec),
    Redis(redis_stream::RedisSpec),
    Sql(sql::SqlSpec),
}

/// Checks and builds the kind-specific part of `config` (the target at path `at`),
/// with its transform already compiled; every error goes to `errors`.
pub fn build(
    config: &TargetConfig,
    transform: Option<Transform>,
    cx: &BuildContext<'_>,
    at: &str,
    errors: &mut Errors,
) -> Option<BuiltTarget> {
    check_fields(config, at, errors);
    let has_transform = config.transform.is_some();
    if let TargetKindConfig::Http(c) | TargetKindConfig::Cloudevents(c) = &config.kind {
        if c.batch.is_some() {
            // One request carries many events: in the batch format, in any order.
            if has_transform {
                errors.at(
                    format!("{at}.batch"),
                    "a batch carries the events in the CloudEvents batch format: no transform",
                );
            }
            if config.ordering.is_some() {
                errors.at(
                    format!("{at}.batch"),
                    "ordered targets deliver one event of a key at a time: no batch",
                );
            }
        }
    }
    match &config.kind {
        TargetKindConfig::Http(c) => c
            .build("http", transform, at, errors)
            .map(BuiltTarget::Http),
        TargetKindConfig::Cloudevents(c) => c
            .build("cloudevents", transform, at, errors)
            .map(BuiltTarget::Http),
        TargetKindConfig::Function(c) => c
            .build(transform, cx, at, errors)
            .map(BuiltTarget::Function),
        TargetKindConfig::AwsLambda(c) => c
            .build(transform, cx, at, errors)
            .map(BuiltTarget::AwsLambda),
        TargetKindConfig::AwsEventbridge(c) => c
            .build(has_transform, cx, at, errors)
            .map(BuiltTarget::AwsEventBridge),
        TargetKindConfig::AlibabaEventbridge(c) => c
            .build(has_transform, cx, at, errors)
            .map(BuiltTarget::AlibabaEventBridge),
        // Checked by the plan (`BusTargetConfig::check`): the router forwards, nothing
        // is started.
        TargetKindConfig::Bus(_) => None,
        TargetKindConfig::Rabbitmq(c) => c.build(transform, at, errors).map(BuiltTarget::Amqp),
        TargetKindConfig::Nats(c) => c.build(transform, at, errors).map(BuiltTarget::Nats),
        TargetKindConfig::Mqtt(c) => c.build(transform, at, errors).map(BuiltTarget::Mqtt),
        TargetKindConfig::Redis(c) => c.build(transform, at, errors).map(BuiltTarget::Redis),
        TargetKindConfig::Postgres(c) => c
            .build(sql::Dialect::Postgres, has_transform, at, errors)
            .map(BuiltTarget::Sql),
        TargetKindConfig::Mysql(c) => c
            .build(sql::Dialect::Mysql, has_transform, at, errors)
            .map(BuiltTarget::Sql),
    }
}

/// Why a delivery attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    #[error("target answered HTTP {status}")]
    Status {
        status: u16,
        /// The `Retry-After` of a 429 or 503 answer.
        retry_after: Option<Duration>,
    },
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request cannot be built from this event (say, a URL filled from its data is
    /// invalid): no attempt can succeed.
    #[error("cannot build the request: {0}")]
    Invalid(String),
    /// A target other than HTTP failed (a function error, an entry a cloud refused).
    #[error("{message}")]
    Failed { message: String, retryable: bool },
}

impl DeliveryError {
    /// Whether another attempt may succeed: timeouts, connection errors, 408, 410, 429
    /// and 5xx are retried; other answers (4xx, 3xx: redirects are not followed) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            // 410 Gone pauses the target (`dispatch::limits::Gone`); its event is kept
            // for when it is resumed.
            DeliveryError::Status { status, .. } => {
                matches!(status, 408 | 410 | 429) || (500..600).contains(status)
            }
            DeliveryError::Request(_) | DeliveryError::Timeout(_) => true,
            DeliveryError::Invalid(_) => false,
            DeliveryError::Failed { retryable, .. } => *retryable,
        }
    }

    /// The HTTP status, if the target answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The wait the target asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A successful delivery.
#[derive(Debug, Default)]
pub struct Delivered {
    /// The HTTP status of the answer, for targets that speak HTTP.
    pub status: Option<u16>,
    /// What the target answered with, where it matters (a function's result).
    pub output: Option<Bytes>,
}

/// Replica-wide things that targets share (one per gateway process).
#[derive(Debug, Default, Clone)]
pub struct TargetEnv {
    /// This gateway's id in bridge traces (`event::bridge`).
    pub gateway_id: String,
    /// The AWS environment (credentials, region), loaded once when a target needs it.
    pub aws: Option<aws_config::SdkConfig>,
    /// The function host, for `function` targets.
    pub functions: Option<std::sync::Arc<crate::functions::FunctionHost>>,
}

impl TargetEnv {
    /// Loads what the plan's targets need: the AWS environment only when an AWS target
    /// or connector exists (`needs_aws`; loading may query instance metadata).
    pub async fn load(gateway_id: String, needs_aws: bool) -> TargetEnv {
        let aws = if needs_aws {
            Some(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await,
            )
        } else {
            None
        };
        TargetEnv {
            gateway_id,
            aws,
            functions: None,
        }
    }
}

/// A configured target of any kind, ready to deliver.
#[derive(Debug)]
pub enum Target {
    /// `http` and `cloudevents`.
    Http(HttpTarget),
    AwsEventBridge(AwsEventBridgeTarget),
    AlibabaEventBridge(AlibabaEventBridgeTarget),
    /// A function of Sluice's own function host.
    Function(FunctionTarget),
    /// A function on AWS Lambda (or another Lambda Invoke API).
    AwsLambda(AwsLambdaTarget),
    Amqp(amqp::AmqpTarget),
    Nats(nats::NatsTarget),
    Mqtt(mqtt::MqttTarget),
    Redis(redis_stream::RedisTarget),
    Sql(sql::SqlTarget),
}

impl Target {
    /// Starts a target the plan built: connection pools, SDK clients, batchers.
    /// Fails only on what the environment lacks (no AWS region, no function host).
    pub fn start(
        built: BuiltTarget,
        timeout: Duration,
        concurrency: usize,
        env: &TargetEnv,
    ) -> anyhow::Result<Target> {
        match built {
            BuiltTarget::AwsEventBridge(spec) => {
                let sdk = env
                    .aws
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the AWS environment is not loaded"))?;
                Ok(Target::AwsEventBridge(AwsEventBridgeTarget::new(
                    spec, timeout, sdk,
                )?))
            }
            BuiltTarget::AlibabaEventBridge(spec) => Ok(Target::AlibabaEventBridge(
                AlibabaEventBridgeTarget::new(spec, timeout)?,
            )),
            BuiltTarget::Http(spec) => {
                Ok(Target::Http(HttpTarget::new(spec, timeout, concurrency)?))
            }
            BuiltTarget::Function(spec) => {
                let host = env
                    .functions
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no function host in this process"))?;
                Ok(Target::Function(FunctionTarget::new(spec, host)?))
            }
            BuiltTarget::AwsLambda(spec) => {
                Ok(Target::AwsLambda(AwsLambdaTarget::new(spec, timeout)))
            }
            BuiltTarget::Amqp(spec) => Ok(Target::Amqp(amqp::AmqpTarget::new(
                spec,
                timeout,
                concurrency,
                &env.gateway_id,
            )?)),
            BuiltTarget::Nats(spec) => Ok(Target::Nats(nats::NatsTarget::new(
                spec,
                timeout,
                concurrency,
                &env.gateway_id,
            )?)),
            BuiltTarget::Mqtt(spec) => Ok(Target::Mqtt(mqtt::MqttTarget::new(
                spec,
                timeout,
                concurrency,
                &env.gateway_id,
            )?)),
            BuiltTarget::Redis(spec) => Ok(Target::Redis(redis_stream::RedisTarget::new(
                spec,
                timeout,
                concurrency,
                &env.gateway_id,
            )?)),
            BuiltTarget::Sql(spec) => Ok(Target::Sql(sql::SqlTarget::new(
                spec,
                timeout,
                concurrency,
                &env.gateway_id,
            )?)),
        }
    }

    /// What the target sends for `event` when a transform reshapes it (kept in the
    /// dead-letter stream next to the event); `None` when it sends the event itself.
    pub fn payload(&self, event: &Event, ctx: &Context<'_>) -> Option<Payload> {
        match self {
            Target::Http(t) => t.payload(event, ctx),
            // Bridges refuse transforms: they send the event itself.
            Target::AwsEventBridge(_) | Target::AlibabaEventBridge(_) => None,
            Target::Function(t) => function::transformed(t.transform(), event, ctx),
            Target::AwsLambda(t) => function::transformed(t.transform(), event, ctx),
            Target::Amqp(t) => function::transformed(t.transform(), event, ctx),
            Target::Nats(t) => function::transformed(t.transform(), event, ctx),
            Target::Mqtt(t) => function::transformed(t.transform(), event, ctx),
            Target::Redis(t) => function::transformed(t.transform(), event, ctx),
            // Rows are filled from the event by `columns`: no transform.
            Target::Sql(_) => None,
        }
    }

    /// Makes one attempt at delivering `event`.
    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        match self {
            Target::Http(t) => t.deliver(event, ctx).await.map(|status| Delivered {
                status,
                output: None,
            }),
            Target::AwsEventBridge(t) => t.deliver(event).await,
            Target::AlibabaEventBridge(t) => t.deliver(event).await,
            Target::Function(t) => t.deliver(event, ctx).await,
            Target::AwsLambda(t) => t.deliver(event, ctx).await,
            Target::Amqp(t) => t.deliver(event, ctx).await,
            Target::Nats(t) => t.deliver(event, ctx).await,
            Target::Mqtt(t) => t.deliver(event, ctx).await,
            Target::Redis(t) => t.deliver(event, ctx).await,
            Target::Sql(t) => t.deliver(event).await,
        }
    }
}

/// How an event travels in a broker message (AMQP, NATS, MQTT, Redis): the transport's
/// CloudEvents protocol binding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageMode {
    /// Attributes as the transport's headers or properties, the data bytes as the body.
    #[default]
    Binary,
    /// The whole event in the CloudEvents JSON format as the body.
    Structured,
}

/// One event as a broker message, before the transport names its parts.
#[derive(Debug)]
pub struct Message<'a> {
    pub body: Bytes,
    /// The body's media type (`datacontenttype` in binary mode).
    pub content_type: Option<std::borrow::Cow<'a, str>>,
    /// Binary mode (and transformed bodies): the attributes but `datacontenttype`, by
    /// bare name; the transport adds its prefix (`ce-`, `cloudEvents:`, none).
    pub attributes: Vec<(&'a str, std::borrow::Cow<'a, str>)>,
}

impl<'a> Message<'a> {
    /// The message for `event` in `mode`; with `payload` (a transform's result) the body
    /// is the payload and the attributes still travel, so receivers can deduplicate on
    /// the id, as the HTTP target does.
    ///
    /// Use [`Message::stamped`] first so the message carries this gateway in its
    /// `sluicepath`: a connector of this gateway that reads it back drops it (no loop).
    pub fn of(event: &'a Event, mode: MessageMode, payload: Option<Payload>) -> Message<'a> {
        use std::borrow::Cow;
        if let Some(p) = payload {
            return Message {
                body: p.body,
                content_type: Some(Cow::Borrowed(p.content_type)),
                attributes: event.binding_attributes().collect(),
            };
        }
        match mode {
            MessageMode::Structured => Message {
                body: Bytes::from(event.to_structured_json()),
                content_type: Some(Cow::Borrowed("application/cloudevents+json; charset=utf-8")),
                attributes: Vec::new(),
            },
            MessageMode::Binary => Message {
                body: event
                    .data
                    .as_ref()
                    .map(|d| d.bytes.clone())
                    .unwrap_or_default(),
                content_type: event.attr_str("datacontenttype").map(Cow::Borrowed),
                attributes: event.binding_attributes().collect(),
            },
        }
    }

    /// `event` with gateway `me` at the end of its `sluicepath` (loop prevention across
    /// brokers, as the bridges do; docs/bridges.md). `sluicehops` is left as it is: a
    /// broker is not a bridge.
    pub fn stamped(event: &Event, me: &str) -> Event {
        let mut trace = crate::event::bridge::Trace::of(&event.attrs);
        let mut attrs = event.attrs.clone();
        if trace.path.last().map(String::as_str) != Some(me) {
            trace.path.push(me.to_string());
        }
        trace.write(&mut attrs);
        Event {
            attrs,
            data: event.data.clone(),
        }
    }
}
