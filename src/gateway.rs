//! One Sluice replica: the HTTP ingress, a router per bus and a dispatcher per target,
//! wired to one Redis, with hot reload and a graceful shutdown on SIGINT/SIGTERM.
//!
//! What runs comes from the file given to `serve` merged with the configuration store
//! (`control::document`). The reloader task follows the store's change stream (and
//! SIGHUP, which re-reads the file), builds a new plan off the hot path and hands it to
//! [`runtime::Runtime::apply`], which starts, swaps and stops tasks by name.
//!
//! Shutdown order: stop accepting requests and finish the ones in progress (their
//! appends complete), then stop reading streams, give in-flight deliveries
//! `delivery.shutdown_timeout`, and leave everything else pending in Redis.

mod reloader;
mod runtime;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::bus;
use crate::control::document::FileDoc;
use crate::control::{self, auth::Tokens};
use crate::functions::invoke_api;
use crate::ingress::{self, EchoSink};
use crate::live::Live;
use crate::observability::metrics::{self, Metrics};
use crate::plan::Plan;
use crate::router::StreamSettings;
use crate::schema::{self, gate::SchemaGate};

pub use runtime::Fixed;

/// How long a blocking stream read waits for new entries.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// What a replica runs with, after command-line and environment overrides.
pub struct Settings {
    /// The file given to `serve` (empty without one), as a document to merge.
    pub file: FileDoc,
    /// The file's own plan (checked before starting): its global sections (`limits`,
    /// `delivery`, `aws`, `schemas`, `api`, ...) are fixed for the life of the process.
    pub plan: Plan,
    pub redis_url: String,
    pub listen: String,
    /// Mount the `/dev/echo` target (`sluice dev`).
    pub dev_echo: bool,
}

/// A consumer name unique to this process, so replicas never share pending entries.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sluice".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &id[..8])
}

/// Runs a replica until SIGINT or SIGTERM.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let Settings {
        file,
        plan,
        redis_url,
        listen,
        dev_echo,
    } = settings;
    let shared = bus::connect(&redis_url)
        .with_context(|| format!("invalid Redis URL {}", redact(&redis_url)))?;
    let shutdown = CancellationToken::new();
    let consumer = consumer_name();
    let consumer_id = consumer.clone();
    info!(%consumer, redis = %redact(&redis_url), "starting replica");

    let config = plan.config.clone();
    let stream = StreamSettings {
        consumer,
        batch_size: config.delivery.batch_size,
        block: READ_BLOCK,
        claim_idle: config.delivery.claim_idle,
    };
    let metrics = Arc::new(Metrics::new());
    let (gate, samples) = SchemaGate::from_plan(&plan, metrics.clone());
    let gate = Arc::new(gate);
    let tasks = tokio_util::task::TaskTracker::new();
    // Versions stored in Redis are in force before the first event is served.
    if let Err(e) = gate.reload(&mut shared.clone()).await {
        warn!(error = %e, "loading stored schemas failed; the reload task retries");
    }
    tasks.spawn(schema::gate::run_reload(
        gate.clone(),
        shared.clone(),
        shutdown.clone(),
    ));
    if let Some(samples) = samples {
        tasks.spawn(schema::discovery::run(
            samples,
            shared.clone(),
            shutdown.clone(),
        ));
    }

    // The bootstrap admin token: `api.token`, else SLUICE_API_TOKEN.
    let bootstrap = plan.api_token.as_ref().map(|t| t.0.clone()).or_else(|| {
        std::env::var("SLUICE_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(String::into_bytes)
    });
    let tokens = Arc::new(Tokens::new(bootstrap.as_deref()));
    tasks.spawn(control::auth::run_refresh(
        tokens.clone(),
        shared.clone(),
        shutdown.clone(),
    ));

    // Replays run on whichever replica holds each one's lease.
    tasks.spawn(crate::replay::supervise(
        shared.clone(),
        stream.clone(),
        shutdown.clone(),
    ));

    let fixed = Fixed::new(
        &plan,
        redis_url.clone(),
        shared.clone(),
        stream,
        metrics.clone(),
        gate,
        tokens.clone(),
    )
    .await;
    let mut runtime = runtime::Runtime::new(fixed, tasks.clone(), shutdown.clone());
    // Ingest for the file's buses and sources at once; routers and dispatchers start
    // from the first plan that includes the store (the reloader's first step).
    runtime.serve_ingress(&plan);

    crate::connectors::spawn_all(
        &config.connectors,
        crate::connectors::Env {
            buses: config.buses.clone(),
            replica: consumer_id.clone(),
            gateway_id: plan.gateway_id.clone(),
            redis: shared.clone(),
            metrics: metrics.clone(),
            aws: runtime.aws().cloned(),
            shutdown: shutdown.clone(),
        },
        &tasks,
    )?;

    let ingress = runtime.ingress.clone();
    let scrape = runtime.scrape.clone();
    let dlq_api = runtime.dlq.clone();
    let invoke = runtime.invoke.clone();
    let file = Arc::new(Live::new(file));
    let (applied_tx, applied) = tokio::sync::watch::channel(0u64);
    let resources = web::Data::new(control::resources::ResourceApi {
        redis: shared.clone(),
        file: file.clone(),
        applied,
    });
    let control_auth = web::Data::from(tokens.clone());
    drop(plan);
    let mut reloader = reloader::Reloader::new(runtime, file, &redis_url, applied_tx)
        .with_context(|| format!("invalid Redis URL {}", redact(&redis_url)))?;
    // The store's configuration in force before the first request, when Redis answers;
    // otherwise the reloader keeps trying and /readyz says so meanwhile.
    reloader
        .step()
        .instrument(tracing::info_span!("reloader"))
        .await;
    let reloader = tokio::spawn(
        reloader
            .run(shutdown.clone())
            .instrument(tracing::info_span!("reloader")),
    );

    let echo = dev_echo.then(|| web::Data::new(EchoSink::default()));
    let server = HttpServer::new(move || {
        let counted = metrics.clone();
        App::new()
            .app_data(ingress.clone())
            .app_data(scrape.clone())
            .app_data(invoke.clone())
            // The AWS facade's operations write through the resource API.
            .app_data(resources.clone())
            .service(web::resource("/metrics").route(web::get().to(metrics::serve)))
            // Every 4xx answer of the ingress, by class (not those of the control API
            // or the Lambda Invoke API: they reject no events).
            .wrap_fn(move |req, srv| {
                let counted = counted.clone();
                let path = req.path();
                let ingest = !(path.starts_with("/api/") || path.starts_with("/2015-03-31/"));
                let answer = srv.call(req);
                async move {
                    let answer = answer.await;
                    if ingest {
                        match &answer {
                            Ok(res) => counted.answered(res.status()),
                            Err(e) => counted.answered(e.as_response_error().status_code()),
                        }
                    }
                    answer
                }
            })
            .configure(|cfg| ingress::configure(cfg, echo.clone()))
            .configure(|cfg| {
                control::configure(
                    cfg,
                    control_auth.clone(),
                    dlq_api.clone(),
                    resources.clone(),
                )
            })
            .configure(invoke_api::configure)
            .default_service(web::to(ingress::not_found))
    })
    .disable_signals()
    .shutdown_timeout(config.delivery.shutdown_timeout.as_secs().max(1))
    .bind(&listen)
    .with_context(|| format!("cannot listen on {listen}"))?
    .run();
    let handle = server.handle();
    let mut server = tokio::spawn(server);
    info!(%listen, "listening");

    tokio::select! {
        signal = shutdown_signal() => info!(signal, "shutting down"),
        result = &mut server => {
            shutdown.cancel();
            result??;
            anyhow::bail!("HTTP server stopped unexpectedly");
        }
    }
    // Finish in-flight requests (and their appends) before anything else stops.
    handle.stop(true).await;
    shutdown.cancel();
    let runtime = reloader.await;
    tasks.close();
    tasks.wait().await;
    // Deliveries are done (or left pending): no instance is needed any more.
    match runtime {
        Ok(runtime) => runtime.shutdown_functions().await,
        Err(e) => warn!(error = %e, "the reloader ended abnormally"),
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// A Redis URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
