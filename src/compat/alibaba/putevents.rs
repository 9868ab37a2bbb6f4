//! Alibaba Cloud EventBridge `PutEvents` (data plane, `POST /openapi/putEvents`): the
//! per-event mapping of a CloudEvents JSON batch, after the request's `acs:` signature
//! ([`super::acs`]) verified. Pure: the HTTP handler is [`super::ingest`]. Documented in
//! `docs/sources.md`, "Cloud-compatible ingest".

use std::collections::HashMap;

use bytes::Bytes;
use chrono::TimeDelta;
use serde_json::{Map, Value};

use super::acs::{AcsVerifier, RequestError};
use super::config::{AlibabaAuth, AlibabaConfig};
use crate::bus::BusSpec;
use crate::compat::aws::putevents::{check_clock_skew, check_keys};
use crate::event::cloudevents::parse_batch_each;
use crate::event::{is_json_media_type, DataKind, EncodedEvent};

/// The extension naming an event's bus.
pub const BUS_EXTENSION: &str = "aliyuneventbusname";
/// The default `date` window.
pub const DEFAULT_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Longest `date` window, whatever the config says (it bounds it to 1h).
const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The compiled `alibaba:` section.
#[derive(Debug, Clone)]
pub struct AlibabaIngest {
    pub account: Option<String>,
    pub default_bus: Option<String>,
    /// `None` with `auth: none`.
    pub verifier: Option<AcsVerifier>,
    /// Window in which a repeated (bus, `source`, `id`) is not appended again; `None`
    /// when `dedupe: off`.
    pub dedupe: Option<std::time::Duration>,
}

/// Redis dedupe key of an event: per bus, CloudEvents `source` and `id`. The `@alibaba`
/// prefix is no valid webhook source name, and the length prefix keeps a `:` in
/// `source` from making two pairs one key.
pub fn event_dedupe_key(bus: &str, source: &str, id: &str) -> String {
    crate::bus::dedupe_key(bus, &format!("@alibaba:{}:{source}", source.len()), id)
}

/// A per-event failure: `ErrorCode`, `ErrorMessage`, and the event id when it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub event_id: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// A valid event and the bus it goes to.
#[derive(Debug)]
pub struct Accepted {
    pub bus: String,
    /// The event's CloudEvents `source` (with `event.id`, its dedupe identity).
    pub source: String,
    pub event: EncodedEvent,
    /// A copy of an event that was on this gateway before (a bridge trace names it):
    /// answered as a success, not appended. Set by the ingress.
    pub returned: bool,
}

impl AlibabaIngest {
    /// The endpoint of `config`, with its AccessKeys resolved (id, secret).
    pub fn compile(config: &AlibabaConfig, keys: Vec<(String, Vec<u8>)>) -> AlibabaIngest {
        let verifier = match config.auth {
            AlibabaAuth::None => None,
            AlibabaAuth::Signature => Some(AcsVerifier {
                keys: keys.into_iter().collect(),
                max_skew: TimeDelta::from_std(
                    config
                        .max_clock_skew
                        .unwrap_or(DEFAULT_CLOCK_SKEW)
                        .min(MAX_CLOCK_SKEW),
                )
                .unwrap_or(TimeDelta::zero()),
                require_content_md5: config.require_content_md5,
            }),
        };
        AlibabaIngest {
            account: config.account.clone(),
            default_bus: config.default_bus.clone(),
            verifier,
            dedupe: config.dedupe.0,
        }
    }

    /// Parses a CloudEvents batch: a whole-request error, or one result per event, in
    /// order.
    pub fn entries(
        &self,
        body: &Bytes,
        buses: &HashMap<String, BusSpec>,
        max_event_bytes: usize,
    ) -> Result<Vec<Result<Accepted, EntryError>>, RequestError> {
        let events = parse_batch_each(body)
            .map_err(|e| RequestError::new(400, "InvalidArgument", e.message))?;
        if events.is_empty() {
            return Err(RequestError::new(
                400,
                "InvalidArgument",
                "the batch holds no events",
            ));
        }
        Ok(events
            .into_iter()
            .map(|parsed| {
                let event = parsed.map_err(|e| EntryError {
                    event_id: None,
                    code: "InvalidArgument",
                    message: if e.field.is_empty() {
                        e.message
                    } else {
                        format!("{}: {}", e.field, e.message)
                    },
                })?;
                self.accept(event, buses, max_event_bytes)
            })
            .collect())
    }

    fn accept(
        &self,
        mut event: EncodedEvent,
        buses: &HashMap<String, BusSpec>,
        max_event_bytes: usize,
    ) -> Result<Accepted, EntryError> {
        let fail = |event: &EncodedEvent, code, message: String| EntryError {
            event_id: Some(event.id.clone()),
            code,
            message,
        };
        let attrs: Map<String, Value> =
            serde_json::from_slice(&event.attrs).expect("encoded attributes are a JSON object");
        let named = match attrs.get(BUS_EXTENSION) {
            Some(Value::String(bus)) => Some(bus.as_str()),
            Some(_) => {
                return Err(fail(
                    &event,
                    "InvalidArgument",
                    format!("{BUS_EXTENSION} must be a string"),
                ))
            }
            None => None,
        };
        let Some(bus) = named.or(self.default_bus.as_deref()) else {
            return Err(fail(
                &event,
                "InvalidArgument",
                format!("the {BUS_EXTENSION} extension is required"),
            ));
        };
        if !buses.contains_key(bus) {
            return Err(fail(
                &event,
                "EventBusNotExist",
                format!("The event bus [{bus}] not existed!"),
            ));
        }
        if event.size() > max_event_bytes {
            return Err(fail(
                &event,
                "InvalidArgument",
                format!(
                    "event is {} bytes, over the {max_event_bytes}-byte limit",
                    event.size()
                ),
            ));
        }
        // The SDKs send JSON data as data_base64 unless datacontenttype is exactly
        // application/json: keep it as JSON, so rules can match on it.
        let json_type = attrs
            .get("datacontenttype")
            .and_then(Value::as_str)
            .is_some_and(is_json_media_type);
        if let Some(data) = event.data.as_mut() {
            if data.kind == DataKind::Binary
                && json_type
                && serde_json::from_slice::<serde::de::IgnoredAny>(&data.bytes).is_ok()
            {
                data.kind = DataKind::Json;
            }
        }
        let source = attrs
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Accepted {
            bus: bus.to_string(),
            source,
            event,
            returned: false,
        })
    }
}

/// Checks the `alibaba:` section; errors at `alibaba.*`.
pub fn check(
    alibaba: &AlibabaConfig,
    bus_names: &std::collections::HashSet<&str>,
    errors: &mut crate::config::Errors,
) {
    let mut err = |path: String, message: String| errors.at(path, message);
    validate_alibaba(alibaba, bus_names, &mut err);
}

fn validate_alibaba(
    alibaba: &AlibabaConfig,
    bus_names: &std::collections::HashSet<&str>,
    err: &mut impl FnMut(String, String),
) {
    if let Some(account) = &alibaba.account {
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
            err(
                "alibaba.account".into(),
                format!("{account:?} is not an account id (digits)"),
            );
        }
    }
    if let Some(bus) = &alibaba.default_bus {
        if !bus_names.contains(bus.as_str()) {
            err(
                "alibaba.default_bus".into(),
                format!("no bus named {bus:?} in buses"),
            );
        }
    }
    check_clock_skew("alibaba", alibaba.max_clock_skew, err);
    if alibaba.dedupe.0.is_some_and(|w| w.as_millis() == 0) {
        err(
            "alibaba.dedupe".into(),
            "must be at least 1ms, or off".into(),
        );
    }
    if alibaba
        .dedupe
        .0
        .is_some_and(|w| w > crate::sources::MAX_DEDUPE)
    {
        err(
            "alibaba.dedupe".into(),
            "must be at most 365d, or off".into(),
        );
    }
    if alibaba.require_content_md5 && alibaba.auth == AlibabaAuth::None {
        err(
            "alibaba.require_content_md5".into(),
            "needs auth: signature (the body is only checked on signed requests)".into(),
        );
    }
    match alibaba.auth {
        AlibabaAuth::Signature if alibaba.access_keys.is_empty() => err(
            "alibaba.access_keys".into(),
            "auth signature needs at least one AccessKey ({id, secret}), or set auth: none".into(),
        ),
        AlibabaAuth::None if !alibaba.access_keys.is_empty() => err(
            "alibaba.access_keys".into(),
            "not used with auth: none; remove them or set auth: signature".into(),
        ),
        _ => {}
    }
    check_keys("alibaba", &alibaba.access_keys, "LTAI5tExampleKeyId", err);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keys_do_not_collide_across_colons() {
        assert_ne!(
            event_dedupe_key("b", "a:b", "c"),
            event_dedupe_key("b", "a", "b:c")
        );
        assert_eq!(
            event_dedupe_key("orders", "shop", "1"),
            "sluice:{orders}:dedupe:@alibaba:4:shop:1"
        );
    }
}
