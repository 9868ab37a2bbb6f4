//! The control API under `/api/v1`: reads and operations on the gateway's state in
//! Redis (dead-letter queues, schemas, ...). Every request needs the bearer token of
//! `api.token`; without one configured, only loopback clients are served, so a fresh
//! `sluice dev` is usable and a gateway on a public address is not open by default.
//!
//! Each area registers its routes in its own sub-module through [`configure`].

mod schemas;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, Error, ResponseError};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::ingress::error::ApiError;

pub mod dlq;
pub mod document;
mod openapi;
pub mod resources;
pub mod store;
mod tools;

/// Who may call the control API.
#[derive(Debug, Clone, Default)]
pub struct ControlAuth {
    /// The bearer token; `None`: loopback clients only.
    pub token: Option<Secret>,
}

/// Mounts the control API at `/api/v1`. `auth` guards every route.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    auth: ControlAuth,
    dlq: web::Data<crate::live::Live<dlq::DlqApi>>,
    resources: web::Data<resources::ResourceApi>,
) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::Data::new(auth))
            .app_data(dlq)
            .app_data(resources)
            .wrap(from_fn(authorize))
            // Areas add their routes here: `.configure(area::routes)`.
            .configure(openapi::routes)
            .configure(dlq::routes)
            .configure(schemas::routes)
            .configure(resources::routes)
            .configure(tools::routes),
    );
}

/// Refuses requests without the token (401) or, with no token configured, from a
/// non-loopback peer (403).
async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let auth = req
        .app_data::<web::Data<ControlAuth>>()
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    let refusal = match &auth.token {
        Some(token) => {
            let given = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match given {
                Some(given) if bool::from(given.as_bytes().ct_eq(&token.0)) => None,
                Some(_) => Some(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the bearer token is wrong",
                )),
                None => Some(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the control API needs an authorization: Bearer header (api.token)",
                )),
            }
        }
        None => {
            let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
            (!loopback).then(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "without api.token the control API only serves loopback clients",
                )
            })
        }
    };
    match refusal {
        Some(e) => {
            let mut response = e.error_response();
            if e.status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer"),
                );
            }
            Ok(req.into_response(response))
        }
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}
