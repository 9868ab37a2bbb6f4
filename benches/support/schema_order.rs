//! The schema benchmark's order schema and data, shared by `benches/schemas.rs` and
//! `benches/tools/schema_instructions.rs`.

use serde_json::Value;
use sluice::schema::{Origin, SchemaFormat, Version, VersionSpec};

pub const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["id", "created", "currency", "total", "status", "customer", "lines"],
  "properties": {
    "id": {"type": "string", "pattern": "^o-[0-9]+$"},
    "created": {"type": "string", "format": "date-time"},
    "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
    "total": {"type": "number", "minimum": 0},
    "tax": {"type": "number", "minimum": 0},
    "status": {"type": "string", "enum": ["new", "paid", "shipped", "cancelled"]},
    "channel": {"type": "string", "maxLength": 32},
    "coupon": {"type": ["string", "null"]},
    "notes": {"type": ["string", "null"], "maxLength": 500},
    "gift": {"type": "boolean"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 9},
    "customer": {
      "type": "object",
      "required": ["id", "email"],
      "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "tier": {"type": "string", "enum": ["basic", "silver", "gold"]}
      }
    },
    "shipping": {
      "type": "object",
      "properties": {
        "street": {"type": "string"}, "city": {"type": "string"},
        "zip": {"type": "string"}, "country": {"type": "string", "minLength": 2, "maxLength": 2}
      }
    },
    "lines": {
      "type": "array", "minItems": 1,
      "items": {
        "type": "object",
        "required": ["sku", "qty", "price"],
        "properties": {
          "sku": {"type": "string"}, "name": {"type": "string"},
          "qty": {"type": "integer", "minimum": 1}, "price": {"type": "number", "minimum": 0}
        }
      }
    }
  }
}"#;

pub fn data(valid: bool) -> String {
    let lines: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:04}","name":"Item number {i}","qty":{q},"price":{p}.99}}"#,
                q = if valid { i + 1 } else { 0 },
                p = 10 + i
            )
        })
        .collect();
    format!(
        r#"{{"id":"o-1001","created":"2026-11-23T10:00:00Z","currency":"{cur}","total":231.92,"tax":38.65,
        "status":"paid","channel":"web","coupon":null,"notes":"leave at the door","gift":false,"priority":3,
        "customer":{{"id":"c-77","name":"Zoe Example","email":"zoe@example.com","tier":"gold"}},
        "shipping":{{"street":"1 Main St","city":"Lyon","zip":"69001","country":"FR"}},
        "lines":[{}]}}"#,
        lines.join(","),
        cur = if valid { "EUR" } else { "XXX" }
    )
}

/// The schema, compiled as the registry compiles it.
pub fn version() -> Version {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let spec = VersionSpec {
        format: SchemaFormat::Jsonschema,
        schema,
        document: None,
        component: None,
        dataschema: None,
    };
    Version::compile("order", 1, &spec, Origin::Config).unwrap()
}
