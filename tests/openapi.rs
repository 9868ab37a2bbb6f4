//! The control API's OpenAPI document (`GET /api/v1/openapi.json`): it lists every route
//! the control scope mounts, and schemathesis, run against a gateway, finds no 5xx and
//! no answer that the document does not describe.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Gateway, Redis};
use serde_json::{json, Value};

/// Every route `control::configure` mounts under /api/v1 (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/dlq"),
    ("GET", "/api/v1/dlq/{bus}/{rule}/{target}"),
    ("POST", "/api/v1/dlq/{bus}/{rule}/{target}/redrive"),
    ("POST", "/api/v1/dlq/{bus}/{rule}/{target}/purge"),
    ("GET", "/api/v1/dlq/{bus}/{rule}/{target}/{entry}"),
    ("GET", "/api/v1/schemas"),
    ("GET", "/api/v1/schemas/{name}/versions"),
    ("POST", "/api/v1/schemas/{name}/versions"),
    ("GET", "/api/v1/schemas/{name}/versions/{version}"),
    ("GET", "/api/v1/buses"),
    ("GET", "/api/v1/buses/{bus}"),
    ("GET", "/api/v1/buses/{bus}/events"),
    ("GET", "/api/v1/buses/{bus}/events/{id}"),
    ("GET", "/api/v1/buses/{bus}/stats"),
    ("PUT", "/api/v1/buses/{bus}"),
    ("DELETE", "/api/v1/buses/{bus}"),
    ("GET", "/api/v1/buses/{bus}/rules"),
    ("GET", "/api/v1/buses/{bus}/rules/{rule}"),
    ("PUT", "/api/v1/buses/{bus}/rules/{rule}"),
    ("DELETE", "/api/v1/buses/{bus}/rules/{rule}"),
    ("GET", "/api/v1/rules"),
    ("GET", "/api/v1/targets"),
    ("POST", "/api/v1/targets/{bus}/{rule}/{target}/resume"),
    ("GET", "/api/v1/sources"),
    ("GET", "/api/v1/sources/{name}"),
    ("PUT", "/api/v1/sources/{name}"),
    ("DELETE", "/api/v1/sources/{name}"),
    ("GET", "/api/v1/functions"),
    ("GET", "/api/v1/functions/{name}"),
    ("PUT", "/api/v1/functions/{name}"),
    ("DELETE", "/api/v1/functions/{name}"),
    ("POST", "/api/v1/apply"),
    ("GET", "/api/v1/audit"),
    ("POST", "/api/v1/test-pattern"),
    ("POST", "/api/v1/transform"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{id}"),
    ("GET", "/api/v1/archives"),
    ("GET", "/api/v1/archives/{name}"),
    ("PUT", "/api/v1/archives/{name}"),
    ("DELETE", "/api/v1/archives/{name}"),
    ("GET", "/api/v1/replays"),
    ("POST", "/api/v1/replays"),
    ("GET", "/api/v1/replays/{name}"),
    ("POST", "/api/v1/replays/{name}/cancel"),
];

fn listed() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

/// The routes the source registers: every module `configure` (src/control/mod.rs)
/// mounts with `.configure(NAME::routes)`, and each `.route("PATH", web::METHOD()` there.
fn registered_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/control");
    let squeeze = |text: String| -> String { text.split_whitespace().collect() };
    let module: String = std::fs::read_to_string(dir.join("mod.rs"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let module = squeeze(module);
    let configure = &module[module.find("pubfnconfigure(").expect("configure")..];
    let mut routes = BTreeSet::new();
    let mut modules = 0;
    for part in configure.split(".configure(").skip(1) {
        let Some((name, _)) = part.split_once("::routes)") else {
            continue;
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        modules += 1;
        let text = squeeze(std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap());
        for route in text.split(".route(\"").skip(1) {
            let (path, rest) = route.split_once('"').unwrap();
            let method = rest
                .strip_prefix(",web::")
                .and_then(|r| r.split_once('('))
                .map(|(m, _)| m.to_uppercase())
                .unwrap_or_else(|| panic!("{name}.rs: the route {path} has no web::METHOD()"));
            routes.insert((method, format!("/api/v1{path}")));
        }
    }
    assert!(modules >= 5, "configure mounts {modules} modules?");
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let redis = Redis::start();
    let gw = Gateway::start(&redis, "{}\n").await;
    let client = reqwest::Client::new();
    let res = client
        .get(gw.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = serde_json::from_str(&res.text().await.unwrap()).expect("valid JSON");
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1"), "openapi: {version}");

    // The list above is the source's, and the document's.
    assert_eq!(
        listed(),
        registered_in_source(),
        "ROUTES differs from the routes src/control registers"
    );
    let documented = documented(&doc);
    let missing: Vec<_> = listed().difference(&documented).cloned().collect();
    let extra: Vec<_> = documented.difference(&listed()).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes that are not mounted: {extra:?}"
    );

    // Each is mounted: the router answers it (actix's own 404/405 have no body).
    for (method, path) in ROUTES {
        let url = gw.url(&path.replace(['{', '}'], "").replace("entry", "1-0"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = client.request(method.clone(), &url).send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            status != 405 && !(status == 404 && body.is_empty()),
            "{method} {url}: {status} {body:?}: not mounted"
        );
        assert!(status < 500, "{method} {url}: {status} {body}");
    }

    // Every operation declares its path parameters and says how it fails.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let in_path: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(params, in_path, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            for (status, r) in responses {
                if status.starts_with('4') && status != "413" {
                    assert!(
                        r["content"]["application/json"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    let list = &doc["paths"]["/api/v1/buses"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// The `st` of schemathesis, or why there is none.
fn schemathesis() -> Result<String, String> {
    match Command::new("st").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).trim().into()),
        Ok(out) => Err(format!(
            "`st --version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => Err(format!(
            "schemathesis is not installed (`st`: {e}); python3 -m pip install schemathesis"
        )),
    }
}

/// Creates the resources the document's examples name, so that schemathesis reads,
/// lists and writes real ones too.
/// The bootstrap admin token of the schemathesis run.
const ADMIN: &str = "openapi-admin-token";

async fn seed(gw: &Gateway) {
    let client = reqwest::Client::new();
    let hook = format!("http://127.0.0.1:{}/hook", free_port());
    for (path, body) in [
        ("/api/v1/buses/orders", json!({"retention": "7d"})),
        ("/api/v1/buses/audit", json!({})),
        (
            "/api/v1/buses/orders/rules/paid",
            json!({"pattern": {"type": ["order.paid"]}, "targets": [{"name": "hook", "kind": "http", "url": hook}]}),
        ),
        (
            "/api/v1/sources/orders-hook",
            json!({"kind": "token", "bus": "orders", "secret": "s3cret"}),
        ),
        ("/api/v1/functions/echo", json!({"command": "true"})),
    ] {
        let res = client
            .put(gw.url(path))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert!(
            status.is_success(),
            "PUT {path}: {status} {}",
            res.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let version = match schemathesis() {
        Ok(v) => v,
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let redis = Redis::start();
    // With a bootstrap token that schemathesis sends: the tokens it creates along the
    // way (POST /api/v1/tokens) do not lock it out.
    let gw = Gateway::start(&redis, &format!("api: {{token: {ADMIN}}}\n")).await;
    seed(&gw).await;
    let work = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new("st")
        .current_dir(work.path())
        .args(["run", &gw.url("/api/v1/openapi.json")])
        .args(["--url", &gw.url("")])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        // 20 generated cases per operation and phase (coverage adds its boundary cases).
        .args(["--max-examples", "20"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--seed", "20261202"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bounded run: at most 4 minutes (about 40 s here).
    let limit = Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "schemathesis ran over {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{version}: {:?}\n{}",
        started.elapsed(),
        stdout.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
    let logs = gw.logs();
    assert!(!logs.contains("panicked"), "the gateway panicked:\n{logs}");
    assert!(
        status.success(),
        "schemathesis failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
