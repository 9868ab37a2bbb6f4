//! `POST /webhooks/{source}`: a SaaS webhook, verified on its raw body bytes,
//! normalised to a CloudEvent and appended to the source's bus.
//!
//! Answers: 202 `{"id"}` once Redis acknowledged the append; 200 `{"id","duplicate":true}`
//! for a redelivery inside the dedupe window (nothing appended); 200 `{"challenge"}` for
//! Slack's URL verification; 401 for anything that fails verification, with one body for
//! every reason (the reason goes to the log only); 404 unknown source; 413 too large;
//! 503 with `Retry-After` when Redis does not acknowledge.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::{debug, warn};

use super::{read_body, unavailable, ApiError, Ingress};
use crate::bus;
use crate::config::SourceKind;
use crate::observability::metrics::Via;
use crate::schema::gate::Entrance;
use crate::sources::envelope::{self, Mapped};
use crate::sources::{Outcome, Request, Source};

pub(super) async fn receive(
    req: HttpRequest,
    name: web::Path<String>,
    mut payload: web::Payload,
    live: web::Data<crate::live::Live<Ingress>>,
) -> Result<HttpResponse, ApiError> {
    let state = live.get();
    let source = state.sources.get(name.as_str()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_source",
            format!("no webhook source named {:?}", name.as_str()),
        )
        .field("source")
    })?;
    let body = read_body(&req, &mut payload, state.limits.max_request_bytes).await?;
    let now = chrono::Utc::now();
    let verified = source.verifier.verify(&Request {
        headers: req.headers(),
        query: req.query_string(),
        body: &body,
        now: now.timestamp(),
    });
    if let Err(rejection) = verified {
        // Which check failed is for the operator, not for whoever sent the request.
        warn!(source = %source.name, kind = source.kind.as_str(), reason = rejection.reason(), "webhook rejected");
        state.metrics.webhook_rejected(&source.name);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the request could not be verified",
        ));
    }

    if source.kind == SourceKind::AwsApiDestination {
        return api_destination(&state, source, &body).await;
    }
    let mut normalized = match source.normalize(req.headers(), body, now) {
        Outcome::Challenge(challenge) => {
            debug!(source = %source.name, "answered the URL verification challenge");
            return Ok(HttpResponse::Ok().json(serde_json::json!({ "challenge": challenge })));
        }
        Outcome::Event(n) => n,
    };
    let bus = &state.buses[&source.bus];
    if let Err(r) = state.schemas.check(
        &bus.name,
        Entrance::Webhook(&source.name),
        &mut normalized.event,
    ) {
        return Err(ApiError::schema(vec![(
            None,
            normalized.event.id.clone(),
            r,
        )]));
    }
    let event = &normalized.event;
    within_event_limit(&state, event)?;

    let mut redis = state.redis.clone();
    let appended = match source.dedupe.filter(|_| normalized.provider_id) {
        Some(window) => {
            let key = bus::dedupe_key(&bus.name, &source.name, &event.id);
            bus::append_once(&mut redis, bus, event, &key, window, "webhook").await
        }
        None => bus::append(&mut redis, bus, std::slice::from_ref(event), "webhook")
            .await
            .map(|()| true),
    }
    .map_err(|e| unavailable(&bus.name, e))?;

    let id = serde_json::Value::from(event.id.as_str());
    if appended {
        state.metrics.ingested(&bus.name, Via::Webhook, 1);
        debug!(source = %source.name, bus = %bus.name, id = %event.id, "webhook accepted");
        Ok(HttpResponse::Accepted().json(serde_json::json!({ "id": id })))
    } else {
        debug!(source = %source.name, id = %event.id, "duplicate webhook delivery");
        Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "duplicate": true })))
    }
}

/// An EventBridge API destination's request: the event envelope, mapped by
/// `sources::envelope`, deduplicated on the EventBridge event id. 202 `{"id"}` once
/// appended; 200 `{"id","duplicate":true}` for a redelivery; 200
/// `{"id","returned":true}` for an event that was on this gateway before (bridge trace).
async fn api_destination(
    state: &Ingress,
    source: &Source,
    body: &[u8],
) -> Result<HttpResponse, ApiError> {
    let mut event = match envelope::map(body, &state.gateway_id, source.peer.as_deref()) {
        Ok(Mapped::Event(event)) => event,
        Ok(Mapped::Returned { id }) => {
            debug!(source = %source.name, id, "dropped an event that was on this gateway before");
            return Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "returned": true })));
        }
        Err(message) => {
            let field = message.split(':').next().unwrap_or("").to_string();
            let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", message);
            if !field.contains(' ') {
                e = e.field(field);
            }
            return Err(e);
        }
    };
    within_event_limit(state, &event)?;
    let bus = &state.buses[&source.bus];
    if let Err(r) = state
        .schemas
        .check(&bus.name, Entrance::Webhook(&source.name), &mut event)
    {
        return Err(ApiError::schema(vec![(None, event.id.clone(), r)]));
    }
    let mut redis = state.redis.clone();
    let appended = match source.dedupe {
        Some(window) => {
            let key = bus::dedupe_key(&bus.name, &source.name, &event.id);
            bus::append_once(&mut redis, bus, &event, &key, window, "webhook").await
        }
        None => bus::append(&mut redis, bus, std::slice::from_ref(&event), "webhook")
            .await
            .map(|()| true),
    }
    .map_err(|e| unavailable(&bus.name, e))?;
    let id = serde_json::Value::from(event.id.as_str());
    if appended {
        state.metrics.ingested(&bus.name, Via::Webhook, 1);
        Ok(HttpResponse::Accepted().json(serde_json::json!({ "id": id })))
    } else {
        Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id, "duplicate": true })))
    }
}

/// 413 for an event over `max_event_bytes`.
fn within_event_limit(state: &Ingress, event: &crate::event::EncodedEvent) -> Result<(), ApiError> {
    let max_event = state.limits.max_event_bytes;
    if event.size() > max_event {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "event_too_large",
            format!(
                "event is {} bytes, over the {max_event}-byte limit",
                event.size()
            ),
        ));
    }
    Ok(())
}
