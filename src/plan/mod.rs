//! The plan: a configuration compiled once into what a replica runs.
//!
//! `Config` (the YAML, as serde reads it) goes through [`Plan::build`] exactly once:
//! every value is checked (every error collected with its path), every secret resolved,
//! every pattern, transform, URL template, verifier and schema compiled. `sluice check`
//! builds a plan and drops it; `gateway::run` starts tasks from one, moving its parts
//! into them, so nothing is compiled twice and nothing can fail there for a reason the
//! check would have found.
//!
//! A plan is a plain value: it can be rebuilt from a changed configuration and its parts
//! compared with the running ones by name (bus, rule, target), which is what a hot
//! reload needs (docs/architecture.md, "Configuration -> plan -> gateway").

mod rules;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::compat::alibaba::putevents::AlibabaIngest;
use crate::compat::aws::putevents::AwsIngest;
use crate::config::{Config, ConfigError, Errors, Secret};
use crate::sources::Source;

pub use rules::{BusPlan, OnSuccessPlan, TargetPlan};

/// A configuration, compiled. See the module documentation.
pub struct Plan {
    /// The configuration the plan was built from. Sections that need no compiling
    /// (`limits`, `delivery`, `functions`, ...) are read from it as they are.
    pub config: Config,
    /// This gateway's id in bridge traces.
    pub gateway_id: String,
    /// The control API's bearer token (`api.token`, resolved).
    pub api_token: Option<Secret>,
    /// Every bus with its compiled routes and the targets of its rules.
    pub buses: Vec<BusPlan>,
    /// Webhook sources by name, verifiers compiled and secrets resolved.
    pub sources: HashMap<String, Source>,
    /// The AWS PutEvents-compatible endpoint, when configured.
    pub aws: Option<AwsIngest>,
    /// `aws.access_keys`, resolved (also verifies the Lambda Invoke API).
    pub aws_keys: Vec<(String, Vec<u8>)>,
    /// The Alibaba PutEvents-compatible endpoint, when configured.
    pub alibaba: Option<AlibabaIngest>,
    /// Every version of every schema of `schemas:`, compiled (one list per schema, in
    /// config order): what the schema gate validates with.
    pub schema_versions: Vec<crate::config::schemas::CompiledVersions>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let buses: Vec<&str> = self.buses.iter().map(|b| b.name.as_str()).collect();
        f.debug_struct("Plan")
            .field("gateway_id", &self.gateway_id)
            .field("buses", &buses)
            .field("targets", &self.targets().count())
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// Reads, parses and compiles a configuration file (schema `file:`s relative to it).
    pub fn load(path: &Path) -> Result<Plan, Vec<ConfigError>> {
        let config = Config::load(path)?;
        Plan::build(config, path.parent())
    }

    /// Parses and compiles configuration text (schema files relative to the working
    /// directory).
    pub fn parse(text: &str) -> Result<Plan, Vec<ConfigError>> {
        Plan::build(Config::parse(text)?, None)
    }

    /// Compiles a parsed configuration: every error of the file, each at its path.
    pub fn build(config: Config, base: Option<&Path>) -> Result<Plan, Vec<ConfigError>> {
        let mut errors = Errors::default();
        let (schema_errors, schema_versions) = crate::config::schemas::resolve(&config, base);
        errors.0.extend(schema_errors);
        let gateway_id = crate::event::bridge::gateway_id(config.gateway_id.as_deref());
        let api_token = resolve(config.api.token.as_ref(), "api.token", &mut errors);
        let bus_names: HashSet<&str> = config.buses.iter().map(|b| b.name.as_str()).collect();
        for (i, c) in config.connectors.iter().enumerate() {
            let at = format!("connectors[{i}]");
            if config.connectors[..i].iter().any(|o| o.name == c.name) {
                errors.at(
                    format!("{at}.name"),
                    format!("duplicate connector name {:?}", c.name.as_str()),
                );
            }
            crate::connectors::check(c, &bus_names, &at, &mut errors);
        }
        if let Some(id) = &config.gateway_id {
            if !crate::event::bridge::valid_id(id) {
                errors.at(
                    "gateway_id",
                    "must be non-empty, at most 128 characters, without commas or spaces",
                );
            }
        }
        check_replica(&config, &mut errors);
        check_buses(&config, &mut errors);
        check_functions(&config, &mut errors);
        let sources = build_sources(&config, &bus_names, &mut errors);
        let mut aws_keys = Vec::new();
        if let Some(aws) = &config.aws {
            aws_keys = resolve_keys("aws", &aws.access_keys, &mut errors);
            crate::compat::aws::putevents::check(aws, &bus_names, &mut errors);
        }
        let mut alibaba_keys = Vec::new();
        if let Some(alibaba) = &config.alibaba {
            alibaba_keys = resolve_keys("alibaba", &alibaba.access_keys, &mut errors);
            crate::compat::alibaba::putevents::check(alibaba, &bus_names, &mut errors);
        }
        let buses = rules::build(&config, &bus_names, &gateway_id, &mut errors);
        if !errors.is_empty() {
            return Err(errors.0);
        }
        Ok(Plan {
            gateway_id,
            api_token,
            buses,
            sources,
            aws: config
                .aws
                .as_ref()
                .map(|a| AwsIngest::compile(a, aws_keys.clone())),
            aws_keys,
            alibaba: config
                .alibaba
                .as_ref()
                .map(|a| AlibabaIngest::compile(a, alibaba_keys)),
            schema_versions,
            config,
        })
    }

    /// Every target of every bus.
    pub fn targets(&self) -> impl Iterator<Item = &TargetPlan> {
        self.buses.iter().flat_map(|b| &b.targets)
    }

    /// Whether something in the plan calls AWS (so the AWS environment is loaded).
    pub fn needs_aws(&self) -> bool {
        self.targets().any(|t| {
            matches!(
                t.built,
                Some(crate::targets::BuiltTarget::AwsEventBridge(_))
            )
        }) || self
            .config
            .connectors
            .iter()
            .any(|c| matches!(c.kind, crate::connectors::ConnectorKindConfig::Sqs(_)))
    }
}

/// Resolves an optional secret reference at `path`.
fn resolve(
    reference: Option<&crate::config::SecretRef>,
    path: &str,
    errors: &mut Errors,
) -> Option<Secret> {
    match reference?.resolve() {
        Ok(secret) => Some(secret),
        Err(message) => {
            errors.at(path, message);
            None
        }
    }
}

/// Resolves the secrets of an `access_keys` list of `section`.
fn resolve_keys(
    section: &str,
    keys: &[crate::config::AccessKeyConfig],
    errors: &mut Errors,
) -> Vec<(String, Vec<u8>)> {
    keys.iter()
        .enumerate()
        .filter_map(|(i, key)| {
            let secret = resolve(
                Some(&key.secret),
                &format!("{section}.access_keys[{i}].secret"),
                errors,
            )?;
            Some((key.id.clone(), secret.0))
        })
        .collect()
}

/// `listen`, `redis`, `limits`, `delivery`.
fn check_replica(config: &Config, errors: &mut Errors) {
    if config.listen.parse::<std::net::SocketAddr>().is_err() {
        errors.at(
            "listen",
            format!(
                "{:?} is not an address such as 127.0.0.1:8080",
                config.listen
            ),
        );
    }
    if let Some(redis) = &config.redis {
        if let Err(e) = crate::bus::redis_url::client(redis.as_str()) {
            errors.at(
                "redis",
                format!("not a usable Redis URL such as redis://127.0.0.1:6379: {e}"),
            );
        }
    }
    let limits = &config.limits;
    if limits.max_event_bytes == 0 {
        errors.at("limits.max_event_bytes", "must be greater than 0");
    }
    if limits.max_request_bytes < limits.max_event_bytes {
        errors.at(
            "limits.max_request_bytes",
            "must be at least max_event_bytes",
        );
    }
    let delivery = &config.delivery;
    if delivery.retry_delay.is_some_and(|d| d.is_zero()) {
        errors.at("delivery.retry_delay", "must be greater than 0");
    }
    if delivery.batch_size == 0 {
        errors.at("delivery.batch_size", "must be greater than 0");
    }
}

fn check_buses(config: &Config, errors: &mut Errors) {
    let mut names = HashSet::new();
    for (i, bus) in config.buses.iter().enumerate() {
        if !names.insert(bus.name.as_str()) {
            errors.at(
                format!("buses[{i}].name"),
                format!("duplicate bus name {:?}", bus.name.as_str()),
            );
        }
        if bus.retention.is_some() && bus.max_len.is_some() {
            errors.at(format!("buses[{i}]"), "set retention or max_len, not both");
        }
        if bus.retention.is_some_and(|r| r.is_zero()) {
            errors.at(format!("buses[{i}].retention"), "must be greater than 0");
        }
        if bus.max_len == Some(0) {
            errors.at(format!("buses[{i}].max_len"), "must be greater than 0");
        }
    }
}

fn check_functions(config: &Config, errors: &mut Errors) {
    let mut names = HashSet::new();
    for (i, f) in config.functions.iter().enumerate() {
        let at = format!("functions[{i}]");
        if !names.insert(f.name.as_str()) {
            errors.at(
                format!("{at}.name"),
                format!("duplicate function name {:?}", f.name.as_str()),
            );
        }
        if f.command.trim().is_empty() {
            errors.at(format!("{at}.command"), "must not be empty");
        }
        let positive: [(&str, Duration); 3] = [
            ("timeout", f.timeout),
            ("idle_timeout", f.idle_timeout),
            ("queue_timeout", f.queue_timeout),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                errors.at(format!("{at}.{field}"), "must be greater than 0");
            }
        }
        if !(128..=10240).contains(&f.memory) {
            errors.at(
                format!("{at}.memory"),
                format!("{} MB is outside 128..=10240 (as Lambda)", f.memory),
            );
        }
        if f.max_instances == 0 {
            errors.at(format!("{at}.max_instances"), "must be at least 1");
        }
        if f.min_instances > f.max_instances {
            errors.at(
                format!("{at}.min_instances"),
                format!(
                    "{} exceeds max_instances {}",
                    f.min_instances, f.max_instances
                ),
            );
        }
        for name in f.env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                errors.at(
                    format!("{at}.env.{name}"),
                    "not a valid environment variable name",
                );
            }
        }
    }
}

/// Resolves every source's secrets and compiles its verifier.
fn build_sources(
    config: &Config,
    bus_names: &HashSet<&str>,
    errors: &mut Errors,
) -> HashMap<String, Source> {
    let mut sources = HashMap::new();
    let mut names = HashSet::new();
    for (i, source) in config.sources.iter().enumerate() {
        let at = format!("sources[{i}]");
        if !names.insert(source.name.as_str()) {
            errors.at(
                format!("{at}.name"),
                format!("duplicate source name {:?}", source.name.as_str()),
            );
        }
        if !bus_names.contains(source.bus.as_str()) {
            errors.at(
                format!("{at}.bus"),
                format!("no bus named {:?} in buses", source.bus.as_str()),
            );
        }
        let secrets = crate::sources::resolve_secrets(source, &at, errors);
        if let Some(compiled) = Source::compile(source, &secrets, &at, errors) {
            sources.entry(source.name.to_string()).or_insert(compiled);
        }
    }
    sources
}

#[cfg(test)]
mod tests;
