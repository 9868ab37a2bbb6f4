//! `POST /api/v1/test-pattern` and `POST /api/v1/transform`: what the CLI verbs of the
//! same names do, with the router's matcher and the dispatcher's transform.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cli::pattern::{apply_transform, pattern_matches, CliMode};
use crate::event::Event;
use crate::ingress::error::ApiError;
use crate::rules::transform::TransformConfig;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/test-pattern", web::post().to(test_pattern))
        .route("/transform", web::post().to(transform));
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message).field(field)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("invalid JSON body: {e}"),
        )
    })
}

/// The event of a request: a CloudEvent in the JSON format.
fn event(value: &Value) -> Result<Event, ApiError> {
    let bytes = bytes::Bytes::from(value.to_string());
    crate::event::cloudevents::parse_structured(&bytes)
        .map(|e| e.decode())
        .map_err(|e| bad("event", format!("event.{}: {}", e.field, e.message)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestPattern {
    #[schema(value_type = super::openapi::Pattern)]
    pattern: Value,
    #[schema(value_type = super::openapi::CloudEvent)]
    event: Value,
}

#[utoipa::path(post, path = "/api/v1/test-pattern", tag = "tools",
    request_body = TestPattern,
    responses(
        (status = 200, description = "whether the event matches", body = ref("#/components/schemas/PatternResult")),
        (status = 400, description = "not a request, an invalid event or an invalid pattern (`field`: `event` or `pattern`)"),
    )
)]
/// `{"pattern": ..., "event": ...}` -> `{"match": bool}`; 400 naming the invalid part.
async fn test_pattern(bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: TestPattern = body(&bytes)?;
    let event = event(&req.event)?;
    let matched = pattern_matches(&req.pattern, &event).map_err(|m| bad("pattern", m))?;
    Ok(HttpResponse::Ok().json(json!({"match": matched})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TransformRequest {
    #[schema(value_type = super::openapi::Transform)]
    transform: Value,
    #[schema(value_type = super::openapi::CloudEvent)]
    event: Value,
    #[serde(default)]
    #[schema(value_type = super::openapi::TransformMode)]
    mode: CliMode,
    #[serde(default = "default_name")]
    rule: String,
    #[serde(default = "default_bus")]
    bus: String,
}

fn default_name() -> String {
    "rule".into()
}
fn default_bus() -> String {
    "bus".into()
}

#[utoipa::path(post, path = "/api/v1/transform", tag = "tools",
    request_body = TransformRequest,
    responses(
        (status = 200, description = "the body the target would receive", body = ref("#/components/schemas/TransformResult")),
        (status = 400, description = "not a request, an invalid event or an invalid transform (`field`: `event` or `transform`)"),
    )
)]
/// `{"transform": ..., "event": ...}` -> `{"content_type": ..., "body": ...}` (`body`
/// as JSON when it is JSON, else a string; `body_base64` for bytes that are not UTF-8).
async fn transform(bytes: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: TransformRequest = body(&bytes)?;
    // Through YAML's reader, as the file's `transform:` is read.
    let config: TransformConfig = yaml_serde::from_str(&req.transform.to_string())
        .map_err(|e| bad("transform", format!("invalid transform: {e}")))?;
    let event = event(&req.event)?;
    let (out, content_type) = apply_transform(&config, &event, &req.bus, &req.rule, req.mode)
        .map_err(|m| bad("transform", m))?;
    let mut answer = json!({"content_type": content_type});
    match std::str::from_utf8(&out) {
        Ok(text) => {
            answer["body"] = match serde_json::from_str::<Value>(text) {
                Ok(v) if content_type.contains("json") => v,
                _ => Value::String(text.to_string()),
            };
        }
        Err(_) => {
            use base64::Engine;
            answer["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&out));
        }
    }
    Ok(HttpResponse::Ok().json(answer))
}
