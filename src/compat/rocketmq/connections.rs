//! RocketMQ-EventBridge's connections and API destinations (`POST /connection/*`,
//! `/api-destination/*`, its `ConnectionController` and `ApiDestinationController`),
//! stored beside the resources (`sluice:{control}:rocketmq:connections`,
//! `…:api-destinations`), and the target class that uses them.
//!
//! Its own repository has no target that calls an API destination, so the class is
//! Sluice's: `className: "api-destination"` with `config.apiDestinationName` becomes an
//! `http` target with the destination's endpoint, method and rate limit and the
//! connection's auth (`API_KEY_AUTH`: the key header, `BASIC_AUTH`: basic
//! `Authorization`, `OAUTH_AUTH`: the target's `oauth`), plus its
//! `invocationHttpParameters` headers and query. Updating a connection or a destination
//! rewrites the targets that use it.

use std::collections::BTreeMap;

use redis::AsyncCommands;
use serde_json::{json, Value};

use super::{edit, err, member, redis_err, Input};
use crate::compat::http_api::{self, Auth};
use crate::control::document;
use crate::control::resources::ResourceApi;
use crate::control::store::Kind;
use crate::ingress::error::ApiError;

const CONNECTIONS: &str = "sluice:{control}:rocketmq:connections";
const DESTINATIONS: &str = "sluice:{control}:rocketmq:api-destinations";
/// The label of a target made from an API destination: the destination's name.
pub(super) const DESTINATION_LABEL: &str = "rocketmq:api-destination";
const DEFAULT_PAGE: usize = 10;
const MASK: &str = "**";

async fn all(api: &ResourceApi, key: &str) -> Result<BTreeMap<String, Value>, ApiError> {
    let raw: BTreeMap<String, String> = crate::bus::within(api.redis.clone().hgetall(key))
        .await
        .map_err(redis_err)?;
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?)))
        .collect())
}

async fn one(api: &ResourceApi, key: &str, name: &str) -> Result<Option<Value>, ApiError> {
    let raw: Option<String> = crate::bus::within(api.redis.clone().hget(key, name))
        .await
        .map_err(redis_err)?;
    Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
}

async fn store(api: &ResourceApi, key: &str, name: &str, value: &Value) -> Result<(), ApiError> {
    crate::bus::within(
        api.redis
            .clone()
            .hset::<_, _, _, ()>(key, name, value.to_string()),
    )
    .await
    .map_err(redis_err)
}

async fn remove(api: &ResourceApi, key: &str, name: &str) -> Result<(), ApiError> {
    crate::bus::within(api.redis.clone().hdel::<_, _, ()>(key, name))
        .await
        .map_err(redis_err)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Its name rule: 2-127 characters, letters, digits, `_` and `-`, not starting with
/// `_` or `-`.
fn name<'a>(input: &'a Input, field: &str, what: &str) -> Result<&'a str, ApiError> {
    let n = input
        .str(field)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| err("RequestParameterInvalid", format!("[{field} is blank.]")))?;
    let valid = (2..=127).contains(&n.len())
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(err(
            "RequestParameterInvalid",
            format!("[The {what} name is invalid! Only letters a~z or A~Z, numbers 0~9, underscore (_) and dash (-) are supported.]"),
        ));
    }
    Ok(n)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    member(v, key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn check_length(value: Option<&str>, code: &'static str, message: &str) -> Result<(), ApiError> {
    match value {
        Some(v) if v.len() > 127 => Err(err(code, message)),
        _ => Ok(()),
    }
}

fn check_network(n: Option<&Value>) -> Result<(), ApiError> {
    let n = n.ok_or_else(|| err("NetworkParametersIsNull", "NetworkParameters is null!"))?;
    match text(n, "NetworkType") {
        None => Err(err("NetworkTypeIsBlank", "NetworkType is blank!")),
        Some("PublicNetwork") => Ok(()),
        Some("PrivateNetwork") => {
            if ["VpcId", "VswitcheId", "SecurityGroupId"]
                .iter()
                .any(|k| text(n, k).is_none())
            {
                return Err(err("NetworkParametersIsEmpty", "Network required parameter is empty!"));
            }
            Ok(())
        }
        Some(_) => Err(err(
            "ConnectionNetworkParametersInvalid",
            "The network parameters of Connection is invalid! Please see the documentation for details.",
        )),
    }
}

/// A blank `new.object.field` takes the value of `old.object.field` (both at one level).
fn keep_secret(new: &mut Value, old: Option<&Value>, object: &str, field: &str) {
    let held = old
        .and_then(|o| member(o, object))
        .and_then(|o| text(o, field))
        .map(String::from);
    if let (Some(held), Some(obj)) = (held, new.get_mut(object).and_then(Value::as_object_mut)) {
        if obj
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            obj.insert(field.into(), held.into());
        }
    }
}

/// Checks `authParameters`; blank secrets take the value of `old` (an update keeps them).
fn check_auth(auth: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    let kind = text(auth, "AuthorizationType").map(String::from);
    let keep = keep_secret;
    match kind.as_deref() {
        Some("API_KEY_AUTH") => {
            keep(auth, old, "apiKeyAuthParameters", "apiKeyValue");
            let p = member(auth, "ApiKeyAuthParameters")
                .cloned()
                .unwrap_or(Value::Null);
            if text(&p, "ApiKeyName").is_none() || text(&p, "ApiKeyValue").is_none() {
                return Err(err("ApiKeyRequiredParameterIsEmpty", "Api Key required parameters are empty, the required parameters are apiKeyName and apiKeyValue!"));
            }
            check_length(
                text(&p, "ApiKeyName"),
                "ApiKeyNameLengthExceed",
                "Api key name length cannot exceed 127!",
            )?;
            check_length(
                text(&p, "ApiKeyValue"),
                "ApiKeyValueLengthExceed",
                "Api key value length cannot exceed 127!",
            )?;
        }
        Some("BASIC_AUTH") => {
            keep(auth, old, "basicAuthParameters", "password");
            let p = member(auth, "BasicAuthParameters")
                .cloned()
                .unwrap_or(Value::Null);
            if text(&p, "Username").is_none() || text(&p, "Password").is_none() {
                return Err(err("BasicRequiredParameterIsEmpty", "Basic required parameters are empty, the required parameters are username and password!"));
            }
            check_length(
                text(&p, "Username"),
                "BasicUserNameLengthExceed",
                "Basic username length cannot exceed 127!",
            )?;
            check_length(
                text(&p, "Password"),
                "BasicPassWordLengthExceed",
                "Basic password length cannot exceed 127!",
            )?;
        }
        Some("OAUTH_AUTH") => {
            let old_oauth = old.and_then(|o| member(o, "OauthParameters")).cloned();
            if let Some(o) = auth.get_mut("oauthParameters") {
                keep(o, old_oauth.as_ref(), "clientParameters", "clientSecret");
            }
            let o = member(auth, "OauthParameters")
                .cloned()
                .unwrap_or(Value::Null);
            if text(&o, "AuthorizationEndpoint").is_none() || text(&o, "HttpMethod").is_none() {
                return Err(err("OAuthRequiredParameterIsEmpty", "OAuth required parameters are empty, the required parameters are authorizationEndpoint and httpMethod!"));
            }
            check_length(
                text(&o, "AuthorizationEndpoint"),
                "AuthorizationEndpointLengthExceed",
                "Authorization endpoint length cannot exceed 127!",
            )?;
            let client = member(&o, "ClientParameters")
                .cloned()
                .unwrap_or(Value::Null);
            if text(&client, "ClientSecret").is_some_and(crate::compat::is_reference) {
                return Err(err(
                    "RequestParameterInvalid",
                    "[clientSecret must be the secret itself, not an env:/file: reference]",
                ));
            }
            check_length(
                text(&client, "ClientID"),
                "ClientIDLengthExceed",
                "ClientID length cannot exceed 127!",
            )?;
            check_length(
                text(&client, "ClientSecret"),
                "ClientSecretLengthExceed",
                "ClientSecret length cannot exceed 127!",
            )?;
            let http = member(&o, "OauthHttpParameters")
                .cloned()
                .unwrap_or(Value::Null);
            let empty = [
                "BodyParameters",
                "HeaderParameters",
                "QueryStringParameters",
            ]
            .iter()
            .all(|k| {
                member(&http, k)
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            });
            if empty {
                return Err(err(
                    "OauthHttpParametersEmpty",
                    "OauthHttpParameters is Empty.",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A connection as `getConnection` answers it: every secret masked (the API key value,
/// the password, the client secret, and parameters marked `isValueSecret`).
fn masked(name: &str, c: &Value) -> Value {
    let mut auth = c["authParameters"].clone();
    for pointer in [
        "/apiKeyAuthParameters/apiKeyValue",
        "/basicAuthParameters/password",
        "/oauthParameters/clientParameters/clientSecret",
    ] {
        if let Some(v) = auth.pointer_mut(pointer).filter(|v| v.is_string()) {
            *v = MASK.into();
        }
    }
    for params in [
        "/invocationHttpParameters",
        "/oauthParameters/oauthHttpParameters",
    ] {
        for list in [
            "bodyParameters",
            "headerParameters",
            "queryStringParameters",
        ] {
            if let Some(items) = auth
                .pointer_mut(&format!("{params}/{list}"))
                .and_then(Value::as_array_mut)
            {
                for p in items {
                    let secret = matches!(&p["isValueSecret"], Value::Bool(true))
                        || p["isValueSecret"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case("true"));
                    if secret {
                        p["value"] = MASK.into();
                    }
                }
            }
        }
    }
    json!({
        "connectionName": name,
        "description": c["description"],
        "networkParameters": c["networkParameters"],
        "authParameters": auth,
        "gmtCreate": c["gmtCreate"],
    })
}

/// Normalises a request object to the camelCase keys its API writes.
fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    (key, camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

fn connection_missing(name: &str) -> ApiError {
    err(
        "ConnectionNotExist",
        format!("The Connection [{name}] not existed!"),
    )
}

fn destination_missing(name: &str) -> ApiError {
    err(
        "ApiDestinationNotExist",
        format!("The api-destination [{name}] not existed!"),
    )
}

pub(super) async fn put_connection(
    input: &Input,
    api: &ResourceApi,
    actor: &str,
    create: bool,
) -> Result<Value, ApiError> {
    let name = name(input, "ConnectionName", "Connection")?.to_string();
    let old = one(api, CONNECTIONS, &name).await?;
    match (&old, create) {
        (Some(_), true) => {
            return Err(err(
                "ConnectionAlreadyExist",
                format!("The Connection [{name}]  already existed!"),
            ))
        }
        (None, false) => return Err(connection_missing(&name)),
        _ => {}
    }
    let network = input.get("NetworkParameters").map(camel);
    check_network(network.as_ref())?;
    let mut auth = input
        .get("AuthParameters")
        .map(camel)
        .unwrap_or(Value::Null);
    if auth.is_object() {
        check_auth(&mut auth, old.as_ref().map(|o| &o["authParameters"]))?;
    }
    let description = match input.str("Description") {
        Some(d) if d.len() > 255 => {
            return Err(err(
                "RequestParameterInvalid",
                "[The description length cannot exceed 255.]",
            ))
        }
        Some(d) => Value::from(d),
        None => old
            .as_ref()
            .map_or(Value::Null, |o| o["description"].clone()),
    };
    let c = json!({
        "description": description,
        "networkParameters": network,
        "authParameters": auth,
        "gmtCreate": old.as_ref().map_or_else(|| now_ms().into(), |o| o["gmtCreate"].clone()),
    });
    if !create {
        // The targets first: a connection they cannot use is refused, and not stored.
        let mut known = Destinations::load(api).await?;
        known.connections.insert(name.clone(), c.clone());
        refresh_targets(api, actor, &known).await?;
    }
    store(api, CONNECTIONS, &name, &c).await?;
    Ok(if create {
        json!({"connectionName": name})
    } else {
        json!({})
    })
}

pub(super) async fn delete_connection(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let name = name(input, "ConnectionName", "Connection")?.to_string();
    if one(api, CONNECTIONS, &name).await?.is_none() {
        return Err(connection_missing(&name));
    }
    if all(api, DESTINATIONS)
        .await?
        .values()
        .any(|d| d["connectionName"] == name.as_str())
    {
        return Err(err(
            "ConnectionBoundApiDestination",
            format!("The Connection [{name}] has bound API Destination, deletion is not allowed."),
        ));
    }
    remove(api, CONNECTIONS, &name).await?;
    Ok(json!({}))
}

/// `getConnection` (secrets masked) or `selectOneConnection` (as stored).
pub(super) async fn get_connection(
    input: &Input,
    api: &ResourceApi,
    masking: bool,
) -> Result<Value, ApiError> {
    let name = name(input, "ConnectionName", "Connection")?.to_string();
    let c = one(api, CONNECTIONS, &name)
        .await?
        .ok_or_else(|| connection_missing(&name))?;
    // Secrets are write-only here: `selectOneConnection`, its unmasked internal read,
    // is answered masked too.
    let _ = masking;
    Ok(json!({ "connections": [masked(&name, &c)] }))
}

/// Its offset paging: `nextToken` is the offset as text, `null` on the last page.
fn page(input: &Input, items: Vec<Value>) -> Result<(Vec<Value>, Value, usize, usize), ApiError> {
    let total = items.len();
    let max = match input.get("MaxResults").and_then(Value::as_u64) {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => n.min(100) as usize,
    };
    let offset: usize = match input.str("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse().map_err(|_| {
            err(
                "RequestParameterInvalid",
                "[nextToken must be the number a previous page gave]",
            )
        })?,
    };
    let next = if offset.saturating_add(max) < total {
        Value::from((offset + max).to_string())
    } else {
        Value::Null
    };
    Ok((
        items.into_iter().skip(offset).take(max).collect(),
        next,
        total,
        max,
    ))
}

pub(super) async fn list_connections(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let prefix = input.str("ConnectionNamePrefix").unwrap_or_default();
    let items = all(api, CONNECTIONS)
        .await?
        .iter()
        .filter(|(n, _)| n.contains(prefix))
        .map(|(n, c)| masked(n, c))
        .collect();
    let (connections, next, total, max) = page(input, items)?;
    Ok(json!({"connections": connections, "nextToken": next, "total": total, "maxResults": max}))
}

pub(super) fn list_enums() -> Value {
    json!({
        "authorizationTypeEnums": ["API_KEY_AUTH", "BASIC_AUTH", "OAUTH_AUTH"],
        "networkTypeEnums": ["PUBLIC_NETWORK", "PRIVATE_NETWORK"],
    })
}

fn destination_view(name: &str, d: &Value) -> Value {
    json!({
        "apiDestinationName": name,
        "connectionName": d["connectionName"],
        "description": d["description"],
        "httpApiParameters": d["httpApiParameters"],
        "invocationRateLimitPerSecond": d["invocationRateLimitPerSecond"],
        "gmtCreate": d["gmtCreate"],
    })
}

pub(super) async fn put_destination(
    input: &Input,
    api: &ResourceApi,
    actor: &str,
    create: bool,
) -> Result<Value, ApiError> {
    let name = name(input, "ApiDestinationName", "ApiDestination")?.to_string();
    let old = one(api, DESTINATIONS, &name).await?;
    match (&old, create) {
        (Some(_), true) => {
            return Err(err(
                "ApiDestinationAlreadyExist",
                format!("The api-destination [{name}]  already existed!"),
            ))
        }
        (None, false) => return Err(destination_missing(&name)),
        _ => {}
    }
    let old_http = old.as_ref().map(|o| o["httpApiParameters"].clone());
    let mut http = match (input.get("HttpApiParameters").map(camel), &old_http) {
        (Some(h), _) => h,
        (None, Some(o)) => o.clone(),
        (None, None) => return Err(err("HttpApiParametersIsNull", "HttpApiParameters is null!")),
    };
    for field in ["endpoint", "method"] {
        let blank = http[field].as_str().is_none_or(str::is_empty);
        if let (true, Some(o)) = (blank, &old_http) {
            http[field] = o[field].clone();
        }
    }
    let endpoint = http["endpoint"].as_str().unwrap_or_default();
    if endpoint.is_empty() {
        return Err(err("EndpointIsBlank", "Endpoint is blank!"));
    }
    if http["method"].as_str().is_none_or(str::is_empty) {
        return Err(err("Method", "Method is blank!"));
    }
    if endpoint.len() > 127 {
        return Err(err(
            "EndpointLengthExceed",
            "Endpoint length cannot exceed 127!",
        ));
    }
    let connection = match input.str("ConnectionName") {
        Some(c) => c.to_string(),
        None if !create => old
            .as_ref()
            .and_then(|o| o["connectionName"].as_str())
            .unwrap_or_default()
            .to_string(),
        None => return Err(err("RequestParameterInvalid", "[ConnectionName is blank.]")),
    };
    if one(api, CONNECTIONS, &connection).await?.is_none() {
        return Err(connection_missing(&connection));
    }
    let keep = |field: &str, new: Option<&Value>| match (new, &old) {
        (Some(v), _) => v.clone(),
        (None, Some(o)) => o[field].clone(),
        (None, None) => Value::Null,
    };
    let d = json!({
        "connectionName": connection,
        "description": keep("description", input.get("Description")),
        "httpApiParameters": http,
        "invocationRateLimitPerSecond": keep("invocationRateLimitPerSecond", input.get("InvocationRateLimitPerSecond")),
        "gmtCreate": old.as_ref().map_or_else(|| now_ms().into(), |o| o["gmtCreate"].clone()),
    });
    if !create {
        let mut known = Destinations::load(api).await?;
        known.destinations.insert(name.clone(), d.clone());
        refresh_targets(api, actor, &known).await?;
    }
    store(api, DESTINATIONS, &name, &d).await?;
    Ok(if create {
        json!({"apiDestinationName": name})
    } else {
        json!({})
    })
}

pub(super) async fn get_destination(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let name = name(input, "ApiDestinationName", "ApiDestination")?.to_string();
    let d = one(api, DESTINATIONS, &name)
        .await?
        .ok_or_else(|| destination_missing(&name))?;
    Ok(destination_view(&name, &d))
}

pub(super) async fn delete_destination(
    input: &Input,
    api: &ResourceApi,
) -> Result<Value, ApiError> {
    let name = name(input, "ApiDestinationName", "ApiDestination")?.to_string();
    if one(api, DESTINATIONS, &name).await?.is_none() {
        return Err(destination_missing(&name));
    }
    remove(api, DESTINATIONS, &name).await?;
    Ok(json!({}))
}

pub(super) async fn list_destinations(input: &Input, api: &ResourceApi) -> Result<Value, ApiError> {
    let prefix = input.str("ApiDestinationNamePrefix").unwrap_or_default();
    let connection = input.str("ConnectionName");
    let items = all(api, DESTINATIONS)
        .await?
        .iter()
        .filter(|(n, d)| n.contains(prefix) && connection.is_none_or(|c| d["connectionName"] == c))
        .map(|(n, d)| destination_view(n, d))
        .collect();
    let (destinations, next, total, max) = page(input, items)?;
    Ok(
        json!({"apiDestinations": destinations, "nextToken": next, "total": total, "maxResults": max}),
    )
}

/// The connections and API destinations, to build `api-destination` targets from.
pub(super) struct Destinations {
    connections: BTreeMap<String, Value>,
    destinations: BTreeMap<String, Value>,
}

impl Destinations {
    pub(super) async fn load(api: &ResourceApi) -> Result<Destinations, ApiError> {
        Ok(Destinations {
            connections: all(api, CONNECTIONS).await?,
            destinations: all(api, DESTINATIONS).await?,
        })
    }

    /// The `http` target of the API destination `name`.
    pub(super) fn target(&self, name: &str) -> Result<Value, ApiError> {
        let d = self
            .destinations
            .get(name)
            .ok_or_else(|| destination_missing(name))?;
        let connection = d["connectionName"].as_str().unwrap_or_default();
        let c = self
            .connections
            .get(connection)
            .ok_or_else(|| connection_missing(connection))?;
        let http = &d["httpApiParameters"];
        let params = &c["authParameters"];
        let auth = match params["authorizationType"].as_str() {
            Some("API_KEY_AUTH") => Auth::ApiKey,
            Some("BASIC_AUTH") => Auth::Basic,
            Some("OAUTH_AUTH") => Auth::OAuthClientCredentials,
            _ => Auth::None,
        };
        let target = http_api::target(
            &http["endpoint"],
            http["method"].as_str().unwrap_or("POST"),
            auth,
            &http_api::pascal(params),
            d["invocationRateLimitPerSecond"].as_u64(),
        );
        Ok(target)
    }
}

/// Rewrites every target made from an API destination (after a connection or
/// destination changed).
async fn refresh_targets(
    api: &ResourceApi,
    actor: &str,
    known: &Destinations,
) -> Result<(), ApiError> {
    edit(api, actor, |merged| {
        let mut writes = Vec::new();
        for rule in document::resources(&merged.top, Kind::Rule) {
            let Some(id) = Kind::Rule.id_of(rule) else {
                continue;
            };
            let mut rule = rule.clone();
            let mut changed = false;
            for t in rule["targets"].as_array_mut().into_iter().flatten() {
                let Some(dest) = t["labels"][DESTINATION_LABEL].as_str().map(String::from) else {
                    continue;
                };
                let Ok(mut fresh) = known.target(&dest) else {
                    continue;
                };
                for keep in ["name", "labels", "transform", "retry"] {
                    if let Some(v) = t.get(keep) {
                        fresh[keep] = v.clone();
                    }
                }
                *t = fresh;
                changed = true;
            }
            if changed {
                writes.push((Kind::Rule, id, Some(rule)));
            }
        }
        Ok(writes)
    })
    .await?;
    Ok(())
}
