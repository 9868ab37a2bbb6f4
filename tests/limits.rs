//! Per-target limits end to end: a rate limit shared by replicas, a circuit breaker
//! that pauses a failing target without slowing a healthy one, and per-key ordering
//! that survives failures and a replica killed with SIGKILL.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::*;

fn one_target(rx_url: &str, extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
delivery: {{claim_idle: 3s}}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: rx, kind: http, url: "{rx_url}", timeout: 1s, {extra}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_by_all_replicas() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = one_target(
        &rx.url("/hook"),
        "concurrency: 8, rate: {per_second: 20, burst: 5}",
    );
    let a = Gateway::start(&redis, &config).await;
    let b = Gateway::start(&redis, &config).await;
    // Half the events through each replica, at once.
    assert_eq!(post_batch(&a, "orders", "a-", 30).await, 202);
    assert_eq!(post_batch(&b, "orders", "b-", 30).await, 202);
    assert!(
        wait_until(Duration::from_secs(30), || rx.count() >= 60).await,
        "only {} of 60 delivered",
        rx.count()
    );
    let mut times: Vec<Instant> = rx.received().iter().map(|r| r.at).collect();
    times.sort();
    let span = times[59] - times[0];
    // 5 at once, then 55 at 20/s across both replicas: at least 2.75 s. Two replicas
    // with a limit each would need only half of it.
    assert!(
        span >= Duration::from_millis(2500),
        "60 deliveries in {span:?}"
    );
    // In any one-second window, at most 20 + the burst of 5, plus slack for timestamps
    // taken at the receiver: on a loaded machine a request can arrive a few hundred ms
    // after its token was taken. Two per-replica limits would allow 50.
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::from_secs(1))
            .count();
        assert!(in_window <= 33, "{in_window} deliveries within one second");
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_pauses_a_failing_target_and_healthy_targets_go_on() {
    let redis = Redis::start();
    let failing = Receiver::start().await;
    let healthy = Receiver::start().await;
    failing.answer_with(503);
    let config = format!(
        r#"
buses: [{{name: orders}}]
delivery: {{claim_idle: 3s}}
rules:
  - name: all
    bus: orders
    targets:
      - name: flaky
        kind: http
        url: "{}"
        timeout: 1s
        concurrency: 4
        retry: {{initial: 50ms, max: 100ms}}
        breaker: {{failures: 3, cooldown: 1s}}
      - {{name: fine, kind: http, url: "{}", timeout: 1s}}
"#,
        failing.url("/hook"),
        healthy.url("/hook")
    );
    let gw = Gateway::start(&redis, &config).await;
    assert_eq!(post_batch(&gw, "orders", "e-", 50).await, 202);
    assert!(
        wait_until(Duration::from_secs(10), || healthy.count() >= 50).await,
        "the healthy target got {} of 50",
        healthy.count()
    );
    // Let the failing target stay down for 3 s: without the breaker, 50 events retried
    // every 50-100 ms would make hundreds of attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts_while_down = failing.attempts().len();
    assert!(
        attempts_while_down <= 4 + 3 + 4,
        "{attempts_while_down} attempts at a target that should be paused"
    );
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let state = metrics
        .lines()
        .find(|l| l.starts_with("sluice_target_breaker_state{") && l.contains("flaky"))
        .unwrap_or_else(|| panic!("no breaker state in\n{metrics}"));
    assert!(
        state.ends_with(" 1") || state.ends_with(" 2"),
        "breaker not open: {state}"
    );
    // Back up: a probe closes the breaker and everything is delivered.
    failing.answer_with(200);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let mut ids: Vec<String> = failing
                .received()
                .iter()
                .filter_map(|r| r.header("ce-id").map(str::to_string))
                .collect();
            ids.sort();
            ids.dedup();
            ids.len() >= 50
        })
        .await,
        "the recovered target got {} deliveries",
        failing.count()
    );
}

/// A target that answers 500 to the first attempt of every fifth event and records,
/// per key (`ce-subject`), the sequence numbers it accepted, in arrival order.
#[derive(Default)]
struct OrderedSink {
    accepted: Mutex<BTreeMap<String, Vec<u32>>>,
    seen: Mutex<HashMap<String, u32>>,
}

async fn ordered_sink(req: HttpRequest, state: web::Data<OrderedSink>) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("ce-id");
    let key = header("ce-subject");
    let seq: u32 = id.rsplit('-').next().unwrap().parse().unwrap();
    let tries = {
        let mut seen = state.seen.lock().unwrap();
        let n = seen.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    if seq % 5 == 2 && tries == 1 {
        return HttpResponse::InternalServerError().finish();
    }
    state
        .accepted
        .lock()
        .unwrap()
        .entry(key)
        .or_default()
        .push(seq);
    HttpResponse::Ok().finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_keeps_each_keys_order_through_failures_and_a_killed_replica() {
    let redis = Redis::start();
    let sink = web::Data::new(OrderedSink::default());
    let port = free_port();
    let data = sink.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(ordered_sink))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let config = one_target(
        &format!("http://127.0.0.1:{port}/hook"),
        "concurrency: 8, retry: {initial: 50ms, max: 200ms}, ordering: {key: subject}",
    );
    let mut a = Gateway::start(&redis, &config).await;
    let b = Gateway::start(&redis, &config).await;
    const KEYS: u32 = 8;
    const PER_KEY: u32 = 60;
    let client = reqwest::Client::new();
    let send = |gw: &Gateway, key: u32, seq: u32| {
        let body = format!(
            r#"{{"specversion":"1.0","id":"k{key}-{seq}","source":"/test","type":"t","subject":"k{key}","data":{{}}}}"#
        );
        client
            .post(gw.url("/buses/orders/events"))
            .header("content-type", "application/cloudevents+json")
            .body(body)
            .send()
    };
    // Per key in send order (each after the previous one's 202), keys interleaved and
    // spread over both replicas; replica `a` is killed half-way and restarted.
    for seq in 0..PER_KEY {
        if seq == PER_KEY / 2 {
            a.kill9();
            for key in 0..KEYS {
                assert_eq!(send(&b, key, seq).await.unwrap().status(), 202);
            }
            a.restart().await;
            continue;
        }
        for key in 0..KEYS {
            let gw = if (key + seq) % 2 == 0 { &a } else { &b };
            assert_eq!(send(gw, key, seq).await.unwrap().status(), 202);
        }
    }
    let done = wait_until(Duration::from_secs(60), || {
        let accepted = sink.accepted.lock().unwrap();
        (0..KEYS).all(|k| {
            accepted.get(&format!("k{k}")).is_some_and(|seqs| {
                let mut s = seqs.clone();
                s.sort();
                s.dedup();
                s.len() == PER_KEY as usize
            })
        })
    })
    .await;
    let accepted = sink.accepted.lock().unwrap().clone();
    assert!(done, "not every event was delivered: {accepted:?}");
    let mut duplicates = 0;
    for (key, seqs) in &accepted {
        // First deliveries in send order; a duplicate (a redelivery after the kill) may
        // repeat an event already delivered, never skip ahead.
        let mut firsts = Vec::new();
        for &s in seqs {
            if firsts.contains(&s) {
                duplicates += 1;
            } else {
                firsts.push(s);
            }
        }
        assert_eq!(
            firsts,
            (0..PER_KEY).collect::<Vec<_>>(),
            "key {key} out of order: {seqs:?}"
        );
    }
    eprintln!(
        "ordering: {} events, {duplicates} duplicate deliveries",
        KEYS * PER_KEY
    );
    // Nothing left pending.
    let mut conn = redis.conn();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("sluice:{orders}:t:all:rx")
        .arg("dispatch")
        .query(&mut conn)
        .unwrap();
    match pending {
        redis::Value::Array(parts) => {
            assert_eq!(parts[0], redis::Value::Int(0), "entries still pending")
        }
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
    handle.stop(false).await;
}
