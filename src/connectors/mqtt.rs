//! The MQTT connector: a QoS 1 subscription, acknowledged after the append.
//! (Not built yet: configuring this kind is refused by the plan.)

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::Intake;
use crate::config::Errors;

/// `kind: mqtt`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct MqttSourceConfig {
    pub url: String,
}

impl MqttSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        errors.at(format!("{at}.kind"), "mqtt connectors are not built yet");
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: MqttSourceConfig, intake: Intake, shutdown: CancellationToken) {
    let _ = (config, intake);
    shutdown.cancelled().await;
}
