//! The CloudEvent as Sluice keeps it: context attributes plus the data bytes exactly as
//! they arrived.
//!
//! Attributes are held as a JSON object (extensions included). Data is never parsed and
//! re-serialised on the way through: the bytes a producer sent are the bytes a target
//! receives. `DataKind` remembers how the bytes are to be written in structured mode.

pub mod bridge;
pub mod cloudevents;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

/// How the data bytes of an event are to be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// JSON text (structured mode embeds it as the `data` value).
    Json,
    /// UTF-8 text that is not JSON (structured mode writes it as a JSON string).
    Text,
    /// Arbitrary bytes (structured mode writes `data_base64`).
    Binary,
}

impl DataKind {
    pub fn code(self) -> &'static str {
        match self {
            DataKind::Json => "j",
            DataKind::Text => "t",
            DataKind::Binary => "b",
        }
    }

    pub fn from_code(code: &[u8]) -> Option<Self> {
        match code {
            b"j" => Some(DataKind::Json),
            b"t" => Some(DataKind::Text),
            b"b" => Some(DataKind::Binary),
            _ => None,
        }
    }
}

/// Event data: the bytes as received and how to represent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub kind: DataKind,
    pub bytes: Bytes,
}

/// A validated CloudEvents 1.0 event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Context attributes (required, optional and extensions), never `data`.
    pub attrs: Map<String, Value>,
    pub data: Option<Data>,
}

impl Event {
    pub fn id(&self) -> &str {
        self.attr_str("id").unwrap_or_default()
    }

    pub fn attr_str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    /// Encoded attribute bytes, as stored in Redis (field `a`).
    pub fn attrs_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.attrs).expect("a JSON map always serialises")
    }

    /// The attributes of a binary-mode message in any protocol binding (HTTP `ce-*`
    /// headers, AMQP application properties, NATS headers, MQTT user properties):
    /// all but `datacontenttype`, which travels as the transport's content type;
    /// integers and booleans as their text.
    pub fn binding_attributes(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        self.attrs
            .iter()
            .filter(|(name, _)| name.as_str() != "datacontenttype")
            .map(|(name, value)| {
                let text = match value {
                    Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                    other => std::borrow::Cow::Owned(other.to_string()),
                };
                (name.as_str(), text)
            })
    }

    /// The event in the CloudEvents JSON format (structured mode), with the data bytes
    /// embedded unchanged when they are JSON.
    pub fn to_structured_json(&self) -> Vec<u8> {
        let attrs = self.attrs_json();
        let mut out = Vec::with_capacity(
            attrs.len() + 16 + self.data.as_ref().map_or(0, |d| d.bytes.len() * 4 / 3 + 4),
        );
        out.extend_from_slice(&attrs[..attrs.len() - 1]); // drop the closing brace
        if let Some(data) = &self.data {
            if !self.attrs.is_empty() {
                out.push(b',');
            }
            match data.kind {
                DataKind::Json => {
                    out.extend_from_slice(b"\"data\":");
                    out.extend_from_slice(&data.bytes);
                }
                DataKind::Text => {
                    out.extend_from_slice(b"\"data\":");
                    let text = String::from_utf8_lossy(&data.bytes);
                    serde_json::to_writer(&mut out, &text).expect("writing to a Vec");
                }
                DataKind::Binary => {
                    out.extend_from_slice(b"\"data_base64\":\"");
                    out.extend_from_slice(
                        base64::engine::general_purpose::STANDARD
                            .encode(&data.bytes)
                            .as_bytes(),
                    );
                    out.push(b'"');
                }
            }
        }
        out.push(b'}');
        out
    }
}

/// A validated event as stored in Redis: attributes encoded as a JSON object.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    pub id: String,
    /// The attributes as a JSON object (field `a` of a stream entry).
    pub attrs: Vec<u8>,
    pub data: Option<Data>,
}

impl EncodedEvent {
    /// Size counted against the per-event limit: encoded attributes plus data bytes.
    pub fn size(&self) -> usize {
        self.attrs.len() + self.data.as_ref().map_or(0, |d| d.bytes.len())
    }

    /// The event with its attributes parsed.
    pub fn decode(&self) -> Event {
        Event {
            attrs: serde_json::from_slice(&self.attrs)
                .expect("encoded attributes are a JSON object"),
            data: self.data.clone(),
        }
    }
}

/// The `type/subtype` of a content type, lower-cased, without parameters.
fn media_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Media types whose bodies are JSON (`application/json`, `*/*+json`, `text/json`).
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// Media types whose bodies are text.
pub fn is_text_media_type(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    essence.starts_with("text/") || essence.ends_with("+xml") || essence == "application/xml"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_json_keeps_data_bytes() {
        let mut attrs = Map::new();
        attrs.insert("id".into(), "1".into());
        let ev = Event {
            attrs,
            data: Some(Data {
                kind: DataKind::Json,
                bytes: Bytes::from_static(br#"{"b":1.0e2,"a":[ 1 ]}"#),
            }),
        };
        assert_eq!(
            ev.to_structured_json(),
            br#"{"id":"1","data":{"b":1.0e2,"a":[ 1 ]}}"#
        );
    }

    #[test]
    fn structured_json_binary_and_text() {
        let mut attrs = Map::new();
        attrs.insert("id".into(), "1".into());
        let mut ev = Event {
            attrs,
            data: Some(Data {
                kind: DataKind::Binary,
                bytes: Bytes::from_static(&[0, 255]),
            }),
        };
        assert_eq!(
            ev.to_structured_json(),
            br#"{"id":"1","data_base64":"AP8="}"#
        );
        ev.data = Some(Data {
            kind: DataKind::Text,
            bytes: Bytes::from_static(b"say \"hi\""),
        });
        assert_eq!(
            ev.to_structured_json(),
            br#"{"id":"1","data":"say \"hi\""}"#
        );
    }
}
