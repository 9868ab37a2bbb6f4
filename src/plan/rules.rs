//! Buses, their rules and the rules' targets, compiled: one matcher per bus, one built
//! target (kind-specific part from `targets::build`) with its delivery settings each.

use std::collections::HashSet;
use std::time::Duration;

use crate::bus;
use crate::config::Dialect;
use crate::config::{
    BreakerConfig, Config, Errors, RateConfig, RetryConfig, RuleConfig, Secret, TargetConfig,
};
use crate::observability::trace::Tracing;
use crate::router::{BusRoutes, Route};
use crate::rules::select::Path;
use crate::rules::{Matcher, Transform};
use crate::targets::{BuildContext, BuiltTarget, TargetKindConfig};

/// The longest `retry.max_age`.
const MAX_RETRY_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// One bus: its routes (the compiled matcher and target streams) and its targets.
pub struct BusPlan {
    pub name: String,
    /// `ingest_token`, resolved.
    pub ingest_token: Option<Secret>,
    pub routes: BusRoutes,
    /// Every target of every rule of the bus, in rule order.
    pub targets: Vec<TargetPlan>,
    /// The bus's archives, for their archivers.
    pub archives: Vec<crate::archive::ArchivePlan>,
}

/// One target of one rule, ready to start.
pub struct TargetPlan {
    pub bus: String,
    pub rule: String,
    pub name: String,
    pub timeout: Duration,
    pub concurrency: usize,
    /// The policy in force (`retry:`, else `delivery.retry_delay`, else the defaults).
    pub retry: RetryConfig,
    pub rate: Option<RateConfig>,
    pub breaker: Option<BreakerConfig>,
    /// The ordering key as a compiled JSONPath.
    pub ordering: Option<Path>,
    pub on_success: Option<OnSuccessPlan>,
    /// The bus's `trace:`: the dispatcher adds its attempts to traced events' traces.
    pub trace: Option<Tracing>,
    /// The kind-specific part; taken (`Option::take`) when the target starts.
    pub built: Option<BuiltTarget>,
}

/// `on_success:` with its defaults filled in.
#[derive(Debug, Clone)]
pub struct OnSuccessPlan {
    pub bus: String,
    pub source: String,
    pub ty: String,
}

/// Builds every bus with its rules (in file order) and their targets.
pub(super) fn build(
    config: &Config,
    bus_names: &HashSet<&str>,
    gateway_id: &str,
    errors: &mut Errors,
) -> Vec<BusPlan> {
    let cx = BuildContext {
        buses: bus_names,
        functions: &config.functions,
        delivery: &config.delivery,
        gateway_id,
        aws_identity: (
            config
                .aws
                .as_ref()
                .and_then(|a| a.account.as_deref())
                .unwrap_or(crate::rules::dialect::DEFAULT_ACCOUNT),
            config
                .aws
                .as_ref()
                .map_or("us-east-1", |a| a.region.as_str()),
        ),
    };
    // Rules in file order, each with its compiled condition (None: invalid).
    let mut compiled = Vec::with_capacity(config.rules.len());
    let mut rule_names = HashSet::new();
    for (r, rule) in config.rules.iter().enumerate() {
        let at = format!("rules[{r}]");
        if !rule_names.insert((rule.bus.as_str(), rule.name.as_str())) {
            errors.at(
                format!("{at}.name"),
                format!(
                    "duplicate rule name {:?} on bus {:?}",
                    rule.name.as_str(),
                    rule.bus
                ),
            );
        }
        if !bus_names.contains(rule.bus.as_str()) {
            errors.at(
                format!("{at}.bus"),
                format!("no bus named {:?} in buses", rule.bus),
            );
        }
        let condition = match rule.condition() {
            Ok(c) => Some(c),
            Err(e) => {
                errors.at(format!("{at}.{}", e.path), e.message);
                None
            }
        };
        let mut target_names = HashSet::new();
        let targets: Vec<TargetPlan> = rule
            .targets
            .iter()
            .enumerate()
            .filter_map(|(t, target)| {
                let at = format!("{at}.targets[{t}]");
                if !target_names.insert(target.name.as_str()) {
                    errors.at(
                        format!("{at}.name"),
                        format!(
                            "duplicate target name {:?} in this rule",
                            target.name.as_str()
                        ),
                    );
                }
                build_target(rule, target, &cx, &at, errors)
            })
            .collect();
        compiled.push((rule, condition, targets));
    }

    let mut archive_names = HashSet::new();
    config
        .buses
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let ingest_token = b.ingest_token.as_ref().and_then(|t| match t.resolve() {
                Ok(secret) => Some(secret),
                Err(message) => {
                    errors.at(format!("buses[{i}].ingest_token"), message);
                    None
                }
            });
            let mut patterns = Vec::new();
            let mut streams = Vec::new();
            let mut rule_names = Vec::new();
            let mut targets = Vec::new();
            let mut exclusive = false;
            let trace = b.trace.as_ref().map(|t| {
                if !(0.0..=1.0).contains(&t.sample) {
                    errors.at(
                        format!("buses[{i}].trace.sample"),
                        "must be within 0.0..=1.0",
                    );
                }
                if t.retention.is_zero() {
                    errors.at(
                        format!("buses[{i}].trace.retention"),
                        "must be greater than 0",
                    );
                }
                Tracing::new(t.retention, t.sample)
            });
            for (rule, condition, rule_targets) in compiled.iter_mut() {
                if rule.bus != b.name.as_str() {
                    continue;
                }
                for t in rule_targets.iter_mut() {
                    t.trace = trace;
                }
                let Some(condition) = condition.take() else {
                    continue;
                };
                // A disabled rule matches nothing; its targets run on, draining what
                // was routed to them before. A rule without targets routes nowhere.
                if !rule.enabled || rule.targets.is_empty() {
                    targets.append(rule_targets);
                    continue;
                }
                patterns.push(condition);
                rule_names.push(rule.name.to_string());
                streams.push(
                    rule.targets
                        .iter()
                        .map(|t| {
                            let label = format!("{}/{}", rule.name.as_str(), t.name.as_str());
                            match &t.kind {
                                TargetKindConfig::Bus(forward) => {
                                    let to = forward.bus.clone().unwrap_or_default();
                                    Route::Bus {
                                        key: bus::bus_key(&to),
                                        to,
                                        label,
                                    }
                                }
                                _ => Route::Stream {
                                    key: bus::target_key(&b.name, &rule.name, &t.name),
                                    label,
                                },
                            }
                        })
                        .collect(),
                );
                exclusive |= rule.targets.iter().any(|t| t.ordering.is_some());
                targets.append(rule_targets);
            }
            let archives_from = patterns.len();
            for (a, archive) in b.archives.iter().enumerate() {
                let at = format!("buses[{i}].archives[{a}]");
                if !archive_names.insert(archive.name.as_str()) {
                    errors.at(
                        format!("{at}.name"),
                        format!(
                            "duplicate archive name {:?} (archive names are unique across buses)",
                            archive.name.as_str()
                        ),
                    );
                }
                match archive.condition() {
                    Ok(condition) => {
                        patterns.push(condition);
                        streams.push(vec![Route::Archive {
                            key: crate::archive::intake_key(&b.name, &archive.name),
                            label: archive.name.to_string(),
                        }]);
                    }
                    Err(e) => errors.at(format!("{at}.{}", e.path), e.message),
                }
            }
            BusPlan {
                name: b.name.to_string(),
                ingest_token,
                routes: BusRoutes {
                    bus: b.name.to_string(),
                    key: bus::bus_key(&b.name),
                    retention: bus::Retention::of(b),
                    matcher: Matcher::new(patterns),
                    targets: streams,
                    exclusive,
                    stats: b.stats.as_ref().map(|s| s.retention),
                    trace,
                    rule_names,
                    archives_from,
                },
                targets,
                archives: b
                    .archives
                    .iter()
                    .map(|a| crate::archive::ArchivePlan {
                        bus: b.name.to_string(),
                        name: a.name.to_string(),
                        retention_days: a.retention_days,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Checks and builds one target: the settings every kind has, then its kind's part.
fn build_target(
    rule: &RuleConfig,
    target: &TargetConfig,
    cx: &BuildContext<'_>,
    at: &str,
    errors: &mut Errors,
) -> Option<TargetPlan> {
    if let TargetKindConfig::Bus(forward) = &target.kind {
        // Forwarded by the router: checked here, nothing to start.
        crate::targets::check_fields(target, at, errors);
        forward.check(target, &rule.bus, cx, at, errors);
        return None;
    }
    let before = errors.len();
    // One compile of the transform, handed to the kind (`ORIGINAL` is none).
    let transform = match (&target.transform, target.envelope) {
        (t, Dialect::Aws) => {
            let (account, region) = cx.aws_identity;
            if target.kind.kind().is_bridge() {
                errors.at(
                    format!("{at}.envelope"),
                    format!(
                        "a {} target sends the event itself; envelope aws is for http, cloudevents, function and aws-lambda targets",
                        target.kind.kind().as_str()
                    ),
                );
            }
            match Transform::aws_envelope(t.as_ref(), account, region) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.at(format!("{at}.transform{}", e.path), e.message);
                    None
                }
            }
        }
        (None, Dialect::Cloudevents) => None,
        (Some(t), Dialect::Cloudevents) => match Transform::compile(t) {
            Ok(Transform::Original) => None,
            Ok(t) => Some(t),
            Err(e) => {
                errors.at(format!("{at}.transform{}", e.path), e.message);
                None
            }
        },
    };
    let built = crate::targets::build(target, transform, cx, at, errors);
    if target.timeout.is_zero() {
        errors.at(format!("{at}.timeout"), "must be greater than 0");
    }
    if target.concurrency == 0 {
        errors.at(format!("{at}.concurrency"), "must be at least 1");
    }
    // An entry is pending only during one attempt (a waiting retry sits in the delay
    // set): while its replica lives, it is never idle longer than `timeout` plus the
    // round trip of the move that follows.
    let margin = Duration::from_secs(1);
    if cx.delivery.claim_idle <= target.timeout + margin {
        errors.at(
            "delivery.claim_idle",
            format!(
                "must exceed {at}.timeout + 1s ({}): an attempt in flight does not touch its entry, so live deliveries would be taken over",
                humantime::format_duration(target.timeout + margin)
            ),
        );
    }
    if let Some(rate) = &target.rate {
        if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
            errors.at(
                format!("{at}.rate.per_second"),
                "must be a number greater than 0",
            );
        }
        if rate.burst == Some(0) {
            errors.at(format!("{at}.rate.burst"), "must be at least 1");
        }
    }
    if let Some(breaker) = &target.breaker {
        if breaker.failures == 0 {
            errors.at(format!("{at}.breaker.failures"), "must be at least 1");
        }
        if breaker.cooldown.is_zero() {
            errors.at(format!("{at}.breaker.cooldown"), "must be greater than 0");
        }
    }
    let ordering = target.ordering.as_ref().and_then(|o| {
        if o.key.is_empty() {
            errors.at(format!("{at}.ordering.key"), "must not be empty");
            return None;
        }
        Path::new(&o.path())
            .map_err(|e| errors.at(format!("{at}.ordering.key"), e))
            .ok()
    });
    if let Some(retry) = &target.retry {
        check_retry(retry, at, errors);
    }
    if errors.len() > before {
        return None;
    }
    let (function, on_success) = match &target.kind {
        TargetKindConfig::Function(f) => (f.function.as_deref(), f.on_success.as_ref()),
        TargetKindConfig::AwsLambda(f) => (f.function.as_deref(), f.on_success.as_ref()),
        _ => (None, None),
    };
    Some(TargetPlan {
        bus: rule.bus.clone(),
        rule: rule.name.to_string(),
        name: target.name.to_string(),
        timeout: target.timeout,
        concurrency: target.concurrency,
        retry: target.retry_policy(cx.delivery),
        rate: target.rate.clone(),
        breaker: target.breaker.clone(),
        ordering,
        trace: None,
        on_success: on_success.map(|o| OnSuccessPlan {
            bus: o.bus.clone(),
            source: o
                .source
                .clone()
                .unwrap_or_else(|| format!("/functions/{}", function.unwrap_or_default())),
            ty: o
                .ty
                .clone()
                .unwrap_or_else(|| "sluice.function.result".into()),
        }),
        built,
    })
}

fn check_retry(retry: &RetryConfig, at: &str, errors: &mut Errors) {
    if retry.max_attempts == 0 {
        errors.at(format!("{at}.retry.max_attempts"), "must be at least 1");
    }
    if retry.max_age.is_zero() {
        errors.at(format!("{at}.retry.max_age"), "must be greater than 0");
    }
    if retry.max_age > MAX_RETRY_AGE {
        errors.at(
            format!("{at}.retry.max_age"),
            "must be at most 365d (a stream is no place for older events)",
        );
    }
    if retry.initial.is_zero() {
        errors.at(format!("{at}.retry.initial"), "must be greater than 0");
    }
    if retry.max < retry.initial {
        errors.at(format!("{at}.retry.max"), "must be at least retry.initial");
    }
}
