//! Dead-letter streams as the operator sees them: list, show, redrive and purge,
//! straight against Redis (`sluice dlq ...`).

use redis::Value;
use serde_json::json;

use crate::bus::{self, RawEntry};

/// Where one target's DLQ and stream live.
#[derive(Debug, Clone)]
pub struct DlqRef {
    pub dlq: String,
    pub target: String,
}

impl DlqRef {
    pub fn new(bus: &str, rule: &str, target: &str) -> DlqRef {
        DlqRef {
            dlq: bus::dlq_key(bus, rule, target),
            target: bus::target_key(bus, rule, target),
        }
    }
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
    /// The event, or why it cannot be decoded.
    pub event: Result<crate::event::Event, String>,
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
        let raw = RawEntry::from_fields(fields).map_err(|e| e.to_string());
        let bus_entry = raw.as_ref().ok().and_then(|r| r.origin.clone());
        let event = raw.and_then(|r| r.to_event().map_err(|e| e.to_string()));
        DlqEntry {
            id,
            event_id,
            reason,
            attempts,
            target_entry,
            bus_entry,
            event,
        }
    }

    /// Number of recorded attempts.
    pub fn attempt_count(&self) -> usize {
        self.attempts.as_array().map_or(0, Vec::len)
    }

    /// The entry as JSON (`event` in the CloudEvents JSON format).
    pub fn to_json(&self) -> serde_json::Value {
        let event = match &self.event {
            Ok(ev) => serde_json::from_slice(&ev.to_structured_json()).unwrap_or_default(),
            Err(e) => json!({ "error": e }),
        };
        json!({
            "id": self.id,
            "event_id": self.event_id,
            "reason": self.reason,
            "attempts": self.attempts,
            "target_entry": self.target_entry,
            "bus_entry": self.bus_entry,
            "event": event,
        })
    }
}

fn parse_range(value: Value) -> redis::RedisResult<Vec<DlqEntry>> {
    let Value::Array(items) = value else {
        return Ok(vec![]);
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
    Ok(out)
}

/// Up to `count` entries from `start` (inclusive; `-` for the first).
pub fn range(
    conn: &mut redis::Connection,
    dlq: &DlqRef,
    start: &str,
    count: usize,
) -> redis::RedisResult<Vec<DlqEntry>> {
    let value: Value = redis::cmd("XRANGE")
        .arg(&dlq.dlq)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query(conn)?;
    parse_range(value)
}

/// Every entry, oldest first, in pages.
pub fn list(conn: &mut redis::Connection, dlq: &DlqRef) -> redis::RedisResult<Vec<DlqEntry>> {
    let mut all = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page = range(conn, dlq, &start, 500)?;
        let done = page.len() < 500;
        if let Some(last) = page.last() {
            start = format!("({}", last.id);
        }
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// One entry by id.
pub fn get(
    conn: &mut redis::Connection,
    dlq: &DlqRef,
    id: &str,
) -> redis::RedisResult<Option<DlqEntry>> {
    let value: Value = redis::cmd("XRANGE")
        .arg(&dlq.dlq)
        .arg(id)
        .arg(id)
        .query(conn)?;
    Ok(parse_range(value)?.into_iter().next())
}

/// Moves one entry back to the target stream, atomically; false if it is not there.
pub fn redrive(conn: &mut redis::Connection, dlq: &DlqRef, id: &str) -> redis::RedisResult<bool> {
    let moved: i64 = bus::REDRIVE
        .key(&dlq.dlq)
        .key(&dlq.target)
        .arg(id)
        .invoke(conn)?;
    Ok(moved == 1)
}

/// Deletes one entry; false if it is not there.
pub fn purge(conn: &mut redis::Connection, dlq: &DlqRef, id: &str) -> redis::RedisResult<bool> {
    let deleted: i64 = redis::cmd("XDEL").arg(&dlq.dlq).arg(id).query(conn)?;
    Ok(deleted == 1)
}

/// Ids of every entry (for `--all`).
pub fn ids(conn: &mut redis::Connection, dlq: &DlqRef) -> redis::RedisResult<Vec<String>> {
    Ok(list(conn, dlq)?.into_iter().map(|e| e.id).collect())
}
