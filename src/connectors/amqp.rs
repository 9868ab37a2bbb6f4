//! The RabbitMQ connector: consumes a queue (AMQP 0-9-1).
//! (Not built yet: configuring this kind is refused by the plan.)

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::Intake;
use crate::config::Errors;

/// `kind: rabbitmq`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpSourceConfig {
    pub url: String,
}

impl AmqpSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        errors.at(
            format!("{at}.kind"),
            "rabbitmq connectors are not built yet",
        );
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: AmqpSourceConfig, intake: Intake, shutdown: CancellationToken) {
    let _ = (config, intake);
    shutdown.cancelled().await;
}
