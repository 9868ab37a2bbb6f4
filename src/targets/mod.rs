//! Targets: where matched events are delivered. A target turns an event into a request
//! and reports the outcome; it knows nothing about Redis, retries or acknowledgements.

pub mod alibaba_eventbridge;
pub mod aws_eventbridge;
pub mod aws_lambda;
pub mod batch;
pub mod bridge;
pub mod function;
pub mod http;

use std::time::Duration;

use bytes::Bytes;

pub use alibaba_eventbridge::AlibabaEventBridgeTarget;
pub use aws_eventbridge::AwsEventBridgeTarget;
pub use aws_lambda::AwsLambdaTarget;
pub use function::FunctionTarget;
pub use http::HttpTarget;

use crate::config::{TargetConfig, TargetKind};
use crate::event::Event;
use crate::rules::transform::{Context, Payload};

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
    /// Loads what the configured targets need: the AWS environment only when an AWS
    /// target or connector exists (it may query instance metadata).
    pub async fn load(config: &crate::config::Config) -> TargetEnv {
        let needs_aws = config
            .rules
            .iter()
            .flat_map(|r| &r.targets)
            .any(|t| t.kind == TargetKind::AwsEventbridge)
            || !config.connectors.is_empty();
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
            gateway_id: crate::event::bridge::gateway_id(config.gateway_id.as_deref()),
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
    /// Builds the target from its (validated) configuration.
    pub fn build(config: &TargetConfig, env: &TargetEnv) -> anyhow::Result<Target> {
        match config.kind {
            TargetKind::AwsEventbridge => {
                let sdk = env
                    .aws
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the AWS environment is not loaded"))?;
                Ok(Target::AwsEventBridge(AwsEventBridgeTarget::new(
                    config,
                    sdk,
                    &env.gateway_id,
                )?))
            }
            TargetKind::AlibabaEventbridge => Ok(Target::AlibabaEventBridge(
                AlibabaEventBridgeTarget::new(config, &env.gateway_id)?,
            )),
            TargetKind::Http | TargetKind::Cloudevents => {
                Ok(Target::Http(HttpTarget::new(config)?))
            }
            TargetKind::Function => {
                let host = env
                    .functions
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("no function host in this process"))?;
                Ok(Target::Function(FunctionTarget::new(config, host)?))
            }
            TargetKind::AwsLambda => Ok(Target::AwsLambda(AwsLambdaTarget::new(config)?)),
            other => anyhow::bail!("target kind {} is not supported yet", other.as_str()),
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
