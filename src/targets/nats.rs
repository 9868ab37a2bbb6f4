//! The NATS target: JetStream publish (PubAck), or core NATS.
//! (Not built yet: configuring this kind is refused by the plan.)

use std::time::Duration;

use serde::Deserialize;

use super::{Delivered, DeliveryError};
use crate::config::Errors;
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: nats`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsTargetConfig {
    pub url: String,
}

/// A checked `nats` target.
#[derive(Debug)]
pub struct NatsSpec {
    transform: Option<Transform>,
}

impl NatsTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<NatsSpec> {
        errors.at(format!("{at}.kind"), "nats targets are not built yet");
        let _ = transform;
        None
    }
}

/// A started `nats` target.
#[derive(Debug)]
pub struct NatsTarget {
    spec: NatsSpec,
}

impl NatsTarget {
    pub fn new(
        spec: NatsSpec,
        _timeout: Duration,
        _concurrency: usize,
        _gateway_id: &str,
    ) -> anyhow::Result<NatsTarget> {
        Ok(NatsTarget { spec })
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
            message: "nats targets are not built yet".into(),
            retryable: false,
        })
    }
}
