//! The DLQ over HTTP (`/api/v1/dlq`) and `sluice dlq redrive --pattern`: a target that
//! answers 400 dead-letters events; the API lists them with their reasons, redrives them
//! by id, by pattern or all once the target is fixed (delivered with the same ce-id), and
//! purges them. Real binary, real redis-server, a local receiver.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "s3cret-token";
const DLQ: &str = "sluice:{orders}:dlq:all:rx";

fn config(rx: &Receiver, api: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}, {{name: empty}}]
delivery: {{claim_idle: 5s}}
{api}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: rx, kind: http, url: "{}", timeout: 2s, retry: {{initial: 100ms, max: 200ms}},
          transform: {{form: JSONPATH, value: "$.data"}}}}
  - name: copy
    bus: orders
    pattern: {{type: [never]}}
    targets:
      - {{name: other, kind: http, url: "{}", timeout: 2s}}
"#,
        rx.url("/hook"),
        rx.url("/other")
    )
}

struct Api<'a> {
    gw: &'a Gateway,
    client: reqwest::Client,
}

impl Api<'_> {
    fn new(gw: &Gateway) -> Api<'_> {
        Api {
            gw,
            client: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.gw.url(&format!("/api/v1{path}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let res = self
            .client
            .post(self.gw.url(&format!("/api/v1{path}")))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn ce_ids(rx: &Receiver) -> Vec<String> {
    rx.received()
        .iter()
        .filter_map(|r| r.header("ce-id").map(str::to_string))
        .collect()
}

/// The DLQ entry id of each event id, from a listing.
fn entry_of(list: &Value, event_id: &str) -> String {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == event_id)
        .unwrap_or_else(|| panic!("{event_id} not in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_redrives_by_id_pattern_and_all_and_purges() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(400);
    let gw = Gateway::start(&redis, &config(&rx, &format!("api: {{token: {TOKEN}}}"))).await;
    let api = Api::new(&gw);

    let types = ["paid", "paid", "refund", "refund", "other", "other"];
    for (i, ty) in types.iter().enumerate() {
        let body = structured_event(&format!("e{i}"), &format!("order.{ty}"), "{\"n\":1}");
        assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    }
    assert!(wait_until(Duration::from_secs(15), || redis.xlen(DLQ) == 6).await);

    // Every target's DLQ with its depth.
    let (status, index) = api.get("/dlq").await;
    assert_eq!(status, 200, "{index}");
    assert_eq!(
        index,
        json!({"dlqs": [
            {"bus": "orders", "rule": "all", "target": "rx", "depth": 6},
            {"bus": "orders", "rule": "copy", "target": "other", "depth": 0},
        ]})
    );

    // The entries, with reason, attempts and time; paged.
    let (status, list) = api.get("/dlq/orders/all/rx").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["depth"], 6);
    assert_eq!(list["next"], Value::Null);
    let entries = list["entries"].as_array().unwrap();
    // Oldest first, in the order they were dead-lettered (deliveries run in parallel).
    let mut events: Vec<&str> = entries
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let listed = events.clone();
    events.sort();
    assert_eq!(events, ["e0", "e1", "e2", "e3", "e4", "e5"]);
    for e in entries {
        assert_eq!(e["reason"], "status 400", "{e}");
        assert_eq!(e["attempts"].as_array().unwrap().len(), 1, "{e}");
        assert_eq!(e["attempts"][0]["status"], 400, "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
        assert!(
            e.get("event").is_none(),
            "a listing leaves the event out: {e}"
        );
    }
    let (_, first) = api.get("/dlq/orders/all/rx?limit=4").await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 4);
    let next = first["next"].as_str().unwrap().to_string();
    assert_eq!(next, entries[3]["id"].as_str().unwrap());
    let (_, second) = api
        .get(&format!("/dlq/orders/all/rx?after={next}&limit=4"))
        .await;
    let rest: Vec<&str> = second["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, listed[4..]);
    assert_eq!(second["next"], Value::Null);

    // One entry in full.
    let e0 = entry_of(&list, "e0");
    let (status, one) = api.get(&format!("/dlq/orders/all/rx/{e0}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["event"]["id"], "e0");
    assert_eq!(one["event"]["type"], "order.paid");
    assert_eq!(one["event"]["data"], json!({"n": 1}));
    assert_eq!(one["reason"], "status 400");
    // What the target got: the transform's output.
    assert_eq!(
        one["payload"],
        json!({"content_type": "application/json", "body": {"n": 1}}),
        "{one}"
    );

    // Fix the target; redrive by id (an unknown id is reported, not fatal).
    rx.answer_with(200);
    let (status, out) = api
        .post(
            "/dlq/orders/all/rx/redrive",
            &json!({"ids": [e0, "1-0"]}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out, json!({"redriven": 1, "not_found": ["1-0"]}));
    // By pattern: the router's matcher.
    let (status, out) = api
        .post(
            "/dlq/orders/all/rx/redrive",
            r#"{"pattern": {"type": [{"prefix": "order.ref"}]}}"#,
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["redriven"], 2);
    let wanted: HashSet<String> = ["e0", "e2", "e3"].map(String::from).into();
    assert!(
        wait_until(Duration::from_secs(10), || ce_ids(&rx)
            .into_iter()
            .collect::<HashSet<_>>()
            == wanted)
        .await,
        "{:?}",
        ce_ids(&rx)
    );
    assert_eq!(redis.xlen(DLQ), 3);

    // An invalid pattern is a 400 naming where.
    let (status, err) = api
        .post(
            "/dlq/orders/all/rx/redrive",
            r#"{"pattern": {"data": {"n": [{"numeric": [">"]}]}}}"#,
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "pattern.data.n[0].numeric", "{err}");
    let (status, err) = api
        .post("/dlq/orders/all/rx/redrive", r#"{"ids": ["17"]}"#)
        .await;
    assert_eq!((status, err["field"].as_str()), (400, Some("ids[0]")));

    // Purge one by id, then redrive all: the rest is delivered, the DLQ is empty.
    let e4 = entry_of(&list, "e4");
    let (status, out) = api
        .post(
            "/dlq/orders/all/rx/purge",
            &json!({"ids": [e4]}).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out, json!({"purged": 1, "not_found": []}));
    let (status, out) = api.post("/dlq/orders/all/rx/redrive", "{}").await;
    assert_eq!((status, out["redriven"].as_u64()), (200, Some(2)), "{out}");
    let wanted: HashSet<String> = ["e0", "e1", "e2", "e3", "e5"].map(String::from).into();
    assert!(
        wait_until(Duration::from_secs(10), || ce_ids(&rx)
            .into_iter()
            .collect::<HashSet<_>>()
            == wanted)
        .await,
        "{:?}",
        ce_ids(&rx)
    );
    assert_eq!(ce_ids(&rx).len(), 5, "each delivered once");
    // Redriven with the same bytes.
    assert!(rx.received().iter().all(|r| r.body == br#"{"n":1}"#));
    let (_, list) = api.get("/dlq/orders/all/rx").await;
    assert_eq!(list["entries"], json!([]));

    // Purge all.
    rx.answer_with(400);
    assert_eq!(post_batch(&gw, "orders", "p", 3).await, 202);
    assert!(wait_until(Duration::from_secs(10), || redis.xlen(DLQ) == 3).await);
    let (status, out) = api.post("/dlq/orders/all/rx/purge", "").await;
    assert_eq!((status, out["purged"].as_u64()), (200, Some(3)), "{out}");
    assert_eq!(redis.xlen(DLQ), 0);

    // Unknown names are 404s naming the part; bad parameters 400s naming them.
    for (path, field) in [
        ("/dlq/nope/all/rx", "bus"),
        ("/dlq/empty/all/rx", "rule"),
        ("/dlq/orders/nope/rx", "rule"),
        ("/dlq/orders/all/nope", "target"),
        ("/dlq/orders/all/rx/1-0", "entry"),
    ] {
        let (status, err) = api.get(path).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (404, Some(field)),
            "{path}: {err}"
        );
        assert_eq!(err["error"], "not_found");
    }
    let (status, err) = api.post("/dlq/orders/all/nope/redrive", "{}").await;
    assert_eq!((status, err["field"].as_str()), (404, Some("target")));
    for (path, field) in [
        ("/dlq/orders/all/rx?limit=0", "limit"),
        ("/dlq/orders/all/rx?limit=1001", "limit"),
        ("/dlq/orders/all/rx?limit=x", "limit"),
        ("/dlq/orders/all/rx?after=17", "after"),
        ("/dlq/orders/all/rx?afterr=1-0", "afterr"),
        ("/dlq/orders/all/rx/17", "entry"),
    ] {
        let (status, err) = api.get(path).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (400, Some(field)),
            "{path}: {err}"
        );
    }
    let (status, err) = api.post("/dlq/orders/all/rx/redrive", "{").await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("body")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_needs_the_bearer_token() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx, &format!("api: {{token: {TOKEN}}}"))).await;
    let client = reqwest::Client::new();
    let url = gw.url("/api/v1/dlq");

    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let res = client.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = client
        .post(gw.url("/api/v1/dlq/orders/all/rx/purge"))
        .bearer_auth("wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "operations are guarded too");

    let res = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // Without a token configured, loopback clients are served.
    drop(gw);
    let gw = Gateway::start(&redis, &config(&rx, "")).await;
    let res = client.get(gw.url("/api/v1/dlq")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_redrives_by_pattern() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(400);
    let text = config(&rx, "");
    let gw = Gateway::start(&redis, &text).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.yaml");
    std::fs::write(&file, &text).unwrap();
    let pattern_file = dir.path().join("pattern.json");
    std::fs::write(&pattern_file, r#"{"data": {"n": [{"numeric": [">", 1]}]}}"#).unwrap();

    for i in 0..4 {
        let body = structured_event(&format!("c{i}"), "t", &format!("{{\"n\":{i}}}"));
        assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    }
    assert!(wait_until(Duration::from_secs(10), || redis.xlen(DLQ) == 4).await);
    rx.answer_with(200);

    let dlq = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["dlq", "redrive", "--config"])
            .arg(&file)
            .args(["--redis", &redis.url])
            .args(["--bus", "orders", "--rule", "all", "--target", "rx"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = dlq(&["--pattern", &format!("@{}", pattern_file.display())]);
    assert_eq!((code, out.trim()), (0, "2 redriven"), "{err}");
    let (code, out, err) = dlq(&["--pattern", r#"{"id": ["c0"]}"#]);
    assert_eq!((code, out.trim()), (0, "1 redriven"), "{err}");
    let (code, _, err) = dlq(&["--pattern", r#"{"id": "c1"}"#]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid pattern") && err.contains("id"),
        "{err}"
    );
    let (code, _, err) = dlq(&["--pattern", "{}", "--all"]);
    assert_eq!(code, 2, "{err}");

    let wanted: HashSet<String> = ["c0", "c2", "c3"].map(String::from).into();
    assert!(
        wait_until(Duration::from_secs(10), || ce_ids(&rx)
            .into_iter()
            .collect::<HashSet<_>>()
            == wanted)
        .await,
        "{:?}",
        ce_ids(&rx)
    );
    assert_eq!(redis.xlen(DLQ), 1);
}
