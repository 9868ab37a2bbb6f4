//! The SQL connectors against the machine's PostgreSQL (db `test`, user postgres) and
//! MariaDB (db `test`, root), driven with `sqlx`: the `postgres-outbox` source (both
//! table layouts, plain rows, invalid rows, order per aggregate with two gateways, kill
//! -9 mid-flow, a database outage) and the `postgres` / `mysql` row targets (columns
//! from JSONPaths, insert vs upsert on a repeat, schema errors to the DLQ, kill -9
//! mid-flow, an outage). Outages are a TCP proxy inside the test between the gateway
//! and the database, cut and restored: the shared servers are never stopped. Every
//! table has a random suffix and is dropped at the end (also when a test fails).

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, post_structured, wait_until, Gateway, Redis};
use serde_json::{json, Map, Value};
use sluice::bus::RawEntry;
use sluice::event::Event;
use sqlx::Row;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const MY: &str = "mysql://root@127.0.0.1:3306/test";

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// Drops the tables it names when the test ends, however it ends.
struct Tables {
    postgres: Vec<String>,
    mysql: Vec<String>,
}

impl Drop for Tables {
    fn drop(&mut self) {
        for t in &self.postgres {
            let _ = Command::new("psql")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-c",
                ])
                .arg(format!("DROP TABLE IF EXISTS {t}"))
                .status();
        }
        for t in &self.mysql {
            let _ = Command::new("mysql")
                .args(["-h", "127.0.0.1", "-uroot", "test", "-e"])
                .arg(format!("DROP TABLE IF EXISTS {t}"))
                .status();
        }
    }
}

async fn pg() -> sqlx::PgPool {
    sqlx::PgPool::connect(PG).await.unwrap()
}

async fn my() -> sqlx::MySqlPool {
    sqlx::MySqlPool::connect(MY).await.unwrap()
}

/// Polls the async `cond` every 50 ms until it holds or `limit` passes.
async fn eventually<F: Future<Output = bool>>(
    limit: Duration,
    mut cond: impl FnMut() -> F,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond().await
}

/// The events of a bus stream, decoded, in stream order.
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

/// The dead-letter entries of a target.
fn dlq(redis: &Redis, bus: &str, rule: &str, target: &str) -> Vec<HashMap<String, String>> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(sluice::bus::dlq_key(bus, rule, target))
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    entries.into_iter().map(|(_, f)| f).collect()
}

/// Attributes without the trace attributes the gateway adds (`sluicepath`, ...).
fn without_trace(attrs: &Map<String, Value>) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| !k.starts_with("sluice"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// A TCP proxy between the gateway and a database, to cut and restore.
struct Proxy {
    port: u16,
    upstream: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let proxy = Proxy {
            port: free_port(),
            upstream,
            tasks: Arc::default(),
        };
        proxy.open().await;
        proxy
    }

    async fn open(&self) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        let listener = loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(addr).and_then(|()| socket.listen(128)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(start.elapsed() < Duration::from_secs(5), "rebind: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut up).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes every connection and stops listening (connections are refused).
    async fn cut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().iter() {
            t.abort();
        }
    }
}

// ---------------------------------------------------------------------------------
// postgres-outbox: the source
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_in_both_layouts_arrive_as_events_with_the_same_bytes() {
    let s = suffix();
    let (ts, tb) = (format!("ob_s_{s}"), format!("ob_b_{s}"));
    let _tables = Tables {
        postgres: vec![ts.clone(), tb.clone()],
        mysql: vec![],
    };
    let db = pg().await;
    sqlx::query(&format!(
        "CREATE TABLE {ts} (id bigserial primary key, aggregate text, event json)"
    ))
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE {tb} (id bigserial primary key, aggregate text, attributes json, content_type text, data bytea)"
    ))
    .execute(&db)
    .await
    .unwrap();

    // Structured: the CloudEvents JSON format in `event` (JSON, text, binary data), a
    // plain JSON row and one that claims to be a CloudEvent but lacks `source`/`type`.
    let structured = [
        r#"{"specversion":"1.0","id":"s-json","source":"/orders","type":"order.created","subject":"o-1","time":"2026-12-03T10:00:00Z","datacontenttype":"application/json","traceparent":"00-abc-def-01","data":{"order": {"id":"o-1","total":42.50}}}"#,
        r#"{"specversion":"1.0","id":"s-text","source":"/orders","type":"order.note","datacontenttype":"text/plain","data":"hello, outbox"}"#,
        r#"{"specversion":"1.0","id":"s-bin","source":"/orders","type":"order.blob","datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#,
        r#"{"note": "not a cloudevent", "n": 1.50}"#,
        r#"{"specversion":"1.0","id":"s-invalid"}"#,
    ];
    let mut plain_row_id = 0i64;
    for (i, e) in structured.iter().enumerate() {
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO {ts} (aggregate, event) VALUES ('o-1', $1::json) RETURNING id"
        ))
        .bind(e)
        .fetch_one(&db)
        .await
        .unwrap();
        if i == 3 {
            plain_row_id = id;
        }
    }
    // Binary: attributes as a JSON object, the data as bytes.
    let binary: [(Option<Value>, Option<&str>, &[u8]); 4] = [
        (
            Some(
                json!({"specversion":"1.0","id":"b-json","source":"/orders","type":"order.created","subject":"o-2","priority":3}),
            ),
            Some("application/json"),
            br#"{"order": {"total": 7}}"#,
        ),
        (
            Some(json!({"specversion":"1.0","id":"b-text","source":"/orders","type":"order.note"})),
            Some("text/plain; charset=utf-8"),
            b"hi there",
        ),
        (
            Some(json!({"specversion":"1.0","id":"b-bin","source":"/orders","type":"order.blob"})),
            Some("application/octet-stream"),
            &[0, 1, 255, 0],
        ),
        (None, Some("text/plain"), b"plain text row"),
    ];
    let mut plain_bin_id = 0i64;
    for (i, (a, ct, data)) in binary.iter().enumerate() {
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO {tb} (aggregate, attributes, content_type, data) VALUES ('o-2', $1::json, $2, $3) RETURNING id"
        ))
        .bind(a.as_ref().map(|a| a.to_string()))
        .bind(ct)
        .bind(data.to_vec())
        .fetch_one(&db)
        .await
        .unwrap();
        if i == 3 {
            plain_bin_id = id;
        }
    }

    let redis = Redis::start();
    let gw = Gateway::start(
        &redis,
        &format!(
            r#"
buses: [{{name: orders}}]
connectors:
  - {{name: ob-s, kind: postgres-outbox, bus: orders, url: "{PG}", table: {ts}, poll: 50ms}}
  - {{name: ob-b, kind: postgres-outbox, bus: orders, url: "{PG}", table: {tb}, layout: binary, poll: 50ms}}
"#
        ),
    )
    .await;
    assert!(
        wait_until(Duration::from_secs(15), || bus_events(&redis, "orders")
            .len()
            >= 8)
        .await,
        "{}",
        gw.logs()
    );
    // The rows are gone once appended, the invalid one too.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {ts}"))
                .fetch_one(&db)
                .await
                .unwrap();
            let m: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {tb}"))
                .fetch_one(&db)
                .await
                .unwrap();
            n == 0 && m == 0
        })
        .await
    );
    let events = bus_events(&redis, "orders");
    assert_eq!(events.len(), 8, "{events:?}");
    let by_id: HashMap<String, &Event> = events
        .iter()
        .map(|e| (format!("{}|{}", e.attr_str("source").unwrap(), e.id()), e))
        .collect();
    let get = |source: &str, id: &str| -> &Event {
        by_id
            .get(&format!("{source}|{id}"))
            .unwrap_or_else(|| panic!("no event {id} from {source}: {events:?}"))
    };

    let e = get("/orders", "s-json");
    assert_eq!(
        without_trace(&e.attrs),
        attrs(
            json!({"specversion":"1.0","id":"s-json","source":"/orders","type":"order.created","subject":"o-1","time":"2026-12-03T10:00:00Z","datacontenttype":"application/json","traceparent":"00-abc-def-01"})
        )
    );
    assert_eq!(
        &e.data.as_ref().unwrap().bytes[..],
        br#"{"order": {"id":"o-1","total":42.50}}"#
    );
    let e = get("/orders", "s-text");
    assert_eq!(e.attr_str("datacontenttype"), Some("text/plain"));
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], b"hello, outbox");
    let e = get("/orders", "s-bin");
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], &[0, 1, 2, 255]);

    let e = get("/orders", "b-json");
    assert_eq!(
        without_trace(&e.attrs),
        attrs(
            json!({"specversion":"1.0","id":"b-json","source":"/orders","type":"order.created","subject":"o-2","priority":"3","datacontenttype":"application/json"})
        )
    );
    assert_eq!(
        &e.data.as_ref().unwrap().bytes[..],
        br#"{"order": {"total": 7}}"#
    );
    let e = get("/orders", "b-text");
    assert_eq!(
        e.attr_str("datacontenttype"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], b"hi there");
    let e = get("/orders", "b-bin");
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], &[0, 1, 255, 0]);

    // Plain rows become the documented event: id = the row id, source names the
    // database and table, type sluice.postgres.outbox, data = the bytes.
    let source = format!("postgres://127.0.0.1:5432/test/{ts}");
    let e = get(&source, &plain_row_id.to_string());
    assert_eq!(
        without_trace(&e.attrs),
        attrs(
            json!({"specversion":"1.0","id":plain_row_id.to_string(),"source":source,"type":"sluice.postgres.outbox","datacontenttype":"application/json"})
        )
    );
    assert_eq!(
        &e.data.as_ref().unwrap().bytes[..],
        br#"{"note": "not a cloudevent", "n": 1.50}"#
    );
    let source = format!("postgres://127.0.0.1:5432/test/{tb}");
    let e = get(&source, &plain_bin_id.to_string());
    assert_eq!(e.attr_str("type"), Some("sluice.postgres.outbox"));
    assert_eq!(e.attr_str("datacontenttype"), Some("text/plain"));
    assert_eq!(&e.data.as_ref().unwrap().bytes[..], b"plain text row");

    // The invalid row was counted, not appended.
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("connector=\"ob-s\"")
            && l.contains("outcome=\"invalid\"")
            && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// Inserts `n` rows for `keys` aggregates round-robin, `per_tx` rows a transaction;
/// event ids `{prefix}{i}`, data `{"key": k, "seq": i}`.
async fn insert_outbox(
    db: &sqlx::PgPool,
    table: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
    keys: usize,
    per_tx: usize,
) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(per_tx) {
        let mut tx = db.begin().await.unwrap();
        for i in chunk {
            let key = format!("k{}", i % keys);
            let event = json!({"specversion":"1.0","id":format!("{prefix}{i}"),"source":"/shop","type":"order.step","subject":key,"datacontenttype":"application/json","data":{"key":key,"seq":i}});
            sqlx::query(&format!(
                "INSERT INTO {table} (aggregate, event) VALUES ($1, $2::json)"
            ))
            .bind(&key)
            .bind(event.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

fn outbox_config(table: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
connectors:
  - {{name: ob, kind: postgres-outbox, bus: orders, url: "{url}", table: {table}, poll: 50ms{extra}}}
"#
    )
}

/// (event id, key, seq) of each bus event, in stream order.
fn steps(redis: &Redis) -> Vec<(String, String, u64)> {
    bus_events(redis, "orders")
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_slice(&e.data.as_ref().unwrap().bytes).unwrap();
            (
                e.id().to_string(),
                data["key"].as_str().unwrap().to_string(),
                data["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_keep_the_order_of_each_aggregate_and_append_each_row_once() {
    let table = format!("ob_o_{}", suffix());
    let _tables = Tables {
        postgres: vec![table.clone()],
        mysql: vec![],
    };
    let db = pg().await;
    sqlx::query(&format!(
        "CREATE TABLE {table} (id bigserial primary key, aggregate text, event json)"
    ))
    .execute(&db)
    .await
    .unwrap();
    let redis = Redis::start();
    let config = outbox_config(&table, PG, ", batch: 7");
    let a = Gateway::start(&redis, &config).await;
    let b = Gateway::start(&redis, &config).await;
    // Written while both poll, in transactions of several aggregates each.
    let n = 600;
    insert_outbox(&db, &table, "o-", 0..n, 5, 3).await;
    assert!(
        wait_until(Duration::from_secs(30), || redis
            .xlen(&sluice::bus::bus_key("orders"))
            >= n)
        .await,
        "{}\n{}",
        a.logs(),
        b.logs()
    );
    let seen = steps(&redis);
    let ids: HashSet<&str> = seen.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(seen.len(), n, "duplicates in the bus");
    assert_eq!(ids.len(), n);
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, key, seq) in &seen {
        if let Some(prev) = last.insert(key, *seq) {
            assert!(prev < *seq, "key {key}: {seq} after {prev}");
        }
    }
    // Both replicas took part (the lock moves between them), neither logged a failure.
    let moved = |gw: &Gateway| gw.logs().matches("outbox rows moved").count();
    eprintln!("polls with rows: a {}, b {}", moved(&a), moved(&b));
    assert!(moved(&a) + moved(&b) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_on_the_channel_wakes_the_outbox_before_its_poll_interval() {
    let table = format!("ob_n_{}", suffix());
    let _tables = Tables {
        postgres: vec![table.clone()],
        mysql: vec![],
    };
    let db = pg().await;
    sqlx::query(&format!(
        "CREATE TABLE {table} (id bigserial primary key, aggregate text, event json)"
    ))
    .execute(&db)
    .await
    .unwrap();
    let channel = format!("ch_{}", suffix());
    let redis = Redis::start();
    let config = format!(
        r#"
buses: [{{name: orders}}]
connectors:
  - {{name: ob, kind: postgres-outbox, bus: orders, url: "{PG}", table: {table}, poll: 1h, notify: {channel}}}
"#
    );
    let gw = Gateway::start(&redis, &config).await;
    let key = sluice::bus::bus_key("orders");
    // The first poll ran at start; the connector now waits up to an hour, or a NOTIFY.
    // (Its LISTEN starts with that wait: give it a moment, then notify until it is heard.)
    insert_outbox(&db, &table, "n-", 0..3, 1, 3).await;
    let heard = eventually(Duration::from_secs(10), || async {
        sqlx::query(&format!("NOTIFY {channel}"))
            .execute(&db)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        redis.xlen(&key) == 3
    })
    .await;
    assert!(heard, "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_kill_9_mid_flow_loses_nothing_and_appends_each_row_once() {
    let table = format!("ob_k_{}", suffix());
    let _tables = Tables {
        postgres: vec![table.clone()],
        mysql: vec![],
    };
    let db = pg().await;
    sqlx::query(&format!(
        "CREATE TABLE {table} (id bigserial primary key, aggregate text, event json)"
    ))
    .execute(&db)
    .await
    .unwrap();
    let n = 3000;
    insert_outbox(&db, &table, "k-", 0..n, 4, 500).await;
    let redis = Redis::start();
    let mut gw = Gateway::start(&redis, &outbox_config(&table, PG, ", batch: 10")).await;
    let key = sluice::bus::bus_key("orders");
    assert!(wait_until(Duration::from_secs(20), || redis.xlen(&key) > 0).await);
    gw.kill9();
    let at_kill = redis.xlen(&key);
    eprintln!("killed with {at_kill} of {n} in the bus");
    assert!(
        at_kill < n,
        "everything arrived before the kill; kill earlier"
    );
    gw.restart().await;
    assert!(
        wait_until(Duration::from_secs(30), || redis.xlen(&key) >= n).await,
        "{}",
        gw.logs()
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            let left: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&db)
                .await
                .unwrap();
            left == 0
        })
        .await
    );
    let seen = steps(&redis);
    let ids: HashSet<&str> = seen.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), n);
    assert_eq!(seen.len(), n, "an event was appended twice");
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, key, seq) in &seen {
        if let Some(prev) = last.insert(key, *seq) {
            assert!(prev < *seq, "key {key}: {seq} after {prev}");
        }
    }
}

// ---------------------------------------------------------------------------------
// postgres / mysql: the row targets
// ---------------------------------------------------------------------------------

fn target_config(pg_table: &str, my_table: &str, pg_url: &str, my_url: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}]
delivery: {{claim_idle: 4s}}
rules:
  - name: rows
    bus: orders
    targets:
      - name: pg
        kind: postgres
        url: "{pg_url}"
        table: {pg_table}
        timeout: 2s
        concurrency: 16
        retry: {{initial: 100ms, max: 500ms}}
        columns: {{type: $.type, source: $.source, subject: $.subject, total: $.data.order.total, doc: $, happened: $.time, body: $.data}}
      - name: my
        kind: mysql
        url: "{my_url}"
        table: {my_table}
        mode: upsert
        timeout: 2s
        concurrency: 16
        retry: {{initial: 100ms, max: 500ms}}
        columns: {{type: $.type, source: $.source, subject: $.subject, total: $.data.order.total, doc: $, happened: $.time, body: $.data}}
"#
    )
}

async fn create_target_tables(pg_table: &str, my_table: &str) {
    sqlx::query(&format!(
        "CREATE TABLE {pg_table} (id text primary key, type text not null, source text, subject text, total numeric, doc jsonb, happened timestamptz, body text)"
    ))
    .execute(&pg().await)
    .await
    .unwrap();
    sqlx::query(&format!(
        "CREATE TABLE {my_table} (id varchar(100) primary key, type varchar(200) not null, source varchar(200), subject varchar(200), total decimal(12,2), doc json, happened varchar(64), body text)"
    ))
    .execute(&my().await)
    .await
    .unwrap();
}

/// (id, type, source, subject, total as text, doc, body) of every row.
type Written = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Value,
    Option<String>,
);

async fn pg_rows(table: &str) -> Vec<Written> {
    sqlx::query(&format!(
        "SELECT id, type, source, subject, total::text AS total, doc::text AS doc, body FROM {table} ORDER BY id"
    ))
    .fetch_all(&pg().await)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("id"),
            r.get("type"),
            r.get("source"),
            r.get("subject"),
            r.get("total"),
            serde_json::from_str(&r.get::<String, _>("doc")).unwrap(),
            r.get("body"),
        )
    })
    .collect()
}

async fn my_rows(table: &str) -> Vec<Written> {
    sqlx::query(&format!(
        "SELECT id, type, source, subject, CAST(total AS CHAR) AS total, CAST(doc AS CHAR) AS doc, body FROM {table} ORDER BY id"
    ))
    .fetch_all(&my().await)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("id"),
            r.get("type"),
            r.get("source"),
            r.get("subject"),
            r.get("total"),
            serde_json::from_str(&r.get::<String, _>("doc")).unwrap(),
            r.get("body"),
        )
    })
    .collect()
}

async fn count(pg_table: Option<&str>, my_table: Option<&str>) -> i64 {
    match (pg_table, my_table) {
        (Some(t), _) => sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&pg().await)
            .await
            .unwrap(),
        (_, Some(t)) => sqlx::query_scalar(&format!("SELECT count(*) FROM {t}"))
            .fetch_one(&my().await)
            .await
            .unwrap(),
        _ => 0,
    }
}

async fn post_binary(gw: &Gateway, id: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", "/shop")
        .header("ce-type", "order.paid")
        .header("ce-subject", "o-1")
        .header("ce-time", "2026-12-03T10:00:00Z")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_targets_write_each_event_once_and_dead_letter_schema_errors() {
    let s = suffix();
    let (pt, mt) = (format!("rows_{s}"), format!("rows_{s}"));
    let _tables = Tables {
        postgres: vec![pt.clone()],
        mysql: vec![mt.clone()],
    };
    create_target_tables(&pt, &mt).await;
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &target_config(&pt, &mt, PG, MY)).await;

    // Binary mode over HTTP, JSON data; structured mode, text data.
    assert_eq!(
        post_binary(&gw, "e-bin", r#"{"order":{"id":"o-1","total":42.5}}"#).await,
        202
    );
    let text_event = r#"{"specversion":"1.0","id":"e-text","source":"/shop","type":"order.note","datacontenttype":"text/plain","data":"hello rows"}"#;
    assert_eq!(post_structured(&gw, "orders", text_event).await, 202);
    // A total no numeric column takes: refused by both databases, to the DLQ.
    assert_eq!(
        post_binary(&gw, "e-bad", r#"{"order":{"id":"o-9","total":"lots"}}"#).await,
        202
    );

    let done = || async { count(Some(&pt), None).await == 2 && count(None, Some(&mt)).await == 2 };
    assert!(
        eventually(Duration::from_secs(15), done).await,
        "{}",
        gw.logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || dlq(
            &redis, "orders", "rows", "pg"
        )
        .len()
            == 1
            && dlq(&redis, "orders", "rows", "my").len() == 1)
        .await,
        "{}",
        gw.logs()
    );
    let pg_dead = &dlq(&redis, "orders", "rows", "pg")[0];
    assert!(
        pg_dead["reason"].contains("invalid input syntax for type numeric"),
        "{pg_dead:?}"
    );
    let my_dead = &dlq(&redis, "orders", "rows", "my")[0];
    assert!(
        my_dead["reason"].contains("Incorrect decimal value"),
        "{my_dead:?}"
    );

    let expected_bin_doc = json!({"specversion":"1.0","id":"e-bin","source":"/shop","type":"order.paid","subject":"o-1","time":"2026-12-03T10:00:00Z","datacontenttype":"application/json","data":{"order":{"id":"o-1","total":42.5}}});
    let expected_text_doc = json!({"specversion":"1.0","id":"e-text","source":"/shop","type":"order.note","datacontenttype":"text/plain","data":"hello rows"});
    for (db, rows) in [
        ("postgres", pg_rows(&pt).await),
        ("mysql", my_rows(&mt).await),
    ] {
        assert_eq!(rows.len(), 2, "{db}");
        let (id, ty, source, subject, total, doc, body) = &rows[0];
        assert_eq!((id.as_str(), ty.as_str()), ("e-bin", "order.paid"), "{db}");
        assert_eq!(source.as_deref(), Some("/shop"));
        assert_eq!(subject.as_deref(), Some("o-1"));
        assert!(
            total.as_deref().unwrap().starts_with("42.5"),
            "{db}: {total:?}"
        );
        // `$` is the event in the CloudEvents JSON format, this gateway in its trace.
        assert_eq!(
            Value::Object(without_trace(doc.as_object().unwrap())),
            expected_bin_doc,
            "{db}"
        );
        assert!(doc.get("sluicepath").is_some(), "{db}: {doc}");
        let body: Value = serde_json::from_str(body.as_deref().unwrap()).unwrap();
        assert_eq!(body, json!({"order":{"id":"o-1","total":42.5}}), "{db}");
        let (id, _, _, subject, total, doc, body) = &rows[1];
        assert_eq!(id, "e-text");
        assert_eq!((subject, total), (&None, &None), "{db}");
        assert_eq!(
            Value::Object(without_trace(doc.as_object().unwrap())),
            expected_text_doc,
            "{db}"
        );
        // Text data: `$.data` is the string, the column its characters.
        assert_eq!(body.as_deref(), Some("hello rows"), "{db}");
    }

    // The same ids again, with another total: postgres (insert) keeps the first row,
    // mysql (upsert) takes the new one. Still one row per id.
    assert_eq!(
        post_binary(&gw, "e-bin", r#"{"order":{"id":"o-1","total":99}}"#).await,
        202
    );
    assert_eq!(post_structured(&gw, "orders", text_event).await, 202);
    assert!(
        eventually(Duration::from_secs(15), || async {
            my_rows(&mt).await[0].4.as_deref() == Some("99.00")
        })
        .await,
        "{}",
        gw.logs()
    );
    // Postgres got its copy too (delivered again), and kept the first.
    assert!(
        wait_until(Duration::from_secs(10), || gw
            .logs()
            .matches(r#"target=pg event_id="e-bin" attempt=1"#)
            .count()
            == 2)
        .await,
        "{}",
        gw.logs()
    );
    assert_eq!(count(Some(&pt), None).await, 2);
    assert_eq!(count(None, Some(&mt)).await, 2);
    assert!(pg_rows(&pt).await[0]
        .4
        .as_deref()
        .unwrap()
        .starts_with("42.5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_targets_kill_9_mid_flow_write_every_event_exactly_once() {
    let s = suffix();
    let (pt, mt) = (format!("rows_k_{s}"), format!("rows_k_{s}"));
    let _tables = Tables {
        postgres: vec![pt.clone()],
        mysql: vec![mt.clone()],
    };
    create_target_tables(&pt, &mt).await;
    let redis = Redis::start();
    let mut gw = Gateway::start(&redis, &target_config(&pt, &mt, PG, MY)).await;
    let n = 1500;
    for chunk in 0..(n / 100) {
        let batch = format!(
            "[{}]",
            (chunk * 100..(chunk + 1) * 100)
                .map(|i| common::structured_event(
                    &format!("k{i:05}"),
                    "order.paid",
                    &format!(r#"{{"order":{{"total":{i}}}}}"#)
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let status = reqwest::Client::new()
            .post(gw.url("/buses/orders/events"))
            .header("content-type", "application/cloudevents-batch+json")
            .body(batch)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            count(Some(&pt), None).await > 0
        })
        .await
    );
    gw.kill9();
    let (p, m) = (count(Some(&pt), None).await, count(None, Some(&mt)).await);
    eprintln!("killed with {p} rows in postgres, {m} in mysql, of {n}");
    assert!(
        p < n as i64 || m < n as i64,
        "everything was written before the kill"
    );
    gw.restart().await;
    assert!(
        eventually(Duration::from_secs(40), || async {
            count(Some(&pt), None).await == n as i64 && count(None, Some(&mt)).await == n as i64
        })
        .await,
        "{}",
        gw.logs()
    );
    // Exactly once: one row per id (the key), each with its own event's total.
    for (db, rows) in [
        ("postgres", pg_rows(&pt).await),
        ("mysql", my_rows(&mt).await),
    ] {
        let ids: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(ids.len(), n, "{db}");
        for r in &rows {
            let i: u64 = r.0[1..].parse().unwrap();
            assert_eq!(
                r.4.as_deref()
                    .map(|t| t.split('.').next().unwrap().to_string()),
                Some(i.to_string()),
                "{db}"
            );
        }
    }
    assert!(dlq(&redis, "orders", "rows", "pg").is_empty());
    assert!(dlq(&redis, "orders", "rows", "my").is_empty());
}

// ---------------------------------------------------------------------------------
// Outages and configuration
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_recover_by_themselves_after_the_database_goes_away() {
    let s = suffix();
    let (ob, pt, mt) = (
        format!("ob_x_{s}"),
        format!("rows_x_{s}"),
        format!("rows_x_{s}"),
    );
    let _tables = Tables {
        postgres: vec![ob.clone(), pt.clone()],
        mysql: vec![mt.clone()],
    };
    let db = pg().await;
    sqlx::query(&format!(
        "CREATE TABLE {ob} (id bigserial primary key, aggregate text, event json)"
    ))
    .execute(&db)
    .await
    .unwrap();
    create_target_tables(&pt, &mt).await;
    let pg_proxy = Proxy::start(5432).await;
    let my_proxy = Proxy::start(3306).await;
    let pg_url = format!("postgres://postgres@127.0.0.1:{}/test", pg_proxy.port);
    let my_url = format!("mysql://root@127.0.0.1:{}/test", my_proxy.port);
    // The outbox feeds the bus, the bus feeds the row targets: one flow through both.
    let config = target_config(&pt, &mt, &pg_url, &my_url).replacen(
        "buses: [{name: orders}]",
        &format!(
            "buses: [{{name: orders}}]\nconnectors:\n  - {{name: ob, kind: postgres-outbox, bus: orders, url: \"{pg_url}\", table: {ob}, poll: 50ms}}"
        ),
        1,
    );
    let redis = Redis::start();
    let gw = Gateway::start(&redis, &config).await;
    insert_outbox(&db, &ob, "x-", 0..20, 2, 5).await;
    let all_in = |n: i64| {
        let (pt, mt) = (pt.clone(), mt.clone());
        move || {
            let (pt, mt) = (pt.clone(), mt.clone());
            async move { count(Some(&pt), None).await == n && count(None, Some(&mt)).await == n }
        }
    };
    assert!(
        eventually(Duration::from_secs(15), all_in(20)).await,
        "{}",
        gw.logs()
    );

    // The databases go away (every connection closed, new ones refused); rows are
    // written meanwhile.
    pg_proxy.cut().await;
    my_proxy.cut().await;
    insert_outbox(&db, &ob, "x-", 20..40, 2, 5).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        redis.xlen(&sluice::bus::bus_key("orders")),
        20,
        "nothing moves while cut"
    );
    pg_proxy.open().await;
    my_proxy.open().await;
    assert!(
        eventually(Duration::from_secs(30), all_in(40)).await,
        "{}",
        gw.logs()
    );
    assert_eq!(redis.xlen(&sluice::bus::bus_key("orders")), 40);
    assert!(
        gw.logs().contains("connecting again")
            || gw
                .logs()
                .contains("connecting to the outbox database failed")
    );
    assert!(dlq(&redis, "orders", "rows", "pg").is_empty());
    assert!(dlq(&redis, "orders", "rows", "my").is_empty());
}

#[test]
fn the_plan_names_what_is_wrong_with_a_sql_connector() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        r#"
buses: [{name: orders}]
connectors:
  - {name: a, kind: postgres-outbox, bus: orders, url: "mysql://x/y", table: "no-dash", batch: 0}
  - {name: b, kind: postgres-outbox, bus: orders, url: "postgres://u@h/db", layout: binary, columns: {a: $.id}}
rules:
  - name: r
    bus: orders
    targets:
      - {name: p, kind: postgres, url: "postgres://u@h/db", table: t, columns: {"bad col": $.id, total: "data.x"}, transform: {form: ORIGINAL}}
      - {name: m, kind: mysql, url: "postgres://u@h/db"}
"#,
    )
    .unwrap();
    let (code, _, stderr) = common::sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "connectors[0].url: must be a postgres:// URL",
        "connectors[0].table: must be `table` or `schema.table`",
        "connectors[0].batch: must be 1 to 10000 rows",
        "connectors[1].columns: unknown field `columns` of a postgres-outbox connector",
        "rules[0].targets[0].transform: a postgres target takes no transform",
        "rules[0].targets[0].columns.bad col: a column name is letters",
        "rules[0].targets[0].columns.total: a JSONPath starts with $",
        "rules[0].targets[1].url: must be a mysql:// URL",
        "rules[0].targets[1].table: a mysql target needs a table",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
