//! Transforms end to end: one event in, each target receives exactly the bytes its
//! transform produces; HTTP parameters are filled from the event.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn each_form_delivers_exactly_the_expected_bytes() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let url = |path: &str| rx.url(path);
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: paid
    bus: orders
    pattern: {{type: [order.paid]}}
    targets:
      - {{name: original, kind: http, url: "{original}", transform: {{form: ORIGINAL}}}}
      - {{name: jsonpath, kind: http, url: "{jsonpath}", transform: {{form: JSONPATH, value: "$.data.order"}}}}
      - {{name: jsonpath-text, kind: http, url: "{text}", transform: {{form: JSONPATH, value: "$.data.user.name"}}}}
      - {{name: constant, kind: http, url: "{constant}", transform: {{form: CONSTANT, value: '{{"ping": true}}'}}}}
      - name: template
        kind: http
        url: "{template}"
        transform:
          form: TEMPLATE
          value: '{{"name": "$.data.user.name", "order": "$.data.order"}}'
          template: '{{"text": "Hello ${{name}}", "order": ${{order}}}}'
      - {{name: input-path, kind: http, url: "{input_path}", transform: {{InputPath: "$.detail.order.id"}}}}
      - {{name: input, kind: http, url: "{input}", transform: {{Input: '{{"fixed": 1}}'}}}}
      - name: input-transformer
        kind: http
        url: "{input_transformer}"
        transform:
          InputTransformer:
            InputPathsMap: {{id: "$.detail.order.id", type: "$.detail-type"}}
            InputTemplate: '{{"type": <type>, "msg": "order <id> paid", "rule": "<aws.events.rule-name>"}}'
      - name: params
        kind: http
        url: "{params}"
        path_params: {{order_id: "$.data.order.id"}}
        query: {{currency: "$.data.order.currency", source: "$.source", missing: "$.data.nope"}}
        headers: {{x-customer: "$.data.user.name", x-fixed: "yes"}}
"#,
        original = url("/original"),
        jsonpath = url("/jsonpath"),
        text = url("/text"),
        constant = url("/constant"),
        template = url("/template"),
        input_path = url("/input-path"),
        input = url("/input"),
        input_transformer = url("/input-transformer"),
        params = rx.url("/orders/{order_id}/events"),
    );
    let gw = Gateway::start(&redis, &config).await;

    let data = r#"{"order": {"id": "o/42 x", "amount": 1.50, "currency": "EUR"}, "user": {"name": "Zoë \"Z\""}}"#;
    let res = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "evt-7")
        .header("ce-source", "/shop")
        .header("ce-type", "order.paid")
        .header("content-type", "application/json")
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    assert!(
        wait_until(Duration::from_secs(10), || rx.count() == 9).await,
        "got {}",
        rx.count()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = rx.received();
    assert_eq!(got.len(), 9, "each target once");
    let at = |path: &str| {
        got.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}: {got:?}"))
    };
    let body = |path: &str| String::from_utf8(at(path).body.clone()).unwrap();
    let ct = |path: &str| at(path).header("content-type").unwrap().to_string();

    // ORIGINAL: the binary-mode event, data bytes untouched.
    assert_eq!(body("/original"), data);
    assert_eq!(ct("/original"), "application/json");
    // A selected object is the event's own bytes: spacing and number text kept.
    assert_eq!(
        body("/jsonpath"),
        r#"{"id": "o/42 x", "amount": 1.50, "currency": "EUR"}"#
    );
    assert_eq!(ct("/jsonpath"), "application/json");
    assert_eq!(body("/text"), "Zoë \"Z\"");
    assert_eq!(ct("/text"), "text/plain; charset=utf-8");
    assert_eq!(body("/constant"), r#"{"ping": true}"#);
    assert_eq!(
        body("/template"),
        r#"{"text": "Hello Zoë \"Z\"", "order": {"id": "o/42 x", "amount": 1.50, "currency": "EUR"}}"#
    );
    assert_eq!(ct("/template"), "application/json");
    assert_eq!(body("/input-path"), r#""o/42 x""#);
    assert_eq!(body("/input"), r#"{"fixed": 1}"#);
    assert_eq!(
        body("/input-transformer"),
        r#"{"type": "order.paid", "msg": "order o/42 x paid", "rule": "paid"}"#
    );
    // Every delivery, transformed or not, carries the event id.
    assert!(
        got.iter().all(|r| r.header("ce-id") == Some("evt-7")),
        "{got:?}"
    );

    // HTTP parameters: the path parameter is one encoded segment; a query parameter
    // whose path matches nothing is left out.
    let params = got
        .iter()
        .find(|r| r.path.starts_with("/orders/"))
        .expect("params target");
    assert_eq!(params.path, "/orders/o%2F42%20x/events");
    assert_eq!(params.query, "currency=EUR&source=%2Fshop");
    assert_eq!(params.header("x-customer"), Some("Zoë \"Z\""));
    assert_eq!(params.header("x-fixed"), Some("yes"));
    assert_eq!(params.body, data.as_bytes());
}
