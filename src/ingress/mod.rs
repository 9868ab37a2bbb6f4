//! The HTTP ingress (actix-web): CloudEvents and webhooks in, appended to a bus, 2xx
//! once Redis has them. Also the health endpoints and, in `sluice dev`, an echo target.

mod echo;
pub mod error;
mod webhook;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tracing::{debug, warn};

use crate::bus::{self, BusSpec};
use crate::compat::alibaba::putevents::AlibabaIngest;
use crate::compat::aws::putevents::AwsIngest;
use crate::config::Limits;
use crate::event::cloudevents::{self, FieldError};
use crate::event::EncodedEvent;
use crate::observability::metrics::{Metrics, Via};
use crate::schema::gate::{Entrance, SchemaGate};
use crate::sources::Source;

pub use echo::EchoSink;
pub use error::ApiError;

/// Shared state of every ingress worker.
pub struct Ingress {
    pub buses: HashMap<String, BusSpec>,
    pub redis: ConnectionManager,
    pub limits: Limits,
    /// Webhook sources by name.
    pub sources: HashMap<String, Source>,
    /// The AWS PutEvents-compatible endpoint, when configured.
    pub aws: Option<AwsIngest>,
    /// The Alibaba PutEvents-compatible endpoint, when configured.
    pub alibaba: Option<AlibabaIngest>,
    pub metrics: Arc<Metrics>,
    /// This gateway's id in bridge traces (see `event::bridge`).
    pub gateway_id: String,
    /// `ingest_token` of the buses that have one.
    pub ingest_tokens: HashMap<String, crate::config::Secret>,
    /// Buses with `ingest_auth`: ingest needs a publisher (or admin) token.
    pub ingest_auth: std::collections::HashSet<String>,
    /// The tokens of the control plane (roles), for `ingest_auth`.
    pub tokens: Arc<crate::control::auth::Tokens>,
    /// Schema validation (and discovery sampling) before every append.
    pub schemas: Arc<SchemaGate>,
    /// The configuration store has been read and its plan is in force (routers and
    /// dispatchers run): until then the replica is not ready.
    pub in_force: bool,
}

/// Checks the bus's `ingest_token`: `Authorization: Bearer TOKEN` or `?token=TOKEN`.
fn check_ingest_token(req: &HttpRequest, expected: &crate::config::Secret) -> Result<(), ApiError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        });
    let query = || {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    };
    let given = bearer.or_else(query).unwrap_or_default();
    // Compare digests: constant time whatever the lengths.
    use sha2::Digest;
    let ok: bool = subtle::ConstantTimeEq::ct_eq(
        sha2::Sha256::digest(given.as_bytes()).as_slice(),
        sha2::Sha256::digest(&expected.0).as_slice(),
    )
    .into();
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this bus needs its ingest token: Authorization: Bearer TOKEN or ?token=TOKEN",
        ))
    }
}

/// Checks a bus's `ingest_auth`: a publisher token of the bus (or of all buses) or an
/// admin token, as `Authorization: Bearer` or `?token=`; against the replica's in-memory
/// tokens, no round trip.
fn check_publisher(
    req: &HttpRequest,
    tokens: &crate::control::auth::Tokens,
    bus: &str,
) -> Result<(), ApiError> {
    use crate::control::auth::{bearer, Role};
    let given = bearer(req).or_else(|| {
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let Some(principal) = given.and_then(|t| tokens.principal(&t)) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this bus needs a publisher token: Authorization: Bearer TOKEN or ?token=TOKEN",
        ));
    };
    let allowed = match principal.role {
        Role::Admin => true,
        Role::Publisher => principal.may_use_bus(bus),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the token may not publish to bus {bus:?}: it needs role publisher for this bus"
            ),
        ))
    }
}

/// Applies the bridge rule to events that carry a trace (`sluicepath`): drops those
/// that were on this gateway before (copies coming back through a bridge) and appends
/// this gateway to the path of the others. Events without a trace are untouched.
pub(crate) fn arrive_all(events: &mut Vec<EncodedEvent>, gateway_id: &str) -> usize {
    let before = events.len();
    events.retain_mut(|e| !returned(e, gateway_id));
    before - events.len()
}

/// [`arrive_all`] for one event: true when it returned (drop it).
pub(crate) fn returned(event: &mut EncodedEvent, gateway_id: &str) -> bool {
    match crate::event::bridge::arrive_encoded(&event.attrs, gateway_id) {
        None => {
            debug!(id = %event.id, "dropped an event that was on this gateway before");
            true
        }
        Some(Some(attrs)) => {
            event.attrs = attrs;
            false
        }
        Some(None) => false,
    }
}

/// Registers the ingress routes on an actix app.
pub fn configure(cfg: &mut web::ServiceConfig, echo: Option<web::Data<EchoSink>>) {
    cfg.service(
        web::resource("/buses/{bus}/events")
            .route(web::post().to(ingest))
            .route(web::method(actix_web::http::Method::OPTIONS).to(handshake))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/webhooks/{source}")
            .route(web::post().to(webhook::receive))
            .route(web::method(actix_web::http::Method::OPTIONS).to(handshake))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource(["/", "/aws/events", "/aws/events/"])
            .route(web::post().to(crate::compat::aws::ingest::put_events))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/openapi/putEvents")
            .route(web::post().to(crate::compat::alibaba::ingest::put_events))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(
        web::resource("/putEvents")
            .route(web::post().to(crate::compat::rocketmq::put_events))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(web::resource("/webhook/putEvents").to(crate::compat::rocketmq::webhook))
    .service(
        web::resource("/openapi/{action}")
            .route(web::post().to(crate::compat::alibaba::ingest::control))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    )
    .service(web::resource("/healthz").route(web::get().to(healthz)))
    .service(web::resource("/readyz").route(web::get().to(readyz)));
    if let Some(echo) = echo {
        cfg.app_data(echo).service(
            web::resource("/dev/echo")
                .route(web::post().to(echo::record))
                .route(web::get().to(echo::list)),
        );
    }
}

/// The abuse-protection handshake of the CloudEvents HTTP webhook spec (1.0.2, section
/// 4): a sender asks with `OPTIONS` and `WebHook-Request-Origin` whether it may deliver.
/// Sluice's ingest endpoints take deliveries from any origin (tokens and signatures
/// decide what is accepted), at any rate (limits answer 429), so the answer names the
/// origin back and allows every rate. A `WebHook-Request-Callback` is not called: the
/// answer is given synchronously, which the spec allows. Without the request header this
/// is a plain `OPTIONS`: the allowed methods.
async fn handshake(req: HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header(("Allow", "POST, OPTIONS"));
    if let Some(origin) = req
        .headers()
        .get("webhook-request-origin")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    {
        response
            .insert_header(("WebHook-Allowed-Origin", origin.trim()))
            .insert_header(("WebHook-Allowed-Rate", "*"));
    }
    response.finish()
}

/// JSON 404 for every unknown path.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", req.method(), req.path()),
    )
    .error_response_json()
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allow}"),
    )
    .error_response_json();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

impl ApiError {
    fn error_response_json(&self) -> HttpResponse {
        actix_web::ResponseError::error_response(self)
    }
}

/// The CloudEvents HTTP mode of a request, from its Content-Type.
enum Mode {
    Binary,
    Structured,
    Batch,
}

/// `POST /buses/{bus}/events`: CloudEvents in binary, structured or batch mode.
async fn ingest(
    req: HttpRequest,
    bus: web::Path<String>,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
) -> Result<HttpResponse, ApiError> {
    let state = live.get();
    let bus = state.buses.get(bus.as_str()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_bus",
            format!("no bus named {:?}", bus.as_str()),
        )
        .field("bus")
    })?;
    if let Some(token) = state.ingest_tokens.get(&bus.name) {
        check_ingest_token(&req, token)?;
    }
    if state.ingest_auth.contains(&bus.name) {
        check_publisher(&req, &state.tokens, &bus.name)?;
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_header",
                    "Content-Type is not ASCII",
                )
                .field("content-type")
            })
        })
        .transpose()?;
    let mode = match content_type.map(media_type) {
        Some(t) if t.eq_ignore_ascii_case(cloudevents::STRUCTURED) => Mode::Structured,
        Some(t) if t.eq_ignore_ascii_case(cloudevents::BATCH) => Mode::Batch,
        Some(t)
            if t.to_ascii_lowercase()
                .starts_with("application/cloudevents") =>
        {
            return Err(unsupported(content_type));
        }
        _ if req.headers().keys().any(|k| k.as_str().starts_with("ce-")) => Mode::Binary,
        _ => return Err(unsupported(content_type)),
    };

    let body = read_body(&req, &mut payload, state.limits.max_request_bytes).await?;

    let events = match mode {
        Mode::Binary => {
            let headers = req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()));
            vec![cloudevents::parse_binary(headers, content_type, body)
                .map_err(|e| ApiError::invalid(vec![e]))?]
        }
        Mode::Structured => {
            vec![cloudevents::parse_structured(&body).map_err(|e| ApiError::invalid(vec![e]))?]
        }
        Mode::Batch => cloudevents::parse_batch(&body).map_err(ApiError::invalid)?,
    };

    let max_event = state.limits.max_event_bytes;
    let mut encoded: Vec<EncodedEvent> = events;
    let oversized: Vec<FieldError> = encoded
        .iter()
        .enumerate()
        .filter(|(_, e)| e.size() > max_event)
        .map(|(i, e)| FieldError {
            index: matches!(mode, Mode::Batch).then_some(i),
            field: "data".into(),
            message: format!(
                "event is {} bytes, over the {max_event}-byte limit",
                e.size()
            ),
        })
        .collect();
    if !oversized.is_empty() {
        let mut err = ApiError::invalid(oversized);
        err.status = StatusCode::PAYLOAD_TOO_LARGE;
        err.error = "event_too_large";
        return Err(err);
    }

    // A batch with an invalid event is refused whole (nothing appended), with every
    // violation of every event, so the producer can fix and resend it as one.
    let batch = matches!(mode, Mode::Batch);
    let rejected: Vec<_> = encoded
        .iter_mut()
        .enumerate()
        .filter_map(|(i, e)| {
            let r = state
                .schemas
                .check(&bus.name, Entrance::CloudEvents, e)
                .err()?;
            Some((batch.then_some(i), e.id.clone(), r))
        })
        .collect();
    if !rejected.is_empty() {
        return Err(ApiError::schema(rejected));
    }
    // Copies of events that were on this gateway before are answered, not appended.
    let ids: Vec<String> = encoded.iter().map(|e| e.id.clone()).collect();
    arrive_all(&mut encoded, &state.gateway_id);

    if !encoded.is_empty() {
        let mut redis = state.redis.clone();
        bus::append(&mut redis, bus, &encoded, "cloudevents")
            .await
            .map_err(|e| unavailable(&bus.name, e))?;
        state
            .metrics
            .ingested(&bus.name, Via::CloudEvents, encoded.len());
    }
    debug!(bus = %bus.name, count = ids.len(), "accepted");
    let mut answer = Vec::with_capacity(12 + ids.iter().map(|id| id.len() + 3).sum::<usize>());
    answer.extend_from_slice(b"{\"ids\":");
    serde_json::to_writer(&mut answer, &ids).expect("writing to a Vec");
    answer.push(b'}');
    Ok(HttpResponse::Accepted()
        .content_type("application/json")
        .body(answer))
}

/// Reads a request body of at most `limit` bytes. A larger declared `Content-Length` is
/// refused before anything is read; a body that grows past the limit is refused as soon
/// as it does, so an oversized request never sits whole in memory.
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(format!("request body exceeds {limit} bytes")));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(4096).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("reading the body failed: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(format!("request body exceeds {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// 503 (with `Retry-After`) for an append Redis did not acknowledge.
fn unavailable(bus: &str, e: bus::BusError) -> ApiError {
    warn!(bus, error = %e, "append failed; answering 503");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "bus_unavailable",
        "the event store is unavailable; retry later",
    )
}

/// The entry error code of an event refused by its schema (PutEvents-compatible APIs).
pub(crate) const SCHEMA_ERROR_CODE: &str = "SchemaViolation";

/// Every violation of a refused event in one line, for per-entry error messages.
pub(crate) fn describe_rejection(r: &crate::schema::gate::Rejected) -> String {
    let list: Vec<String> = r
        .violations
        .iter()
        .map(|v| format!("data{}: {}", v.instance_path, v.message))
        .collect();
    format!(
        "data violates schema {} version {}: {}",
        r.schema,
        r.version,
        list.join("; ")
    )
}

pub(crate) fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

fn unsupported(content_type: Option<&str>) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "content type {:?} is not a CloudEvents mode: send {}, {}, or binary mode with ce-* headers",
            content_type.unwrap_or(""),
            cloudevents::STRUCTURED,
            cloudevents::BATCH
        ),
    )
    .field("content-type")
}

fn too_large(message: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready when the configuration (file and store) is in force and Redis answers.
async fn readyz(live: web::Data<crate::live::Live<Ingress>>) -> HttpResponse {
    let state = live.get();
    if !state.in_force {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "starting",
            "error": "the configuration store has not been read yet (is Redis reachable?)"
        }));
    }
    let mut redis = state.redis.clone();
    match bus::within(redis::cmd("PING").query_async::<String>(&mut redis)).await {
        Ok(_) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "error": e.to_string()})),
    }
}
