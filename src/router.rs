//! The router: reads a bus stream through the `router` consumer group, asks the bus's
//! [`Matcher`] which rules match each event, and appends one entry per matching
//! (rule, target) to that target's stream.
//!
//! The target appends and the XACK of the bus entries go in one MULTI/EXEC, so a crash
//! can never leave an event acknowledged but not routed. If the router dies before EXEC,
//! the entries stay pending on its consumer and another replica claims them after
//! `delivery.claim_idle` (at-least-once: an event may be routed twice, never zero times).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::bus::{self, lease, Entry, ROUTER_GROUP};
use crate::event::DataKind;
use crate::observability::trace::{self, Routed, Tracing};
use crate::rules::{EventData, EventView, Matcher};

/// Everything the router needs to know about one bus.
pub struct BusRoutes {
    pub bus: String,
    pub key: String,
    pub retention: bus::Retention,
    pub matcher: Matcher,
    /// For rule `i` of the matcher, where its targets' entries go.
    pub targets: Vec<Vec<Route>>,
    /// Some target of the bus delivers in order: one replica at a time routes the bus
    /// (under a lease), so target streams keep the bus's order.
    pub exclusive: bool,
    /// `stats:` of the bus: how long per-minute counts are kept (None: not counted).
    pub stats: Option<Duration>,
    /// `trace:` of the bus (None: not traced).
    pub trace: Option<Tracing>,
    /// The name of rule `i` of the matcher (`i < archives_from`), for replays to named
    /// rules.
    pub rule_names: Vec<String>,
    /// Matcher entries from this index on are the bus's archives: replayed events skip
    /// them (an event is archived once).
    pub archives_from: usize,
}

/// Where the router appends a matched event for one target (`label`: `RULE/TARGET`, or
/// the archive's name, as the trace shows it).
#[derive(Debug, Clone)]
pub enum Route {
    /// The target's stream, read by its dispatcher.
    Stream { key: String, label: String },
    /// Another bus (a `bus` target): its stream, `key`, in the same transaction.
    Bus {
        to: String,
        key: String,
        label: String,
    },
    /// An archive's intake stream, read by its archiver (`archive`).
    Archive { key: String, label: String },
}

/// Tuning shared by routers and dispatchers.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub consumer: String,
    pub batch_size: usize,
    pub block: Duration,
    pub claim_idle: Duration,
}

impl StreamSettings {
    /// How often to look for entries abandoned by dead consumers.
    pub fn claim_interval(&self) -> Duration {
        (self.claim_idle / 2).max(Duration::from_millis(500))
    }

    /// Takes over entries abandoned by dead consumers and forgets consumers that
    /// have nothing pending and have not been seen for a while (exited replicas).
    pub async fn claim_abandoned(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        group: &str,
        count: usize,
    ) -> Result<Vec<Entry>, bus::BusError> {
        let claimed =
            bus::autoclaim(conn, key, group, &self.consumer, self.claim_idle, count).await?;
        if !claimed.is_empty() {
            info!(
                stream = key,
                count = claimed.len(),
                "claimed entries abandoned by another replica"
            );
        }
        // A consumer with nothing pending loses nothing by being removed; if it belongs
        // to a live replica, Redis recreates it on that replica's next read.
        match bus::prune_consumers(conn, key, group, &self.consumer, self.claim_idle).await {
            Ok(0) => {}
            Ok(n) => debug!(stream = key, count = n, "removed idle consumers"),
            Err(e) => debug!(stream = key, error = %e, "could not prune consumers"),
        }
        Ok(claimed)
    }
}

/// Runs the router of one bus until `shutdown` is cancelled; an exclusive one only
/// while this replica holds the bus's router lease.
///
/// `routes` may be swapped while it runs (a hot reload): each batch is routed by the
/// routes in force when it was read. Whether the bus is exclusive is read at the start.
pub async fn run(
    routes: Arc<ArcSwap<BusRoutes>>,
    conn: ConnectionManager,
    shared: ConnectionManager,
    settings: StreamSettings,
    shutdown: CancellationToken,
) {
    let first = routes.load_full();
    if !first.exclusive {
        return route(&routes, conn, &settings, false, &shutdown).await;
    }
    let key = bus::lease_key(&first.bus, "router");
    while let Some(held) =
        // Not on `conn`: a blocked read there would hold up the lease's renewals.
        lease::acquire(
            &shared,
            &key,
            &settings.consumer,
            settings.claim_idle,
            &shutdown,
        )
        .await
    {
        route(&routes, conn.clone(), &settings, true, &held.lost).await;
        held.release().await;
    }
}

/// Routes the bus until `shutdown`. `exclusive`: under a lease (`shutdown` is its
/// `lost`); first claim every pending entry, in id order (a new lease holder finishing
/// what the previous one read), and route nothing read after the lease was lost.
async fn route(
    live: &ArcSwap<BusRoutes>,
    mut conn: ConnectionManager,
    settings: &StreamSettings,
    exclusive: bool,
    shutdown: &CancellationToken,
) {
    let mut take_over = exclusive;
    let mut backoff = Backoff::default();
    let mut last_claim = tokio::time::Instant::now();
    let mut last_trim = tokio::time::Instant::now();
    let mut group_ready = false;
    while !shutdown.is_cancelled() {
        let current = live.load_full();
        let routes: &BusRoutes = &current;
        if group_ready && last_trim.elapsed() >= TRIM_INTERVAL {
            last_trim = tokio::time::Instant::now();
            match bus::trim(&mut conn, &routes.key, ROUTER_GROUP, routes.retention).await {
                Ok(0) => {}
                Ok(n) => {
                    debug!(bus = %routes.bus, removed = n, "trimmed to retention");
                    // A full chunk: more to trim, so come back next time round.
                    if n >= bus::TRIM_CHUNK {
                        last_trim = last_trim.checked_sub(TRIM_INTERVAL).unwrap_or(last_trim);
                    }
                }
                Err(e) => warn!(bus = %routes.bus, error = %e, "trimming the bus failed"),
            }
        }
        if !group_ready {
            match bus::ensure_group(&mut conn, &routes.key, ROUTER_GROUP).await {
                Ok(()) => group_ready = true,
                Err(e) => {
                    warn!(bus = %routes.bus, error = %e, "cannot create router group; retrying");
                    backoff.wait(shutdown).await;
                    continue;
                }
            }
        }
        let entries = if take_over {
            let claimed =
                bus::claim_all(&mut conn, &routes.key, ROUTER_GROUP, &settings.consumer).await;
            take_over = claimed.is_err();
            claimed
        } else if last_claim.elapsed() >= settings.claim_interval() {
            last_claim = tokio::time::Instant::now();
            settings
                .claim_abandoned(&mut conn, &routes.key, ROUTER_GROUP, settings.batch_size)
                .await
        } else {
            bus::read_group(
                &mut conn,
                &routes.key,
                ROUTER_GROUP,
                &settings.consumer,
                settings.batch_size,
                settings.block,
            )
            .await
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                group_ready = !bus::is_missing_group(&e);
                warn!(bus = %routes.bus, error = %e, "reading the bus failed; retrying");
                backoff.wait(shutdown).await;
                continue;
            }
        };
        backoff.reset();
        if entries.is_empty() {
            continue;
        }
        if exclusive && shutdown.is_cancelled() {
            // Left pending: the next lease holder claims them in order.
            break;
        }
        let read = entries.len();
        // The entries are now pending on this consumer: route them, retrying until Redis
        // takes the transaction (or shutdown leaves them for another replica to claim).
        let first = entries[0].id.clone();
        // The routes in force now: a reload during the read applies to this batch.
        let current = live.load_full();
        let pipe = route_batch(&current, entries, &settings.consumer);
        let mut resend = false;
        loop {
            // A transaction that timed out may still have run (say Redis stalled and then
            // caught up): if its first entry is no longer pending for this consumer, it
            // did (it is all or nothing), or another replica claimed the batch; either
            // way sending it again would route it twice. The check goes on the same
            // connection, after the transaction, so Redis answers it afterwards.
            if resend {
                match bus::is_pending_for(
                    &mut conn,
                    &routes.key,
                    ROUTER_GROUP,
                    &settings.consumer,
                    &first,
                )
                .await
                {
                    Ok(false) => {
                        info!(bus = %routes.bus, entry = %first, "routing transaction ran after all; not sending it again");
                        break;
                    }
                    Ok(true) => {}
                    Err(e) => {
                        warn!(bus = %routes.bus, error = %e, "cannot check the routing transaction; retrying");
                        if shutdown.is_cancelled() {
                            return;
                        }
                        backoff.wait(shutdown).await;
                        continue;
                    }
                }
            }
            resend = true;
            match bus::within(pipe.query_async::<()>(&mut conn)).await {
                Ok(()) => break,
                // Redis lost the group (restarted without persistence): the entries are
                // gone with it; recreate the group and go on.
                Err(e) if bus::is_missing_group(&e) => {
                    warn!(bus = %routes.bus, error = %e, "router group vanished; recreating it");
                    group_ready = false;
                    break;
                }
                Err(e) => {
                    warn!(bus = %routes.bus, error = %e, "routing transaction failed; retrying");
                    if shutdown.is_cancelled() {
                        return;
                    }
                    backoff.wait(shutdown).await;
                }
            }
        }
        // Under load, wait a moment so the next read takes a larger batch: fewer round
        // trips per event. A lightly loaded bus (small reads) is routed at once.
        if (LINGER_FROM..settings.batch_size).contains(&read) {
            tokio::time::sleep(LINGER).await;
        }
    }
}

/// How often the router trims its bus to the retention.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Reads of at least this many entries (but not a full batch) mean the bus is busy.
const LINGER_FROM: usize = 16;
/// How long a busy router waits for more entries before its next read.
const LINGER: Duration = Duration::from_millis(2);

/// Builds the MULTI/EXEC that routes a batch of bus entries and acknowledges them
/// (with the trace records and counts of the batch, on buses that keep them).
fn route_batch(routes: &BusRoutes, entries: Vec<Entry>, replica: &str) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    let mut matched = Vec::new();
    let mut counts = routes.stats.map(|_| crate::stats::Counts::default());
    let mut routed = routes.trace.map(|_| (Routed::default(), trace::now_ms()));
    for entry in &entries {
        let was_routed = !routes.targets.is_empty()
            && route_entry(
                routes,
                entry,
                &mut matched,
                &mut pipe,
                routed.as_mut().map(|(r, _)| r),
            );
        if let (Some(counts), Ok(raw)) = (&mut counts, &entry.body) {
            counts.add(&entry.id, &raw.attrs, was_routed);
        }
        if let (Some(tracing), Some((routed, at)), Ok(raw)) = (&routes.trace, &routed, &entry.body)
        {
            add_trace(routes, tracing, entry, raw, routed, *at, replica, &mut pipe);
        }
    }
    if let (Some(counts), Some(retention)) = (counts, routes.stats) {
        counts.write(&routes.bus, retention, &mut pipe);
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    pipe.cmd("XACK")
        .arg(&routes.key)
        .arg(ROUTER_GROUP)
        .arg(&ids)
        .ignore();
    pipe
}

/// Starts the trace of a sampled event: its `received` and `routed` records, and the
/// list's expiry (the only place a trace list is created).
#[allow(clippy::too_many_arguments)]
fn add_trace(
    routes: &BusRoutes,
    tracing: &Tracing,
    entry: &Entry,
    raw: &bus::RawEntry,
    routed: &Routed<'_>,
    at: u64,
    replica: &str,
    pipe: &mut redis::Pipeline,
) {
    let Ok(head) = serde_json::from_slice::<trace::Head<'_>>(&raw.attrs) else {
        return;
    };
    let id = head.id.as_ref();
    if !tracing.sampled(id) {
        return;
    }
    let size = raw.attrs.len() + raw.data.as_ref().map_or(0, |(_, d)| d.len());
    let key = trace::key(&routes.bus, id);
    pipe.cmd("RPUSH")
        .arg(&key)
        .arg(trace::received(&entry.id, &head, size, raw.via.as_deref()))
        .arg(routed.record(at, replica))
        .ignore();
    pipe.cmd("PEXPIRE")
        .arg(&key)
        .arg(tracing.retention.as_millis() as u64)
        .ignore();
    // An id sent over and over (a producer that reuses ids) must not grow one list
    // without bound: the newest records are kept.
    pipe.cmd("LTRIM")
        .arg(&key)
        .arg(-trace::READ_LIMIT)
        .arg(-1)
        .ignore();
}

/// Whether the stored attributes carry a `replayname` (the entry was appended by a
/// replay); the byte search spares the parse for every other event.
pub(crate) fn is_replayed(attrs: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"\"replayname\"";
    attrs.windows(NEEDLE.len()).any(|w| w == NEEDLE)
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(attrs)
            .is_ok_and(|m| m.contains_key("replayname"))
}

/// Adds the target appends for one bus entry to the transaction; whether some rule
/// matched it. `routed`, on a traced bus, gets where it went.
fn route_entry<'r>(
    routes: &'r BusRoutes,
    entry: &Entry,
    matched: &mut Vec<usize>,
    pipe: &mut redis::Pipeline,
    mut routed: Option<&mut Routed<'r>>,
) -> bool {
    if let Some(r) = routed.as_deref_mut() {
        r.clear();
    }
    let raw = match &entry.body {
        Ok(raw) => raw,
        // Not written by Sluice: nothing can be delivered, so it is acknowledged.
        Err(e) => {
            error!(bus = %routes.bus, entry = %entry.id, error = %e, "skipping malformed bus entry");
            return false;
        }
    };
    let data = match &raw.data {
        // No rule looks into data: not even the UTF-8 check of text data is needed.
        _ if !routes.matcher.needs_data() => EventData::None,
        Some((DataKind::Json, bytes)) => EventData::Json(bytes),
        Some((DataKind::Text, bytes)) => match std::str::from_utf8(bytes) {
            Ok(text) => EventData::Text(text),
            Err(_) => EventData::None,
        },
        _ => EventData::None,
    };
    matched.clear();
    let event = EventView {
        attrs: &raw.attrs,
        data,
    };
    if let Err(e) = routes.matcher.matching_checked(&event, matched) {
        error!(bus = %routes.bus, entry = %entry.id, error = %e, "skipping malformed bus entry");
        return false;
    }
    // A replay to named rules goes to those only; a replayed event is never archived.
    let has_archives = routes.archives_from < routes.targets.len();
    if let Some(only) = &raw.only_rules {
        matched.retain(|&i| {
            i < routes.archives_from && only.split(',').any(|name| name == routes.rule_names[i])
        });
    } else if has_archives
        && matched.iter().any(|&i| i >= routes.archives_from)
        && is_replayed(&raw.attrs)
    {
        matched.retain(|&i| i < routes.archives_from);
    }
    debug!(bus = %routes.bus, entry = %entry.id, rules = matched.len(), "routed");
    for &rule in matched.iter() {
        for route in &routes.targets[rule] {
            match route {
                Route::Stream { key, label } | Route::Archive { key, label } => {
                    let cmd = pipe
                        .cmd("XADD")
                        .arg(key)
                        .arg("*")
                        .arg("a")
                        .arg(raw.attrs.as_ref());
                    if let Some((kind, bytes)) = &raw.data {
                        cmd.arg("k").arg(kind.code()).arg("d").arg(bytes.as_ref());
                    }
                    cmd.arg("b").arg(&entry.id).ignore();
                    if let Some(r) = routed.as_deref_mut() {
                        if matches!(route, Route::Archive { .. }) {
                            r.archived.push(label);
                        } else {
                            r.targets.push(label);
                        }
                    }
                }
                Route::Bus { to, key, label } => {
                    let Some(attrs) = crate::targets::bus::forwarded(&raw.attrs, &routes.bus, to)
                    else {
                        debug!(bus = %routes.bus, entry = %entry.id, to = %to, "not forwarded: the event was on that bus before");
                        if let Some(r) = routed.as_deref_mut() {
                            r.skipped
                                .push((label, format!("it was on bus {to} before")));
                        }
                        continue;
                    };
                    // A bus entry, as ingest appends it.
                    let cmd = pipe.cmd("XADD").arg(key).arg("*").arg("a").arg(attrs);
                    if let Some((kind, bytes)) = &raw.data {
                        cmd.arg("k").arg(kind.code()).arg("d").arg(bytes.as_ref());
                    }
                    cmd.ignore();
                    if let Some(r) = routed.as_deref_mut() {
                        r.forwarded.push(label);
                    }
                }
            }
        }
    }
    if has_archives {
        matched.iter().any(|&i| i < routes.archives_from)
    } else {
        !matched.is_empty()
    }
}

/// Exponential backoff between failed Redis calls: 100 ms doubling to 2 s.
#[derive(Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub async fn wait(&mut self, shutdown: &CancellationToken) {
        let delay =
            Duration::from_millis(100 * 2u64.pow(self.failures.min(4))).min(Duration::from_secs(2));
        self.failures += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

impl std::fmt::Debug for BusRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusRoutes")
            .field("bus", &self.bus)
            .field("targets", &self.targets)
            .field("trace", &self.trace)
            .finish()
    }
}
