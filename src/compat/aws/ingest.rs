//! The AWS EventBridge PutEvents-compatible endpoint: `POST /` (and `/aws/events`) with
//! `X-Amz-Target: AWSEvents.PutEvents`, so the unmodified AWS SDKs and CLI work against
//! Sluice with `--endpoint-url`.
//!
//! Answers as EventBridge does: 200 `{"FailedEntryCount", "Entries"}` with one result
//! per entry (valid entries are appended, all in one MULTI/EXEC, even when others fail;
//! the 200 goes out only once Redis acknowledged them); whole-request errors as
//! `{"__type", "message"}` with `x-amzn-ErrorType`: 400 for validation and for
//! authentication (as EventBridge's JSON protocol answers `InvalidSignatureException`
//! and the like), 413 for a body over `limits.max_request_bytes` (refused before it is
//! read), 503 `ServiceUnavailableException` (with `Retry-After`, which the SDKs retry)
//! when Redis does not acknowledge.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tracing::{debug, warn};

use crate::bus;
use crate::compat::aws::putevents::EntryError;
use crate::compat::aws::sigv4::SignedRequest;
use crate::ingress::{read_body, Ingress};
use crate::observability::metrics::Via;
use crate::schema::gate::Entrance;

const TARGET: &str = "AWSEvents.PutEvents";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An AWS-shaped error answer.
fn aws_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type(CONTENT_TYPE)
        .insert_header(("x-amzn-ErrorType", code))
        .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "1"));
    }
    response.body(json!({"__type": code, "message": message}).to_string())
}

pub(crate) async fn put_events(
    req: HttpRequest,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
    resources: Option<web::Data<crate::control::resources::ResourceApi>>,
) -> HttpResponse {
    let state = live.get();
    let Some(aws) = &state.aws else {
        return crate::ingress::not_found(req).await;
    };
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    // Every other AWSEvents operation is the control facade (`super::control`).
    let control = match target {
        Some(TARGET) => None,
        Some(t) if t.starts_with("AWSEvents.") && resources.is_some() => {
            Some(t["AWSEvents.".len()..].to_string())
        }
        _ => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                &format!(
                    "operation {:?} is not supported here: AWSEvents.* operations only",
                    target.unwrap_or("")
                ),
            )
        }
    };
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::ingress::media_type)
        .is_none_or(|t| {
            [
                "application/x-amz-json-1.1",
                "application/x-amz-json-1.0",
                "application/json",
            ]
            .iter()
            .any(|j| t.eq_ignore_ascii_case(j))
        });
    if !json_type {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            &format!("Content-Type must be {CONTENT_TYPE}"),
        );
    }
    let body = match read_body(&req, &mut payload, state.limits.max_request_bytes).await {
        Ok(body) => body,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return aws_error(e.status, "RequestEntityTooLargeException", &e.message)
        }
        Err(e) => return aws_error(e.status, "SerializationException", &e.message),
    };
    let now = chrono::Utc::now();
    let mut key_id = None;
    if let Some(verifier) = &aws.verifier {
        let verified = verifier.verify(&SignedRequest {
            method: req.method().as_str(),
            path: req.path(),
            query: req.query_string(),
            headers: req.headers(),
            body: &body,
            now,
        });
        match verified {
            Ok(id) => key_id = Some(id),
            Err(e) if control.is_some() => {
                warn!(code = e.code(), reason = %e.message(), "AWS control request refused");
                return aws_error(StatusCode::BAD_REQUEST, e.code(), &e.message());
            }
            Err(e) => {
                warn!(code = e.code(), reason = %e.message(), "PutEvents request refused");
                return aws_error(StatusCode::BAD_REQUEST, e.code(), &e.message());
            }
        }
    }
    if let (Some(operation), Some(resources)) = (control, resources) {
        // Without SigV4 (`auth: none`) only loopback clients may change the configuration.
        let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
        if key_id.is_none() && !loopback {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "AccessDeniedException",
                "control operations need SigV4 (aws.auth: sigv4) unless the client is on loopback",
            );
        }
        let caller = super::control::Caller {
            actor: format!("aws:{}", key_id.as_deref().unwrap_or("anonymous")),
            region: &aws.region,
            account: aws
                .account
                .as_deref()
                .unwrap_or(crate::rules::dialect::DEFAULT_ACCOUNT),
            default_bus: &aws.default_bus,
        };
        return match super::control::handle(&operation, &body, &resources, &caller).await {
            Ok(answer) => HttpResponse::Ok()
                .content_type(CONTENT_TYPE)
                .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
                .body(answer.to_string()),
            Err(e) => {
                debug!(operation, code = e.error, message = %e.message, "AWS control operation refused");
                aws_error(e.status, e.error, &e.message)
            }
        };
    }

    let mut results = match aws.entries(&body, &state.buses, state.limits.max_event_bytes, now) {
        Ok(results) => results,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return aws_error(status, e.code, &e.message);
        }
    };
    // As EventBridge answers per entry, an entry refused by its schema fails alone.
    for result in results.iter_mut() {
        let refused = match result {
            Ok(a) => state
                .schemas
                .check(&a.bus, Entrance::Aws, &mut a.event)
                .err(),
            Err(_) => None,
        };
        if let Some(r) = refused {
            *result = Err(EntryError {
                code: crate::ingress::SCHEMA_ERROR_CODE,
                message: crate::ingress::describe_rejection(&r),
            });
        }
    }
    let accepted: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|a| (&state.buses[&a.bus], &a.event))
        .collect();
    if !accepted.is_empty() {
        let mut redis = state.redis.clone();
        let buses: Vec<&str> = accepted.iter().map(|(b, _)| b.name.as_str()).collect();
        if let Err(e) = bus::append_to(&mut redis, accepted.into_iter(), "aws").await {
            warn!(error = %e, "PutEvents append failed; answering 503");
            return aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "the event store is unavailable; retry later",
            );
        }
        for bus in buses {
            state.metrics.ingested(bus, Via::Aws, 1);
        }
    }

    let failed = results.iter().filter(|r| r.is_err()).count();
    let entries: Vec<serde_json::Value> = results
        .iter()
        .map(|r| match r {
            Ok(a) => json!({"EventId": a.event.id}),
            Err(e) => json!({"ErrorCode": e.code, "ErrorMessage": e.message}),
        })
        .collect();
    debug!(entries = entries.len(), failed, "PutEvents answered");
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
        .body(json!({"FailedEntryCount": failed, "Entries": entries}).to_string())
}
