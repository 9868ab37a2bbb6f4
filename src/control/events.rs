//! `GET /api/v1/buses/{bus}/events`: search a bus's retained events by time window and
//! by an event pattern or CloudEvents filters, with the router's matcher.
//!
//! The bus stream is read in ranges (`XRANGE`/`XREVRANGE`, oldest or newest first) and
//! matched on the stored bytes as the router matches them (no decoding of events that do
//! not match). A request scans at most `budget` entries, so a broad query cannot hold up
//! Redis: when the budget runs out before `limit` matches, the answer has what it found
//! and a `next` cursor (the last entry scanned), and the client asks again from there.
//! Cursors are entry ids, so pages neither skip nor repeat an event, whatever was
//! appended in between.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::resources::{current, ResourceApi};
use super::store::Kind;
use crate::config::Dialect;
use crate::event::DataKind;
use crate::ingress::error::ApiError;
use crate::rules::{EventData, EventView, Matcher};

/// Matches per page unless `limit` says otherwise, and the most a page may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Entries scanned per request unless `budget` says otherwise, and the most allowed.
const DEFAULT_BUDGET: usize = 10_000;
const MAX_BUDGET: usize = 100_000;
/// The longest stats window one request reads (10,080 minutes).
const MAX_STATS_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Entries per Redis range read.
const CHUNK: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/buses/{bus}/events", web::get().to(search))
        .route("/buses/{bus}/events/{id}", web::get().to(event))
        .route("/buses/{bus}/stats", web::get().to(stats));
}

pub(crate) fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!("{field}: {message}"),
    )
    .field(field)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Oldest time to include: RFC 3339 (`2026-12-03T10:00:00Z`) or a duration ago (`1h`).
    since: Option<String>,
    /// Newest time to include, the same forms; default now.
    until: Option<String>,
    /// An event pattern (JSON), as a rule's `pattern`.
    pattern: Option<String>,
    /// CloudEvents Subscriptions filters (a JSON array), as a rule's `filters`.
    filters: Option<String>,
    /// What `pattern` is written against: `cloudevents` (default) or `aws`.
    dialect: Option<String>,
    /// Matching events per page (1..=1000, default 100).
    limit: Option<usize>,
    /// Entries scanned at most by this request (1..=100000, default 10000).
    budget: Option<usize>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// `oldest` (default) or `newest` first.
    order: Option<String>,
}

/// A bound of the window in stream-id milliseconds.
pub(crate) fn time_ms(field: &'static str, text: &str, now_ms: u64) -> Result<u64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return u64::try_from(t.timestamp_millis())
            .map_err(|_| bad(field, "must not be before 1970"));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now_ms.saturating_sub(ago.as_millis() as u64)),
        Err(_) => Err(bad(
            field,
            format!("{text:?} is neither an RFC 3339 time nor a duration such as 1h"),
        )),
    }
}

fn json_param(field: &'static str, text: &Option<String>) -> Result<Option<Value>, ApiError> {
    text.as_deref()
        .map(|t| serde_json::from_str(t).map_err(|e| bad(field, format!("not JSON: {e}"))))
        .transpose()
}

/// One checked search.
pub(crate) struct Search {
    matcher: Matcher,
    key: String,
    /// Stream-range bounds (inclusive), oldest to newest.
    from: String,
    to: String,
    newest_first: bool,
    limit: usize,
    budget: usize,
}

/// What a search found: (entry id, event) each, the cursor to go on from, entries read.
pub(crate) struct Found {
    pub events: Vec<(String, crate::event::Event)>,
    pub next: Option<String>,
    pub scanned: usize,
}

impl Search {
    /// A search of `bus` for `condition` between the times (ms, inclusive), after
    /// `cursor` (an entry id, already checked), for the facades.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        bus: &str,
        condition: crate::rules::Pattern,
        since_ms: Option<u64>,
        until_ms: Option<u64>,
        cursor: Option<&str>,
        newest_first: bool,
        limit: usize,
        budget: usize,
    ) -> Search {
        let mut from = since_ms.map_or_else(|| "-".to_string(), |ms| ms.to_string());
        let mut to = until_ms.map_or_else(|| "+".to_string(), |ms| ms.to_string());
        if let Some(cursor) = cursor {
            if newest_first {
                to = format!("({cursor}");
            } else {
                from = format!("({cursor}");
            }
        }
        Search {
            matcher: Matcher::new(vec![condition]),
            key: crate::bus::bus_key(bus),
            from,
            to,
            newest_first,
            limit,
            budget,
        }
    }

    /// Reads the window in ranges until `limit` matches or `budget` entries. The next
    /// range is asked for as soon as a range arrives, before its entries are matched, so
    /// Redis reads one range while the gateway matches the previous one.
    pub(crate) async fn run(
        &self,
        conn: &mut redis::aio::ConnectionManager,
    ) -> Result<Found, crate::bus::BusError> {
        let (mut from, mut to) = (self.from.clone(), self.to.clone());
        let mut events = Vec::new();
        let mut scanned = 0;
        let mut last: Option<String> = None;
        let mut found = Vec::new();
        let mut exhausted = false;
        let mut next = Some(self.fetch(conn, &from, &to, CHUNK.min(self.budget)));
        while let Some(fetch) = next.take() {
            let (chunk, count) = fetch.await.map_err(|e| {
                crate::bus::BusError::Redis(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "search task",
                    e.to_string(),
                )))
            })??;
            let n = chunk.len();
            if n < count {
                exhausted = true;
            }
            // The range after this one, asked for now (a page that fills up on this
            // range drops it unread).
            if let Some(id) = chunk.last().map(|e| e.id.as_str()) {
                let (f, t) = if self.newest_first {
                    (from.clone(), format!("({id}"))
                } else {
                    (format!("({id}"), to.clone())
                };
                let room = self.budget - scanned - n;
                if !exhausted && room > 0 {
                    next = Some(self.fetch(conn, &f, &t, CHUNK.min(room)));
                }
            }
            for entry in chunk {
                scanned += 1;
                if let Ok(raw) = &entry.body {
                    if matches(&self.matcher, raw, &mut found) {
                        if let Ok(event) = raw.to_event() {
                            events.push((entry.id.clone(), event));
                        }
                    }
                }
                let id = entry.id;
                if self.newest_first {
                    to = format!("({id}");
                } else {
                    from = format!("({id}");
                }
                last = Some(id);
                if events.len() >= self.limit {
                    next = None;
                    exhausted = false;
                    break;
                }
            }
            if events.len() >= self.limit || scanned >= self.budget {
                break;
            }
        }
        Ok(Found {
            events,
            next: if exhausted { None } else { last },
            scanned,
        })
    }

    /// One range read, on its own task: (the entries, how many were asked for).
    fn fetch(
        &self,
        conn: &redis::aio::ConnectionManager,
        from: &str,
        to: &str,
        count: usize,
    ) -> tokio::task::JoinHandle<Result<(Vec<crate::bus::Entry>, usize), crate::bus::BusError>>
    {
        let (mut conn, key, newest_first) = (conn.clone(), self.key.clone(), self.newest_first);
        let (from, to) = (from.to_string(), to.to_string());
        tokio::spawn(async move {
            let chunk = if newest_first {
                crate::bus::range(&mut conn, &key, &to, &from, count, true).await?
            } else {
                crate::bus::range(&mut conn, &key, &from, &to, count, false).await?
            };
            Ok((chunk, count))
        })
    }
}

/// Whether `cursor` is an entry id (the only cursors searches hand out).
pub(crate) fn valid_cursor(cursor: &str) -> bool {
    cursor
        .split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
}

fn plan(bus: &str, q: &SearchQuery, now_ms: u64) -> Result<Search, ApiError> {
    let dialect = match q.dialect.as_deref() {
        None | Some("cloudevents") => Dialect::Cloudevents,
        Some("aws") => Dialect::Aws,
        Some(other) => {
            return Err(bad(
                "dialect",
                format!("{other:?} is not cloudevents or aws"),
            ))
        }
    };
    let pattern = json_param("pattern", &q.pattern)?;
    let filters = json_param("filters", &q.filters)?;
    let condition =
        crate::config::condition(pattern.as_ref(), filters.as_ref(), dialect).map_err(|e| {
            let field = if e.path.starts_with("filters") {
                "filters"
            } else {
                "pattern"
            };
            bad(field, format!("{}: {}", e.path, e.message))
        })?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    let budget = q.budget.unwrap_or(DEFAULT_BUDGET);
    if !(1..=MAX_BUDGET).contains(&budget) {
        return Err(bad("budget", format!("must be between 1 and {MAX_BUDGET}")));
    }
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => return Err(bad("order", format!("{other:?} is not oldest or newest"))),
    };
    let since = q
        .since
        .as_deref()
        .map(|t| time_ms("since", t, now_ms))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|t| time_ms("until", t, now_ms))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(bad("until", "is before since"));
        }
    }
    if let Some(cursor) = &q.cursor {
        if !valid_cursor(cursor) {
            return Err(bad(
                "cursor",
                "not a cursor of this API (the `next` of a page)",
            ));
        }
    }
    // A bare millisecond is `MS-0` as a start and `MS-<max>` as an end; the cursor is
    // exclusive (its entry was read already).
    Ok(Search::new(
        bus,
        condition,
        since,
        until,
        q.cursor.as_deref(),
        newest_first,
        limit,
        budget,
    ))
}

/// The query string, or 400 naming what is wrong with it.
fn query_of<T>(query: Result<web::Query<T>, actix_web::Error>) -> Result<T, ApiError> {
    query.map(web::Query::into_inner).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("invalid query: {e}"),
        )
    })
}

/// The bus's spec, or 404.
fn bus_spec<'a>(merged: &'a super::document::Merged, bus: &str) -> Result<&'a Value, ApiError> {
    merged.get(Kind::Bus, bus).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no bus {bus:?}"),
        )
    })
}

/// Whether a stored entry matches, read as the router reads it.
fn matches(matcher: &Matcher, raw: &crate::bus::RawEntry, found: &mut Vec<usize>) -> bool {
    let data = match &raw.data {
        _ if !matcher.needs_data() => EventData::None,
        Some((DataKind::Json, bytes)) => EventData::Json(bytes),
        Some((DataKind::Text, bytes)) => match std::str::from_utf8(bytes) {
            Ok(text) => EventData::Text(text),
            Err(_) => EventData::None,
        },
        _ => EventData::None,
    };
    found.clear();
    let view = EventView {
        attrs: &raw.attrs,
        data,
    };
    matcher.matching_checked(&view, found).is_ok() && !found.is_empty()
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}/events", tag = "events",
    params(("bus" = String, Path, description = "the bus", example = "orders"), SearchQuery),
    responses(
        (status = 200, description = "a page of matching events and the cursor of the next", body = ref("#/components/schemas/EventPage")),
        (status = 400, description = "an invalid parameter (`field` names it)"),
        (status = 404, description = "no such bus"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// Retained events of a bus that match a pattern or filters, in a time window, paged.
pub(crate) async fn search(
    path: web::Path<String>,
    query: Result<web::Query<SearchQuery>, actix_web::Error>,
    resources: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let bus = path.into_inner();
    let query = query_of(query)?;
    let (_, merged) = current(&resources).await?;
    bus_spec(&merged, &bus)?;
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let search = plan(&bus, &query, now_ms)?;
    let mut conn = resources.redis.clone();
    let unavailable = |e: crate::bus::BusError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            format!("cannot read the bus: {e}"),
        )
    };
    let found = search.run(&mut conn).await.map_err(unavailable)?;
    let events: Vec<Value> = found
        .events
        .iter()
        .filter_map(|(entry, event)| {
            let event: Value = serde_json::from_slice(&event.to_structured_json()).ok()?;
            Some(json!({"entry": entry, "event": event}))
        })
        .collect();
    let (next, scanned) = (found.next, found.scanned);
    Ok(HttpResponse::Ok().json(json!({
        "events": events,
        "next": next,
        "scanned": scanned,
    })))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// How far back: a duration (`1h`, default; at most the bus's `stats.retention`).
    window: Option<String>,
    /// `type` (default) or `source`.
    by: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}/stats", tag = "events",
    params(("bus" = String, Path, description = "the bus", example = "orders"), StatsQuery),
    responses(
        (status = 200, description = "counts per minute and in all", body = ref("#/components/schemas/BusStats")),
        (status = 400, description = "an invalid parameter (`field` names it)"),
        (status = 404, description = "no such bus"),
        (status = 409, description = "the bus does not count (`stats:` is not set on it)"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// A bus's events per minute by `type` or `source`, and how many its rules matched.
pub(crate) async fn stats(
    path: web::Path<String>,
    query: Result<web::Query<StatsQuery>, actix_web::Error>,
    resources: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let bus = path.into_inner();
    let query = query_of(query)?;
    let (_, merged) = current(&resources).await?;
    let spec = bus_spec(&merged, &bus)?;
    let Some(config) = spec.get("stats").filter(|s| s.is_object()) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stats_off",
            format!("bus {bus:?} does not count its events: set `stats: {{}}` on it"),
        ));
    };
    let retention = config["retention"]
        .as_str()
        .and_then(|r| humantime::parse_duration(r).ok())
        .unwrap_or(std::time::Duration::from_secs(24 * 3600));
    let window = match query.window.as_deref() {
        None => std::time::Duration::from_secs(3600),
        Some(w) => humantime::parse_duration(w)
            .map_err(|_| bad("window", format!("{w:?} is not a duration such as 1h")))?,
    };
    if window.is_zero() || window > retention || window > MAX_STATS_WINDOW {
        return Err(bad(
            "window",
            format!(
                "must be more than 0 and at most the bus's stats.retention ({}) and 7d",
                humantime::format_duration(retention)
            ),
        ));
    }
    let prefix = match query.by.as_deref() {
        None | Some("type") => "t:",
        Some("source") => "s:",
        Some(other) => return Err(bad("by", format!("{other:?} is not type or source"))),
    };
    let now_minute = chrono::Utc::now().timestamp().max(0) as u64 / 60;
    let first = (now_minute + 1).saturating_sub((window.as_secs() / 60).max(1));
    let mut pipe = redis::pipe();
    for minute in first..=now_minute {
        pipe.cmd("HGETALL").arg(crate::stats::key(&bus, minute));
    }
    let hashes: Vec<std::collections::HashMap<String, i64>> =
        crate::bus::within(pipe.query_async(&mut resources.redis.clone()))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "redis_unavailable",
                    format!("cannot read the counts: {e}"),
                )
            })?;
    let mut minutes = Vec::new();
    let (mut all, mut matched) = (0, 0);
    let mut totals = serde_json::Map::new();
    for (minute, hash) in (first..=now_minute).zip(hashes) {
        if hash.is_empty() {
            continue;
        }
        let mut counts = serde_json::Map::new();
        for (field, n) in &hash {
            if let Some(name) = field.strip_prefix(prefix) {
                counts.insert(name.to_string(), (*n).into());
                let t = totals.entry(name.to_string()).or_insert(Value::from(0));
                *t = (t.as_i64().unwrap_or(0) + n).into();
            }
        }
        let (a, m) = (
            hash.get("all").copied().unwrap_or(0),
            hash.get("matched").copied().unwrap_or(0),
        );
        all += a;
        matched += m;
        let at = chrono::DateTime::from_timestamp((minute * 60) as i64, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        minutes.push(json!({"minute": at, "all": a, "matched": m, "counts": counts}));
    }
    Ok(HttpResponse::Ok().json(json!({
        "bus": bus,
        "by": if prefix == "t:" { "type" } else { "source" },
        "window": humantime::format_duration(window).to_string(),
        "minutes": minutes,
        "totals": {"all": all, "matched": matched, "counts": totals},
    })))
}

/// One event and its trace, as `GET /api/v1/buses/{bus}/events/{id}` answers it.
pub(crate) struct Traced {
    /// The trace records, in the order they were written.
    pub records: Vec<Value>,
    /// The newest retained copy of the event: its bus entry id and the event.
    pub event: Option<(String, crate::event::Event)>,
    /// The trace has more records than were read (the oldest are left out).
    pub truncated: bool,
}

/// Entries a lookup of an untraced event scans, newest first.
const LOOKUP_BUDGET: usize = 10_000;

/// Reads the trace of event `id` on `bus` and the event itself: from the bus entry the
/// trace names, or, with no trace (the bus is not traced, or the trace expired), by a
/// search of the newest retained entries for that id.
pub(crate) async fn lookup(
    conn: &mut redis::aio::ConnectionManager,
    bus: &str,
    id: &str,
) -> Result<Traced, crate::bus::BusError> {
    use crate::observability::trace;
    // The newest records: a list can grow past the limit after routing (attempts).
    let (lines, length): (Vec<String>, usize) = crate::bus::within(
        redis::pipe()
            .cmd("LRANGE")
            .arg(trace::key(bus, id))
            .arg(-trace::READ_LIMIT)
            .arg(-1)
            .cmd("LLEN")
            .arg(trace::key(bus, id))
            .query_async(conn),
    )
    .await?;
    let records: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let entry = records
        .iter()
        .rev()
        .find(|r| r["stage"] == "received")
        .and_then(|r| r["entry"].as_str());
    let event = match entry {
        Some(entry) => crate::bus::range(conn, &crate::bus::bus_key(bus), entry, entry, 1, false)
            .await?
            .into_iter()
            .find_map(|e| Some((e.id, e.body.ok()?.to_event().ok()?))),
        None => {
            let condition =
                crate::config::condition(Some(&json!({"id": [id]})), None, Dialect::Cloudevents)
                    .expect("an id pattern is valid");
            Search::new(bus, condition, None, None, None, true, 1, LOOKUP_BUDGET)
                .run(conn)
                .await?
                .events
                .into_iter()
                .next()
        }
    };
    Ok(Traced {
        truncated: length > lines.len(),
        records,
        event,
    })
}

#[utoipa::path(get, path = "/api/v1/buses/{bus}/events/{id}", tag = "events",
    params(
        ("bus" = String, Path, description = "the bus", example = "orders"),
        ("id" = String, Path, description = "the event id", example = "order-1001"),
    ),
    responses(
        (status = 200, description = "the event (if still retained) and its trace", body = ref("#/components/schemas/EventTrace")),
        (status = 404, description = "no such bus, or no trace and no retained event with that id"),
        (status = 503, description = "Redis is unavailable"),
    )
)]
/// One event of a bus and its trace: received, routed, every delivery attempt, outcome.
pub(crate) async fn event(
    path: web::Path<(String, String)>,
    resources: web::Data<ResourceApi>,
) -> Result<HttpResponse, ApiError> {
    let (bus, id) = path.into_inner();
    let (_, merged) = current(&resources).await?;
    let spec = bus_spec(&merged, &bus)?;
    let traced_bus = spec.get("trace").is_some_and(Value::is_object);
    let found = lookup(&mut resources.redis.clone(), &bus, &id)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "redis_unavailable",
                format!("cannot read the trace: {e}"),
            )
        })?;
    if found.records.is_empty() && found.event.is_none() {
        let why = if traced_bus {
            "its trace has expired or it was not sampled, and it is not among the newest retained events"
        } else {
            "the bus is not traced (set `trace: {}` on it), and the event is not among the newest retained events"
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no event {id:?} on bus {bus:?}: {why}"),
        )
        .field("id"));
    }
    let outcomes = crate::observability::trace::outcomes(&found.records);
    let (entry, event) = match &found.event {
        Some((entry, event)) => (
            Some(entry.clone()),
            serde_json::from_slice::<Value>(&event.to_structured_json()).ok(),
        ),
        None => (None, None),
    };
    Ok(HttpResponse::Ok().json(json!({
        "bus": bus,
        "id": id,
        "traced": !found.records.is_empty(),
        "entry": entry,
        "event": event,
        "trace": found.records,
        "truncated": found.truncated,
        "outcomes": outcomes,
    })))
}
