//! RocketMQ-EventBridge's HTTP API (apache/rocketmq-eventbridge, its `adapter/api`
//! controllers): the control API (`POST /bus/*`, `/rule/*`, `/target/*`, `/source/*`)
//! as a facade over the native control plane, `POST /putEvents` (CloudEvents with the
//! bus in the `eventbusname` extension) and `/webhook/putEvents?token=` (an HttpSource:
//! any request wrapped as an `eventbridge:Events:HTTPEvent`).
//!
//! Requests take the field names of its DTOs in both spellings its code and docs use
//! (`EventBusName`, `eventBusName`); answers are in the camelCase its Spring controllers
//! write, errors `{requestId, code, message}` with its error codes. Patterns are
//! CloudEvents patterns, as native ones. Target classes (docs/compatibility.md):
//! `acs.eventbridge` becomes an `alibaba-eventbridge` target, and `http` (Sluice's: its
//! own repository has no HTTP target) an `http` target; `runOptions.retryStrategy` maps
//! to the retry policy. HttpSources live beside the resources
//! (`sluice:{control}:rocketmq:sources`); their tokens are looked up per request.
//! Authorization is the control API's (bearer tokens, or loopback without tokens).

mod connections;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use redis::AsyncCommands;
use serde_json::{json, Map, Value};
use tracing::{debug, warn};

use crate::control::document::{self, Merged};
use crate::control::resources::{current, ResourceApi};
use crate::control::store::Kind;
use crate::event::cloudevents;
use crate::ingress::error::ApiError;
use crate::ingress::{read_body, Ingress};

/// HttpSources: name -> `{bus, description, config, token}`.
const SOURCES: &str = "sluice:{control}:rocketmq:sources";
/// token -> HttpSource name.
const TOKENS: &str = "sluice:{control}:rocketmq:tokens";
const HTTP_EVENT_TYPE: &str = "eventbridge:Events:HTTPEvent";
const DEFAULT_PAGE: usize = 100;

pub(super) fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    // Its error codes are all answered with HTTP 409 (EventBridgeErrorCode).
    ApiError::new(StatusCode::CONFLICT, code, message)
}

fn answer(request_id: &str, result: Result<Value, ApiError>) -> HttpResponse {
    match result {
        Ok(mut body) => {
            body["requestId"] = request_id.into();
            body["code"] = "Success".into();
            body["message"] = "success".into();
            HttpResponse::Ok().json(body)
        }
        Err(e) => {
            let e = native_error(e);
            debug!(code = e.error, message = %e.message, "RocketMQ-EventBridge request refused");
            HttpResponse::build(e.status)
                .json(json!({"requestId": request_id, "code": e.error, "message": e.message}))
        }
    }
}

/// Native control-plane errors in its words.
fn native_error(mut e: ApiError) -> ApiError {
    if e.error.chars().next().is_some_and(char::is_uppercase) {
        return e;
    }
    let code = match e.error {
        "invalid_resource" if e.field.as_deref().is_some_and(|f| f.contains("pattern")) => {
            "EventRuleFilterPatternInvalid"
        }
        "read_only" => "ResourceReadOnly",
        _ if e.status.is_server_error() => {
            return ApiError::new(e.status, "InternalError", e.message);
        }
        _ => "InvalidArgument",
    };
    if let Some(field) = e.field.take() {
        if !e.message.starts_with(&field) {
            e.message = format!("{field}: {}", e.message);
        }
    }
    e.status = StatusCode::CONFLICT;
    e.error = code;
    e
}

/// A request's members in either spelling (`EventBusName` or `eventBusName`).
pub(super) struct Input(Map<String, Value>);

impl Input {
    pub(super) fn get(&self, pascal: &str) -> Option<&Value> {
        let camel = pascal[..1].to_lowercase() + &pascal[1..];
        self.0
            .get(pascal)
            .or_else(|| self.0.get(&camel))
            .filter(|v| !v.is_null())
    }

    pub(super) fn str(&self, pascal: &str) -> Option<&str> {
        self.get(pascal).and_then(Value::as_str)
    }

    fn required(&self, pascal: &str) -> Result<&str, ApiError> {
        self.str(pascal)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("InvalidArgument", format!("{pascal} is required")))
    }
}

/// `get(field)` of a target DTO's member in either spelling.
pub(super) fn member<'a>(v: &'a Value, pascal: &str) -> Option<&'a Value> {
    let camel = pascal[..1].to_lowercase() + &pascal[1..];
    v.get(pascal)
        .or_else(|| v.get(&camel))
        .filter(|v| !v.is_null())
}

fn bus_missing(bus: &str) -> ApiError {
    err(
        "EventBusNotExist",
        format!("The event bus [{bus}] not existed!"),
    )
}

fn rule_missing(bus: &str, rule: &str) -> ApiError {
    err(
        "EventRuleNotExist",
        format!("The event rule [{rule}] of event bus [{bus}] not existed!"),
    )
}

pub(super) async fn edit<F>(api: &ResourceApi, actor: &str, change: F) -> Result<Merged, ApiError>
where
    F: FnMut(&mut Merged) -> Result<Vec<(Kind, String, Option<Value>)>, ApiError>,
{
    crate::compat::edit(api, actor, change, |kind, id| {
        err(
            "ResourceReadOnly",
            format!(
                "{} {id:?} is defined by the configuration file given to serve: change it there",
                kind.singular()
            ),
        )
    })
    .await
}

/// A page: `nextToken` is the offset as text (as its PaginationResult), `maxResults`.
fn page(
    input: &Input,
    mut items: Vec<(String, Value)>,
) -> Result<(Vec<Value>, String, usize, usize), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let total = items.len();
    let max = match input.get("MaxResults").and_then(Value::as_u64) {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => n as usize,
    };
    let offset: usize = match input.str("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse().map_err(|_| {
            err(
                "NextTokenInvalid",
                "The next token of page is invalid, which should be a number.",
            )
        })?,
    };
    let end = (offset + max).min(total);
    let next = if end < total {
        end.to_string()
    } else {
        String::new()
    };
    let page = items
        .into_iter()
        .skip(offset)
        .take(max)
        .map(|(_, v)| v)
        .collect();
    Ok((page, next, total, max))
}

/// `POST /{area}/{action}`: one control action.
pub(crate) async fn control(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    resources: web::Data<ResourceApi>,
) -> HttpResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (area, action) = path.into_inner();
    let input = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Input(m),
        Ok(_) | Err(_) => {
            return answer(
                &request_id,
                Err(err("InvalidArgument", "the body must be a JSON object")),
            )
        }
    };
    let actor = format!("rocketmq:{}", crate::control::auth::actor(&req));
    let api = resources.get_ref();
    let result = match (area.as_str(), action.as_str()) {
        ("bus", "createEventBus") => create_bus(&input, api, &actor).await,
        ("bus", "getEventBus") => get_bus(&input, api).await,
        ("bus", "deleteEventBus") => delete_bus(&input, api, &actor).await,
        ("bus", "listEventBuses") => list_buses(&input, api).await,
        ("rule", "createEventRule") => create_rule(&input, api, &actor).await,
        ("rule", "getEventRule") => get_rule(&input, api).await,
        ("rule", "updateEventRule") => update_rule(&input, api, &actor, None).await,
        ("rule", "enableEventRule") => update_rule(&input, api, &actor, Some(true)).await,
        ("rule", "disableEventRule") => update_rule(&input, api, &actor, Some(false)).await,
        ("rule", "deleteEventRule") => delete_rule(&input, api, &actor).await,
        ("rule", "listEventRules") => list_rules(&input, api).await,
        ("target", "createEventTargets" | "updateEventTargets") => {
            put_targets(&input, api, &actor).await
        }
        ("target", "deleteEventTargets") => delete_targets(&input, api, &actor).await,
        ("target", "listEventTargets") => list_targets(&input, api).await,
        ("source", "createEventSource" | "updateEventSource") => {
            put_source(&input, api, action == "createEventSource").await
        }
        ("source", "getEventSource") => get_source(&input, api).await,
        ("source", "deleteEventSource") => delete_source(&input, api).await,
        ("source", "listEventSources") => list_sources(&input, api).await,
        ("connection", "createConnection" | "updateConnection") => {
            connections::put_connection(&input, api, &actor, action == "createConnection").await
        }
        ("connection", "deleteConnection") => connections::delete_connection(&input, api).await,
        ("connection", "getConnection") => connections::get_connection(&input, api, true).await,
        ("connection", "selectOneConnection") => {
            connections::get_connection(&input, api, false).await
        }
        ("connection", "listConnections") => connections::list_connections(&input, api).await,
        ("connection", "listEnumsResponse") => Ok(connections::list_enums()),
        ("api-destination", "createApiDestination" | "updateApiDestination") => {
            connections::put_destination(&input, api, &actor, action == "createApiDestination")
                .await
        }
        ("api-destination", "getApiDestination") => connections::get_destination(&input, api).await,
        ("api-destination", "deleteApiDestination") => {
            connections::delete_destination(&input, api).await
        }
        ("api-destination", "listApiDestinations") => {
            connections::list_destinations(&input, api).await
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ApiNotSupported",
            format!("/{area}/{action} is not supported by Sluice (docs/compatibility.md)"),
        )),
    };
    answer(&request_id, result)
}

// ---- buses ----

fn bus_view(bus: &Value) -> Value {
    json!({"eventBusName": bus["name"], "description": bus["description"].as_str().unwrap_or("")})
}

async fn create_bus(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?.to_string();
    let description = input.str("Description").map(String::from);
    edit(api, actor, |merged| {
        if merged.get(Kind::Bus, &name).is_some() {
            return Err(err(
                "EventBusAlreadyExist",
                format!("The event bus [{name}] already existed!"),
            ));
        }
        let mut bus = json!({"name": name});
        if let Some(d) = &description {
            bus["description"] = d.clone().into();
        }
        Ok(vec![(Kind::Bus, name.clone(), Some(bus))])
    })
    .await?;
    Ok(json!({"eventBusName": name}))
}

async fn get_bus(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?;
    let (_, merged) = current(api).await?;
    let bus = merged
        .get(Kind::Bus, name)
        .ok_or_else(|| bus_missing(name))?;
    let mut view = bus_view(bus);
    view["createTimestamp"] = 0.into();
    Ok(view)
}

async fn delete_bus(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let name = input.required("EventBusName")?.to_string();
    edit(api, actor, |merged| {
        if merged.get(Kind::Bus, &name).is_none() {
            return Err(bus_missing(&name));
        }
        if document::resources(&merged.top, Kind::Rule).any(|r| r["bus"] == name.as_str()) {
            return Err(err(
                "EventBusRuleNotEmptyForDelete",
                format!("The event bus [{name}] still has rules; delete them first."),
            ));
        }
        Ok(vec![(Kind::Bus, name.clone(), None)])
    })
    .await?;
    Ok(json!({}))
}

async fn list_buses(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let (_, merged) = current(api).await?;
    let buses = document::resources(&merged.top, Kind::Bus)
        .filter_map(|b| Some((b["name"].as_str()?.to_string(), bus_view(b))))
        .collect();
    let (buses, next, total, max) = page(input, buses)?;
    Ok(json!({"eventBuses": buses, "nextToken": next, "total": total, "maxResults": max}))
}

// ---- rules ----

fn pattern_of(input: &Input) -> Result<Option<Value>, ApiError> {
    match input.get("FilterPattern") {
        None => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text).map(Some).map_err(|e| {
            err(
                "EventRuleFilterPatternInvalid",
                format!("filterPattern is not JSON: {e}"),
            )
        }),
        // Its docs write the pattern as a JSON string; an object is taken as well.
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(err(
            "EventRuleFilterPatternInvalid",
            "filterPattern must be a JSON string",
        )),
    }
}

fn rule_view(rule: &Value) -> Value {
    json!({
        "eventBusName": rule["bus"],
        "eventRuleName": rule["name"],
        "description": rule["description"].as_str().unwrap_or(""),
        "filterPattern": rule.get("pattern").filter(|p| !p.is_null()).cloned().unwrap_or(json!({})).to_string(),
        "status": if rule["enabled"] == false { "DISABLE" } else { "ENABLE" },
    })
}

async fn create_rule(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("EventRuleName")?.to_string();
    let pattern = pattern_of(input)?;
    let description = input.str("Description").map(String::from);
    let id = format!("{bus}/{name}");
    edit(api, actor, |merged| {
        if merged.get(Kind::Bus, &bus).is_none() {
            return Err(bus_missing(&bus));
        }
        if merged.get(Kind::Rule, &id).is_some() {
            return Err(err(
                "EventRuleAlreadyExist",
                format!("The event rule [{name}] of event bus [{bus}] already existed!"),
            ));
        }
        let mut rule = json!({"name": name, "bus": bus, "targets": []});
        if let Some(p) = &pattern {
            rule["pattern"] = p.clone();
        }
        if let Some(d) = &description {
            rule["description"] = d.clone().into();
        }
        Ok(vec![(Kind::Rule, id.clone(), Some(rule))])
    })
    .await?;
    Ok(json!({"eventRuleName": name}))
}

async fn find_rule(api: &ResourceApi, input: &Input) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let name = input.required("EventRuleName")?;
    let (_, merged) = current(api).await?;
    merged
        .get(Kind::Rule, &format!("{bus}/{name}"))
        .cloned()
        .ok_or_else(|| rule_missing(bus, name))
}

async fn get_rule(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let rule = find_rule(api, input).await?;
    let mut view = rule_view(&rule);
    view["eventTargets"] = Value::Array(targets_view(&rule));
    Ok(view)
}

async fn change_rule(
    input: &Input,
    api: &ResourceApi,
    actor: &str,
    mut f: impl FnMut(&mut Value) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("EventRuleName")?.to_string();
    let id = format!("{bus}/{name}");
    edit(api, actor, |merged| {
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

async fn update_rule(
    input: &Input,
    api: &ResourceApi,
    actor: &str,
    enabled: Option<bool>,
) -> Result<Value, ApiError> {
    let pattern = if enabled.is_none() {
        pattern_of(input)?
    } else {
        None
    };
    let description = input.str("Description").map(String::from);
    change_rule(input, api, actor, |rule| {
        if let Some(e) = enabled {
            rule["enabled"] = e.into();
        }
        if let Some(p) = &pattern {
            rule["pattern"] = p.clone();
        }
        if let (None, Some(d)) = (enabled, &description) {
            rule["description"] = d.clone().into();
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn delete_rule(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?.to_string();
    let name = input.required("EventRuleName")?.to_string();
    let id = format!("{bus}/{name}");
    edit(api, actor, |merged| {
        if merged.get(Kind::Rule, &id).is_none() {
            return Err(rule_missing(&bus, &name));
        }
        Ok(vec![(Kind::Rule, id.clone(), None)])
    })
    .await?;
    Ok(json!({}))
}

async fn list_rules(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let bus = input.required("EventBusName")?;
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, bus).is_none() {
        return Err(bus_missing(bus));
    }
    let rules = document::resources(&merged.top, Kind::Rule)
        .filter(|r| r["bus"] == bus)
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), rule_view(r))))
        .collect();
    let (rules, next, total, max) = page(input, rules)?;
    Ok(json!({"eventRules": rules, "nextToken": next, "total": total, "maxResults": max}))
}

// ---- targets ----

const TARGET_LABEL: &str = "rocketmq:target";

fn native_target(t: &Value, known: &connections::Destinations) -> Result<Value, ApiError> {
    let name = member(t, "EventTargetName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("EventTargetMissingAttribute", "eventTargetName is required"))?;
    let class = member(t, "ClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let config = member(t, "Config").cloned().unwrap_or(json!({}));
    let conf = |k: &str| member(&config, k).and_then(Value::as_str).map(String::from);
    let mut target = match class {
        "http" => {
            let url = conf("Url").or_else(|| conf("Endpoint")).ok_or_else(|| {
                err(
                    "EventTargetMissingAttribute",
                    "Missing the attribute [http:url]",
                )
            })?;
            let mut t = json!({"kind": "http", "url": url});
            if let Some(m) = conf("Method") {
                t["method"] = m.into();
            }
            // `body`: a transform as RocketMQ-EventBridge writes them (a JSON string).
            if let Some(body) = conf("Body") {
                let transform: Value = serde_json::from_str(&body).map_err(|e| {
                    err(
                        "EventTargetIneffectiveAttribute",
                        format!("config.body is not a transform: {e}"),
                    )
                })?;
                t["transform"] = transform;
            }
            t
        }
        // Sluice's class (its repository has none that calls an API destination).
        "api-destination" => {
            let name = conf("ApiDestinationName").ok_or_else(|| {
                err(
                    "EventTargetMissingAttribute",
                    "Missing the attribute [api-destination:apiDestinationName]",
                )
            })?;
            let mut t = known.target(&name)?;
            t["labels"] = json!({ connections::DESTINATION_LABEL: name });
            t
        }
        "acs.eventbridge" => {
            let need = |k: &str| {
                conf(k).ok_or_else(|| {
                    err(
                        "EventTargetMissingAttribute",
                        format!("Missing the attribute [acs.eventbridge:{k}]"),
                    )
                })
            };
            let (region, account, bus) = (
                need("RegionId")?,
                need("AliyunAccountId")?,
                need("AliyunEventBus")?,
            );
            let secret = need("AccessKeySecret")?;
            if crate::compat::is_reference(&secret) {
                return Err(err(
                    "EventTargetIneffectiveAttribute",
                    "AccessKeySecret must be the secret itself, not an env:/file: reference",
                ));
            }
            json!({
                "kind": "alibaba-eventbridge",
                "region": region,
                "account_id": account,
                "event_bus": bus,
                "access_key_id": need("AccessKeyId")?,
                "access_key_secret": secret,
                "peer": format!("aliyun-{account}-{bus}"),
            })
        }
        other => {
            return Err(err(
                "EventTargetClassNotExist",
                format!(
                "The event target class [{other}] not existed! Sluice has http, api-destination and acs.eventbridge"
            ),
            ))
        }
    };
    target["name"] = name.into();
    if let Some(retry) = member(t, "RunOptions").and_then(|r| member(r, "RetryStrategy")) {
        let mut policy = match member(retry, "PushRetryStrategy").and_then(Value::as_str) {
            Some("EXPONENTIAL_DECAY_RETRY") => {
                json!({"max_attempts": 176, "initial": "1s", "max": "512s"})
            }
            _ => json!({"max_attempts": 3, "initial": "10s", "max": "20s"}),
        };
        if let Some(n) = member(retry, "MaximumRetryAttempts").and_then(Value::as_u64) {
            policy["max_attempts"] = (n + 1).into();
        }
        if let Some(s) = member(retry, "MaximumEventAgeInSeconds").and_then(Value::as_u64) {
            policy["max_age"] = format!("{s}s").into();
        }
        target["retry"] = policy;
    }
    let mut kept = t.clone();
    // The AccessKey secret is not kept in the label (the target holds it, redacted).
    for key in ["config", "Config"] {
        if let Some(m) = kept.get_mut(key).and_then(Value::as_object_mut) {
            m.remove("AccessKeySecret");
            m.remove("accessKeySecret");
        }
    }
    let mut labels = target["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(TARGET_LABEL.into(), kept.to_string().into());
    target["labels"] = Value::Object(labels);
    Ok(target)
}

fn targets_view(rule: &Value) -> Vec<Value> {
    rule["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            t["labels"][TARGET_LABEL]
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_else(|| json!({"eventTargetName": t["name"], "className": t["kind"], "config": {"url": t["url"]}}))
        })
        .collect()
}

async fn put_targets(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let known = connections::Destinations::load(api).await?;
    let targets: Vec<Value> = match input.get("EventTargets") {
        Some(Value::Array(t)) if !t.is_empty() => t
            .iter()
            .map(|t| native_target(t, &known))
            .collect::<Result<_, _>>()?,
        _ => return Err(err("InvalidArgument", "eventTargets is required")),
    };
    change_rule(input, api, actor, |rule| {
        crate::compat::upsert_targets(rule, targets.iter().cloned());
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn delete_targets(input: &Input, api: &ResourceApi, actor: &str) -> Result<Value, ApiError> {
    let names: Vec<String> = crate::compat::strings(input.get("EventTargetNames"));
    change_rule(input, api, actor, |rule| {
        let list = rule["targets"].as_array_mut().expect("targets");
        for n in &names {
            if !list.iter().any(|t| t["name"] == n.as_str()) {
                return Err(err(
                    "EventTargetNotExist",
                    format!("The event target [{n}] not existed!"),
                ));
            }
        }
        list.retain(|t| !names.iter().any(|n| t["name"] == n.as_str()));
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn list_targets(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let rule = find_rule(api, input).await?;
    Ok(
        json!({"eventBusName": rule["bus"], "eventRuleName": rule["name"], "eventTargets": targets_view(&rule)}),
    )
}

// ---- HttpSources ----

pub(super) fn redis_err(e: crate::bus::BusError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "InternalError",
        e.to_string(),
    )
}

async fn source(api: &ResourceApi, name: &str) -> Result<Option<Value>, ApiError> {
    let raw: Option<String> = match crate::bus::within(api.redis.clone().hget(SOURCES, name)).await
    {
        Ok(r) => r,
        Err(e) => return Err(redis_err(e)),
    };
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

fn source_view(name: &str, s: &Value) -> Value {
    json!({
        "eventSourceName": name,
        "eventBusName": s["bus"],
        "description": s["description"],
        "className": "HttpEvent",
        "config": s["config"],
    })
}

async fn put_source(input: &Input, api: &ResourceApi, create: bool) -> Result<Value, ApiError> {
    let name = input.required("EventSourceName")?.to_string();
    let bus = input.required("EventBusName")?.to_string();
    let class = input.str("ClassName").unwrap_or("HttpEvent");
    if class != "HttpEvent" {
        return Err(err(
            "EventSourceClassNotExist",
            format!("The event source class [{class}] not existed! Sluice has HttpEvent"),
        ));
    }
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, &bus).is_none() {
        return Err(bus_missing(&bus));
    }
    let old = source(api, &name).await?;
    let token = match (&old, create) {
        (Some(_), true) => {
            return Err(err(
                "EventSourceAlreadyExist",
                format!("The event source [{name}] of event bus [{bus}] already existed!"),
            ))
        }
        (None, false) => {
            return Err(err(
                "EventSourceNotExist",
                format!("The event source [{name}] of event bus [{bus}] not existed!"),
            ))
        }
        (Some(old), false) => old["token"].as_str().unwrap_or_default().to_string(),
        (None, true) => format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    let mut config = input.get("Config").cloned().unwrap_or(json!({}));
    match member(&config, "SecurityConfig").and_then(Value::as_str) {
        None | Some("none") => {}
        Some(other) => return Err(err("HttpSourceParametersInvalid", format!("SecurityConfig {other:?} is not supported by Sluice: the token is the credential (use none)"))),
    }
    config["Token"] = token.clone().into();
    config["WebhookUrl"] = format!("/webhook/putEvents?token={token}").into();
    let stored = json!({"bus": bus, "description": input.str("Description").unwrap_or(""), "config": config, "token": token});
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hset(SOURCES, &name, stored.to_string())
        .ignore()
        .hset(TOKENS, &token, &name)
        .ignore();
    if let Err(e) = crate::bus::within(pipe.query_async::<()>(&mut api.redis.clone())).await {
        return Err(redis_err(e));
    }
    Ok(json!({"eventSourceName": name, "config": stored["config"]}))
}

async fn get_source(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let name = input.required("EventSourceName")?;
    let s = source(api, name).await?.ok_or_else(|| {
        err(
            "EventSourceNotExist",
            format!("The event source [{name}] not existed!"),
        )
    })?;
    Ok(source_view(name, &s))
}

async fn delete_source(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let name = input.required("EventSourceName")?;
    let s = source(api, name).await?.ok_or_else(|| {
        err(
            "EventSourceNotExist",
            format!("The event source [{name}] not existed!"),
        )
    })?;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hdel(SOURCES, name)
        .ignore()
        .hdel(TOKENS, s["token"].as_str().unwrap_or_default())
        .ignore();
    if let Err(e) = crate::bus::within(pipe.query_async::<()>(&mut api.redis.clone())).await {
        return Err(redis_err(e));
    }
    Ok(json!({}))
}

async fn list_sources(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let all: std::collections::HashMap<String, String> =
        match crate::bus::within(api.redis.clone().hgetall(SOURCES)).await {
            Ok(a) => a,
            Err(e) => return Err(redis_err(e)),
        };
    let bus = input.str("EventBusName");
    let items = all
        .into_iter()
        .filter_map(|(n, v)| Some((n, serde_json::from_str::<Value>(&v).ok()?)))
        .filter(|(_, s)| bus.is_none_or(|b| s["bus"] == b))
        .map(|(n, s)| {
            let v = source_view(&n, &s);
            (n, v)
        })
        .collect();
    let (sources, next, total, max) = page(input, items)?;
    Ok(json!({"eventSources": sources, "nextToken": next, "total": total, "maxResults": max}))
}

// ---- events in ----

/// Appends `events` to `bus`, answered as its PutEvents: one entry per event.
async fn append(
    state: &Ingress,
    request_id: &str,
    bus: &str,
    mut events: Vec<crate::event::EncodedEvent>,
) -> HttpResponse {
    let Some(spec) = state.buses.get(bus) else {
        return answer(request_id, Err(bus_missing(bus)));
    };
    for e in events.iter_mut() {
        if let Err(r) = state
            .schemas
            .check(bus, crate::schema::gate::Entrance::CloudEvents, e)
        {
            return answer(
                request_id,
                Err(err(
                    "PutEventsRequestSchemaViolation",
                    crate::ingress::describe_rejection(&r),
                )),
            );
        }
    }
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    crate::ingress::arrive_all(&mut events, &state.gateway_id);
    if !events.is_empty() {
        if let Err(e) =
            crate::bus::append(&mut state.redis.clone(), spec, &events, "rocketmq").await
        {
            warn!(error = %e, "RocketMQ-EventBridge putEvents: Redis unavailable; answering 503");
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({"requestId": request_id, "code": "InternalError", "message": "the event store is unavailable; retry later"}));
        }
        state.metrics.ingested(
            bus,
            crate::observability::metrics::Via::CloudEvents,
            events.len(),
        );
    }
    let entries: Vec<Value> = ids.iter().map(|id| json!({"eventId": id})).collect();
    HttpResponse::Ok()
        .json(json!({"requestId": request_id, "failedEntryCount": 0, "entryList": entries}))
}

/// `POST /putEvents`: CloudEvents (binary, structured or batch), all for the bus of
/// their `eventbusname` extension.
pub(crate) async fn put_events(
    req: HttpRequest,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
) -> HttpResponse {
    let state = live.get();
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match read_body(&req, &mut payload, state.limits.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => {
            return answer(
                &request_id,
                Err(ApiError::new(e.status, "InvalidArgument", e.message)),
            )
        }
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let media = content_type
        .map(crate::ingress::media_type)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parsed = if media == cloudevents::BATCH {
        cloudevents::parse_batch(&body).map_err(|e| e.into_iter().next())
    } else if media == cloudevents::STRUCTURED {
        cloudevents::parse_structured(&body)
            .map(|e| vec![e])
            .map_err(Some)
    } else {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        cloudevents::parse_binary(headers, content_type, body)
            .map(|e| vec![e])
            .map_err(Some)
    };
    let events = match parsed {
        Ok(events) => events,
        Err(e) => {
            let message = e.map_or("invalid events".to_string(), |e| {
                format!("{}: {}", e.field, e.message)
            });
            return answer(&request_id, Err(err("InvalidArgument", message)));
        }
    };
    let mut bus: Option<String> = None;
    for e in &events {
        let attrs: Map<String, Value> = serde_json::from_slice(&e.attrs).unwrap_or_default();
        let Some(b) = attrs.get("eventbusname").and_then(Value::as_str) else {
            return answer(
                &request_id,
                Err(err(
                    "InvalidArgument",
                    format!("event {:?} has no eventbusname extension", e.id),
                )),
            );
        };
        match &bus {
            Some(first) if first != b => {
                return answer(
                    &request_id,
                    Err(err(
                        "PutEventsRequestMoreThanOneEventBus",
                        "The put event request has more than one event bus.",
                    )),
                )
            }
            _ => bus = Some(b.to_string()),
        }
    }
    let Some(bus) = bus else {
        return answer(&request_id, Err(err("InvalidArgument", "no events")));
    };
    append(&state, &request_id, &bus, events).await
}

/// `/webhook/putEvents?token=`: any request to an HttpSource, wrapped as its HttpSource
/// does: type `eventbridge:Events:HTTPEvent`, source the HttpSource's name, data
/// `{body, headers, httpMethod, path, queryString}`.
pub(crate) async fn webhook(
    req: HttpRequest,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
) -> HttpResponse {
    let state = live.get();
    let request_id = uuid::Uuid::new_v4().to_string();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let Some(token) = query
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
    else {
        return answer(
            &request_id,
            Err(err(
                "InvalidArgument",
                "the token query parameter is required",
            )),
        );
    };
    let body = match read_body(&req, &mut payload, state.limits.max_request_bytes).await {
        Ok(b) => b,
        Err(e) => {
            return answer(
                &request_id,
                Err(ApiError::new(e.status, "InvalidArgument", e.message)),
            )
        }
    };
    let mut redis = state.redis.clone();
    let name: Option<String> = match crate::bus::within(redis.hget(TOKENS, &token)).await {
        Ok(n) => n,
        Err(_) => {
            return answer(
                &request_id,
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "InternalError",
                    "the event store is unavailable; retry later",
                )),
            )
        }
    };
    let stored: Option<String> = match &name {
        Some(n) => crate::bus::within(redis.hget(SOURCES, n))
            .await
            .unwrap_or(None),
        None => None,
    };
    let (Some(name), Some(source)) = (
        name,
        stored.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
    ) else {
        warn!("RocketMQ-EventBridge webhook refused: unknown token");
        return HttpResponse::Unauthorized().json(json!({"requestId": request_id, "code": "PutEventsRequestSecurityCheckFailed", "message": "the token is unknown"}));
    };
    let method = req.method().as_str();
    if let Some(allowed) = source["config"]["Method"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        if !allowed
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case(method)))
        {
            return answer(
                &request_id,
                Err(err(
                    "PutEventsRequestSecurityCheckFailed",
                    format!("method {method} is not allowed by the HttpSource"),
                )),
            );
        }
    }
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), Value::from(v.to_str().ok()?))))
        .collect();
    let query_map: Map<String, Value> = query
        .into_iter()
        .filter(|(k, _)| k != "token")
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let data = json!({
        "body": String::from_utf8_lossy(&body),
        "headers": headers,
        "httpMethod": method,
        "path": req.path(),
        "queryString": query_map,
    });
    let bus = source["bus"].as_str().unwrap_or_default().to_string();
    let event = json!({
        "specversion": "1.0",
        "id": uuid::Uuid::new_v4().to_string(),
        "source": name,
        "type": HTTP_EVENT_TYPE,
        "subject": format!("acs:eventbridge:local:0:eventbus/{bus}/eventsource/{name}"),
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "datacontenttype": "application/json",
        "data": data,
    });
    let encoded = match cloudevents::parse_structured(&bytes::Bytes::from(event.to_string())) {
        Ok(e) => e,
        Err(e) => {
            return answer(
                &request_id,
                Err(err(
                    "InvalidArgument",
                    format!("{}: {}", e.field, e.message),
                )),
            )
        }
    };
    append(&state, &request_id, &bus, vec![encoded]).await
}
