//! The AWS EventBridge control facade driven by boto3 and the AWS CLI, unmodified
//! (PyPI `boto3`, `awscli`; installed by `.ci/run`): buses, rules, targets, API
//! destinations, TestEventPattern, archives and replays, with events delivered in the
//! AWS envelope (`replay-name` on replayed ones), and every resource the same one
//! `/api/v1` shows and edits.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

/// Builds the echo function once.
fn echo() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["build", "--message-format=json", "-p", "echo"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running cargo build");
        assert!(out.status.success(), "cargo build of functions/echo failed");
        let bins: HashMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|m| {
                Some((
                    m["target"]["name"].as_str()?.to_string(),
                    PathBuf::from(m["executable"].as_str()?),
                ))
            })
            .collect();
        bins["echo"].clone()
    })
}

fn have_boto3() -> bool {
    have_python("boto3", "boto3")
}

/// Runs `script` with `ev` (a boto3 events client on the gateway) and `call(fn, **kw)`,
/// which prints nothing and returns the answer, or `{"Error": code, "Message": ...}`
/// for a ClientError. The script sets `out`; its JSON is returned.
fn boto(gw: &Gateway, script: &str) -> Value {
    let prelude = r#"
import json, os, sys
import boto3, botocore
ev = boto3.client("events", endpoint_url=os.environ["GW"], region_name=os.environ["REGION"],
                  aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
                  config=botocore.config.Config(retries={"max_attempts": 2}))
def call(fn, **kw):
    try:
        r = fn(**kw)
        r.pop("ResponseMetadata", None)
        return r
    except botocore.exceptions.ClientError as e:
        return {"Error": e.response["Error"]["Code"], "Message": e.response["Error"].get("Message", "")}
out = None
"#;
    let full = format!("{prelude}\n{script}\nprint(json.dumps(out, default=str))\n");
    let result = std::process::Command::new("python3")
        .args(["-c", &full])
        .env("GW", gw.url(""))
        .env("REGION", REGION)
        .env("KEY", KEY_ID)
        .env("SECRET", SECRET)
        .output()
        .expect("python3 runs");
    assert!(
        result.status.success(),
        "boto3 script failed: {}\n{script}\n{}",
        String::from_utf8_lossy(&result.stderr),
        gw.logs()
    );
    serde_json::from_slice(&result.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3 script printed no JSON ({e}): {}",
            String::from_utf8_lossy(&result.stdout)
        )
    })
}

fn config(rx: &Receiver) -> String {
    format!(
        r#"
buses: [{{name: default}}, {{name: results}}]
aws:
  region: {REGION}
  account: "{ACCOUNT}"
  access_keys: [{{id: {KEY_ID}, secret: "{SECRET}"}}]
functions:
  - {{name: echo, command: {}}}
rules:
  - name: watch
    bus: results
    targets:
      - {{name: rx, kind: http, url: "{}"}}
"#,
        echo().display(),
        rx.url("/results")
    )
}

async fn api(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, gw.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_builds_a_bus_rule_and_targets_that_deliver_the_aws_envelope() {
    if !have_boto3() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;
    gw.ready().await;

    let pattern = json!({"source": ["com.shop"], "detail-type": ["OrderPlaced"], "detail": {"total": [{"numeric": [">", 100]}]}});
    let out = boto(
        &gw,
        &format!(
            r#"
out = {{}}
out["bus"] = call(ev.create_event_bus, Name="shop")
out["again"] = call(ev.create_event_bus, Name="shop")
conn = call(ev.create_connection, Name="rx-key", AuthorizationType="API_KEY",
            AuthParameters={{"ApiKeyAuthParameters": {{"ApiKeyName": "x-api-key", "ApiKeyValue": "k-123"}}}})
out["conn"] = conn
dest = call(ev.create_api_destination, Name="rx", ConnectionArn=conn["ConnectionArn"],
            InvocationEndpoint="{url}", HttpMethod="POST", InvocationRateLimitPerSecond=50)
out["dest"] = dest
out["rule"] = call(ev.put_rule, Name="big-orders", EventBusName="shop", EventPattern=json.dumps({pattern}),
                   Description="orders over 100")
out["targets"] = call(ev.put_targets, Rule="big-orders", EventBusName="shop", Targets=[
    {{"Id": "to-rx", "Arn": dest["ApiDestinationArn"],
      "InputTransformer": {{"InputPathsMap": {{"id": "$.detail.id", "acct": "$.account", "type": "$.detail-type"}},
                            "InputTemplate": '{{"order": <id>, "account": "<acct>", "type": "<type>"}}'}},
      "RetryPolicy": {{"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}}}},
    {{"Id": "fn", "Arn": "arn:aws:lambda:{REGION}:{ACCOUNT}:function:echo"}}])
out["put"] = call(ev.put_events, Entries=[
    {{"Source": "com.shop", "DetailType": "OrderPlaced", "Detail": json.dumps({{"id": "o-1", "total": 150}}), "EventBusName": "shop"}},
    {{"Source": "com.shop", "DetailType": "OrderPlaced", "Detail": json.dumps({{"id": "o-2", "total": 50}}), "EventBusName": "shop"}}])
"#,
            url = rx.url("/hook"),
            pattern = pattern
        ),
    );
    assert_eq!(
        out["bus"]["EventBusArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/shop")
    );
    assert_eq!(out["again"]["Error"], "ResourceAlreadyExistsException");
    assert_eq!(out["conn"]["ConnectionState"], "AUTHORIZED");
    assert_eq!(
        out["rule"]["RuleArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/shop/big-orders")
    );
    assert_eq!(out["targets"]["FailedEntryCount"], 0, "{out}");
    assert_eq!(out["put"]["FailedEntryCount"], 0, "{out}");

    // The API destination gets the matching event only, transformed over the AWS
    // envelope, with the connection's API key.
    assert!(
        wait_until(Duration::from_secs(20), || rx
            .received()
            .iter()
            .any(|r| r.path == "/hook"))
        .await,
        "{}",
        gw.logs()
    );
    let hook: Vec<Received> = rx
        .received()
        .into_iter()
        .filter(|r| r.path == "/hook")
        .collect();
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0].header("x-api-key"), Some("k-123"));
    let body: Value = serde_json::from_slice(&hook[0].body).unwrap();
    assert_eq!(
        body,
        json!({"order": "o-1", "account": ACCOUNT, "type": "OrderPlaced"})
    );

    // The same rule through the native API: an AWS-dialect rule with an http and a
    // function target, both delivering the AWS envelope.
    let (status, rule) = api(
        &gw,
        reqwest::Method::GET,
        "/api/v1/buses/shop/rules/big-orders",
        None,
    )
    .await;
    assert_eq!(status, 200, "{rule}");
    let mut spec = rule["spec"].clone();
    assert_eq!(spec["dialect"], "aws");
    assert_eq!(spec["pattern"], pattern);
    assert_eq!(spec["targets"][0]["kind"], "http");
    assert_eq!(spec["targets"][0]["envelope"], "aws");
    assert_eq!(spec["targets"][0]["retry"]["max_attempts"], 4);
    assert_eq!(spec["targets"][1]["kind"], "function");
    assert_eq!(spec["targets"][1]["function"], "echo");

    // Edited natively: the function's result goes to the `results` bus, and the
    // description changes; boto3 sees the change.
    spec["targets"][1]["on_success"] = json!({"bus": "results"});
    spec["description"] = "edited through /api/v1".into();
    let (status, put) = api(
        &gw,
        reqwest::Method::PUT,
        "/api/v1/buses/shop/rules/big-orders",
        Some(spec),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    let out = boto(
        &gw,
        r#"
out = {"rule": call(ev.describe_rule, Name="big-orders", EventBusName="shop")}
out["put"] = call(ev.put_events, Entries=[
    {"Source": "com.shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"id": "o-3", "total": 300}), "EventBusName": "shop", "Resources": ["arn:aws:shop:o-3"]}])
"#,
    );
    assert_eq!(out["rule"]["Description"], "edited through /api/v1");
    assert_eq!(out["rule"]["State"], "ENABLED");
    assert_eq!(out["rule"]["EventBusName"], "shop");
    assert_eq!(
        serde_json::from_str::<Value>(out["rule"]["EventPattern"].as_str().unwrap()).unwrap(),
        pattern
    );
    // The function got the AWS envelope (echo returns what it got).
    assert!(
        wait_until(Duration::from_secs(30), || rx
            .received()
            .iter()
            .any(|r| r.path == "/results"))
        .await,
        "{}",
        gw.logs()
    );
    let result = rx
        .received()
        .into_iter()
        .find(|r| r.path == "/results")
        .unwrap();
    let envelope: Value = serde_json::from_slice(&result.body).unwrap();
    assert_eq!(envelope["version"], "0");
    assert_eq!(envelope["detail-type"], "OrderPlaced");
    assert_eq!(envelope["source"], "com.shop");
    assert_eq!(envelope["account"], ACCOUNT);
    assert_eq!(envelope["region"], REGION);
    assert_eq!(envelope["resources"], json!(["arn:aws:shop:o-3"]));
    assert_eq!(envelope["detail"], json!({"id": "o-3", "total": 300}));

    // Disabled, the rule routes nothing; enabled again, it does.
    let before = rx.received().iter().filter(|r| r.path == "/hook").count();
    let out = boto(
        &gw,
        r#"
out = {"disable": call(ev.disable_rule, Name="big-orders", EventBusName="shop"),
       "state": call(ev.describe_rule, Name="big-orders", EventBusName="shop")["State"],
       "put": call(ev.put_events, Entries=[{"Source": "com.shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"id": "o-4", "total": 400}), "EventBusName": "shop"}])}
"#,
    );
    assert_eq!(out["state"], "DISABLED");
    assert_eq!(out["put"]["FailedEntryCount"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rx.received().iter().filter(|r| r.path == "/hook").count(),
        before
    );
    let out = boto(
        &gw,
        r#"
out = {"enable": call(ev.enable_rule, Name="big-orders", EventBusName="shop"),
       "put": call(ev.put_events, Entries=[{"Source": "com.shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"id": "o-5", "total": 500}), "EventBusName": "shop"}])}
"#,
    );
    assert_eq!(out["put"]["FailedEntryCount"], 0);
    assert!(
        wait_until(Duration::from_secs(20), || rx
            .received()
            .iter()
            .filter(|r| r.path == "/hook")
            .count()
            == before + 1)
        .await,
        "{}",
        gw.logs()
    );
    let last: Value = serde_json::from_slice(
        &rx.received()
            .iter()
            .rev()
            .find(|r| r.path == "/hook")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(last["order"], "o-5");
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_lists_pages_tests_patterns_and_gets_aws_errors() {
    if !have_boto3() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;
    gw.ready().await;
    let out = boto(
        &gw,
        r#"
out = {}
for n in ["a-rule", "b-rule", "c-rule"]:
    call(ev.put_rule, Name=n, EventPattern=json.dumps({"source": [n]}))
p1 = call(ev.list_rules, Limit=2)
p2 = call(ev.list_rules, Limit=2, NextToken=p1["NextToken"])
out["page1"] = [r["Name"] for r in p1["Rules"]]
out["page2"] = [r["Name"] for r in p2["Rules"]]
out["more"] = "NextToken" in p2
out["prefix"] = [r["Name"] for r in call(ev.list_rules, NamePrefix="b")["Rules"]]
out["buses"] = [b["Name"] for b in call(ev.list_event_buses)["EventBuses"]]
out["default"] = call(ev.describe_event_bus)
lam = "arn:aws:lambda:eu-west-1:123456789012:function:echo"
out["put_targets"] = call(ev.put_targets, Rule="a-rule", Targets=[{"Id": "fn", "Arn": lam, "Input": json.dumps({"fixed": True})}])
out["targets"] = call(ev.list_targets_by_rule, Rule="a-rule")
out["by_target"] = call(ev.list_rule_names_by_target, TargetArn=lam)
event = {"id": "1", "account": "123456789012", "source": "com.shop", "time": "2026-12-03T10:00:00Z",
         "region": "eu-west-1", "resources": [], "detail-type": "OrderPlaced", "detail": {"total": 150}}
pat = {"detail-type": ["OrderPlaced"], "detail": {"total": [{"numeric": [">", 100]}]}}
out["test_yes"] = call(ev.test_event_pattern, EventPattern=json.dumps(pat), Event=json.dumps(event))
event["detail"]["total"] = 50
out["test_no"] = call(ev.test_event_pattern, EventPattern=json.dumps(pat), Event=json.dumps(event))
out["test_bad"] = call(ev.test_event_pattern, EventPattern=json.dumps({"detail": {"total": [{"numeric": [">"]}]}}), Event=json.dumps(event))
out["missing_rule"] = call(ev.describe_rule, Name="nope")
out["missing_bus"] = call(ev.put_rule, Name="x", EventBusName="nope", EventPattern="{}")
out["bad_pattern"] = call(ev.put_rule, Name="x", EventPattern="{not json")
out["bad_pattern2"] = call(ev.put_rule, Name="x", EventPattern=json.dumps({"detail": {"a": "not-a-list"}}))
out["schedule"] = call(ev.put_rule, Name="x", ScheduleExpression="rate(5 minutes)")
out["sqs"] = call(ev.put_targets, Rule="a-rule", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:eu-west-1:123456789012:q"}])
out["too_many"] = call(ev.put_targets, Rule="b-rule", Targets=[{"Id": "t%d" % i, "Arn": lam} for i in range(6)])
own = out["default"]["Arn"].replace("event-bus/default", "event-bus/results")
out["to_bus"] = call(ev.put_targets, Rule="c-rule", Targets=[{"Id": "fwd", "Arn": own}])
out["to_bus_input"] = call(ev.put_targets, Rule="c-rule", Targets=[{"Id": "fwd2", "Arn": own, "InputPath": "$.detail"}])
out["to_missing_bus"] = call(ev.put_targets, Rule="c-rule", Targets=[{"Id": "fwd3", "Arn": own.replace("results", "nope")}])
out["delete_with_targets"] = call(ev.delete_rule, Name="a-rule")
out["remove"] = call(ev.remove_targets, Rule="a-rule", Ids=["fn"])
out["delete"] = call(ev.delete_rule, Name="a-rule")
out["after_delete"] = call(ev.describe_rule, Name="a-rule")
out["delete_default"] = call(ev.delete_event_bus, Name="default")
"#,
    );
    assert_eq!(out["page1"], json!(["a-rule", "b-rule"]), "{out}");
    assert_eq!(out["page2"], json!(["c-rule"]));
    assert_eq!(out["more"], false);
    assert_eq!(out["prefix"], json!(["b-rule"]));
    assert_eq!(out["buses"], json!(["default", "results"]));
    assert_eq!(
        out["default"]["Arn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default")
    );
    assert_eq!(out["put_targets"]["FailedEntryCount"], 0, "{out}");
    let t = &out["targets"]["Targets"][0];
    assert_eq!(t["Id"], "fn");
    assert_eq!(
        t["Arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:echo"
    );
    assert_eq!(t["Input"], r#"{"fixed": true}"#);
    assert_eq!(out["by_target"]["RuleNames"], json!(["a-rule"]));
    assert_eq!(out["test_yes"]["Result"], true);
    assert_eq!(out["test_no"]["Result"], false);
    assert_eq!(out["test_bad"]["Error"], "InvalidEventPatternException");
    assert_eq!(out["missing_rule"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["missing_bus"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["bad_pattern"]["Error"], "InvalidEventPatternException");
    assert_eq!(
        out["bad_pattern2"]["Error"], "InvalidEventPatternException",
        "{out}"
    );
    assert!(
        out["bad_pattern2"]["Message"]
            .as_str()
            .unwrap()
            .contains("detail.a"),
        "{out}"
    );
    assert_eq!(out["schedule"]["Error"], "ValidationException");
    assert_eq!(out["sqs"]["Error"], "ValidationException");
    assert_eq!(out["too_many"]["Error"], "LimitExceededException");
    assert_eq!(out["to_bus"]["FailedEntryCount"], 0, "{out}");
    assert_eq!(out["to_bus_input"]["Error"], "ValidationException");
    assert_eq!(out["to_missing_bus"]["Error"], "ResourceNotFoundException");
    // An event bus of this gateway is a `bus` target (forwarded by the router).
    let (_, rule) = api(
        &gw,
        reqwest::Method::GET,
        "/api/v1/buses/default/rules/c-rule",
        None,
    )
    .await;
    assert_eq!(rule["spec"]["targets"][0]["kind"], "bus", "{rule}");
    assert_eq!(rule["spec"]["targets"][0]["bus"], "results");
    assert_eq!(out["delete_with_targets"]["Error"], "ValidationException");
    assert_eq!(out["remove"]["FailedEntryCount"], 0);
    assert_eq!(out["delete"], json!({}));
    assert_eq!(out["after_delete"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["delete_default"]["Error"], "ValidationException");

    // A rule made natively is a rule to boto3 too.
    let (status, _) = api(
        &gw,
        reqwest::Method::PUT,
        "/api/v1/buses/default/rules/native",
        Some(json!({"pattern": {"type": ["x"]}, "targets": []})),
    )
    .await;
    assert_eq!(status, 201);
    let out = boto(&gw, r#"out = call(ev.describe_rule, Name="native")"#);
    assert_eq!(out["Name"], "native");
    assert_eq!(out["State"], "ENABLED");

    // Unsigned or wrongly signed control requests are refused as AWS refuses them.
    let res = reqwest::Client::new()
        .post(gw.url("/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSEvents.DeleteRule")
        .body(r#"{"Name": "b-rule"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["__type"], "MissingAuthenticationTokenException",
        "{body}"
    );
    let out = boto(
        &gw,
        r#"out = [r["Name"] for r in call(ev.list_rules)["Rules"]]"#,
    );
    assert_eq!(out, json!(["b-rule", "c-rule", "native"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_puts_and_lists_rules() {
    if !have_boto3() {
        return;
    }
    let cli = std::process::Command::new("aws").arg("--version").output();
    if !cli.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the AWS CLI is missing under CI (pip install awscli)"
        );
        eprintln!("\n*** SKIPPED: the AWS CLI is not installed; pip install awscli ***\n");
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;
    gw.ready().await;
    let aws = |args: &[&str]| {
        let out = std::process::Command::new("aws")
            .args(["events", "--endpoint-url", &gw.url(""), "--output", "json"])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("aws runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = aws(&[
        "put-rule",
        "--name",
        "cli-rule",
        "--event-pattern",
        r#"{"source":["com.cli"]}"#,
        "--state",
        "DISABLED",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("rule/cli-rule"), "{stdout}");
    let (code, stdout, stderr) = aws(&["list-rules"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed["Rules"][0]["Name"], "cli-rule");
    assert_eq!(listed["Rules"][0]["State"], "DISABLED");
    // An error exits non-zero with AWS's error code.
    let (code, _, stderr) = aws(&["describe-rule", "--name", "missing"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
}

/// A local OAuth authorization server: answers client-credentials token requests with
/// `tok-N` (N counts the requests) and records each request's Authorization and body.
async fn token_server() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = calls.clone();
    let port = free_port();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/oauth/token",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let n = {
                        let mut calls = seen.lock().unwrap();
                        calls.push((auth, String::from_utf8_lossy(&body).into_owned()));
                        calls.len()
                    };
                    HttpResponse::Ok().json(
                        json!({"access_token": format!("tok-{n}"), "token_type": "bearer", "expires_in": 3600}),
                    )
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/oauth/token"), calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_connection_fetches_renews_and_sends_bearer_tokens() {
    if !have_boto3() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let (token_url, calls) = token_server().await;
    let gw = Gateway::start(&redis, &config(&rx)).await;
    gw.ready().await;
    let out = boto(
        &gw,
        &format!(
            r#"
out = {{}}
auth = {{"OAuthParameters": {{"AuthorizationEndpoint": "{token_url}", "HttpMethod": "POST",
         "ClientParameters": {{"ClientID": "cid", "ClientSecret": "csecret"}},
         "OAuthHttpParameters": {{"BodyParameters": [{{"Key": "audience", "Value": "orders-api", "IsValueSecret": False}}]}}}}}}
conn = call(ev.create_connection, Name="oauth", AuthorizationType="OAUTH_CLIENT_CREDENTIALS", AuthParameters=auth)
out["conn"] = conn
out["described"] = call(ev.describe_connection, Name="oauth")
dest = call(ev.create_api_destination, Name="api", ConnectionArn=conn["ConnectionArn"], InvocationEndpoint="{url}", HttpMethod="POST")
call(ev.put_rule, Name="orders", EventPattern=json.dumps({{"source": ["shop"]}}))
out["targets"] = call(ev.put_targets, Rule="orders", Targets=[{{"Id": "api", "Arn": dest["ApiDestinationArn"]}}])
"#,
            url = rx.url("/api")
        ),
    );
    assert_eq!(out["conn"]["ConnectionState"], "AUTHORIZED", "{out}");
    assert_eq!(out["targets"]["FailedEntryCount"], 0, "{out}");
    assert!(!out["described"].to_string().contains("csecret"), "{out}");
    // The target holds the secret, redacted on reads.
    let (_, rule) = api(
        &gw,
        reqwest::Method::GET,
        "/api/v1/buses/default/rules/orders",
        None,
    )
    .await;
    assert_eq!(rule["spec"]["targets"][0]["oauth"]["client_secret"], "***");

    // The endpoint refuses the first token once: a new token, and the event arrives.
    rx.answer_once(401, &[]);
    let put = r#"out = call(ev.put_events, Entries=[{"Source": "shop", "DetailType": "order.paid", "Detail": "{\"n\": 1}"}])"#;
    assert_eq!(boto(&gw, put)["FailedEntryCount"], 0);
    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 1).await,
        "{}",
        gw.logs()
    );
    let attempts = rx.attempts();
    assert_eq!(attempts[0].0, 401);
    assert_eq!(attempts[0].1.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        rx.received()[0].header("authorization"),
        Some("Bearer tok-2")
    );
    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        for (auth, body) in calls.iter() {
            // RFC 6749 §2.3.1: the client authenticates with HTTP Basic.
            assert_eq!(auth, "Basic Y2lkOmNzZWNyZXQ=");
            assert!(body.contains("grant_type=client_credentials"), "{body}");
            assert!(body.contains("audience=orders-api"), "{body}");
        }
    }
    // The token is kept: the next event needs no new one.
    assert_eq!(boto(&gw, put)["FailedEntryCount"], 0);
    assert!(wait_until(Duration::from_secs(10), || rx.count() >= 2).await);
    assert_eq!(
        rx.received()[1].header("authorization"),
        Some("Bearer tok-2")
    );
    assert_eq!(calls.lock().unwrap().len(), 2);
}

/// The AWS envelopes delivered to `path`: (id, replay-name) of each, sorted.
fn envelopes(rx: &Receiver, path: &str) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = rx
        .received()
        .iter()
        .filter(|r| r.path == path)
        .map(|r| {
            let e: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(e["version"], "0", "not the AWS envelope: {e}");
            (
                e["id"].as_str().unwrap().to_string(),
                e["replay-name"].as_str().map(String::from),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_archives_events_and_replays_them_to_a_rule() {
    if !have_boto3() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    // A short lease time (the least the targets' 10 s timeout allows): an archiver and a
    // replay start half of it after taking their lease.
    let config = format!("delivery: {{claim_idle: 12s}}\n{}", config(&rx));
    let gw = Gateway::start(&redis, &config).await;
    gw.ready().await;
    let bus_arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/orders");
    let archive_pattern = json!({"detail-type": ["OrderPaid"]});
    // Three rules on the bus, each with an API destination to its own path: `paid`,
    // `other`, and `live`, which leaves replayed events out by `replay-name`.
    let out = boto(
        &gw,
        &format!(
            r#"
out = {{}}
call(ev.create_event_bus, Name="orders")
call(ev.create_event_bus, Name="audit")
conn = call(ev.create_connection, Name="rx-key", AuthorizationType="API_KEY",
            AuthParameters={{"ApiKeyAuthParameters": {{"ApiKeyName": "x-api-key", "ApiKeyValue": "k"}}}})
rules = {{"paid": {{"source": ["com.shop"]}}, "other": {{"source": ["com.shop"]}},
         "live": {{"source": ["com.shop"], "replay-name": [{{"exists": False}}]}}}}
for name, pattern in rules.items():
    dest = call(ev.create_api_destination, Name=name, ConnectionArn=conn["ConnectionArn"],
                InvocationEndpoint="{url}/" + name, HttpMethod="POST")
    out[name] = call(ev.put_rule, Name=name, EventBusName="orders", EventPattern=json.dumps(pattern))
    out[name + "_targets"] = call(ev.put_targets, Rule=name, EventBusName="orders",
                                  Targets=[{{"Id": "rx", "Arn": dest["ApiDestinationArn"]}}])
out["archive"] = call(ev.create_archive, ArchiveName="paid-orders", EventSourceArn="{bus_arn}",
                      Description="paid orders", EventPattern=json.dumps({archive_pattern}), RetentionDays=7)
out["again"] = call(ev.create_archive, ArchiveName="paid-orders", EventSourceArn="{bus_arn}")
out["no_bus"] = call(ev.create_archive, ArchiveName="x", EventSourceArn="{bus_arn}".replace("orders", "nope"))
out["bad_pattern"] = call(ev.create_archive, ArchiveName="x", EventSourceArn="{bus_arn}",
                          EventPattern=json.dumps({{"detail": {{"a": "not-a-list"}}}}))
out["file_bus"] = call(ev.create_archive, ArchiveName="x", EventSourceArn="{bus_arn}".replace("orders", "results"))
out["other_bus"] = call(ev.create_archive, ArchiveName="all-audit", EventSourceArn="{bus_arn}".replace("orders", "audit"))
"#,
            url = rx.url(""),
        ),
    );
    for rule in ["paid", "other", "live"] {
        assert_eq!(
            out[format!("{rule}_targets")]["FailedEntryCount"],
            0,
            "{out}"
        );
    }
    assert_eq!(
        out["archive"]["ArchiveArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/paid-orders"),
        "{out}"
    );
    assert_eq!(out["archive"]["State"], "ENABLED");
    assert!(out["archive"]["CreationTime"].is_string(), "{out}");
    assert_eq!(out["again"]["Error"], "ResourceAlreadyExistsException");
    assert_eq!(out["no_bus"]["Error"], "ResourceNotFoundException");
    assert_eq!(
        out["bad_pattern"]["Error"], "InvalidEventPatternException",
        "{out}"
    );
    assert!(
        out["bad_pattern"]["Message"]
            .as_str()
            .unwrap()
            .contains("detail.a"),
        "{out}"
    );
    // A bus of the configuration file is read-only here, as every resource of the file.
    assert_eq!(out["file_bus"]["Error"], "ValidationException");
    assert_eq!(out["other_bus"]["State"], "ENABLED", "{out}");

    // The archive is an archive of the bus, with its pattern in the AWS dialect.
    let (status, native) = api(
        &gw,
        reqwest::Method::GET,
        "/api/v1/archives/paid-orders",
        None,
    )
    .await;
    assert_eq!(status, 200, "{native}");
    assert_eq!(native["bus"], "orders");
    assert_eq!(native["dialect"], "aws");
    assert_eq!(native["pattern"], archive_pattern);
    assert_eq!(native["retention_days"], 7);

    // Three paid orders (archived) and two placed ones (not).
    let out = boto(
        &gw,
        r#"
entries = [{"Source": "com.shop", "DetailType": t, "Detail": json.dumps({"n": i}), "EventBusName": "orders"}
           for i, t in enumerate(["OrderPaid", "OrderPlaced", "OrderPaid", "OrderPlaced", "OrderPaid"])]
out = call(ev.put_events, Entries=entries)
"#,
    );
    assert_eq!(out["FailedEntryCount"], 0, "{out}");
    let ids: Vec<String> = out["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventId"].as_str().unwrap().to_string())
        .collect();
    let mut paid = vec![ids[0].clone(), ids[2].clone(), ids[4].clone()];
    paid.sort();
    assert!(
        wait_until(Duration::from_secs(15), || ["/paid", "/other", "/live"]
            .iter()
            .all(|p| envelopes(&rx, p).len() == 5))
        .await,
        "{}",
        gw.logs()
    );

    // Segments are written within about 5 s of the events.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let described = loop {
        let d = boto(
            &gw,
            r#"out = call(ev.describe_archive, ArchiveName="paid-orders")"#,
        );
        if d["EventCount"] == 3 {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the archive never held the 3 events: {d}\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(described["ArchiveName"], "paid-orders");
    assert_eq!(described["EventSourceArn"], bus_arn.as_str());
    assert_eq!(described["Description"], "paid orders");
    assert_eq!(described["State"], "ENABLED");
    assert_eq!(described["RetentionDays"], 7);
    assert!(described["SizeBytes"].as_u64().unwrap() > 0, "{described}");
    assert_eq!(
        serde_json::from_str::<Value>(described["EventPattern"].as_str().unwrap()).unwrap(),
        archive_pattern
    );

    // Two replays of a window covering them: `again` to rule `paid` only, `to-all` to
    // every rule (each starts once a replica holds its lease: they run side by side).
    let out = boto(
        &gw,
        &format!(
            r#"
import datetime
now = datetime.datetime.now(datetime.timezone.utc)
window = dict(EventStartTime=now - datetime.timedelta(minutes=5), EventEndTime=now + datetime.timedelta(seconds=2))
archive = "arn:aws:events:{REGION}:{ACCOUNT}:archive/paid-orders"
rule = call(ev.describe_rule, Name="paid", EventBusName="orders")["Arn"]
out = {{}}
out["start"] = call(ev.start_replay, ReplayName="again", Description="once more", EventSourceArn=archive,
                    Destination={{"Arn": "{bus_arn}", "FilterArns": [rule]}}, **window)
out["to_all"] = call(ev.start_replay, ReplayName="to-all", EventSourceArn=archive,
                     Destination={{"Arn": "{bus_arn}"}}, **window)
out["dup"] = call(ev.start_replay, ReplayName="again", EventSourceArn=archive,
                  Destination={{"Arn": "{bus_arn}"}}, **window)
out["cross"] = call(ev.start_replay, ReplayName="cross", EventSourceArn=archive,
                    Destination={{"Arn": "{bus_arn}".replace("orders", "audit")}}, **window)
out["foreign_rule"] = call(ev.start_replay, ReplayName="cross", EventSourceArn=archive,
                           Destination={{"Arn": "{bus_arn}", "FilterArns": [rule.replace("orders/", "audit/")]}}, **window)
out["backwards"] = call(ev.start_replay, ReplayName="backwards", EventSourceArn=archive,
                        Destination={{"Arn": "{bus_arn}"}}, EventStartTime=now, EventEndTime=now - datetime.timedelta(minutes=1))
out["no_archive"] = call(ev.start_replay, ReplayName="none", EventSourceArn=archive.replace("paid-orders", "nope"),
                         Destination={{"Arn": "{bus_arn}"}}, **window)
"#
        ),
    );
    assert_eq!(
        out["start"]["ReplayArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:replay/again"),
        "{out}"
    );
    assert_eq!(out["start"]["State"], "STARTING");
    assert!(out["start"]["ReplayStartTime"].is_string(), "{out}");
    assert_eq!(out["to_all"]["State"], "STARTING", "{out}");
    assert_eq!(out["dup"]["Error"], "ResourceAlreadyExistsException");
    assert_eq!(out["cross"]["Error"], "ValidationException");
    assert_eq!(out["foreign_rule"]["Error"], "ValidationException");
    assert_eq!(out["backwards"]["Error"], "ValidationException");
    assert_eq!(out["no_archive"]["Error"], "ResourceNotFoundException");

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let replays = loop {
        let r = boto(
            &gw,
            r#"out = [call(ev.describe_replay, ReplayName=n) for n in ["again", "to-all"]]"#,
        );
        if r.as_array()
            .unwrap()
            .iter()
            .all(|r| r["State"] == "COMPLETED")
        {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replays never completed: {r}\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let replay = &replays[0];
    assert_eq!(replay["ReplayName"], "again");
    assert_eq!(replay["Description"], "once more");
    assert_eq!(
        replay["EventSourceArn"],
        format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/paid-orders")
    );
    assert_eq!(replay["Destination"]["Arn"], bus_arn.as_str());
    assert_eq!(
        replay["Destination"]["FilterArns"],
        json!([format!(
            "arn:aws:events:{REGION}:{ACCOUNT}:rule/orders/paid"
        )])
    );
    for t in [
        "EventStartTime",
        "EventEndTime",
        "EventLastReplayedTime",
        "ReplayStartTime",
        "ReplayEndTime",
    ] {
        assert!(replay[t].is_string(), "{t} missing: {replay}");
    }
    assert!(replays[1]["Destination"].get("FilterArns").is_none());

    // `paid` got the archived events from both replays, in the AWS envelope with
    // `replay-name`; `other` from `to-all` only; `live`, whose AWS pattern wants no
    // `replay-name`, none.
    let replayed = |path: &str, name: &str| -> Vec<String> {
        envelopes(&rx, path)
            .into_iter()
            .filter(|(_, r)| r.as_deref() == Some(name))
            .map(|(id, _)| id)
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(10), || envelopes(&rx, "/paid").len()
            == 11
            && envelopes(&rx, "/other").len() == 8)
        .await,
        "{:?}\n{}",
        envelopes(&rx, "/paid"),
        gw.logs()
    );
    assert_eq!(replayed("/paid", "again"), paid);
    assert_eq!(replayed("/paid", "to-all"), paid);
    assert_eq!(replayed("/other", "to-all"), paid);
    assert!(replayed("/other", "again").is_empty());
    let body: Value = serde_json::from_slice(
        &rx.received()
            .iter()
            .rev()
            .find(|r| r.path == "/paid")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(body["detail-type"], "OrderPaid");
    assert_eq!(body["source"], "com.shop");
    assert_eq!(body["account"], ACCOUNT);
    assert!(body["replay-name"].is_string(), "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(envelopes(&rx, "/live").len(), 5);
    assert!(envelopes(&rx, "/live").iter().all(|(_, r)| r.is_none()));

    // Lists, update, cancel and delete, with AWS's errors.
    let out = boto(
        &gw,
        &format!(
            r#"
out = {{}}
out["archives"] = call(ev.list_archives)
out["by_bus"] = [a["ArchiveName"] for a in call(ev.list_archives, EventSourceArn="{bus_arn}")["Archives"]]
out["by_prefix"] = [a["ArchiveName"] for a in call(ev.list_archives, NamePrefix="all-")["Archives"]]
p1 = call(ev.list_archives, Limit=1)
out["page1"] = [a["ArchiveName"] for a in p1["Archives"]]
out["page2"] = [a["ArchiveName"] for a in call(ev.list_archives, Limit=1, NextToken=p1["NextToken"])["Archives"]]
out["replays"] = call(ev.list_replays)
out["completed"] = [r["ReplayName"] for r in call(ev.list_replays, State="COMPLETED")["Replays"]]
out["prefix"] = [r["ReplayName"] for r in call(ev.list_replays, NamePrefix="to-")["Replays"]]
out["cancel"] = call(ev.cancel_replay, ReplayName="again")
out["cancel_missing"] = call(ev.cancel_replay, ReplayName="nope")
out["missing_replay"] = call(ev.describe_replay, ReplayName="nope")
out["update"] = call(ev.update_archive, ArchiveName="paid-orders", Description="renamed", RetentionDays=30)
out["updated"] = call(ev.describe_archive, ArchiveName="paid-orders")
out["update_missing"] = call(ev.update_archive, ArchiveName="nope", Description="x")
out["missing"] = call(ev.describe_archive, ArchiveName="nope")
out["delete"] = call(ev.delete_archive, ArchiveName="all-audit")
out["deleted"] = call(ev.describe_archive, ArchiveName="all-audit")
out["delete_again"] = call(ev.delete_archive, ArchiveName="all-audit")
"#
        ),
    );
    let archives = out["archives"]["Archives"].as_array().unwrap();
    let names: Vec<&str> = archives
        .iter()
        .map(|a| a["ArchiveName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["all-audit", "paid-orders"], "{out}");
    assert_eq!(archives[1]["EventCount"], 3);
    assert_eq!(archives[1]["EventSourceArn"], bus_arn.as_str());
    assert_eq!(archives[1]["State"], "ENABLED");
    assert_eq!(out["by_bus"], json!(["paid-orders"]));
    assert_eq!(out["by_prefix"], json!(["all-audit"]));
    assert_eq!(out["page1"], json!(["all-audit"]));
    assert_eq!(out["page2"], json!(["paid-orders"]));
    let replays: Vec<(&str, &str)> = out["replays"]["Replays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ReplayName"].as_str().unwrap(),
                r["State"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replays,
        [("again", "COMPLETED"), ("to-all", "COMPLETED")],
        "{out}"
    );
    assert_eq!(out["completed"], json!(["again", "to-all"]));
    assert_eq!(out["prefix"], json!(["to-all"]));
    assert_eq!(out["cancel"]["Error"], "IllegalStatusException", "{out}");
    assert_eq!(out["cancel_missing"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["missing_replay"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["update"]["State"], "ENABLED", "{out}");
    assert_eq!(out["updated"]["Description"], "renamed");
    assert_eq!(out["updated"]["RetentionDays"], 30);
    assert_eq!(out["updated"]["EventCount"], 3);
    assert_eq!(out["update_missing"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["missing"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["delete"], json!({}));
    assert_eq!(out["deleted"]["Error"], "ResourceNotFoundException");
    assert_eq!(out["delete_again"]["Error"], "ResourceNotFoundException");
}
