//! The `bus` target: forwards matching events into another bus of the same gateway.
//!
//! It has no stream and no dispatcher: the router appends the event to the other bus's
//! stream inside the transaction that routes and acknowledges it (`router.rs`), so a
//! forward happens exactly when the routing does, with nothing to retry. The other
//! bus's rules then route it as any event of that bus.
//!
//! Loop-safe: a forwarded event carries the buses it was forwarded from in the extension
//! `sluicebuses` (comma-separated); a forward to a bus already on that list, or to the
//! bus the event is on, is skipped. Buses forwarding to each other therefore stop after
//! each bus saw the event once.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::BuildContext;
use crate::config::{Dialect, Errors, TargetConfig};

/// Extension: the buses an event was forwarded from, in order, comma-separated.
pub const FORWARDED_FROM: &str = "sluicebuses";

/// The fields of `bus` targets.
#[derive(Debug, Clone, Deserialize)]
pub struct BusTargetConfig {
    /// The bus events are forwarded to.
    #[serde(default)]
    pub bus: Option<String>,
}

impl BusTargetConfig {
    /// Checks a `bus` target of a rule on `from`: the bus exists, is another one, and
    /// the target sets nothing a forward inside the routing transaction cannot honour.
    pub fn check(
        &self,
        target: &TargetConfig,
        from: &str,
        cx: &BuildContext<'_>,
        at: &str,
        errors: &mut Errors,
    ) -> Option<String> {
        let refused = |field: &str, errors: &mut Errors| {
            errors.at(
                format!("{at}.{field}"),
                "a bus target forwards the event unchanged inside the routing transaction: nothing to transform, retry, pace or order",
            );
        };
        if target.transform.is_some() {
            refused("transform", errors);
        }
        if target.envelope != Dialect::Cloudevents {
            refused("envelope", errors);
        }
        if target.retry.is_some() {
            refused("retry", errors);
        }
        if target.rate.is_some() {
            refused("rate", errors);
        }
        if target.breaker.is_some() {
            refused("breaker", errors);
        }
        if target.ordering.is_some() {
            refused("ordering", errors);
        }
        let Some(to) = self.bus.as_deref() else {
            errors.at(
                format!("{at}.bus"),
                "a bus target needs the bus to forward to",
            );
            return None;
        };
        if !cx.buses.contains(to) {
            errors.at(format!("{at}.bus"), format!("no bus named {to:?} in buses"));
            return None;
        }
        if to == from {
            errors.at(
                format!("{at}.bus"),
                "a rule cannot forward to its own bus (the event is already there)",
            );
            return None;
        }
        Some(to.to_string())
    }
}

/// The attributes of `attrs` (a JSON object) as forwarded from bus `from` to bus `to`:
/// `None` when the forward would loop (the event was on `to` before).
pub fn forwarded(attrs: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let mut attrs: Map<String, Value> = serde_json::from_slice(attrs).ok()?;
    let mut path = attrs
        .get(FORWARDED_FROM)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if path.split(',').any(|b| b == to) {
        return None;
    }
    if !path.is_empty() {
        path.push(',');
    }
    path.push_str(from);
    attrs.insert(FORWARDED_FROM.into(), Value::String(path));
    serde_json::to_vec(&attrs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(attrs: &[u8]) -> String {
        let v: Value = serde_json::from_slice(attrs).unwrap();
        v[FORWARDED_FROM].as_str().unwrap().to_string()
    }

    #[test]
    fn forwards_record_the_buses_and_stop_before_a_loop() {
        let first = br#"{"id":"1","source":"s","type":"t","specversion":"1.0"}"#;
        let at_b = forwarded(first, "a", "b").unwrap();
        assert_eq!(path(&at_b), "a");
        let at_c = forwarded(&at_b, "b", "c").unwrap();
        assert_eq!(path(&at_c), "a,b");
        // c -> a and c -> b would bring it back: skipped.
        assert!(forwarded(&at_c, "c", "a").is_none());
        assert!(forwarded(&at_c, "c", "b").is_none());
        assert_eq!(path(&forwarded(&at_c, "c", "d").unwrap()), "a,b,c");
    }
}
