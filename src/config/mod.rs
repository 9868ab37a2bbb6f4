//! The YAML configuration: its model (serde structs, documented field by field in
//! `docs/configuration.md`), loading with precise error locations, and validation.
//!
//! Every error names the path of the offending value in the file, e.g.
//! `rules[2].targets[0].url: relative URL`, and, for syntax and type errors, its line.

mod error;
pub(crate) mod schemas;
pub mod value;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use error::{ConfigError, Errors};
pub use value::{
    decode_whsec, duration, opt_duration, resolve_secret, Dedupe, Endpoint, Name, PeerId, Secret,
    SecretRef,
};

/// Checks a resource name (see [`Name::check`]).
pub fn check_name(name: &str) -> Result<(), String> {
    Name::check(name)
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP ingress listens on (`--listen` and `SLUICE_LISTEN` override it).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Redis URL (`--redis` and `REDIS_URL` override it).
    #[serde(default)]
    pub redis: Option<String>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub buses: Vec<BusConfig>,
    /// Webhook endpoints (`POST /webhooks/{name}`), see docs/sources.md.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Functions run by Sluice's own function host (the AWS Lambda Runtime API), see
    /// docs/functions.md.
    #[serde(default)]
    pub functions: Vec<FunctionConfig>,
    /// The AWS EventBridge PutEvents-compatible endpoint (`POST /`, `POST /aws/events`);
    /// absent: the endpoint is off. See docs/sources.md, "Cloud-compatible ingest".
    #[serde(default)]
    pub aws: Option<crate::compat::aws::AwsConfig>,
    /// The Alibaba Cloud EventBridge PutEvents-compatible endpoint
    /// (`POST /openapi/putEvents`); absent: the endpoint is off.
    #[serde(default)]
    pub alibaba: Option<crate::compat::alibaba::AlibabaConfig>,
    /// Pull connectors: consumers of cloud queues that append to a bus (docs/bridges.md).
    #[serde(default)]
    pub connectors: Vec<ConnectorConfig>,
    /// This gateway's id in bridge traces (`sluicepath`, see docs/bridges.md). Default:
    /// `SLUICE_GATEWAY_ID`, else the host name.
    #[serde(default)]
    pub gateway_id: Option<String>,
    /// Event schemas, their versions and bindings; see docs/schemas.md.
    #[serde(default)]
    pub schemas: Vec<SchemaConfig>,
    /// The control API (`/api/v1`); see docs/operations.md.
    #[serde(default)]
    pub api: ApiConfig,
}

/// `schemas[]`: a named schema with its versions (oldest first) and the events it
/// applies to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    pub name: String,
    /// What each version must keep with the previous one(s). Default backward.
    #[serde(default)]
    pub compatibility: crate::schema::Compatibility,
    /// The events the schema's latest version applies to.
    #[serde(default)]
    pub bind: Vec<SchemaBinding>,
    /// Versions 1, 2, ...; more may be registered over HTTP (stored in Redis).
    #[serde(default)]
    pub versions: Vec<SchemaVersionConfig>,
}

/// `bind[]`: events of `bus` (default: any) whose `source` and `type` match (exact, or
/// `prefix*`, or `*`; absent: any).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaBinding {
    #[serde(default)]
    pub bus: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

/// `versions[]`: one version, inline (`schema:`) or from a file (`file:`, JSON or YAML,
/// relative to the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersionConfig {
    #[serde(default)]
    pub format: crate::schema::SchemaFormat,
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    #[serde(default)]
    pub file: Option<String>,
    /// openapi: the `components/schemas` entry describing the data.
    #[serde(default)]
    pub component: Option<String>,
    /// Events whose `dataschema` attribute is this URI are validated against this version.
    #[serde(default)]
    pub dataschema: Option<String>,
}

/// `discovery:` of a bus: `on` / `off` (or a boolean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Toggle(pub bool);

impl<'de> Deserialize<'de> for Toggle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(b) => Ok(Toggle(b)),
            Raw::Text(t) if t == "on" => Ok(Toggle(true)),
            Raw::Text(t) if t == "off" => Ok(Toggle(false)),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "invalid value {t:?}: write on or off"
            ))),
        }
    }
}

/// `api:` the control API under `/api/v1`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer token every request must carry (`authorization: Bearer TOKEN`): a literal,
    /// `env:NAME` or `file:PATH`. Absent: only loopback clients are served.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

/// `connectors:` one pull connector (docs/connectors.md).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorConfig {
    pub name: Name,
    /// The kind (`sqs`, `rabbitmq`, `nats`, `mqtt`, `redis`, `postgres-outbox`) and its
    /// own fields.
    #[serde(flatten)]
    pub kind: crate::connectors::ConnectorKindConfig,
    /// The bus events are appended to.
    pub bus: String,
    /// Window in which an event id seen before is not appended again. Default 24h; `off`.
    #[serde(default)]
    pub dedupe: Dedupe,
    /// Every other field: the kind's own (read by `kind` as well) and misplaced or
    /// unknown ones, which the plan refuses.
    #[serde(flatten)]
    pub other_fields: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `functions[]`: a Lambda-compatible function run by Sluice's function host: any
/// program that speaks the AWS Lambda Runtime API (e.g. a `lambda_runtime` binary).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    pub name: Name,
    /// The program to run (a path, or a name looked up in `PATH`).
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment of the instances (they do not inherit Sluice's, except `PATH`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of the instances and `LAMBDA_TASK_ROOT`. Default: Sluice's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `_HANDLER` of the instances (custom runtimes may read it). Default: the name.
    #[serde(default)]
    pub handler: Option<String>,
    /// MB, passed as `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (not enforced). Default 128.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Longest run of one invocation; an instance over it is killed. Default 3s (as
    /// Lambda).
    #[serde(default = "default_function_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Instances kept running when idle. Default 0.
    #[serde(default)]
    pub min_instances: usize,
    /// Most instances at once, so most invocations running at once. Default 4.
    #[serde(default = "default_max_instances")]
    pub max_instances: usize,
    /// How long an invocation may wait for a free instance before it fails
    /// (throttled). Default 10s.
    #[serde(default = "default_queue_timeout", deserialize_with = "duration")]
    pub queue_timeout: Duration,
    /// An instance idle this long stops, unless only `min_instances` run. Default 10m.
    #[serde(default = "default_idle_timeout", deserialize_with = "duration")]
    pub idle_timeout: Duration,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_memory() -> u32 {
    128
}
fn default_function_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_max_instances() -> usize {
    4
}
fn default_queue_timeout() -> Duration {
    Duration::from_secs(10)
}

/// An access key id and its secret access key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub id: String,
    /// The secret access key: a literal, `env:NAME` or `file:PATH` (resolved at load).
    pub secret: SecretRef,
}

/// Size limits on ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest single event (encoded attributes + data bytes). Default 256 KiB.
    pub max_event_bytes: usize,
    /// Largest request body. Default 1 MiB.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 256 * 1024,
            max_request_bytes: 1024 * 1024,
        }
    }
}

/// Replica-wide delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Legacy: a fixed wait between attempts for targets without `retry:` (their
    /// `retry` becomes `{initial: retry_delay, max: retry_delay}`, no attempt limit, the
    /// default `max_age`). Unset: the
    /// targets' `retry` defaults apply.
    #[serde(deserialize_with = "opt_duration")]
    pub retry_delay: Option<Duration>,
    /// Entries pending this long on another consumer are taken over (that replica is
    /// presumed dead). An entry is pending only during one attempt (a retry waits in the
    /// target's delay set), so this must exceed every target's `timeout + 1s`.
    #[serde(deserialize_with = "duration")]
    pub claim_idle: Duration,
    /// On shutdown, how long in-flight deliveries may run before they are left pending.
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// Entries read from a stream per call.
    pub batch_size: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry_delay: None,
            claim_idle: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            batch_size: 256,
        }
    }
}

/// A bus: one Redis stream of events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    pub name: Name,
    /// Free text for people (shown by the API and the cloud facades).
    #[serde(default)]
    pub description: Option<String>,
    /// Keep events this long (the router trims once a second, never past what it has
    /// not routed yet). Default 7d.
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention: Option<Duration>,
    /// Keep at most this many events (same trimming). Excludes `retention`.
    #[serde(default)]
    pub max_len: Option<u64>,
    /// A token `POST /buses/{name}/events` must carry (`Authorization: Bearer TOKEN`
    /// or `?token=TOKEN`): a literal, `env:NAME` or `file:PATH`. Absent: no check (for
    /// trusted networks). See docs/bridges.md for Alibaba EventBridge HTTP targets.
    #[serde(default)]
    pub ingest_token: Option<SecretRef>,
    /// `POST /buses/{name}/events` needs a token of role publisher scoped to this bus
    /// (or any bus), or an admin token (docs/control-plane.md, "Roles and tokens").
    #[serde(default)]
    pub ingest_auth: bool,
    /// Schema validation of events appended to this bus: enforce | warn | off (default).
    #[serde(default)]
    pub validation: crate::schema::ValidationMode,
    /// Infer schemas from a sample of this bus's events (`on`/`off`, default off).
    #[serde(default)]
    pub discovery: Toggle,
    /// With discovery: one event in this many is sampled. Default 10.
    #[serde(default)]
    pub discovery_sample: Option<u64>,
    /// Per-minute counts of the bus's events by `type` and `source`, kept `retention`
    /// (`GET /api/v1/buses/{name}/stats`, `sluice stats`). Absent: not counted.
    #[serde(default)]
    pub stats: Option<StatsConfig>,
    /// A trace of every event (received, routed, each delivery attempt, outcome), kept
    /// `retention` (`GET /api/v1/buses/{name}/events/{id}`, `sluice trace`). Absent: off.
    #[serde(default)]
    pub trace: Option<TraceConfig>,
    /// Named archives: the events matching their pattern, kept in compressed segments
    /// beyond the bus's retention, to replay from (docs/operations.md, "Archives").
    #[serde(default)]
    pub archives: Vec<ArchiveConfig>,
}

/// `trace:` of a bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    /// How long an event's trace is kept, from its routing. Default 24h.
    #[serde(default = "default_stats_retention", deserialize_with = "duration")]
    pub retention: Duration,
    /// The share of events traced, 0.0..=1.0 (chosen by a hash of the event id, so every
    /// replica picks the same events). Default 1.0.
    #[serde(default = "default_sample")]
    pub sample: f64,
}

fn default_sample() -> f64 {
    1.0
}

/// One archive of a bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Unique among the archives of every bus (AWS archive names are per region).
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
    /// The events to keep, as a rule's `pattern`; absent: every event.
    #[serde(default)]
    pub pattern: Option<serde_json::Value>,
    /// What `pattern` is written against, as a rule's `dialect`.
    #[serde(default)]
    pub dialect: Dialect,
    /// Days a segment is kept after its last event; 0 (default) keeps it.
    #[serde(default)]
    pub retention_days: u32,
}

impl ArchiveConfig {
    pub fn condition(&self) -> Result<crate::rules::Pattern, crate::rules::InvalidAt> {
        condition(self.pattern.as_ref(), None, self.dialect)
    }
}

/// `stats:` of a bus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// How long the per-minute counts are kept. Default 24h.
    #[serde(default = "default_stats_retention", deserialize_with = "duration")]
    pub retention: Duration,
}

fn default_stats_retention() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// A webhook source: `POST /webhooks/{name}`, verified the way `kind` says, normalised
/// to a CloudEvent and appended to `bus`. Per-kind options are rejected on other kinds.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceConfig {
    pub name: Name,
    /// The kind and its own fields (their config structs live with the kinds, in
    /// `sources/`); a field of another kind is refused naming the kinds it is for.
    #[serde(flatten)]
    pub kind: crate::sources::SourceKindConfig,
    pub bus: String,
    /// The secret: a literal, `env:NAME` or `file:PATH` (resolved at load).
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// Several secrets, any of which may verify a request (rotation). Excludes `secret`.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Accepted clock difference for timestamped schemes. Default 5m.
    #[serde(default, deserialize_with = "opt_duration")]
    pub tolerance: Option<Duration>,
    /// Window in which a repeated (source, id) is answered 200 and not appended again.
    #[serde(default)]
    pub dedupe: Dedupe,
    /// The CloudEvents `source` of every event (default: derived per kind).
    #[serde(default)]
    pub source: Option<String>,
    /// Schema validation of this source's events; overrides the bus's `validation`.
    #[serde(default)]
    pub validation: Option<crate::schema::ValidationMode>,
    /// Every other field: the kind's own (read by `kind` as well) and misplaced or
    /// unknown ones, which the plan refuses.
    #[serde(flatten)]
    pub other_fields: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Github,
    Stripe,
    Slack,
    Shopify,
    StandardWebhooks,
    Gitlab,
    Twilio,
    Hmac,
    Token,
    Basic,
    /// EventBridge API destinations: the event envelope, API key or basic auth.
    AwsApiDestination,
}

impl SourceKind {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Github => "github",
            SourceKind::Stripe => "stripe",
            SourceKind::Slack => "slack",
            SourceKind::Shopify => "shopify",
            SourceKind::StandardWebhooks => "standard-webhooks",
            SourceKind::Gitlab => "gitlab",
            SourceKind::Twilio => "twilio",
            SourceKind::Hmac => "hmac",
            SourceKind::Token => "token",
            SourceKind::Basic => "basic",
            SourceKind::AwsApiDestination => "aws-api-destination",
        }
    }
}

/// A rule: an event pattern on one bus and the targets of matching events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: Name,
    pub bus: String,
    /// EventBridge-style event pattern; absent or `{}` matches every event.
    #[serde(default)]
    pub pattern: Option<serde_json::Value>,
    /// CloudEvents Subscriptions API filters, all of which must match (with `pattern`).
    #[serde(default)]
    pub filters: Option<serde_json::Value>,
    /// `false`: the rule routes nothing; its targets still deliver what was routed before.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Free text for people (shown by the API and the CLI).
    #[serde(default)]
    pub description: Option<String>,
    /// What `pattern` is written against: `cloudevents` (default, the stored event) or
    /// `aws` (the AWS EventBridge event: `detail-type`, `detail`, `account`, ...).
    #[serde(default)]
    pub dialect: Dialect,
    /// Free-form string labels for people and tools (the AWS facade keeps its names
    /// here); Sluice itself ignores them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where matching events go; a rule without targets routes nothing.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

/// The event a rule's pattern or a target's payload is written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The stored CloudEvent.
    #[default]
    Cloudevents,
    /// The AWS EventBridge event (`rules::dialect`).
    Aws,
}

fn enabled() -> bool {
    true
}

impl RuleConfig {
    /// The rule's compiled condition: `pattern` and `filters` together. An error names
    /// its path relative to the rule (`pattern.data.x[0]`, `filters[1].exact.type`).
    pub fn condition(&self) -> Result<crate::rules::Pattern, crate::rules::InvalidAt> {
        condition(self.pattern.as_ref(), self.filters.as_ref(), self.dialect)
    }
}

/// A rule's `pattern` (in its `dialect`) and `filters` as one condition, with the paths
/// of errors relative to the rule (`pattern.data.total`, `filters[0]`). Search uses it
/// too, so a query selects exactly what a rule would.
pub fn condition(
    pattern: Option<&serde_json::Value>,
    filters: Option<&serde_json::Value>,
    dialect: Dialect,
) -> Result<crate::rules::Pattern, crate::rules::InvalidAt> {
    {
        use crate::rules::{InvalidAt, Pattern, MAX_COMBINATIONS, MAX_CONDITIONS};
        let within = |field: &str, e: InvalidAt| InvalidAt {
            path: format!("{field}{}", e.path),
            message: e.message,
        };
        let mut parts = Vec::new();
        if let Some(p) = pattern {
            let parsed = match dialect {
                Dialect::Cloudevents => Pattern::parse(p),
                Dialect::Aws => crate::rules::dialect::aws_pattern(p)
                    .and_then(|native| Pattern::parse(&native))
                    .map_err(|e| InvalidAt {
                        path: crate::rules::dialect::aws_path(&e.path),
                        message: e.message,
                    }),
            };
            parts.push(parsed.map_err(|e| within("pattern", e))?);
        }
        if let Some(f) = filters {
            parts.push(Pattern::parse_filters(f).map_err(|e| within("filters", e))?);
        }
        let combined: usize = parts.iter().map(Pattern::combinations).product();
        if combined > MAX_COMBINATIONS {
            return Err(InvalidAt {
                path: "filters".into(),
                message: format!(
                    "pattern and filters together expand to {combined} alternatives; at most {MAX_COMBINATIONS} are allowed"
                ),
            });
        }
        let all = Pattern::all(parts);
        if all.conditions() > MAX_CONDITIONS {
            return Err(InvalidAt {
                path: "filters".into(),
                message: format!(
                    "pattern and filters together expand to {} conditions; at most {MAX_CONDITIONS} are allowed",
                    all.conditions()
                ),
            });
        }
        Ok(all)
    }
}

/// Where matching events go. The fields here apply to every kind; `kind` selects the
/// kind's own fields (its config struct lives with the kind, in `targets/`), and a field
/// of another kind is refused naming the kinds it is for.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetConfig {
    pub name: Name,
    #[serde(flatten)]
    pub kind: crate::targets::TargetKindConfig,
    /// Per-attempt timeout. Default 10s.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Deliveries in flight at once to this target, per replica. Default 16.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Reshapes the event before delivery (see docs/transforms.md).
    #[serde(default)]
    pub transform: Option<crate::rules::TransformConfig>,
    /// What the target receives and its transform addresses: `cloudevents` (default)
    /// or `aws` (the AWS EventBridge event, as an AWS rule's target gets it).
    #[serde(default)]
    pub envelope: Dialect,
    /// Free-form string labels for people and tools; Sluice itself ignores them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Retry policy; absent: the defaults (or the legacy `delivery.retry_delay`).
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Most deliveries per second, shared by every replica (absent: no limit).
    #[serde(default)]
    pub rate: Option<RateConfig>,
    /// Pause the target after consecutive failures (absent: never paused).
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    /// FIFO delivery per key (absent: events are delivered in parallel, in any order).
    #[serde(default)]
    pub ordering: Option<OrderingConfig>,
    /// Every other field: the kind's own (read by `kind` as well) and misplaced or
    /// unknown ones, which the plan refuses.
    #[serde(flatten)]
    pub other_fields: BTreeMap<String, serde::de::IgnoredAny>,
}

/// `on_success:` the destination of a function's result.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnSuccessConfig {
    /// The bus the result goes to.
    pub bus: String,
    /// `source` of the new event. Default `/functions/{function}`.
    #[serde(default)]
    pub source: Option<String>,
    /// `type` of the new event. Default `sluice.function.result`.
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
}

/// `rate:` a token bucket in Redis, shared by all replicas.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Deliveries per second (fractions allowed: `0.5` is one every two seconds).
    pub per_second: f64,
    /// Deliveries that may go at once after a quiet period. Default: one second's worth
    /// (at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

impl RateConfig {
    pub fn burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| self.per_second.ceil().clamp(1.0, u32::MAX as f64) as u32)
    }
}

/// `breaker:` a circuit breaker, per replica.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive retryable failures (timeouts, connection errors, 408, 429, 5xx) that
    /// open the breaker. Default 10.
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    /// How long an open breaker pauses the target before one probe delivery. Default 30s.
    #[serde(default = "default_breaker_cooldown", deserialize_with = "duration")]
    pub cooldown: Duration,
}

fn default_breaker_failures() -> u32 {
    10
}
fn default_breaker_cooldown() -> Duration {
    Duration::from_secs(30)
}

/// `ordering:` FIFO delivery per key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderingConfig {
    /// A CloudEvents attribute name (`subject`, `partitionkey`) or a JSONPath into the
    /// event (`$.data.customer.id`).
    pub key: String,
}

impl OrderingConfig {
    /// The key as a JSONPath into the event.
    pub fn path(&self) -> String {
        if self.key.starts_with('$') {
            self.key.clone()
        } else {
            format!("$.{}", self.key)
        }
    }
}

impl TargetConfig {
    /// The retry policy in force: `retry:`, else a fixed `delivery.retry_delay`, else
    /// the defaults.
    pub fn retry_policy(&self, delivery: &Delivery) -> RetryConfig {
        match (&self.retry, delivery.retry_delay) {
            (Some(r), _) => r.clone(),
            // As before retry policies existed: no attempt limit, only `max_age`.
            (None, Some(d)) => RetryConfig {
                initial: d,
                max: d,
                max_attempts: u32::MAX,
                ..RetryConfig::default()
            },
            (None, None) => RetryConfig::default(),
        }
    }
}

/// `retry:` of a target. Attempt n (n >= 2) waits a random time between `initial` and
/// `min(max, initial * 2^(n-2))` after attempt n-1 failed (exponential backoff with
/// full jitter); a `Retry-After` on 429/503 replaces that wait (capped by `max`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before the event is dead-lettered (counted per replica holding it).
    pub max_attempts: u32,
    /// Age (since ingestion) after which a failing event is dead-lettered.
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
    /// Smallest wait between attempts.
    #[serde(deserialize_with = "duration")]
    pub initial: Duration,
    /// Largest wait between attempts.
    #[serde(deserialize_with = "duration")]
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 185,
            max_age: Duration::from_secs(24 * 3600),
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

/// The kinds of target (the `kind:` of a target; their fields: `targets::TargetKindConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// An HTTP endpoint, in the CloudEvents HTTP binding.
    Http,
    /// The same as `http`: named for Knative Services, OpenFaaS and other CloudEvents sinks.
    Cloudevents,
    /// A function hosted by Sluice (`functions:`).
    Function,
    AwsLambda,
    AwsEventbridge,
    AlibabaEventbridge,
    /// Another bus of this gateway.
    Bus,
    Rabbitmq,
    Nats,
    Mqtt,
    Redis,
    Postgres,
    Mysql,
}

impl TargetKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Http => "http",
            TargetKind::Cloudevents => "cloudevents",
            TargetKind::Function => "function",
            TargetKind::AwsLambda => "aws-lambda",
            TargetKind::AwsEventbridge => "aws-eventbridge",
            TargetKind::AlibabaEventbridge => "alibaba-eventbridge",
            TargetKind::Bus => "bus",
            TargetKind::Rabbitmq => "rabbitmq",
            TargetKind::Nats => "nats",
            TargetKind::Mqtt => "mqtt",
            TargetKind::Redis => "redis",
            TargetKind::Postgres => "postgres",
            TargetKind::Mysql => "mysql",
        }
    }

    /// Whether the target is a cloud bridge (`peer`, `event_bus`, `region`, ... apply).
    pub fn is_bridge(self) -> bool {
        matches!(
            self,
            TargetKind::AwsEventbridge | TargetKind::AlibabaEventbridge
        )
    }

    /// Whether the target speaks HTTP to a URL (`url`, `method`, `headers`, ... apply).
    pub fn is_http(self) -> bool {
        matches!(self, TargetKind::Http | TargetKind::Cloudevents)
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    16
}

impl BusConfig {
    /// Retention by age, defaulting to 7 days unless a length bound is set.
    pub fn retention_age(&self) -> Option<Duration> {
        match (self.retention, self.max_len) {
            (Some(age), _) => Some(age),
            (None, None) => Some(Duration::from_secs(7 * 24 * 3600)),
            (None, Some(_)) => None,
        }
    }
}

impl Config {
    /// Reads and parses a configuration file (checking is the plan's: [`crate::plan::Plan`]).
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                line: None,
                message: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        Config::parse(&text)
    }

    /// Parses configuration text: syntax, types and unknown fields, with the line of the
    /// error where serde gives one.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let de = yaml_serde::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line());
            // yaml_serde appends "at line X column Y"; the line is reported separately.
            let mut message = inner.to_string();
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            // It may also prefix the path of the enclosing value, which `path` covers.
            if let Some((prefix, rest)) = message.split_once(": ") {
                if !prefix.is_empty() && path.starts_with(prefix) {
                    message = rest.to_string();
                }
            }
            // A target's or source's `kind` selects its flattened fields, so serde
            // reports a bad kind at the item: name the field. (A bad value of another
            // enum among the flattened fields is reported at the item, with its value.)
            let mut path = path;
            let of_kinds = message.contains("`http`") || message.contains("`github`");
            if message.starts_with("unknown variant") && of_kinds && path.ends_with(']') {
                path.push_str(".kind");
            }
            vec![ConfigError {
                path: if path == "." { String::new() } else { path },
                line,
                message,
            }]
        })?;
        Ok(config)
    }
}
