//! Dead-letter streams as the operator sees them: depth, pages of entries, one entry,
//! redrive and purge (all, by entry id, or by event pattern). One implementation shared
//! by `sluice dlq ...` (main.rs) and the HTTP API (`control/dlq.rs`), straight against
//! Redis. Key layout and the redrive script are in `bus`.

use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use serde_json::json;

use crate::bus::{self, RawEntry};
use crate::event::DataKind;
use crate::rules::{EventData, EventView, Matcher, Pattern, PatternError};

/// Entries read per `XRANGE` when walking a whole DLQ.
const PAGE: usize = 500;
/// Entry ids per redrive script call (each call blocks Redis while it runs).
const REDRIVE_BATCH: usize = 100;

/// Where one target's DLQ and stream live.
#[derive(Debug, Clone)]
pub struct DlqRef {
    pub dlq: String,
    pub target: String,
    /// What the bus's traces start with (the event id follows).
    pub trace_prefix: String,
    /// `RULE/TARGET`, as traces name the target.
    pub label: String,
}

impl DlqRef {
    pub fn new(bus: &str, rule: &str, target: &str) -> DlqRef {
        DlqRef {
            dlq: bus::dlq_key(bus, rule, target),
            target: bus::target_key(bus, rule, target),
            trace_prefix: crate::observability::trace::key(bus, ""),
            label: format!("{rule}/{target}"),
        }
    }
}

/// True for a full stream entry id (`1700000000000-0`). A partial one (`1700000000000`)
/// would stand for every entry of that millisecond in `XRANGE`.
pub fn is_entry_id(id: &str) -> bool {
    id.split_once('-')
        .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
}

/// One dead-lettered event.
#[derive(Debug, Clone)]
pub struct DlqEntry {
    /// The DLQ entry id.
    pub id: String,
    pub event_id: String,
    pub reason: String,
    /// The attempts (JSON list of `{at, status, error, latency_ms}`).
    pub attempts: serde_json::Value,
    /// The target entry it was, and the bus entry it came from.
    pub target_entry: Option<String>,
    pub bus_entry: Option<String>,
    /// The event's fields as stored, or why they cannot be decoded.
    pub raw: Result<RawEntry, String>,
    /// What the target would have received, with its content type, when a transform made
    /// it differ from the event (fields `payload`, `payload_type`).
    pub payload: Option<(String, Vec<u8>)>,
}

impl DlqEntry {
    fn parse(id: String, fields: Vec<Value>) -> DlqEntry {
        let text = |name: &str| -> Option<String> {
            fields.chunks(2).find_map(|pair| match pair {
                [Value::BulkString(n), Value::BulkString(v)] if n == name.as_bytes() => {
                    Some(String::from_utf8_lossy(v).into_owned())
                }
                _ => None,
            })
        };
        let (event_id, reason, attempts, target_entry) = (
            text("e").unwrap_or_default(),
            text("reason").unwrap_or_default(),
            text("attempts")
                .and_then(|a| serde_json::from_str(&a).ok())
                .unwrap_or(json!([])),
            text("entry"),
        );
        let payload = text("payload_type").and_then(|content_type| {
            fields.chunks(2).find_map(|pair| match pair {
                [Value::BulkString(n), Value::BulkString(v)] if n == b"payload" => {
                    Some((content_type.clone(), v.clone()))
                }
                _ => None,
            })
        });
        let raw = RawEntry::from_fields(fields).map_err(|e| e.to_string());
        let bus_entry = raw.as_ref().ok().and_then(|r| r.origin.clone());
        DlqEntry {
            payload,
            id,
            event_id,
            reason,
            attempts,
            target_entry,
            bus_entry,
            raw,
        }
    }

    /// Number of recorded attempts.
    pub fn attempt_count(&self) -> usize {
        self.attempts.as_array().map_or(0, Vec::len)
    }

    /// When it was dead-lettered (RFC 3339, from the entry id).
    pub fn time(&self) -> Option<String> {
        let ms = bus::entry_time_ms(&self.id)?;
        let at = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)?;
        Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// Does the event match `matcher`? An undecodable entry matches nothing.
    pub fn matches(&self, matcher: &Matcher) -> bool {
        let Ok(raw) = &self.raw else { return false };
        let data = match &raw.data {
            Some((DataKind::Json, bytes)) => EventData::Json(bytes),
            Some((DataKind::Text, bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => EventData::Text(text),
                Err(_) => EventData::None,
            },
            _ => EventData::None,
        };
        let mut matched = Vec::new();
        matcher.matching(
            &EventView {
                attrs: &raw.attrs,
                data,
            },
            &mut matched,
        );
        !matched.is_empty()
    }

    /// The entry without its event: id, event id, reason, attempts, time.
    pub fn summary_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "event_id": self.event_id,
            "reason": self.reason,
            "time": self.time(),
            "attempts": self.attempts,
            "target_entry": self.target_entry,
            "bus_entry": self.bus_entry,
        })
    }

    /// The entry in full (`event` in the CloudEvents JSON format; `payload`, when there
    /// is one, as JSON for a JSON content type, else as text, else base64 with
    /// `"base64": true`).
    pub fn to_json(&self) -> serde_json::Value {
        let event = match self.raw.as_ref().map(|r| r.to_event()) {
            Ok(Ok(ev)) => serde_json::from_slice(&ev.to_structured_json()).unwrap_or_default(),
            Ok(Err(e)) => json!({ "error": e.to_string() }),
            Err(e) => json!({ "error": e }),
        };
        let mut out = self.summary_json();
        out["event"] = event;
        if let Some((content_type, body)) = &self.payload {
            use base64::Engine;
            let as_json = content_type
                .contains("json")
                .then(|| serde_json::from_slice::<serde_json::Value>(body).ok())
                .flatten();
            out["payload"] = match as_json {
                Some(value) => json!({"content_type": content_type, "body": value}),
                None => match std::str::from_utf8(body) {
                    Ok(text) => json!({"content_type": content_type, "body": text}),
                    Err(_) => json!({
                        "content_type": content_type,
                        "body": base64::engine::general_purpose::STANDARD.encode(body),
                        "base64": true,
                    }),
                },
            };
        }
        out
    }
}

fn parse_range(value: Value) -> Vec<DlqEntry> {
    let Value::Array(items) = value else {
        return vec![];
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Value::Array(mut pair) = item {
            if pair.len() == 2 {
                let fields = match pair.pop() {
                    Some(Value::Array(f)) => f,
                    _ => continue,
                };
                let id = match pair.pop() {
                    Some(Value::BulkString(id)) => String::from_utf8_lossy(&id).into_owned(),
                    _ => continue,
                };
                out.push(DlqEntry::parse(id, fields));
            }
        }
    }
    out
}

/// Entries in `[start, end]` (stream range syntax), at most `count`.
async fn range<C: ConnectionLike>(
    conn: &mut C,
    key: &str,
    start: &str,
    end: &str,
    count: usize,
) -> RedisResult<Vec<DlqEntry>> {
    let value: Value = redis::cmd("XRANGE")
        .arg(key)
        .arg(start)
        .arg(end)
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(parse_range(value))
}

/// How many entries the DLQ holds.
pub async fn depth<C: ConnectionLike>(conn: &mut C, dlq: &DlqRef) -> RedisResult<u64> {
    redis::cmd("XLEN").arg(&dlq.dlq).query_async(conn).await
}

/// Up to `limit` entries, oldest first, after entry `after` (exclusive) or from the start.
pub async fn page<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    after: Option<&str>,
    limit: usize,
) -> RedisResult<Vec<DlqEntry>> {
    let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
    range(conn, &dlq.dlq, &start, "+", limit).await
}

/// Every entry, oldest first.
pub async fn list<C: ConnectionLike>(conn: &mut C, dlq: &DlqRef) -> RedisResult<Vec<DlqEntry>> {
    let mut all = Vec::new();
    loop {
        let page = page(
            conn,
            dlq,
            all.last().map(|e: &DlqEntry| e.id.as_str()),
            PAGE,
        )
        .await?;
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// One entry by id.
pub async fn get<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    id: &str,
) -> RedisResult<Option<DlqEntry>> {
    Ok(range(conn, &dlq.dlq, id, id, 1).await?.into_iter().next())
}

/// Which entries a redrive or purge acts on.
pub enum Selection {
    /// Every entry there when the operation starts (not those dead-lettered meanwhile,
    /// so redriving to a target that still fails ends).
    All,
    /// These entry ids (full ids, see [`is_entry_id`]).
    Ids(Vec<String>),
    /// Entries whose event matches an event pattern (as of when the operation starts).
    Pattern(Box<Matcher>),
}

impl Selection {
    /// Compiles an EventBridge event pattern with the router's matcher.
    pub fn pattern(value: &serde_json::Value) -> Result<Selection, PatternError> {
        let pattern = Pattern::parse(value)?;
        Ok(Selection::Pattern(Box::new(Matcher::new(vec![pattern]))))
    }
}

/// What a redrive or purge did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Entries redriven (or purged).
    pub done: usize,
    /// Ids asked for by [`Selection::Ids`] that the DLQ does not hold.
    pub missing: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Redrive,
    Purge,
}

/// Moves the selected entries back to the end of the target stream, each atomically
/// (`bus::REDRIVE`): they are delivered again with the same event id.
pub async fn redrive<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    selection: &Selection,
) -> RedisResult<Outcome> {
    apply(conn, dlq, selection, Action::Redrive).await
}

/// Deletes the selected entries.
pub async fn purge<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    selection: &Selection,
) -> RedisResult<Outcome> {
    apply(conn, dlq, selection, Action::Purge).await
}

async fn apply<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    selection: &Selection,
    action: Action,
) -> RedisResult<Outcome> {
    let mut outcome = Outcome::default();
    let matcher = match selection {
        Selection::Ids(ids) => {
            for chunk in ids.chunks(REDRIVE_BATCH) {
                let done = act(conn, dlq, chunk, action).await?;
                for (id, moved) in chunk.iter().zip(done) {
                    if moved {
                        outcome.done += 1;
                    } else {
                        outcome.missing.push(id.clone());
                    }
                }
            }
            return Ok(outcome);
        }
        Selection::All => None,
        Selection::Pattern(matcher) => Some(matcher),
    };
    // Walk up to the last entry there now; a redriven event that fails again comes
    // back after it and is left for the next redrive.
    let last: Value = redis::cmd("XREVRANGE")
        .arg(&dlq.dlq)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    let Some(last) = parse_range(last).pop().map(|e| e.id) else {
        return Ok(outcome);
    };
    let mut start = "-".to_string();
    loop {
        let page = range(conn, &dlq.dlq, &start, &last, PAGE).await?;
        let Some(tail) = page.last() else { break };
        start = format!("({}", tail.id);
        let full = page.len() == PAGE;
        let chosen: Vec<String> = page
            .into_iter()
            .filter(|e| matcher.is_none_or(|m| e.matches(m)))
            .map(|e| e.id)
            .collect();
        for chunk in chosen.chunks(REDRIVE_BATCH) {
            // An entry gone meanwhile (purged, redriven by someone else) is skipped.
            let done = act(conn, dlq, chunk, action).await?;
            outcome.done += done.into_iter().filter(|d| *d).count();
        }
        if !full {
            break;
        }
    }
    Ok(outcome)
}

/// Redrives or deletes `ids`; per id, whether it was there.
async fn act<C: ConnectionLike>(
    conn: &mut C,
    dlq: &DlqRef,
    ids: &[String],
    action: Action,
) -> RedisResult<Vec<bool>> {
    match action {
        Action::Redrive => {
            let mut script = bus::REDRIVE.key(&dlq.dlq);
            script
                .key(&dlq.target)
                .arg(&dlq.trace_prefix)
                .arg(&dlq.label)
                .arg(ids);
            let moved: Vec<i64> = script.invoke_async(conn).await?;
            Ok(moved.into_iter().map(|m| m == 1).collect())
        }
        Action::Purge => {
            // XDEL answers a total; one per id, in one pipeline, says which were there.
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.cmd("XDEL").arg(&dlq.dlq).arg(id);
            }
            let deleted: Vec<i64> = pipe.query_async(conn).await?;
            Ok(deleted.into_iter().map(|d| d == 1).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_entry_ids_are_ids() {
        assert!(is_entry_id("1700000000000-0"));
        assert!(is_entry_id("1-12"));
        for bad in ["1700000000000", "-", "+", "1-", "-1", "a-1", "1-0-0", ""] {
            assert!(!is_entry_id(bad), "{bad}");
        }
    }

    #[test]
    fn patterns_match_attributes_and_data() {
        let fields = |attrs: &str, data: Option<&str>| {
            let mut f = vec![
                Value::BulkString(b"a".to_vec()),
                Value::BulkString(attrs.into()),
            ];
            if let Some(d) = data {
                f.extend([
                    Value::BulkString(b"k".to_vec()),
                    Value::BulkString(b"j".to_vec()),
                    Value::BulkString(b"d".to_vec()),
                    Value::BulkString(d.into()),
                ]);
            }
            f.extend([
                Value::BulkString(b"e".to_vec()),
                Value::BulkString(b"x".to_vec()),
            ]);
            DlqEntry::parse("1-0".into(), f)
        };
        let Selection::Pattern(m) =
            Selection::pattern(&json!({"type": ["paid"], "data": {"n": [{"numeric": [">", 1]}]}}))
                .unwrap()
        else {
            unreachable!()
        };
        let attrs = r#"{"id":"x","type":"paid","source":"/s","specversion":"1.0"}"#;
        assert!(fields(attrs, Some(r#"{"n":2}"#)).matches(&m));
        assert!(!fields(attrs, Some(r#"{"n":1}"#)).matches(&m));
        assert!(!fields(attrs, None).matches(&m));
        assert!(!fields("not json", Some(r#"{"n":2}"#)).matches(&m));
        assert_eq!(
            Selection::pattern(&json!({"type": "paid"}))
                .err()
                .unwrap()
                .path,
            ".type"
        );
    }
}
