//! Alibaba Cloud EventBridge `PutEvents` (data plane, `POST /openapi/putEvents`): the
//! request signature its SDKs make (`authorization: acs:{AccessKeyId}:{signature}`,
//! base64 HMAC-SHA1 over the string to sign below) and the per-event mapping of a
//! CloudEvents JSON batch. Pure: the HTTP handler is `ingress::alibaba`. Documented in
//! `docs/sources.md`, "Cloud-compatible ingest".
//!
//! String to sign, as the SDKs (`EventBridgeUtilClient.get_string_to_sign`) build it:
//! `METHOD\nCONTENT-MD5\nCONTENT-TYPE\nDATE\n`, then every header whose name starts
//! with `x-acs`, sorted by name, as `name:value\n`, then the path, with `?k=v&...` (sorted
//! by name) when there is a query string.

use std::collections::HashMap;

use actix_web::http::header::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit, Mac};
use md5::Digest;
use serde_json::{Map, Value};

use super::aws::{check_clock_skew, check_keys};
use crate::bus::BusSpec;
use crate::config::{AlibabaAuth, AlibabaConfig};
use crate::event::cloudevents::parse_batch_each;
use crate::event::{is_json_media_type, DataKind, EncodedEvent};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The extension naming an event's bus.
pub const BUS_EXTENSION: &str = "aliyuneventbusname";
/// The default `date` window.
pub const DEFAULT_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Longest `date` window, whatever the config says (it bounds it to 1h).
const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Longest accepted `x-acs-signature-nonce` (the SDKs send a 32- or 36-character id).
const MAX_NONCE_LEN: usize = 128;

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

/// A verified request: the AccessKey id that signed it and its signed nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub key_id: String,
    pub nonce: String,
}

/// Redis key recording a used signature nonce of an AccessKey (see
/// [`AcsVerifier::nonce_ttl`]).
pub fn nonce_key(key_id: &str, nonce: &str) -> String {
    format!("sluice:acs-nonce:{key_id}:{nonce}")
}

/// Redis dedupe key of an event: per bus, CloudEvents `source` and `id`. The `@alibaba`
/// prefix is no valid webhook source name, and the length prefix keeps a `:` in
/// `source` from making two pairs one key.
pub fn event_dedupe_key(bus: &str, source: &str, id: &str) -> String {
    crate::bus::dedupe_key(bus, &format!("@alibaba:{}:{source}", source.len()), id)
}

/// base64(HMAC-SHA1(secret, string to sign)): the signature the SDKs send.
pub fn sign(secret: &[u8], string_to_sign: &str) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Verifies `acs:` signatures against configured AccessKey pairs.
#[derive(Clone)]
pub struct AcsVerifier {
    keys: HashMap<String, Vec<u8>>,
    max_skew: TimeDelta,
    require_content_md5: bool,
}

impl std::fmt::Debug for AcsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcsVerifier")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An error answer: HTTP status, `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        RequestError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The parts of a request the signature covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// The string to sign of a request (see the module documentation).
pub fn string_to_sign(req: &SignedRequest<'_>) -> String {
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut acs: Vec<(String, String)> = Vec::new();
    for name in req.headers.keys() {
        if name.as_str().starts_with("x-acs") {
            let values: Vec<String> = req
                .headers
                .get_all(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            acs.push((name.as_str().to_string(), values.join(",")));
        }
    }
    string_to_sign_of(
        req.method,
        [
            header("content-md5"),
            header("content-type"),
            header("date"),
        ],
        acs,
        req.path,
        req.query,
    )
}

/// The string to sign from its parts: `[content-md5, content-type, date]`, the
/// `x-acs*` headers (lower-case names, any order), path and raw query string. Shared by
/// the verifier and the `alibaba-eventbridge` target, so both sign alike.
pub fn string_to_sign_of(
    method: &str,
    [md5, content_type, date]: [&str; 3],
    mut acs: Vec<(String, String)>,
    path: &str,
    query: &str,
) -> String {
    let mut out = format!("{method}\n{md5}\n{content_type}\n{date}\n");
    acs.sort();
    for (name, value) in acs {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(path);
    let mut query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !query.is_empty() {
        query.sort();
        let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

impl AcsVerifier {
    /// How long a used nonce is remembered: twice the `date` window, so a request is
    /// refused by its date before its nonce is forgotten.
    pub fn nonce_ttl(&self) -> std::time::Duration {
        (self.max_skew * 2).to_std().unwrap_or_default()
    }

    /// Verifies a request; returns the AccessKey id that signed it and its nonce (which
    /// the caller must record, refusing one already used: [`nonce_key`]).
    pub fn verify(&self, req: &SignedRequest<'_>) -> Result<Verified, RequestError> {
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let malformed = || {
            RequestError::new(
                401,
                "InvalidAuthorization",
                "the authorization header is missing or malformed: expected acs:AccessKeyId:Signature",
            )
        };
        let (key_id, signature) = header("authorization")
            .and_then(|a| a.trim().strip_prefix("acs:"))
            .and_then(|a| a.rsplit_once(':'))
            .filter(|(id, sig)| !id.is_empty() && !sig.is_empty())
            .ok_or_else(malformed)?;
        let date = header("date")
            .ok_or_else(|| RequestError::new(400, "MissingDate", "the date header is required"))?;
        let time = DateTime::parse_from_rfc2822(date)
            .map_err(|_| {
                RequestError::new(
                    400,
                    "InvalidDate",
                    format!("the date header {date:?} is not an RFC 1123 date"),
                )
            })?
            .with_timezone(&Utc);
        if time.signed_duration_since(req.now).abs() > self.max_skew {
            return Err(RequestError::new(
                403,
                "InvalidTimeStamp.Expired",
                format!(
                    "Specified time stamp or date value is expired: {date} is more than {} minutes from the server's time.",
                    self.max_skew.num_minutes()
                ),
            ));
        }
        let Some(secret) = self.keys.get(key_id) else {
            return Err(RequestError::new(
                403,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        };
        let nonce = header("x-acs-signature-nonce")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                RequestError::new(
                    400,
                    "MissingSignatureNonce",
                    "the x-acs-signature-nonce header is required",
                )
            })?;
        if nonce.len() > MAX_NONCE_LEN {
            return Err(RequestError::new(
                400,
                "InvalidSignatureNonce",
                format!("x-acs-signature-nonce is over {MAX_NONCE_LEN} characters"),
            ));
        }
        let md5 = header("content-md5");
        if md5.is_some_and(|md5| B64.encode(md5::Md5::digest(req.body)) != md5) {
            return Err(RequestError::new(
                400,
                "InvalidContentMD5",
                "the content-md5 header does not match the body",
            ));
        }
        if md5.is_none() && self.require_content_md5 {
            return Err(RequestError::new(
                400,
                "MissingContentMD5",
                "the content-md5 header is required (alibaba.require_content_md5), so the body is signed",
            ));
        }
        let expected = sign(secret, &string_to_sign(req));
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), signature.as_bytes()).into();
        if !matches {
            return Err(RequestError::new(
                403,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            ));
        }
        Ok(Verified {
            key_id: key_id.to_string(),
            nonce: nonce.to_string(),
        })
    }
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

    /// The vector of the Alibaba EventBridge SDKs' own tests
    /// (`EventBridgeUtilClient.get_signature`).
    #[test]
    fn signs_the_sdk_test_vector() {
        assert_eq!(
            sign(b"secret", "GET\n\n\n\n"),
            "Mzu+31oD5IDdv3WFBNIi4Y7JZto="
        );
    }

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
