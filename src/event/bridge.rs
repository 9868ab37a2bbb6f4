//! Loop prevention for bridges: the trace an event carries across gateways and clouds.
//!
//! Three extension attributes record where an event has been (documented in
//! `docs/bridges.md`, "Loop prevention"):
//! - `sluicepath`: the ids of the gateways and peers (cloud buses) the event was on, in
//!   order, comma-separated: `idc,aws-prod`;
//! - `sluiceorigin`: the first of them (where the event entered the bridged network);
//! - `sluicehops`: how many bridges the event crossed.
//!
//! A bridge target of gateway `G` toward peer `P` ([`depart`]) adds `G` to the path if it
//! is not its last id, and skips the event (a success, counted, nothing sent) when `P` is
//! already on the path or `sluicehops` reached the limit. A bridge receiver of gateway `G`
//! ([`arrive`]) drops an event whose path holds `G` (it was here before: a copy coming
//! back) and otherwise appends `G`, after the id of the peer it came from when the event
//! carries no path yet. Two-way sync between two buses therefore delivers each event once
//! to each side and stops there.

use serde_json::{Map, Value};

/// Extension: the ids the event passed through, comma-separated.
pub const PATH: &str = "sluicepath";
/// Extension: the first id of the path.
pub const ORIGIN: &str = "sluiceorigin";
/// Extension: bridges crossed.
pub const HOPS: &str = "sluicehops";
/// The key of the trace inside an AWS EventBridge `Detail`, which has no room for
/// extension attributes: `"_sluice": {"origin", "path", "hops"[, "wrapped"]}`.
pub const DETAIL_KEY: &str = "_sluice";
/// Default limit of `sluicehops`.
pub const DEFAULT_MAX_HOPS: u32 = 8;

/// Whether an id can be written in a path: non-empty, no comma, no whitespace.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.contains(',') && !id.contains(char::is_whitespace)
}

/// The trace of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub path: Vec<String>,
    pub hops: u32,
}

impl Trace {
    /// Reads the trace from an event's attributes (absent: empty).
    pub fn of(attrs: &Map<String, Value>) -> Trace {
        let path = attrs
            .get(PATH)
            .and_then(Value::as_str)
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let hops = match attrs.get(HOPS) {
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        };
        Trace {
            path,
            hops: u32::try_from(hops).unwrap_or(u32::MAX),
        }
    }

    /// Writes the trace into an event's attributes.
    pub fn write(&self, attrs: &mut Map<String, Value>) {
        if let Some(origin) = self.path.first() {
            attrs.insert(ORIGIN.into(), origin.clone().into());
        }
        attrs.insert(PATH.into(), self.path.join(",").into());
        attrs.insert(HOPS.into(), self.hops.into());
    }

    /// The trace as a JSON object `{"origin", "path", "hops"}` (carried in the AWS
    /// `Detail`, which has no room for extensions).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "origin": self.path.first().cloned().unwrap_or_default(),
            "path": self.path.join(","),
            "hops": self.hops,
        })
    }

    /// Reads the object written by [`Trace::to_json`].
    pub fn from_json(value: &Value) -> Trace {
        let mut attrs = Map::new();
        if let Some(path) = value.get("path") {
            attrs.insert(PATH.into(), path.clone());
        }
        if let Some(hops) = value.get("hops") {
            attrs.insert(HOPS.into(), hops.clone());
        }
        Trace::of(&attrs)
    }
}

/// Why a bridge target did not send an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The peer is on the event's path: it has the event already.
    Loop,
    /// `sluicehops` reached the target's `max_hops`.
    MaxHops,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Loop => "loop",
            Skip::MaxHops => "max_hops",
        }
    }
}

/// An event leaves gateway `me` toward `peer`: the trace to send with it, or why not.
pub fn depart(
    attrs: &Map<String, Value>,
    me: &str,
    peer: &str,
    max_hops: u32,
) -> Result<Trace, Skip> {
    let mut trace = Trace::of(attrs);
    if trace.path.last().map(String::as_str) != Some(me) {
        trace.path.push(me.to_string());
    }
    if trace.path.iter().any(|p| p == peer) {
        return Err(Skip::Loop);
    }
    if trace.hops >= max_hops {
        return Err(Skip::MaxHops);
    }
    trace.hops += 1;
    Ok(trace)
}

/// What a bridge receiver does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Append it, with this trace.
    Accept(Trace),
    /// It was on this gateway before: answer success, append nothing.
    Returned,
}

/// An event arrives at gateway `me` with `trace`, from `from` (the id of the peer it
/// came from, if the receiver knows it).
pub fn arrive(mut trace: Trace, me: &str, from: Option<&str>) -> Arrival {
    if trace.path.iter().any(|p| p == me) {
        return Arrival::Returned;
    }
    if trace.path.is_empty() {
        if let Some(from) = from {
            // It crossed the bridge from `from`, which keeps no trace of its own.
            trace.path.push(from.to_string());
            trace.hops = trace.hops.max(1);
        }
    }
    trace.path.push(me.to_string());
    Arrival::Accept(trace)
}

/// Applies [`arrive`] to encoded attributes that carry a path: `None` when the event
/// returned (drop it), else the attributes, rewritten only when they carry a trace.
/// Cheap for events without a trace (a byte search), so every ingress can call it.
pub fn arrive_encoded(attrs: &[u8], me: &str) -> Option<Option<Vec<u8>>> {
    if memchr::memmem::find(attrs, PATH.as_bytes()).is_none() {
        return Some(None);
    }
    let Ok(mut map) = serde_json::from_slice::<Map<String, Value>>(attrs) else {
        return Some(None);
    };
    if !map.contains_key(PATH) {
        return Some(None);
    }
    match arrive(Trace::of(&map), me, None) {
        Arrival::Returned => None,
        Arrival::Accept(trace) => {
            trace.write(&mut map);
            Some(Some(
                serde_json::to_vec(&map).expect("a JSON map always serialises"),
            ))
        }
    }
}

/// This gateway's id: `gateway_id` of the config, else `SLUICE_GATEWAY_ID`, else the
/// host name, else `sluice`.
pub fn gateway_id(configured: Option<&str>) -> String {
    configured
        .map(String::from)
        .or_else(|| std::env::var("SLUICE_GATEWAY_ID").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().replace([',', ' '], "-"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sluice".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(trace: &Trace) -> Map<String, Value> {
        let mut m = Map::new();
        trace.write(&mut m);
        m
    }

    #[test]
    fn two_way_sync_stops_after_one_copy_each_side() {
        // Produced on a: a -> b.
        let sent = depart(&Map::new(), "a", "b", 8).unwrap();
        assert_eq!(sent.path, ["a"]);
        assert_eq!(sent.hops, 1);
        let Arrival::Accept(on_b) = arrive(sent, "b", None) else {
            panic!()
        };
        assert_eq!(on_b.path, ["a", "b"]);
        // b's rule toward a: skipped, a has it.
        assert_eq!(depart(&attrs(&on_b), "b", "a", 8), Err(Skip::Loop));
        // Had it been sent anyway, a drops it.
        assert_eq!(arrive(on_b.clone(), "a", None), Arrival::Returned);
        // b forwards it to a third peer c.
        let to_c = depart(&attrs(&on_b), "b", "c", 8).unwrap();
        assert_eq!(to_c.path, ["a", "b"]);
        assert_eq!(to_c.hops, 2);
    }

    #[test]
    fn cloud_peer_named_by_the_receiver() {
        // An event first seen on AWS arrives at idc through a source with `peer: aws`.
        let Arrival::Accept(t) = arrive(Trace::default(), "idc", Some("aws")) else {
            panic!()
        };
        assert_eq!(t.path, ["aws", "idc"]);
        assert_eq!(t.hops, 1);
        let mut m = Map::new();
        t.write(&mut m);
        assert_eq!(m[ORIGIN], "aws");
        assert_eq!(m[PATH], "aws,idc");
        assert_eq!(depart(&m, "idc", "aws", 8), Err(Skip::Loop));
    }

    #[test]
    fn hop_limit() {
        let t = Trace {
            path: vec!["x".into()],
            hops: 3,
        };
        assert_eq!(depart(&attrs(&t), "y", "z", 3), Err(Skip::MaxHops));
        assert!(depart(&attrs(&t), "y", "z", 4).is_ok());
    }

    #[test]
    fn encoded_attributes_without_a_trace_are_untouched() {
        assert_eq!(arrive_encoded(br#"{"id":"1"}"#, "a"), Some(None));
        assert_eq!(
            arrive_encoded(br#"{"id":"1","sluicepath":"b,a","sluicehops":1}"#, "a"),
            None
        );
        let out = arrive_encoded(br#"{"id":"1","sluicepath":"b","sluicehops":1}"#, "a")
            .unwrap()
            .unwrap();
        let m: Map<String, Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(m[PATH], "b,a");
        assert_eq!(m[ORIGIN], "b");
    }
}
