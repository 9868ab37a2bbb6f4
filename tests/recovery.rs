//! Nothing is lost: a gateway killed with SIGKILL, or a Redis that goes away, delays
//! deliveries but never drops an accepted event.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

fn config(target_port: u16) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
delivery: {{retry_delay: 200ms, claim_idle: 3s, shutdown_timeout: 2s}}
rules:
  - name: all
    bus: orders
    targets: [{{name: rx, kind: http, url: "http://127.0.0.1:{target_port}/", timeout: 1s}}]
"#
    )
}

fn delivered_ids(rx: &Receiver) -> HashSet<String> {
    rx.received()
        .iter()
        .map(|r| r.header("ce-id").unwrap().to_string())
        .collect()
}

/// Events of target orders/all/rx not yet delivered: in its stream or its delay set.
/// (Read together: entries move between the two.)
fn waiting(redis: &Redis) -> usize {
    let (queued, delayed): (usize, usize) = redis::pipe()
        .atomic()
        .cmd("XLEN")
        .arg("sluice:{orders}:t:all:rx")
        .cmd("ZCARD")
        .arg("sluice:{orders}:delay:all:rx")
        .query(&mut redis.conn())
        .unwrap();
    queued + delayed
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_events_survive_a_killed_gateway() {
    let redis = Redis::start();
    let target_port = free_port(); // the target is down while the gateway holds the events
    let mut gw = Gateway::start(&redis, &config(target_port)).await;

    let mut accepted = HashSet::new();
    assert_eq!(post_batch(&gw, "orders", "batch-", 40).await, 202);
    accepted.extend((0..40).map(|i| format!("batch-{i}")));
    for i in 0..10 {
        let id = format!("single-{i}");
        assert_eq!(
            post_structured(&gw, "orders", &structured_event(&id, "t", "{}")).await,
            202
        );
        accepted.insert(id);
    }
    // Let some deliveries start failing (so they are pending on this replica), then kill it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.kill9();

    let rx = Receiver::start_on(target_port).await;
    gw.restart().await;
    // The new replica claims what the dead one held once it has been idle for claim_idle.
    assert!(
        wait_until(Duration::from_secs(30), || delivered_ids(&rx)
            .is_superset(&accepted))
        .await,
        "missing: {:?}",
        accepted.difference(&delivered_ids(&rx)).collect::<Vec<_>>()
    );
    assert!(
        wait_until(Duration::from_secs(5), || redis
            .xlen("sluice:{orders}:t:all:rx")
            == 0)
        .await
    );

    // The dead replica's consumer names are forgotten once they hold nothing (the live
    // replica's may be too, while it has nothing pending; Redis recreates it on use).
    let consumers = |key: &str, group: &str| -> usize {
        let infos: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(key)
            .arg(group)
            .query(&mut redis.conn())
            .unwrap();
        infos.len()
    };
    assert!(
        wait_until(Duration::from_secs(15), || consumers(
            "sluice:{orders}:t:all:rx",
            "dispatch"
        ) <= 1
            && consumers("sluice:{orders}:events", "router") <= 1)
        .await,
        "dispatch consumers {}, router consumers {}",
        consumers("sluice:{orders}:t:all:rx", "dispatch"),
        consumers("sluice:{orders}:events", "router")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_answers_503_while_redis_is_down_and_everything_resumes() {
    let mut redis = Redis::start();
    if !redis.can_restart() {
        eprintln!("skipped: needs a redis-server of its own");
        return;
    }
    let rx = Receiver::start().await;
    rx.answer_with(503); // the target fails: accepted events stay pending
    let gw = Gateway::start(&redis, &config(rx.port)).await;

    for i in 0..5 {
        assert_eq!(
            post_structured(
                &gw,
                "orders",
                &structured_event(&format!("before-{i}"), "t", "{}")
            )
            .await,
            202
        );
    }
    assert!(wait_until(Duration::from_secs(5), || waiting(&redis) == 5).await);

    redis.kill();
    let res = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("content-type", "application/cloudevents+json")
        .body(structured_event("during", "t", "{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "bus_unavailable");
    let ready = reqwest::get(gw.url("/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);

    redis.restart();
    rx.answer_with(200);
    // Ingest comes back by itself (the client retries, as told by Retry-After).
    let mut status = 0;
    for _ in 0..50 {
        status = post_structured(&gw, "orders", &structured_event("after", "t", "{}")).await;
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 202);
    assert_eq!(
        reqwest::get(gw.url("/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );

    let expected: HashSet<String> = (0..5)
        .map(|i| format!("before-{i}"))
        .chain(["after".to_string()])
        .collect();
    assert!(
        wait_until(Duration::from_secs(20), || delivered_ids(&rx)
            .is_superset(&expected))
        .await,
        "missing: {:?}",
        expected.difference(&delivered_ids(&rx)).collect::<Vec<_>>()
    );
    assert!(
        !delivered_ids(&rx).contains("during"),
        "a 503 means not accepted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_cleanly_and_leaves_undelivered_events_pending() {
    let redis = Redis::start();
    let target_port = free_port();
    let mut gw = Gateway::start(&redis, &config(target_port)).await;
    for i in 0..3 {
        assert_eq!(
            post_structured(
                &gw,
                "orders",
                &structured_event(&format!("e{i}"), "t", "{}")
            )
            .await,
            202
        );
    }
    assert!(wait_until(Duration::from_secs(5), || waiting(&redis) == 3).await);
    let status = gw.terminate();
    assert!(status.success(), "exit status {status}\n{}", gw.logs());
    assert!(gw.logs().contains("stopped"), "{}", gw.logs());
    // The undelivered events are still there for the next replica: in the target
    // stream, or in its delay set when an attempt failed.
    assert_eq!(waiting(&redis), 3);
}
