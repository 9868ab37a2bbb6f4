//! AWS EventBridge `PutEvents`: the request body, its validation as EventBridge does it
//! (whole-request errors vs per-entry errors) and the mapping of each entry to a
//! CloudEvent. Pure: the HTTP handler in `super::ingest` authenticates, calls
//! [`AwsIngest::entries`] and appends the valid events. The mapping is documented in
//! `docs/sources.md`, "Cloud-compatible ingest"; keep the two in step.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::config::{AwsAuth, AwsConfig};
use super::sigv4::SigV4;
use crate::bus::BusSpec;
use crate::config::AccessKeyConfig;
use crate::event::{Data, DataKind, EncodedEvent};

/// At most this many entries per request (EventBridge's limit).
pub const MAX_ENTRIES: usize = 10;
/// Total entry size limit of one request, counted the EventBridge way.
pub const MAX_TOTAL_ENTRY_BYTES: usize = 256 * 1024;
/// The default `X-Amz-Date` window, as AWS.
pub const DEFAULT_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The compiled `aws:` section.
#[derive(Debug, Clone)]
pub struct AwsIngest {
    pub region: String,
    pub account: Option<String>,
    pub default_bus: String,
    /// `None` with `auth: none`.
    pub verifier: Option<SigV4>,
}

/// An error of the whole request: HTTP status, `__type` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl RequestError {
    fn validation(message: impl Into<String>) -> Self {
        RequestError {
            status: 400,
            code: "ValidationException",
            message: message.into(),
        }
    }
}

/// A per-entry failure: `ErrorCode` and `ErrorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub code: &'static str,
    pub message: String,
}

impl EntryError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        EntryError {
            code,
            message: message.into(),
        }
    }

    fn required(field: &str) -> Self {
        EntryError::new(
            "InvalidArgument",
            format!("Parameter {field} is not valid. Reason: {field} is a required argument."),
        )
    }
}

/// A valid entry: the event and the bus it goes to.
#[derive(Debug)]
pub struct Accepted {
    pub bus: String,
    pub event: EncodedEvent,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "Entries")]
    entries: Option<Vec<Entry>>,
    /// Global endpoints: accepted and ignored (there is one endpoint).
    #[serde(rename = "EndpointId")]
    _endpoint_id: Option<String>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "Source")]
    source: Option<String>,
    #[serde(rename = "DetailType")]
    detail_type: Option<String>,
    #[serde(rename = "Detail")]
    detail: Option<String>,
    #[serde(rename = "Resources")]
    resources: Option<Vec<String>>,
    /// Epoch seconds (what the SDKs send in the JSON 1.1 protocol) or an RFC 3339 string.
    #[serde(rename = "Time")]
    time: Option<Value>,
    #[serde(rename = "EventBusName")]
    event_bus_name: Option<String>,
    #[serde(rename = "TraceHeader")]
    trace_header: Option<String>,
}

impl Entry {
    /// The entry's size as EventBridge counts it: 14 bytes for a `Time`, plus the UTF-8
    /// bytes of `Source`, `DetailType`, `Detail` and each resource.
    fn size(&self) -> usize {
        let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        self.time.as_ref().map_or(0, |_| 14)
            + len(&self.source)
            + len(&self.detail_type)
            + len(&self.detail)
            + self
                .resources
                .iter()
                .flatten()
                .map(String::len)
                .sum::<usize>()
    }
}

fn time_of(value: &Value) -> Option<String> {
    let t = match value {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            if !secs.is_finite() {
                return None;
            }
            let whole = secs.floor();
            let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
            DateTime::<Utc>::from_timestamp(whole as i64, nanos)?
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc),
        _ => return None,
    };
    Some(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl AwsIngest {
    /// The endpoint of `config`, with its access keys resolved (id, secret).
    pub fn compile(config: &AwsConfig, keys: Vec<(String, Vec<u8>)>) -> AwsIngest {
        let verifier = match config.auth {
            AwsAuth::None => None,
            AwsAuth::Sigv4 => Some(SigV4::new(
                "events",
                config.region.clone(),
                keys,
                config.max_clock_skew.unwrap_or(DEFAULT_CLOCK_SKEW),
            )),
        };
        AwsIngest {
            region: config.region.clone(),
            account: config.account.clone(),
            default_bus: config.default_bus().to_string(),
            verifier,
        }
    }

    /// The Sluice bus an `EventBusName` (name or ARN) designates, if it exists here. An
    /// ARN must name this region and, when configured, this account.
    fn bus(
        &self,
        name: Option<&str>,
        buses: &HashMap<String, BusSpec>,
    ) -> Result<String, EntryError> {
        let requested = name.filter(|n| !n.is_empty()).unwrap_or(&self.default_bus);
        let not_found = || {
            EntryError::new(
                "ResourceNotFoundException",
                format!("Event bus {requested} does not exist."),
            )
        };
        let bus = match requested.strip_prefix("arn:") {
            Some(rest) => {
                // arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME
                let parts: Vec<&str> = rest.splitn(5, ':').collect();
                let [_partition, service, region, account, resource] = parts[..] else {
                    return Err(not_found());
                };
                let bus = resource.strip_prefix("event-bus/").ok_or_else(not_found)?;
                let account_ok = self.account.as_deref().is_none_or(|a| a == account);
                if service != "events" || region != self.region || !account_ok {
                    return Err(not_found());
                }
                bus
            }
            None => requested,
        };
        if buses.contains_key(bus) {
            Ok(bus.to_string())
        } else {
            Err(not_found())
        }
    }

    /// Parses a PutEvents body: a whole-request error, or one result per entry, in
    /// entry order. `now` is the time of entries without `Time`.
    pub fn entries(
        &self,
        body: &[u8],
        buses: &HashMap<String, BusSpec>,
        max_event_bytes: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Accepted, EntryError>>, RequestError> {
        let body: Body = serde_json::from_slice(body).map_err(|e| RequestError {
            status: 400,
            code: "SerializationException",
            message: format!("the request body is not a PutEvents request: {e}"),
        })?;
        let Some(entries) = body.entries else {
            return Err(RequestError::validation(
                "1 validation error detected: Value null at 'entries' failed to satisfy constraint: Member must not be null",
            ));
        };
        if entries.is_empty() {
            return Err(RequestError::validation(
                "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        if entries.len() > MAX_ENTRIES {
            return Err(RequestError::validation(format!(
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES}"
            )));
        }
        let total: usize = entries.iter().map(Entry::size).sum();
        if total > MAX_TOTAL_ENTRY_BYTES {
            return Err(RequestError::validation(format!(
                "Total size of the entries in the request is over the limit: {total} bytes, at most {MAX_TOTAL_ENTRY_BYTES}."
            )));
        }
        let now = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(entries
            .into_iter()
            .map(|entry| self.entry(entry, buses, max_event_bytes, &now))
            .collect())
    }

    fn entry(
        &self,
        entry: Entry,
        buses: &HashMap<String, BusSpec>,
        max_event_bytes: usize,
        now: &str,
    ) -> Result<Accepted, EntryError> {
        let source = entry
            .source
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EntryError::required("Source"))?;
        let detail_type = entry
            .detail_type
            .filter(|s| !s.is_empty())
            .ok_or_else(|| EntryError::required("DetailType"))?;
        let detail = entry.detail.ok_or_else(|| EntryError::required("Detail"))?;
        let is_object = serde_json::from_str::<&RawValue>(&detail)
            .is_ok_and(|raw| raw.get().trim_start().starts_with('{'));
        if !is_object {
            return Err(EntryError::new("MalformedDetail", "Detail is malformed."));
        }
        if source.starts_with("aws.") {
            return Err(EntryError::new(
                "NotAuthorizedForSourceException",
                "Not authorized for the source.",
            ));
        }
        let time = match &entry.time {
            None | Some(Value::Null) => now.to_string(),
            Some(t) => time_of(t).ok_or_else(|| {
                EntryError::new(
                    "InvalidArgument",
                    "Parameter Time is not valid. Reason: Time must be epoch seconds or an RFC 3339 timestamp.",
                )
            })?,
        };
        let bus = self.bus(entry.event_bus_name.as_deref(), buses)?;

        let id = uuid::Uuid::new_v4().to_string();
        let mut attrs = Map::with_capacity(10);
        attrs.insert("specversion".into(), "1.0".into());
        attrs.insert("id".into(), id.clone().into());
        attrs.insert("source".into(), source.into());
        attrs.insert("type".into(), detail_type.into());
        attrs.insert("time".into(), time.into());
        attrs.insert("datacontenttype".into(), "application/json".into());
        if let Some(resources) = entry.resources.filter(|r| !r.is_empty()) {
            attrs.insert("resources".into(), resources.join(",").into());
        }
        attrs.insert("awsregion".into(), self.region.clone().into());
        if let Some(account) = &self.account {
            attrs.insert("awsaccount".into(), account.clone().into());
        }
        if let Some(trace) = entry.trace_header.filter(|t| !t.is_empty()) {
            attrs.insert("traceheader".into(), trace.into());
        }
        let event = EncodedEvent {
            id,
            attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
            data: Some(Data {
                kind: DataKind::Json,
                bytes: Bytes::from(detail.into_bytes()),
            }),
        };
        if event.size() > max_event_bytes {
            return Err(EntryError::new(
                "InvalidArgument",
                format!(
                    "Event is {} bytes, over this gateway's limit of {max_event_bytes} bytes.",
                    event.size()
                ),
            ));
        }
        Ok(Accepted { bus, event })
    }
}

/// Checks the `aws:` section (`bus_names`: the configured buses); errors at `aws.*`.
pub fn check(aws: &AwsConfig, bus_names: &HashSet<&str>, errors: &mut crate::config::Errors) {
    let mut err = |path: String, message: String| errors.at(path, message);
    validate_aws(aws, bus_names, &mut err);
}

fn validate_aws(aws: &AwsConfig, bus_names: &HashSet<&str>, err: &mut impl FnMut(String, String)) {
    let region_ok = !aws.region.is_empty()
        && aws
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        err(
            "aws.region".into(),
            format!("{:?} is not a region name such as us-east-1", aws.region),
        );
    }
    if let Some(account) = &aws.account {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            err(
                "aws.account".into(),
                format!("{account:?} is not a 12-digit account id"),
            );
        }
    }
    if let Some(bus) = &aws.default_bus {
        if !bus_names.contains(bus.as_str()) {
            err(
                "aws.default_bus".into(),
                format!("no bus named {bus:?} in buses"),
            );
        }
    }
    check_clock_skew("aws", aws.max_clock_skew, err);
    match aws.auth {
        AwsAuth::Sigv4 if aws.access_keys.is_empty() => err(
            "aws.access_keys".into(),
            "auth sigv4 needs at least one access key ({id, secret}), or set auth: none".into(),
        ),
        AwsAuth::None if !aws.access_keys.is_empty() => err(
            "aws.access_keys".into(),
            "not used with auth: none; remove them or set auth: sigv4".into(),
        ),
        _ => {}
    }
    check_keys("aws", &aws.access_keys, "AKIAIOSFODNN7EXAMPLE", err);
}

/// Longest `max_clock_skew`: a wider window only widens replays, and keeps the clock
/// arithmetic and the nonce TTL (twice the window) far from any overflow.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(3600);

pub(crate) fn check_clock_skew(
    section: &str,
    skew: Option<std::time::Duration>,
    err: &mut impl FnMut(String, String),
) {
    match skew {
        Some(s) if s.is_zero() => err(
            format!("{section}.max_clock_skew"),
            "must be greater than 0".into(),
        ),
        Some(s) if s > MAX_CLOCK_SKEW => err(
            format!("{section}.max_clock_skew"),
            format!("{} is over the limit of 1h", humantime::format_duration(s)),
        ),
        _ => {}
    }
}

pub(crate) fn check_keys(
    section: &str,
    keys: &[AccessKeyConfig],
    example: &str,
    err: &mut impl FnMut(String, String),
) {
    let mut ids = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let valid = !key.id.is_empty()
            && key.id.len() <= 128
            && key.id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid {
            err(
                format!("{section}.access_keys[{i}].id"),
                format!("must be 1 to 128 letters and digits, such as {example}"),
            );
        }
        if !ids.insert(key.id.as_str()) {
            err(
                format!("{section}.access_keys[{i}].id"),
                format!("duplicate access key id {:?}", key.id),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest() -> (AwsIngest, HashMap<String, BusSpec>) {
        let buses = ["default", "orders"]
            .into_iter()
            .map(|b| (b.to_string(), BusSpec::new(b)))
            .collect();
        let ingest = AwsIngest {
            region: "eu-west-1".into(),
            account: Some("123456789012".into()),
            default_bus: "default".into(),
            verifier: None,
        };
        (ingest, buses)
    }

    #[test]
    fn maps_entries_and_reports_per_entry_errors() {
        let (ingest, buses) = ingest();
        let body = br#"{"Entries":[
            {"Source":"com.shop","DetailType":"OrderPaid","Detail":"{\"id\": 1.50}","Time":1700000000.5,"Resources":["arn:a","arn:b"],"TraceHeader":"Root=1-abc","EventBusName":"arn:aws:events:eu-west-1:123456789012:event-bus/orders"},
            {"Source":"com.shop","DetailType":"X","Detail":"[1]"},
            {"Source":"com.shop","DetailType":"X","Detail":"{}","EventBusName":"nope"},
            {"Source":"com.shop","DetailType":"X","Detail":"{}","EventBusName":"arn:aws:events:us-east-1:123456789012:event-bus/orders"},
            {"DetailType":"X","Detail":"{}"},
            {"Source":"aws.s3","DetailType":"X","Detail":"{}"}
        ]}"#;
        let results = ingest.entries(body, &buses, 4096, Utc::now()).unwrap();
        let ok = results[0].as_ref().unwrap();
        assert_eq!(ok.bus, "orders");
        assert_eq!(
            ok.event.data.as_ref().unwrap().bytes.as_ref(),
            br#"{"id": 1.50}"#
        );
        let attrs: Value = serde_json::from_slice(&ok.event.attrs).unwrap();
        assert_eq!(attrs["time"], "2023-11-14T22:13:20.500Z");
        assert_eq!(attrs["resources"], "arn:a,arn:b");
        assert_eq!(attrs["traceheader"], "Root=1-abc");
        assert_eq!(attrs["awsaccount"], "123456789012");
        let codes: Vec<&str> = results[1..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().code)
            .collect();
        assert_eq!(
            codes,
            [
                "MalformedDetail",
                "ResourceNotFoundException",
                "ResourceNotFoundException",
                "InvalidArgument",
                "NotAuthorizedForSourceException"
            ]
        );
    }

    #[test]
    fn whole_request_errors() {
        let (ingest, buses) = ingest();
        let code = |body: &[u8]| {
            ingest
                .entries(body, &buses, 4096, Utc::now())
                .unwrap_err()
                .code
        };
        assert_eq!(code(b"{"), "SerializationException");
        assert_eq!(code(b"{}"), "ValidationException");
        assert_eq!(code(br#"{"Entries":[]}"#), "ValidationException");
        let eleven = format!(
            r#"{{"Entries":[{}]}}"#,
            [r#"{"Source":"s","DetailType":"t","Detail":"{}"}"#; 11].join(",")
        );
        assert_eq!(code(eleven.as_bytes()), "ValidationException");
    }
}
