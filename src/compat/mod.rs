//! Cloud-compatible protocols: each cloud's wire API in one folder (its request
//! signature, its requests' mapping to and from CloudEvents, its HTTP handlers and its
//! config section), so the unmodified AWS and Alibaba SDKs, the AWS CLI and
//! RocketMQ-EventBridge's clients work against Sluice. Their control operations are
//! facades over the native control plane: they write through [`edit`].

pub mod alibaba;
pub mod aws;
pub mod http_api;
pub mod rocketmq;
pub mod subscriptions;

use serde_json::Value;

use crate::control::document::{Merged, Origin};
use crate::control::resources::{commit, Change, ResourceApi};
use crate::control::store::{Kind, Op};
use crate::ingress::error::ApiError;

/// Whether a secret a facade's client sent reads as an `env:`/`file:` reference. Only
/// the gateway's operators may write references (in the file or through `/api/v1`): a
/// facade refuses them, or the gateway would resolve a caller-chosen variable or file
/// and send it to a caller-chosen endpoint.
pub fn is_reference(secret: &str) -> bool {
    secret.starts_with("env:") || secret.starts_with("file:")
}

/// One facade write: `change` edits the merged document (file + store) and returns the
/// resources it wrote (`None`: deleted); the result is checked whole and written with
/// the native commit (retried on concurrent writes), so a facade never writes what
/// `sluice check` would refuse. Resources of the file are refused with `read_only`.
pub async fn edit<F>(
    api: &ResourceApi,
    actor: &str,
    mut change: F,
    read_only: impl Fn(Kind, &str) -> ApiError,
) -> Result<Merged, ApiError>
where
    F: FnMut(&mut Merged) -> Result<Vec<(Kind, String, Option<Value>)>, ApiError>,
{
    let (_, _, merged) = commit(api, actor, |_, merged| {
        let writes = change(merged)?;
        let mut ops = Vec::with_capacity(writes.len());
        let mut at = None;
        for (kind, id, spec) in writes {
            if merged.origin(kind, &id) == Some(Origin::File) {
                return Err(read_only(kind, &id));
            }
            match &spec {
                Some(spec) => {
                    let i = merged.put(kind, &id, spec.clone());
                    at = Some(format!("{}[{i}]", kind.section()));
                }
                None => merged.remove(kind, &id),
            }
            ops.push(Op { kind, id, spec });
        }
        Ok(Change {
            ops,
            at,
            dry_run: false,
        })
    })
    .await?;
    Ok(merged)
}

/// Puts `targets` into `rule`'s list by name: one of the same name is replaced, others
/// are appended. The list as it is then.
pub fn upsert_targets(
    rule: &mut Value,
    targets: impl IntoIterator<Item = Value>,
) -> &mut Vec<Value> {
    if !rule["targets"].is_array() {
        rule["targets"] = Value::Array(Vec::new());
    }
    let list = rule["targets"].as_array_mut().expect("an array");
    for t in targets {
        match list.iter_mut().find(|x| x["name"] == t["name"]) {
            Some(existing) => *existing = t,
            None => list.push(t),
        }
    }
    list
}

/// The strings of a JSON array (other items skipped; not an array: none).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}
