//! The transactional outbox connector: rows of a PostgreSQL table.
//! (Not built yet: configuring this kind is refused by the plan.)

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::Intake;
use crate::config::Errors;

/// `kind: postgres-outbox`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxConfig {
    pub url: String,
}

impl OutboxConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        errors.at(
            format!("{at}.kind"),
            "postgres-outbox connectors are not built yet",
        );
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: OutboxConfig, intake: Intake, shutdown: CancellationToken) {
    let _ = (config, intake);
    shutdown.cancelled().await;
}
