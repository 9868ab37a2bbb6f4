//! Replays: the events of a time window, from an archive or from a bus's retention,
//! appended to the bus again, to all its rules or to named ones only.
//!
//! A replayed event keeps its id and attributes and gains the extension `replayname`
//! (rules can exclude replays with `{"replayname": [{"exists": false}]}`); a replay to
//! named rules marks its entries with them (field `R`) and the router routes such an
//! entry to those rules only. Replayed events are never archived again.
//!
//! Every replica runs a supervisor that looks for replays to run once a second; the one
//! that holds a replay's lease runs it. Each batch of appended events and the replay's
//! checkpoint (the position after the batch) are one MULTI/EXEC: a replica killed at
//! any moment leaves the checkpoint at the last batch appended, and the next lease
//! holder goes on from there. Nothing is skipped; a batch is appended twice only if a
//! lease holder that lost its lease had not noticed yet (at-least-once).
//!
//! # Keys
//! | key | type | holds |
//! |-----|------|-------|
//! | `sluice:{control}:replays` | hash | replay name -> its bus (names are unique, as in AWS) |
//! | `sluice:{control}:replays:live` | set | the names of replays not yet ended |
//! | `sluice:{BUS}:replay:NAME` | hash | `spec` (JSON), `state`, `cursor`, `replayed`, `last` (ms of the last replayed event), `started`, `ended`, `reason` |
//!
//! States: `STARTING` (made, not yet picked up), `RUNNING`, `CANCELLING` (asked to stop),
//! `COMPLETED`, `CANCELLED`, `FAILED` (with `reason`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::archive;
use crate::bus::{self, lease};
use crate::router::{Backoff, StreamSettings};

pub const INDEX_KEY: &str = "sluice:{control}:replays";
/// The names of the replays not yet ended, which the supervisors look at.
pub const LIVE_KEY: &str = "sluice:{control}:replays:live";

pub fn key(bus: &str, name: &str) -> String {
    format!("sluice:{{{bus}}}:replay:{name}")
}

/// Events appended per transaction.
const BATCH: usize = 1000;

/// Events per batch for a replay: fewer under a low rate, so it sends a steady trickle
/// rather than bursts.
fn batch_size(spec: &ReplaySpec) -> usize {
    spec.rate.map_or(BATCH, |r| (r as usize).clamp(1, BATCH))
}
/// How often each replica looks for replays to run.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What a replay replays, as made through the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplaySpec {
    pub name: String,
    pub bus: String,
    /// The archive to read; `None`: the bus's retained events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// The window, ms since the epoch, inclusive.
    pub since_ms: u64,
    pub until_ms: u64,
    /// Only these rules of the bus; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Most events appended per second; `None`: as fast as Redis takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Cancelling,
    Completed,
    Cancelled,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Cancelling => "CANCELLING",
            State::Completed => "COMPLETED",
            State::Cancelled => "CANCELLED",
            State::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        [
            State::Starting,
            State::Running,
            State::Cancelling,
            State::Completed,
            State::Cancelled,
            State::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        matches!(self, State::Completed | State::Cancelled | State::Failed)
    }
}

/// A replay as stored: its spec and progress.
#[derive(Debug, Clone)]
pub struct Replay {
    pub spec: ReplaySpec,
    pub state: State,
    pub replayed: u64,
    /// The time of the last replayed event (ms).
    pub last_ms: Option<u64>,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub reason: Option<String>,
}

impl Replay {
    fn from_hash(hash: &HashMap<String, String>) -> Option<Replay> {
        let num = |f: &str| hash.get(f).and_then(|v| v.parse::<u64>().ok());
        Some(Replay {
            spec: serde_json::from_str(hash.get("spec")?).ok()?,
            state: State::parse(hash.get("state")?)?,
            replayed: num("replayed").unwrap_or(0),
            last_ms: num("last"),
            started_ms: num("started").unwrap_or(0),
            ended_ms: num("ended"),
            reason: hash.get("reason").cloned(),
        })
    }
}

/// Makes a replay (state STARTING); false if the name is taken.
pub async fn create(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
) -> Result<bool, bus::BusError> {
    let taken: bool = bus::within(
        redis::cmd("HSETNX")
            .arg(INDEX_KEY)
            .arg(&spec.name)
            .arg(&spec.bus)
            .query_async::<i64>(conn),
    )
    .await?
        == 0;
    if taken {
        return Ok(false);
    }
    let spec_json = serde_json::to_string(spec).expect("a spec serialises");
    let written = write_new(conn, spec, &spec_json).await;
    if written.is_err() {
        // Best effort: free the name again, so the replay can be made once Redis answers.
        let _ = bus::within(
            redis::cmd("HDEL")
                .arg(INDEX_KEY)
                .arg(&spec.name)
                .query_async::<()>(conn),
        )
        .await;
    }
    written.map(|()| true)
}

/// The replay's hash, then its name in the live set (so a supervisor that sees the name
/// finds the replay whole).
async fn write_new(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
    spec_json: &str,
) -> Result<(), bus::BusError> {
    bus::within(
        redis::cmd("HSET")
            .arg(key(&spec.bus, &spec.name))
            .arg("spec")
            .arg(spec_json)
            .arg("state")
            .arg(State::Starting.as_str())
            .arg("replayed")
            .arg(0)
            .arg("started")
            .arg(crate::observability::trace::now_ms())
            .query_async::<()>(conn),
    )
    .await?;
    bus::within(
        redis::cmd("SADD")
            .arg(LIVE_KEY)
            .arg(&spec.name)
            .query_async::<()>(conn),
    )
    .await
}

/// The replay named `name`, if there is one.
pub async fn get(
    conn: &mut ConnectionManager,
    name: &str,
) -> Result<Option<Replay>, bus::BusError> {
    let bus: Option<String> = bus::within(
        redis::cmd("HGET")
            .arg(INDEX_KEY)
            .arg(name)
            .query_async(conn),
    )
    .await?;
    let Some(bus) = bus else { return Ok(None) };
    let hash: HashMap<String, String> =
        bus::within(redis::cmd("HGETALL").arg(key(&bus, name)).query_async(conn)).await?;
    Ok(Replay::from_hash(&hash))
}

/// Every replay, by name.
pub async fn list(conn: &mut ConnectionManager) -> Result<Vec<Replay>, bus::BusError> {
    let index: HashMap<String, String> =
        bus::within(redis::cmd("HGETALL").arg(INDEX_KEY).query_async(conn)).await?;
    let mut names: Vec<(&String, &String)> = index.iter().collect();
    names.sort();
    let mut pipe = redis::pipe();
    for (name, bus) in &names {
        pipe.cmd("HGETALL").arg(key(bus, name));
    }
    let hashes: Vec<HashMap<String, String>> = if names.is_empty() {
        Vec::new()
    } else {
        bus::within(pipe.query_async(conn)).await?
    };
    Ok(hashes.iter().filter_map(Replay::from_hash).collect())
}

/// Every this many looks (seconds), the supervisor heals the live set.
const HEAL_EVERY: u64 = 60;

/// Adds every replay not yet ended to the live set.
async fn heal(conn: &mut ConnectionManager) -> Result<(), bus::BusError> {
    let names: Vec<String> = list(conn)
        .await?
        .into_iter()
        .filter(|r| !r.state.is_final())
        .map(|r| r.spec.name)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    bus::within(
        redis::cmd("SADD")
            .arg(LIVE_KEY)
            .arg(&names)
            .query_async::<()>(conn),
    )
    .await
}

/// The replays not yet ended (names of ended ones are dropped from the live set).
async fn live(conn: &mut ConnectionManager) -> Result<Vec<Replay>, bus::BusError> {
    let names: Vec<String> =
        bus::within(redis::cmd("SMEMBERS").arg(LIVE_KEY).query_async(conn)).await?;
    let mut replays = Vec::new();
    for name in names {
        match get(conn, &name).await? {
            Some(r) if !r.state.is_final() => replays.push(r),
            _ => {
                bus::within(
                    redis::cmd("SREM")
                        .arg(LIVE_KEY)
                        .arg(&name)
                        .query_async::<()>(conn),
                )
                .await?
            }
        }
    }
    Ok(replays)
}

/// Asks a replay to stop: STARTING or RUNNING -> CANCELLING (the runner then ends it as
/// CANCELLED). The state it was in, or `None` if there is no such replay.
pub async fn cancel(
    conn: &mut ConnectionManager,
    name: &str,
) -> Result<Option<State>, bus::BusError> {
    static CANCEL: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'STARTING' or state == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'state', 'CANCELLING')
end
return state
",
        )
    });
    let bus: Option<String> = bus::within(
        redis::cmd("HGET")
            .arg(INDEX_KEY)
            .arg(name)
            .query_async(conn),
    )
    .await?;
    let Some(bus) = bus else { return Ok(None) };
    let state: Option<String> = bus::within(CANCEL.key(key(&bus, name)).invoke_async(conn)).await?;
    Ok(state.as_deref().and_then(State::parse))
}

/// Looks for replays to run until `shutdown`, and runs each one this replica gets the
/// lease of.
pub async fn supervise(
    conn: ConnectionManager,
    settings: StreamSettings,
    shutdown: CancellationToken,
) {
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut c = conn.clone();
    let mut looks = 0u64;
    while !shutdown.is_cancelled() {
        // Now and then, put back into the live set a live replay missing from it (its
        // maker failed between the two writes).
        if looks.is_multiple_of(HEAL_EVERY) {
            if let Err(e) = heal(&mut c).await {
                warn!(error = %e, "cannot check the live replays");
            }
        }
        looks += 1;
        match live(&mut c).await {
            Ok(replays) => {
                let live: HashSet<&str> = replays
                    .iter()
                    .filter(|r| !r.state.is_final())
                    .map(|r| r.spec.name.as_str())
                    .collect();
                running.retain(|name, stop| {
                    let keep = live.contains(name.as_str()) && !stop.is_cancelled();
                    if !keep {
                        stop.cancel();
                    }
                    keep
                });
                for r in replays.into_iter().filter(|r| !r.state.is_final()) {
                    if running.contains_key(&r.spec.name) {
                        continue;
                    }
                    let stop = shutdown.child_token();
                    running.insert(r.spec.name.clone(), stop.clone());
                    tokio::spawn(hold(r.spec, conn.clone(), settings.clone(), stop));
                }
            }
            Err(e) => warn!(error = %e, "cannot list the replays"),
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// Waits for the replay's lease, then runs it; `stop` ends the wait (the replay ended
/// elsewhere) or the run (shutdown).
async fn hold(
    spec: ReplaySpec,
    conn: ConnectionManager,
    settings: StreamSettings,
    stop: CancellationToken,
) {
    let lease_key = bus::lease_key(&spec.bus, &format!("replay:{}", spec.name));
    if let Some(held) = lease::acquire_at_once(
        &conn,
        &lease_key,
        &settings.consumer,
        settings.claim_idle,
        &stop,
    )
    .await
    {
        run(&spec, conn.clone(), &settings.consumer, &held.lost).await;
        held.release().await;
    }
    // Looked at again by the supervisor, which starts a new wait if the replay is live.
    stop.cancel();
}

/// Where a replay stands in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    /// Nothing replayed yet.
    Start,
    /// Archive: the next event is event `index` of segment `member`.
    Segment { member: String, index: usize },
    /// Bus retention: the last bus entry read.
    Entry(String),
}

impl Cursor {
    fn parse(text: Option<&str>) -> Cursor {
        match text {
            None | Some("") => Cursor::Start,
            Some(t) => match t.strip_prefix("e:") {
                Some(entry) => Cursor::Entry(entry.to_string()),
                None => match t.rsplit_once('#') {
                    Some((member, index)) => Cursor::Segment {
                        member: member.to_string(),
                        index: index.parse().unwrap_or(0),
                    },
                    None => Cursor::Start,
                },
            },
        }
    }

    fn text(&self) -> String {
        match self {
            Cursor::Start => String::new(),
            Cursor::Segment { member, index } => format!("{member}#{index}"),
            Cursor::Entry(entry) => format!("e:{entry}"),
        }
    }
}

/// An event to append again: its original bus entry id and fields.
type Event = archive::Archived;

/// Runs a replay while this replica holds its lease (`lost` fires when it may not).
async fn run(
    spec: &ReplaySpec,
    mut conn: ConnectionManager,
    replica: &str,
    lost: &CancellationToken,
) {
    let key = key(&spec.bus, &spec.name);
    let mut backoff = Backoff::default();
    let mut reader: Option<ArchiveReader> = None;
    let started = tokio::time::Instant::now();
    let mut appended_here = 0u64;
    while !lost.is_cancelled() {
        let hash: HashMap<String, String> =
            match bus::within(redis::cmd("HGETALL").arg(&key).query_async(&mut conn)).await {
                Ok(h) => h,
                Err(e) => {
                    warn!(replay = %spec.name, error = %e, "cannot read the replay; retrying");
                    backoff.wait(lost).await;
                    continue;
                }
            };
        let Some(state) = hash.get("state").and_then(|s| State::parse(s)) else {
            return;
        };
        if state.is_final() {
            return;
        }
        if state == State::Cancelling {
            finish(&mut conn, &key, State::Cancelled, None).await;
            info!(replay = %spec.name, "replay cancelled");
            return;
        }
        if state == State::Starting {
            let _ = bus::within(
                redis::cmd("HSET")
                    .arg(&key)
                    .arg("state")
                    .arg(State::Running.as_str())
                    .query_async::<()>(&mut conn),
            )
            .await;
            info!(replay = %spec.name, bus = %spec.bus, "replay running");
        }
        let cursor = Cursor::parse(hash.get("cursor").map(String::as_str));
        let next = match &spec.archive {
            Some(archive) => {
                if reader.is_none() {
                    match list_segments(&mut conn, spec, archive).await {
                        Ok(segments) => {
                            reader = Some(ArchiveReader {
                                segments,
                                hint: 0,
                                decoded: None,
                            })
                        }
                        Err(e) => {
                            warn!(replay = %spec.name, error = %e, "cannot list the archive's segments; retrying");
                            backoff.wait(lost).await;
                            continue;
                        }
                    }
                }
                let reader = reader.as_mut().expect("listed above");
                from_archive(&mut conn, spec, archive, reader, &cursor).await
            }
            None => from_bus(&mut conn, spec, &cursor).await,
        };
        let (events, after) = match next {
            Ok(Some(next)) => next,
            Ok(None) => {
                finish(&mut conn, &key, State::Completed, None).await;
                info!(replay = %spec.name, "replay completed");
                return;
            }
            Err(Failure::Redis(e)) => {
                warn!(replay = %spec.name, error = %e, "reading the replay's source failed; retrying");
                backoff.wait(lost).await;
                continue;
            }
            Err(Failure::Corrupt(reason)) => {
                finish(&mut conn, &key, State::Failed, Some(&reason)).await;
                warn!(replay = %spec.name, %reason, "replay failed");
                return;
            }
        };
        if lost.is_cancelled() {
            return;
        }
        match append(&mut conn, spec, &key, &events, &after, replica).await {
            Ok(()) => backoff.reset(),
            Err(e) => {
                warn!(replay = %spec.name, error = %e, "appending replayed events failed; retrying");
                backoff.wait(lost).await;
                continue;
            }
        }
        appended_here += events.len() as u64;
        if let Some(rate) = spec.rate.filter(|r| *r > 0) {
            // Ahead of the rate: wait until the events appended here are due.
            let due = Duration::from_secs_f64(appended_here as f64 / f64::from(rate));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = lost.cancelled() => return,
                }
            }
        }
    }
}

enum Failure {
    Redis(bus::BusError),
    Corrupt(String),
}

impl From<bus::BusError> for Failure {
    fn from(e: bus::BusError) -> Failure {
        Failure::Redis(e)
    }
}

/// The next batch of events and the cursor after it; `None` when the window is done.
type Next = Option<(Vec<Event>, Cursor)>;

/// The archive's segments that may hold events of the window, in order.
async fn list_segments(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
    archive_name: &str,
) -> Result<Vec<String>, bus::BusError> {
    bus::within(
        redis::cmd("ZRANGEBYSCORE")
            .arg(archive::segments_key(&spec.bus, archive_name))
            .arg(spec.since_ms.saturating_sub(archive::SEGMENT_SPAN_MS))
            .arg(spec.until_ms)
            .query_async(conn),
    )
    .await
}

fn in_window(spec: &ReplaySpec, entry: &str) -> bool {
    bus::entry_time_ms(entry).is_some_and(|t| t >= spec.since_ms && t <= spec.until_ms)
}

/// A run's view of an archive: its segments in the window (listed once per run), where
/// the last batch ended in that list, and the segment being read, decoded.
struct ArchiveReader {
    segments: Vec<String>,
    hint: usize,
    decoded: Option<(String, Vec<Event>)>,
}

/// A segment's place in the sorted set's order: (first time, member).
fn order(member: &str) -> (u64, &str) {
    (archive::member_parts(member).map_or(0, |p| p.0), member)
}

/// Up to [`BATCH`] events of the window from the archive, from `cursor` on.
async fn from_archive(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
    archive_name: &str,
    reader: &mut ArchiveReader,
    cursor: &Cursor,
) -> Result<Next, Failure> {
    let segments = &reader.segments;
    let (mut at, mut index) = match cursor {
        Cursor::Segment { member, index } => {
            // Where the last batch ended, else found in the sorted list: the cursor's
            // segment, or the next one if it expired.
            let i = if segments.get(reader.hint) == Some(member) {
                reader.hint
            } else {
                let mark = order(member);
                segments.partition_point(|m| order(m) < mark)
            };
            match segments.get(i) {
                Some(m) if m == member => (i, *index),
                Some(_) => (i, 0),
                None => return Ok(None),
            }
        }
        _ => (0, 0),
    };
    let mut events = Vec::new();
    let mut done = None;
    while at < segments.len() {
        let member = &segments[at];
        if archive::member_parts(member).is_some_and(|(_, last, _)| last < spec.since_ms) {
            at += 1;
            index = 0;
            continue;
        }
        if reader.decoded.as_ref().is_none_or(|(m, _)| m != member) {
            let blob: Option<Vec<u8>> = bus::within(
                redis::cmd("GET")
                    .arg(archive::segment_key(&spec.bus, archive_name, member))
                    .query_async(conn),
            )
            .await?;
            // Expired since the listing: nothing of it to replay.
            let Some(blob) = blob else {
                at += 1;
                index = 0;
                continue;
            };
            let Some(decoded) = archive::decode(&blob) else {
                return Err(Failure::Corrupt(format!(
                    "segment {member} of archive {archive_name} cannot be read"
                )));
            };
            reader.decoded = Some((member.clone(), decoded));
        }
        let decoded = &reader.decoded.as_ref().expect("decoded above").1;
        let take = batch_size(spec) - events.len();
        let end = (index + take).min(decoded.len());
        events.extend(
            decoded[index.min(end)..end]
                .iter()
                .filter(|e| in_window(spec, &e.entry))
                .cloned(),
        );
        let after = Cursor::Segment {
            member: member.clone(),
            index: end,
        };
        if end < decoded.len() || events.len() >= batch_size(spec) {
            reader.hint = at;
            return Ok(Some((events, after)));
        }
        done = Some(after);
        at += 1;
        index = 0;
    }
    reader.hint = at.saturating_sub(1);
    // The last segments read, done: their events, or the end of the window.
    Ok(match done {
        Some(after) if !events.is_empty() => Some((events, after)),
        _ => None,
    })
}

/// Up to [`BATCH`] retained events of the window from the bus stream (not those a replay
/// appended), after `cursor`.
async fn from_bus(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
    cursor: &Cursor,
) -> Result<Next, Failure> {
    let start = match cursor {
        Cursor::Entry(entry) => format!("({entry}"),
        _ => spec.since_ms.to_string(),
    };
    let entries = bus::range(
        conn,
        &bus::bus_key(&spec.bus),
        &start,
        &spec.until_ms.to_string(),
        batch_size(spec),
        false,
    )
    .await?;
    let Some(last) = entries.last().map(|e| e.id.clone()) else {
        return Ok(None);
    };
    let events = entries
        .into_iter()
        .filter_map(|e| {
            let raw = e.body.ok()?;
            let replayed = crate::router::is_replayed(&raw.attrs);
            (!replayed).then_some(Event {
                entry: e.id,
                attrs: raw.attrs,
                data: raw.data,
            })
        })
        .collect();
    Ok(Some((events, Cursor::Entry(last))))
}

/// The attributes with `replayname` added (first, so no parse of the rest is needed).
fn with_replayname(attrs: &[u8], name: &str) -> Vec<u8> {
    let name = serde_json::to_string(name).expect("a string serialises");
    let rest = attrs.strip_prefix(b"{").unwrap_or(attrs);
    let mut out = Vec::with_capacity(attrs.len() + name.len() + 16);
    out.extend_from_slice(b"{\"replayname\":");
    out.extend_from_slice(name.as_bytes());
    if rest.first().is_some_and(|&b| b != b'}') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// Appends a batch to the bus and moves the checkpoint past it, in one transaction.
async fn append(
    conn: &mut ConnectionManager,
    spec: &ReplaySpec,
    key: &str,
    events: &[Event],
    after: &Cursor,
    replica: &str,
) -> Result<(), bus::BusError> {
    let bus_key = bus::bus_key(&spec.bus);
    let only = spec.rules.join(",");
    let via = format!("replay@{replica}");
    let mut pipe = redis::pipe();
    pipe.atomic();
    for e in events {
        let cmd = pipe
            .cmd("XADD")
            .arg(&bus_key)
            .arg("*")
            .arg("a")
            .arg(with_replayname(&e.attrs, &spec.name));
        if let Some((kind, bytes)) = &e.data {
            cmd.arg("k").arg(kind.code()).arg("d").arg(bytes.as_ref());
        }
        if !only.is_empty() {
            cmd.arg("R").arg(&only);
        }
        cmd.arg("w").arg(&via).ignore();
    }
    pipe.cmd("HSET")
        .arg(key)
        .arg("cursor")
        .arg(after.text())
        .ignore();
    pipe.cmd("HINCRBY")
        .arg(key)
        .arg("replayed")
        .arg(events.len())
        .ignore();
    if let Some(last) = events.last().and_then(|e| bus::entry_time_ms(&e.entry)) {
        pipe.cmd("HSET").arg(key).arg("last").arg(last).ignore();
    }
    bus::within(pipe.query_async::<()>(conn)).await
}

async fn finish(conn: &mut ConnectionManager, key: &str, state: State, reason: Option<&str>) {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key)
        .arg("state")
        .arg(state.as_str())
        .arg("ended")
        .arg(crate::observability::trace::now_ms());
    if let Some(reason) = reason {
        cmd.arg("reason").arg(reason);
    }
    if let Err(e) = bus::within(cmd.query_async::<()>(conn)).await {
        warn!(key, error = %e, "cannot record the end of the replay");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayname_goes_first() {
        let out = with_replayname(br#"{"id":"1","type":"t"}"#, "night");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["replayname"], "night");
        assert_eq!(v["id"], "1");
        assert_eq!(with_replayname(b"{}", "n"), br#"{"replayname":"n"}"#);
    }

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor::Start,
            Cursor::Entry("17-0".into()),
            Cursor::Segment {
                member: "1-2-3-4-0".into(),
                index: 7,
            },
        ] {
            assert_eq!(Cursor::parse(Some(&c.text())), c);
        }
    }
}
