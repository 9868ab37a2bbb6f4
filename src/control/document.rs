//! The configuration a replica runs: the file given to `serve` merged with the store.
//!
//! Both are held as the configuration's JSON shape (`buses`, `sources`, `functions`,
//! `rules` as lists of resources); the merge lists the file's resources first, then the
//! store's that the file does not define. The file wins a name both define: its
//! resources are read-only through the API (409), so the store can only hold such a name
//! if it was written before the file defined it; that resource is shadowed and logged.
//! The merged document goes through the same parse and [`Plan::build`] as `sluice
//! check`, so an API write is validated exactly as the file is.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::store::{Kind, Snapshot};
use crate::config::{Config, ConfigError};
use crate::plan::Plan;

/// Where a resource of the running configuration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    File,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Api => "api",
        }
    }
}

/// The file given to `serve`, in the configuration's JSON shape.
#[derive(Debug, Clone, Default)]
pub struct FileDoc {
    /// The file's top-level mapping (`{}` without a file).
    pub top: Map<String, Value>,
    /// The file's path (schema `file:`s are relative to its directory).
    pub path: Option<PathBuf>,
}

impl FileDoc {
    /// Reads the file, checking it alone first so its errors carry their lines.
    pub fn load(path: &Path) -> Result<FileDoc, Vec<ConfigError>> {
        Plan::load(path)?;
        FileDoc::read(path)
    }

    /// Reads a file already checked.
    pub fn read(path: &Path) -> Result<FileDoc, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                line: None,
                message: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        FileDoc::parse(&text, Some(path.to_path_buf()))
    }

    /// A configuration's text as a document (YAML or JSON).
    pub fn parse(text: &str, path: Option<PathBuf>) -> Result<FileDoc, Vec<ConfigError>> {
        let value: Value = yaml_serde::from_str(text).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                line: e.location().map(|l| l.line()),
                message: e.to_string(),
            }]
        })?;
        let top = match value {
            Value::Object(top) => top,
            Value::Null => Map::new(),
            _ => {
                return Err(vec![ConfigError {
                    path: String::new(),
                    line: None,
                    message: "a configuration is a mapping".into(),
                }])
            }
        };
        Ok(FileDoc { top, path })
    }

    /// The ids of the file's resources of `kind`.
    pub fn ids(&self, kind: Kind) -> HashSet<String> {
        resources(&self.top, kind)
            .filter_map(|r| kind.id_of(r))
            .collect()
    }

    pub fn base(&self) -> Option<&Path> {
        self.path.as_deref().and_then(Path::parent)
    }
}

/// The resources of `kind` listed in a document.
pub fn resources(top: &Map<String, Value>, kind: Kind) -> impl Iterator<Item = &Value> {
    top.get(kind.section())
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The file and the store merged: the configuration document and where each resource
/// sits in it.
#[derive(Debug, Clone)]
pub struct Merged {
    pub top: Map<String, Value>,
    /// (kind, id) -> where it comes from and its index in its section.
    pub index: HashMap<(Kind, String), (Origin, usize)>,
    /// Store resources the file shadows.
    pub shadowed: Vec<(Kind, String)>,
}

impl Merged {
    pub fn new(file: &FileDoc, snapshot: &Snapshot) -> Merged {
        let mut top = file.top.clone();
        let mut index = HashMap::new();
        let mut shadowed = Vec::new();
        for kind in Kind::ALL {
            let mut list: Vec<Value> = resources(&file.top, kind).cloned().collect();
            for (i, r) in list.iter().enumerate() {
                if let Some(id) = kind.id_of(r) {
                    index.entry((kind, id)).or_insert((Origin::File, i));
                }
            }
            for (id, stored) in snapshot.of(kind) {
                if index.contains_key(&(kind, id.clone())) {
                    shadowed.push((kind, id.clone()));
                    continue;
                }
                index.insert((kind, id.clone()), (Origin::Api, list.len()));
                list.push(stored.spec.clone());
            }
            if !list.is_empty() {
                top.insert(kind.section().into(), Value::Array(list));
            }
        }
        Merged {
            top,
            index,
            shadowed,
        }
    }

    /// Puts `spec` in place of (or after) the store's resource `kind`/`id`.
    pub fn put(&mut self, kind: Kind, id: &str, spec: Value) -> usize {
        let list = self
            .top
            .entry(kind.section())
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .expect("sections are lists");
        let at = match self.index.get(&(kind, id.to_string())) {
            Some((_, at)) => {
                list[*at] = spec;
                *at
            }
            None => {
                list.push(spec);
                list.len() - 1
            }
        };
        self.index.insert((kind, id.to_string()), (Origin::Api, at));
        at
    }

    /// Removes the resource `kind`/`id` (indexes of the rest are rebuilt).
    pub fn remove(&mut self, kind: Kind, id: &str) {
        let Some((_, at)) = self.index.remove(&(kind, id.to_string())) else {
            return;
        };
        if let Some(list) = self
            .top
            .get_mut(kind.section())
            .and_then(Value::as_array_mut)
        {
            list.remove(at);
        }
        for ((k, _), (_, i)) in self.index.iter_mut() {
            if *k == kind && *i > at {
                *i -= 1;
            }
        }
    }

    /// The resource `kind`/`id` as the document holds it.
    pub fn get(&self, kind: Kind, id: &str) -> Option<&Value> {
        let (_, at) = self.index.get(&(kind, id.to_string()))?;
        self.top.get(kind.section())?.as_array()?.get(*at)
    }

    pub fn origin(&self, kind: Kind, id: &str) -> Option<Origin> {
        self.index.get(&(kind, id.to_string())).map(|(o, _)| *o)
    }

    /// The resource's place in the document: `rules[3]`.
    pub fn path_of(&self, kind: Kind, id: &str) -> Option<String> {
        let (_, at) = self.index.get(&(kind, id.to_string()))?;
        Some(format!("{}[{at}]", kind.section()))
    }

    /// Parses and compiles the document, as `sluice check` does a file.
    pub fn compile(&self, base: Option<&Path>) -> Result<Plan, Vec<ConfigError>> {
        // Through the text and the YAML parser the file goes through: the same
        // deserialisation, the same messages (JSON is YAML).
        let text = serde_json::to_string(&self.top).expect("a JSON value serialises");
        let config = Config::parse(&text).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| ConfigError { line: None, ..e })
                .collect::<Vec<_>>()
        })?;
        Plan::build(config, base)
    }
}

/// Errors of a document, with the paths inside resource `at` (`rules[3]`) made relative
/// to that resource (`targets[1].url`); others keep their full path.
pub fn relative(errors: Vec<ConfigError>, at: Option<&str>) -> Vec<ConfigError> {
    let Some(at) = at else { return errors };
    errors
        .into_iter()
        .map(|mut e| {
            if let Some(rest) = e.path.strip_prefix(at) {
                e.path = rest.strip_prefix('.').unwrap_or(rest).to_string();
            }
            e
        })
        .collect()
}

/// What a redacted secret reads as.
pub const REDACTED: &str = "***";

/// Fields whose values are secrets (`SecretRef`s of the configuration).
const SECRET_FIELDS: [&str; 7] = [
    "secret",
    "client_secret",
    "secrets",
    "ingest_token",
    "token",
    "access_key_secret",
    "security_token",
];

fn is_reference(s: &str) -> bool {
    s.starts_with("env:") || s.starts_with("file:")
}

/// Header names whose values are credentials.
fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization" || n.contains("token") || n.contains("secret") || n.contains("key")
}

/// Replaces literal secrets with [`REDACTED`]; `env:`/`file:` references stay as given.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) {
                    redact_secret(v);
                } else if k == "headers" {
                    if let Value::Object(headers) = v {
                        for (name, h) in headers.iter_mut() {
                            if is_credential_header(name) {
                                redact_secret(h);
                            }
                        }
                    }
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_secret(v: &mut Value) {
    match v {
        Value::String(s) if !is_reference(s) => *v = Value::String(REDACTED.into()),
        Value::Array(items) => items.iter_mut().for_each(redact_secret),
        Value::Object(_) => redact(v),
        _ => {}
    }
}

/// A resource read back, redacted and written again keeps its secrets: every
/// [`REDACTED`] value of `new` takes the value at the same place in `old`.
pub fn restore_redacted(new: &mut Value, old: &Value) {
    match (new, old) {
        (Value::String(s), Value::String(o)) if s == REDACTED => *s = o.clone(),
        (Value::Object(n), Value::Object(o)) => {
            for (k, v) in n.iter_mut() {
                if let Some(ov) = o.get(k) {
                    restore_redacted(v, ov);
                }
            }
        }
        (Value::Array(n), Value::Array(o)) => {
            // Lists of named items (targets) match by name, others by position.
            for (i, v) in n.iter_mut().enumerate() {
                let name = v.get("name").cloned();
                let ov = match name {
                    Some(name) => o.iter().find(|x| x.get("name") == Some(&name)),
                    None => o.get(i),
                };
                if let Some(ov) = ov {
                    restore_redacted(v, ov);
                }
            }
        }
        _ => {}
    }
}

/// Whether a redacted value is left that nothing could restore.
pub fn has_redacted(value: &Value) -> bool {
    match value {
        Value::String(s) => s == REDACTED,
        Value::Object(m) => m.values().any(has_redacted),
        Value::Array(a) => a.iter().any(has_redacted),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_are_redacted_and_references_kept() {
        let mut v = json!({
            "name": "github", "kind": "github", "bus": "b",
            "secret": "s3cret", "secrets": ["env:A", "lit"],
            "targets": [{"name": "t", "signing": {"secret": "whsec_x"},
                         "headers": {"Authorization": "Bearer abc", "x-trace": "$.id"}}]
        });
        redact(&mut v);
        assert_eq!(v["secret"], "***");
        assert_eq!(v["secrets"], json!(["env:A", "***"]));
        assert_eq!(v["targets"][0]["signing"]["secret"], "***");
        assert_eq!(v["targets"][0]["headers"]["Authorization"], "***");
        assert_eq!(v["targets"][0]["headers"]["x-trace"], "$.id");
        assert_eq!(v["name"], "github");
    }

    #[test]
    fn a_redacted_round_trip_keeps_the_secrets() {
        let old = json!({"targets": [{"name": "a", "signing": {"secret": "one"}},
                                     {"name": "b", "signing": {"secret": "two"}}]});
        let mut read = old.clone();
        redact(&mut read);
        // Reordered, as a client may.
        let mut new = json!({"targets": [read["targets"][1].clone(), read["targets"][0].clone()]});
        restore_redacted(&mut new, &old);
        assert_eq!(new["targets"][0]["signing"]["secret"], "two");
        assert_eq!(new["targets"][1]["signing"]["secret"], "one");
        assert!(!has_redacted(&new));
    }

    #[test]
    fn errors_inside_the_resource_are_relative() {
        let e = |p: &str| ConfigError {
            path: p.into(),
            line: None,
            message: "m".into(),
        };
        let out = relative(
            vec![
                e("rules[3].targets[1].url"),
                e("rules[30].bus"),
                e("buses[0]"),
            ],
            Some("rules[3]"),
        );
        let paths: Vec<_> = out.iter().map(|e| e.path.as_str()).collect();
        // "rules[30]" starts with "rules[3" but not with "rules[3]".
        assert_eq!(paths, ["targets[1].url", "rules[30].bus", "buses[0]"]);
    }
}
