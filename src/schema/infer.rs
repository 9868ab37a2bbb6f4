//! Schema inference: a [`Shape`] summarises the JSON values seen so far (types, which
//! object members were present in every sample, string formats, array items) and
//! turns into a JSON Schema. Shapes merge, so samples can be folded in one at a time,
//! by several replicas, and across restarts (the shape is what discovery keeps in
//! Redis). `sluice schema infer` and live discovery use this same code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What the samples at one place of the document looked like.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Samples that reached this place.
    #[serde(default)]
    pub samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nulls: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub booleans: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub integers: u64,
    /// Numbers with a fraction or exponent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub numbers: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub strings: u64,
    /// The format every string seen so far has, `Some("")` once they disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub objects: u64,
    /// Object members: how many of the objects had each, and their shape.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Shape>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub arrays: u64,
    /// Every element of every array, merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Shape>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How deep a document is followed; deeper values count as "anything".
const MAX_DEPTH: usize = 32;
/// Objects with more members than this (maps keyed by ids) are not described member by
/// member, which would make a schema per key.
const MAX_PROPERTIES: usize = 256;

impl Shape {
    /// Folds one sample in.
    pub fn add(&mut self, value: &Value) {
        self.add_at(value, 0);
    }

    fn add_at(&mut self, value: &Value, depth: usize) {
        self.samples += 1;
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Null => self.nulls += 1,
            Value::Bool(_) => self.booleans += 1,
            Value::Number(n) => {
                if n.is_i64() || n.is_u64() {
                    self.integers += 1
                } else {
                    self.numbers += 1
                }
            }
            Value::String(s) => {
                self.strings += 1;
                let seen = detect_format(s).unwrap_or("");
                match &self.format {
                    None if self.strings == 1 => self.format = Some(seen.to_string()),
                    Some(f) if f != seen => self.format = Some(String::new()),
                    _ => {}
                }
            }
            Value::Array(items) => {
                self.arrays += 1;
                let shape = self.items.get_or_insert_with(Box::default);
                for item in items {
                    shape.add_at(item, depth + 1);
                }
            }
            Value::Object(members) => {
                self.objects += 1;
                for (name, v) in members {
                    if self.properties.len() >= MAX_PROPERTIES
                        && !self.properties.contains_key(name)
                    {
                        continue;
                    }
                    self.properties
                        .entry(name.clone())
                        .or_default()
                        .add_at(v, depth + 1);
                }
            }
        }
    }

    /// Merges another summary in (as if its samples had been added here).
    pub fn merge(&mut self, other: &Shape) {
        let strings_before = self.strings;
        self.samples += other.samples;
        self.nulls += other.nulls;
        self.booleans += other.booleans;
        self.integers += other.integers;
        self.numbers += other.numbers;
        self.strings += other.strings;
        self.format = match (strings_before, other.strings) {
            (_, 0) => self.format.take(),
            (0, _) => other.format.clone(),
            _ if self.format == other.format => self.format.take(),
            _ => Some(String::new()),
        };
        self.objects += other.objects;
        for (name, shape) in &other.properties {
            self.properties
                .entry(name.clone())
                .or_default()
                .merge(shape);
        }
        self.arrays += other.arrays;
        if let Some(items) = &other.items {
            self.items.get_or_insert_with(Box::default).merge(items);
        }
    }

    /// The JSON Schema (2020-12) these samples satisfy: a member is required when every
    /// object seen had it; integers and numbers together are `number`.
    pub fn to_schema(&self) -> Value {
        let mut schema = Map::new();
        schema.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        if let Value::Object(described) = self.describe() {
            schema.extend(described);
        }
        Value::Object(schema)
    }

    fn describe(&self) -> Value {
        let mut types = Vec::new();
        if self.objects > 0 {
            types.push("object");
        }
        if self.arrays > 0 {
            types.push("array");
        }
        if self.strings > 0 {
            types.push("string");
        }
        if self.numbers > 0 {
            types.push("number");
        } else if self.integers > 0 {
            types.push("integer");
        }
        if self.booleans > 0 {
            types.push("boolean");
        }
        if self.nulls > 0 {
            types.push("null");
        }
        let mut out = Map::new();
        match types.as_slice() {
            [] => return json!({}),
            [one] => {
                out.insert("type".into(), (*one).into());
            }
            many => {
                out.insert("type".into(), json!(many));
            }
        }
        if let Some(format) = self.format.as_deref().filter(|f| !f.is_empty()) {
            out.insert("format".into(), format.into());
        }
        if self.objects > 0 {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (name, shape) in &self.properties {
                props.insert(name.clone(), shape.describe());
                if shape.samples == self.objects {
                    required.push(Value::from(name.as_str()));
                }
            }
            if !props.is_empty() {
                out.insert("properties".into(), Value::Object(props));
            }
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            }
        }
        if let Some(items) = self.items.as_ref().filter(|i| i.samples > 0) {
            out.insert("items".into(), items.describe());
        }
        Value::Object(out)
    }
}

/// The JSON Schema format a string has, among those inference reports.
pub fn detect_format(s: &str) -> Option<&'static str> {
    if s.len() >= 20 && chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Some("date-time");
    }
    if s.len() == 36 && uuid::Uuid::try_parse(s).is_ok() {
        return Some("uuid");
    }
    if looks_like_email(s) {
        return Some("email");
    }
    if let Some((scheme, rest)) = s.split_once("://") {
        let scheme_ok = !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if scheme_ok && !rest.is_empty() && url::Url::parse(s).is_ok() {
            return Some("uri");
        }
    }
    None
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_required_types_formats_and_items() {
        let mut shape = Shape::default();
        for sample in [
            json!({"id": "5a1d3e2c-7a39-4c5e-9a0e-4b7f8f1f2a11", "at": "2026-11-23T10:00:00Z", "n": 1, "tags": ["a"], "who": "a@b.io"}),
            json!({"id": "0b9c1e64-3b57-4d0e-8d4f-1c2d3e4f5a6b", "at": "2026-11-23T11:00:00+01:00", "n": 2.5, "tags": [], "note": null, "who": "c@d.org"}),
            json!({"id": "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", "at": "2026-11-23T12:00:00Z", "n": 3, "tags": ["b", 1], "note": "x", "who": "not an email"}),
        ] {
            shape.add(&sample);
        }
        assert_eq!(
            shape.to_schema(),
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "id": {"type": "string", "format": "uuid"},
                    "n": {"type": "number"},
                    "note": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "who": {"type": "string"}
                },
                "required": ["at", "id", "n", "tags", "who"]
            })
        );
    }

    #[test]
    fn merging_equals_adding() {
        let samples = [
            json!({"a": 1, "b": "https://x.example/p"}),
            json!({"a": "2026-01-01T00:00:00Z"}),
            json!([1, {"c": true}]),
        ];
        let mut all = Shape::default();
        samples.iter().for_each(|s| all.add(s));
        let mut left = Shape::default();
        left.add(&samples[0]);
        let mut right = Shape::default();
        right.add(&samples[1]);
        right.add(&samples[2]);
        left.merge(&right);
        assert_eq!(left, all);
        let round: Shape = serde_json::from_value(serde_json::to_value(&all).unwrap()).unwrap();
        assert_eq!(round, all);
    }

    #[test]
    fn formats() {
        assert_eq!(detect_format("2026-11-23T10:00:00.123Z"), Some("date-time"));
        assert_eq!(detect_format("https://example.com/a?b"), Some("uri"));
        assert_eq!(detect_format("ops@example.com"), Some("email"));
        assert_eq!(detect_format("2026-11-23"), None);
        assert_eq!(detect_format("hello"), None);
    }
}
