//! The Redis target: `XADD` to a stream of another Redis. Success is Redis's reply
//! (the entry id), so the event is in that stream before the dispatcher acknowledges it.
//!
//! The entry has the shape the Redis connector reads (like an HTTP request): binary mode
//! (default) writes `ce-*` fields, `content-type` and the data bytes as `data`;
//! structured mode writes `content-type: application/cloudevents+json; charset=utf-8`
//! and the event as `data`. Concurrent deliveries share one multiplexed connection, so
//! they are pipelined.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::Deserialize;

use super::{Delivered, DeliveryError, Message, MessageMode};
use crate::config::Errors;
use crate::event::Event;
use crate::rules::transform::{Context, Transform};

/// `kind: redis`: the target's own fields.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisTargetConfig {
    /// The other Redis (`redis://`, `rediss://`).
    pub url: String,
    /// The stream key.
    pub stream: String,
    /// Trims the stream to about this many entries (`MAXLEN ~`). Default: no trimming.
    #[serde(default)]
    pub max_len: Option<u64>,
    /// `binary` (default) or `structured`.
    #[serde(default)]
    pub mode: MessageMode,
}

/// A checked `redis` target.
#[derive(Debug)]
pub struct RedisSpec {
    url: String,
    stream: String,
    max_len: Option<u64>,
    mode: MessageMode,
    transform: Option<Transform>,
}

impl RedisTargetConfig {
    pub fn build(
        &self,
        transform: Option<Transform>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<RedisSpec> {
        let mut ok = true;
        if crate::bus::redis_url::client(&self.url).is_err() {
            errors.at(
                format!("{at}.url"),
                "must be a Redis URL: redis://HOST:PORT or rediss://HOST:PORT",
            );
            ok = false;
        }
        if self.stream.is_empty() {
            errors.at(format!("{at}.stream"), "must be a stream key");
            ok = false;
        }
        if self.max_len == Some(0) {
            errors.at(format!("{at}.max_len"), "must be at least 1");
            ok = false;
        }
        ok.then(|| RedisSpec {
            url: self.url.clone(),
            stream: self.stream.clone(),
            max_len: self.max_len,
            mode: self.mode,
            transform,
        })
    }
}

/// A started `redis` target.
pub struct RedisTarget {
    spec: RedisSpec,
    conn: ConnectionManager,
    timeout: Duration,
    gateway_id: String,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("stream", &self.spec.stream)
            .finish_non_exhaustive()
    }
}

impl RedisTarget {
    pub fn new(
        spec: RedisSpec,
        timeout: Duration,
        _concurrency: usize,
        gateway_id: &str,
    ) -> anyhow::Result<RedisTarget> {
        // Lazy: connects on the first delivery and reconnects by itself.
        let conn = crate::bus::connect(&spec.url)?;
        Ok(RedisTarget {
            spec,
            conn,
            timeout,
            gateway_id: gateway_id.to_string(),
        })
    }

    pub fn transform(&self) -> Option<&Transform> {
        self.spec.transform.as_ref()
    }

    pub async fn deliver(
        &self,
        event: &Event,
        ctx: &Context<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let stamped = Message::stamped(event, &self.gateway_id);
        let payload = super::function::transformed(self.transform(), &stamped, ctx);
        let message = Message::of(&stamped, self.spec.mode, payload);
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.spec.stream);
        if let Some(n) = self.spec.max_len {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*");
        for (name, value) in &message.attributes {
            cmd.arg(format!("ce-{name}")).arg(value.as_ref());
        }
        if let Some(ct) = &message.content_type {
            cmd.arg("content-type").arg(ct.as_ref());
        }
        if !message.body.is_empty() || message.content_type.is_some() {
            cmd.arg("data").arg(message.body.as_ref());
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut conn)).await {
            Ok(Ok(_id)) => Ok(Delivered::default()),
            Ok(Err(e)) => Err(DeliveryError::Failed {
                // A key of another type will stay so: no retry can succeed.
                retryable: e.code() != Some("WRONGTYPE"),
                message: format!("XADD {}: {e}", self.spec.stream),
            }),
            Err(_) => Err(DeliveryError::Timeout(self.timeout)),
        }
    }
}
