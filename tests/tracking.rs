//! The per-event trace (`trace:` on a bus; `GET /api/v1/buses/{bus}/events/{id}`, `sluice
//! trace`): a delivered event, a retried one, a dead-lettered then redriven one and an
//! unmatched one, each with its stages in order; sampling; an untraced bus; unknown ids.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn config(rx: &Receiver, trace: &str) -> String {
    format!(
        r#"
buses:
  - {{name: orders, trace: {trace}}}
  - {{name: plain}}
delivery: {{claim_idle: 5s}}
rules:
  - name: all
    bus: orders
    pattern: {{type: [{{prefix: order.}}]}}
    targets:
      - {{name: rx, kind: http, url: "{}", timeout: 2s, retry: {{initial: 200ms, max: 200ms}}}}
  - name: plain
    bus: plain
    targets:
      - {{name: rx, kind: http, url: "{}", timeout: 2s}}
"#,
        rx.url("/hook"),
        rx.url("/plain")
    )
}

async fn trace_of(gw: &Gateway, bus: &str, id: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(gw.url(&format!("/api/v1/buses/{bus}/events/{id}")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn stages(trace: &Value) -> Vec<String> {
    trace["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["stage"].as_str().unwrap() {
            "attempt" => format!("attempt:{}", r["outcome"].as_str().unwrap()),
            s => s.to_string(),
        })
        .collect()
}

/// Waits until the trace's outcome for `all/rx` is `outcome`; returns the trace.
async fn wait_for(gw: &Gateway, id: &str, outcome: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        let (status, trace) = trace_of(gw, "orders", id).await;
        if status == 200 && trace["outcomes"]["all/rx"] == outcome {
            return trace;
        }
        last = trace;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} never reached {outcome}: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_show_every_stage_in_order() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx, "{retention: 1h}")).await;
    gw.ready().await;

    // Delivered at once.
    let body = structured_event("ok-1", "order.created", r#"{"n":1}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    let trace = wait_for(&gw, "ok-1", "delivered").await;
    assert_eq!(
        stages(&trace),
        ["received", "routed", "attempt:delivered"],
        "{trace}"
    );
    assert_eq!(trace["traced"], true);
    assert_eq!(trace["event"]["id"], "ok-1");
    assert_eq!(trace["event"]["data"], json!({"n": 1}));
    let received = &trace["trace"][0];
    assert_eq!(received["via"], "cloudevents");
    assert_eq!(received["source"], "/test");
    assert_eq!(received["type"], "order.created");
    assert!(received["replica"].is_string(), "{received}");
    assert_eq!(received["entry"], trace["entry"]);
    assert_eq!(trace["trace"][1]["targets"], json!(["all/rx"]));
    let attempt = &trace["trace"][2];
    assert_eq!(attempt["status"], 200);
    assert_eq!(attempt["attempt"], 1);
    let times: Vec<u64> = trace["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Retried once, then delivered.
    rx.answer_once(503, &[]);
    let body = structured_event("retry-1", "order.created", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    let trace = wait_for(&gw, "retry-1", "delivered").await;
    assert_eq!(
        stages(&trace),
        ["received", "routed", "attempt:retry", "attempt:delivered"],
        "{trace}"
    );
    assert_eq!(trace["trace"][2]["status"], 503);
    assert_eq!(trace["trace"][2]["retry_in_ms"], 200);
    assert_eq!(trace["trace"][3]["attempt"], 2);

    // Dead-lettered (400 is not retried), then redriven and delivered.
    rx.answer_id_with("dead-1", 400);
    let body = structured_event("dead-1", "order.created", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    let trace = wait_for(&gw, "dead-1", "dead_lettered").await;
    assert_eq!(
        stages(&trace),
        ["received", "routed", "attempt:dead_lettered"]
    );
    assert_eq!(trace["trace"][2]["reason"], "status 400");
    rx.answer_id_with("dead-1", 200);
    let res = reqwest::Client::new()
        .post(gw.url("/api/v1/dlq/orders/all/rx/redrive"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let trace = wait_for(&gw, "dead-1", "delivered").await;
    assert_eq!(
        stages(&trace),
        [
            "received",
            "routed",
            "attempt:dead_lettered",
            "redriven",
            "attempt:delivered"
        ]
    );
    assert_eq!(trace["trace"][3]["target"], "all/rx");

    // Matched by no rule.
    let body = structured_event("nomatch-1", "invoice.created", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    let mut trace = Value::Null;
    for _ in 0..50 {
        let (status, t) = trace_of(&gw, "orders", "nomatch-1").await;
        if status == 200 && t["traced"] == true {
            trace = t;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stages(&trace), ["received", "unmatched"], "{trace}");
    assert_eq!(trace["outcomes"], json!({}));

    // The CLI prints the timeline.
    let (code, out, err) = sluice(&["trace", "orders", "dead-1", "--server", &gw.url("")]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("event dead-1 on bus orders"), "{out}");
    assert!(
        lines[1].contains("received") && lines[1].contains("via cloudevents"),
        "{out}"
    );
    assert!(
        lines[2].contains("routed") && lines[2].contains("all/rx"),
        "{out}"
    );
    assert!(
        lines[3].contains("status 400") && lines[3].contains("dead-lettered"),
        "{out}"
    );
    assert!(lines[4].contains("redriven"), "{out}");
    assert!(
        lines[5].contains("status 200") && lines[5].contains("delivered"),
        "{out}"
    );
    assert!(
        out.contains("all/rx") && out.trim_end().ends_with("delivered"),
        "{out}"
    );

    // Unknown ids and buses are named.
    let (status, body) = trace_of(&gw, "orders", "never-sent").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["field"], "id");
    let (status, _) = trace_of(&gw, "nobus", "ok-1").await;
    assert_eq!(status, 404);
    let (code, _, err) = sluice(&["trace", "orders", "never-sent", "--server", &gw.url("")]);
    assert_eq!(code, 1);
    assert!(err.contains("never-sent"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn untraced_buses_and_unsampled_events_have_no_trace() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx, "{sample: 0.0}")).await;
    gw.ready().await;
    let body = structured_event("p-1", "order.created", "{}");
    assert_eq!(post_structured(&gw, "plain", &body).await, 202);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    // Found by a search of the retained events instead, without a trace.
    for bus in ["plain", "orders"] {
        let (status, trace) = trace_of(&gw, bus, "p-1").await;
        assert_eq!(status, 200, "{trace}");
        assert_eq!(trace["traced"], false);
        assert_eq!(trace["trace"], json!([]));
        assert_eq!(trace["event"]["id"], "p-1");
    }
    // Nothing was written: no trace keys, and no `w` mark on the entries.
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sluice:*:trace:*")
        .query(&mut conn)
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let entries: redis::Value = redis::cmd("XRANGE")
        .arg("sluice:{orders}:events")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert!(
        !format!("{entries:?}").contains("cloudevents@"),
        "{entries:?}"
    );
}
