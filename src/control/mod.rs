//! The control API under `/api/v1`: resources (buses, rules, sources, functions), the
//! gateway's state in Redis (dead-letter queues, schemas, ...), tokens and the audit
//! stream. Every request is authorized by `auth.rs` (bearer tokens with roles; without
//! any token configured, only loopback clients are served, so a fresh `sluice dev` is
//! usable and a gateway on a public address is not open by default).
//!
//! Each area registers its routes in its own sub-module through [`configure`].

mod schemas;

use actix_web::middleware::from_fn;
use actix_web::web;

pub mod auth;
pub mod dlq;
pub mod document;
pub mod events;
mod openapi;
pub mod replays;
pub mod resources;
pub mod store;
mod tools;

/// Mounts the control API at `/api/v1`; `tokens` authorize every route (`auth.rs`).
pub fn configure(
    cfg: &mut web::ServiceConfig,
    tokens: web::Data<auth::Tokens>,
    dlq: web::Data<crate::live::Live<dlq::DlqApi>>,
    resources: web::Data<resources::ResourceApi>,
) {
    // RocketMQ-EventBridge's control API, authorized as the native one.
    cfg.service(
        web::scope("/{area:bus|rule|target|source|connection|api-destination}")
            .app_data(tokens.clone())
            .app_data(resources.clone())
            .wrap(from_fn(auth::authorize))
            .route(
                "/{action}",
                web::post().to(crate::compat::rocketmq::control),
            ),
    );
    // The CloudEvents Subscriptions API, authorized as the native one.
    cfg.service(
        web::scope("/subscriptions")
            .app_data(tokens.clone())
            .app_data(resources.clone())
            .wrap(from_fn(auth::authorize))
            .configure(crate::compat::subscriptions::routes),
    );
    cfg.service(
        web::scope("/api/v1")
            .app_data(tokens)
            .app_data(dlq)
            .app_data(resources)
            .wrap(from_fn(auth::authorize))
            // Areas add their routes here: `.configure(area::routes)`.
            .configure(openapi::routes)
            .configure(dlq::routes)
            .configure(events::routes)
            .configure(replays::routes)
            .configure(schemas::routes)
            .configure(resources::routes)
            .configure(tools::routes)
            .configure(auth::routes),
    );
}
