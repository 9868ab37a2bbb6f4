//! The dispatcher of one target: reads the target stream through the `dispatch`
//! consumer group and delivers each entry, at most `concurrency` at a time.
//!
//! An entry is acknowledged (and deleted) only after the target answered 2xx, or after
//! it was written to the target's dead-letter stream (the DLQ `XADD` and the `XACK` +
//! `XDEL` in one MULTI/EXEC). A failed delivery is retried by the task holding it, on the
//! schedule of the target's `retry` policy (see docs/delivery.md); while it waits, the
//! task resets the entry's idle time every `claim_idle / 3` so no other replica takes it
//! over. Entries of a replica that died are claimed after `delivery.claim_idle` (the
//! attempt count then starts again; the age limit does not, it counts from ingestion).
//! Each target
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
use crate::config::RetryConfig;
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
    pub retry: RetryConfig,
    /// The dead-letter stream.
    pub dlq_key: String,
}

/// Replica-wide delivery timing.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// How often a waiting retry resets its entry's idle time (`claim_idle / 3`).
    pub touch_every: Duration,
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
                delivery.touch_every,
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

/// One failed attempt, as kept in the DLQ.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    /// When the attempt started (RFC 3339, UTC).
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub error: String,
    pub latency_ms: u64,
}

/// A random duration in `[low, high]`.
fn jitter(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = (high - low).as_nanos();
    let r = uuid::Uuid::new_v4().as_u128() % (span + 1);
    low + Duration::from_nanos(u64::try_from(r).unwrap_or(u64::MAX))
}

/// The wait before attempt `failed + 1`, after `failed` failed attempts (>= 1):
/// uniformly random between `initial` and `min(max, initial * 2^(failed-1))`.
pub fn backoff(policy: &RetryConfig, failed: u32) -> Duration {
    let ceiling = policy
        .initial
        .checked_mul(1u32 << (failed.saturating_sub(1)).min(30))
        .unwrap_or(policy.max)
        .min(policy.max);
    jitter(policy.initial, ceiling)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Delivers one entry until it succeeds, is dead-lettered, or shutdown begins.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    spec: Arc<TargetSpec>,
    entry: Entry,
    _permit: OwnedSemaphorePermit,
    mut shared: ConnectionManager,
    consumer: String,
    touch_every: Duration,
    acks: mpsc::UnboundedSender<String>,
    shutdown: CancellationToken,
) {
    let decoded = entry.body.as_ref().map_err(Clone::clone).and_then(|raw| {
        let ingested_ms = raw.origin.as_deref().and_then(bus::entry_time_ms);
        Ok((raw.to_event()?, ingested_ms, raw))
    });
    let (event, ingested_ms, raw) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            // Not written by Sluice: it can never be delivered.
            error!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, entry = %entry.id, error = %e, "dropping malformed target entry");
            let _ = acks.send(entry.id);
            return;
        }
    };
    // The age limit counts from ingestion, or from the redrive of a redriven entry.
    let born_ms = if raw.redriven {
        bus::entry_time_ms(&entry.id)
    } else {
        ingested_ms.or_else(|| bus::entry_time_ms(&entry.id))
    }
    .unwrap_or_else(now_ms);
    let event_id = event.id();
    let ctx = Context {
        bus: &spec.bus,
        rule: &spec.rule,
        ingested_ms,
    };
    let policy = &spec.retry;
    let max_age_ms = policy.max_age.as_millis() as u64;
    let mut attempts: Vec<Attempt> = Vec::new();
    let reason = loop {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let started = tokio::time::Instant::now();
        let outcome = spec.target.deliver(&event, &ctx).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let error = match outcome {
            Ok(status) => {
                debug!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempt = attempts.len() + 1, status, latency_ms, "delivered");
                let _ = acks.send(entry.id);
                return;
            }
            Err(e) => e,
        };
        attempts.push(Attempt {
            at,
            status: error.status(),
            error: error.to_string(),
            latency_ms,
        });
        let failed = attempts.len() as u32;
        let age_ms = now_ms().saturating_sub(born_ms);
        if !error.is_retryable() {
            break match error.status() {
                Some(status) => format!("status {status}"),
                None => error.to_string(),
            };
        }
        if failed >= policy.max_attempts {
            break "attempts exhausted".to_string();
        }
        if age_ms >= max_age_ms {
            break "max age".to_string();
        }
        let delay = match error.retry_after() {
            // At least `initial`: `Retry-After: 0` must not become a tight loop.
            Some(asked) => asked.clamp(policy.initial, policy.max),
            None => backoff(policy, failed),
        }
        // The last attempt happens when the event reaches max_age.
        .min(Duration::from_millis(max_age_ms - age_ms));
        warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempt = failed, error = %error, delay_ms = delay.as_millis() as u64, "delivery failed; will retry");
        // Wait, touching the entry now, every `touch_every`, and before the attempt.
        let until = tokio::time::Instant::now() + delay;
        loop {
            match bus::touch(&mut shared, &spec.key, DISPATCH_GROUP, &consumer, &entry.id).await {
                Ok(true) => {}
                // Claimed by another replica after a long stall (or acknowledged): it
                // carries on from there; delivering here too would duplicate it.
                Ok(false) => {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, "entry taken over by another replica; letting it go");
                    return;
                }
                Err(e) => {
                    debug!(target = %spec.name, error = %e, "could not refresh a pending entry")
                }
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep((until - now).min(touch_every)) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    };
    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempts = attempts.len(), %reason, "dead-lettering");
    let attempts_json = serde_json::to_string(&attempts).unwrap_or_else(|_| "[]".into());
    let mut backoff = Backoff::default();
    loop {
        match bus::dead_letter(
            &mut shared,
            &spec.key,
            &spec.dlq_key,
            DISPATCH_GROUP,
            &consumer,
            &entry.id,
            raw,
            event_id,
            &reason,
            &attempts_json,
        )
        .await
        {
            Ok(true) => return,
            Ok(false) => {
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, "entry taken over by another replica before dead-lettering; letting it go");
                return;
            }
            Err(e) => {
                // Still pending: retried here, or by whoever claims it after a restart.
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, error = %e, "writing to the dead-letter stream failed; retrying");
                if shutdown.is_cancelled() {
                    return;
                }
                backoff.wait(&shutdown).await;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds() {
        let policy = RetryConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            ..RetryConfig::default()
        };
        for _ in 0..200 {
            assert_eq!(backoff(&policy, 1), Duration::from_secs(1));
            let d = backoff(&policy, 4);
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(8),
                "{d:?}"
            );
            let d = backoff(&policy, 100);
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(300),
                "{d:?}"
            );
        }
        let fixed = RetryConfig {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(200),
            ..RetryConfig::default()
        };
        assert_eq!(backoff(&fixed, 7), Duration::from_millis(200));
    }
}
