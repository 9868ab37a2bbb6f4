//! The Redis connector: a consumer group on a stream of another Redis.
//! (Not built yet: configuring this kind is refused by the plan.)

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::Intake;
use crate::config::Errors;

/// `kind: redis`: the connector's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSourceConfig {
    pub url: String,
}

impl RedisSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        errors.at(format!("{at}.kind"), "redis connectors are not built yet");
    }
}

/// Consumes until `shutdown`.
pub async fn run(config: RedisSourceConfig, intake: Intake, shutdown: CancellationToken) {
    let _ = (config, intake);
    shutdown.cancelled().await;
}
