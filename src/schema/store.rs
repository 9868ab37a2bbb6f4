//! Schema versions kept in Redis: registered over HTTP, or discovered from traffic.
//! Config schemas are not stored (every replica reads them from its config), but a
//! version registered over HTTP under a config schema's name continues its numbering.
//!
//! Keys (the schema name in a hash tag, so a schema's keys live on one Cluster shard):
//! - `sluice:schemas:names` SET: every stored schema name.
//! - `sluice:schemas:{NAME}:versions` LIST: one JSON record per version, oldest first;
//!   the record's `version` is its number (config versions come first, so the list's
//!   first record may be number 3).
//! - `sluice:schemas:{NAME}:meta` HASH: `origin` (api | discovered), `compatibility`,
//!   and for discovered schemas `source` and `type`.
//! - `sluice:schemas:{NAME}:shape` STRING: discovery's merged summary of the samples.
//!
//! A version is appended by a script that checks the list still has the length the
//! compatibility check saw, so two replicas registering at once cannot both win.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::{Compatibility, Origin, VersionSpec};
use crate::bus::{within, BusError};

pub const NAMES: &str = "sluice:schemas:names";

pub fn versions_key(name: &str) -> String {
    format!("sluice:schemas:{{{name}}}:versions")
}

pub fn meta_key(name: &str) -> String {
    format!("sluice:schemas:{{{name}}}:meta")
}

pub fn shape_key(name: &str) -> String {
    format!("sluice:schemas:{{{name}}}:shape")
}

/// One stored version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub version: u32,
    #[serde(flatten)]
    pub spec: VersionSpec,
    /// Unix milliseconds.
    pub created: u64,
}

/// A stored schema's meta data.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub origin: Origin,
    pub compatibility: Compatibility,
    pub discovered: Option<(String, String)>,
}

/// A stored schema.
#[derive(Debug, Clone)]
pub struct StoredSchema {
    pub name: String,
    pub meta: Meta,
    pub versions: Vec<StoredVersion>,
}

/// Every stored schema name with its number of stored versions (cheap: what the
/// reload loop polls to see whether anything changed).
pub async fn counts(redis: &mut ConnectionManager) -> Result<Vec<(String, usize)>, BusError> {
    let mut names: Vec<String> = within(
        redis::cmd("SMEMBERS")
            .arg(NAMES)
            .query_async::<Vec<String>>(redis),
    )
    .await?;
    names.sort();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for n in &names {
        pipe.cmd("LLEN").arg(versions_key(n));
    }
    let lens: Vec<usize> = within(pipe.query_async(redis)).await?;
    Ok(names.into_iter().zip(lens).collect())
}

/// Every stored schema (names without a version are skipped).
pub async fn load(redis: &mut ConnectionManager) -> Result<Vec<StoredSchema>, BusError> {
    let names: Vec<String> = within(
        redis::cmd("SMEMBERS")
            .arg(NAMES)
            .query_async::<Vec<String>>(redis),
    )
    .await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for n in &names {
        pipe.cmd("HGETALL").arg(meta_key(n));
        pipe.cmd("LRANGE").arg(versions_key(n)).arg(0).arg(-1);
    }
    let replies: Vec<redis::Value> = within(pipe.query_async(redis)).await?;
    let mut out = Vec::new();
    for (name, pair) in names.into_iter().zip(replies.chunks(2)) {
        let meta: std::collections::HashMap<String, String> =
            redis::from_redis_value(pair[0].clone()).unwrap_or_default();
        let raw: Vec<String> = redis::from_redis_value(pair[1].clone()).unwrap_or_default();
        let versions: Vec<StoredVersion> = raw
            .iter()
            .filter_map(|r| match serde_json::from_str(r) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(schema = %name, error = %e, "unreadable stored schema version skipped");
                    None
                }
            })
            .collect();
        if versions.is_empty() {
            continue;
        }
        out.push(StoredSchema {
            meta: parse_meta(&meta),
            name,
            versions,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn parse_meta(meta: &std::collections::HashMap<String, String>) -> Meta {
    let origin = match meta.get("origin").map(String::as_str) {
        Some("discovered") => Origin::Discovered,
        _ => Origin::Api,
    };
    let discovered = match (meta.get("source"), meta.get("type")) {
        (Some(s), Some(t)) if origin == Origin::Discovered => Some((s.clone(), t.clone())),
        _ => None,
    };
    Meta {
        origin,
        compatibility: meta
            .get("compatibility")
            .and_then(|c| Compatibility::parse(c))
            .unwrap_or_default(),
        discovered,
    }
}

/// One schema's stored meta data, readable versions, and number of stored records
/// (unreadable ones included: what [`append`] compares the list's length with).
pub async fn read(
    redis: &mut ConnectionManager,
    name: &str,
) -> Result<(Option<Meta>, Vec<StoredVersion>, usize), BusError> {
    let (meta, raw): (std::collections::HashMap<String, String>, Vec<String>) = within(
        redis::pipe()
            .cmd("HGETALL")
            .arg(meta_key(name))
            .cmd("LRANGE")
            .arg(versions_key(name))
            .arg(0)
            .arg(-1)
            .query_async(redis),
    )
    .await?;
    let versions = raw
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
    Ok((
        (!meta.is_empty()).then(|| parse_meta(&meta)),
        versions,
        raw.len(),
    ))
}

/// Appends `version` if the schema still has `expected` stored versions; false if
/// another writer got there first.
pub async fn append(
    redis: &mut ConnectionManager,
    name: &str,
    meta: &Meta,
    expected: usize,
    version: &StoredVersion,
) -> Result<bool, BusError> {
    static APPEND: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
        redis::Script::new(
            r#"
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HSETNX', KEYS[2], 'origin', ARGV[3])
redis.call('HSETNX', KEYS[2], 'compatibility', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSETNX', KEYS[2], 'source', ARGV[5])
  redis.call('HSETNX', KEYS[2], 'type', ARGV[6])
end
return 1
"#,
        )
    });
    let record = serde_json::to_string(version).expect("a version serialises");
    let origin = match meta.origin {
        Origin::Discovered => "discovered",
        _ => "api",
    };
    let (source, type_) = meta
        .discovered
        .clone()
        .unwrap_or((String::new(), String::new()));
    // The name first: a name without versions is skipped by readers.
    within(
        redis::cmd("SADD")
            .arg(NAMES)
            .arg(name)
            .query_async::<i64>(redis),
    )
    .await?;
    let appended: i64 = within(
        APPEND
            .key(versions_key(name))
            .key(meta_key(name))
            .arg(expected)
            .arg(record)
            .arg(origin)
            .arg(meta.compatibility.as_str())
            .arg(source)
            .arg(type_)
            .invoke_async(redis),
    )
    .await?;
    Ok(appended == 1)
}
