//! `/api/v1/dlq`: the dead-letter queues over HTTP, the same operations as `sluice dlq`
//! (both call `crate::dlq`).
//!
//! | method | path | does |
//! |---|---|---|
//! | GET | `/dlq` | every target's DLQ with its depth |
//! | GET | `/dlq/{bus}/{rule}/{target}?after=ID&limit=N` | a page of entries, oldest first |
//! | GET | `/dlq/{bus}/{rule}/{target}/{entry}` | one entry with its event |
//! | POST | `/dlq/{bus}/{rule}/{target}/redrive` | `{}`, `{"ids": [...]}` or `{"pattern": {...}}` |
//! | POST | `/dlq/{bus}/{rule}/{target}/purge` | the same selections |

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use redis::aio::ConnectionManager;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::dlq::{self, DlqRef, Outcome, Selection};
use crate::ingress::error::ApiError;

/// Entries per page unless `limit` says otherwise, and the most it may say.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// What the DLQ routes need: Redis and the targets the config has.
#[derive(Clone)]
pub struct DlqApi {
    pub redis: ConnectionManager,
    /// Every bus of the config (to say which part of a path is unknown).
    pub buses: Vec<String>,
    /// Every (bus, rule, target) of the config.
    pub targets: Vec<(String, String, String)>,
}

impl DlqApi {
    /// The DLQ of a configured target, or a 404 naming the unknown part.
    fn find(&self, bus: &str, rule: &str, target: &str) -> Result<DlqRef, ApiError> {
        let not_found = |field: &str, message: String| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", message).field(field)
        };
        if !self.buses.iter().any(|b| b == bus) {
            return Err(not_found("bus", format!("no bus {bus:?}")));
        }
        if !self.targets.iter().any(|(b, r, _)| b == bus && r == rule) {
            return Err(not_found(
                "rule",
                format!("no rule {rule:?} on bus {bus:?}"),
            ));
        }
        if !self
            .targets
            .iter()
            .any(|(b, r, t)| b == bus && r == rule && t == target)
        {
            return Err(not_found(
                "target",
                format!("no target {target:?} in rule {rule:?} on bus {bus:?}"),
            ));
        }
        Ok(DlqRef::new(bus, rule, target))
    }
}

/// Registers the routes (under the control scope, which authorizes).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dlq", web::get().to(index))
        .route("/dlq/{bus}/{rule}/{target}", web::get().to(entries))
        .route(
            "/dlq/{bus}/{rule}/{target}/redrive",
            web::post().to(redrive),
        )
        .route("/dlq/{bus}/{rule}/{target}/purge", web::post().to(purge))
        .route("/dlq/{bus}/{rule}/{target}/{entry}", web::get().to(entry));
}

fn unavailable(e: redis::RedisError) -> ApiError {
    warn!(error = %e, "dlq: redis failed; answering 503");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "bus_unavailable",
        "the event store is unavailable; retry later",
    )
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
}

#[utoipa::path(get, path = "/api/v1/dlq", tag = "dlq",
    responses(
        (status = 200, description = "every target's DLQ with its depth", body = ref("#/components/schemas/DlqIndex")),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// `GET /dlq`: one row per configured target, depths read in one pipeline.
async fn index(live: web::Data<crate::live::Live<DlqApi>>) -> Result<HttpResponse, ApiError> {
    let api = live.get();
    let mut pipe = redis::pipe();
    for (bus, rule, target) in &api.targets {
        pipe.cmd("XLEN").arg(DlqRef::new(bus, rule, target).dlq);
    }
    let depths: Vec<u64> = if api.targets.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut api.redis.clone())
            .await
            .map_err(unavailable)?
    };
    let dlqs: Vec<Value> = api
        .targets
        .iter()
        .zip(depths)
        .map(|((bus, rule, target), depth)| {
            json!({"bus": bus, "rule": rule, "target": target, "depth": depth})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "dlqs": dlqs })))
}

#[utoipa::path(get, path = "/api/v1/dlq/{bus}/{rule}/{target}", tag = "dlq",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule", example = "paid"), ("target" = String, Path, description = "the target", example = "hook"),
        ("after" = Option<String>, Query, description = "entries after this entry id (the `next` of the previous page), e.g. `1700000000000-0`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "entries per page, 1 to 1000 (default 100)")),
    responses(
        (status = 200, description = "a page of entries, oldest first", body = ref("#/components/schemas/DlqPage")),
        (status = 400, description = "invalid `after` or `limit`, or an unknown query parameter"),
        (status = 404, description = "no such bus, rule or target in the configuration (`field` names which)"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// `GET /dlq/{bus}/{rule}/{target}?after=ID&limit=N`: entries after `after` (exclusive),
/// oldest first; `next` is the `after` of the following page, null on the last.
async fn entries(
    live: web::Data<crate::live::Live<DlqApi>>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let api = live.get();
    let (bus, rule, target) = path.into_inner();
    let dlq = api.find(&bus, &rule, &target)?;
    let (mut after, mut limit) = (None, DEFAULT_LIMIT);
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "after" if dlq::is_entry_id(&value) => after = Some(value.into_owned()),
            "after" => {
                return Err(bad(
                    "after",
                    format!("{value:?} is not an entry id such as 1700000000000-0"),
                ))
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad("limit", format!("must be a number from 1 to {MAX_LIMIT}"))
                    })?
            }
            other => return Err(bad(other, "unknown parameter (after, limit)")),
        }
    }
    let (mut conn, mut conn2) = (api.redis.clone(), api.redis.clone());
    let (depth, page) = tokio::try_join!(
        dlq::depth(&mut conn2, &dlq),
        dlq::page(&mut conn, &dlq, after.as_deref(), limit)
    )
    .map_err(unavailable)?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|e| e.id.clone()))
        .flatten();
    let entries: Vec<Value> = page.iter().map(dlq::DlqEntry::summary_json).collect();
    Ok(HttpResponse::Ok().json(json!({"depth": depth, "entries": entries, "next": next})))
}

#[utoipa::path(get, path = "/api/v1/dlq/{bus}/{rule}/{target}/{entry}", tag = "dlq",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule", example = "paid"), ("target" = String, Path, description = "the target", example = "hook"), ("entry" = String, Path, description = "the entry id", example = "1700000000000-0")),
    responses(
        (status = 200, description = "the entry with its event", body = ref("#/components/schemas/DlqEntry")),
        (status = 400, description = "not an entry id"),
        (status = 404, description = "no such bus, rule, target or entry (`field` names which)"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// `GET /dlq/{bus}/{rule}/{target}/{entry}`: the entry with its event.
async fn entry(
    live: web::Data<crate::live::Live<DlqApi>>,
    path: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let api = live.get();
    let (bus, rule, target, id) = path.into_inner();
    let dlq = api.find(&bus, &rule, &target)?;
    if !dlq::is_entry_id(&id) {
        return Err(bad(
            "entry",
            format!("{id:?} is not an entry id such as 1700000000000-0"),
        ));
    }
    match dlq::get(&mut api.redis.clone(), &dlq, &id)
        .await
        .map_err(unavailable)?
    {
        Some(e) => Ok(HttpResponse::Ok().json(e.to_json())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no entry {id} in the DLQ of {bus}/{rule}/{target}"),
        )
        .field("entry")),
    }
}

/// The selection of a redrive or purge body: `{}` (or no body), `{"ids": [...]}` or
/// `{"pattern": {...}}`.
fn selection(body: &[u8]) -> Result<Selection, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Selection::All);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad("body", format!("not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(bad(
            "body",
            "must be a JSON object: {}, {\"ids\": [...]} or {\"pattern\": {...}}",
        ));
    };
    if let Some(other) = fields.keys().find(|k| *k != "ids" && *k != "pattern") {
        return Err(bad(other, "unknown field (ids, pattern)"));
    }
    match (fields.get("ids"), fields.get("pattern")) {
        (Some(_), Some(_)) => Err(bad("pattern", "give ids or pattern, not both")),
        (Some(ids), None) => {
            let Value::Array(ids) = ids else {
                return Err(bad("ids", "must be an array of entry ids"));
            };
            if ids.is_empty() {
                return Err(bad("ids", "is empty; send {} to select every entry"));
            }
            let ids = ids
                .iter()
                .enumerate()
                .map(|(i, id)| match id.as_str() {
                    Some(id) if dlq::is_entry_id(id) => Ok(id.to_string()),
                    _ => Err(bad(
                        &format!("ids[{i}]"),
                        format!("{id} is not an entry id such as 1700000000000-0"),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Ok(Selection::Ids(ids))
        }
        (None, Some(pattern)) => Selection::pattern(pattern).map_err(|e| {
            bad(
                &format!("pattern{}", e.path),
                format!("invalid pattern: {}", e.message),
            )
        }),
        (None, None) => Ok(Selection::All),
    }
}

fn outcome_json(verb: &str, outcome: Outcome) -> HttpResponse {
    HttpResponse::Ok().json(json!({ verb: outcome.done, "not_found": outcome.missing }))
}

#[utoipa::path(post, path = "/api/v1/dlq/{bus}/{rule}/{target}/redrive", tag = "dlq",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule", example = "paid"), ("target" = String, Path, description = "the target", example = "hook")),
    request_body(content = ref("#/components/schemas/DlqSelection"), description = "which entries: `{}` (or no body) every one, `{\"ids\": [...]}` or `{\"pattern\": {...}}`"),
    responses(
        (status = 200, description = "the selected entries were appended to the target again, removed from the DLQ", body = ref("#/components/schemas/Redriven")),
        (status = 400, description = "not a selection (`field` names the part at fault)"),
        (status = 404, description = "no such bus, rule or target in the configuration (`field` names which)"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// `POST /dlq/{bus}/{rule}/{target}/redrive`: answers `{"redriven": N, "not_found": [ids]}`.
async fn redrive(
    live: web::Data<crate::live::Live<DlqApi>>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let api = live.get();
    let (bus, rule, target) = path.into_inner();
    let dlq = api.find(&bus, &rule, &target)?;
    let selection = selection(&body)?;
    let outcome = dlq::redrive(&mut api.redis.clone(), &dlq, &selection)
        .await
        .map_err(unavailable)?;
    info!(%bus, %rule, %target, redriven = outcome.done, "dlq redrive");
    Ok(outcome_json("redriven", outcome))
}

#[utoipa::path(post, path = "/api/v1/dlq/{bus}/{rule}/{target}/purge", tag = "dlq",
    params(("bus" = String, Path, description = "the bus", example = "orders"), ("rule" = String, Path, description = "the rule", example = "paid"), ("target" = String, Path, description = "the target", example = "hook")),
    request_body(content = ref("#/components/schemas/DlqSelection"), description = "which entries: `{}` (or no body) every one, `{\"ids\": [...]}` or `{\"pattern\": {...}}`"),
    responses(
        (status = 200, description = "the selected entries were deleted", body = ref("#/components/schemas/Purged")),
        (status = 400, description = "not a selection (`field` names the part at fault)"),
        (status = 404, description = "no such bus, rule or target in the configuration (`field` names which)"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// `POST /dlq/{bus}/{rule}/{target}/purge`: answers `{"purged": N, "not_found": [ids]}`.
async fn purge(
    live: web::Data<crate::live::Live<DlqApi>>,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let api = live.get();
    let (bus, rule, target) = path.into_inner();
    let dlq = api.find(&bus, &rule, &target)?;
    let selection = selection(&body)?;
    let outcome = dlq::purge(&mut api.redis.clone(), &dlq, &selection)
        .await
        .map_err(unavailable)?;
    info!(%bus, %rule, %target, purged = outcome.done, "dlq purge");
    Ok(outcome_json("purged", outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> Option<String> {
        selection(body.as_bytes()).err().and_then(|e| e.field)
    }

    #[test]
    fn selections_and_their_errors() {
        assert!(matches!(selection(b""), Ok(Selection::All)));
        assert!(matches!(selection(b"{}"), Ok(Selection::All)));
        assert!(matches!(
            selection(br#"{"ids": ["1-0", "2-3"]}"#),
            Ok(Selection::Ids(ids)) if ids == ["1-0", "2-3"]
        ));
        assert!(matches!(
            selection(br#"{"pattern": {"type": ["a"]}}"#),
            Ok(Selection::Pattern(_))
        ));
        assert_eq!(field("[1]").as_deref(), Some("body"));
        assert_eq!(field("{").as_deref(), Some("body"));
        assert_eq!(field(r#"{"idz": []}"#).as_deref(), Some("idz"));
        assert_eq!(field(r#"{"ids": []}"#).as_deref(), Some("ids"));
        assert_eq!(field(r#"{"ids": "1-0"}"#).as_deref(), Some("ids"));
        assert_eq!(
            field(r#"{"ids": ["1-0", "17"]}"#).as_deref(),
            Some("ids[1]")
        );
        assert_eq!(
            field(r#"{"ids": ["1-0"], "pattern": {}}"#).as_deref(),
            Some("pattern")
        );
        assert_eq!(
            field(r#"{"pattern": {"data": {"n": [{"numeric": [">"]}]}}}"#).as_deref(),
            Some("pattern.data.n[0].numeric")
        );
    }
}
