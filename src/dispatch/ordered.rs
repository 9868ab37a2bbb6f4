//! Ordered delivery (`ordering: {key: ...}`): events with the same key are delivered one
//! after the other, in stream order; the next one starts only after the previous one
//! was delivered (and acknowledged in Redis) or dead-lettered. Other keys go on in
//! parallel, up to `concurrency`.
//!
//! One replica at a time delivers an ordered target: the holder of its lease. On taking
//! the lease it first claims every pending entry (in id order: what the previous holder
//! had read but not finished), then reads new ones. A failed attempt is retried in
//! place after the retry policy's wait (the entry stays pending and blocks only its own
//! key); it never goes through the delay set, which would reorder it. The router of the
//! bus also runs under a lease (see `router`), so the target stream is in bus order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{admit, attempt, settle, DeliverySettings, Next, Pending, TargetSpec};
use crate::bus::{self, lease, Entry, DISPATCH_GROUP};
use crate::router::{Backoff, StreamSettings};
use crate::rules::select::Document;

/// Most entries read ahead and held in memory, waiting for their key's turn.
const MAX_BUFFERED: usize = 10_000;

/// Runs the dispatcher of an ordered target until `shutdown`: delivers while this
/// replica holds the target's lease, waits for it otherwise.
pub(super) async fn run(
    spec: Arc<TargetSpec>,
    reader: ConnectionManager,
    shared: ConnectionManager,
    stream: StreamSettings,
    delivery: DeliverySettings,
    shutdown: CancellationToken,
) {
    let lease_key = bus::lease_key(&spec.bus, &format!("t:{}:{}", spec.rule, spec.name));
    // Entries left in the delay set (ordering turned on later, or a redrive) rejoin the
    // stream's tail.
    let promoter = tokio::spawn(super::promote(
        spec.clone(),
        shared.clone(),
        shutdown.clone(),
    ));
    while let Some(held) = lease::acquire(
        &shared,
        &lease_key,
        &stream.consumer,
        stream.claim_idle,
        &shutdown,
    )
    .await
    {
        deliver_while_held(
            &spec, &reader, &shared, &stream, &delivery, &held.lost, &shutdown,
        )
        .await;
        held.release().await;
    }
    let _ = promoter.await;
}

/// Delivers until `lost` (the lease may have moved, or shutdown).
async fn deliver_while_held(
    spec: &Arc<TargetSpec>,
    reader: &ConnectionManager,
    shared: &ConnectionManager,
    stream: &StreamSettings,
    delivery: &DeliverySettings,
    lost: &CancellationToken,
    shutdown: &CancellationToken,
) {
    let mut conn = shared.clone();
    let mut backoff = Backoff::default();
    // What the previous holder left pending comes first, in id order.
    let recovered = loop {
        let claimed = match bus::ensure_group(&mut conn, &spec.key, DISPATCH_GROUP).await {
            Ok(()) => bus::claim_all(&mut conn, &spec.key, DISPATCH_GROUP, &stream.consumer).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(entries) => break entries,
            Err(e) => {
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "cannot take over pending entries; retrying");
                backoff.wait(lost).await;
                if lost.is_cancelled() {
                    return;
                }
            }
        }
    };
    if !recovered.is_empty() {
        info!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, count = recovered.len(), "took over pending entries");
    }
    let (tx, mut rx) = mpsc::channel::<Vec<Entry>>(4);
    let _ = tx.send(recovered).await;
    // Reads are never cancelled half-way (an entry read but dropped would stay pending
    // until the next lease holder): they run in their own task until `lost`.
    let read = tokio::spawn(read_ahead(
        spec.clone(),
        reader.clone(),
        stream.clone(),
        tx,
        lost.clone(),
    ));

    // Per key: its entries waiting; a key with a delivery in flight is in `running`.
    let mut queues: HashMap<String, VecDeque<Pending>> = HashMap::new();
    let mut ready: VecDeque<String> = VecDeque::new();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut running_keys: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut buffered = 0usize;
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        // Entries pending on another consumer while we hold the lease were handed to a
        // reader that has since lost it (or died): take them over, in id order.
        if last_sweep.elapsed() >= stream.claim_interval() {
            last_sweep = tokio::time::Instant::now();
            match bus::claim_foreign(&mut conn, &spec.key, DISPATCH_GROUP, &stream.consumer).await {
                Ok(entries) => {
                    if !entries.is_empty() {
                        warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, count = entries.len(), "took over entries left pending by another replica");
                    }
                    for entry in entries {
                        let id = entry.id.clone();
                        match Pending::decode(spec, entry) {
                            Some(p) => {
                                buffered += 1;
                                enqueue(spec, &mut queues, &mut ready, p, true);
                            }
                            None => {
                                let _ = bus::ack_delete(
                                    &mut conn,
                                    &spec.key,
                                    DISPATCH_GROUP,
                                    &[id],
                                    &[],
                                )
                                .await;
                            }
                        }
                    }
                }
                Err(e) => {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "cannot look for abandoned entries")
                }
            }
        }
        while running.len() < spec.concurrency {
            let Some(key) = ready.pop_front() else { break };
            let Some(pending) = queues.get_mut(&key).and_then(VecDeque::pop_front) else {
                continue;
            };
            buffered -= 1;
            let handle = running.spawn(deliver_in_order(
                spec.clone(),
                pending,
                shared.clone(),
                stream.consumer.clone(),
                lost.clone(),
            ));
            running_keys.insert(handle.id(), key);
        }
        tokio::select! {
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Some(key) = running_keys.remove(&id) {
                    if queues.get(&key).is_some_and(|q| !q.is_empty()) {
                        ready.push_back(key);
                    } else {
                        queues.remove(&key);
                    }
                }
            }
            batch = rx.recv(), if buffered < MAX_BUFFERED => {
                let Some(entries) = batch else { break };
                let mut acks = Vec::new();
                for entry in entries {
                    let id = entry.id.clone();
                    let Some(pending) = Pending::decode(spec, entry) else {
                        acks.push(id);
                        continue;
                    };
                    buffered += 1;
                    enqueue(spec, &mut queues, &mut ready, pending, false);
                }
                if !acks.is_empty() {
                    let _ = bus::ack_delete(&mut conn, &spec.key, DISPATCH_GROUP, &acks, &[]).await;
                }
            }
            _ = tokio::time::sleep(stream.claim_interval()) => {}
            _ = lost.cancelled() => break,
        }
    }
    // The read-ahead stops after its current read (never cut off while Redis may hand
    // it entries), so nothing is read on this consumer after the lease is released.
    drop(rx);
    if tokio::time::timeout(stream.block + Duration::from_secs(5), read)
        .await
        .is_err()
    {
        warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, "the read-ahead did not stop");
    }
    if !shutdown.is_cancelled() {
        // The lease is (about to be) lost: another replica may start on these keys
        // soon, so stop at once. Unfinished entries stay pending for it.
        running.abort_all();
        while running.join_next().await.is_some() {}
        return;
    }
    // Shutdown: the lease is still renewed while in-flight deliveries finish, up to
    // the deadline; what is unfinished stays pending for the next holder.
    let drained = tokio::time::timeout(delivery.shutdown_timeout, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, left = running.len(), "deadline passed; leaving deliveries pending");
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
}

/// Adds an entry to its key's FIFO (a new key becomes ready). `in_order`: insert it by
/// entry id instead of at the end (an older entry taken over late).
fn enqueue(
    spec: &TargetSpec,
    queues: &mut HashMap<String, VecDeque<Pending>>,
    ready: &mut VecDeque<String>,
    pending: Pending,
    in_order: bool,
) {
    let key = key_of(spec, &pending);
    match queues.get_mut(&key) {
        Some(queue) => {
            let at = if in_order {
                let id = bus::stream_id(&pending.entry_id);
                queue.partition_point(|p| bus::stream_id(&p.entry_id) < id)
            } else {
                queue.len()
            };
            queue.insert(at, pending);
        }
        None => {
            queues.insert(key.clone(), VecDeque::from([pending]));
            ready.push_back(key);
        }
    }
}

/// The ordering key of an entry; entries without one are not ordered (each is its own
/// key).
fn key_of(spec: &TargetSpec, pending: &Pending) -> String {
    let path = spec.ordering.as_ref().expect("an ordered target");
    match path.select_text(&Document::new(&pending.event)) {
        Some(key) => key,
        None => format!("\0{}", pending.entry_id),
    }
}

/// Reads new entries of the target stream into `tx` until `stop`.
async fn read_ahead(
    spec: Arc<TargetSpec>,
    mut reader: ConnectionManager,
    stream: StreamSettings,
    tx: mpsc::Sender<Vec<Entry>>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    while !stop.is_cancelled() {
        match bus::read_group(
            &mut reader,
            &spec.key,
            DISPATCH_GROUP,
            &stream.consumer,
            stream.batch_size,
            stream.block,
        )
        .await
        {
            Ok(entries) => {
                backoff.reset();
                if !entries.is_empty() && tx.send(entries).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                if bus::is_missing_group(&e) {
                    let _ = bus::ensure_group(&mut reader, &spec.key, DISPATCH_GROUP).await;
                }
                warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "reading the target stream failed; retrying");
                backoff.wait(&stop).await;
            }
        }
    }
}

/// Delivers one entry, retrying in place, until it is delivered and acknowledged or
/// dead-lettered (or `lost`: it stays pending for the next lease holder).
async fn deliver_in_order(
    spec: Arc<TargetSpec>,
    mut pending: Pending,
    mut conn: ConnectionManager,
    consumer: String,
    lost: CancellationToken,
) {
    loop {
        if !admit(&spec, &mut conn, &lost).await {
            return;
        }
        match attempt(&spec, &mut pending, &consumer).await {
            Ok(_) => {
                // Acknowledged before the key's next event starts: a takeover never
                // delivers this one again after its successor.
                let ids = [pending.entry_id.clone()];
                let traces: Vec<(String, Vec<u8>)> = pending.trace.take().into_iter().collect();
                let mut backoff = Backoff::default();
                while let Err(e) =
                    bus::ack_delete(&mut conn, &spec.key, DISPATCH_GROUP, &ids, &traces).await
                {
                    warn!(bus = %spec.bus, rule = %spec.rule, target = %spec.name, error = %e, "acknowledging a delivery failed; retrying");
                    if lost.is_cancelled() {
                        return;
                    }
                    backoff.wait(&lost).await;
                }
                return;
            }
            Err(next @ Next::DeadLetter(_)) => {
                settle(&spec, &pending, &next, &mut conn, &consumer, &lost).await;
                return;
            }
            Err(Next::Retry(wait)) => {
                spec.metrics.retry_scheduled(&spec.labels);
                // Retried in place: the attempt's trace record goes on its own.
                if let Some((key, record)) = pending.trace.take() {
                    let _ = bus::within(
                        redis::cmd("RPUSHX")
                            .arg(key)
                            .arg(record)
                            .query_async::<()>(&mut conn),
                    )
                    .await;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = lost.cancelled() => return,
                }
            }
        }
    }
}
