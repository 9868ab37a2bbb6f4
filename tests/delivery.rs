//! Delivery policy end to end: non-retryable answers dead-letter at once and can be
//! redriven, Retry-After is honoured, attempts are bounded, deliveries are signed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::*;
use hmac::{KeyInit, Mac};

const DLQ: &str = "sluice:{orders}:dlq:all:rx";
const STREAM: &str = "sluice:{orders}:t:all:rx";

fn config(rx: &Receiver, target_extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
delivery: {{claim_idle: 5s}}
rules:
  - name: all
    bus: orders
    targets:
      - {{name: rx, kind: http, url: "{}", timeout: 2s, {target_extra}}}
"#,
        rx.url("/hook")
    )
}

/// Writes `config` to a file for the CLI (the gateway's copy is private to it).
fn config_file(dir: &Path, config: &str) -> PathBuf {
    let path = dir.join("sluice.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs `sluice dlq ACTION ...` for target orders/all/rx; returns (exit code, stdout, stderr).
fn dlq(redis: &Redis, config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("dlq")
        .arg(args[0])
        .arg("--config")
        .arg(config)
        .args(["--redis", &redis.url])
        .args(&args[1..])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TARGET: [&str; 6] = ["--bus", "orders", "--rule", "all", "--target", "rx"];

fn with_target<'a>(action: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![action];
    args.extend(TARGET);
    args.extend(extra);
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_400_is_dead_lettered_at_once_and_redrive_delivers_it() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(400);
    let text = config(&rx, "retry: {max_attempts: 10, initial: 100ms, max: 200ms}");
    let gw = Gateway::start(&redis, &text).await;
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), &text);

    let body = structured_event("bad-1", "t", r#"{"n":1}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || redis.xlen(DLQ) == 1).await);
    assert_eq!(
        redis.xlen(STREAM),
        0,
        "dead-lettered entries leave the stream"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rx.attempts().len(), 1, "a 400 is not retried");

    let (code, out, err) = dlq(&redis, &file, &with_target("list", &[]));
    assert_eq!(code, 0, "{err}");
    let fields: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(fields[1..], ["bad-1", "status 400", "1"], "{out}");
    let entry = fields[0].to_string();

    let (code, out, err) = dlq(&redis, &file, &with_target("show", &["--id", &entry]));
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["reason"], "status 400");
    assert_eq!(shown["event"]["id"], "bad-1");
    assert_eq!(shown["event"]["data"], serde_json::json!({"n": 1}));
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(shown["attempts"][0]["status"], 400);
    assert!(shown["attempts"][0]["latency_ms"].is_u64(), "{shown}");
    assert!(shown["attempts"][0]["at"].is_string(), "{shown}");

    // Usage errors exit 2, failures 1.
    assert_eq!(dlq(&redis, &file, &with_target("redrive", &[])).0, 2);
    // A partial id would stand for every entry of that millisecond.
    let millis = entry.split('-').next().unwrap().to_string();
    let (code, _, err) = dlq(&redis, &file, &with_target("redrive", &["--id", &millis]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a full entry id"), "{err}");
    assert_eq!(dlq(&redis, &file, &with_target("show", &[])).0, 2);
    assert_eq!(
        dlq(
            &redis,
            &file,
            &["list", "--bus", "orders", "--rule", "all", "--target", "nope"]
        )
        .0,
        2
    );
    assert_eq!(
        dlq(&redis, &file, &with_target("redrive", &["--id", "1-1"])).0,
        1
    );

    // Fix the target, redrive: delivered again with the same event id.
    rx.answer_with(200);
    let (code, out, err) = dlq(&redis, &file, &with_target("redrive", &["--all"]));
    assert_eq!((code, out.trim()), (0, "1 redriven"), "{err}");
    assert_eq!(redis.xlen(DLQ), 0);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let got = rx.received();
    assert_eq!(got[0].header("ce-id"), Some("bad-1"));
    assert_eq!(got[0].body, br#"{"n":1}"#);
    assert!(wait_until(Duration::from_secs(5), || redis.xlen(STREAM) == 0).await);
    let (_, out, _) = dlq(&redis, &file, &with_target("list", &[]));
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_once(429, &[("Retry-After", "2")]);
    let gw = Gateway::start(&redis, &config(&rx, "retry: {initial: 100ms, max: 10s}")).await;
    let body = structured_event("slow-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let attempts = rx.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].0, 429);
    assert_eq!(attempts[1].0, 200);
    let gap = attempts[1].1.at - attempts[0].1.at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(5), "retried after {gap:?}");
    assert_eq!(rx.received()[0].header("ce-id"), Some("slow-1"));
    assert!(wait_until(Duration::from_secs(5), || redis.xlen(STREAM) == 0).await);
    assert_eq!(redis.xlen(DLQ), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_are_bounded_then_dead_lettered() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(500);
    let text = config(&rx, "retry: {max_attempts: 3, initial: 100ms, max: 200ms}");
    let gw = Gateway::start(&redis, &text).await;
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), &text);
    assert_eq!(post_batch(&gw, "orders", "e", 5).await, 202);
    assert!(wait_until(Duration::from_secs(10), || redis.xlen(DLQ) == 5).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.attempts().len(), 15, "3 attempts each");
    assert_eq!(redis.xlen(STREAM), 0);
    let (code, out, err) = dlq(&redis, &file, &with_target("list", &[]));
    assert_eq!(code, 0, "{err}");
    let mut ids: Vec<&str> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f[2..], ["attempts exhausted", "3"], "{l}");
            f[1]
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4"]);

    // Purge one, then all.
    let first = out.lines().next().unwrap().split('\t').next().unwrap();
    assert_eq!(
        dlq(&redis, &file, &with_target("purge", &["--id", first])).0,
        0
    );
    assert_eq!(redis.xlen(DLQ), 4);
    let (code, out, _) = dlq(&redis, &file, &with_target("purge", &["--all"]));
    assert_eq!((code, out.trim()), (0, "4 purged"));
    assert_eq!(redis.xlen(DLQ), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_carry_a_verifiable_standard_webhooks_signature() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let key = b"sluice-signing-test-key-0123456789";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("signing-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let gw = Gateway::start(
        &redis,
        &config(
            &rx,
            &format!("signing: {{secret: \"file:{}\"}}", secret_file.display()),
        ),
    )
    .await;
    let body = structured_event("signed-1", "t", r#"{"amount": 12.50, "x": "é"}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let got = &rx.received()[0];

    let id = got.header("webhook-id").unwrap();
    assert_eq!(id, "signed-1");
    assert_eq!(got.header("ce-id"), Some("signed-1"));
    let ts: i64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 60, "timestamp {ts}, now {now}");
    // The receiver's own computation over the exact bytes it got.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&got.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let header = got.header("webhook-signature").unwrap();
    assert!(
        header.split(' ').any(|s| s == expected),
        "{header} != {expected}"
    );
    assert_eq!(got.body, r#"{"amount": 12.50, "x": "é"}"#.as_bytes());
}

/// If the dead-letter stream cannot be written (here: its key holds a string), the entry
/// stays pending in the target stream; once the key is fixed it reaches the DLQ. Nothing
/// is acknowledged before the event is safely stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_dead_letter_write_loses_nothing() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(400);
    let mut conn = redis.conn();
    redis::cmd("SET")
        .arg(DLQ)
        .arg("not a stream")
        .query::<()>(&mut conn)
        .unwrap();
    let text = config(&rx, "retry: {max_attempts: 3, initial: 100ms, max: 200ms}");
    let gw = Gateway::start(&redis, &text).await;
    let body = structured_event("stuck-1", "t", r#"{"n":1}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.attempts().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(redis.xlen(STREAM), 1, "still in the target stream");
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg("dispatch")
        .query(&mut conn)
        .unwrap();
    assert!(
        matches!(&pending, redis::Value::Array(v) if v.first() == Some(&redis::Value::Int(1))),
        "still pending: {pending:?}"
    );
    redis::cmd("DEL").arg(DLQ).query::<()>(&mut conn).unwrap();
    assert!(wait_until(Duration::from_secs(15), || redis.xlen(DLQ) == 1).await);
    assert_eq!(redis.xlen(STREAM), 0);
    assert_eq!(rx.attempts().len(), 1, "a 400 is not retried");
}

const DELAY: &str = "sluice:{orders}:delay:all:rx";
const DELAYED: &str = "sluice:{orders}:delayed:all:rx";

fn zcard(redis: &Redis, key: &str) -> usize {
    redis::cmd("ZCARD")
        .arg(key)
        .query(&mut redis.conn())
        .unwrap()
}

fn hlen(redis: &Redis, key: &str) -> usize {
    redis::cmd("HLEN")
        .arg(key)
        .query(&mut redis.conn())
        .unwrap()
}

/// A waiting retry sits in the delay set, not in a delivery slot: with `concurrency: 1`,
/// an event sent after a failed one is delivered before the failed one's retry.
#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_retry_does_not_block_the_target() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_id_with("A", 500);
    let text = config(
        &rx,
        "concurrency: 1, retry: {max_attempts: 5, initial: 2s, max: 2s}",
    );
    let _gw = Gateway::start(&redis, &text).await;
    let a = structured_event("A", "t", "{}");
    assert_eq!(post_structured(&_gw, "orders", &a).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.attempts().len() == 1).await);
    assert!(wait_until(Duration::from_secs(2), || zcard(&redis, DELAY) == 1).await);
    assert_eq!(hlen(&redis, DELAYED), 1);
    assert_eq!(redis.xlen(STREAM), 0, "a waiting retry leaves the stream");
    let b = structured_event("B", "t", "{}");
    assert_eq!(post_structured(&_gw, "orders", &b).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    let attempts = rx.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[1].1.header("ce-id"), Some("B"));
    assert!(
        attempts[1].1.at - attempts[0].1.at < Duration::from_millis(1900),
        "B waited for A's retry"
    );
    rx.answer_id_with("A", 200);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    let attempts = rx.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(attempts[2].1.header("ce-id"), Some("A"));
    let gap = attempts[2].1.at - attempts[0].1.at;
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    assert!(wait_until(Duration::from_secs(5), || redis.xlen(STREAM) == 0).await);
    assert_eq!((zcard(&redis, DELAY), hlen(&redis, DELAYED)), (0, 0));
    assert_eq!(redis.xlen(DLQ), 0);
}

/// A retry scheduled in Redis survives a killed gateway, and its attempt count
/// continues: with `max_attempts: 2`, one failure before the kill and one after
/// dead-letter it with both attempts in its history.
#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_retry_survives_a_restart_and_keeps_its_attempt_count() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    rx.answer_with(500);
    let text = config(&rx, "retry: {max_attempts: 2, initial: 3s, max: 3s}");
    let mut gw = Gateway::start(&redis, &text).await;
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), &text);
    let body = structured_event("A", "t", r#"{"n":1}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || zcard(&redis, DELAY) == 1).await);
    gw.kill9();
    assert_eq!(rx.attempts().len(), 1);
    assert_eq!(redis.xlen(STREAM), 0);
    assert_eq!((zcard(&redis, DELAY), hlen(&redis, DELAYED)), (1, 1));
    gw.restart().await;
    assert!(wait_until(Duration::from_secs(15), || redis.xlen(DLQ) == 1).await);
    let attempts = rx.attempts();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    let gap = attempts[1].1.at - attempts[0].1.at;
    assert!(gap >= Duration::from_millis(2900), "retried after {gap:?}");
    let (code, out, err) = dlq(&redis, &file, &with_target("list", &[]));
    assert_eq!(code, 0, "{err}");
    let fields: Vec<&str> = out.trim_end().split('\t').collect();
    assert_eq!(fields[1..], ["A", "attempts exhausted", "2"], "{out}");
    let (code, out, err) = dlq(&redis, &file, &with_target("show", &["--id", fields[0]]));
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(shown["attempts"][0]["status"], 500);
    assert_eq!(shown["event"]["data"], serde_json::json!({"n": 1}));
    assert_eq!(redis.xlen(STREAM), 0);
    assert_eq!((zcard(&redis, DELAY), hlen(&redis, DELAYED)), (0, 0));

    // Redriven: a fresh attempt count, delivered with the same id.
    rx.answer_with(200);
    let (code, _, err) = dlq(&redis, &file, &with_target("redrive", &["--all"]));
    assert_eq!(code, 0, "{err}");
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    assert_eq!(rx.received()[0].header("ce-id"), Some("A"));
}

/// A replica whose entry was taken over (after a stall longer than `claim_idle`) must
/// not move it to the delay set: the ownership check reports the loss and changes
/// nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_delay_never_takes_an_entry_back() {
    use sluice::bus;
    let redis = Redis::start();
    let mut sync = redis.conn();
    let id: String = redis::cmd("XADD")
        .arg(STREAM)
        .arg("*")
        .arg("a")
        .arg("{}")
        .query(&mut sync)
        .unwrap();
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(STREAM)
        .arg("dispatch")
        .arg("0")
        .query::<()>(&mut sync)
        .unwrap();
    // Replica A reads it, replica B takes it over.
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("dispatch")
        .arg("A")
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query::<redis::Value>(&mut sync)
        .unwrap();
    redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg("dispatch")
        .arg("B")
        .arg(0)
        .arg(&id)
        .query::<redis::Value>(&mut sync)
        .unwrap();
    let mut conn = bus::connect(&redis.url).unwrap();
    let keys = bus::DelayKeys::new("orders", "all", "rx");
    let raw = bus::RawEntry::from_fields(vec![
        redis::Value::BulkString(b"a".to_vec()),
        redis::Value::BulkString(b"{}".to_vec()),
        redis::Value::BulkString(b"k".to_vec()),
        redis::Value::BulkString(b"b".to_vec()),
        redis::Value::BulkString(b"d".to_vec()),
        redis::Value::BulkString(vec![0, 0xff, 0x80, b'\n']),
    ])
    .unwrap();
    let delay = |consumer: &'static str| {
        let (mut conn, keys, raw, id) = (conn.clone(), keys.clone(), raw.clone(), id.clone());
        async move {
            bus::delay(
                &mut conn,
                &keys,
                "dispatch",
                consumer,
                &id,
                &raw,
                Duration::ZERO,
                1,
                1,
                "[]",
                None,
            )
            .await
            .unwrap()
        }
    };
    assert!(!delay("A").await, "A no longer owns it");
    assert_eq!((zcard(&redis, DELAY), redis.xlen(STREAM)), (0, 1));
    // B does: the entry moves to the delay set, and promoting puts it back, once.
    assert!(delay("B").await);
    assert_eq!((zcard(&redis, DELAY), redis.xlen(STREAM)), (1, 0));
    assert_eq!(bus::promote(&mut conn, &keys).await.unwrap(), 1);
    assert_eq!(bus::promote(&mut conn, &keys).await.unwrap(), 0);
    assert_eq!((zcard(&redis, DELAY), hlen(&redis, DELAYED)), (0, 0));
    let back: Vec<(String, Vec<redis::Value>)> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(&mut sync)
        .unwrap();
    assert_eq!(back.len(), 1);
    let raw = bus::RawEntry::from_fields(back[0].1.clone()).unwrap();
    assert_eq!(raw.attrs.as_ref(), b"{}");
    let data = raw.data.as_ref().map(|(_, d)| d.as_ref());
    assert_eq!(
        data,
        Some(&[0, 0xff, 0x80, b'\n'][..]),
        "binary data survives"
    );
    assert_eq!(
        (raw.born_ms, raw.failed, raw.history.as_deref()),
        (Some(1), 1, Some("[]"))
    );
}
