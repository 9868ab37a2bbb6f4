//! The NATS connector: a JetStream durable pull consumer, or a core NATS subject.
//! (Not built yet: configuring this kind is refused by the plan.)

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::Intake;
use crate::config::Errors;

/// `kind: nats`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct NatsSourceConfig {
    pub url: String,
}

impl NatsSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        errors.at(format!("{at}.kind"), "nats connectors are not built yet");
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: NatsSourceConfig, intake: Intake, shutdown: CancellationToken) {
    let _ = (config, intake);
    shutdown.cancelled().await;
}
