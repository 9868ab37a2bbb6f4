//! The YAML configuration: its model (serde structs, documented field by field in
//! `docs/configuration.md`), loading with precise error locations, and validation.
//!
//! Every error names the path of the offending value in the file, e.g.
//! `rules[2].targets[0].url: relative URL`, and, for syntax and type errors, its line.

mod validate;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use validate::ConfigError;

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
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
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
    /// Wait between attempts of a failed delivery.
    #[serde(deserialize_with = "duration")]
    pub retry_delay: Duration,
    /// Entries pending this long on another consumer are taken over (that replica is
    /// presumed dead). Must exceed the longest target timeout plus `retry_delay`.
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
            retry_delay: Duration::from_secs(5),
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
    pub name: String,
    /// Keep events this long (the router trims once a second, never past what it has
    /// not routed yet). Default 7d.
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention: Option<Duration>,
    /// Keep at most this many events (same trimming). Excludes `retention`.
    #[serde(default)]
    pub max_len: Option<u64>,
}

/// A rule: an event pattern on one bus and the targets of matching events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub bus: String,
    /// EventBridge-style event pattern; absent or `{}` matches every event.
    #[serde(default)]
    pub pattern: Option<serde_json::Value>,
    /// CloudEvents Subscriptions API filters, all of which must match (with `pattern`).
    #[serde(default)]
    pub filters: Option<serde_json::Value>,
    pub targets: Vec<TargetConfig>,
}

impl RuleConfig {
    /// The rule's compiled condition: `pattern` and `filters` together. An error names
    /// its path relative to the rule (`pattern.data.x[0]`, `filters[1].exact.type`).
    pub fn condition(&self) -> Result<crate::rules::Pattern, crate::rules::InvalidAt> {
        use crate::rules::{InvalidAt, Pattern, MAX_COMBINATIONS};
        let within = |field: &str, e: InvalidAt| InvalidAt {
            path: format!("{field}{}", e.path),
            message: e.message,
        };
        let mut parts = Vec::new();
        if let Some(p) = &self.pattern {
            parts.push(Pattern::parse(p).map_err(|e| within("pattern", e))?);
        }
        if let Some(f) = &self.filters {
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
        Ok(Pattern::all(parts))
    }
}

/// Where matching events go. Only `http` exists so far.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra request headers: a literal, or a JSONPath into the event (`$...`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-attempt timeout. Default 10s.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// CloudEvents HTTP mode of the request. Default binary.
    #[serde(default)]
    pub mode: DeliveryMode,
    /// Deliveries in flight at once to this target, per replica. Default 16.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Reshapes the event before delivery (see docs/transforms.md).
    #[serde(default)]
    pub transform: Option<crate::rules::TransformConfig>,
    /// Values for `{name}` placeholders in `url`: a JSONPath into the event (`$...`) or
    /// a literal.
    #[serde(default)]
    pub path_params: BTreeMap<String, String>,
    /// Query parameters added to `url`: a JSONPath into the event (`$...`) or a literal.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    #[default]
    Binary,
    Structured,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_method() -> String {
    "POST".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    16
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}); write e.g. 500ms, 10s, 5m, 24h, 7d"
        ))
    })
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
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
    /// Parses and validates a configuration file.
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

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let de = serde_yaml::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line());
            // serde_yaml appends "at line X column Y"; the line is reported separately.
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
            vec![ConfigError {
                path: if path == "." { String::new() } else { path },
                line,
                message,
            }]
        })?;
        let errors = validate::validate(&config);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}
