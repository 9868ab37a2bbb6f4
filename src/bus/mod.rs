//! Redis Streams: the bus. Key layout, appends, consumer groups, reads and claims.
//!
//! # Keys
//! Every key of a bus carries the bus name as a hash tag, so a bus lives on one Redis
//! Cluster shard and one MULTI/EXEC can span its bus stream and its target streams.
//!
//! | key | type | holds |
//! |-----|------|-------|
//! | `sluice:{BUS}:events` | stream | every accepted event of the bus, for its retention; consumer group `router` |
//! | `sluice:{BUS}:t:RULE:TARGET` | stream | events routed to one target, waiting for delivery; consumer group `dispatch` |
//! | `sluice:{BUS}:delay:RULE:TARGET` | sorted set | retries waiting for their next attempt, scored by due time in ms (see [`delay`], [`promote`]) |
//! | `sluice:{BUS}:delayed:RULE:TARGET` | hash | the fields of each delay set member, packed with `cmsgpack` |
//! | `sluice:{BUS}:dlq:RULE:TARGET` | stream | events a target failed to take (see [`dead_letter`]); no consumer group |
//! | `sluice:{BUS}:dedupe:SOURCE:ID` | string | marks a webhook id as appended, for the source's dedupe window |
//!
//! # Entries
//! An entry has the fields `a` (context attributes, a JSON object), `k` (data kind: `j`
//! JSON, `t` text, `b` binary) and `d` (the data bytes exactly as received); `k` and `d`
//! are absent for events without data. Target entries add `b`, the bus entry id they came
//! from, `r` (`1`) when redriven from the DLQ, and, once back from the delay set, `t`
//! (when their age limit started, ms), `n` (attempts made) and `h` (their JSON list).
//! DLQ entries keep `a`, `k`, `d`, `b` and add `e` (event id), `reason`, `attempts`
//! (JSON list of `{at, status, error, latency_ms}`) and `entry` (the target entry id).
//!
//! # Connections
//! Appends and acknowledgements share one multiplexed connection: commands issued
//! concurrently by many requests are written to the socket together and so travel as one
//! pipeline. Blocking reads (`XREADGROUP ... BLOCK`) get a connection of their own, since
//! a blocked multiplexed connection would stall every other command on it. Every
//! connection is built from the Redis URL by [`redis_url::client`] (TLS, ACL users).

pub mod lease;
pub mod redis_url;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::{RedisError, Value};

use crate::event::{Data, DataKind, EncodedEvent, Event};

/// Consumer group of the router on a bus stream.
pub const ROUTER_GROUP: &str = "router";
/// Consumer group of the dispatchers on a target stream.
pub const DISPATCH_GROUP: &str = "dispatch";

/// How long a command may take before the caller treats Redis as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Key of a bus stream.
pub fn bus_key(bus: &str) -> String {
    format!("sluice:{{{bus}}}:events")
}

/// Key of a target stream.
pub fn target_key(bus: &str, rule: &str, target: &str) -> String {
    format!("sluice:{{{bus}}}:t:{rule}:{target}")
}

/// Key of a target's dead-letter stream.
pub fn dlq_key(bus: &str, rule: &str, target: &str) -> String {
    format!("sluice:{{{bus}}}:dlq:{rule}:{target}")
}

/// Key marking webhook `id` of `source` as appended to `bus` (see [`append_once`]).
pub fn dedupe_key(bus: &str, source: &str, id: &str) -> String {
    format!("sluice:{{{bus}}}:dedupe:{source}:{id}")
}

/// How long a bus stream keeps its events (see [`trim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Drop entries older than this.
    Age(Duration),
    /// Keep at most this many entries.
    Length(u64),
}

impl Retention {
    pub fn of(bus: &crate::config::BusConfig) -> Retention {
        match (bus.retention_age(), bus.max_len) {
            (Some(age), _) => Retention::Age(age),
            (None, Some(n)) => Retention::Length(n),
            (None, None) => unreachable!("retention_age defaults when max_len is unset"),
        }
    }
}

/// A bus as the ingress sees it.
#[derive(Debug, Clone)]
pub struct BusSpec {
    pub name: String,
    pub key: String,
    /// Set on a traced bus: appends mark sampled entries with how they came (field `w`).
    pub trace: Option<TraceMark>,
}

impl BusSpec {
    /// An untraced bus.
    pub fn new(name: &str) -> BusSpec {
        BusSpec {
            name: name.to_string(),
            key: bus_key(name),
            trace: None,
        }
    }

    /// Bus `name` of `buses`, marking the entries this replica appends if it is traced.
    pub fn of(name: &str, buses: &[crate::config::BusConfig], replica: &str) -> BusSpec {
        let trace = buses
            .iter()
            .find(|b| b.name.as_str() == name)
            .and_then(|b| b.trace.as_ref());
        BusSpec {
            trace: trace.map(|t| TraceMark {
                tracing: crate::observability::trace::Tracing::new(t.retention, t.sample),
                replica: replica.into(),
            }),
            ..BusSpec::new(name)
        }
    }
}

/// What ingest needs to mark entries of a traced bus.
#[derive(Debug, Clone)]
pub struct TraceMark {
    pub tracing: crate::observability::trace::Tracing,
    /// This replica's id.
    pub replica: std::sync::Arc<str>,
}

impl TraceMark {
    /// The `w` field of an event appended by way of `via`, if the event is traced.
    fn via(&self, event_id: &str, via: &str) -> Option<String> {
        self.tracing
            .sampled(event_id)
            .then(|| format!("{via}@{}", self.replica))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Opens the shared multiplexed connection. It connects lazily and reconnects by
/// itself; a command sent while Redis is down fails within a few seconds.
pub fn connect(url: &str) -> Result<ConnectionManager, RedisError> {
    connect_with_timeout(url, RESPONSE_TIMEOUT)
}

/// Opens a connection for blocking reads, whose responses may take `block` longer.
pub fn connect_blocking(url: &str, block: Duration) -> Result<ConnectionManager, RedisError> {
    connect_with_timeout(url, RESPONSE_TIMEOUT + block)
}

fn connect_with_timeout(url: &str, timeout: Duration) -> Result<ConnectionManager, RedisError> {
    let client = redis_url::client(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Runs a command future with an overall deadline, mapping a timeout to `BusError`.
pub async fn within<T>(
    fut: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, BusError> {
    let limit = RESPONSE_TIMEOUT * 2;
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(BusError::Timeout(limit)),
    }
}

/// Appends events to a bus; returns once Redis has acknowledged them. Several events
/// go in one MULTI/EXEC: all are appended or none.
pub async fn append(
    conn: &mut ConnectionManager,
    bus: &BusSpec,
    events: &[EncodedEvent],
    via: &str,
) -> Result<(), BusError> {
    append_to(conn, events.iter().map(|ev| (bus, ev)), via).await
}

/// Appends events to their buses in one MULTI/EXEC (all are appended or none); returns
/// once Redis has acknowledged them. (Under Redis Cluster, events of different buses
/// would have to be grouped by bus: a transaction cannot span hash slots.)
pub async fn append_to<'a>(
    conn: &mut ConnectionManager,
    events: impl ExactSizeIterator<Item = (&'a BusSpec, &'a EncodedEvent)>,
    via: &str,
) -> Result<(), BusError> {
    let mut pipe = redis::pipe();
    if events.len() > 1 {
        pipe.atomic();
    }
    for (bus, ev) in events {
        let cmd = pipe
            .cmd("XADD")
            .arg(&bus.key)
            .arg("*")
            .arg("a")
            .arg(&ev.attrs);
        if let Some(data) = &ev.data {
            cmd.arg("k")
                .arg(data.kind.code())
                .arg("d")
                .arg(data.bytes.as_ref());
        }
        if let Some(w) = bus.trace.as_ref().and_then(|t| t.via(&ev.id, via)) {
            cmd.arg("w").arg(w);
        }
        cmd.ignore();
    }
    within(pipe.query_async::<()>(conn)).await
}

/// Appends one event unless its dedupe key exists, then sets the key with a TTL: one
/// script, so one round trip and atomic. The key is written after the `XADD` in the
/// same script, so there is never a dedupe key without its event (a failed `XADD`
/// aborts the script before the `SET`). The TTL is checked before the `XADD`, so the
/// `SET` cannot fail on it and leave an event without its key (sources bound `dedupe`
/// to 365d; the check is a backstop).
const APPEND_ONCE_LUA: &str = r#"
local ttl = tonumber(ARGV[1])
if not ttl or ttl < 1 or ttl > 1e15 or ttl ~= math.floor(ttl) then
  return redis.error_reply('ERR dedupe TTL out of range')
end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
"#;

/// Appends `event` to `bus` unless `dedupe_key` was set within `window`; true when
/// appended, false for a duplicate. Returns once Redis has acknowledged it.
pub async fn append_once(
    conn: &mut ConnectionManager,
    bus: &BusSpec,
    event: &EncodedEvent,
    dedupe_key: &str,
    window: Duration,
    via: &str,
) -> Result<bool, BusError> {
    let appended =
        append_once_each(conn, &[(bus, event, dedupe_key.to_string())], window, via).await?;
    Ok(appended.first() == Some(&true))
}

/// [`append_once`] for several events in one round trip: the scripts are pipelined (not
/// one transaction), in order, so a repeat later in the list is a duplicate of an
/// earlier one. Each event is appended with its key or not at all; on an error, those
/// before it may be appended, and a retry appends only what is missing.
pub async fn append_once_each(
    conn: &mut ConnectionManager,
    events: &[(&BusSpec, &EncodedEvent, String)],
    window: Duration,
    via: &str,
) -> Result<Vec<bool>, BusError> {
    let ttl = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut pipe = redis::pipe();
    for (bus, event, dedupe_key) in events {
        let cmd = pipe
            .cmd("EVAL")
            .arg(APPEND_ONCE_LUA)
            .arg(2)
            .arg(&bus.key)
            .arg(dedupe_key)
            .arg(ttl)
            .arg("a")
            .arg(&event.attrs);
        if let Some(data) = &event.data {
            cmd.arg("k")
                .arg(data.kind.code())
                .arg("d")
                .arg(data.bytes.as_ref());
        }
        if let Some(w) = bus.trace.as_ref().and_then(|t| t.via(&event.id, via)) {
            cmd.arg("w").arg(w);
        }
    }
    let appended: Vec<u8> = within(pipe.query_async(conn)).await?;
    Ok(appended.into_iter().map(|a| a == 1).collect())
}

/// Trims a bus stream to its retention, but never past what the router group has not
/// yet routed: an event leaves the bus only once it is in its target streams. Exact
/// (not `~`) trimming; run periodically by the router, not per append.
const TRIM_BUS: &str = r#"
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last, pending
for _, g in ipairs(groups) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[1] then last = f['last-delivered-id']; pending = f['pending'] end
end
if not last then return 0 end
-- Ids are compared and incremented as decimal strings: Lua numbers are doubles.
local function parse(id)
  return string.match(id, '^(%d+)-(%d+)$')
end
local function numless(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then return numless(am, bm) end
  return numless(as, bs)
end
local function inc(digits)
  local i = #digits
  while i >= 1 and string.sub(digits, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #digits) end
  local d = string.byte(digits, i) - 47
  return string.sub(digits, 1, i - 1) .. string.char(48 + d) .. string.rep('0', #digits - i)
end
local function after(id)
  local ms, seq = parse(id)
  return ms .. '-' .. inc(seq)
end
-- Entries from the oldest one the router still holds (pending, or not yet read) stay.
local floor = after(last)
if pending > 0 then
  local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
  if less(summary[2], floor) then floor = summary[2] end
end
local minid
if ARGV[2] == 'age' then
  minid = ARGV[3]
else
  local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[3])
  if excess <= 0 then return 0 end
  -- Only entries below the floor, and at most a bounded chunk per call: the caller
  -- calls again while a full chunk was removed.
  local chunk = math.min(excess, tonumber(ARGV[4]))
  local oldest = redis.call('XRANGE', KEYS[1], '-', '(' .. floor, 'COUNT', chunk)
  if #oldest == 0 then return 0 end
  minid = after(oldest[#oldest][1])
end
if less(floor, minid) then minid = floor end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
"#;

/// Most entries a length trim removes per call (they pass through the script).
pub const TRIM_CHUNK: u64 = 10_000;

/// Runs [`TRIM_BUS`]; returns how many entries were removed.
pub async fn trim(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    retention: Retention,
) -> Result<u64, BusError> {
    let (mode, bound) = match retention {
        Retention::Age(age) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            ("age", format!("{}-0", now.saturating_sub(age).as_millis()))
        }
        Retention::Length(n) => ("len", n.to_string()),
    };
    within(
        redis::cmd("EVAL")
            .arg(TRIM_BUS)
            .arg(1)
            .arg(key)
            .arg(group)
            .arg(mode)
            .arg(bound)
            .arg(TRIM_CHUNK)
            .query_async::<u64>(conn),
    )
    .await
}

/// Creates a consumer group (and the stream) if missing. The group starts at the
/// beginning of the stream so nothing appended before it existed is skipped.
pub async fn ensure_group(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
) -> Result<(), BusError> {
    let created = within(
        redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async::<()>(conn),
    )
    .await;
    match created {
        Err(BusError::Redis(e)) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// True when Redis says the consumer group (or stream) is gone, e.g. after a restart
/// without persistence: the caller recreates it.
pub fn is_missing_group(err: &BusError) -> bool {
    matches!(err, BusError::Redis(e) if e.code() == Some("NOGROUP"))
}

/// Reads new entries for `consumer`, waiting up to `block` for some to arrive.
pub async fn read_group(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Duration,
) -> Result<Vec<Entry>, BusError> {
    read_group_from(conn, key, group, consumer, count, block, ">").await
}

/// Reads the entries already pending on `consumer` (delivered to it, not acknowledged),
/// oldest first: what an earlier task of this process under the same consumer name left.
pub async fn read_own_pending(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
) -> Result<Vec<Entry>, BusError> {
    read_group_from(conn, key, group, consumer, count, Duration::ZERO, "0").await
}

async fn read_group_from(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Duration,
    from: &str,
) -> Result<Vec<Entry>, BusError> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if from == ">" {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(key).arg(from);
    let reply: Value = tokio::time::timeout(block + RESPONSE_TIMEOUT * 2, cmd.query_async(conn))
        .await
        .map_err(|_| BusError::Timeout(block + RESPONSE_TIMEOUT * 2))??;
    // Nil on timeout; else [[key, [entry, ...]]] (RESP2) or {key: [entry, ...]} (RESP3).
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => return Err(unexpected(&other)),
    };
    let mut entries = Vec::new();
    for stream in streams {
        parse_entries(stream, &mut entries)?;
    }
    Ok(entries)
}

/// An entry read from a stream: its id and its fields, decoded.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub body: Result<RawEntry, MalformedEntry>,
}

fn unexpected(value: &Value) -> BusError {
    BusError::Redis(RedisError::from((
        redis::ErrorKind::Client,
        "unexpected stream reply",
        format!("{value:?}"),
    )))
}

/// Up to `count` entries of `key` between `start` and `end` (stream range syntax:
/// `-`, `+`, `MS`, `MS-SEQ`, `(ID` exclusive), oldest first; newest first with
/// `newest_first` (then `start` is the upper bound, as `XREVRANGE` takes them).
pub async fn range(
    conn: &mut ConnectionManager,
    key: &str,
    start: &str,
    end: &str,
    count: usize,
    newest_first: bool,
) -> Result<Vec<Entry>, BusError> {
    let command = if newest_first { "XREVRANGE" } else { "XRANGE" };
    let value: Value = within(
        redis::cmd(command)
            .arg(key)
            .arg(start)
            .arg(end)
            .arg("COUNT")
            .arg(count)
            .query_async(conn),
    )
    .await?;
    let mut out = Vec::with_capacity(count.min(4096));
    parse_entries(value, &mut out)?;
    Ok(out)
}

/// Parses `[[id, [field, value, ...]], ...]`, skipping nil entries (deleted ones).
fn parse_entries(value: Value, out: &mut Vec<Entry>) -> Result<(), BusError> {
    let Value::Array(items) = value else {
        return Err(unexpected(&value));
    };
    for item in items {
        let Value::Array(pair) = item else { continue };
        let mut pair = pair.into_iter();
        let (Some(Value::BulkString(id)), fields) = (pair.next(), pair.next()) else {
            continue;
        };
        let id = String::from_utf8(id).map_err(|_| unexpected(&Value::Nil))?;
        let body = match fields {
            Some(Value::Array(fields)) => RawEntry::from_fields(fields),
            _ => Err(MalformedEntry("entry has no fields")),
        };
        out.push(Entry { id, body });
    }
    Ok(())
}

/// Takes over entries that have been pending on any consumer for at least `min_idle`
/// (their consumer is presumed dead). Entries deleted meanwhile are dropped by Redis.
pub async fn autoclaim(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    count: usize,
) -> Result<Vec<Entry>, BusError> {
    let mut claimed = Vec::new();
    let mut cursor = "0-0".to_string();
    loop {
        let reply: Value = within(
            redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(group)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(&cursor)
                .arg("COUNT")
                .arg((count - claimed.len()).min(1000))
                .query_async(conn),
        )
        .await?;
        // [next-cursor, [entry, ...], [deleted-id, ...]]
        let Value::Array(mut parts) = reply else {
            return Err(unexpected(&reply));
        };
        if parts.len() < 2 {
            return Err(unexpected(&Value::Array(parts)));
        }
        let entries = parts.swap_remove(1);
        cursor = match parts.swap_remove(0) {
            Value::BulkString(c) => String::from_utf8_lossy(&c).into_owned(),
            Value::SimpleString(c) => c,
            other => return Err(unexpected(&other)),
        };
        parse_entries(entries, &mut claimed)?;
        if cursor == "0-0" || claimed.len() >= count {
            return Ok(claimed);
        }
    }
}

/// Takes over every pending entry of the group, whoever holds it, in id order: what a
/// new lease holder does first (the previous holder is gone or has stopped).
pub async fn claim_all(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
) -> Result<Vec<Entry>, BusError> {
    // The scan's cursor moves forward, so entries claimed here are not met again.
    autoclaim(conn, key, group, consumer, Duration::ZERO, usize::MAX).await
}

/// Takes over the entries pending on consumers other than `consumer`, oldest first (up
/// to 1000 per consumer). For a lease holder, any such entry is abandoned: its reader
/// lost the lease (or died) after Redis handed it the entry.
pub async fn claim_foreign(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
) -> Result<Vec<Entry>, BusError> {
    // [count, first id, last id, [[consumer, count], ...]]
    let summary: Value =
        within(redis::cmd("XPENDING").arg(key).arg(group).query_async(conn)).await?;
    let mut others = Vec::new();
    if let Value::Array(parts) = summary {
        if let Some(Value::Array(consumers)) = parts.into_iter().nth(3) {
            for c in consumers {
                if let Value::Array(pair) = c {
                    if let Some(Value::BulkString(name)) = pair.into_iter().next() {
                        if name != consumer.as_bytes() {
                            others.push(name);
                        }
                    }
                }
            }
        }
    }
    let mut claimed = Vec::new();
    for other in others {
        let pending: Vec<(String, String, u64, u64)> = within(
            redis::cmd("XPENDING")
                .arg(key)
                .arg(group)
                .arg("-")
                .arg("+")
                .arg(1000)
                .arg(&other)
                .query_async(conn),
        )
        .await?;
        if pending.is_empty() {
            continue;
        }
        let ids: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
        let reply: Value = within(
            redis::cmd("XCLAIM")
                .arg(key)
                .arg(group)
                .arg(consumer)
                .arg(0)
                .arg(&ids)
                .query_async(conn),
        )
        .await?;
        parse_entries(reply, &mut claimed)?;
    }
    claimed.sort_by_key(|e| stream_id(&e.id));
    Ok(claimed)
}

/// Whether entry `id` is pending for `consumer` in `group`.
pub async fn is_pending_for(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    id: &str,
) -> Result<bool, BusError> {
    let pending: Vec<(String, String, u64, u64)> = within(
        redis::cmd("XPENDING")
            .arg(key)
            .arg(group)
            .arg(id)
            .arg(id)
            .arg(1)
            .arg(consumer)
            .query_async(conn),
    )
    .await?;
    Ok(!pending.is_empty())
}

/// A stream entry id as numbers, for ordering (`ms-seq`).
pub fn stream_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// The token bucket of a target's rate limit.
pub fn rate_key(bus: &str, rule: &str, target: &str) -> String {
    format!("sluice:{{{bus}}}:rate:{rule}:{target}")
}

/// Set while a target is paused because it answered `410 Gone` (see `dispatch::limits::Gone`).
pub fn gone_key(bus: &str, rule: &str, target: &str) -> String {
    format!("sluice:{{{bus}}}:gone:{rule}:{target}")
}

/// The lease of the one reader of a stream that must be read in order.
pub fn lease_key(bus: &str, what: &str) -> String {
    format!("sluice:{{{bus}}}:lease:{what}")
}

/// Removes consumers that hold no pending entries and have been idle for `min_idle`:
/// the names of replicas that exited. Check and removal run as one script, so an
/// entry delivered in between cannot be dropped with its consumer.
const PRUNE_CONSUMERS: &str = r#"
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) and f['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
"#;

/// Runs [`PRUNE_CONSUMERS`]; returns how many consumers were removed.
pub async fn prune_consumers(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
) -> Result<usize, BusError> {
    within(
        redis::cmd("EVAL")
            .arg(PRUNE_CONSUMERS)
            .arg(1)
            .arg(key)
            .arg(group)
            .arg(min_idle.as_millis() as u64)
            .arg(consumer)
            .query_async::<usize>(conn),
    )
    .await
}

/// The ownership check shared by the scripts below: is entry ARGV[3] pending for
/// consumer ARGV[2] of group ARGV[1]?
const OWNED: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
"#;

/// Moves an entry this consumer owns out of its target stream (KEYS[1]) into the delay
/// set (KEYS[2], scored by due time in ms from Redis' clock) and the delayed hash
/// (KEYS[3], the entry's fields packed with `cmsgpack` under the same member): writes
/// first, then the XACK + XDEL, so an error leaves the entry pending where it was.
/// ARGV[6], when not empty, is the attempt's trace record, for the trace list KEYS[4].
static DELAY: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(&format!(
        "{OWNED}{}",
        r#"
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[5])
redis.call('HSET', KEYS[3], ARGV[4], cmsgpack.pack({unpack(ARGV, 7)}))
if ARGV[6] ~= '' then redis.call('RPUSHX', KEYS[4], ARGV[6]) end
redis.call('ZADD', KEYS[2], due, ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"#
    ))
});

/// Moves due members of a delay set (KEYS[1], fields in KEYS[2]) back to their target
/// stream (KEYS[3]), at most ARGV[1] per call; returns how many were moved. Per member
/// the XADD comes before the ZREM + HDEL; the whole batch is one script, so replicas
/// running it concurrently are serialised by Redis and never move a member twice.
static PROMOTE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  local packed = redis.call('HGET', KEYS[2], m)
  if packed then
    redis.call('XADD', KEYS[3], '*', unpack(cmsgpack.unpack(packed)))
  end
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[2], m)
end
return #due
"#,
    )
});

/// Moves a target entry this consumer owns into the target's delay set, due `delay`
/// from now (Redis' clock), atomically (see `DELAY`); the fields are those of `raw`
/// plus `t` (`born_ms`), `n` (`failed`, attempts so far) and `h` (`history`, their JSON
/// list). Returns false, changing nothing, if the entry is no longer pending for this
/// consumer. `trace`: the trace list and the attempt's record, for a traced event.
#[allow(clippy::too_many_arguments)]
pub async fn delay(
    conn: &mut ConnectionManager,
    keys: &DelayKeys,
    group: &str,
    consumer: &str,
    id: &str,
    raw: &RawEntry,
    delay: Duration,
    born_ms: u64,
    failed: u32,
    history: &str,
    trace: Option<(&str, &[u8])>,
) -> Result<bool, BusError> {
    let mut script = DELAY.key(&keys.stream);
    let (trace_key, record) = trace.unwrap_or((&keys.stream, b""));
    script
        .key(&keys.delay)
        .key(&keys.delayed)
        .key(trace_key)
        .arg(group)
        .arg(consumer)
        .arg(id)
        .arg(uuid::Uuid::new_v4().simple().to_string())
        .arg(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
        .arg(record);
    script.arg("a").arg(raw.attrs.as_ref());
    if let Some((kind, data)) = &raw.data {
        script.arg("k").arg(kind.code()).arg("d").arg(data.as_ref());
    }
    if let Some(origin) = &raw.origin {
        script.arg("b").arg(origin);
    }
    if raw.redriven {
        script.arg("r").arg("1");
    }
    script
        .arg("t")
        .arg(born_ms)
        .arg("n")
        .arg(failed)
        .arg("h")
        .arg(history);
    within(script.invoke_async::<i64>(conn))
        .await
        .map(|moved| moved == 1)
}

/// Most members one [`promote`] call moves.
pub const PROMOTE_BATCH: usize = 100;

/// Moves due entries of a delay set back to the target stream (see `PROMOTE`); returns
/// how many were moved (at most [`PROMOTE_BATCH`]).
pub async fn promote(conn: &mut ConnectionManager, keys: &DelayKeys) -> Result<usize, BusError> {
    within(
        PROMOTE
            .key(&keys.delay)
            .key(&keys.delayed)
            .key(&keys.stream)
            .arg(PROMOTE_BATCH)
            .invoke_async::<usize>(conn),
    )
    .await
}

/// The keys of one target that retries move through.
#[derive(Debug, Clone)]
pub struct DelayKeys {
    /// The target stream.
    pub stream: String,
    /// The delay set: member -> due time (ms).
    pub delay: String,
    /// The delayed entries: member -> packed fields.
    pub delayed: String,
}

impl DelayKeys {
    pub fn new(bus: &str, rule: &str, target: &str) -> DelayKeys {
        DelayKeys {
            stream: target_key(bus, rule, target),
            delay: format!("sluice:{{{bus}}}:delay:{rule}:{target}"),
            delayed: format!("sluice:{{{bus}}}:delayed:{rule}:{target}"),
        }
    }
}

/// Moves an entry this consumer owns to the dead-letter stream (KEYS[2]): the XADD, then
/// the XACK + XDEL. In a script, an error stops what follows, so a failed XADD leaves the
/// entry pending (a MULTI/EXEC would still acknowledge it); and the ownership check makes
/// a retry after a lost reply a no-op instead of a second DLQ copy. ARGV[4], when not
/// empty, is the attempt's trace record, for the trace list KEYS[3].
static DEAD_LETTER: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(&format!(
        "{OWNED}{}",
        r#"
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
if ARGV[4] ~= '' then redis.call('RPUSHX', KEYS[3], ARGV[4]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"#
    ))
});

/// Acknowledges delivered entries and deletes them from the target stream, in one
/// pipeline: a target stream holds only what is still to be delivered. `traces`: the
/// trace records (list key, record) of traced deliveries, written in the same pipeline.
pub async fn ack_delete(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
    ids: &[String],
    traces: &[(String, Vec<u8>)],
) -> Result<(), BusError> {
    let mut pipe = redis::pipe();
    pipe.cmd("XACK").arg(key).arg(group).arg(ids).ignore();
    pipe.cmd("XDEL").arg(key).arg(ids).ignore();
    for (list, record) in traces {
        pipe.cmd("RPUSHX").arg(list).arg(record).ignore();
    }
    within(pipe.query_async::<()>(conn)).await
}

/// Moves a target entry this consumer owns to the dead-letter stream, atomically (see
/// `DEAD_LETTER`). Returns false, changing nothing, if the entry is no longer pending for
/// this consumer.
#[allow(clippy::too_many_arguments)]
pub async fn dead_letter(
    conn: &mut ConnectionManager,
    key: &str,
    dlq: &str,
    group: &str,
    consumer: &str,
    id: &str,
    raw: &RawEntry,
    event_id: &str,
    reason: &str,
    attempts_json: &str,
    payload: Option<(&str, &[u8])>,
    trace: Option<(&str, &[u8])>,
) -> Result<bool, BusError> {
    let mut script = DEAD_LETTER.key(key);
    let (trace_key, record) = trace.unwrap_or((key, b""));
    script
        .key(dlq)
        .key(trace_key)
        .arg(group)
        .arg(consumer)
        .arg(id)
        .arg(record);
    script.arg("a").arg(raw.attrs.as_ref());
    if let Some((kind, data)) = &raw.data {
        script.arg("k").arg(kind.code()).arg("d").arg(data.as_ref());
    }
    if let Some(origin) = &raw.origin {
        script.arg("b").arg(origin);
    }
    script
        .arg("e")
        .arg(event_id)
        .arg("reason")
        .arg(reason)
        .arg("attempts")
        .arg(attempts_json)
        .arg("entry")
        .arg(id);
    // What the target would have received, when a transform made it differ from the event.
    if let Some((content_type, body)) = payload {
        script
            .arg("payload")
            .arg(body)
            .arg("payload_type")
            .arg(content_type);
    }
    within(script.invoke_async::<i64>(conn))
        .await
        .map(|moved| moved == 1)
}

/// Moves DLQ entries (KEYS[1]; ids in ARGV from 3) back to their target stream (KEYS[2])
/// with `a`, `k`, `d`, `b` and `r=1`; returns 1 per id moved, 0 per id not there. Per
/// entry the `XADD` comes before the `XDEL`, and the whole batch is one script: an entry
/// is never lost (an error stops the script before its `XDEL`) nor redriven twice (a
/// second run finds it gone). Each moved event's trace (ARGV[1] .. event id, a key of the
/// same bus, so of the same slot) gets a `redriven` record for target ARGV[2], if the
/// event is traced.
pub static REDRIVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local moved = {}
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local record = '{"stage":"redriven","at":' .. now .. ',"target":"' .. ARGV[2] .. '"}'
for n = 3, #ARGV do
  local id = ARGV[n]
  moved[n - 2] = 0
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if #found == 1 then
    local fields = found[1][2]
    local out = {}
    local event_id
    for i = 1, #fields, 2 do
      local f = fields[i]
      if f == 'a' or f == 'k' or f == 'd' or f == 'b' then
        out[#out + 1] = f
        out[#out + 1] = fields[i + 1]
      elseif f == 'e' then
        event_id = fields[i + 1]
      end
    end
    out[#out + 1] = 'r'
    out[#out + 1] = '1'
    redis.call('XADD', KEYS[2], '*', unpack(out))
    redis.call('XDEL', KEYS[1], id)
    if event_id then redis.call('RPUSHX', ARGV[1] .. event_id, record) end
    moved[n - 2] = 1
  end
end
return moved
"#,
    )
});

/// The fields of a stream entry, as stored.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub attrs: Bytes,
    pub data: Option<(DataKind, Bytes)>,
    /// In a target stream: the id of the bus entry it was routed from.
    pub origin: Option<String>,
    /// Redriven from the DLQ (field `r`).
    pub redriven: bool,
    /// Set on an entry back from the delay set: when its age limit started (field `t`,
    /// ms), how many attempts failed (`n`) and their JSON list (`h`).
    pub born_ms: Option<u64>,
    pub failed: u32,
    pub history: Option<String>,
    /// In a bus entry of a traced bus: how it came, `WAY@REPLICA` (field `w`).
    pub via: Option<String>,
    /// In a bus entry appended by a replay to named rules: those rules, comma-separated
    /// (field `R`); the router routes it to them only.
    pub only_rules: Option<String>,
}

/// When an entry was appended: the milliseconds part of its stream id.
pub fn entry_time_ms(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// Why an entry could not be read back; it was not written by Sluice.
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed stream entry: {0}")]
pub struct MalformedEntry(&'static str);

impl RawEntry {
    /// Decodes the flat `[field, value, ...]` list of an entry.
    pub fn from_fields(fields: Vec<Value>) -> Result<RawEntry, MalformedEntry> {
        let (mut attrs, mut kind, mut data, mut origin) = (None, None, None, None);
        let mut redriven = false;
        let (mut born_ms, mut failed, mut history) = (None, 0, None);
        let (mut via, mut only_rules) = (None, None);
        let mut fields = fields.into_iter();
        while let (Some(Value::BulkString(name)), Some(Value::BulkString(value))) =
            (fields.next(), fields.next())
        {
            match name.as_slice() {
                b"a" => attrs = Some(Bytes::from(value)),
                b"k" => kind = Some(value),
                b"d" => data = Some(Bytes::from(value)),
                b"b" => origin = String::from_utf8(value).ok(),
                b"r" => redriven = true,
                b"t" => {
                    born_ms = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                }
                b"n" => {
                    failed = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0)
                }
                b"h" => history = String::from_utf8(value).ok(),
                b"w" => via = String::from_utf8(value).ok(),
                b"R" => only_rules = String::from_utf8(value).ok(),
                _ => {}
            }
        }
        let attrs = attrs.ok_or(MalformedEntry("field a is missing"))?;
        let data = match (kind, data) {
            (Some(k), Some(d)) => Some((
                DataKind::from_code(&k).ok_or(MalformedEntry("unknown data kind"))?,
                d,
            )),
            (None, None) => None,
            _ => return Err(MalformedEntry("field k or d is missing")),
        };
        Ok(RawEntry {
            attrs,
            data,
            origin,
            redriven,
            born_ms,
            failed,
            history,
            via,
            only_rules,
        })
    }

    /// Parses the attributes.
    pub fn attrs_map(&self) -> Result<serde_json::Map<String, serde_json::Value>, MalformedEntry> {
        serde_json::from_slice(&self.attrs)
            .map_err(|_| MalformedEntry("field a is not a JSON object"))
    }

    /// Decodes into an event.
    pub fn to_event(&self) -> Result<Event, MalformedEntry> {
        let attrs = self.attrs_map()?;
        Ok(Event {
            attrs,
            data: self.data.as_ref().map(|(kind, bytes)| Data {
                kind: *kind,
                bytes: bytes.clone(),
            }),
        })
    }
}
