//! What the two bridge targets share: the loop check and trace stamping of every event
//! they send (`event::bridge`), and the answer for an event they skip.

use serde_json::{Map, Value};
use tracing::debug;

use crate::config::TargetConfig;
use crate::event::bridge::{self, Skip, DEFAULT_MAX_HOPS};
use crate::event::Event;

/// The loop-prevention settings of one bridge target.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub gateway_id: String,
    pub peer: String,
    pub max_hops: u32,
}

impl Bridge {
    pub fn new(config: &TargetConfig, gateway_id: &str) -> anyhow::Result<Bridge> {
        let peer = config
            .peer
            .clone()
            .ok_or_else(|| anyhow::anyhow!("a bridge target needs peer"))?;
        Ok(Bridge {
            gateway_id: gateway_id.to_string(),
            peer,
            max_hops: config.max_hops.unwrap_or(DEFAULT_MAX_HOPS),
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
