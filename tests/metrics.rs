//! `GET /metrics`: counters, the latency histogram and the Redis gauges, end to end.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

const GOOD: &str = r#"bus="orders",rule="all",target="good""#;
const BAD: &str = r#"bus="orders",rule="all",target="bad""#;

fn config(good: &Receiver, bad: &Receiver) -> String {
    format!(
        r#"
buses: [{{name: orders}}, {{name: hooks}}]
sources:
  - {{name: github, kind: github, bus: hooks, secrets: [first-secret]}}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: good, kind: http, url: "{}", timeout: 2s}}
      - {{name: bad, kind: http, url: "{}", timeout: 2s}}
"#,
        good.url("/hook"),
        bad.url("/hook")
    )
}

/// Parses the exposition: every sample line is `name{labels} value` (or `name value`);
/// returns the samples by `name{labels}`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
    for line in text.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("# UNIT ")
                    || line == "# EOF",
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.ends_with('}'), "bad labels in {line:?}");
            for pair in labels[1..labels.len() - 1]
                .split("\",")
                .filter(|p| !p.is_empty())
            {
                let (key, value) = pair.split_once("=\"").expect("label is key=\"value\"");
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name in {line:?}"
                );
                assert!(!value.contains('\n'));
            }
        }
        samples.insert(series.to_string(), value);
    }
    samples
}

async fn scrape(gw: &Gateway) -> (String, HashMap<String, f64>) {
    let response = reqwest::get(gw.url("/metrics")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no sample {series} in {samples:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_ingest_delivery_dead_letters_and_rejections() {
    let redis = Redis::start();
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.answer_with(400);
    let gw = Gateway::start(&redis, &config(&good, &bad)).await;

    for i in 0..3 {
        let body = structured_event(&format!("m-{i}"), "t", r#"{"n":1}"#);
        assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    }
    let hook = reqwest::Client::new()
        .post(gw.url("/webhooks/github"))
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", "d-1")
        .header("X-Hub-Signature-256", format!("sha256={}", "0".repeat(64)))
        .body(r#"{"ref":"main"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 401);

    let dlq = "sluice:{orders}:dlq:all:bad";
    assert!(
        wait_until(Duration::from_secs(10), || good.count() == 3
            && redis.xlen(dlq) == 3)
        .await
    );
    // The counters are updated right after the Redis writes: give them a moment.
    let mut samples = HashMap::new();
    let mut text = String::new();
    for _ in 0..50 {
        (text, samples) = scrape(&gw).await;
        let done = samples.get(&format!("sluice_delivery_success_total{{{GOOD}}}")) == Some(&3.0)
            && samples.get(&format!("sluice_delivery_dead_lettered_total{{{BAD}}}")) == Some(&3.0);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let v = |series: String| value(&samples, &series);
    assert_eq!(
        v(r#"sluice_ingest_events_total{bus="orders",via="cloudevents"}"#.into()),
        3.0,
        "{text}"
    );
    assert_eq!(v(format!("sluice_delivery_attempts_total{{{GOOD}}}")), 3.0);
    assert_eq!(v(format!("sluice_delivery_success_total{{{GOOD}}}")), 3.0);
    assert_eq!(v(format!("sluice_delivery_attempts_total{{{BAD}}}")), 3.0);
    assert_eq!(
        v(format!(
            "sluice_delivery_failures_total{{{BAD},class=\"status_4xx\"}}"
        )),
        3.0
    );
    assert_eq!(
        v(format!("sluice_delivery_dead_lettered_total{{{BAD}}}")),
        3.0
    );
    assert_eq!(v(format!("sluice_dlq_depth{{{BAD}}}")), 3.0);
    assert_eq!(v(format!("sluice_dlq_depth{{{GOOD}}}")), 0.0);
    assert_eq!(v(format!("sluice_delay_depth{{{BAD}}}")), 0.0);
    assert_eq!(
        v(format!("sluice_delivery_duration_seconds_count{{{GOOD}}}")),
        3.0
    );
    assert_eq!(
        v(r#"sluice_webhook_rejected_total{source="github"}"#.into()),
        1.0
    );
    assert_eq!(
        v(r#"sluice_ingest_rejected_total{reason="unauthorized"}"#.into()),
        1.0
    );
    // Nothing was refused with 4xx other than the webhook, and no event id is a label.
    assert!(!text.contains("m-0"), "{text}");
    assert!(!samples.contains_key(r#"sluice_ingest_rejected_total{reason="invalid"}"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_without_gauges_when_redis_is_down() {
    let mut redis = Redis::start();
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&good, &bad)).await;
    let body = structured_event("x-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    let (_, samples) = scrape(&gw).await;
    assert!(samples.contains_key(&format!("sluice_dlq_depth{{{GOOD}}}")));

    redis.kill();
    let (text, samples) = scrape(&gw).await;
    assert_eq!(
        value(
            &samples,
            r#"sluice_ingest_events_total{bus="orders",via="cloudevents"}"#
        ),
        1.0
    );
    assert!(!text.contains("sluice_dlq_depth{"), "{text}");
}
