//! The Alibaba Cloud EventBridge control facade driven by Alibaba's own Python SDK,
//! unmodified (PyPI `alibabacloud-eventbridge`, installed by `.ci/run`): buses, rules,
//! targets, testEventPattern and putEvents, signed with `acs:` as the SDK signs.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const KEY_ID: &str = "LTAI5tTestKeyId0001";
const SECRET: &str = "alibaba-test-secret";
const ACCOUNT: &str = "1649015465000000";

fn have_sdk() -> bool {
    have_python(
        "alibabacloud_eventbridge.client",
        "alibabacloud-eventbridge",
    )
}

/// Runs `script` with `client` (the SDK's client on the gateway), `m` (its models) and
/// `call(fn, request)`, which returns the answer as a dict or `{"Error": code}`.
fn sdk(gw: &Gateway, script: &str) -> Value {
    let prelude = r#"
import json, os
from alibabacloud_eventbridge.client import Client
from alibabacloud_eventbridge import models as m
client = Client(m.Config(access_key_id=os.environ["KEY"], access_key_secret=os.environ["SECRET"],
                         endpoint=os.environ["ENDPOINT"], protocol="http", region_id="cn-hangzhou"))
def call(fn, request):
    try:
        return fn(request).to_map()
    except Exception as e:
        return {"Error": getattr(e, "code", None) or type(e).__name__, "Message": str(e)}
out = None
"#;
    let full = format!("{prelude}\n{script}\nprint(json.dumps(out, default=str))\n");
    let endpoint = gw
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let result = std::process::Command::new("python3")
        .args(["-c", &full])
        .env("ENDPOINT", endpoint)
        .env("KEY", KEY_ID)
        .env("SECRET", SECRET)
        .output()
        .expect("python3 runs");
    assert!(
        result.status.success(),
        "SDK script failed: {}\n{script}\n{}",
        String::from_utf8_lossy(&result.stderr),
        gw.logs()
    );
    serde_json::from_slice(&result.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&result.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alibaba_sdk_creates_a_bus_rule_and_targets_that_deliver() {
    if !have_sdk() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: default}}]
alibaba:
  account: "{ACCOUNT}"
  access_keys: [{{id: {KEY_ID}, secret: "{SECRET}"}}]
"#
    );
    let gw = Gateway::start(&redis, &config).await;
    gw.ready().await;

    let out = sdk(
        &gw,
        &format!(
            r#"
out = {{}}
out["bus"] = call(client.create_event_bus, m.CreateEventBusRequest(event_bus_name="shop", description="the shop"))
out["again"] = call(client.create_event_bus, m.CreateEventBusRequest(event_bus_name="shop"))
out["get_bus"] = call(client.get_event_bus, m.GetEventBusRequest(event_bus_name="shop"))
body = m.EBTargetParam(resource_key="body", form="TEMPLATE", value=json.dumps({{"id": "$.data.id"}}), template='{{"order": "${{id}}"}}')
target = m.TargetEntry(id="rx", type="http", endpoint="{url}", param_list=[body], push_retry_strategy="BACKOFF_RETRY")
pattern = json.dumps({{"type": ["order.paid"], "data": {{"total": [{{"numeric": [">", 100]}}]}}}})
out["rule"] = call(client.create_rule, m.CreateRuleRequest(event_bus_name="shop", rule_name="paid", status="ENABLE",
                   filter_pattern=pattern, targets=[target]))
out["rule_again"] = call(client.create_rule, m.CreateRuleRequest(event_bus_name="shop", rule_name="paid", targets=[]))
out["no_bus"] = call(client.create_rule, m.CreateRuleRequest(event_bus_name="nope", rule_name="x", targets=[]))
out["bad_pattern"] = call(client.create_rule, m.CreateRuleRequest(event_bus_name="shop", rule_name="bad", targets=[],
                   filter_pattern=json.dumps({{"data": {{"total": "not-a-list"}}}})))
out["bad_type"] = call(client.create_targets, m.CreateTargetsRequest(event_bus_name="shop", rule_name="paid",
                   targets=[m.TargetEntry(id="q", type="acs.mns.queue", endpoint="acs:mns:cn-hangzhou:1:queues/q")]))
fwd_params = [m.EBTargetParam(resource_key="AliyunEventBus", form="CONSTANT", value="default"),
              m.EBTargetParam(resource_key="RegionId", form="CONSTANT", value="cn-hangzhou")]
out["fwd"] = call(client.create_targets, m.CreateTargetsRequest(event_bus_name="shop", rule_name="paid",
                   targets=[m.TargetEntry(id="fwd", type="acs.eventbridge", endpoint="acs:eventbridge:cn-hangzhou:{account}:eventbus/default", param_list=fwd_params)]))
def event(i, total):
    return m.CloudEvent(id=i, source="shop", type="order.paid", datacontenttype="application/json",
                        data=json.dumps({{"id": i, "total": total}}).encode(), extensions={{"aliyuneventbusname": "shop"}})
out["put"] = client.put_events([event("o-1", 150), event("o-2", 50)]).to_map()
"#,
            url = rx.url("/hook"),
            account = ACCOUNT
        ),
    );
    assert_eq!(
        out["bus"]["EventBusARN"],
        format!("acs:eventbridge:cn-hangzhou:{ACCOUNT}:eventbus/shop"),
        "{out}"
    );
    assert_eq!(out["again"]["Error"], "EventBusAlreadyExist", "{out}");
    assert_eq!(out["get_bus"]["Description"], "the shop");
    assert_eq!(
        out["rule"]["RuleARN"],
        format!("acs:eventbridge:cn-hangzhou:{ACCOUNT}:eventbus/shop/rule/paid")
    );
    assert_eq!(out["rule_again"]["Error"], "EventRuleAlreadyExisted");
    assert_eq!(out["no_bus"]["Error"], "EventBusNotExist");
    assert_eq!(
        out["bad_pattern"]["Error"], "EventRuleFilterPatternInvalid",
        "{out}"
    );
    assert_eq!(out["bad_type"]["Error"], "EventTargetTypeNotSupported");
    assert_eq!(out["fwd"]["ErrorEntriesCount"], 0, "{out}");
    assert_eq!(out["put"]["FailedEntryCount"], 0, "{out}");

    assert!(
        wait_until(Duration::from_secs(20), || rx.count() >= 1).await,
        "{}",
        gw.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.received();
    assert_eq!(got.len(), 1, "only the event over 100 matches");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body, json!({"order": "o-1"}));
    // The acs.eventbridge target to a bus of this gateway forwarded o-1 into it.
    assert!(
        wait_until(Duration::from_secs(10), || redis
            .xlen("sluice:{default}:events")
            == 1)
        .await,
        "{}",
        gw.logs()
    );

    // The rule as the native API sees it, and as the SDK reads it back.
    let native: Value = reqwest::get(gw.url("/api/v1/buses/shop/rules/paid"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(native["spec"]["targets"][0]["kind"], "http");
    assert_eq!(
        native["spec"]["targets"][0]["transform"]["form"],
        "TEMPLATE"
    );
    assert_eq!(native["spec"]["targets"][0]["retry"]["max_attempts"], 3);
    let out = sdk(
        &gw,
        r#"
out = {}
now = int(__import__("time").time() * 1000)
out["by_period"] = call(client.query_events_by_period, m.QueryEventsByPeriodRequest(event_bus_name="shop", start_time=now - 3600000, end_time=now + 60000, limit=10))
out["by_rule"] = call(client.query_events_by_period, m.QueryEventsByPeriodRequest(event_bus_name="shop", start_time=now - 3600000, end_time=now + 60000, limit=10, matched_rule="paid"))
out["by_type"] = call(client.query_events_by_period, m.QueryEventsByPeriodRequest(event_bus_name="shop", start_time=now - 3600000, end_time=now + 60000, event_type="order.refunded"))
out["by_id"] = call(client.query_event_by_event_id, m.QueryEventByEventIdRequest(event_bus_name="shop", event_id="o-2"))
out["by_id_none"] = call(client.query_event_by_event_id, m.QueryEventByEventIdRequest(event_bus_name="shop", event_id="nope"))
out["by_id_no_bus"] = call(client.query_event_by_event_id, m.QueryEventByEventIdRequest(event_bus_name="nope", event_id="o-2"))
out["get"] = call(client.get_rule, m.GetRuleRequest(event_bus_name="shop", rule_name="paid"))
out["list"] = call(client.list_rules, m.ListRulesRequest(event_bus_name="shop"))
out["targets"] = call(client.list_targets, m.ListTargetsRequest(event_bus_name="shop", rule_name="paid"))
out["disable"] = call(client.disable_rule, m.DisableRuleRequest(event_bus_name="shop", rule_name="paid"))
out["after_disable"] = call(client.get_rule, m.GetRuleRequest(event_bus_name="shop", rule_name="paid"))["Status"]
out["update"] = call(client.update_rule, m.UpdateRuleRequest(event_bus_name="shop", rule_name="paid", description="edited", status="ENABLE"))
out["after_update"] = call(client.get_rule, m.GetRuleRequest(event_bus_name="shop", rule_name="paid"))
ev = json.dumps({"specversion": "1.0", "id": "1", "source": "shop", "type": "order.paid", "data": {"total": 150}})
out["test_yes"] = call(client.test_event_pattern, m.TestEventPatternRequest(event=ev, event_pattern=json.dumps({"data": {"total": [{"numeric": [">", 100]}]}})))
out["test_no"] = call(client.test_event_pattern, m.TestEventPatternRequest(event=ev, event_pattern=json.dumps({"type": ["other"]})))
out["missing"] = call(client.get_rule, m.GetRuleRequest(event_bus_name="shop", rule_name="nope"))
out["delete_targets"] = call(client.delete_targets, m.DeleteTargetsRequest(event_bus_name="shop", rule_name="paid", target_ids=["rx", "fwd"]))
out["targets_after"] = call(client.list_targets, m.ListTargetsRequest(event_bus_name="shop", rule_name="paid"))["Targets"]
out["delete_rule"] = call(client.delete_rule, m.DeleteRuleRequest(event_bus_name="shop", rule_name="paid"))
out["buses"] = [b["EventBusName"] for b in call(client.list_event_buses, m.ListEventBusesRequest())["EventBuses"]]
out["delete_bus"] = call(client.delete_event_bus, m.DeleteEventBusRequest(event_bus_name="shop"))
out["bus_gone"] = call(client.get_event_bus, m.GetEventBusRequest(event_bus_name="shop"))
"#,
    );
    // The retained events, as its event-query actions answer them.
    let ids = |v: &Value| -> Vec<String> {
        v["TracedEvents"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|e| e["EventId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&out["by_period"]), ["o-1", "o-2"], "{out}");
    assert_eq!(out["by_period"]["TracedEvents"][0]["EventBusName"], "shop");
    assert_eq!(
        out["by_period"]["TracedEvents"][0]["EventType"],
        "order.paid"
    );
    assert!(
        out["by_period"]["TracedEvents"][0]["EventReceivedTime"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(ids(&out["by_rule"]), ["o-1"], "only o-1 matches rule paid");
    assert_eq!(ids(&out["by_type"]), Vec::<String>::new());
    assert_eq!(ids(&out["by_id"]), ["o-2"]);
    assert_eq!(ids(&out["by_id_none"]), Vec::<String>::new());
    assert_eq!(out["by_id_no_bus"]["Error"], "EventBusNotExist", "{out}");
    assert_eq!(out["get"]["RuleName"], "paid", "{out}");
    assert_eq!(out["get"]["Status"], "ENABLE");
    assert_eq!(
        serde_json::from_str::<Value>(out["get"]["FilterPattern"].as_str().unwrap()).unwrap(),
        json!({"type": ["order.paid"], "data": {"total": [{"numeric": [">", 100]}]}})
    );
    assert_eq!(out["get"]["Targets"][0]["Type"], "http");
    assert_eq!(out["get"]["Targets"][0]["ParamList"][0]["Form"], "TEMPLATE");
    assert_eq!(out["list"]["Total"], 1);
    assert_eq!(out["targets"]["Targets"][0]["Id"], "rx");
    assert_eq!(out["after_disable"], "DISABLE");
    assert_eq!(out["after_update"]["Status"], "ENABLE");
    assert_eq!(out["after_update"]["Description"], "edited");
    assert_eq!(out["test_yes"]["Result"], true);
    assert_eq!(out["test_no"]["Result"], false);
    assert_eq!(out["missing"]["Error"], "EventRuleNotExisted");
    assert_eq!(out["delete_targets"]["ErrorEntriesCount"], 0);
    assert_eq!(out["targets_after"], json!([]));
    assert_eq!(out["buses"], json!(["default", "shop"]));
    assert_eq!(out["bus_gone"]["Error"], "EventBusNotExist");

    // An unsigned control request is refused, as the cloud refuses it.
    let res = reqwest::Client::new()
        .post(gw.url("/openapi/createEventBus"))
        .json(&json!({"EventBusName": "x"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let body: Value = res.json().await.unwrap();
    assert!(body["code"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alibaba_sdk_reads_an_event_trace() {
    if !have_sdk() {
        return;
    }
    let redis = Redis::start();
    let rx = Receiver::start().await;
    let config = format!(
        r#"
buses: [{{name: shop, trace: {{}}}}]
alibaba:
  account: "{ACCOUNT}"
  access_keys: [{{id: {KEY_ID}, secret: "{SECRET}"}}]
rules:
  - name: paid
    bus: shop
    targets: [{{name: rx, kind: http, url: "{}", timeout: 2s, retry: {{initial: 100ms, max: 100ms}}}}]
"#,
        rx.url("/hook")
    );
    let gw = Gateway::start(&redis, &config).await;
    gw.ready().await;
    rx.answer_once(503, &[]);
    let body = structured_event("t-1", "order.paid", "{}");
    assert_eq!(post_structured(&gw, "shop", &body).await, 202);
    assert!(wait_until(Duration::from_secs(10), || rx.count() == 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = sdk(
        &gw,
        r#"
out = {}
out["trace"] = call(client.query_event_traces, m.QueryEventTracesRequest(event_bus_name="shop", event_id="t-1"))
out["none"] = call(client.query_event_traces, m.QueryEventTracesRequest(event_bus_name="shop", event_id="nope"))
out["no_bus"] = call(client.query_event_traces, m.QueryEventTracesRequest(event_bus_name="nope", event_id="t-1"))
"#,
    );
    let list = out["trace"]["EventTraceList"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"));
    let actions: Vec<&str> = list.iter().map(|t| t["Action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["PutEvent", "FilterEvent", "PushEvent", "PushEvent"],
        "{out}"
    );
    assert_eq!(list[0]["EventSource"], "/test");
    assert_eq!(list[0]["ResourceOwnerId"], ACCOUNT);
    assert_eq!(list[1]["RuleName"], "paid");
    assert!(
        list[1]["RuleMatchingTime"].as_u64().unwrap() >= list[0]["ReceivedTime"].as_u64().unwrap()
    );
    assert_eq!(
        list[2]["NotifyStatus"], "[503]target answered HTTP 503",
        "{out}"
    );
    assert_eq!(list[3]["NotifyStatus"], "[200]Ok");
    assert_eq!(list[3]["Endpoint"], "paid/rx");
    assert_eq!(out["none"]["EventTraceList"], json!([]));
    assert_eq!(out["no_bus"]["Error"], "EventBusNotExist", "{out}");
}
