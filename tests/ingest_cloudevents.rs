//! CloudEvents ingest: every HTTP mode arrives at the target with equal attributes and
//! data bytes; bad requests get a JSON error naming the problem and append nothing.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn config(target_url: &str, mode: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
limits: {{max_event_bytes: 2048, max_request_bytes: 8192}}
delivery: {{retry_delay: 200ms, claim_idle: 5s}}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: rx, kind: http, url: "{target_url}", mode: {mode}, timeout: 2s}}
"#
    )
}

async fn post(
    gw: &Gateway,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .body(body.to_vec());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn binary_mode_is_delivered_with_same_headers_and_bytes() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx.url("/hook"), "binary")).await;

    // Key order, whitespace and number formats must survive byte for byte.
    let data = br#"{"z": 1.50, "a": [1e3, -0.0], "text": "caf\u00e9"}"#;
    let (status, body) = post(
        &gw,
        Some("application/json"),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "evt-1"),
            ("ce-source", "/shop/eu"),
            ("ce-type", "order.paid"),
            ("ce-subject", "caf%C3%A9 order"),
            ("ce-time", "2026-11-23T10:00:00Z"),
            ("ce-tenant", "acme"),
        ],
        data,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"ids": ["evt-1"]}));

    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let got = &rx.received()[0];
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hook");
    assert_eq!(got.body, data);
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("ce-specversion"), Some("1.0"));
    assert_eq!(got.header("ce-id"), Some("evt-1"));
    assert_eq!(got.header("ce-source"), Some("/shop/eu"));
    assert_eq!(got.header("ce-type"), Some("order.paid"));
    assert_eq!(got.header("ce-time"), Some("2026-11-23T10:00:00Z"));
    assert_eq!(got.header("ce-tenant"), Some("acme"));
    // Re-encoded per the HTTP binding: space and non-ASCII percent-encoded.
    assert_eq!(got.header("ce-subject"), Some("caf%C3%A9%20order"));
}

#[tokio::test(flavor = "multi_thread")]
async fn structured_mode_is_delivered_with_same_attributes_and_data() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx.url("/hook"), "structured")).await;

    let body = r#"{"specversion":"1.0","id":"evt-2","source":"/shop","type":"order.paid","datacontenttype":"application/json","priority":7,"vip":true,"data":{"b":2,"a":1.0}}"#;
    let (status, resp) = post(
        &gw,
        Some("application/cloudevents+json; charset=utf-8"),
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp, json!({"ids": ["evt-2"]}));

    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let got = &rx.received()[0];
    assert_eq!(
        got.header("content-type"),
        Some("application/cloudevents+json; charset=utf-8")
    );
    let sent: Value = serde_json::from_str(body).unwrap();
    let delivered: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(delivered, sent, "same attributes, extensions typed as sent");
    let text = String::from_utf8(got.body.clone()).unwrap();
    assert!(
        text.contains(r#""data":{"b":2,"a":1.0}"#),
        "data bytes unchanged: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_mode_delivers_every_event_and_binary_data_round_trips() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx.url("/hook"), "binary")).await;

    let batch = r#"[
        {"specversion":"1.0","id":"b-1","source":"/s","type":"t","data":{"n":1}},
        {"specversion":"1.0","id":"b-2","source":"/s","type":"t","datacontenttype":"text/plain","data":"hello"},
        {"specversion":"1.0","id":"b-3","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}
    ]"#;
    let (status, resp) = post(
        &gw,
        Some("application/cloudevents-batch+json"),
        &[],
        batch.as_bytes(),
    )
    .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp, json!({"ids": ["b-1", "b-2", "b-3"]}));

    assert!(wait_until(Duration::from_secs(10), || rx.count() == 3).await);
    let mut got = rx.received();
    got.sort_by_key(|r| r.header("ce-id").unwrap().to_string());
    assert_eq!(got[0].body, br#"{"n":1}"#);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[1].body, b"hello");
    assert_eq!(got[1].header("content-type"), Some("text/plain"));
    assert_eq!(got[2].body, [0u8, 1, 2, 255]);
    assert_eq!(
        got[2].header("content-type"),
        Some("application/octet-stream")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_json_errors_and_append_nothing() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx.url("/hook"), "binary")).await;
    let ce = "application/cloudevents+json";
    let good = |id: &str| structured_event(id, "t", "{}");

    // 400: each names the field.
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing id",
            r#"{"specversion":"1.0","source":"/s","type":"t"}"#.into(),
            "id",
        ),
        (
            "wrong specversion",
            r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#.into(),
            "specversion",
        ),
        (
            "bad time",
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"23/11/2026"}"#.into(),
            "time",
        ),
        (
            "bad attribute name",
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Tenant":"x"}"#.into(),
            "Tenant",
        ),
        (
            "object extension",
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{"a":1}}"#.into(),
            "ext",
        ),
        ("not json", "{not json".into(), ""),
    ];
    for (what, body, field) in cases {
        let (status, resp) = post(&gw, Some(ce), &[], body.as_bytes()).await;
        assert_eq!(status, 400, "{what}: {resp}");
        assert_eq!(resp["error"], "invalid_event", "{what}: {resp}");
        if field.is_empty() {
            assert!(resp.get("field").is_none(), "{what}: {resp}");
        } else {
            assert_eq!(resp["field"], field, "{what}: {resp}");
        }
        assert!(
            resp["message"].as_str().unwrap().len() > 5,
            "{what}: {resp}"
        );
    }

    // Binary mode: missing ce-type, invalid JSON body under a JSON content type.
    const CE_HEADERS: [(&str, &str); 4] = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ];
    let (status, resp) = post(&gw, Some("application/json"), &CE_HEADERS[..3], b"{}").await;
    assert_eq!(
        (status, resp["field"].as_str()),
        (400, Some("type")),
        "{resp}"
    );
    let (status, resp) = post(&gw, Some("application/json"), &CE_HEADERS, b"{oops").await;
    assert_eq!(
        (status, resp["field"].as_str()),
        (400, Some("data")),
        "{resp}"
    );

    // A batch with two bad entries is rejected whole, naming both.
    let batch = format!(
        r#"[{}, {{"specversion":"1.0","source":"/s","type":"t"}}, {}, {{"specversion":"1.0","id":"x","source":"/s","type":"t","time":"noon"}}]"#,
        good("ok-1"),
        good("ok-2")
    );
    let (status, resp) = post(
        &gw,
        Some("application/cloudevents-batch+json"),
        &[],
        batch.as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    assert_eq!(
        resp["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["index"].as_u64().unwrap(), e["field"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(1, "id"), (3, "time")],
        "{resp}"
    );

    // 404 unknown bus.
    let res = reqwest::Client::new()
        .post(gw.url("/buses/nope/events"))
        .header("content-type", ce)
        .body(good("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let resp: Value = res.json().await.unwrap();
    assert_eq!(
        (resp["error"].as_str(), resp["field"].as_str()),
        (Some("unknown_bus"), Some("bus"))
    );

    // 405 wrong method, with Allow.
    let res = reqwest::Client::new()
        .get(gw.url("/buses/orders/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );

    // 413: one event over max_event_bytes (2 KiB here), a request over max_request_bytes (8 KiB).
    let big = structured_event("big", "t", &format!("\"{}\"", "x".repeat(3000)));
    let (status, resp) = post(&gw, Some(ce), &[], big.as_bytes()).await;
    assert_eq!(
        (status, resp["error"].as_str()),
        (413, Some("event_too_large")),
        "{resp}"
    );
    let batch = format!(
        "[{}]",
        (0..40)
            .map(|i| structured_event(&format!("e{i}"), "t", &format!("\"{}\"", "y".repeat(300))))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, resp) = post(
        &gw,
        Some("application/cloudevents-batch+json"),
        &[],
        batch.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, resp["error"].as_str()),
        (413, Some("request_too_large")),
        "{resp}"
    );

    // 415: not a CloudEvents content type and no ce-* headers; an unknown CE format.
    let (status, resp) = post(&gw, Some("application/json"), &[], b"{}").await;
    assert_eq!(
        (status, resp["error"].as_str(), resp["field"].as_str()),
        (415, Some("unsupported_media_type"), Some("content-type")),
        "{resp}"
    );
    let (status, _) = post(&gw, Some("application/cloudevents+xml"), &[], b"<e/>").await;
    assert_eq!(status, 415);

    // Nothing above was appended, and nothing was delivered.
    assert_eq!(redis.xlen("sluice:{orders}:events"), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 0);

    // The gateway still accepts good events afterwards.
    let (status, _) = post(&gw, Some(ce), &[], good("after").as_bytes()).await;
    assert_eq!(status, 202);
    assert_eq!(redis.xlen("sluice:{orders}:events"), 1);
}
