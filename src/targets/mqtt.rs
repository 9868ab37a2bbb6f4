//! The MQTT target: publish QoS 1 (PUBACK).
//! (Not built yet: configuring this kind is refused by the plan.)

use std::time::Duration;

use serde::Deserialize;

use super::{Delivered, DeliveryError};
use crate::config::Errors;
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: mqtt`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttTargetConfig {
    pub url: String,
}

/// A checked `mqtt` target.
#[derive(Debug)]
pub struct MqttSpec {
    transform: Option<Transform>,
}

impl MqttTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<MqttSpec> {
        errors.at(format!("{at}.kind"), "mqtt targets are not built yet");
        let _ = transform;
        None
    }
}

/// A started `mqtt` target.
#[derive(Debug)]
pub struct MqttTarget {
    spec: MqttSpec,
}

impl MqttTarget {
    pub fn new(
        spec: MqttSpec,
        _timeout: Duration,
        _concurrency: usize,
        _gateway_id: &str,
    ) -> anyhow::Result<MqttTarget> {
        Ok(MqttTarget { spec })
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
            message: "mqtt targets are not built yet".into(),
            retryable: false,
        })
    }
}
