//! The per-event trace: what happened to one event, stage by stage.
//!
//! A traced event has a Redis list `sluice:{BUS}:trace:{ID}` of JSON records, one per
//! stage, written in the pipelines and scripts that do the work, never in a round trip
//! of their own:
//!
//! | stage | written by | in |
//! |-------|------------|----|
//! | `received` | router | its routing MULTI/EXEC (`RPUSH` + `PEXPIRE` + `LTRIM`: the list starts here) |
//! | `routed` / `unmatched` / `skipped` | router | the same transaction |
//! | `attempt` (outcome `delivered`) | dispatcher | its batched `XACK` + `XDEL` pipeline |
//! | `attempt` (outcome `retry` / `dead_lettered`) | dispatcher | the delay or DLQ script |
//! | `redriven` | DLQ redrive | the redrive pipeline |
//!
//! Only the router creates the list (with its expiry); every later stage uses `RPUSHX`,
//! which writes only to a list that exists: an event not sampled, or whose trace has
//! expired, costs those stages a no-op, and no list is ever left without an expiry. A
//! replayed event keeps its id, so its replay's stages join the same list. Ingest adds
//! how the event came (`via`) and on which replica to the bus entry (field `w`), only on
//! traced buses.

use std::time::Duration;

use serde_json::{json, Value};

/// The key of an event's trace.
pub fn key(bus: &str, event_id: &str) -> String {
    format!("sluice:{{{bus}}}:trace:{event_id}")
}

/// Most records a trace keeps and a read returns (an event retried 200 times has ~200;
/// the router trims a list to the newest this many, for ids that are sent again and
/// again).
pub const READ_LIMIT: isize = 1000;

/// A bus's `trace:`, compiled: which events are traced and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracing {
    pub retention: Duration,
    /// Events whose id hashes to at most this are traced.
    threshold: u64,
}

impl Tracing {
    pub fn new(retention: Duration, sample: f64) -> Tracing {
        let threshold = if sample >= 1.0 {
            u64::MAX
        } else if sample <= 0.0 {
            0
        } else {
            (sample * u64::MAX as f64) as u64
        };
        Tracing {
            retention,
            threshold,
        }
    }

    /// Whether the event with this id is traced: the same answer on every replica.
    pub fn sampled(&self, event_id: &str) -> bool {
        self.threshold == u64::MAX || (self.threshold > 0 && fnv1a(event_id) <= self.threshold)
    }
}

/// FNV-1a: a stable hash (the std hasher may differ between builds and replicas).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `received` record: the bus entry (its id is the time Redis took the event), its
/// source, type and size, and the `via` mark ingest put on it (`WAY@REPLICA`).
pub fn received(entry: &str, attrs: &Value, size: usize, via: Option<&str>) -> String {
    let (way, replica) = match via.and_then(|v| v.rsplit_once('@')) {
        Some((way, replica)) => (Some(way), Some(replica)),
        None => (via, None),
    };
    let mut record = json!({
        "stage": "received",
        "at": crate::bus::entry_time_ms(entry),
        "entry": entry,
        "source": attrs.get("source"),
        "type": attrs.get("type"),
        "size": size,
    });
    let map = record.as_object_mut().expect("an object");
    if let Some(way) = way {
        map.insert("via".into(), way.into());
    }
    if let Some(replica) = replica {
        map.insert("replica".into(), replica.into());
    }
    if let Some(name) = attrs.get("replayname") {
        map.insert("replay".into(), name.clone());
    }
    record.to_string()
}

/// The router's record of one event: where it went. `targets` (`RULE/TARGET`) are
/// target streams, `forwarded` bus targets, `skipped` bus targets loop prevention held
/// back (with why), `archived` the archives that kept it. Nothing: `unmatched`.
#[derive(Default)]
pub struct Routed {
    pub targets: Vec<String>,
    pub forwarded: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub archived: Vec<String>,
}

impl Routed {
    pub fn clear(&mut self) {
        self.targets.clear();
        self.forwarded.clear();
        self.skipped.clear();
        self.archived.clear();
    }

    pub fn record(&self, at: u64, replica: &str) -> String {
        let stage =
            if self.targets.is_empty() && self.forwarded.is_empty() && self.skipped.is_empty() {
                "unmatched"
            } else {
                "routed"
            };
        let mut record =
            json!({"stage": stage, "at": at, "replica": replica, "targets": self.targets});
        if !self.forwarded.is_empty() {
            record["forwarded"] = json!(self.forwarded);
        }
        if !self.skipped.is_empty() {
            let skipped: Vec<Value> = self
                .skipped
                .iter()
                .map(|(target, reason)| json!({"target": target, "reason": reason}))
                .collect();
            record["skipped"] = Value::from(skipped);
        }
        if !self.archived.is_empty() {
            record["archived"] = json!(self.archived);
        }
        record.to_string()
    }
}

/// What became of one delivery attempt.
pub enum Outcome<'a> {
    Delivered,
    Retry { delay: Duration },
    DeadLettered { reason: &'a str },
}

/// One delivery attempt of a target (`RULE/TARGET`).
pub struct Attempt<'a> {
    pub target: &'a str,
    pub number: u32,
    pub at: u64,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: u64,
    pub replica: &'a str,
    pub outcome: Outcome<'a>,
}

impl Attempt<'_> {
    pub fn record(&self) -> String {
        let mut record = json!({
            "stage": "attempt",
            "at": self.at,
            "target": self.target,
            "attempt": self.number,
            "latency_ms": self.latency_ms,
            "replica": self.replica,
        });
        let map = record.as_object_mut().expect("an object");
        if let Some(status) = self.status {
            map.insert("status".into(), status.into());
        }
        if let Some(error) = self.error {
            map.insert("error".into(), error.into());
        }
        match self.outcome {
            Outcome::Delivered => {
                map.insert("outcome".into(), "delivered".into());
            }
            Outcome::Retry { delay } => {
                map.insert("outcome".into(), "retry".into());
                map.insert("retry_in_ms".into(), (delay.as_millis() as u64).into());
            }
            Outcome::DeadLettered { reason } => {
                map.insert("outcome".into(), "dead_lettered".into());
                map.insert("reason".into(), reason.into());
            }
        }
        record.to_string()
    }
}

/// A DLQ entry moved back to its target.
pub fn redriven(at: u64, target: &str) -> String {
    json!({"stage": "redriven", "at": at, "target": target}).to_string()
}

/// The outcome per target that a trace shows: the last word on each target.
pub fn outcomes(records: &[Value]) -> serde_json::Map<String, Value> {
    let mut outcomes = serde_json::Map::new();
    for record in records {
        match record["stage"].as_str() {
            Some("routed") => {
                for t in record["targets"].as_array().into_iter().flatten() {
                    if let Some(t) = t.as_str() {
                        outcomes.insert(t.into(), "pending".into());
                    }
                }
                for t in record["forwarded"].as_array().into_iter().flatten() {
                    if let Some(t) = t.as_str() {
                        outcomes.insert(t.into(), "forwarded".into());
                    }
                }
                for s in record["skipped"].as_array().into_iter().flatten() {
                    if let Some(t) = s["target"].as_str() {
                        outcomes.insert(t.into(), "skipped".into());
                    }
                }
            }
            Some("attempt") => {
                if let (Some(t), Some(o)) = (record["target"].as_str(), record["outcome"].as_str())
                {
                    let o = if o == "retry" { "retrying" } else { o };
                    outcomes.insert(t.into(), o.into());
                }
            }
            Some("redriven") => {
                if let Some(t) = record["target"].as_str() {
                    outcomes.insert(t.into(), "redriven".into());
                }
            }
            _ => {}
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_stable_and_proportional() {
        let all = Tracing::new(Duration::from_secs(1), 1.0);
        let none = Tracing::new(Duration::from_secs(1), 0.0);
        let tenth = Tracing::new(Duration::from_secs(1), 0.1);
        let ids: Vec<String> = (0..10_000).map(|i| format!("evt-{i}")).collect();
        assert!(ids.iter().all(|id| all.sampled(id)));
        assert!(!ids.iter().any(|id| none.sampled(id)));
        let n = ids.iter().filter(|id| tenth.sampled(id)).count();
        assert!((800..1200).contains(&n), "{n}");
        assert_eq!(tenth.sampled("evt-7"), tenth.sampled("evt-7"));
    }

    #[test]
    fn outcomes_follow_the_last_record_per_target() {
        let records: Vec<Value> = [
            Routed {
                targets: vec!["r/t".into(), "r/u".into()],
                ..Routed::default()
            }
            .record(1, "a"),
            Attempt {
                target: "r/t",
                number: 1,
                at: 2,
                status: Some(503),
                error: Some("status 503"),
                latency_ms: 3,
                replica: "a",
                outcome: Outcome::Retry {
                    delay: Duration::from_secs(1),
                },
            }
            .record(),
            Attempt {
                target: "r/t",
                number: 2,
                at: 4,
                status: Some(200),
                error: None,
                latency_ms: 3,
                replica: "b",
                outcome: Outcome::Delivered,
            }
            .record(),
        ]
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
        let o = outcomes(&records);
        assert_eq!(o["r/t"], "delivered");
        assert_eq!(o["r/u"], "pending");
        let unmatched: Value = serde_json::from_str(&Routed::default().record(1, "a")).unwrap();
        assert_eq!(unmatched["stage"], "unmatched");
    }
}
