//! The CloudEvents Subscriptions API (working draft 0.1) with plain HTTP, as its OpenAPI
//! document describes it: create (201 + Location), list, retrieve, update, delete; the
//! subscription's `types`, `source` and `filters` decide what its sink receives, its
//! `protocolsettings` and `sinkcredential` how; a subscription is a native rule.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "subs-boot-token";

async fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.url(path))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

fn event(id: &str, ty: &str, source: &str, subject: &str) -> String {
    json!({"specversion": "1.0", "id": id, "type": ty, "source": source, "subject": subject, "data": {"n": id}}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_route_what_they_name_to_their_sink() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(
        &redis,
        &format!("api: {{token: {TOKEN}}}\nbuses: [{{name: orders}}, {{name: audit}}]\n"),
    )
    .await;
    gw.ready().await;

    let sub = json!({
        "protocol": "HTTP",
        "sink": rx.url("/hook"),
        "types": ["order.paid", "order.refunded"],
        "source": "shop",
        "filters": [{"prefix": {"subject": "eu/"}}, {"not": {"exact": {"subject": "eu/test"}}}],
        "protocolsettings": {"method": "PUT", "headers": {"x-sub": "yes", "x-token": "t0p"}},
        "sinkcredential": {"credentialtype": "ACCESSTOKEN", "accesstoken": "tok123", "accesstokenexpiresutc": "2030-01-01T00:00:00Z"},
        "config": {"bus": "orders"}
    });

    // Without a token: 401, nothing created.
    let res = reqwest::Client::new()
        .post(gw.url("/subscriptions"))
        .header("content-type", "application/json")
        .body(sub.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Bad requests name the field.
    let mut without_bus = sub.clone();
    without_bus.as_object_mut().unwrap().remove("config");
    for (body, field) in [
        (without_bus, "config.bus"),
        (
            json!({"protocol": "MQTT5", "sink": "mqtt://x", "config": {"bus": "orders"}}),
            "protocol",
        ),
        (
            json!({"protocol": "HTTP", "config": {"bus": "orders"}}),
            "sink",
        ),
        (
            json!({"protocol": "HTTP", "sink": rx.url("/"), "config": {"bus": "nope"}}),
            "config.bus",
        ),
        (
            json!({"protocol": "HTTP", "sink": rx.url("/"), "config": {"bus": "orders"}, "filters": [{"regex": {"type": "x"}}]}),
            "filters[0]",
        ),
        (
            json!({"protocol": "HTTP", "sink": rx.url("/"), "config": {"bus": "orders"}, "types": "order.paid"}),
            "types",
        ),
        (
            json!({"protocol": "HTTP", "sink": rx.url("/"), "config": {"bus": "orders"}, "protocolsettings": {"topicname": "t"}}),
            "protocolsettings.topicname",
        ),
        (
            json!({"protocol": "HTTP", "sink": rx.url("/"), "config": {"bus": "orders"}, "sinkcredential": {"credentialtype": "REFRESHTOKEN"}}),
            "sinkcredential.credentialtype",
        ),
    ] {
        let (s, b, _) = call(&gw, "POST", "/subscriptions", Some(body.clone())).await;
        assert_eq!(s, 400, "{body} -> {b}");
        assert!(
            b["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{body} -> {b}, expected field {field}"
        );
    }
    let res = reqwest::Client::new()
        .post(gw.url("/subscriptions"))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (_, listed, _) = call(&gw, "GET", "/subscriptions", None).await;
    assert_eq!(
        listed,
        json!([]),
        "nothing was created by the refused requests"
    );

    // Created: 201, its Location, the id assigned by the server, no secret echoed.
    let (s, created, headers) = call(&gw, "POST", "/subscriptions", Some(sub.clone())).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with(&format!("/subscriptions/{id}")));
    assert_eq!(created["sink"], rx.url("/hook"));
    assert_eq!(created["types"], sub["types"]);
    assert_eq!(created["filters"], sub["filters"]);
    assert_eq!(
        created["sinkcredential"],
        json!({"credentialtype": "ACCESSTOKEN"})
    );
    assert!(!created.to_string().contains("tok123"));
    assert_eq!(
        created["protocolsettings"]["headers"]["x-token"], "***",
        "{created}"
    );
    let (s, got, _) = call(&gw, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!((s, &got), (200, &created));
    let (_, listed, _) = call(&gw, "GET", "/subscriptions", None).await;
    assert_eq!(listed, json!([created.clone()]));

    // Only what it names reaches the sink, with its method, headers and credential.
    for (i, (ty, source, subject)) in [
        ("order.paid", "shop", "eu/1"),
        ("order.paid", "shop", "eu/test"),
        ("order.paid", "shop", "us/1"),
        ("order.created", "shop", "eu/2"),
        ("order.paid", "other", "eu/3"),
    ]
    .iter()
    .enumerate()
    {
        let status =
            post_structured(&gw, "orders", &event(&format!("e{i}"), ty, source, subject)).await;
        assert_eq!(status, 202);
    }
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 1).await,
        "{}",
        gw.logs()
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.ce_ids(), vec!["e0".to_string()]);
    let first = &rx.received()[0];
    assert_eq!(first.method, "PUT");
    assert_eq!(first.path, "/hook");
    assert_eq!(first.header("authorization"), Some("Bearer tok123"));
    assert_eq!(first.header("x-sub"), Some("yes"));

    // It is a native rule: visible in /api/v1, and an edit there shows here.
    let (s, native, headers) = call(
        &gw,
        "GET",
        &format!("/api/v1/buses/orders/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{native}");
    assert_eq!(native["spec"]["targets"][0]["url"], rx.url("/hook"));
    assert_eq!(native["spec"]["pattern"]["type"], sub["types"]);
    let etag = headers["etag"].to_str().unwrap().to_string();
    let mut spec = native["spec"].clone();
    spec["targets"][0]["url"] = rx.url("/moved").into();
    let res = reqwest::Client::new()
        .put(gw.url(&format!("/api/v1/buses/orders/rules/{id}")))
        .bearer_auth(TOKEN)
        .header("if-match", etag)
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (_, got, _) = call(&gw, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(got["sink"], rx.url("/moved"));

    // Updated with what was read back (the credential's secret left out: kept).
    let mut changed = got.clone();
    changed["types"] = json!(["order.created"]);
    let (s, updated, _) = call(
        &gw,
        "PUT",
        &format!("/subscriptions/{id}"),
        Some(changed.clone()),
    )
    .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["types"], json!(["order.created"]));
    let status =
        post_structured(&gw, "orders", &event("e9", "order.created", "shop", "eu/9")).await;
    assert_eq!(status, 202);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 2).await,
        "{}",
        gw.logs()
    );
    let second = &rx.received()[1];
    assert_eq!(second.path, "/moved");
    assert_eq!(second.header("authorization"), Some("Bearer tok123"));
    assert_eq!(second.header("ce-id"), Some("e9"));
    // The redacted header read back and sent again kept its value.
    assert_eq!(second.header("x-token"), Some("t0p"));

    // An update whose body names another id, or of an unknown id.
    let mut other = changed.clone();
    other["id"] = "sub-other".into();
    let (s, b, _) = call(&gw, "PUT", &format!("/subscriptions/{id}"), Some(other)).await;
    assert_eq!((s, b["field"].as_str()), (400, Some("id")), "{b}");
    changed.as_object_mut().unwrap().remove("id");
    let (s, _, _) = call(&gw, "PUT", "/subscriptions/sub-nope", Some(changed)).await;
    assert_eq!(s, 404);

    // OPTIONS tells the methods.
    let (s, _, headers) = call(&gw, "OPTIONS", "/subscriptions", None).await;
    assert_eq!(s, 200);
    assert_eq!(headers["allow"], "GET,POST,OPTIONS");

    // Deleted: gone here and from /api/v1; a second delete is 404.
    let (s, _, _) = call(&gw, "DELETE", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(s, 200);
    let (s, _, _) = call(&gw, "GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(s, 404);
    let (s, _, _) = call(
        &gw,
        "GET",
        &format!("/api/v1/buses/orders/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = call(&gw, "DELETE", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(s, 404);
}
