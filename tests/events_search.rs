//! Search of a bus's retained events (`GET /api/v1/buses/{bus}/events` and `sluice events
//! search`): by pattern over 10,000 events, paged by cursor under a scan budget, oldest
//! and newest first, in a time window; bad queries named.

mod common;

use common::*;
use serde_json::{json, Value};

const EVENTS: usize = 10_000;

async fn ingest(gw: &Gateway) {
    let client = reqwest::Client::new();
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let ty = if i % 3 == 0 { "order.paid" } else { "order.created" };
                json!({"specversion": "1.0", "id": format!("e{i}"), "source": "/shop", "type": ty, "data": {"n": i}})
            })
            .collect();
        let res = client
            .post(gw.url("/buses/orders/events"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(Value::Array(batch).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
    }
}

async fn search(gw: &Gateway, query: &[(&str, &str)]) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(gw.url("/api/v1/buses/orders/events"))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn search_pages_through_10000_events_without_skipping_or_repeating() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, "buses: [{name: orders}, {name: empty}]\n").await;
    gw.ready().await;
    ingest(&gw).await;

    // Every paid order, 250 per page, at most 2,000 entries read per request.
    let pattern = json!({"type": ["order.paid"]}).to_string();
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("pattern", pattern.as_str()),
            ("limit", "250"),
            ("budget", "2000"),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let (status, page) = search(&gw, &query).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page["scanned"].as_u64().unwrap() <= 2000,
            "{}",
            page["scanned"]
        );
        assert!(page["events"].as_array().unwrap().len() <= 250);
        got.extend(ids(&page));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 100, "the cursor does not advance");
    }
    let expected: Vec<String> = (0..EVENTS)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("e{i}"))
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected, "every paid order once, oldest first");
    assert!(pages >= 14, "3,334 matches at 250 per page");

    // Newest first, on the data, as the stored events read.
    let (_, page) = search(
        &gw,
        &[
            (
                "pattern",
                &json!({"data": {"n": [{"numeric": [">=", 9990]}]}}).to_string(),
            ),
            ("order", "newest"),
        ],
    )
    .await;
    let expected: Vec<String> = (9990..EVENTS).rev().map(|i| format!("e{i}")).collect();
    assert_eq!(ids(&page), expected);
    assert_eq!(page["events"][0]["event"]["data"], json!({"n": 9999}));
    assert!(page["events"][0]["entry"].as_str().unwrap().contains('-'));

    // CloudEvents filters and the CLI, which pages by itself.
    let (_, page) = search(
        &gw,
        &[
            ("filters", &json!([{"suffix": {"id": "777"}}]).to_string()),
            ("limit", "10"),
        ],
    )
    .await;
    assert_eq!(
        ids(&page),
        ["e777", "e1777", "e2777", "e3777", "e4777", "e5777", "e6777", "e7777", "e8777", "e9777"]
    );
    let (code, stdout, stderr) = sluice(&[
        "events",
        "search",
        "--bus",
        "orders",
        "--pattern",
        r#"{"data": {"n": [{"numeric": ["<", 3]}]}}"#,
        "-o",
        "json",
        "--server",
        &gw.url(""),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["e0", "e1", "e2"]
    );

    // A window in the future holds nothing; an empty bus neither.
    let (status, page) = search(&gw, &[("since", "2100-01-01T00:00:00Z")]).await;
    assert_eq!((status, page["events"].as_array().unwrap().len()), (200, 0));
    assert_eq!(page["next"], Value::Null);
    let (_, page) = search(&gw, &[("since", "1h"), ("limit", "1")]).await;
    assert_eq!(
        ids(&page),
        ["e0"],
        "`since 1h` covers what was just ingested"
    );

    // Bad queries: 400 naming the parameter; an unknown bus: 404.
    for (query, field) in [
        (vec![("pattern", "{not json")], "pattern"),
        (vec![("pattern", r#"{"data": {"n": "x"}}"#)], "pattern"),
        (vec![("filters", r#"[{"regex": {"id": "x"}}]"#)], "filters"),
        (vec![("limit", "0")], "limit"),
        (vec![("budget", "1000001")], "budget"),
        (vec![("cursor", "abc")], "cursor"),
        (vec![("order", "sideways")], "order"),
        (vec![("since", "yesterday-ish")], "since"),
        (vec![("since", "1h"), ("until", "2h")], "until"),
    ] {
        let (status, body) = search(&gw, &query).await;
        assert_eq!(status, 400, "{query:?} -> {body}");
        assert_eq!(body["field"], field, "{query:?} -> {body}");
    }
    let (status, _) = search(&gw, &[("colour", "red")]).await;
    assert_eq!(status, 400);
    let res = reqwest::get(gw.url("/api/v1/buses/nope/events"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = reqwest::get(gw.url("/api/v1/buses/empty/events"))
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(
        (page["events"].as_array().unwrap().len(), &page["next"]),
        (0, &Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_a_bus_by_type_and_source_and_what_rules_matched() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders, stats: {{retention: 2h}}}}, {{name: quiet}}]
rules:
  - name: paid
    bus: orders
    pattern: {{type: [order.paid]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
"#,
        rx.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;
    gw.ready().await;
    let client = reqwest::Client::new();
    let batch: Vec<Value> = (0..30)
        .map(|i| {
            let ty = if i % 3 == 0 {
                "order.paid"
            } else {
                "order.created"
            };
            let source = if i < 10 { "/shop" } else { "/app" };
            json!({"specversion": "1.0", "id": format!("s{i}"), "source": source, "type": ty})
        })
        .collect();
    let res = client
        .post(gw.url("/buses/orders/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(Value::Array(batch).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let stats = |by: &'static str| {
        let url = gw.url(&format!("/api/v1/buses/orders/stats?window=1h&by={by}"));
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut got = Value::Null;
    for _ in 0..100 {
        got = stats("type").await;
        if got["totals"]["all"] == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got["totals"]["all"], 30, "{got}");
    assert_eq!(got["totals"]["matched"], 10, "{got}");
    assert_eq!(
        got["totals"]["counts"],
        json!({"order.paid": 10, "order.created": 20})
    );
    assert_eq!(got["by"], "type");
    assert!(!got["minutes"].as_array().unwrap().is_empty());
    let by_source = stats("source").await;
    assert_eq!(
        by_source["totals"]["counts"],
        json!({"/shop": 10, "/app": 20}),
        "{by_source}"
    );
    // The counts are those of routed events: the receiver got the matched ones.
    assert!(wait_until(std::time::Duration::from_secs(10), || rx.count() == 10).await);

    let (code, stdout, stderr) = sluice(&[
        "stats",
        "--bus",
        "orders",
        "--by",
        "source",
        "--server",
        &gw.url(""),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("30 events, 10 matched"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("/app") && l.trim_end().ends_with("20")),
        "{stdout}"
    );

    // A window past the retention, a bad `by`, a bus that does not count, no bus.
    for (path, status) in [
        ("/api/v1/buses/orders/stats?window=3h", 400),
        ("/api/v1/buses/orders/stats?by=colour", 400),
        ("/api/v1/buses/quiet/stats", 409),
        ("/api/v1/buses/nope/stats", 404),
    ] {
        let res = reqwest::get(gw.url(path)).await.unwrap();
        assert_eq!(res.status(), status, "{path}");
    }
}
