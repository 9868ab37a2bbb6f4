//! Functions end to end: the real gateway runs `functions/echo` (unmodified
//! `lambda_runtime` code) under its function host, against a real redis-server.
//!
//! The function binaries are built by `cargo build -p echo` from the test itself (once
//! per test binary; cargo releases its lock while tests run), into the same target dir.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

/// Builds the function crates once; returns the path of each binary by name.
pub fn function_bins() -> &'static HashMap<String, PathBuf> {
    static BINS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BINS.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["build", "--message-format=json"])
            .args(["-p", "echo", "-p", "github-handler", "-p", "stripe-payment"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(out.status.success(), "cargo build of functions/ failed");
        let mut bins = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let (Some(name), Some(exe)) =
                (msg["target"]["name"].as_str(), msg["executable"].as_str())
            {
                bins.insert(name.to_string(), PathBuf::from(exe));
            }
        }
        assert!(bins.contains_key("echo"), "no echo binary in {bins:?}");
        bins
    })
}

fn echo() -> String {
    function_bins()["echo"].display().to_string()
}

/// Lines of the echo log: (pid, request id, invocations in flight).
fn echo_log(path: &Path) -> Vec<(u32, String, usize)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            (
                parts.next().unwrap().parse().unwrap(),
                parts.next().unwrap().to_string(),
                parts.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: its status says so.
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => !status.contains("State:\tZ"),
        Err(_) => false,
    }
}

/// Child processes of `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) in parentheses.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

/// A gateway config: bus `orders` with rule `r` -> function target `fn` chaining onto
/// bus `results`, whose rule `watch` posts to `rx`.
fn chained_config(rx: &Receiver, function: &str, target_extra: &str) -> String {
    format!(
        r#"
buses: [{{name: orders}}, {{name: results}}]
delivery: {{claim_idle: 30s}}
functions:
{function}
rules:
  - name: r
    bus: orders
    targets:
      - name: fn
        kind: function
        function: echo
        on_success: {{bus: results, type: order.echoed}}
        {target_extra}
  - name: watch
    bus: results
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
        rx.url("/results")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_gets_the_event_and_its_result_chains_onto_another_bus() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    let function = format!(
        "  - {{name: echo, command: {}, env: {{ECHO_LOG: {}}}}}",
        echo(),
        log.display()
    );
    let gw = Gateway::start(&redis, &chained_config(&rx, &function, "")).await;

    let body = structured_event("e1", "order.paid", r#"{"order": 7, "total": 10.50}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() == 1).await,
        "{}",
        gw.logs()
    );
    let got = &rx.received()[0];
    assert_eq!(got.header("ce-type"), Some("order.echoed"));
    assert_eq!(got.header("ce-source"), Some("/functions/echo"));
    assert_eq!(got.header("ce-causationid"), Some("e1"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    // The result is what the function got: the event in the CloudEvents JSON format
    // (echo re-serialises it, so 10.50 comes back as 10.5).
    let result: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(result["id"], "e1");
    assert_eq!(result["type"], "order.paid");
    assert_eq!(result["specversion"], "1.0");
    assert_eq!(result["data"]["total"].as_f64(), Some(10.5));
    assert_eq!(result["data"]["order"], 7);
    // One invocation, in a process the host started with the Lambda environment.
    let lines = echo_log(&log);
    assert_eq!(lines.len(), 1);
    assert!(uuid_like(&lines[0].1), "request id {:?}", lines[0].1);
    // The bus entry was acknowledged: nothing pending, nothing dead-lettered.
    assert!(
        wait_until(Duration::from_secs(5), || redis
            .xlen("sluice:{orders}:t:r:fn")
            == 0)
        .await
    );
    assert_eq!(redis.xlen("sluice:{orders}:dlq:r:fn"), 0);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_kills_the_instance_and_the_delivery_is_retried() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    // The first invocation hangs; later ones answer.
    let function = format!(
        "  - {{name: echo, command: {}, timeout: 1s, env: {{ECHO_LOG: {}, ECHO_FAIL: hang, ECHO_FAIL_MARKER: {}}}}}",
        echo(),
        log.display(),
        dir.path().join("hung").display()
    );
    let gw = Gateway::start(
        &redis,
        &chained_config(
            &rx,
            &function,
            "retry: {initial: 100ms, max: 200ms, max_attempts: 5}",
        ),
    )
    .await;

    let body = structured_event("slow-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() == 1).await,
        "{}",
        gw.logs()
    );
    let lines = echo_log(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (hung, _, _) = lines[0];
    assert_ne!(hung, lines[1].0, "the retry ran in a new instance");
    assert!(!alive(hung), "the timed-out instance {hung} still runs");
    assert!(gw
        .logs()
        .contains("invocation timed out; killing the instance"));

    // The host stays healthy: the next event goes through the live instance.
    let client = reqwest::Client::new();
    let health = client.get(gw.url("/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    let body = structured_event("slow-2", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    assert_eq!(redis.xlen("sluice:{orders}:dlq:r:fn"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_invocation_is_replaced_and_the_event_is_not_lost() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    let function = format!(
        "  - {{name: echo, command: {}, env: {{ECHO_LOG: {}, ECHO_FAIL: crash, ECHO_FAIL_MARKER: {}}}}}",
        echo(),
        log.display(),
        dir.path().join("crashed").display()
    );
    let gw = Gateway::start(
        &redis,
        &chained_config(
            &rx,
            &function,
            "retry: {initial: 100ms, max: 200ms, max_attempts: 5}",
        ),
    )
    .await;

    let body = structured_event("boom-1", "t", r#"{"n": 1}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() == 1).await,
        "{}",
        gw.logs()
    );
    let result: serde_json::Value = serde_json::from_slice(&rx.received()[0].body).unwrap();
    assert_eq!(result["id"], "boom-1");
    let lines = echo_log(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_ne!(lines[0].0, lines[1].0, "the crashed instance was replaced");
    assert!(gw.logs().contains("instance exited mid-invocation"));
    assert_eq!(redis.xlen("sluice:{orders}:dlq:r:fn"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_events_never_run_more_than_max_instances_at_once() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    let running = dir.path().join("running");
    std::fs::create_dir(&running).unwrap();
    let function = format!(
        "  - {{name: echo, command: {}, max_instances: 4, env: {{ECHO_LOG: {}, ECHO_CONCURRENCY_DIR: {}, ECHO_SLEEP_MS: '100'}}}}",
        echo(),
        log.display(),
        running.display()
    );
    // 16 deliveries in flight for 4 instances: 12 wait for a free one.
    let gw = Gateway::start(&redis, &chained_config(&rx, &function, "concurrency: 16")).await;

    assert_eq!(post_batch(&gw, "orders", "load-", 50).await, 202);
    assert!(
        wait_until(Duration::from_secs(60), || rx.count() >= 50).await,
        "{} of 50\n{}",
        rx.count(),
        gw.logs()
    );
    let causes: HashSet<String> = rx
        .received()
        .iter()
        .map(|r| r.header("ce-causationid").unwrap().to_string())
        .collect();
    assert_eq!(causes.len(), 50, "every event completed once");
    let lines = echo_log(&log);
    assert_eq!(lines.len(), 50);
    let peak = lines.iter().map(|l| l.2).max().unwrap();
    assert!(peak <= 4, "{peak} invocations ran at once");
    assert!(peak >= 2, "the host never ran invocations in parallel");
    let pids: HashSet<u32> = lines.iter().map(|l| l.0).collect();
    assert!(pids.len() <= 4, "{} instances", pids.len());
    assert_eq!(redis.xlen("sluice:{orders}:dlq:r:fn"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_stop_with_the_gateway_even_on_sigkill() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let function = format!("  - {{name: echo, command: {}, min_instances: 2}}", echo());
    let config = chained_config(&rx, &function, "");
    for graceful in [true, false] {
        let mut gw = Gateway::start(&redis, &config).await;
        let pid = gw.pid().unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || children(pid).len() == 2).await,
            "min_instances did not start: {:?}",
            children(pid)
        );
        let instances = children(pid);
        if graceful {
            assert!(gw.terminate().success());
        } else {
            gw.kill9();
        }
        assert!(
            wait_until(Duration::from_secs(5), || !instances
                .iter()
                .any(|p| alive(*p)))
            .await,
            "instances {instances:?} outlived the gateway (graceful: {graceful})"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_invoke_api_answers_as_lambda_does() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("failed");
    let function = format!(
        "  - {{name: echo, command: {}, env: {{ECHO_FAIL: error, ECHO_FAIL_MARKER: {}}}}}\n  - {{name: broken, command: /bin/false}}",
        echo(),
        marker.display()
    );
    let gw = Gateway::start(&redis, &chained_config(&rx, &function, "")).await;
    let client = reqwest::Client::new();
    let url = |name: &str| gw.url(&format!("/2015-03-31/functions/{name}/invocations"));

    // The first invocation fails as the function asked: 200 + X-Amz-Function-Error.
    let r = client
        .post(url("echo"))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-amz-function-error"].to_str().unwrap(),
        "Unhandled"
    );
    let error: serde_json::Value = r.json().await.unwrap();
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("ECHO_FAIL=error"),
        "{error}"
    );

    // Then it echoes; an ARN with a qualifier names the same function.
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST";
    let r = client
        .post(url(arn))
        .body(r#"{"a": 1.0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-amz-function-error").is_none());
    assert_eq!(r.text().await.unwrap(), r#"{"a":1.0}"#);

    let r = client
        .post(url("echo"))
        .header("x-amz-invocation-type", "DryRun")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = client
        .post(url("echo"))
        .header("x-amz-invocation-type", "Event")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let r = client.post(url("nope")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["x-amzn-errortype"].to_str().unwrap(),
        "ResourceNotFoundException"
    );
    let r = client
        .post(url("echo"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A function that cannot start fails fast (no hang), as a function error.
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let r = client.post(url("broken")).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-amz-function-error"].to_str().unwrap(),
            "Unhandled"
        );
        let error: serde_json::Value = r.json().await.unwrap();
        assert_eq!(error["errorType"], "Runtime.Unavailable", "{error}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(gw.logs().contains("instance failed to start"));
}

/// The `aws-lambda` target, through the AWS SDK with SigV4, against another gateway's
/// Invoke API (endpoint override): its function error is retried, its result chained.
#[tokio::test(flavor = "multi_thread")]
async fn the_aws_lambda_target_invokes_through_the_sdk_with_sigv4() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    // The "cloud": a gateway hosting echo, requiring SigV4 with one key.
    let lambda_side = format!(
        r#"
buses: [{{name: default}}]
aws:
  region: eu-west-1
  access_keys: [{{id: AKIDSLUICETEST, secret: c2VjcmV0LWtleQ}}]
functions:
  - {{name: echo, command: {}, env: {{ECHO_LOG: {}, ECHO_FAIL: error, ECHO_FAIL_MARKER: {}}}}}
"#,
        echo(),
        log.display(),
        dir.path().join("failed").display()
    );
    let cloud = Gateway::start(&redis, &lambda_side).await;
    let caller = format!(
        r#"
buses: [{{name: orders}}, {{name: results}}]
rules:
  - name: r
    bus: orders
    targets:
      - name: lambda
        kind: aws-lambda
        function: arn:aws:lambda:eu-west-1:000000000000:function:echo
        region: eu-west-1
        endpoint: "{}"
        retry: {{initial: 100ms, max: 200ms, max_attempts: 5}}
        on_success: {{bus: results, source: /lambda/echo, type: echoed}}
  - name: watch
    bus: results
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
        cloud.url(""),
        rx.url("/results")
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDSLUICETEST"),
        ("AWS_SECRET_ACCESS_KEY", "c2VjcmV0LWtleQ"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    let gw = Gateway::start_with_env(&redis, &caller, &env).await;

    let body = structured_event("via-sdk", "t", r#"{"n": 3}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() == 1).await,
        "caller:\n{}\ncloud:\n{}",
        gw.logs(),
        cloud.logs()
    );
    let got = &rx.received()[0];
    assert_eq!(got.header("ce-source"), Some("/lambda/echo"));
    assert_eq!(got.header("ce-causationid"), Some("via-sdk"));
    let result: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(result["id"], "via-sdk");
    // The first attempt got the function's error (X-Amz-Function-Error), the second
    // the result.
    assert_eq!(echo_log(&log).len(), 2);
    assert!(
        gw.logs().contains("function error (Unhandled)"),
        "{}",
        gw.logs()
    );

    // The Invoke API refuses what is not signed with a known key.
    let client = reqwest::Client::new();
    let url = cloud.url("/2015-03-31/functions/echo/invocations");
    let r = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"].to_str().unwrap(),
        "MissingAuthenticationTokenException"
    );
}

/// `sluice invoke`: one local invocation, its result on stdout, the exit code says how
/// it went.
#[test]
fn sluice_invoke_runs_one_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "functions:\n  - {{name: echo, command: {}}}\n  - {{name: github, command: {}}}\n  - {{name: failing, command: {}, env: {{ECHO_FAIL: error}}}}\n",
            echo(),
            function_bins()["github-handler"].display(),
            echo(),
        ),
    )
    .unwrap();
    let invoke = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("invoke")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = invoke(&["echo", "--event", r#"{"hello": "world"}"#]);
    assert_eq!((code, stdout.as_str()), (0, "{\"hello\":\"world\"}\n"));

    let event = dir.path().join("push.json");
    std::fs::write(
        &event,
        r#"{"specversion": "1.0", "id": "d1", "source": "s", "type": "com.github.push",
            "data": {"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"},
                     "pusher": {"name": "octocat"}, "commits": [{"message": "Fix"}]}}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = invoke(&["github", "--event", &format!("@{}", event.display())]);
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["summary"],
        "octocat pushed 1 commit to acme/shop@main"
    );

    let (code, stdout, stderr) = invoke(&["failing"]);
    assert_eq!(code, 1, "{stderr}");
    let error: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(error["errorMessage"]
        .as_str()
        .unwrap()
        .contains("ECHO_FAIL"));

    let (code, _, stderr) = invoke(&["echo", "--event", "{nope"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--event is not JSON"), "{stderr}");
    let (code, _, stderr) = invoke(&["missing"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no function named \"missing\""), "{stderr}");
}

/// Instances beyond `min_instances` stop after `idle_timeout`; the minimum stays.
#[tokio::test(flavor = "multi_thread")]
async fn idle_instances_beyond_the_minimum_stop() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let function = format!(
        "  - {{name: echo, command: {}, min_instances: 1, idle_timeout: 1s, env: {{ECHO_SLEEP_MS: '300'}}}}",
        echo()
    );
    let gw = Gateway::start(&redis, &chained_config(&rx, &function, "")).await;
    let pid = gw.pid().unwrap();
    assert!(wait_until(Duration::from_secs(10), || children(pid).len() == 1).await);
    // Three at once need three instances.
    assert_eq!(post_batch(&gw, "orders", "idle-", 3).await, 202);
    assert!(wait_until(Duration::from_secs(20), || rx.count() == 3).await);
    assert_eq!(children(pid).len(), 3);
    // Then back to the minimum.
    assert!(
        wait_until(Duration::from_secs(10), || children(pid).len() == 1).await,
        "{:?}",
        children(pid)
    );
}

/// HTTP FaaS: a `cloudevents` target reaches a CloudEvents receiver (what Knative
/// Services and OpenFaaS' connector accept) in both modes.
#[tokio::test(flavor = "multi_thread")]
async fn cloudevents_targets_reach_an_http_function_in_both_modes() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: orders}}]
rules:
  - name: faas
    bus: orders
    targets:
      - {{name: binary, kind: cloudevents, url: "{}"}}
      - {{name: structured, kind: cloudevents, url: "{}", mode: structured}}
"#,
        rx.url("/binary"),
        rx.url("/structured")
    );
    let gw = Gateway::start(&redis, &config).await;
    let body = structured_event("k-1", "order.paid", r#"{"order": 7}"#);
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 2).await);
    let received = rx.received();
    let binary = received.iter().find(|r| r.path == "/binary").unwrap();
    assert_eq!(binary.header("ce-id"), Some("k-1"));
    assert_eq!(binary.header("ce-specversion"), Some("1.0"));
    assert_eq!(binary.header("ce-type"), Some("order.paid"));
    assert_eq!(binary.header("content-type"), Some("application/json"));
    assert_eq!(binary.body, br#"{"order": 7}"#);
    let structured = received.iter().find(|r| r.path == "/structured").unwrap();
    assert!(structured
        .header("content-type")
        .unwrap()
        .starts_with("application/cloudevents+json"));
    let event: serde_json::Value = serde_json::from_slice(&structured.body).unwrap();
    assert_eq!(event["id"], "k-1");
    assert_eq!(event["data"]["order"], 7);
}

/// Any Lambda custom runtime works: a shell script speaking the Runtime API with curl
/// sees the Lambda environment and the invocation headers.
#[test]
fn a_shell_custom_runtime_sees_the_lambda_environment() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bootstrap");
    std::fs::write(
        &script,
        r#"#!/bin/sh
set -eu
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  curl -sS -D headers -o event "$api/invocation/next"
  id=$(grep -i '^lambda-runtime-aws-request-id:' headers | tr -d '\r' | cut -d' ' -f2)
  deadline=$(grep -i '^lambda-runtime-deadline-ms:' headers | tr -d '\r' | cut -d' ' -f2)
  arn=$(grep -i '^lambda-runtime-invoked-function-arn:' headers | tr -d '\r' | cut -d' ' -f2)
  printf '{"name":"%s","version":"%s","memory":"%s","region":"%s","handler":"%s","arn":"%s","deadline":%s,"secret":"%s","event":%s}' \
    "$AWS_LAMBDA_FUNCTION_NAME" "$AWS_LAMBDA_FUNCTION_VERSION" "$AWS_LAMBDA_FUNCTION_MEMORY_SIZE" \
    "$AWS_REGION" "$_HANDLER" "$arn" "$deadline" "${SLUICE_TEST_SECRET:-}" "$(cat event)" > out
  curl -sS -X POST --data-binary @out "$api/invocation/$id/response" > /dev/null
done
"#,
    )
    .unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "aws: {{auth: none, region: eu-central-1, account: '123456789012'}}\nfunctions:\n  - {{name: sh, command: /bin/sh, args: [{}], memory: 256, handler: my.handler, workdir: {}}}\n",
            script.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["invoke", "sh", "--event", r#"{"x": 1}"#, "--config"])
        .arg(&config)
        // Sluice's own environment does not reach functions.
        .env("SLUICE_TEST_SECRET", "leaked")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["name"], "sh");
    assert_eq!(got["version"], "$LATEST");
    assert_eq!(got["memory"], "256");
    assert_eq!(got["region"], "eu-central-1");
    assert_eq!(got["handler"], "my.handler");
    assert_eq!(
        got["arn"],
        "arn:aws:lambda:eu-central-1:123456789012:function:sh"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let deadline = got["deadline"].as_u64().unwrap();
    assert!(
        deadline > now_ms && deadline < now_ms + 4_000,
        "{deadline} vs {now_ms}"
    );
    assert_eq!(got["secret"], "");
    assert_eq!(got["event"], serde_json::json!({"x": 1}));
}

/// A function that cannot start: its deliveries fail fast and end in the DLQ with the
/// reason, the gateway stays up.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_that_cannot_start_dead_letters_with_the_reason() {
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let function = "  - {name: echo, command: /bin/false}";
    let gw = Gateway::start(
        &redis,
        &chained_config(
            &rx,
            function,
            "retry: {initial: 100ms, max: 200ms, max_attempts: 3}",
        ),
    )
    .await;
    let body = structured_event("never-1", "t", "{}");
    assert_eq!(post_structured(&gw, "orders", &body).await, 202);
    assert!(
        wait_until(Duration::from_secs(20), || redis
            .xlen("sluice:{orders}:dlq:r:fn")
            == 1)
        .await,
        "{}",
        gw.logs()
    );
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("sluice:{orders}:dlq:r:fn")
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    let fields: HashMap<String, String> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["reason"], "attempts exhausted");
    assert!(
        fields["attempts"].contains("the function cannot start"),
        "{}",
        fields["attempts"]
    );
    assert_eq!(rx.count(), 0);
    let health = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert!(health.status().is_success());
}
