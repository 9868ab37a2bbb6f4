//! The Redis connector: a consumer group on a stream of another Redis (another team's
//! bus, a Redis that an IDC application writes to), appended to a Sluice bus.
//!
//! Each replica is a consumer of the group (`group`, default `sluice`), named after the
//! replica, so replicas share the stream. A loop: `XREADGROUP COUNT batch BLOCK block`,
//! one [`Intake::append`], then one `XACK` of the batch: an entry is acknowledged only
//! once it is in the bus. Entries left pending by a replica that died are taken over
//! with `XAUTOCLAIM` once idle for `claim_idle`; the dedupe window keeps the ones that
//! were appended before the crash from being appended twice.
//!
//! An entry is read like an HTTP request (docs/connectors/redis.md): its `data` field
//! is the body, the other fields are headers. `content-type:
//! application/cloudevents+json` is the structured mode; `ce-*` fields are the binary
//! mode's attributes (the Redis target writes both shapes); any other entry becomes an
//! event of type `sluice.redis.entry` with the entry id (`{stream}/{id}`) as its id and
//! its fields as a JSON object (or its `data` field alone) as data.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimOptions, StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Intake;
use crate::config::value::opt_duration;
use crate::config::Errors;
use crate::event::cloudevents;
use crate::event::{is_json_media_type, is_text_media_type, Data, DataKind, EncodedEvent};

/// `kind: redis`: the stream to consume.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSourceConfig {
    /// The other Redis (`redis://`, `rediss://`, as `redis:` of the gateway).
    pub url: String,
    /// The stream key.
    pub stream: String,
    /// The consumer group, created at the stream's end (`$`) if missing. Default `sluice`.
    #[serde(default)]
    pub group: Option<String>,
    /// Entries per read. Default 100.
    #[serde(default)]
    pub batch: Option<usize>,
    /// How long one read waits for entries. Default 2s.
    #[serde(default, deserialize_with = "opt_duration")]
    pub block: Option<Duration>,
    /// Entries pending this long on another consumer are taken over. Default 60s.
    #[serde(default, deserialize_with = "opt_duration")]
    pub claim_idle: Option<Duration>,
}

impl RedisSourceConfig {
    /// Checks the fields (`at`: the connector's path, e.g. `connectors[0]`).
    pub fn check(&self, at: &str, errors: &mut Errors) {
        if crate::bus::redis_url::client(&self.url).is_err() {
            errors.at(
                format!("{at}.url"),
                "must be a Redis URL: redis://HOST:PORT or rediss://HOST:PORT",
            );
        }
        if self.stream.is_empty() {
            errors.at(format!("{at}.stream"), "must be a stream key");
        }
        if self.group.as_deref() == Some("") {
            errors.at(format!("{at}.group"), "must be non-empty");
        }
        if self.batch.is_some_and(|b| !(1..=10_000).contains(&b)) {
            errors.at(format!("{at}.batch"), "must be 1 to 10000");
        }
        if self
            .block
            .is_some_and(|b| b.is_zero() || b > Duration::from_secs(60))
        {
            errors.at(format!("{at}.block"), "must be 1ms to 60s");
        }
        if self
            .claim_idle
            .is_some_and(|c| c < Duration::from_millis(100))
        {
            errors.at(format!("{at}.claim_idle"), "must be at least 100ms");
        }
    }
}

/// Settled values of one connector.
struct Stream {
    key: String,
    group: String,
    consumer: String,
    batch: usize,
    block: Duration,
    claim_idle: Duration,
}

/// Consumes the stream until `shutdown`.
pub async fn run(config: RedisSourceConfig, mut intake: Intake, shutdown: CancellationToken) {
    let s = Stream {
        key: config.stream.clone(),
        group: config.group.clone().unwrap_or_else(|| "sluice".into()),
        consumer: intake.replica().to_string(),
        batch: config.batch.unwrap_or(100),
        block: config.block.unwrap_or(Duration::from_secs(2)),
        claim_idle: config.claim_idle.unwrap_or(Duration::from_secs(60)),
    };
    let mut conn = match crate::bus::connect_blocking(&config.url, s.block) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "invalid Redis URL; the connector does not run");
            return;
        }
    };
    info!(stream = %s.key, group = %s.group, bus = %intake.bus(), "Redis connector started");
    let mut failures = 0u32;
    let mut group_ready = false;
    // Own pending entries first (a task of this process that stopped), then new ones;
    // entries of dead consumers are claimed every `claim_idle`.
    let mut next_claim = tokio::time::Instant::now();
    while !shutdown.is_cancelled() {
        let step = async {
            if !group_ready {
                ensure_group(&mut conn, &s).await?;
                group_ready = true;
            }
            let mut entries = Vec::new();
            if tokio::time::Instant::now() >= next_claim {
                next_claim = tokio::time::Instant::now() + s.claim_idle;
                entries = claim(&mut conn, &s).await?;
            }
            if entries.is_empty() {
                entries = read(&mut conn, &s).await?;
            }
            Ok::<_, redis::RedisError>(entries)
        };
        let entries = tokio::select! {
            r = step => r,
            _ = shutdown.cancelled() => break,
        };
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    group_ready = false;
                }
                failures += 1;
                warn!(error = %e, "reading the Redis stream failed; retrying");
                super::pause(failures, &shutdown).await;
                continue;
            }
        };
        failures = 0;
        if entries.is_empty() {
            continue;
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
        let mut events = Vec::with_capacity(entries.len());
        let mut invalid = 0;
        for entry in &entries {
            match event(&s.key, entry) {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    // Acknowledged with the rest: it stays in the stream for inspection.
                    invalid += 1;
                    warn!(entry = %entry.id, field = %e.field, reason = %e.message, "Redis entry is an invalid CloudEvent; skipped (it stays in the stream)");
                }
            }
        }
        intake.invalid(invalid);
        match intake.append(events).await {
            Ok(done) => {
                debug!(
                    read = ids.len(),
                    appended = done.appended,
                    "Redis entries appended"
                );
                let acked: Result<usize, _> = conn.xack(&s.key, &s.group, &ids).await;
                if let Err(e) = acked {
                    // Still pending: claimed again later, and deduplicated.
                    warn!(error = %e, "acknowledging Redis entries failed; they will be read again");
                }
            }
            Err(e) => {
                failures += 1;
                warn!(error = %e, "appending Redis entries failed; they stay pending");
                // Read again from this consumer's pending list: the next claim takes
                // them over at once.
                next_claim = tokio::time::Instant::now();
                super::pause(failures, &shutdown).await;
            }
        }
    }
    info!("Redis connector stopped");
}

async fn ensure_group(conn: &mut ConnectionManager, s: &Stream) -> Result<(), redis::RedisError> {
    let created: Result<(), _> = conn.xgroup_create_mkstream(&s.key, &s.group, "$").await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
        _ => Ok(()),
    }
}

async fn read(
    conn: &mut ConnectionManager,
    s: &Stream,
) -> Result<Vec<StreamId>, redis::RedisError> {
    let options = StreamReadOptions::default()
        .group(&s.group, &s.consumer)
        .count(s.batch)
        .block(s.block.as_millis() as usize);
    let reply: Option<StreamReadReply> = conn.xread_options(&[&s.key], &[">"], &options).await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default())
}

/// Entries idle for `claim_idle` on any consumer, this one's own included (what a
/// failed append left, or a replica that died), oldest first.
async fn claim(
    conn: &mut ConnectionManager,
    s: &Stream,
) -> Result<Vec<StreamId>, redis::RedisError> {
    let options = StreamAutoClaimOptions::default().count(s.batch);
    let reply: redis::streams::StreamAutoClaimReply = conn
        .xautoclaim_options(
            &s.key,
            &s.group,
            &s.consumer,
            s.claim_idle.as_millis() as u64,
            "0-0",
            options,
        )
        .await?;
    Ok(reply.claimed)
}

fn text(value: &redis::Value) -> Option<Cow<'_, str>> {
    match value {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b)),
        redis::Value::SimpleString(s) => Some(Cow::Borrowed(s)),
        redis::Value::Int(i) => Some(Cow::Owned(i.to_string())),
        _ => None,
    }
}

fn bytes(value: &redis::Value) -> Bytes {
    match value {
        redis::Value::BulkString(b) => Bytes::copy_from_slice(b),
        other => Bytes::from(text(other).unwrap_or_default().into_owned()),
    }
}

/// The event of one entry (see the module docs).
fn event(stream: &str, entry: &StreamId) -> Result<EncodedEvent, cloudevents::FieldError> {
    let content_type = entry.map.get("content-type").and_then(text);
    let body = entry.map.get("data").map(bytes).unwrap_or_default();
    if content_type
        .as_deref()
        .is_some_and(cloudevents::is_structured)
    {
        return cloudevents::parse_structured(&body);
    }
    let mut attrs: Vec<(&str, Cow<str>)> = Vec::new();
    for (name, value) in &entry.map {
        if let (Some(attr), Some(v)) = (name.strip_prefix("ce-"), text(value)) {
            attrs.push((attr, v));
        }
    }
    if !attrs.is_empty() {
        return cloudevents::parse_attributes(attrs, content_type.as_deref(), body);
    }
    Ok(plain(stream, entry, content_type.as_deref(), body))
}

/// An entry that is no CloudEvent: type `sluice.redis.entry`, id `{stream}/{entry id}`.
fn plain(stream: &str, entry: &StreamId, content_type: Option<&str>, body: Bytes) -> EncodedEvent {
    let id = format!("{stream}/{}", entry.id);
    let (kind, media, bytes) = if entry.map.contains_key("data") {
        match content_type {
            Some(ct)
                if is_json_media_type(ct)
                    && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() =>
            {
                (DataKind::Json, ct.to_string(), body)
            }
            Some(ct) if is_text_media_type(ct) && std::str::from_utf8(&body).is_ok() => {
                (DataKind::Text, ct.to_string(), body)
            }
            Some(ct) => (DataKind::Binary, ct.to_string(), body),
            None if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() => {
                (DataKind::Json, "application/json".into(), body)
            }
            None => (DataKind::Binary, "application/octet-stream".into(), body),
        }
    } else {
        // The fields themselves, as a JSON object (sorted, so the data is stable).
        let fields: std::collections::BTreeMap<&str, String> = entry
            .map
            .iter()
            .map(|(k, v)| (k.as_str(), text(v).unwrap_or_default().into_owned()))
            .collect();
        let json = serde_json::to_vec(&fields).expect("a map of strings serialises");
        (DataKind::Json, "application/json".into(), Bytes::from(json))
    };
    let mut attrs = Map::new();
    attrs.insert("specversion".into(), "1.0".into());
    attrs.insert("id".into(), Value::from(id.clone()));
    attrs.insert("source".into(), Value::from(format!("redis:{stream}")));
    attrs.insert("type".into(), "sluice.redis.entry".into());
    attrs.insert("datacontenttype".into(), Value::from(media));
    EncodedEvent {
        id,
        attrs: serde_json::to_vec(&attrs).expect("a JSON map always serialises"),
        data: Some(Data { kind, bytes }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &[u8])]) -> StreamId {
        StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| (k.to_string(), redis::Value::BulkString(v.to_vec())))
                .collect(),
            ..StreamId::default()
        }
    }

    #[test]
    fn entries_map_like_http_requests() {
        let binary = event(
            "s",
            &entry(&[
                ("ce-specversion", b"1.0"),
                ("ce-id", b"e1"),
                ("ce-source", b"/x"),
                ("ce-type", b"t"),
                ("content-type", b"application/json"),
                ("data", br#"{"a":1}"#),
            ]),
        )
        .unwrap();
        assert_eq!(binary.id, "e1");
        assert_eq!(binary.data.unwrap().bytes.as_ref(), br#"{"a":1}"#);

        let structured = event(
            "s",
            &entry(&[
                (
                    "content-type",
                    b"application/cloudevents+json; charset=utf-8",
                ),
                (
                    "data",
                    br#"{"specversion":"1.0","id":"e2","source":"/x","type":"t"}"#,
                ),
            ]),
        )
        .unwrap();
        assert_eq!(structured.id, "e2");

        let plain = event("s", &entry(&[("order", b"7")])).unwrap();
        assert_eq!(plain.id, "s/1-0");
        assert_eq!(plain.data.unwrap().bytes.as_ref(), br#"{"order":"7"}"#);

        let bad = event("s", &entry(&[("ce-id", b"e3")])).unwrap_err();
        assert!(!bad.message.is_empty());
    }
}
