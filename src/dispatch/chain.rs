//! `on_success`: a function's result becomes a new CloudEvent on another bus (function
//! chaining, like Lambda destinations), appended before the delivery is acknowledged,
//! so a result is never lost (at-least-once: a retry after an unacknowledged append
//! appends again, with the same event id).
//!
//! The new event: `id` derived from the bus, rule, target and causing event id (so a
//! repeat has the same id and receivers can deduplicate), `source` and `type` as
//! configured, `time` now, the causing event id in the `causationid` extension, and
//! the result as its data (JSON; other bytes as `application/octet-stream`). A `null`
//! or empty result chains nothing.

use bytes::Bytes;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use crate::bus::{self, BusSpec};
use crate::event::{Data, DataKind, EncodedEvent, Event};
use crate::targets::{Delivered, DeliveryError};

/// Where and how a target's results are chained.
#[derive(Clone)]
pub struct OnSuccess {
    /// The shared multiplexed connection the appends go through.
    pub conn: ConnectionManager,
    pub bus: BusSpec,
    pub source: String,
    pub ty: String,
    /// `limits.max_event_bytes`: a larger result cannot be chained.
    pub max_event_bytes: usize,
    /// Mixed into the ids of chained events: `bus/rule/target` of the chaining target.
    pub origin: String,
}

impl std::fmt::Debug for OnSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnSuccess")
            .field("bus", &self.bus.name)
            .field("source", &self.source)
            .field("type", &self.ty)
            .finish()
    }
}

impl OnSuccess {
    /// Appends the result of a successful delivery to the `on_success` bus; an append
    /// that fails makes the attempt fail (retryable), so the entry stays unacknowledged.
    pub async fn chain(
        &self,
        cause: &Event,
        delivered: Delivered,
    ) -> Result<Delivered, DeliveryError> {
        let Some(output) = &delivered.output else {
            return Ok(delivered);
        };
        let Some(event) = result_event(self, cause, output)? else {
            return Ok(delivered);
        };
        let mut conn = self.conn.clone();
        bus::append(
            &mut conn,
            &self.bus,
            std::slice::from_ref(&event),
            "function-result",
        )
        .await
        .map_err(|e| DeliveryError::Failed {
            message: format!("appending the result to bus {}: {e}", self.bus.name),
            retryable: true,
        })?;
        Ok(delivered)
    }
}

/// The event carrying `output`, caused by `cause`; `None` for a result that chains
/// nothing.
pub fn result_event(
    chain: &OnSuccess,
    cause: &Event,
    output: &Bytes,
) -> Result<Option<EncodedEvent>, DeliveryError> {
    let trimmed = output.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" {
        return Ok(None);
    }
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(output).is_ok();
    let digest = Sha256::digest(format!("{}\n{}", chain.origin, cause.id()).as_bytes());
    let id = hex::encode(&digest[..16]);
    let mut attrs = serde_json::Map::new();
    attrs.insert("specversion".into(), "1.0".into());
    attrs.insert("id".into(), id.clone().into());
    attrs.insert("source".into(), chain.source.clone().into());
    attrs.insert("type".into(), chain.ty.clone().into());
    attrs.insert(
        "time".into(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    );
    let content_type = if is_json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    attrs.insert("datacontenttype".into(), content_type.into());
    attrs.insert("causationid".into(), cause.id().into());
    let event = EncodedEvent {
        id,
        attrs: serde_json::to_vec(&attrs).expect("a JSON map serialises"),
        data: Some(Data {
            kind: if is_json {
                DataKind::Json
            } else {
                DataKind::Binary
            },
            bytes: output.clone(),
        }),
    };
    if event.size() > chain.max_event_bytes {
        return Err(DeliveryError::Failed {
            message: format!(
                "the result ({} bytes) exceeds limits.max_event_bytes ({}) and cannot be chained onto bus {}",
                event.size(),
                chain.max_event_bytes,
                chain.bus.name
            ),
            retryable: false,
        });
    }
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> OnSuccess {
        OnSuccess {
            conn: bus::connect("redis://127.0.0.1:1").unwrap(),
            bus: BusSpec::new("results"),
            source: "/functions/f".into(),
            ty: "t.result".into(),
            max_event_bytes: 400,
            origin: "orders/r/t".into(),
        }
    }

    fn cause(id: &str) -> Event {
        let mut attrs = serde_json::Map::new();
        attrs.insert("id".into(), id.into());
        Event { attrs, data: None }
    }

    // A runtime: the (lazy, unused) connection is built inside one.
    #[tokio::test]
    async fn a_json_result_becomes_an_event_with_its_cause() {
        let out = Bytes::from_static(br#"{"ok": 1.50}"#);
        let ev = result_event(&chain(), &cause("e1"), &out).unwrap().unwrap();
        let attrs: serde_json::Value = serde_json::from_slice(&ev.attrs).unwrap();
        assert_eq!(attrs["causationid"], "e1");
        assert_eq!(attrs["type"], "t.result");
        assert_eq!(attrs["source"], "/functions/f");
        assert_eq!(attrs["datacontenttype"], "application/json");
        let data = ev.data.unwrap();
        assert_eq!((data.kind, data.bytes), (DataKind::Json, out.clone()));
        // The same cause gives the same id; another cause another one.
        let again = result_event(&chain(), &cause("e1"), &out).unwrap().unwrap();
        assert_eq!(again.id, ev.id);
        let other = result_event(&chain(), &cause("e2"), &out).unwrap().unwrap();
        assert_ne!(other.id, ev.id);
    }

    // A runtime: the (lazy, unused) connection is built inside one.
    #[tokio::test]
    async fn null_chains_nothing_and_big_results_fail_for_good() {
        assert!(
            result_event(&chain(), &cause("e"), &Bytes::from_static(b" null\n"))
                .unwrap()
                .is_none()
        );
        assert!(result_event(&chain(), &cause("e"), &Bytes::new())
            .unwrap()
            .is_none());
        let big = Bytes::from(format!("\"{}\"", "x".repeat(500)));
        let err = result_event(&chain(), &cause("e"), &big).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("max_event_bytes"), "{err}");
    }

    // A runtime: the (lazy, unused) connection is built inside one.
    #[tokio::test]
    async fn other_bytes_go_as_binary() {
        let ev = result_event(&chain(), &cause("e"), &Bytes::from_static(b"not json"))
            .unwrap()
            .unwrap();
        assert_eq!(ev.data.unwrap().kind, DataKind::Binary);
    }
}
