//! The SQL targets (`postgres`, `mysql`): rows of a table, columns filled from the event.
//! (Not built yet: configuring these kinds is refused by the plan.)

use std::time::Duration;

use serde::Deserialize;

use super::{Delivered, DeliveryError};
use crate::config::Errors;
use crate::event::Event;

/// Which database a `SqlTargetConfig` speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

/// `kind: postgres` / `kind: mysql`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct SqlTargetConfig {
    pub url: String,
}

/// A checked SQL target.
#[derive(Debug)]
pub struct SqlSpec {
    pub dialect: Dialect,
}

impl SqlTargetConfig {
    pub fn build(
        &self,
        dialect: Dialect,
        has_transform: bool,
        at: &str,
        errors: &mut Errors,
    ) -> Option<SqlSpec> {
        let _ = (dialect, has_transform);
        errors.at(format!("{at}.kind"), "SQL targets are not built yet");
        None
    }
}

/// A started SQL target.
#[derive(Debug)]
pub struct SqlTarget {
    #[allow(dead_code)]
    spec: SqlSpec,
}

impl SqlTarget {
    pub fn new(
        spec: SqlSpec,
        _timeout: Duration,
        _concurrency: usize,
        _gateway_id: &str,
    ) -> anyhow::Result<SqlTarget> {
        Ok(SqlTarget { spec })
    }

    pub async fn deliver(&self, _event: &Event) -> Result<Delivered, DeliveryError> {
        Err(DeliveryError::Failed {
            message: "SQL targets are not built yet".into(),
            retryable: false,
        })
    }
}
