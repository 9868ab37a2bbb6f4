//! The schema registry: event schemas (JSON Schema drafts 7 and 2020-12, or an OpenAPI
//! 3.0 component), their versions and compatibility, which events they bind to, and
//! validation of an event's `data` at ingest. See docs/schemas.md.
//!
//! A [`Registry`] is immutable: every version's validator is compiled once when the
//! registry is built (at startup from the config, then again only for versions that
//! appear in Redis: registered over HTTP or discovered). The ingress holds it behind
//! [`gate::SchemaGate`], which swaps in a new one when Redis changes.
//!
//! Which schema applies to an event: the first schema bound to the event's (`source`,
//! `type`) with exact values, else the first bound with a pattern (`prefix*`, `*`), in
//! config order; of it, the version the event's `dataschema` attribute names (every
//! version answers to `urn:sluice:schema:{name}:{version}` and to its own `dataschema`
//! URI), else the latest. An event no schema is bound to is validated against the
//! version its `dataschema` names, if any (discovered versions are never named).

pub mod compat;
pub mod discovery;
pub mod gate;
pub mod infer;
pub mod openapi;
pub mod store;
pub mod tape;

use std::collections::HashMap;
use std::sync::Arc;

/// The registry's lookup tables are read for every validated event: a fast hasher.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use compat::Compatibility;

/// How a schema version is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaFormat {
    /// JSON Schema (draft 7, 2019-09 or 2020-12 by `$schema`; 2020-12 without one).
    #[default]
    Jsonschema,
    /// An OpenAPI 3.0 document; `component` names the schema of the event's data.
    Openapi,
}

impl SchemaFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaFormat::Jsonschema => "jsonschema",
            SchemaFormat::Openapi => "openapi",
        }
    }
}

/// `validation:` of a bus or a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationMode {
    /// Invalid events are refused (400 with every violation); nothing is appended.
    Enforce,
    /// Invalid events are accepted, counted and marked `schemaviolation: "true"`.
    Warn,
    #[default]
    Off,
}

/// Where a schema comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    /// Registered with `POST /api/v1/schemas/{name}/versions` (stored in Redis).
    Api,
    /// Inferred from live events (stored in Redis).
    Discovered,
}

/// The extension attribute `warn` sets on an event that violates its schema.
pub const VIOLATION_EXTENSION: &str = "schemaviolation";

/// Turns a version as written (a JSON Schema, or an OpenAPI document and component)
/// into the JSON Schema that validates the data.
pub fn to_json_schema(
    format: SchemaFormat,
    document: &Value,
    component: Option<&str>,
) -> Result<Value, String> {
    match format {
        SchemaFormat::Jsonschema => {
            if component.is_some() {
                return Err("component applies only to format openapi".into());
            }
            if !document.is_object() && !document.is_boolean() {
                return Err("a JSON Schema must be an object or a boolean".into());
            }
            Ok(document.clone())
        }
        SchemaFormat::Openapi => {
            let component = component.ok_or("format openapi needs component: NAME")?;
            openapi::to_json_schema(document, component)
        }
    }
}

/// Compiles a JSON Schema (formats are asserted, remote `$ref`s are refused).
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("invalid schema: {e}"))
}

/// One version of a schema, compiled.
pub struct Version {
    pub name: String,
    /// 1-based.
    pub number: u32,
    pub format: SchemaFormat,
    /// The JSON Schema the data is validated against (converted from OpenAPI).
    pub schema: Value,
    /// The document as registered, for OpenAPI versions.
    pub document: Option<Value>,
    pub component: Option<String>,
    pub dataschema: Option<String>,
    pub origin: Origin,
    validator: jsonschema::Validator,
    /// The same schema, for data read as a [`tape::Doc`] (the ingest path).
    tape_validator: jsonschema::Validator<tape::Tape>,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Version({}/{})", self.name, self.number)
    }
}

/// A version as written, before compiling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSpec {
    #[serde(default)]
    pub format: SchemaFormat,
    /// The JSON Schema (after OpenAPI conversion).
    pub schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
}

impl Version {
    pub fn compile(
        name: &str,
        number: u32,
        spec: &VersionSpec,
        origin: Origin,
    ) -> Result<Version, String> {
        Ok(Version {
            name: name.to_string(),
            number,
            format: spec.format,
            schema: spec.schema.clone(),
            document: spec.document.clone(),
            component: spec.component.clone(),
            dataschema: spec.dataschema.clone(),
            origin,
            validator: compile(&spec.schema)?,
            tape_validator: jsonschema::options_for::<tape::Tape>()
                .should_validate_formats(true)
                .build(&spec.schema)
                .map_err(|e| format!("invalid schema: {e}"))?,
        })
    }

    /// The URN every version answers to as a `dataschema`.
    pub fn urn(&self) -> String {
        urn(&self.name, self.number)
    }

    /// Every violation of `data` (absent data is validated as `null`).
    pub fn violations(&self, data: &Value) -> Vec<Violation> {
        self.validator
            .iter_errors(data)
            .map(|e| Violation {
                instance_path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }

    pub fn is_valid(&self, data: &Value) -> bool {
        self.validator.is_valid(data)
    }

    /// Whether JSON data (bytes) is valid: read as a [`tape::Doc`] when it can be (much
    /// cheaper than a `Value`), else parsed as a `Value`. `Err` with the violations, or
    /// with why the data cannot be validated (not JSON).
    pub fn check_json(&self, data: &[u8]) -> Result<(), Vec<Violation>> {
        if let Some(doc) = tape::Doc::parse(data) {
            if self.tape_validator.is_valid(doc.root()) {
                return Ok(());
            }
        }
        // Invalid, or left to `Value`: the listing comes from the `Value` validator.
        let value: Value = serde_json::from_slice(data).map_err(|e| {
            vec![Violation {
                instance_path: String::new(),
                message: format!("data is not JSON: {e}"),
            }]
        })?;
        if self.validator.is_valid(&value) {
            return Ok(());
        }
        Err(self.violations(&value))
    }

    /// The version as an API answer.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "name": self.name,
            "version": self.number,
            "format": self.format.as_str(),
            "origin": self.origin,
            "urn": self.urn(),
            "schema": self.schema,
        });
        for (key, value) in [
            ("dataschema", self.dataschema.clone().map(Value::from)),
            ("component", self.component.clone().map(Value::from)),
            ("document", self.document.clone()),
        ] {
            if let Some(value) = value {
                v[key] = value;
            }
        }
        v
    }
}

pub fn urn(name: &str, number: u32) -> String {
    format!("urn:sluice:schema:{name}:{number}")
}

/// One way an event's data breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the data (`""` is the data itself).
    pub instance_path: String,
    pub message: String,
}

/// A value a binding matches: exact, `prefix*`, or `*` (anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Any,
    Exact(String),
    Prefix(String),
}

impl Matcher {
    pub fn parse(pattern: Option<&str>) -> Matcher {
        match pattern {
            None | Some("*") => Matcher::Any,
            Some(p) => match p.strip_suffix('*') {
                Some(prefix) => Matcher::Prefix(prefix.to_string()),
                None => Matcher::Exact(p.to_string()),
            },
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Exact(e) => e == value,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
        }
    }
}

/// A schema applying to events of (`bus`, `source`, `type`).
#[derive(Debug, Clone)]
pub struct Binding {
    pub schema: String,
    pub bus: Option<String>,
    pub source: Matcher,
    pub type_: Matcher,
}

/// A schema and its versions (oldest first).
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub compatibility: Compatibility,
    pub origin: Origin,
    pub versions: Vec<Arc<Version>>,
    /// For discovered schemas: the (source, type) they describe.
    pub discovered: Option<(String, String)>,
}

/// Every schema, compiled, with the lookup tables of the bindings.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    by_name: Map<String, usize>,
    by_uri: Map<String, Arc<Version>>,
    bindings: Vec<Binding>,
    /// source -> type -> bindings with both exact, in config order (nested so a
    /// lookup borrows the event's strings instead of allocating a key).
    exact: Map<String, Map<String, Vec<usize>>>,
    /// Bindings with a pattern, in config order.
    patterns: Vec<usize>,
}

impl Registry {
    /// Builds a registry from schemas and bindings. Every dataschema URI names one version.
    pub fn new(entries: Vec<Entry>, bindings: Vec<Binding>) -> Registry {
        let mut by_name = Map::default();
        let mut by_uri = Map::default();
        for (i, e) in entries.iter().enumerate() {
            by_name.insert(e.name.clone(), i);
            // A discovered schema describes traffic; it is no contract to pin.
            if e.origin == Origin::Discovered {
                continue;
            }
            for v in &e.versions {
                by_uri.insert(v.urn(), v.clone());
                if let Some(uri) = &v.dataschema {
                    by_uri.entry(uri.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let mut exact: Map<String, Map<String, Vec<usize>>> = Map::default();
        let mut patterns = Vec::new();
        for (i, b) in bindings.iter().enumerate() {
            match (&b.source, &b.type_) {
                (Matcher::Exact(s), Matcher::Exact(t)) => exact
                    .entry(s.clone())
                    .or_default()
                    .entry(t.clone())
                    .or_default()
                    .push(i),
                _ => patterns.push(i),
            }
        }
        Registry {
            entries,
            by_name,
            by_uri,
            bindings,
            exact,
            patterns,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The version a `dataschema` URI names, if any.
    pub fn by_dataschema(&self, uri: &str) -> Option<&Arc<Version>> {
        self.by_uri.get(uri)
    }

    /// The version that applies to an event, if any.
    pub fn lookup(
        &self,
        bus: &str,
        source: &str,
        type_: &str,
        dataschema: Option<&str>,
    ) -> Option<&Arc<Version>> {
        let pinned = dataschema.and_then(|uri| self.by_uri.get(uri));
        let on_bus = |i: &&usize| self.bindings[**i].bus.as_deref().is_none_or(|b| b == bus);
        let exact = self
            .exact
            .get(source)
            .and_then(|types| types.get(type_))
            .and_then(|list| list.iter().find(on_bus));
        let chosen = exact.or_else(|| {
            self.patterns.iter().filter(on_bus).find(|&&i| {
                let b = &self.bindings[i];
                b.source.matches(source) && b.type_.matches(type_)
            })
        });
        let Some(chosen) = chosen else {
            return pinned;
        };
        // A bound event's `dataschema` may pick a version of its schema, not another.
        let schema = &self.bindings[*chosen].schema;
        match pinned {
            Some(v) if &v.name == schema => Some(v),
            _ => self.entry(schema)?.versions.last(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str, schema: Value, dataschema: Option<&str>) -> Entry {
        let spec = VersionSpec {
            format: SchemaFormat::Jsonschema,
            schema,
            document: None,
            component: None,
            dataschema: dataschema.map(String::from),
        };
        Entry {
            name: name.into(),
            compatibility: Compatibility::Backward,
            origin: Origin::Config,
            versions: vec![Arc::new(
                Version::compile(name, 1, &spec, Origin::Config).unwrap(),
            )],
            discovered: None,
        }
    }

    fn bind(schema: &str, bus: Option<&str>, source: &str, ty: &str) -> Binding {
        Binding {
            schema: schema.into(),
            bus: bus.map(String::from),
            source: Matcher::parse(Some(source)),
            type_: Matcher::parse(Some(ty)),
        }
    }

    #[test]
    fn lookup_order() {
        let reg = Registry::new(
            vec![
                entry("a", json!(true), Some("https://x/a")),
                entry("b", json!(true), None),
                entry("c", json!(true), None),
            ],
            vec![
                bind("c", None, "/shop*", "*"),
                bind("b", Some("orders"), "/shop", "paid"),
                bind("a", None, "/shop", "paid"),
            ],
        );
        let name = |v: Option<&Arc<Version>>| v.map(|v| v.name.clone());
        assert_eq!(
            name(reg.lookup("orders", "/shop", "paid", None)),
            Some("b".into())
        );
        assert_eq!(
            name(reg.lookup("other", "/shop", "paid", None)),
            Some("a".into())
        );
        assert_eq!(
            name(reg.lookup("other", "/shop/eu", "x", None)),
            Some("c".into())
        );
        assert_eq!(name(reg.lookup("o", "/else", "x", None)), None);
        assert_eq!(
            name(reg.lookup("o", "/else", "x", Some("https://x/a"))),
            Some("a".into())
        );
        assert_eq!(
            name(reg.lookup("o", "/else", "x", Some("urn:sluice:schema:b:1"))),
            Some("b".into())
        );
    }

    #[test]
    fn dataschema_cannot_escape_the_bound_schema() {
        let mut discovered = entry("discovered.x", json!(true), None);
        discovered.origin = Origin::Discovered;
        let reg = Registry::new(
            vec![
                entry(
                    "strict",
                    json!({"required": ["id"]}),
                    Some("https://x/strict"),
                ),
                entry("loose", json!(true), Some("https://x/loose")),
                discovered,
            ],
            vec![bind("strict", Some("orders"), "/shop", "*")],
        );
        let name = |v: Option<&Arc<Version>>| v.map(|v| v.name.clone());
        for pin in [
            "https://x/loose",
            "urn:sluice:schema:loose:1",
            "urn:sluice:schema:discovered.x:1",
        ] {
            assert_eq!(
                name(reg.lookup("orders", "/shop", "paid", Some(pin))),
                Some("strict".into()),
                "{pin}"
            );
        }
        assert_eq!(
            name(reg.lookup("orders", "/shop", "paid", Some("https://x/strict"))),
            Some("strict".into())
        );
        // Unbound: the pin decides, but never a discovered version.
        assert_eq!(
            name(reg.lookup("other", "/shop", "paid", Some("https://x/loose"))),
            Some("loose".into())
        );
        assert_eq!(
            name(reg.lookup("other", "/x", "y", Some("urn:sluice:schema:discovered.x:1"))),
            None
        );
        assert!(reg
            .by_dataschema("urn:sluice:schema:discovered.x:1")
            .is_none());
    }

    #[test]
    fn violations_have_pointers() {
        let e = entry(
            "o",
            json!({"type": "object", "required": ["id"], "properties": {"n": {"type": "integer"}, "at": {"format": "date-time"}}}),
            None,
        );
        let v = &e.versions[0];
        let mut found = v.violations(&json!({"n": "x", "at": "yesterday"}));
        found.sort_by(|a, b| a.instance_path.cmp(&b.instance_path));
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].instance_path, "");
        assert_eq!(found[1].instance_path, "/at");
        assert_eq!(found[2].instance_path, "/n");
        assert!(v.is_valid(&json!({"id": 1, "n": 12})));
    }
}
