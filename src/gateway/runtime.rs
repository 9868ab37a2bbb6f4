//! The running part of a replica that a hot reload changes: a router per bus, a
//! dispatcher per target, the function host, and what the HTTP handlers read (the
//! ingress's buses and sources, the metrics' and DLQ API's lists of targets).
//!
//! [`Runtime::apply`] takes a new plan and compares it with what runs, by name:
//! - a bus's router keeps running with its routes swapped (the next batch read is routed
//!   by the new rules); it restarts only when the bus becomes exclusive or stops being so;
//! - a target whose configuration is unchanged keeps its dispatcher; a changed one gets
//!   a new dispatcher at once while the old one finishes its in-flight deliveries under
//!   the configuration they started with (`delivery.shutdown_timeout`); retries scheduled
//!   by the old one are made by the new one, with the new configuration;
//! - a removed target's dispatcher stops; its stream, retries and DLQ stay in Redis, and
//!   a target created again with the same bus, rule and name delivers what was left;
//! - a removed bus's router stops; its stream stays (a bus created again resumes it).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn, Instrument};

use super::READ_BLOCK;
use crate::archive::ArchivePlan;
use crate::bus::{self, BusSpec};
use crate::compat::aws::AwsConfig;
use crate::config::{Config, Limits};
use crate::control::dlq::DlqApi;
use crate::dispatch::chain::OnSuccess;
use crate::dispatch::limits::{Breaker, Gone, RateLimiter};
use crate::dispatch::{self, DeliverySettings, TargetSpec};
use crate::functions::invoke_api::InvokeApi;
use crate::functions::FunctionHost;
use crate::ingress::Ingress;
use crate::live::Live;
use crate::observability::metrics::{Metrics, Scrape, TargetLabels};
use crate::plan::{Plan, TargetPlan};
use crate::router::{self, BusRoutes, StreamSettings};
use crate::schema::gate::SchemaGate;
use crate::targets::{Target, TargetEnv};

/// (bus, rule, target)
pub type TargetId = (String, String, String);

/// What a replica takes from the file's plan at start and keeps: the sections a reload
/// does not change (a change to them is logged as needing a restart).
pub struct Fixed {
    redis_url: String,
    shared: ConnectionManager,
    stream: StreamSettings,
    delivery: DeliverySettings,
    metrics: Arc<Metrics>,
    schemas: Arc<SchemaGate>,
    tokens: Arc<crate::control::auth::Tokens>,
    limits: Limits,
    gateway_id: String,
    aws: Option<AwsConfig>,
    aws_keys: Vec<(String, Vec<u8>)>,
    target_env: TargetEnv,
    /// The fixed sections as read, to tell a reload that changed one.
    restart_only: String,
}

impl Fixed {
    pub async fn new(
        plan: &Plan,
        redis_url: String,
        shared: ConnectionManager,
        stream: StreamSettings,
        metrics: Arc<Metrics>,
        schemas: Arc<SchemaGate>,
        tokens: Arc<crate::control::auth::Tokens>,
    ) -> Fixed {
        let config = &plan.config;
        Fixed {
            redis_url,
            shared,
            stream,
            delivery: DeliverySettings {
                shutdown_timeout: config.delivery.shutdown_timeout,
            },
            metrics,
            schemas,
            tokens,
            limits: config.limits.clone(),
            gateway_id: plan.gateway_id.clone(),
            aws: config.aws.clone(),
            aws_keys: plan.aws_keys.clone(),
            target_env: TargetEnv::load(plan.gateway_id.clone(), plan.needs_aws()).await,
            restart_only: restart_only(config),
        }
    }
}

/// The sections read once at start, as text to compare.
fn restart_only(c: &Config) -> String {
    format!(
        "{:?}",
        (
            &c.listen,
            &c.redis,
            &c.limits,
            &c.delivery,
            &c.aws,
            &c.alibaba,
            &c.connectors,
            &c.gateway_id,
            &c.schemas,
            &c.api
        )
    )
}

struct RouterTask {
    routes: Arc<ArcSwap<BusRoutes>>,
    exclusive: bool,
    stop: CancellationToken,
}

struct DispatcherTask {
    fingerprint: String,
    stop: CancellationToken,
    /// Cancelled when the task has ended (every attempt finished or left pending).
    done: CancellationToken,
}

pub struct Runtime {
    fixed: Fixed,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    host: Arc<FunctionHost>,
    /// `functions:` of the running host, to tell a change.
    functions: String,
    routers: HashMap<String, RouterTask>,
    dispatchers: HashMap<TargetId, DispatcherTask>,
    /// Running archivers by (bus, archive), with the plan each runs.
    archivers: HashMap<(String, String), (ArchivePlan, CancellationToken)>,
    pub ingress: actix_web::web::Data<Live<Ingress>>,
    pub scrape: actix_web::web::Data<Live<Scrape>>,
    pub dlq: actix_web::web::Data<Live<DlqApi>>,
    pub invoke: actix_web::web::Data<Live<InvokeApi>>,
}

impl Runtime {
    pub fn new(fixed: Fixed, tasks: TaskTracker, shutdown: CancellationToken) -> Runtime {
        let host = Arc::new(FunctionHost::start(&[], region(&fixed.aws), None));
        let ingress = Ingress {
            buses: HashMap::new(),
            redis: fixed.shared.clone(),
            limits: fixed.limits.clone(),
            sources: HashMap::new(),
            aws: None,
            alibaba: None,
            metrics: fixed.metrics.clone(),
            gateway_id: fixed.gateway_id.clone(),
            ingest_tokens: HashMap::new(),
            ingest_auth: Default::default(),
            tokens: fixed.tokens.clone(),
            schemas: fixed.schemas.clone(),
            in_force: false,
        };
        let scrape = Scrape {
            metrics: fixed.metrics.clone(),
            redis: fixed.shared.clone(),
            buses: Vec::new(),
            targets: Vec::new(),
        };
        let dlq = DlqApi {
            redis: fixed.shared.clone(),
            buses: Vec::new(),
            targets: Vec::new(),
        };
        let invoke = InvokeApi::new(host.clone(), fixed.aws.as_ref(), &fixed.aws_keys);
        Runtime {
            tasks,
            shutdown,
            host,
            functions: "[]".into(),
            routers: HashMap::new(),
            dispatchers: HashMap::new(),
            archivers: HashMap::new(),
            ingress: actix_web::web::Data::new(Live::new(ingress)),
            scrape: actix_web::web::Data::new(Live::new(scrape)),
            dlq: actix_web::web::Data::new(Live::new(dlq)),
            invoke: actix_web::web::Data::new(Live::new(invoke)),
            fixed,
        }
    }

    pub fn aws(&self) -> Option<&aws_config::SdkConfig> {
        self.fixed.target_env.aws.as_ref()
    }

    /// Serves ingest for the plan's buses and sources (nothing is routed yet).
    pub fn serve_ingress(&mut self, plan: &Plan) {
        self.ingress.set(self.ingress_of(plan, false));
    }

    fn ingress_of(&self, plan: &Plan, in_force: bool) -> Ingress {
        let fixed = &self.fixed;
        Ingress {
            buses: plan
                .config
                .buses
                .iter()
                .map(|b| {
                    let spec = BusSpec::of(&b.name, &plan.config.buses, &fixed.stream.consumer);
                    (b.name.to_string(), spec)
                })
                .collect(),
            redis: fixed.shared.clone(),
            limits: fixed.limits.clone(),
            sources: plan.sources.clone(),
            aws: plan.aws.clone(),
            alibaba: plan.alibaba.clone(),
            metrics: fixed.metrics.clone(),
            gateway_id: fixed.gateway_id.clone(),
            ingest_tokens: plan
                .buses
                .iter()
                .filter_map(|b| Some((b.name.clone(), b.ingest_token.clone()?)))
                .collect(),
            ingest_auth: plan
                .config
                .buses
                .iter()
                .filter(|b| b.ingest_auth)
                .map(|b| b.name.to_string())
                .collect(),
            tokens: fixed.tokens.clone(),
            schemas: fixed.schemas.clone(),
            in_force,
        }
    }

    /// Puts `plan` in force (see the module documentation). `fingerprints` identify each
    /// target's configuration; `restart_all` restarts every dispatcher (SIGHUP: secret
    /// files may have changed behind unchanged references).
    pub async fn apply(
        &mut self,
        mut plan: Plan,
        fingerprints: &HashMap<TargetId, String>,
        restart_all: bool,
    ) {
        if restart_only(&plan.config) != self.fixed.restart_only {
            warn!("listen, redis, limits, delivery, aws, alibaba, connectors, gateway_id, schemas or api changed: they take effect after a restart");
        }
        if plan.needs_aws() && self.fixed.target_env.aws.is_none() {
            let env = TargetEnv::load(self.fixed.gateway_id.clone(), true).await;
            self.fixed.target_env.aws = env.aws;
        }
        // Functions first: the dispatchers that invoke them start on the new host.
        let functions = format!("{:?}", plan.config.functions);
        let mut old_host = None;
        if functions != self.functions {
            let host = Arc::new(FunctionHost::start(
                &plan.config.functions,
                region(&self.fixed.aws),
                self.fixed.aws.as_ref().and_then(|a| a.account.as_deref()),
            ));
            old_host = Some(std::mem::replace(&mut self.host, host));
            self.functions = functions.clone();
            self.invoke.set(InvokeApi::new(
                self.host.clone(),
                self.fixed.aws.as_ref(),
                &self.fixed.aws_keys,
            ));
        }
        let host_changed = old_host.is_some();
        self.fixed.target_env.functions = Some(self.host.clone());

        // Read before the buses are taken apart below.
        let ingress = self.ingress_of(&plan, true);
        let mut stopped = Vec::new();
        let mut wanted: HashMap<TargetId, ()> = HashMap::new();
        let mut started = 0;
        let config = plan.config.clone();
        for bus_plan in &mut plan.buses {
            for target in bus_plan.targets.drain(..) {
                let id: TargetId = (target.bus.clone(), target.rule.clone(), target.name.clone());
                let is_function =
                    matches!(target.built, Some(crate::targets::BuiltTarget::Function(_)));
                let mut fingerprint = fingerprints.get(&id).cloned().unwrap_or_default();
                if is_function {
                    fingerprint.push_str(&functions);
                }
                wanted.insert(id.clone(), ());
                if let Some(running) = self.dispatchers.get(&id) {
                    if running.fingerprint == fingerprint
                        && !restart_all
                        && !(is_function && host_changed)
                    {
                        continue;
                    }
                }
                // The new dispatcher starts once the old one is done: its attempts in
                // flight finish under their configuration, and what it read but did not
                // start is taken up by the new one (same consumer), never twice.
                let after = match self.dispatchers.remove(&id) {
                    Some(old) => {
                        old.stop.cancel();
                        stopped.push(old.done.clone());
                        Some(old.done)
                    }
                    None => None,
                };
                match self.start_dispatcher(target, &config, after) {
                    Ok((stop, done)) => {
                        started += 1;
                        self.dispatchers.insert(
                            id,
                            DispatcherTask {
                                fingerprint,
                                stop,
                                done,
                            },
                        );
                    }
                    Err(e) => {
                        error!(bus = %id.0, rule = %id.1, target = %id.2, error = %format!("{e:#}"), "cannot start the target; its events wait in its stream")
                    }
                }
            }
        }
        let gone: Vec<TargetId> = self
            .dispatchers
            .keys()
            .filter(|id| !wanted.contains_key(*id))
            .cloned()
            .collect();
        for id in &gone {
            if let Some(old) = self.dispatchers.remove(id) {
                old.stop.cancel();
                stopped.push(old.done);
            }
        }

        // Archivers, like dispatchers, before the routers that feed them.
        let archives: Vec<ArchivePlan> = plan
            .buses
            .iter_mut()
            .flat_map(|b| b.archives.drain(..))
            .collect();
        self.apply_archives(archives);

        // Routers after the dispatchers: a new target's stream is read from the start.
        let mut buses = Vec::new();
        for bus_plan in plan.buses.drain(..) {
            buses.push(bus_plan.name.clone());
            let routes = bus_plan.routes;
            match self.routers.get(&bus_plan.name) {
                Some(running) if running.exclusive == routes.exclusive => {
                    running.routes.store(Arc::new(routes));
                }
                _ => {
                    if let Some(old) = self.routers.remove(&bus_plan.name) {
                        old.stop.cancel();
                    }
                    self.start_router(bus_plan.name.clone(), routes);
                }
            }
        }
        self.routers.retain(|name, task| {
            let keep = buses.contains(name);
            if !keep {
                task.stop.cancel();
            }
            keep
        });

        // What the handlers read.
        self.ingress.set(ingress);
        let mut targets: Vec<TargetId> = self.dispatchers.keys().cloned().collect();
        targets.sort();
        self.scrape.set(Scrape {
            metrics: self.fixed.metrics.clone(),
            redis: self.fixed.shared.clone(),
            buses: buses.clone(),
            targets: targets
                .iter()
                .map(|(bus, rule, target)| TargetLabels {
                    bus: bus.clone(),
                    rule: rule.clone(),
                    target: target.clone(),
                })
                .collect(),
        });
        self.dlq.set(DlqApi {
            redis: self.fixed.shared.clone(),
            buses,
            targets,
        });
        info!(
            buses = self.routers.len(),
            targets = self.dispatchers.len(),
            started,
            stopped = stopped.len(),
            "configuration in force"
        );
        // The old host's instances are needed until its dispatchers are done.
        if let Some(old) = old_host {
            self.tasks.spawn(async move {
                for done in stopped {
                    done.cancelled().await;
                }
                old.shutdown().await;
            });
        }
    }

    /// Starts the archivers of new or changed archives and stops those of removed ones.
    fn apply_archives(&mut self, archives: Vec<ArchivePlan>) {
        let wanted: Vec<(String, String)> = archives
            .iter()
            .map(|a| (a.bus.clone(), a.name.clone()))
            .collect();
        self.archivers.retain(|id, (_, stop)| {
            let keep = wanted.contains(id);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for plan in archives {
            let id = (plan.bus.clone(), plan.name.clone());
            if self
                .archivers
                .get(&id)
                .is_some_and(|(running, _)| *running == plan)
            {
                continue;
            }
            if let Some((_, stop)) = self.archivers.remove(&id) {
                stop.cancel();
            }
            let reader = match bus::connect_blocking(&self.fixed.redis_url, READ_BLOCK) {
                Ok(reader) => reader,
                Err(e) => {
                    error!(bus = %plan.bus, archive = %plan.name, error = %e, "cannot connect the archiver");
                    continue;
                }
            };
            let stop = self.shutdown.child_token();
            let span = tracing::info_span!("archiver", bus = %plan.bus, archive = %plan.name);
            self.tasks.spawn(
                crate::archive::run(
                    plan.clone(),
                    reader,
                    self.fixed.shared.clone(),
                    self.fixed.stream.clone(),
                    stop.clone(),
                )
                .instrument(span),
            );
            self.archivers.insert(id, (plan, stop));
        }
    }

    fn start_router(&mut self, name: String, routes: BusRoutes) {
        let exclusive = routes.exclusive;
        let routes = Arc::new(ArcSwap::from_pointee(routes));
        let stop = self.shutdown.child_token();
        let reader = match bus::connect_blocking(&self.fixed.redis_url, READ_BLOCK) {
            Ok(reader) => reader,
            Err(e) => {
                error!(bus = %name, error = %e, "cannot connect the router");
                return;
            }
        };
        let span = tracing::info_span!("router", bus = %name);
        self.tasks.spawn(
            router::run(
                routes.clone(),
                reader,
                self.fixed.shared.clone(),
                self.fixed.stream.clone(),
                stop.clone(),
            )
            .instrument(span),
        );
        self.routers.insert(
            name,
            RouterTask {
                routes,
                exclusive,
                stop,
            },
        );
    }

    fn start_dispatcher(
        &self,
        mut target: TargetPlan,
        config: &Config,
        after: Option<CancellationToken>,
    ) -> anyhow::Result<(CancellationToken, CancellationToken)> {
        use anyhow::Context;
        let fixed = &self.fixed;
        let metrics = &fixed.metrics;
        let labels = TargetLabels {
            bus: target.bus.clone(),
            rule: target.rule.clone(),
            target: target.name.clone(),
        };
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
            gone: Gone::new(
                bus::gone_key(&target.bus, &target.rule, &target.name),
                fixed.shared.clone(),
                metrics.clone(),
                labels.clone(),
            ),
            ordering: target.ordering.take(),
            trace: target.trace,
            metrics: metrics.clone(),
            labels,
            key: bus::target_key(&target.bus, &target.rule, &target.name),
            concurrency: target.concurrency,
            retry: target.retry.clone(),
            dlq_key: bus::dlq_key(&target.bus, &target.rule, &target.name),
            target: Target::start(built, target.timeout, target.concurrency, &fixed.target_env)?,
            on_success: target.on_success.take().map(|o| OnSuccess {
                conn: fixed.shared.clone(),
                bus: BusSpec::of(&o.bus, &config.buses, &fixed.stream.consumer),
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
        let reader = bus::connect_blocking(&fixed.redis_url, READ_BLOCK)?;
        let stop = self.shutdown.child_token();
        let done = CancellationToken::new();
        let finished = done.clone().drop_guard();
        let run = dispatch::run(
            Arc::new(spec),
            reader,
            fixed.shared.clone(),
            fixed.stream.clone(),
            fixed.delivery.clone(),
            stop.clone(),
        );
        self.tasks.spawn(
            async move {
                let _finished = finished;
                if let Some(previous) = after {
                    previous.cancelled().await;
                }
                run.await;
            }
            .instrument(span),
        );
        Ok((stop, done))
    }

    /// Stops the function host's instances (after every dispatcher has stopped).
    pub async fn shutdown_functions(self) {
        self.host.shutdown().await;
    }
}

fn region(aws: &Option<AwsConfig>) -> &str {
    aws.as_ref().map_or("us-east-1", |a| a.region.as_str())
}
