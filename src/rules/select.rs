//! JSONPath selection over an event, for transforms and HTTP parameters.
//!
//! Paths address the event in the CloudEvents JSON format (`$.id`, `$.data.order.id`;
//! text data is `$.data`, binary data `$.data_base64`). A selection is the JSON text of
//! what the path picked, taken from the event's bytes as they are: key order, number
//! formatting and escapes survive.
//!
//! Simple paths (members and indices only, the common case) walk the raw data without
//! building a document; any other path (wildcards, slices, filters, descent) runs on a
//! parsed document through `serde_json_path` (RFC 9535) and selects an array of matches.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt::Write as _;

use base64::Engine;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::event::{DataKind, Event};

/// An event and, built only if a complex path needs it, its JSON document.
pub struct Document<'a> {
    pub event: &'a Event,
    /// The member the data appears as: `data`, or `detail` in the AWS view.
    data_member: &'static str,
    value: OnceCell<Value>,
}

impl<'a> Document<'a> {
    pub fn new(event: &'a Event) -> Self {
        Document {
            event,
            data_member: "data",
            value: OnceCell::new(),
        }
    }

    /// The AWS view of an event (`rules::dialect::aws_view`): its data is `detail`, and
    /// non-JSON data is a string there (text, or base64 for binary).
    pub fn aws(view: &'a Event) -> Self {
        Document {
            event: view,
            data_member: "detail",
            value: OnceCell::new(),
        }
    }

    /// The whole document as JSON text.
    pub fn json(&self) -> String {
        serde_json::to_string(self.value()).expect("JSON")
    }

    /// The event as a JSON document (built on first use).
    fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            let mut doc = self.event.attrs.clone();
            if let Some(data) = &self.event.data {
                let aws = self.data_member == "detail";
                let (name, value) = match data.kind {
                    DataKind::Json => (
                        self.data_member,
                        serde_json::from_slice(&data.bytes).unwrap_or(Value::Null),
                    ),
                    DataKind::Text => (
                        self.data_member,
                        Value::String(String::from_utf8_lossy(&data.bytes).into_owned()),
                    ),
                    DataKind::Binary => (
                        if aws { "detail" } else { "data_base64" },
                        Value::String(
                            base64::engine::general_purpose::STANDARD.encode(&data.bytes),
                        ),
                    ),
                };
                doc.insert(name.to_string(), value);
            }
            Value::Object(doc)
        })
    }
}

/// Which top-level names a path may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    CloudEvents,
    /// Also `$.detail` (= `$.data`) and `$.detail-type` (= `$.type`), as in AWS.
    Aws,
    /// Over the AWS view of the event (`envelope: aws`): its own names, no aliases.
    AwsEnvelope,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Index(i64),
}

/// A compiled JSONPath.
#[derive(Debug)]
pub struct Path {
    /// Members and indices only: walked over the raw event.
    steps: Option<Vec<Step>>,
    /// Anything else: run on the document; selects an array of every match.
    query: JsonPath,
}

impl Path {
    /// Compiles a JSONPath over the CloudEvents JSON format of an event.
    pub fn new(text: &str) -> Result<Path, String> {
        Path::compile(text, Dialect::CloudEvents)
    }

    pub fn compile(text: &str, dialect: Dialect) -> Result<Path, String> {
        let mut normalized = normalize_path(text)?;
        if dialect == Dialect::Aws {
            for (aws, ce) in [
                ("$['detail-type']", "$['type']"),
                ("$['detail']", "$['data']"),
            ] {
                if let Some(rest) = normalized.strip_prefix(aws) {
                    normalized = format!("{ce}{rest}");
                }
            }
        }
        let query =
            JsonPath::parse(&normalized).map_err(|e| format!("invalid JSONPath {text:?}: {e}"))?;
        Ok(Path {
            steps: simple_steps(&normalized),
            query,
        })
    }

    /// The JSON text of what the path selects: the value (simple path) or an array of
    /// every match (other paths); `None` when a simple path matches nothing.
    pub fn select<'d>(&self, doc: &'d Document<'_>) -> Option<Cow<'d, str>> {
        let Some(steps) = &self.steps else {
            let matches: Vec<&Value> = self.query.query(doc.value()).all();
            return Some(Cow::Owned(serde_json::to_string(&matches).expect("JSON")));
        };
        let (first, rest) = match steps.split_first() {
            None => {
                return Some(Cow::Owned(
                    serde_json::to_string(doc.value()).expect("JSON"),
                ))
            }
            Some((Step::Member(first), rest)) => (first, rest),
            // The event is an object: an index at the top selects nothing.
            Some((Step::Index(_), _)) => return None,
        };
        let event = doc.event;
        // In the AWS view the data is `detail`, binary data included (base64 text), and
        // `data` / `data_base64` are no members.
        let aws = doc.data_member != "data";
        let first = match first.as_str() {
            "detail" if aws => match &event.data {
                Some(d) if d.kind == DataKind::Binary => "data_base64",
                _ => "data",
            },
            "data" | "data_base64" if aws => return None,
            name => name,
        };
        match (first, &event.data) {
            ("data", Some(data)) if data.kind == DataKind::Json => {
                let text = std::str::from_utf8(&data.bytes).ok()?;
                walk_raw(text, rest).map(Cow::Borrowed)
            }
            ("data", Some(data)) if data.kind == DataKind::Text && rest.is_empty() => {
                Some(Cow::Owned(
                    serde_json::to_string(&String::from_utf8_lossy(&data.bytes)).expect("JSON"),
                ))
            }
            ("data_base64", Some(data)) if data.kind == DataKind::Binary && rest.is_empty() => {
                Some(Cow::Owned(format!(
                    "\"{}\"",
                    base64::engine::general_purpose::STANDARD.encode(&data.bytes)
                )))
            }
            ("data" | "data_base64", _) => None,
            (name, _) => {
                let mut value = event.attrs.get(name)?;
                for step in rest {
                    value = match (step, value) {
                        (Step::Member(m), Value::Object(map)) => map.get(m)?,
                        (Step::Index(i), Value::Array(items)) => {
                            items.get(index(*i, items.len())?)?
                        }
                        _ => return None,
                    };
                }
                Some(Cow::Owned(value.to_string()))
            }
        }
    }

    /// The selection as text: a string's characters, any other JSON as its text.
    pub fn select_text(&self, doc: &Document<'_>) -> Option<String> {
        self.select(doc).map(|json| json_to_text(&json))
    }
}

/// A string's characters for a JSON string, the JSON text itself otherwise.
pub fn json_to_text(json: &str) -> String {
    if json.starts_with('"') {
        serde_json::from_str(json).unwrap_or_else(|_| json.to_string())
    } else {
        json.to_string()
    }
}

fn index(i: i64, len: usize) -> Option<usize> {
    if i >= 0 {
        usize::try_from(i).ok().filter(|&i| i < len)
    } else {
        len.checked_sub(usize::try_from(i.unsigned_abs()).ok()?)
    }
}

/// Follows members and indices through JSON text without parsing what is not on the way.
fn walk_raw<'a>(mut text: &'a str, steps: &[Step]) -> Option<&'a str> {
    for step in steps {
        let mut de = serde_json::Deserializer::from_str(text);
        let found: Option<&'a RawValue> = match step {
            Step::Member(name) => {
                serde::Deserializer::deserialize_any(&mut de, MemberOf(name)).ok()?
            }
            Step::Index(i) => serde::Deserializer::deserialize_any(&mut de, ElementOf(*i)).ok()?,
        };
        text = found?.get();
    }
    // A JSON body may carry whitespace around its value; a selection never does.
    Some(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r')))
}

/// Picks one member of a JSON object (the last, if repeated), skipping the others.
struct MemberOf<'n>(&'n str);

impl<'de, 'n> Visitor<'de> for MemberOf<'n> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.0 {
                found = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Picks one element of a JSON array (negative: from the end).
struct ElementOf(i64);

impl<'de> Visitor<'de> for ElementOf {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(index(self.0, items.len()).map(|i| items[i]))
    }
}

/// The steps of a normalized path made only of `['name']` and `[n]` segments.
fn simple_steps(normalized: &str) -> Option<Vec<Step>> {
    let mut rest = normalized.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?;
        if let Some(quoted) = rest.strip_prefix('\'') {
            // RFC 9535 single-quoted name: JSON escapes plus \'. Re-quote it as a JSON
            // string and let serde decode it.
            let mut json = String::from("\"");
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        '\'' => json.push('\''),
                        c => {
                            json.push('\\');
                            json.push(c);
                        }
                    },
                    (_, '"') => json.push_str("\\\""),
                    (i, '\'') => break i,
                    (_, c) => json.push(c),
                }
            };
            json.push('"');
            let name: String = serde_json::from_str(&json).ok()?;
            rest = quoted[end + 1..].strip_prefix(']')?;
            steps.push(Step::Member(name));
        } else {
            let end = rest.find(']')?;
            steps.push(Step::Index(rest[..end].trim().parse().ok()?));
            rest = &rest[end + 1..];
        }
    }
    Some(steps)
}

/// Rewrites dotted member names into bracket notation (`$.a.some-key` ->
/// `$['a']['some-key']`), so AWS-style names with dashes parse as RFC 9535 JSONPath.
fn normalize_path(text: &str) -> Result<String, String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('$') else {
        return Err(format!("a JSONPath starts with $, got {text:?}"));
    };
    let mut out = String::from("$");
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                // `..name` is a descendant segment, `.name` a child one.
                if chars.peek() == Some(&'.') {
                    chars.next();
                    out.push_str("..");
                    if chars.peek() == Some(&'[') {
                        continue;
                    }
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' || is_blank(n) {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                if name.is_empty() {
                    return Err(format!("empty member name in {text:?}"));
                }
                let dotted = out.ends_with("..");
                if name == "*" {
                    out.push_str(if dotted { "*" } else { ".*" });
                } else {
                    let _ = write!(
                        out,
                        "['{}']",
                        name.replace('\\', "\\\\").replace('\'', "\\'")
                    );
                }
            }
            '[' => {
                // Bracketed segment, through its matching ']' (nested brackets of
                // filters and quoted strings respected). Double-quoted strings become
                // single-quoted, so every member name has one form.
                let mut segment = String::from("[");
                let mut depth = 1;
                let mut quote: Option<char> = None;
                while depth > 0 {
                    let Some(n) = chars.next() else {
                        return Err(format!("unclosed [ in {text:?}"));
                    };
                    match (quote, n) {
                        (Some(q), '\\') => {
                            let Some(next) = chars.next() else {
                                return Err(format!("unfinished escape in {text:?}"));
                            };
                            if q == '"' && next == '"' {
                                segment.push('"');
                            } else {
                                segment.push('\\');
                                segment.push(next);
                            }
                        }
                        (Some(q), n) if n == q => {
                            quote = None;
                            segment.push('\'');
                        }
                        (Some('"'), '\'') => segment.push_str("\\'"),
                        (Some(_), n) => segment.push(n),
                        (None, '\'' | '"') => {
                            quote = Some(n);
                            segment.push('\'');
                        }
                        (None, '[') => {
                            depth += 1;
                            segment.push(n);
                        }
                        (None, ']') => {
                            depth -= 1;
                            segment.push(n);
                        }
                        // Blank space between tokens means nothing in RFC 9535.
                        (None, n) if is_blank(n) => {}
                        (None, n) => segment.push(n),
                    }
                }
                out.push_str(&segment);
            }
            // Blank space between segments means nothing in RFC 9535.
            c if is_blank(c) => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::cloudevents::parse_structured;

    fn doc_event() -> Event {
        let json = r#"{"specversion":"1.0","id":"e-1","source":"/s","type":"t","n":7,
            "data":{"a":{"b":[10, 2.50, {"c":"x\u00e9"}]},"we'ird":1,"k-d":"v","a2":{"z":1,"y":2},
                    "a\nb":2,"é":3,"q\"x":4}}"#;
        parse_structured(&bytes::Bytes::copy_from_slice(json.as_bytes()))
            .unwrap()
            .decode()
    }

    #[test]
    fn simple_paths_select_the_raw_text() {
        let event = doc_event();
        let doc = Document::new(&event);
        let cases = [
            ("$.data.a.b[1]", Some("2.50")),
            ("$.data.a.b[-1].c", Some(r#""x\u00e9""#)),
            ("$.data.a2", Some(r#"{"z":1,"y":2}"#)),
            ("$.data['we\\'ird']", Some("1")),
            ("$.data['a\\nb']", Some("2")),
            ("$.data['\\u00e9']", Some("3")),
            ("$.data[\"q\\\"x\"]", Some("4")),
            ("$[0]", None),
            ("$ .data .a2 .z", Some("1")),
            ("$.data[ 'a2' ][ \"y\" ]", Some("2")),
            ("$.data.a.b[ -1 ] .c", Some(r#""x\u00e9""#)),
            ("$.data[\"we'ird\"]", Some("1")),
            ("$.data.k-d", Some(r#""v""#)),
            ("$.id", Some(r#""e-1""#)),
            ("$.n", Some("7")),
            ("$.data.a.b[3]", None),
            ("$.data.a.nope", None),
            ("$.data.a.b.c", None),
            ("$.data_base64", None),
            ("$.nope", None),
        ];
        for (path, expected) in cases {
            let p = Path::new(path).unwrap();
            assert!(p.steps.is_some(), "{path} is simple");
            assert_eq!(p.select(&doc).as_deref(), expected, "{path}");
        }
        assert_eq!(
            Path::new("$.data.a.b[2].c")
                .unwrap()
                .select_text(&doc)
                .as_deref(),
            Some("xé")
        );
    }

    #[test]
    fn other_paths_select_every_match() {
        let event = doc_event();
        let doc = Document::new(&event);
        for (path, expected) in [
            ("$.data.a.b[*]", r#"[10,2.50,{"c":"xé"}]"#),
            ("$..c", r#"["xé"]"#),
            ("$.data.a.b[0:2]", "[10,2.50]"),
            ("$.data.nope[*]", "[]"),
            ("$.data.a.b[?@.c == 'xé']", r#"[{"c":"xé"}]"#),
            ("$.data.a.b[?@[0] == 1]", "[]"),
        ] {
            let p = Path::new(path).unwrap();
            assert!(p.steps.is_none(), "{path} is not simple");
            assert_eq!(p.select(&doc).as_deref(), Some(expected), "{path}");
        }
    }
}
