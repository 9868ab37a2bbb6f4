//! The reloader: keeps the replica's configuration equal to the file merged with the
//! store, at the store's latest revision.
//!
//! It blocks on the store's change stream (a change wakes it within milliseconds) and,
//! at least once a second, compares the store's revision with the one in force, so a
//! change is never missed: not when the stream was trimmed, not across a lost connection
//! or a Redis restart. SIGHUP re-reads the file. A new plan is compiled on a blocking
//! thread while the old one keeps routing; one that fails to build (say a secret file
//! missing on this replica) is logged and the previous one stays in force.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::runtime::{Runtime, TargetId};
use super::READ_BLOCK;
use crate::bus;
use crate::control::document::{FileDoc, Merged};
use crate::control::store::{self, Kind};
use crate::live::Live;

/// Waits between attempts while Redis does not answer.
const RETRY: Duration = Duration::from_secs(1);

/// The reloader's state: what is in force and where it follows the change stream.
pub struct Reloader {
    runtime: Runtime,
    file: Arc<Live<FileDoc>>,
    applied: watch::Sender<u64>,
    reader: redis::aio::ConnectionManager,
    /// None: nothing from the store is in force yet.
    in_force: Option<u64>,
    /// The revision last tried and failed: not tried again until the store or file
    /// changes.
    failed: Option<u64>,
    last_change: String,
    /// After SIGHUP: restart every dispatcher (secret files may have changed behind
    /// unchanged references); store changes restart only the targets they change.
    restart_all: bool,
}

impl Reloader {
    pub fn new(
        runtime: Runtime,
        file: Arc<Live<FileDoc>>,
        redis_url: &str,
        applied: watch::Sender<u64>,
    ) -> Result<Reloader, redis::RedisError> {
        Ok(Reloader {
            runtime,
            file,
            applied,
            reader: bus::connect_blocking(redis_url, READ_BLOCK)?,
            in_force: None,
            failed: None,
            last_change: "$".into(),
            restart_all: false,
        })
    }

    /// Puts the store's current revision in force if it is not; false if Redis could
    /// not be read.
    pub async fn step(&mut self) -> bool {
        let mut conn = self.reader.clone();
        let rev = match store::revision(&mut conn).await {
            Ok(rev) => rev,
            Err(e) => {
                warn!(error = %e, "reading the store's revision failed; retrying");
                return false;
            }
        };
        if Some(rev) == self.in_force || Some(rev) == self.failed {
            return true;
        }
        match reload(
            &mut self.runtime,
            &self.file.get(),
            &mut conn,
            self.restart_all,
        )
        .await
        {
            Ok((rev, change)) => {
                self.restart_all = false;
                self.in_force = Some(rev);
                self.failed = None;
                if self.last_change == "$" {
                    self.last_change = change;
                }
                self.applied.send_replace(rev);
                true
            }
            Err(Failure::Redis(e)) => {
                warn!(error = %e, "reading the configuration store failed; retrying");
                false
            }
            Err(Failure::Invalid(rev, errors)) => {
                for e in &errors {
                    error!(revision = rev, error = %e, "the configuration cannot be built on this replica; the previous one stays in force");
                }
                self.failed = Some(rev);
                true
            }
        }
    }

    /// SIGHUP: reads the file again; the next step puts it in force.
    async fn reread_file(&mut self) {
        let Some(path) = self.file.get().path.clone() else {
            info!("SIGHUP: no configuration file to read");
            return;
        };
        match load_file(&path).await {
            Ok(doc) => {
                info!(file = %path.display(), "SIGHUP: file read again");
                self.file.set(doc);
                self.failed = None;
                self.in_force = None;
                self.restart_all = true;
            }
            Err(errors) => {
                for e in &errors {
                    error!(file = %path.display(), error = %e, "SIGHUP: the file is invalid; the running configuration stays");
                }
            }
        }
    }

    /// Follows changes until `shutdown`; gives the runtime back for the final steps.
    pub async fn run(mut self, shutdown: CancellationToken) -> Runtime {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot handle SIGHUP; the file is read at start only");
                None
            }
        };
        loop {
            if !self.step().await {
                wait(RETRY, &shutdown).await;
            }
            if shutdown.is_cancelled() {
                return self.runtime;
            }
            // Wake on a change, SIGHUP, shutdown, or after a second to check the
            // revision.
            let mut reader = self.reader.clone();
            let last = self.last_change.clone();
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return self.runtime,
                _ = hup => self.reread_file().await,
                read = follow(&mut reader, &last) => match read {
                    Ok(Some(id)) => self.last_change = id,
                    Ok(None) => {}
                    Err(e) => {
                        warn!(error = %e, "following the change stream failed; retrying");
                        wait(RETRY, &shutdown).await;
                    }
                },
            }
        }
    }
}

enum Failure {
    Redis(bus::BusError),
    Invalid(u64, Vec<crate::config::ConfigError>),
}

/// Reads the store, builds the merged plan and applies it: the revision in force and
/// the change stream's last id at that revision.
async fn reload(
    runtime: &mut Runtime,
    file: &FileDoc,
    conn: &mut redis::aio::ConnectionManager,
    restart_all: bool,
) -> Result<(u64, String), Failure> {
    let snapshot = store::snapshot(conn).await.map_err(Failure::Redis)?;
    let merged = Merged::new(file, &snapshot);
    for (kind, id) in &merged.shadowed {
        warn!(kind = kind.singular(), %id, "the file defines this resource too: the store's version is not in force");
    }
    let fingerprints = fingerprints(&merged);
    let base = file.base().map(Path::to_path_buf);
    let rev = snapshot.rev;
    let built = tokio::task::spawn_blocking(move || merged.compile(base.as_deref()))
        .await
        .expect("compiling a plan does not panic");
    let plan = built.map_err(|errors| Failure::Invalid(rev, errors))?;
    runtime.apply(plan, &fingerprints, restart_all).await;
    info!(revision = rev, "store revision in force");
    Ok((rev, snapshot.last_change))
}

/// Each target's configuration as text, to tell which ones a change touched (with its
/// bus's `trace:`, which its dispatcher writes by).
fn fingerprints(merged: &Merged) -> HashMap<TargetId, String> {
    let mut out = HashMap::new();
    let traces: HashMap<&str, String> = merged
        .top
        .get(Kind::Bus.section())
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b.get("name")?.as_str()?, b.get("trace")?.to_string())))
        .collect();
    let rules = merged
        .top
        .get(Kind::Rule.section())
        .and_then(Value::as_array);
    for rule in rules.into_iter().flatten() {
        let (Some(bus), Some(name)) = (
            rule.get("bus").and_then(Value::as_str),
            rule.get("name").and_then(Value::as_str),
        ) else {
            continue;
        };
        for target in rule
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = target.get("name").and_then(Value::as_str) {
                let trace = traces.get(bus).map_or("", String::as_str);
                out.insert(
                    (bus.to_string(), name.to_string(), t.to_string()),
                    format!("{target}{trace}"),
                );
            }
        }
    }
    out
}

/// Blocks up to a second on the change stream after `last`; the id of the newest entry
/// read, if any.
async fn follow(
    conn: &mut redis::aio::ConnectionManager,
    last: &str,
) -> Result<Option<String>, bus::BusError> {
    type Entries = Vec<(String, Vec<(String, String)>)>;
    let reply: Option<Vec<(String, Entries)>> = bus::within(
        redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1000)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(store::CHANGES_KEY)
            .arg(last)
            .query_async(conn),
    )
    .await?;
    Ok(reply
        .and_then(|streams| streams.into_iter().next())
        .and_then(|(_, entries)| entries.into_iter().last())
        .map(|(id, _)| id))
}

async fn load_file(path: &Path) -> Result<FileDoc, Vec<crate::config::ConfigError>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || FileDoc::load(&path))
        .await
        .expect("reading a file does not panic")
}

async fn wait(d: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => {}
    }
}
