//! CloudEvents 1.0 HTTP protocol binding: binary, structured and batch modes.
//!
//! Parsing produces [`EncodedEvent`]s, the form stored in Redis, in one pass: attribute
//! values are validated where they lie in the body and copied into the stored JSON
//! verbatim, and JSON `data` is kept as a slice of the request body, so key order and
//! number formatting survive. Validation follows the CloudEvents 1.0.2 spec: required
//! attributes, `specversion` 1.0, lower-case alphanumeric attribute names, extension
//! values of CloudEvents types (string, integer, boolean), `time` as RFC 3339.

use std::borrow::Cow;

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::{is_json_media_type, is_text_media_type, Data, DataKind, EncodedEvent};

pub const STRUCTURED: &str = "application/cloudevents+json";
pub const BATCH: &str = "application/cloudevents-batch+json";

/// Whether a message with this content type is a structured-mode event
/// (`application/cloudevents+json`, parameters and case aside), in any binding.
pub fn is_structured(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(STRUCTURED))
}

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
) -> Result<EncodedEvent, FieldError> {
    let mut attrs: Vec<(&str, Cow<str>)> = Vec::new();
    for (name, raw) in headers {
        let Some(attr) = name.strip_prefix("ce-") else {
            continue;
        };
        if attr == "datacontenttype" {
            return Err(FieldError::new(
                attr,
                "in binary mode the data content type is the Content-Type header, not ce-datacontenttype",
            ));
        }
        // The HTTP binding (1.0.2, 3.1.3.2): undo a double-quoted string first (older
        // senders quoted values with spaces), then one round of percent-decoding.
        let not_utf8 =
            |_| FieldError::new(attr, "header value is not UTF-8 after percent-decoding");
        let decoded = match unquote(raw) {
            // The common case borrows from the header: no copy.
            None => percent_encoding::percent_decode(raw)
                .decode_utf8()
                .map_err(not_utf8)?,
            Some(unquoted) => Cow::Owned(
                percent_encoding::percent_decode(&unquoted)
                    .decode_utf8()
                    .map_err(not_utf8)?
                    .into_owned(),
            ),
        };
        attrs.push((attr, decoded));
    }
    parse_attributes(attrs, content_type, body)
}

/// Builds a binary-mode event from decoded attributes (name without any transport
/// prefix, value as text) and the message body: the common half of every protocol
/// binding's binary mode (HTTP `ce-*` headers, AMQP application properties, NATS
/// headers, MQTT user properties). `datacontenttype` is the transport's content type;
/// an attribute of that name is refused, as in the HTTP binding.
pub fn parse_attributes<'a>(
    mut attrs: Vec<(&'a str, Cow<'a, str>)>,
    content_type: Option<&'a str>,
    body: Bytes,
) -> Result<EncodedEvent, FieldError> {
    if attrs.iter().any(|(n, _)| *n == "datacontenttype") {
        return Err(FieldError::new(
            "datacontenttype",
            "in binary mode the data content type is the message's content type, not an attribute",
        ));
    }
    if let Some(ct) = content_type {
        attrs.push(("datacontenttype", Cow::Borrowed(ct)));
    }
    let id = validate(
        attrs
            .iter()
            .map(|(n, v)| (*n, AttrValue::Str(Cow::Borrowed(v.as_ref())))),
    )?;
    let mut encoded = Vec::with_capacity(
        attrs
            .iter()
            .map(|(n, v)| n.len() + v.len() + 6)
            .sum::<usize>()
            + 2,
    );
    encoded.push(b'{');
    for (i, (name, value)) in attrs.iter().enumerate() {
        if i > 0 {
            encoded.push(b',');
        }
        write_name(&mut encoded, name);
        serde_json::to_writer(&mut encoded, value.as_ref()).expect("writing to a Vec");
    }
    encoded.push(b'}');

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
    Ok(EncodedEvent {
        id,
        attrs: encoded,
        data,
    })
}

/// A header value that is an RFC 7230 quoted-string, undone (`"a \"b\""` is `a "b"`);
/// None for any other value.
fn unquote(raw: &[u8]) -> Option<Vec<u8>> {
    match raw {
        [b'"', inner @ .., b'"'] => {
            let mut out = Vec::with_capacity(inner.len());
            let mut bytes = inner.iter();
            while let Some(&b) = bytes.next() {
                match b {
                    b'\\' => out.extend(bytes.next()),
                    _ => out.push(b),
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// Parses one event in the CloudEvents JSON format (structured mode).
pub fn parse_structured(body: &Bytes) -> Result<EncodedEvent, FieldError> {
    let members: Members = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("", format!("body is not a CloudEvents JSON object: {e}")))?;
    members.encode(body)
}

/// Parses a batch: a JSON array of events in the JSON format. Every invalid entry is
/// reported, with its index, so a producer can fix the whole batch at once.
pub fn parse_batch(body: &Bytes) -> Result<Vec<EncodedEvent>, Vec<FieldError>> {
    // One pass over the body in the common case; entries that are not even objects
    // send us to a second, per-entry pass that can say which ones.
    let entries: Vec<Members> = match serde_json::from_slice(body) {
        Ok(entries) => entries,
        Err(_) => return Err(batch_shape_errors(body)),
    };
    let mut events = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, members) in entries.into_iter().enumerate() {
        match members.encode(body) {
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

/// Parses a batch entry by entry: the body must be a JSON array, and each entry is an
/// event or the reason it is not one (for APIs that answer per entry, such as Alibaba's
/// PutEvents).
pub fn parse_batch_each(body: &Bytes) -> Result<Vec<Result<EncodedEvent, FieldError>>, FieldError> {
    let entries: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        FieldError::new("", format!("body is not a JSON array of CloudEvents: {e}"))
    })?;
    Ok(entries
        .into_iter()
        .map(|raw| {
            serde_json::from_str::<Members>(raw.get())
                .map_err(|e| {
                    FieldError::new("", format!("entry is not a CloudEvents JSON object: {e}"))
                })
                .and_then(|m| m.encode(body))
        })
        .collect())
}

/// Errors for a batch body that did not parse as an array of objects.
fn batch_shape_errors(body: &Bytes) -> Vec<FieldError> {
    let entries: Vec<&RawValue> = match serde_json::from_slice(body) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![FieldError::new(
                "",
                format!("body is not a JSON array of CloudEvents: {e}"),
            )]
        }
    };
    let mut errors = Vec::new();
    for (index, raw) in entries.into_iter().enumerate() {
        let parsed = serde_json::from_str::<Members>(raw.get())
            .map_err(|e| {
                FieldError::new("", format!("entry is not a CloudEvents JSON object: {e}"))
            })
            .and_then(|m| m.encode(body).map(drop));
        if let Err(mut e) = parsed {
            e.index = Some(index);
            errors.push(e);
        }
    }
    errors
}

/// The members of a JSON-format event, read in one pass as raw slices of the body.
struct Members<'a> {
    attrs: Vec<(Cow<'a, str>, &'a RawValue)>,
    data: Option<&'a RawValue>,
    data_base64: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a CloudEvents JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Members<'a>, M::Error> {
                let mut members = Members {
                    attrs: Vec::with_capacity(8),
                    data: None,
                    data_base64: None,
                };
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match key.as_ref() {
                        "data" => members.data = Some(map.next_value()?),
                        "data_base64" => members.data_base64 = Some(map.next_value()?),
                        _ => members.attrs.push((key, map.next_value()?)),
                    }
                }
                Ok(members)
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A member name, borrowed from the body unless it contains escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Visit(std::marker::PhantomData))
    }
}

impl Members<'_> {
    /// Validates the attributes, writes them as stored JSON (values verbatim, nulls
    /// dropped) and resolves the data; `body` is the buffer the raw slices point into.
    fn encode(self, body: &Bytes) -> Result<EncodedEvent, FieldError> {
        let Members {
            attrs,
            data: data_raw,
            data_base64: data_b64,
        } = self;
        let values: Vec<AttrValue> = attrs
            .iter()
            .map(|(_, raw)| AttrValue::from_json(raw))
            .collect::<Result<_, _>>()?;
        let id = validate(
            attrs
                .iter()
                .map(|(n, _)| n.as_ref())
                .zip(values.iter().cloned()),
        )?;
        let mut encoded = Vec::with_capacity(
            attrs
                .iter()
                .map(|(n, v)| n.len() + v.get().len() + 4)
                .sum::<usize>()
                + 2,
        );
        encoded.push(b'{');
        let mut content_type = None;
        for ((name, raw), value) in attrs.iter().zip(&values) {
            if matches!(value, AttrValue::Null) {
                continue;
            }
            if encoded.len() > 1 {
                encoded.push(b',');
            }
            write_name(&mut encoded, name);
            encoded.extend_from_slice(raw.get().as_bytes());
            if name == "datacontenttype" {
                if let AttrValue::Str(ct) = value {
                    content_type = Some(ct.as_ref());
                }
            }
        }
        encoded.push(b'}');

        // null stands for "not set", for data as for attributes.
        let data_raw = data_raw.filter(|r| r.get() != "null");
        let data_b64 = data_b64.filter(|r| r.get() != "null");
        let data = match (data_raw, data_b64) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "data_base64",
                    "an event carries either data or data_base64, not both",
                ))
            }
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
                        bytes: slice_of(body, raw.get().as_bytes()),
                    })
                }
            }
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
        Ok(EncodedEvent {
            id,
            attrs: encoded,
            data,
        })
    }
}

/// Writes `"name":`. Names were validated as lower-case ASCII letters and digits, so
/// they need no escaping.
fn write_name(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// `part` as a zero-copy slice of `body` when it points into it, else a copy.
fn slice_of(body: &Bytes, part: &[u8]) -> Bytes {
    let range = body.as_ptr_range();
    if range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end {
        body.slice_ref(part)
    } else {
        Bytes::copy_from_slice(part)
    }
}

/// An attribute value as validation sees it.
#[derive(Debug, Clone)]
enum AttrValue<'a> {
    Str(Cow<'a, str>),
    Bool,
    Int(i64),
    /// A JSON number that is not an integer, or out of i64 range.
    OtherNumber,
    /// JSON null: the attribute is not set.
    Null,
    /// An object or array.
    Composite,
}

impl<'a> AttrValue<'a> {
    fn from_json(raw: &'a RawValue) -> Result<AttrValue<'a>, FieldError> {
        let text = raw.get();
        Ok(match text.as_bytes()[0] {
            b'"' if !text.contains('\\') => AttrValue::Str(Cow::Borrowed(&text[1..text.len() - 1])),
            b'"' => AttrValue::Str(Cow::Owned(
                serde_json::from_str(text).map_err(|e| FieldError::new("", e.to_string()))?,
            )),
            b't' | b'f' => AttrValue::Bool,
            b'n' => AttrValue::Null,
            b'{' | b'[' => AttrValue::Composite,
            _ => text
                .parse::<i64>()
                .map_or(AttrValue::OtherNumber, AttrValue::Int),
        })
    }
}

/// Checks the context attributes of an event against the CloudEvents 1.0 spec and
/// returns its id. Missing or wrong `specversion` is reported first, then missing
/// required attributes, then the first invalid attribute.
fn validate<'a>(
    attrs: impl Iterator<Item = (&'a str, AttrValue<'a>)>,
) -> Result<String, FieldError> {
    let mut specversion = None;
    let mut id = None;
    let (mut has_source, mut has_type) = (false, false);
    let mut first_error = None;
    let mut seen: Vec<&str> = Vec::with_capacity(8);
    for (name, value) in attrs {
        if matches!(value, AttrValue::Null) {
            continue;
        }
        if seen.contains(&name) {
            first_error
                .get_or_insert_with(|| FieldError::new(name, "attribute appears more than once"));
            continue;
        }
        seen.push(name);
        let checked = check_attribute(name, &value);
        match (name, checked) {
            ("specversion", result) => specversion = Some(result),
            ("id", Ok(())) => {
                if let AttrValue::Str(s) = value {
                    id = Some(s.into_owned());
                }
            }
            ("source", Ok(())) => has_source = true,
            ("type", Ok(())) => has_type = true,
            (_, Err(e)) => {
                first_error.get_or_insert(e);
            }
            _ => {}
        }
    }
    match specversion {
        None => {
            return Err(FieldError::new(
                "specversion",
                "required attribute is missing",
            ))
        }
        Some(Err(e)) => return Err(e),
        Some(Ok(())) => {}
    }
    if let Some(e) = first_error
        .as_ref()
        .filter(|e| matches!(e.field.as_str(), "id" | "source" | "type"))
    {
        return Err(e.clone());
    }
    for (present, name) in [
        (id.is_some(), "id"),
        (has_source, "source"),
        (has_type, "type"),
    ] {
        if !present {
            return Err(FieldError::new(name, "required attribute is missing"));
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(id.expect("checked above")),
    }
}

/// Checks one attribute's name and value.
fn check_attribute(name: &str, value: &AttrValue) -> Result<(), FieldError> {
    // `ce-data` in binary mode: data is the body, never an attribute.
    if name == "data" {
        return Err(FieldError::new(
            name,
            "data is the event's payload, not an attribute",
        ));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(FieldError::new(
            name,
            "attribute names must consist of lower-case letters and digits",
        ));
    }
    let string = || match value {
        AttrValue::Str(s) => Ok(s.as_ref()),
        _ => Err(FieldError::new(name, "must be a string")),
    };
    match name {
        "specversion" => {
            let v = string()?;
            if v != "1.0" {
                return Err(FieldError::new(
                    name,
                    format!("unsupported spec version {v:?}: Sluice accepts \"1.0\""),
                ));
            }
        }
        "id" | "source" | "type" => {
            if string()?.is_empty() {
                return Err(FieldError::new(name, "must be a non-empty string"));
            }
        }
        "subject" => {
            string()?;
        }
        "time" => {
            chrono::DateTime::parse_from_rfc3339(string()?).map_err(|_| {
                FieldError::new(
                    name,
                    "must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z",
                )
            })?;
        }
        "datacontenttype" => {
            if !string()?.contains('/') {
                return Err(FieldError::new(
                    name,
                    "must be a media type such as application/json",
                ));
            }
        }
        "dataschema" => {
            url::Url::parse(string()?)
                .map_err(|_| FieldError::new(name, "must be an absolute URI"))?;
        }
        _ => match value {
            AttrValue::Str(_) | AttrValue::Bool | AttrValue::Null => {}
            AttrValue::Int(i) if i32::try_from(*i).is_ok() => {}
            AttrValue::Int(_) | AttrValue::OtherNumber => {
                return Err(FieldError::new(
                    name,
                    "extension numbers must be 32-bit integers (CloudEvents Integer)",
                ))
            }
            AttrValue::Composite => {
                return Err(FieldError::new(
                    name,
                    "extension values must be strings, integers or booleans",
                ))
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::Value;

    fn structured(s: &str) -> Result<Event, FieldError> {
        parse_structured(&Bytes::copy_from_slice(s.as_bytes())).map(|e| e.decode())
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
        let errs = parse_batch(&Bytes::from_static(body.as_bytes())).unwrap_err();
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
        .unwrap()
        .decode();
        assert_eq!(ev.attr_str("subject"), Some("café"));
        assert_eq!(ev.attr_str("datacontenttype"), Some("application/json"));
        assert_eq!(ev.data.unwrap().kind, DataKind::Json);
    }

    #[test]
    fn binary_mode_undoes_quoted_strings_then_percent_encoding() {
        let headers = vec![
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"42"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
            ("ce-subject", br#""say \"hi\" caf%C3%A9""#),
            ("ce-tenant", br#"no"quotes""#),
        ];
        let ev = parse_binary(headers.into_iter(), None, Bytes::new())
            .unwrap()
            .decode();
        assert_eq!(ev.attr_str("subject"), Some(r#"say "hi" café"#));
        assert_eq!(ev.attr_str("tenant"), Some(r#"no"quotes""#));
    }

    #[test]
    fn binary_mode_rejects_a_data_attribute() {
        let headers = vec![
            ("ce-specversion", &b"1.0"[..]),
            ("ce-id", b"42"),
            ("ce-source", b"/s"),
            ("ce-type", b"t"),
            ("ce-data", b"evil"),
        ];
        let err = parse_binary(headers.into_iter(), None, Bytes::new()).unwrap_err();
        assert_eq!(err.field, "data");
    }

    #[test]
    fn null_data_members_are_absent() {
        let ev = structured(r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","data":{"x":1},"data_base64":null}"#).unwrap();
        assert_eq!(ev.data.unwrap().bytes.as_ref(), br#"{"x":1}"#);
        let ev =
            structured(r#"{"specversion":"1.0","id":"a","source":"/s","type":"t","data":null}"#)
                .unwrap();
        assert!(ev.data.is_none());
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
