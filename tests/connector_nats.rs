//! The NATS connector and target end to end, driven with the real client (async-nats):
//! the CloudEvents NATS binding both ways (binary and structured, JSON, text and binary
//! data), plain messages, invalid CloudEvents, core NATS, kill -9 of the gateway mid-flow
//! and a NATS server that dies and comes back (docs/connectors/nats.md).
//!
//! The shared server (127.0.0.1:4222, JetStream on) is used with uniquely named streams
//! and subjects, deleted at the end; the restart test runs a private `nats-server` on a
//! free port with its own store directory.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use common::*;

const SHARED: &str = "nats://127.0.0.1:4222";

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// A JetStream stream of the test's own, deleted when dropped.
struct TestStream {
    url: String,
    name: String,
    js: jetstream::Context,
}

impl TestStream {
    async fn create(url: &str, name: &str, subjects: &[String]) -> TestStream {
        let client = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: name.to_string(),
            subjects: subjects.to_vec(),
            // A safety net should a test die before deleting it.
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .unwrap();
        TestStream {
            url: url.to_string(),
            name: name.to_string(),
            js,
        }
    }

    /// Publishes and waits for the PubAck.
    async fn publish(&self, subject: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut map = async_nats::HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, *v);
        }
        self.js
            .publish_with_headers(subject.to_string(), map, Bytes::copy_from_slice(body))
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Every message in the stream, in order.
    async fn messages(&self) -> Vec<jetstream::message::StreamMessage> {
        let stream = self.js.get_stream(&self.name).await.unwrap();
        let info = stream.get_info().await.unwrap();
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return out;
        }
        for seq in info.state.first_sequence..=info.state.last_sequence {
            match stream.get_raw_message(seq).await {
                Ok(m) => out.push(m),
                Err(e) => eprintln!("message {seq}: {e}"),
            }
        }
        out
    }

    /// Unacknowledged and undelivered messages of consumer `name`.
    async fn consumer_backlog(&self, name: &str) -> (usize, u64) {
        let stream = self.js.get_stream(&self.name).await.unwrap();
        let mut consumer: jetstream::consumer::PullConsumer =
            stream.get_consumer(name).await.unwrap();
        let info = consumer.info().await.unwrap();
        (info.num_ack_pending, info.num_pending)
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await: delete from a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    if let Ok(Ok(client)) = tokio::time::timeout(
                        Duration::from_secs(3),
                        async_nats::connect(url.as_str()),
                    )
                    .await
                    {
                        let _ = jetstream::new(client).delete_stream(&name).await;
                    }
                })
        })
        .join();
    }
}

fn header<'a>(m: &'a jetstream::message::StreamMessage, name: &str) -> Option<&'a str> {
    m.headers.get(name).map(|v| v.as_str())
}

/// The `ce-*` headers of a message but the trace ones (`sluicepath`, ...), by bare name.
fn ce_headers(headers: &async_nats::HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(n, v)| {
            let n: &str = n.as_ref();
            let bare = n.strip_prefix("ce-")?;
            (!bare.starts_with("sluice")).then(|| (bare.to_string(), v[0].as_str().to_string()))
        })
        .collect()
}

/// Posts a binary-mode CloudEvent over HTTP.
async fn post_binary(gw: &Gateway, bus: &str, attrs: &[(&str, &str)], ct: &str, body: &[u8]) {
    let mut req = reqwest::Client::new()
        .post(gw.url(&format!("/buses/{bus}/events")))
        .header("content-type", ct)
        .body(body.to_vec());
    for (n, v) in attrs {
        req = req.header(format!("ce-{n}"), *v);
    }
    assert_eq!(req.send().await.unwrap().status().as_u16(), 202);
}

fn source_config(rx: &Receiver, connectors: &str) -> String {
    format!(
        r#"
buses: [{{name: b}}]
connectors:
{connectors}
rules:
  - name: all
    bus: b
    targets:
      - {{name: rx, kind: http, url: "{}", timeout: 2s}}
"#,
        rx.url("/in")
    )
}

/// The request of the receiver with `ce-id: id`.
fn by_id(rx: &Receiver, id: &str) -> Option<Received> {
    rx.received()
        .into_iter()
        .find(|r| r.header("ce-id") == Some(id))
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_of_both_modes_and_plain_ones_arrive_in_the_bus() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let s = suffix();
    let stream_name = format!("SLUICE_IN_{s}");
    let subject = format!("sluicet.{s}");
    let stream = TestStream::create(SHARED, &stream_name, &[format!("{subject}.>")]).await;
    let core_subject = format!("sluicecore.{s}");
    let connectors = format!(
        r#"  - {{name: js, kind: nats, bus: b, url: "{SHARED}", stream: {stream_name}, consumer: gw, ack_wait: 2s}}
  - {{name: core, kind: nats, bus: b, url: "{SHARED}", subject: "{core_subject}.>", queue_group: sluice}}"#
    );
    let gw = Gateway::start(&redis, &source_config(&rx, &connectors)).await;

    // Binary mode: JSON, text and binary data.
    let binary = [
        ("b-json", "application/json", br#"{"n":1,"s":"x"}"#.to_vec()),
        ("b-text", "text/plain", b"hello, nats".to_vec()),
        (
            "b-bin",
            "application/octet-stream",
            vec![0u8, 1, 2, 255, 254, 10, 13],
        ),
    ];
    for (id, ct, body) in &binary {
        stream
            .publish(
                &format!("{subject}.bin"),
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", id),
                    ("ce-source", "/nats/test"),
                    ("ce-type", "test.binary"),
                    ("ce-subject", "orders/1"),
                    ("ce-tenant", "acme"),
                    ("content-type", ct),
                ],
                body,
            )
            .await;
    }
    // Structured mode: JSON data and base64 data.
    let structured = [
        (
            "s-json",
            r#"{"specversion":"1.0","id":"s-json","source":"/nats/test","type":"test.structured","datacontenttype":"application/json","tenant":"acme","data":{"n":2}}"#,
        ),
        (
            "s-bin",
            r#"{"specversion":"1.0","id":"s-bin","source":"/nats/test","type":"test.structured","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#,
        ),
    ];
    for (_, body) in &structured {
        stream
            .publish(
                &format!("{subject}.st"),
                &[(
                    "Content-Type",
                    "application/cloudevents+json; charset=utf-8",
                )],
                body.as_bytes(),
            )
            .await;
    }
    // A plain message, and a CloudEvent without a type (invalid: terminated).
    stream
        .publish(&format!("{subject}.plain"), &[], br#"{"plain":true}"#)
        .await;
    stream
        .publish(
            &format!("{subject}.bad"),
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "bad"),
                ("ce-source", "/x"),
            ],
            b"{}",
        )
        .await;

    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 6).await,
        "received {:?}",
        rx.ce_ids()
    );
    for (id, ct, body) in &binary {
        let r = by_id(&rx, id).unwrap();
        assert_eq!(r.header("ce-specversion"), Some("1.0"));
        assert_eq!(r.header("ce-source"), Some("/nats/test"));
        assert_eq!(r.header("ce-type"), Some("test.binary"));
        assert_eq!(r.header("ce-subject"), Some("orders/1"));
        assert_eq!(r.header("ce-tenant"), Some("acme"));
        assert_eq!(r.header("content-type"), Some(*ct));
        assert_eq!(&r.body, body, "{id}");
    }
    let r = by_id(&rx, "s-json").unwrap();
    assert_eq!(r.header("ce-type"), Some("test.structured"));
    assert_eq!(r.header("ce-tenant"), Some("acme"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, br#"{"n":2}"#);
    let r = by_id(&rx, "s-bin").unwrap();
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, [0u8, 1, 2, 255]);

    // The plain message: id {stream}:{sequence} (the 6th message), documented attributes.
    let plain_id = format!("{stream_name}:6");
    let r = by_id(&rx, &plain_id).expect("the plain message as an event");
    assert_eq!(r.header("ce-type"), Some("sluice.nats.message"));
    assert_eq!(
        r.header("ce-source"),
        Some(format!("{SHARED}/{stream_name}").as_str())
    );
    assert_eq!(
        r.header("ce-subject"),
        Some(format!("{subject}.plain").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, br#"{"plain":true}"#);
    let time = r.header("ce-time").expect("the time JetStream stored it");
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert!(by_id(&rx, "bad").is_none());

    // Everything settled: acked, and the invalid one terminated, not redelivered.
    let mut settled = false;
    for _ in 0..100 {
        if stream.consumer_backlog("gw").await == (0, 0) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        settled,
        "consumer backlog {:?}",
        stream.consumer_backlog("gw").await
    );
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_connector_messages")
                && l.contains("connector=\"js\"")
                && l.contains("invalid")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // Core NATS (at-most-once): published until the subscription is there.
    let client = async_nats::connect(SHARED).await.unwrap();
    let start = Instant::now();
    let mut n = 0;
    while by_id(&rx, "core-probe").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "core NATS connector got nothing"
        );
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "core-probe"),
            ("ce-source", "/core"),
            ("ce-type", "test.core"),
            ("content-type", "text/plain"),
        ] {
            h.insert(k, v);
        }
        client
            .publish_with_headers(
                format!("{core_subject}.x"),
                h,
                Bytes::from(format!("probe {n}")),
            )
            .await
            .unwrap();
        client.flush().await.unwrap();
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = by_id(&rx, "core-probe").unwrap();
    assert_eq!(r.header("ce-type"), Some("test.core"));
    assert!(r.body.starts_with(b"probe "));
    // Probes share one id: the dedupe window appended it once.
    assert_eq!(rx.ce_ids().iter().filter(|i| *i == "core-probe").count(), 1);
}

fn target_config(url: &str, subject: &str, core_subject: &str) -> String {
    format!(
        r#"
buses: [{{name: b}}]
rules:
  - name: out
    bus: b
    targets:
      - {{name: bin, kind: nats, url: "{url}", subject: "{subject}.bin.{{type}}", timeout: 3s}}
      - {{name: st, kind: nats, url: "{url}", subject: "{subject}.st", mode: structured, timeout: 3s}}
      - {{name: core, kind: nats, url: "{url}", subject: "{core_subject}", jetstream: false, timeout: 3s}}
      - name: tr
        kind: nats
        url: "{url}"
        subject: "{subject}.tr"
        timeout: 3s
        transform: {{form: TEMPLATE, value: '{{"n": "$.data.n"}}', template: '{{"got": ${{n}}}}'}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_nats_in_both_modes_with_the_same_attributes_and_data() {
    let redis = Redis::start();
    let s = suffix();
    let stream_name = format!("SLUICE_OUT_{s}");
    let subject = format!("sluiceo.{s}");
    let core_subject = format!("sluiceocore.{s}");
    // One stream per target: they publish the same events, and Nats-Msg-Id (the event
    // id) would make a shared stream keep only the first of each (docs/connectors/nats.md).
    let streams = [
        TestStream::create(
            SHARED,
            &format!("{stream_name}_BIN"),
            &[format!("{subject}.bin.>")],
        )
        .await,
        TestStream::create(
            SHARED,
            &format!("{stream_name}_ST"),
            &[format!("{subject}.st")],
        )
        .await,
        TestStream::create(
            SHARED,
            &format!("{stream_name}_TR"),
            &[format!("{subject}.tr")],
        )
        .await,
    ];
    let client = async_nats::connect(SHARED).await.unwrap();
    let mut core = client.subscribe(core_subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let gw = Gateway::start(&redis, &target_config(SHARED, &subject, &core_subject)).await;

    let events: [(&str, &str, &[u8]); 3] = [
        ("o-json", "application/json", br#"{"n":7,"s":"x"}"#),
        ("o-text", "text/plain", b"plain text, 100%"),
        (
            "o-bin",
            "application/octet-stream",
            &[0, 1, 2, 255, 128, 10],
        ),
    ];
    for (id, ct, body) in events {
        post_binary(
            &gw,
            "b",
            &[
                ("specversion", "1.0"),
                ("id", id),
                ("source", "/http/test"),
                ("type", "test.out"),
                ("subject", "orders/1"),
                ("tenant", "acme"),
            ],
            ct,
            body,
        )
        .await;
    }
    // 3 binary + 3 structured + the transformed JSON event.
    let on = |m: &jetstream::message::StreamMessage, tail: &str| {
        m.subject.as_str().strip_prefix(subject.as_str()) == Some(tail)
    };
    let start = Instant::now();
    let messages = loop {
        let mut messages = Vec::new();
        for stream in &streams {
            messages.extend(stream.messages().await);
        }
        let binary = messages.iter().filter(|m| on(m, ".bin.test.out")).count();
        let structured = messages.iter().filter(|m| on(m, ".st")).count();
        let transformed = messages
            .iter()
            .any(|m| on(m, ".tr") && header(m, "ce-id") == Some("o-json"));
        if binary >= 3 && structured >= 3 && transformed {
            break messages;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "stream has {}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected_attrs = |id: &str| -> HashMap<String, String> {
        [
            ("specversion", "1.0"),
            ("id", id),
            ("source", "/http/test"),
            ("type", "test.out"),
            ("subject", "orders/1"),
            ("tenant", "acme"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    for (id, ct, body) in events {
        // Binary: ce-* headers, Content-Type, the data bytes; Nats-Msg-Id = the id.
        let m = messages
            .iter()
            .find(|m| {
                m.subject.as_str() == format!("{subject}.bin.test.out")
                    && header(m, "ce-id") == Some(id)
            })
            .unwrap_or_else(|| panic!("binary {id} not in the stream"));
        assert_eq!(ce_headers(&m.headers), expected_attrs(id));
        assert_eq!(header(m, "Content-Type"), Some(ct));
        assert_eq!(header(m, "Nats-Msg-Id"), Some(id));
        assert_eq!(&m.payload[..], body);
        assert!(
            header(m, "ce-sluicepath").is_some(),
            "the gateway stamps its trace"
        );

        // Structured: the JSON format, same attributes and data.
        let m = messages
            .iter()
            .filter(|m| m.subject.as_str() == format!("{subject}.st"))
            .find(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["id"] == id)
            .unwrap_or_else(|| panic!("structured {id} not in the stream"));
        assert!(header(m, "Content-Type")
            .unwrap()
            .starts_with("application/cloudevents+json"));
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        for (k, want) in expected_attrs(id) {
            assert_eq!(v[&k], want.as_str(), "{id} {k}");
        }
        assert_eq!(v["datacontenttype"], ct);
        match ct {
            "application/json" => {
                assert_eq!(
                    v["data"],
                    serde_json::from_slice::<serde_json::Value>(body).unwrap()
                )
            }
            "text/plain" => assert_eq!(v["data"], std::str::from_utf8(body).unwrap()),
            _ => {
                use base64::Engine;
                let b64 = v["data_base64"].as_str().unwrap();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                assert_eq!(decoded, body);
            }
        }
    }
    // Transformed: the payload is the transform's, the attributes still travel.
    let m = messages
        .iter()
        .find(|m| on(m, ".tr") && header(m, "ce-id") == Some("o-json"))
        .expect("the transformed message");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap(),
        serde_json::json!({"got": 7})
    );
    assert_eq!(header(m, "ce-id"), Some("o-json"));

    // Core NATS: the subscriber present gets the same binary message.
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut core),
        )
        .await
        .expect("core NATS message")
        .unwrap();
        got.push(m);
    }
    for (id, ct, body) in events {
        let m = got
            .iter()
            .find(|m| m.headers.as_ref().unwrap().get("ce-id").map(|v| v.as_str()) == Some(id))
            .unwrap();
        let h = m.headers.as_ref().unwrap();
        assert_eq!(ce_headers(h), expected_attrs(id));
        assert_eq!(h.get("Content-Type").map(|v| v.as_str()), Some(ct));
        assert_eq!(&m.payload[..], body);
    }
}

/// Publishes `n` binary CloudEvents `{prefix}{i}` to `subject` (PubAcks awaited at the end).
async fn publish_events(
    stream: &TestStream,
    subject: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
) {
    let mut acks = Vec::new();
    for i in range {
        let id = format!("{prefix}{i}");
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in [
            ("ce-specversion", "1.0"),
            ("ce-id", id.as_str()),
            ("ce-source", "/load"),
            ("ce-type", "test.flow"),
            ("content-type", "application/json"),
        ] {
            h.insert(k, v);
        }
        acks.push(
            stream
                .js
                .publish_with_headers(
                    subject.to_string(),
                    h,
                    Bytes::from(format!("{{\"i\":{i}}}")),
                )
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }
}

/// The distinct `ce-id`s of the messages on `subject` in the stream, and how many there are.
async fn ids_on(stream: &TestStream, subject: &str) -> (BTreeSet<String>, usize) {
    let messages: Vec<_> = stream
        .messages()
        .await
        .into_iter()
        .filter(|m| m.subject.as_str() == subject)
        .collect();
    let ids = messages
        .iter()
        .filter_map(|m| header(m, "ce-id").map(String::from))
        .collect();
    (ids, messages.len())
}

/// NATS in -> bus -> NATS out on one server, the out subject in the same stream.
fn pipeline_config(url: &str, stream: &str, subject: &str, batch: usize) -> String {
    format!(
        r#"
buses: [{{name: b}}]
delivery: {{claim_idle: 4s}}
connectors:
  - {{name: in, kind: nats, bus: b, url: "{url}", stream: {stream}, consumer: gw, subject: "{subject}.in", ack_wait: 2s, batch: {batch}}}
rules:
  - name: out
    bus: b
    pattern: {{type: [test.flow]}}
    targets:
      - {{name: out, kind: nats, url: "{url}", subject: "{subject}.out", timeout: 2s, retry: {{initial: 100ms, max: 500ms}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_of_the_gateway_mid_flow_loses_nothing() {
    const N: usize = 2000;
    let redis = Redis::start();
    let s = suffix();
    let stream_name = format!("SLUICE_KILL_{s}");
    let subject = format!("sluicek.{s}");
    let stream = TestStream::create(SHARED, &stream_name, &[format!("{subject}.>")]).await;
    let mut gw = Gateway::start(&redis, &pipeline_config(SHARED, &stream_name, &subject, 20)).await;
    publish_events(&stream, &format!("{subject}.in"), "k", 0..N).await;

    // Kill while the flow is under way: some, not all, are out.
    let out = format!("{subject}.out");
    let start = Instant::now();
    loop {
        let (ids, _) = ids_on(&stream, &out).await;
        if !ids.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing came out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.kill9();
    let (before, _) = ids_on(&stream, &out).await;
    eprintln!("{} of {N} out at the kill", before.len());
    gw.restart().await;

    let start = Instant::now();
    loop {
        let (ids, total) = ids_on(&stream, &out).await;
        if ids.len() == N {
            // Nats-Msg-Id = event id: JetStream stored each event once.
            assert_eq!(total, N, "duplicates in the stream");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(45),
            "{} of {N} out after the restart",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let want: BTreeSet<String> = (0..N).map(|i| format!("k{i}")).collect();
    assert_eq!(ids_on(&stream, &out).await.0, want);
}

/// A nats-server of the test's own, on a free port with a store directory that outlives
/// restarts.
struct PrivateNats {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> PrivateNats {
        let mut n = PrivateNats {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        n.spawn();
        n
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("/usr/sbin/nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_and_the_target_recover_after_the_nats_server_restarts() {
    let redis = Redis::start();
    let mut server = PrivateNats::start();
    let url = server.url();
    let subject = "sluicer";
    let stream = TestStream::create(&url, "RESTART", &[format!("{subject}.>")]).await;
    // Plus a core NATS connector, whose subscription must come back too.
    let config = pipeline_config(&url, "RESTART", subject, 50).replace(
        "rules:",
        &format!(
            "  - {{name: core, kind: nats, bus: b, url: \"{url}\", subject: \"rcore.>\"}}\nrules:"
        ),
    );
    let gw = Gateway::start(&redis, &config).await;
    let out = format!("{subject}.out");

    publish_events(&stream, &format!("{subject}.in"), "r", 0..50).await;
    let start = Instant::now();
    while ids_on(&stream, &out).await.0.len() < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "first half not out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.spawn();

    // The test's own client reconnects by itself too; publish once JetStream is back.
    let start = Instant::now();
    loop {
        let mut h = async_nats::HeaderMap::new();
        for (k, v) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "r50"),
            ("ce-source", "/load"),
            ("ce-type", "test.flow"),
        ] {
            h.insert(k, v);
        }
        let sent = match stream
            .js
            .publish_with_headers(format!("{subject}.in"), h, Bytes::from_static(b"x"))
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if sent {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "server not back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    publish_events(&stream, &format!("{subject}.in"), "r", 51..100).await;

    let start = Instant::now();
    loop {
        let (ids, _) = ids_on(&stream, &out).await;
        if ids.len() == 100 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{} of 100 out after the server restart\n{}",
            ids.len(),
            gw.logs()
                .lines()
                .filter(|l| l.contains("nats") || l.contains("NATS"))
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Core NATS: probes until the resubscribed connector appends one.
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let start = Instant::now();
    while connector_count(&gw, "core", "appended").await < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the core subscription did not come back"
        );
        client
            .publish("rcore.x", Bytes::from_static(b"{\"probe\":true}"))
            .await
            .unwrap();
        client.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of `sluice_connector_messages` for `connector` and `outcome` on `gw`.
async fn connector_count(gw: &Gateway, connector: &str, outcome: &str) -> u64 {
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("sluice_connector_messages")
                && l.contains(&format!("connector=\"{connector}\""))
                && l.contains(&format!("\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_sharing_a_consumer_compete_for_messages() {
    const N: usize = 1000;
    let redis = Redis::start();
    let s = suffix();
    let stream_name = format!("SLUICE_COMP_{s}");
    let subject = format!("sluicecomp.{s}");
    let stream = TestStream::create(SHARED, &stream_name, &[format!("{subject}.>")]).await;
    // dedupe off: an event appended by both replicas would be in the bus twice.
    let config = format!(
        r#"
buses: [{{name: b}}]
connectors:
  - {{name: in, kind: nats, bus: b, url: "{SHARED}", stream: {stream_name}, consumer: shared, batch: 10, dedupe: off}}
"#
    );
    let a = Gateway::start(&redis, &config).await;
    let b = Gateway::start(&redis, &config).await;
    publish_events(&stream, &format!("{subject}.in"), "c", 0..N).await;
    assert!(
        wait_until(Duration::from_secs(30), || redis.xlen("sluice:{b}:events")
            >= N)
        .await,
        "{} of {N} in the bus",
        redis.xlen("sluice:{b}:events")
    );
    let (from_a, from_b) = (
        connector_count(&a, "in", "appended").await,
        connector_count(&b, "in", "appended").await,
    );
    assert_eq!(from_a + from_b, N as u64, "each message appended once");
    assert!(
        from_a > 0 && from_b > 0,
        "both replicas consumed: {from_a} + {from_b}"
    );
    assert_eq!(redis.xlen("sluice:{b}:events"), N);
}

#[test]
fn bad_nats_fields_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        r#"
buses: [{name: b}]
connectors:
  - {name: a, kind: nats, bus: b, url: "http://x:4222", stream: S}
  - {name: c, kind: nats, bus: b, url: "nats://x:4222", subject: "a b", ack_wait: 5s, batch: 0}
  - {name: d, kind: nats, bus: b, url: "nats://x:4222", stream: S, consumer: c, queue_group: g, queue_url: x}
rules:
  - name: r
    bus: b
    targets:
      - {name: t, kind: nats, url: "nats://x:4222", subject: "a.*"}
      - {name: u, kind: nats, url: "nats://x:4222"}
"#,
    )
    .unwrap();
    let (code, _, err) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "connectors[0].url",
        "connectors[0].consumer",
        "connectors[1].subject",
        "connectors[1].ack_wait",
        "connectors[1].batch",
        "connectors[2].queue_group",
        "connectors[2].queue_url",
    ] {
        assert!(err.contains(expected), "{expected} missing in:\n{err}");
    }
    // The targets: checked once the connectors and the mode parse.
    std::fs::write(
        &path,
        r#"
buses: [{name: b}]
rules:
  - name: r
    bus: b
    targets:
      - {name: t, kind: nats, url: "nats://x:4222", subject: "a.*"}
      - {name: u, kind: nats, url: "nats://x:4222"}
      - {name: v, kind: nats, url: "nats://x:4222", subject: "a.{Type}"}
      - {name: w, kind: nats, url: "nats://x:4222", subject: "a.{type}", jetstream: false, mode: structured}
"#,
    )
    .unwrap();
    let (code, _, err) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "rules[0].targets[0].subject",
        "rules[0].targets[1].subject",
        "rules[0].targets[2].subject",
    ] {
        assert!(err.contains(expected), "{expected} missing in:\n{err}");
    }
    assert!(!err.contains("targets[3]"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_published_by_this_gateway_is_not_read_back_in_a_loop() {
    let redis = Redis::start();
    let s = suffix();
    let stream_name = format!("SLUICE_LOOP_{s}");
    let subject = format!("sluiceloop.{s}");
    let stream = TestStream::create(SHARED, &stream_name, &[format!("{subject}.>")]).await;
    // The connector reads the whole stream, the target writes into it.
    let config = format!(
        r#"
buses: [{{name: b}}]
connectors:
  - {{name: in, kind: nats, bus: b, url: "{SHARED}", stream: {stream_name}, consumer: gw}}
rules:
  - name: out
    bus: b
    targets:
      - {{name: out, kind: nats, url: "{SHARED}", subject: "{subject}.out"}}
"#
    );
    let gw = Gateway::start(&redis, &config).await;
    post_binary(
        &gw,
        "b",
        &[
            ("specversion", "1.0"),
            ("id", "loop-1"),
            ("source", "/x"),
            ("type", "t"),
        ],
        "text/plain",
        b"once",
    )
    .await;
    let start = Instant::now();
    while connector_count(&gw, "in", "returned").await < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the published event was not read back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        redis.xlen("sluice:{b}:events"),
        1,
        "appended once, from HTTP only"
    );
    assert_eq!(ids_on(&stream, &format!("{subject}.out")).await.1, 1);
    assert_eq!(connector_count(&gw, "in", "appended").await, 0);
}
