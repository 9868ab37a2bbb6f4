//! The CloudEvents HTTP webhook spec (1.0.2): the abuse-protection handshake both ways
//! and `410 Gone`. Inbound, the ingest endpoints answer `OPTIONS` with
//! `WebHook-Allowed-Origin`; outbound, a target with `handshake:` asks first, delivers
//! only when allowed and keeps to the granted rate; a target that answers 410 is paused
//! on the gateway (visible in the API and metrics) with its events kept until resumed.

mod common;

use std::time::Duration;

use common::{post_structured, structured_event, wait_until, Gateway, Receiver, Redis};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn ingest_endpoints_answer_the_handshake() {
    let redis = Redis::start();
    let config = r#"
buses: [{name: orders}]
sources:
  - {name: hook, kind: token, bus: orders, secret: "s3cret"}
"#;
    let gw = Gateway::start(&redis, config).await;
    let client = reqwest::Client::new();
    for path in ["/buses/orders/events", "/webhooks/hook"] {
        let answer = client
            .request(reqwest::Method::OPTIONS, gw.url(path))
            .header("WebHook-Request-Origin", "eventemitter.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |n: &str| {
            answer
                .headers()
                .get(n)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(header("webhook-allowed-origin"), "eventemitter.example.com");
        assert_eq!(header("webhook-allowed-rate"), "*");
        assert_eq!(header("allow"), "POST, OPTIONS");
    }
    // A plain OPTIONS (no handshake): the methods, and no grant.
    let plain = client
        .request(reqwest::Method::OPTIONS, gw.url("/buses/orders/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("webhook-allowed-origin").is_none());
    // Other methods are still refused.
    let get = client
        .get(gw.url("/buses/orders/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

fn target_config(rx: &Receiver, extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: r
    bus: orders
    targets:
      - {{name: hook, kind: http, url: "{url}", retry: {{initial: 100ms, max_attempts: 50}}{extra}}}
"#,
        url = rx.url("/in"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_asks_first_and_keeps_to_the_granted_rate() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    // The first request the receiver gets is the OPTIONS: it allows 120 per minute.
    rx.answer_once(
        200,
        &[
            ("WebHook-Allowed-Origin", "sluice.example.com"),
            ("WebHook-Allowed-Rate", "120"),
        ],
    );
    let gw = Gateway::start(
        &redis,
        &target_config(&rx, ", handshake: {origin: sluice.example.com}"),
    )
    .await;
    for i in 0..4 {
        let event = structured_event(&format!("h-{i}"), "t", "{}");
        assert_eq!(post_structured(&gw, "orders", &event).await, 202);
    }
    assert!(
        wait_until(Duration::from_secs(15), || rx.ce_ids().len() == 4).await,
        "{}",
        gw.logs()
    );
    let attempts = rx.attempts();
    let (_, first) = &attempts[0];
    assert_eq!(first.method, "OPTIONS");
    assert_eq!(
        first.header("webhook-request-origin"),
        Some("sluice.example.com")
    );
    let options = attempts
        .iter()
        .filter(|(_, r)| r.method == "OPTIONS")
        .count();
    assert_eq!(options, 1, "asked once per receiver origin");
    // 120 per minute: one every 500 ms.
    let posts: Vec<_> = rx
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    for pair in posts.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(400),
            "deliveries {gap:?} apart"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_handshake_delivers_nothing() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    // Every answer names another origin: deliveries never start.
    rx.answer_once(
        200,
        &[("WebHook-Allowed-Origin", "someone-else.example.com")],
    );
    let gw = Gateway::start(
        &redis,
        &target_config(&rx, ", handshake: {origin: sluice.example.com}"),
    )
    .await;
    let event = structured_event("refused-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &event).await, 202);
    assert!(wait_until(Duration::from_secs(10), || !rx.attempts().is_empty()).await);
    // The attempt failed and is retried: the trace-free way to see it is the metric.
    let failed = r#"sluice_delivery_failures_total{bus="orders",rule="r",target="hook""#;
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = reqwest::get(gw.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(failed), "{metrics}");
    assert!(
        rx.attempts().iter().all(|(_, r)| r.method == "OPTIONS"),
        "no event may be sent before the receiver allows it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_pauses_the_target_until_resumed_and_loses_nothing() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(410);
    let gw = Gateway::start(&redis, &target_config(&rx, "")).await;
    let event = structured_event("gone-0", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &event).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.attempts().len() == 1).await);

    // Paused: the API and the metrics say so, and later events are not sent.
    let targets = |gw: &Gateway| {
        let url = gw.url("/api/v1/targets");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = targets(&gw).await;
        if !listed["items"][0]["paused"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed["items"][0]["paused"]["reason"], "gone", "{listed}");
    assert_eq!(listed["items"][0]["paused"]["event"], "gone-0");
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"sluice_target_gone{bus="orders",rule="r",target="hook"} 1"#),
        "{metrics}"
    );
    for i in 1..4 {
        let event = structured_event(&format!("gone-{i}"), "t", "{}");
        assert_eq!(post_structured(&gw, "orders", &event).await, 202);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.attempts().len(), 1, "a paused target gets nothing");

    // The receiver is back; an operator resumes the target: every event arrives.
    rx.answer_with(200);
    let resumed: Value = reqwest::Client::new()
        .post(gw.url("/api/v1/targets/orders/r/hook/resume"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["resumed"], true);
    assert!(
        wait_until(Duration::from_secs(15), || rx.ce_ids().len() == 4).await,
        "{:?}\n{}",
        rx.ce_ids(),
        gw.logs()
    );
    let mut ids = rx.ce_ids();
    ids.sort();
    assert_eq!(ids, ["gone-0", "gone-1", "gone-2", "gone-3"]);
    let listed = targets(&gw).await;
    assert!(listed["items"][0]["paused"].is_null());
    // Resuming a target that is not paused says so.
    let again: Value = reqwest::Client::new()
        .post(gw.url("/api/v1/targets/orders/r/hook/resume"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["resumed"], false);
}
