//! Schema validation cost per event: a realistic ~20-field order schema (nested
//! objects, an array of line items, enums, formats, bounds) against a ~1 KB event.
//!
//! cargo bench --bench schemas -- --warm-up-time 1 --measurement-time 3
//!
//! - `validate/*`: parse the data bytes once and run the compiled validator.
//! - `gate/*`: what the ingress pays per event: read `source`/`type`/`dataschema` from
//!   the encoded attributes, look the binding up, parse and validate (`enforce`), or
//!   nothing (`off`).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use sluice::config::Config;
use sluice::event::cloudevents::parse_structured;
use sluice::observability::metrics::Metrics;
use sluice::schema::gate::{Entrance, SchemaGate};
use sluice::schema::{Origin, SchemaFormat, Version, VersionSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEMA: &str = r#"{
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

fn data(valid: bool) -> String {
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

fn bench(c: &mut Criterion) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let spec = VersionSpec {
        format: SchemaFormat::Jsonschema,
        schema: schema.clone(),
        document: None,
        component: None,
        dataschema: None,
    };
    let version = Version::compile("order", 1, &spec, Origin::Config).unwrap();
    let valid = data(true);
    let invalid = data(false);

    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("valid", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
            assert!(version.is_valid(&v));
        })
    });
    // The two halves of `valid`: parsing the data, and running the validator.
    g.bench_function("parse_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(valid.as_bytes()).unwrap())
    });
    let parsed: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
    g.bench_function("validator_only", |b| {
        b.iter(|| assert!(version.is_valid(&parsed)))
    });
    g.bench_function("valid_all_errors_api", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
            assert!(version.violations(&v).is_empty());
        })
    });
    g.bench_function("invalid_7_violations", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(invalid.as_bytes()).unwrap();
            assert_eq!(version.violations(&v).len(), 7);
        })
    });
    g.finish();

    let yaml = format!(
        "buses: [{{name: strict, validation: enforce}}, {{name: open}}]\nschemas:\n  - name: order\n    bind: [{{source: /shop, type: order.paid}}]\n    versions:\n      - schema: {}\n",
        SCHEMA.replace('\n', " ")
    );
    let config = Config::parse(&yaml).unwrap();
    let (gate, _) = SchemaGate::from_config(&config, Arc::new(Metrics::new()));
    let body = Bytes::from(format!(
        r#"{{"specversion":"1.0","id":"e-1","source":"/shop","type":"order.paid","datacontenttype":"application/json","data":{valid}}}"#
    ));
    let event = parse_structured(&body).unwrap();
    let mut g = c.benchmark_group("gate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("enforce_valid", |b| {
        b.iter(|| {
            let mut e = event.clone();
            gate.check("strict", Entrance::CloudEvents, &mut e).unwrap();
            e
        })
    });
    g.bench_function("off", |b| {
        b.iter(|| {
            let mut e = event.clone();
            gate.check("open", Entrance::CloudEvents, &mut e).unwrap();
            e
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
