//! Decodes or encodes one CloudEvent N times, with Sluice's own binding or with the
//! CloudEvents SDK (`cloudevents-sdk` 0.9), for counting instructions with callgrind
//! (repeatable whatever else the machine is doing):
//!
//! ```sh
//! cargo build --release --example cloudevents-instructions
//! for mode in decode-structured decode-binary encode-structured encode-binary; do
//!   for codec in sluice sdk; do for n in 0 10000; do
//!     echo "$mode $codec $n: $(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!       target/release/examples/cloudevents-instructions $mode $codec $n 2>&1 \
//!       | grep -o 'Collected : [0-9]*')"
//! done; done; done
//! ```
//!
//! Instructions per event = (count with 10000 - count with 0) / 10000. The event is the
//! load benchmark's (`benches/load/batch.lua`: 4 attributes, `datacontenttype`, JSON
//! data of ~460 bytes) plus `time`, `subject` and two extensions. Modes:
//!
//! - `decode-structured`: a structured-mode body to an event (`sluice`:
//!   `parse_structured`, what the ingress does, validation included; `sdk`:
//!   `serde_json::from_slice::<cloudevents::Event>`).
//! - `decode-binary`: `ce-*` headers plus body to an event (`sluice`: `parse_binary`;
//!   `sdk`: `cloudevents::binding::http::to_event`, the function its server bindings call).
//! - `encode-structured`: an event to a structured-mode body (`sluice`:
//!   `Event::to_structured_json`; `sdk`: `serde_json::to_vec(&event)`).
//! - `encode-binary`: an event to a binary-mode `reqwest::Request` (`sluice`:
//!   `HttpTarget::request` of a `cloudevents` target, what a delivery does, URL and
//!   percent-encoding included; `sdk`: `RequestBuilderExt::event`, which consumes its
//!   event, so a clone is counted).
//!
//! The SDK figures are lower bounds of an SDK-based Sluice: they leave out converting
//! between the SDK's `Event` and the stored form (attributes JSON + data bytes).

use bytes::Bytes;
use cloudevents::binding::reqwest::RequestBuilderExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sluice::event::cloudevents::{parse_binary, parse_structured};
use sluice::rules::transform::Context;
use sluice::targets::http::HttpTarget;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn structured_body() -> String {
    format!(
        r#"{{"specversion":"1.0","id":"e-1","source":"/bench","type":"order.paid","subject":"o-1","time":"2026-11-23T10:00:00.123456Z","tenant":"acme","attempt":1,"datacontenttype":"application/json","data":{{"order":{{"id":"o-1","amount":120.5,"currency":"EUR","note":"{}"}}}}}}"#,
        "x".repeat(360)
    )
}

fn binary_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "e-1"),
        ("ce-source", "/bench"),
        ("ce-type", "order.paid"),
        ("ce-subject", "o-1"),
        ("ce-time", "2026-11-23T10:00:00.123456Z"),
        ("ce-tenant", "acme"),
        ("ce-attempt", "1"),
        ("content-type", "application/json"),
    ]
}

fn data() -> Bytes {
    Bytes::from(format!(
        r#"{{"order":{{"id":"o-1","amount":120.5,"currency":"EUR","note":"{}"}}}}"#,
        "x".repeat(360)
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(codec), Some(Ok(n))) = (
        args.first(),
        args.get(1),
        args.get(2).map(|n| n.parse::<u64>()),
    ) else {
        eprintln!("usage: cloudevents-instructions decode-structured|decode-binary|encode-structured|encode-binary sluice|sdk N");
        std::process::exit(2);
    };
    let body = Bytes::from(structured_body());
    let headers = binary_headers();
    let mut header_map = HeaderMap::new();
    for (name, value) in &headers {
        header_map.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let data = data();
    let sluice_event = parse_structured(&body).expect("the bench event").decode();
    let sdk_event: cloudevents::Event = serde_json::from_slice(&body).expect("the bench event");
    let mut plan = sluice::plan::Plan::parse(
        "buses: [{name: b}]\nrules:\n  - name: r\n    bus: b\n    targets:\n      - {name: t, kind: cloudevents, url: \"http://127.0.0.1:9/hook\"}\n",
    )
    .expect("bench config");
    let planned = &mut plan.buses[0].targets[0];
    let Some(sluice::targets::BuiltTarget::Http(spec)) = planned.built.take() else {
        panic!("the bench target is an http target");
    };
    let target = HttpTarget::new(spec, planned.timeout, planned.concurrency).expect("bench target");
    let client = reqwest::Client::new();
    let ctx = Context::default();

    let mut bytes_out = 0usize;
    for _ in 0..n {
        bytes_out += match (mode.as_str(), codec.as_str()) {
            ("decode-structured", "sluice") => parse_structured(&body).unwrap().size(),
            ("decode-structured", "sdk") => {
                let e: cloudevents::Event = serde_json::from_slice(&body).unwrap();
                usize::from(e.data().is_some())
            }
            ("decode-binary", "sluice") => parse_binary(
                headers
                    .iter()
                    .filter(|(n, _)| *n != "content-type")
                    .map(|(n, v)| (*n, v.as_bytes())),
                Some("application/json"),
                data.clone(),
            )
            .unwrap()
            .size(),
            ("decode-binary", "sdk") => {
                let e = cloudevents::binding::http::to_event(&header_map, data.to_vec()).unwrap();
                usize::from(e.data().is_some())
            }
            ("encode-structured", "sluice") => sluice_event.to_structured_json().len(),
            ("encode-structured", "sdk") => serde_json::to_vec(&sdk_event).unwrap().len(),
            ("encode-binary", "sluice") => {
                let request = target
                    .request(&sluice_event, &ctx)
                    .unwrap()
                    .build()
                    .unwrap();
                request.headers().len()
            }
            ("encode-binary", "sdk") => {
                let request = client
                    .post("http://127.0.0.1:9/hook")
                    .event(sdk_event.clone())
                    .unwrap()
                    .build()
                    .unwrap();
                request.headers().len()
            }
            _ => {
                eprintln!("unknown mode {mode} {codec}");
                std::process::exit(2);
            }
        };
    }
    println!("{n} events, {bytes_out}");
}
