//! Schema validation cost per event: a realistic ~20-field order schema (nested
//! objects, an array of line items, enums, formats, bounds) against a ~1 KB event.
//!
//! cargo bench --bench schemas -- --warm-up-time 1 --measurement-time 3
//!
//! - `validate/valid`: what ingest pays per valid event: read the data bytes as a
//!   borrowed tape (`schema::tape`) and run the validator compiled for it.
//! - `validate/value_*`: the same through a `serde_json::Value` (what invalid events, and
//!   `sluice schema validate`, go through), and its two halves.
//! - `gate/*`: what the ingress pays per event: read `source`/`type`/`dataschema` from
//!   the encoded attributes, look the binding up, parse and validate (`enforce`), or
//!   nothing (`off`).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use sluice::event::cloudevents::parse_structured;
use sluice::observability::metrics::Metrics;
use sluice::schema::gate::{Entrance, SchemaGate};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/schema_order.rs"]
mod order;

use order::{data, version, SCHEMA};

fn bench(c: &mut Criterion) {
    let version = version();
    let valid = data(true);
    let invalid = data(false);

    let mut g = c.benchmark_group("validate");
    g.throughput(Throughput::Elements(1));
    g.bench_function("valid", |b| {
        b.iter(|| assert!(version.check_json(valid.as_bytes()).is_ok()))
    });
    g.bench_function("tape_parse_only", |b| {
        b.iter(|| sluice::schema::tape::Doc::parse(valid.as_bytes()).unwrap())
    });
    g.bench_function("value_valid", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
            assert!(version.is_valid(&v));
        })
    });
    // The two halves of `value_valid`: parsing the data, and running the validator.
    g.bench_function("value_parse_only", |b| {
        b.iter(|| serde_json::from_slice::<Value>(valid.as_bytes()).unwrap())
    });
    let parsed: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
    g.bench_function("value_validator_only", |b| {
        b.iter(|| assert!(version.is_valid(&parsed)))
    });
    g.bench_function("valid_all_errors_api", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(valid.as_bytes()).unwrap();
            assert!(version.violations(&v).is_empty());
        })
    });
    g.bench_function("invalid_7_violations", |b| {
        b.iter(|| assert_eq!(version.check_json(invalid.as_bytes()).unwrap_err().len(), 7))
    });
    g.finish();

    let yaml = format!(
        "buses: [{{name: strict, validation: enforce}}, {{name: open}}]\nschemas:\n  - name: order\n    bind: [{{source: /shop, type: order.paid}}]\n    versions:\n      - schema: {}\n",
        SCHEMA.replace('\n', " ")
    );
    let plan = sluice::plan::Plan::parse(&yaml).unwrap();
    let (gate, _) = SchemaGate::from_plan(&plan, Arc::new(Metrics::new()));
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
