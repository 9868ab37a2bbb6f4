//! The RabbitMQ connector and target against the RabbitMQ on 127.0.0.1:5672 (guest),
//! driven with the real client crate (lapin): events in binary and structured form and
//! plain messages reach the bus; events ingested over HTTP reach the broker in both
//! modes; a kill -9 of the gateway mid-flow loses nothing; a cut connection (a TCP
//! proxy inside the test, between gateway and broker) heals by itself.
//!
//! Every test creates queues with a random suffix and deletes them when it ends.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{free_port, wait_until, Gateway, Receiver, Redis};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A unique queue name for this test run.
fn queue_name(what: &str) -> String {
    format!(
        "sluice-test-{what}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

async fn channel() -> (Connection, Channel) {
    let conn = Connection::connect(BROKER, ConnectionProperties::default())
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (conn, ch)
}

/// The queues a test declared; deleted when it ends, even when it fails.
struct Queues(Vec<String>);

impl Queues {
    async fn declare(&mut self, ch: &Channel, name: &str, args: FieldTable) {
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
        self.0.push(name.to_string());
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (conn, ch) = channel().await;
                for q in names {
                    let _ = ch
                        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                let _ = conn.close(200, "bye".into()).await;
            });
        })
        .join()
        .unwrap();
    }
}

fn headers(pairs: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(*k), AMQPValue::LongString((*v).into()));
    }
    t
}

/// Publishes to the default exchange (the queue by name) and waits for the confirm.
async fn publish(ch: &Channel, queue: &str, props: BasicProperties, body: &[u8]) {
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
}

/// A binary-mode CloudEvent message with id `id`.
fn binary(id: &str, content_type: &str) -> BasicProperties {
    BasicProperties::default()
        .with_content_type(content_type.into())
        .with_headers(headers(&[
            ("cloudEvents:specversion", "1.0"),
            ("cloudEvents:id", id),
            ("cloudEvents:source", "/test/rabbit"),
            ("cloudEvents:type", "test.rabbit"),
        ]))
}

/// One message taken off `queue` (acknowledged), if there is one.
async fn get(ch: &Channel, queue: &str) -> Option<(BasicProperties, Vec<u8>)> {
    let m = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .unwrap()?;
    m.delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    Some((m.delivery.properties.clone(), m.delivery.data.clone()))
}

/// Takes messages off `queue` until `n` arrived or `limit` passed.
async fn take(
    ch: &Channel,
    queue: &str,
    n: usize,
    limit: Duration,
) -> Vec<(BasicProperties, Vec<u8>)> {
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    while got.len() < n && start.elapsed() < limit {
        match get(ch, queue).await {
            Some(m) => got.push(m),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    got
}

/// The text of header `name` of a message.
fn header(props: &BasicProperties, name: &str) -> Option<String> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn gateway_config(body: &str) -> String {
    format!("buses: [{{name: b}}]\ngateway_id: gw-test\n{body}")
}

/// The `ce-source` header, percent-decoded as the HTTP binding says.
fn ce_source(r: &common::Received) -> Option<String> {
    let raw = r.header("ce-source")?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .unwrap()
            .into_owned(),
    )
}

// ---------------------------------------------------------------------------------
// (1) broker -> bus
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn messages_in_binary_and_structured_form_and_plain_ones_arrive_in_the_bus() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let (conn, ch) = channel().await;
    let mut queues = Queues(Vec::new());
    let q = queue_name("in");
    let dead = queue_name("dead");
    queues.declare(&ch, &dead, FieldTable::default()).await;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    queues.declare(&ch, &q, args).await;

    let _gw = Gateway::start(
        &redis,
        &gateway_config(&format!(
            r#"connectors:
  - {{name: rabbit, kind: rabbitmq, bus: b, url: "{BROKER}", queue: {q}, prefetch: 10}}
rules:
  - name: all
    bus: b
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
            rx.url("/in")
        )),
    )
    .await;

    let bytes: Vec<u8> = vec![0, 1, 2, 254, 255, 128];
    // Binary mode: JSON, text, bytes; the JMS-compatible prefix with an extension.
    publish(
        &ch,
        &q,
        binary("bin-json", "application/json"),
        br#"{"n": 1.50, "a":[1,2]}"#,
    )
    .await;
    publish(
        &ch,
        &q,
        binary("bin-text", "text/plain; charset=utf-8"),
        "héllo wörld".as_bytes(),
    )
    .await;
    publish(
        &ch,
        &q,
        binary("bin-bytes", "application/octet-stream"),
        &bytes,
    )
    .await;
    let jms = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_headers(headers(&[
            ("cloudEvents_specversion", "1.0"),
            ("cloudEvents_id", "bin-jms"),
            ("cloudEvents_source", "/test/jms"),
            ("cloudEvents_type", "test.jms"),
            ("cloudEvents_subject", "sub-1"),
            ("cloudEvents_tenant", "acme"),
        ]));
    publish(&ch, &q, jms, b"[true]").await;
    // Structured mode: JSON data and base64 data.
    let structured =
        BasicProperties::default().with_content_type("application/cloudevents+json".into());
    publish(
        &ch,
        &q,
        structured.clone(),
        br#"{"specversion":"1.0","id":"st-json","source":"/test/st","type":"test.st","datacontenttype":"application/json","data":{"k": "v", "x": 10}}"#,
    )
    .await;
    publish(
        &ch,
        &q,
        structured,
        br#"{"specversion":"1.0","id":"st-b64","source":"/test/st","type":"test.st","datacontenttype":"application/octet-stream","data_base64":"AAEC/v+A"}"#,
    )
    .await;
    // Plain messages: with a message-id and no content type; without message-id.
    publish(
        &ch,
        &q,
        BasicProperties::default().with_message_id("plain-1".into()),
        br#"{"plain": true}"#,
    )
    .await;
    publish(
        &ch,
        &q,
        BasicProperties::default().with_content_type("text/plain".into()),
        b"just text",
    )
    .await;
    // Claims to be an event but has no id: rejected, so dead-lettered.
    let broken = BasicProperties::default().with_headers(headers(&[
        ("cloudEvents:specversion", "1.0"),
        ("cloudEvents:source", "/x"),
        ("cloudEvents:type", "x"),
    ]));
    publish(&ch, &q, broken, b"nope").await;

    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 8).await,
        "got {} of 8 events",
        rx.count()
    );
    let dead_letters = take(&ch, &dead, 1, Duration::from_secs(10)).await;
    assert_eq!(
        dead_letters.len(),
        1,
        "the invalid message is dead-lettered"
    );
    assert_eq!(dead_letters[0].1, b"nope");

    let by_id: HashMap<String, common::Received> = rx
        .received()
        .into_iter()
        .map(|r| (r.header("ce-id").unwrap().to_string(), r))
        .collect();
    assert_eq!(by_id.len(), 8, "each event once: {:?}", by_id.keys());
    let check = |id: &str, source: &str, ty: &str, ct: &str, body: &[u8]| {
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} did not arrive"));
        assert_eq!(r.header("ce-specversion"), Some("1.0"), "{id}");
        assert_eq!(ce_source(r).as_deref(), Some(source), "{id}");
        assert_eq!(r.header("ce-type"), Some(ty), "{id}");
        assert_eq!(r.header("content-type"), Some(ct), "{id}");
        assert_eq!(r.body, body, "{id}");
    };
    check(
        "bin-json",
        "/test/rabbit",
        "test.rabbit",
        "application/json",
        br#"{"n": 1.50, "a":[1,2]}"#,
    );
    check(
        "bin-text",
        "/test/rabbit",
        "test.rabbit",
        "text/plain; charset=utf-8",
        "héllo wörld".as_bytes(),
    );
    check(
        "bin-bytes",
        "/test/rabbit",
        "test.rabbit",
        "application/octet-stream",
        &bytes,
    );
    check(
        "bin-jms",
        "/test/jms",
        "test.jms",
        "application/json",
        b"[true]",
    );
    assert_eq!(by_id["bin-jms"].header("ce-subject"), Some("sub-1"));
    assert_eq!(by_id["bin-jms"].header("ce-tenant"), Some("acme"));
    check(
        "st-json",
        "/test/st",
        "test.st",
        "application/json",
        br#"{"k": "v", "x": 10}"#,
    );
    check(
        "st-b64",
        "/test/st",
        "test.st",
        "application/octet-stream",
        &bytes,
    );
    let plain_source = format!("amqp://127.0.0.1:5672/%2F/{q}");
    check(
        "plain-1",
        &plain_source,
        "sluice.rabbitmq.message",
        "application/json",
        br#"{"plain": true}"#,
    );
    let (text_id, text) = by_id
        .iter()
        .find(|(_, r)| r.body == b"just text")
        .expect("the plain text message arrived");
    assert!(
        uuid::Uuid::parse_str(text_id).is_ok(),
        "a new UUID: {text_id}"
    );
    assert_eq!(ce_source(text).as_deref(), Some(plain_source.as_str()));
    assert_eq!(text.header("ce-type"), Some("sluice.rabbitmq.message"));
    assert_eq!(text.header("content-type"), Some("text/plain"));

    // Everything was acknowledged: the queue is empty.
    let left = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(left.message_count(), 0);
    let _ = conn.close(200, "bye".into()).await;
}

// ---------------------------------------------------------------------------------
// (2) bus -> broker
// ---------------------------------------------------------------------------------

/// Posts a binary-mode event over HTTP.
async fn post_binary(gw: &Gateway, id: &str, content_type: &str, body: &[u8]) {
    let status = reqwest::Client::new()
        .post(gw.url("/buses/b/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/test/http")
        .header("ce-type", "test.http")
        .header("ce-subject", "s-1")
        .header("ce-tenant", "acme")
        .header("content-type", content_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
}

fn without_trace(mut attrs: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    for k in ["sluicepath", "sluiceorigin", "sluicehops"] {
        attrs.remove(k);
    }
    attrs
}

#[tokio::test]
async fn events_from_http_reach_the_broker_in_binary_and_structured_mode() {
    let redis = Redis::start();
    let (conn, ch) = channel().await;
    let mut queues = Queues(Vec::new());
    let qb = queue_name("bin");
    let qs = queue_name("st");
    let qt = queue_name("tr");
    for q in [&qb, &qs, &qt] {
        queues.declare(&ch, q, FieldTable::default()).await;
    }
    let gw = Gateway::start(
        &redis,
        &gateway_config(&format!(
            r#"rules:
  - name: all
    bus: b
    targets:
      - {{name: bin, kind: rabbitmq, url: "{BROKER}", routing_key: {qb}}}
      - {{name: st, kind: rabbitmq, url: "{BROKER}", routing_key: {qs}, mode: structured}}
      - {{name: tr, kind: rabbitmq, url: "{BROKER}", routing_key: {qt}, transform: {{form: CONSTANT, value: '{{"ping": true}}'}}}}
"#
        )),
    )
    .await;

    let bytes: Vec<u8> = vec![0, 1, 2, 254, 255, 128];
    let sent: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "h-json",
            "application/json",
            br#"{"n": 1.50, "a":[1,2]}"#.to_vec(),
        ),
        (
            "h-text",
            "text/plain; charset=utf-8",
            "héllo".as_bytes().to_vec(),
        ),
        ("h-bytes", "application/octet-stream", bytes.clone()),
    ];
    for (id, ct, body) in &sent {
        post_binary(&gw, id, ct, body).await;
    }

    let limit = Duration::from_secs(20);
    let bin = take(&ch, &qb, 3, limit).await;
    let st = take(&ch, &qs, 3, limit).await;
    let tr = take(&ch, &qt, 3, limit).await;
    assert_eq!((bin.len(), st.len(), tr.len()), (3, 3, 3));

    for (id, ct, body) in &sent {
        // Binary: cloudEvents:* headers, content-type, the data bytes as the body.
        let (props, got) = bin
            .iter()
            .find(|(p, _)| header(p, "cloudEvents:id").as_deref() == Some(*id))
            .unwrap_or_else(|| panic!("{id} not in the binary queue"));
        assert_eq!(got, body, "{id}");
        assert_eq!(props.content_type().as_ref().map(|c| c.as_str()), Some(*ct));
        assert_eq!(props.message_id().as_ref().map(|c| c.as_str()), Some(*id));
        assert_eq!(props.delivery_mode(), &Some(2), "persistent");
        for (name, value) in [
            ("specversion", "1.0"),
            ("source", "/test/http"),
            ("type", "test.http"),
            ("subject", "s-1"),
            ("tenant", "acme"),
        ] {
            assert_eq!(
                header(props, &format!("cloudEvents:{name}")).as_deref(),
                Some(value),
                "{id} {name}"
            );
        }
        assert_eq!(
            header(props, "cloudEvents:sluicepath").as_deref(),
            Some("gw-test")
        );

        // Structured: the JSON format with the same attributes and data.
        let (props, got) = st
            .iter()
            .find(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not in the structured queue"));
        assert!(props
            .content_type()
            .as_ref()
            .unwrap()
            .as_str()
            .starts_with("application/cloudevents+json"));
        let mut json: serde_json::Map<String, Value> = serde_json::from_slice(got).unwrap();
        let data = json.remove("data");
        let data_base64 = json.remove("data_base64");
        let attrs = without_trace(json);
        let expected: serde_json::Map<String, Value> = serde_json::from_value(serde_json::json!({
            "specversion": "1.0", "id": id, "source": "/test/http", "type": "test.http",
            "subject": "s-1", "tenant": "acme", "datacontenttype": ct,
        }))
        .unwrap();
        assert_eq!(attrs, expected, "{id}");
        match *id {
            "h-json" => {
                // The data bytes embedded unchanged.
                let text = std::str::from_utf8(got).unwrap();
                assert!(text.contains(r#""data":{"n": 1.50, "a":[1,2]}"#), "{text}");
                assert!(data.is_some());
            }
            "h-text" => assert_eq!(data, Some(Value::from("héllo"))),
            _ => {
                use base64::Engine;
                let b64 = data_base64.expect("data_base64");
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_str().unwrap())
                    .unwrap();
                assert_eq!(decoded, bytes);
            }
        }

        // Transformed: the transform's output, the attributes still as headers.
        let (props, got) = tr
            .iter()
            .find(|(p, _)| header(p, "cloudEvents:id").as_deref() == Some(*id))
            .unwrap_or_else(|| panic!("{id} not in the transformed queue"));
        assert_eq!(got, br#"{"ping": true}"#);
        assert_eq!(
            header(props, "cloudEvents:type").as_deref(),
            Some("test.http")
        );
    }
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn an_unroutable_message_is_a_failed_delivery_not_a_silent_drop() {
    let redis = Redis::start();
    let missing = queue_name("missing");
    let gw = Gateway::start(
        &redis,
        &gateway_config(&format!(
            r#"rules:
  - name: all
    bus: b
    targets:
      - {{name: nowhere, kind: rabbitmq, url: "{BROKER}", routing_key: {missing}, retry: {{max_attempts: 2, initial: 100ms}}}}
"#
        )),
    )
    .await;
    post_binary(&gw, "lost-1", "application/json", b"{}").await;
    let dlq_key = sluice::bus::dlq_key("b", "all", "nowhere");
    assert!(
        wait_until(Duration::from_secs(20), || redis.xlen(&dlq_key) == 1).await,
        "the event is dead-lettered:\n{}",
        gw.logs()
    );
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(&dlq_key)
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    let text = format!("{:?}", entries[0].1);
    assert!(text.contains("unroutable"), "{text}");
}

// ---------------------------------------------------------------------------------
// (3) kill -9 mid-flow
// ---------------------------------------------------------------------------------

/// The ids of what arrived in `queue`, drained in the background until `stop`.
fn drain_ids(
    queue: String,
    stop: CancellationToken,
) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let out = ids.clone();
    let task = tokio::spawn(async move {
        let (conn, ch) = channel().await;
        while !stop.is_cancelled() {
            match get(&ch, &queue).await {
                Some((props, _)) => out
                    .lock()
                    .unwrap()
                    .push(header(&props, "cloudEvents:id").unwrap_or_default()),
                None => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        let _ = conn.close(200, "bye".into()).await;
    });
    (ids, task)
}

async fn publish_many(ch: &Channel, queue: &str, prefix: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            format!(r#"{{"i":{i}}}"#).as_bytes(),
            binary(&format!("{prefix}{i}"), "application/json"),
        )
        .await
        .unwrap();
    }
    assert!(ch.wait_for_confirms().await.unwrap().is_empty());
}

fn distinct(ids: &Mutex<Vec<String>>) -> usize {
    ids.lock().unwrap().iter().collect::<HashSet<_>>().len()
}

#[tokio::test]
async fn a_gateway_killed_mid_flow_loses_nothing() {
    let redis = Redis::start();
    let (conn, ch) = channel().await;
    let mut queues = Queues(Vec::new());
    let qin = queue_name("kin");
    let qout = queue_name("kout");
    queues.declare(&ch, &qin, FieldTable::default()).await;
    queues.declare(&ch, &qout, FieldTable::default()).await;
    const N: usize = 3000;
    publish_many(&ch, &qin, "k-", N).await;

    let stop = CancellationToken::new();
    let (ids, drain) = drain_ids(qout.clone(), stop.clone());
    let mut gw = Gateway::start(
        &redis,
        &gateway_config(&format!(
            r#"delivery: {{claim_idle: 4s}}
connectors:
  - {{name: rabbit, kind: rabbitmq, bus: b, url: "{BROKER}", queue: {qin}, prefetch: 50}}
rules:
  - name: all
    bus: b
    targets:
      - {{name: out, kind: rabbitmq, url: "{BROKER}", routing_key: {qout}, concurrency: 8, timeout: 2s}}
"#
        )),
    )
    .await;
    // Killed while events are on their way in and out.
    assert!(wait_until(Duration::from_secs(30), || ids.lock().unwrap().len() >= 100).await);
    gw.kill9();
    let before = distinct(&ids);
    gw.restart().await;
    let all = wait_until(Duration::from_secs(45), || distinct(&ids) == N).await;
    stop.cancel();
    drain.await.unwrap();
    let got = ids.lock().unwrap().clone();
    let unique: HashSet<&String> = got.iter().collect();
    assert!(
        all,
        "{} of {N} arrived ({before} before the kill)",
        unique.len()
    );
    assert!(
        before < N,
        "the kill came mid-flow ({before} of {N} were through)"
    );
    let _ = conn.close(200, "bye".into()).await;
}

// ---------------------------------------------------------------------------------
// (4) the connection to the broker goes away and comes back
// ---------------------------------------------------------------------------------

/// A TCP proxy to the broker that can be cut (open connections reset, new ones closed
/// at once) and restored.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    cut: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Proxy {
    async fn start(upstream: &'static str) -> Proxy {
        let port = free_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (d, c, s) = (down.clone(), cut.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (mut client, _) = tokio::select! {
                    a = listener.accept() => a.unwrap(),
                    _ = s.cancelled() => return,
                };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let token = c.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            down,
            cut,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        let mut token = self.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.cut.lock().unwrap().cancel();
    }
}

#[tokio::test]
async fn connector_and_target_recover_after_the_connection_is_cut() {
    let redis = Redis::start();
    let (conn, ch) = channel().await;
    let mut queues = Queues(Vec::new());
    let qin = queue_name("cin");
    let qout = queue_name("cout");
    queues.declare(&ch, &qin, FieldTable::default()).await;
    queues.declare(&ch, &qout, FieldTable::default()).await;
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let url = proxy.url();
    let gw = Gateway::start(
        &redis,
        &gateway_config(&format!(
            r#"connectors:
  - {{name: rabbit, kind: rabbitmq, bus: b, url: "{url}", queue: {qin}}}
rules:
  - name: all
    bus: b
    targets:
      - {{name: out, kind: rabbitmq, url: "{url}", routing_key: {qout}, timeout: 2s}}
"#
        )),
    )
    .await;
    let stop = CancellationToken::new();
    let (ids, drain) = drain_ids(qout.clone(), stop.clone());

    publish_many(&ch, &qin, "before-", 20).await;
    assert!(
        wait_until(Duration::from_secs(20), || distinct(&ids) == 20).await,
        "{}",
        gw.logs()
    );

    proxy.cut();
    // While the gateway cannot reach the broker, more messages wait in the queue.
    publish_many(&ch, &qin, "during-", 20).await;
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .logs()
            .contains("RabbitMQ consumer lost"))
        .await,
        "the connector noticed the cut"
    );
    proxy.restore();

    assert!(
        wait_until(Duration::from_secs(30), || distinct(&ids) == 40).await,
        "{} of 40 arrived after the connection came back:\n{}",
        distinct(&ids),
        gw.logs()
    );
    stop.cancel();
    drain.await.unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

// ---------------------------------------------------------------------------------
// (5) competing consumers
// ---------------------------------------------------------------------------------

/// Messages connector `name` of `gw` appended, from its `/metrics`.
async fn appended(gw: &Gateway, name: &str) -> u64 {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("sluice_connector_messages")
                && l.contains(&format!("connector=\"{name}\""))
                && l.contains("outcome=\"appended\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn two_replicas_share_one_queue_and_each_event_arrives_once() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let (conn, ch) = channel().await;
    let mut queues = Queues(Vec::new());
    let q = queue_name("shared");
    queues.declare(&ch, &q, FieldTable::default()).await;
    let config = gateway_config(&format!(
        r#"connectors:
  - {{name: rabbit, kind: rabbitmq, bus: b, url: "{BROKER}", queue: {q}, prefetch: 5}}
rules:
  - name: all
    bus: b
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
        rx.url("/in")
    ));
    let a = Gateway::start(&redis, &config).await;
    let b = Gateway::start(&redis, &config).await;
    const N: usize = 1000;
    publish_many(&ch, &q, "c-", N).await;
    assert!(
        wait_until(Duration::from_secs(30), || rx.count() >= N).await,
        "{} of {N}",
        rx.count()
    );
    let ids: HashSet<String> = rx.ce_ids().into_iter().collect();
    assert_eq!(ids.len(), N);
    assert_eq!(rx.count(), N, "each event once");
    let (from_a, from_b) = (appended(&a, "rabbit").await, appended(&b, "rabbit").await);
    assert_eq!(from_a + from_b, N as u64);
    assert!(
        from_a > 0 && from_b > 0,
        "both replicas consumed: {from_a} + {from_b}"
    );
    let _ = conn.close(200, "bye".into()).await;
}
