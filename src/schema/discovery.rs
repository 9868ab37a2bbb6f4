//! Schema discovery from live traffic, off the hot path: the gate hands a sample of the
//! events of buses with `discovery: on` (one in `discovery_sample`) to this task over a
//! bounded channel (`try_send`: a full queue drops samples, ingest never waits). The
//! task folds samples into a [`Shape`] per (`source`, `type`) and every
//! [`FLUSH_EVERY`] merges what it gathered into the shape kept in Redis; when the
//! schema the merged shape describes differs from the latest discovered version, it
//! stores a new version of `discovered.{source}.{type}-{hash}`.
//!
//! Replicas merge into the same shape: read, merge, then a compare-and-set that writes
//! only if the stored shape is still the one read (else read and merge again), so two
//! replicas flushing the same (source, type) at once lose neither's samples.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::Digest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::gate::Sample;
use super::infer::Shape;
use super::store::{self, Meta, StoredVersion};
use super::{Compatibility, Origin, SchemaFormat, VersionSpec};
use crate::bus::{within, BusError};

/// How often gathered samples are merged into Redis.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Compare-and-set attempts per merge (with a short random pause between them); a
/// merge that still loses keeps its samples for the next flush.
const MERGE_ATTEMPTS: usize = 16;

/// The name of the discovered schema of (source, type): `discovered.` + both, with
/// characters outside `[A-Za-z0-9._-]` replaced, then `-` and a short hash of the pair.
/// The hash is always there: the joined text alone is ambiguous (`("shop.order",
/// "paid")` and `("shop", "order.paid")` both read `shop.order.paid`).
pub fn discovered_name(source: &str, type_: &str) -> String {
    let clean: String = format!("{source}.{type_}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("discovered.{}", clean.trim_matches('_'));
    let hash = sha2::Sha256::digest(format!("{source}\n{type_}").as_bytes());
    name.truncate(120);
    name.push('-');
    name.push_str(&hex::encode(&hash[..4]));
    name
}

/// Runs until shutdown (then flushes once more).
pub async fn run(
    mut samples: mpsc::Receiver<Sample>,
    mut redis: ConnectionManager,
    shutdown: CancellationToken,
) {
    let mut gathered: HashMap<(String, String), Shape> = HashMap::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            sample = samples.recv() => match sample {
                Some(s) => match serde_json::from_slice(&s.data) {
                    Ok(value) => gathered.entry((s.source, s.type_)).or_default().add(&value),
                    Err(e) => debug!(error = %e, "discovery sample is not JSON; skipped"),
                },
                None => break,
            },
            _ = tick.tick() => flush(&mut redis, &mut gathered).await,
            _ = shutdown.cancelled() => break,
        }
    }
    flush(&mut redis, &mut gathered).await;
}

async fn flush(redis: &mut ConnectionManager, gathered: &mut HashMap<(String, String), Shape>) {
    for ((source, type_), shape) in std::mem::take(gathered) {
        match merge(redis, &source, &type_, &shape).await {
            Ok(true) => {}
            // Contended: kept for the next flush (samples gathered meanwhile fold in).
            Ok(false) => gathered.entry((source, type_)).or_default().merge(&shape),
            Err(e) => {
                warn!(%source, %type_, error = %e, "storing a discovered schema failed; samples dropped")
            }
        }
    }
}

/// Merges `delta` into the stored shape of (source, type) and stores a new discovered
/// version when the schema it describes changed. Safe to run from many replicas at once;
/// false (nothing written) when other writers kept changing the shape meanwhile.
pub async fn merge(
    redis: &mut ConnectionManager,
    source: &str,
    type_: &str,
    delta: &Shape,
) -> Result<bool, BusError> {
    // Writes ARGV[2] only if the key still holds ARGV[1] ('' = absent).
    static SET_IF: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r#"
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#,
        )
    });
    let name = discovered_name(source, type_);
    let mut attempt = 0;
    let (merged, len, last) = loop {
        attempt += 1;
        let (shape, len, last): (Option<String>, usize, Option<String>) = within(
            redis::pipe()
                .cmd("GET")
                .arg(store::shape_key(&name))
                .cmd("LLEN")
                .arg(store::versions_key(&name))
                .cmd("LINDEX")
                .arg(store::versions_key(&name))
                .arg(-1)
                .query_async(redis),
        )
        .await?;
        let mut merged: Shape = shape
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        merged.merge(delta);
        let written: i64 = within(
            SET_IF
                .key(store::shape_key(&name))
                .arg(shape.unwrap_or_default())
                .arg(serde_json::to_string(&merged).expect("a shape serialises"))
                .invoke_async(redis),
        )
        .await?;
        if written == 1 {
            break (merged, len, last);
        }
        if attempt == MERGE_ATTEMPTS {
            debug!(schema = %name, "discovered shape kept changing under this replica");
            return Ok(false);
        }
        // Apart, so contending writers do not retry in step.
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 4000);
        tokio::time::sleep(Duration::from_micros(500 + u64::from(jitter))).await;
    };
    let schema = merged.to_schema();
    let last: Option<StoredVersion> = last.and_then(|l| serde_json::from_str(&l).ok());
    if last.as_ref().is_some_and(|l| l.spec.schema == schema) {
        return Ok(true);
    }
    let version = StoredVersion {
        version: len as u32 + 1,
        spec: VersionSpec {
            format: SchemaFormat::Jsonschema,
            schema,
            document: None,
            component: None,
            dataschema: None,
        },
        created: chrono::Utc::now().timestamp_millis().max(0) as u64,
    };
    let meta = Meta {
        origin: Origin::Discovered,
        compatibility: Compatibility::None,
        discovered: Some((source.to_string(), type_.to_string())),
    };
    if store::append(redis, &name, &meta, len, &version).await? {
        info!(schema = %name, version = version.version, samples = merged.samples, "discovered schema version stored");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = discovered_name("shop", "order.paid");
        assert!(n.starts_with("discovered.shop.order.paid-"), "{n}");
        assert_ne!(n, discovered_name("shop.order", "paid"));
        let n = discovered_name("/shop/eu", "order.paid");
        assert!(n.starts_with("discovered.shop_eu.order.paid-"), "{n}");
        assert_ne!(n, discovered_name("_shop_eu", "order.paid"));
        assert!(crate::config::check_name(&n[..64.min(n.len())]).is_ok());
        let long = discovered_name(&"s".repeat(300), "t");
        assert!(long.len() <= 129, "{long}");
    }
}
