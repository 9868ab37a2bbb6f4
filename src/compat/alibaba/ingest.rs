//! The Alibaba Cloud EventBridge PutEvents-compatible endpoint, `POST
//! /openapi/putEvents`: a CloudEvents JSON batch, signed the way the Alibaba SDKs sign
//! (see `super::acs`), answered with one result per event:
//! `{"RequestId", "ResourceOwnerAccountId", "FailedEntryCount", "EntryList"}`. Valid
//! events are appended (one MULTI/EXEC, with `dedupe: off`) even when others fail, and the 200 goes out only
//! once Redis acknowledged them. Errors of the whole request are
//! `{"requestId", "code", "message"}` (what the SDKs read), 503 when Redis is down.
//!
//! A signed request's `x-acs-signature-nonce` is recorded in Redis (`SET NX PX`) once
//! the signature verifies, and a reused one is refused (403 `SignatureNonceUsed`). With
//! `alibaba.dedupe` (default 24h) an event whose (bus, `source`, `id`) was appended
//! within the window is not appended again but answered as a success (the SDKs retry
//! on timeouts with the same event ids); each event is then its own append script.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tracing::{debug, warn};

use super::acs::{nonce_key, SignedRequest};
use super::putevents::{event_dedupe_key, EntryError};
use crate::bus;
use crate::event::cloudevents;
use crate::ingress::{read_body, Ingress};
use crate::observability::metrics::Via;
use crate::schema::gate::Entrance;

fn unavailable(request_id: &str, e: &bus::BusError) -> HttpResponse {
    warn!(error = %e, "Alibaba PutEvents: Redis unavailable; answering 503");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        request_id,
        "ServiceUnavailable",
        "the event store is unavailable; retry later",
    )
}

fn error(status: StatusCode, request_id: &str, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header(("Retry-After", "1"));
    }
    response.json(json!({"requestId": request_id, "code": code, "message": message}))
}

pub(crate) async fn put_events(
    req: HttpRequest,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
) -> HttpResponse {
    let state = live.get();
    let Some(alibaba) = &state.alibaba else {
        return crate::ingress::not_found(req).await;
    };
    let request_id = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
    let batch = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::ingress::media_type)
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
        let verified = match verified {
            Ok(verified) => verified,
            Err(e) => {
                warn!(code = e.code, reason = %e.message, "Alibaba PutEvents request refused");
                let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN);
                return error(status, &request_id, e.code, &e.message);
            }
        };
        // The nonce is signed: a request seen before (a replay) is refused. Recorded for
        // twice the date window, so a replay is refused by its date once it is forgotten.
        let ttl = u64::try_from(verifier.nonce_ttl().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut redis = state.redis.clone();
        let recorded: Result<Option<String>, _> = bus::within(
            redis::cmd("SET")
                .arg(nonce_key(&verified.key_id, &verified.nonce))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async(&mut redis),
        )
        .await;
        match recorded {
            Ok(Some(_)) => {}
            Ok(None) => {
                warn!(
                    code = "SignatureNonceUsed",
                    key_id = %verified.key_id,
                    "Alibaba PutEvents request refused: nonce already used"
                );
                return error(
                    StatusCode::FORBIDDEN,
                    &request_id,
                    "SignatureNonceUsed",
                    "Specified signature nonce was used already.",
                );
            }
            Err(e) => return unavailable(&request_id, &e),
        }
    }

    let mut results = match alibaba.entries(&body, &state.buses, state.limits.max_event_bytes) {
        Ok(results) => results,
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, &request_id, e.code, &e.message);
        }
    };
    // Bridge traces: a copy of an event that was on this gateway before is answered as
    // a success and not appended (see `event::bridge`).
    for accepted in results.iter_mut().flatten() {
        accepted.returned = crate::ingress::returned(&mut accepted.event, &state.gateway_id);
    }
    // Per entry, as the rest of this API: an event refused by its schema fails alone.
    for result in results.iter_mut() {
        let refused = match result {
            Ok(a) if !a.returned => state
                .schemas
                .check(&a.bus, Entrance::Alibaba, &mut a.event)
                .err()
                .map(|r| (a.event.id.clone(), r)),
            _ => None,
        };
        if let Some((id, r)) = refused {
            *result = Err(EntryError {
                event_id: Some(id),
                code: crate::ingress::SCHEMA_ERROR_CODE,
                message: crate::ingress::describe_rejection(&r),
            });
        }
    }
    let accepted: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|a| !a.returned)
        .collect();
    if !accepted.is_empty() {
        let mut redis = state.redis.clone();
        let appended = match alibaba.dedupe {
            // One script per event, pipelined in order (so a repeat within the batch
            // is a duplicate of the first). Not atomic across the batch: after a
            // failure the producer's retry appends only what is missing.
            Some(window) => {
                let events: Vec<_> = accepted
                    .iter()
                    .map(|a| {
                        let key = event_dedupe_key(&a.bus, &a.source, &a.event.id);
                        (&state.buses[&a.bus], &a.event, key)
                    })
                    .collect();
                bus::append_once_each(&mut redis, &events, window)
                    .await
                    .map(|appended| {
                        for (a, appended) in accepted.iter().zip(appended) {
                            if appended {
                                state.metrics.ingested(&a.bus, Via::Alibaba, 1);
                            } else {
                                debug!(bus = %a.bus, id = %a.event.id, "Alibaba PutEvents duplicate not appended");
                            }
                        }
                    })
            }
            None => {
                let result = bus::append_to(
                    &mut redis,
                    accepted
                        .iter()
                        .map(|a| (&state.buses[&a.bus], &a.event))
                        .collect::<Vec<_>>()
                        .into_iter(),
                )
                .await;
                if result.is_ok() {
                    for a in &accepted {
                        state.metrics.ingested(&a.bus, Via::Alibaba, 1);
                    }
                }
                result
            }
        };
        if let Err(e) = appended {
            return unavailable(&request_id, &e);
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
