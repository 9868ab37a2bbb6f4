//! The MQTT connector and target against Mosquitto, driven with the real client crate
//! (`rumqttc`, MQTT 5 and 3.1.1): the CloudEvents MQTT binding both ways, plain
//! messages, kill -9 of the gateway mid-flow, a broker restart, shared subscriptions.
//!
//! The shared broker (127.0.0.1:1883, or `MQTT_PORT`) is used with topics and client
//! ids unique to each test; the restart test starts a private `mosquitto` on a free
//! port (with persistence, so sessions survive its restart).

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::{free_port, wait_until, Gateway, Redis};
use rumqttc::v5::mqttbytes::v5::{Publish, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, Incoming, MqttOptions};
use serde_json::{json, Map, Value};
use sluice::bus::RawEntry;
use sluice::event::Event;

const TRACE: [&str; 3] = ["sluicepath", "sluiceorigin", "sluicehops"];

fn shared_port() -> u16 {
    std::env::var("MQTT_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1883)
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// The events of a bus stream, decoded.
fn bus_events(redis: &Redis, bus: &str) -> Vec<Event> {
    let entries: Vec<(String, Vec<redis::Value>)> = redis::cmd("XRANGE")
        .arg(sluice::bus::bus_key(bus))
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| RawEntry::from_fields(fields).unwrap().to_event().unwrap())
        .collect()
}

/// Attributes without the gateway's trace attributes.
fn untraced(attrs: &Map<String, Value>) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| !TRACE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An MQTT 5 test client on `port`: every PUBLISH it receives is recorded, PUBACKs of
/// its own publishes are counted; the event loop reconnects on its own.
struct Mqtt {
    client: AsyncClient,
    received: Arc<Mutex<Vec<Publish>>>,
    acked: Arc<Mutex<usize>>,
    subacks: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Mqtt {
    fn connect(port: u16, id: &str, persistent: bool) -> Mqtt {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(Some(1 << 20));
        if persistent {
            o.set_clean_start(false)
                .set_session_expiry_interval(Some(3600));
        }
        let (client, mut event_loop) = AsyncClient::new(o, 1000);
        let received = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(Mutex::new(0));
        let subacks = Arc::new(Mutex::new(0));
        let (r, a, s) = (received.clone(), acked.clone(), subacks.clone());
        let task = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(MqttEvent::Incoming(Incoming::Publish(p))) => r.lock().unwrap().push(p),
                    Ok(MqttEvent::Incoming(Incoming::PubAck(_))) => *a.lock().unwrap() += 1,
                    Ok(MqttEvent::Incoming(Incoming::SubAck(_))) => *s.lock().unwrap() += 1,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Mqtt {
            client,
            received,
            acked,
            subacks,
            task,
        }
    }

    async fn subscribe(&self, filter: &str) {
        let before = *self.subacks.lock().unwrap();
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || *self.subacks.lock().unwrap()
                > before)
            .await,
            "no SUBACK"
        );
    }

    async fn publish(&self, topic: &str, body: &[u8], ct: Option<&str>, props: &[(&str, &str)]) {
        let properties = PublishProperties {
            content_type: ct.map(String::from),
            user_properties: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, body.to_vec(), properties)
            .await
            .unwrap();
    }

    /// Waits until `n` of this client's publishes were PUBACKed.
    async fn acked(&self, n: usize) {
        assert!(
            wait_until(Duration::from_secs(20), || *self.acked.lock().unwrap() >= n).await,
            "only {} of {n} publishes acknowledged",
            self.acked.lock().unwrap()
        );
    }

    fn received(&self) -> Vec<Publish> {
        self.received.lock().unwrap().clone()
    }

    fn on(&self, topic: &str) -> Vec<Publish> {
        self.received()
            .into_iter()
            .filter(|p| p.topic == topic.as_bytes())
            .collect()
    }
}

impl Drop for Mqtt {
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
        self.task.abort();
    }
}

/// An MQTT 3.1.1 publisher (structured and plain messages only).
async fn publish_v311(port: u16, topic: &str, bodies: &[&[u8]]) {
    let id = format!("t311-{}", suffix());
    let (client, mut event_loop) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new(id, "127.0.0.1", port), 100);
    for body in bodies {
        client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, body.to_vec())
            .await
            .unwrap();
    }
    let mut acked = 0;
    let done = tokio::time::timeout(Duration::from_secs(10), async {
        while acked < bodies.len() {
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
                event_loop.poll().await.unwrap()
            {
                acked += 1;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "3.1.1 publishes not acknowledged");
    let _ = client.disconnect().await;
}

fn properties(p: &Publish) -> (Option<String>, Map<String, Value>) {
    let props = p.properties.clone().unwrap_or_default();
    let attrs = props
        .user_properties
        .iter()
        .filter(|(k, _)| !TRACE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    (props.content_type, attrs)
}

/// Waits until the gateway's log says its connectors subscribed `n` times in all.
async fn subscribed(gw: &Gateway, n: usize) {
    assert!(
        wait_until(Duration::from_secs(15), || gw
            .logs()
            .matches("MQTT subscription in force")
            .count()
            >= n)
        .await,
        "connectors did not subscribe:\n{}",
        gw.logs()
    );
}

/// The connector's message counter for `outcome`, from `/metrics`.
async fn connector_metric(gw: &Gateway, connector: &str, outcome: &str) -> u64 {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("sluice_connector_messages"))
        .filter(|l| {
            l.contains(&format!("connector=\"{connector}\""))
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The attributes of the binary-mode events the source test publishes.
fn ce(id: &str) -> Vec<(&str, &str)> {
    vec![
        ("specversion", "1.0"),
        ("id", id),
        ("source", "/mqtt/test"),
        ("type", "test.binary"),
        ("subject", "s1"),
        ("myext", "v"),
    ]
}

fn attrs(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

#[tokio::test]
async fn messages_in_both_modes_and_plain_ones_become_events() {
    let redis = Redis::start();
    let port = shared_port();
    let s = suffix();
    let gw = Gateway::start(
        &redis,
        &format!(
            r#"
gateway_id: gw-{s}
buses: [{{name: in}}]
connectors:
  - name: m5
    kind: mqtt
    bus: in
    url: mqtt://127.0.0.1:{port}
    topic: sluice-test/{s}/v5/#
  - name: m3
    kind: mqtt
    bus: in
    url: mqtt://127.0.0.1:{port}
    protocol: 3.1.1
    topic: sluice-test/{s}/v3/#
"#
        ),
    )
    .await;
    subscribed(&gw, 2).await;
    let t5 = format!("sluice-test/{s}/v5/x");
    let t3 = format!("sluice-test/{s}/v3/y");
    let publisher = Mqtt::connect(port, &format!("pub-{s}"), false);
    let mut with_other = ce("b-json");
    with_other.push(("X-Not-An-Attribute", "ignored"));
    publisher
        .publish(
            &t5,
            br#"{"a": [1, 2.50]}"#,
            Some("application/json"),
            &with_other,
        )
        .await;
    publisher
        .publish(&t5, b"hello text", Some("text/plain"), &ce("b-text"))
        .await;
    let bin = [0u8, 1, 2, 254, 255];
    publisher
        .publish(&t5, &bin, Some("application/octet-stream"), &ce("b-bin"))
        .await;
    let s_json = r#"{"specversion":"1.0","id":"s-json","source":"/mqtt/test","type":"test.structured","datacontenttype":"application/json","data":{"k": [true, null]}}"#;
    publisher
        .publish(
            &t5,
            s_json.as_bytes(),
            Some("application/cloudevents+json; charset=utf-8"),
            &[],
        )
        .await;
    let s_b64 = format!(
        r#"{{"specversion":"1.0","id":"s-b64","source":"/mqtt/test","type":"test.structured","datacontenttype":"application/octet-stream","data_base64":"{}"}}"#,
        base64::engine::general_purpose::STANDARD.encode(bin)
    );
    publisher
        .publish(
            &t5,
            s_b64.as_bytes(),
            Some("application/cloudevents+json"),
            &[],
        )
        .await;
    // Claims to be an event and is not one: counted invalid, acknowledged, dropped.
    publisher
        .publish(
            &t5,
            br#"{"specversion":"1.0"}"#,
            Some("application/cloudevents+json"),
            &[],
        )
        .await;
    publisher.publish(&t5, br#"{"plain": 1}"#, None, &[]).await;
    publisher.publish(&t5, &bin, None, &[]).await;
    publisher.acked(8).await;
    let s_v3 = r#"{"specversion":"1.0","id":"s-v3","source":"/mqtt/v3","type":"test.v3","datacontenttype":"text/plain","data":"text data"}"#;
    publish_v311(port, &t3, &[s_v3.as_bytes(), b"plain over 3.1.1"]).await;

    assert!(
        wait_until(Duration::from_secs(20), || bus_events(&redis, "in").len()
            >= 9)
        .await,
        "events missing: {:?}",
        bus_events(&redis, "in")
    );
    let events = bus_events(&redis, "in");
    let by_id: HashMap<String, Event> = events
        .iter()
        .map(|e| (e.id().to_string(), e.clone()))
        .collect();

    // Binary mode: every attribute from the user properties, the content type as
    // datacontenttype, the payload as the data bytes.
    for (id, ct, body) in [
        ("b-json", "application/json", &br#"{"a": [1, 2.50]}"#[..]),
        ("b-text", "text/plain", &b"hello text"[..]),
        ("b-bin", "application/octet-stream", &bin[..]),
    ] {
        let e = &by_id[id];
        let mut expected = attrs(&ce(id));
        expected.insert("datacontenttype".into(), ct.into());
        assert_eq!(untraced(&e.attrs), expected, "{id}");
        assert_eq!(&e.data.as_ref().unwrap().bytes[..], body, "{id}");
    }
    // Structured mode.
    let e = &by_id["s-json"];
    let sent: Map<String, Value> = serde_json::from_str(s_json).unwrap();
    let mut expected = sent.clone();
    expected.remove("data");
    assert_eq!(untraced(&e.attrs), expected);
    assert_eq!(
        &e.data.as_ref().unwrap().bytes[..],
        br#"{"k": [true, null]}"#
    );
    let e = &by_id["s-b64"];
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], &bin[..]);
    assert_eq!(
        e.attr_str("datacontenttype"),
        Some("application/octet-stream")
    );
    let e = &by_id["s-v3"];
    assert_eq!(e.attr_str("source"), Some("/mqtt/v3"));
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], b"text data");

    // Plain messages: the documented event.
    let plain: Vec<&Event> = events
        .iter()
        .filter(|e| e.attr_str("type") == Some("sluice.mqtt.message"))
        .collect();
    assert_eq!(plain.len(), 3, "{plain:?}");
    let find = |body: &[u8]| {
        *plain
            .iter()
            .find(|e| &e.data.as_ref().unwrap().bytes[..] == body)
            .unwrap_or_else(|| panic!("no plain event with {body:?}"))
    };
    let e = find(br#"{"plain": 1}"#);
    assert_eq!(
        e.attr_str("source").unwrap(),
        format!("mqtt://127.0.0.1:{port}/{t5}")
    );
    assert_eq!(e.attr_str("subject"), Some(t5.as_str()));
    assert_eq!(e.attr_str("datacontenttype"), Some("application/json"));
    assert!(uuid::Uuid::parse_str(e.id()).is_ok());
    let e = find(&bin);
    assert_eq!(
        e.attr_str("datacontenttype"),
        Some("application/octet-stream")
    );
    let e = find(b"plain over 3.1.1");
    assert_eq!(
        e.attr_str("source").unwrap(),
        format!("mqtt://127.0.0.1:{port}/{t3}")
    );

    assert_eq!(events.len(), 9, "the invalid message is not an event");
    assert_eq!(connector_metric(&gw, "m5", "invalid").await, 1);
    assert_eq!(connector_metric(&gw, "m5", "appended").await, 7);
}

#[tokio::test]
async fn target_publishes_in_both_modes_with_the_same_attributes_and_data() {
    let redis = Redis::start();
    let port = shared_port();
    let s = suffix();
    let base = format!("sluice-test/{s}/out");
    let gw = Gateway::start(
        &redis,
        &format!(
            r#"
gateway_id: gw-{s}
buses: [{{name: out}}, {{name: back}}]
connectors:
  # Reads what this gateway's targets publish: dropped by loop prevention.
  - {{name: loop, kind: mqtt, bus: back, url: "mqtt://127.0.0.1:{port}", topic: "{base}/#"}}
rules:
  - name: r
    bus: out
    targets:
      - {{name: bin, kind: mqtt, url: "mqtt://127.0.0.1:{port}", topic: {base}/bin}}
      - {{name: st, kind: mqtt, url: "mqtt://127.0.0.1:{port}", topic: {base}/st, mode: structured}}
      - {{name: v3, kind: mqtt, url: "mqtt://127.0.0.1:{port}", topic: {base}/v3, protocol: 3.1.1}}
      - name: tr
        kind: mqtt
        url: mqtt://127.0.0.1:{port}
        topic: {base}/tr
        transform: {{form: CONSTANT, value: '{{"ping": true}}'}}
"#
        ),
    )
    .await;
    let reader = Mqtt::connect(port, &format!("reader-{s}"), false);
    reader.subscribe(&format!("{base}/#")).await;
    subscribed(&gw, 1).await;

    let bin = vec![0u8, 1, 2, 254, 255];
    let sent: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "o-json",
            "application/json",
            br#"{"n": 1.50, "x": [1]}"#.to_vec(),
        ),
        ("o-text", "text/plain; charset=utf-8", b"some text".to_vec()),
        ("o-bin", "application/octet-stream", bin.clone()),
    ];
    let http = reqwest::Client::new();
    for (id, ct, body) in &sent {
        let r = http
            .post(gw.url("/buses/out/events"))
            .header("ce-specversion", "1.0")
            .header("ce-id", *id)
            .header("ce-source", "/http/test")
            .header("ce-type", "test.out")
            .header("ce-subject", "sub")
            .header("ce-myext", "e1")
            .header("content-type", *ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    assert!(
        wait_until(Duration::from_secs(20), || reader.received().len() >= 12).await,
        "received only {:?}",
        reader.received()
    );
    let expected = |id: &str| {
        attrs(&[
            ("specversion", "1.0"),
            ("id", id),
            ("source", "/http/test"),
            ("type", "test.out"),
            ("subject", "sub"),
            ("myext", "e1"),
        ])
    };
    let bins = reader.on(&format!("{base}/bin"));
    let structured = reader.on(&format!("{base}/st"));
    let v3 = reader.on(&format!("{base}/v3"));
    let tr = reader.on(&format!("{base}/tr"));
    assert_eq!(
        (bins.len(), structured.len(), v3.len(), tr.len()),
        (3, 3, 3, 3)
    );
    for (id, ct, body) in &sent {
        // Binary: attributes as user properties, datacontenttype as the content type.
        let m = bins
            .iter()
            .find(|p| properties(p).1.get("id") == Some(&Value::from(*id)))
            .unwrap();
        let (content_type, got) = properties(m);
        assert_eq!(got, expected(id));
        assert_eq!(content_type.as_deref(), Some(*ct));
        assert_eq!(&m.payload[..], &body[..]);
        let stamped = m
            .properties
            .as_ref()
            .unwrap()
            .user_properties
            .iter()
            .any(|(k, v)| k == "sluicepath" && v.contains(&format!("gw-{s}")));
        assert!(stamped, "sluicepath names this gateway");

        // Structured (MQTT 5 and 3.1.1): the event in the JSON format.
        for (list, v5) in [(&structured, true), (&v3, false)] {
            let m = list
                .iter()
                .find(|p| serde_json::from_slice::<Value>(&p.payload).unwrap()["id"] == json!(id))
                .unwrap();
            let mut doc: Map<String, Value> = serde_json::from_slice(&m.payload).unwrap();
            let data = doc.remove("data");
            let data_b64 = doc.remove("data_base64");
            let mut want = expected(id);
            want.insert("datacontenttype".into(), Value::from(*ct));
            assert_eq!(untraced(&doc), want);
            match *id {
                "o-json" => assert_eq!(
                    data.unwrap(),
                    serde_json::from_slice::<Value>(body).unwrap()
                ),
                "o-text" => assert_eq!(data.unwrap(), json!("some text")),
                _ => assert_eq!(
                    base64::engine::general_purpose::STANDARD
                        .decode(data_b64.unwrap().as_str().unwrap())
                        .unwrap(),
                    bin
                ),
            }
            let content_type = m.properties.as_ref().and_then(|p| p.content_type.clone());
            if v5 {
                assert!(content_type
                    .unwrap()
                    .starts_with("application/cloudevents+json"));
            } else {
                assert_eq!(content_type, None, "3.1.1 has no properties");
            }
        }
    }
    // A transform's result is the body; the attributes still travel (the id).
    for m in &tr {
        assert_eq!(
            serde_json::from_slice::<Value>(&m.payload).unwrap(),
            json!({"ping": true})
        );
        assert!(properties(m).1.contains_key("id"));
    }
    // The gateway's own connector got all 12 back and appended none (`sluicepath`).
    let mut returned = 0;
    for _ in 0..250 {
        returned = connector_metric(&gw, "loop", "returned").await;
        if returned >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(returned, 12);
    assert!(bus_events(&redis, "back").is_empty());
}

#[tokio::test]
async fn kill_9_mid_flow_loses_nothing() {
    const N: usize = 600;
    let redis = Redis::start();
    let port = shared_port();
    let s = suffix();
    let (a, b) = (format!("sluice-test/{s}/a"), format!("sluice-test/{s}/b"));
    // The connector's client id is the default one: the same after the restart, so
    // the broker resumes its session and redelivers what was not acknowledged.
    let mut gw = Gateway::start(
        &redis,
        &format!(
            r#"
gateway_id: gw-{s}
delivery: {{claim_idle: 4s}}
buses: [{{name: flow}}]
connectors:
  - {{name: in, kind: mqtt, bus: flow, url: "mqtt://127.0.0.1:{port}", topic: {a}}}
rules:
  - name: r
    bus: flow
    targets:
      - name: out
        kind: mqtt
        url: mqtt://127.0.0.1:{port}
        topic: {b}
        timeout: 2s
        concurrency: 16
        retry: {{initial: 100ms, max: 500ms, max_attempts: 100}}
"#
        ),
    )
    .await;
    subscribed(&gw, 1).await;
    let reader = Mqtt::connect(port, &format!("reader-{s}"), false);
    reader.subscribe(&b).await;
    let publisher = Mqtt::connect(port, &format!("pub-{s}"), false);
    for i in 0..N {
        let id = format!("k{i}");
        publisher
            .publish(
                &a,
                format!("{{\"i\":{i}}}").as_bytes(),
                Some("application/json"),
                &[
                    ("specversion", "1.0"),
                    ("id", &id),
                    ("source", "/kill"),
                    ("type", "t"),
                ],
            )
            .await;
    }
    let seen = || -> HashSet<String> {
        reader
            .received()
            .iter()
            .filter_map(|p| {
                let (_, a) = properties(p);
                a.get("id").and_then(Value::as_str).map(String::from)
            })
            .collect()
    };
    // Kill while both halves are busy: some appended, some published.
    let key = sluice::bus::bus_key("flow");
    assert!(
        wait_until(Duration::from_secs(20), || redis.xlen(&key) >= 50
            && !seen().is_empty())
        .await
    );
    gw.kill9();
    let at_kill = seen().len();
    let in_bus = bus_events(&redis, "flow").len();
    eprintln!("at the kill: {in_bus} of {N} in the bus, {at_kill} at the reader");
    gw.restart().await;
    publisher.acked(N).await;
    assert!(
        wait_until(Duration::from_secs(40), || seen().len() == N).await,
        "{} of {N} arrived ({at_kill} before the kill)\n{}",
        seen().len(),
        gw.logs()
    );
    // Appended once each: the ids are CloudEvents ids, deduplicated by the connector.
    let ids: Vec<String> = bus_events(&redis, "flow")
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);
    assert_eq!(ids.len(), N);
}

/// A private mosquitto with persistence (sessions and queued messages survive a
/// restart).
struct Mosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    async fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!(
                // `user root`: when run as root, stay root so it can write the test's dir.
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            port,
            dir,
            child: None,
        };
        m.spawn().await;
        m
    }

    async fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok())
            .await,
            "mosquitto did not start"
        );
    }

    /// SIGTERM (mosquitto writes its persistence file), then waits for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn connector_and_target_recover_after_a_broker_restart() {
    let mut broker = Mosquitto::start().await;
    let port = broker.port;
    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        &format!(
            r#"
gateway_id: gw-restart
buses: [{{name: b}}]
connectors:
  - {{name: in, kind: mqtt, bus: b, url: "mqtt://127.0.0.1:{port}", topic: in/#}}
rules:
  - name: r
    bus: b
    targets:
      - name: out
        kind: mqtt
        url: mqtt://127.0.0.1:{port}
        topic: out
        retry: {{initial: 200ms, max: 1s, max_attempts: 200}}
"#
        ),
    )
    .await;
    subscribed(&gw, 1).await;
    // A persistent reader: what the target publishes while it is away waits for it.
    let reader = Mqtt::connect(port, "reader", true);
    reader.subscribe("out").await;
    let publish = |publisher: &Mqtt, from: usize| {
        let publisher = publisher.client.clone();
        async move {
            for i in from..from + 10 {
                publisher
                    .publish_with_properties(
                        "in/x",
                        QoS::AtLeastOnce,
                        false,
                        Bytes::from(format!("{{\"i\":{i}}}")),
                        PublishProperties {
                            content_type: Some("application/json".into()),
                            user_properties: vec![
                                ("specversion".into(), "1.0".into()),
                                ("id".into(), format!("r{i}")),
                                ("source".into(), "/restart".into()),
                                ("type".into(), "t".into()),
                            ],
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
            }
        }
    };
    let publisher = Mqtt::connect(port, "pub-before", false);
    publish(&publisher, 0).await;
    publisher.acked(10).await;
    drop(publisher);
    let out_ids = || -> HashSet<String> {
        reader
            .received()
            .iter()
            .filter_map(|p| {
                let (_, a) = properties(p);
                a.get("id").and_then(Value::as_str).map(String::from)
            })
            .collect()
    };
    assert!(wait_until(Duration::from_secs(15), || out_ids().len() == 10).await);

    broker.stop();
    // Ingested while the broker is away: the target fails and retries.
    let batch = format!(
        "[{}]",
        (0..10)
            .map(|i| common::structured_event(&format!("h{i}"), "t", "{}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let r = reqwest::Client::new()
        .post(gw.url("/buses/b/events"))
        .header("content-type", "application/cloudevents-batch+json")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .logs()
            .contains("delivery failed; will retry"))
        .await,
        "no failed delivery while the broker is away"
    );
    broker.spawn().await;

    // The connector is back by itself: new messages arrive.
    let publisher = Mqtt::connect(port, "pub-after", false);
    publish(&publisher, 10).await;
    publisher.acked(10).await;
    assert!(
        wait_until(Duration::from_secs(30), || out_ids().len() == 30).await,
        "{} of 30 reached the reader: {:?}\n{}",
        out_ids().len(),
        out_ids(),
        gw.logs()
    );
    let in_bus: HashSet<String> = bus_events(&redis, "b")
        .iter()
        .map(|e| e.id().to_string())
        .collect();
    assert_eq!(in_bus.len(), 30);
}

#[tokio::test]
async fn replicas_split_a_shared_subscription() {
    const N: usize = 200;
    let redis = Redis::start();
    let port = shared_port();
    let s = suffix();
    let topic = format!("sluice-test/{s}/shared");
    let config = |replica: &str| {
        format!(
            r#"
gateway_id: gw-{s}
buses: [{{name: in}}]
connectors:
  - name: in
    kind: mqtt
    bus: in
    url: mqtt://127.0.0.1:{port}
    topic: $share/sluice-{s}/{topic}
    client_id: sluice-{s}-{replica}
    dedupe: off
"#
        )
    };
    let one = Gateway::start(&redis, &config("one")).await;
    let two = Gateway::start(&redis, &config("two")).await;
    subscribed(&one, 1).await;
    subscribed(&two, 1).await;
    let publisher = Mqtt::connect(port, &format!("pub-{s}"), false);
    for i in 0..N {
        publisher
            .publish(&topic, format!("{i}").as_bytes(), Some("text/plain"), &[])
            .await;
    }
    publisher.acked(N).await;
    assert!(
        wait_until(Duration::from_secs(20), || bus_events(&redis, "in").len()
            >= N)
        .await
    );
    // Each message appended once (no dedupe here), and both replicas took a share.
    let bodies: Vec<Bytes> = bus_events(&redis, "in")
        .into_iter()
        .map(|e| e.data.unwrap().bytes)
        .collect();
    assert_eq!(bodies.len(), N);
    assert_eq!(bodies.iter().collect::<HashSet<_>>().len(), N);
    let (a, b) = (
        connector_metric(&one, "in", "appended").await,
        connector_metric(&two, "in", "appended").await,
    );
    assert_eq!(a + b, N as u64);
    assert!(a > 0 && b > 0, "one replica got everything: {a} / {b}");
}

#[tokio::test]
async fn connector_acknowledges_only_after_redis_took_the_events() {
    const N: usize = 50;
    let mut redis = Redis::start();
    if !redis.can_restart() {
        return;
    }
    let port = shared_port();
    let s = suffix();
    let topic = format!("sluice-test/{s}/redis");
    let gw = Gateway::start(
        &redis,
        &format!(
            r#"
gateway_id: gw-{s}
buses: [{{name: in}}]
connectors:
  - {{name: in, kind: mqtt, bus: in, url: "mqtt://127.0.0.1:{port}", topic: {topic}}}
"#
        ),
    )
    .await;
    subscribed(&gw, 1).await;
    redis.kill();
    let publisher = Mqtt::connect(port, &format!("pub-{s}"), false);
    for i in 0..N {
        publisher
            .publish(&topic, format!("{i}").as_bytes(), Some("text/plain"), &[])
            .await;
    }
    publisher.acked(N).await;
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .logs()
            .contains("appending MQTT messages failed; retrying"))
        .await
    );
    redis.restart();
    assert!(
        wait_until(Duration::from_secs(30), || bus_events(&redis, "in").len()
            >= N)
        .await,
        "{} of {N} appended after Redis came back",
        bus_events(&redis, "in").len()
    );
    let bodies: HashSet<Bytes> = bus_events(&redis, "in")
        .into_iter()
        .map(|e| e.data.unwrap().bytes)
        .collect();
    assert_eq!(bodies.len(), N);
}
