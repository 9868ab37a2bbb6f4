//! Per-bus event analysis: counts per minute by `type` and by `source`, how many events
//! the bus's rules matched, kept for the bus's `stats.retention`.
//!
//! The router counts a batch in memory and adds one `HINCRBY` per distinct (minute,
//! field) to the transaction that routes the batch, so the counts are exactly those of
//! the events routed (a batch routed twice after a crash counts twice, as it is
//! delivered twice). Keys: `sluice:{BUS}:stats:{MINUTE}` (a hash; MINUTE = Unix minutes),
//! fields `all`, `matched`, `t:TYPE`, `s:SOURCE`; each key expires `retention` after
//! its minute.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// The key of a bus's counts of one minute.
pub fn key(bus: &str, minute: u64) -> String {
    format!("sluice:{{{bus}}}:stats:{minute}")
}

/// The attributes the counts are by (others are skipped by the parser).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "type", default)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
}

/// The counts of one batch.
#[derive(Default)]
pub struct Counts {
    by_field: HashMap<(u64, String), i64>,
}

impl Counts {
    /// Counts one event: `id` its stream entry id, `attrs` its stored attributes.
    pub fn add(&mut self, id: &str, attrs: &[u8], matched: bool) {
        let minute = crate::bus::entry_time_ms(id).unwrap_or_default() / 60_000;
        let mut bump = |field: String| *self.by_field.entry((minute, field)).or_default() += 1;
        bump("all".into());
        if matched {
            bump("matched".into());
        }
        if let Ok(head) = serde_json::from_slice::<Head<'_>>(attrs) {
            if let Some(t) = head.ty {
                bump(format!("t:{t}"));
            }
            if let Some(s) = head.source {
                bump(format!("s:{s}"));
            }
        }
    }

    /// Adds the increments (and each minute's expiry) to the routing transaction.
    pub fn write(self, bus: &str, retention: Duration, pipe: &mut redis::Pipeline) {
        let mut minutes = Vec::new();
        for ((minute, field), n) in self.by_field {
            pipe.cmd("HINCRBY")
                .arg(key(bus, minute))
                .arg(field)
                .arg(n)
                .ignore();
            if !minutes.contains(&minute) {
                minutes.push(minute);
            }
        }
        for minute in minutes {
            let expire_at_ms = (minute + 1) * 60_000 + retention.as_millis() as u64;
            pipe.cmd("PEXPIREAT")
                .arg(key(bus, minute))
                .arg(expire_at_ms)
                .ignore();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_each_event_once_per_minute_type_and_source() {
        let mut c = Counts::default();
        let a = br#"{"id":"1","type":"order.paid","source":"/shop","specversion":"1.0"}"#;
        let b = br#"{"id":"2","type":"order.created","source":"/shop","specversion":"1.0"}"#;
        c.add("120000-0", a, true);
        c.add("120001-0", b, false);
        c.add("180000-0", a, true);
        let get = |m: u64, f: &str| c.by_field.get(&(m, f.to_string())).copied();
        assert_eq!(get(2, "all"), Some(2));
        assert_eq!(get(2, "matched"), Some(1));
        assert_eq!(get(2, "t:order.paid"), Some(1));
        assert_eq!(get(2, "s:/shop"), Some(2));
        assert_eq!(get(3, "all"), Some(1));
    }
}
