//! The AWS EventBridge PutEvents-compatible endpoint, driven the way the AWS SDKs drive
//! it: requests signed with AWS Signature V4 by the `aws-sigv4` crate (the signer of the
//! AWS SDK for Rust, independent of Sluice's verifier).

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use common::*;
use serde_json::{json, Value};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const OTHER_KEY_ID: &str = "AKIAI44QH8DHBEXAMPLE";
const OTHER_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
const ALI_KEY_ID: &str = "LTAI5tTestKeyId0001";
const ALI_SECRET: &str = "alibaba-test-secret";
const ALI_ACCOUNT: &str = "1649015465000000";
const DEFAULT_KEY: &str = "sluice:{default}:events";
const ORDERS_KEY: &str = "sluice:{orders}:events";

fn config(extra: &str) -> String {
    format!(
        r#"
buses: [{{name: default}}, {{name: orders}}]
aws:
  region: {REGION}
  account: "{ACCOUNT}"
  access_keys:
    - {{id: {KEY_ID}, secret: "{SECRET}"}}
    - {{id: {OTHER_KEY_ID}, secret: "{OTHER_SECRET}"}}
alibaba:
  account: "{ALI_ACCOUNT}"
  default_bus: default
  access_keys: [{{id: {ALI_KEY_ID}, secret: "{ALI_SECRET}"}}]
{extra}"#
    )
}

/// Who signs, and how.
struct Signer<'a> {
    key_id: &'a str,
    secret: &'a str,
    region: &'a str,
    time: SystemTime,
}

impl Default for Signer<'_> {
    fn default() -> Self {
        Signer {
            key_id: KEY_ID,
            secret: SECRET,
            region: REGION,
            time: SystemTime::now(),
        }
    }
}

type Headers = Vec<(String, String)>;

/// The headers of a PutEvents request to `url` carrying `body`, signed by `signer`.
fn signed(url: &str, body: &[u8], signer: &Signer<'_>) -> Headers {
    signed_for("AWSEvents.PutEvents", url, body, signer)
}

/// The headers of a request for the operation `target`, signed by `signer`.
fn signed_for(target: &str, url: &str, body: &[u8], signer: &Signer<'_>) -> Headers {
    let mut headers: Headers = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("x-amz-target".into(), target.into()),
    ];
    let identity: Identity =
        Credentials::new(signer.key_id, signer.secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(signer.region)
        .name("events")
        .time(signer.time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let added: Headers = instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    headers.extend(added);
    headers
}

/// Sends a request; returns the status, `x-amzn-ErrorType` and the JSON body.
async fn send(url: &str, headers: &Headers, body: Vec<u8>) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, error_type, body)
}

/// Signs `body` with the default signer and sends it to `path`.
async fn put(gw: &Gateway, path: &str, body: &Value) -> (u16, Option<String>, Value) {
    let url = gw.url(path);
    let bytes = serde_json::to_vec(body).unwrap();
    send(&url, &signed(&url, &bytes, &Signer::default()), bytes).await
}

fn entry(source: &str, detail_type: &str, detail: &str) -> Value {
    json!({"Source": source, "DetailType": detail_type, "Detail": detail})
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(uuid_shaped)
}

fn uuid_shaped(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_entries_give_per_entry_results_and_only_valid_ones_are_delivered() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let extra = format!(
        r#"rules:
  - {{name: all, bus: default, targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]}}
  - {{name: all, bus: orders, targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]}}
"#,
        rx.url("/default"),
        rx.url("/orders")
    );
    let gw = Gateway::start(&redis, &config(&extra)).await;

    let mut first = entry(
        "com.example.shop",
        "OrderPaid",
        r#"{"order": 1001, "amount": 1.50}"#,
    );
    first["Resources"] = json!([
        "arn:aws:s3:::shop-bucket",
        "arn:aws:sqs:eu-west-1:123456789012:q"
    ]);
    first["Time"] = json!(1_700_000_000);
    first["TraceHeader"] = json!("Root=1-5759e988-bd862e3fe1be46a994272793");
    let mut by_arn = entry("com.example.shop", "OrderShipped", r#"{"order": 1001}"#);
    by_arn["EventBusName"] = json!(format!(
        "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders"
    ));
    let mut unknown_bus = entry("com.example.shop", "OrderShipped", "{}");
    unknown_bus["EventBusName"] = json!("nope");
    let body = json!({"Entries": [
        first,
        entry("com.example.shop", "OrderPaid", "not json"),
        by_arn,
        unknown_bus,
        {"DetailType": "X", "Detail": "{}"},
    ]});
    let (status, error, answer) = put(&gw, "/", &body).await;
    assert_eq!((status, error), (200, None), "{answer}");
    assert_eq!(answer["FailedEntryCount"], 3, "{answer}");
    let entries = answer["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert!(is_uuid(&entries[0]["EventId"]), "{answer}");
    assert!(is_uuid(&entries[2]["EventId"]), "{answer}");
    assert_eq!(
        entries[1],
        json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
    );
    assert_eq!(
        entries[3],
        json!({"ErrorCode": "ResourceNotFoundException", "ErrorMessage": "Event bus nope does not exist."})
    );
    assert_eq!(entries[4]["ErrorCode"], "InvalidArgument");
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
    assert_eq!(redis.xlen(ORDERS_KEY), 1);

    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    let received = rx.received();
    let paid = received.iter().find(|r| r.path == "/default").unwrap();
    assert_eq!(paid.body, br#"{"order": 1001, "amount": 1.50}"#);
    assert_eq!(paid.header("ce-id"), entries[0]["EventId"].as_str());
    assert_eq!(paid.header("ce-source"), Some("com.example.shop"));
    assert_eq!(paid.header("ce-type"), Some("OrderPaid"));
    assert_eq!(paid.header("ce-time"), Some("2023-11-14T22:13:20Z"));
    assert_eq!(paid.header("content-type"), Some("application/json"));
    assert_eq!(
        paid.header("ce-resources"),
        Some("arn:aws:s3:::shop-bucket,arn:aws:sqs:eu-west-1:123456789012:q")
    );
    assert_eq!(paid.header("ce-awsregion"), Some(REGION));
    assert_eq!(paid.header("ce-awsaccount"), Some(ACCOUNT));
    assert_eq!(
        paid.header("ce-traceheader"),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793")
    );
    let shipped = received.iter().find(|r| r.path == "/orders").unwrap();
    assert_eq!(shipped.header("ce-type"), Some("OrderShipped"));
    assert_eq!(shipped.header("ce-id"), entries[2]["EventId"].as_str());
    assert!(shipped.header("ce-time").is_some());
    assert!(shipped.header("ce-resources").is_none());

    // The other configured key works too, and so does /aws/events.
    let url = gw.url("/aws/events");
    let bytes = serde_json::to_vec(&json!({"Entries": [entry("s", "t", "{}")]})).unwrap();
    let signer = Signer {
        key_id: OTHER_KEY_ID,
        secret: OTHER_SECRET,
        ..Signer::default()
    };
    let (status, _, answer) = send(&url, &signed(&url, &bytes, &signer), bytes).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_failures_are_aws_shaped_and_append_nothing() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let url = gw.url("/");
    let body = serde_json::to_vec(&json!({"Entries": [entry("s", "t", "{}")]})).unwrap();
    let now = SystemTime::now();

    let cases: Vec<(&str, Headers, Vec<u8>, &str)> = vec![
        (
            "wrong secret",
            signed(
                &url,
                &body,
                &Signer {
                    secret: OTHER_SECRET,
                    ..Signer::default()
                },
            ),
            body.clone(),
            "InvalidSignatureException",
        ),
        (
            "unknown key id",
            signed(
                &url,
                &body,
                &Signer {
                    key_id: "AKIAUNKNOWNEXAMPLE00",
                    ..Signer::default()
                },
            ),
            body.clone(),
            "UnrecognizedClientException",
        ),
        (
            "20 minutes old",
            signed(
                &url,
                &body,
                &Signer {
                    time: now - Duration::from_secs(20 * 60),
                    ..Signer::default()
                },
            ),
            body.clone(),
            "InvalidSignatureException",
        ),
        (
            "20 minutes ahead",
            signed(
                &url,
                &body,
                &Signer {
                    time: now + Duration::from_secs(20 * 60),
                    ..Signer::default()
                },
            ),
            body.clone(),
            "InvalidSignatureException",
        ),
        (
            "other region",
            signed(
                &url,
                &body,
                &Signer {
                    region: "us-east-1",
                    ..Signer::default()
                },
            ),
            body.clone(),
            "InvalidSignatureException",
        ),
        (
            "tampered body",
            signed(&url, &body, &Signer::default()),
            serde_json::to_vec(&json!({"Entries": [entry("s", "t", "{\"x\":1}")]})).unwrap(),
            "InvalidSignatureException",
        ),
        (
            "unsigned",
            vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), "AWSEvents.PutEvents".into()),
            ],
            body.clone(),
            "MissingAuthenticationTokenException",
        ),
        (
            "garbled authorization",
            vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), "AWSEvents.PutEvents".into()),
                (
                    "authorization".into(),
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE".into(),
                ),
            ],
            body.clone(),
            "IncompleteSignatureException",
        ),
    ];
    for (case, headers, body, code) in cases {
        let (status, error_type, answer) = send(&url, &headers, body).await;
        // EventBridge's JSON protocol answers authentication errors with 400.
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(error_type.as_deref(), Some(code), "{case}");
        assert_eq!(answer["__type"], code, "{case}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    let (_, _, answer) = send(
        &url,
        &signed(
            &url,
            &body,
            &Signer {
                time: now - Duration::from_secs(20 * 60),
                ..Signer::default()
            },
        ),
        body.clone(),
    )
    .await;
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired: "),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 0);
    let logs = gw.logs();
    assert!(logs.contains("PutEvents request refused"), "{logs}");
    assert!(
        !logs.contains(SECRET) && !logs.contains(OTHER_SECRET),
        "{logs}"
    );

    // The same request, properly signed, goes through.
    let (status, _, answer) = send(&url, &signed(&url, &body, &Signer::default()), body).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_limits_operations_and_redis_outages() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;

    // More than 10 entries.
    let eleven = json!({"Entries": vec![entry("s", "t", "{}"); 11]});
    let (status, error, answer) = put(&gw, "/", &eleven).await;
    assert_eq!(
        (status, error.as_deref()),
        (400, Some("ValidationException")),
        "{answer}"
    );
    assert_eq!(answer["__type"], "ValidationException");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("less than or equal to 10"));
    // No entries, no Entries.
    for body in [json!({"Entries": []}), json!({})] {
        let (status, error, _) = put(&gw, "/", &body).await;
        assert_eq!(
            (status, error.as_deref()),
            (400, Some("ValidationException"))
        );
    }
    // Entries totalling over 256 KB (each alone within the limit).
    let pad = format!(r#"{{"pad":"{}"}}"#, "x".repeat(140 * 1024));
    let big = json!({"Entries": [entry("s", "t", &pad), entry("s", "t", &pad)]});
    let (status, error, answer) = put(&gw, "/", &big).await;
    assert_eq!(
        (status, error.as_deref()),
        (400, Some("ValidationException")),
        "{answer}"
    );
    let url = gw.url("/");
    // Not JSON.
    let (status, error, _) =
        send(&url, &signed(&url, b"{", &Signer::default()), b"{".to_vec()).await;
    assert_eq!(
        (status, error.as_deref()),
        (400, Some("SerializationException"))
    );
    // An operation Sluice does not serve (control operations are tests/aws_control.rs).
    let headers = signed_for(
        "AWSEvents.CreatePartnerEventSource",
        &url,
        b"{}",
        &Signer::default(),
    );
    let (status, error, _) = send(&url, &headers, b"{}".to_vec()).await;
    assert_eq!(
        (status, error.as_deref()),
        (400, Some("UnknownOperationException"))
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 0);

    if !redis.can_restart() {
        eprintln!(
            "skipped: the Redis-outage (503) part of request_limits_operations_and_redis_outages: \
             no redis-server binary, the test runs against REDIS_URL and cannot stop it"
        );
        return;
    }
    redis.kill();
    let one = json!({"Entries": [entry("s", "t", "{}")]});
    let url = gw.url("/");
    let bytes = serde_json::to_vec(&one).unwrap();
    let response = reqwest::Client::new()
        .post(&url)
        .headers(
            signed(&url, &bytes, &Signer::default())
                .iter()
                .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["__type"], "ServiceUnavailableException");

    redis.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = put(&gw, "/", &one).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_none_and_a_configured_default_bus() {
    let redis = Redis::start();
    let config = r#"
buses: [{name: orders}]
limits: {max_event_bytes: 4096, max_request_bytes: 8192}
aws: {auth: none, default_bus: orders}
"#;
    let gw = Gateway::start(&redis, config).await;
    let body = serde_json::to_vec(&json!({"Entries": [entry("s", "t", "{}")]})).unwrap();
    let headers: Headers = vec![
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        ("x-amz-target".into(), "AWSEvents.PutEvents".into()),
    ];
    let (status, _, answer) = send(&gw.url("/aws/events/"), &headers, body).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert!(uuid_shaped(
        answer["Entries"][0]["EventId"].as_str().unwrap()
    ));
    assert_eq!(redis.xlen(ORDERS_KEY), 1);

    // A body over limits.max_request_bytes: refused from Content-Length, AWS-shaped.
    let huge = vec![b' '; 9000];
    let (status, error, answer) = send(&gw.url("/"), &headers, huge).await;
    assert_eq!(
        (status, error.as_deref()),
        (413, Some("RequestEntityTooLargeException")),
        "{answer}"
    );
    // An entry within the request limit but over max_event_bytes: a per-entry error.
    let pad = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
    let body =
        serde_json::to_vec(&json!({"Entries": [entry("s", "t", &pad), entry("s", "t", "{}")]}))
            .unwrap();
    let (status, _, answer) = send(&gw.url("/"), &headers, body).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(1)),
        "{answer}"
    );
    assert_eq!(answer["Entries"][0]["ErrorCode"], "InvalidArgument");
    assert_eq!(redis.xlen(ORDERS_KEY), 2);
}

// ---- Alibaba Cloud EventBridge PutEvents ----

/// Headers of an Alibaba PutEvents request, signed as the Alibaba SDKs sign
/// (EventBridgeUtilClient: base64 HMAC-SHA1 over METHOD, content-md5, content-type,
/// date, the sorted x-acs-* headers and the path).
fn ali_signed(
    key_id: &str,
    secret: &str,
    date: chrono::DateTime<chrono::Utc>,
    extra: &[(&str, &str)],
) -> Headers {
    use hmac::{KeyInit, Mac};
    let mut headers: Headers = vec![
        (
            "date".into(),
            date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ),
        ("accept".into(), "application/json".into()),
        (
            "content-type".into(),
            "application/cloudevents-batch+json; charset=utf-8".into(),
        ),
        (
            "x-acs-signature-nonce".into(),
            uuid::Uuid::new_v4().to_string(),
        ),
        ("x-acs-signature-method".into(), "HMAC-SHA1".into()),
        ("x-acs-signature-version".into(), "1.0".into()),
        ("x-eventbridge-version".into(), "2015-06-06".into()),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mut acs: Vec<&(String, String)> = headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-acs"))
        .collect();
    acs.sort();
    let mut to_sign = format!(
        "POST\n{}\n{}\n{}\n",
        get("content-md5"),
        get("content-type"),
        get("date")
    );
    for (name, value) in acs {
        to_sign.push_str(&format!("{name}:{value}\n"));
    }
    to_sign.push_str("/openapi/putEvents");
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    headers.push(("authorization".into(), format!("acs:{key_id}:{signature}")));
    headers
}

use base64::Engine;

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_batches_give_per_event_results() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let extra = format!(
        r#"rules:
  - {{name: big, bus: default, pattern: {{data: {{amount: [{{numeric: [">", 100]}}]}}}}, targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]}}
  - {{name: all, bus: orders, targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]}}
"#,
        rx.url("/default"),
        rx.url("/orders")
    );
    let gw = Gateway::start(&redis, &config(&extra)).await;
    let url = gw.url("/openapi/putEvents");
    // What the SDK sends: the default datacontenttype is not exactly application/json,
    // so the JSON data travels base64-encoded.
    let body = json!([
        {"specversion": "1.0", "id": "ali-1", "source": "acs.oss", "type": "oss:ObjectCreated:PostObject",
         "subject": "acs:oss:cn-hangzhou:1234567:bucket/a.jpg", "aliyuneventbusname": "orders",
         "datacontenttype": "application/json", "data": {"object": "a.jpg"}},
        {"specversion": "1.0", "id": "ali-2", "source": "shop", "type": "order.paid",
         "datacontenttype": "application/json; charset=utf-8",
         "data_base64": base64::engine::general_purpose::STANDARD.encode(r#"{"amount": 150}"#)},
        {"specversion": "1.0", "id": "ali-3", "source": "shop"},
        {"specversion": "1.0", "id": "ali-4", "source": "shop", "type": "t", "aliyuneventbusname": "nope"},
    ]);
    let bytes = serde_json::to_vec(&body).unwrap();
    let headers = ali_signed(ALI_KEY_ID, ALI_SECRET, chrono::Utc::now(), &[]);
    let (status, _, answer) = send(&url, &headers, bytes).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ResourceOwnerAccountId"], ALI_ACCOUNT);
    assert!(answer["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(answer["FailedEntryCount"], 2, "{answer}");
    let list = answer["EntryList"].as_array().unwrap();
    assert_eq!(list[0]["EventId"], "ali-1");
    assert!(list[0]["TraceId"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(list[0].get("ErrorCode").is_none());
    assert_eq!(list[1]["EventId"], "ali-2");
    assert_eq!(list[2]["ErrorCode"], "InvalidArgument", "{answer}");
    assert!(
        list[2]["ErrorMessage"].as_str().unwrap().contains("type"),
        "{answer}"
    );
    assert_eq!(
        list[3],
        json!({"EventId": "ali-4", "ErrorCode": "EventBusNotExist", "ErrorMessage": "The event bus [nope] not existed!"})
    );
    assert_eq!(redis.xlen(ORDERS_KEY), 1);
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);

    // Both delivered; the base64 JSON data matched a pattern on data, and arrives as JSON.
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    let received = rx.received();
    let paid = received.iter().find(|r| r.path == "/default").unwrap();
    assert_eq!(paid.body, br#"{"amount": 150}"#);
    assert_eq!(paid.header("ce-id"), Some("ali-2"));
    assert_eq!(
        paid.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let oss = received.iter().find(|r| r.path == "/orders").unwrap();
    assert_eq!(oss.body, br#"{"object":"a.jpg"}"#);
    assert_eq!(oss.header("ce-aliyuneventbusname"), Some("orders"));
    assert_eq!(
        oss.header("ce-subject"),
        Some("acs:oss:cn-hangzhou:1234567:bucket/a.jpg")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_signature_failures_append_nothing() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let url = gw.url("/openapi/putEvents");
    let body = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "a", "source": "s", "type": "t", "data": {}}
    ]))
    .unwrap();
    let now = chrono::Utc::now();
    let md5 =
        base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(&body));
    let mut nonce_changed = ali_signed(ALI_KEY_ID, ALI_SECRET, now, &[]);
    nonce_changed[3].1 = "another-nonce".into();
    let cases: Vec<(&str, Headers, Vec<u8>, u16, &str)> = vec![
        (
            "wrong secret",
            ali_signed(ALI_KEY_ID, "wrong", now, &[]),
            body.clone(),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "unknown key",
            ali_signed("LTAI5tUnknown", ALI_SECRET, now, &[]),
            body.clone(),
            403,
            "InvalidAccessKeyId.NotFound",
        ),
        (
            "old date",
            ali_signed(
                ALI_KEY_ID,
                ALI_SECRET,
                now - chrono::TimeDelta::minutes(20),
                &[],
            ),
            body.clone(),
            403,
            "InvalidTimeStamp.Expired",
        ),
        (
            "signed header changed",
            nonce_changed,
            body.clone(),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "body changed under a signed content-md5",
            ali_signed(
                ALI_KEY_ID,
                ALI_SECRET,
                now,
                &[("content-md5", md5.as_str())],
            ),
            serde_json::to_vec(
                &json!([{"specversion": "1.0", "id": "b", "source": "s", "type": "t"}]),
            )
            .unwrap(),
            400,
            "InvalidContentMD5",
        ),
        (
            "unsigned",
            vec![
                (
                    "content-type".into(),
                    "application/cloudevents-batch+json".into(),
                ),
                (
                    "date".into(),
                    now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                ),
            ],
            body.clone(),
            401,
            "InvalidAuthorization",
        ),
    ];
    for (case, headers, body, status, code) in cases {
        let (got, _, answer) = send(&url, &headers, body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{case}: {answer}"
        );
        assert!(answer["requestId"].as_str().is_some(), "{case}");
    }
    assert_eq!(redis.xlen(DEFAULT_KEY), 0);
    assert!(!gw.logs().contains(ALI_SECRET));

    // Signed with content-md5 over the real body, it goes through.
    let headers = ali_signed(
        ALI_KEY_ID,
        ALI_SECRET,
        now,
        &[("content-md5", md5.as_str())],
    );
    let (status, _, answer) = send(&url, &headers, body).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_replayed_nonces_are_refused() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let url = gw.url("/openapi/putEvents");
    let body = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "r1", "source": "s", "type": "t", "data": {}}
    ]))
    .unwrap();
    let headers = ali_signed(ALI_KEY_ID, ALI_SECRET, chrono::Utc::now(), &[]);
    let (status, _, answer) = send(&url, &headers, body.clone()).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);

    // The same signed request again: refused, nothing appended.
    let (status, _, answer) = send(&url, &headers, body.clone()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("SignatureNonceUsed")),
        "{answer}"
    );
    // Replayed with another body (no content-md5, so the body is not signed): refused
    // all the same.
    let other = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "r2", "source": "s", "type": "t", "data": {"evil": true}}
    ]))
    .unwrap();
    let (status, _, answer) = send(&url, &headers, other).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("SignatureNonceUsed")),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);

    // No nonce at all (signed without it): refused.
    let mut headers = ali_signed(ALI_KEY_ID, ALI_SECRET, chrono::Utc::now(), &[]);
    headers.retain(|(n, _)| n != "x-acs-signature-nonce");
    let (status, _, answer) = send(&url, &headers, body.clone()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("MissingSignatureNonce")),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_require_content_md5_refuses_unsigned_bodies() {
    let redis = Redis::start();
    let config = format!(
        r#"
buses: [{{name: default}}]
alibaba:
  default_bus: default
  require_content_md5: true
  access_keys: [{{id: {ALI_KEY_ID}, secret: "{ALI_SECRET}"}}]
"#
    );
    let gw = Gateway::start(&redis, &config).await;
    let url = gw.url("/openapi/putEvents");
    let body = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "m1", "source": "s", "type": "t", "data": {}}
    ]))
    .unwrap();
    let tampered = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "m1", "source": "s", "type": "t", "data": {"evil": true}}
    ]))
    .unwrap();
    // Signed as the SDK signs (no content-md5), body tampered with: refused.
    let headers = ali_signed(ALI_KEY_ID, ALI_SECRET, chrono::Utc::now(), &[]);
    let (status, _, answer) = send(&url, &headers, tampered.clone()).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("MissingContentMD5")),
        "{answer}"
    );
    // With content-md5 over the original body, the tampered body is refused too.
    let md5 =
        base64::engine::general_purpose::STANDARD.encode(<md5::Md5 as md5::Digest>::digest(&body));
    let headers = ali_signed(
        ALI_KEY_ID,
        ALI_SECRET,
        chrono::Utc::now(),
        &[("content-md5", md5.as_str())],
    );
    let (status, _, answer) = send(&url, &headers, tampered).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("InvalidContentMD5")),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 0);
    // And the untampered body goes through.
    let headers = ali_signed(
        ALI_KEY_ID,
        ALI_SECRET,
        chrono::Utc::now(),
        &[("content-md5", md5.as_str())],
    );
    let (status, _, answer) = send(&url, &headers, body).await;
    assert_eq!(
        (status, &answer["FailedEntryCount"]),
        (200, &json!(0)),
        "{answer}"
    );
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_events_are_deduplicated_by_source_and_id() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let url = gw.url("/openapi/putEvents");
    let body = serde_json::to_vec(&json!([
        {"specversion": "1.0", "id": "d1", "source": "shop", "type": "t", "data": {}},
        {"specversion": "1.0", "id": "d1", "source": "other", "type": "t", "aliyuneventbusname": "orders"},
        {"specversion": "1.0", "id": "d2", "source": "shop"},
        {"specversion": "1.0", "id": "d1", "source": "shop", "type": "t", "data": {}},
    ]))
    .unwrap();
    let mut answers = Vec::new();
    // The SDK's retry: the same batch, freshly signed (new date and nonce).
    for _ in 0..2 {
        let headers = ali_signed(ALI_KEY_ID, ALI_SECRET, chrono::Utc::now(), &[]);
        let (status, _, answer) = send(&url, &headers, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    for answer in &answers {
        assert_eq!(answer["FailedEntryCount"], 1, "{answer}");
        let list = answer["EntryList"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0]["EventId"], "d1");
        assert_eq!(list[1]["EventId"], "d1");
        assert_eq!(list[2]["ErrorCode"], "InvalidArgument", "{answer}");
        // A repeat within the batch is a success too.
        assert_eq!(list[3]["EventId"], "d1");
        assert!(list[3].get("ErrorCode").is_none(), "{answer}");
    }
    assert_eq!(redis.xlen(DEFAULT_KEY), 1);
    assert_eq!(redis.xlen(ORDERS_KEY), 1);
}
