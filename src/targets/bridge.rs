//! What the two bridge targets share: the loop check and trace stamping of every event
//! they send (`event::bridge`), and the answer for an event they skip.

use serde_json::{Map, Value};
use tracing::debug;

use crate::config::{Endpoint, Errors, PeerId};
use crate::event::bridge::{self, Skip, DEFAULT_MAX_HOPS};
use crate::event::Event;

/// What [`Bridge::build`] checks.
pub struct BridgeFields<'a> {
    pub peer: Option<&'a PeerId>,
    pub max_hops: Option<u32>,
    pub endpoint: Option<&'a Endpoint>,
    /// Whether the target has a transform (bridges refuse one).
    pub transform: bool,
}

/// The loop-prevention settings of one bridge target.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub gateway_id: String,
    pub peer: String,
    pub max_hops: u32,
}

impl Bridge {
    /// Checks the fields both bridge kinds have (`peer`, `max_hops`, `endpoint`, no
    /// `transform`); errors at `at.field`.
    pub fn build(
        kind: &str,
        fields: BridgeFields<'_>,
        gateway_id: &str,
        at: &str,
        errors: &mut Errors,
    ) -> Option<Bridge> {
        let before = errors.len();
        match fields.peer {
            None => errors.at(
                format!("{at}.peer"),
                format!("a {kind} target needs peer: the id of the gateway or cloud bus it sends to (loop prevention, see docs/bridges.md)"),
            ),
            Some(p) => errors.check(format!("{at}.peer"), p.check()),
        }
        if fields.max_hops == Some(0) {
            errors.at(format!("{at}.max_hops"), "must be at least 1");
        }
        if fields.transform {
            errors.at(
                format!("{at}.transform"),
                format!(
                    "a {kind} target forwards the event itself; transforms apply to http targets"
                ),
            );
        }
        if let Some(endpoint) = fields.endpoint {
            errors.check(format!("{at}.endpoint"), endpoint.check());
        }
        (errors.len() == before).then(|| Bridge {
            gateway_id: gateway_id.to_string(),
            peer: fields.peer.map(|p| p.0.clone()).unwrap_or_default(),
            max_hops: fields.max_hops.unwrap_or(DEFAULT_MAX_HOPS),
        })
    }

    /// The attributes to send (the event's, with its trace updated), or `None` when the
    /// event must not be sent (logged here; the target answers success).
    pub fn depart(&self, event: &Event) -> Option<(Map<String, Value>, bridge::Trace)> {
        match bridge::depart(&event.attrs, &self.gateway_id, &self.peer, self.max_hops) {
            Ok(trace) => {
                let mut attrs = event.attrs.clone();
                trace.write(&mut attrs);
                Some((attrs, trace))
            }
            Err(skip) => {
                debug!(event_id = event.id(), peer = %self.peer, reason = skip.as_str(), "bridge skipped an event");
                SKIPPED.with_reason(skip);
                None
            }
        }
    }
}

/// Events bridges skipped, by reason, for `/metrics` (`sluice_bridge_skipped_total`).
pub static SKIPPED: Skipped = Skipped {
    looped: std::sync::atomic::AtomicU64::new(0),
    max_hops: std::sync::atomic::AtomicU64::new(0),
};

pub struct Skipped {
    looped: std::sync::atomic::AtomicU64,
    max_hops: std::sync::atomic::AtomicU64,
}

impl Skipped {
    fn with_reason(&self, skip: Skip) {
        let counter = match skip {
            Skip::Loop => &self.looped,
            Skip::MaxHops => &self.max_hops,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (reason, count) pairs.
    pub fn counts(&self) -> [(&'static str, u64); 2] {
        use std::sync::atomic::Ordering::Relaxed;
        [
            (Skip::Loop.as_str(), self.looped.load(Relaxed)),
            (Skip::MaxHops.as_str(), self.max_hops.load(Relaxed)),
        ]
    }
}

/// Whether a per-entry error code of a cloud PutEvents answer is worth another attempt
/// (throttling, internal errors); others are final and go to the DLQ.
pub fn retryable_code(code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    ["throttl", "internal", "unavailable", "timeout", "busy"]
        .iter()
        .any(|c| code.contains(c))
}
