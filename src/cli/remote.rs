//! `sluice apply`, `diff`, `get` and `delete`: the resource API of a running gateway,
//! kubectl-like (`--server URL --token T`, also `SLUICE_SERVER` / `SLUICE_TOKEN`).
//!
//! Exit codes: 0 done (`diff`: no differences), 1 the API refused or failed (its
//! message printed; `diff`: differences found), 2 bad usage or an unreadable file.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Map, Value};

use crate::control::document::FileDoc;
use crate::control::store::Kind;

/// Where the gateway is and how to authenticate.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Server {
    /// The gateway's base URL.
    #[arg(long, env = "SLUICE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A bearer token for the control API.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(clap::Args)]
pub(super) struct ApplyArgs {
    /// The configuration file whose buses, rules, sources and functions to apply.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Check and show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete API-made resources the file does not list (the file is the whole
    /// truth, GitOps-style).
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    server: Server,
}

#[derive(clap::Args)]
pub(super) struct DiffArgs {
    /// The configuration file to compare with the gateway's store.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Show the deletions `apply --prune` would make too.
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    server: Server,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum Output {
    Table,
    Yaml,
    Json,
}

#[derive(clap::Args)]
pub(super) struct GetArgs {
    /// buses, rules, targets, sources or functions.
    kind: String,
    /// One resource (a rule as BUS/RULE); all without.
    name: Option<String>,
    /// `yaml` and `json` print a configuration document `sluice apply` takes.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    server: Server,
}

#[derive(clap::Args)]
pub(super) struct DeleteArgs {
    /// bus, rule, source or function.
    kind: String,
    /// The resource's name (a rule as BUS/RULE).
    name: String,
    /// Delete a bus even though it retains events (they are deleted with it).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    server: Server,
}

/// An answer of the API: status and JSON body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Server {
    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.server.trim_end_matches('/'));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let mut request = client.request(method, &url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let response = request
                .send()
                .await
                .map_err(|e| format!("cannot reach {url}: {e}"))?;
            let status = response.status().as_u16();
            let text = response.text().await.map_err(|e| e.to_string())?;
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            Ok(Answer { status, body })
        })
    }
}

/// The API's refusal as lines: its message, then every error at its path.
pub(crate) fn refusal(answer: &Answer) -> String {
    let b = &answer.body;
    let mut out = match b.get("message").and_then(Value::as_str) {
        Some(m) => format!("{} ({})", m, answer.status),
        None => format!("HTTP {}: {b}", answer.status),
    };
    for e in b
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .skip(1)
    {
        out.push_str(&format!(
            "\n  {}: {}",
            e["field"].as_str().unwrap_or_default(),
            e["message"].as_str().unwrap_or_default()
        ));
    }
    out
}

fn read_file(path: &PathBuf) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    FileDoc::parse(&text, Some(path.clone()))
        .map(|d| d.top)
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {e}", path.display()))
                .collect::<Vec<_>>()
                .join("\n")
        })
}

fn post_apply(
    server: &Server,
    config: Map<String, Value>,
    prune: bool,
    dry_run: bool,
) -> Result<Answer, String> {
    server.call(
        reqwest::Method::POST,
        "/api/v1/apply",
        Some(json!({"config": config, "prune": prune, "dry_run": dry_run})),
    )
}

/// `sluice apply -f FILE`.
pub(super) fn apply(args: &ApplyArgs) -> ExitCode {
    let config = match read_file(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice apply: {e}");
            return ExitCode::from(2);
        }
    };
    match post_apply(&args.server, config, args.prune, args.dry_run) {
        Ok(answer) if answer.status == 200 => {
            let suffix = if args.dry_run { " (dry run)" } else { "" };
            for c in answer.body["changes"].as_array().into_iter().flatten() {
                let action = match c["action"].as_str().unwrap_or_default() {
                    "create" => "created",
                    "update" => "updated",
                    "delete" => "deleted",
                    _ => "unchanged",
                };
                println!(
                    "{}/{} {action}{suffix}",
                    c["kind"].as_str().unwrap_or_default(),
                    c["id"].as_str().unwrap_or_default()
                );
            }
            for ignored in answer.body["ignored"].as_array().into_iter().flatten() {
                eprintln!(
                    "sluice apply: {} ignored: global settings come from the file given to serve",
                    ignored.as_str().unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            eprintln!("sluice apply: {}", refusal(&answer));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice apply: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice diff -f FILE`: exit 0 without differences, 1 with.
pub(super) fn diff(args: &DiffArgs) -> ExitCode {
    let config = match read_file(&args.file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice diff: {e}");
            return ExitCode::from(2);
        }
    };
    let answer = match post_apply(&args.server, config, args.prune, true) {
        Ok(a) if a.status == 200 => a,
        Ok(a) => {
            eprintln!("sluice diff: {}", refusal(&a));
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("sluice diff: {e}");
            return ExitCode::from(2);
        }
    };
    let mut differ = false;
    for c in answer.body["changes"].as_array().into_iter().flatten() {
        if c["action"] == "unchanged" {
            continue;
        }
        differ = true;
        let name = format!(
            "{}/{}",
            c["kind"].as_str().unwrap_or_default(),
            c["id"].as_str().unwrap_or_default()
        );
        let yaml = |v: &Value| {
            if v.is_null() {
                String::new()
            } else {
                yaml_serde::to_string(v).unwrap_or_default()
            }
        };
        let (before, after) = (yaml(&c["before"]), yaml(&c["after"]));
        println!("--- {name} (gateway)\n+++ {name} ({})", args.file.display());
        let text = similar::TextDiff::from_lines(&before, &after);
        print!("{}", text.unified_diff().context_radius(3));
    }
    if differ {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every item of a list endpoint, following `next`.
fn list_all(server: &Server, path: &str) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!(
                "{path}?limit=1000&after={}",
                percent_encoding::utf8_percent_encode(a, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => format!("{path}?limit=1000"),
        };
        let answer = server.call(reqwest::Method::GET, &url, None)?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        items.extend(answer.body["items"].as_array().cloned().unwrap_or_default());
        match answer.body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return Ok(items),
        }
    }
}

fn resource_path(kind: Kind, name: &str) -> Result<String, String> {
    let segment = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Ok(match kind {
        Kind::Rule => {
            let (bus, rule) = name
                .split_once('/')
                .ok_or_else(|| format!("a rule is named BUS/RULE, not {name:?}"))?;
            format!("/api/v1/buses/{}/rules/{}", segment(bus), segment(rule))
        }
        _ => format!("/api/v1/{}/{}", kind.section(), segment(name)),
    })
}

/// `sluice get KIND [NAME]`.
pub(super) fn get(args: &GetArgs) -> ExitCode {
    let fail = |m: String| {
        eprintln!("sluice get: {m}");
        ExitCode::FAILURE
    };
    if args.kind == "targets" {
        return match list_all(&args.server, "/api/v1/targets") {
            Ok(items) => {
                match args.output {
                    Output::Table => {
                        println!(
                            "{:<24} {:<24} {:<24} {:<20} ORIGIN",
                            "BUS", "RULE", "TARGET", "KIND"
                        );
                        for t in &items {
                            println!(
                                "{:<24} {:<24} {:<24} {:<20} {}",
                                t["bus"].as_str().unwrap_or_default(),
                                t["rule"].as_str().unwrap_or_default(),
                                t["target"].as_str().unwrap_or_default(),
                                t["kind"].as_str().unwrap_or_default(),
                                t["origin"].as_str().unwrap_or_default()
                            );
                        }
                    }
                    Output::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&items).unwrap_or_default()
                    ),
                    Output::Yaml => print!("{}", yaml_serde::to_string(&items).unwrap_or_default()),
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let Some(kind) = Kind::parse(&args.kind) else {
        eprintln!(
            "sluice get: unknown kind {:?}: buses, rules, targets, sources or functions",
            args.kind
        );
        return ExitCode::from(2);
    };
    let items = match &args.name {
        Some(name) => {
            let path = match resource_path(kind, name) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("sluice get: {e}");
                    return ExitCode::from(2);
                }
            };
            match args.server.call(reqwest::Method::GET, &path, None) {
                Ok(a) if a.status == 200 => vec![a.body],
                Ok(a) => return fail(refusal(&a)),
                Err(e) => return fail(e),
            }
        }
        None => match list_all(&args.server, &format!("/api/v1/{}", kind.section())) {
            Ok(items) => items,
            Err(e) => return fail(e),
        },
    };
    match args.output {
        Output::Table => {
            println!(
                "{:<40} {:<6} {:<8} UPDATED BY",
                kind.singular().to_uppercase(),
                "ORIGIN",
                "VERSION"
            );
            for r in &items {
                println!(
                    "{:<40} {:<6} {:<8} {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["origin"].as_str().unwrap_or_default(),
                    r["version"]
                        .as_u64()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r["updated_by"].as_str().unwrap_or("-")
                );
            }
        }
        // A document `apply -f` takes back (secrets redacted: `***` keeps the stored one).
        Output::Yaml | Output::Json => {
            let specs: Vec<Value> = items.iter().map(|r| r["spec"].clone()).collect();
            let doc = json!({ kind.section(): specs });
            match args.output {
                Output::Json => {
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
                }
                _ => print!("{}", yaml_serde::to_string(&doc).unwrap_or_default()),
            }
        }
    }
    ExitCode::SUCCESS
}

/// `sluice delete KIND NAME`.
pub(super) fn delete(args: &DeleteArgs) -> ExitCode {
    let Some(kind) = Kind::parse(&args.kind) else {
        eprintln!(
            "sluice delete: unknown kind {:?}: bus, rule, source or function",
            args.kind
        );
        return ExitCode::from(2);
    };
    let mut path = match resource_path(kind, &args.name) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sluice delete: {e}");
            return ExitCode::from(2);
        }
    };
    if args.force {
        path.push_str("?force=true");
    }
    match args.server.call(reqwest::Method::DELETE, &path, None) {
        Ok(a) if a.status == 204 => {
            println!("{}/{} deleted", kind.singular(), args.name);
            ExitCode::SUCCESS
        }
        Ok(a) => {
            eprintln!("sluice delete: {}", refusal(&a));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice delete: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Subcommand)]
pub(super) enum TokenAction {
    /// Make a token: printed once on stdout (its id on stderr); Redis keeps its hash.
    Create {
        /// admin, operator, viewer or publisher.
        #[arg(long)]
        role: String,
        /// Scope to this bus (repeatable); all buses without.
        #[arg(long = "bus")]
        buses: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        server: Server,
    },
    /// Revoke a token by id: it stops working on every replica within a second.
    Revoke {
        id: String,
        #[command(flatten)]
        server: Server,
    },
    /// List tokens (ids, roles, scopes; never the tokens).
    List {
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        server: Server,
    },
}

/// `sluice token create|revoke|list`.
pub(super) fn token(action: &TokenAction) -> ExitCode {
    let fail = |m: String| {
        eprintln!("sluice token: {m}");
        ExitCode::FAILURE
    };
    match action {
        TokenAction::Create {
            role,
            buses,
            description,
            server,
        } => {
            if !["admin", "operator", "viewer", "publisher"].contains(&role.as_str()) {
                eprintln!("sluice token create: --role is admin, operator, viewer or publisher, not {role:?}");
                return ExitCode::from(2);
            }
            let body = json!({"role": role, "buses": buses, "description": description});
            match server.call(reqwest::Method::POST, "/api/v1/tokens", Some(body)) {
                Ok(a) if a.status == 201 => {
                    println!("{}", a.body["token"].as_str().unwrap_or_default());
                    eprintln!(
                        "token {} ({role}) created; it is shown this once",
                        a.body["id"].as_str().unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Ok(a) => fail(refusal(&a)),
                Err(e) => fail(e),
            }
        }
        TokenAction::Revoke { id, server } => {
            let path = format!(
                "/api/v1/tokens/{}",
                percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
            );
            match server.call(reqwest::Method::DELETE, &path, None) {
                Ok(a) if a.status == 204 => {
                    println!("token {id} revoked");
                    ExitCode::SUCCESS
                }
                Ok(a) => fail(refusal(&a)),
                Err(e) => fail(e),
            }
        }
        TokenAction::List { output, server } => {
            match server.call(reqwest::Method::GET, "/api/v1/tokens", None) {
                Ok(a) if a.status == 200 => {
                    let items = a.body["items"].as_array().cloned().unwrap_or_default();
                    match output {
                        Output::Table => {
                            println!("{:<22} {:<10} {:<24} DESCRIPTION", "ID", "ROLE", "BUSES");
                            for t in &items {
                                let buses: Vec<&str> = t["buses"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter_map(Value::as_str)
                                    .collect();
                                println!(
                                    "{:<22} {:<10} {:<24} {}",
                                    t["id"].as_str().unwrap_or_default(),
                                    t["role"].as_str().unwrap_or_default(),
                                    if buses.is_empty() {
                                        "*".to_string()
                                    } else {
                                        buses.join(",")
                                    },
                                    t["description"].as_str().unwrap_or_default()
                                );
                            }
                        }
                        Output::Json => println!(
                            "{}",
                            serde_json::to_string_pretty(&items).unwrap_or_default()
                        ),
                        Output::Yaml => {
                            print!("{}", yaml_serde::to_string(&items).unwrap_or_default())
                        }
                    }
                    ExitCode::SUCCESS
                }
                Ok(a) => fail(refusal(&a)),
                Err(e) => fail(e),
            }
        }
    }
}
