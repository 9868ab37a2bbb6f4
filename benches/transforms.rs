//! Transform throughput, one benchmark per form, on a ~1 KB event.
//!
//! cargo bench --bench transforms

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::cloudevents::parse_structured;
use sluice::rules::transform::{Context, Document, Transform, TransformConfig};

// The allocator the sluice binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn event_json() -> String {
    let lines: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:04}","name":"Item number {i}","qty":{q},"price":{p}.99}}"#,
                q = i + 1,
                p = 10 + i
            )
        })
        .collect();
    format!(
        r#"{{"specversion":"1.0","id":"4f6b1c2e-8a11-4c55-9d0e-2b7f3a9c1d00","source":"/shop/eu-west","type":"order.paid",
        "time":"2026-11-23T10:00:00Z","datacontenttype":"application/json","subject":"orders/o-1001",
        "data":{{"order":{{"id":"o-1001","currency":"EUR","total":231.92,"lines":[{}]}},
                "customer":{{"id":"c-77","name":"Zoë Example","email":"zoe@example.com","tier":"gold"}}}}}}"#,
        lines.join(",")
    )
}

fn bench(c: &mut Criterion) {
    let json = event_json();
    let event = parse_structured(&Bytes::from(json.clone()))
        .unwrap()
        .decode();
    let ctx = Context {
        bus: "orders",
        rule: "paid",
        ingested_ms: Some(1_795_000_000_000),
    };
    let forms = [
        ("ORIGINAL", r#"{"form":"ORIGINAL"}"#),
        ("JSONPATH", r#"{"form":"JSONPATH","value":"$.data.order"}"#),
        (
            "CONSTANT",
            r#"{"form":"CONSTANT","value":"{\"ping\":true}"}"#,
        ),
        (
            "TEMPLATE",
            r#"{"form":"TEMPLATE","value":{"name":"$.data.customer.name","total":"$.data.order.total","id":"$.data.order.id"},
               "template":"{\"text\": \"${name} paid ${total} for ${id}\", \"order\": \"${id}\"}"}"#,
        ),
        ("InputPath", r#"{"InputPath":"$.detail.customer"}"#),
        (
            "InputTransformer",
            r#"{"InputTransformer":{"InputPathsMap":{"type":"$.detail-type","id":"$.detail.order.id","lines":"$.detail.order.lines"},
               "InputTemplate":"{\"type\": <type>, \"msg\": \"order <id>\", \"lines\": <lines>, \"rule\": \"<aws.events.rule-name>\"}"}}"#,
        ),
    ];
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(1));
    for (name, config) in forms {
        let config: TransformConfig = serde_json::from_str(config).unwrap();
        let transform = Transform::compile(&config).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| transform.apply(&Document::new(std::hint::black_box(&event)), &ctx))
        });
    }
    group.finish();
    println!("event size: {} bytes", event.to_structured_json().len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
