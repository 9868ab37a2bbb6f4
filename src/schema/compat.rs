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
use std::collections::{HashMap, HashSet};

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
        steps: 0,
        exhausted: false,
        stack: Vec::new(),
        lowest_assumed: usize::MAX,
        known: HashMap::new(),
    };
    c.sub(a, b, "", 0);
    if c.exhausted {
        c.out.push(format!(
            "/: cannot prove compatible: schema too complex (more than {MAX_STEPS} comparisons)"
        ));
    }
    c.out
}

const MAX_DEPTH: usize = 32;
/// Comparisons one check may make before it gives up (recursive or heavily shared
/// schemas otherwise cost exponential time).
const MAX_STEPS: usize = 20_000;

static OPEN: Value = Value::Bool(true);

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

/// A pair of schema nodes (by address: both roots are borrowed for the whole check).
type Pair = (usize, usize);

struct Checker<'a> {
    a_root: &'a Value,
    b_root: &'a Value,
    a_name: &'a str,
    b_name: &'a str,
    out: Vec<String>,
    steps: usize,
    exhausted: bool,
    /// Pairs being compared: met again (through a `$ref` cycle) they are assumed
    /// to hold, the coinductive reading of a recursive schema.
    stack: Vec<Pair>,
    /// The lowest `stack` index assumed since the current pair began.
    lowest_assumed: usize,
    /// Finished pairs: `None` holds, `Some(path)` failed first at `path`.
    known: HashMap<Pair, Option<String>>,
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// One step of a local `$ref` (`#/$defs/X`, `#/definitions/X`, any `#/...` pointer).
fn follow<'v>(root: &'v Value, r: &str) -> Result<&'v Value, String> {
    let pointer = r
        .strip_prefix('#')
        .ok_or_else(|| format!("$ref {r:?} is not local"))?;
    root.pointer(pointer)
        .ok_or_else(|| format!("$ref {r:?} points nowhere"))
}

fn ref_of(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str)
}

/// Whether keywords other than `$ref` and annotations sit next to a `$ref` (they apply
/// too in 2020-12).
fn has_siblings(schema: &Value) -> bool {
    schema.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
    })
}

/// Follows `$ref`s to the schema they name. For the old side (whose instances are
/// checked) siblings of a `$ref` may be dropped: that only widens it (conservative).
fn deref<'v>(root: &'v Value, mut schema: &'v Value) -> Result<&'v Value, String> {
    for _ in 0..MAX_DEPTH {
        let Some(r) = ref_of(schema) else {
            return Ok(schema);
        };
        schema = follow(root, r)?;
    }
    Err("$ref chain too long".into())
}

/// Whether `a` and `b` mean the same: equal, and every `$ref` they hold (transitively)
/// names an equal definition in both roots.
fn same(a_root: &Value, b_root: &Value, a: &Value, b: &Value) -> bool {
    if a != b {
        return false;
    }
    let mut seen = HashSet::new();
    let mut pending = Vec::new();
    collect_refs(b, &mut pending);
    while let Some(r) = pending.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        match (follow(a_root, &r), follow(b_root, &r)) {
            (Ok(x), Ok(y)) if x == y => collect_refs(y, &mut pending),
            _ => return false,
        }
    }
    true
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(xs) => xs.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
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
        if self.exhausted {
            return;
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.exhausted = true;
            return self.fail(path, "cannot prove compatible: schema too complex".into());
        }
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
        // The new side: a `$ref` with siblings means its target and the siblings both.
        let mut b = b;
        for _ in 0..=MAX_DEPTH {
            let Some(r) = ref_of(b) else { break };
            let target = match follow(self.b_root, r) {
                Ok(t) => t,
                Err(e) => return self.fail(path, format!("cannot prove compatible: {e}")),
            };
            if has_siblings(b) {
                self.sub(a, target, path, depth + 1);
                break;
            }
            b = target;
        }
        if ref_of(b).is_some() && !has_siblings(b) {
            return self.fail(path, "cannot prove compatible: $ref chain too long".into());
        }

        let key = (a as *const Value as usize, b as *const Value as usize);
        if let Some(i) = self.stack.iter().position(|p| *p == key) {
            // Met again through a cycle: assumed to hold (it fails where it began if not).
            self.lowest_assumed = self.lowest_assumed.min(i);
            return;
        }
        if let Some(known) = self.known.get(&key) {
            if let Some(first) = known.clone() {
                self.fail(
                    path,
                    format!(
                        "{} refuses what {} accepts here (the same schemas as at {})",
                        self.b_name,
                        self.a_name,
                        at(&first)
                    ),
                );
            }
            return;
        }
        let index = self.stack.len();
        self.stack.push(key);
        let outer = std::mem::replace(&mut self.lowest_assumed, usize::MAX);
        let before = self.out.len();
        self.compare(a, b, path, depth);
        self.stack.pop();
        let assumed = self.lowest_assumed;
        // Assumptions about this pair are settled by its own outcome; older ones are not.
        self.lowest_assumed = outer.min(if assumed >= index {
            usize::MAX
        } else {
            assumed
        });
        if self.exhausted {
            return;
        }
        if self.out.len() > before {
            // Assumptions only ever make a comparison pass: a failure is a failure.
            self.known.insert(key, Some(path.to_string()));
        } else if assumed >= index {
            self.known.insert(key, None);
        }
    }

    /// Runs `f` aside: whether it found no reason (its reasons are dropped).
    fn trial(&mut self, f: impl FnOnce(&mut Self)) -> bool {
        let saved = std::mem::take(&mut self.out);
        f(self);
        let ok = self.out.is_empty();
        self.out = saved;
        ok
    }

    fn compare(&mut self, a: &Value, b: &Value, path: &str, depth: usize) {
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
                let fits = self.trial(|c| {
                    for (i, branch) in branches.iter().enumerate() {
                        c.sub(branch, b, &format!("{path}/{key}/{i}"), depth + 1);
                    }
                });
                if fits {
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
                if !am
                    .get(key)
                    .is_some_and(|av| same(self.a_root, self.b_root, av, bv))
                {
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
                    let branches = bv.as_array().map(Vec::as_slice).unwrap_or_default();
                    let fits = branches
                        .iter()
                        .any(|branch| self.trial(|c| c.sub(a, branch, path, depth + 1)));
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
                // Old-only tuple keywords: old `items` covers only the tail, so it says
                // nothing about the first elements.
                for key in ["prefixItems", "additionalItems"] {
                    if let Some(av) = am.get(key) {
                        if !bm
                            .get(key)
                            .is_some_and(|bv| same(self.a_root, self.b_root, av, bv))
                        {
                            self.fail(
                                path,
                                format!(
                                    "cannot prove compatible: `{key}` of {} is not the same in {}",
                                    self.a_name, self.b_name
                                ),
                            );
                        }
                    }
                }
                if bi.is_array() || am.get("items").is_some_and(Value::is_array) {
                    if !am
                        .get("items")
                        .is_some_and(|ai| same(self.a_root, self.b_root, ai, bi))
                    {
                        self.fail(path, "cannot prove compatible: tuple `items` differ".into());
                    }
                } else {
                    let ai = am.get("items").unwrap_or(&OPEN);
                    self.sub(ai, bi, &format!("{path}/items"), depth + 1);
                }
            }
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
        // patternProperties exempt names from additionalProperties: treat A as open.
        let a_extra = if am.contains_key("patternProperties") {
            &OPEN
        } else {
            am.get("additionalProperties").unwrap_or(&OPEN)
        };
        let b_extra = bm.get("additionalProperties").unwrap_or(&OPEN);
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
        // B may hold $refs into its root: compile it with the root's definitions (a
        // `$ref` to anything else would resolve against the copy: not provable).
        let is_root = std::ptr::eq(b, self.b_root);
        let mut refs = Vec::new();
        collect_refs(b, &mut refs);
        if !is_root
            && refs
                .iter()
                .any(|r| !r.starts_with("#/$defs/") && !r.starts_with("#/definitions/"))
        {
            return self.fail(
                path,
                "cannot prove compatible: a $ref that is not into $defs".into(),
            );
        }
        let mut schema = b.clone();
        if let (Value::Object(m), Some(root)) = (&mut schema, self.b_root.as_object()) {
            for defs in ["$schema", "$defs", "definitions"] {
                if let Some(d) = root.get(defs) {
                    m.entry(defs).or_insert_with(|| d.clone());
                }
            }
        }
        // The same options as validation at ingest (`format` asserted).
        let validator = match super::compile(&schema) {
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

    fn tree(extra: Value) -> Value {
        let mut s = json!({"type": "object", "properties": {
            "value": {"type": "integer"},
            "left": {"$ref": "#"},
            "right": {"$ref": "#"}
        }});
        if let (Value::Object(m), Value::Object(x)) = (&mut s, extra) {
            m.extend(x);
        }
        s
    }

    #[test]
    fn recursive_schemas_are_checked_quickly() {
        let started = std::time::Instant::now();
        let old = tree(json!({}));
        assert!(subset(&old, &old.clone(), "old", "new").is_empty());
        // A change deep inside the recursion is still seen.
        let new = tree(json!({"required": ["value"]}));
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons.iter().any(|r| r.contains("required by new")),
            "{reasons:?}"
        );
        assert!(subset(&new, &old, "new", "old").is_empty(), "forward holds");
        // Mutually recursive definitions, each used twice.
        let defs = json!({"$defs": {
            "a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/b"}, "y": {"$ref": "#/$defs/b"}}},
            "b": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}, "y": {"$ref": "#/$defs/a"}}}
        }, "$ref": "#/$defs/a"});
        assert!(check(Compatibility::Full, &[&defs], &defs.clone()).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn too_much_work_is_refused() {
        let props: Map<String, Value> = (0..MAX_STEPS + 10)
            .map(|i| (format!("p{i}"), json!({"type": "integer"})))
            .collect();
        let s = json!({"type": "object", "properties": props});
        let reasons = subset(&s, &s.clone(), "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("cannot prove compatible: schema too complex")),
            "{reasons:?}"
        );
    }

    #[test]
    fn siblings_of_a_ref_in_the_new_version_apply() {
        let old = json!({"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}});
        let new = json!({"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n", "minimum": 0}}});
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("/properties/a: new has minimum 0")),
            "{reasons:?}"
        );
        assert!(subset(&new, &old, "new", "old").is_empty());
    }

    #[test]
    fn equal_keywords_with_refs_need_equal_definitions() {
        let pay = |card_required: Value| {
            json!({"$defs": {
                "Card": {"type": "object", "required": card_required, "properties": {"number": {"type": "string"}}},
                "Bank": {"type": "object", "required": ["iban"]}
            }, "oneOf": [{"$ref": "#/$defs/Card"}, {"$ref": "#/$defs/Bank"}]})
        };
        let old = pay(json!(["number"]));
        let new = pay(json!(["number", "cvc"]));
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("cannot prove compatible: `oneOf`")),
            "{reasons:?}"
        );
        assert!(subset(&old, &old.clone(), "old", "new").is_empty());
    }

    #[test]
    fn finite_values_are_checked_with_formats() {
        let old = json!({"enum": ["yesterday"]});
        let new = json!({"type": "string", "format": "date-time"});
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("value \"yesterday\" allowed by old is refused by new")),
            "{reasons:?}"
        );
        let old = json!({"enum": ["2024-01-01T00:00:00Z"]});
        assert!(subset(&old, &new, "old", "new").is_empty());
    }

    #[test]
    fn old_tuple_keywords_make_items_unprovable() {
        let old = json!({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "integer"}});
        let new = json!({"type": "array", "items": {"type": "integer"}});
        let reasons = subset(&old, &new, "old", "new");
        assert!(
            reasons
                .iter()
                .any(|r| r.contains("cannot prove compatible: `prefixItems`")),
            "{reasons:?}"
        );
        let old = json!({"type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "integer"}});
        assert!(!subset(&old, &new, "old", "new").is_empty());
        assert!(subset(&new, &new.clone(), "old", "new").is_empty());
    }
}
