//! The Redis connector and target against a second redis-server of the test's own (the
//! "other" Redis), written and read with the `redis` crate, the client other
//! applications use: entries in binary and structured form and plain entries become
//! events; events delivered to the `redis` target come back with the same attributes and
//! data; kill -9 of the gateway mid-flow and a restart of the other Redis lose nothing.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{post_structured, wait_until, Gateway, Receiver, Redis};
use serde_json::{json, Value};

fn source_config(other: &Redis, stream: &str, rx: &Receiver) -> String {
    format!(
        r#"
delivery: {{claim_idle: 3s}}
buses: [{{name: idc}}]
connectors:
  - {{name: other, kind: redis, bus: idc, url: "{url}", stream: {stream}, batch: 50, block: 200ms, claim_idle: 500ms}}
rules:
  - name: all
    bus: idc
    targets:
      - {{name: rx, kind: http, url: "{rx}", timeout: 1s, retry: {{initial: 50ms}}}}
"#,
        url = other.url,
        rx = rx.url("/in"),
    )
}

fn xadd(other: &Redis, stream: &str, fields: &[(&str, &[u8])]) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    let _: String = cmd.query(&mut other.conn()).unwrap();
}

/// The attributes of a delivered event (the HTTP target's binary mode), without the
/// gateway's own trace attributes.
fn attrs_of(r: &common::Received) -> BTreeMap<String, String> {
    r.headers
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("ce-")?.to_string(), v.clone())))
        .filter(|(k, _)| !k.starts_with("sluice"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_of_another_redis_become_events() {
    let redis = Redis::start();
    let other = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &source_config(&other, "orders", &rx)).await;
    // The group is created at the stream's end: wait until it exists.
    assert!(
        wait_until(Duration::from_secs(10), || redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("orders")
            .query::<Vec<redis::Value>>(&mut other.conn())
            .map(|g| !g.is_empty())
            .unwrap_or(false))
        .await
    );

    let binary_data: &[u8] = &[0, 1, 2, 255, 254];
    xadd(
        &other,
        "orders",
        &[
            ("ce-specversion", b"1.0"),
            ("ce-id", b"bin-1"),
            ("ce-source", b"/idc/orders"),
            ("ce-type", b"order.created"),
            ("ce-tenant", b"acme"),
            ("content-type", b"application/octet-stream"),
            ("data", binary_data),
        ],
    );
    xadd(
        &other,
        "orders",
        &[
            ("content-type", b"application/cloudevents+json"),
            (
                "data",
                br#"{"specversion":"1.0","id":"str-1","source":"/idc/orders","type":"order.paid","datacontenttype":"application/json","data":{"total":12.50}}"#,
            ),
        ],
    );
    xadd(&other, "orders", &[("order", b"7"), ("state", b"new")]);

    assert!(
        wait_until(Duration::from_secs(15), || rx.count() >= 3).await,
        "{}",
        gw.logs()
    );
    let got = rx.received();
    let by_id = |id: &str| {
        got.iter()
            .find(|r| r.header("ce-id") == Some(id))
            .unwrap_or_else(|| panic!("{id} not delivered: {got:#?}"))
    };
    let bin = by_id("bin-1");
    assert_eq!(bin.body, binary_data);
    assert_eq!(bin.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        attrs_of(bin),
        BTreeMap::from([
            ("specversion".into(), "1.0".into()),
            ("id".into(), "bin-1".into()),
            ("source".into(), "/idc/orders".into()),
            ("type".into(), "order.created".into()),
            ("tenant".into(), "acme".into()),
        ])
    );
    let structured = by_id("str-1");
    // JSON data bytes as written: the number keeps its form.
    assert_eq!(structured.body, br#"{"total":12.50}"#);
    assert_eq!(structured.header("ce-type"), Some("order.paid"));

    let plain = got
        .iter()
        .find(|r| r.header("ce-type") == Some("sluice.redis.entry"))
        .expect("the plain entry");
    assert!(plain.header("ce-id").unwrap().starts_with("orders/"));
    assert_eq!(plain.header("ce-source"), Some("redis:orders"));
    let data: Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(data, json!({"order": "7", "state": "new"}));

    // Everything read was acknowledged once appended.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let pending: Vec<redis::Value> = redis::cmd("XPENDING")
                .arg("orders")
                .arg("sluice")
                .query(&mut other.conn())
                .unwrap();
            pending.first() == Some(&redis::Value::Int(0))
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_a_restart_of_the_other_redis_lose_nothing() {
    let redis = Redis::start();
    let mut other = Redis::start();
    if !other.can_restart() {
        eprintln!("SKIPPED: no redis-server to restart");
        return;
    }
    let rx = Receiver::start().await;
    let mut gw = Gateway::start(&redis, &source_config(&other, "jobs", &rx)).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("jobs")
        .arg("sluice")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut other.conn())
        .or_else(|e| {
            if e.code() == Some("BUSYGROUP") {
                Ok(())
            } else {
                Err(e)
            }
        })
        .unwrap();

    let n = 3000;
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("XADD")
            .arg("jobs")
            .arg("*")
            .arg("ce-specversion")
            .arg("1.0")
            .arg("ce-id")
            .arg(format!("job-{i}"))
            .arg("ce-source")
            .arg("/jobs")
            .arg("ce-type")
            .arg("job")
            .arg("content-type")
            .arg("application/json")
            .arg("data")
            .arg(format!("{{\"n\":{i}}}"))
            .ignore();
    }
    let _: () = pipe.query(&mut other.conn()).unwrap();
    // Kill while the connector is mid-way, then start again.
    assert!(wait_until(Duration::from_secs(15), || rx.count() >= 20).await);
    gw.kill9();
    let at_kill = rx.count();
    assert!(
        at_kill < n,
        "all {n} were delivered before the kill: not a mid-flow test"
    );
    gw.restart().await;

    // The other Redis goes away and comes back (its AOF keeps the stream and group).
    other.restart();
    for i in n..n + 50 {
        let id = format!("job-{i}");
        xadd(
            &other,
            "jobs",
            &[
                ("ce-specversion", b"1.0"),
                ("ce-id", id.as_bytes()),
                ("ce-source", b"/jobs"),
                ("ce-type", b"job"),
            ],
        );
    }
    let expected: HashSet<String> = (0..n + 50).map(|i| format!("job-{i}")).collect();
    let complete = wait_until(Duration::from_secs(40), || {
        let got: HashSet<String> = rx.ce_ids().into_iter().collect();
        expected.is_subset(&got)
    })
    .await;
    let got: HashSet<String> = rx.ce_ids().into_iter().collect();
    let missing: Vec<_> = expected.difference(&got).take(10).collect();
    assert!(complete, "missing {missing:?}\n{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_redis_target_writes_what_the_connector_reads() {
    let redis = Redis::start();
    let other = Redis::start();
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: out
    bus: orders
    targets:
      - {{name: binary, kind: redis, url: "{url}", stream: out-binary}}
      - {{name: structured, kind: redis, url: "{url}", stream: out-structured, mode: structured, max_len: 1000}}
"#,
        url = other.url
    );
    let gw = Gateway::start(&redis, &config).await;
    let event = r#"{"specversion":"1.0","id":"o-1","source":"/shop","type":"order.created","subject":"o/1","tenant":"acme","datacontenttype":"application/json","data":{"total": 1.50}}"#;
    assert_eq!(post_structured(&gw, "orders", event).await, 202);
    // Binary data, ingested in binary mode.
    let status = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "o-2")
        .header("ce-source", "/shop")
        .header("ce-type", "order.blob")
        .header("content-type", "image/png")
        .body(vec![137u8, 80, 78, 71, 0, 255])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);

    assert!(
        wait_until(Duration::from_secs(10), || other.xlen("out-binary") == 2
            && other.xlen("out-structured") == 2)
        .await,
        "{}",
        gw.logs()
    );
    type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
    let read = |stream: &str| -> Entries {
        redis::cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .query(&mut other.conn())
            .unwrap()
    };
    let field = |fields: &[(String, Vec<u8>)], name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    // Delivered concurrently: find each by its id.
    let by_id = |entries: &Entries, key: &str, id: &str| -> Vec<(String, Vec<u8>)> {
        entries
            .iter()
            .find(|(_, fields)| {
                fields
                    .iter()
                    .any(|(k, v)| k == "ce-id" && v == id.as_bytes())
                    || fields.iter().any(|(k, v)| {
                        k == key && serde_json::from_slice::<Value>(v).is_ok_and(|d| d["id"] == id)
                    })
            })
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("{id} not in the stream"))
    };
    let binary = read("out-binary");
    let first = &by_id(&binary, "-", "o-1");
    assert_eq!(field(first, "ce-id").unwrap(), b"o-1");
    assert_eq!(field(first, "ce-subject").unwrap(), b"o/1");
    assert_eq!(field(first, "ce-tenant").unwrap(), b"acme");
    assert_eq!(field(first, "content-type").unwrap(), b"application/json");
    assert_eq!(field(first, "data").unwrap(), br#"{"total": 1.50}"#);
    // The gateway's id is on the path, so a connector of this gateway would drop it.
    assert!(field(first, "ce-sluicepath").is_some());
    let second = &by_id(&binary, "-", "o-2");
    assert_eq!(field(second, "content-type").unwrap(), b"image/png");
    assert_eq!(
        field(second, "data").unwrap(),
        vec![137u8, 80, 78, 71, 0, 255]
    );

    let structured = read("out-structured");
    let s1 = by_id(&structured, "data", "o-1");
    let ct = field(&s1, "content-type").unwrap();
    assert!(ct.starts_with(b"application/cloudevents+json"));
    let doc: Value = serde_json::from_slice(&field(&s1, "data").unwrap()).unwrap();
    assert_eq!(doc["id"], "o-1");
    assert_eq!(doc["tenant"], "acme");
    // The data's JSON bytes are kept (arbitrary precision): 1.50 stays 1.50.
    assert_eq!(doc["data"].to_string(), r#"{"total":1.50}"#);
    let s2 = by_id(&structured, "data", "o-2");
    let blob: Value = serde_json::from_slice(&field(&s2, "data").unwrap()).unwrap();
    assert_eq!(blob["data_base64"], "iVBORwD/");
    assert!(field(&s1, "ce-id").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_sent_to_redis_and_read_back_by_the_same_gateway_does_not_loop() {
    let redis = Redis::start();
    let other = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
connectors:
  - {{name: loop, kind: redis, bus: orders, url: "{url}", stream: ring, block: 200ms}}
rules:
  - name: out
    bus: orders
    targets:
      - {{name: ring, kind: redis, url: "{url}", stream: ring}}
      - {{name: rx, kind: http, url: "{rx}"}}
"#,
        url = other.url,
        rx = rx.url("/in"),
    );
    let gw = Gateway::start(&redis, &config).await;
    assert!(
        wait_until(Duration::from_secs(10), || redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("ring")
            .query::<Vec<redis::Value>>(&mut other.conn())
            .map(|g| !g.is_empty())
            .unwrap_or(false))
        .await
    );
    let event = common::structured_event("loop-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &event).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() >= 1).await);
    // Read back by the connector and dropped: the stream holds one entry, the receiver
    // got the event once, and the drop is counted.
    let returned = r#"sluice_connector_messages_total{connector="loop",outcome="returned"} 1"#;
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = reqwest::get(gw.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(returned) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metrics.contains(returned), "{metrics}\n{}", gw.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(other.xlen("ring"), 1);
    assert_eq!(rx.ce_ids(), vec!["loop-1".to_string()]);
}
