//! Webhook sources: each kind accepts a request signed the way its provider documents,
//! appends it once, deduplicates redeliveries, and answers 401 (appending nothing) to a
//! wrong secret, a tampered body, a missing header or a stale timestamp.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Digest;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const BUS_KEY: &str = "sluice:{hooks}:events";
const TWILIO_URL: &str = "https://hooks.example.com/webhooks/twilio";

fn hmac256(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

fn hmac1(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The two secrets of every source (rotation): requests signed with either pass.
const FIRST: &str = "first-secret";
const SECOND: &str = "second-secret";

fn whsec(secret: &str) -> String {
    format!("whsec_{}", B64.encode(secret))
}

fn config(extra: &str) -> String {
    let secrets = format!("[{FIRST}, {SECOND}]");
    let std_secrets = format!("[{}, {}]", whsec(FIRST), whsec(SECOND));
    format!(
        r#"
buses: [{{name: hooks}}]
limits: {{max_event_bytes: 4096, max_request_bytes: 8192}}
sources:
  - {{name: github, kind: github, bus: hooks, secrets: {secrets}}}
  - {{name: stripe, kind: stripe, bus: hooks, secrets: {secrets}}}
  - {{name: slack, kind: slack, bus: hooks, secrets: {secrets}}}
  - {{name: shopify, kind: shopify, bus: hooks, secrets: {secrets}}}
  - {{name: standard, kind: standard-webhooks, bus: hooks, secrets: {std_secrets}}}
  - {{name: gitlab, kind: gitlab, bus: hooks, secrets: {secrets}}}
  - {{name: twilio, kind: twilio, bus: hooks, secrets: {secrets}, url: "{TWILIO_URL}"}}
  - {{name: hmac, kind: hmac, bus: hooks, secrets: {secrets}, header: X-Signature, prefix: "sha256=", timestamp_header: X-Timestamp, signed_content: "{{timestamp}}.{{body}}", id_header: X-Request-Id}}
  - {{name: token, kind: token, bus: hooks, secrets: {secrets}, id_header: X-Request-Id}}
  - {{name: basic, kind: basic, bus: hooks, secrets: {secrets}, username: hooks, id_header: X-Request-Id}}
{extra}"#
    )
}

type Headers = Vec<(String, String)>;

/// How one kind's provider signs a request: headers for (secret, delivery id,
/// timestamp, body). `query` is the request's query string.
struct Kind {
    source: &'static str,
    content_type: &'static str,
    query: &'static str,
    body: &'static str,
    /// The header whose absence must be refused.
    required: &'static str,
    /// The signature covers the body (token and basic auth do not).
    signs_body: bool,
    /// The signature covers a timestamp.
    timestamped: bool,
    sign: fn(&str, &str, i64, &[u8]) -> Headers,
}

fn h(pairs: &[(&str, String)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            source: "github",
            content_type: "application/json",
            query: "",
            body: r#"{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"}}"#,
            required: "x-hub-signature-256",
            signs_body: true,
            timestamped: false,
            sign: |secret, id, _, body| {
                h(&[
                    ("x-github-event", "push".into()),
                    ("x-github-delivery", id.into()),
                    (
                        "x-hub-signature-256",
                        format!("sha256={}", hex::encode(hmac256(secret.as_bytes(), body))),
                    ),
                ])
            },
        },
        Kind {
            source: "stripe",
            content_type: "application/json; charset=utf-8",
            query: "",
            body: r#"{"id":"evt_1QX","object":"event","type":"invoice.paid","created":1700000000}"#,
            required: "stripe-signature",
            signs_body: true,
            timestamped: true,
            sign: |secret, _, ts, body| {
                let content = [format!("{ts}.").as_bytes(), body].concat();
                let sig = hex::encode(hmac256(secret.as_bytes(), &content));
                h(&[("stripe-signature", format!("t={ts},v1={sig}"))])
            },
        },
        Kind {
            source: "slack",
            content_type: "application/json",
            query: "",
            body: r#"{"type":"event_callback","team_id":"T1","event_id":"Ev08","event_time":1700000000,"event":{"type":"app_mention","text":"hi"}}"#,
            required: "x-slack-signature",
            signs_body: true,
            timestamped: true,
            sign: |secret, _, ts, body| {
                let content = [format!("v0:{ts}:").as_bytes(), body].concat();
                let sig = hex::encode(hmac256(secret.as_bytes(), &content));
                h(&[
                    ("x-slack-request-timestamp", ts.to_string()),
                    ("x-slack-signature", format!("v0={sig}")),
                ])
            },
        },
        Kind {
            source: "shopify",
            content_type: "application/json",
            query: "",
            body: r#"{"id":820982911946154508,"email":"jon@example.com"}"#,
            required: "x-shopify-hmac-sha256",
            signs_body: true,
            timestamped: false,
            sign: |secret, id, _, body| {
                h(&[
                    ("x-shopify-topic", "orders/create".into()),
                    ("x-shopify-webhook-id", id.into()),
                    ("x-shopify-shop-domain", "acme.myshopify.com".into()),
                    (
                        "x-shopify-hmac-sha256",
                        B64.encode(hmac256(secret.as_bytes(), body)),
                    ),
                ])
            },
        },
        Kind {
            source: "standard",
            content_type: "application/json",
            query: "",
            body: r#"{"type":"user.created","timestamp":"2026-11-23T10:00:00Z","data":{"id":1}}"#,
            required: "webhook-signature",
            signs_body: true,
            timestamped: true,
            sign: |secret, id, ts, body| {
                let key = B64
                    .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                    .unwrap_or_else(|_| secret.as_bytes().to_vec());
                let content = [format!("{id}.{ts}.").as_bytes(), body].concat();
                h(&[
                    ("webhook-id", id.into()),
                    ("webhook-timestamp", ts.to_string()),
                    (
                        "webhook-signature",
                        format!("v1,{}", B64.encode(hmac256(&key, &content))),
                    ),
                ])
            },
        },
        Kind {
            source: "gitlab",
            content_type: "application/json",
            query: "",
            body: r#"{"object_kind":"push","project":{"web_url":"https://gitlab.example.com/acme/shop"}}"#,
            required: "x-gitlab-token",
            signs_body: false,
            timestamped: false,
            sign: |secret, id, _, _| {
                h(&[
                    ("x-gitlab-event", "Push Hook".into()),
                    ("x-gitlab-event-uuid", id.into()),
                    ("x-gitlab-token", secret.into()),
                ])
            },
        },
        Kind {
            source: "twilio",
            content_type: "application/x-www-form-urlencoded",
            query: "tenant=acme",
            body: "AccountSid=AC123&Body=Hello%20there&From=%2B14155550100&MessageSid=SM1&To=%2B14155550199",
            required: "x-twilio-signature",
            signs_body: true,
            timestamped: false,
            sign: |secret, id, _, body| {
                let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                params.sort();
                let mut content = format!("{TWILIO_URL}?tenant=acme");
                for (k, v) in params {
                    content.push_str(&k);
                    content.push_str(&v);
                }
                h(&[
                    ("i-twilio-idempotency-token", id.into()),
                    (
                        "x-twilio-signature",
                        B64.encode(hmac1(secret.as_bytes(), content.as_bytes())),
                    ),
                ])
            },
        },
        Kind {
            source: "hmac",
            content_type: "application/json",
            query: "",
            body: r#"{"order":7}"#,
            required: "x-signature",
            signs_body: true,
            timestamped: true,
            sign: |secret, id, ts, body| {
                let content = [format!("{ts}.").as_bytes(), body].concat();
                h(&[
                    ("x-request-id", id.into()),
                    ("x-timestamp", ts.to_string()),
                    (
                        "x-signature",
                        format!("sha256={}", hex::encode(hmac256(secret.as_bytes(), &content))),
                    ),
                ])
            },
        },
        Kind {
            source: "token",
            content_type: "text/plain",
            query: "",
            body: "deploy finished",
            required: "authorization",
            signs_body: false,
            timestamped: false,
            sign: |secret, id, _, _| {
                h(&[
                    ("x-request-id", id.into()),
                    ("authorization", format!("Bearer {secret}")),
                ])
            },
        },
        Kind {
            source: "basic",
            content_type: "application/json",
            query: "",
            body: r#"{"alert":"disk"}"#,
            required: "authorization",
            signs_body: false,
            timestamped: false,
            sign: |secret, id, _, _| {
                h(&[
                    ("x-request-id", id.into()),
                    (
                        "authorization",
                        format!("Basic {}", B64.encode(format!("hooks:{secret}"))),
                    ),
                ])
            },
        },
    ]
}

async fn send(
    gw: &Gateway,
    source: &str,
    query: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut url = gw.url(&format!("/webhooks/{source}"));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_vec());
    for (n, v) in headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn secret_for(kind: &Kind, secret: &str) -> String {
    if kind.source == "standard" {
        whsec(secret)
    } else {
        secret.to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_appends_a_verified_request_once_and_refuses_the_rest() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let unauthorized =
        json!({"error": "unauthorized", "message": "the request could not be verified"});
    let mut expected_len = 0;

    for kind in kinds() {
        let k = kind.source;
        let body = kind.body.as_bytes();
        let id = format!("{k}-delivery-1");
        let send = |headers: Vec<(String, String)>, body: Vec<u8>| {
            let gw = &gw;
            async move { send(gw, k, kind.query, kind.content_type, &headers, &body).await }
        };
        let sign = |secret: &str, ts: i64, body: &[u8]| {
            (kind.sign)(&secret_for(&kind, secret), &id, ts, body)
        };

        // Refused: wrong secret, missing header, tampered body, stale timestamp.
        let (status, answer) = send(sign("wrong-secret", now(), body), body.to_vec()).await;
        assert_eq!((status, &answer), (401, &unauthorized), "{k}: wrong secret");
        let mut missing = sign(FIRST, now(), body);
        missing.retain(|(n, _)| n != kind.required);
        let (status, answer) = send(missing, body.to_vec()).await;
        assert_eq!(
            (status, &answer),
            (401, &unauthorized),
            "{k}: missing header"
        );
        if kind.signs_body {
            let mut tampered = body.to_vec();
            let at = tampered.len() - 2;
            tampered[at] ^= 1;
            let (status, _) = send(sign(FIRST, now(), body), tampered).await;
            assert_eq!(status, 401, "{k}: tampered body");
        }
        if kind.timestamped {
            // Well outside the 300 s tolerance: the gateway's clock reads a second or
            // two later than ours by the time it checks.
            let stale = now() - 310;
            let (status, _) = send(sign(FIRST, stale, body), body.to_vec()).await;
            assert_eq!(status, 401, "{k}: timestamp 310 s old");
            let future = now() + 310;
            let (status, _) = send(sign(FIRST, future, body), body.to_vec()).await;
            assert_eq!(status, 401, "{k}: timestamp 310 s ahead");
        }
        assert_eq!(
            redis.xlen(BUS_KEY),
            expected_len,
            "{k}: refused requests appended"
        );

        // Accepted once, signed with the second (rotated-in) secret.
        let (status, answer) = send(sign(SECOND, now(), body), body.to_vec()).await;
        assert_eq!(status, 202, "{k}: {answer}");
        expected_len += 1;
        assert_eq!(redis.xlen(BUS_KEY), expected_len, "{k}: not appended");
        let event_id = answer["id"].as_str().unwrap().to_string();

        // The provider retries (re-signed, with the first secret): answered 200, not
        // appended again.
        let (status, answer) = send(sign(FIRST, now() + 1, body), body.to_vec()).await;
        assert_eq!(
            (status, &answer),
            (200, &json!({"id": event_id, "duplicate": true})),
            "{k}: redelivery"
        );
        assert_eq!(redis.xlen(BUS_KEY), expected_len, "{k}: duplicate appended");
    }

    // The log says which source and why, never a secret or a signature.
    let logs = gw.logs();
    assert!(logs.contains("webhook rejected"), "{logs}");
    assert!(logs.contains("source=stripe"), "{logs}");
    assert!(
        logs.contains("timestamp outside the tolerance window"),
        "{logs}"
    );
    for secret in [FIRST, SECOND, "wrong-secret", "sha256="] {
        assert!(!logs.contains(secret), "log shows {secret:?}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delivered_event_carries_provider_attributes_and_the_body_unchanged() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let extra = format!(
        r#"rules:
  - name: pushes
    bus: hooks
    pattern: {{type: [com.github.push], data: {{ref: [refs/heads/main]}}}}
    targets: [{{name: rx, kind: http, url: "{}", timeout: 2s}}]
"#,
        rx.url("/ci")
    );
    let gw = Gateway::start(&redis, &config(&extra)).await;
    // Key order and spacing must survive: the body is what GitHub signed.
    let body =
        br#"{"ref": "refs/heads/main",  "after": 1.50, "repository": {"full_name": "acme/shop"}}"#;
    let mut headers = (kinds()[0].sign)(FIRST, "72d3162e-cc78-11e3-81ab-4c9367dc0958", 0, body);
    headers.push(("x-github-hook-id".into(), "292430182".into()));
    let (status, answer) = send(&gw, "github", "", "application/json", &headers, body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"id": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
    );

    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let got = &rx.received()[0];
    assert_eq!(got.body, body);
    assert_eq!(
        got.header("ce-id"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(got.header("ce-type"), Some("com.github.push"));
    assert_eq!(
        got.header("ce-source"),
        Some("https://github.com/acme/shop")
    );
    assert_eq!(got.header("ce-githubhookid"), Some("292430182"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.header("ce-time").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_url_verification_is_answered_only_when_signed() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let slack = &kinds()[2];
    let (status, answer) = send(
        &gw,
        "slack",
        "",
        "application/json",
        &(slack.sign)(FIRST, "", now(), body),
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    let (status, _) = send(&gw, "slack", "", "application/json", &[], body).await;
    assert_eq!(status, 401);
    assert_eq!(redis.xlen(BUS_KEY), 0, "the handshake is not an event");

    // Slash commands arrive form-encoded and are kept as text.
    let form = b"team_id=T1&command=%2Fdeploy&text=prod&trigger_id=1334.7384.80889";
    let (status, answer) = send(
        &gw,
        "slack",
        "",
        "application/x-www-form-urlencoded",
        &(slack.sign)(FIRST, "", now(), form),
        form,
    )
    .await;
    assert_eq!(
        (status, answer["id"].as_str()),
        (202, Some("1334.7384.80889"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_json_bodies_are_covered_by_body_sha256() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let body = br#"{"MessageSid":"SM1","Status":"delivered"}"#;
    let query = format!("bodySHA256={}", hex::encode(sha2::Sha256::digest(body)));
    let sig = B64.encode(hmac1(
        FIRST.as_bytes(),
        format!("{TWILIO_URL}?{query}").as_bytes(),
    ));
    let headers = vec![("x-twilio-signature".to_string(), sig)];
    let (status, _) = send(&gw, "twilio", &query, "application/json", &headers, body).await;
    assert_eq!(status, 202);
    let other = br#"{"MessageSid":"SM1","Status":"failed"}"#;
    let (status, _) = send(&gw, "twilio", &query, "application/json", &headers, other).await;
    assert_eq!(status, 401);
    assert_eq!(redis.xlen(BUS_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_refuses_a_body_the_signature_does_not_cover() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    // Signed over the URL alone: no form parameters, no bodySHA256.
    let sig = B64.encode(hmac1(
        FIRST.as_bytes(),
        format!("{TWILIO_URL}?x=1").as_bytes(),
    ));
    let headers = vec![("x-twilio-signature".to_string(), sig)];
    for content_type in [
        "text/plain",
        "application/json",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "Application/X-Www-Form-Urlencoded; charset=utf-8",
    ] {
        let (status, _) = send(&gw, "twilio", "x=1", content_type, &headers, b"Body=hi").await;
        assert_eq!(status, 401, "{content_type}");
    }
    assert_eq!(redis.xlen(BUS_KEY), 0);
    // Without a body the URL is all there is to sign.
    let (status, answer) = send(&gw, "twilio", "x=1", "text/plain", &headers, b"").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(redis.xlen(BUS_KEY), 1);
}

/// POSTs `chunks` with `Transfer-Encoding: chunked` (no Content-Length) over a raw
/// connection; the status and the whole response as text.
async fn post_chunked(
    gw: &Gateway,
    path: &str,
    headers: &[(String, String)],
    chunks: &[&[u8]],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The gateway may answer (and stop reading) before the last chunk: write errors
    // are expected then, the answer is what counts.
    let mut out = head.into_bytes();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    for piece in out.chunks(1024) {
        if stream.write_all(piece).await.is_err() {
            break;
        }
        stream.flush().await.ok();
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_bodies_are_limited_while_streaming() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let github = &kinds()[0];
    let with_type = |mut headers: Headers| {
        headers.push(("content-type".into(), "application/json".into()));
        headers
    };

    // Within the limit, chunked: accepted (so the refusal below is the limit's).
    let small = br#"{"zen":"Approachable is better than simple."}"#;
    let headers = with_type((github.sign)(FIRST, "chunked-1", 0, small));
    let (status, answer) = post_chunked(
        &gw,
        "/webhooks/github",
        &headers,
        &[&small[..10], &small[10..]],
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(redis.xlen(BUS_KEY), 1);

    // Over max_request_bytes (8192) with no Content-Length to refuse it from: refused
    // while reading, and nothing appended.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(12_000));
    let headers = with_type((github.sign)(FIRST, "chunked-big", 0, big.as_bytes()));
    let chunks: Vec<&[u8]> = big.as_bytes().chunks(1000).collect();
    let (status, answer) = post_chunked(&gw, "/webhooks/github", &headers, &chunks).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("request_too_large"), "{answer}");
    assert_eq!(redis.xlen(BUS_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_unknown_sources_methods_and_redis_outages() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&redis, &config("")).await;
    let github = &kinds()[0];

    // Over max_request_bytes (8192): refused from Content-Length, before verification.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(9000));
    let headers = (github.sign)(FIRST, "big-1", 0, big.as_bytes());
    let (status, answer) = send(
        &gw,
        "github",
        "",
        "application/json",
        &headers,
        big.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("request_too_large"))
    );
    // Within the request limit but over max_event_bytes (4096).
    let mid = format!(r#"{{"pad":"{}"}}"#, "x".repeat(5000));
    let headers = (github.sign)(FIRST, "mid-1", 0, mid.as_bytes());
    let (status, answer) = send(
        &gw,
        "github",
        "",
        "application/json",
        &headers,
        mid.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("event_too_large"))
    );

    let (status, answer) = send(&gw, "nope", "", "application/json", &[], b"{}").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_source"))
    );
    let res = reqwest::get(gw.url("/webhooks/github")).await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(redis.xlen(BUS_KEY), 0);

    if !redis.can_restart() {
        return;
    }
    redis.kill();
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let headers = (github.sign)(FIRST, "ping-1", 0, body);
    let res = reqwest::Client::new()
        .post(gw.url("/webhooks/github"))
        .header("content-type", "application/json")
        .headers(
            headers
                .iter()
                .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
                .collect(),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert_eq!(res.headers()["retry-after"], "1");

    // Once Redis is back the provider's retry is accepted and appended once.
    redis.restart();
    let mut status = 0;
    for _ in 0..50 {
        status = send(&gw, "github", "", "application/json", &headers, body)
            .await
            .0;
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 202);
    assert_eq!(redis.xlen(BUS_KEY), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn dedupe_off_appends_every_delivery() {
    let redis = Redis::start();
    let config = config("").replace(
        "{name: github, kind: github, bus: hooks,",
        "{name: github, kind: github, bus: hooks, dedupe: \"off\",",
    );
    let gw = Gateway::start(&redis, &config).await;
    let body = br#"{"zen":"Design for failure."}"#;
    let headers = (kinds()[0].sign)(FIRST, "same-id", 0, body);
    for _ in 0..2 {
        let (status, _) = send(&gw, "github", "", "application/json", &headers, body).await;
        assert_eq!(status, 202);
    }
    assert_eq!(redis.xlen(BUS_KEY), 2);
}
