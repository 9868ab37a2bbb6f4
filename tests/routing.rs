//! Routing: every matching rule's targets get the event, others do not; a dead target
//! does not hold up a healthy one.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_matching_rule_delivers_and_others_do_not() {
    let redis = Redis::start();
    let paid = Receiver::start().await;
    let eur = Receiver::start().await;
    let refunds = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: paid
    bus: orders
    pattern: {{type: [order.paid]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: eur
    bus: orders
    pattern: {{data: {{currency: [EUR], lines: {{sku: [A1, B2]}}}}}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: refunds
    bus: orders
    pattern: {{type: [order.refunded]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
"#,
        paid.url("/"),
        eur.url("/"),
        refunds.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;

    let both = structured_event(
        "both",
        "order.paid",
        r#"{"currency":"EUR","lines":[{"sku":"Z9"},{"sku":"B2"}]}"#,
    );
    let paid_only = structured_event(
        "paid-only",
        "order.paid",
        r#"{"currency":"USD","lines":[{"sku":"A1"}]}"#,
    );
    let none = structured_event("none", "order.created", r#"{"currency":"GBP"}"#);
    for body in [&both, &paid_only, &none] {
        assert_eq!(post_structured(&gw, "orders", body).await, 202);
    }

    assert!(
        wait_until(Duration::from_secs(10), || paid.count() == 2
            && eur.count() == 1)
        .await
    );
    // Give any wrong delivery the time to show up before asserting it did not.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = |rx: &Receiver| {
        let mut ids: Vec<String> = rx
            .received()
            .iter()
            .map(|r| r.header("ce-id").unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&paid), ["both", "paid-only"]);
    assert_eq!(ids(&eur), ["both"]);
    assert!(ids(&refunds).is_empty());
    // Delivered entries are removed from the target streams.
    assert_eq!(redis.xlen("sluice:{orders}:t:paid:rx"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_target_does_not_delay_a_healthy_one() {
    let redis = Redis::start();
    let healthy = Receiver::start().await;
    let dead_port = free_port(); // nothing listens here: connection refused
    let config = format!(
        r#"
buses: [{{name: orders}}]
delivery: {{retry_delay: 200ms, claim_idle: 15s}}
rules:
  - name: fanout
    bus: orders
    targets:
      - {{name: dead, kind: http, url: "http://127.0.0.1:{dead_port}/", concurrency: 2, timeout: 1s}}
      - {{name: healthy, kind: http, url: "{}", concurrency: 4}}
"#,
        healthy.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;

    let n = 200;
    assert_eq!(post_batch(&gw, "orders", "e", n).await, 202);

    // All events reach the healthy target while the dead one keeps failing...
    assert!(
        wait_until(Duration::from_secs(10), || healthy.count() == n).await,
        "healthy target got {} of {n}",
        healthy.count()
    );
    // ...and nothing meant for the dead one is lost: it waits in its stream, or in its
    // delay set for its next attempt (read together: entries move between the two).
    let (queued, delayed): (usize, usize) = redis::pipe()
        .atomic()
        .cmd("XLEN")
        .arg("sluice:{orders}:t:fanout:dead")
        .cmd("ZCARD")
        .arg("sluice:{orders}:delay:fanout:dead")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(queued + delayed, n);

    // When the dead target comes up, its backlog is delivered.
    let revived = Receiver::start_on(dead_port).await;
    assert!(
        wait_until(Duration::from_secs(20), || revived.count() >= n).await,
        "revived target got {} of {n}",
        revived.count()
    );
    assert!(
        wait_until(Duration::from_secs(5), || redis
            .xlen("sluice:{orders}:t:fanout:dead")
            == 0)
        .await
    );
}

/// Operators, array consistency, CloudEvents filters (with CESQL) and text data, through
/// the gateway: each rule's receiver gets exactly the events its condition selects.
#[tokio::test(flavor = "multi_thread")]
async fn operators_and_filters_select_events_end_to_end() {
    let redis = Redis::start();
    let big = Receiver::start().await;
    let filtered = Receiver::start().await;
    let consistent = Receiver::start().await;
    let text = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: big
    bus: orders
    pattern:
      source: [{{prefix: "https://shop"}}]
      data: {{total: [{{numeric: [">=", 100]}}], ip: [{{cidr: "10.0.0.0/8"}}]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: filtered
    bus: orders
    filters:
      - sql: "type LIKE 'order.%' AND subject = 'eu'"
      - not: {{exact: {{type: order.refunded}}}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: consistent
    bus: orders
    pattern: {{data: {{lines: {{sku: [A1], qty: [2]}}}}}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: text
    bus: orders
    pattern: {{data: [{{wildcard: "ERROR*disk*"}}]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
"#,
        big.url("/"),
        filtered.url("/"),
        consistent.url("/"),
        text.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;

    let event = |id: &str, source: &str, ty: &str, subject: &str, data: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"{source}","type":"{ty}","subject":"{subject}","datacontenttype":"application/json","data":{data}}}"#
        )
    };
    let bodies = [
        // big (300 >= 100, 10.1.2.3 in 10/8) and filtered (order.paid, subject eu).
        event(
            "e1",
            "https://shop.example",
            "order.paid",
            "eu",
            r#"{"total":3e2,"ip":"10.1.2.3","lines":[{"sku":"A1","qty":1},{"sku":"B2","qty":2}]}"#,
        ),
        // Not big (99), not filtered (refunded); consistent (A1 with qty 2 in one line).
        event(
            "e2",
            "https://shop.example",
            "order.refunded",
            "eu",
            r#"{"total":99,"ip":"10.1.2.3","lines":[{"sku":"A1","qty":2}]}"#,
        ),
        // Not big (other network), not filtered (subject us).
        event(
            "e3",
            "https://shop.example",
            "order.paid",
            "us",
            r#"{"total":500,"ip":"192.168.0.1"}"#,
        ),
    ];
    for body in &bodies {
        assert_eq!(post_structured(&gw, "orders", body).await, 202);
    }
    let text_event = r#"{"specversion":"1.0","id":"e4","source":"/logs","type":"log.line","datacontenttype":"text/plain","data":"ERROR: disk full"}"#;
    assert_eq!(post_structured(&gw, "orders", text_event).await, 202);

    assert!(
        wait_until(Duration::from_secs(10), || big.count() == 1
            && filtered.count() == 1
            && consistent.count() == 1
            && text.count() == 1)
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = |rx: &Receiver| -> Vec<String> {
        rx.received()
            .iter()
            .map(|r| r.header("ce-id").unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&big), ["e1"]);
    assert_eq!(ids(&filtered), ["e1"]);
    assert_eq!(ids(&consistent), ["e2"]);
    assert_eq!(ids(&text), ["e4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bus_targets_forward_into_another_bus_and_never_loop() {
    let redis = Redis::start();
    let orders_rx = Receiver::start().await;
    let audit_rx = Receiver::start().await;
    // orders -> audit for paid orders, and audit -> orders for everything: a cycle.
    let config = format!(
        r#"
buses: [{{name: orders}}, {{name: audit}}]
rules:
  - name: to-audit
    bus: orders
    pattern: {{type: [order.paid]}}
    targets: [{{name: fwd, kind: bus, bus: audit}}]
  - name: all
    bus: orders
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: log
    bus: audit
    targets: [{{name: rx, kind: http, url: "{}"}}]
  - name: back
    bus: audit
    targets: [{{name: fwd, kind: bus, bus: orders}}]
"#,
        orders_rx.url("/"),
        audit_rx.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;
    for (id, ty) in [("p1", "order.paid"), ("c1", "order.created")] {
        let status = post_structured(&gw, "orders", &structured_event(id, ty, r#"{"n":1}"#)).await;
        assert_eq!(status, 202);
    }
    assert!(
        wait_until(Duration::from_secs(15), || orders_rx.count() >= 2
            && audit_rx.count() >= 1)
        .await,
        "{}",
        gw.logs()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Each bus saw each event once: the copy back to orders was not forwarded.
    let mut ids = orders_rx.ce_ids();
    ids.sort();
    assert_eq!(ids, ["c1", "p1"]);
    assert_eq!(audit_rx.ce_ids(), ["p1"]);
    let forwarded = &audit_rx.received()[0];
    assert_eq!(forwarded.header("ce-sluicebuses"), Some("orders"));
    assert_eq!(forwarded.body, br#"{"n":1}"#);
    assert_eq!(redis.xlen("sluice:{audit}:events"), 1);
    assert_eq!(redis.xlen("sluice:{orders}:events"), 2);
}
