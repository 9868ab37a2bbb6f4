//! The configuration store in Redis: the buses, rules, sources and functions created
//! through the control API, each with its version, one revision counter for the whole
//! store, a change stream every replica follows, and the audit stream.
//!
//! Keys (one hash slot, `{control}`, so one script can touch them all):
//! - `sluice:{control}:rev`: the store's revision, +1 per write (a write may change
//!   several resources: `apply`).
//! - `sluice:{control}:res:{kind}`: a hash per kind, resource id -> stored JSON
//!   `{"version":N,"updated_at":ms,"updated_by":actor,"spec":{...}}`; a resource's
//!   version is the revision that last wrote it. A rule's id is `bus/rule`.
//! - `sluice:{control}:changes`: one entry per changed resource (`rev kind id action`).
//! - `sluice:{control}:audit`: one entry per change: who, what, when, old and new version.
//!
//! Every write is one Lua script that first checks the revision the caller validated
//! against: a write is applied whole or not at all, and never on top of a store that
//! changed since it was checked (the caller takes a new snapshot and checks again).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use serde_json::Value;

use crate::bus::{within, BusError};

pub const REV_KEY: &str = "sluice:{control}:rev";
pub const CHANGES_KEY: &str = "sluice:{control}:changes";
pub const AUDIT_KEY: &str = "sluice:{control}:audit";
/// Entries kept in the change stream (replicas that fall further behind reload whole,
/// as they do on every revision mismatch).
const CHANGES_MAX: usize = 10_000;
/// Entries kept in the audit stream.
pub const AUDIT_MAX: usize = 100_000;

/// The kinds of resources the store keeps, in the order a configuration lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Bus,
    Source,
    Function,
    Rule,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Bus, Kind::Source, Kind::Function, Kind::Rule];

    /// The configuration section and URL segment: `buses`, `rules`, ...
    pub fn section(self) -> &'static str {
        match self {
            Kind::Bus => "buses",
            Kind::Source => "sources",
            Kind::Function => "functions",
            Kind::Rule => "rules",
        }
    }

    /// The singular, for messages and the audit stream.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Bus => "bus",
            Kind::Source => "source",
            Kind::Function => "function",
            Kind::Rule => "rule",
        }
    }

    pub fn parse(word: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.section() == word || k.singular() == word)
    }

    fn key(self) -> String {
        format!("sluice:{{control}}:res:{}", self.section())
    }

    /// The id of a resource of this kind in its configuration shape: its `name`, for a
    /// rule `bus/name`. None if those fields are missing.
    pub fn id_of(self, spec: &Value) -> Option<String> {
        let name = spec.get("name")?.as_str()?;
        match self {
            Kind::Rule => Some(format!("{}/{name}", spec.get("bus")?.as_str()?)),
            _ => Some(name.to_string()),
        }
    }
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    pub version: u64,
    pub updated_at: u64,
    pub updated_by: String,
    /// The resource in its configuration shape (as given: secrets too, see
    /// `document::redact`).
    pub spec: Value,
}

/// Everything in the store at one revision, read atomically.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub rev: u64,
    /// The id of the last entry of the change stream at that revision ("0-0": none):
    /// where a watcher starts reading.
    pub last_change: String,
    pub resources: BTreeMap<Kind, BTreeMap<String, Stored>>,
}

impl Snapshot {
    pub fn get(&self, kind: Kind, id: &str) -> Option<&Stored> {
        self.resources.get(&kind)?.get(id)
    }

    pub fn of(&self, kind: Kind) -> impl Iterator<Item = (&String, &Stored)> {
        self.resources.get(&kind).into_iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.resources.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the whole store in one MULTI/EXEC.
pub async fn snapshot(conn: &mut ConnectionManager) -> Result<Snapshot, BusError> {
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("GET").arg(REV_KEY);
    pipe.cmd("XREVRANGE")
        .arg(CHANGES_KEY)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1);
    for kind in Kind::ALL {
        pipe.cmd("HGETALL").arg(kind.key());
    }
    type Last = Vec<(String, Vec<(String, String)>)>;
    type Hash = BTreeMap<String, String>;
    type Reply = (Option<u64>, Last, Hash, Hash, Hash, Hash);
    let (rev, last, buses, sources, functions, rules): Reply =
        within(pipe.query_async(conn)).await?;
    let mut resources = BTreeMap::new();
    for (kind, raw) in Kind::ALL
        .into_iter()
        .zip([buses, sources, functions, rules])
    {
        let mut decoded = BTreeMap::new();
        for (id, json) in raw {
            match serde_json::from_str::<Stored>(&json) {
                Ok(stored) => {
                    decoded.insert(id, stored);
                }
                // Written by this module only; a corrupt entry must not stop a replica.
                Err(e) => {
                    tracing::error!(kind = kind.singular(), %id, error = %e, "unreadable stored resource skipped")
                }
            }
        }
        resources.insert(kind, decoded);
    }
    Ok(Snapshot {
        rev: rev.unwrap_or(0),
        last_change: last
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_string(), |(id, _)| id),
        resources,
    })
}

/// Reads the store's revision only (the watcher's check that it missed nothing).
pub async fn revision(conn: &mut ConnectionManager) -> Result<u64, BusError> {
    let rev: Option<u64> = within(redis::cmd("GET").arg(REV_KEY).query_async(conn)).await?;
    Ok(rev.unwrap_or(0))
}

/// One change of a write: put `spec` (None: delete) at `kind`/`id`.
#[derive(Debug, Clone)]
pub struct Op {
    pub kind: Kind,
    pub id: String,
    pub spec: Option<Value>,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Applied: the store's new revision (the version of every resource written).
    At(u64),
    /// The store is no longer at the revision the write was checked against.
    Changed,
}

static WRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local rev = tonumber(redis.call('GET', KEYS[1]) or '0')
if rev ~= tonumber(ARGV[1]) then return 0 end
local new = rev + 1
local actor, now, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
local kinds = {buses = KEYS[4], sources = KEYS[5], functions = KEYS[6], rules = KEYS[7]}
local singular = {buses = 'bus', sources = 'source', functions = 'function', rules = 'rule'}
for i = 0, n - 1 do
  local b = 5 + i * 3
  local kind, id, doc = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local key = kinds[kind]
  local cur = redis.call('HGET', key, id)
  local old = ''
  if cur then old = string.match(cur, '^{"version":(%d+)') or '' end
  local action, newv
  if doc == '' then
    if cur then redis.call('HDEL', key, id) end
    action, newv = 'delete', ''
  else
    redis.call('HSET', key, id, '{"version":' .. new .. ',' .. string.sub(doc, 2))
    if cur then action = 'update' else action = 'create' end
    newv = tostring(new)
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[#ARGV - 1], '*',
    'rev', new, 'kind', singular[kind], 'id', id, 'action', action)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[#ARGV], '*',
    'actor', actor, 'action', action, 'kind', singular[kind], 'name', id,
    'old_version', old, 'new_version', newv, 'time', now)
end
redis.call('SET', KEYS[1], new)
return new
"#,
    )
});

/// Applies `ops` in one step if the store is still at revision `base`.
pub async fn write(
    conn: &mut ConnectionManager,
    base: u64,
    ops: &[Op],
    actor: &str,
) -> Result<Written, BusError> {
    let now = now_ms();
    let mut invocation = WRITE.prepare_invoke();
    invocation.key(REV_KEY).key(CHANGES_KEY).key(AUDIT_KEY);
    for kind in Kind::ALL {
        invocation.key(kind.key());
    }
    invocation.arg(base).arg(actor).arg(now).arg(ops.len());
    for op in ops {
        let doc = match &op.spec {
            // The script prepends the version: `{"version":N,` + the rest.
            Some(spec) => serde_json::json!({
                "updated_at": now,
                "updated_by": actor,
                "spec": spec,
            })
            .to_string(),
            None => String::new(),
        };
        invocation.arg(op.kind.section()).arg(&op.id).arg(doc);
    }
    invocation.arg(CHANGES_MAX).arg(AUDIT_MAX);
    let rev: u64 = within(invocation.invoke_async(conn)).await?;
    Ok(if rev == 0 {
        Written::Changed
    } else {
        Written::At(rev)
    })
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
