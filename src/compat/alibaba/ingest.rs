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

/// Checks the request's `acs:` signature and records its nonce (a replay is refused);
/// `Ok` with the AccessKey id (`None` with `auth: none`), `Err` with the answer.
async fn verify(
    req: &HttpRequest,
    body: &[u8],
    state: &Ingress,
    alibaba: &super::putevents::AlibabaIngest,
    request_id: &str,
) -> Result<Option<String>, HttpResponse> {
    let Some(verifier) = &alibaba.verifier else {
        return Ok(None);
    };
    let verified = verifier.verify(&SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: req.query_string(),
        headers: req.headers(),
        body,
        now: chrono::Utc::now(),
    });
    let verified = match verified {
        Ok(verified) => verified,
        Err(e) => {
            warn!(code = e.code, reason = %e.message, "Alibaba request refused");
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN);
            return Err(error(status, request_id, e.code, &e.message));
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
        Ok(Some(_)) => Ok(Some(verified.key_id)),
        Ok(None) => {
            warn!(
                code = "SignatureNonceUsed",
                key_id = %verified.key_id,
                "Alibaba request refused: nonce already used"
            );
            Err(error(
                StatusCode::FORBIDDEN,
                request_id,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ))
        }
        Err(e) => Err(unavailable(request_id, &e)),
    }
}

/// `POST /openapi/{action}`: the control actions of the Alibaba SDK ([`super::control`]),
/// signed as putEvents; answered with `RequestId` and `ResourceOwnerAccountId`.
pub(crate) async fn control(
    req: HttpRequest,
    mut payload: web::Payload,
    action: web::Path<String>,
    live: web::Data<crate::live::Live<Ingress>>,
    resources: Option<web::Data<crate::control::resources::ResourceApi>>,
) -> HttpResponse {
    let state = live.get();
    let (Some(alibaba), Some(resources)) = (&state.alibaba, resources) else {
        return crate::ingress::not_found(req).await;
    };
    let request_id = uuid::Uuid::new_v4().to_string().to_ascii_uppercase();
    let body = match read_body(&req, &mut payload, state.limits.max_request_bytes).await {
        Ok(body) => body,
        Err(e) => return error(e.status, &request_id, "InvalidArgument", &e.message),
    };
    let key_id = match verify(&req, &body, &state, alibaba, &request_id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    // Without signatures (`auth: none`) only loopback clients may change the configuration.
    let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    if key_id.is_none() && !loopback {
        return error(
            StatusCode::FORBIDDEN,
            &request_id,
            "AccessDenied",
            "control actions need signed requests (alibaba.auth: signature) unless the client is on loopback",
        );
    }
    let account = alibaba.account.as_deref().unwrap_or("0");
    let region = req
        .headers()
        .get("x-eventbridge-regionid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("local");
    let caller = super::control::Caller {
        actor: format!("alibaba:{}", key_id.as_deref().unwrap_or("anonymous")),
        region,
        account,
    };
    match super::control::handle(&action, &body, &resources, &caller).await {
        Ok(mut answer) => {
            answer["RequestId"] = request_id.into();
            answer["ResourceOwnerAccountId"] = account.into();
            HttpResponse::Ok().json(answer)
        }
        Err(e) => {
            debug!(action = %action, code = e.error, message = %e.message, "Alibaba control action refused");
            error(e.status, &request_id, e.error, &e.message)
        }
    }
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
    if let Err(refused) = verify(&req, &body, &state, alibaba, &request_id).await {
        return refused;
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
                bus::append_once_each(&mut redis, &events, window, "alibaba")
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
                    "alibaba",
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
