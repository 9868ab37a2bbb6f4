//! The RabbitMQ target: publishes to an exchange with publisher confirms.
//! (Not built yet: configuring this kind is refused by the plan.)

use std::time::Duration;

use serde::Deserialize;

use super::{Delivered, DeliveryError};
use crate::config::Errors;
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: rabbitmq`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpTargetConfig {
    pub url: String,
}

/// A checked `rabbitmq` target.
#[derive(Debug)]
pub struct AmqpSpec {
    transform: Option<Transform>,
}

impl AmqpTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<AmqpSpec> {
        errors.at(format!("{at}.kind"), "rabbitmq targets are not built yet");
        let _ = transform;
        None
    }
}

/// A started `rabbitmq` target.
#[derive(Debug)]
pub struct AmqpTarget {
    spec: AmqpSpec,
}

impl AmqpTarget {
    pub fn new(
        spec: AmqpSpec,
        _timeout: Duration,
        _concurrency: usize,
        _gateway_id: &str,
    ) -> anyhow::Result<AmqpTarget> {
        Ok(AmqpTarget { spec })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.spec.transform.as_ref()
    }

    pub async fn deliver(
        &self,
        _event: &Event,
        _ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        Err(DeliveryError::Failed {
            message: "rabbitmq targets are not built yet".into(),
            retryable: false,
        })
    }
}
