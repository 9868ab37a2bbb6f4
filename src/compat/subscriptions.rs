//! The CloudEvents Subscriptions API (cloudevents/spec `subscriptions/spec.md` and
//! `subscriptions-openapi.yaml`, working draft 0.1, the revision whose OpenAPI reads
//! `version: 0.2-WIP`): `/subscriptions` create, list, retrieve, update and delete, as a
//! facade over the native control plane.
//!
//! A subscription is a rule with one `http` target named `sink`:
//! `types` and `source` become the rule's `pattern` (`{"type": [...], "source": [...]}`),
//! `filters` its native `filters` (the same dialects: exact, prefix, suffix, all, any,
//! not, sql), `protocolsettings` the target's `method` and `headers`, `sinkcredential`
//! an `Authorization` header. The subscription's id is the rule's name and sits in the
//! rule's label `cloudevents:subscription`; the bus comes from `config.bus` (or is the
//! only bus there is). Every answer is read back from the rule, so an edit through
//! `/api/v1` shows here. Authorization is the control API's.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::control::document::{self, Merged};
use crate::control::resources::{current, ResourceApi};
use crate::control::store::Kind;
use crate::ingress::error::ApiError;

/// The rule label that marks a rule as a subscription (its value: the id).
const LABEL: &str = "cloudevents:subscription";
/// The label that remembers which `sinkcredential` type made the Authorization header.
const CREDENTIAL_LABEL: &str = "cloudevents:credentialtype";
const SINK_TARGET: &str = "sink";
const PROTOCOLS: [&str; 6] = ["HTTP", "MQTT3", "MQTT5", "AMQP", "NATS", "KAFKA"];

/// Routes inside the `/subscriptions` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .route(
                web::method(actix_web::http::Method::OPTIONS).to(|| features("GET,POST,OPTIONS")),
            ),
    )
    .service(
        web::resource("/{id}")
            .route(web::get().to(retrieve))
            .route(web::put().to(update))
            .route(web::delete().to(delete))
            .route(
                web::method(actix_web::http::Method::OPTIONS)
                    .to(|| features("GET,PUT,DELETE,OPTIONS")),
            ),
    );
}

async fn features(allow: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ALLOW, allow))
        .finish()
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_subscription",
        format!("{field}: {message}"),
    )
    .field(field)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no subscription {id:?}"),
    )
    .field("id")
}

/// The subscription a request asks for, checked field by field.
struct Request {
    bus: Option<String>,
    sink: String,
    types: Option<Vec<String>>,
    source: Option<String>,
    filters: Option<Value>,
    method: Option<String>,
    headers: Map<String, Value>,
    /// `Some((type, Some(header)))`: a new credential; `Some((type, None))`: the same
    /// type as stored, its secret left out (as a retrieved subscription reads).
    credential: Option<(String, Option<String>)>,
}

fn parse(body: &[u8]) -> Result<(Request, Option<String>), ApiError> {
    let Value::Object(mut body) = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not JSON: {e}"),
        )
    })?
    else {
        return Err(bad("", "the body must be a JSON object (a subscription)"));
    };
    let id = match body.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("id", "must be a string")),
    };
    let string = |body: &Map<String, Value>, field: &str| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    };
    let protocol =
        string(&body, "protocol")?.ok_or_else(|| bad("protocol", "is required (HTTP)"))?;
    match protocol.as_str() {
        "HTTP" => {}
        p if PROTOCOLS.contains(&p) => {
            return Err(bad(
                "protocol",
                format!("{p} is not served by Sluice's subscription manager: only HTTP (docs/compatibility.md)"),
            ))
        }
        p => {
            return Err(bad(
                "protocol",
                format!("unknown protocol {p:?}; expected one of {}", PROTOCOLS.join(", ")),
            ))
        }
    }
    let sink = string(&body, "sink")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("sink", "is required (the URL events are delivered to)"))?;
    if !(sink.starts_with("http://") || sink.starts_with("https://")) {
        return Err(bad("sink", "an HTTP sink is an http:// or https:// URL"));
    }
    let source = string(&body, "source")?;
    let types = match body.get("types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut types = Vec::with_capacity(items.len());
            for (i, t) in items.iter().enumerate() {
                match t.as_str() {
                    Some(t) if !t.is_empty() => types.push(t.to_string()),
                    _ => return Err(bad(&format!("types[{i}]"), "must be a non-empty string")),
                }
            }
            Some(types).filter(|t| !t.is_empty())
        }
        Some(_) => return Err(bad("types", "must be an array of event types")),
    };
    let filters = match body.get("filters") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Array(items)) if !items.is_empty() => Some(v.clone()),
        Some(Value::Array(_)) => None,
        Some(_) => return Err(bad("filters", "must be an array of filter expressions")),
    };
    let bus = match body.get("config") {
        None | Some(Value::Null) => None,
        Some(Value::Object(config)) => {
            if let Some(key) = config.keys().find(|k| k.as_str() != "bus") {
                return Err(bad(
                    &format!("config.{key}"),
                    "unknown setting; Sluice's subscription config has only `bus`",
                ));
            }
            match config.get("bus") {
                None | Some(Value::Null) => None,
                Some(Value::String(b)) => Some(b.clone()),
                Some(_) => return Err(bad("config.bus", "must be a bus name")),
            }
        }
        Some(_) => return Err(bad("config", "must be an object of strings")),
    };
    let (mut method, mut headers) = (None, Map::new());
    match body.get("protocolsettings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(settings)) => {
            for (key, value) in settings {
                match (key.as_str(), value) {
                    ("method", Value::String(m)) => {
                        let m = m.to_ascii_uppercase();
                        if !matches!(m.as_str(), "POST" | "PUT") {
                            return Err(bad("protocolsettings.method", "must be POST or PUT"));
                        }
                        method = Some(m);
                    }
                    ("headers", Value::Object(h)) => {
                        for (name, v) in h {
                            if !v.is_string() {
                                return Err(bad(
                                    &format!("protocolsettings.headers.{name}"),
                                    "must be a string",
                                ));
                            }
                        }
                        headers = h.clone();
                    }
                    ("method" | "headers", _) => {
                        return Err(bad(
                            &format!("protocolsettings.{key}"),
                            "has the wrong type (method: string, headers: object of strings)",
                        ))
                    }
                    _ => {
                        return Err(bad(
                            &format!("protocolsettings.{key}"),
                            "not an HTTP setting (headers, method)",
                        ))
                    }
                }
            }
        }
        Some(_) => return Err(bad("protocolsettings", "must be an object")),
    }
    let credential = match body.get("sinkcredential") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(credential(c)?),
        Some(_) => return Err(bad("sinkcredential", "must be an object")),
    };
    Ok((
        Request {
            bus,
            sink,
            types,
            source,
            filters,
            method,
            headers,
            credential,
        },
        id,
    ))
}

/// `sinkcredential` as the Authorization header it becomes.
fn credential(c: &Map<String, Value>) -> Result<(String, Option<String>), ApiError> {
    let field = |name: &str| {
        c.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let kind = field("credentialtype").ok_or_else(|| {
        bad(
            "sinkcredential.credentialtype",
            "is required (PLAIN or ACCESSTOKEN)",
        )
    })?;
    let header = match kind {
        "ACCESSTOKEN" => field("accesstoken").map(|token| {
            let scheme = field("accesstokentype").unwrap_or("bearer");
            // RFC 6750 spells the scheme "Bearer".
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                "Bearer"
            } else {
                scheme
            };
            format!("{scheme} {token}")
        }),
        "PLAIN" => match (field("identifier"), field("secret")) {
            (Some(user), Some(secret)) => Some(crate::compat::http_api::basic_auth(user, secret)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "sinkcredential",
                    "a PLAIN credential has both identifier and secret",
                ))
            }
        },
        "REFRESHTOKEN" => return Err(bad(
            "sinkcredential.credentialtype",
            "REFRESHTOKEN is not served: Sluice does not refresh tokens; use ACCESSTOKEN or PLAIN",
        )),
        other => {
            return Err(bad(
                "sinkcredential.credentialtype",
                format!("unknown credential type {other:?}; expected PLAIN or ACCESSTOKEN"),
            ))
        }
    };
    Ok((kind.to_string(), header))
}

/// The bus a subscription goes to: `config.bus`, else the only bus there is.
fn bus_of(merged: &Merged, asked: Option<&str>) -> Result<String, ApiError> {
    if let Some(bus) = asked {
        return match merged.get(Kind::Bus, bus) {
            Some(_) => Ok(bus.to_string()),
            None => Err(bad("config.bus", format!("no bus {bus:?}"))),
        };
    }
    let buses: Vec<&str> = document::resources(&merged.top, Kind::Bus)
        .filter_map(|b| b["name"].as_str())
        .collect();
    match buses.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(bad("config.bus", "no bus exists yet: create one first")),
        many => Err(bad(
            "config.bus",
            format!(
                "name the bus of the subscription (one of {})",
                many.join(", ")
            ),
        )),
    }
}

/// The rule of `id`, with its id in the store (`bus/name`).
fn find<'a>(merged: &'a Merged, id: &str) -> Option<(String, &'a Value)> {
    document::resources(&merged.top, Kind::Rule)
        .find(|r| r["labels"][LABEL] == id)
        .and_then(|r| Some((format!("{}/{}", r["bus"].as_str()?, r["name"].as_str()?), r)))
}

/// The rule a request becomes; `old` is the rule it replaces (its secrets are kept
/// where the request leaves them out).
fn rule_of(id: &str, bus: &str, request: &Request, old: Option<&Value>) -> Result<Value, ApiError> {
    let mut headers = request.headers.clone();
    let mut labels = json!({ LABEL: id });
    if let Some((kind, header)) = &request.credential {
        let header = match header {
            Some(h) => h.clone(),
            None => {
                let old_kind = old.and_then(|o| o["labels"][CREDENTIAL_LABEL].as_str());
                let old_header =
                    old.and_then(|o| o["targets"][0]["headers"]["Authorization"].as_str());
                match (old_kind, old_header) {
                    (Some(k), Some(h)) if k == kind => h.to_string(),
                    _ => {
                        return Err(bad(
                            "sinkcredential",
                            "the credential's secret is missing (accesstoken, or identifier and secret)",
                        ))
                    }
                }
            }
        };
        headers.insert("Authorization".into(), header.into());
        labels[CREDENTIAL_LABEL] = kind.clone().into();
    }
    let mut target = json!({"name": SINK_TARGET, "kind": "http", "url": request.sink});
    if let Some(m) = &request.method {
        target["method"] = m.clone().into();
    }
    if !headers.is_empty() {
        target["headers"] = Value::Object(headers);
    }
    let mut rule = json!({
        "name": id,
        "bus": bus,
        "description": "CloudEvents subscription",
        "labels": labels,
        "targets": [target],
    });
    let mut pattern = Map::new();
    if let Some(types) = &request.types {
        pattern.insert("type".into(), json!(types));
    }
    if let Some(source) = &request.source {
        pattern.insert("source".into(), json!([source]));
    }
    if !pattern.is_empty() {
        rule["pattern"] = Value::Object(pattern);
    }
    if let Some(filters) = &request.filters {
        rule["filters"] = filters.clone();
    }
    // A header read back as `***` (a redacted secret) keeps the stored value.
    if let Some(old) = old {
        document::restore_redacted(&mut rule, old);
    }
    if document::has_redacted(&rule) {
        return Err(bad(
            "protocolsettings.headers",
            format!("a header reads {:?}: send its value", document::REDACTED),
        ));
    }
    Ok(rule)
}

/// A rule read as a subscription (secrets redacted, credentials shown by type only).
fn view(rule: &Value) -> Value {
    let target = rule["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == SINK_TARGET).or(t.first()))
        .cloned()
        .unwrap_or(Value::Null);
    let mut sub = json!({
        "id": rule["labels"][LABEL],
        "protocol": "HTTP",
        "sink": target["url"],
        "config": {"bus": rule["bus"]},
    });
    let mut headers = target["headers"].as_object().cloned().unwrap_or_default();
    if let Some(kind) = rule["labels"][CREDENTIAL_LABEL].as_str() {
        headers.remove("Authorization");
        sub["sinkcredential"] = json!({ "credentialtype": kind });
    }
    let mut settings = Map::new();
    if let Some(m) = target["method"].as_str() {
        settings.insert("method".into(), m.into());
    }
    if !headers.is_empty() {
        let mut wrapped = json!({ "headers": Value::Object(headers) });
        document::redact(&mut wrapped);
        settings.insert("headers".into(), wrapped["headers"].take());
    }
    if !settings.is_empty() {
        sub["protocolsettings"] = Value::Object(settings);
    }
    if let Some(types) = rule["pattern"]["type"].as_array() {
        sub["types"] = Value::Array(types.clone());
    }
    if let Some(source) = rule["pattern"]["source"][0].as_str() {
        sub["source"] = source.into();
    }
    if let Some(filters) = rule.get("filters").filter(|f| !f.is_null()) {
        sub["filters"] = filters.clone();
    }
    sub
}

/// Native errors with the paths of the rule turned into the subscription's fields.
fn in_its_words(mut e: ApiError) -> ApiError {
    let Some(field) = e.field.clone() else {
        return e;
    };
    let renamed = [
        ("pattern.type", "types"),
        ("pattern.source", "source"),
        ("targets[0].url", "sink"),
        ("targets[0].method", "protocolsettings.method"),
        ("targets[0].headers", "protocolsettings.headers"),
        ("targets[0]", "sink"),
    ]
    .iter()
    .find_map(|(from, to)| field.strip_prefix(from).map(|rest| format!("{to}{rest}")));
    if let Some(to) = renamed {
        e.message = e.message.replacen(&field, &to, 1);
        for f in &mut e.errors {
            if f.field == field {
                f.field = to.clone();
            }
        }
        e.field = Some(to);
    }
    e
}

async fn edit<F>(api: &ResourceApi, req: &HttpRequest, change: F) -> Result<Merged, ApiError>
where
    F: FnMut(&mut Merged) -> Result<Vec<(Kind, String, Option<Value>)>, ApiError>,
{
    let actor = format!("subscriptions:{}", crate::control::auth::actor(req));
    crate::compat::edit(api, &actor, change, |_, id| {
        ApiError::new(
            StatusCode::CONFLICT,
            "read_only",
            format!(
                "rule {id:?} is defined by the configuration file given to serve: change it there"
            ),
        )
    })
    .await
    .map_err(in_its_words)
}

fn answer(status: StatusCode, result: Result<Value, ApiError>) -> HttpResponse {
    match result {
        Ok(body) => HttpResponse::build(status).json(body),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

async fn list(resources: web::Data<ResourceApi>) -> HttpResponse {
    let result = current(&resources).await.map(|(_, merged)| {
        let mut subs: Vec<Value> = document::resources(&merged.top, Kind::Rule)
            .filter(|r| r["labels"][LABEL].is_string())
            .map(view)
            .collect();
        subs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Value::Array(subs)
    });
    answer(StatusCode::OK, result)
}

async fn create(
    req: HttpRequest,
    body: web::Bytes,
    resources: web::Data<ResourceApi>,
) -> HttpResponse {
    let result = async {
        let (request, _) = parse(&body)?;
        // Server-assigned, as the draft says; a valid rule name.
        let id = format!("sub-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let merged = edit(&resources, &req, |merged| {
            let bus = bus_of(merged, request.bus.as_deref())?;
            let rule = rule_of(&id, &bus, &request, None)?;
            Ok(vec![(Kind::Rule, format!("{bus}/{id}"), Some(rule))])
        })
        .await?;
        let (_, rule) = find(&merged, &id).ok_or_else(|| not_found(&id))?;
        Ok((id, view(rule)))
    }
    .await;
    match result {
        Ok((id, sub)) => {
            let info = req.connection_info();
            let location = format!("{}://{}/subscriptions/{id}", info.scheme(), info.host());
            HttpResponse::Created()
                .insert_header((header::LOCATION, location))
                .json(sub)
        }
        Err(e) => answer(StatusCode::OK, Err(e)),
    }
}

async fn retrieve(path: web::Path<String>, resources: web::Data<ResourceApi>) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let (_, merged) = current(&resources).await?;
        let (_, rule) = find(&merged, &id).ok_or_else(|| not_found(&id))?;
        Ok(view(rule))
    }
    .await;
    answer(StatusCode::OK, result)
}

async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    resources: web::Data<ResourceApi>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let (request, body_id) = parse(&body)?;
        if body_id.as_deref().is_some_and(|b| b != id) {
            return Err(bad(
                "id",
                format!("the body's id differs from the path's ({id:?})"),
            ));
        }
        let merged = edit(&resources, &req, |merged| {
            let (old_id, old) = find(merged, &id).ok_or_else(|| not_found(&id))?;
            let old = old.clone();
            // Without config.bus the subscription stays on its bus.
            let bus = match request.bus.as_deref() {
                Some(b) => bus_of(merged, Some(b))?,
                None => old["bus"].as_str().unwrap_or_default().to_string(),
            };
            let rule = rule_of(&id, &bus, &request, Some(&old))?;
            let new_id = format!("{bus}/{id}");
            let mut writes = Vec::new();
            if new_id != old_id {
                writes.push((Kind::Rule, old_id, None));
            }
            writes.push((Kind::Rule, new_id, Some(rule)));
            Ok(writes)
        })
        .await?;
        let (_, rule) = find(&merged, &id).ok_or_else(|| not_found(&id))?;
        Ok(view(rule))
    }
    .await;
    answer(StatusCode::OK, result)
}

async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    resources: web::Data<ResourceApi>,
) -> HttpResponse {
    let id = path.into_inner();
    let result = async {
        let mut gone = Value::Null;
        edit(&resources, &req, |merged| {
            let (rule_id, rule) = find(merged, &id).ok_or_else(|| not_found(&id))?;
            gone = view(rule);
            Ok(vec![(Kind::Rule, rule_id, None)])
        })
        .await?;
        Ok(gone)
    }
    .await;
    answer(StatusCode::OK, result)
}
