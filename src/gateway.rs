//! One Sluice replica: the HTTP ingress, a router per bus and a dispatcher per target,
//! wired to one Redis, with a graceful shutdown on SIGINT/SIGTERM.
//!
//! Shutdown order: stop accepting requests and finish the ones in progress (their
//! appends complete), then stop reading streams, give in-flight deliveries
//! `delivery.shutdown_timeout`, and leave everything else pending in Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bus::{self, BusSpec};
use crate::control::{self, ControlAuth};
use crate::dispatch::chain::OnSuccess;
use crate::dispatch::limits::{Breaker, RateLimiter};
use crate::dispatch::{self, DeliverySettings, TargetSpec};
use crate::functions::invoke_api::{self, InvokeApi};
use crate::functions::FunctionHost;
use crate::ingress::{self, EchoSink, Ingress};
use crate::observability::metrics::{self, Metrics, Scrape, TargetLabels};
use crate::plan::Plan;
use crate::router::{self, StreamSettings};
use crate::schema::{self, gate::SchemaGate};
use crate::targets::{Target, TargetEnv};
use tracing::Instrument;

/// How long a blocking stream read waits for new entries.
const READ_BLOCK: Duration = Duration::from_secs(1);

/// What a replica runs with, after command-line and environment overrides.
pub struct Settings {
    /// The compiled configuration (see [`crate::plan`]).
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
        plan,
        redis_url,
        listen,
        dev_echo,
    } = settings;
    let shared = bus::connect(&redis_url)
        .with_context(|| format!("invalid Redis URL {}", redact(&redis_url)))?;
    let shutdown = CancellationToken::new();
    let consumer = consumer_name();
    info!(%consumer, redis = %redact(&redis_url), "starting replica");

    let needs_aws = plan.needs_aws();
    let Plan {
        config,
        gateway_id,
        api_token,
        buses: bus_plans,
        sources,
        aws,
        aws_keys,
        alibaba,
    } = plan;
    let stream = StreamSettings {
        consumer,
        batch_size: config.delivery.batch_size,
        block: READ_BLOCK,
        claim_idle: config.delivery.claim_idle,
    };
    let delivery = DeliverySettings {
        shutdown_timeout: config.delivery.shutdown_timeout,
    };

    let metrics = Arc::new(Metrics::new());
    // Functions start before the dispatchers that invoke them; min_instances warm now.
    let function_host = Arc::new(FunctionHost::start(
        &config.functions,
        config
            .aws
            .as_ref()
            .map_or("us-east-1", |a| a.region.as_str()),
        config.aws.as_ref().and_then(|a| a.account.as_deref()),
    ));
    let mut target_env = TargetEnv::load(gateway_id.clone(), needs_aws).await;
    target_env.functions = Some(function_host.clone());
    let mut scraped_targets = Vec::new();
    let mut dlq_targets = Vec::new();
    let mut ingest_tokens = HashMap::new();
    let mut workers = tokio::task::JoinSet::new();
    for bus_plan in bus_plans {
        if let Some(token) = bus_plan.ingest_token {
            ingest_tokens.insert(bus_plan.name.clone(), token);
        }
        let reader = bus::connect_blocking(&redis_url, READ_BLOCK)?;
        let span = tracing::info_span!("router", bus = %bus_plan.name);
        workers.spawn(
            router::run(
                Arc::new(bus_plan.routes),
                reader,
                shared.clone(),
                stream.clone(),
                shutdown.clone(),
            )
            .instrument(span),
        );
        for mut target in bus_plan.targets {
            let labels = TargetLabels {
                bus: target.bus.clone(),
                rule: target.rule.clone(),
                target: target.name.clone(),
            };
            scraped_targets.push(labels.clone());
            dlq_targets.push((target.bus.clone(), target.rule.clone(), target.name.clone()));
            let built = target
                .built
                .take()
                .context("a target of the plan was started twice")?;
            let spec = TargetSpec {
                rate: target.rate.as_ref().map(|rate| {
                    RateLimiter::new(
                        bus::rate_key(&target.bus, &target.rule, &target.name),
                        rate,
                        metrics.clone(),
                        labels.clone(),
                    )
                }),
                breaker: target
                    .breaker
                    .as_ref()
                    .map(|b| Breaker::new(b, target.timeout, metrics.clone(), labels.clone())),
                ordering: target.ordering.take(),
                metrics: metrics.clone(),
                labels,
                key: bus::target_key(&target.bus, &target.rule, &target.name),
                concurrency: target.concurrency,
                retry: target.retry.clone(),
                dlq_key: bus::dlq_key(&target.bus, &target.rule, &target.name),
                target: Target::start(built, target.timeout, target.concurrency, &target_env)
                    .with_context(|| format!("target {}/{}", target.rule, target.name))?,
                on_success: target.on_success.take().map(|o| OnSuccess {
                    conn: shared.clone(),
                    bus: BusSpec {
                        key: bus::bus_key(&o.bus),
                        name: o.bus,
                    },
                    source: o.source,
                    ty: o.ty,
                    max_event_bytes: config.limits.max_event_bytes,
                    origin: format!("{}/{}/{}", target.bus, target.rule, target.name),
                }),
                bus: target.bus,
                rule: target.rule,
                name: target.name,
            };
            let span = tracing::info_span!("dispatcher", bus = %spec.bus, rule = %spec.rule, target = %spec.name);
            let reader = bus::connect_blocking(&redis_url, READ_BLOCK)?;
            workers.spawn(
                dispatch::run(
                    Arc::new(spec),
                    reader,
                    shared.clone(),
                    stream.clone(),
                    delivery.clone(),
                    shutdown.clone(),
                )
                .instrument(span),
            );
        }
    }

    for c in &config.connectors {
        let sdk = target_env
            .aws
            .as_ref()
            .context("the AWS environment is not loaded")?;
        let connector = crate::connectors::sqs::SqsConnector::new(c, sdk, &gateway_id)
            .with_context(|| format!("connector {}", c.name))?;
        let span = tracing::info_span!("connector", connector = %c.name);
        workers.spawn(
            crate::connectors::sqs::run(
                Arc::new(connector),
                shared.clone(),
                metrics.clone(),
                shutdown.clone(),
            )
            .instrument(span),
        );
    }

    let buses: HashMap<String, BusSpec> = config
        .buses
        .iter()
        .map(|b| {
            let spec = BusSpec {
                name: b.name.to_string(),
                key: bus::bus_key(&b.name),
            };
            (b.name.to_string(), spec)
        })
        .collect();
    let (gate, samples) = SchemaGate::from_config(&config, metrics.clone());
    let gate = Arc::new(gate);
    // Versions stored in Redis are in force before the first event is served.
    if let Err(e) = gate.reload(&mut shared.clone()).await {
        warn!(error = %e, "loading stored schemas failed; the reload task retries");
    }
    workers.spawn(schema::gate::run_reload(
        gate.clone(),
        shared.clone(),
        shutdown.clone(),
    ));
    if let Some(samples) = samples {
        workers.spawn(schema::discovery::run(
            samples,
            shared.clone(),
            shutdown.clone(),
        ));
    }
    let ingress = web::Data::new(Ingress {
        buses,
        redis: shared.clone(),
        limits: config.limits.clone(),
        sources,
        aws,
        alibaba,
        metrics: metrics.clone(),
        gateway_id: gateway_id.clone(),
        ingest_tokens,
        schemas: gate.clone(),
    });
    let scrape = web::Data::new(Scrape {
        metrics: metrics.clone(),
        redis: shared.clone(),
        buses: config.buses.iter().map(|b| b.name.to_string()).collect(),
        targets: scraped_targets,
    });
    let control_auth = ControlAuth { token: api_token };
    let dlq_api = web::Data::new(control::dlq::DlqApi {
        redis: shared.clone(),
        buses: config.buses.iter().map(|b| b.name.to_string()).collect(),
        targets: dlq_targets,
    });
    let echo = dev_echo.then(|| web::Data::new(EchoSink::default()));
    let invoke = web::Data::new(InvokeApi::new(
        function_host.clone(),
        config.aws.as_ref(),
        &aws_keys,
    ));
    let server = HttpServer::new(move || {
        let counted = metrics.clone();
        App::new()
            .app_data(ingress.clone())
            .app_data(scrape.clone())
            .app_data(invoke.clone())
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
            .configure(|cfg| control::configure(cfg, control_auth.clone(), dlq_api.clone()))
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
    info!(%listen, buses = config.buses.len(), rules = config.rules.len(), "listening");

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
    while let Some(result) = workers.join_next().await {
        if let Err(e) = result {
            warn!(error = %e, "a worker ended abnormally");
        }
    }
    // Deliveries are done (or left pending): no instance is needed any more.
    function_host.shutdown().await;
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
