//! Alibaba Cloud EventBridge's control OpenAPI (`POST /openapi/{action}`, the calls of
//! its SDK `alibabacloud-eventbridge`, signed with `acs:` as putEvents), as a facade
//! over the native control plane: the buses and rules made here are the resources
//! `/api/v1` and `sluice get` show.
//!
//! Alibaba's patterns are written against the CloudEvent (`source`, `type`, `data`,
//! ...), as native patterns are: a rule's `FilterPattern` is its `pattern` unchanged.
//! Targets (docs/compatibility.md): `Type` `http` / `https` with the URL as `Endpoint`
//! become `http` targets, `acs.fc.function` a `function` target (the function named by
//! the `functionName` parameter or the endpoint's last path segment, hosted by Sluice);
//! the `body` parameter's `Form` (`ORIGINAL`, `JSONPATH`, `CONSTANT`, `TEMPLATE`) is the
//! target's transform and `PushRetryStrategy` its retry policy. The target as it was
//! written is kept in its labels, so `listTargets` answers it back.

use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::control::document::{self, Merged};
use crate::control::resources::{current, ResourceApi};
use crate::control::store::Kind;
use crate::ingress::error::ApiError;

const DEFAULT_LIMIT: usize = 100;
/// The label holding a target as `createTargets` took it.
const TARGET_LABEL: &str = "alibaba:target";

pub struct Caller<'a> {
    pub actor: String,
    pub region: &'a str,
    pub account: &'a str,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn invalid(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "InvalidArgument", message)
}

fn bus_missing(bus: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "EventBusNotExist",
        format!("The event bus [{bus}] not existed!"),
    )
}

fn rule_missing(bus: &str, rule: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "EventRuleNotExisted",
        format!("The event rule [{rule}] of event bus [{bus}] not existed!"),
    )
}

/// Native control-plane errors in Alibaba's words.
fn to_alibaba(mut e: ApiError) -> ApiError {
    if e.error.chars().next().is_some_and(char::is_uppercase) {
        return e;
    }
    let (status, code): (StatusCode, &'static str) = match e.error {
        "invalid_resource" if e.field.as_deref().is_some_and(|f| f.contains("pattern")) => {
            (StatusCode::BAD_REQUEST, "EventRuleFilterPatternInvalid")
        }
        "read_only" => (StatusCode::FORBIDDEN, "ResourceReadOnly"),
        "conflict" => (StatusCode::CONFLICT, "ConcurrentModification"),
        _ if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
        }
        _ if e.status.is_server_error() => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        _ => (StatusCode::BAD_REQUEST, "InvalidArgument"),
    };
    if let Some(field) = e.field.take() {
        if !e.message.starts_with(&field) {
            e.message = format!("{field}: {}", e.message);
        }
    }
    e.status = status;
    e.error = code;
    e
}

/// Runs one action; `Ok` is the answer without `RequestId` / `ResourceOwnerAccountId`.
pub async fn handle(
    action: &str,
    body: &[u8],
    api: &ResourceApi,
    caller: &Caller<'_>,
) -> Result<Value, ApiError> {
    let input: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(invalid("the body must be a JSON object")),
        Err(e) => return Err(invalid(format!("invalid JSON: {e}"))),
    };
    let input = Input(input);
    let result = match action {
        "createEventBus" => create_event_bus(&input, api, caller).await,
        "getEventBus" => get_event_bus(&input, api, caller).await,
        "listEventBuses" => list_event_buses(&input, api, caller).await,
        "deleteEventBus" => delete_event_bus(&input, api, caller).await,
        "createRule" => create_rule(&input, api, caller).await,
        "getRule" => get_rule(&input, api, caller).await,
        "listRules" => list_rules(&input, api, caller).await,
        "updateRule" => update_rule(&input, api, caller).await,
        "enableRule" => set_status(&input, api, caller, true).await,
        "disableRule" => set_status(&input, api, caller, false).await,
        "deleteRule" => delete_rule(&input, api, caller).await,
        "createTargets" => create_targets(&input, api, caller).await,
        "deleteTargets" => delete_targets(&input, api, caller).await,
        "listTargets" => list_targets(&input, api).await,
        "testEventPattern" => test_event_pattern(&input),
        "queryEventsByPeriod" => query_events_by_period(&input, api).await,
        "queryEventByEventId" => query_event_by_event_id(&input, api).await,
        "queryEventTraces" => query_event_traces(&input, api, caller).await,
        other => Err(err(
            StatusCode::NOT_FOUND,
            "ApiNotSupported",
            format!("the action {other} is not supported by Sluice (docs/compatibility.md)"),
        )),
    };
    result.map_err(to_alibaba)
}

struct Input(Map<String, Value>);

impl Input {
    fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{name} is mandatory for this action.")))
    }

    fn limit(&self) -> Result<usize, ApiError> {
        match self.0.get("Limit") {
            None | Some(Value::Null) => Ok(DEFAULT_LIMIT),
            Some(v) => match v.as_u64().or_else(|| v.as_str()?.parse().ok()) {
                Some(n @ 1..=100) => Ok(n as usize),
                _ => Err(invalid("Limit must be between 1 and 100")),
            },
        }
    }
}

async fn edit<F>(api: &ResourceApi, c: &Caller<'_>, change: F) -> Result<Merged, ApiError>
where
    F: FnMut(&mut Merged) -> Result<Vec<(Kind, String, Option<Value>)>, ApiError>,
{
    crate::compat::edit(api, &c.actor, change, |kind, id| {
        err(
            StatusCode::FORBIDDEN,
            "ResourceReadOnly",
            format!(
                "{} {id:?} is defined by the configuration file given to serve: change it there",
                kind.singular()
            ),
        )
    })
    .await
}

fn bus_arn(c: &Caller<'_>, bus: &str) -> String {
    format!("acs:eventbridge:{}:{}:eventbus/{bus}", c.region, c.account)
}

fn rule_arn(c: &Caller<'_>, bus: &str, rule: &str) -> String {
    format!(
        "acs:eventbridge:{}:{}:eventbus/{bus}/rule/{rule}",
        c.region, c.account
    )
}

/// A page after `NextToken` (the last name of the previous page) and the next token
/// (empty when there is none, as Alibaba answers), with the total.
fn page(
    input: &Input,
    mut items: Vec<(String, Value)>,
) -> Result<(Vec<Value>, String, usize), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let total = items.len();
    let limit = input.limit()?;
    let after = input.str("NextToken")?.filter(|t| !t.is_empty());
    let mut rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a))
        .collect();
    let next = if rest.len() > limit {
        rest[limit - 1].0.clone()
    } else {
        String::new()
    };
    rest.truncate(limit);
    Ok((rest.into_iter().map(|(_, v)| v).collect(), next, total))
}

// ---- event buses ----

fn bus_view(c: &Caller<'_>, bus: &Value) -> Value {
    let name = bus["name"].as_str().unwrap_or_default();
    json!({
        "EventBusName": name,
        "EventBusARN": bus_arn(c, name),
        "Description": bus["description"].as_str().unwrap_or(""),
        "CreateTimestamp": 0,
    })
}

async fn create_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?.to_string();
    let description = input.str("Description")?.unwrap_or("").to_string();
    edit(api, c, |merged| {
        if merged.get(Kind::Bus, &name).is_some() {
            return Err(err(
                StatusCode::CONFLICT,
                "EventBusAlreadyExist",
                format!("The event bus [{name}] already existed!"),
            ));
        }
        let mut bus = json!({"name": name});
        if !description.is_empty() {
            bus["description"] = description.clone().into();
        }
        Ok(vec![(Kind::Bus, name.clone(), Some(bus))])
    })
    .await?;
    Ok(json!({"EventBusARN": bus_arn(c, &name)}))
}

async fn get_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?;
    let (_, merged) = current(api).await?;
    merged
        .get(Kind::Bus, name)
        .map(|b| bus_view(c, b))
        .ok_or_else(|| bus_missing(name))
}

async fn list_event_buses(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let (_, merged) = current(api).await?;
    let buses = document::resources(&merged.top, Kind::Bus)
        .filter_map(|b| Some((b["name"].as_str()?.to_string(), b)))
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, b)| (n, bus_view(c, b)))
        .collect();
    let (buses, next, total) = page(input, buses)?;
    Ok(json!({"EventBuses": buses, "NextToken": next, "Total": total}))
}

async fn delete_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?.to_string();
    edit(api, c, |merged| {
        if merged.get(Kind::Bus, &name).is_none() {
            return Err(bus_missing(&name));
        }
        let rules: Vec<&str> = document::resources(&merged.top, Kind::Rule)
            .filter(|r| r["bus"] == name.as_str())
            .filter_map(|r| r["name"].as_str())
            .collect();
        if !rules.is_empty() {
            return Err(err(
                StatusCode::CONFLICT,
                "EventBusWithRules",
                format!(
                    "The event bus [{name}] still has rules: {}",
                    rules.join(", ")
                ),
            ));
        }
        Ok(vec![(Kind::Bus, name.clone(), None)])
    })
    .await?;
    let _: Result<(), _> = crate::bus::within(
        redis::cmd("DEL")
            .arg(crate::bus::bus_key(&name))
            .query_async(&mut api.redis.clone()),
    )
    .await;
    Ok(json!({}))
}

// ---- rules ----

fn status(enabled: bool) -> &'static str {
    if enabled {
        "ENABLE"
    } else {
        "DISABLE"
    }
}

fn parse_status(input: &Input) -> Result<Option<bool>, ApiError> {
    match input.str("Status")? {
        None => Ok(None),
        Some("ENABLE") => Ok(Some(true)),
        Some("DISABLE") => Ok(Some(false)),
        Some(other) => Err(invalid(format!(
            "Status {other:?} is not ENABLE or DISABLE"
        ))),
    }
}

fn parse_pattern(input: &Input) -> Result<Option<Value>, ApiError> {
    input
        .str("FilterPattern")?
        .map(|text| {
            serde_json::from_str(text).map_err(|e| {
                err(
                    StatusCode::BAD_REQUEST,
                    "EventRuleFilterPatternInvalid",
                    format!("FilterPattern is not valid JSON: {e}"),
                )
            })
        })
        .transpose()
}

fn rule_view(c: &Caller<'_>, rule: &Value) -> Value {
    let bus = rule["bus"].as_str().unwrap_or_default();
    let name = rule["name"].as_str().unwrap_or_default();
    let pattern = rule
        .get("pattern")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or(json!({}));
    json!({
        "EventBusName": bus,
        "RuleARN": rule_arn(c, bus, name),
        "RuleName": name,
        "Description": rule["description"].as_str().unwrap_or(""),
        "Status": status(rule["enabled"] != false),
        "FilterPattern": pattern.to_string(),
        "Targets": targets_view(rule),
        "Ctime": 0,
        "Mtime": 0,
    })
}

async fn find_rule(api: &ResourceApi, bus: &str, name: &str) -> Result<Value, ApiError> {
    let (_, merged) = current(api).await?;
    merged
        .get(Kind::Rule, &format!("{bus}/{name}"))
        .cloned()
        .ok_or_else(|| rule_missing(bus, name))
}

async fn create_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("RuleName")?.to_string();
    let pattern = parse_pattern(input)?;
    let enabled = parse_status(input)?.unwrap_or(true);
    let description = input.str("Description")?.map(String::from);
    let targets: Vec<Value> = match input.0.get("Targets") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(t)) => t
            .iter()
            .map(|t| native_target(t, c))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("Targets must be a list")),
    };
    let id = format!("{bus}/{name}");
    edit(api, c, |merged| {
        if merged.get(Kind::Bus, &bus).is_none() {
            return Err(bus_missing(&bus));
        }
        if merged.get(Kind::Rule, &id).is_some() {
            return Err(err(
                StatusCode::CONFLICT,
                "EventRuleAlreadyExisted",
                format!("The event rule [{name}] of event bus [{bus}] already existed!"),
            ));
        }
        let mut rule = json!({"name": name, "bus": bus, "enabled": enabled, "targets": targets});
        if let Some(p) = &pattern {
            rule["pattern"] = p.clone();
        }
        if let Some(d) = &description {
            rule["description"] = d.clone().into();
        }
        Ok(vec![(Kind::Rule, id.clone(), Some(rule))])
    })
    .await?;
    Ok(json!({"RuleARN": rule_arn(c, &bus, &name)}))
}

async fn get_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let name = input.required("RuleName")?;
    Ok(rule_view(c, &find_rule(api, bus, name).await?))
}

async fn list_rules(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let prefix = input.str("RuleNamePrefix")?.unwrap_or("");
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, bus).is_none() {
        return Err(bus_missing(bus));
    }
    let rules = document::resources(&merged.top, Kind::Rule)
        .filter(|r| r["bus"] == bus)
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r)))
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, r)| (n, rule_view(c, r)))
        .collect();
    let (rules, next, total) = page(input, rules)?;
    Ok(json!({"Rules": rules, "NextToken": next, "Total": total}))
}

async fn change_rule(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    mut f: impl FnMut(&mut Value) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("RuleName")?.to_string();
    let id = format!("{bus}/{name}");
    edit(api, c, |merged| {
        let mut rule = merged
            .get(Kind::Rule, &id)
            .cloned()
            .ok_or_else(|| rule_missing(&bus, &name))?;
        f(&mut rule)?;
        Ok(vec![(Kind::Rule, id.clone(), Some(rule))])
    })
    .await?;
    Ok(())
}

async fn update_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let pattern = parse_pattern(input)?;
    let enabled = parse_status(input)?;
    let description = input.str("Description")?.map(String::from);
    change_rule(input, api, c, |rule| {
        if let Some(p) = &pattern {
            rule["pattern"] = p.clone();
        }
        if let Some(e) = enabled {
            rule["enabled"] = e.into();
        }
        if let Some(d) = &description {
            rule["description"] = d.clone().into();
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn set_status(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    enabled: bool,
) -> Result<Value, ApiError> {
    change_rule(input, api, c, |rule| {
        rule["enabled"] = enabled.into();
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn delete_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("RuleName")?.to_string();
    let id = format!("{bus}/{name}");
    edit(api, c, |merged| {
        if merged.get(Kind::Rule, &id).is_none() {
            return Err(rule_missing(&bus, &name));
        }
        Ok(vec![(Kind::Rule, id.clone(), None)])
    })
    .await?;
    Ok(json!({}))
}

// ---- targets ----

/// A `ParamList` entry's value by its `ResourceKey`.
fn param<'a>(target: &'a Value, key: &str) -> Option<&'a Value> {
    target["ParamList"]
        .as_array()?
        .iter()
        .find(|p| p["ResourceKey"] == key)
}

/// The native target of an Alibaba `TargetEntry`.
fn native_target(t: &Value, c: &Caller<'_>) -> Result<Value, ApiError> {
    let id = t["Id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Targets[].Id is mandatory"))?;
    let kind = t["Type"]
        .as_str()
        .ok_or_else(|| invalid("Targets[].Type is mandatory"))?;
    let endpoint = t["Endpoint"].as_str().unwrap_or_default();
    let mut target = match kind {
        "http" | "https" | "acs.http" => {
            let url = param(t, "url")
                .and_then(|p| p["Value"].as_str())
                .filter(|u| !u.is_empty())
                .unwrap_or(endpoint);
            let mut target = json!({"kind": "http", "url": url});
            if let Some(method) = param(t, "method").and_then(|p| p["Value"].as_str()) {
                target["method"] = method.into();
            }
            target
        }
        "acs.fc.function" => {
            let name = param(t, "functionName")
                .and_then(|p| p["Value"].as_str())
                .or_else(|| endpoint.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    invalid("an acs.fc.function target needs the functionName parameter")
                })?;
            json!({"kind": "function", "function": name})
        }
        "acs.eventbridge" => {
            let value = |key: &str| param(t, key).and_then(|p| p["Value"].as_str());
            let bus = value("AliyunEventBus")
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    invalid("an acs.eventbridge target needs the AliyunEventBus parameter")
                })?;
            let own = value("RegionId").is_none_or(|r| r == c.region)
                && value("AliyunAccountId").is_none_or(|a| a == c.account);
            if !own {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "EventTargetTypeNotSupported",
                    "an acs.eventbridge target of another region or account is not served here: use an alibaba-eventbridge target (with its access key) through /api/v1",
                ));
            }
            // A bus of this gateway: forwarded by the router.
            json!({"kind": "bus", "bus": bus})
        }
        other => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "EventTargetTypeNotSupported",
                format!(
                    "target type {other} is not supported by Sluice: http, https, acs.fc.function, acs.eventbridge"
                ),
            ))
        }
    };
    target["name"] = id.into();
    if let Some(body) = param(t, "body") {
        let mut transform = json!({"form": body["Form"]});
        if let Some(v) = body
            .get("Value")
            .filter(|v| !v.is_null() && body["Form"] != "ORIGINAL")
        {
            transform["value"] = v.clone();
        }
        if let Some(tpl) = body.get("Template").filter(|v| !v.is_null()) {
            transform["template"] = tpl.clone();
        }
        target["transform"] = transform;
    }
    match t["PushRetryStrategy"].as_str() {
        None => {}
        // Alibaba's two policies (docs: 3 attempts 10-20 s apart; 176 attempts, 1 s
        // doubling to 512 s).
        Some("BACKOFF_RETRY") => {
            target["retry"] = json!({"max_attempts": 3, "initial": "10s", "max": "20s"})
        }
        Some("EXPONENTIAL_DECAY_RETRY") => {
            target["retry"] =
                json!({"max_attempts": 176, "initial": "1s", "max": "512s", "max_age": "24h"})
        }
        Some(other) => {
            return Err(invalid(format!(
                "PushRetryStrategy {other:?} is not BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY"
            )))
        }
    }
    target["labels"] = json!({ TARGET_LABEL: t.to_string() });
    Ok(target)
}

/// A rule's targets as Alibaba shows them: as written, or described from the native
/// target when it was made natively.
fn targets_view(rule: &Value) -> Vec<Value> {
    rule["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            t["labels"][TARGET_LABEL]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_else(|| {
                    let kind = t["kind"].as_str().unwrap_or_default();
                    let endpoint = t["url"].as_str().or(t["function"].as_str()).unwrap_or_default();
                    json!({"Id": t["name"], "Type": if kind == "function" { "acs.fc.function" } else { kind }, "Endpoint": endpoint, "ParamList": []})
                })
        })
        .collect()
}

async fn create_targets(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let targets: Vec<Value> = match input.0.get("Targets") {
        Some(Value::Array(t)) if !t.is_empty() => t
            .iter()
            .map(|t| native_target(t, c))
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("Targets is mandatory for this action.")),
    };
    change_rule(input, api, c, |rule| {
        crate::compat::upsert_targets(rule, targets.iter().cloned());
        Ok(())
    })
    .await?;
    Ok(json!({"ErrorEntriesCount": 0, "ErrorEntries": []}))
}

async fn delete_targets(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let ids: Vec<String> = crate::compat::strings(input.0.get("TargetIds"));
    if ids.is_empty() {
        return Err(invalid("TargetIds is mandatory for this action."));
    }
    change_rule(input, api, c, |rule| {
        if let Some(list) = rule["targets"].as_array_mut() {
            list.retain(|t| !ids.iter().any(|id| t["name"] == id.as_str()));
        }
        Ok(())
    })
    .await?;
    Ok(json!({"ErrorEntriesCount": 0, "ErrorEntries": []}))
}

async fn list_targets(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let name = input.required("RuleName")?;
    let rule = find_rule(api, bus, name).await?;
    let mut targets = targets_view(&rule);
    targets.truncate(input.limit()?);
    Ok(json!({"Targets": targets}))
}

/// testEventPattern: the pattern on the CloudEvent `Event` (JSON), by the router's
/// matcher.
fn test_event_pattern(input: &Input) -> Result<Value, ApiError> {
    let pattern: Value = serde_json::from_str(input.required("EventPattern")?).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "EventRuleFilterPatternInvalid",
            format!("EventPattern is not valid JSON: {e}"),
        )
    })?;
    let event_text = input.required("Event")?;
    let event = crate::event::cloudevents::parse_structured(&bytes::Bytes::copy_from_slice(
        event_text.as_bytes(),
    ))
    .map_err(|e| {
        invalid(format!(
            "Event is not a CloudEvent in the JSON format: {}: {}",
            e.field, e.message
        ))
    })?
    .decode();
    let matched = crate::cli::pattern::pattern_matches(&pattern, &event)
        .map_err(|m| err(StatusCode::BAD_REQUEST, "EventRuleFilterPatternInvalid", m))?;
    Ok(json!({"Result": matched}))
}

// ---- events retained by a bus (the search of `control::events`) ----

/// A time of its API: Unix milliseconds (seconds are taken too: values below 10^12).
fn time_ms(input: &Input, name: &str) -> Result<Option<u64>, ApiError> {
    match input.0.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().or_else(|| v.as_str()?.parse().ok()) {
            Some(t) if t < 1_000_000_000_000 => Ok(Some(t * 1000)),
            Some(t) => Ok(Some(t)),
            None => Err(invalid(format!(
                "{name} must be a Unix time in milliseconds"
            ))),
        },
    }
}

/// Runs a search on `bus` for events with these attributes (and `extra`, a rule's
/// condition), answered as its `TracedEvents` page.
#[allow(clippy::too_many_arguments)]
async fn traced_events(
    api: &ResourceApi,
    bus: &str,
    attributes: Map<String, Value>,
    extra: Option<crate::rules::Pattern>,
    window: (Option<u64>, Option<u64>),
    cursor: Option<&str>,
    newest_first: bool,
    limit: usize,
) -> Result<Value, ApiError> {
    use crate::control::events::{valid_cursor, Search};
    if let Some(c) = cursor {
        if !valid_cursor(c) {
            return Err(invalid("NextToken is not a token this API gave"));
        }
    }
    let mut condition = crate::config::condition(
        Some(&Value::Object(attributes)),
        None,
        crate::config::Dialect::Cloudevents,
    )
    .map_err(|e| invalid(format!("{}: {}", e.path, e.message)))?;
    if let Some(extra) = extra {
        condition = crate::rules::Pattern::all(vec![condition, extra]);
    }
    let search = Search::new(
        bus,
        condition,
        window.0,
        window.1,
        cursor,
        newest_first,
        limit,
        100_000,
    );
    let found = search.run(&mut api.redis.clone()).await.map_err(|e| {
        err(
            StatusCode::SERVICE_UNAVAILABLE,
            "InternalError",
            e.to_string(),
        )
    })?;
    let events: Vec<Value> = found
        .events
        .iter()
        .map(|(entry, e)| {
            json!({
                "EventReceivedTime": crate::bus::entry_time_ms(entry).unwrap_or_default(),
                "EventSource": e.attr_str("source").unwrap_or_default(),
                "EventId": e.attr_str("id").unwrap_or_default(),
                "EventBusName": bus,
                "EventType": e.attr_str("type").unwrap_or_default(),
            })
        })
        .collect();
    let mut out = json!({"Total": events.len(), "TracedEvents": events});
    if let Some(next) = found.next {
        out["NextToken"] = next.into();
    }
    Ok(out)
}

async fn bus_exists(api: &ResourceApi, bus: &str) -> Result<Merged, ApiError> {
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, bus).is_none() {
        return Err(bus_missing(bus));
    }
    Ok(merged)
}

async fn query_events_by_period(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let merged = bus_exists(api, bus).await?;
    let mut attributes = Map::new();
    if let Some(source) = input.str("EventSource")? {
        attributes.insert("source".into(), json!([source]));
    }
    if let Some(ty) = input.str("EventType")? {
        attributes.insert("type".into(), json!([ty]));
    }
    // Events the rule matches now (Sluice keeps no per-event match record yet).
    let extra = match input.str("MatchedRule")? {
        None => None,
        Some(rule) => {
            let r = merged
                .get(Kind::Rule, &format!("{bus}/{rule}"))
                .ok_or_else(|| rule_missing(bus, rule))?;
            let dialect = match r["dialect"].as_str() {
                Some("aws") => crate::config::Dialect::Aws,
                _ => crate::config::Dialect::Cloudevents,
            };
            let pattern = r.get("pattern").filter(|p| !p.is_null());
            let filters = r.get("filters").filter(|f| !f.is_null());
            Some(
                crate::config::condition(pattern, filters, dialect)
                    .map_err(|e| invalid(format!("rule {rule}: {}: {}", e.path, e.message)))?,
            )
        }
    };
    let window = (time_ms(input, "StartTime")?, time_ms(input, "EndTime")?);
    if let (Some(s), Some(e)) = window {
        if s > e {
            return Err(invalid("StartTime is after EndTime"));
        }
    }
    traced_events(
        api,
        bus,
        attributes,
        extra,
        window,
        input.str("NextToken")?,
        false,
        input.limit()?,
    )
    .await
}

/// An event's trace in Alibaba's shape: `PutEvent` (received), `FilterEvent` per rule
/// that matched, `PushEvent` per delivery attempt (from the bus's `trace:`; an untraced
/// event has an empty list).
async fn query_event_traces(
    input: &Input,
    api: &ResourceApi,
    caller: &Caller<'_>,
) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let id = input.required("EventId")?;
    bus_exists(api, bus).await?;
    let traced = crate::control::events::lookup(&mut api.redis.clone(), bus, id)
        .await
        .map_err(|e| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "InternalError",
                e.to_string(),
            )
        })?;
    let received = traced.records.iter().find(|r| r["stage"] == "received");
    let source = received
        .and_then(|r| r["source"].as_str())
        .unwrap_or_default();
    let received_ms = received.and_then(|r| r["at"].as_u64()).unwrap_or_default();
    let rule_of = |target: &str| {
        target
            .split_once('/')
            .map_or(target, |(r, _)| r)
            .to_string()
    };
    let base = |action: &str, at: u64| {
        json!({
            "ResourceOwnerId": caller.account,
            "Action": action,
            "EventId": id,
            "EventBusName": bus,
            "ActionTime": at.to_string(),
            "EventSource": source,
            "ReceivedTime": received_ms,
            "RuleName": "",
            "RuleMatchingTime": 0,
            "NotifyLatency": 0,
            "NotifyTime": 0,
            "Endpoint": "",
            "NotifyStatus": "",
        })
    };
    let mut list = Vec::new();
    for r in &traced.records {
        let at = r["at"].as_u64().unwrap_or_default();
        match r["stage"].as_str() {
            Some("received") => list.push(base("PutEvent", at)),
            Some("routed") => {
                let mut rules: Vec<String> = r["targets"]
                    .as_array()
                    .into_iter()
                    .chain(r["forwarded"].as_array())
                    .flatten()
                    .filter_map(|t| t.as_str().map(rule_of))
                    .collect();
                rules.sort();
                rules.dedup();
                for rule in rules {
                    let mut t = base("FilterEvent", at);
                    t["RuleName"] = rule.into();
                    t["RuleMatchingTime"] = at.into();
                    list.push(t);
                }
            }
            Some("attempt") => {
                let target = r["target"].as_str().unwrap_or_default();
                let mut t = base("PushEvent", at);
                t["RuleName"] = rule_of(target).into();
                t["Endpoint"] = target.into();
                t["NotifyTime"] = at.into();
                t["NotifyLatency"] = r["latency_ms"].clone();
                t["NotifyStatus"] = match (r["status"].as_u64(), r["error"].as_str()) {
                    (Some(status), None) => format!("[{status}]Ok"),
                    (Some(status), Some(e)) => format!("[{status}]{e}"),
                    (None, Some(e)) => format!("[-]{e}"),
                    (None, None) => "[-]".into(),
                }
                .into();
                list.push(t);
            }
            _ => {}
        }
    }
    Ok(json!({"EventTraceList": list}))
}

async fn query_event_by_event_id(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let id = input.required("EventId")?;
    bus_exists(api, bus).await?;
    let mut attributes = Map::new();
    attributes.insert("id".into(), json!([id]));
    if let Some(source) = input.str("EventSource")? {
        attributes.insert("source".into(), json!([source]));
    }
    // The newest copy first: an id may have been sent more than once.
    traced_events(
        api,
        bus,
        attributes,
        None,
        (None, None),
        input.str("NextToken")?,
        true,
        10,
    )
    .await
}
