//! The command line: `sluice check` and the quickstart served by `sluice dev`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn check_accepts_the_examples() {
    let (code, stdout, stderr) = sluice(&["check", "--config", "examples/quickstart/sluice.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (1 buses, 2 rules, 2 targets)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = sluice(&["check", "--config", "examples/transforms/sluice.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (1 buses, 1 rules, 4 targets)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = sluice(&["check", "--config", "examples/webhooks/sluice.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (1 buses, 2 sources, 2 rules, 2 targets)"),
        "{stdout}"
    );
    let (code, stdout, stderr) = sluice(&["check", "--config", "examples/cloud-apis/sluice.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ok (2 buses"), "{stdout}");
}

/// Every example's config passes `sluice check`, whatever examples are added.
#[test]
fn check_accepts_every_example_config() {
    let mut checked = 0;
    for dir in std::fs::read_dir("examples").unwrap() {
        let dir = dir.unwrap().path();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && name.starts_with("sluice") {
                let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
                assert_eq!(code, 0, "{}: {stderr}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "only {checked} example configs found");
}

#[test]
fn check_reports_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        r#"buses: [{name: orders}]
rules:
  - name: a
    bus: orders
    targets: [{name: t, kind: http, url: "http://ok/"}]
  - name: b
    bus: orders
    targets: [{name: t, kind: http, url: "http://ok/"}]
  - name: c
    bus: payments
    pattern: {type: "not-a-list"}
    targets: [{name: t, kind: http, url: "/relative"}]
"#,
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    for expected in [
        "rules[2].bus: no bus named \"payments\" in buses",
        "rules[2].pattern.type: must be a list of alternatives or an object",
        "rules[2].targets[0].url: relative URL",
        "3 error(s)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    // Syntax and type errors carry a line: the value's, or that of the entry holding it.
    std::fs::write(&path, "buses:\n  - name: orders\n    retention: forever\n").unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("bad.yaml:2: buses[0].retention: invalid duration \"forever\""),
        "{stderr}"
    );
    std::fs::write(&path, "buses:\n  - name: orders\n    max_len: lots\n").unwrap();
    let (_, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert!(
        stderr.contains("bad.yaml:3: buses[0].max_len: invalid type"),
        "{stderr}"
    );

    let (code, _, stderr) = sluice(&["check", "--config", "/nonexistent.yaml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot read /nonexistent.yaml"), "{stderr}");
}

/// The README's tour: `sluice dev` with the quickstart config, the README's curl, and
/// the event shows up at the echo target.
#[tokio::test(flavor = "multi_thread")]
async fn dev_serves_the_quickstart_end_to_end() {
    let redis = Redis::start();
    let port = free_port();
    // The quickstart as shipped, moved to a free port so the test cannot collide.
    let quickstart = std::fs::read_to_string("examples/quickstart/sluice.yaml")
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(&config, quickstart).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["dev", "--config", config.to_str().unwrap()])
        .env("REDIS_URL", &redis.url)
        .env_remove("SLUICE_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/readyz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dev did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The README's curl.
    let res = client
        .post(format!("{base}/buses/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "order-1001")
        .header("ce-source", "/shop")
        .header("ce-type", "order.paid")
        .header("content-type", "application/json")
        .body(r#"{"order": 1001, "currency": "EUR", "priority": "high"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);

    // Both rules match: one binary-mode and one structured-mode delivery.
    let mut echoed = Vec::new();
    let start = Instant::now();
    while echoed.len() < 2 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        echoed = client
            .get(format!("{base}/dev/echo"))
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap();
    }
    assert_eq!(echoed.len(), 2, "{echoed:?}");

    // Step 7: the event's trace, then a replay of the archived paid order to one rule.
    let (code, out, err) = sluice(&["trace", "orders", "order-1001", "--server", &base]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("received") && out.contains("via cloudevents"),
        "{out}"
    );
    assert!(
        out.contains("routed") && out.contains("order-updates/"),
        "{out}"
    );
    assert_eq!(out.matches("-> delivered").count(), 2, "{out}");
    let start = Instant::now();
    loop {
        let archive: serde_json::Value = client
            .get(format!("{base}/api/v1/archives/orders-paid"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if archive["events"] == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{archive}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, _, err) = sluice(&[
        "replay",
        "start",
        "again",
        "--bus",
        "orders",
        "--archive",
        "orders-paid",
        "--since",
        "1h",
        "--rule",
        "order-updates",
        "--server",
        &base,
    ]);
    assert_eq!(code, 0, "{err}");
    let start = Instant::now();
    loop {
        let (code, out, err) = sluice(&["replay", "status", "again", "--server", &base]);
        assert_eq!(code, 0, "{err}");
        if out.contains("COMPLETED") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let start = Instant::now();
    while echoed.len() < 3 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        echoed = client
            .get(format!("{base}/dev/echo"))
            .send()
            .await
            .unwrap()
            .json::<Vec<serde_json::Value>>()
            .await
            .unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        echoed.len(),
        3,
        "the replay reached order-updates only: {echoed:?}"
    );
    let bodies: Vec<&str> = echoed.iter().map(|e| e["body"].as_str().unwrap()).collect();
    assert!(
        bodies.contains(&r#"{"order": 1001, "currency": "EUR", "priority": "high"}"#),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(r#""id":"order-1001""#) && b.contains(r#""data":{"order": 1001"#)),
        "{bodies:?}"
    );
}

#[test]
fn transform_prints_what_the_target_receives() {
    let event = r#"{"specversion":"1.0","id":"e1","source":"/shop","type":"order.paid","data":{"order":{"id":"o-1","total":9.90}}}"#;
    let (code, stdout, stderr) = sluice(&[
        "transform",
        "--transform",
        r#"{"form":"TEMPLATE","value":{"id":"$.data.order.id","total":"$.data.order.total"},"template":"{\"msg\": \"order ${id}\", \"total\": ${total}}"}"#,
        "--event",
        event,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, r#"{"msg": "order o-1", "total": 9.90}"#);
    assert!(
        stderr.contains("content-type: application/json"),
        "{stderr}"
    );

    // From files, YAML transform.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.yaml"), "InputPath: $.detail.order\n").unwrap();
    std::fs::write(dir.path().join("e.json"), event).unwrap();
    let t = format!("@{}", dir.path().join("t.yaml").display());
    let e = format!("@{}", dir.path().join("e.json").display());
    let (code, stdout, _) = sluice(&["transform", "--transform", &t, "--event", &e]);
    assert_eq!((code, stdout.as_str()), (0, r#"{"id":"o-1","total":9.90}"#));

    // Invalid transform: exit 2 with the reason.
    let (code, _, stderr) = sluice(&[
        "transform",
        "--transform",
        r#"{"form":"JSONPATH","value":"data"}"#,
        "--event",
        event,
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid transform: value: a JSONPath starts with $"),
        "{stderr}"
    );
    let (code, _, stderr) = sluice(&[
        "transform",
        "--transform",
        r#"{"form":"ORIGINAL"}"#,
        "--event",
        r#"{"id":"x"}"#,
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid event: specversion"), "{stderr}");
}

/// The JSON `aws events put-targets --input-transformer` takes is a transform as it is,
/// on the command line and in a config, with the result of the nested form.
#[test]
fn transform_accepts_the_bare_aws_input_transformer() {
    let event = r#"{"specversion":"1.0","id":"e1","source":"/shop","type":"order.paid","data":{"order":{"id":"o-1","total":9.90}}}"#;
    let fields = r#""InputPathsMap":{"id":"$.detail.order.id","total":"$.detail.order.total"},"InputTemplate":"{\"msg\": \"order <id>\", \"total\": <total>, \"rule\": \"<aws.events.rule-name>\"}""#;
    let bare = format!("{{{fields}}}");
    let nested = format!(r#"{{"InputTransformer":{{{fields}}}}}"#);
    let run = |transform: &str| {
        sluice(&[
            "transform",
            "--transform",
            transform,
            "--event",
            event,
            "--rule",
            "paid",
        ])
    };
    let (code, stdout, stderr) = run(&bare);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        r#"{"msg": "order o-1", "total": 9.90, "rule": "paid"}"#
    );
    assert!(
        stderr.contains("content-type: application/json"),
        "{stderr}"
    );
    assert_eq!(run(&nested), (code, stdout, stderr));

    // Bad input names the field as it was written.
    let (code, _, stderr) = run(r#"{"InputPathsMap":{"id":"detail.id"},"InputTemplate":"<id>"}"#);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid transform: InputPathsMap.id: a JSONPath starts with $"),
        "{stderr}"
    );
    let (code, _, stderr) = run(r#"{"InputPathsMap":{"id":"$.id"}}"#);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid transform: InputTemplate: InputPathsMap needs an InputTemplate"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&format!(r#"{{"InputPath":"$",{fields}}}"#));
    assert_eq!(code, 2);
    assert!(stderr.contains("set exactly one of"), "{stderr}");

    // In a config.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    let config = |transform: &str| {
        format!(
            "buses: [{{name: orders}}]\nrules:\n  - name: paid\n    bus: orders\n    pattern: {{type: [order.paid]}}\n    targets:\n      - name: t\n        kind: http\n        url: https://example.com/hook\n        transform:\n{transform}"
        )
    };
    std::fs::write(
        &path,
        config("          InputPathsMap: {id: $.detail.order.id}\n          InputTemplate: '\"order <id>\"'\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("ok (1 buses, 1 rules, 1 targets)"),
        "{stdout}"
    );
    std::fs::write(
        &path,
        config("          InputPathsMap: {id: detail.order.id}\n          InputTemplate: '<id>'\n"),
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("rules[0].targets[0].transform.InputPathsMap.id: a JSONPath starts with $"),
        "{stderr}"
    );
}

#[test]
fn test_pattern_exit_codes() {
    let event = r#"{"specversion":"1.0","id":"e1","source":"/shop","type":"order.paid","data":{"amount":300,"tags":["a","b"]}}"#;
    let run = |pattern: &str, event: &str| {
        sluice(&["test-pattern", "--pattern", pattern, "--event", event])
    };
    assert_eq!(
        run(
            r#"{"type":["order.paid"],"data":{"amount":[3.0e2],"tags":["b"]}}"#,
            event
        )
        .0,
        0
    );
    assert_eq!(run(r#"{"type":["order.refunded"]}"#, event).0, 1);
    // The README tour's example.
    let (code, stdout, _) = run(
        r#"{"type":[{"prefix":"order."}],"data":{"amount":[{"numeric":[">",100]}]}}"#,
        r#"{"specversion":"1.0","id":"1","source":"/shop","type":"order.paid","data":{"amount":250}}"#,
    );
    assert_eq!((code, stdout.trim()), (0, "match"));
    assert_eq!(run("data: {tags: [z]}", event).0, 1, "YAML patterns too");
    let (code, _, stderr) = run(r#"{"type":"order.paid"}"#, event);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("invalid pattern: type: must be a list of alternatives"),
        "{stderr}"
    );
    let (code, _, stderr) = run("{}", r#"{"id":"x"}"#);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid event: specversion"), "{stderr}");
}

#[test]
fn check_names_a_source_secret_that_cannot_be_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sources.yaml");
    std::fs::write(
        &path,
        r#"buses: [{name: saas}]
sources:
  - {name: github, kind: github, bus: saas, secret: "env:SLUICE_CLI_TEST_UNSET_SECRET"}
  - {name: stripe, kind: stripe, bus: saas, secrets: [ok, "file:/nonexistent/sluice/stripe"]}
"#,
    )
    .unwrap();
    let (code, _, stderr) = sluice(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    for expected in [
        "sources[0].secret: environment variable SLUICE_CLI_TEST_UNSET_SECRET is not set",
        "sources[1].secrets[1]: cannot read secret file /nonexistent/sluice/stripe",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// examples/mq-migration end to end with the real brokers of the machine: RabbitMQ and
/// MQTT in, PostgreSQL rows, the Alibaba stub and a transformed MQTT alert out. The
/// script checks what arrived and exits non-zero naming what is missing.
#[test]
fn examples_mq_migration_runs() {
    let tools = [
        "amqp-publish",
        "mosquitto_pub",
        "mosquitto_sub",
        "psql",
        "redis-server",
    ];
    let missing: Vec<_> = tools
        .iter()
        .filter(|t| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        assert!(std::env::var_os("CI").is_none(), "CI lacks {missing:?}");
        eprintln!("SKIPPED: {missing:?} not installed");
        return;
    }
    let out = std::process::Command::new("bash")
        .arg("examples/mq-migration/run.sh")
        .env("SLUICE", env!("CARGO_BIN_EXE_sluice"))
        .env("REDIS_PORT", common::free_port().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("OK: every event arrived"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
