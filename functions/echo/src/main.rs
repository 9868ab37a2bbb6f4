//! `echo`: a Lambda function that returns the event it is invoked with, unchanged.
//!
//! It is Sluice's test function: plain `lambda_runtime` code that runs the same on
//! Sluice's function host and on AWS Lambda. A few behaviours, all off unless their
//! environment variable is set, let tests make it slow, crash, hang or fail, and record
//! how many invocations ran at once:
//!
//! | variable | effect |
//! |---|---|
//! | `ECHO_SLEEP_MS=N` | wait N ms before answering |
//! | `ECHO_FAIL=error\|crash\|hang` | answer a function error / exit the process mid-invocation (status 101) / never answer |
//! | `ECHO_FAIL_MARKER=PATH` | with `ECHO_FAIL`: fail only the invocation that creates PATH (so once across all instances) |
//! | `ECHO_CONCURRENCY_DIR=DIR` | while an invocation runs, DIR holds a file named after the process id |
//! | `ECHO_LOG=FILE` | append one line per invocation: `pid request_id in_flight received_us event_id` (in_flight counted in `ECHO_CONCURRENCY_DIR`, else 0; received_us: when the invocation arrived, µs since the Unix epoch; event_id: the payload's `id`, or `-`) |

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

/// What a failure looks like, when `ECHO_FAIL` asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Error,
    Crash,
    Hang,
}

/// The test behaviours, read once from the environment.
#[derive(Debug, Default, Clone)]
struct Behaviour {
    sleep: Option<Duration>,
    fail: Option<Fail>,
    fail_marker: Option<PathBuf>,
    concurrency_dir: Option<PathBuf>,
    log: Option<PathBuf>,
}

impl Behaviour {
    fn from_env() -> Result<Behaviour, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let sleep = match var("ECHO_SLEEP_MS") {
            Some(ms) => {
                Some(Duration::from_millis(ms.parse().map_err(|_| {
                    format!("ECHO_SLEEP_MS={ms:?} is not a number")
                })?))
            }
            None => None,
        };
        let fail = match var("ECHO_FAIL").as_deref() {
            None => None,
            Some("error") => Some(Fail::Error),
            Some("crash") => Some(Fail::Crash),
            Some("hang") => Some(Fail::Hang),
            Some(other) => {
                return Err(format!(
                    "ECHO_FAIL={other:?}: expected error, crash or hang"
                ))
            }
        };
        Ok(Behaviour {
            sleep,
            fail,
            fail_marker: var("ECHO_FAIL_MARKER").map(PathBuf::from),
            concurrency_dir: var("ECHO_CONCURRENCY_DIR").map(PathBuf::from),
            log: var("ECHO_LOG").map(PathBuf::from),
        })
    }

    /// The failure this invocation must show, if any: with a marker, only the one
    /// invocation that manages to create it fails.
    fn failure(&self) -> Option<Fail> {
        let fail = self.fail?;
        match &self.fail_marker {
            None => Some(fail),
            Some(marker) => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(marker)
                .ok()
                .map(|_| fail),
        }
    }
}

/// Marks this process as running an invocation in `dir`; returns how many are running
/// (this one included). The file goes when the guard drops.
struct InFlight(Option<PathBuf>);

impl InFlight {
    fn enter(dir: Option<&Path>) -> (InFlight, usize) {
        let Some(dir) = dir else {
            return (InFlight(None), 0);
        };
        let mine = dir.join(std::process::id().to_string());
        let _ = std::fs::write(&mine, b"");
        let count = std::fs::read_dir(dir).map_or(0, |entries| entries.count());
        (InFlight(Some(mine)), count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn handle(event: LambdaEvent<Value>, behaviour: &Behaviour) -> Result<Value, Error> {
    let received_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let (guard, in_flight) = InFlight::enter(behaviour.concurrency_dir.as_deref());
    if let Some(log) = &behaviour.log {
        let line = format!(
            "{} {} {in_flight} {received_us} {}\n",
            std::process::id(),
            event.context.request_id,
            event.payload["id"].as_str().unwrap_or("-")
        );
        // One small O_APPEND write per line: lines of concurrent instances do not mix.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()))?;
    }
    if let Some(sleep) = behaviour.sleep {
        tokio::time::sleep(sleep).await;
    }
    match behaviour.failure() {
        Some(Fail::Error) => return Err("echo: failing as ECHO_FAIL=error asks".into()),
        Some(Fail::Crash) => {
            eprintln!("echo: exiting mid-invocation as ECHO_FAIL=crash asks");
            std::process::exit(101);
        }
        Some(Fail::Hang) => tokio::time::sleep(Duration::from_secs(3600)).await,
        None => {}
    }
    drop(guard);
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let behaviour: &'static Behaviour = Box::leak(Box::new(Behaviour::from_env()?));
    lambda_runtime::run(service_fn(move |event| handle(event, behaviour))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;
    use serde_json::json;

    fn event(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, Context::default())
    }

    #[tokio::test]
    async fn returns_the_event_unchanged() {
        let payload = json!({"specversion": "1.0", "id": "1", "data": {"n": [1, 2.5]}});
        let out = handle(event(payload.clone()), &Behaviour::default())
            .await
            .unwrap();
        assert_eq!(out, payload);
    }

    #[tokio::test]
    async fn fails_once_with_a_marker() {
        let dir = std::env::temp_dir().join(format!("echo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("failed");
        let _ = std::fs::remove_file(&marker);
        let behaviour = Behaviour {
            fail: Some(Fail::Error),
            fail_marker: Some(marker.clone()),
            ..Behaviour::default()
        };
        let first = handle(event(json!(1)), &behaviour).await;
        assert!(first.unwrap_err().to_string().contains("ECHO_FAIL=error"));
        assert_eq!(handle(event(json!(2)), &behaviour).await.unwrap(), json!(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn counts_invocations_in_flight_and_logs_them() {
        let dir = std::env::temp_dir().join(format!("echo-cc-{}", std::process::id()));
        let running = dir.join("running");
        std::fs::create_dir_all(&running).unwrap();
        // Another instance is mid-invocation.
        std::fs::write(running.join("1"), b"").unwrap();
        let log = dir.join("log");
        let behaviour = Behaviour {
            concurrency_dir: Some(running.clone()),
            log: Some(log.clone()),
            ..Behaviour::default()
        };
        handle(event(json!({})), &behaviour).await.unwrap();
        let line = std::fs::read_to_string(&log).unwrap();
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(fields[2], "2", "{line:?}");
        assert_eq!(fields[4], "-", "{line:?}");
        // Its own marker is gone again.
        assert_eq!(std::fs::read_dir(&running).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_an_unknown_failure_mode() {
        std::env::set_var("ECHO_FAIL", "explode");
        let err = Behaviour::from_env().unwrap_err();
        std::env::remove_var("ECHO_FAIL");
        assert!(err.contains("explode"), "{err}");
    }
}
