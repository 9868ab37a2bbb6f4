//! The schema registry's API: list schemas, read versions, register a version.
//!
//! - `GET /api/v1/schemas`: every schema (config, registered, discovered) with its
//!   origin, compatibility, number of versions and bindings.
//! - `GET /api/v1/schemas/{name}/versions`: the version numbers.
//! - `GET /api/v1/schemas/{name}/versions/{n|latest}`: one version (its JSON Schema;
//!   for OpenAPI also the document and component).
//! - `POST /api/v1/schemas/{name}/versions`: `{"schema", "format"?, "component"?,
//!   "dataschema"?, "compatibility"?}`; 201 `{"name", "version"}` once stored in Redis,
//!   200 when it equals the latest version, 409 with every reason when it is not
//!   compatible, 400 when it is not a valid schema.
//!
//! Reads are served from this replica's registry, which picks up versions stored by
//! other replicas within `schema::gate::RELOAD_EVERY`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::ingress::{ApiError, Ingress};
use crate::schema::gate::{RegisterError, RegisterRequest};
use crate::schema::Entry;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/schemas", web::get().to(list))
        .route("/schemas/{name}/versions", web::get().to(versions))
        .route("/schemas/{name}/versions", web::post().to(register))
        .route("/schemas/{name}/versions/{version}", web::get().to(version));
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_schema",
        format!("no schema named {name:?}"),
    )
    .field("name")
}

fn summary(e: &Entry, state: &Ingress) -> Value {
    let bindings: Vec<Value> = state
        .schemas
        .registry()
        .bindings()
        .iter()
        .filter(|b| b.schema == e.name)
        .map(|b| {
            json!({
                "bus": b.bus,
                "source": matcher_text(&b.source),
                "type": matcher_text(&b.type_),
            })
        })
        .collect();
    let mut v = json!({
        "name": e.name,
        "origin": e.origin,
        "compatibility": e.compatibility.as_str(),
        "versions": e.versions.len(),
        "latest": e.versions.last().map(|v| v.number),
    });
    if !bindings.is_empty() {
        v["bindings"] = Value::Array(bindings);
    }
    if let Some((source, type_)) = &e.discovered {
        v["source"] = source.as_str().into();
        v["type"] = type_.as_str().into();
    }
    v
}

fn matcher_text(m: &crate::schema::Matcher) -> Value {
    use crate::schema::Matcher;
    match m {
        Matcher::Any => Value::Null,
        Matcher::Exact(e) => e.as_str().into(),
        Matcher::Prefix(p) => format!("{p}*").into(),
    }
}

#[utoipa::path(get, path = "/api/v1/schemas", tag = "schemas",
    responses((status = 200, description = "every schema (config, registered, discovered)", body = ref("#/components/schemas/SchemaIndex")))
)]
async fn list(live: web::Data<crate::live::Live<Ingress>>) -> HttpResponse {
    let state = live.get();
    let registry = state.schemas.registry();
    let schemas: Vec<Value> = registry
        .entries()
        .iter()
        .map(|e| summary(e, &state))
        .collect();
    HttpResponse::Ok().json(json!({ "schemas": schemas }))
}

#[utoipa::path(get, path = "/api/v1/schemas/{name}/versions", tag = "schemas",
    params(("name" = String, Path, description = "the schema")),
    responses(
        (status = 200, description = "the schema with its version numbers", body = ref("#/components/schemas/SchemaVersions")),
        (status = 404, description = "no such schema"),
    )
)]
async fn versions(
    name: web::Path<String>,
    live: web::Data<crate::live::Live<Ingress>>,
) -> Result<HttpResponse, ApiError> {
    let state = live.get();
    let registry = state.schemas.registry();
    let entry = registry.entry(&name).ok_or_else(|| not_found(&name))?;
    let numbers: Vec<u32> = entry.versions.iter().map(|v| v.number).collect();
    let mut body = summary(entry, &state);
    body["versions"] = json!(numbers);
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(get, path = "/api/v1/schemas/{name}/versions/{version}", tag = "schemas",
    params(("name" = String, Path, description = "the schema"), ("version" = String, Path, description = "a version number or `latest`")),
    responses(
        (status = 200, description = "the version", body = ref("#/components/schemas/SchemaVersion")),
        (status = 400, description = "neither a version number nor `latest`"),
        (status = 404, description = "no such schema or version"),
    )
)]
async fn version(
    path: web::Path<(String, String)>,
    live: web::Data<crate::live::Live<Ingress>>,
) -> Result<HttpResponse, ApiError> {
    let state = live.get();
    let (name, wanted) = path.into_inner();
    let registry = state.schemas.registry();
    let entry = registry.entry(&name).ok_or_else(|| not_found(&name))?;
    let found = if wanted == "latest" {
        entry.versions.last()
    } else {
        let n: u32 = wanted.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_version",
                format!("{wanted:?} is not a version number or latest"),
            )
            .field("version")
        })?;
        entry.versions.iter().find(|v| v.number == n)
    };
    let v = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_version",
            format!("schema {name:?} has no version {wanted}"),
        )
        .field("version")
    })?;
    let mut body = v.to_json();
    body["compatibility"] = entry.compatibility.as_str().into();
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(post, path = "/api/v1/schemas/{name}/versions", tag = "schemas",
    params(("name" = String, Path, description = "the schema")),
    request_body(content = ref("#/components/schemas/SchemaRegistration"), description = "the new version"),
    responses(
        (status = 200, description = "equal to the latest version: nothing stored", body = ref("#/components/schemas/SchemaRegistered")),
        (status = 201, description = "stored as a new version", body = ref("#/components/schemas/SchemaRegistered")),
        (status = 400, description = "not a registration, or not a valid schema"),
        (status = 409, description = "not compatible with the earlier versions (`incompatible_schema`, every reason), or registered concurrently (`concurrent_registration`)", body = ref("#/components/schemas/SchemaConflict")),
        (status = 503, description = "the schema store is unavailable"),
    )
)]
async fn register(
    name: web::Path<String>,
    body: web::Bytes,
    live: web::Data<crate::live::Live<Ingress>>,
) -> Result<HttpResponse, ApiError> {
    let state = live.get();
    let request: RegisterRequest = serde_json::from_slice(&body).map_err(|e| {
        let message = e.to_string();
        // serde names a missing, unknown or mistyped field between backticks.
        let field = message
            .split('`')
            .nth(1)
            .filter(|f| {
                [
                    "schema",
                    "format",
                    "component",
                    "dataschema",
                    "compatibility",
                ]
                .contains(f)
                    || message.starts_with("unknown field")
            })
            .unwrap_or("body")
            .to_string();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body is not a schema registration: {e}"),
        )
        .field(field)
    })?;
    let mut redis = state.redis.clone();
    match state.schemas.register(&mut redis, &name, request).await {
        Ok(r) => {
            let status = if r.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(HttpResponse::build(status).json(json!({
                "name": name.as_str(),
                "version": r.version,
                "created": r.created,
                "urn": crate::schema::urn(&name, r.version),
            })))
        }
        Err(RegisterError::Invalid { field, message }) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_schema", message).field(field))
        }
        Err(RegisterError::Incompatible {
            compatibility,
            reasons,
        }) => Ok(HttpResponse::Conflict().json(json!({
            "error": "incompatible_schema",
            "field": "schema",
            "message": format!(
                "the new version is not {} compatible: {}",
                compatibility.as_str(),
                reasons[0]
            ),
            "compatibility": compatibility.as_str(),
            "reasons": reasons,
        }))),
        Err(RegisterError::Conflict) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "concurrent_registration",
            "another version was registered at the same time; retry",
        )),
        Err(RegisterError::Unavailable(e)) => {
            tracing::warn!(error = %e, "schema registration: Redis unavailable");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the schema store is unavailable; retry later",
            ))
        }
    }
}
