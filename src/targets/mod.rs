//! Targets: where matched events are delivered. A target turns an event into a request
//! and reports the outcome; it knows nothing about Redis, retries or acknowledgements.

pub mod alibaba_eventbridge;
pub mod aws_eventbridge;
pub mod aws_lambda;
pub mod batch;
pub mod bridge;
pub mod bus;
pub mod function;
pub mod http;
pub mod oauth;

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
        }
    }
}

/// Each kind's own fields, kinds in the order error messages name them.
fn kind_fields() -> [(TargetKind, &'static [&'static str]); 7] {
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
            let names = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => names.join(""),
            };
            format!("applies only to {names} targets, not {}", kind.as_str())
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
    }
}

/// Why a delivery attempt failed.
#[derive(Debug, thiserror::Error)]
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
    /// Whether another attempt may succeed: timeouts, connection errors, 408, 429 and
    /// 5xx are retried; other answers (4xx, 3xx: redirects are not followed) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Status { status, .. } => {
                matches!(status, 408 | 429) || (500..600).contains(status)
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
                status: Some(status),
                output: None,
            }),
            Target::AwsEventBridge(t) => t.deliver(event).await,
            Target::AlibabaEventBridge(t) => t.deliver(event).await,
            Target::Function(t) => t.deliver(event, ctx).await,
            Target::AwsLambda(t) => t.deliver(event, ctx).await,
        }
    }
}
