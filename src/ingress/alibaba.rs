//! The Alibaba Cloud EventBridge PutEvents-compatible endpoint, `POST
//! /openapi/putEvents`: a CloudEvents JSON batch, signed the way the Alibaba SDKs sign
//! (see `sources::alibaba`), answered with one result per event:
//! `{"RequestId", "ResourceOwnerAccountId", "FailedEntryCount", "EntryList"}`. Valid
//! events are appended (one MULTI/EXEC) even when others fail, and the 200 goes out only
//! once Redis acknowledged them. Errors of the whole request are
//! `{"requestId", "code", "message"}` (what the SDKs read), 503 when Redis is down.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tracing::{debug, warn};

use super::{read_body, Ingress};
use crate::bus;
use crate::event::cloudevents;
use crate::sources::alibaba::SignedRequest;

fn error(status: StatusCode, request_id: &str, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "1"));
    }
    response.json(json!({"requestId": request_id, "code": code, "message": message}))
}

pub(super) async fn put_events(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<Ingress>,
) -> HttpResponse {
    let Some(alibaba) = &state.alibaba else {
        return super::not_found(req).await;
    };
    let request_id = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
    let batch = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(super::media_type)
        .is_some_and(|t| {
            t.eq_ignore_ascii_case(cloudevents::BATCH) || t.eq_ignore_ascii_case("application/json")
        });
    if !batch {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &request_id,
            "InvalidArgument",
            "content-type must be application/cloudevents-batch+json",
        );
    }
    let body = match read_body(&req, &mut payload, state.limits.max_request_bytes).await {
        Ok(body) => body,
        Err(e) => return error(e.status, &request_id, "InvalidArgument", &e.message),
    };
    if let Some(verifier) = &alibaba.verifier {
        let verified = verifier.verify(&SignedRequest {
            method: req.method().as_str(),
            path: req.path(),
            query: req.query_string(),
            headers: req.headers(),
            body: &body,
            now: chrono::Utc::now(),
        });
        if let Err(e) = verified {
            warn!(code = e.code, reason = %e.message, "Alibaba PutEvents request refused");
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN);
            return error(status, &request_id, e.code, &e.message);
        }
    }

    let results = match alibaba.entries(&body, &state.buses, state.limits.max_event_bytes) {
        Ok(results) => results,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, &request_id, e.code, &e.message);
        }
    };
    let accepted: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|a| (&state.buses[&a.bus], &a.event))
        .collect();
    if !accepted.is_empty() {
        let mut redis = state.redis.clone();
        if let Err(e) = bus::append_to(&mut redis, accepted.into_iter()).await {
            warn!(error = %e, "Alibaba PutEvents append failed; answering 503");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &request_id,
                "ServiceUnavailable",
                "the event store is unavailable; retry later",
            );
        }
    }

    let failed = results.iter().filter(|r| r.is_err()).count();
    let entries: Vec<serde_json::Value> = results
        .iter()
        .map(|r| match r {
            Ok(a) => json!({
                "EventId": a.event.id,
                "TraceId": uuid::Uuid::new_v4().simple().to_string(),
            }),
            Err(e) => {
                let mut entry = json!({"ErrorCode": e.code, "ErrorMessage": e.message});
                if let Some(id) = &e.event_id {
                    entry["EventId"] = id.as_str().into();
                }
                entry
            }
        })
        .collect();
    debug!(
        entries = entries.len(),
        failed, "Alibaba PutEvents answered"
    );
    HttpResponse::Ok().json(json!({
        "RequestId": request_id,
        "ResourceOwnerAccountId": alibaba.account.as_deref().unwrap_or(""),
        "FailedEntryCount": failed,
        "EntryList": entries,
    }))
}
