//! The schema registry as a user sees it: validation at every ingress under enforce,
//! warn and off (error bodies list every violation; nothing refused is appended;
//! warned events are marked), versions registered over the API with compatibility
//! checks, and discovery from live events.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ORDER_V1: &str = r#"{"type": "object", "required": ["id", "amount"], "properties": {"id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}, "currency": {"type": "string", "enum": ["EUR", "USD"]}}}"#;

fn config(extra: &str) -> String {
    format!(
        r#"
buses:
  - {{name: strict, validation: enforce}}
  - {{name: lenient, validation: warn}}
  - {{name: open}}
  - {{name: hooks}}
  - {{name: cloud, validation: enforce}}
sources:
  - {{name: hook, kind: token, bus: hooks, secret: t0k, validation: enforce}}
aws: {{auth: none, default_bus: cloud}}
alibaba: {{auth: none, default_bus: cloud, dedupe: off}}
schemas:
  - name: order
    bind:
      - {{source: /shop, type: order.created}}
      - {{bus: hooks}}
      - {{source: "com.*", type: "Order*"}}
    versions:
      - schema: {ORDER_V1}
        dataschema: https://schemas.example.com/order/1
{extra}"#
    )
}

async fn post_json(
    url: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn order(id: &str, data: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/shop","type":"order.created","datacontenttype":"application/json","data":{data}}}"#
    )
}

/// An XRANGE reply: (entry id, field/value pairs) per entry.
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

/// The attributes of every event stored on a bus, in order.
fn stored(redis: &Redis, bus: &str) -> Vec<Value> {
    let entries: Entries = redis::cmd("XRANGE")
        .arg(sluice::bus::bus_key(bus))
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let a = fields.iter().find(|(k, _)| k == "a").unwrap();
            serde_json::from_slice(&a.1).unwrap()
        })
        .collect()
}

fn paths(body: &Value) -> Vec<(Option<u64>, String)> {
    let mut v: Vec<_> = body["violations"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|v| {
            (
                v["index"].as_u64(),
                v["instance_path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudevents_enforce_warn_and_off() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let structured = "application/cloudevents+json";
    let url = |bus: &str| gw.url(&format!("/buses/{bus}/events"));
    let bad = r#"{"amount": -5, "currency": "GBP"}"#;

    // enforce: every violation listed, with its pointer, schema and version.
    let (status, body) = post_json(&url("strict"), structured, &[], order("e1", bad)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "schema_violation");
    assert_eq!(
        paths(&body),
        vec![
            (None, "".into()),
            (None, "/amount".into()),
            (None, "/currency".into())
        ],
        "{body}"
    );
    for v in body["violations"].as_array().unwrap() {
        assert_eq!(
            (
                v["schema"].as_str(),
                v["version"].as_u64(),
                v["id"].as_str()
            ),
            (Some("order"), Some(1), Some("e1"))
        );
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    assert!(
        body["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("id"),
        "{body}"
    );
    assert_eq!(redis.xlen(&sluice::bus::bus_key("strict")), 0);

    let good = r#"{"id": "o-1", "amount": 12, "currency": "EUR"}"#;
    let (status, body) = post_json(&url("strict"), structured, &[], order("e2", good)).await;
    assert_eq!(status, 202, "{body}");

    // Binary mode goes through the same gate.
    let (status, body) = post_json(
        &url("strict"),
        "application/json",
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "e3"),
            ("ce-source", "/shop"),
            ("ce-type", "order.created"),
        ],
        r#"{"id": 7, "amount": 1}"#.into(),
    )
    .await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec![(None, "/id".into())]),
        "{body}"
    );

    // A batch with one bad event is refused whole, each violation with its index.
    let batch = format!(
        "[{},{},{}]",
        order("b0", good),
        order("b1", r#"{"id": "x"}"#),
        order("b2", r#"{"id": "y", "amount": "1"}"#)
    );
    let (status, body) = post_json(
        &url("strict"),
        "application/cloudevents-batch+json",
        &[],
        batch,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        paths(&body),
        vec![(Some(1), "".into()), (Some(2), "/amount".into())],
        "{body}"
    );
    assert_eq!(
        redis.xlen(&sluice::bus::bus_key("strict")),
        1,
        "only e2 is stored"
    );

    // Events without a bound schema are not looked at.
    let other =
        r#"{"specversion":"1.0","id":"u1","source":"/else","type":"x","data":{"anything":true}}"#;
    let (status, _) = post_json(&url("strict"), structured, &[], other.into()).await;
    assert_eq!(status, 202);

    // The dataschema attribute selects a version whatever the source and type.
    let pinned = r#"{"specversion":"1.0","id":"d1","source":"/else","type":"x","dataschema":"https://schemas.example.com/order/1","data":{"id":"1"}}"#;
    let (status, body) = post_json(&url("strict"), structured, &[], pinned.into()).await;
    assert_eq!(
        (status, paths(&body)),
        (400, vec![(None, "".into())]),
        "{body}"
    );
    let pinned = r#"{"specversion":"1.0","id":"d2","source":"/else","type":"x","dataschema":"urn:sluice:schema:order:1","data":{"id":"1","amount":1}}"#;
    let (status, body) = post_json(&url("strict"), structured, &[], pinned.into()).await;
    assert_eq!(status, 202, "{body}");

    // warn: accepted and marked; a valid event loses a producer's own mark.
    let (status, _) = post_json(&url("lenient"), structured, &[], order("w1", bad)).await;
    assert_eq!(status, 202);
    let forged = order("w2", good).replacen(
        "\"id\":\"w2\"",
        "\"id\":\"w2\",\"schemaviolation\":\"true\"",
        1,
    );
    let (status, _) = post_json(&url("lenient"), structured, &[], forged).await;
    assert_eq!(status, 202);
    let lenient = stored(&redis, "lenient");
    assert_eq!(lenient[0]["schemaviolation"], "true", "{lenient:?}");
    assert_eq!(lenient[0]["id"], "w1");
    assert!(lenient[1].get("schemaviolation").is_none(), "{lenient:?}");

    // off: accepted untouched.
    let (status, _) = post_json(&url("open"), structured, &[], order("o1", bad)).await;
    assert_eq!(status, 202);
    assert!(stored(&redis, "open")[0].get("schemaviolation").is_none());

    // The mark is reserved: a producer's own is removed under off and enforce, and on
    // events no schema applies to, so a rule never sees a forged one.
    let forge = |body: String, id: &str| {
        body.replacen(
            &format!("\"id\":\"{id}\""),
            &format!("\"id\":\"{id}\",\"schemaviolation\":\"true\""),
            1,
        )
    };
    let (status, _) = post_json(&url("open"), structured, &[], forge(order("o2", bad), "o2")).await;
    assert_eq!(status, 202);
    let (status, _) = post_json(
        &url("strict"),
        structured,
        &[],
        forge(order("s9", good), "s9"),
    )
    .await;
    assert_eq!(status, 202);
    let unbound = r#"{"specversion":"1.0","id":"u1","source":"/else","type":"x","data":{}}"#;
    for bus in ["strict", "lenient"] {
        let (status, _) = post_json(&url(bus), structured, &[], forge(unbound.into(), "u1")).await;
        assert_eq!(status, 202);
    }
    for bus in ["open", "strict", "lenient"] {
        let events = stored(&redis, bus);
        let last = events.last().unwrap();
        assert!(last.get("schemaviolation").is_none(), "{bus}: {events:?}");
    }
    let strict = stored(&redis, "strict");
    assert!(
        strict.iter().all(|e| e.get("schemaviolation").is_none()),
        "{strict:?}"
    );

    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"sluice_schema_violations_total{bus="lenient",schema="order",mode="warn"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"sluice_schema_violations_total{bus="strict",schema="order",mode="enforce"} 5"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_validated_with_the_source_mode() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let url = gw.url("/webhooks/hook");
    let auth = [("authorization", "Bearer t0k")];
    let (status, body) =
        post_json(&url, "application/json", &auth, r#"{"amount": 1.5}"#.into()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        paths(&body),
        vec![(None, "".into()), (None, "/amount".into())],
        "{body}"
    );
    assert_eq!(redis.xlen(&sluice::bus::bus_key("hooks")), 0);
    let (status, body) = post_json(
        &url,
        "application/json",
        &auth,
        r#"{"id": "a", "amount": 2}"#.into(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(redis.xlen(&sluice::bus::bus_key("hooks")), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn putevents_entries_fail_alone_with_every_violation() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let entry = |detail: &str| json!({"Source": "com.shop", "DetailType": "OrderCreated", "Detail": detail});
    let body = json!({"Entries": [entry(r#"{"id": "1", "amount": 3}"#), entry(r#"{"amount": "x", "currency": "GBP"}"#)]});
    let (status, answer) = post_json(
        &gw.url("/"),
        "application/x-amz-json-1.1",
        &[("x-amz-target", "AWSEvents.PutEvents")],
        body.to_string(),
    )
    .await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(1)),
        "{answer}"
    );
    assert!(answer["Entries"][0]["EventId"].is_string());
    assert_eq!(answer["Entries"][1]["ErrorCode"], "SchemaViolation");
    let message = answer["Entries"][1]["ErrorMessage"].as_str().unwrap();
    assert!(message.contains("schema order version 1"), "{message}");
    for place in ["data: ", "data/amount: ", "data/currency: "] {
        assert!(message.contains(place), "{place} missing in {message}");
    }
    assert_eq!(redis.xlen(&sluice::bus::bus_key("cloud")), 1);

    let ali = json!([
        {"specversion": "1.0", "id": "a1", "source": "com.alibaba", "type": "OrderPaid", "data": {"id": "1", "amount": 1}},
        {"specversion": "1.0", "id": "a2", "source": "com.alibaba", "type": "OrderPaid", "data": {"id": 2, "amount": -1}},
    ]);
    let (status, answer) = post_json(
        &gw.url("/openapi/putEvents"),
        "application/cloudevents-batch+json",
        &[],
        ali.to_string(),
    )
    .await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(1)),
        "{answer}"
    );
    let failed = &answer["EntryList"][1];
    assert_eq!(
        (failed["EventId"].as_str(), failed["ErrorCode"].as_str()),
        (Some("a2"), Some("SchemaViolation")),
        "{answer}"
    );
    let message = failed["ErrorMessage"].as_str().unwrap();
    assert!(
        message.contains("data/id: ") && message.contains("data/amount: "),
        "{message}"
    );
    assert_eq!(redis.xlen(&sluice::bus::bus_key("cloud")), 2);
}

async fn api(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_registered_over_the_api_are_checked_stored_and_used_by_every_replica() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let other = Gateway::start(&redis, &config("")).await;
    let post = |body: Value| {
        api(
            reqwest::Method::POST,
            gw.url("/api/v1/schemas/order/versions"),
            Some(body),
        )
    };

    // Making `currency` required is not backward compatible: refused with the reason.
    let mut v2: Value = serde_json::from_str(ORDER_V1).unwrap();
    v2["required"] = json!(["id", "amount", "currency"]);
    let (status, body) = post(json!({"schema": v2})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "incompatible_schema");
    assert!(
        body["reasons"][0]
            .as_str()
            .unwrap()
            .contains("/properties/currency: required by the new version"),
        "{body}"
    );

    // Widening `amount` to number is: stored as version 2.
    let mut v2: Value = serde_json::from_str(ORDER_V1).unwrap();
    v2["properties"]["amount"] = json!({"type": "number", "minimum": 0});
    let (status, body) = post(json!({"schema": v2})).await;
    assert_eq!((status, &body["version"]), (201, &json!(2)), "{body}");
    let (status, body) = post(json!({"schema": v2})).await;
    assert_eq!(
        (status, &body["version"], &body["created"]),
        (200, &json!(2), &json!(false)),
        "{body}"
    );
    let (status, body) = post(json!({"schema": {"type": "nonsense"}})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_schema")),
        "{body}"
    );

    let (status, latest) = api(
        reqwest::Method::GET,
        gw.url("/api/v1/schemas/order/versions/latest"),
        None,
    )
    .await;
    assert_eq!(
        (status, &latest["version"], &latest["origin"]),
        (200, &json!(2), &json!("api")),
        "{latest}"
    );
    assert_eq!(latest["schema"], v2);
    let (status, v1) = api(
        reqwest::Method::GET,
        gw.url("/api/v1/schemas/order/versions/1"),
        None,
    )
    .await;
    assert_eq!(
        (status, &v1["origin"], &v1["dataschema"]),
        (
            200,
            &json!("config"),
            &json!("https://schemas.example.com/order/1")
        )
    );
    let (status, _) = api(
        reqwest::Method::GET,
        gw.url("/api/v1/schemas/order/versions/9"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, list) = api(reqwest::Method::GET, gw.url("/api/v1/schemas"), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["schemas"][0]["name"], "order");
    assert_eq!(list["schemas"][0]["latest"], 2);

    // Both replicas now validate against version 2 (the other one after its reload).
    let decimal = order("x1", r#"{"id": "1", "amount": 2.5}"#);
    let structured = "application/cloudevents+json";
    let (status, body) = post_json(
        &gw.url("/buses/strict/events"),
        structured,
        &[],
        decimal.clone(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let mut accepted = false;
    for _ in 0..50 {
        let (status, _) = post_json(
            &other.url("/buses/strict/events"),
            structured,
            &[],
            decimal.clone(),
        )
        .await;
        if status == 202 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the second replica never loaded version 2");

    // A new name: its own compatibility; versions are stored in Redis.
    let (status, body) = api(
        reqwest::Method::POST,
        other.url("/api/v1/schemas/invoice/versions"),
        Some(json!({"schema": {"type": "object"}, "compatibility": "forward"})),
    )
    .await;
    assert_eq!((status, &body["version"]), (201, &json!(1)), "{body}");
    let stored: i64 = redis::cmd("LLEN")
        .arg("sluice:schemas:{invoice}:versions")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(stored, 1);

    // A dataschema URI names one version only; an API version's URI selects it.
    let (status, body) = api(
        reqwest::Method::POST,
        gw.url("/api/v1/schemas/invoice/versions"),
        Some(json!({"schema": {"type": "object", "required": ["n"]}, "dataschema": "https://schemas.example.com/order/1"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_schema")),
        "{body}"
    );
    let (status, body) = api(
        reqwest::Method::POST,
        gw.url("/api/v1/schemas/invoice/versions"),
        Some(json!({"schema": {"type": "object", "required": ["n"]}, "dataschema": "https://x.example/invoice/2", "compatibility": "forward"})),
    )
    .await;
    assert_eq!((status, &body["version"]), (201, &json!(2)), "{body}");
    let invoice = r#"{"specversion":"1.0","id":"i1","source":"/else","type":"x","dataschema":"https://x.example/invoice/2","data":{}}"#;
    let (status, body) = post_json(
        &gw.url("/buses/strict/events"),
        structured,
        &[],
        invoice.into(),
    )
    .await;
    assert_eq!(
        (status, &body["violations"][0]["schema"]),
        (400, &json!("invoice")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_infers_a_schema_per_source_and_type() {
    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        "buses: [{name: orders, discovery: on, discovery_sample: 1}]\n",
    )
    .await;
    let events = [
        r#"{"id": "7f0c1a2e-3b4c-4d5e-8f60-718293a4b5c6", "at": "2026-11-23T10:00:00Z", "total": 10, "lines": [{"sku": "a", "qty": 1}], "email": "a@example.com"}"#,
        r#"{"id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3", "at": "2026-11-23T11:00:00Z", "total": 10.5, "lines": [], "note": null, "email": "b@example.org"}"#,
        r#"{"id": "1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b", "at": "2026-11-23T12:00:00Z", "total": 3, "lines": [{"sku": "b"}], "note": "gift", "email": "c@example.net"}"#,
    ];
    for (i, data) in events.iter().enumerate() {
        let body = format!(
            r#"{{"specversion":"1.0","id":"{i}","source":"shop","type":"order.created","data":{data}}}"#
        );
        let (status, _) = post_json(
            &gw.url("/buses/orders/events"),
            "application/cloudevents+json",
            &[],
            body,
        )
        .await;
        assert_eq!(status, 202);
    }
    let expected = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email"},
            "id": {"type": "string", "format": "uuid"},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}, "sku": {"type": "string"}}, "required": ["sku"]}},
            "note": {"type": ["string", "null"]},
            "total": {"type": "number"}
        },
        "required": ["at", "email", "id", "lines", "total"]
    });
    let name = sluice::schema::discovery::discovered_name("shop", "order.created");
    assert!(name.starts_with("discovered.shop.order.created-"), "{name}");
    let url = gw.url(&format!("/api/v1/schemas/{name}/versions/latest"));
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, body) = api(reqwest::Method::GET, url.clone(), None).await;
        if status == 200 && body["schema"] == expected {
            last = body;
            break;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["schema"], expected, "{last}");
    assert_eq!(last["origin"], "discovered");
    let (_, list) = api(reqwest::Method::GET, gw.url("/api/v1/schemas"), None).await;
    let found = &list["schemas"][0];
    assert_eq!(
        (found["source"].as_str(), found["type"].as_str()),
        (Some("shop"), Some("order.created")),
        "{list}"
    );

    // The offline inference gives the same schema.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let lines: Vec<String> = events
        .iter()
        .map(|d| format!(r#"{{"specversion":"1.0","id":"x","source":"shop","type":"order.created","data":{d}}}"#))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["schema", "infer", "--events"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let inferred: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inferred[0]["schema"], expected);
    assert_eq!(inferred[0]["samples"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_components_validate_and_rules_see_the_warn_mark() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let extra = format!(
        r##"  - name: payment
    bind: [{{type: payment.made}}]
    versions:
      - format: openapi
        component: Payment
        schema:
          openapi: 3.0.3
          info: {{title: t, version: "1"}}
          paths: {{}}
          components:
            schemas:
              Payment:
                type: object
                required: [id, payer]
                example: {{id: "1"}}
                properties:
                  id: {{type: string}}
                  reference: {{type: string, nullable: true}}
                  payer: {{$ref: '#/components/schemas/Party'}}
              Party:
                type: object
                required: [name]
                properties: {{name: {{type: string}}}}
rules:
  - name: broken
    bus: lenient
    pattern: {{"schemaviolation": ["true"]}}
    targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]
"##,
        rx.url("/broken")
    );
    let gw = Gateway::start(&redis, &config(&extra)).await;
    let payment = |id: &str, data: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/pay","type":"payment.made","data":{data}}}"#
        )
    };
    let structured = "application/cloudevents+json";
    let url = gw.url("/buses/strict/events");
    let (status, body) = post_json(
        &url,
        structured,
        &[],
        payment(
            "p1",
            r#"{"id": "1", "reference": null, "payer": {"name": "Ada"}}"#,
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post_json(
        &url,
        structured,
        &[],
        payment("p2", r#"{"id": "2", "reference": 7, "payer": {}}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        paths(&body),
        vec![(None, "/payer".into()), (None, "/reference".into())],
        "{body}"
    );
    assert_eq!(body["violations"][0]["schema"], "payment");

    // Under warn the event is kept, marked, and a rule on the mark delivers it.
    let lenient = gw.url("/buses/lenient/events");
    for (id, data) in [
        ("w1", r#"{"id": "3", "payer": {"name": "Bo"}}"#),
        ("w2", r#"{"id": 4, "payer": {"name": "Cy"}}"#),
    ] {
        let (status, _) = post_json(&lenient, structured, &[], payment(id, data)).await;
        assert_eq!(status, 202);
    }
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.received();
    assert_eq!(got.len(), 1, "only the invalid event matches");
    assert_eq!(got[0].header("ce-id"), Some("w2"));
    assert_eq!(got[0].header("ce-schemaviolation"), Some("true"));
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_errors_name_the_field_and_unreadable_records_do_not_block() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let post = |name: &str, body: Value| {
        api(
            reqwest::Method::POST,
            gw.url(&format!("/api/v1/schemas/{name}/versions")),
            Some(body),
        )
    };
    let cases = [
        ("bad name!", json!({"schema": true}), "name"),
        ("discovered.x", json!({"schema": true}), "name"),
        (
            "order",
            json!({"schema": true, "compatibility": "none"}),
            "compatibility",
        ),
        (
            "pinned",
            json!({"schema": true, "dataschema": "https://schemas.example.com/order/1"}),
            "dataschema",
        ),
        (
            "api",
            json!({"format": "openapi", "schema": {"openapi": "3.0.3", "components": {"schemas": {}}}, "component": "Nope"}),
            "component",
        ),
        (
            "typo",
            json!({"schema": true, "compatibilty": "none"}),
            "compatibilty",
        ),
        ("nothing", json!({}), "schema"),
    ];
    for (name, body, field) in cases {
        let (status, answer) = post(name, body).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{name}: {answer}"
        );
    }
    let mut v2: Value = serde_json::from_str(ORDER_V1).unwrap();
    v2["required"] = json!(["id", "amount", "currency"]);
    let (status, answer) = post("order", json!({"schema": v2})).await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (409, Some("schema")),
        "{answer}"
    );

    // A recursive schema is checked at once (it used to take minutes).
    let tree = json!({"type": "object", "properties": {"value": {"type": "integer"}, "left": {"$ref": "#"}, "right": {"$ref": "#"}}});
    let started = std::time::Instant::now();
    let (status, answer) = post("tree", json!({"schema": tree})).await;
    assert_eq!(status, 201, "{answer}");
    let mut described = tree.clone();
    described["description"] = json!("a binary tree");
    let (status, answer) = post("tree", json!({"schema": described})).await;
    assert_eq!(status, 201, "{answer}");
    let mut stricter = described.clone();
    stricter["required"] = json!(["value"]);
    let (status, answer) = post("tree", json!({"schema": stricter})).await;
    assert_eq!(status, 409, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // An unreadable stored record does not make every registration a conflict.
    let mut conn = redis.conn();
    let _: () = redis::cmd("SADD")
        .arg(sluice::schema::store::NAMES)
        .arg("broken")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(sluice::schema::store::versions_key("broken"))
        .arg("not json")
        .query(&mut conn)
        .unwrap();
    let (status, answer) = post("broken", json!({"schema": {"type": "object"}})).await;
    assert_eq!(status, 201, "{answer}");
}

/// Replicas flush discovery samples into one shape in Redis; concurrent flushes must not
/// overwrite each other (a plain read-merge-write loses most of them here).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_discovery_merges_lose_no_samples() {
    use sluice::schema::{discovery, infer::Shape, store};
    let redis = Redis::start();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut tasks = Vec::new();
    for replica in 0..4 {
        let mut conn = redis::aio::ConnectionManager::new(client.clone())
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut delta = Shape::default();
                delta.add(&json!({"n": i, format!("from{replica}"): true}));
                // A merge that loses every compare-and-set says so (the gateway then
                // keeps the samples for its next flush): retried here the same way.
                while !discovery::merge(&mut conn, "shop", "order.created", &delta)
                    .await
                    .unwrap()
                {}
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let name = discovery::discovered_name("shop", "order.created");
    let stored: String = redis::cmd("GET")
        .arg(store::shape_key(&name))
        .query(&mut redis.conn())
        .unwrap();
    let shape: Shape = serde_json::from_str(&stored).unwrap();
    assert_eq!(shape.samples, 100, "{stored}");
    let schema = shape.to_schema();
    for replica in 0..4 {
        assert!(
            schema["properties"].get(format!("from{replica}")).is_some(),
            "{schema}"
        );
    }
    assert_eq!(schema["required"], json!(["n"]), "{schema}");
}
