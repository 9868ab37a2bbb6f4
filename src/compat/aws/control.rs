//! AWS EventBridge's control operations (`X-Amz-Target: AWSEvents.<Operation>` on the
//! PutEvents endpoint, SigV4 as PutEvents), as a facade over the native control plane:
//! a bus, rule or target created here is a resource of the configuration store, the
//! same one `/api/v1` and `sluice get` show, written through the same checked commit.
//!
//! Mapping (docs/compatibility.md): an event bus is a bus; a rule is a rule with
//! `dialect: aws` (its pattern is written against the AWS event) and its targets have
//! `envelope: aws` (they receive the AWS event); a target's `Id` is the target's name
//! and its `Arn` is kept in its labels. Target ARNs: an API destination becomes an
//! `http` target (URL, method, rate limit and the connection's API key or basic auth
//! resolved when the target is put), a Lambda function a `function` target when Sluice
//! hosts a function of that name (else `aws-lambda`), an event bus of another account or
//! region an `aws-eventbridge` target. Connections and API destinations live in the
//! store beside the resources (`sluice:{control}:aws:*`). An archive is an archive of
//! its bus (`archives:` of the bus resource, pattern in the AWS dialect) and a replay a
//! native replay (`crate::replay`) from that archive into its bus.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use redis::AsyncCommands;
use serde_json::{json, Map, Value};

use crate::compat::http_api::{self, Auth};
use crate::control::document::{self, Merged};
use crate::control::resources::{current, ResourceApi};
use crate::control::store::Kind;
use crate::ingress::error::ApiError;
use crate::rules::dialect;

/// Connections: name -> the connection as CreateConnection took it (with its secrets).
const CONNECTIONS: &str = "sluice:{control}:aws:connections";
/// API destinations: name -> the API destination as CreateApiDestination took it.
const API_DESTINATIONS: &str = "sluice:{control}:aws:api-destinations";
/// When CreateArchive made each archive: name -> epoch seconds (the archive itself is
/// part of its bus's resource, which keeps no creation time).
const ARCHIVES_CREATED: &str = "sluice:{control}:aws:archives-created";
/// AWS's quotas that tools rely on: targets per rule and per PutTargets call.
const MAX_TARGETS_PER_RULE: usize = 5;
const MAX_TARGETS_PER_CALL: usize = 10;
const DEFAULT_LIMIT: usize = 100;

/// Who is asking and as which account and region ARNs are made.
pub struct Caller<'a> {
    pub actor: String,
    pub region: &'a str,
    pub account: &'a str,
    pub default_bus: &'a str,
}

/// An AWS-named error: `code` is the exception boto3 raises.
fn aws(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

fn validation(message: impl Into<String>) -> ApiError {
    aws(StatusCode::BAD_REQUEST, "ValidationException", message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    aws(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        message,
    )
}

/// Native control-plane errors in AWS's words.
pub fn to_aws(mut e: ApiError) -> ApiError {
    let (status, code): (StatusCode, &'static str) = match e.error {
        c if c.ends_with("Exception") => return e,
        "invalid_resource"
            if e.field
                .as_deref()
                .is_some_and(|f| f.starts_with("pattern") || f.contains(".pattern")) =>
        {
            (StatusCode::BAD_REQUEST, "InvalidEventPatternException")
        }
        "read_only" => (StatusCode::BAD_REQUEST, "ManagedRuleException"),
        "conflict" | "precondition_failed" => {
            (StatusCode::BAD_REQUEST, "ConcurrentModificationException")
        }
        "not_found" => (StatusCode::BAD_REQUEST, "ResourceNotFoundException"),
        _ if e.status == StatusCode::SERVICE_UNAVAILABLE => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
        ),
        _ if e.status.is_server_error() => (StatusCode::INTERNAL_SERVER_ERROR, "InternalException"),
        _ => (StatusCode::BAD_REQUEST, "ValidationException"),
    };
    if let Some(field) = e.field.take() {
        e.message = format!(
            "{field}: {}",
            e.message.trim_start_matches(&format!("{field}: "))
        );
    }
    e.status = status;
    e.error = code;
    e
}

/// Runs one control operation; `Ok` is the JSON answer.
pub async fn handle(
    operation: &str,
    body: &[u8],
    api: &ResourceApi,
    caller: &Caller<'_>,
) -> Result<Value, ApiError> {
    let input: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "the body must be a JSON object",
            ))
        }
        Err(e) => {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("invalid JSON: {e}"),
            ))
        }
    };
    let input = Input(input);
    let result = match operation {
        "CreateEventBus" => create_event_bus(&input, api, caller).await,
        "DescribeEventBus" => describe_event_bus(&input, api, caller).await,
        "ListEventBuses" => list_event_buses(&input, api, caller).await,
        "DeleteEventBus" => delete_event_bus(&input, api, caller).await,
        "PutRule" => put_rule(&input, api, caller).await,
        "DescribeRule" => describe_rule(&input, api, caller).await,
        "ListRules" => list_rules(&input, api, caller).await,
        "EnableRule" => set_state(&input, api, caller, true).await,
        "DisableRule" => set_state(&input, api, caller, false).await,
        "DeleteRule" => delete_rule(&input, api, caller).await,
        "PutTargets" => put_targets(&input, api, caller).await,
        "RemoveTargets" => remove_targets(&input, api, caller).await,
        "ListTargetsByRule" => list_targets_by_rule(&input, api, caller).await,
        "ListRuleNamesByTarget" => list_rule_names_by_target(&input, api, caller).await,
        "TestEventPattern" => test_event_pattern(&input),
        "CreateConnection" => put_connection(&input, api, caller, true).await,
        "UpdateConnection" => put_connection(&input, api, caller, false).await,
        "DescribeConnection" => describe_connection(&input, api, caller).await,
        "ListConnections" => list_stored(&input, api, caller, CONNECTIONS).await,
        "DeleteConnection" => delete_stored(&input, api, caller, CONNECTIONS).await,
        "CreateApiDestination" => put_api_destination(&input, api, caller, true).await,
        "UpdateApiDestination" => put_api_destination(&input, api, caller, false).await,
        "DescribeApiDestination" => describe_api_destination(&input, api, caller).await,
        "ListApiDestinations" => list_stored(&input, api, caller, API_DESTINATIONS).await,
        "DeleteApiDestination" => delete_stored(&input, api, caller, API_DESTINATIONS).await,
        "CreateArchive" => create_archive(&input, api, caller).await,
        "DescribeArchive" => describe_archive(&input, api, caller).await,
        "ListArchives" => list_archives(&input, api, caller).await,
        "UpdateArchive" => update_archive(&input, api, caller).await,
        "DeleteArchive" => delete_archive(&input, api, caller).await,
        "StartReplay" => start_replay(&input, api, caller).await,
        "DescribeReplay" => describe_replay(&input, api, caller).await,
        "ListReplays" => list_replays(&input, api, caller).await,
        "CancelReplay" => cancel_replay(&input, api, caller).await,
        other => Err(aws(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "operation AWSEvents.{other} is not supported by Sluice (docs/compatibility.md)"
            ),
        )),
    };
    result.map_err(to_aws)
}

/// The request's members, with AWS's validation messages.
struct Input(Map<String, Value>);

impl Input {
    fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(aws(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                format!("{name} must be a string"),
            )),
        }
    }

    fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| validation(format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(name))))
    }

    /// The bus named by `EventBusName` (a name or an event-bus ARN), else the default.
    fn bus<'a>(&'a self, caller: &'a Caller<'_>) -> Result<&'a str, ApiError> {
        let bus = self.str("EventBusName")?.unwrap_or(caller.default_bus);
        Ok(bus.rsplit_once(":event-bus/").map_or(bus, |(_, name)| name))
    }

    fn limit(&self) -> Result<usize, ApiError> {
        match self.0.get("Limit") {
            None | Some(Value::Null) => Ok(DEFAULT_LIMIT),
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100) => Ok(n as usize),
                _ => Err(validation("Limit must be between 1 and 100")),
            },
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

// ---- ARNs ----

fn bus_arn(c: &Caller<'_>, bus: &str) -> String {
    format!("arn:aws:events:{}:{}:event-bus/{bus}", c.region, c.account)
}

fn rule_arn(c: &Caller<'_>, bus: &str, rule: &str) -> String {
    if bus == c.default_bus {
        format!("arn:aws:events:{}:{}:rule/{rule}", c.region, c.account)
    } else {
        format!(
            "arn:aws:events:{}:{}:rule/{bus}/{rule}",
            c.region, c.account
        )
    }
}

fn connection_arn(c: &Caller<'_>, name: &str) -> String {
    format!(
        "arn:aws:events:{}:{}:connection/{name}",
        c.region, c.account
    )
}

fn api_destination_arn(c: &Caller<'_>, name: &str) -> String {
    format!(
        "arn:aws:events:{}:{}:api-destination/{name}",
        c.region, c.account
    )
}

/// A page of `items` (sorted by their name) after `NextToken`, and the next token.
fn page<T>(
    input: &Input,
    mut items: Vec<(String, T)>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = input.limit()?;
    let after = input.str("NextToken")?;
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(name, _)| after.is_none_or(|a| name.as_str() > a))
        .collect();
    let next = (rest.len() > limit).then(|| rest[limit - 1].0.clone());
    rest.truncate(limit);
    Ok((rest.into_iter().map(|(_, t)| t).collect(), next))
}

fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    out
}

/// [`crate::compat::edit`] with AWS's error for resources of the file.
async fn edit<F>(api: &ResourceApi, caller: &Caller<'_>, change: F) -> Result<Merged, ApiError>
where
    F: FnMut(&mut Merged) -> Result<Vec<(Kind, String, Option<Value>)>, ApiError>,
{
    crate::compat::edit(api, &caller.actor, change, |kind, id| {
        aws(
            StatusCode::BAD_REQUEST,
            "ManagedRuleException",
            format!(
                "{} {id:?} is defined by the configuration file given to serve: change it there",
                kind.singular()
            ),
        )
    })
    .await
}

// ---- event buses ----

async fn create_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    if input.str("EventSourceName")?.is_some() {
        return Err(validation(
            "partner event sources (EventSourceName) are not supported by Sluice",
        ));
    }
    edit(api, c, |merged| {
        if merged.get(Kind::Bus, &name).is_some() {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "ResourceAlreadyExistsException",
                format!("Event bus {name} already exists."),
            ));
        }
        Ok(vec![(Kind::Bus, name.clone(), Some(json!({"name": name})))])
    })
    .await?;
    Ok(json!({"EventBusArn": bus_arn(c, &name)}))
}

fn bus_view(c: &Caller<'_>, name: &str) -> Value {
    json!({"Name": name, "Arn": bus_arn(c, name)})
}

async fn describe_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input
        .str("Name")?
        .map(|n| n.rsplit_once(":event-bus/").map_or(n, |(_, b)| b))
        .unwrap_or(c.default_bus);
    let (_, merged) = current(api).await?;
    merged
        .get(Kind::Bus, name)
        .map(|_| bus_view(c, name))
        .ok_or_else(|| not_found(format!("Event bus {name} does not exist.")))
}

async fn list_event_buses(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let (_, merged) = current(api).await?;
    let buses = document::resources(&merged.top, Kind::Bus)
        .filter_map(|b| b["name"].as_str())
        .filter(|n| n.starts_with(prefix))
        .map(|n| (n.to_string(), bus_view(c, n)))
        .collect();
    let (buses, next) = page(input, buses)?;
    Ok(with_token(json!({"EventBuses": buses}), next))
}

async fn delete_event_bus(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    if name == c.default_bus {
        return Err(validation(format!("Cannot delete event bus {name}.")));
    }
    let mut existed = false;
    edit(api, c, |merged| {
        existed = merged.get(Kind::Bus, &name).is_some();
        if !existed {
            return Ok(Vec::new());
        }
        let mut writes: Vec<(Kind, String, Option<Value>)> = Vec::new();
        // AWS deletes a bus with its rules (their targets go with them).
        for rule in document::resources(&merged.top, Kind::Rule) {
            if rule["bus"] == name.as_str() {
                if let Some(id) = Kind::Rule.id_of(rule) {
                    writes.push((Kind::Rule, id, None));
                }
            }
        }
        writes.push((Kind::Bus, name.clone(), None));
        Ok(writes)
    })
    .await?;
    if existed {
        // As the native `?force=true`: the bus's retained events go with it.
        let _: Result<(), _> = crate::bus::within(
            redis::cmd("DEL")
                .arg(crate::bus::bus_key(&name))
                .query_async(&mut api.redis.clone()),
        )
        .await;
    }
    Ok(json!({}))
}

// ---- rules ----

fn rule_id(bus: &str, name: &str) -> String {
    format!("{bus}/{name}")
}

fn rule_view(c: &Caller<'_>, rule: &Value) -> Value {
    let bus = rule["bus"].as_str().unwrap_or_default();
    let name = rule["name"].as_str().unwrap_or_default();
    let mut out = json!({
        "Name": name,
        "Arn": rule_arn(c, bus, name),
        "State": if rule["enabled"] == false { "DISABLED" } else { "ENABLED" },
        "EventBusName": bus,
        "CreatedBy": c.account,
    });
    if let Some(p) = rule.get("pattern").filter(|p| !p.is_null()) {
        out["EventPattern"] = p.to_string().into();
    }
    if let Some(d) = rule["description"].as_str() {
        out["Description"] = d.into();
    }
    out
}

async fn put_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    let bus = input.bus(c)?.to_string();
    if input.str("ScheduleExpression")?.is_some() {
        return Err(validation(
            "ScheduleExpression is not supported by Sluice: scheduled rules are refused rather than fired more than once per period across replicas",
        ));
    }
    let pattern: Value = match input.str("EventPattern")? {
        None => {
            return Err(validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ))
        }
        Some(text) => serde_json::from_str(text).map_err(|e| {
            aws(
                StatusCode::BAD_REQUEST,
                "InvalidEventPatternException",
                format!("Event pattern is not valid. Reason: {e}"),
            )
        })?,
    };
    let enabled = match input.str("State")? {
        None | Some("ENABLED") => true,
        Some("DISABLED") => false,
        Some(other) => {
            return Err(validation(format!(
                "State {other:?} is not ENABLED or DISABLED"
            )))
        }
    };
    let description = input.str("Description")?.map(String::from);
    let id = rule_id(&bus, &name);
    edit(api, c, |merged| {
        if merged.get(Kind::Bus, &bus).is_none() {
            return Err(not_found(format!("Event bus {bus} does not exist.")));
        }
        let mut rule = merged
            .get(Kind::Rule, &id)
            .cloned()
            .unwrap_or_else(|| json!({"name": name, "bus": bus, "targets": []}));
        rule["dialect"] = "aws".into();
        rule["pattern"] = pattern.clone();
        rule["enabled"] = enabled.into();
        match &description {
            Some(d) => rule["description"] = d.clone().into(),
            None => {
                if let Some(m) = rule.as_object_mut() {
                    m.remove("description");
                }
            }
        }
        Ok(vec![(Kind::Rule, id.clone(), Some(rule))])
    })
    .await?;
    Ok(json!({"RuleArn": rule_arn(c, &bus, &name)}))
}

async fn find_rule(api: &ResourceApi, bus: &str, name: &str) -> Result<(Merged, Value), ApiError> {
    let (_, merged) = current(api).await?;
    let rule = merged
        .get(Kind::Rule, &rule_id(bus, name))
        .cloned()
        .ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus {bus}.")))?;
    Ok((merged, rule))
}

async fn describe_rule(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?;
    let bus = input.bus(c)?;
    let (_, rule) = find_rule(api, bus, name).await?;
    Ok(rule_view(c, &rule))
}

async fn list_rules(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let bus = input.bus(c)?;
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let (_, merged) = current(api).await?;
    if merged.get(Kind::Bus, bus).is_none() {
        return Err(not_found(format!("Event bus {bus} does not exist.")));
    }
    let rules = document::resources(&merged.top, Kind::Rule)
        .filter(|r| r["bus"] == bus)
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r)))
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, r)| (n, rule_view(c, r)))
        .collect();
    let (rules, next) = page(input, rules)?;
    Ok(with_token(json!({"Rules": rules}), next))
}

/// Changes the stored rule `Name` on `EventBusName` with `f`.
async fn change_rule(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    mut f: impl FnMut(&mut Value, &Merged) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let name = input
        .required("Rule")
        .or_else(|_| input.required("Name"))?
        .to_string();
    let bus = input.bus(c)?.to_string();
    let id = rule_id(&bus, &name);
    edit(api, c, |merged| {
        let mut rule = merged
            .get(Kind::Rule, &id)
            .cloned()
            .ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus {bus}.")))?;
        f(&mut rule, merged)?;
        Ok(vec![(Kind::Rule, id.clone(), Some(rule))])
    })
    .await?;
    Ok(())
}

async fn set_state(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    enabled: bool,
) -> Result<Value, ApiError> {
    change_rule(input, api, c, |rule, _| {
        rule["enabled"] = enabled.into();
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

async fn delete_rule(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    let bus = input.bus(c)?.to_string();
    let id = rule_id(&bus, &name);
    edit(api, c, |merged| {
        let Some(rule) = merged.get(Kind::Rule, &id) else {
            return Ok(Vec::new());
        };
        if rule["targets"].as_array().is_some_and(|t| !t.is_empty()) {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        Ok(vec![(Kind::Rule, id.clone(), None)])
    })
    .await?;
    Ok(json!({}))
}

// ---- targets ----

/// What mapping a target ARN needs besides the target itself.
struct Targets {
    connections: BTreeMap<String, Value>,
    destinations: BTreeMap<String, Value>,
}

async fn stored(api: &ResourceApi, key: &str) -> Result<BTreeMap<String, Value>, ApiError> {
    let raw: BTreeMap<String, String> = crate::bus::within(api.redis.clone().hgetall(key))
        .await
        .map_err(|e| {
            aws(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                e.to_string(),
            )
        })?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?)))
        .collect())
}

impl Targets {
    async fn load(api: &ResourceApi) -> Result<Targets, ApiError> {
        Ok(Targets {
            connections: stored(api, CONNECTIONS).await?,
            destinations: stored(api, API_DESTINATIONS).await?,
        })
    }

    /// The native target of an AWS `Target`.
    fn native(&self, t: &Value, merged: &Merged, c: &Caller<'_>) -> Result<Value, ApiError> {
        let id = t["Id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| validation("Targets[].Id is required"))?;
        let arn = t["Arn"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| validation("Targets[].Arn is required"))?;
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, region, account, resource] = parts[..] else {
            return Err(validation(format!(
                "Parameter {arn} is not valid. Reason: Provided Arn is not in correct format."
            )));
        };
        let mut target = match (service, resource.split_once(['/', ':'])) {
            ("events", Some(("api-destination", rest))) => {
                let name = rest.split('/').next().unwrap_or(rest);
                self.api_destination(name)?
            }
            ("lambda", Some(("function", rest))) => {
                let (name, qualifier) = rest.split_once(':').map_or((rest, None), |(n, q)| (n, Some(q)));
                let hosted = document::resources(&merged.top, Kind::Function).any(|f| f["name"] == name);
                if hosted && qualifier.is_none() {
                    json!({"kind": "function", "function": name})
                } else {
                    let mut t = json!({"kind": "aws-lambda", "function": arn, "region": region});
                    if let Some(q) = qualifier {
                        t["function"] = arn.rsplit_once(':').map_or(arn, |(a, _)| a).into();
                        t["qualifier"] = q.into();
                    }
                    t
                }
            }
            ("events", Some(("event-bus", bus))) => {
                if region == c.region && account == c.account {
                    // A bus of this gateway: forwarded inside the routing transaction.
                    if merged.get(Kind::Bus, bus).is_none() {
                        return Err(not_found(format!("Event bus {bus} does not exist.")));
                    }
                    json!({"kind": "bus", "bus": bus})
                } else {
                    json!({"kind": "aws-eventbridge", "event_bus": arn, "region": region, "peer": format!("aws-{account}-{region}-{bus}")})
                }
            }
            _ => {
                return Err(validation(format!(
                    "Parameter {arn} is not valid. Reason: Sluice delivers to API destinations, Lambda functions and event buses only"
                )))
            }
        };
        let bridge = target["kind"] == "aws-eventbridge";
        let forward = target["kind"] == "bus";
        target["name"] = id.into();
        let mut labels = json!({"aws:arn": arn});
        if !bridge && !forward {
            target["envelope"] = "aws".into();
        }
        let mut transform = Map::new();
        for key in ["Input", "InputPath", "InputTransformer"] {
            if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                if forward {
                    return Err(validation(format!(
                        "Parameter {key} is not valid for target {id}: an event bus of this gateway receives the event unchanged"
                    )));
                }
                transform.insert(key.into(), v.clone());
            }
        }
        if !transform.is_empty() {
            target["transform"] = Value::Object(transform);
        }
        // A forward runs inside the routing transaction: there is nothing to retry.
        if let Some(r) = t.get("RetryPolicy").filter(|v| v.is_object() && !forward) {
            let mut retry = json!({});
            if let Some(n) = r["MaximumRetryAttempts"].as_u64() {
                if n > 185 {
                    return Err(validation(
                        "RetryPolicy.MaximumRetryAttempts must be between 0 and 185",
                    ));
                }
                retry["max_attempts"] = (n + 1).into();
            }
            if let Some(s) = r["MaximumEventAgeInSeconds"].as_u64() {
                if !(60..=86400).contains(&s) {
                    return Err(validation(
                        "RetryPolicy.MaximumEventAgeInSeconds must be between 60 and 86400",
                    ));
                }
                retry["max_age"] = format!("{s}s").into();
            }
            target["retry"] = retry;
        }
        if let Some(dlq) = t["DeadLetterConfig"]["Arn"].as_str() {
            labels["aws:dead-letter-arn"] = dlq.into();
        }
        if let Some(name) = target.get("api_destination").cloned() {
            labels["aws:api-destination"] = name;
            target
                .as_object_mut()
                .expect("an object")
                .remove("api_destination");
        }
        target["labels"] = labels;
        Ok(target)
    }

    /// An `http` target calling the API destination `name` with its connection's auth.
    fn api_destination(&self, name: &str) -> Result<Value, ApiError> {
        let d = self
            .destinations
            .get(name)
            .ok_or_else(|| not_found(format!("Failed to find API destination {name}")))?;
        let connection = d["ConnectionArn"]
            .as_str()
            .and_then(|a| a.rsplit_once("connection/"))
            .map(|(_, n)| n.split('/').next().unwrap_or(n))
            .unwrap_or_default();
        let conn = self
            .connections
            .get(connection)
            .ok_or_else(|| not_found(format!("Failed to find connection {connection}")))?;
        let auth = match conn["AuthorizationType"].as_str() {
            Some("API_KEY") => Auth::ApiKey,
            Some("BASIC") => Auth::Basic,
            Some("OAUTH_CLIENT_CREDENTIALS") => Auth::OAuthClientCredentials,
            _ => Auth::None,
        };
        let mut target = http_api::target(
            &d["InvocationEndpoint"],
            d["HttpMethod"].as_str().unwrap_or("POST"),
            auth,
            &conn["AuthParameters"],
            d["InvocationRateLimitPerSecond"].as_u64(),
        );
        target["api_destination"] = name.into();
        Ok(target)
    }
}

/// The AWS `Target` of a native target.
fn aws_target(c: &Caller<'_>, bus: &str, rule: &str, t: &Value) -> Value {
    let name = t["name"].as_str().unwrap_or_default();
    let arn = t["labels"]["aws:arn"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| {
            // A target made natively: an ARN of Sluice's own that names it.
            format!(
                "arn:aws:events:{}:{}:sluice-target/{bus}/{rule}/{name}",
                c.region, c.account
            )
        });
    let mut out = json!({"Id": name, "Arn": arn});
    if let Some(tr) = t["transform"].as_object() {
        for key in ["Input", "InputPath", "InputTransformer"] {
            if let Some(v) = tr.get(key) {
                out[key] = v.clone();
            }
        }
        if let Some(template) = tr.get("InputTemplate") {
            out["InputTransformer"] = json!({"InputPathsMap": tr.get("InputPathsMap").cloned().unwrap_or(json!({})), "InputTemplate": template});
        }
    }
    if let Some(retry) = t["retry"].as_object() {
        let mut policy = json!({});
        if let Some(n) = retry.get("max_attempts").and_then(Value::as_u64) {
            policy["MaximumRetryAttempts"] = n.saturating_sub(1).into();
        }
        if let Some(secs) = retry
            .get("max_age")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_suffix('s'))
            .and_then(|s| s.parse::<u64>().ok())
        {
            policy["MaximumEventAgeInSeconds"] = secs.into();
        }
        out["RetryPolicy"] = policy;
    }
    if let Some(dlq) = t["labels"]["aws:dead-letter-arn"].as_str() {
        out["DeadLetterConfig"] = json!({"Arn": dlq});
    }
    out
}

async fn put_targets(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let targets = input
        .0
        .get("Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if targets.is_empty() || targets.len() > MAX_TARGETS_PER_CALL {
        return Err(validation(format!(
            "Targets must list 1 to {MAX_TARGETS_PER_CALL} targets"
        )));
    }
    let resolver = Targets::load(api).await?;
    change_rule(input, api, c, |rule, merged| {
        let natives = targets
            .iter()
            .map(|t| resolver.native(t, merged, c))
            .collect::<Result<Vec<_>, _>>()?;
        let list = crate::compat::upsert_targets(rule, natives);
        if list.len() > MAX_TARGETS_PER_RULE {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "LimitExceededException",
                format!("The requested resource exceeds the maximum number allowed: a rule has at most {MAX_TARGETS_PER_RULE} targets"),
            ));
        }
        Ok(())
    })
    .await?;
    Ok(json!({"FailedEntryCount": 0, "FailedEntries": []}))
}

async fn remove_targets(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let ids: Vec<String> = crate::compat::strings(input.0.get("Ids"));
    if ids.is_empty() {
        return Err(validation("Ids must list at least one target id"));
    }
    change_rule(input, api, c, |rule, _| {
        if let Some(list) = rule["targets"].as_array_mut() {
            list.retain(|t| !ids.iter().any(|id| t["name"] == id.as_str()));
        }
        Ok(())
    })
    .await?;
    Ok(json!({"FailedEntryCount": 0, "FailedEntries": []}))
}

async fn list_targets_by_rule(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Rule")?;
    let bus = input.bus(c)?;
    let (_, rule) = find_rule(api, bus, name).await?;
    let targets = rule["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                aws_target(c, bus, name, t),
            )
        })
        .collect();
    let (targets, next) = page(input, targets)?;
    Ok(with_token(json!({"Targets": targets}), next))
}

async fn list_rule_names_by_target(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let arn = input.required("TargetArn")?;
    let bus = input.bus(c)?;
    let (_, merged) = current(api).await?;
    let names = document::resources(&merged.top, Kind::Rule)
        .filter(|r| r["bus"] == bus)
        .filter(|r| {
            let rule = r["name"].as_str().unwrap_or_default();
            r["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| aws_target(c, bus, rule, t)["Arn"] == arn)
        })
        .filter_map(|r| r["name"].as_str())
        .map(|n| (n.to_string(), Value::from(n)))
        .collect();
    let (names, next) = page(input, names)?;
    Ok(with_token(json!({"RuleNames": names}), next))
}

/// TestEventPattern: the pattern in the AWS dialect on the event's CloudEvent, by the
/// router's matcher (the same evaluation as a rule's).
fn test_event_pattern(input: &Input) -> Result<Value, ApiError> {
    let pattern_text = input.required("EventPattern")?;
    let event_text = input.required("Event")?;
    let invalid = |m: String| {
        aws(
            StatusCode::BAD_REQUEST,
            "InvalidEventPatternException",
            format!("Event pattern is not valid. Reason: {m}"),
        )
    };
    let pattern: Value = serde_json::from_str(pattern_text).map_err(|e| invalid(e.to_string()))?;
    let native = dialect::aws_pattern(&pattern)
        .map_err(|e| invalid(format!("{}: {}", e.path.trim_start_matches('.'), e.message)))?;
    let event: Value = serde_json::from_str(event_text)
        .map_err(|e| validation(format!("Event is not valid JSON: {e}")))?;
    for field in ["id", "account", "source", "time", "region", "detail-type"] {
        if !event.get(field).is_some_and(Value::is_string) {
            return Err(validation(format!("Parameter Event is not valid. Reason: Provided Event is missing required field {field}")));
        }
    }
    let mut envelope = event.clone();
    if envelope.get("detail").is_none() {
        envelope["detail"] = json!({});
    }
    let body = serde_json::to_vec(&envelope).expect("JSON");
    let encoded = match crate::sources::envelope::map(&body, "test-event-pattern", None) {
        Ok(crate::sources::envelope::Mapped::Event(e)) => e,
        Ok(crate::sources::envelope::Mapped::Returned { .. }) => {
            return Ok(json!({"Result": false}))
        }
        Err(m) => {
            return Err(validation(format!(
                "Parameter Event is not valid. Reason: {m}"
            )))
        }
    };
    let event = encoded.decode();
    let matched = crate::cli::pattern::pattern_matches(&native, &event).map_err(|m| {
        invalid(
            m.trim_start_matches("invalid pattern: ")
                .replacen(".data", ".detail", 1)
                .to_string(),
        )
    })?;
    Ok(json!({"Result": matched}))
}

// ---- connections and API destinations ----

fn now_seconds() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

async fn hget(api: &ResourceApi, key: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let raw: Option<String> = crate::bus::within(api.redis.clone().hget(key, name))
        .await
        .map_err(|e| {
            aws(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                e.to_string(),
            )
        })?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

async fn hset(api: &ResourceApi, key: &str, name: &str, value: &Value) -> Result<(), ApiError> {
    crate::bus::within(
        api.redis
            .clone()
            .hset::<_, _, _, ()>(key, name, value.to_string()),
    )
    .await
    .map_err(|e| {
        aws(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            e.to_string(),
        )
    })
}

/// Merges `update` into `base` member by member (UpdateConnection / UpdateApiDestination
/// change what they name).
fn merge(base: &mut Value, update: &Map<String, Value>) {
    for (k, v) in update {
        match (base.get_mut(k), v) {
            (Some(b @ Value::Object(_)), Value::Object(u)) => merge(b, u),
            _ => base[k] = v.clone(),
        }
    }
}

async fn put_connection(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    create: bool,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    let old = hget(api, CONNECTIONS, &name).await?;
    let mut conn = match (create, old) {
        (true, Some(_)) => {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "ResourceAlreadyExistsException",
                format!("Connection {name} already exists."),
            ))
        }
        (false, None) => {
            return Err(not_found(format!(
                "Failed to describe the connection(s). Connection '{name}' does not exist."
            )))
        }
        (true, None) => json!({"CreationTime": now_seconds()}),
        (false, Some(old)) => old,
    };
    merge(&mut conn, &input.0);
    match conn["AuthorizationType"].as_str() {
        Some("API_KEY")
            if conn["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"].is_string() => {}
        Some("BASIC") if conn["AuthParameters"]["BasicAuthParameters"]["Username"].is_string() => {}
        Some("OAUTH_CLIENT_CREDENTIALS") => {
            let o = &conn["AuthParameters"]["OAuthParameters"];
            if !o["AuthorizationEndpoint"].is_string()
                || !o["ClientParameters"]["ClientID"].is_string()
                || !o["ClientParameters"]["ClientSecret"].is_string()
            {
                return Err(validation("OAuthParameters need AuthorizationEndpoint, HttpMethod and ClientParameters (ClientID, ClientSecret)"));
            }
            if o["ClientParameters"]["ClientSecret"]
                .as_str()
                .is_some_and(crate::compat::is_reference)
            {
                return Err(validation(
                    "ClientSecret must be the secret itself, not an env:/file: reference",
                ));
            }
        }
        Some(t @ ("API_KEY" | "BASIC")) => {
            return Err(validation(format!("AuthParameters for {t} are missing")))
        }
        _ => {
            return Err(validation(
                "AuthorizationType must be API_KEY, BASIC or OAUTH_CLIENT_CREDENTIALS",
            ))
        }
    }
    conn["LastModifiedTime"] = now_seconds().into();
    hset(api, CONNECTIONS, &name, &conn).await?;
    if !create {
        refresh_api_destination_targets(api, c).await?;
    }
    Ok(json!({
        "ConnectionArn": connection_arn(c, &name),
        "ConnectionState": "AUTHORIZED",
        "CreationTime": conn["CreationTime"],
        "LastModifiedTime": conn["LastModifiedTime"],
    }))
}

async fn describe_connection(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?;
    let mut conn = hget(api, CONNECTIONS, name).await?.ok_or_else(|| {
        not_found(format!(
            "Failed to describe the connection(s). Connection '{name}' does not exist."
        ))
    })?;
    // Secrets are write-only, as on AWS (which keeps them in Secrets Manager).
    if let Some(auth) = conn.get_mut("AuthParameters") {
        if let Some(k) = auth
            .get_mut("ApiKeyAuthParameters")
            .and_then(Value::as_object_mut)
        {
            k.remove("ApiKeyValue");
        }
        if let Some(b) = auth
            .get_mut("BasicAuthParameters")
            .and_then(Value::as_object_mut)
        {
            b.remove("Password");
        }
        if let Some(o) = auth
            .pointer_mut("/OAuthParameters/ClientParameters")
            .and_then(Value::as_object_mut)
        {
            o.remove("ClientSecret");
        }
    }
    conn["ConnectionArn"] = connection_arn(c, name).into();
    conn["ConnectionState"] = "AUTHORIZED".into();
    Ok(conn)
}

async fn put_api_destination(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    create: bool,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?.to_string();
    let old = hget(api, API_DESTINATIONS, &name).await?;
    let mut d = match (create, old) {
        (true, Some(_)) => {
            return Err(aws(
                StatusCode::BAD_REQUEST,
                "ResourceAlreadyExistsException",
                format!("An api-destination '{name}' already exists."),
            ))
        }
        (false, None) => {
            return Err(not_found(format!(
                "An api-destination '{name}' does not exist."
            )))
        }
        (true, None) => json!({"CreationTime": now_seconds()}),
        (false, Some(old)) => old,
    };
    merge(&mut d, &input.0);
    let endpoint = d["InvocationEndpoint"].as_str().unwrap_or_default();
    if !endpoint.starts_with("https://") && !endpoint.starts_with("http://") {
        return Err(validation("InvocationEndpoint must be an http(s) URL"));
    }
    let method = d["HttpMethod"].as_str().unwrap_or_default();
    if !["POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"].contains(&method) {
        return Err(validation(
            "HttpMethod must be one of POST, GET, HEAD, OPTIONS, PUT, PATCH, DELETE",
        ));
    }
    let connection = d["ConnectionArn"]
        .as_str()
        .and_then(|a| a.rsplit_once("connection/"))
        .map(|(_, n)| n.split('/').next().unwrap_or(n).to_string());
    match connection {
        Some(conn) if hget(api, CONNECTIONS, &conn).await?.is_some() => {}
        _ => {
            return Err(not_found(format!(
                "Connection of {} does not exist.",
                d["ConnectionArn"]
            )))
        }
    }
    d["LastModifiedTime"] = now_seconds().into();
    hset(api, API_DESTINATIONS, &name, &d).await?;
    if !create {
        refresh_api_destination_targets(api, c).await?;
    }
    Ok(json!({
        "ApiDestinationArn": api_destination_arn(c, &name),
        "ApiDestinationState": "ACTIVE",
        "CreationTime": d["CreationTime"],
        "LastModifiedTime": d["LastModifiedTime"],
    }))
}

async fn describe_api_destination(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?;
    let mut d = hget(api, API_DESTINATIONS, name)
        .await?
        .ok_or_else(|| not_found(format!("An api-destination '{name}' does not exist.")))?;
    d["ApiDestinationArn"] = api_destination_arn(c, name).into();
    d["ApiDestinationState"] = "ACTIVE".into();
    Ok(d)
}

async fn list_stored(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    key: &str,
) -> Result<Value, ApiError> {
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let all = stored(api, key).await?;
    let items = all
        .into_iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, v)| {
            let view = if key == CONNECTIONS {
                json!({"Name": n, "ConnectionArn": connection_arn(c, &n), "ConnectionState": "AUTHORIZED", "AuthorizationType": v["AuthorizationType"], "CreationTime": v["CreationTime"], "LastModifiedTime": v["LastModifiedTime"]})
            } else {
                json!({"Name": n, "ApiDestinationArn": api_destination_arn(c, &n), "ApiDestinationState": "ACTIVE", "ConnectionArn": v["ConnectionArn"], "InvocationEndpoint": v["InvocationEndpoint"], "HttpMethod": v["HttpMethod"], "CreationTime": v["CreationTime"], "LastModifiedTime": v["LastModifiedTime"]})
            };
            (n, view)
        })
        .collect();
    let (items, next) = page(input, items)?;
    let field = if key == CONNECTIONS {
        "Connections"
    } else {
        "ApiDestinations"
    };
    Ok(with_token(json!({ field: items }), next))
}

async fn delete_stored(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
    key: &str,
) -> Result<Value, ApiError> {
    let name = input.required("Name")?;
    // Refused while targets use it, so no target is left calling what is gone.
    let (_, merged) = current(api).await?;
    let in_use = document::resources(&merged.top, Kind::Rule).any(|r| {
        r["targets"].as_array().into_iter().flatten().any(|t| {
            let d = t["labels"]["aws:api-destination"].as_str();
            if key == API_DESTINATIONS {
                d == Some(name)
            } else {
                false
            }
        })
    });
    if in_use {
        return Err(validation(format!(
            "{name} is used by targets; remove them first"
        )));
    }
    let removed: u64 = crate::bus::within(api.redis.clone().hdel(key, name))
        .await
        .map_err(|e| {
            aws(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                e.to_string(),
            )
        })?;
    if removed == 0 {
        return Err(not_found(format!("'{name}' does not exist.")));
    }
    let _ = c;
    Ok(json!({}))
}

/// Re-resolves every target made from an API destination (after a connection or API
/// destination changed), in one checked write.
async fn refresh_api_destination_targets(
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<(), ApiError> {
    let resolver = Targets::load(api).await?;
    edit(api, c, |merged| {
        let mut writes = Vec::new();
        for rule in document::resources(&merged.top, Kind::Rule) {
            let Some(targets) = rule["targets"].as_array() else {
                continue;
            };
            let mut changed = false;
            let mut list = Vec::with_capacity(targets.len());
            for t in targets {
                if t["labels"]["aws:api-destination"].is_string() {
                    let aws_form = aws_target(c, "", "", t);
                    let fresh = resolver.native(&aws_form, merged, c)?;
                    changed |= &fresh != t;
                    list.push(fresh);
                } else {
                    list.push(t.clone());
                }
            }
            if changed {
                let mut rule = rule.clone();
                rule["targets"] = Value::Array(list);
                if let Some(id) = Kind::Rule.id_of(&rule) {
                    writes.push((Kind::Rule, id, Some(rule)));
                }
            }
        }
        Ok(writes)
    })
    .await?;
    Ok(())
}

// ---- archives and replays ----

fn archive_arn(c: &Caller<'_>, name: &str) -> String {
    format!("arn:aws:events:{}:{}:archive/{name}", c.region, c.account)
}

fn replay_arn(c: &Caller<'_>, name: &str) -> String {
    format!("arn:aws:events:{}:{}:replay/{name}", c.region, c.account)
}

/// The resource after `KIND/` in `arn`, an ARN of this gateway (its region and account).
fn own_arn<'a>(
    c: &Caller<'_>,
    member: &str,
    arn: &'a str,
    kind: &str,
) -> Result<&'a str, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "events", region, account, resource] = parts[..] else {
        return Err(validation(format!(
            "Parameter {member} is not valid. Reason: Provided Arn is not in correct format."
        )));
    };
    let name = resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            validation(format!(
                "Parameter {member} is not valid. Reason: {arn} is not an ARN of an {kind}."
            ))
        })?;
    if region != c.region || account != c.account {
        return Err(validation(format!(
            "Parameter {member} is not valid. Reason: {arn} is not in this gateway's account {} and region {}.",
            c.account, c.region
        )));
    }
    Ok(name)
}

fn seconds(ms: u64) -> Value {
    (ms as f64 / 1000.0).into()
}

impl Input {
    /// A timestamp member (epoch seconds, as the SDKs send them in this protocol, or an
    /// RFC 3339 string), in ms.
    fn time_ms(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let invalid = || {
            validation(format!(
                "Parameter {name} is not valid. Reason: not a timestamp."
            ))
        };
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                let secs = n.as_f64().filter(|s| *s >= 0.0).ok_or_else(invalid)?;
                Ok(Some((secs * 1000.0).round() as u64))
            }
            Some(Value::String(s)) => {
                if let Ok(secs) = s.parse::<f64>() {
                    if secs >= 0.0 {
                        return Ok(Some((secs * 1000.0).round() as u64));
                    }
                }
                chrono::DateTime::parse_from_rfc3339(s)
                    .ok()
                    .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
                    .map(Some)
                    .ok_or_else(invalid)
            }
            Some(_) => Err(invalid()),
        }
    }

    fn retention_days(&self) -> Result<Option<u32>, ApiError> {
        match self.0.get("RetentionDays") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    validation("RetentionDays must be a whole number of days, 0 or more")
                }),
        }
    }

    /// `EventPattern` as JSON; `Some(None)` for an empty one (every event).
    fn event_pattern(&self) -> Result<Option<Option<Value>>, ApiError> {
        match self.str("EventPattern")? {
            None => Ok(None),
            Some(t) if t.trim().is_empty() => Ok(Some(None)),
            Some(text) => serde_json::from_str(text)
                .map(|p| Some(Some(p)))
                .map_err(|e| {
                    aws(
                        StatusCode::BAD_REQUEST,
                        "InvalidEventPatternException",
                        format!("Event pattern is not valid. Reason: {e}"),
                    )
                }),
        }
    }
}

fn archive_missing(name: &str) -> ApiError {
    not_found(format!("Archive {name} does not exist."))
}

fn replay_missing(name: &str) -> ApiError {
    not_found(format!("Replay {name} does not exist."))
}

/// Native archive and replay errors in AWS's words (the rest as [`to_aws`]).
fn archive_error(e: ApiError) -> ApiError {
    let pattern_at = e
        .field
        .as_deref()
        .and_then(|f| f.split_once(".pattern"))
        .map(|(_, at)| at.trim_start_matches('.').to_string());
    match e.error {
        "invalid_resource" if pattern_at.is_some() => {
            let at = pattern_at.unwrap_or_default();
            // The native message may start with the path in the configuration.
            let message = match e.message.split_once(": ") {
                Some((path, rest)) if path.contains("pattern") => rest.to_string(),
                _ => e.message.clone(),
            };
            aws(
                StatusCode::BAD_REQUEST,
                "InvalidEventPatternException",
                if at.is_empty() {
                    format!("Event pattern is not valid. Reason: {message}")
                } else {
                    format!("Event pattern is not valid. Reason: {at}: {message}")
                },
            )
        }
        "read_only" => validation(e.message),
        "exists" => aws(
            StatusCode::BAD_REQUEST,
            "ResourceAlreadyExistsException",
            e.message,
        ),
        _ => e,
    }
}

fn redis_unavailable(e: impl std::fmt::Display) -> ApiError {
    aws(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        e.to_string(),
    )
}

/// When each archive was made: by CreateArchive, else (an archive of the file or of
/// `/api/v1`) the time of its oldest segment's first event, else 0.
async fn creation_times(
    api: &ResourceApi,
    archives: &[(String, Value)],
) -> Result<BTreeMap<String, Value>, ApiError> {
    let made: BTreeMap<String, f64> =
        crate::bus::within(api.redis.clone().hgetall(ARCHIVES_CREATED))
            .await
            .map_err(redis_unavailable)?;
    let mut out = BTreeMap::new();
    for (bus, spec) in archives {
        let name = spec["name"].as_str().unwrap_or_default();
        let time = match made.get(name) {
            Some(secs) => Value::from(*secs),
            None => {
                let first: Vec<String> = crate::bus::within(
                    redis::cmd("ZRANGE")
                        .arg(crate::archive::segments_key(bus, name))
                        .arg(0)
                        .arg(0)
                        .query_async(&mut api.redis.clone()),
                )
                .await
                .map_err(redis_unavailable)?;
                seconds(
                    first
                        .first()
                        .and_then(|m| crate::archive::member_parts(m))
                        .map_or(0, |(first, _, _)| first),
                )
            }
        };
        out.insert(name.to_string(), time);
    }
    Ok(out)
}

/// DescribeArchive's answer (ListArchives shows a part of it).
async fn archive_view(
    api: &ResourceApi,
    c: &Caller<'_>,
    bus: &str,
    spec: &Value,
    created: &Value,
) -> Value {
    let name = spec["name"].as_str().unwrap_or_default();
    let held = crate::control::replays::archive_view(api, bus, spec).await;
    let mut out = json!({
        "ArchiveArn": archive_arn(c, name),
        "ArchiveName": name,
        "EventSourceArn": bus_arn(c, bus),
        "State": "ENABLED",
        "RetentionDays": held["retention_days"],
        "SizeBytes": held["bytes"],
        "EventCount": held["events"],
        "CreationTime": created,
    });
    if let Some(d) = spec["description"].as_str() {
        out["Description"] = d.into();
    }
    if let Some(p) = spec.get("pattern").filter(|p| !p.is_null()) {
        out["EventPattern"] = p.to_string().into();
    }
    out
}

async fn create_archive(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ArchiveName")?.to_string();
    check_name("ArchiveName", &name, 48)?;
    let source = input.required("EventSourceArn")?;
    let bus = own_arn(c, "EventSourceArn", source, "event-bus")?.to_string();
    let mut spec = json!({"dialect": "aws"});
    if let Some(Some(pattern)) = input.event_pattern()? {
        spec["pattern"] = pattern;
    }
    if let Some(d) = input.str("Description")? {
        spec["description"] = d.into();
    }
    if let Some(days) = input.retention_days()? {
        spec["retention_days"] = days.into();
    }
    let (_, merged) = current(api).await?;
    if crate::control::replays::find_archive(&merged, &name).is_some() {
        return Err(aws(
            StatusCode::BAD_REQUEST,
            "ResourceAlreadyExistsException",
            format!("Archive {name} already exists."),
        ));
    }
    if merged.get(Kind::Bus, &bus).is_none() {
        return Err(not_found(format!("Event bus {bus} does not exist.")));
    }
    crate::control::replays::write_archive(api, &c.actor, &bus, &name, spec)
        .await
        .map_err(archive_error)?;
    let created = now_seconds();
    crate::bus::within(
        api.redis
            .clone()
            .hset::<_, _, _, ()>(ARCHIVES_CREATED, &name, created),
    )
    .await
    .map_err(redis_unavailable)?;
    Ok(json!({
        "ArchiveArn": archive_arn(c, &name),
        "State": "ENABLED",
        "CreationTime": created,
    }))
}

/// AWS's names: letters, digits, `.`, `-`, `_`, at most `max` characters.
fn check_name(member: &str, name: &str, max: usize) -> Result<(), ApiError> {
    if name.len() > max {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            lower_first(member)
        )));
    }
    crate::config::check_name(name).map_err(|m| {
        validation(format!(
            "1 validation error detected: Value '{name}' at '{}' failed to satisfy constraint: {m}",
            lower_first(member)
        ))
    })
}

async fn describe_archive(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ArchiveName")?;
    let (_, merged) = current(api).await?;
    let found = crate::control::replays::find_archive(&merged, name)
        .ok_or_else(|| archive_missing(name))?;
    let created = creation_times(api, std::slice::from_ref(&found)).await?;
    Ok(archive_view(api, c, &found.0, &found.1, &created[name]).await)
}

async fn list_archives(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let bus = input
        .str("EventSourceArn")?
        .map(|arn| own_arn(c, "EventSourceArn", arn, "event-bus"))
        .transpose()?;
    // Every archive is ENABLED.
    let state = input.str("State")?;
    let (_, merged) = current(api).await?;
    let archives: Vec<(String, Value)> = crate::control::replays::archives(&merged)
        .into_iter()
        .filter(|(b, a)| {
            bus.is_none_or(|bus| b == bus)
                && state.is_none_or(|s| s == "ENABLED")
                && a["name"].as_str().is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    let created = creation_times(api, &archives).await?;
    let mut items = Vec::with_capacity(archives.len());
    for (bus, spec) in &archives {
        let name = spec["name"].as_str().unwrap_or_default().to_string();
        let full = archive_view(api, c, bus, spec, &created[&name]).await;
        let mut view = json!({});
        for key in [
            "ArchiveName",
            "EventSourceArn",
            "State",
            "RetentionDays",
            "SizeBytes",
            "EventCount",
            "CreationTime",
        ] {
            view[key] = full[key].clone();
        }
        items.push((name, view));
    }
    let (items, next) = page(input, items)?;
    Ok(with_token(json!({"Archives": items}), next))
}

async fn update_archive(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ArchiveName")?.to_string();
    let pattern = input.event_pattern()?;
    let description = input.str("Description")?;
    let retention = input.retention_days()?;
    let (_, merged) = current(api).await?;
    let (bus, mut spec) = crate::control::replays::find_archive(&merged, &name)
        .ok_or_else(|| archive_missing(&name))?;
    let map = spec.as_object_mut().ok_or_else(|| archive_missing(&name))?;
    match pattern {
        None => {}
        Some(None) => {
            map.remove("pattern");
        }
        Some(Some(p)) => {
            map.insert("pattern".into(), p);
            map.insert("dialect".into(), "aws".into());
        }
    }
    if let Some(d) = description {
        map.insert("description".into(), d.into());
    }
    if let Some(days) = retention {
        map.insert("retention_days".into(), days.into());
    }
    crate::control::replays::write_archive(api, &c.actor, &bus, &name, spec)
        .await
        .map_err(archive_error)?;
    let found = (bus, json!({"name": name}));
    let created = creation_times(api, std::slice::from_ref(&found)).await?;
    Ok(json!({
        "ArchiveArn": archive_arn(c, &name),
        "State": "ENABLED",
        "CreationTime": created[&name],
    }))
}

async fn delete_archive(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ArchiveName")?;
    let (_, merged) = current(api).await?;
    if crate::control::replays::find_archive(&merged, name).is_none() {
        return Err(archive_missing(name));
    }
    crate::control::replays::remove_archive(api, &c.actor, name)
        .await
        .map_err(archive_error)?;
    crate::bus::within(api.redis.clone().hdel::<_, _, ()>(ARCHIVES_CREATED, name))
        .await
        .map_err(redis_unavailable)?;
    Ok(json!({}))
}

/// The name of a rule of `bus` from its ARN (`…:rule/NAME` on the default bus,
/// `…:rule/BUS/NAME` on the others).
fn rule_of_arn(c: &Caller<'_>, bus: &str, arn: &str) -> Result<String, ApiError> {
    let resource = own_arn(c, "Destination.FilterArns", arn, "rule")?;
    let (of, name) = resource
        .split_once('/')
        .unwrap_or((c.default_bus, resource));
    if of != bus {
        return Err(validation(format!(
            "Parameter Destination.FilterArns is not valid. Reason: rule {arn} is not a rule of event bus {bus}, the archive's."
        )));
    }
    Ok(name.to_string())
}

/// DescribeReplay's answer (ListReplays shows a part of it).
fn replay_view(c: &Caller<'_>, r: &crate::replay::Replay) -> Value {
    let s = &r.spec;
    let mut out = json!({
        "ReplayName": s.name,
        "ReplayArn": replay_arn(c, &s.name),
        "State": r.state.as_str(),
        // A replay made natively from the bus's retention has no archive.
        "EventSourceArn": s.archive.as_deref().map_or_else(|| bus_arn(c, &s.bus), |a| archive_arn(c, a)),
        "Destination": {"Arn": bus_arn(c, &s.bus)},
        "EventStartTime": seconds(s.since_ms),
        "EventEndTime": seconds(s.until_ms),
        "ReplayStartTime": seconds(r.started_ms),
    });
    if !s.rules.is_empty() {
        out["Destination"]["FilterArns"] = s
            .rules
            .iter()
            .map(|rule| Value::from(rule_arn(c, &s.bus, rule)))
            .collect();
    }
    if let Some(d) = &s.description {
        out["Description"] = d.clone().into();
    }
    if let Some(reason) = &r.reason {
        out["StateReason"] = reason.clone().into();
    }
    if let Some(last) = r.last_ms {
        out["EventLastReplayedTime"] = seconds(last);
    }
    if let Some(ended) = r.ended_ms {
        out["ReplayEndTime"] = seconds(ended);
    }
    out
}

async fn start_replay(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let name = input.required("ReplayName")?.to_string();
    check_name("ReplayName", &name, 64)?;
    let source = input.required("EventSourceArn")?;
    let archive = own_arn(c, "EventSourceArn", source, "archive")?.to_string();
    let missing = |member: &str| {
        validation(format!("1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null", lower_first(member)))
    };
    let since_ms = input
        .time_ms("EventStartTime")?
        .ok_or_else(|| missing("EventStartTime"))?;
    let until_ms = input
        .time_ms("EventEndTime")?
        .ok_or_else(|| missing("EventEndTime"))?;
    if since_ms > until_ms {
        return Err(validation(
            "Parameter EventStartTime is not valid. Reason: EventStartTime must be before EventEndTime.",
        ));
    }
    let destination = input
        .0
        .get("Destination")
        .filter(|d| d.is_object())
        .ok_or_else(|| missing("Destination"))?;
    let dest_arn = destination["Arn"]
        .as_str()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("Destination.Arn"))?;
    let bus = own_arn(c, "Destination.Arn", dest_arn, "event-bus")?.to_string();
    let (_, merged) = current(api).await?;
    let (archive_bus, _) = crate::control::replays::find_archive(&merged, &archive)
        .ok_or_else(|| archive_missing(&archive))?;
    if archive_bus != bus {
        return Err(validation(format!(
            "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted: archive {archive} is of event bus {archive_bus}."
        )));
    }
    let rules = crate::compat::strings(destination.get("FilterArns"))
        .iter()
        .map(|arn| rule_of_arn(c, &bus, arn))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = crate::replay::ReplaySpec {
        name,
        bus,
        archive: Some(archive),
        since_ms,
        until_ms,
        rules,
        rate: None,
        description: input.str("Description")?.map(String::from),
    };
    let replay = crate::control::replays::make_replay(api, spec)
        .await
        .map_err(archive_error)?;
    let mut out = json!({
        "ReplayArn": replay_arn(c, &replay.spec.name),
        "State": replay.state.as_str(),
        "ReplayStartTime": seconds(replay.started_ms),
    });
    if let Some(reason) = &replay.reason {
        out["StateReason"] = reason.clone().into();
    }
    Ok(out)
}

async fn describe_replay(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ReplayName")?;
    let replay = crate::replay::get(&mut api.redis.clone(), name)
        .await
        .map_err(redis_unavailable)?
        .ok_or_else(|| replay_missing(name))?;
    Ok(replay_view(c, &replay))
}

async fn list_replays(input: &Input, api: &ResourceApi, c: &Caller<'_>) -> Result<Value, ApiError> {
    let prefix = input.str("NamePrefix")?.unwrap_or("");
    let state = input.str("State")?;
    let source = input.str("EventSourceArn")?;
    let replays = crate::replay::list(&mut api.redis.clone())
        .await
        .map_err(redis_unavailable)?;
    let items = replays
        .iter()
        .filter(|r| r.spec.name.starts_with(prefix))
        .filter(|r| state.is_none_or(|s| s == r.state.as_str()))
        .map(|r| (r.spec.name.clone(), replay_view(c, r)))
        .filter(|(_, v)| source.is_none_or(|s| v["EventSourceArn"] == s))
        .map(|(name, full)| {
            let mut view = json!({});
            for key in [
                "ReplayName",
                "EventSourceArn",
                "State",
                "StateReason",
                "EventStartTime",
                "EventEndTime",
                "EventLastReplayedTime",
                "ReplayStartTime",
                "ReplayEndTime",
            ] {
                if let Some(v) = full.get(key) {
                    view[key] = v.clone();
                }
            }
            (name, view)
        })
        .collect();
    let (items, next) = page(input, items)?;
    Ok(with_token(json!({"Replays": items}), next))
}

async fn cancel_replay(
    input: &Input,
    api: &ResourceApi,
    c: &Caller<'_>,
) -> Result<Value, ApiError> {
    let name = input.required("ReplayName")?;
    let state = crate::replay::cancel(&mut api.redis.clone(), name)
        .await
        .map_err(redis_unavailable)?
        .ok_or_else(|| replay_missing(name))?;
    if state.is_final() {
        return Err(aws(
            StatusCode::BAD_REQUEST,
            "IllegalStatusException",
            format!(
                "Replay {name} is not in a valid state for this operation: it has ended ({}).",
                state.as_str()
            ),
        ));
    }
    Ok(json!({
        "ReplayArn": replay_arn(c, name),
        "State": "CANCELLING",
    }))
}
