//! The Redis target: XADD to a stream of another Redis.
//! (Not built yet: configuring this kind is refused by the plan.)

use std::time::Duration;

use serde::Deserialize;

use super::{Delivered, DeliveryError};
use crate::config::Errors;
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: redis`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisTargetConfig {
    pub url: String,
}

/// A checked `redis` target.
#[derive(Debug)]
pub struct RedisSpec {
    transform: Option<Transform>,
}

impl RedisTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<RedisSpec> {
        errors.at(format!("{at}.kind"), "redis targets are not built yet");
        let _ = transform;
        None
    }
}

/// A started `redis` target.
#[derive(Debug)]
pub struct RedisTarget {
    spec: RedisSpec,
}

impl RedisTarget {
    pub fn new(
        spec: RedisSpec,
        _timeout: Duration,
        _concurrency: usize,
        _gateway_id: &str,
    ) -> anyhow::Result<RedisTarget> {
        Ok(RedisTarget { spec })
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
            message: "redis targets are not built yet".into(),
            retryable: false,
        })
    }
}
