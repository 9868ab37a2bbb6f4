//! Semantic checks of a parsed configuration; each error carries the path of the value.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

/// The longest `retry.max_age`.
const MAX_RETRY_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

use super::{
    resolve_secret, AccessKeyConfig, AlibabaAuth, AlibabaConfig, AwsAuth, AwsConfig, Config,
    Secret, SecretRef, SourceKind,
};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending value, e.g. `rules[2].targets[0].url`.
    pub path: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Names end up in Redis keys and URLs: keep them to a safe alphabet.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{name:?} may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Resolves every source's `secret`/`secrets` (`env:`, `file:`, literal) into
/// `resolved_secrets`; a missing variable or file is an error at the secret's path.
pub(super) fn resolve_secrets(config: &mut Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    if let Some(token) = &config.api.token {
        match resolve_secret(&token.0) {
            Ok(secret) => config.api.resolved = Some(secret),
            Err(message) => errors.push(ConfigError {
                path: "api.token".into(),
                line: None,
                message,
            }),
        }
    }
    for (i, bus) in config.buses.iter_mut().enumerate() {
        if let Some(token) = &bus.ingest_token {
            match resolve_secret(&token.0) {
                Ok(secret) => bus.resolved_ingest_token = Some(secret),
                Err(message) => errors.push(ConfigError {
                    path: format!("buses[{i}].ingest_token"),
                    line: None,
                    message,
                }),
            }
        }
    }
    for (i, source) in config.sources.iter_mut().enumerate() {
        let refs: Vec<(String, &SecretRef)> = match (&source.secret, source.secrets.as_slice()) {
            (Some(one), []) => vec![(format!("sources[{i}].secret"), one)],
            (None, many) => many
                .iter()
                .enumerate()
                .map(|(j, s)| (format!("sources[{i}].secrets[{j}]"), s))
                .collect(),
            (Some(_), _) => {
                errors.push(ConfigError {
                    path: format!("sources[{i}]"),
                    line: None,
                    message: "set secret or secrets, not both".into(),
                });
                continue;
            }
        };
        if refs.is_empty() {
            errors.push(ConfigError {
                path: format!("sources[{i}].secret"),
                line: None,
                message: format!(
                    "kind {} needs a secret (or secrets: [...]){}",
                    source.kind.as_str(),
                    if source.kind == SourceKind::Basic {
                        ": the password"
                    } else {
                        ""
                    }
                ),
            });
            continue;
        }
        let mut resolved = Vec::with_capacity(refs.len());
        for (path, reference) in refs {
            match resolve_secret(&reference.0) {
                Ok(secret) => resolved.push(Some(secret)),
                Err(message) => {
                    resolved.push(None);
                    errors.push(ConfigError {
                        path,
                        line: None,
                        message,
                    })
                }
            }
        }
        source.resolved_secrets = resolved;
    }
    for (r, rule) in config.rules.iter_mut().enumerate() {
        for (t, target) in rule.targets.iter_mut().enumerate() {
            errors.extend(resolve_bridge_secrets(
                target,
                &format!("rules[{r}].targets[{t}]"),
            ));
            let Some(signing) = target.signing.as_mut() else {
                continue;
            };
            let resolved = resolve_secret(&signing.secret.0)
                .and_then(|s| super::decode_whsec(&s.0).map(Secret));
            match resolved {
                Ok(key) => signing.key = Some(key),
                Err(message) => errors.push(ConfigError {
                    path: format!("rules[{r}].targets[{t}].signing.secret"),
                    line: None,
                    message,
                }),
            }
        }
    }
    let sections = [
        ("aws", config.aws.as_mut().map(|a| &mut a.access_keys)),
        (
            "alibaba",
            config.alibaba.as_mut().map(|a| &mut a.access_keys),
        ),
    ];
    for (section, keys) in sections {
        for (i, key) in keys.into_iter().flatten().enumerate() {
            match resolve_secret(&key.secret.0) {
                Ok(secret) => key.resolved = Some(secret),
                Err(message) => errors.push(ConfigError {
                    path: format!("{section}.access_keys[{i}].secret"),
                    line: None,
                    message,
                }),
            }
        }
    }
    errors
}

pub(super) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| {
        errors.push(ConfigError {
            path,
            line: None,
            message,
        })
    };

    for (i, c) in config.connectors.iter().enumerate() {
        let at = format!("connectors[{i}]");
        if let Err(m) = check_name(&c.name) {
            err(format!("{at}.name"), m);
        }
        if config.connectors[..i].iter().any(|o| o.name == c.name) {
            err(
                format!("{at}.name"),
                format!("duplicate connector name {:?}", c.name),
            );
        }
        if !config.buses.iter().any(|b| b.name == c.bus) {
            err(format!("{at}.bus"), format!("no bus named {:?}", c.bus));
        }
        match url::Url::parse(&c.queue_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => err(
                format!("{at}.queue_url"),
                "must be the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/events".into(),
            ),
        }
        if let Some(endpoint) = &c.endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
                Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
                _ => err(
                    format!("{at}.endpoint"),
                    "must be an https:// URL (http:// only for loopback addresses)".into(),
                ),
            }
        }
        if c.peer
            .as_deref()
            .is_some_and(|p| !crate::event::bridge::valid_id(p))
        {
            err(
                format!("{at}.peer"),
                "must be non-empty, without commas or spaces".into(),
            );
        }
        if c.wait.is_some_and(|w| w > Duration::from_secs(20)) {
            err(
                format!("{at}.wait"),
                "must be at most 20s (the SQS limit)".into(),
            );
        }
        if c.max_messages.is_some_and(|m| !(1..=10).contains(&m)) {
            err(
                format!("{at}.max_messages"),
                "must be 1 to 10 (the SQS limit)".into(),
            );
        }
        if c.dedupe
            .0
            .is_some_and(|w| w.is_zero() || w > crate::sources::MAX_DEDUPE)
        {
            err(format!("{at}.dedupe"), "must be 1ms to 365d, or off".into());
        }
    }
    if let Some(id) = &config.gateway_id {
        if !crate::event::bridge::valid_id(id) {
            err(
                "gateway_id".into(),
                "must be non-empty, at most 128 characters, without commas or spaces".into(),
            );
        }
    }
    if config.listen.parse::<std::net::SocketAddr>().is_err() {
        err(
            "listen".into(),
            format!(
                "{:?} is not an address such as 127.0.0.1:8080",
                config.listen
            ),
        );
    }
    if let Some(redis) = &config.redis {
        if let Err(e) = crate::bus::redis_url::client(redis.as_str()) {
            err(
                "redis".into(),
                format!("not a usable Redis URL such as redis://127.0.0.1:6379: {e}"),
            );
        }
    }
    let limits = &config.limits;
    if limits.max_event_bytes == 0 {
        err(
            "limits.max_event_bytes".into(),
            "must be greater than 0".into(),
        );
    }
    if limits.max_request_bytes < limits.max_event_bytes {
        err(
            "limits.max_request_bytes".into(),
            "must be at least max_event_bytes".into(),
        );
    }
    let delivery = &config.delivery;
    if delivery.retry_delay.is_some_and(|d| d.is_zero()) {
        err(
            "delivery.retry_delay".into(),
            "must be greater than 0".into(),
        );
    }
    if delivery.batch_size == 0 {
        err(
            "delivery.batch_size".into(),
            "must be greater than 0".into(),
        );
    }

    let mut bus_names = HashSet::new();
    for (i, bus) in config.buses.iter().enumerate() {
        if let Err(m) = check_name(&bus.name) {
            err(format!("buses[{i}].name"), m);
        }
        if !bus_names.insert(bus.name.as_str()) {
            err(
                format!("buses[{i}].name"),
                format!("duplicate bus name {:?}", bus.name),
            );
        }
        if bus.retention.is_some() && bus.max_len.is_some() {
            err(
                format!("buses[{i}]"),
                "set retention or max_len, not both".into(),
            );
        }
        if bus.retention.is_some_and(|r| r.is_zero()) {
            err(
                format!("buses[{i}].retention"),
                "must be greater than 0".into(),
            );
        }
        if bus.max_len == Some(0) {
            err(
                format!("buses[{i}].max_len"),
                "must be greater than 0".into(),
            );
        }
    }

    let mut function_names = HashSet::new();
    for (i, f) in config.functions.iter().enumerate() {
        let at = format!("functions[{i}]");
        if let Err(m) = check_name(&f.name) {
            err(format!("{at}.name"), m);
        }
        if !function_names.insert(f.name.as_str()) {
            err(
                format!("{at}.name"),
                format!("duplicate function name {:?}", f.name),
            );
        }
        if f.command.trim().is_empty() {
            err(format!("{at}.command"), "must not be empty".into());
        }
        if f.timeout.is_zero() {
            err(format!("{at}.timeout"), "must be greater than 0".into());
        }
        if f.idle_timeout.is_zero() {
            err(
                format!("{at}.idle_timeout"),
                "must be greater than 0".into(),
            );
        }
        if f.queue_timeout.is_zero() {
            err(
                format!("{at}.queue_timeout"),
                "must be greater than 0".into(),
            );
        }
        if !(128..=10240).contains(&f.memory) {
            err(
                format!("{at}.memory"),
                format!("{} MB is outside 128..=10240 (as Lambda)", f.memory),
            );
        }
        if f.max_instances == 0 {
            err(format!("{at}.max_instances"), "must be at least 1".into());
        }
        if f.min_instances > f.max_instances {
            err(
                format!("{at}.min_instances"),
                format!(
                    "{} exceeds max_instances {}",
                    f.min_instances, f.max_instances
                ),
            );
        }
        for name in f.env.keys() {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                err(
                    format!("{at}.env.{name}"),
                    "not a valid environment variable name".into(),
                );
            }
        }
    }

    let mut source_names = HashSet::new();
    for (i, source) in config.sources.iter().enumerate() {
        let at = format!("sources[{i}]");
        if let Err(m) = check_name(&source.name) {
            err(format!("{at}.name"), m);
        }
        if !source_names.insert(source.name.as_str()) {
            err(
                format!("{at}.name"),
                format!("duplicate source name {:?}", source.name),
            );
        }
        if !bus_names.contains(source.bus.as_str()) {
            err(
                format!("{at}.bus"),
                format!("no bus named {:?} in buses", source.bus),
            );
        }
        // Compiled exactly as the ingress will compile it (secrets resolved before).
        if let Err(errors) = crate::sources::Source::compile(source) {
            for (field, message) in errors {
                err(format!("{at}.{field}"), message);
            }
        }
    }

    if let Some(aws) = &config.aws {
        validate_aws(aws, &bus_names, &mut err);
    }
    if let Some(alibaba) = &config.alibaba {
        validate_alibaba(alibaba, &bus_names, &mut err);
    }

    let mut rule_names = HashSet::new();
    for (r, rule) in config.rules.iter().enumerate() {
        let at = format!("rules[{r}]");
        if let Err(m) = check_name(&rule.name) {
            err(format!("{at}.name"), m);
        }
        if !rule_names.insert((rule.bus.as_str(), rule.name.as_str())) {
            err(
                format!("{at}.name"),
                format!("duplicate rule name {:?} on bus {:?}", rule.name, rule.bus),
            );
        }
        if !bus_names.contains(rule.bus.as_str()) {
            err(
                format!("{at}.bus"),
                format!("no bus named {:?} in buses", rule.bus),
            );
        }
        if let Err(e) = rule.condition() {
            err(format!("{at}.{}", e.path), e.message);
        }
        if rule.targets.is_empty() {
            err(
                format!("{at}.targets"),
                "a rule needs at least one target".into(),
            );
        }
        let mut target_names = HashSet::new();
        for (t, target) in rule.targets.iter().enumerate() {
            let at = format!("{at}.targets[{t}]");
            if let Err(m) = check_name(&target.name) {
                err(format!("{at}.name"), m);
            }
            if !target_names.insert(target.name.as_str()) {
                err(
                    format!("{at}.name"),
                    format!("duplicate target name {:?} in this rule", target.name),
                );
            }
            check_kind_fields(target, &at, &mut err);
            if !target.kind.is_http() {
                check_non_http_target(target, &at, config, &mut err);
            } else if target.url.is_none() {
                err(
                    format!("{at}.url"),
                    format!("a {} target needs a url", target.kind.as_str()),
                );
            } else {
                // Placeholders, parameters and the transform compile here exactly as the
                // dispatcher will compile them.
                let shape = crate::targets::http::RequestShape::compile(target);
                if let Err(errors) = &shape {
                    for (field, message) in errors {
                        err(format!("{at}.{field}"), message.clone());
                    }
                }
                let sample_url = shape.as_ref().map_or_else(
                    |_| target.url.clone().unwrap_or_default(),
                    |s| s.sample_url(),
                );
                match url::Url::parse(&sample_url) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
                        if u.host_str().is_none_or(str::is_empty) {
                            err(format!("{at}.url"), "URL has no host".into());
                        }
                    }
                    Ok(u) => err(
                        format!("{at}.url"),
                        format!("scheme {:?} is not http or https", u.scheme()),
                    ),
                    Err(url::ParseError::RelativeUrlWithoutBase) => {
                        err(format!("{at}.url"), "relative URL".into())
                    }
                    Err(e) => err(format!("{at}.url"), format!("invalid URL: {e}")),
                }
                if !matches!(target.method.as_str(), "POST" | "PUT" | "PATCH") {
                    err(
                        format!("{at}.method"),
                        format!("{:?} is not POST, PUT or PATCH", target.method),
                    );
                }
                for (name, value) in &target.headers {
                    let lower = name.to_ascii_lowercase();
                    if lower == "content-type" || lower.starts_with("ce-") {
                        err(
                            format!("{at}.headers.{name}"),
                            "set by Sluice from the event (or the transform); use a transform to change the body".into(),
                        );
                        continue;
                    }
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        err(format!("{at}.headers.{name}"), "invalid header name".into());
                    } else if reqwest::header::HeaderValue::from_str(value).is_err() {
                        err(
                            format!("{at}.headers.{name}"),
                            "invalid header value".into(),
                        );
                    }
                }
            }
            if target.timeout.is_zero() {
                err(format!("{at}.timeout"), "must be greater than 0".into());
            }
            if target.concurrency == 0 {
                err(format!("{at}.concurrency"), "must be at least 1".into());
            }
            // An entry is pending only during one attempt (a waiting retry sits in the
            // delay set): while its replica lives, it is never idle longer than
            // `timeout` plus the round trip of the move that follows.
            let margin = std::time::Duration::from_secs(1);
            if delivery.claim_idle <= target.timeout + margin {
                err(
                    "delivery.claim_idle".into(),
                    format!(
                        "must exceed {at}.timeout + 1s ({}): an attempt in flight does not touch its entry, so live deliveries would be taken over",
                        humantime::format_duration(target.timeout + margin)
                    ),
                );
            }
            if let Some(rate) = &target.rate {
                if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
                    err(
                        format!("{at}.rate.per_second"),
                        "must be a number greater than 0".into(),
                    );
                }
                if rate.burst == Some(0) {
                    err(format!("{at}.rate.burst"), "must be at least 1".into());
                }
            }
            if let Some(breaker) = &target.breaker {
                if breaker.failures == 0 {
                    err(
                        format!("{at}.breaker.failures"),
                        "must be at least 1".into(),
                    );
                }
                if breaker.cooldown.is_zero() {
                    err(
                        format!("{at}.breaker.cooldown"),
                        "must be greater than 0".into(),
                    );
                }
            }
            if let Some(ordering) = &target.ordering {
                if ordering.key.is_empty() {
                    err(format!("{at}.ordering.key"), "must not be empty".into());
                } else if let Err(e) = crate::rules::select::Path::new(&ordering.path()) {
                    err(format!("{at}.ordering.key"), e);
                }
            }
            if let Some(retry) = &target.retry {
                if retry.max_attempts == 0 {
                    err(
                        format!("{at}.retry.max_attempts"),
                        "must be at least 1".into(),
                    );
                }
                if retry.max_age.is_zero() {
                    err(
                        format!("{at}.retry.max_age"),
                        "must be greater than 0".into(),
                    );
                }
                if retry.max_age > MAX_RETRY_AGE {
                    err(
                        format!("{at}.retry.max_age"),
                        "must be at most 365d (a stream is no place for older events)".into(),
                    );
                }
                if retry.initial.is_zero() {
                    err(
                        format!("{at}.retry.initial"),
                        "must be greater than 0".into(),
                    );
                }
                if retry.max < retry.initial {
                    err(
                        format!("{at}.retry.max"),
                        "must be at least retry.initial".into(),
                    );
                }
            }
        }
    }
    errors
}

/// The fields of HTTP targets, refused on other kinds, and the kinds not built yet.
fn check_non_http_target(
    target: &super::TargetConfig,
    at: &str,
    config: &Config,
    err: &mut impl FnMut(String, String),
) {
    let kind = target.kind.as_str();
    let http_only = [
        ("url", target.url.is_some()),
        ("headers", !target.headers.is_empty()),
        ("path_params", !target.path_params.is_empty()),
        ("query", !target.query.is_empty()),
        ("signing", target.signing.is_some()),
    ];
    for (field, set) in http_only {
        if set {
            err(
                format!("{at}.{field}"),
                format!("applies only to http and cloudevents targets, not {kind}"),
            );
        }
    }
    use super::TargetKind;
    match target.kind {
        _ if target.kind.is_bridge() => check_bridge_target(target, at, err),
        TargetKind::Function | TargetKind::AwsLambda => {
            check_function_target(target, at, config, err)
        }
        _ => err(
            format!("{at}.kind"),
            format!("target kind {kind} is not supported yet"),
        ),
    }
}

/// Which target kinds each kind-specific field applies to; a field set on another kind
/// is refused, naming the kinds it is for.
fn check_kind_fields(target: &super::TargetConfig, at: &str, err: &mut impl FnMut(String, String)) {
    use super::TargetKind::*;
    const BRIDGES: &[super::TargetKind] = &[AwsEventbridge, AlibabaEventbridge];
    const AWS: &[super::TargetKind] = &[AwsEventbridge, AlibabaEventbridge, AwsLambda];
    const ALIBABA: &[super::TargetKind] = &[AlibabaEventbridge];
    const LAMBDA: &[super::TargetKind] = &[AwsLambda];
    const FUNCTIONS: &[super::TargetKind] = &[Function, AwsLambda];
    let fields: [(&str, bool, &[super::TargetKind]); 14] = [
        ("peer", target.peer.is_some(), BRIDGES),
        ("max_hops", target.max_hops.is_some(), BRIDGES),
        ("event_bus", target.event_bus.is_some(), BRIDGES),
        ("region", target.region.is_some(), AWS),
        ("endpoint", target.endpoint.is_some(), AWS),
        (
            "resources_from",
            target.resources_from.is_some(),
            &[AwsEventbridge],
        ),
        ("account_id", target.account_id.is_some(), ALIBABA),
        ("access_key_id", target.access_key_id.is_some(), ALIBABA),
        (
            "access_key_secret",
            target.access_key_secret.is_some(),
            ALIBABA,
        ),
        ("security_token", target.security_token.is_some(), ALIBABA),
        ("function", target.function.is_some(), FUNCTIONS),
        ("on_success", target.on_success.is_some(), FUNCTIONS),
        ("invocation_type", target.invocation_type.is_some(), LAMBDA),
        ("qualifier", target.qualifier.is_some(), LAMBDA),
    ];
    for (field, set, kinds) in fields {
        if set && !kinds.contains(&target.kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            let names = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => names.join(""),
            };
            err(
                format!("{at}.{field}"),
                format!(
                    "applies only to {names} targets, not {}",
                    target.kind.as_str()
                ),
            );
        }
    }
}

/// The fields of `function` and `aws-lambda` targets (docs/functions.md).
fn check_function_target(
    target: &super::TargetConfig,
    at: &str,
    config: &Config,
    err: &mut impl FnMut(String, String),
) {
    use super::{InvocationType, TargetKind};
    let kind = target.kind.as_str();
    if let Some(t) = &target.transform {
        if let Err(e) = crate::rules::transform::Transform::compile(t) {
            err(format!("{at}.transform{}", e.path), e.message);
        }
    }
    let Some(function) = target.function.as_deref() else {
        err(
            format!("{at}.function"),
            format!("a {kind} target needs a function"),
        );
        return;
    };
    if target.kind == TargetKind::Function {
        match config.functions.iter().find(|f| f.name == function) {
            None => err(
                format!("{at}.function"),
                format!("no function named {function:?} in functions"),
            ),
            Some(f) => {
                // The dispatcher holds the entry through the queue wait and the run: a
                // shorter claim_idle would hand it to another replica mid-invocation.
                let longest = f.queue_timeout + f.timeout + std::time::Duration::from_secs(1);
                if config.delivery.claim_idle <= longest {
                    err(
                        format!("{at}.function"),
                        format!(
                            "delivery.claim_idle ({:?}) must exceed the function's queue_timeout + timeout + 1s ({longest:?})",
                            config.delivery.claim_idle
                        ),
                    );
                }
            }
        }
    } else {
        if function.is_empty() {
            err(format!("{at}.function"), "must not be empty".into());
        }
        if let Some(u) = &target.endpoint {
            match url::Url::parse(u) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => err(
                    format!("{at}.endpoint"),
                    format!("{u:?} is not an http(s) URL"),
                ),
            }
        }
    }
    if let Some(on_success) = &target.on_success {
        if !config.buses.iter().any(|b| b.name == on_success.bus) {
            err(
                format!("{at}.on_success.bus"),
                format!("no bus named {:?} in buses", on_success.bus),
            );
        }
        if target.invocation_type == Some(InvocationType::Event) {
            err(
                format!("{at}.on_success"),
                "an Event invocation has no result to chain; use RequestResponse".into(),
            );
        }
        for (field, value) in [("source", &on_success.source), ("type", &on_success.ty)] {
            if value.as_deref().is_some_and(str::is_empty) {
                err(
                    format!("{at}.on_success.{field}"),
                    "must not be empty".into(),
                );
            }
        }
    }
}

/// Resolves `access_key_secret` and `security_token` of a bridge target.
fn resolve_bridge_secrets(target: &mut super::TargetConfig, at: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut resolve = |field: &str, reference: &Option<SecretRef>| {
        reference.as_ref().and_then(|r| match resolve_secret(&r.0) {
            Ok(secret) => Some(secret),
            Err(message) => {
                errors.push(ConfigError {
                    path: format!("{at}.{field}"),
                    line: None,
                    message,
                });
                None
            }
        })
    };
    let secret = resolve("access_key_secret", &target.access_key_secret);
    let token = resolve("security_token", &target.security_token);
    target.resolved_access_key_secret = secret;
    target.resolved_security_token = token;
    errors
}

/// The fields of `aws-eventbridge` and `alibaba-eventbridge` targets (docs/bridges.md).
fn check_bridge_target(
    target: &super::TargetConfig,
    at: &str,
    err: &mut impl FnMut(String, String),
) {
    use super::TargetKind;
    let kind = target.kind.as_str();
    match target.peer.as_deref() {
        None => err(
            format!("{at}.peer"),
            format!("a {kind} target needs peer: the id of the gateway or cloud bus it sends to (loop prevention, see docs/bridges.md)"),
        ),
        Some(p) if !crate::event::bridge::valid_id(p) => err(
            format!("{at}.peer"),
            "must be non-empty, without commas or spaces".into(),
        ),
        Some(_) => {}
    }
    if target.max_hops == Some(0) {
        err(format!("{at}.max_hops"), "must be at least 1".into());
    }
    if target.transform.is_some() {
        err(
            format!("{at}.transform"),
            format!("a {kind} target forwards the event itself; transforms apply to http targets"),
        );
    }
    if let Some(endpoint) = &target.endpoint {
        match url::Url::parse(endpoint) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
            Ok(u) if u.scheme() == "http" && is_loopback(&u) => {}
            Ok(u) if u.scheme() == "http" => err(
                format!("{at}.endpoint"),
                "http:// is allowed only for loopback addresses (a local emulator); use https://"
                    .into(),
            ),
            Ok(_) => err(format!("{at}.endpoint"), "must be an http(s) URL".into()),
            Err(e) => err(format!("{at}.endpoint"), format!("invalid URL: {e}")),
        }
    }
    // Which bridge each field belongs to: `check_kind_fields`.
    if target.kind == TargetKind::AlibabaEventbridge {
        if target.event_bus.as_deref().is_none_or(str::is_empty) {
            err(
                format!("{at}.event_bus"),
                "an alibaba-eventbridge target needs event_bus: the name of the bus".into(),
            );
        }
        if target.access_key_id.as_deref().is_none_or(str::is_empty) {
            err(
                format!("{at}.access_key_id"),
                "an alibaba-eventbridge target needs access_key_id".into(),
            );
        }
        if target.access_key_secret.is_none() {
            err(
                format!("{at}.access_key_secret"),
                "an alibaba-eventbridge target needs access_key_secret (env:NAME, file:PATH or a literal)".into(),
            );
        }
        if target.endpoint.is_none() {
            let dns = |v: &Option<String>| {
                v.as_deref().is_some_and(|v| {
                    !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
            };
            if !dns(&target.account_id) {
                err(
                    format!("{at}.account_id"),
                    "needed (digits) to build the endpoint {account_id}.eventbridge.{region}.aliyuncs.com, unless endpoint is set".into(),
                );
            }
            if !dns(&target.region) {
                err(
                    format!("{at}.region"),
                    "needed (e.g. cn-hangzhou) to build the endpoint, unless endpoint is set"
                        .into(),
                );
            }
        }
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn validate_aws(aws: &AwsConfig, bus_names: &HashSet<&str>, err: &mut impl FnMut(String, String)) {
    let region_ok = !aws.region.is_empty()
        && aws
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        err(
            "aws.region".into(),
            format!("{:?} is not a region name such as us-east-1", aws.region),
        );
    }
    if let Some(account) = &aws.account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            err(
                "aws.account".into(),
                format!("{account:?} is not a 12-digit account id"),
            );
        }
    }
    if let Some(bus) = &aws.default_bus {
        if !bus_names.contains(bus.as_str()) {
            err(
                "aws.default_bus".into(),
                format!("no bus named {bus:?} in buses"),
            );
        }
    }
    check_clock_skew("aws", aws.max_clock_skew, err);
    match aws.auth {
        AwsAuth::Sigv4 if aws.access_keys.is_empty() => err(
            "aws.access_keys".into(),
            "auth sigv4 needs at least one access key ({id, secret}), or set auth: none".into(),
        ),
        AwsAuth::None if !aws.access_keys.is_empty() => err(
            "aws.access_keys".into(),
            "not used with auth: none; remove them or set auth: sigv4".into(),
        ),
        _ => {}
    }
    check_keys("aws", &aws.access_keys, "AKIAIOSFODNN7EXAMPLE", err);
}

/// Longest `max_clock_skew`: a wider window only widens replays, and keeps the clock
/// arithmetic and the nonce TTL (twice the window) far from any overflow.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(3600);

fn check_clock_skew(
    section: &str,
    skew: Option<std::time::Duration>,
    err: &mut impl FnMut(String, String),
) {
    match skew {
        Some(s) if s.is_zero() => err(
            format!("{section}.max_clock_skew"),
            "must be greater than 0".into(),
        ),
        Some(s) if s > MAX_CLOCK_SKEW => err(
            format!("{section}.max_clock_skew"),
            format!("{} is over the limit of 1h", humantime::format_duration(s)),
        ),
        _ => {}
    }
}

fn check_keys(
    section: &str,
    keys: &[AccessKeyConfig],
    example: &str,
    err: &mut impl FnMut(String, String),
) {
    let mut ids = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let valid = !key.id.is_empty()
            && key.id.len() <= 128
            && key.id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            err(
                format!("{section}.access_keys[{i}].id"),
                format!("must be 1 to 128 letters and digits, such as {example}"),
            );
        }
        if !ids.insert(key.id.as_str()) {
            err(
                format!("{section}.access_keys[{i}].id"),
                format!("duplicate access key id {:?}", key.id),
            );
        }
    }
}

fn validate_alibaba(
    alibaba: &AlibabaConfig,
    bus_names: &HashSet<&str>,
    err: &mut impl FnMut(String, String),
) {
    if let Some(account) = &alibaba.account {
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
            err(
                "alibaba.account".into(),
                format!("{account:?} is not an account id (digits)"),
            );
        }
    }
    if let Some(bus) = &alibaba.default_bus {
        if !bus_names.contains(bus.as_str()) {
            err(
                "alibaba.default_bus".into(),
                format!("no bus named {bus:?} in buses"),
            );
        }
    }
    check_clock_skew("alibaba", alibaba.max_clock_skew, err);
    if alibaba.dedupe.0.is_some_and(|w| w.as_millis() == 0) {
        err(
            "alibaba.dedupe".into(),
            "must be at least 1ms, or off".into(),
        );
    }
    if alibaba
        .dedupe
        .0
        .is_some_and(|w| w > crate::sources::MAX_DEDUPE)
    {
        err(
            "alibaba.dedupe".into(),
            "must be at most 365d, or off".into(),
        );
    }
    if alibaba.require_content_md5 && alibaba.auth == AlibabaAuth::None {
        err(
            "alibaba.require_content_md5".into(),
            "needs auth: signature (the body is only checked on signed requests)".into(),
        );
    }
    match alibaba.auth {
        AlibabaAuth::Signature if alibaba.access_keys.is_empty() => err(
            "alibaba.access_keys".into(),
            "auth signature needs at least one AccessKey ({id, secret}), or set auth: none".into(),
        ),
        AlibabaAuth::None if !alibaba.access_keys.is_empty() => err(
            "alibaba.access_keys".into(),
            "not used with auth: none; remove them or set auth: signature".into(),
        ),
        _ => {}
    }
    check_keys("alibaba", &alibaba.access_keys, "LTAI5tExampleKeyId", err);
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn errors(yaml: &str) -> Vec<String> {
        match Config::parse(yaml) {
            Ok(_) => vec![],
            Err(es) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn functions_and_function_targets_are_checked() {
        let yaml = r#"
buses: [{name: orders}, {name: results}]
delivery: {claim_idle: 20s}
functions:
  - {name: f, command: bin/f, memory: 64, min_instances: 5, max_instances: 2}
  - {name: f, command: "", timeout: 0s}
  - {name: slow, command: bin/slow, timeout: 20s}
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: function}
      - {name: b, kind: function, function: nope, region: eu-west-1}
      - {name: c, kind: function, function: f, on_success: {bus: missing}}
      - {name: d, kind: aws-lambda, function: x, invocation_type: Event, on_success: {bus: results}}
      - {name: e, kind: http, url: "http://127.0.0.1:1/", function: f, region: x}
      - {name: g, kind: function, function: slow}
      - {name: h, kind: aws-lambda, function: x, endpoint: "ftp://x"}
"#;
        assert_eq!(
            errors(yaml),
            [
                "functions[0].memory: 64 MB is outside 128..=10240 (as Lambda)",
                "functions[0].min_instances: 5 exceeds max_instances 2",
                "functions[1].name: duplicate function name \"f\"",
                "functions[1].command: must not be empty",
                "functions[1].timeout: must be greater than 0",
                "rules[0].targets[0].function: a function target needs a function",
                "rules[0].targets[1].region: applies only to aws-eventbridge, alibaba-eventbridge and aws-lambda targets, not function",
                "rules[0].targets[1].function: no function named \"nope\" in functions",
                "rules[0].targets[2].on_success.bus: no bus named \"missing\" in buses",
                "rules[0].targets[3].on_success: an Event invocation has no result to chain; use RequestResponse",
                "rules[0].targets[4].region: applies only to aws-eventbridge, alibaba-eventbridge and aws-lambda targets, not http",
                "rules[0].targets[4].function: applies only to function and aws-lambda targets, not http",
                "rules[0].targets[5].function: delivery.claim_idle (20s) must exceed the function's queue_timeout + timeout + 1s (31s)",
                "rules[0].targets[6].endpoint: \"ftp://x\" is not an http(s) URL",
            ]
        );
    }

    #[test]
    fn valid_config_parses() {
        let yaml = r#"
buses: [{name: orders, retention: 1d}]
rules:
  - name: r
    bus: orders
    pattern: {type: [order.paid]}
    targets: [{name: t, kind: http, url: "http://127.0.0.1:9000/x", timeout: 2s}]
"#;
        assert_eq!(errors(yaml), Vec::<String>::new());
    }

    #[test]
    fn bridge_targets_and_connectors_are_validated_with_paths() {
        let yaml = r#"
gateway_id: "idc 1"
buses: [{name: orders}]
connectors:
  - {name: q, kind: sqs, bus: nope, queue_url: "not a url", wait: 30s, max_messages: 11}
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: aws-eventbridge, endpoint: "http://10.0.0.1:4566", transform: {form: ORIGINAL}}
      - {name: b, kind: alibaba-eventbridge, peer: "x,y", access_key_id: AK, access_key_secret: s, account_id: "1", security_token: "env:SLUICE_TEST_UNSET_STS"}
      - {name: c, kind: http, url: "http://127.0.0.1/x", peer: p}
      - {name: d, kind: aws-eventbridge, peer: aws, account_id: "1"}
"#;
        let got = errors(yaml);
        let expected = [
            "rules[0].targets[1].security_token: environment variable SLUICE_TEST_UNSET_STS is not set",
            "connectors[0].bus: no bus named \"nope\"",
            "connectors[0].queue_url: must be the queue's URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/events",
            "connectors[0].wait: must be at most 20s (the SQS limit)",
            "connectors[0].max_messages: must be 1 to 10 (the SQS limit)",
            "gateway_id: must be non-empty, at most 128 characters, without commas or spaces",
        ];
        for e in expected {
            assert!(got.iter().any(|g| g == e), "missing {e:?} in {got:#?}");
        }
        let prefixes = [
            "rules[0].targets[0].peer: a aws-eventbridge target needs peer",
            "rules[0].targets[0].transform: ",
            "rules[0].targets[0].endpoint: http:// is allowed only for loopback",
            "rules[0].targets[1].peer: must be non-empty",
            "rules[0].targets[1].event_bus: ",
            "rules[0].targets[1].region: ",
            "rules[0].targets[2].peer: applies only to aws-eventbridge and alibaba-eventbridge",
            "rules[0].targets[3].account_id: applies only to alibaba-eventbridge",
        ];
        for p in prefixes {
            assert!(
                got.iter().any(|g| g.starts_with(p)),
                "missing {p:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), expected.len() + prefixes.len(), "{got:#?}");
    }

    #[test]
    fn target_fields_follow_the_kind() {
        let yaml = r#"
buses: [{name: orders}]
rules:
  - name: r
    bus: orders
    targets:
      - {name: a, kind: http}
      - {name: b, kind: cloudevents, url: "http://127.0.0.1:9000/x"}
      - {name: c, kind: bus, url: "http://127.0.0.1:9000/x"}
"#;
        let got = errors(yaml);
        assert_eq!(
            got,
            [
                "rules[0].targets[0].url: a http target needs a url",
                "rules[0].targets[2].url: applies only to http and cloudevents targets, not bus",
                "rules[0].targets[2].kind: target kind bus is not supported yet",
            ]
        );
    }

    #[test]
    fn errors_name_their_path() {
        let yaml = r#"
buses: [{name: orders}, {name: orders}]
rules:
  - name: r
    bus: nope
    pattern: {type: order.paid}
    targets:
      - {name: t, kind: http, url: "/relative"}
      - {name: t, kind: http, url: "ftp://x/y", method: GET, concurrency: 0}
"#;
        let got = errors(yaml);
        for expected in [
            "buses[1].name: duplicate bus name \"orders\"",
            "rules[0].bus: no bus named \"nope\" in buses",
            "rules[0].pattern.type: ",
            "rules[0].targets[0].url: relative URL",
            "rules[0].targets[1].name: duplicate target name \"t\" in this rule",
            "rules[0].targets[1].url: scheme \"ftp\" is not http or https",
            "rules[0].targets[1].method: \"GET\" is not POST, PUT or PATCH",
            "rules[0].targets[1].concurrency: must be at least 1",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(expected)),
                "missing {expected:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn pattern_and_filter_errors_name_the_element() {
        let yaml = r#"
buses: [{name: orders}]
rules:
  - name: a
    bus: orders
    pattern: {data: {amount: [{numeric: [">", 5, "<", 1]}]}}
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: b
    bus: orders
    filters: [{exact: {type: x}}, {any: [{prefix: {Type: x}}]}]
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: c
    bus: orders
    filters: [{sql: "type = "}]
    targets: [{name: t, kind: http, url: "http://x/"}]
  - name: d
    bus: orders
    pattern: {type: [x], filters: ok}
    filters: [{exact: {type: x}}]
    targets: [{name: t, kind: http, url: "http://x/"}]
"#;
        let got = errors(yaml);
        for expected in [
            "rules[0].pattern.data.amount[0].numeric: the range is empty",
            "rules[1].filters[1].any[0].prefix.Type: not a CloudEvents attribute name",
            "rules[2].filters[0].sql: at ",
            "rules[3].pattern.filters: must be a list",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(expected)),
                "missing {expected:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 4, "{got:#?}");
    }

    #[test]
    fn type_errors_carry_path_and_line() {
        let yaml = "buses:\n  - name: a\nrules:\n  - name: r\n    bus: a\n    targets:\n      - {name: t, kind: http, url: \"http://x/\", timeout: soon}\n";
        let got = errors(yaml);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("line 7: rules[0].targets[0].timeout: invalid duration"),
            "{got:?}"
        );
    }

    #[test]
    fn transforms_and_http_parameters_are_checked_at_load() {
        let yaml = r#"
buses: [{name: orders}]
rules:
  - name: r
    bus: orders
    targets:
      - name: a
        kind: http
        url: "http://x/orders/{id}/{other}"
        path_params: {id: "$.data.id", unused: "x"}
        query: {q: "$[oops"}
        headers: {x-tenant: "$.tenant", x-bad: "$.."}
        transform: {form: TEMPLATE, value: {n: "$.data.name"}, template: "hi ${m}"}
      - name: b
        kind: http
        url: "http://x/"
        transform: {InputTransformer: {InputPathsMap: {v: "nope"}, InputTemplate: "<v>"}}
"#;
        let got = errors(yaml);
        for expected in [
            "rules[0].targets[0].url: placeholder {other} has no entry in path_params",
            "rules[0].targets[0].path_params.unused: url has no {unused} placeholder",
            "rules[0].targets[0].query.q: unclosed [",
            "rules[0].targets[0].headers.x-bad: empty member name",
            "rules[0].targets[0].transform.template: ${m} is not a variable defined in value",
            "rules[0].targets[1].transform.InputTransformer.InputPathsMap.v: a JSONPath starts with $",
        ] {
            assert!(got.iter().any(|g| g.starts_with(expected)), "missing {expected:?} in {got:#?}");
        }
        assert_eq!(got.len(), 6, "{got:#?}");
    }

    #[test]
    fn sources_resolve_secrets_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        std::env::set_var("SLUICE_TEST_SOURCE_SECRET", "from-env");
        let yaml = format!(
            r#"
buses: [{{name: b}}]
sources:
  - {{name: gh, kind: github, bus: b, secrets: ["env:SLUICE_TEST_SOURCE_SECRET", "file:{}", literal]}}
  - {{name: sw, kind: standard-webhooks, bus: b, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, dedupe: off, tolerance: 1m}}
  - {{name: h, kind: hmac, bus: b, secret: k, header: X-Sig, algorithm: sha512, encoding: base64, prefix: "sha512=", timestamp_header: X-Ts, signed_content: "{{timestamp}}:{{body}}"}}
  - {{name: tw, kind: twilio, bus: b, secret: t, url: "https://hooks.example.com/webhooks/tw"}}
  - {{name: u, kind: basic, bus: b, secret: pw, username: hooks, id_header: x-request-id}}
"#,
            file.display()
        );
        let config = Config::parse(&yaml).unwrap();
        let secrets: Vec<&[u8]> = config.sources[0]
            .resolved_secrets
            .iter()
            .map(|s| s.as_ref().unwrap().0.as_slice())
            .collect();
        assert_eq!(secrets, [&b"from-env"[..], b"from-file", b"literal"]);
        assert_eq!(config.sources[1].dedupe.0, None);
        let debug = format!("{:?}", config.sources[0]);
        assert!(
            !debug.contains("from-env") && !debug.contains("literal"),
            "{debug}"
        );
        assert!(debug.contains("env:SLUICE_TEST_SOURCE_SECRET"), "{debug}");
    }

    #[test]
    fn source_errors_name_their_path() {
        let yaml = r#"
buses: [{name: b}]
sources:
  - {name: a, kind: github, bus: nope, secret: "env:SLUICE_TEST_NOT_SET_ANYWHERE", url: "http://x/", tolerance: 1m}
  - {name: a, kind: stripe, bus: b, secrets: [ok, "file:/nonexistent/sluice-secret"]}
  - {name: c, kind: standard-webhooks, bus: b, secret: "whsec_***"}
  - {name: d, kind: twilio, bus: b, secret: x}
  - {name: e, kind: hmac, bus: b, secret: x, signed_content: "{id}{body}"}
  - {name: f, kind: slack, bus: b}
  - {name: g, kind: token, bus: b, secret: x, secrets: [y]}
  - {name: h, kind: basic, bus: b, secret: x, dedupe: soon}
"#;
        let got = errors(yaml);
        assert_eq!(got.len(), 1, "a type error stops parsing: {got:#?}");
        assert!(
            got[0].contains("sources[7].dedupe: invalid dedupe window"),
            "{got:?}"
        );

        let got = errors(&yaml.replace("dedupe: soon", "username: u"));
        for expected in [
            "sources[0].secret: environment variable SLUICE_TEST_NOT_SET_ANYWHERE is not set",
            "sources[0].bus: no bus named \"nope\" in buses",
            "sources[0].url: applies only to kind twilio, not github",
            "sources[0].tolerance: kind github signs no timestamp",
            "sources[1].name: duplicate source name \"a\"",
            "sources[1].secrets[1]: cannot read secret file /nonexistent/sluice-secret",
            "sources[2].secret: not a Standard Webhooks secret",
            "sources[3].url: kind twilio needs the public URL",
            "sources[4].header: kind hmac needs the signature header",
            "sources[4].signed_content: {id} is not a placeholder",
            "sources[5].secret: kind slack needs a secret",
            "sources[6]: set secret or secrets, not both",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(expected)),
                "missing {expected:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 12, "{got:#?}");
    }

    #[test]
    fn retry_and_signing_are_validated_with_paths() {
        let yaml = r#"
buses: [{name: b}]
delivery: {claim_idle: 5s}
rules:
  - name: r
    bus: b
    targets:
      - {name: ok, kind: http, url: "http://x/", timeout: 2s, retry: {max_attempts: 3, initial: 100ms, max: 1m, max_age: 1h}, signing: {secret: whsec_c2VjcmV0}}
      - {name: bad, kind: http, url: "http://x/", timeout: 4s, retry: {max_attempts: 0, initial: 0s, max: 0s, max_age: 0s}, signing: {secret: "whsec_!!"}}
      - {name: env, kind: http, url: "http://x/", timeout: 1s, signing: {secret: "env:SLUICE_TEST_SIGNING_UNSET"}}
"#;
        assert_eq!(
            errors(yaml),
            [
                "rules[0].targets[1].signing.secret: not a Standard Webhooks secret (whsec_ followed by base64)",
                "rules[0].targets[2].signing.secret: environment variable SLUICE_TEST_SIGNING_UNSET is not set",
                "delivery.claim_idle: must exceed rules[0].targets[1].timeout + 1s (5s): an attempt in flight does not touch its entry, so live deliveries would be taken over",
                "rules[0].targets[1].retry.max_attempts: must be at least 1",
                "rules[0].targets[1].retry.max_age: must be greater than 0",
                "rules[0].targets[1].retry.initial: must be greater than 0",
            ]
        );
        let too_old = "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: t, kind: http, url: \"http://x/\", retry: {max_age: 400d}}\n";
        assert_eq!(
            errors(too_old),
            ["rules[0].targets[0].retry.max_age: must be at most 365d (a stream is no place for older events)"]
        );
        let good = "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: ok, kind: http, url: \"http://x/\", retry: {max_attempts: 3, max_age: 1h}, signing: {secret: whsec_c2VjcmV0}}\n      - {name: plain, kind: http, url: \"http://x/\"}\n";
        let config = Config::parse(good).unwrap();
        let t = &config.rules[0].targets[0];
        assert_eq!(
            t.signing.as_ref().unwrap().key.as_ref().unwrap().0,
            b"secret"
        );
        let policy = t.retry_policy(&config.delivery);
        assert_eq!(
            (policy.max_attempts, policy.max_age),
            (3, std::time::Duration::from_secs(3600))
        );
        let legacy = config.rules[0].targets[1].retry_policy(&crate::config::Delivery {
            retry_delay: Some(std::time::Duration::from_millis(200)),
            ..Default::default()
        });
        assert_eq!(legacy.initial, legacy.max);
        // The legacy fixed delay retries without an attempt limit, as it always did.
        assert_eq!(legacy.max_attempts, u32::MAX);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let got = errors("buses: [{name: a, retension: 1d}]\n");
        assert!(
            got[0].contains("buses[0]") && got[0].contains("unknown field `retension`"),
            "{got:?}"
        );
    }

    #[test]
    fn aws_section_is_validated_with_paths() {
        std::env::set_var("SLUICE_TEST_AWS_SECRET", "s3cr3t");
        let ok = r#"
buses: [{name: default}, {name: orders}]
aws:
  region: eu-west-1
  account: "123456789012"
  access_keys: [{id: AKIAEXAMPLE, secret: env:SLUICE_TEST_AWS_SECRET}]
"#;
        assert_eq!(errors(ok), Vec::<String>::new());
        let bad = r#"
buses: [{name: orders}]
aws:
  region: Mars
  account: "12"
  default_bus: nope
  access_keys: [{id: "AK/1", secret: env:SLUICE_TEST_AWS_UNSET}, {id: "AK/1", secret: x}]
"#;
        assert_eq!(
            errors(bad),
            [
                "aws.access_keys[0].secret: environment variable SLUICE_TEST_AWS_UNSET is not set",
                "aws.region: \"Mars\" is not a region name such as us-east-1",
                "aws.account: \"12\" is not a 12-digit account id",
                "aws.default_bus: no bus named \"nope\" in buses",
                "aws.access_keys[0].id: must be 1 to 128 letters and digits, such as AKIAIOSFODNN7EXAMPLE",
                "aws.access_keys[1].id: must be 1 to 128 letters and digits, such as AKIAIOSFODNN7EXAMPLE",
                "aws.access_keys[1].id: duplicate access key id \"AK/1\"",
            ]
        );
        assert_eq!(
            errors("aws: {}\n"),
            ["aws.access_keys: auth sigv4 needs at least one access key ({id, secret}), or set auth: none"]
        );
        assert_eq!(errors("aws: {auth: none}\n"), Vec::<String>::new());
        assert!(errors("aws: {auth: none, keys: []}\n")[0].contains("unknown field `keys`"));
    }

    #[test]
    fn alibaba_section_is_validated_with_paths() {
        let ok = "buses: [{name: default}]\nalibaba: {account: \"1649015465000000\", default_bus: default, access_keys: [{id: LTAI5tKey, secret: s}]}\n";
        assert_eq!(errors(ok), Vec::<String>::new());
        let bad = "alibaba: {account: acme, default_bus: nope, max_clock_skew: 0s}\n";
        assert_eq!(
            errors(bad),
            [
                "alibaba.account: \"acme\" is not an account id (digits)",
                "alibaba.default_bus: no bus named \"nope\" in buses",
                "alibaba.max_clock_skew: must be greater than 0",
                "alibaba.access_keys: auth signature needs at least one AccessKey ({id, secret}), or set auth: none",
            ]
        );
        assert_eq!(
            errors("alibaba: {auth: none, max_clock_skew: 300000y, dedupe: 400d, require_content_md5: true}\naws: {auth: none, max_clock_skew: 2h}\n"),
            [
                "aws.max_clock_skew: 2h is over the limit of 1h",
                "alibaba.max_clock_skew: 300000years is over the limit of 1h",
                "alibaba.dedupe: must be at most 365d, or off",
                "alibaba.require_content_md5: needs auth: signature (the body is only checked on signed requests)",
            ]
        );
        assert_eq!(
            errors("aws: {auth: none, max_clock_skew: 1h}\nalibaba: {auth: none, max_clock_skew: 1h, dedupe: off}\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            errors("alibaba: {auth: none, access_keys: [{id: k, secret: s}]}\n"),
            ["alibaba.access_keys: not used with auth: none; remove them or set auth: signature"]
        );
    }
}
