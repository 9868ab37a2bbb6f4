//! Retention trims a bus, but never an event the router has not yet routed.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn retention_trims_only_routed_events() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    // 50 events on a bus with room for 5, all read but not routed by a replica that
    // then died: they are pending on its consumer until claimed after claim_idle, and
    // the trims that run meanwhile must leave them alone.
    let mut conn = redis.conn();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("sluice:{orders}:events")
        .arg("router")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut conn)
        .unwrap();
    for i in 0..50 {
        let attrs = format!(r#"{{"specversion":"1.0","id":"old-{i}","source":"/s","type":"t"}}"#);
        let _: String = redis::cmd("XADD")
            .arg("sluice:{orders}:events")
            .arg("*")
            .arg("a")
            .arg(attrs)
            .query(&mut conn)
            .unwrap();
    }
    // More than one trim chunk (10,000) on a bus without rules.
    let mut pipe = redis::pipe();
    for i in 0..25_000 {
        pipe.cmd("XADD")
            .arg("sluice:{big}:events")
            .arg("*")
            .arg("a")
            .arg(format!(
                r#"{{"specversion":"1.0","id":"b-{i}","source":"/s","type":"t"}}"#
            ))
            .ignore();
    }
    let _: () = pipe.query(&mut conn).unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("router")
        .arg("dead-replica")
        .arg("COUNT")
        .arg(50)
        .arg("STREAMS")
        .arg("sluice:{orders}:events")
        .arg(">")
        .query(&mut conn)
        .unwrap();
    let config = format!(
        r#"
delivery: {{claim_idle: 3s, retry_delay: 200ms}}
buses: [{{name: orders, max_len: 5}}, {{name: recent, retention: 1s}}, {{name: big, max_len: 5}}]
rules:
  - name: all
    bus: orders
    targets: [{{name: rx, kind: http, url: "{}", timeout: 1s}}]
"#,
        rx.url("/")
    );
    let gw = Gateway::start(&redis, &config).await;

    assert!(
        wait_until(Duration::from_secs(15), || rx.count() == 50).await,
        "delivered {} of 50",
        rx.count()
    );
    // Once routed, the bus keeps only its last 5 events.
    assert!(
        wait_until(Duration::from_secs(5), || redis
            .xlen("sluice:{orders}:events")
            == 5)
        .await,
        "length {}",
        redis.xlen("sluice:{orders}:events")
    );

    assert!(
        wait_until(Duration::from_secs(10), || redis
            .xlen("sluice:{big}:events")
            == 5)
        .await,
        "length {}",
        redis.xlen("sluice:{big}:events")
    );

    // Retention by age: a bus with no rules still routes (acknowledges) its events, and
    // drops them once they are older than the retention.
    assert_eq!(post_batch(&gw, "recent", "r", 3).await, 202);
    assert_eq!(redis.xlen("sluice:{recent}:events"), 3);
    assert!(
        wait_until(Duration::from_secs(8), || redis
            .xlen("sluice:{recent}:events")
            == 0)
        .await,
        "length {}",
        redis.xlen("sluice:{recent}:events")
    );
}
