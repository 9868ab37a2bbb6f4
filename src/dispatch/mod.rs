//! The dispatcher of one target: reads the target stream through the `dispatch`
//! consumer group and delivers each entry, at most `concurrency` at a time.
//!
//! An entry is acknowledged (and deleted) only after the target answered 2xx. A failed
//! delivery is retried after `delivery.retry_delay`, for as long as it takes; while it
//! waits, the dispatcher resets the entry's idle time so no other replica takes it over.
//! Entries of a replica that died are claimed after `delivery.claim_idle`. Each target
//! has its own task, stream, connection pool and concurrency limit, so a slow or dead
//! target holds up only its own events.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::bus::{self, Entry, DISPATCH_GROUP};
use crate::router::{Backoff, StreamSettings};
use crate::rules::transform::Context;
use crate::targets::HttpTarget;

/// One target of one rule, ready to deliver.
#[derive(Debug)]
pub struct TargetSpec {
    pub bus: String,
    pub rule: String,
    pub name: String,
    pub key: String,
    pub concurrency: usize,
    pub target: HttpTarget,
}

/// Replica-wide delivery timing.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_delay: Duration,
    pub shutdown_timeout: Duration,
}

/// Runs the dispatcher of one target until `shutdown` is cancelled, then lets in-flight
/// deliveries finish for up to `shutdown_timeout` and leaves the rest pending.
pub async fn run(
    spec: Arc<TargetSpec>,
    mut reader: ConnectionManager,
    shared: ConnectionManager,
    stream: StreamSettings,
    delivery: DeliverySettings,
    shutdown: CancellationToken,
) {
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(acknowledge(spec.clone(), shared.clone(), ack_rx));
    let permits = Arc::new(Semaphore::new(spec.concurrency));
    let mut in_flight = JoinSet::new();
    let mut backoff = Backoff::default();
    let mut last_claim = tokio::time::Instant::now();
    let mut group_ready = false;

    while !shutdown.is_cancelled() {
        while in_flight.try_join_next().is_some() {}
        if !group_ready {
            match bus::ensure_group(&mut reader, &spec.key, DISPATCH_GROUP).await {
                Ok(()) => group_ready = true,
                Err(e) => {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "cannot create dispatch group; retrying");
                    backoff.wait(&shutdown).await;
                    continue;
                }
            }
        }
        // Read only as many entries as there are free delivery slots.
        let first = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let count = (permits.available_permits() + 1).min(stream.batch_size);
        let entries = if last_claim.elapsed() >= stream.claim_interval() {
            last_claim = tokio::time::Instant::now();
            stream
                .claim_abandoned(&mut reader, &spec.key, DISPATCH_GROUP, count)
                .await
        } else {
            bus::read_group(
                &mut reader,
                &spec.key,
                DISPATCH_GROUP,
                &stream.consumer,
                count,
                stream.block,
            )
            .await
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                drop(first);
                group_ready = !bus::is_missing_group(&e);
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "reading the target stream failed; retrying");
                backoff.wait(&shutdown).await;
                continue;
            }
        };
        backoff.reset();
        let mut first = Some(first);
        for entry in entries {
            let permit = match first.take() {
                Some(p) => p,
                None => permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed"),
            };
            in_flight.spawn(deliver(
                spec.clone(),
                entry,
                permit,
                shared.clone(),
                stream.consumer.clone(),
                delivery.retry_delay,
                ack_tx.clone(),
                shutdown.clone(),
            ));
        }
    }

    // Shutdown: in-flight deliveries get a deadline; whatever is unfinished stays pending
    // in Redis and is claimed by another replica (or this one, restarted).
    let drained = tokio::time::timeout(delivery.shutdown_timeout, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, left = in_flight.len(), "shutdown deadline passed; leaving deliveries pending");
        in_flight.abort_all();
    }
    drop(ack_tx);
    let _ = acker.await;
}

/// Delivers one entry until it succeeds or shutdown begins.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    spec: Arc<TargetSpec>,
    entry: Entry,
    _permit: OwnedSemaphorePermit,
    mut shared: ConnectionManager,
    consumer: String,
    retry_delay: Duration,
    acks: mpsc::UnboundedSender<String>,
    shutdown: CancellationToken,
) {
    let decoded = entry.body.as_ref().map_err(Clone::clone).and_then(|raw| {
        let ingested_ms = raw.origin.as_deref().and_then(bus::entry_time_ms);
        Ok((raw.to_event()?, ingested_ms))
    });
    let (event, ingested_ms) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            // Not written by Sluice: it can never be delivered.
            error!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, entry = %entry.id, error = %e, "dropping malformed target entry");
            let _ = acks.send(entry.id);
            return;
        }
    };
    let event_id = event.id();
    let ctx = Context {
        bus: &spec.bus,
        rule: &spec.rule,
        ingested_ms,
    };
    let mut attempt = 1u32;
    loop {
        let started = tokio::time::Instant::now();
        match spec.target.deliver(&event, &ctx).await {
            Ok(status) => {
                debug!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempt, status, latency_ms = started.elapsed().as_millis() as u64, "delivered");
                let _ = acks.send(entry.id);
                return;
            }
            Err(e) => {
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempt, error = %e, "delivery failed; will retry");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry_delay) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) =
            bus::touch(&mut shared, &spec.key, DISPATCH_GROUP, &consumer, &entry.id).await
        {
            debug!(target = %spec.name, error = %e, "could not refresh a pending entry");
        }
        attempt += 1;
    }
}

/// Acknowledges delivered entries in batches (XACK + XDEL in one pipeline).
async fn acknowledge(
    spec: Arc<TargetSpec>,
    mut conn: ConnectionManager,
    mut ids: mpsc::UnboundedReceiver<String>,
) {
    let mut batch = Vec::new();
    while let Some(id) = ids.recv().await {
        batch.push(id);
        while batch.len() < 1024 {
            match ids.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        // Until the ack lands the entries stay pending: a failure here means a
        // duplicate delivery later, never a lost one. Retry a few times, then give up.
        for attempt in 0..10u64 {
            match bus::ack_delete(&mut conn, &spec.key, DISPATCH_GROUP, &batch).await {
                Ok(()) => break,
                Err(e) => {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, attempt, "acknowledging deliveries failed");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        batch.clear();
    }
}
