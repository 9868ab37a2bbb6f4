//! Archives and replays (`/api/v1/archives`, `/api/v1/replays`, `sluice replay`): an
//! archive with a pattern keeps only matching events past the bus's retention; a replay
//! of a window to one rule delivers exactly the archived events of that window to that
//! rule's targets, with `replayname`, and replayed events are not archived again; kill -9
//! of the replica running a replay, resumed by the other; cancel; bad requests named.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Api<'a>(&'a Gateway);

impl Api<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(method, self.0.url(&format!("/api/v1{path}")));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Waits until `path` answers with `field` equal to `value`.
    async fn wait_for(&self, path: &str, field: &str, value: Value, limit: Duration) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && body[field] == value {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: {field} never became {value}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn post_typed(gw: &Gateway, prefix: &str, ty: &str, count: usize) {
    let batch: Vec<Value> = (0..count)
        .map(|i| json!({"specversion": "1.0", "id": format!("{prefix}{i}"), "source": "/shop", "type": ty, "data": {"n": i}}))
        .collect();
    let res = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(Value::Array(batch).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

/// (ce-id, ce-replayname) of every delivery.
fn deliveries(rx: &Receiver) -> Vec<(String, Option<String>)> {
    rx.received()
        .iter()
        .map(|r| {
            (
                r.header("ce-id").unwrap_or_default().to_string(),
                r.header("ce-replayname").map(str::to_string),
            )
        })
        .collect()
}

fn replayed_ids(rx: &Receiver, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = deliveries(rx)
        .into_iter()
        .filter(|(_, r)| r.as_deref() == Some(name))
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

fn config(rx1: &Receiver, rx2: &Receiver, rx3: &Receiver, retention: &str) -> String {
    format!(
        r#"
buses:
  - name: orders
    retention: {retention}
    archives:
      - {{name: paid, pattern: {{type: [order.paid]}}}}
      - {{name: everything, retention_days: 30}}
delivery: {{claim_idle: 3s}}
rules:
  - name: one
    bus: orders
    targets: [{{name: rx, kind: http, url: "{}", timeout: 1s}}]
  - name: two
    bus: orders
    targets: [{{name: rx, kind: http, url: "{}", timeout: 1s}}]
  - name: live-only
    bus: orders
    pattern: {{replayname: [{{exists: false}}]}}
    targets: [{{name: rx, kind: http, url: "{}", timeout: 1s}}]
"#,
        rx1.url("/one"),
        rx2.url("/two"),
        rx3.url("/live")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn archives_outlive_retention_and_replays_go_to_named_rules_only() {
    let redis = Redis::start();
    let (rx1, rx2, rx3) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let gw = Gateway::start(&redis, &config(&rx1, &rx2, &rx3, "3s")).await;
    gw.ready().await;
    let api = Api(&gw);

    // Three batches; the window is the middle one's.
    post_typed(&gw, "a", "order.created", 10).await;
    post_typed(&gw, "p", "order.paid", 5).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let since = now_ms();
    post_typed(&gw, "b", "order.created", 10).await;
    let until = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    post_typed(&gw, "c", "order.created", 10).await;
    assert!(wait_until(Duration::from_secs(10), || rx3.count() == 35).await);

    // The archives fill (segments are written within 5 s).
    let paid = api
        .wait_for(
            "/archives/paid",
            "events",
            json!(5),
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(paid["bus"], "orders");
    assert!(paid["segments"].as_u64().unwrap() >= 1);
    assert!(paid["bytes"].as_u64().unwrap() > 0);
    api.wait_for(
        "/archives/everything",
        "events",
        json!(35),
        Duration::from_secs(15),
    )
    .await;
    // The bus drops its events after its 3 s retention; the archives keep theirs.
    assert!(
        wait_until(Duration::from_secs(15), || redis
            .xlen("sluice:{orders}:events")
            == 0)
        .await,
        "the bus was not trimmed"
    );
    let (_, list) = api.get("/archives").await;
    let names: Vec<&str> = list["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["paid", "everything"]);

    // Replay the middle window to rule `one` only.
    let (status, started) = api
        .call(
            reqwest::Method::POST,
            "/replays",
            Some(
                json!({"name": "middle", "bus": "orders", "archive": "everything",
                        "since": rfc3339(since), "until": rfc3339(until), "rules": ["one"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["state"], "STARTING");
    let done = api
        .wait_for(
            "/replays/middle",
            "state",
            json!("COMPLETED"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(done["replayed"], 10, "{done}");
    assert!(done["last_replayed"].is_string());
    let expected: Vec<String> = {
        let mut ids: Vec<String> = (0..10).map(|i| format!("b{i}")).collect();
        ids.sort();
        ids
    };
    assert!(
        wait_until(Duration::from_secs(10), || replayed_ids(&rx1, "middle")
            .len()
            >= 10)
        .await
    );
    assert_eq!(replayed_ids(&rx1, "middle"), expected);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx2.count(), 35, "rule two got replayed events");
    assert_eq!(rx3.count(), 35, "the rule that excludes replays got some");

    // The whole paid archive to every rule; `live-only` excludes replays by pattern.
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/replays",
            Some(json!({"name": "all-paid", "bus": "orders", "archive": "paid", "since": "1h"})),
        )
        .await;
    assert_eq!(status, 201);
    api.wait_for(
        "/replays/all-paid",
        "state",
        json!("COMPLETED"),
        Duration::from_secs(20),
    )
    .await;
    let paid_ids: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
    assert!(
        wait_until(Duration::from_secs(10), || replayed_ids(&rx2, "all-paid")
            .len()
            >= 5)
        .await
    );
    assert_eq!(replayed_ids(&rx1, "all-paid"), paid_ids);
    assert_eq!(replayed_ids(&rx2, "all-paid"), paid_ids);
    assert_eq!(rx3.count(), 35);

    // Replayed events were not archived again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, everything) = api.get("/archives/everything").await;
    assert_eq!(everything["events"], 35, "{everything}");
    let (_, paid) = api.get("/archives/paid").await;
    assert_eq!(paid["events"], 5);

    // The CLI shows them; bad requests are named.
    let (code, out, err) = sluice(&["replay", "status", "--server", &gw.url("")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("middle") && out.contains("COMPLETED"), "{out}");
    let bad = [
        (
            json!({"name": "middle", "bus": "orders", "since": "1h"}),
            409,
            "name",
        ),
        (
            json!({"name": "x", "bus": "nope", "since": "1h"}),
            404,
            "bus",
        ),
        (
            json!({"name": "x", "bus": "orders", "archive": "nope", "since": "1h"}),
            404,
            "archive",
        ),
        (
            json!({"name": "x", "bus": "orders", "since": "1h", "rules": ["nope"]}),
            400,
            "rules",
        ),
        (
            json!({"name": "x", "bus": "orders", "since": "yesterday"}),
            400,
            "since",
        ),
        (
            json!({"name": "x y", "bus": "orders", "since": "1h"}),
            400,
            "name",
        ),
    ];
    for (body, status, field) in bad {
        let (got, answer) = api
            .call(reqwest::Method::POST, "/replays", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/replays/middle/cancel",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "an ended replay cannot be cancelled");
    // A window into the future ends now: the replay does not follow the live bus.
    let before = now_ms();
    let (status, future) = api
        .call(
            reqwest::Method::POST,
            "/replays",
            Some(json!({"name": "future", "bus": "orders", "since": "1h", "until": "2030-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 201, "{future}");
    let until = chrono::DateTime::parse_from_rfc3339(future["until"].as_str().unwrap())
        .unwrap()
        .timestamp_millis() as u64;
    assert!(until >= before && until <= now_ms(), "{future}");
    api.wait_for(
        "/replays/future",
        "state",
        json!("COMPLETED"),
        Duration::from_secs(10),
    )
    .await;

    // Archives through the API: a file bus is read-only; on a store bus, create one,
    // refuse an invalid pattern and a name taken on another bus, delete it.
    let (status, err) = api
        .call(
            reqwest::Method::PUT,
            "/archives/late",
            Some(json!({"bus": "orders"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"], "read_only");
    let res = reqwest::Client::new()
        .put(gw.url("/api/v1/archives/late"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["field"], "body", "{err}");
    let (status, _) = api
        .call(reqwest::Method::PUT, "/buses/extra", Some(json!({})))
        .await;
    assert_eq!(status, 201);
    let (status, made) = api
        .call(
            reqwest::Method::PUT,
            "/archives/late",
            Some(json!({"bus": "extra", "pattern": {"type": ["order.created"]}, "retention_days": 1})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["retention_days"], 1);
    let (status, err) = api
        .call(
            reqwest::Method::PUT,
            "/archives/late",
            Some(json!({"bus": "extra", "pattern": {"type": [{"bad": 1}]}})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = api
        .call(
            reqwest::Method::PUT,
            "/archives/paid",
            Some(json!({"bus": "extra"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["field"], "name");
    let (status, _) = api
        .call(reqwest::Method::DELETE, "/archives/late", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.get("/archives/late").await;
    assert_eq!(status, 404);
}

const REPLICA_CONFIG: &str = "delivery: {claim_idle: 3s}\n";

/// Makes the bus (with an archive) and its rule through the API, so that both replicas
/// serve them.
async fn make_bus(api: &Api<'_>, rx: &Receiver) {
    let (status, body) = api
        .call(
            reqwest::Method::PUT,
            "/buses/orders",
            Some(json!({"archives": [{"name": "all"}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api
        .call(
            reqwest::Method::PUT,
            "/buses/orders/rules/all",
            Some(json!({"targets": [{"name": "rx", "kind": "http", "url": rx.url("/all"), "timeout": "1s", "concurrency": 32}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_survives_kill_9_of_its_replica_and_can_be_cancelled() {
    const EVENTS: usize = 2000;
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let mut a = Gateway::start(&redis, REPLICA_CONFIG).await;
    let mut b = Gateway::start(&redis, REPLICA_CONFIG).await;
    a.ready().await;
    b.ready().await;
    make_bus(&Api(&a), &rx).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for chunk in 0..EVENTS / 500 {
        post_typed(&a, &format!("k{chunk}-"), "order.created", 500).await;
    }
    assert!(wait_until(Duration::from_secs(30), || rx.count() == EVENTS).await);
    Api(&a)
        .wait_for(
            "/archives/all",
            "events",
            json!(EVENTS),
            Duration::from_secs(20),
        )
        .await;

    // 400 events/s: about 5 s; kill the replica that runs it after ~1 s.
    let (status, body) = Api(&a)
        .call(
            reqwest::Method::POST,
            "/replays",
            Some(json!({"name": "slow", "bus": "orders", "archive": "all", "since": "1h", "rate": 400})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    Api(&a)
        .wait_for(
            "/replays/slow",
            "state",
            json!("RUNNING"),
            Duration::from_secs(10),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let holder: String = redis::cmd("GET")
        .arg("sluice:{orders}:lease:replay:slow")
        .query(&mut redis.conn())
        .unwrap();
    let a_pid = a.pid().unwrap().to_string();
    let (survivor, killed_replayed) = if holder.contains(&format!("-{a_pid}-")) {
        let (_, before) = Api(&b).get("/replays/slow").await;
        a.kill9();
        (&b, before["replayed"].clone())
    } else {
        let (_, before) = Api(&a).get("/replays/slow").await;
        b.kill9();
        (&a, before["replayed"].clone())
    };
    assert!(
        killed_replayed.as_u64().unwrap() < EVENTS as u64,
        "the replay finished before the kill: {killed_replayed}"
    );
    let done = Api(survivor)
        .wait_for(
            "/replays/slow",
            "state",
            json!("COMPLETED"),
            Duration::from_secs(40),
        )
        .await;
    assert!(
        done["replayed"].as_u64().unwrap() >= EVENTS as u64,
        "{done}"
    );
    // Every archived event was delivered again, at least once.
    assert!(
        wait_until(Duration::from_secs(30), || {
            let mut ids = replayed_ids(&rx, "slow");
            ids.dedup();
            ids.len() == EVENTS
        })
        .await,
        "replayed {} distinct events",
        {
            let mut ids = replayed_ids(&rx, "slow");
            ids.dedup();
            ids.len()
        }
    );

    // Cancel a slow one midway.
    let (status, _) = Api(survivor)
        .call(
            reqwest::Method::POST,
            "/replays",
            Some(json!({"name": "stop-me", "bus": "orders", "archive": "all", "since": "1h", "rate": 100})),
        )
        .await;
    assert_eq!(status, 201);
    Api(survivor)
        .wait_for(
            "/replays/stop-me",
            "state",
            json!("RUNNING"),
            Duration::from_secs(10),
        )
        .await;
    let (code, out, err) = sluice(&["replay", "cancel", "stop-me", "--server", &survivor.url("")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("CANCELLING") || out.contains("CANCELLED"),
        "{out}"
    );
    let cancelled = Api(survivor)
        .wait_for(
            "/replays/stop-me",
            "state",
            json!("CANCELLED"),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        cancelled["replayed"].as_u64().unwrap() < EVENTS as u64,
        "{cancelled}"
    );
    assert!(cancelled["ended"].is_string());
    let _ = (&mut a, &mut b);
}
