//! CloudEvents 1.0 HTTP protocol binding: binary, structured and batch modes.
//!
//! Parsing keeps the `data` member as the raw JSON text it was sent as, so that key order
//! and number formatting survive. Validation follows the CloudEvents 1.0.2 spec: required
//! attributes, `specversion` 1.0, lower-case alphanumeric attribute names, extension
//! values of CloudEvents types (string, integer, boolean), `time` as RFC 3339.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{is_json_media_type, is_text_media_type, Data, DataKind, Event};

pub const STRUCTURED: &str = "application/cloudevents+json";
pub const BATCH: &str = "application/cloudevents-batch+json";

/// One problem with one attribute of one event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Index of the event in a batch; absent for a single event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses a binary-mode event: attributes from `ce-*` headers, data from the body.
///
/// `headers` yields (lower-case name, raw value) pairs.
pub fn parse_binary<'a>(
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Event, FieldError> {
    let mut attrs = Map::new();
    for (name, raw) in headers {
        let Some(attr) = name.strip_prefix("ce-") else {
            continue;
        };
        let decoded = percent_encoding::percent_decode(raw)
            .decode_utf8()
            .map_err(|_| {
                FieldError::new(attr, "header value is not UTF-8 after percent-decoding")
            })?;
        if attr == "datacontenttype" {
            return Err(FieldError::new(
                attr,
                "in binary mode the data content type is the Content-Type header, not ce-datacontenttype",
            ));
        }
        attrs.insert(attr.to_string(), Value::String(decoded.into_owned()));
    }
    if let Some(ct) = content_type {
        attrs.insert("datacontenttype".into(), Value::String(ct.to_string()));
    }
    validate_attributes(&attrs)?;
    let data = if body.is_empty() {
        None
    } else {
        let kind = match content_type {
            Some(ct) if is_json_media_type(ct) => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                    return Err(FieldError::new(
                        "data",
                        "body is not valid JSON but Content-Type says JSON",
                    ));
                }
                DataKind::Json
            }
            Some(ct) if is_text_media_type(ct) && std::str::from_utf8(&body).is_ok() => {
                DataKind::Text
            }
            _ => DataKind::Binary,
        };
        Some(Data { kind, bytes: body })
    };
    Ok(Event { attrs, data })
}

/// Parses one event in the CloudEvents JSON format (structured mode).
pub fn parse_structured(body: &[u8]) -> Result<Event, FieldError> {
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("", format!("body is not a CloudEvents JSON object: {e}")))?;
    event_from_members(members)
}

/// Parses a batch: a JSON array of events in the JSON format. Every invalid entry is
/// reported, with its index, so a producer can fix the whole batch at once.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Event>, Vec<FieldError>> {
    let entries: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        vec![FieldError::new(
            "",
            format!("body is not a JSON array of CloudEvents: {e}"),
        )]
    })?;
    let mut events = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, raw) in entries.into_iter().enumerate() {
        let parsed = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get())
            .map_err(|_| FieldError::new("", "entry is not a JSON object"))
            .and_then(event_from_members);
        match parsed {
            Ok(ev) => events.push(ev),
            Err(mut e) => {
                e.index = Some(index);
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

fn event_from_members(members: BTreeMap<String, &RawValue>) -> Result<Event, FieldError> {
    let mut attrs = Map::new();
    let mut data_raw = None;
    let mut data_b64 = None;
    for (name, raw) in members {
        match name.as_str() {
            "data" => data_raw = Some(raw),
            "data_base64" => data_b64 = Some(raw),
            _ => {
                let value: Value = serde_json::from_str(raw.get())
                    .map_err(|e| FieldError::new(name.as_str(), e.to_string()))?;
                // The JSON format allows null for an attribute that is not set.
                if !value.is_null() {
                    attrs.insert(name, value);
                }
            }
        }
    }
    validate_attributes(&attrs)?;
    let content_type = attrs.get("datacontenttype").and_then(Value::as_str);
    let data = match (data_raw, data_b64) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                "data_base64",
                "an event carries either data or data_base64, not both",
            ))
        }
        (Some(raw), None) if raw.get() == "null" => None,
        (Some(raw), None) => {
            // A JSON string under a non-JSON content type is the data itself (text);
            // anything else is JSON data, kept byte for byte.
            let text_type = content_type.is_some_and(|ct| !is_json_media_type(ct));
            if text_type && raw.get().starts_with('"') {
                let text: String = serde_json::from_str(raw.get())
                    .map_err(|e| FieldError::new("data", e.to_string()))?;
                Some(Data {
                    kind: DataKind::Text,
                    bytes: Bytes::from(text),
                })
            } else {
                Some(Data {
                    kind: DataKind::Json,
                    bytes: Bytes::copy_from_slice(raw.get().as_bytes()),
                })
            }
        }
        (None, Some(raw)) if raw.get() == "null" => None,
        (None, Some(raw)) => {
            let encoded: String = serde_json::from_str(raw.get())
                .map_err(|_| FieldError::new("data_base64", "must be a base64 string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| FieldError::new("data_base64", format!("invalid base64: {e}")))?;
            Some(Data {
                kind: DataKind::Binary,
                bytes: Bytes::from(bytes),
            })
        }
        (None, None) => None,
    };
    Ok(Event { attrs, data })
}

/// Checks the context attributes of an event against the CloudEvents 1.0 spec.
pub fn validate_attributes(attrs: &Map<String, Value>) -> Result<(), FieldError> {
    match attrs.get("specversion") {
        None => {
            return Err(FieldError::new(
                "specversion",
                "required attribute is missing",
            ))
        }
        Some(Value::String(v)) if v == "1.0" => {}
        Some(v) => {
            return Err(FieldError::new(
                "specversion",
                format!("unsupported spec version {v}: Sluice accepts \"1.0\""),
            ))
        }
    }
    for required in ["id", "source", "type"] {
        match attrs.get(required) {
            None => return Err(FieldError::new(required, "required attribute is missing")),
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => {
                return Err(FieldError::new(required, "must be a non-empty string"))
            }
            Some(_) => return Err(FieldError::new(required, "must be a string")),
        }
    }
    for (name, value) in attrs {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(FieldError::new(
                name.as_str(),
                "attribute names must consist of lower-case letters and digits",
            ));
        }
        match name.as_str() {
            "specversion" | "id" | "source" | "type" => {}
            "subject" => {
                string_attr(name, value)?;
            }
            "time" => {
                let s = string_attr(name, value)?;
                chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                    FieldError::new(
                        "time",
                        "must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z",
                    )
                })?;
            }
            "datacontenttype" => {
                let s = string_attr(name, value)?;
                if !s.contains('/') {
                    return Err(FieldError::new(
                        name.as_str(),
                        "must be a media type such as application/json",
                    ));
                }
            }
            "dataschema" => {
                let s = string_attr(name, value)?;
                url::Url::parse(s)
                    .map_err(|_| FieldError::new(name.as_str(), "must be an absolute URI"))?;
            }
            _ => match value {
                Value::String(_) | Value::Bool(_) => {}
                Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {}
                Value::Number(_) => {
                    return Err(FieldError::new(
                        name.as_str(),
                        "extension numbers must be 32-bit integers (CloudEvents Integer)",
                    ))
                }
                _ => {
                    return Err(FieldError::new(
                        name.as_str(),
                        "extension values must be strings, integers or booleans",
                    ))
                }
            },
        }
    }
    Ok(())
}

fn string_attr<'v>(name: &str, value: &'v Value) -> Result<&'v str, FieldError> {
    value
        .as_str()
        .ok_or_else(|| FieldError::new(name, "must be a string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn structured(s: &str) -> Result<Event, FieldError> {
        parse_structured(s.as_bytes())
    }

    #[test]
    fn structured_event_keeps_raw_data() {
        let ev = structured(
            r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","data":{"z":1.50,"a":2}}"#,
        )
        .unwrap();
        assert_eq!(ev.data.unwrap().bytes.as_ref(), br#"{"z":1.50,"a":2}"#);
    }

    #[test]
    fn structured_errors_name_the_field() {
        let cases = [
            (r#"{"id":"a","source":"/s","type":"t"}"#, "specversion"),
            (
                r#"{"specversion":"0.3","id":"a","source":"/s","type":"t"}"#,
                "specversion",
            ),
            (r#"{"specversion":"1.0","source":"/s","type":"t"}"#, "id"),
            (
                r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
                "id",
            ),
            (r#"{"specversion":"1.0","id":"a","type":"t"}"#, "source"),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":5}"#,
                "type",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","time":"yesterday"}"#,
                "time",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","Bad":"x"}"#,
                "Bad",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","ext":{"a":1}}"#,
                "ext",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","ext":1.5}"#,
                "ext",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","dataschema":"rel/path"}"#,
                "dataschema",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#,
                "data_base64",
            ),
            (
                r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","data_base64":"!!"}"#,
                "data_base64",
            ),
        ];
        for (input, field) in cases {
            let err = structured(input).expect_err(input);
            assert_eq!(err.field, field, "{input}: {err:?}");
        }
    }

    #[test]
    fn extensions_of_cloudevents_types_are_accepted() {
        let ev = structured(
            r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","n":5,"b":true,"s":"x","nul":null,"time":"2026-01-01T00:00:00.5+01:00"}"#,
        )
        .unwrap();
        assert_eq!(ev.attrs.get("n"), Some(&Value::from(5)));
        assert!(!ev.attrs.contains_key("nul"));
    }

    #[test]
    fn text_data_under_text_content_type() {
        let ev = structured(
            r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi \"x\""}"#,
        )
        .unwrap();
        let data = ev.data.unwrap();
        assert_eq!(data.kind, DataKind::Text);
        assert_eq!(data.bytes.as_ref(), b"hi \"x\"");
    }

    #[test]
    fn batch_reports_every_bad_entry() {
        let body = r#"[
            {"specversion":"1.0","id":"a","source":"/s","type":"t"},
            {"specversion":"1.0","source":"/s","type":"t"},
            {"specversion":"1.0","id":"c","source":"/s","type":"t","time":"x"},
            7
        ]"#;
        let errs = parse_batch(body.as_bytes()).unwrap_err();
        let got: Vec<_> = errs
            .iter()
            .map(|e| (e.index.unwrap(), e.field.as_str()))
            .collect();
        assert_eq!(got, vec![(1, "id"), (2, "time"), (3, "")]);
    }

    #[test]
    fn binary_mode_decodes_headers() {
        let headers = vec![
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"42"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
            ("ce-subject", b"caf%C3%A9"),
            ("x-other", b"ignored"),
        ];
        let ev = parse_binary(
            headers.into_iter(),
            Some("application/json"),
            Bytes::from_static(b"{\"a\":1}"),
        )
        .unwrap();
        assert_eq!(ev.attr_str("subject"), Some("café"));
        assert_eq!(ev.attr_str("datacontenttype"), Some("application/json"));
        assert_eq!(ev.data.unwrap().kind, DataKind::Json);
    }

    #[test]
    fn binary_mode_rejects_invalid_json_body() {
        let headers = vec![
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"42"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
        ];
        let err = parse_binary(
            headers.into_iter(),
            Some("application/json"),
            Bytes::from_static(b"{oops"),
        )
        .unwrap_err();
        assert_eq!(err.field, "data");
    }
}
