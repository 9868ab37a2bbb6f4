//! The control plane: resources made through `/api/v1` on one replica route events on
//! another within a second, versions and preconditions, validation with paths, the
//! file's resources read-only, secrets redacted, audit, restarts, SIGHUP, apply/diff/
//! get/delete from the CLI, and a kill -9 in the middle of an apply.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A configuration file that defines no resources.
const EMPTY: &str = "{}\n";

async fn put(gw: &Gateway, path: &str, body: Value) -> (u16, Value, Option<String>) {
    send(gw, reqwest::Method::PUT, path, Some(body), &[]).await
}

async fn send(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut req = reqwest::Client::new().request(method, gw.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let etag = res
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, etag)
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value, Option<String>) {
    send(gw, reqwest::Method::GET, path, None, &[]).await
}

fn rule(url: &str, ty: &str) -> Value {
    json!({
        "pattern": {"type": [ty]},
        "targets": [{"name": "rx", "kind": "http", "url": url}]
    })
}

async fn ingest(gw: &Gateway, bus: &str, id: &str, ty: &str) {
    let body = structured_event(id, ty, r#"{"n":1}"#);
    assert_eq!(post_structured(gw, bus, &body).await, 202);
}

/// Ingests a probe event every 20 ms on `gw` until `rx` receives one: how long the
/// change took to be in force there.
async fn until_routed(gw: &Gateway, bus: &str, ty: &str, rx: &Receiver) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    while rx.count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never routed");
        ingest(gw, bus, &format!("probe-{n}"), ty).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_made_on_one_replica_routes_on_the_other() {
    let redis = Redis::start();
    let a = Gateway::start(&redis, EMPTY).await;
    let b = Gateway::start(&redis, EMPTY).await;
    let first = Receiver::start().await;
    let second = Receiver::start().await;

    let (status, bus, etag) = put(&a, "/api/v1/buses/orders", json!({"retention": "1h"})).await;
    assert_eq!(status, 201, "{bus}");
    assert_eq!(bus["origin"], "api");
    assert!(etag.is_some());
    let (status, body, _) = put(
        &a,
        "/api/v1/buses/orders/rules/paid",
        rule(&first.url("/hook"), "order.paid"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["spec"]["targets"][0]["url"], first.url("/hook"));

    // Created through A, in force on B within a second.
    let took = until_routed(&b, "orders", "order.paid", &first).await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let (_, on_b, _) = get(&b, "/api/v1/buses/orders/rules/paid").await;
    assert_eq!(on_b["spec"]["pattern"], json!({"type": ["order.paid"]}));

    // Changed through B: the next events go to the new URL only.
    let (status, _, _) = put(
        &b,
        "/api/v1/buses/orders/rules/paid",
        rule(&second.url("/hook"), "order.paid"),
    )
    .await;
    assert_eq!(status, 200);
    until_routed(&a, "orders", "order.paid", &second).await;
    let before = first.count();
    ingest(&a, "orders", "after-update", "order.paid").await;
    assert!(
        wait_until(Duration::from_secs(5), || second
            .ce_ids()
            .contains(&"after-update".to_string()))
        .await
    );
    assert_eq!(
        first.count(),
        before,
        "the old URL got an event after the update"
    );

    // Deleted through A: nothing is routed by it any more, on either replica.
    let (status, _, _) = send(
        &a,
        reqwest::Method::DELETE,
        "/api/v1/buses/orders/rules/paid",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (first_n, second_n) = (first.count(), second.count());
    ingest(&a, "orders", "gone-a", "order.paid").await;
    ingest(&b, "orders", "gone-b", "order.paid").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!((first.count(), second.count()), (first_n, second_n));
    let (status, body, _) = get(&b, "/api/v1/buses/orders/rules/paid").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_preconditions_and_a_race_with_one_winner() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    let rx = Receiver::start().await;
    put(&gw, "/api/v1/buses/orders", json!({})).await;
    let (_, _, etag) = put(&gw, "/api/v1/buses/orders/rules/r", rule(&rx.url("/"), "a")).await;
    let etag = etag.unwrap();

    // Up to date: accepted, new version.
    let (status, _, new_etag) = send(
        &gw,
        reqwest::Method::PUT,
        "/api/v1/buses/orders/rules/r",
        Some(rule(&rx.url("/"), "b")),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(status, 200);
    let new_etag = new_etag.unwrap();
    assert_ne!(new_etag, etag);
    // Stale: 412, nothing changed.
    let (status, body, _) = send(
        &gw,
        reqwest::Method::PUT,
        "/api/v1/buses/orders/rules/r",
        Some(rule(&rx.url("/"), "c")),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"], "precondition_failed");
    let (_, now, _) = get(&gw, "/api/v1/buses/orders/rules/r").await;
    assert_eq!(now["spec"]["pattern"]["type"], json!(["b"]));
    // Create-only on an existing resource: 412.
    let (status, _, _) = send(
        &gw,
        reqwest::Method::PUT,
        "/api/v1/buses/orders/rules/r",
        Some(rule(&rx.url("/"), "c")),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(status, 412);

    // Two clients that read the same version race: exactly one wins.
    for round in 0..5 {
        let (_, _, tag) = get(&gw, "/api/v1/buses/orders/rules/r").await;
        let tag = tag.unwrap();
        let precondition = [("if-match", tag.as_str())];
        let one = send(
            &gw,
            reqwest::Method::PUT,
            "/api/v1/buses/orders/rules/r",
            Some(rule(&rx.url("/"), &format!("one-{round}"))),
            &precondition,
        );
        let two = send(
            &gw,
            reqwest::Method::PUT,
            "/api/v1/buses/orders/rules/r",
            Some(rule(&rx.url("/"), &format!("two-{round}"))),
            &precondition,
        );
        let ((s1, _, _), (s2, _, _)) = tokio::join!(one, two);
        let mut statuses = [s1, s2];
        statuses.sort();
        assert_eq!(statuses, [200, 412], "round {round}");
        let (_, now, _) = get(&gw, "/api/v1/buses/orders/rules/r").await;
        let winner = if s1 == 200 { "one" } else { "two" };
        assert_eq!(
            now["spec"]["pattern"]["type"],
            json!([format!("{winner}-{round}")])
        );
    }

    // Concurrent writes to different rules without preconditions: none is lost.
    let writes: Vec<_> = (0..8)
        .map(|i| {
            let url = gw.url(&format!("/api/v1/buses/orders/rules/many-{i}"));
            let body = rule(&rx.url("/"), "x").to_string();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .put(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for w in writes {
        assert_eq!(w.await.unwrap(), 201);
    }
    let (_, list, _) = get(&gw, "/api/v1/buses/orders/rules?limit=1000").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_resources_are_refused_with_their_paths() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    put(&gw, "/api/v1/buses/orders", json!({})).await;

    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/bad",
        json!({
            "pattern": {"type": "not-a-list"},
            "targets": [
                {"name": "ok", "kind": "http", "url": "http://127.0.0.1:1/"},
                {"name": "t", "kind": "http", "url": "http://127.0.0.1:1/",
                 "transform": {"form": "TEMPLATE", "value": "not json", "template": "x"}}
            ]
        }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_resource");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"pattern.type"), "{body}");
    assert!(
        fields.iter().any(|f| f.starts_with("targets[1].transform")),
        "{body}"
    );
    // An unknown field, a wrong kind, a rule on a bus that does not exist.
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/x",
        json!({"targets": [], "colour": "red"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/x",
        json!({"targets": [{"name": "t", "kind": "carrier-pigeon"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "targets[0].kind", "{body}");
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/nope/rules/x",
        rule("http://127.0.0.1:1/", "a"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "bus", "{body}");
    // The body naming another resource than the URL; not JSON; not an object.
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/x",
        json!({"name": "y", "targets": []}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("name")));
    let res = reqwest::Client::new()
        .put(gw.url("/api/v1/buses/orders"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_body");
    let (status, _, _) = put(&gw, "/api/v1/buses/orders", json!([1, 2])).await;
    assert_eq!(status, 400);
    // Nothing of that was stored.
    let (_, list, _) = get(&gw, "/api/v1/rules").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn file_resources_are_read_only_and_the_store_adds_to_them() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: from-file
    bus: orders
    pattern: {{type: [a]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
"#,
        rx.url("/file")
    );
    let gw = Gateway::start(&redis, &config).await;
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/from-file",
        rule(&rx.url("/"), "b"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "read_only");
    assert!(body["message"].as_str().unwrap().contains("file"));
    let (status, _, _) = send(
        &gw,
        reqwest::Method::DELETE,
        "/api/v1/buses/orders",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 409);
    let (_, got, etag) = get(&gw, "/api/v1/buses/orders/rules/from-file").await;
    assert_eq!(got["origin"], "file");
    assert!(etag.is_none());
    // An API rule on the file's bus works beside the file's.
    let (status, _, _) = put(
        &gw,
        "/api/v1/buses/orders/rules/from-api",
        rule(&rx.url("/api"), "b"),
    )
    .await;
    assert_eq!(status, 201);
    ingest(&gw, "orders", "to-file", "a").await;
    ingest(&gw, "orders", "to-api", "b").await;
    assert!(wait_until(Duration::from_secs(5), || rx.count() == 2).await);
    let paths: Vec<String> = rx
        .received()
        .iter()
        .map(|r| format!("{}={}", r.path, r.header("ce-id").unwrap()))
        .collect();
    assert!(paths.contains(&"/file=to-file".to_string()), "{paths:?}");
    assert!(paths.contains(&"/api=to-api".to_string()), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resources_survive_a_restart_of_every_replica() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let mut a = Gateway::start(&redis, EMPTY).await;
    let mut b = Gateway::start(&redis, EMPTY).await;
    put(&a, "/api/v1/buses/orders", json!({})).await;
    put(
        &a,
        "/api/v1/buses/orders/rules/paid",
        rule(&rx.url("/"), "order.paid"),
    )
    .await;
    a.kill9();
    b.kill9();
    a.restart().await;
    b.restart().await;
    a.ready().await;
    ingest(&b, "orders", "after-restart", "order.paid").await;
    assert!(
        wait_until(Duration::from_secs(10), || rx
            .ce_ids()
            .contains(&"after-restart".to_string()))
        .await
    );
    let (_, got, _) = get(&a, "/api/v1/buses/orders/rules/paid").await;
    assert_eq!(got["origin"], "api");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_redacted_and_kept_on_a_round_trip() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, EMPTY).await;
    put(&gw, "/api/v1/buses/hooks", json!({})).await;
    let (status, body, _) = put(
        &gw,
        "/api/v1/sources/gh",
        json!({"kind": "github", "bus": "hooks", "secret": "literal-s3cret"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["spec"]["secret"], "***");
    let (status, body, _) = put(
        &gw,
        "/api/v1/buses/hooks/rules/all",
        json!({"targets": [{"name": "rx", "kind": "http", "url": rx.url("/"),
                            "signing": {"secret": "env:SIGNING_SECRET_NOT_SET_X"}}]}),
    )
    .await;
    // A reference to an environment variable this replica does not have: refused.
    assert_eq!(status, 400, "{body}");
    assert!(
        body["field"]
            .as_str()
            .unwrap()
            .starts_with("targets[0].signing.secret"),
        "{body}"
    );
    put(
        &gw,
        "/api/v1/buses/hooks/rules/all",
        json!({"targets": [{"name": "rx", "kind": "http", "url": rx.url("/")}]}),
    )
    .await;

    // Read back and written again as read: the secret stays the stored one.
    let (_, got, _) = get(&gw, "/api/v1/sources/gh").await;
    assert_eq!(got["spec"]["secret"], "***");
    let (status, _, _) = put(&gw, "/api/v1/sources/gh", got["spec"].clone()).await;
    assert!(status == 200, "{status}");
    // The webhook still verifies with the original secret.
    let payload = br#"{"action":"opened"}"#;
    let sig = github_signature("literal-s3cret", payload);
    let res = reqwest::Client::new()
        .post(gw.url("/webhooks/gh"))
        .header("x-hub-signature-256", sig)
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-1")
        .header("content-type", "application/json")
        .body(payload.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    assert!(wait_until(Duration::from_secs(5), || rx.count() == 1).await);
    // A `***` where nothing is stored is refused.
    let (status, _, _) = put(
        &gw,
        "/api/v1/sources/other",
        json!({"kind": "github", "bus": "hooks", "secret": "***"}),
    )
    .await;
    assert_eq!(status, 400);
    // Never in the logs.
    assert!(!gw.logs().contains("literal-s3cret"));
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn buses_in_use_or_not_empty_are_kept_and_lists_page() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    for name in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            put(&gw, &format!("/api/v1/buses/{name}"), json!({}))
                .await
                .0,
            201
        );
    }
    // Pages of two, in name order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/buses?limit=2".to_string();
    loop {
        let (status, page, _) = get(&gw, &path).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/buses?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let (status, body, _) = get(&gw, "/api/v1/buses?limit=0").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("limit")));

    put(
        &gw,
        "/api/v1/buses/a/rules/r",
        rule("http://127.0.0.1:1/", "x"),
    )
    .await;
    let (status, body, _) = send(&gw, reqwest::Method::DELETE, "/api/v1/buses/a", None, &[]).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "in_use");
    ingest(&gw, "b", "kept", "x").await;
    let (status, body, _) = send(&gw, reqwest::Method::DELETE, "/api/v1/buses/b", None, &[]).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "not_empty");
    let (status, _, _) = send(
        &gw,
        reqwest::Method::DELETE,
        "/api/v1/buses/b?force=true",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(redis.xlen("sluice:{b}:events"), 0);
    let (status, _, _) = send(&gw, reqwest::Method::DELETE, "/api/v1/buses/c", None, &[]).await;
    assert_eq!(status, 204);
    let (status, _, _) = send(&gw, reqwest::Method::DELETE, "/api/v1/buses/c", None, &[]).await;
    assert_eq!(status, 404);
    // Ingest to a deleted bus: 404 once the change is in force.
    let body = structured_event("late", "x", "{}");
    assert_eq!(post_structured(&gw, "c", &body).await, 404);

    // Every change is in the audit stream, oldest first.
    let (_, audit, _) = get(&gw, "/api/v1/audit?limit=1000").await;
    let entries: Vec<(String, String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(entries[0], ("create".into(), "bus".into(), "a".into()));
    assert!(entries.contains(&("create".into(), "rule".into(), "a/r".into())));
    assert!(entries.contains(&("delete".into(), "bus".into(), "b".into())));
    let b_delete = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "delete" && e["name"] == "b")
        .unwrap();
    assert_eq!(b_delete["old_version"], "2");
    assert_eq!(b_delete["new_version"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reads_the_file_again() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, "buses: [{name: orders}]\n").await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: added
    bus: orders
    pattern: {{type: [a]}}
    targets: [{{name: rx, kind: http, url: "{}"}}]
"#,
        rx.url("/")
    );
    std::fs::write(gw.config_path(), config).unwrap();
    gw.hangup();
    until_routed(&gw, "orders", "a", &rx).await;
    // An invalid file: the running configuration stays, the process too.
    std::fs::write(gw.config_path(), "buses: [{name: 1 2 3}]\nrules: 7\n").unwrap();
    gw.hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rx.count();
    ingest(&gw, "orders", "still", "a").await;
    assert!(wait_until(Duration::from_secs(5), || rx.count() > before).await);
    assert!(gw.logs().contains("SIGHUP: the file is invalid"));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_pattern_and_transform_endpoints() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    let event = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "order.paid",
                       "datacontenttype": "application/json", "data": {"amount": 120}});
    let post =
        |path: &'static str, body: Value| send(&gw, reqwest::Method::POST, path, Some(body), &[]);
    let (status, body, _) = post(
        "/api/v1/test-pattern",
        json!({"pattern": {"data": {"amount": [{"numeric": [">", 100]}]}}, "event": event}),
    )
    .await;
    assert_eq!((status, body["match"].clone()), (200, json!(true)));
    let (_, body, _) = post(
        "/api/v1/test-pattern",
        json!({"pattern": {"type": ["other"]}, "event": event}),
    )
    .await;
    assert_eq!(body["match"], false);
    let (status, body, _) = post(
        "/api/v1/test-pattern",
        json!({"pattern": {"type": "x"}, "event": event}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("pattern")));
    let (status, body, _) = post(
        "/api/v1/test-pattern",
        json!({"pattern": {}, "event": {"id": "1"}}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("event")));
    let (status, body, _) = post(
        "/api/v1/transform",
        json!({"transform": {"form": "TEMPLATE", "value": "{\"a\": \"$.data.amount\"}", "template": "{\"total\": ${a}}"}, "event": event}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["body"], json!({"total": 120}));
}

fn sluice_env(args: &[&str], server: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_SERVER", server)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_diff_get_delete_from_the_cli() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, EMPTY).await;
    let server = gw.url("");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resources.yaml");
    let doc = |rules: &[&str]| {
        let mut text = String::from("listen: 0.0.0.0:1\nbuses: [{name: orders}]\nrules:\n");
        for r in rules {
            text.push_str(&format!(
                "  - name: {r}\n    bus: orders\n    pattern: {{type: [{r}]}}\n    targets: [{{name: rx, kind: http, url: \"{}\"}}]\n",
                rx.url("/")
            ));
        }
        text
    };
    std::fs::write(&file, doc(&["one", "two"])).unwrap();
    let f = file.to_str().unwrap();

    let (code, out, err) = sluice_env(&["diff", "-f", f], &server);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("+++ rule/orders/one"), "{out}");
    let (code, out, _) = sluice_env(&["apply", "-f", f, "--dry-run"], &server);
    assert_eq!(code, 0);
    assert!(out.contains("rule/orders/one created (dry run)"), "{out}");
    let (_, list, _) = get(&gw, "/api/v1/rules").await;
    assert_eq!(list["items"], json!([]), "a dry run wrote");

    let (code, out, err) = sluice_env(&["apply", "-f", f], &server);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("bus/orders created") && out.contains("rule/orders/two created"),
        "{out}"
    );
    assert!(err.contains("listen ignored"), "{err}");
    let (code, out, _) = sluice_env(&["diff", "-f", f], &server);
    assert_eq!(code, 0, "{out}");
    ingest(&gw, "orders", "via-apply", "two").await;
    assert!(wait_until(Duration::from_secs(5), || rx.count() == 1).await);

    // Without --prune, a rule left out stays; with it, it goes.
    std::fs::write(&file, doc(&["one"])).unwrap();
    let (_, out, _) = sluice_env(&["apply", "-f", f], &server);
    assert!(!out.contains("deleted"), "{out}");
    let (code, out, _) = sluice_env(&["diff", "-f", f, "--prune"], &server);
    assert_eq!(code, 1);
    assert!(out.contains("--- rule/orders/two"), "{out}");
    let (code, out, _) = sluice_env(&["apply", "-f", f, "--prune"], &server);
    assert_eq!(code, 0);
    assert!(out.contains("rule/orders/two deleted"), "{out}");

    let (code, out, _) = sluice_env(&["get", "rules"], &server);
    assert_eq!(code, 0);
    assert!(
        out.contains("orders/one") && !out.contains("orders/two"),
        "{out}"
    );
    let (code, out, _) = sluice_env(&["get", "targets"], &server);
    assert_eq!(code, 0);
    assert!(out.contains("one") && out.contains("http"), "{out}");
    // `get -o yaml` prints a document apply takes back unchanged.
    let (code, yaml, _) = sluice_env(&["get", "rules", "-o", "yaml"], &server);
    assert_eq!(code, 0);
    let back = dir.path().join("back.yaml");
    std::fs::write(&back, yaml).unwrap();
    let (code, out, _) = sluice_env(&["apply", "-f", back.to_str().unwrap()], &server);
    assert_eq!(code, 0);
    assert!(out.contains("rule/orders/one unchanged"), "{out}");

    // An invalid file: the API's errors with the file's paths, exit 1, nothing written.
    std::fs::write(&file, "buses: [{name: orders}]\nrules:\n  - {name: bad, bus: orders, targets: [{name: t, kind: http, url: nope}]}\n").unwrap();
    let (code, _, err) = sluice_env(&["apply", "-f", f], &server);
    assert_eq!(code, 1);
    assert!(err.contains("rules[0].targets[0].url"), "{err}");

    let (code, out, _) = sluice_env(&["delete", "rule", "orders/one"], &server);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = sluice_env(&["delete", "rule", "orders/one"], &server);
    assert_eq!(code, 1);
    assert!(err.contains("no rule"), "{err}");
    let (code, _, _) = sluice_env(&["delete", "rule", "no-slash"], &server);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_during_apply_leaves_the_old_or_the_new_version() {
    let redis = Redis::start();
    let mut gw = Gateway::start(&redis, EMPTY).await;
    let many = |tag: &str| {
        let rules: Vec<Value> = (0..2000)
            .map(|i| json!({"name": format!("r{i}"), "bus": "orders", "pattern": {"type": [tag]},
                            "targets": [{"name": "t", "kind": "http", "url": "http://127.0.0.1:1/"}]}))
            .collect();
        json!({"config": {"buses": [{"name": "orders"}], "rules": rules}})
    };
    let (status, body, _) = send(
        &gw,
        reqwest::Method::POST,
        "/api/v1/apply",
        Some(many("old")),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for delay_ms in [0u64, 50, 150, 300, 600] {
        let url = gw.url("/api/v1/apply");
        let body = many(&format!("new-{delay_ms}")).to_string();
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
        });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        gw.kill9();
        let _ = request.await;
        // Every rule has the same pattern: all of the old version or all of the new.
        let mut conn = redis.conn();
        let stored: Vec<String> = redis::cmd("HVALS")
            .arg("sluice:{control}:res:rules")
            .query(&mut conn)
            .unwrap();
        assert_eq!(stored.len(), 2000);
        let tags: std::collections::HashSet<String> = stored
            .iter()
            .map(|s| {
                serde_json::from_str::<Value>(s).unwrap()["spec"]["pattern"]["type"][0]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            tags.len(),
            1,
            "a mix after a kill at {delay_ms} ms: {tags:?}"
        );
        gw.restart().await;
        let (_, after, _) = get(&gw, "/api/v1/buses/orders/rules/r1999").await;
        let tag = after["spec"]["pattern"]["type"][0]
            .as_str()
            .unwrap()
            .to_string();
        assert!(tags.contains(&tag));
        // Make the next round start from "old" or a new- tag, whichever is stored.
    }
}

fn target(name: &str, url: &str, extra: Value) -> Value {
    let mut t = json!({"name": name, "kind": "http", "url": url,
                       "retry": {"max_attempts": 50, "initial": "200ms", "max": "300ms"}});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_in_flight_finishes_under_its_version_and_retries_take_the_new_url() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    let slow = Receiver::start().await;
    slow.set_latency(Duration::from_millis(1500));
    let new = Receiver::start().await;
    put(&gw, "/api/v1/buses/orders", json!({})).await;
    let put_target = |url: String| {
        put(
            &gw,
            "/api/v1/buses/orders/rules/r",
            json!({"targets": [target("t", &url, json!({}))]}),
        )
    };
    assert_eq!(put_target(slow.url("/")).await.0, 201);
    ingest(&gw, "orders", "in-flight", "x").await;
    // The attempt is under way (the receiver takes 1.5 s) when the URL changes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(put_target(new.url("/")).await.0, 200);
    ingest(&gw, "orders", "after", "x").await;
    assert!(wait_until(Duration::from_secs(5), || slow.ce_ids() == ["in-flight"]).await);
    assert!(wait_until(Duration::from_secs(5), || new.ce_ids() == ["after"]).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slow.ce_ids(), ["in-flight"], "delivered twice");
    assert_eq!(
        new.ce_ids(),
        ["after"],
        "the in-flight event was sent again"
    );

    // A failing target's retries go to the URL in force when they are due.
    let failing = Receiver::start().await;
    failing.answer_with(503);
    assert_eq!(put_target(failing.url("/")).await.0, 200);
    ingest(&gw, "orders", "retried", "x").await;
    assert!(wait_until(Duration::from_secs(5), || !failing.attempts().is_empty()).await);
    assert_eq!(put_target(new.url("/")).await.0, 200);
    assert!(
        wait_until(Duration::from_secs(5), || new
            .ce_ids()
            .contains(&"retried".to_string()))
        .await,
        "the retry did not go to the new URL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_target_keeps_its_events_for_the_same_target_made_again() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    let rx = Receiver::start().await;
    rx.answer_with(503);
    put(&gw, "/api/v1/buses/orders", json!({})).await;
    let rule_body = json!({"targets": [target("t", &rx.url("/"), json!({}))]});
    put(&gw, "/api/v1/buses/orders/rules/r", rule_body.clone()).await;
    ingest(&gw, "orders", "w1", "x").await;
    ingest(&gw, "orders", "w2", "x").await;
    assert!(wait_until(Duration::from_secs(5), || rx.attempts().len() >= 2).await);
    let (status, _, _) = send(
        &gw,
        reqwest::Method::DELETE,
        "/api/v1/buses/orders/rules/r",
        None,
        &[],
    )
    .await;
    assert_eq!(status, 204);
    // Gone: no more attempts while it does not exist.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let attempts = rx.attempts().len();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        rx.attempts().len(),
        attempts,
        "a deleted target still delivers"
    );
    // Made again (same bus, rule and target names), its waiting events are delivered.
    rx.answer_normally();
    put(&gw, "/api/v1/buses/orders/rules/r", rule_body).await;
    assert!(
        wait_until(Duration::from_secs(5), || {
            let mut ids = rx.ce_ids();
            ids.sort();
            ids == ["w1", "w2"]
        })
        .await,
        "{:?}",
        rx.ce_ids()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_keep_flowing_while_rules_change() {
    let redis = Redis::start();
    let a = Gateway::start(&redis, EMPTY).await;
    let b = Gateway::start(&redis, EMPTY).await;
    let rx = Receiver::start().await;
    put(&a, "/api/v1/buses/orders", json!({})).await;
    put(
        &a,
        "/api/v1/buses/orders/rules/keep",
        json!({"pattern": {"type": ["keep"]}, "targets": [target("t", &rx.url("/"), json!({}))]}),
    )
    .await;
    b.ready().await;
    let total = 300;
    let ingest_all = async {
        for i in 0..total {
            let gw = if i % 2 == 0 { &a } else { &b };
            ingest(gw, "orders", &format!("e{i}"), "keep").await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // Meanwhile: other rules come and go, and the target's own headers change 5 times.
    let churn = async {
        for round in 0..20 {
            let (status, body, _) = put(
                &b,
                &format!("/api/v1/buses/orders/rules/other-{}", round % 3),
                json!({"pattern": {"type": [format!("other-{round}")]}, "targets": [target("t", &rx.url("/other"), json!({}))]}),
            )
            .await;
            assert!(status == 200 || status == 201, "{body}");
            if round % 4 == 0 {
                let headers = json!({"headers": {"x-round": round.to_string()}});
                put(&a, "/api/v1/buses/orders/rules/keep", json!({"pattern": {"type": ["keep"]}, "targets": [target("t", &rx.url("/"), headers)]})).await;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    };
    tokio::join!(ingest_all, churn);
    // Every event once at least (a changed target may repeat one it was delivering).
    let all = || {
        let ids: std::collections::HashSet<String> = rx.ce_ids().into_iter().collect();
        ids.len()
    };
    assert!(
        wait_until(Duration::from_secs(15), || all() == total).await,
        "{} of {total}; missing {:?}\n{}",
        all(),
        {
            let got: std::collections::HashSet<String> = rx.ce_ids().into_iter().collect();
            (0..total)
                .map(|i| format!("e{i}"))
                .filter(|id| !got.contains(id))
                .collect::<Vec<_>>()
        },
        a.logs()
    );
    let ids = rx.ce_ids();
    let duplicates = ids.len() - total;
    assert!(duplicates <= 5, "{duplicates} duplicates");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_rule_routes_nothing_until_enabled_again() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, EMPTY).await;
    let rx = Receiver::start().await;
    put(&gw, "/api/v1/buses/orders", json!({})).await;
    let body = |enabled: bool| {
        json!({"enabled": enabled, "description": "paid orders to billing",
               "pattern": {"type": ["paid"]}, "targets": [{"name": "rx", "kind": "http", "url": rx.url("/")}]})
    };
    let (status, got, _) = put(&gw, "/api/v1/buses/orders/rules/r", body(false)).await;
    assert_eq!(status, 201, "{got}");
    assert_eq!(got["spec"]["description"], "paid orders to billing");
    ingest(&gw, "orders", "while-disabled", "paid").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.count(), 0, "a disabled rule routed");
    assert_eq!(
        put(&gw, "/api/v1/buses/orders/rules/r", body(true)).await.0,
        200
    );
    ingest(&gw, "orders", "enabled", "paid").await;
    assert!(
        wait_until(Duration::from_secs(5), || rx.ce_ids() == ["enabled"]).await,
        "{:?}",
        rx.ce_ids()
    );
}
