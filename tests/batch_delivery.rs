//! Batched HTTP delivery (`batch:` on a `cloudevents` target): concurrent deliveries go
//! out as one `application/cloudevents-batch+json` request; a failed batch fails each
//! of its events, which retry (or dead-letter) one by one; batches are signed like
//! single deliveries; the plan refuses what a batch cannot carry.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{post_batch, sluice, wait_until, Gateway, Receiver, Redis};
use serde_json::Value;

fn config(rx: &Receiver, extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: r
    bus: orders
    targets:
      - name: sink
        kind: cloudevents
        url: "{url}"
        concurrency: 100
        batch: {{max_events: 50, window: 50ms}}
        retry: {{initial: 100ms, max: 200ms, max_attempts: 3}}{extra}
"#,
        url = rx.url("/batch"),
    )
}

/// The events of every 2xx batch the receiver got, by id.
fn delivered_ids(rx: &Receiver) -> Vec<String> {
    rx.received()
        .iter()
        .flat_map(|r| {
            let batch: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
            batch
                .into_iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_go_out_as_batches_and_a_failed_batch_is_retried() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    // The first batch is refused with a 503: its events retry on their own.
    rx.answer_once(503, &[]);
    let gw = Gateway::start(&redis, &config(&rx, "")).await;
    assert_eq!(post_batch(&gw, "orders", "o-", 120).await, 202);

    let expected: HashSet<String> = (0..120).map(|i| format!("o-{i}")).collect();
    assert!(
        wait_until(Duration::from_secs(20), || {
            delivered_ids(&rx).into_iter().collect::<HashSet<_>>() == expected
        })
        .await,
        "{:?}\n{}",
        delivered_ids(&rx).len(),
        gw.logs()
    );
    let attempts = rx.attempts();
    assert_eq!(attempts[0].0, 503);
    let first: Vec<Value> = serde_json::from_slice(&attempts[0].1.body).unwrap();
    assert!(!first.is_empty());
    for (_, r) in &attempts {
        assert_eq!(
            r.header("content-type"),
            Some("application/cloudevents-batch+json")
        );
        let batch: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
        assert!(batch.len() <= 50, "a batch of {}", batch.len());
        // Each entry is a whole event in the JSON format.
        assert!(batch
            .iter()
            .all(|e| e["specversion"] == "1.0" && e["data"].is_object()));
    }
    // Far fewer requests than events.
    assert!(
        attempts.len() <= 20,
        "{} requests for 120 events",
        attempts.len()
    );
    // Each event of the refused batch was delivered again (not lost, not dead-lettered).
    let retried: HashSet<String> = first
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let delivered: HashSet<String> = delivered_ids(&rx).into_iter().collect();
    assert!(retried.is_subset(&delivered));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_batch_dead_letters_each_event_and_batches_are_signed() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(400);
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let gw = Gateway::start(
        &redis,
        &config(&rx, &format!("\n        signing: {{secret: {secret}}}")),
    )
    .await;
    assert_eq!(post_batch(&gw, "orders", "bad-", 30).await, 202);
    let dlq = "sluice:{orders}:dlq:r:sink";
    assert!(
        wait_until(Duration::from_secs(15), || redis.xlen(dlq) == 30).await,
        "{} in the DLQ\n{}",
        redis.xlen(dlq),
        gw.logs()
    );
    // Signed as Standard Webhooks over the batch body.
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let (_, r) = &rx.attempts()[0];
    let id = r.header("webhook-id").unwrap();
    assert!(id.starts_with("batch_"));
    let ts = r.header("webhook-timestamp").unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(r.header("webhook-signature"), Some(expected.as_str()));
}

#[test]
fn the_plan_refuses_what_a_batch_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        r#"
buses: [{name: b}]
rules:
  - name: r
    bus: b
    targets:
      - {name: a, kind: cloudevents, url: "http://127.0.0.1/x", batch: {max_events: 0}, transform: {form: JSONPATH, value: $.data}}
      - {name: o, kind: cloudevents, url: "http://127.0.0.1/x", batch: {}, ordering: {key: subject}}
      - {name: p, kind: http, url: "http://127.0.0.1/{id}", path_params: {id: $.id}, batch: {window: 1m}}
"#,
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "rules[0].targets[0].batch: a batch carries the events in the CloudEvents batch format: no transform",
        "rules[0].targets[0].batch.max_events: must be 1 to 10000",
        "rules[0].targets[1].batch: ordered targets deliver one event of a key at a time: no batch",
        "rules[0].targets[2].batch: a batch is one request for many events: it cannot take values from one event (url placeholders, path_params)",
        "rules[0].targets[2].batch.window: must be at most 10s",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in\n{stderr}");
    }
}
