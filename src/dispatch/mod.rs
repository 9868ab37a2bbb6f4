//! The dispatcher of one target: reads the target stream through the `dispatch`
//! consumer group and delivers each entry, at most `concurrency` at a time.
//!
//! An entry is acknowledged (and deleted) only after the target answered 2xx, after it
//! was written to the target's dead-letter stream, or after it was moved to the target's
//! delay set for a retry (each move one ownership-checked script: writes first, then the
//! `XACK` + `XDEL`). A task holds an entry for one attempt only: a failed attempt that
//! may be retried moves the entry, with its attempt history, into the delay set, due
//! after the wait of the target's `retry` policy (see docs/delivery.md), and frees its
//! delivery slot at once. Every [`PROMOTE_EVERY`], the dispatcher moves due entries back
//! to the target stream, where they are read like new ones and continue their attempt
//! count. Entries of a replica that died are claimed after `delivery.claim_idle`. Each
//! target has its own task, stream, connection pool and concurrency limit, so a slow or
//! dead target holds up only its own events.

pub mod chain;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

pub mod limits;
mod ordered;

use crate::bus::{self, DelayKeys, Entry, RawEntry, DISPATCH_GROUP};
use crate::config::RetryConfig;
use crate::event::Event;
use crate::observability::metrics::{Metrics, TargetLabels};
use crate::observability::trace::{self, Tracing};
use crate::router::{Backoff, StreamSettings};
use crate::rules::select::Path;
use crate::rules::transform::Context;
use crate::targets::{Delivered, DeliveryError, Target};
use limits::{Breaker, Gate, Gone, Health, RateLimiter};

/// One target of one rule, ready to deliver.
#[derive(Debug)]
pub struct TargetSpec {
    pub bus: String,
    pub rule: String,
    pub name: String,
    pub key: String,
    pub concurrency: usize,
    pub target: Target,
    pub retry: RetryConfig,
    /// The dead-letter stream.
    pub dlq_key: String,
    pub metrics: Arc<Metrics>,
    /// The target's labels in `metrics`.
    pub labels: TargetLabels,
    pub rate: Option<RateLimiter>,
    pub breaker: Option<Breaker>,
    /// Paused after a `410 Gone` until resumed through the API.
    pub gone: Gone,
    /// The ordering key: with one, events of a key are delivered one after the other
    /// (see `ordered`).
    pub ordering: Option<Path>,
    /// `on_success`: where the target's result is chained (see [`chain`]).
    pub on_success: Option<chain::OnSuccess>,
    /// The bus's `trace:`: attempts at traced events go into their traces.
    pub trace: Option<Tracing>,
}

/// Replica-wide delivery timing.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub shutdown_timeout: Duration,
}

/// Most attempts an entry carries in its history (and its DLQ entry lists): the latest.
pub const HISTORY_LIMIT: usize = 200;

/// How often a dispatcher moves due retries from its delay set back to its stream.
pub const PROMOTE_EVERY: Duration = Duration::from_millis(200);

/// Moves due retries back to the target stream until `shutdown`; a full batch is
/// followed by the next one at once.
async fn promote(spec: Arc<TargetSpec>, mut conn: ConnectionManager, shutdown: CancellationToken) {
    let keys = DelayKeys::new(&spec.bus, &spec.rule, &spec.name);
    let mut failing = false;
    while !shutdown.is_cancelled() {
        match bus::promote(&mut conn, &keys).await {
            Ok(n) => {
                failing = false;
                if n > 0 {
                    debug!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, n, "retries due");
                }
                if n >= bus::PROMOTE_BATCH {
                    continue;
                }
            }
            Err(e) => {
                if !failing {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "moving due retries failed; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PROMOTE_EVERY) => {}
            _ = shutdown.cancelled() => {}
        }
    }
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
    if spec.ordering.is_some() {
        return ordered::run(spec, reader, shared, stream, delivery, shutdown).await;
    }
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let mut limiter_conn = shared.clone();
    let acker = tokio::spawn(acknowledge(spec.clone(), shared.clone(), ack_rx));
    let promoter = tokio::spawn(promote(spec.clone(), shared.clone(), shutdown.clone()));
    let permits = Arc::new(Semaphore::new(spec.concurrency));
    let mut in_flight = JoinSet::new();
    let mut backoff = Backoff::default();
    let mut last_claim = tokio::time::Instant::now();
    let mut group_ready = false;
    // The last read found nothing.
    let mut idle = false;
    let mut own_pending = true;
    spec.gone.refresh().await;

    while !shutdown.is_cancelled() {
        while in_flight.try_join_next().is_some() {}
        // A target that answered 410 Gone: its events wait in Redis, unread.
        if spec.gone.is_paused() {
            if !spec.gone.wait_resumed(&shutdown).await {
                break;
            }
            continue;
        }
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
        // A paused target's events wait in Redis, unread.
        let probe = match spec.breaker.as_ref().map(Breaker::gate) {
            None => false,
            Some(Gate::Go { probe }) => probe,
            Some(Gate::Wait(d)) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        // Read only as many entries as there are free delivery slots (one to probe a
        // half-open breaker), and the rate limit allows.
        let first = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let mut count = if probe {
            1
        } else {
            (permits.available_permits() + 1).min(stream.batch_size)
        };
        if let Some(limiter) = &spec.rate {
            // An idle target waits for its next event holding one token, not a batch's
            // worth that other replicas could use meanwhile.
            if idle {
                count = 1;
            }
            match limiter
                .acquire(count as u32, &mut limiter_conn, &shutdown)
                .await
            {
                Some(granted) => count = granted as usize,
                None => break,
            }
        }
        let entries = if own_pending {
            // What an earlier dispatcher of this target in this process left pending
            // (a hot reload replaced it): this consumer's own entries, first.
            let pending = bus::read_own_pending(
                &mut reader,
                &spec.key,
                DISPATCH_GROUP,
                &stream.consumer,
                count,
            )
            .await;
            // Until a read of them succeeds with less than a full batch.
            own_pending = pending.as_ref().map_or(true, |p| p.len() == count);
            pending
        } else if last_claim.elapsed() >= stream.claim_interval() {
            last_claim = tokio::time::Instant::now();
            stream
                .claim_abandoned(&mut reader, &spec.key, DISPATCH_GROUP, count)
                .await
        } else {
            let read = bus::read_group(
                &mut reader,
                &spec.key,
                DISPATCH_GROUP,
                &stream.consumer,
                count,
                stream.block,
            );
            tokio::pin!(read);
            tokio::select! {
                read = &mut read => read,
                // Stopped (shutdown or a reload): the blocking read is let end (at most
                // `block`), so what it takes is pending on this consumer before the next
                // dispatcher of this target (same consumer) looks for its own pending
                // entries. Dropped, the command would still run on Redis and could take
                // an entry after that look, leaving it to the claim after `claim_idle`.
                _ = shutdown.cancelled() => {
                    let _ = tokio::time::timeout(stream.block + Duration::from_secs(2), &mut read).await;
                    break;
                }
            }
        };
        let read = entries.as_ref().map_or(0, Vec::len);
        idle = read == 0;
        if let Some(limiter) = &spec.rate {
            limiter
                .give_back((count - read.min(count)) as u32, &mut limiter_conn)
                .await;
        }
        if probe && read == 0 {
            if let Some(breaker) = &spec.breaker {
                breaker.probe_unused();
            }
        }
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
        if shutdown.is_cancelled() {
            // Read after the stop: not delivered under a configuration no longer in
            // force; pending, the next dispatcher of this target reads them first.
            break;
        }
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
                ack_tx.clone(),
                shutdown.clone(),
            ));
        }
    }

    // No more reads: a blocked one still in Redis would take entries for nobody.
    drop(reader);
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
    let _ = promoter.await;
}

/// One failed attempt, as kept in the DLQ (and carried through the delay set).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    /// When the attempt started (RFC 3339, UTC).
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A target entry decoded for delivery, with the attempts made so far.
struct Pending {
    entry_id: String,
    event: Event,
    raw: RawEntry,
    ingested_ms: Option<u64>,
    /// When the age limit started counting (ms since the epoch).
    born_ms: u64,
    /// Failed attempts so far (exact even when `attempts` was cut to its limit).
    failed: u32,
    attempts: Vec<Attempt>,
    /// On a traced event: its trace list and the record of the last attempt, written
    /// with whatever settles the attempt.
    trace: Option<(String, Vec<u8>)>,
}

impl Pending {
    /// Decodes an entry; `None` (after logging) if Sluice did not write it: such an
    /// entry can never be delivered and is acknowledged by the caller.
    fn decode(spec: &TargetSpec, entry: Entry) -> Option<Pending> {
        let Entry { id, body } = entry;
        let decoded = body.and_then(|raw| {
            let event = raw.to_event()?;
            Ok((event, raw))
        });
        let (event, raw) = match decoded {
            Ok(decoded) => decoded,
            Err(e) => {
                error!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, entry = %id, error = %e, "dropping malformed target entry");
                return None;
            }
        };
        let ingested_ms = raw.origin.as_deref().and_then(bus::entry_time_ms);
        // The age limit counts from ingestion, or from the redrive of a redriven entry;
        // an entry back from the delay set carries it.
        let born_ms = raw
            .born_ms
            .or_else(|| {
                if raw.redriven {
                    bus::entry_time_ms(&id)
                } else {
                    ingested_ms.or_else(|| bus::entry_time_ms(&id))
                }
            })
            .unwrap_or_else(trace::now_ms);
        // The attempts made before, carried through the delay set.
        let attempts: Vec<Attempt> = raw
            .history
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        let failed = raw.failed.max(attempts.len() as u32);
        Some(Pending {
            entry_id: id,
            event,
            raw,
            ingested_ms,
            born_ms,
            failed,
            attempts,
            trace: None,
        })
    }

    /// The trace list and record of the last attempt, if the event is traced.
    fn trace(&self) -> Option<(&str, &[u8])> {
        self.trace.as_ref().map(|(k, r)| (k.as_str(), r.as_slice()))
    }
}

/// What to do with an entry whose attempt failed.
enum Next {
    /// Try again after this long.
    Retry(Duration),
    /// Give up: to the dead-letter stream, for this reason.
    DeadLetter(String),
}

/// Makes one attempt at delivering `p` from replica `replica`: `Ok` when delivered, else
/// what to do next (the attempt is added to `p.attempts`, and to `p.trace` on a traced
/// event).
async fn attempt(spec: &TargetSpec, p: &mut Pending, replica: &str) -> Result<Delivered, Next> {
    let ctx = Context {
        bus: &spec.bus,
        rule: &spec.rule,
        ingested_ms: p.ingested_ms,
    };
    let at_ms = trace::now_ms();
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let started = tokio::time::Instant::now();
    let outcome = spec.target.deliver(&p.event, &ctx).await;
    // on_success (function chaining): the result is appended before the entry is
    // acknowledged; a failed append fails the attempt.
    let outcome = match (outcome, &spec.on_success) {
        (Ok(delivered), Some(on_success)) => on_success.chain(&p.event, delivered).await,
        (outcome, _) => outcome,
    };
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_millis() as u64;
    spec.metrics
        .attempted(&spec.labels, elapsed, outcome.as_ref().map(|_| ()));
    if matches!(outcome, Err(DeliveryError::Status { status: 410, .. })) {
        spec.gone.mark(p.event.id()).await;
    }
    if let Some(breaker) = &spec.breaker {
        match &outcome {
            // Says nothing about the target.
            Err(DeliveryError::Invalid(_)) => breaker.probe_unused(),
            Err(e) if e.is_retryable() => breaker.record(Health::Down),
            _ => breaker.record(Health::Up),
        }
    }
    let traced = spec
        .trace
        .filter(|t| t.sampled(p.event.id()))
        .map(|_| trace::key(&spec.bus, p.event.id()));
    let label = || format!("{}/{}", spec.rule, spec.name);
    let error = match outcome {
        Ok(delivered) => {
            debug!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id = p.event.id(), attempt = p.failed + 1, status = ?delivered.status, latency_ms, "delivered");
            p.trace = traced.map(|key| {
                let record = trace::Attempt {
                    target: &label(),
                    number: p.failed + 1,
                    at: at_ms,
                    status: delivered.status,
                    error: None,
                    latency_ms,
                    replica,
                    outcome: trace::Outcome::Delivered,
                }
                .record();
                (key, record)
            });
            return Ok(delivered);
        }
        Err(e) => e,
    };
    p.attempts.push(Attempt {
        at,
        status: error.status(),
        error: error.to_string(),
        latency_ms,
    });
    p.failed = p.failed.saturating_add(1);
    // Carried with the entry on every retry: bounded, the count `n` stays exact.
    if p.attempts.len() > HISTORY_LIMIT {
        p.attempts.drain(..p.attempts.len() - HISTORY_LIMIT);
    }
    let policy = &spec.retry;
    let max_age_ms = policy.max_age.as_millis() as u64;
    let age_ms = trace::now_ms().saturating_sub(p.born_ms);
    let event_id = p.event.id();
    let next = if !error.is_retryable() {
        Next::DeadLetter(match error.status() {
            Some(status) => format!("status {status}"),
            None => error.to_string(),
        })
    } else if p.failed >= policy.max_attempts {
        Next::DeadLetter("attempts exhausted".to_string())
    } else if age_ms >= max_age_ms {
        Next::DeadLetter("max age".to_string())
    } else {
        let delay = match error.retry_after() {
            // At least `initial`: `Retry-After: 0` must not become a tight loop.
            Some(asked) => asked.clamp(policy.initial, policy.max),
            None => backoff(policy, p.failed),
        };
        // The last attempt happens when the event reaches max_age.
        Next::Retry(delay.min(Duration::from_millis(max_age_ms - age_ms)))
    };
    p.trace = traced.map(|key| {
        let error_text = error.to_string();
        let record = trace::Attempt {
            target: &label(),
            number: p.failed,
            at: at_ms,
            status: error.status(),
            error: Some(&error_text),
            latency_ms,
            replica,
            outcome: match &next {
                Next::DeadLetter(reason) => trace::Outcome::DeadLettered { reason },
                Next::Retry(delay) => trace::Outcome::Retry { delay: *delay },
            },
        }
        .record();
        (key, record)
    });
    match &next {
        Next::DeadLetter(reason) => {
            warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempts = p.failed, %reason, "dead-lettering")
        }
        Next::Retry(delay) => {
            warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, attempt = p.failed, error = %error, delay_ms = delay.as_millis() as u64, "delivery failed; will retry")
        }
    }
    Err(next)
}

/// Waits until the target's breaker and rate limit let one delivery go; false on
/// shutdown.
async fn admit(
    spec: &TargetSpec,
    conn: &mut ConnectionManager,
    shutdown: &CancellationToken,
) -> bool {
    if !spec.gone.wait_resumed(shutdown).await {
        return false;
    }
    if let Some(breaker) = &spec.breaker {
        loop {
            match breaker.gate() {
                Gate::Go { .. } => break,
                Gate::Wait(d) => tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.cancelled() => return false,
                },
            }
        }
    }
    match &spec.rate {
        Some(limiter) => limiter.acquire(1, conn, shutdown).await.is_some(),
        None => true,
    }
}

/// Moves an entry this consumer owns to the dead-letter stream (`reason` given) or to
/// the delay set (`delay` given), retrying while Redis fails.
async fn settle(
    spec: &TargetSpec,
    p: &Pending,
    next: &Next,
    shared: &mut ConnectionManager,
    consumer: &str,
    shutdown: &CancellationToken,
) {
    let attempts_json = serde_json::to_string(&p.attempts).unwrap_or_else(|_| "[]".into());
    let keys = DelayKeys::new(&spec.bus, &spec.rule, &spec.name);
    let event_id = p.event.id();
    let mut backoff = Backoff::default();
    loop {
        let moved = match next {
            Next::DeadLetter(reason) => {
                let ctx = Context {
                    bus: &spec.bus,
                    rule: &spec.rule,
                    ingested_ms: p.ingested_ms,
                };
                let payload = spec.target.payload(&p.event, &ctx);
                bus::dead_letter(
                    shared,
                    &spec.key,
                    &spec.dlq_key,
                    DISPATCH_GROUP,
                    consumer,
                    &p.entry_id,
                    &p.raw,
                    event_id,
                    reason,
                    &attempts_json,
                    payload.as_ref().map(|p| (p.content_type, p.body.as_ref())),
                    p.trace(),
                )
                .await
            }
            Next::Retry(delay) => {
                bus::delay(
                    shared,
                    &keys,
                    DISPATCH_GROUP,
                    consumer,
                    &p.entry_id,
                    &p.raw,
                    *delay,
                    p.born_ms,
                    p.failed,
                    &attempts_json,
                    p.trace(),
                )
                .await
            }
        };
        let to = match next {
            Next::DeadLetter(_) => "the dead-letter stream",
            Next::Retry(_) => "the delay set",
        };
        match moved {
            Ok(true) => {
                match next {
                    Next::DeadLetter(_) => spec.metrics.dead_lettered(&spec.labels),
                    Next::Retry(_) => spec.metrics.retry_scheduled(&spec.labels),
                }
                return;
            }
            Ok(false) => {
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, "entry taken over by another replica before it was moved to {to}; letting it go");
                return;
            }
            Err(e) => {
                // Still pending: retried here, or by whoever claims it after a restart.
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, event_id, error = %e, "writing to {to} failed; retrying");
                if shutdown.is_cancelled() {
                    return;
                }
                backoff.wait(shutdown).await;
            }
        }
    }
}

/// Makes one attempt at an entry; on failure, moves it to the delay set for its next
/// attempt or to the dead-letter stream.
async fn deliver(
    spec: Arc<TargetSpec>,
    entry: Entry,
    _permit: OwnedSemaphorePermit,
    mut shared: ConnectionManager,
    consumer: String,
    acks: mpsc::UnboundedSender<Ack>,
    shutdown: CancellationToken,
) {
    let id = entry.id.clone();
    let Some(mut pending) = Pending::decode(&spec, entry) else {
        let _ = acks.send((id, None));
        return;
    };
    // Read just before the target answered 410: it waits here, pending, with the rest.
    if !spec.gone.wait_resumed(&shutdown).await {
        return;
    }
    match attempt(&spec, &mut pending, &consumer).await {
        Ok(_) => {
            let _ = acks.send((pending.entry_id, pending.trace));
        }
        Err(next) => settle(&spec, &pending, &next, &mut shared, &consumer, &shutdown).await,
    }
}

/// A delivered (or undeliverable) entry to acknowledge, with the trace list and record
/// of its delivery on a traced event.
type Ack = (String, Option<(String, Vec<u8>)>);

/// Acknowledges delivered entries in batches (XACK + XDEL in one pipeline, with their
/// trace records).
async fn acknowledge(
    spec: Arc<TargetSpec>,
    mut conn: ConnectionManager,
    mut acks: mpsc::UnboundedReceiver<Ack>,
) {
    let mut batch = Vec::new();
    let mut traces = Vec::new();
    while let Some((id, trace)) = acks.recv().await {
        batch.push(id);
        traces.extend(trace);
        while batch.len() < 1024 {
            match acks.try_recv() {
                Ok((id, trace)) => {
                    batch.push(id);
                    traces.extend(trace);
                }
                Err(_) => break,
            }
        }
        // Until the ack lands the entries stay pending: a failure here means a
        // duplicate delivery later, never a lost one. Retry a few times, then give up.
        for attempt in 0..10u64 {
            match bus::ack_delete(&mut conn, &spec.key, DISPATCH_GROUP, &batch, &traces).await {
                Ok(()) => break,
                Err(e) => {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, attempt, "acknowledging deliveries failed");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
            }
        }
        batch.clear();
        traces.clear();
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
