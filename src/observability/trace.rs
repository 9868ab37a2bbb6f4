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

/// A JSON object written field by field: trace records are built per event, so without
/// the maps and allocations of `serde_json::Value`.
struct Record(Vec<u8>);

impl Record {
    fn new(stage: &str, at: u64) -> Record {
        let mut r = Record(Vec::with_capacity(160));
        r.0.extend_from_slice(b"{\"stage\":\"");
        r.0.extend_from_slice(stage.as_bytes());
        r.0.extend_from_slice(b"\",\"at\":");
        r.0.extend_from_slice(at.to_string().as_bytes());
        r
    }

    fn key(&mut self, key: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        serde_json::to_writer(&mut self.0, value).expect("writing to a Vec cannot fail");
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        self.0.extend_from_slice(value.to_string().as_bytes());
    }

    fn strs(&mut self, key: &str, values: &[&str]) {
        self.key(key);
        serde_json::to_writer(&mut self.0, values).expect("writing to a Vec cannot fail");
    }

    fn raw(&mut self, key: &str, json: &[u8]) {
        self.key(key);
        self.0.extend_from_slice(json);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(b'}');
        self.0
    }
}

/// The attributes a `received` record shows, borrowed from the stored attributes.
#[derive(serde::Deserialize)]
pub struct Head<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    pub source: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "type", default)]
    pub ty: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub replayname: Option<std::borrow::Cow<'a, str>>,
}

/// The `received` record: the bus entry (its id is the time Redis took the event), its
/// source, type and size, and the `via` mark ingest put on it (`WAY@REPLICA`).
pub fn received(entry: &str, head: &Head<'_>, size: usize, via: Option<&str>) -> Vec<u8> {
    let mut r = Record::new(
        "received",
        crate::bus::entry_time_ms(entry).unwrap_or_default(),
    );
    r.str("entry", entry);
    if let Some(source) = &head.source {
        r.str("source", source);
    }
    if let Some(ty) = &head.ty {
        r.str("type", ty);
    }
    r.num("size", size as u64);
    if let Some((way, replica)) = via.map(|v| v.rsplit_once('@').unwrap_or((v, ""))) {
        r.str("via", way);
        if !replica.is_empty() {
            r.str("replica", replica);
        }
    }
    if let Some(name) = &head.replayname {
        r.str("replay", name);
    }
    r.finish()
}

/// The router's record of one event: where it went. `targets` (`RULE/TARGET`) are
/// target streams, `forwarded` bus targets, `skipped` bus targets loop prevention held
/// back (with why), `archived` the archives that kept it. Nothing: `unmatched`.
#[derive(Default)]
pub struct Routed<'a> {
    pub targets: Vec<&'a str>,
    pub forwarded: Vec<&'a str>,
    pub skipped: Vec<(&'a str, String)>,
    pub archived: Vec<&'a str>,
}

impl Routed<'_> {
    pub fn clear(&mut self) {
        self.targets.clear();
        self.forwarded.clear();
        self.skipped.clear();
        self.archived.clear();
    }

    pub fn record(&self, at: u64, replica: &str) -> Vec<u8> {
        let stage =
            if self.targets.is_empty() && self.forwarded.is_empty() && self.skipped.is_empty() {
                "unmatched"
            } else {
                "routed"
            };
        let mut r = Record::new(stage, at);
        r.str("replica", replica);
        r.strs("targets", &self.targets);
        if !self.forwarded.is_empty() {
            r.strs("forwarded", &self.forwarded);
        }
        if !self.skipped.is_empty() {
            let skipped: Vec<Value> = self
                .skipped
                .iter()
                .map(|(target, reason)| json!({"target": target, "reason": reason}))
                .collect();
            r.raw("skipped", Value::from(skipped).to_string().as_bytes());
        }
        if !self.archived.is_empty() {
            r.strs("archived", &self.archived);
        }
        r.finish()
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
    pub fn record(&self) -> Vec<u8> {
        let mut r = Record::new("attempt", self.at);
        r.str("target", self.target);
        r.num("attempt", u64::from(self.number));
        r.num("latency_ms", self.latency_ms);
        r.str("replica", self.replica);
        if let Some(status) = self.status {
            r.num("status", u64::from(status));
        }
        if let Some(error) = self.error {
            r.str("error", error);
        }
        match self.outcome {
            Outcome::Delivered => r.str("outcome", "delivered"),
            Outcome::Retry { delay } => {
                r.str("outcome", "retry");
                r.num("retry_in_ms", delay.as_millis() as u64);
            }
            Outcome::DeadLettered { reason } => {
                r.str("outcome", "dead_lettered");
                r.str("reason", reason);
            }
        }
        r.finish()
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
    fn records_are_json_with_their_values_escaped() {
        let head: Head<'_> = serde_json::from_str(
            r#"{"id":"1","source":"/a\"b","type":"t\u00e9","replayname":"r"}"#,
        )
        .unwrap();
        let r: Value =
            serde_json::from_slice(&received("17-0", &head, 42, Some("cloudevents@gw-1"))).unwrap();
        assert_eq!(
            r,
            json!({"stage": "received", "at": 17, "entry": "17-0", "source": "/a\"b", "type": "t\u{e9}",
                   "size": 42, "via": "cloudevents", "replica": "gw-1", "replay": "r"})
        );
        let routed = Routed {
            targets: vec!["r/t"],
            skipped: vec![("r/b", "it was on bus x before".into())],
            ..Routed::default()
        };
        let r: Value = serde_json::from_slice(&routed.record(5, "gw")).unwrap();
        assert_eq!(r["skipped"][0]["target"], "r/b");
        assert_eq!(r["targets"], json!(["r/t"]));
    }

    #[test]
    fn outcomes_follow_the_last_record_per_target() {
        let records: Vec<Value> = [
            Routed {
                targets: vec!["r/t", "r/u"],
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
        .map(|r| serde_json::from_slice(r).unwrap())
        .collect();
        let o = outcomes(&records);
        assert_eq!(o["r/t"], "delivered");
        assert_eq!(o["r/u"], "pending");
        let unmatched: Value = serde_json::from_slice(&Routed::default().record(1, "a")).unwrap();
        assert_eq!(unmatched["stage"], "unmatched");
    }
}
