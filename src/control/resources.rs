//! The resource API: buses, rules (with their targets), sources and functions, read
//! and written at run time (`/api/v1/buses/{bus}`, `/api/v1/buses/{bus}/rules/{rule}`,
//! `/api/v1/sources/{name}`, `/api/v1/functions/{name}`, `POST /api/v1/apply`).
//!
//! A write takes a snapshot of the store, merges it with this replica's file, applies
//! the change, compiles the result exactly as `sluice check` compiles a file (400 with
//! every error at its path inside the resource), and writes it with the snapshot's
//! revision as a precondition: if another write came first, it starts over from a new
//! snapshot, so a concurrent update is never lost and the store never holds a
//! configuration that was not checked whole. `If-Match` (the resource's `ETag`, its
//! version) makes a write conditional on the version the client read: 412 if stale.
//!
//! Resources defined by the file given to `serve` are read-only here (409): the file is
//! their source of truth. Secrets are write-only: literal secrets read back as `***`,
//! and a `***` written back keeps the stored value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use redis::aio::ConnectionManager;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::document::{self, FileDoc, Merged, Origin};
use super::store::{self, Kind, Op, Snapshot, Written};
use crate::config::ConfigError;
use crate::event::cloudevents::FieldError;
use crate::ingress::error::ApiError;
use crate::live::Live;

/// Largest resource or `apply` document accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Attempts of a write that keeps meeting concurrent writes.
const ATTEMPTS: usize = 20;
/// How long a write waits for this replica to put it in force before answering.
const IN_FORCE_WAIT: Duration = Duration::from_secs(2);
/// Default and largest page of a list.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

pub struct ResourceApi {
    pub redis: ConnectionManager,
    /// This replica's file (SIGHUP replaces it).
    pub file: Arc<Live<FileDoc>>,
    /// The store revision in force on this replica.
    pub applied: watch::Receiver<u64>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .route("/buses", web::get().to(list_buses))
        .route("/buses/{bus}", web::get().to(get_bus))
        .route("/buses/{bus}", web::put().to(put_bus))
        .route("/buses/{bus}", web::delete().to(delete_bus))
        .route("/buses/{bus}/rules", web::get().to(list_bus_rules))
        .route("/buses/{bus}/rules/{rule}", web::get().to(get_rule))
        .route("/buses/{bus}/rules/{rule}", web::put().to(put_rule))
        .route("/buses/{bus}/rules/{rule}", web::delete().to(delete_rule))
        .route("/rules", web::get().to(list_rules))
        .route("/targets", web::get().to(list_targets))
        .route(
            "/targets/{bus}/{rule}/{target}/resume",
            web::post().to(resume_target),
        )
        .route("/sources", web::get().to(list_sources))
        .route("/sources/{name}", web::get().to(get_source))
        .route("/sources/{name}", web::put().to(put_source))
        .route("/sources/{name}", web::delete().to(delete_source))
        .route("/functions", web::get().to(list_functions))
        .route("/functions/{name}", web::get().to(get_function))
        .route("/functions/{name}", web::put().to(put_function))
        .route("/functions/{name}", web::delete().to(delete_function))
        .route("/apply", web::post().to(apply))
        .route("/audit", web::get().to(audit));
}

use super::auth::actor;

pub(crate) fn redis_error(e: crate::bus::BusError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "redis_unavailable",
        format!("the configuration store is unavailable: {e}"),
    )
}

// ---- reading ----

/// A resource as the API shows it.
fn view(kind: Kind, id: &str, merged: &Merged, snapshot: &Snapshot) -> Option<Value> {
    let origin = merged.origin(kind, id)?;
    let (_, at) = merged.index.get(&(kind, id.to_string()))?;
    let mut spec = merged
        .top
        .get(kind.section())?
        .as_array()?
        .get(*at)?
        .clone();
    document::redact(&mut spec);
    let mut out = json!({
        "kind": kind.singular(),
        "id": id,
        "origin": origin.as_str(),
    });
    if origin == Origin::Api {
        if let Some(stored) = snapshot.get(kind, id) {
            out["version"] = json!(stored.version);
            out["updated_at"] = json!(stored.updated_at);
            out["updated_by"] = json!(stored.updated_by);
        }
    }
    out["spec"] = spec;
    Some(out)
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

pub(crate) async fn current(api: &ResourceApi) -> Result<(Snapshot, Merged), ApiError> {
    let snapshot = store::snapshot(&mut api.redis.clone())
        .await
        .map_err(redis_error)?;
    let merged = Merged::new(&api.file.get(), &snapshot);
    Ok((snapshot, merged))
}

fn not_found(kind: Kind, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no {} {id:?}", kind.singular()),
    )
}

async fn get_one(api: &ResourceApi, kind: Kind, id: &str) -> Result<HttpResponse, ApiError> {
    let (snapshot, merged) = current(api).await?;
    let body = view(kind, id, &merged, &snapshot).ok_or_else(|| not_found(kind, id))?;
    let mut res = HttpResponse::Ok();
    if let Some(stored) = snapshot.get(kind, id) {
        if merged.origin(kind, id) == Some(Origin::Api) {
            res.insert_header((header::ETAG, etag(stored.version)));
        }
    }
    Ok(res.json(body))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Page {
    /// Items per page, 1 to 1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Items after this id (the `next` of the previous page).
    after: Option<String>,
}

fn page_error(e: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.to_string())
}

/// A page of the resources of `kind` (those `keep` accepts), by id.
async fn list(
    api: &ResourceApi,
    req: &HttpRequest,
    kind: Kind,
    keep: impl Fn(&Value) -> bool,
) -> Result<HttpResponse, ApiError> {
    let page = web::Query::<Page>::from_query(req.query_string()).map_err(page_error)?;
    let limit = page.limit.unwrap_or(PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be 1 to {MAX_PAGE}"),
        )
        .field("limit"));
    }
    let (snapshot, merged) = current(api).await?;
    let mut ids: Vec<&String> = merged
        .index
        .keys()
        .filter(|(k, _)| *k == kind)
        .map(|(_, id)| id)
        .filter(|id| {
            page.after
                .as_ref()
                .is_none_or(|after| id.as_str() > after.as_str())
        })
        .collect();
    ids.sort();
    let mut items = Vec::new();
    let mut next = None;
    for id in ids {
        let Some(v) = view(kind, id, &merged, &snapshot) else {
            continue;
        };
        if !keep(&v["spec"]) {
            continue;
        }
        if items.len() == limit {
            next = items
                .last()
                .and_then(|v: &Value| v["id"].as_str().map(String::from));
            break;
        }
        items.push(v);
    }
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": next})))
}

#[utoipa::path(get, path = "/api/v1/buses", tag = "resources", operation_id = "list_buses",
    params(Page),
    responses(
        (status = 200, description = "a page, by id", body = ref("#/components/schemas/BusList")),
        (status = 400, description = "invalid `limit` or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn list_buses(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&api, &req, Kind::Bus, |_| true).await
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "resources", operation_id = "list_rules",
    params(Page),
    responses(
        (status = 200, description = "a page, by id", body = ref("#/components/schemas/RuleList")),
        (status = 400, description = "invalid `limit` or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn list_rules(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&api, &req, Kind::Rule, |_| true).await
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}/rules", tag = "resources", operation_id = "list_bus_rules",
    params(("bus" = String, Path, description = "the bus", example = "orders"), Page),
    responses(
        (status = 200, description = "a page, by id", body = ref("#/components/schemas/RuleList")),
        (status = 400, description = "invalid `limit` or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn list_bus_rules(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let bus = path.into_inner();
    list(&api, &req, Kind::Rule, |spec| spec["bus"] == bus.as_str()).await
}

#[utoipa::path(get, path = "/api/v1/sources", tag = "resources", operation_id = "list_sources",
    params(Page),
    responses(
        (status = 200, description = "a page, by id", body = ref("#/components/schemas/SourceList")),
        (status = 400, description = "invalid `limit` or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn list_sources(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&api, &req, Kind::Source, |_| true).await
}

#[utoipa::path(get, path = "/api/v1/functions", tag = "resources", operation_id = "list_functions",
    params(Page),
    responses(
        (status = 200, description = "a page, by id", body = ref("#/components/schemas/FunctionList")),
        (status = 400, description = "invalid `limit` or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn list_functions(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    list(&api, &req, Kind::Function, |_| true).await
}

#[utoipa::path(get, path = "/api/v1/targets", tag = "resources",
    responses(
        (status = 200, description = "every target, by bus, rule and name", body = ref("#/components/schemas/TargetList")),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
/// Every target of every rule: `{bus, rule, target, kind, origin}`.
async fn list_targets(api: web::Data<ResourceApi>) -> Result<HttpResponse, ApiError> {
    let (_, merged) = current(&api).await?;
    let mut items = Vec::new();
    for rule in document::resources(&merged.top, Kind::Rule) {
        let (bus, name) = (&rule["bus"], &rule["name"]);
        let origin = Kind::Rule
            .id_of(rule)
            .and_then(|id| merged.origin(Kind::Rule, &id))
            .map(Origin::as_str);
        for t in rule["targets"].as_array().into_iter().flatten() {
            items.push(json!({
                "bus": bus, "rule": name, "target": t["name"],
                "kind": t["kind"], "origin": origin,
            }));
        }
    }
    items.sort_by_key(|v| {
        (
            v["bus"].to_string(),
            v["rule"].to_string(),
            v["target"].to_string(),
        )
    });
    // Targets paused by a 410 Gone: one pipelined read of their keys.
    if items.is_empty() {
        return Ok(HttpResponse::Ok().json(json!({"items": items, "next": null})));
    }
    let mut pipe = redis::pipe();
    for v in &items {
        let part = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        pipe.get(crate::bus::gone_key(
            &part("bus"),
            &part("rule"),
            &part("target"),
        ));
    }
    let gone: Vec<Option<String>> = crate::bus::within(pipe.query_async(&mut api.redis.clone()))
        .await
        .map_err(redis_error)?;
    for (v, gone) in items.iter_mut().zip(gone) {
        v["paused"] = match gone.and_then(|g| serde_json::from_str::<Value>(&g).ok()) {
            Some(g) => json!({"reason": "gone", "since_ms": g["since_ms"], "event": g["event"]}),
            None => Value::Null,
        };
    }
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": null})))
}

#[utoipa::path(post, path = "/api/v1/targets/{bus}/{rule}/{target}/resume", tag = "resources",
    params(
        ("bus" = String, Path, description = "the bus", example = "orders"),
        ("rule" = String, Path, description = "the rule", example = "paid"),
        ("target" = String, Path, description = "the target", example = "billing"),
    ),
    responses(
        (status = 200, description = "`{\"resumed\": true}` when the target was paused (it answered 410 Gone), `false` when it was not; every replica resumes within a second", body = ref("#/components/schemas/Resumed")),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// Resumes a target paused because it answered `410 Gone`.
async fn resume_target(
    api: web::Data<ResourceApi>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (bus, rule, target) = path.into_inner();
    let removed: u32 = crate::bus::within(
        redis::cmd("DEL")
            .arg(crate::bus::gone_key(&bus, &rule, &target))
            .query_async(&mut api.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    if removed > 0 {
        tracing::info!(%bus, %rule, %target, "target resumed");
    }
    Ok(HttpResponse::Ok().json(json!({"resumed": removed > 0})))
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders")),
    responses(
        (status = 200, description = "the bus", body = ref("#/components/schemas/BusView"),
            headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 404, description = "no such bus"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn get_bus(
    api: web::Data<ResourceApi>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_one(&api, Kind::Bus, &path).await
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}/rules/{rule}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule, unique per bus", example = "paid")),
    responses(
        (status = 200, description = "the rule", body = ref("#/components/schemas/RuleView"),
            headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 404, description = "no such rule"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn get_rule(
    api: web::Data<ResourceApi>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (bus, rule) = path.into_inner();
    get_one(&api, Kind::Rule, &format!("{bus}/{rule}")).await
}

#[utoipa::path(get, path = "/api/v1/sources/{name}", tag = "resources",
    params(("name" = String, Path, description = "the source (its endpoint is /webhooks/{name})", example = "orders-hook")),
    responses(
        (status = 200, description = "the source", body = ref("#/components/schemas/SourceView"),
            headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 404, description = "no such source"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn get_source(
    api: web::Data<ResourceApi>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_one(&api, Kind::Source, &path).await
}

#[utoipa::path(get, path = "/api/v1/functions/{name}", tag = "resources",
    params(("name" = String, Path, description = "the function", example = "echo")),
    responses(
        (status = 200, description = "the function", body = ref("#/components/schemas/FunctionView"),
            headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 404, description = "no such function"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn get_function(
    api: web::Data<ResourceApi>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    get_one(&api, Kind::Function, &path).await
}

// ---- writing ----

/// The body of a PUT: a JSON (or YAML) mapping.
fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let yaml = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("yaml"));
    let value: Value = if yaml {
        yaml_serde::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("invalid YAML: {e}"),
            )
        })?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("invalid JSON: {e}"),
            )
        })?
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "a resource is a JSON object",
        )),
    }
}

/// Sets the identifying fields of a resource from its URL; a body naming another one
/// is refused.
fn identify(spec: &mut Map<String, Value>, fields: &[(&str, &str)]) -> Result<(), ApiError> {
    // The identifying fields first, as a file lists them.
    let mut ordered = Map::new();
    for (field, value) in fields {
        match spec.remove(*field) {
            None => {
                ordered.insert(field.to_string(), Value::String(value.to_string()));
            }
            Some(Value::String(given)) if given == *value => {
                ordered.insert(field.to_string(), Value::String(given));
            }
            Some(given) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_resource",
                    format!("{field}: the body says {given}, the URL says {value:?}"),
                )
                .field(*field))
            }
        }
    }
    ordered.append(spec);
    *spec = ordered;
    Ok(())
}

/// The preconditions of a request: `If-Match: "N"` / `*`, `If-None-Match: *`.
#[derive(Debug, Default)]
struct Preconditions {
    if_match: Option<Vec<String>>,
    if_none_match_any: bool,
}

impl Preconditions {
    fn of(req: &HttpRequest) -> Preconditions {
        let list = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(',')
                        .map(|t| t.trim().trim_start_matches("W/").to_string())
                        .collect::<Vec<_>>()
                })
        };
        Preconditions {
            if_match: list(header::IF_MATCH),
            if_none_match_any: list(header::IF_NONE_MATCH)
                .is_some_and(|l| l.iter().any(|t| t == "*")),
        }
    }

    /// 412 unless the resource's current version (None: absent) satisfies them.
    fn check(&self, current: Option<u64>) -> Result<(), ApiError> {
        let failed = |why: String| {
            Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                why,
            ))
        };
        if let Some(tags) = &self.if_match {
            let ok = match current {
                None => false,
                Some(v) => tags.iter().any(|t| t == "*" || *t == format!("\"{v}\"")),
            };
            if !ok {
                return failed(match current {
                    Some(v) => format!("If-Match: the resource is at version \"{v}\""),
                    None => "If-Match: the resource does not exist".into(),
                });
            }
        }
        if self.if_none_match_any && current.is_some() {
            return failed("If-None-Match: *: the resource exists".into());
        }
        Ok(())
    }
}

pub(crate) fn read_only(kind: Kind, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "read_only",
        format!(
            "{} {id:?} is defined by the configuration file given to serve: change it there (and send SIGHUP), not through the API",
            kind.singular()
        ),
    )
}

/// 400 for a configuration that does not compile: every error, at its path.
fn invalid(errors: Vec<ConfigError>) -> ApiError {
    let fields: Vec<FieldError> = errors
        .iter()
        .map(|e| FieldError {
            index: None,
            field: e.path.clone(),
            message: e.message.clone(),
        })
        .collect();
    let mut error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_resource",
        errors
            .first()
            .map_or_else(|| "invalid".to_string(), ToString::to_string),
    );
    error.field = errors
        .first()
        .map(|e| e.path.clone())
        .filter(|p| !p.is_empty());
    error.errors = fields;
    error
}

/// What a prepared change writes, and how to answer once it is written.
pub(crate) struct Change {
    pub ops: Vec<Op>,
    /// Where the changed resource sits in the merged document, for relative paths.
    pub at: Option<String>,
    pub dry_run: bool,
}

/// Runs `prepare` on a fresh snapshot, checks the result and writes it, starting over
/// while other writes come first. The store's new revision (None for a dry run or a
/// change of nothing).
pub(crate) async fn commit<F>(
    api: &ResourceApi,
    actor: &str,
    mut prepare: F,
) -> Result<(Option<u64>, Snapshot, Merged), ApiError>
where
    F: FnMut(&Snapshot, &mut Merged) -> Result<Change, ApiError>,
{
    for _ in 0..ATTEMPTS {
        let (snapshot, mut merged) = current(api).await?;
        let change = prepare(&snapshot, &mut merged)?;
        let base = api.file.get().base().map(std::path::Path::to_path_buf);
        let checked = merged.clone();
        let compiled = web::block(move || checked.compile(base.as_deref()).map(drop))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?;
        if let Err(errors) = compiled {
            return Err(invalid(document::relative(errors, change.at.as_deref())));
        }
        if change.dry_run || change.ops.is_empty() {
            return Ok((None, snapshot, merged));
        }
        match store::write(&mut api.redis.clone(), snapshot.rev, &change.ops, actor)
            .await
            .map_err(redis_error)?
        {
            Written::At(rev) => {
                // In force here before the answer: the client's next request to this
                // replica sees it (other replicas follow within a second).
                let mut applied = api.applied.clone();
                let _ = tokio::time::timeout(IN_FORCE_WAIT, applied.wait_for(|r| *r >= rev)).await;
                return Ok((Some(rev), snapshot, merged));
            }
            Written::Changed => {
                // Another write came first: check again against what it wrote.
                tokio::time::sleep(Duration::from_millis(rand_ms())).await;
            }
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the store kept changing during this write; try again",
    ))
}

fn rand_ms() -> u64 {
    (uuid::Uuid::new_v4().as_u128() % 20) as u64 + 1
}

/// PUT of one resource of `kind` at `id`, from `spec` (identified already).
async fn put(
    api: &ResourceApi,
    req: &HttpRequest,
    kind: Kind,
    id: String,
    spec: Map<String, Value>,
) -> Result<HttpResponse, ApiError> {
    let preconditions = Preconditions::of(req);
    let mut created = false;
    let (rev, snapshot, merged) = commit(api, &actor(req), |snapshot, merged| {
        if merged.origin(kind, &id) == Some(Origin::File) {
            return Err(read_only(kind, &id));
        }
        let old = snapshot.get(kind, &id);
        preconditions.check(old.map(|s| s.version))?;
        created = old.is_none();
        let mut spec = Value::Object(spec.clone());
        if let Some(old) = old {
            document::restore_redacted(&mut spec, &old.spec);
        }
        if document::has_redacted(&spec) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                format!("a secret reads {:?}: send the secret (or an env:/file: reference), {:?} is only kept where the stored resource has a value", document::REDACTED, document::REDACTED),
            ));
        }
        let unchanged = old.is_some_and(|o| o.spec == spec);
        let at = merged.put(kind, &id, spec.clone());
        Ok(Change {
            ops: if unchanged {
                Vec::new()
            } else {
                vec![Op {
                    kind,
                    id: id.clone(),
                    spec: Some(spec),
                }]
            },
            at: Some(format!("{}[{at}]", kind.section())),
            dry_run: false,
        })
    })
    .await?;
    let mut body = view(kind, &id, &merged, &snapshot).unwrap_or(Value::Null);
    let version = rev.or_else(|| snapshot.get(kind, &id).map(|s| s.version));
    if let Some(v) = version {
        body["version"] = json!(v);
    }
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    if let Some(v) = version {
        res.insert_header((header::ETAG, etag(v)));
    }
    Ok(res.json(body))
}

#[utoipa::path(put, path = "/api/v1/buses/{bus}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: write only if the resource is at that version"), ("If-None-Match" = Option<String>, Header, description = "`*`: write only if the resource does not exist")),
    request_body(description = "the bus as the configuration file holds it (JSON, or YAML with a YAML content type); the identifying fields default to the URL's",
        content((ref("#/components/schemas/Bus") = "application/json"), (ref("#/components/schemas/Bus") = "application/yaml"))),
    responses(
        (status = 200, description = "updated (or unchanged)", body = ref("#/components/schemas/BusView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 201, description = "created", body = ref("#/components/schemas/BusView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 400, description = "not a JSON/YAML object, the body names another resource than the URL, or the configuration with it does not compile (`errors` lists every problem at its path)"),
        (status = 409, description = "the bus is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` / `If-None-Match` not satisfied"),
        (status = 413, description = "the body is larger than 32 MiB"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn put_bus(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let bus = path.into_inner();
    let mut spec = parse_body(&req, &body)?;
    identify(&mut spec, &[("name", &bus)])?;
    put(&api, &req, Kind::Bus, bus, spec).await
}

#[utoipa::path(put, path = "/api/v1/buses/{bus}/rules/{rule}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule, unique per bus", example = "paid"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: write only if the resource is at that version"), ("If-None-Match" = Option<String>, Header, description = "`*`: write only if the resource does not exist")),
    request_body(description = "the rule as the configuration file holds it (JSON, or YAML with a YAML content type); the identifying fields default to the URL's",
        content((ref("#/components/schemas/Rule") = "application/json"), (ref("#/components/schemas/Rule") = "application/yaml"))),
    responses(
        (status = 200, description = "updated (or unchanged)", body = ref("#/components/schemas/RuleView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 201, description = "created", body = ref("#/components/schemas/RuleView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 400, description = "not a JSON/YAML object, the body names another resource than the URL, or the configuration with it does not compile (`errors` lists every problem at its path)"),
        (status = 409, description = "the rule is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` / `If-None-Match` not satisfied"),
        (status = 413, description = "the body is larger than 32 MiB"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn put_rule(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (bus, rule) = path.into_inner();
    let mut spec = parse_body(&req, &body)?;
    identify(&mut spec, &[("name", &rule), ("bus", &bus)])?;
    put(&api, &req, Kind::Rule, format!("{bus}/{rule}"), spec).await
}

#[utoipa::path(put, path = "/api/v1/sources/{name}", tag = "resources",
    params(("name" = String, Path, description = "the source (its endpoint is /webhooks/{name})", example = "orders-hook"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: write only if the resource is at that version"), ("If-None-Match" = Option<String>, Header, description = "`*`: write only if the resource does not exist")),
    request_body(description = "the source as the configuration file holds it (JSON, or YAML with a YAML content type); the identifying fields default to the URL's",
        content((ref("#/components/schemas/Source") = "application/json"), (ref("#/components/schemas/Source") = "application/yaml"))),
    responses(
        (status = 200, description = "updated (or unchanged)", body = ref("#/components/schemas/SourceView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 201, description = "created", body = ref("#/components/schemas/SourceView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 400, description = "not a JSON/YAML object, the body names another resource than the URL, or the configuration with it does not compile (`errors` lists every problem at its path)"),
        (status = 409, description = "the source is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` / `If-None-Match` not satisfied"),
        (status = 413, description = "the body is larger than 32 MiB"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn put_source(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let mut spec = parse_body(&req, &body)?;
    identify(&mut spec, &[("name", &name)])?;
    put(&api, &req, Kind::Source, name, spec).await
}

#[utoipa::path(put, path = "/api/v1/functions/{name}", tag = "resources",
    params(("name" = String, Path, description = "the function", example = "echo"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: write only if the resource is at that version"), ("If-None-Match" = Option<String>, Header, description = "`*`: write only if the resource does not exist")),
    request_body(description = "the function as the configuration file holds it (JSON, or YAML with a YAML content type); the identifying fields default to the URL's",
        content((ref("#/components/schemas/Function") = "application/json"), (ref("#/components/schemas/Function") = "application/yaml"))),
    responses(
        (status = 200, description = "updated (or unchanged)", body = ref("#/components/schemas/FunctionView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 201, description = "created", body = ref("#/components/schemas/FunctionView"), headers(("ETag" = String, description = "the version, `\"N\"`, for `If-Match`; only for resources of the API"))),
        (status = 400, description = "not a JSON/YAML object, the body names another resource than the URL, or the configuration with it does not compile (`errors` lists every problem at its path)"),
        (status = 409, description = "the function is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` / `If-None-Match` not satisfied"),
        (status = 413, description = "the body is larger than 32 MiB"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn put_function(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let mut spec = parse_body(&req, &body)?;
    identify(&mut spec, &[("name", &name)])?;
    put(&api, &req, Kind::Function, name, spec).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

/// DELETE of one resource. `extra` may refuse it with what else depends on it.
async fn delete(
    api: &ResourceApi,
    req: &HttpRequest,
    kind: Kind,
    id: String,
    extra: impl Fn(&Merged) -> Result<(), ApiError>,
) -> Result<HttpResponse, ApiError> {
    let preconditions = Preconditions::of(req);
    commit(api, &actor(req), |snapshot, merged| {
        match merged.origin(kind, &id) {
            None => return Err(not_found(kind, &id)),
            Some(Origin::File) => return Err(read_only(kind, &id)),
            Some(Origin::Api) => {}
        }
        preconditions.check(snapshot.get(kind, &id).map(|s| s.version))?;
        extra(merged)?;
        merged.remove(kind, &id);
        Ok(Change {
            ops: vec![Op {
                kind,
                id: id.clone(),
                spec: None,
            }],
            at: None,
            dry_run: false,
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/buses/{bus}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("force" = Option<bool>, Query, description = "delete the bus with the events it retains"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: delete only if the resource is at that version")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "an invalid `force`, an unknown query parameter, or the configuration without it does not compile (a target's `on_success.bus`)"),
        (status = 404, description = "no such bus"),
        (status = 409, description = "the bus is defined by the file given to serve (`read_only`), or it has rules or sources (`in_use`), or it retains events and `force` is not true (`not_empty`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` not satisfied"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn delete_bus(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let bus = path.into_inner();
    let query = web::Query::<DeleteQuery>::from_query(req.query_string()).map_err(page_error)?;
    let retained: u64 = crate::bus::within(
        redis::cmd("XLEN")
            .arg(crate::bus::bus_key(&bus))
            .query_async(&mut api.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    delete(&api, &req, Kind::Bus, bus.clone(), |merged| {
        let rules: Vec<String> = document::resources(&merged.top, Kind::Rule)
            .filter(|r| r["bus"] == bus.as_str())
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        if !rules.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_use",
                format!(
                    "bus {bus:?} has rules: {}; delete them first",
                    rules.join(", ")
                ),
            ));
        }
        let sources: Vec<String> = document::resources(&merged.top, Kind::Source)
            .filter(|r| r["bus"] == bus.as_str())
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        if !sources.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "in_use",
                format!(
                    "sources append to bus {bus:?}: {}; delete or move them first",
                    sources.join(", ")
                ),
            ));
        }
        if retained > 0 && !query.force {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_empty",
                format!(
                    "bus {bus:?} retains {retained} event(s); ?force=true deletes it with them"
                ),
            ));
        }
        Ok(())
    })
    .await?;
    if query.force {
        // The definition is gone: its routers stop within a second on every replica.
        let _: Result<(), _> = crate::bus::within(
            redis::cmd("DEL")
                .arg(crate::bus::bus_key(&bus))
                .query_async(&mut api.redis.clone()),
        )
        .await;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/buses/{bus}/rules/{rule}", tag = "resources",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule, unique per bus", example = "paid"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: delete only if the resource is at that version")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the configuration without it does not compile"),
        (status = 404, description = "no such rule"),
        (status = 409, description = "the rule is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` not satisfied"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn delete_rule(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (bus, rule) = path.into_inner();
    delete(&api, &req, Kind::Rule, format!("{bus}/{rule}"), |_| Ok(())).await
}

#[utoipa::path(delete, path = "/api/v1/sources/{name}", tag = "resources",
    params(("name" = String, Path, description = "the source (its endpoint is /webhooks/{name})", example = "orders-hook"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: delete only if the resource is at that version")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the configuration without it does not compile"),
        (status = 404, description = "no such source"),
        (status = 409, description = "the source is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` not satisfied"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn delete_source(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    delete(&api, &req, Kind::Source, path.into_inner(), |_| Ok(())).await
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}", tag = "resources",
    params(("name" = String, Path, description = "the function", example = "echo"), ("If-Match" = Option<String>, Header, description = "`\"N\"` (an `ETag`) or `*`: delete only if the resource is at that version")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "the configuration without it does not compile (e.g. a target still names the function)"),
        (status = 404, description = "no such function"),
        (status = 409, description = "the function is defined by the file given to serve (`read_only`), or the store kept changing (`conflict`)"),
        (status = 412, description = "`If-Match` not satisfied"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
async fn delete_function(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    delete(&api, &req, Kind::Function, name, |_| Ok(())).await
}

// ---- apply ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ApplyRequest {
    /// A configuration document (the file's shape); its resources are applied.
    #[schema(value_type = super::openapi::ConfigDocument)]
    config: Map<String, Value>,
    /// Also delete the store's resources the document does not list.
    #[serde(default)]
    prune: bool,
    /// Check and report, write nothing.
    #[serde(default)]
    dry_run: bool,
}

#[utoipa::path(post, path = "/api/v1/apply", tag = "resources",
    request_body(content = ApplyRequest, description = "a configuration document and how to apply it"),
    responses(
        (status = 200, description = "applied (or, with `dry_run`, checked): each resource's change", body = ref("#/components/schemas/ApplyResult")),
        (status = 400, description = "not an apply request, a resource without its name (or bus), listed twice, or a configuration that does not compile (`errors` at their paths in the document)"),
        (status = 409, description = "a resource defined by the file given to serve differs (`read_only`), or the store kept changing (`conflict`)"),
        (status = 413, description = "the body is larger than 32 MiB"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
/// `POST /api/v1/apply`: makes the store hold the document's resources, in one write.
async fn apply(
    api: web::Data<ResourceApi>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: ApplyRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("invalid apply request: {e}"),
        )
    })?;
    let doc = request.config;
    let mut ignored: Vec<String> = doc
        .keys()
        .filter(|k| !Kind::ALL.iter().any(|kind| kind.section() == k.as_str()))
        .cloned()
        .collect();
    ignored.sort();
    let mut changes = Vec::new();
    // Paths of the document's resources in the merged document -> in the document.
    let mut paths = BTreeMap::new();
    let result = commit(&api, &actor(&req), |snapshot, merged| {
        changes.clear();
        paths.clear();
        let mut ops = Vec::new();
        for kind in Kind::ALL {
            let mut listed = std::collections::HashSet::new();
            for (j, spec) in document::resources(&doc, kind).enumerate() {
                let at = format!("{}[{j}]", kind.section());
                let id = kind.id_of(spec).ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_resource", format!("{at}: a {} needs a name{}", kind.singular(), if kind == Kind::Rule { " and a bus" } else { "" }))
                        .field(at.clone())
                })?;
                if !listed.insert(id.clone()) {
                    return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_resource", format!("{at}: {} {id:?} is listed twice", kind.singular())).field(at));
                }
                let old = snapshot.get(kind, &id);
                let mut spec = spec.clone();
                if let Some(old) = old {
                    document::restore_redacted(&mut spec, &old.spec);
                }
                let action = match merged.origin(kind, &id) {
                    Some(Origin::File) => {
                        let (_, i) = merged.index[&(kind, id.clone())];
                        if merged.top[kind.section()][i] != spec {
                            return Err(read_only(kind, &id));
                        }
                        "unchanged"
                    }
                    _ if old.is_some_and(|o| o.spec == spec) => "unchanged",
                    Some(Origin::Api) => "update",
                    None => "create",
                };
                if action != "unchanged" {
                    let i = merged.put(kind, &id, spec.clone());
                    paths.insert(format!("{}[{i}]", kind.section()), at);
                    ops.push(Op { kind, id: id.clone(), spec: Some(spec.clone()) });
                }
                let mut before = old.map(|o| o.spec.clone());
                let mut after = spec;
                before.iter_mut().for_each(document::redact);
                document::redact(&mut after);
                changes.push(json!({"kind": kind.singular(), "id": id, "action": action, "before": before, "after": after}));
            }
            if request.prune {
                for (id, old) in snapshot.of(kind) {
                    if !listed.contains(id) && merged.origin(kind, id) == Some(Origin::Api) {
                        merged.remove(kind, id);
                        ops.push(Op { kind, id: id.clone(), spec: None });
                        let mut before = old.spec.clone();
                        document::redact(&mut before);
                        changes.push(json!({"kind": kind.singular(), "id": id, "action": "delete", "before": before, "after": null}));
                    }
                }
            }
        }
        Ok(Change { ops, at: None, dry_run: request.dry_run })
    })
    .await;
    let (rev, _, _) = result.map_err(|mut e| {
        // Errors of the document's resources at their paths in the document.
        e.errors
            .iter_mut()
            .for_each(|f| f.field = rebase(&f.field, &paths));
        if let Some(field) = &mut e.field {
            *field = rebase(field, &paths);
        }
        if let Some(first) = e.errors.first() {
            e.message = format!("{}: {}", first.field, first.message);
        }
        e
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "dry_run": request.dry_run,
        "revision": rev,
        "changes": changes,
        "ignored": ignored,
    })))
}

/// `rules[12].targets[0].url` (merged) -> `rules[3].targets[0].url` (the document's),
/// where the resource is the document's.
fn rebase(path: &str, paths: &BTreeMap<String, String>) -> String {
    let end = path.find(']').map_or(path.len(), |i| i + 1);
    match paths.get(&path[..end]) {
        Some(doc) => format!("{doc}{}", &path[end..]),
        None => path.to_string(),
    }
}

// ---- audit ----

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries per page, 1 to 1000 (default 100).
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Entries after this id (the `next` of the previous page).
    after: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "resources",
    params(AuditQuery),
    responses(
        (status = 200, description = "a page of changes, oldest first", body = ref("#/components/schemas/AuditPage")),
        (status = 400, description = "invalid `limit` or `after`, or an unknown query parameter"),
        (status = 503, description = "the configuration store is unavailable"),
    )
)]
/// `GET /api/v1/audit`: every change, oldest first, a page at a time.
async fn audit(api: web::Data<ResourceApi>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = web::Query::<AuditQuery>::from_query(req.query_string()).map_err(page_error)?;
    let limit = q.limit.unwrap_or(PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be 1 to {MAX_PAGE}"),
        )
        .field("limit"));
    }
    let start = match &q.after {
        Some(after) if valid_stream_id(after) => format!("({after}"),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "after: not an audit entry id (MS-SEQ)",
            )
            .field("after"))
        }
        None => "-".into(),
    };
    let entries: Vec<(String, Vec<(String, String)>)> = crate::bus::within(
        redis::cmd("XRANGE")
            .arg(store::AUDIT_KEY)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut api.redis.clone()),
    )
    .await
    .map_err(redis_error)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(id, _)| id.clone()))
        .flatten();
    let items: Vec<Value> = entries
        .into_iter()
        .map(|(id, fields)| {
            let mut v = json!({"id": id});
            for (k, f) in fields {
                v[k] = Value::String(f);
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items, "next": next})))
}

fn valid_stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ms = parts.next().unwrap_or_default();
    let seq = parts.next().unwrap_or("0");
    !ms.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
        && seq.bytes().all(|b| b.is_ascii_digit())
        && !seq.is_empty()
}
