//! Archives: the events of a bus that match an archive's pattern, kept in compressed
//! segments beyond the bus's retention, to replay from (see `replay`).
//!
//! The router appends each matching event (not a replayed one) to the archive's intake
//! stream in its routing transaction, as it appends to a target stream. The archiver of
//! the archive (one replica at a time, under a lease) reads the intake in blocks, and
//! writes each block as one segment: the events encoded one after the other and
//! compressed with zstd. One MULTI/EXEC stores the segment, indexes it and acknowledges
//! and deletes its intake entries, so an event is in a segment or still in the intake,
//! never lost (a new lease holder first takes what the last one read and had not
//! written). Only two holders at once (a lease lost to a stall while a write was in
//! flight) can put an event in two segments: at-least-once.
//!
//! # Keys
//! | key | type | holds |
//! |-----|------|-------|
//! | `sluice:{BUS}:archive:NAME:in` | stream | events routed to the archive, not yet in a segment; consumer group `archive` |
//! | `sluice:{BUS}:archive:NAME:segments` | sorted set | one member per segment, `FIRST-LAST-COUNT-BYTES-ID` (times in ms, ID the intake entry of its first event), scored by FIRST |
//! | `sluice:{BUS}:archive:NAME:seg:MEMBER` | string | the segment's bytes (expires `retention_days` after LAST) |
//! | `sluice:{BUS}:archive:NAME:size` | hash | `segments`, `events`, `bytes` of the indexed segments |
//!
//! # Segment format
//! zstd over a sequence of events, each: the bus entry id as two varints (ms, seq), the
//! attributes (varint length + bytes), the data kind (`0` none, else its code byte) and,
//! with data, the data (varint length + bytes).

use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bus::{self, lease, Entry};
use crate::event::DataKind;
use crate::router::{Backoff, StreamSettings};

/// Consumer group of the archiver on an intake stream.
pub const GROUP: &str = "archive";
/// Most events in one segment.
pub const SEGMENT_EVENTS: usize = 2000;
/// A block is written at the latest this long after its first event was read.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);
/// The most time between the first and the last event of a segment: a replay of a
/// window looks this far before it for segments that reach into it.
pub const SEGMENT_SPAN_MS: u64 = 10 * 60 * 1000;
/// zstd level: 3 is zstd's default, a good ratio at a small cost.
const LEVEL: i32 = 3;

pub fn intake_key(bus: &str, archive: &str) -> String {
    format!("sluice:{{{bus}}}:archive:{archive}:in")
}

pub fn segments_key(bus: &str, archive: &str) -> String {
    format!("sluice:{{{bus}}}:archive:{archive}:segments")
}

pub fn segment_key(bus: &str, archive: &str, member: &str) -> String {
    format!("sluice:{{{bus}}}:archive:{archive}:seg:{member}")
}

pub fn size_key(bus: &str, archive: &str) -> String {
    format!("sluice:{{{bus}}}:archive:{archive}:size")
}

/// One archive, as its archiver runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivePlan {
    pub bus: String,
    pub name: String,
    /// 0: segments are kept.
    pub retention_days: u32,
}

/// An archived event: its bus entry id and fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    pub entry: String,
    pub attrs: Bytes,
    pub data: Option<(DataKind, Bytes)>,
}

/// A segment member's parts: first and last event time (ms) and event count.
pub fn member_parts(member: &str) -> Option<(u64, u64, usize)> {
    let mut parts = member.splitn(5, '-');
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// A segment member's size in bytes.
fn member_bytes(member: &str) -> u64 {
    member
        .split('-')
        .nth(3)
        .and_then(|b| b.parse().ok())
        .unwrap_or(0)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(input: &mut &[u8]) -> Option<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(n);
        }
    }
    None
}

fn get_bytes(input: &mut &[u8]) -> Option<Bytes> {
    let len = usize::try_from(get_varint(input)?).ok()?;
    if input.len() < len {
        return None;
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Some(Bytes::copy_from_slice(bytes))
}

/// Encodes and compresses events into a segment.
pub fn encode(events: &[Archived]) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(events.iter().map(|e| e.attrs.len() + 64).sum());
    for e in events {
        let (ms, seq) = bus::stream_id(&e.entry);
        put_varint(&mut raw, ms);
        put_varint(&mut raw, seq);
        put_varint(&mut raw, e.attrs.len() as u64);
        raw.extend_from_slice(&e.attrs);
        match &e.data {
            None => raw.push(0),
            Some((kind, bytes)) => {
                raw.push(kind.code().as_bytes()[0]);
                put_varint(&mut raw, bytes.len() as u64);
                raw.extend_from_slice(bytes);
            }
        }
    }
    zstd::bulk::compress(&raw, LEVEL)
}

/// Decompresses and decodes a segment; `None` if it is not one.
pub fn decode(segment: &[u8]) -> Option<Vec<Archived>> {
    let raw = zstd::stream::decode_all(segment).ok()?;
    let mut input = raw.as_slice();
    let mut events = Vec::new();
    while !input.is_empty() {
        let ms = get_varint(&mut input)?;
        let seq = get_varint(&mut input)?;
        let attrs = get_bytes(&mut input)?;
        let (&kind, rest) = input.split_first()?;
        input = rest;
        let data = if kind == 0 {
            None
        } else {
            let kind = DataKind::from_code(&[kind])?;
            Some((kind, get_bytes(&mut input)?))
        };
        events.push(Archived {
            entry: format!("{ms}-{seq}"),
            attrs,
            data,
        });
    }
    Some(events)
}

/// Runs the archiver of one archive until `shutdown`, while this replica holds its lease.
pub async fn run(
    plan: ArchivePlan,
    conn: ConnectionManager,
    shared: ConnectionManager,
    settings: StreamSettings,
    shutdown: CancellationToken,
) {
    let key = bus::lease_key(&plan.bus, &format!("archive:{}", plan.name));
    while let Some(held) = lease::acquire_at_once(
        &shared,
        &key,
        &settings.consumer,
        settings.claim_idle,
        &shutdown,
    )
    .await
    {
        archive(&plan, conn.clone(), shared.clone(), &settings, &held.lost).await;
        held.release().await;
    }
}

/// How often the archiver drops segments past the retention.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

async fn archive(
    plan: &ArchivePlan,
    mut conn: ConnectionManager,
    mut shared: ConnectionManager,
    settings: &StreamSettings,
    lost: &CancellationToken,
) {
    let intake = intake_key(&plan.bus, &plan.name);
    let mut backoff = Backoff::default();
    let mut group_ready = false;
    let mut take_over = true;
    let mut block: Vec<Entry> = Vec::new();
    let mut block_started = tokio::time::Instant::now();
    let mut last_expiry: Option<tokio::time::Instant> = None;
    while !lost.is_cancelled() {
        if !group_ready {
            match bus::ensure_group(&mut conn, &intake, GROUP).await {
                Ok(()) => group_ready = true,
                Err(e) => {
                    warn!(bus = %plan.bus, archive = %plan.name, error = %e, "cannot create the archive group; retrying");
                    backoff.wait(lost).await;
                    continue;
                }
            }
        }
        if plan.retention_days > 0 && last_expiry.is_none_or(|t| t.elapsed() >= EXPIRE_EVERY) {
            last_expiry = Some(tokio::time::Instant::now());
            if let Err(e) = expire(plan, &mut shared).await {
                warn!(bus = %plan.bus, archive = %plan.name, error = %e, "dropping expired segments failed");
            }
        }
        let room = SEGMENT_EVENTS - block.len();
        let read = if take_over {
            // What the previous lease holder read and had not written yet, in order.
            let claimed = bus::claim_all(&mut conn, &intake, GROUP, &settings.consumer).await;
            take_over = claimed.is_err();
            claimed
        } else {
            // While a block is open, wait no longer than its flush time.
            let wait = if block.is_empty() {
                settings.block
            } else {
                FLUSH_AFTER
                    .saturating_sub(block_started.elapsed())
                    .clamp(Duration::from_millis(1), settings.block)
            };
            bus::read_group(&mut conn, &intake, GROUP, &settings.consumer, room, wait).await
        };
        match read {
            Ok(entries) => {
                backoff.reset();
                if block.is_empty() && !entries.is_empty() {
                    block_started = tokio::time::Instant::now();
                }
                block.extend(entries);
            }
            Err(e) => {
                group_ready = !bus::is_missing_group(&e);
                warn!(bus = %plan.bus, archive = %plan.name, error = %e, "reading the archive intake failed; retrying");
                backoff.wait(lost).await;
                continue;
            }
        }
        let full = block.len() >= SEGMENT_EVENTS;
        if block.is_empty() || !(full || block_started.elapsed() >= FLUSH_AFTER) {
            continue;
        }
        if lost.is_cancelled() {
            // Pending: the next holder writes them.
            break;
        }
        let taken = std::mem::take(&mut block);
        for part in split_by_span(taken) {
            loop {
                match write_segment(plan, &mut shared, &intake, &part).await {
                    Ok(()) => break,
                    Err(e) => {
                        warn!(bus = %plan.bus, archive = %plan.name, error = %e, "writing a segment failed; retrying");
                        if lost.is_cancelled() {
                            return;
                        }
                        backoff.wait(lost).await;
                    }
                }
            }
        }
        backoff.reset();
    }
}

/// The events of a block cut where they would span more than [`SEGMENT_SPAN_MS`].
fn split_by_span(block: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut parts: Vec<Vec<Entry>> = Vec::new();
    let mut bounds = (u64::MAX, 0u64);
    for entry in block {
        let t = event_time(&entry);
        let (lo, hi) = (bounds.0.min(t), bounds.1.max(t));
        if parts.is_empty() || hi - lo > SEGMENT_SPAN_MS {
            parts.push(Vec::new());
            bounds = (t, t);
        } else {
            bounds = (lo, hi);
        }
        parts.last_mut().expect("pushed").push(entry);
    }
    parts
}

/// An intake entry's event time: that of the bus entry it came from (field `b`).
fn event_time(entry: &Entry) -> u64 {
    entry
        .body
        .as_ref()
        .ok()
        .and_then(|raw| raw.origin.as_deref())
        .and_then(bus::entry_time_ms)
        .or_else(|| bus::entry_time_ms(&entry.id))
        .unwrap_or_default()
}

/// Stores one segment and removes its events from the intake, in one transaction.
async fn write_segment(
    plan: &ArchivePlan,
    conn: &mut ConnectionManager,
    intake: &str,
    entries: &[Entry],
) -> Result<(), bus::BusError> {
    let events: Vec<Archived> = entries
        .iter()
        .filter_map(|e| {
            let raw = e.body.as_ref().ok()?;
            Some(Archived {
                entry: raw.origin.clone().unwrap_or_else(|| e.id.clone()),
                attrs: raw.attrs.clone(),
                data: raw.data.clone(),
            })
        })
        .collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let mut pipe = redis::pipe();
    pipe.atomic();
    if !events.is_empty() {
        let times = events.iter().filter_map(|e| bus::entry_time_ms(&e.entry));
        let (first, last) = times.fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let bytes = encode(&events).map_err(|e| {
            bus::BusError::Redis(redis::RedisError::from((
                redis::ErrorKind::Client,
                "zstd",
                e.to_string(),
            )))
        })?;
        let member = format!("{first}-{last}-{}-{}-{}", events.len(), bytes.len(), ids[0]);
        let key = segment_key(&plan.bus, &plan.name, &member);
        let set = pipe.cmd("SET").arg(&key).arg(bytes.as_slice());
        if plan.retention_days > 0 {
            set.arg("PXAT").arg(last + retention_ms(plan));
        }
        set.ignore();
        pipe.cmd("ZADD")
            .arg(segments_key(&plan.bus, &plan.name))
            .arg(first)
            .arg(&member)
            .ignore();
        let size = size_key(&plan.bus, &plan.name);
        pipe.cmd("HINCRBY")
            .arg(&size)
            .arg("segments")
            .arg(1)
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(&size)
            .arg("events")
            .arg(events.len())
            .ignore();
        pipe.cmd("HINCRBY")
            .arg(&size)
            .arg("bytes")
            .arg(bytes.len())
            .ignore();
        debug!(bus = %plan.bus, archive = %plan.name, events = events.len(), bytes = bytes.len(), "segment written");
    }
    pipe.cmd("XACK").arg(intake).arg(GROUP).arg(&ids).ignore();
    pipe.cmd("XDEL").arg(intake).arg(&ids).ignore();
    bus::within(pipe.query_async::<()>(conn)).await
}

fn retention_ms(plan: &ArchivePlan) -> u64 {
    u64::from(plan.retention_days) * 24 * 3600 * 1000
}

/// Drops the segments past the retention (index entries and keys, in batches until
/// none is left; a key may have expired by itself already). A change of
/// `retention_days` applies to the expiry of segments written after it; this sweep
/// drops older ones by the new retention.
async fn expire(plan: &ArchivePlan, conn: &mut ConnectionManager) -> Result<(), bus::BusError> {
    const SWEEP: usize = 1000;
    let now = crate::observability::trace::now_ms();
    let Some(horizon) = now.checked_sub(retention_ms(plan)) else {
        return Ok(());
    };
    let key = segments_key(&plan.bus, &plan.name);
    // Segments start at most SEGMENT_SPAN_MS before they end: the ones that may be past
    // the horizon start before it.
    let mut floor = "-inf".to_string();
    loop {
        let batch: Vec<String> = bus::within(
            redis::cmd("ZRANGEBYSCORE")
                .arg(&key)
                .arg(&floor)
                .arg(horizon)
                .arg("LIMIT")
                .arg(0)
                .arg(SWEEP)
                .query_async(conn),
        )
        .await?;
        let n = batch.len();
        let gone: Vec<&String> = batch
            .iter()
            .filter(|m| member_parts(m).is_some_and(|(_, last, _)| last < horizon))
            .collect();
        if !gone.is_empty() {
            let (events, bytes) = gone.iter().fold((0u64, 0u64), |(e, b), m| {
                (
                    e + member_parts(m).map_or(0, |p| p.2 as u64),
                    b + member_bytes(m),
                )
            });
            let keys: Vec<String> = gone
                .iter()
                .map(|m| segment_key(&plan.bus, &plan.name, m))
                .collect();
            let size = size_key(&plan.bus, &plan.name);
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("ZREM").arg(&key).arg(&gone).ignore();
            pipe.cmd("UNLINK").arg(&keys).ignore();
            pipe.cmd("HINCRBY")
                .arg(&size)
                .arg("segments")
                .arg(-(gone.len() as i64))
                .ignore();
            pipe.cmd("HINCRBY")
                .arg(&size)
                .arg("events")
                .arg(-(events as i64))
                .ignore();
            pipe.cmd("HINCRBY")
                .arg(&size)
                .arg("bytes")
                .arg(-(bytes as i64))
                .ignore();
            bus::within(pipe.query_async::<()>(conn)).await?;
            info!(bus = %plan.bus, archive = %plan.name, segments = gone.len(), "dropped segments past the retention");
        }
        if n < SWEEP {
            return Ok(());
        }
        // Segments still in their retention (they end after the horizon) stay; go on
        // after the last one looked at.
        if gone.len() < n {
            let last_score = batch
                .last()
                .and_then(|m| member_parts(m))
                .map_or(0, |p| p.0);
            floor = format!("({last_score}");
        }
    }
}

/// What an archive holds: segments, events and bytes.
pub async fn size(
    conn: &mut ConnectionManager,
    bus: &str,
    archive: &str,
) -> Result<(usize, u64, u64), bus::BusError> {
    let (segments, events, bytes): (Option<usize>, Option<u64>, Option<u64>) = bus::within(
        redis::cmd("HMGET")
            .arg(size_key(bus, archive))
            .arg("segments")
            .arg("events")
            .arg("bytes")
            .query_async(conn),
    )
    .await?;
    Ok((
        segments.unwrap_or(0),
        events.unwrap_or(0),
        bytes.unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        let events = vec![
            Archived {
                entry: "1700000000000-0".into(),
                attrs: Bytes::from_static(br#"{"id":"1","type":"t"}"#),
                data: Some((DataKind::Json, Bytes::from_static(b"{\"n\":1}"))),
            },
            Archived {
                entry: "1700000000001-7".into(),
                attrs: Bytes::from_static(br#"{"id":"2"}"#),
                data: None,
            },
            Archived {
                entry: "1700000000002-0".into(),
                attrs: Bytes::from_static(br#"{"id":"3"}"#),
                data: Some((DataKind::Binary, Bytes::from_static(&[0, 1, 255]))),
            },
        ];
        let segment = encode(&events).unwrap();
        assert_eq!(decode(&segment).unwrap(), events);
        assert!(decode(b"not zstd").is_none());
    }

    #[test]
    fn members_carry_their_bounds() {
        assert_eq!(member_parts("1700-1800-25-1700-3"), Some((1700, 1800, 25)));
        assert_eq!(member_bytes("1700-1800-25-4096-1700-3"), 4096);
        assert_eq!(member_parts("x"), None);
    }
}
