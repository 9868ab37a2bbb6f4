//! Roles and tokens: a role matrix over the control API, 401/403 bodies, tokens shown
//! once and kept as hashes, revocation seen by another replica within a second, audit
//! entries, publisher tokens for `ingest_auth` buses, and the `sluice token` verbs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const BOOT: &str = "boot-s3cret-token";

fn config() -> String {
    format!("api: {{token: {BOOT}}}\nbuses:\n  - {{name: orders, ingest_auth: true}}\n  - {{name: other, ingest_auth: true}}\n  - {{name: open}}\n")
}

async fn call(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn make_token(gw: &Gateway, role: &str, buses: &[&str]) -> (String, String) {
    let (status, body) = call(
        gw,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(BOOT),
        Some(json!({"role": role, "buses": buses})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().unwrap().to_string(),
        body["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn each_role_gets_what_it_may_and_a_clear_refusal_otherwise() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config()).await;
    let (admin, _) = make_token(&gw, "admin", &[]).await;
    let (operator, _) = make_token(&gw, "operator", &[]).await;
    let (viewer, _) = make_token(&gw, "viewer", &[]).await;
    let (publisher, _) = make_token(&gw, "publisher", &["orders"]).await;
    let (revoked, revoked_id) = make_token(&gw, "admin", &[]).await;
    let (status, _) = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("/api/v1/tokens/{revoked_id}"),
        Some(BOOT),
        None,
    )
    .await;
    assert_eq!(status, 204);
    // Revocation reaches this replica's cache within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    use reqwest::Method as M;
    let rule = json!({"targets": [{"name": "t", "kind": "http", "url": "http://127.0.0.1:1/"}]});
    // (method, path, body, the lowest role allowed)
    let endpoints: Vec<(M, &str, Option<Value>, &str)> = vec![
        (M::GET, "/api/v1/buses", None, "viewer"),
        (M::GET, "/api/v1/dlq", None, "viewer"),
        (
            M::PUT,
            "/api/v1/buses/open/rules/r",
            Some(rule.clone()),
            "operator",
        ),
        (
            M::POST,
            "/api/v1/test-pattern",
            Some(
                json!({"pattern": {}, "event": {"specversion": "1.0", "id": "1", "source": "s", "type": "t"}}),
            ),
            "viewer",
        ),
        (M::GET, "/api/v1/tokens", None, "admin"),
        (M::GET, "/api/v1/audit", None, "admin"),
    ];
    let rank = |r: &str| {
        ["publisher", "viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    let principals: Vec<(&str, Option<&str>)> = vec![
        ("admin", Some(admin.as_str())),
        ("operator", Some(operator.as_str())),
        ("viewer", Some(viewer.as_str())),
        ("publisher", Some(publisher.as_str())),
        ("none", None),
        ("wrong", Some("not-a-token")),
        ("revoked", Some(revoked.as_str())),
    ];
    for (who, token) in &principals {
        for (method, path, body, lowest) in &endpoints {
            let (status, answer) = call(&gw, method.clone(), path, *token, body.clone()).await;
            let expected = match *who {
                "none" | "wrong" | "revoked" => 401,
                "publisher" => 403,
                role if rank(role) >= rank(lowest) => {
                    assert!(
                        (200..300).contains(&status),
                        "{who} {method} {path}: {status} {answer}"
                    );
                    continue;
                }
                _ => 403,
            };
            assert_eq!(status, expected, "{who} {method} {path}: {answer}");
            let code = if expected == 401 {
                "unauthorized"
            } else {
                "forbidden"
            };
            assert_eq!(answer["error"], code, "{who} {method} {path}");
            assert!(!answer["message"].as_str().unwrap().is_empty());
            if expected == 403 && *who != "publisher" {
                assert!(
                    answer["message"].as_str().unwrap().contains(lowest),
                    "{answer}"
                );
            }
        }
    }
    // The audit names who made each change.
    let (_, audit) = call(&gw, M::GET, "/api/v1/audit", Some(BOOT), None).await;
    let items = audit["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|e| e["action"] == "token.create" && e["actor"] == "bootstrap"));
    assert!(items
        .iter()
        .any(|e| e["action"] == "token.revoke" && e["name"] == revoked_id.as_str()));
    assert!(items.iter().any(|e| e["action"] == "create"
        && e["kind"] == "rule"
        && e["actor"].as_str().unwrap().starts_with("tok_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_shown_once_kept_as_hashes_and_revoked_everywhere() {
    let redis = Redis::start();
    let a = Gateway::start(&redis, &config()).await;
    let b = Gateway::start(&redis, &config()).await;
    let (token, id) = make_token(&a, "viewer", &[]).await;
    assert!(token.len() >= 40);
    // Listed without the token; Redis holds its hash only.
    let (_, list) = call(&a, reqwest::Method::GET, "/api/v1/tokens", Some(BOOT), None).await;
    assert!(list.to_string().contains(&id));
    assert!(!list.to_string().contains(&token));
    let mut conn = redis.conn();
    let stored: Vec<String> = redis::cmd("HGETALL")
        .arg("sluice:{control}:tokens")
        .query(&mut conn)
        .unwrap();
    assert!(
        !stored.iter().any(|s| s.contains(&token)),
        "the token itself is in Redis"
    );
    // Works on the other replica (within a second), then revoked through A stops there.
    let start = Instant::now();
    while call(
        &b,
        reqwest::Method::GET,
        "/api/v1/buses",
        Some(&token),
        None,
    )
    .await
    .0 != 200
    {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "B never accepted the token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = call(
        &a,
        reqwest::Method::DELETE,
        &format!("/api/v1/tokens/{id}"),
        Some(BOOT),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let start = Instant::now();
    while call(
        &b,
        reqwest::Method::GET,
        "/api/v1/buses",
        Some(&token),
        None,
    )
    .await
    .0 != 401
    {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = call(
        &a,
        reqwest::Method::DELETE,
        &format!("/api/v1/tokens/{id}"),
        Some(BOOT),
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    // Bad requests.
    let (status, _) = call(
        &a,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(BOOT),
        Some(json!({"role": "god"})),
    )
    .await;
    assert_eq!(status, 400);
    // Scoped to a bus: only that bus's paths.
    let (scoped, _) = make_token(&a, "viewer", &["orders"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        call(
            &a,
            reqwest::Method::GET,
            "/api/v1/buses/orders/rules",
            Some(&scoped),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        call(
            &a,
            reqwest::Method::GET,
            "/api/v1/buses/other/rules",
            Some(&scoped),
            None
        )
        .await
        .0,
        403
    );
}

async fn publish(gw: &Gateway, bus: &str, token: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(gw.url(&format!("/buses/{bus}/events")))
        .header("content-type", "application/cloudevents+json")
        .body(structured_event("p-1", "t", "{}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_auth_buses_take_publisher_tokens_of_that_bus() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config()).await;
    let (publisher, _) = make_token(&gw, "publisher", &["orders"]).await;
    let (viewer, _) = make_token(&gw, "viewer", &[]).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(publish(&gw, "orders", Some(&publisher)).await, 202);
    assert_eq!(publish(&gw, "orders", Some(BOOT)).await, 202);
    assert_eq!(publish(&gw, "other", Some(&publisher)).await, 403);
    assert_eq!(publish(&gw, "orders", Some(&viewer)).await, 403);
    assert_eq!(publish(&gw, "orders", None).await, 401);
    assert_eq!(publish(&gw, "orders", Some("nope")).await, 401);
    // Buses without ingest_auth stay open.
    assert_eq!(publish(&gw, "open", None).await, 202);
    assert_eq!(redis.xlen("sluice:{orders}:events"), 2);
    assert_eq!(redis.xlen("sluice:{other}:events"), 0);
}

fn sluice_with(args: &[&str], server: &str, token: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_SERVER", server)
        .env("SLUICE_TOKEN", token)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_verbs_work_end_to_end() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config()).await;
    let server = gw.url("");
    let (code, out, err) = sluice_with(
        &[
            "token",
            "create",
            "--role",
            "operator",
            "--bus",
            "orders",
            "--description",
            "ci",
        ],
        &server,
        BOOT,
    );
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    assert!(token.starts_with("sl_"), "{out}");
    let id = err.split_whitespace().nth(1).unwrap().to_string();
    let (code, out, _) = sluice_with(&["token", "list"], &server, BOOT);
    assert_eq!(code, 0);
    assert!(
        out.contains(&id)
            && out.contains("operator")
            && out.contains("orders")
            && !out.contains(&token),
        "{out}"
    );
    // The new token works, as its role allows.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (code, _, err) = sluice_with(&["get", "rules"], &server, &token);
    assert_eq!(code, 1, "a bus-scoped token listed every rule");
    assert!(err.contains("scoped"), "{err}");
    let (code, _, _) = sluice_with(&["token", "revoke", &id], &server, BOOT);
    assert_eq!(code, 0);
    let (code, _, err) = sluice_with(&["token", "revoke", &id], &server, BOOT);
    assert_eq!(code, 1);
    assert!(err.contains("no token"), "{err}");
    let (code, _, _) = sluice_with(&["token", "create", "--role", "god"], &server, BOOT);
    assert_eq!(code, 2);
    let (code, _, err) = sluice_with(&["token", "list"], &server, "wrong");
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
}
