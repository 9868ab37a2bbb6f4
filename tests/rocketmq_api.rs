//! RocketMQ-EventBridge's HTTP API, driven with plain HTTP as its docs show
//! (docs/CreateFileTarget.md, docs/EventSource.md, README's putEvents of
//! apache/rocketmq-eventbridge): buses, rules and targets, putEvents with the
//! `eventbusname` extension, and an HttpSource's webhook.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn post(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(gw.url(path))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn buses_rules_targets_events_and_webhooks_as_its_docs_show() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, "buses: [{name: default}]\n").await;
    gw.ready().await;

    // camelCase as in its docs, PascalCase as in its DTOs.
    let (s, b) = post(
        &gw,
        "/bus/createEventBus",
        json!({"eventBusName": "demo-bus", "description": "a demo bus."}),
    )
    .await;
    assert_eq!(
        (s, &b["code"], &b["eventBusName"]),
        (200, &json!("Success"), &json!("demo-bus")),
        "{b}"
    );
    assert!(b["requestId"].is_string());
    let (s, b) = post(
        &gw,
        "/bus/createEventBus",
        json!({"EventBusName": "demo-bus"}),
    )
    .await;
    assert_eq!(
        (s, &b["code"]),
        (409, &json!("EventBusAlreadyExist")),
        "{b}"
    );
    let (_, b) = post(&gw, "/bus/getEventBus", json!({"EventBusName": "demo-bus"})).await;
    assert_eq!(b["description"], "a demo bus.");

    let pattern = json!({"type": ["order.paid"]}).to_string();
    let (s, b) = post(&gw, "/rule/createEventRule", json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule", "description": "A demo rule.", "filterPattern": pattern})).await;
    assert_eq!((s, &b["eventRuleName"]), (200, &json!("demo-rule")), "{b}");
    let (s, b) = post(
        &gw,
        "/rule/createEventRule",
        json!({"eventBusName": "nope", "eventRuleName": "x", "filterPattern": "{}"}),
    )
    .await;
    assert_eq!((s, &b["code"]), (409, &json!("EventBusNotExist")), "{b}");
    let (s, b) = post(&gw, "/rule/createEventRule", json!({"eventBusName": "demo-bus", "eventRuleName": "bad", "filterPattern": "{\"data\": {\"a\": 1}}"})).await;
    assert_eq!(
        (s, &b["code"]),
        (409, &json!("EventRuleFilterPatternInvalid")),
        "{b}"
    );

    let transform = json!({"form": "TEMPLATE", "value": "{\"id\":\"$.data.id\"}", "template": "{\"order\":\"${id}\"}"}).to_string();
    let (s, b) = post(&gw, "/target/createEventTargets", json!({
        "eventBusName": "demo-bus", "eventRuleName": "demo-rule",
        "eventTargets": [{"eventTargetName": "demo-target", "className": "http",
                          "config": {"url": rx.url("/hook"), "body": transform},
                          "runOptions": {"errorsTolerance": "ALL", "retryStrategy": {"pushRetryStrategy": "BACKOFF_RETRY"}}}]
    })).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = post(&gw, "/target/createEventTargets", json!({
        "eventBusName": "demo-bus", "eventRuleName": "demo-rule",
        "eventTargets": [{"eventTargetName": "f", "className": "file", "config": {"fileName": "~/demo"}}]
    })).await;
    assert_eq!(
        (s, &b["code"]),
        (409, &json!("EventTargetClassNotExist")),
        "{b}"
    );

    // putEvents, binary mode as its README sends it, the bus in ce-eventbusname.
    let put = |id: &'static str, ty: &'static str| {
        reqwest::Client::new()
            .post(gw.url("/putEvents"))
            .header("content-type", "application/json; charset=UTF-8")
            .header("ce-specversion", "1.0")
            .header("ce-type", ty)
            .header("ce-source", "https://github.com/cloudevents/spec/pull")
            .header("ce-subject", "demo")
            .header("ce-id", id)
            .header("ce-time", "2018-04-05T17:31:00Z")
            .header("ce-eventbusname", "demo-bus")
            .body(format!(r#"{{"id": "{id}"}}"#))
            .send()
    };
    let res = put("1234-1234-1234", "order.paid").await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["failedEntryCount"], 0);
    assert_eq!(body["entryList"][0]["eventId"], "1234-1234-1234");
    assert_eq!(put("skip-1", "order.created").await.unwrap().status(), 200);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 1).await,
        "{}",
        gw.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 1, "only order.paid matches");
    let got: Value = serde_json::from_slice(&rx.received()[0].body).unwrap();
    assert_eq!(got, json!({"order": "1234-1234-1234"}));
    // Without the extension, or for two buses at once: refused, nothing appended.
    let res = reqwest::Client::new()
        .post(gw.url("/putEvents"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(json!([
            {"specversion": "1.0", "id": "a", "source": "s", "type": "t", "eventbusname": "demo-bus"},
            {"specversion": "1.0", "id": "b", "source": "s", "type": "t", "eventbusname": "default"}
        ]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "PutEventsRequestMoreThanOneEventBus");
    assert_eq!(redis.xlen("sluice:{default}:events"), 0);

    // Read back, through its API and the native one.
    let (_, b) = post(
        &gw,
        "/rule/getEventRule",
        json!({"EventBusName": "demo-bus", "EventRuleName": "demo-rule"}),
    )
    .await;
    assert_eq!(b["status"], "ENABLE");
    assert_eq!(b["filterPattern"], pattern);
    assert_eq!(b["eventTargets"][0]["eventTargetName"], "demo-target");
    let native: Value = reqwest::get(gw.url("/api/v1/buses/demo-bus/rules/demo-rule"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(native["spec"]["targets"][0]["kind"], "http");
    assert_eq!(native["spec"]["targets"][0]["retry"]["max_attempts"], 3);
    let (_, b) = post(
        &gw,
        "/rule/listEventRules",
        json!({"eventBusName": "demo-bus", "maxResults": 10}),
    )
    .await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["eventRules"][0]["eventRuleName"], "demo-rule");
    let (_, b) = post(
        &gw,
        "/rule/disableEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule"}),
    )
    .await;
    assert_eq!(b["code"], "Success");
    let (_, b) = post(
        &gw,
        "/rule/getEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule"}),
    )
    .await;
    assert_eq!(b["status"], "DISABLE");
    let (_, b) = post(
        &gw,
        "/rule/updateEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule", "filterPattern": "{}"}),
    )
    .await;
    assert_eq!(b["code"], "Success", "{b}");
    post(
        &gw,
        "/rule/enableEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule"}),
    )
    .await;

    // An HttpSource: any request to its webhook becomes an HTTPEvent on its bus.
    let (s, b) = post(&gw, "/source/createEventSource", json!({
        "eventSourceName": "httpEventSourceDemo", "eventBusName": "demo-bus", "description": "http source demo",
        "className": "HttpEvent", "config": {"Type": "HTTP&HTTPS", "Method": ["GET", "POST"], "SecurityConfig": "none"}
    })).await;
    assert_eq!(s, 200, "{b}");
    let webhook = b["config"]["WebhookUrl"].as_str().unwrap().to_string();
    let before = rx.count();
    let res = reqwest::Client::new()
        .post(gw.url(&format!("{webhook}&k=v")))
        .header("x-demo", "1")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", gw.logs());
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() > before).await,
        "{}",
        gw.logs()
    );
    // The rule now matches everything; its template picks data.id, which an
    // HTTPEvent has not: the payload shows the event arrived with its shape.
    let events: Vec<Value> = redis_events(&redis, "sluice:{demo-bus}:events");
    let http_event = events
        .iter()
        .find(|e| e["type"] == "eventbridge:Events:HTTPEvent")
        .expect("an HTTPEvent");
    assert_eq!(http_event["source"], "httpEventSourceDemo");
    let data: Value = serde_json::from_str(http_event["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["body"], "hello");
    assert_eq!(data["httpMethod"], "POST");
    assert_eq!(data["path"], "/webhook/putEvents");
    assert_eq!(data["headers"]["x-demo"], "1");
    assert_eq!(data["queryString"], json!({"k": "v"}));
    // A method the source does not allow, and an unknown token.
    let res = reqwest::Client::new()
        .put(gw.url(&webhook))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = reqwest::Client::new()
        .post(gw.url("/webhook/putEvents?token=wrong"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Deleting: targets, the rule, then the bus.
    let (_, b) = post(&gw, "/target/deleteEventTargets", json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule", "eventTargetNames": ["demo-target"]})).await;
    assert_eq!(b["code"], "Success", "{b}");
    let (_, b) = post(
        &gw,
        "/bus/deleteEventBus",
        json!({"eventBusName": "demo-bus"}),
    )
    .await;
    assert_eq!(b["code"], "EventBusRuleNotEmptyForDelete");
    post(
        &gw,
        "/rule/deleteEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "demo-rule"}),
    )
    .await;
    let (_, b) = post(
        &gw,
        "/bus/deleteEventBus",
        json!({"eventBusName": "demo-bus"}),
    )
    .await;
    assert_eq!(b["code"], "Success", "{b}");
    let (_, b) = post(&gw, "/bus/listEventBuses", json!({})).await;
    assert_eq!(
        b["eventBuses"],
        json!([{"eventBusName": "default", "description": ""}])
    );
}

/// The events of a bus stream, as their attributes with `data` as text.
fn redis_events(redis: &Redis, key: &str) -> Vec<Value> {
    let mut conn = redis.conn();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    entries
        .ids
        .iter()
        .map(|e| {
            let field = |name: &str| -> Option<String> {
                e.map
                    .get(name)
                    .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
            };
            let mut attrs: Value = serde_json::from_str(&field("a").unwrap_or_else(|| "{}".into()))
                .unwrap_or(json!({}));
            attrs["data"] = field("d").map(Value::from).unwrap_or(Value::Null);
            attrs
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_and_api_destinations_deliver_with_their_auth() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, "buses: [{name: demo-bus}]\n").await;
    gw.ready().await;

    let connection = json!({
        "connectionName": "demo-conn", "description": "the demo API",
        "networkParameters": {"networkType": "PublicNetwork"},
        "authParameters": {"authorizationType": "API_KEY_AUTH",
                           "apiKeyAuthParameters": {"apiKeyName": "x-api-key", "apiKeyValue": "k-1"}}
    });
    let (s, b) = post(&gw, "/connection/createConnection", connection.clone()).await;
    assert_eq!((s, &b["connectionName"]), (200, &json!("demo-conn")), "{b}");
    let (s, b) = post(&gw, "/connection/createConnection", connection.clone()).await;
    assert_eq!(
        (s, &b["code"]),
        (409, &json!("ConnectionAlreadyExist")),
        "{b}"
    );
    let (_, b) = post(
        &gw,
        "/connection/createConnection",
        json!({"connectionName": "c2"}),
    )
    .await;
    assert_eq!(b["code"], "NetworkParametersIsNull", "{b}");
    // Keys of any spelling are read without harm (an empty or non-ASCII one too).
    let (s, b) = post(&gw, "/connection/createConnection", json!({"connectionName": "c4", "networkParameters": {"networkType": "PublicNetwork", "": 1, "é": 2}})).await;
    assert_eq!((s, &b["code"]), (200, &json!("Success")), "{b}");
    let (_, b) = post(&gw, "/connection/createConnection", json!({"connectionName": "-bad name", "networkParameters": {"networkType": "PublicNetwork"}})).await;
    assert_eq!(b["code"], "RequestParameterInvalid", "{b}");
    let (_, b) = post(&gw, "/connection/createConnection", json!({"connectionName": "c3", "networkParameters": {"networkType": "PublicNetwork"},
        "authParameters": {"authorizationType": "BASIC_AUTH", "basicAuthParameters": {"username": "u"}}})).await;
    assert_eq!(b["code"], "BasicRequiredParameterIsEmpty", "{b}");
    // Read back with the secret masked.
    let (_, b) = post(
        &gw,
        "/connection/getConnection",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert_eq!(
        b["connections"][0]["authParameters"]["apiKeyAuthParameters"]["apiKeyValue"], "**",
        "{b}"
    );
    assert_eq!(b["connections"][0]["description"], "the demo API");
    let (_, b) = post(
        &gw,
        "/connection/listConnections",
        json!({"connectionNamePrefix": "demo"}),
    )
    .await;
    assert_eq!(
        (b["total"].as_u64(), &b["nextToken"]),
        (Some(1), &Value::Null),
        "{b}"
    );
    let (_, b) = post(
        &gw,
        "/connection/selectOneConnection",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert!(
        !b.to_string().contains("k-1"),
        "secrets are never answered: {b}"
    );
    let (_, b) = post(&gw, "/connection/listEnumsResponse", json!({})).await;
    assert_eq!(
        b["authorizationTypeEnums"],
        json!(["API_KEY_AUTH", "BASIC_AUTH", "OAUTH_AUTH"])
    );

    let (s, b) = post(&gw, "/api-destination/createApiDestination", json!({
        "apiDestinationName": "demo-dest", "connectionName": "demo-conn", "description": "orders",
        "httpApiParameters": {"endpoint": rx.url("/api"), "method": "POST"}, "invocationRateLimitPerSecond": 100
    })).await;
    assert_eq!(
        (s, &b["apiDestinationName"]),
        (200, &json!("demo-dest")),
        "{b}"
    );
    let (_, b) = post(&gw, "/api-destination/createApiDestination", json!({
        "apiDestinationName": "d2", "connectionName": "nope", "httpApiParameters": {"endpoint": rx.url("/"), "method": "POST"}
    })).await;
    assert_eq!(b["code"], "ConnectionNotExist", "{b}");
    let (_, b) = post(
        &gw,
        "/api-destination/getApiDestination",
        json!({"apiDestinationName": "demo-dest"}),
    )
    .await;
    assert_eq!(b["httpApiParameters"]["endpoint"], rx.url("/api"), "{b}");
    let (_, b) = post(
        &gw,
        "/api-destination/listApiDestinations",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert_eq!(
        b["apiDestinations"][0]["apiDestinationName"], "demo-dest",
        "{b}"
    );

    // A rule whose target is the API destination.
    let (_, b) = post(
        &gw,
        "/rule/createEventRule",
        json!({"eventBusName": "demo-bus", "eventRuleName": "r", "filterPattern": "{}"}),
    )
    .await;
    assert_eq!(b["code"], "Success", "{b}");
    let (s, b) = post(&gw, "/target/createEventTargets", json!({
        "eventBusName": "demo-bus", "eventRuleName": "r",
        "eventTargets": [{"eventTargetName": "api", "className": "api-destination", "config": {"apiDestinationName": "demo-dest"}}]
    })).await;
    assert_eq!(s, 200, "{b}");
    let put = |id: &'static str| {
        reqwest::Client::new()
            .post(gw.url("/putEvents"))
            .header("content-type", "application/cloudevents+json")
            .body(json!({"specversion": "1.0", "id": id, "source": "s", "type": "t", "eventbusname": "demo-bus"}).to_string())
            .send()
    };
    assert_eq!(put("a-1").await.unwrap().status(), 200);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 1).await,
        "{}",
        gw.logs()
    );
    assert_eq!(rx.received()[0].header("x-api-key"), Some("k-1"));
    let native: Value = reqwest::get(gw.url("/api/v1/buses/demo-bus/rules/r"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        native["spec"]["targets"][0]["rate"]["per_second"], 100,
        "{native}"
    );

    // A new key on the connection reaches the target; the blank secret of an update of
    // the description alone keeps it.
    let mut updated = connection.clone();
    updated["authParameters"]["apiKeyAuthParameters"]["apiKeyValue"] = "k-2".into();
    let (_, b) = post(&gw, "/connection/updateConnection", updated).await;
    assert_eq!(b["code"], "Success", "{b}");
    let mut blank = connection.clone();
    blank["authParameters"]["apiKeyAuthParameters"]["apiKeyValue"] = "".into();
    blank["description"] = "renamed".into();
    let (_, b) = post(&gw, "/connection/updateConnection", blank).await;
    assert_eq!(b["code"], "Success", "{b}");
    assert_eq!(put("a-2").await.unwrap().status(), 200);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 2).await,
        "{}",
        gw.logs()
    );
    assert_eq!(rx.received()[1].header("x-api-key"), Some("k-2"));

    // A bound connection cannot go; unbound, it can.
    let (_, b) = post(
        &gw,
        "/connection/deleteConnection",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert_eq!(b["code"], "ConnectionBoundApiDestination", "{b}");
    let (_, b) = post(
        &gw,
        "/api-destination/deleteApiDestination",
        json!({"apiDestinationName": "demo-dest"}),
    )
    .await;
    assert_eq!(b["code"], "Success", "{b}");
    let (_, b) = post(
        &gw,
        "/connection/deleteConnection",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert_eq!(b["code"], "Success", "{b}");
    let (s, b) = post(
        &gw,
        "/connection/getConnection",
        json!({"connectionName": "demo-conn"}),
    )
    .await;
    assert_eq!((s, &b["code"]), (409, &json!("ConnectionNotExist")), "{b}");
}
