//! Cloud bridges: the `alibaba-eventbridge` target against a local stub that verifies
//! signatures as the cloud does and fails entries on demand; two-way sync between two
//! gateways (each on its own redis-server) without loops; the `aws-eventbridge` target
//! and the SQS pull connector against moto (`moto_server`, PyPI `moto[server]`).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::{free_port, wait_until, Gateway, Redis};
use serde_json::{json, Value};
use sluice::bus::RawEntry;
use sluice::event::Event;

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

/// The dead-letter entries of a target: (event id, last error) pairs.
fn dlq(redis: &Redis, bus: &str, rule: &str, target: &str) -> Vec<HashMap<String, String>> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(sluice::bus::dlq_key(bus, rule, target))
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    entries.into_iter().map(|(_, f)| f).collect()
}

// ---------------------------------------------------------------------------------
// Alibaba Cloud EventBridge stub
// ---------------------------------------------------------------------------------

#[derive(Default)]
struct StubState {
    /// Event ids answered with `Throttling` once, then accepted.
    throttle_once: Mutex<HashSet<String>>,
    /// Event ids always answered with `InvalidArgument`.
    reject: HashSet<String>,
    /// Accepted events, in arrival order.
    accepted: Mutex<Vec<Value>>,
    /// Requests: (status, entries in the body).
    requests: Mutex<Vec<(u16, usize)>>,
    /// Headers of the last request.
    last_headers: Mutex<HashMap<String, String>>,
}

struct AlibabaStub {
    port: u16,
    state: Arc<StubState>,
    _handle: actix_web::dev::ServerHandle,
}

/// The signature check of the gateway's own Alibaba endpoint (the same code the cloud's
/// algorithm was taken from), configured with one AccessKey pair.
fn acs_verifier(id: &str, secret: &str) -> sluice::compat::alibaba::acs::AcsVerifier {
    let plan = sluice::plan::Plan::parse(&format!(
        "buses: [{{name: b}}]\nalibaba: {{access_keys: [{{id: {id}, secret: {secret}}}], default_bus: b}}\n"
    ))
    .unwrap();
    plan.alibaba.unwrap().verifier.unwrap()
}

async fn stub_put_events(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<StubState>,
    verifier: web::Data<sluice::compat::alibaba::acs::AcsVerifier>,
) -> HttpResponse {
    *state.last_headers.lock().unwrap() = req
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let verified = verifier.verify(&sluice::compat::alibaba::acs::SignedRequest {
        method: req.method().as_str(),
        path: req.path(),
        query: req.query_string(),
        headers: req.headers(),
        body: &body,
        now: chrono::Utc::now(),
    });
    if let Err(e) = verified {
        state.requests.lock().unwrap().push((e.status, 0));
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(e.status).unwrap())
            .json(json!({"code": e.code, "message": e.message}));
    }
    let events: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
    state.requests.lock().unwrap().push((200, events.len()));
    let mut failed = 0;
    let mut entries = Vec::new();
    for event in events {
        let id = event["id"].as_str().unwrap().to_string();
        let code = if state.reject.contains(&id) {
            Some("InvalidArgument")
        } else if state.throttle_once.lock().unwrap().remove(&id) {
            Some("Throttling")
        } else {
            None
        };
        match code {
            Some(code) => {
                failed += 1;
                entries
                    .push(json!({"EventId": id, "ErrorCode": code, "ErrorMessage": "on demand"}));
            }
            None => {
                entries.push(json!({"EventId": id, "TraceId": "t"}));
                state.accepted.lock().unwrap().push(event);
            }
        }
    }
    HttpResponse::Ok().json(json!({
        "RequestId": "r",
        "ResourceOwnerAccountId": "1234",
        "FailedEntryCount": failed,
        "EntryList": entries,
    }))
}

impl AlibabaStub {
    async fn start(key_id: &str, secret: &str, state: StubState) -> AlibabaStub {
        let port = free_port();
        let state = Arc::new(state);
        let data = web::Data::from(state.clone());
        let verifier = web::Data::new(acs_verifier(key_id, secret));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(verifier.clone())
                .route("/openapi/putEvents", web::post().to(stub_put_events))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        AlibabaStub {
            port,
            state,
            _handle: handle,
        }
    }

    fn accepted_ids(&self) -> Vec<String> {
        self.state
            .accepted
            .lock()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn alibaba_config(stub_port: u16, secret: &str, extra: &str) -> String {
    format!(
        r#"
gateway_id: idc
buses: [{{name: orders}}]
rules:
  - name: to-cloud
    bus: orders
    targets:
      - name: ali
        kind: alibaba-eventbridge
        endpoint: http://127.0.0.1:{stub_port}
        event_bus: cloud-orders
        peer: aliyun
        access_key_id: AKID
        access_key_secret: {secret}
        concurrency: 32
        retry: {{initial: 50ms, max: 200ms, max_attempts: 5}}
{extra}
"#
    )
}

fn event_batch(prefix: &str, n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","id":"{prefix}{i}","source":"/shop","type":"order.paid","datacontenttype":"application/json","data":{{"n":{i},"amount":1.50}}}}"#
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

async fn post_batch(gw: &Gateway, bus: &str, body: String) -> u16 {
    reqwest::Client::new()
        .post(gw.url(&format!("/buses/{bus}/events")))
        .header("content-type", "application/cloudevents-batch+json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn alibaba_target_batches_signs_and_retries_only_failed_entries() {
    let stub = AlibabaStub::start(
        "AKID",
        "s3cret",
        StubState {
            throttle_once: Mutex::new(["e3", "e7", "e11"].map(String::from).into()),
            reject: ["e5"].map(String::from).into(),
            ..Default::default()
        },
    )
    .await;
    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        &alibaba_config(stub.port, "s3cret", "        security_token: sts-token-1"),
    )
    .await;
    assert_eq!(post_batch(&gw, "orders", event_batch("e", 40)).await, 202);

    let all_but_rejected = 39;
    assert!(
        wait_until(Duration::from_secs(20), || stub.accepted_ids().len()
            >= all_but_rejected)
        .await,
        "accepted {:?}\n{}",
        stub.accepted_ids(),
        gw.logs()
    );
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids = stub.accepted_ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), all_but_rejected, "duplicates: {ids:?}");
    assert_eq!(unique.len(), all_but_rejected);
    assert!(!unique.contains(&"e5".to_string()));

    // The rejected entry went to the DLQ with the cloud's error code, once.
    assert!(
        wait_until(Duration::from_secs(5), || dlq(
            &redis, "orders", "to-cloud", "ali"
        )
        .len()
            == 1)
        .await
    );
    let dead = dlq(&redis, "orders", "to-cloud", "ali");
    assert!(dead[0]["reason"].contains("InvalidArgument"), "{dead:?}");

    // Requests carried several entries (the batcher), never over 10.
    let requests = stub.state.requests.lock().unwrap().clone();
    eprintln!(
        "alibaba target: {} requests for 40 events ({} entries sent, retries included)",
        requests.len(),
        requests.iter().map(|(_, n)| n).sum::<usize>()
    );
    assert!(
        requests.iter().all(|(s, n)| *s == 200 && *n <= 10),
        "{requests:?}"
    );
    assert!(
        requests.len() < 40,
        "{} requests for 40 events: no batching",
        requests.len()
    );

    // Mapped fields: the bus extension, the trace, the data unchanged.
    let accepted = stub.state.accepted.lock().unwrap().clone();
    let e0 = accepted.iter().find(|e| e["id"] == "e0").unwrap();
    assert_eq!(e0["aliyuneventbusname"], "cloud-orders");
    assert_eq!(e0["source"], "/shop");
    assert_eq!(e0["type"], "order.paid");
    assert_eq!(e0["sluicepath"], "idc");
    assert_eq!(e0["sluiceorigin"], "idc");
    assert_eq!(e0["sluicehops"], 1);
    // The data bytes as produced (1.50 stays 1.50).
    assert_eq!(e0["data"].to_string(), r#"{"n":0,"amount":1.50}"#);
    // The headers of the data-plane API, with the STS token (signed, as x-acs-*).
    let headers = stub.state.last_headers.lock().unwrap().clone();
    assert_eq!(headers["x-eventbridge-version"], "2015-06-06");
    assert_eq!(headers["x-acs-signature-method"], "HMAC-SHA1");
    assert_eq!(headers["x-acs-signature-version"], "1.0");
    assert_eq!(headers["x-acs-security-token"], "sts-token-1");
    assert_eq!(headers["x-acs-accesskey-id"], "AKID");
    // As the SDKs: no content-md5 (the string to sign has an empty line for it).
    assert!(!headers.contains_key("content-md5"));
    assert!(headers["authorization"].starts_with("acs:AKID:"));
    assert_eq!(
        headers["content-type"],
        "application/cloudevents-batch+json; charset=utf-8"
    );
}

#[tokio::test]
async fn alibaba_target_with_a_wrong_secret_dead_letters_on_the_refusal() {
    let stub = AlibabaStub::start("AKID", "right", StubState::default()).await;
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &alibaba_config(stub.port, "wrong", "")).await;
    assert_eq!(post_batch(&gw, "orders", event_batch("w", 3)).await, 202);
    assert!(
        wait_until(Duration::from_secs(10), || dlq(
            &redis, "orders", "to-cloud", "ali"
        )
        .len()
            == 3)
        .await,
        "{}",
        gw.logs()
    );
    assert!(stub.accepted_ids().is_empty());
    let requests = stub.state.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|(s, _)| *s == 403), "{requests:?}");
    let dead = dlq(&redis, "orders", "to-cloud", "ali");
    assert!(dead[0]["reason"].contains("403"), "{dead:?}");
}

// ---------------------------------------------------------------------------------
// Two-way sync between two gateways
// ---------------------------------------------------------------------------------

fn sync_config(me: &str, peer: &str, peer_port: u16) -> String {
    format!(
        r#"
gateway_id: {me}
buses: [{{name: events}}]
alibaba:
  access_keys: [{{id: AK{me}, secret: key-{me}}}]
  default_bus: events
rules:
  - name: sync
    bus: events
    targets:
      - name: to-{peer}
        kind: alibaba-eventbridge
        endpoint: http://127.0.0.1:{peer_port}
        event_bus: events
        peer: {peer}
        access_key_id: AK{peer}
        access_key_secret: key-{peer}
        concurrency: 16
        retry: {{initial: 50ms, max: 500ms}}
"#
    )
}

#[tokio::test]
async fn two_way_sync_delivers_each_event_once_to_each_side_without_loops() {
    let (redis_a, redis_b) = (Redis::start(), Redis::start());
    let (port_a, port_b) = (free_port(), free_port());
    let a = Gateway::start_on(&redis_a, &sync_config("east", "west", port_b), port_a).await;
    let b = Gateway::start_on(&redis_b, &sync_config("west", "east", port_a), port_b).await;

    assert_eq!(
        post_batch(&a, "events", event_batch("from-a-", 25)).await,
        202
    );
    assert_eq!(
        post_batch(&b, "events", event_batch("from-b-", 25)).await,
        202
    );

    let both =
        || bus_events(&redis_a, "events").len() >= 50 && bus_events(&redis_b, "events").len() >= 50;
    assert!(
        wait_until(Duration::from_secs(20), both).await,
        "a has {}, b has {}\n--- a ---\n{}\n--- b ---\n{}",
        bus_events(&redis_a, "events").len(),
        bus_events(&redis_b, "events").len(),
        a.logs(),
        b.logs()
    );
    // Time for a ping-pong to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, redis, me, other) in [
        ("a", &redis_a, "east", "west"),
        ("b", &redis_b, "west", "east"),
    ] {
        let events = bus_events(redis, "events");
        let ids: Vec<&str> = events.iter().map(|e| e.id()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(ids.len(), 50, "{name}: {ids:?}");
        assert_eq!(unique.len(), 50, "{name}: duplicates in {ids:?}");
        // Events from the other side carry their trace: origin, path, one hop.
        let local_prefix = if name == "a" { "from-a-" } else { "from-b-" };
        for e in &events {
            if e.id().starts_with(local_prefix) {
                assert_eq!(e.attr_str("sluicepath"), None, "{name}: {:?}", e.attrs);
            } else {
                assert_eq!(
                    e.attr_str("sluicepath"),
                    Some(format!("{other},{me}").as_str())
                );
                assert_eq!(e.attr_str("sluiceorigin"), Some(other));
                assert_eq!(e.attrs["sluicehops"], 1);
                assert_eq!(
                    std::str::from_utf8(&e.data.as_ref().unwrap().bytes).unwrap(),
                    format!(
                        r#"{{"n":{},"amount":1.50}}"#,
                        e.id().rsplit('-').next().unwrap()
                    )
                );
            }
        }
        // Nothing was dead-lettered: skipped events count as delivered.
        assert!(dlq(redis, "events", "sync", &format!("to-{other}")).is_empty());
    }
}

#[tokio::test]
async fn cloudevents_endpoint_drops_copies_that_were_here_before() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, "gateway_id: here\nbuses: [{name: b}]\n").await;
    let ev = |id: &str, path: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/x","type":"t","sluicepath":"{path}","sluicehops":1}}"#
        )
    };
    let body = format!(
        "[{},{},{}]",
        ev("came-back", "here,cloud"),
        ev("new", "cloud"),
        r#"{"specversion":"1.0","id":"plain","source":"/x","type":"t"}"#
    );
    assert_eq!(post_batch(&gw, "b", body).await, 202);
    let events = bus_events(&redis, "b");
    let ids: Vec<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids, ["new", "plain"]);
    assert_eq!(events[0].attr_str("sluicepath"), Some("cloud,here"));
    assert_eq!(events[1].attr_str("sluicepath"), None);
}

/// The value of `sluice_bridge_skipped_total{reason=...}` on a gateway.
async fn skipped(gw: &Gateway, reason: &str) -> u64 {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("sluice_bridge_skipped_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn two_way_sync_counts_the_skipped_copies() {
    let (redis_a, redis_b) = (Redis::start(), Redis::start());
    let (port_a, port_b) = (free_port(), free_port());
    let a = Gateway::start_on(&redis_a, &sync_config("east", "west", port_b), port_a).await;
    let b = Gateway::start_on(&redis_b, &sync_config("west", "east", port_a), port_b).await;
    assert_eq!(post_batch(&a, "events", event_batch("x-", 10)).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || bus_events(&redis_b, "events")
            .len()
            == 10)
        .await
    );
    // b routes the 10 copies to its own bridge back to a, which skips them.
    let mut n = 0;
    for _ in 0..100 {
        n = skipped(&b, "loop").await;
        if n == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 10, "{}", b.logs());
    assert_eq!(skipped(&a, "loop").await, 0);
    assert_eq!(bus_events(&redis_a, "events").len(), 10);
}

// ---------------------------------------------------------------------------------
// AWS through moto
// ---------------------------------------------------------------------------------

/// A `moto_server` of this test's own (PyPI `moto[server]`, installed by `.ci/run`).
struct Moto {
    url: String,
    child: std::process::Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto, or returns `None` (with a loud message) when it is not installed
    /// here; under CI (`CI` set) a missing moto fails the test.
    async fn start() -> Option<Moto> {
        let port = free_port();
        let child = std::process::Command::new("moto_server")
            .args(["-p", &port.to_string(), "-H", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "moto_server cannot be started under CI: {e} (pip install 'moto[server]')"
                );
                eprintln!("\n*** SKIPPED: moto_server is not installed ({e}); pip install 'moto[server]' ***\n");
                return None;
            }
        };
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let client = reqwest::Client::new();
        let up = async {
            for _ in 0..200 {
                if client
                    .get(format!("{}/moto-api/", moto.url))
                    .send()
                    .await
                    .is_ok()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        };
        assert!(up.await, "moto_server did not answer on {}", moto.url);
        Some(moto)
    }

    async fn sdk(&self) -> aws_config::SdkConfig {
        set_aws_env();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .load()
            .await
    }

    /// A queue and its ARN.
    async fn queue(&self, name: &str) -> (String, String) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk().await);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        (url, arn)
    }

    /// An event bus whose one rule (`pattern`) sends to the queue `queue_arn`.
    async fn bus_to_queue(&self, bus: &str, pattern: &str, queue_arn: &str) {
        let eb = aws_sdk_eventbridge::Client::new(&self.sdk().await);
        eb.create_event_bus().name(bus).send().await.unwrap();
        eb.put_rule()
            .name("to-queue")
            .event_bus_name(bus)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap();
        eb.put_targets()
            .rule("to-queue")
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("q")
                    .arn(queue_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Every message body the queue holds (received and deleted) until `n` arrived or
    /// 20 s passed.
    async fn drain(&self, queue_url: &str, n: usize) -> Vec<Value> {
        // Generous: moto (Python) is slow on a loaded 2-core machine; ends at n.
        self.drain_for(queue_url, n, Duration::from_secs(60)).await
    }

    async fn drain_for(&self, queue_url: &str, n: usize, limit: Duration) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk().await);
        let mut bodies = Vec::new();
        let start = std::time::Instant::now();
        while bodies.len() < n && start.elapsed() < limit {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for m in out.messages.unwrap_or_default() {
                bodies.push(serde_json::from_str(m.body().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        bodies
    }
}

/// Credentials moto accepts, for this process and the gateways it starts; no instance
/// metadata lookups.
fn set_aws_env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

fn aws_target_config(moto: &Moto, extra_rules: &str) -> String {
    format!(
        r#"
gateway_id: idc
buses: [{{name: orders}}]
rules:
  - name: to-aws
    bus: orders
    pattern: {{"source": ["/shop"]}}
    targets:
      - name: eb
        kind: aws-eventbridge
        endpoint: {url}
        region: us-east-1
        event_bus: cloud
        peer: aws-prod
        concurrency: 32
        retry: {{initial: 50ms, max: 500ms, max_attempts: 10}}
        # moto handles PutEvents one at a time (and delivers to SQS inside it): under
        # load a request can take seconds, and a timed-out one is sent again (at least
        # once), which would fail the exactly-once checks here.
        timeout: 60s
delivery: {{claim_idle: 90s}}
{extra_rules}
"#,
        url = moto.url
    )
}

#[tokio::test]
async fn aws_target_puts_mapped_entries_once_each() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let (queue_url, queue_arn) = moto.queue("inbox").await;
    moto.bus_to_queue("cloud", r#"{"source": ["/shop"]}"#, &queue_arn)
        .await;
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &aws_target_config(&moto, "")).await;

    assert_eq!(post_batch(&gw, "orders", event_batch("e", 30)).await, 202);
    // A text event with resources and a time.
    let status = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("content-type", "text/plain")
        .header("ce-specversion", "1.0")
        .header("ce-id", "text-1")
        .header("ce-source", "/shop")
        .header("ce-type", "note")
        .header("ce-time", "2026-01-02T03:04:05Z")
        .header("ce-resources", "arn:aws:s3:::a,arn:aws:s3:::b")
        .body("plain words")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);

    let bodies = moto.drain(&queue_url, 31).await;
    assert_eq!(bodies.len(), 31, "{bodies:?}\n{}", gw.logs());
    // Nothing more arrives: each event once.
    let more = moto.drain_for(&queue_url, 1, Duration::from_secs(3)).await;
    assert!(
        more.is_empty(),
        "more: {more:?}\nfirst: {bodies:?}\n{}",
        gw.logs()
    );

    let mut seen = HashSet::new();
    for body in &bodies {
        assert_eq!(body["source"], "/shop");
        let detail = &body["detail"];
        assert_eq!(detail["_sluice"]["path"], "idc");
        assert_eq!(detail["_sluice"]["origin"], "idc");
        assert_eq!(detail["_sluice"]["hops"], 1);
        if body["detail-type"] == "note" {
            assert_eq!(detail["data"], "plain words");
            assert_eq!(detail["_sluice"]["wrapped"], true);
            assert_eq!(body["time"], "2026-01-02T03:04:05Z");
            assert_eq!(
                body["resources"],
                json!(["arn:aws:s3:::a", "arn:aws:s3:::b"])
            );
            seen.insert("text".to_string());
        } else {
            assert_eq!(body["detail-type"], "order.paid");
            // moto re-serialises the detail (1.50 becomes 1.5): compare numbers.
            assert_eq!(detail["amount"].as_f64(), Some(1.5));
            assert!(seen.insert(detail["n"].to_string()), "duplicate {body}");
        }
    }
    assert_eq!(seen.len(), 31);
    assert!(dlq(&redis, "orders", "to-aws", "eb").is_empty());
}

#[tokio::test]
async fn aws_target_dead_letters_entries_for_a_missing_bus() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    // No bus "cloud" in moto: the request is refused, not worth retrying.
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &aws_target_config(&moto, "")).await;
    assert_eq!(post_batch(&gw, "orders", event_batch("m", 2)).await, 202);
    assert!(
        wait_until(Duration::from_secs(10), || dlq(
            &redis, "orders", "to-aws", "eb"
        )
        .len()
            == 2)
        .await,
        "{}",
        gw.logs()
    );
}

#[tokio::test]
async fn sqs_connector_appends_envelopes_once_and_deletes_them() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let (queue_url, _) = moto.queue("pull").await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk().await);
    let envelope = |id: &str, detail: &str| {
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":"order.shipped","source":"com.shop","account":"123456789012","time":"2026-11-23T10:00:00Z","region":"us-east-1","resources":["arn:aws:x"],"detail":{detail}}}"#
        )
    };
    let mut bodies: Vec<String> = (0..5)
        .map(|i| envelope(&format!("aws-{i}"), &format!(r#"{{"i":{i}}}"#)))
        .collect();
    // A redelivery of aws-0 (the same event id): appended once.
    bodies.push(envelope("aws-0", r#"{"i":0}"#));
    // A copy of an event this gateway sent (its trace names it): dropped.
    bodies.push(envelope(
        "aws-back",
        r#"{"_sluice":{"origin":"idc","path":"idc","hops":1},"i":9}"#,
    ));
    // Not an envelope: kept as aws.sqs.message.
    bodies.push("hello".into());
    for body in &bodies {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let redis = Redis::start();
    let config = format!(
        r#"
gateway_id: idc
buses: [{{name: inbound}}]
connectors:
  - name: from-aws
    kind: sqs
    queue_url: {queue_url}
    endpoint: {url}
    region: us-east-1
    bus: inbound
    peer: aws-prod
    wait: 1s
"#,
        url = moto.url
    );
    let gw = Gateway::start(&redis, &config).await;
    assert!(
        wait_until(Duration::from_secs(15), || bus_events(&redis, "inbound")
            .len()
            >= 6)
        .await,
        "{}",
        gw.logs()
    );
    // The queue empties: messages are deleted once appended.
    let attrs = || async {
        let out = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let a = out.attributes.unwrap();
        let n = |k| a[&k].parse::<u32>().unwrap();
        n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + n(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    };
    let mut left = u32::MAX;
    for _ in 0..100 {
        left = attrs().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "{}", gw.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let events = bus_events(&redis, "inbound");
    let mut ids: Vec<&str> = events.iter().map(|e| e.id()).collect();
    ids.sort();
    assert_eq!(ids.len(), 6, "{ids:?}");
    let e = events.iter().find(|e| e.id() == "aws-3").unwrap();
    assert_eq!(e.attr_str("source"), Some("com.shop"));
    assert_eq!(e.attr_str("type"), Some("order.shipped"));
    assert_eq!(e.attr_str("time"), Some("2026-11-23T10:00:00Z"));
    assert_eq!(e.attr_str("awsaccount"), Some("123456789012"));
    assert_eq!(e.attr_str("awsregion"), Some("us-east-1"));
    assert_eq!(e.attr_str("resources"), Some("arn:aws:x"));
    assert_eq!(e.attr_str("sluicepath"), Some("aws-prod,idc"));
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], br#"{"i":3}"#);
    let raw = events
        .iter()
        .find(|e| e.attr_str("type") == Some("aws.sqs.message"))
        .unwrap();
    assert_eq!(&raw.data.as_ref().unwrap().bytes[..], b"hello");
    assert!(!ids.contains(&"aws-back"));
}

#[tokio::test]
async fn idc_and_aws_sync_both_ways_without_loops() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    // AWS side: bus "cloud", every event to a queue that the IDC gateway pulls.
    let (queue_url, queue_arn) = moto.queue("to-idc").await;
    moto.bus_to_queue("cloud", r#"{"source": [{"prefix": "/"}]}"#, &queue_arn)
        .await;
    let redis = Redis::start();
    let connector = format!(
        r#"
connectors:
  - name: from-aws
    kind: sqs
    queue_url: {queue_url}
    endpoint: {url}
    region: us-east-1
    bus: orders
    peer: aws-prod
    wait: 1s
"#,
        url = moto.url
    );
    let gw = Gateway::start(&redis, &(aws_target_config(&moto, "") + &connector)).await;

    // 10 events produced at the IDC, 5 produced on AWS.
    assert_eq!(
        post_batch(&gw, "orders", event_batch("idc-", 10)).await,
        202
    );
    let eb = aws_sdk_eventbridge::Client::new(&moto.sdk().await);
    for i in 0..5 {
        eb.put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("/shop")
                    .detail_type("cloud.made")
                    .detail(format!(r#"{{"k":{i}}}"#))
                    .event_bus_name("cloud")
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    // The IDC bus: its 10 once, the 5 from AWS once; the 10 came back through the queue
    // and were dropped; the 5 were not sent back to AWS.
    assert!(
        wait_until(Duration::from_secs(20), || bus_events(&redis, "orders")
            .len()
            >= 15)
        .await,
        "{}",
        gw.logs()
    );
    let mut n = 0;
    for _ in 0..100 {
        n = skipped(&gw, "loop").await;
        if n >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = bus_events(&redis, "orders");
    let ids: HashSet<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(events.len(), 15, "{ids:?}");
    assert_eq!(ids.len(), 15);
    assert_eq!(n, 5, "the AWS events were sent back to AWS");
    let from_aws: Vec<&Event> = events
        .iter()
        .filter(|e| e.attr_str("type") == Some("cloud.made"))
        .collect();
    assert_eq!(from_aws.len(), 5);
    assert!(from_aws
        .iter()
        .all(|e| e.attr_str("sluicepath") == Some("aws-prod,idc")));
}

// ---------------------------------------------------------------------------------
// Inbound from AWS: API destinations
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn api_destination_source_maps_envelopes_with_api_key_or_basic_auth() {
    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        r#"
gateway_id: idc
buses: [{name: inbound}]
sources:
  - {name: aws, kind: aws-api-destination, bus: inbound, header: x-api-key, secret: k3y, peer: aws-prod}
  - {name: aws-basic, kind: aws-api-destination, bus: inbound, username: eventbridge, secret: pa55}
"#,
    )
    .await;
    let client = reqwest::Client::new();
    let envelope = |id: &str| {
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":"order.created","source":"com.shop","account":"123456789012","time":"2026-11-23T10:00:00Z","region":"eu-west-1","resources":[],"detail":{{"order":{id:?}}}}}"#
        )
    };
    let post = |source: &str, body: String, auth: (&str, String)| {
        client
            .post(gw.url(&format!("/webhooks/{source}")))
            .header("content-type", "application/json")
            .header(auth.0, auth.1)
            .body(body)
            .send()
    };
    let key = || ("x-api-key", "k3y".to_string());
    let r = post("aws", envelope("ev-1"), key()).await.unwrap();
    assert_eq!(r.status(), 202);
    // A retry of the API destination: the same event id, not appended again.
    let r = post("aws", envelope("ev-1"), key()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);
    // Wrong key.
    let r = post("aws", envelope("ev-2"), ("x-api-key", "nope".into()))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Basic auth.
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "eventbridge:pa55"
        )
    );
    let r = post(
        "aws-basic",
        envelope("ev-3"),
        ("authorization", basic.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    // A copy of an event that left this gateway: answered, not appended.
    let back = r#"{"id":"ev-4","detail-type":"t","source":"s","detail":{"_sluice":{"origin":"idc","path":"idc,aws-prod","hops":1}}}"#;
    let r = post("aws", back.into(), key()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["returned"], true);
    // Not an envelope: 400 naming the field.
    let r = post(
        "aws",
        r#"{"id":"x","source":"s","detail":{}}"#.into(),
        key(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["field"], "detail-type", "{body}");

    let events = bus_events(&redis, "inbound");
    let ids: Vec<&str> = events.iter().map(|e| e.id()).collect();
    assert_eq!(ids, ["ev-1", "ev-3"]);
    let e = &events[0];
    assert_eq!(e.attr_str("source"), Some("com.shop"));
    assert_eq!(e.attr_str("type"), Some("order.created"));
    assert_eq!(e.attr_str("awsregion"), Some("eu-west-1"));
    assert_eq!(e.attr_str("awsaccount"), Some("123456789012"));
    assert_eq!(e.attr_str("sluicepath"), Some("aws-prod,idc"));
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], br#"{"order":"ev-1"}"#);
    // Without `peer`, the path starts at this gateway.
    assert_eq!(events[1].attr_str("sluicepath"), Some("idc"));
}

// ---------------------------------------------------------------------------------
// Inbound from Alibaba: HTTP targets push to the CloudEvents endpoint, with a token
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn bus_ingest_token_guards_the_cloudevents_endpoint() {
    std::env::set_var("SLUICE_TEST_BRIDGE_INGEST_TOKEN", "t0ken-from-env");
    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        "gateway_id: idc\nbuses:\n  - {name: guarded, ingest_token: env:SLUICE_TEST_BRIDGE_INGEST_TOKEN}\n  - {name: open}\n",
    )
    .await;
    let client = reqwest::Client::new();
    // What an Alibaba EventBridge HTTP target sends: one structured CloudEvent, here
    // one that went from this gateway to Alibaba earlier (and so is not appended).
    let event = |id: &str, path: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"acs.eventbridge","type":"order.paid","aliyuneventbusname":"cloud","sluicepath":"{path}","sluicehops":1,"datacontenttype":"application/json","data":{{"a":1}}}}"#
        )
    };
    let send = |url: String, body: String, bearer: Option<&str>| {
        let mut r = client
            .post(url)
            .header("content-type", "application/cloudevents+json")
            .body(body);
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let url = gw.url("/buses/guarded/events");
    let r = send(url.clone(), event("a1", "aliyun"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    let r = send(url.clone(), event("a1", "aliyun"), Some("wrong"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = send(url.clone(), event("a1", "aliyun"), Some("t0ken-from-env"))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = send(
        format!("{url}?token=t0ken-from-env"),
        event("a2", "idc,aliyun"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    // Other buses stay open.
    let r = send(gw.url("/buses/open/events"), event("o1", "aliyun"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let events = bus_events(&redis, "guarded");
    let ids: Vec<&str> = events.iter().map(|e| e.id()).collect();
    // a2 had been here (idc is on its path): dropped.
    assert_eq!(ids, ["a1"]);
    assert_eq!(events[0].attr_str("sluicepath"), Some("aliyun,idc"));
}

#[tokio::test]
async fn alibaba_target_with_ordering_keeps_per_key_order_through_retries() {
    // Throttled entries are retried; with `ordering` the next event of the same key
    // waits for them, so each key arrives in order.
    let stub = AlibabaStub::start(
        "AKID",
        "s3cret",
        StubState {
            throttle_once: Mutex::new(["o-0", "o-4", "o-9"].map(String::from).into()),
            ..Default::default()
        },
    )
    .await;
    let redis = Redis::start();
    let config = alibaba_config(stub.port, "s3cret", "        ordering: {key: subject}")
        + "        timeout: 1s\ndelivery: {claim_idle: 3s}\n";
    let gw = Gateway::start(&redis, &config).await;
    let events: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"specversion":"1.0","id":"o-{i}","source":"/shop","type":"t","subject":"k{}","data":{{"seq":{i}}}}}"#,
                i % 3
            )
        })
        .collect();
    assert_eq!(
        post_batch(&gw, "orders", format!("[{}]", events.join(","))).await,
        202
    );
    assert!(
        wait_until(Duration::from_secs(20), || stub.accepted_ids().len() >= 30).await,
        "{:?} requests {:?} bus {} target {}\n{}",
        stub.accepted_ids(),
        stub.state.requests.lock().unwrap(),
        redis.xlen(&sluice::bus::bus_key("orders")),
        redis.xlen(&sluice::bus::target_key("orders", "to-cloud", "ali")),
        gw.logs()
    );
    let accepted = stub.state.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 30);
    for key in ["k0", "k1", "k2"] {
        let seq: Vec<i64> = accepted
            .iter()
            .filter(|e| e["subject"] == key)
            .map(|e| e["data"]["seq"].as_i64().unwrap())
            .collect();
        let mut sorted = seq.clone();
        sorted.sort();
        assert_eq!(seq, sorted, "{key} out of order");
        assert_eq!(seq.len(), 10);
    }
    // Events of different keys still shared requests.
    let requests = stub.state.requests.lock().unwrap().clone();
    assert!(requests.iter().any(|(_, n)| *n > 1), "{requests:?}");
}
