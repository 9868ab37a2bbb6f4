//! Conformance with the reference binding: the CloudEvents SDK for Rust
//! (`cloudevents-sdk` 0.9) builds and sends the events (its reqwest binding: binary and
//! structured mode, batch as the array it serialises), and a receiver built on its
//! actix-web binding decodes what Sluice's `cloudevents` targets deliver, in binary and in
//! structured mode. Attributes, extensions and data bytes must come back as they were
//! sent, including the edge cases (names, `time` precision, `datacontenttype` with
//! parameters, binary data). Where the SDK departs from the CloudEvents 1.0.2 spec, a
//! test pins what happens and docs/architecture.md says who follows the spec.
//!
//! The function half: `functions/ce-inspect` takes its event as `cloudevents::Event`
//! (`LambdaEvent<cloudevents::Event>`) and reports what the SDK read, for every ingest
//! mode and data kind.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use cloudevents::binding::reqwest::{RequestBuilderExt, RequestSerializer};
use cloudevents::event::ExtensionValue;
use cloudevents::message::StructuredDeserializer;
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use common::*;
use serde_json::{json, Value};

/// The two delivery modes of the `cloudevents` target, and the paths they post to.
const DELIVERIES: [&str; 2] = ["binary", "structured"];

/// One request the SDK receiver decoded (or could not).
#[derive(Debug, Clone)]
struct Decoded {
    /// `binary` or `structured`: the target that sent it.
    mode: String,
    content_type: Option<String>,
    event: Result<Event, String>,
}

/// A receiver whose only decoder is the SDK's actix-web binding (the `Event` extractor).
/// It answers 200 even when the SDK cannot decode a request, so a failure is recorded
/// once instead of being retried.
struct SdkReceiver {
    port: u16,
    got: Arc<Mutex<Vec<Decoded>>>,
}

impl SdkReceiver {
    async fn start() -> SdkReceiver {
        let got: Arc<Mutex<Vec<Decoded>>> = Arc::default();
        let port = free_port();
        let state = web::Data::new(got.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/{mode}", web::post().to(decode))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .unwrap()
        .run();
        tokio::spawn(server);
        SdkReceiver { port, got }
    }

    fn url(&self, mode: &str) -> String {
        format!("http://127.0.0.1:{}/{mode}", self.port)
    }

    /// The decoded deliveries of event `id`, by mode, once both modes delivered it.
    async fn both(&self, id: &str) -> HashMap<String, Event> {
        let arrived = wait_until(Duration::from_secs(15), || {
            self.of(id).len() == DELIVERIES.len()
        })
        .await;
        let got = self.of(id);
        assert!(arrived, "event {id}: {got:?} of {:?}", self.all());
        got.into_iter()
            .map(|d| (d.mode.clone(), d.event.unwrap()))
            .collect()
    }

    fn of(&self, id: &str) -> Vec<Decoded> {
        self.all()
            .into_iter()
            .filter(|d| d.event.as_ref().is_ok_and(|e| e.id() == id))
            .collect()
    }

    fn all(&self) -> Vec<Decoded> {
        self.got.lock().unwrap().clone()
    }
}

async fn decode(
    req: HttpRequest,
    event: Result<Event, actix_web::Error>,
    got: web::Data<Arc<Mutex<Vec<Decoded>>>>,
) -> HttpResponse {
    got.lock().unwrap().push(Decoded {
        mode: req.match_info()["mode"].to_string(),
        content_type: req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        event: event.map_err(|e| e.to_string()),
    });
    HttpResponse::Ok().finish()
}

/// Bus `orders`, one rule delivering every event to both modes of the SDK receiver.
fn config(rx: &SdkReceiver) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
delivery: {{retry_delay: 200ms, claim_idle: 5s}}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: bin, kind: cloudevents, mode: binary, url: "{}", timeout: 2s}}
      - {{name: st, kind: cloudevents, mode: structured, url: "{}", timeout: 2s}}
"#,
        rx.url("binary"),
        rx.url("structured")
    )
}

/// How the SDK sends events to the ingress.
#[derive(Debug, Clone, Copy)]
enum Send {
    Binary,
    Structured,
    Batch,
}

/// Sends `events` with the SDK's reqwest binding; returns (status, body).
async fn send(gw: &Gateway, how: Send, events: Vec<Event>) -> (u16, Value) {
    let request = reqwest::Client::new().post(gw.url("/buses/orders/events"));
    let request = match how {
        Send::Binary => {
            assert_eq!(events.len(), 1);
            request.event(events.into_iter().next().unwrap()).unwrap()
        }
        Send::Structured => {
            assert_eq!(events.len(), 1);
            StructuredDeserializer::deserialize_structured(
                events.into_iter().next().unwrap(),
                RequestSerializer::new(request),
            )
            .unwrap()
        }
        Send::Batch => request.events(events).unwrap(),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The spec's percent-encoding of a header value (CloudEvents HTTP binding 1.0.2,
/// 3.1.3.2): space, `"`, `%` and everything outside printable ASCII.
fn spec_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b == b' ' || b == b'"' || b == b'%' || !(0x21..=0x7e).contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn data_bytes(data: Option<&Data>) -> Option<Vec<u8>> {
    data.map(|d| Vec::<u8>::try_from(d.clone()).unwrap())
}

/// Checks that `got` (decoded by the SDK from Sluice's `mode` delivery) is `sent`.
///
/// Binary mode carries every attribute as a header string: the SDK reads those strings
/// without the spec's percent-decoding, so there the check is against the spec's
/// encoded form. Extension types are not carried by binary mode (the spec's binary mode
/// has none): an event the SDK sent in binary mode, or one delivered in binary mode,
/// has string extensions.
fn assert_same(sent: &Event, sent_binary: bool, got: &Event, mode: &str) {
    let ctx = format!("{mode} delivery of {}", sent.id());
    assert_eq!(got.specversion(), sent.specversion(), "{ctx}");
    assert_eq!(got.ty(), sent.ty(), "{ctx}");
    assert_eq!(got.time(), sent.time(), "{ctx}: time, to the nanosecond");
    assert_eq!(got.dataschema(), sent.dataschema(), "{ctx}");
    assert_eq!(got.datacontenttype(), sent.datacontenttype(), "{ctx}");
    let header = |v: &str| {
        if mode == "binary" {
            spec_encode(v)
        } else {
            v.to_string()
        }
    };
    assert_eq!(got.id(), header(sent.id()), "{ctx}");
    assert_eq!(got.source().to_string(), header(sent.source()), "{ctx}");
    assert_eq!(
        got.subject(),
        sent.subject().map(header).as_deref(),
        "{ctx}"
    );
    let mut sent_ext: Vec<(String, ExtensionValue)> = sent
        .iter_extensions()
        .map(|(n, v)| {
            let v = if mode == "binary" {
                ExtensionValue::String(spec_encode(&v.to_string()))
            } else if sent_binary {
                ExtensionValue::String(v.to_string())
            } else {
                v.clone()
            };
            (n.to_string(), v)
        })
        .collect();
    let mut got_ext: Vec<(String, ExtensionValue)> = got
        .iter_extensions()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    sent_ext.sort_by(|a, b| a.0.cmp(&b.0));
    got_ext.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got_ext, sent_ext, "{ctx}: extensions");
    // The data bytes, and in structured mode the SDK's data type too.
    assert_eq!(
        data_bytes(got.data()),
        data_bytes(sent.data()),
        "{ctx}: data bytes"
    );
    if mode == "structured" {
        assert_eq!(got.data(), sent.data(), "{ctx}: data");
    }
}

/// An event with every attribute, awkward values and extensions of each type.
fn full_event(id: &str, data: Option<(&str, Data)>) -> Event {
    let mut builder = EventBuilderV10::new()
        .id(id)
        .source("/shop/eu-1")
        .ty("com.example.order.paid")
        .subject("café order #7, 100% \"paid\"")
        // Nanoseconds: more than JSON's milliseconds or a Unix timestamp's seconds.
        .time("2026-11-23T10:00:00.123456789Z")
        .extension("tenant", "acme corp")
        .extension("partitionkey", "k-42")
        .extension("urgent", true)
        .extension("attempt", 3i64)
        .extension(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
    if let Some((ct, data)) = data {
        builder = builder.data_with_schema(
            ct,
            url::Url::parse("https://schemas.example.com/order/1").unwrap(),
            data,
        );
    }
    builder.build().unwrap()
}

fn json_data() -> Data {
    Data::Json(
        json!({"order": 7, "total": 10.5, "items": [{"sku": "a-1", "qty": 2}], "note": "naïve"}),
    )
}

fn binary_data() -> Data {
    Data::Binary((0u8..=255).rev().chain([0, 0, 13, 10]).collect())
}

fn text_data() -> Data {
    Data::String("line 1\nline 2: \"quoted\" ü\t€".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_events_come_back_identical_in_every_mode() {
    let redis = Redis::start();
    let rx = SdkReceiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;

    let datas: [(&str, Option<(&str, Data)>); 6] = [
        ("json", Some(("application/json", json_data()))),
        (
            "json-params",
            Some(("application/json; charset=utf-8", json_data())),
        ),
        ("bytes", Some(("application/octet-stream", binary_data()))),
        ("png", Some(("image/png", binary_data()))),
        ("text", Some(("text/plain; charset=utf-8", text_data()))),
        ("none", None),
    ];
    let mut sent = Vec::new();
    for (kind, data) in datas {
        for how in [Send::Binary, Send::Structured] {
            let event = full_event(&format!("{kind}-{how:?}"), data.clone());
            let (status, body) = send(&gw, how, vec![event.clone()]).await;
            assert_eq!(status, 202, "{kind} {how:?}: {body}");
            assert_eq!(body, json!({"ids": [event.id()]}));
            sent.push(event);
        }
    }
    // A batch: the array the SDK serialises, one of each data kind.
    let batch: Vec<Event> = [
        ("application/json", json_data()),
        ("application/octet-stream", binary_data()),
        ("text/plain; charset=utf-8", text_data()),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, data)| full_event(&format!("batch-{i}"), Some(data)))
    .collect();
    let (status, body) = send(&gw, Send::Batch, batch.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"ids": ["batch-0", "batch-1", "batch-2"]}));
    sent.extend(batch);

    for event in &sent {
        let got = rx.both(event.id()).await;
        for mode in DELIVERIES {
            assert_same(event, event.id().ends_with("-Binary"), &got[mode], mode);
        }
    }
    // The binary delivery's Content-Type is the datacontenttype, parameters included.
    let decoded = rx.all();
    let ct = |id: &str, mode: &str| {
        decoded
            .iter()
            .find(|d| d.mode == mode && d.event.as_ref().unwrap().id() == id)
            .unwrap()
            .content_type
            .clone()
    };
    assert_eq!(
        ct("json-params-Binary", "binary").as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        ct("text-Structured", "binary").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        ct("text-Structured", "structured").as_deref(),
        Some("application/cloudevents+json; charset=utf-8")
    );
    assert_eq!(ct("none-Binary", "binary"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn time_keeps_its_precision_and_instant() {
    let redis = Redis::start();
    let rx = SdkReceiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;

    // The SDK sends `time` in UTC (binary: `+00:00`, structured: `Z`); producers that
    // are not the SDK send offsets. Sluice stores the string as sent, the SDK reads the
    // same instant from every delivery.
    for (i, time) in [
        "2026-11-23T10:00:00Z",
        "2026-11-23T10:00:00.1Z",
        "2026-11-23T10:00:00.000001Z",
        "2026-11-23T10:00:00.999999999Z",
        "2026-11-23T11:30:00.5+01:30",
    ]
    .into_iter()
    .enumerate()
    {
        for how in [Send::Binary, Send::Structured] {
            let id = format!("t{i}-{how:?}");
            let event = EventBuilderV10::new()
                .id(&id)
                .source("/clock")
                .ty("tick")
                .time(time)
                .build()
                .unwrap();
            assert_eq!(send(&gw, how, vec![event.clone()]).await.0, 202);
            let got = rx.both(&id).await;
            let want = chrono::DateTime::parse_from_rfc3339(time).unwrap();
            for mode in DELIVERIES {
                assert_eq!(got[mode].time(), event.time(), "{id} {mode}");
                assert_eq!(got[mode].time().copied().unwrap(), want, "{id} {mode}");
            }
        }
    }

    // An offset sent by a producer other than the SDK is delivered as sent; the SDK
    // turns it into the same instant in UTC.
    let body = r#"{"specversion":"1.0","id":"offset","source":"/clock","type":"tick","time":"2026-11-23T11:30:00.123456789+01:30"}"#;
    assert_eq!(post_structured(&gw, "orders", body).await, 202);
    let got = rx.both("offset").await;
    for mode in DELIVERIES {
        assert_eq!(
            got[mode].time().unwrap().to_rfc3339(),
            "2026-11-23T10:00:00.123456789+00:00"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn where_the_sdk_departs_from_the_spec() {
    let redis = Redis::start();
    let rx = SdkReceiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;
    let base = || EventBuilderV10::new().source("/s").ty("t");

    // 1. The SDK's reqwest binding does not percent-encode header values (the spec's
    //    MUST for space, `"`, `%` and non-ASCII). Sluice decodes one round, as the spec
    //    says a receiver MUST: a literal `%41` sent unencoded arrives as `A`.
    let event = base().id("pct").subject("code %41").build().unwrap();
    assert_eq!(send(&gw, Send::Binary, vec![event]).await.0, 202);
    let got = rx.both("pct").await;
    assert_eq!(got["structured"].subject(), Some("code A"));
    // Sent in structured mode the value is JSON and survives.
    let event = base().id("pct2").subject("code %41").build().unwrap();
    assert_eq!(send(&gw, Send::Structured, vec![event]).await.0, 202);
    let got = rx.both("pct2").await;
    assert_eq!(got["structured"].subject(), Some("code %41"));
    // ... and the SDK's actix binding reads Sluice's (spec-encoded) binary headers
    // without decoding them.
    assert_eq!(got["binary"].subject(), Some("code%20%2541"));

    // 2. A `+json` media type with parameters: the SDK's structured-mode decoder only
    //    treats it as JSON when the whole value ends with `+json`, so JSON data under
    //    `application/vnd.api+json; charset=utf-8` is rejected ("expected a string").
    //    The spec (JSON format 3.1) says the media type is judged without parameters;
    //    Sluice does, and delivers `data` as JSON.
    let ct = "application/vnd.api+json; charset=utf-8";
    let event = base()
        .id("vnd")
        .data(ct, json!({"data": {"type": "orders", "id": "7"}}))
        .build()
        .unwrap();
    assert_eq!(
        send(&gw, Send::Structured, vec![event.clone()]).await.0,
        202
    );
    assert!(
        wait_until(Duration::from_secs(15), || rx
            .all()
            .iter()
            .filter(|d| d.mode == "structured" && d.event.is_err())
            .count()
            == 1)
        .await,
        "{:?}",
        rx.all()
    );
    let failed = rx.all().into_iter().find(|d| d.event.is_err()).unwrap();
    assert!(
        failed
            .event
            .as_ref()
            .unwrap_err()
            .contains("expected a string"),
        "{failed:?}"
    );
    // The binary delivery of the same event decodes, with the bytes intact.
    assert!(wait_until(Duration::from_secs(15), || rx.of("vnd").len() == 1).await);
    let bin = &rx.of("vnd")[0];
    assert_eq!(bin.mode, "binary");
    assert_eq!(
        data_bytes(bin.event.as_ref().unwrap().data()),
        data_bytes(event.data())
    );

    // 3. Attribute names: the SDK's builder takes any extension name; the spec allows
    //    only lower-case ASCII letters and digits. Sluice refuses the others and names
    //    the attribute, in both modes.
    for name in ["my_ext", "my-ext"] {
        for how in [Send::Binary, Send::Structured] {
            let event = base().id("n").extension(name, "x").build().unwrap();
            let (status, body) = send(&gw, how, vec![event]).await;
            assert_eq!(status, 400, "{name} {how:?}: {body}");
            assert_eq!(body["field"], name, "{body}");
        }
    }
    //    Upper case: HTTP header names are case-insensitive, so in binary mode
    //    `ce-MyExt` is the valid name `myext`; in structured mode it is refused.
    let event = base().id("upper").extension("MyExt", "x").build().unwrap();
    let (status, body) = send(&gw, Send::Structured, vec![event.clone()]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "MyExt");
    assert_eq!(send(&gw, Send::Binary, vec![event]).await.0, 202);
    let got = rx.both("upper").await;
    assert_eq!(
        got["structured"].extension("myext"),
        Some(&ExtensionValue::String("x".into()))
    );

    // 4. Integers: the SDK's extension integer is an i64; the spec's Integer is 32-bit.
    //    Sluice refuses a larger number in structured mode (binary mode has no types:
    //    the header is a string, and stays one).
    let big = 1i64 << 40;
    let event = base().id("big").extension("count", big).build().unwrap();
    let (status, body) = send(&gw, Send::Structured, vec![event.clone()]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "count");
    assert_eq!(send(&gw, Send::Binary, vec![event]).await.0, 202);
    let got = rx.both("big").await;
    assert_eq!(
        got["structured"].extension("count"),
        Some(&ExtensionValue::String(big.to_string()))
    );
}

/// Builds `functions/ce-inspect` once (into this target dir); returns the binary.
fn ce_inspect() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["build", "--message-format=json", "-p", "ce-inspect"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(out.status.success(), "cargo build -p ce-inspect failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["target"]["name"] == "ce-inspect" && m["executable"].is_string())
            .map(|m| PathBuf::from(m["executable"].as_str().unwrap()))
            .expect("no ce-inspect binary")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_takes_the_event_as_the_sdk_type_in_every_mode() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}, {{name: reports}}]
delivery: {{claim_idle: 30s}}
functions:
  - {{name: inspect, command: {}}}
rules:
  - name: r
    bus: orders
    targets:
      - {{name: fn, kind: function, function: inspect, on_success: {{bus: reports, type: inspected}}}}
  - name: watch
    bus: reports
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
        ce_inspect().display(),
        rx.url("/reports")
    );
    let gw = Gateway::start(&redis, &config).await;

    let kinds: [(&str, &str, Data, Value); 3] = [
        (
            "json",
            "application/json",
            json_data(),
            json!({"kind": "json", "json": {"order": 7, "total": 10.5, "items": [{"sku": "a-1", "qty": 2}], "note": "naïve"}}),
        ),
        (
            "bytes",
            "application/octet-stream",
            binary_data(),
            json!({"kind": "binary", "bytes": 260, "base64": base64_of(&data_bytes(Some(&binary_data())).unwrap())}),
        ),
        (
            "text",
            "text/plain; charset=utf-8",
            text_data(),
            json!({"kind": "text", "text": "line 1\nline 2: \"quoted\" ü\t€"}),
        ),
    ];
    let mut expected = HashMap::new();
    for (kind, ct, data, report) in &kinds {
        for how in [Send::Binary, Send::Structured, Send::Batch] {
            let id = format!("{kind}-{how:?}");
            let event = full_event(&id, Some((ct, data.clone())));
            assert_eq!(send(&gw, how, vec![event]).await.0, 202);
            // In binary mode every extension is a header string; in structured and
            // batch mode extensions keep their JSON types.
            let (urgent, attempt) = match how {
                Send::Binary => (json!("true"), json!("3")),
                _ => (json!(true), json!(3)),
            };
            expected.insert(
                id.clone(),
                json!({
                    "specversion": "1.0", "id": id, "source": "/shop/eu-1",
                    "type": "com.example.order.paid",
                    "subject": "café order #7, 100% \"paid\"",
                    "time": "2026-11-23T10:00:00.123456789Z",
                    "datacontenttype": ct,
                    "dataschema": "https://schemas.example.com/order/1",
                    "extensions": {
                        "attempt": attempt, "partitionkey": "k-42", "tenant": "acme corp",
                        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                        "urgent": urgent,
                    },
                    "data": report,
                }),
            );
        }
    }
    assert!(
        wait_until(Duration::from_secs(30), || rx.count() == expected.len()).await,
        "{} of {} reports:\n{}",
        rx.count(),
        expected.len(),
        gw.logs()
    );
    for got in rx.received() {
        let report: Value = serde_json::from_slice(&got.body).unwrap();
        let id = report["id"].as_str().unwrap().to_string();
        assert_eq!(report, expected[&id], "report of {id}");
        assert_eq!(got.header("ce-causationid"), Some(id.as_str()));
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
