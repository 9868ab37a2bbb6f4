//! Compatibility of schema versions, in the sense of the Confluent / Apicurio
//! registries: `backward` (consumers using the new version can read data written with
//! the previous one: every instance valid under the previous version is valid under the
//! new one), `forward` (the reverse), `full` (both), each optionally `_transitive`
//! (against every earlier version, not only the previous one), and `none`.
//!
//! Both directions reduce to one question: is every instance of schema A an instance of
//! schema B? The checker answers it structurally for the common constructs (`type` and
//! type unions, `enum`/`const`, `properties`, `required`, `additionalProperties`,
//! `items`, numeric/length/count bounds, `pattern`/`format`/`multipleOf` by equality,
//! local `$ref`, `allOf`/`anyOf` in the new schema, `anyOf`/`oneOf` in the old one).
//! Anything else it does not understand makes it conservative: a keyword that
//! constrains B and is not the same in A is reported as "cannot prove compatible".
//!
//! As in Confluent's JSON Schema rules, an object that does not say
//! `additionalProperties: false` is an open content model: it accepts any value for a
//! member it does not declare. Adding a constrained optional member to it is therefore
//! forward- but not backward-compatible, and removing one is the reverse.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The compatibility a schema's versions must keep (`compatibility:`). Default backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

impl Compatibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::BackwardTransitive => "backward_transitive",
            Compatibility::Forward => "forward",
            Compatibility::ForwardTransitive => "forward_transitive",
            Compatibility::Full => "full",
            Compatibility::FullTransitive => "full_transitive",
            Compatibility::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Compatibility> {
        serde_json::from_value(Value::String(s.to_ascii_lowercase())).ok()
    }
}

/// Checks a new version against the earlier ones (oldest first) in `mode`; the error
/// lists every reason, each as `previous version N: direction: path: what changed`.
pub fn check(mode: Compatibility, earlier: &[&Value], new: &Value) -> Result<(), Vec<String>> {
    use Compatibility::*;
    let (backward, forward, transitive) = match mode {
        None => return Ok(()),
        Backward => (true, false, false),
        BackwardTransitive => (true, false, true),
        Forward => (false, true, false),
        ForwardTransitive => (false, true, true),
        Full => (true, true, false),
        FullTransitive => (true, true, true),
    };
    let against: Vec<(usize, &Value)> = if transitive {
        earlier.iter().copied().enumerate().collect()
    } else {
        earlier
            .iter()
            .copied()
            .enumerate()
            .skip(earlier.len().saturating_sub(1))
            .collect()
    };
    let mut reasons = Vec::new();
    for (i, old) in against {
        let version = i + 1;
        if backward {
            for r in subset(old, new, "the previous version", "the new version") {
                reasons.push(format!(
                    "version {version} -> new (backward: new readers, old data): {r}"
                ));
            }
        }
        if forward {
            for r in subset(new, old, "the new version", "the previous version") {
                reasons.push(format!(
                    "version {version} -> new (forward: old readers, new data): {r}"
                ));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Why some instance of `a` may not be an instance of `b` (empty: provably none).
pub fn subset(a: &Value, b: &Value, a_name: &str, b_name: &str) -> Vec<String> {
    let mut c = Checker {
        a_root: a,
        b_root: b,
        a_name,
        b_name,
        out: Vec::new(),
    };
    c.sub(a, b, "", 0);
    c.out
}

const MAX_DEPTH: usize = 32;

/// Keywords that never constrain an instance (or are handled elsewhere).
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "$anchor",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// Keywords the checker reasons about.
const UNDERSTOOD: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "anyOf",
    "allOf",
    "$ref",
];

const TYPES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

struct Checker<'a> {
    a_root: &'a Value,
    b_root: &'a Value,
    a_name: &'a str,
    b_name: &'a str,
    out: Vec<String>,
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Follows a local `$ref` (`#/$defs/X`, `#/definitions/X`, any `#/...` pointer).
fn deref<'v>(root: &'v Value, mut schema: &'v Value) -> Result<&'v Value, String> {
    for _ in 0..MAX_DEPTH {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            return Ok(schema);
        };
        let pointer = r
            .strip_prefix('#')
            .ok_or_else(|| format!("$ref {r:?} is not local"))?;
        schema = root
            .pointer(pointer)
            .ok_or_else(|| format!("$ref {r:?} points nowhere"))?;
    }
    Err("$ref chain too long".into())
}

fn constrains(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => !b,
        Value::Object(m) => m.keys().any(|k| !ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

/// The set of types a schema allows (`None`: it does not say).
fn types(m: &Map<String, Value>) -> Option<Vec<&str>> {
    match m.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn type_allowed(t: &str, allowed: &[&str]) -> bool {
    allowed.contains(&t) || (t == "integer" && allowed.contains(&"number"))
}

impl Checker<'_> {
    fn fail(&mut self, path: &str, message: String) {
        self.out.push(format!("{}: {message}", at(path)));
    }

    fn sub(&mut self, a: &Value, b: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return self.fail(
                path,
                "cannot prove compatible: schema nested too deep".into(),
            );
        }
        let a = match deref(self.a_root, a) {
            Ok(a) => a,
            Err(e) => return self.fail(path, format!("cannot prove compatible: {e}")),
        };
        let b = match deref(self.b_root, b) {
            Ok(b) => b,
            Err(e) => return self.fail(path, format!("cannot prove compatible: {e}")),
        };
        if !constrains(b) || a == &Value::Bool(false) {
            return;
        }
        if b == &Value::Bool(false) {
            return self.fail(path, format!("{} accepts nothing here", self.b_name));
        }
        let empty = Map::new();
        let am = a.as_object().unwrap_or(&empty);
        let Some(bm) = b.as_object() else {
            return self.fail(
                path,
                "cannot prove compatible: schema is not an object".into(),
            );
        };

        // A union in A: each alternative must fit B.
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = am.get(key) {
                let mut scratch = self.scratch();
                for (i, branch) in branches.iter().enumerate() {
                    scratch.sub(branch, b, &format!("{path}/{key}/{i}"), depth + 1);
                }
                if scratch.out.is_empty() {
                    return;
                }
            }
        }
        // A finite A: try every value it allows against B.
        if let Some(values) = finite(am) {
            return self.values_fit(&values, b, path);
        }

        for (key, bv) in bm {
            let key = key.as_str();
            if ANNOTATIONS.contains(&key) {
                continue;
            }
            if !UNDERSTOOD.contains(&key) {
                if am.get(key) != Some(bv) {
                    self.fail(
                        path,
                        format!("cannot prove compatible: `{key}` of {} is not understood by the checker and is not the same in {}", self.b_name, self.a_name),
                    );
                }
                continue;
            }
            match key {
                "type" => self.check_type(am, bm, path),
                "enum" | "const" => self.fail(
                    path,
                    format!(
                        "{} restricts the values to {} and {} does not",
                        self.b_name,
                        compact(bv),
                        self.a_name
                    ),
                ),
                "allOf" => {
                    for (i, branch) in bv.as_array().into_iter().flatten().enumerate() {
                        self.sub(a, branch, &format!("{path}/allOf/{i}"), depth + 1);
                    }
                }
                "anyOf" => {
                    let branches = bv.as_array().cloned().unwrap_or_default();
                    let fits = branches.iter().any(|branch| {
                        let mut scratch = self.scratch();
                        scratch.sub(a, branch, path, depth + 1);
                        scratch.out.is_empty()
                    });
                    if !fits {
                        self.fail(
                            path,
                            format!(
                                "cannot prove compatible: no alternative of anyOf in {} accepts everything {} does",
                                self.b_name, self.a_name
                            ),
                        );
                    }
                }
                "minimum" | "exclusiveMinimum" | "minLength" | "minItems" | "minProperties" => {
                    self.bound(am, key, bv, path, |a, b| a >= b)
                }
                "maximum" | "exclusiveMaximum" | "maxLength" | "maxItems" | "maxProperties" => {
                    self.bound(am, key, bv, path, |a, b| a <= b)
                }
                // Handled with `properties` below.
                "properties" | "required" | "additionalProperties" | "items" | "$ref" => {}
                _ => {}
            }
        }
        if may_be(am, "object") {
            self.check_object(am, bm, path, depth);
        }
        if may_be(am, "array") {
            if let Some(bi) = bm.get("items") {
                if bi.is_array() || am.get("items").is_some_and(Value::is_array) {
                    if am.get("items") != Some(bi) {
                        self.fail(path, "cannot prove compatible: tuple `items` differ".into());
                    }
                } else {
                    let ai = am.get("items").unwrap_or(&Value::Bool(true));
                    self.sub(ai, bi, &format!("{path}/items"), depth + 1);
                }
            }
        }
    }

    fn scratch(&self) -> Checker<'_> {
        Checker {
            a_root: self.a_root,
            b_root: self.b_root,
            a_name: self.a_name,
            b_name: self.b_name,
            out: Vec::new(),
        }
    }

    fn check_type(&mut self, am: &Map<String, Value>, bm: &Map<String, Value>, path: &str) {
        let Some(tb) = types(bm) else { return };
        let ta = types(am).unwrap_or_else(|| TYPES.to_vec());
        let missing: Vec<&str> = ta
            .iter()
            .copied()
            .filter(|t| !type_allowed(t, &tb))
            .collect();
        if !missing.is_empty() {
            let what = if types(am).is_none() {
                format!("{} allows any type", self.a_name)
            } else {
                format!("{} allows type {}", self.a_name, missing.join(", "))
            };
            self.fail(
                path,
                format!("{what}; {} allows only {}", self.b_name, tb.join(", ")),
            );
        }
    }

    fn bound(
        &mut self,
        am: &Map<String, Value>,
        key: &str,
        bv: &Value,
        path: &str,
        tighter: fn(f64, f64) -> bool,
    ) {
        let applies = match key {
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                may_be(am, "number") || may_be(am, "integer")
            }
            "minLength" | "maxLength" => may_be(am, "string"),
            "minItems" | "maxItems" => may_be(am, "array"),
            _ => may_be(am, "object"),
        };
        if !applies {
            return;
        }
        let ok = match (am.get(key).and_then(Value::as_f64), bv.as_f64()) {
            (Some(a), Some(b)) => tighter(a, b),
            _ => false,
        };
        if !ok {
            self.fail(
                path,
                format!(
                    "{} has {key} {} and {} {}",
                    self.b_name,
                    compact(bv),
                    self.a_name,
                    match am.get(key) {
                        Some(v) => format!("has the looser {}", compact(v)),
                        None => "has none".into(),
                    }
                ),
            );
        }
    }

    fn check_object(
        &mut self,
        am: &Map<String, Value>,
        bm: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        let a_required = required(am);
        for r in required(bm) {
            if !a_required.contains(&r) {
                self.fail(
                    &format!("{path}/properties/{r}"),
                    format!("required by {} but not by {}", self.b_name, self.a_name),
                );
            }
        }
        let none = Map::new();
        let a_props = am
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&none);
        let b_props = bm
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&none);
        let open = Value::Bool(true);
        // patternProperties exempt names from additionalProperties: treat A as open.
        let a_extra = if am.contains_key("patternProperties") {
            &open
        } else {
            am.get("additionalProperties").unwrap_or(&open)
        };
        let b_extra = bm.get("additionalProperties").unwrap_or(&open);
        let mut names: Vec<&String> = a_props.keys().chain(b_props.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let a_sub = a_props.get(name).unwrap_or(a_extra);
            let b_sub = b_props.get(name).unwrap_or(b_extra);
            let sub_path = format!("{path}/properties/{name}");
            if !a_props.contains_key(name) && !constrains(a_extra) && constrains(b_sub) {
                self.fail(
                    &sub_path,
                    format!(
                        "not declared by {}, whose open content model (no `additionalProperties: false`) accepts any value for it; {} constrains it",
                        self.a_name, self.b_name
                    ),
                );
                continue;
            }
            self.sub(a_sub, b_sub, &sub_path, depth + 1);
        }
        if constrains(b_extra) {
            self.sub(
                a_extra,
                b_extra,
                &format!("{path}/additionalProperties"),
                depth + 1,
            );
        }
    }

    /// A is a finite set of values: each must be valid under B.
    fn values_fit(&mut self, values: &[Value], b: &Value, path: &str) {
        // B may hold $refs into its root: compile it with the root's definitions.
        let mut schema = b.clone();
        if let (Value::Object(m), Some(root)) = (&mut schema, self.b_root.as_object()) {
            for defs in ["$defs", "definitions"] {
                if let Some(d) = root.get(defs) {
                    m.entry(defs).or_insert_with(|| d.clone());
                }
            }
        }
        let validator = match jsonschema::validator_for(&schema) {
            Ok(v) => v,
            Err(e) => {
                return self.fail(path, format!("cannot prove compatible: {e}"));
            }
        };
        for v in values {
            if !validator.is_valid(v) {
                self.fail(
                    path,
                    format!(
                        "value {} allowed by {} is refused by {}",
                        compact(v),
                        self.a_name,
                        self.b_name
                    ),
                );
            }
        }
    }
}

fn finite(m: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(c) = m.get("const") {
        return Some(vec![c.clone()]);
    }
    m.get("enum").and_then(Value::as_array).cloned()
}

fn required(m: &Map<String, Value>) -> Vec<String> {
    m.get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

fn may_be(m: &Map<String, Value>, t: &str) -> bool {
    types(m).is_none_or(|ts| ts.contains(&t) || (t == "integer" && ts.contains(&"number")))
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", s.chars().take(77).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_and_unions() {
        let old = json!({"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}});
        let new = json!({"type": "object", "properties": {"a": {"type": ["number", "null"]}}});
        assert!(subset(&old, &new, "old", "new").is_empty());
        let reasons = subset(&new, &old, "new", "old");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("/properties/a: new allows type number, null"),
            "{reasons:?}"
        );
    }

    #[test]
    fn unknown_keywords_are_conservative() {
        let old = json!({"type": "string"});
        let new = json!({"type": "string", "if": {"minLength": 2}, "then": {"maxLength": 3}});
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("cannot prove compatible: `if`")),
            "{reasons:?}"
        );
        assert!(subset(&new, &old, "new", "old").is_empty());
    }

    #[test]
    fn bounds_and_enums() {
        let old = json!({"type": "integer", "minimum": 0, "maximum": 10});
        let new = json!({"type": "integer", "minimum": 0, "maximum": 5});
        assert!(subset(&new, &old, "n", "o").is_empty());
        assert_eq!(subset(&old, &new, "o", "n").len(), 1);
        let e = json!({"enum": ["a", "b"]});
        assert!(subset(&e, &json!({"type": "string"}), "o", "n").is_empty());
        assert_eq!(
            subset(
                &json!({"enum": ["a", 1]}),
                &json!({"type": "string"}),
                "o",
                "n"
            )
            .len(),
            1
        );
    }
}
