//! `GET /metrics`: Prometheus/OpenMetrics text. One [`Metrics`] per replica, built in
//! `gateway.rs` and handed to the ingress and the dispatchers (no global registry).
//!
//! Counters and the latency histogram live in memory and count this replica only. The
//! gauges (DLQ depth, delay depth, consumer group lag) are read from Redis at scrape
//! time in one pipelined round trip bounded by [`GAUGE_TIMEOUT`]; when Redis does not
//! answer in time the scrape still succeeds, without the gauges.
//! Every label value comes from the configuration (bus, rule, target, source) or from
//! a fixed set (via, reason, class): never from an event.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use redis::aio::ConnectionManager;
use redis::Value;
use tracing::debug;

use crate::bus::{self, DelayKeys, DISPATCH_GROUP, ROUTER_GROUP};
use crate::targets::DeliveryError;

/// How long a scrape waits for the Redis gauges.
pub const GAUGE_TIMEOUT: Duration = Duration::from_millis(500);

/// Content type of the exposition.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    pub bus: String,
    pub via: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SchemaLabels {
    pub bus: String,
    pub schema: String,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

/// What became of the messages a connector pulled.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub connector: String,
    /// `appended`, `duplicate` (seen within `dedupe`), `returned` (loop prevention),
    /// `invalid` (not an event; see docs/connectors.md), `failed` (append failed, left
    /// with the broker to come again).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    pub bus: String,
}

/// One target of one rule.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub bus: String,
    pub rule: String,
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub bus: String,
    pub rule: String,
    pub target: String,
    pub class: &'static str,
}

/// How an event came in.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    CloudEvents,
    Webhook,
    Aws,
    Alibaba,
    /// The SQS pull connector.
    Sqs,
    /// Another pull connector (`connectors[].kind`: rabbitmq, nats, mqtt, redis,
    /// postgres-outbox).
    Connector(&'static str),
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::CloudEvents => "cloudevents",
            Via::Webhook => "webhook",
            Via::Aws => "aws",
            Via::Alibaba => "alibaba",
            Via::Sqs => "sqs",
            Via::Connector(kind) => kind,
        }
    }
}

#[derive(Clone)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
    }
}

/// The counters and histogram of one replica, and their registry.
pub struct Metrics {
    registry: Registry,
    ingest_events: Family<IngestLabels, Counter>,
    ingest_rejected: Family<ReasonLabels, Counter>,
    webhook_rejected: Family<SourceLabels, Counter>,
    attempts: Family<TargetLabels, Counter>,
    success: Family<TargetLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    retries: Family<TargetLabels, Counter>,
    dead_lettered: Family<TargetLabels, Counter>,
    duration: Family<TargetLabels, Histogram, LatencyBuckets>,
    schema_violations: Family<SchemaLabels, Counter>,
    breaker_state: Family<TargetLabels, Gauge>,
    rate_limited: Family<TargetLabels, Counter>,
    connector_messages: Family<ConnectorLabels, Counter>,
    target_gone: Family<TargetLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            ingest_events: Family::default(),
            ingest_rejected: Family::default(),
            webhook_rejected: Family::default(),
            attempts: Family::default(),
            success: Family::default(),
            failures: Family::default(),
            retries: Family::default(),
            dead_lettered: Family::default(),
            duration: Family::new_with_constructor(LatencyBuckets),
            schema_violations: Family::default(),
            breaker_state: Family::default(),
            rate_limited: Family::default(),
            connector_messages: Family::default(),
            target_gone: Family::default(),
            registry: Registry::default(),
        };
        // Counter names get their `_total` suffix from the encoder.
        registry.register(
            "sluice_ingest_events",
            "Events appended to a bus, once Redis acknowledged them",
            m.ingest_events.clone(),
        );
        registry.register(
            "sluice_ingest_rejected",
            "Ingress requests answered with a 4xx status, by reason",
            m.ingest_rejected.clone(),
        );
        registry.register(
            "sluice_webhook_rejected",
            "Webhook requests that failed verification",
            m.webhook_rejected.clone(),
        );
        registry.register(
            "sluice_delivery_attempts",
            "Delivery attempts",
            m.attempts.clone(),
        );
        registry.register(
            "sluice_delivery_success",
            "Deliveries the target answered with 2xx",
            m.success.clone(),
        );
        registry.register(
            "sluice_delivery_failures",
            "Failed delivery attempts, by class",
            m.failures.clone(),
        );
        registry.register(
            "sluice_delivery_retries_scheduled",
            "Failed attempts moved to the delay set for a retry",
            m.retries.clone(),
        );
        registry.register(
            "sluice_delivery_dead_lettered",
            "Events written to the dead-letter stream",
            m.dead_lettered.clone(),
        );
        registry.register(
            "sluice_delivery_duration_seconds",
            "Latency of delivery attempts",
            m.duration.clone(),
        );
        registry.register(
            "sluice_target_breaker_state",
            "Circuit breaker of a target: 0 closed, 1 open (paused), 2 half-open (probing)",
            m.breaker_state.clone(),
        );
        registry.register(
            "sluice_target_rate_limited",
            "Times a dispatcher waited for its rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "sluice_schema_violations",
            "Events whose data violated their schema, by mode (enforce: refused, warn: accepted and marked)",
            m.schema_violations.clone(),
        );
        registry.register(
            "sluice_target_gone",
            "1 while a target is paused because it answered 410 Gone (resume it through the API)",
            m.target_gone.clone(),
        );
        registry.register(
            "sluice_connector_messages",
            "Messages a pull connector took from its broker, by outcome",
            m.connector_messages.clone(),
        );
        Metrics { registry, ..m }
    }

    /// `n` messages of connector `connector` had `outcome` (see [`ConnectorLabels`]).
    pub fn connector(&self, connector: &str, outcome: &'static str, n: usize) {
        if n > 0 {
            self.connector_messages
                .get_or_create(&ConnectorLabels {
                    connector: connector.to_string(),
                    outcome,
                })
                .inc_by(n as u64);
        }
    }

    /// `n` events appended to `bus`.
    pub fn ingested(&self, bus: &str, via: Via, n: usize) {
        if n > 0 {
            self.ingest_events
                .get_or_create(&IngestLabels {
                    bus: bus.to_string(),
                    via: via.as_str(),
                })
                .inc_by(n as u64);
        }
    }

    /// An ingress answer with status `status`; counted when it is a 4xx.
    pub fn answered(&self, status: StatusCode) {
        if !status.is_client_error() {
            return;
        }
        let reason = match status.as_u16() {
            400 => "invalid",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "too_large",
            415 => "unsupported_media_type",
            _ => "other",
        };
        self.ingest_rejected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// An event that violated `schema` on `bus` under `mode` (enforce or warn).
    pub fn schema_violation(&self, bus: &str, schema: &str, mode: &'static str) {
        self.schema_violations
            .get_or_create(&SchemaLabels {
                bus: bus.to_string(),
                schema: schema.to_string(),
                mode,
            })
            .inc();
    }

    pub fn webhook_rejected(&self, source: &str) {
        self.webhook_rejected
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    /// One delivery attempt to `target` that took `latency`.
    pub fn attempted(
        &self,
        target: &TargetLabels,
        latency: Duration,
        outcome: Result<(), &DeliveryError>,
    ) {
        self.attempts.get_or_create(target).inc();
        self.duration
            .get_or_create(target)
            .observe(latency.as_secs_f64());
        match outcome {
            Ok(()) => {
                self.success.get_or_create(target).inc();
            }
            Err(e) => {
                let class = match e {
                    DeliveryError::Status { status, .. } if (400..500).contains(status) => {
                        "status_4xx"
                    }
                    DeliveryError::Status { status, .. } if (500..600).contains(status) => {
                        "status_5xx"
                    }
                    DeliveryError::Status { .. } => "status_other",
                    DeliveryError::Timeout(_) => "timeout",
                    DeliveryError::Request(_) => "connection",
                    DeliveryError::Invalid(_) => "invalid",
                    DeliveryError::Failed { .. } => "failed",
                };
                self.failures
                    .get_or_create(&FailureLabels {
                        bus: target.bus.clone(),
                        rule: target.rule.clone(),
                        target: target.target.clone(),
                        class,
                    })
                    .inc();
            }
        }
    }

    pub fn retry_scheduled(&self, target: &TargetLabels) {
        self.retries.get_or_create(target).inc();
    }

    pub fn dead_lettered(&self, target: &TargetLabels) {
        self.dead_lettered.get_or_create(target).inc();
    }

    /// The breaker of `target` is now in `state` (0 closed, 1 open, 2 half-open).
    pub fn breaker_state(&self, target: &TargetLabels, state: i64) {
        self.breaker_state.get_or_create(target).set(state);
    }

    pub fn target_gone(&self, target: &TargetLabels, gone: bool) {
        self.target_gone.get_or_create(target).set(i64::from(gone));
    }

    pub fn rate_limited(&self, target: &TargetLabels) {
        self.rate_limited.get_or_create(target).inc();
    }
}

/// What a scrape reads from Redis.
pub struct Scrape {
    pub metrics: std::sync::Arc<Metrics>,
    pub redis: ConnectionManager,
    /// Every bus, by name.
    pub buses: Vec<String>,
    /// Every target of every rule.
    pub targets: Vec<TargetLabels>,
}

/// The gauges, read at scrape time.
#[derive(Default)]
struct Gauges {
    dlq_depth: Family<TargetLabels, Gauge>,
    delay_depth: Family<TargetLabels, Gauge>,
    bus_lag: Family<BusLabels, Gauge>,
    target_lag: Family<TargetLabels, Gauge>,
}

impl Scrape {
    /// One pipeline: per target XLEN (DLQ), ZCARD (delay set), XINFO GROUPS (target
    /// stream); per bus XINFO GROUPS (bus stream).
    async fn gauges(&self) -> Result<Gauges, String> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for t in &self.targets {
            let keys = DelayKeys::new(&t.bus, &t.rule, &t.target);
            pipe.cmd("XLEN")
                .arg(bus::dlq_key(&t.bus, &t.rule, &t.target))
                .cmd("ZCARD")
                .arg(&keys.delay)
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&keys.stream);
        }
        for b in &self.buses {
            pipe.cmd("XINFO").arg("GROUPS").arg(bus::bus_key(b));
        }
        let mut conn = self.redis.clone();
        let replies: Vec<redis::RedisResult<Value>> =
            tokio::time::timeout(GAUGE_TIMEOUT, pipe.query_async(&mut conn))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.to_string())?;
        let gauges = Gauges::default();
        let mut replies = replies.into_iter();
        for t in &self.targets {
            let (dlq, delay, groups) = (replies.next(), replies.next(), replies.next());
            if let Some(n) = dlq.and_then(|r| r.ok()).and_then(as_i64) {
                gauges.dlq_depth.get_or_create(t).set(n);
            }
            if let Some(n) = delay.and_then(|r| r.ok()).and_then(as_i64) {
                gauges.delay_depth.get_or_create(t).set(n);
            }
            if let Some(lag) = groups
                .and_then(|r| r.ok())
                .and_then(|g| lag(&g, DISPATCH_GROUP))
            {
                gauges.target_lag.get_or_create(t).set(lag);
            }
        }
        for b in &self.buses {
            let groups = replies.next();
            if let Some(lag) = groups
                .and_then(|r| r.ok())
                .and_then(|g| lag(&g, ROUTER_GROUP))
            {
                gauges
                    .bus_lag
                    .get_or_create(&BusLabels { bus: b.clone() })
                    .set(lag);
            }
        }
        Ok(gauges)
    }

    /// The whole exposition text.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        encode_registry(&mut out, &self.metrics.registry).expect("writing to a String");
        match self.gauges().await {
            Ok(g) => {
                let mut registry = Registry::default();
                registry.register(
                    "sluice_dlq_depth",
                    "Entries in the target's dead-letter stream",
                    g.dlq_depth,
                );
                registry.register(
                    "sluice_delay_depth",
                    "Retries waiting in the target's delay set",
                    g.delay_depth,
                );
                registry.register(
                    "sluice_bus_lag",
                    "Entries of the bus stream the router group has not read yet",
                    g.bus_lag,
                );
                registry.register(
                    "sluice_target_lag",
                    "Entries of the target stream the dispatch group has not read yet",
                    g.target_lag,
                );
                encode_registry(&mut out, &registry).expect("writing to a String");
            }
            Err(e) => debug!(error = %e, "metrics scrape without the Redis gauges"),
        }
        // Bridge skips are counted by the targets (which know no metrics registry).
        let skipped: Family<ReasonLabels, Counter> = Family::default();
        for (reason, n) in crate::targets::bridge::SKIPPED.counts() {
            skipped.get_or_create(&ReasonLabels { reason }).inc_by(n);
        }
        let mut registry = Registry::default();
        registry.register(
            "sluice_bridge_skipped",
            "Events bridge targets did not send: the peer had them already (loop) or the hop limit was reached (max_hops)",
            skipped,
        );
        encode_registry(&mut out, &registry).expect("writing to a String");
        encode_eof(&mut out).expect("writing to a String");
        out
    }
}

fn as_i64(v: Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(n),
        _ => None,
    }
}

/// The `lag` of consumer group `group` in an `XINFO GROUPS` reply (RESP2 or RESP3);
/// `None` when the group is missing or Redis reports no lag (nil, or Redis < 7).
fn lag(reply: &Value, group: &str) -> Option<i64> {
    let Value::Array(groups) = reply else {
        return None;
    };
    groups.iter().find_map(|g| {
        let fields: Vec<(&Value, &Value)> = match g {
            Value::Array(flat) => flat.chunks_exact(2).map(|kv| (&kv[0], &kv[1])).collect(),
            Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
            _ => return None,
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some(name))
                .map(|(_, v)| *v)
        };
        if text(field("name")?).as_deref() != Some(group) {
            return None;
        }
        match field("lag")? {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `GET /metrics`.
pub async fn serve(live: web::Data<crate::live::Live<Scrape>>) -> HttpResponse {
    let scrape = live.get();
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(scrape.render().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lag_from_resp2_and_resp3() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("router"),
            bulk("lag"),
            Value::Int(4),
        ])]);
        assert_eq!(lag(&resp2, "router"), Some(4));
        assert_eq!(lag(&resp2, "dispatch"), None);
        let resp3 = Value::Array(vec![Value::Map(vec![
            (bulk("name"), bulk("dispatch")),
            (bulk("lag"), Value::Nil),
        ])]);
        assert_eq!(lag(&resp3, "dispatch"), None);
    }

    #[test]
    fn counts_and_encodes() {
        let m = Metrics::new();
        m.ingested("orders", Via::Webhook, 2);
        m.answered(StatusCode::PAYLOAD_TOO_LARGE);
        m.answered(StatusCode::ACCEPTED);
        let mut out = String::new();
        encode_registry(&mut out, &m.registry).unwrap();
        assert!(out.contains("sluice_ingest_events_total{bus=\"orders\",via=\"webhook\"} 2"));
        assert!(out.contains("sluice_ingest_rejected_total{reason=\"too_large\"} 1"));
    }
}
