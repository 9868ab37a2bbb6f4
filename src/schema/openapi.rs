//! OpenAPI 3.0 schema objects to JSON Schema (2020-12).
//!
//! OpenAPI 3.0 describes data with a dialect of JSON Schema draft 4/5: `nullable: true`
//! instead of a `"null"` type, boolean `exclusiveMinimum`/`exclusiveMaximum`, `$ref`s
//! into `#/components/schemas/`, and annotations (`example`, `discriminator`, `xml`,
//! `externalDocs`) that are not JSON Schema keywords. One component of the document is
//! the event's data; it becomes the root of a JSON Schema whose `$defs` hold every
//! component it references (transitively), with the `$ref`s rewritten to `#/$defs/Y`.
//! `readOnly`/`writeOnly` are kept as they are (annotations in 2020-12).
//!
//! A `discriminator` is dropped, and the `oneOf` next to it becomes an `anyOf`: OpenAPI
//! picks the branch by the discriminator value, while JSON Schema's `oneOf` demands that
//! exactly one branch match, which open branches (no `additionalProperties: false`)
//! rarely do. `nullable: true` without a `type` wraps the schema in
//! `anyOf: [{type: null}, ...]`.

use serde_json::{Map, Value};

const COMPONENTS: &str = "#/components/schemas/";

/// Converts `components/schemas/{component}` of an OpenAPI 3.0 document.
pub fn to_json_schema(document: &Value, component: &str) -> Result<Value, String> {
    let version = document
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or("not an OpenAPI document: no `openapi` version field")?;
    if !version.starts_with("3.0") {
        return Err(format!(
            "OpenAPI {version} is not supported: use 3.0.x (3.1 schemas are JSON Schema 2020-12: register them with format jsonschema)"
        ));
    }
    let components = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or("the document has no components/schemas")?;
    let root = components
        .get(component)
        .ok_or_else(|| format!("no component {component:?} under components/schemas"))?;

    let mut pending = Vec::new();
    let mut out = convert(root, &mut pending)?;
    // Every component reachable from the root, each converted once.
    let mut defs = Map::new();
    while let Some(name) = pending.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let schema = components.get(&name).ok_or_else(|| {
            format!("$ref {COMPONENTS}{name} points to no component of the document")
        })?;
        let converted = convert(schema, &mut pending)?;
        defs.insert(name, converted);
    }
    if let Value::Object(map) = &mut out {
        map.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        if !defs.is_empty() {
            map.insert("$defs".into(), Value::Object(defs));
        }
    }
    Ok(out)
}

/// Converts one schema object; names of referenced components are pushed on `refs`.
fn convert(schema: &Value, refs: &mut Vec<String>) -> Result<Value, String> {
    let Value::Object(input) = schema else {
        return Err("a schema object must be a JSON object".into());
    };
    if let Some(target) = input.get("$ref") {
        let target = target.as_str().ok_or("$ref must be a string")?;
        let name = target.strip_prefix(COMPONENTS).ok_or_else(|| {
            format!("$ref {target:?} is not supported: only {COMPONENTS}NAME references")
        })?;
        refs.push(name.to_string());
        // In OpenAPI 3.0 the siblings of a $ref are ignored.
        return Ok(serde_json::json!({ "$ref": format!("#/$defs/{name}") }));
    }
    let mut out = Map::new();
    let discriminated = input.contains_key("discriminator");
    for (key, value) in input {
        let key = match key.as_str() {
            "oneOf" if discriminated => "anyOf",
            k => k,
        };
        let converted = match key {
            // Annotations of OpenAPI that JSON Schema does not have.
            "nullable" | "example" | "discriminator" | "xml" | "externalDocs" => continue,
            "properties" => {
                let props = value.as_object().ok_or("properties must be an object")?;
                let mut map = Map::new();
                for (name, sub) in props {
                    map.insert(name.clone(), convert(sub, refs)?);
                }
                Value::Object(map)
            }
            "items" | "not" => convert(value, refs)?,
            "additionalProperties" if value.is_object() => convert(value, refs)?,
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .ok_or_else(|| format!("{key} must be an array"))?
                    .iter()
                    .map(|s| convert(s, refs))
                    .collect::<Result<_, _>>()?,
            ),
            // Draft 4: a boolean that makes `minimum`/`maximum` exclusive.
            "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => continue,
            _ => value.clone(),
        };
        out.insert(key.to_string(), converted);
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if input.get(flag) == Some(&Value::Bool(true)) {
            if let Some(limit) = out.remove(bound) {
                out.insert(flag.into(), limit);
            }
        }
    }
    if input.get("nullable") == Some(&Value::Bool(true)) {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".into(), serde_json::json!([t, "null"]));
            }
            Some(Value::Array(types)) if !types.contains(&"null".into()) => {
                types.push("null".into())
            }
            Some(_) => {}
            // No type to extend (e.g. `allOf: [{$ref}]`): null or the rest.
            None => {
                let rest = std::mem::take(&mut out);
                out.insert(
                    "anyOf".into(),
                    serde_json::json!([{"type": "null"}, Value::Object(rest)]),
                );
            }
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "paths": {},
            "components": {"schemas": {
                "Order": {
                    "type": "object",
                    "required": ["id", "customer"],
                    "discriminator": {"propertyName": "kind"},
                    "example": {"id": "1"},
                    "properties": {
                        "id": {"type": "string", "readOnly": true},
                        "note": {"type": "string", "nullable": true},
                        "nullable": {"type": "integer"},
                        "amount": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                        "customer": {"$ref": "#/components/schemas/Customer"},
                        "status": {"type": "string", "enum": ["a", "b"], "nullable": true}
                    }
                },
                "Customer": {"type": "object", "properties": {"address": {"$ref": "#/components/schemas/Address"}}},
                "Address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
                "Unused": {"type": "string"}
            }}
        })
    }

    #[test]
    fn converts_nullable_refs_and_annotations() {
        let s = to_json_schema(&doc(), "Order").unwrap();
        assert_eq!(s["properties"]["note"]["type"], json!(["string", "null"]));
        assert_eq!(s["properties"]["status"]["enum"], json!(["a", "b", null]));
        // A property named like a keyword is a property.
        assert_eq!(s["properties"]["nullable"], json!({"type": "integer"}));
        assert_eq!(
            s["properties"]["amount"],
            json!({"type": "number", "exclusiveMinimum": 0})
        );
        assert_eq!(
            s["properties"]["customer"],
            json!({"$ref": "#/$defs/Customer"})
        );
        assert!(s.get("example").is_none() && s.get("discriminator").is_none());
        assert_eq!(s["properties"]["id"]["readOnly"], json!(true));
        let defs = s["$defs"].as_object().unwrap();
        let mut names: Vec<&str> = defs.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["Address", "Customer"]);
        let v = jsonschema::validator_for(&s).unwrap();
        assert!(
            v.is_valid(&json!({"id": "1", "customer": {"address": {"city": "x"}}, "note": null}))
        );
        assert!(!v.is_valid(&json!({"id": "1", "customer": {"address": {}}})));
        assert!(!v.is_valid(&json!({"id": "1", "customer": {}, "amount": 0})));
    }

    #[test]
    fn refuses_what_it_cannot_convert() {
        assert!(to_json_schema(&doc(), "Nope")
            .unwrap_err()
            .contains("no component"));
        let mut d = doc();
        d["openapi"] = "3.1.0".into();
        assert!(to_json_schema(&d, "Order").unwrap_err().contains("3.1"));
        let mut d = doc();
        d["components"]["schemas"]["Order"]["properties"]["x"] = json!({"$ref": "other.yaml#/X"});
        assert!(to_json_schema(&d, "Order").unwrap_err().contains("only"));
    }

    #[test]
    fn a_discriminated_one_of_becomes_any_of() {
        let doc = json!({"openapi": "3.0.3", "components": {"schemas": {
            "Pet": {"oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
                    "discriminator": {"propertyName": "petType"}},
            "Cat": {"type": "object", "required": ["petType"], "properties": {"petType": {"type": "string"}, "meows": {"type": "boolean"}}},
            "Dog": {"type": "object", "required": ["petType"], "properties": {"petType": {"type": "string"}, "barks": {"type": "boolean"}}}}}});
        let s = to_json_schema(&doc, "Pet").unwrap();
        let v = crate::schema::compile(&s).unwrap();
        assert!(v.is_valid(&json!({"petType": "Dog", "barks": true})));
        assert!(!v.is_valid(&json!({"barks": true})));
        assert!(s.get("oneOf").is_none() && s.get("discriminator").is_none());
    }

    #[test]
    fn nullable_without_type_accepts_null() {
        let doc = json!({"openapi": "3.0.3", "components": {"schemas": {
            "Order": {"type": "object", "properties": {
                "customer": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Customer"}]}
            }},
            "Customer": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}});
        let s = to_json_schema(&doc, "Order").unwrap();
        let v = crate::schema::compile(&s).unwrap();
        assert!(v.is_valid(&json!({"customer": null})), "{s}");
        assert!(v.is_valid(&json!({"customer": {"name": "x"}})));
        assert!(!v.is_valid(&json!({"customer": {}})));
        assert!(!v.is_valid(&json!({"customer": 3})));
    }
}
