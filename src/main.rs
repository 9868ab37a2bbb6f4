//! The `sluice` command line: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice::config::Config;
use sluice::gateway::{self, Settings};
use sluice::observability::{self, LogFormat};

// The request path allocates many small, short-lived buffers; mimalloc handles that
// pattern markedly better than the system allocator (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A webhook and CloudEvents gateway on Redis Streams"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a replica.
    Serve {
        /// Configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
        /// Listen address; overrides the config's `listen`.
        #[arg(long, env = "SLUICE_LISTEN")]
        listen: Option<String>,
        /// Redis URL; overrides the config's `redis`.
        #[arg(long, env = "REDIS_URL")]
        redis: Option<String>,
    },
    /// Try Sluice locally: finds or starts a Redis, mounts the /dev/echo target.
    Dev {
        /// Configuration file (YAML).
        #[arg(long, default_value = "examples/quickstart/sluice.yaml")]
        config: PathBuf,
        /// Listen address; overrides the config's `listen`.
        #[arg(long, env = "SLUICE_LISTEN")]
        listen: Option<String>,
    },
    /// Validate a configuration file: exit 0 when valid, 1 with every error otherwise.
    Check {
        /// Configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Test an event pattern against an event: exit 0 on a match, 1 on no match, 2 if
    /// the pattern or the event is invalid. Uses the router's matcher.
    TestPattern {
        /// The pattern (JSON or YAML), or @FILE.
        #[arg(long)]
        pattern: String,
        /// A CloudEvent in the JSON format, or @FILE.
        #[arg(long)]
        event: String,
    },
    /// Apply a transform to an event and print the body a target would receive
    /// (its content type goes to stderr). Exit 2 if the transform or event is invalid.
    Transform {
        /// The transform (JSON or YAML, as under `transform:`), or @FILE.
        #[arg(long)]
        transform: String,
        /// A CloudEvent in the JSON format, or @FILE.
        #[arg(long)]
        event: String,
        /// Delivery mode used when the transform is ORIGINAL.
        #[arg(long, value_enum, default_value = "structured")]
        mode: CliMode,
        /// Rule name for `aws.events.rule-name` and `aws.events.rule-arn`.
        #[arg(long, default_value = "rule")]
        rule: String,
        /// Bus name for `aws.events.rule-arn`.
        #[arg(long, default_value = "bus")]
        bus: String,
    },
    /// Run one invocation of a function of the config locally (the function host only,
    /// no Redis) and print its result: exit 0 on success, 1 on a function error
    /// (timeout, crash: the error JSON is printed), 2 on bad input.
    Invoke {
        /// The function's name in `functions:`.
        function: String,
        /// Configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
        /// The payload (JSON), or @FILE. Default `{}`.
        #[arg(long, default_value = "{}")]
        event: String,
    },
    /// Validate an event against a schema, or infer schemas from events.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Inspect and repair a target's dead-letter stream (straight against Redis):
    /// exit 0 on success, 1 on a failure (Redis, entry not found), 2 on a usage error.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// One line per entry: entry id, event id, reason, attempts (tab-separated).
    List(DlqArgs),
    /// One entry (--id) as JSON: the event, the reason and every attempt.
    Show(DlqArgs),
    /// Move entries (--id, --all or --pattern) back to the target stream; they are
    /// delivered again with the same event id.
    Redrive(DlqArgs),
    /// Delete entries (--id, --all or --pattern).
    Purge(DlqArgs),
}

#[derive(Subcommand)]
enum SchemaAction {
    /// Validate an event's data: exit 0 valid, 1 invalid (every violation printed),
    /// 2 if the schema or the event is unusable.
    Validate {
        /// The schema: JSON or YAML text, @FILE, or a file path.
        #[arg(long)]
        schema: String,
        #[arg(long, value_enum, default_value = "jsonschema")]
        format: CliSchemaFormat,
        /// openapi: the components/schemas entry describing the data.
        #[arg(long)]
        component: Option<String>,
        /// A CloudEvent in the JSON format (its `data` is validated), or @FILE.
        #[arg(long, required_unless_present = "data", conflicts_with = "data")]
        event: Option<String>,
        /// The data alone (JSON), or @FILE.
        #[arg(long)]
        data: Option<String>,
    },
    /// Infer a JSON Schema per (source, type) from CloudEvents (a JSON array, or one
    /// event per line), as discovery does; prints them as JSON. Exit 2 on bad input.
    Infer {
        /// File of CloudEvents in the JSON format (`-` for stdin).
        #[arg(long)]
        events: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliSchemaFormat {
    Jsonschema,
    Openapi,
}

#[derive(clap::Args)]
struct DlqArgs {
    /// Configuration file (YAML): names the target and the Redis.
    #[arg(long)]
    config: PathBuf,
    /// Redis URL; overrides the config's `redis`.
    #[arg(long, env = "REDIS_URL")]
    redis: Option<String>,
    #[arg(long)]
    bus: String,
    #[arg(long)]
    rule: String,
    #[arg(long)]
    target: String,
    /// A DLQ entry id (as printed by `list`).
    #[arg(long)]
    id: Option<String>,
    /// Every entry (redrive, purge).
    #[arg(long, conflicts_with = "id")]
    all: bool,
    /// Entries whose event matches this event pattern (redrive, purge): JSON (or YAML) inline,
    /// or @FILE; the language of rules (docs/patterns.md).
    #[arg(long, conflicts_with_all = ["id", "all"])]
    pattern: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CliMode {
    Binary,
    Structured,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    observability::init(cli.log_format);
    match cli.command {
        Command::Check { config } => match load(&config) {
            Some(c) => {
                let targets: usize = c.rules.iter().map(|r| r.targets.len()).sum();
                // Sources are only counted when there are some, so existing output holds.
                let sources = match c.sources.len() {
                    0 => String::new(),
                    n => format!("{n} sources, "),
                };
                println!(
                    "{}: ok ({} buses, {sources}{} rules, {} targets)",
                    config.display(),
                    c.buses.len(),
                    c.rules.len(),
                    targets
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::TestPattern { pattern, event } => match test_pattern(&pattern, &event) {
            Ok(true) => {
                println!("match");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("no match");
                ExitCode::from(1)
            }
            Err(message) => {
                eprintln!("sluice test-pattern: {message}");
                ExitCode::from(2)
            }
        },
        Command::Transform {
            transform,
            event,
            mode,
            rule,
            bus,
        } => match transform_command(&transform, &event, mode, &rule, &bus) {
            Ok((body, content_type)) => {
                use std::io::Write;
                eprintln!("content-type: {content_type}");
                let mut out = std::io::stdout();
                let _ = out.write_all(&body).and_then(|()| out.flush());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("sluice transform: {message}");
                ExitCode::from(2)
            }
        },
        Command::Dlq { action } => dlq_command(action),
        Command::Invoke {
            function,
            config,
            event,
        } => invoke_command(&function, &config, &event),
        Command::Schema { action } => schema_command(action),
        Command::Serve {
            config,
            listen,
            redis,
        } => {
            let Some(config) = load(&config) else {
                return ExitCode::FAILURE;
            };
            let redis_url = redis
                .or_else(|| config.redis.clone())
                .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
            let listen = listen.unwrap_or_else(|| config.listen.clone());
            run(async move {
                gateway::run(Settings {
                    config,
                    redis_url,
                    listen,
                    dev_echo: false,
                })
                .await
            })
        }
        Command::Dev { config, listen } => {
            let Some(config) = load(&config) else {
                return ExitCode::FAILURE;
            };
            let listen = listen.unwrap_or_else(|| config.listen.clone());
            run(async move {
                let redis = sluice::dev::discover_redis().await?;
                eprintln!(
                    "sluice dev: Redis at {}, listening on http://{listen}; echo target at http://{listen}/dev/echo",
                    gateway::redact(&redis.url)
                );
                let settings = Settings {
                    config,
                    redis_url: redis.url.clone(),
                    listen,
                    dev_echo: true,
                };
                gateway::run(settings).await
            })
        }
    }
}

fn dlq_command(action: DlqAction) -> ExitCode {
    use sluice::dlq::{self, DlqRef, Selection};
    let (name, args) = match &action {
        DlqAction::List(a) => ("list", a),
        DlqAction::Show(a) => ("show", a),
        DlqAction::Redrive(a) => ("redrive", a),
        DlqAction::Purge(a) => ("purge", a),
    };
    let usage = |message: String| {
        eprintln!("sluice dlq {name}: {message}");
        ExitCode::from(2)
    };
    let failure = |message: String| {
        eprintln!("sluice dlq {name}: {message}");
        ExitCode::FAILURE
    };
    let selected = args.id.is_some() || args.all || args.pattern.is_some();
    match name {
        "list" if selected => return usage("list takes no --id, --all or --pattern".into()),
        "show" if args.id.is_none() => return usage("show needs --id ENTRY".into()),
        "show" if args.all || args.pattern.is_some() => {
            return usage("show takes --id, not --all or --pattern".into())
        }
        "redrive" | "purge" if !selected => {
            return usage(format!("{name} needs --id ENTRY, --all or --pattern JSON"))
        }
        _ => {}
    }
    if let Some(id) = &args.id {
        if !dlq::is_entry_id(id) {
            return usage(format!(
                "--id {id:?} is not a full entry id such as 1700000000000-0 (see `sluice dlq list`)"
            ));
        }
    }
    let selection = match (&args.id, &args.pattern) {
        (Some(id), _) => Selection::Ids(vec![id.clone()]),
        (None, Some(pattern)) => {
            let compiled = read_pattern(pattern).and_then(|value| {
                Selection::pattern(&value).map_err(|e| format!("invalid pattern: {e}"))
            });
            match compiled {
                Ok(selection) => selection,
                Err(message) => return usage(format!("--pattern: {message}")),
            }
        }
        (None, None) => Selection::All,
    };
    let Some(config) = load(&args.config) else {
        return ExitCode::FAILURE;
    };
    let known = config.rules.iter().any(|r| {
        r.bus == args.bus && r.name == args.rule && r.targets.iter().any(|t| t.name == args.target)
    });
    if !known {
        return usage(format!(
            "{} has no target {:?} in a rule {:?} on bus {:?}",
            args.config.display(),
            args.target,
            args.rule,
            args.bus
        ));
    }
    let url = args
        .redis
        .clone()
        .or_else(|| config.redis.clone())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let target = DlqRef::new(&args.bus, &args.rule, &args.target);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    runtime.block_on(async {
        // A stalled Redis must not hang the command: the connection bounds connecting
        // and every reply (bus::connect).
        let mut conn = match sluice::bus::connect(&url) {
            Ok(conn) => conn,
            Err(e) => return failure(format!("invalid Redis URL {}: {e}", gateway::redact(&url))),
        };
        if let Err(e) = redis::cmd("PING").query_async::<()>(&mut conn).await {
            return failure(format!("cannot connect to {}: {e}", gateway::redact(&url)));
        }
        let result = match &action {
            DlqAction::List(_) => dlq::list(&mut conn, &target).await.map(|entries| {
                for e in entries {
                    println!(
                        "{}\t{}\t{}\t{}",
                        e.id,
                        e.event_id,
                        e.reason,
                        e.attempt_count()
                    );
                }
                ExitCode::SUCCESS
            }),
            DlqAction::Show(a) => {
                let id = a.id.as_deref().unwrap_or_default();
                dlq::get(&mut conn, &target, id)
                    .await
                    .map(|entry| match entry {
                        Some(e) => {
                            println!(
                                "{}",
                                serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                            );
                            ExitCode::SUCCESS
                        }
                        None => failure(format!("no entry {id} in {}", target.dlq)),
                    })
            }
            DlqAction::Redrive(_) | DlqAction::Purge(_) => {
                let (done, verb) = if name == "redrive" {
                    (
                        dlq::redrive(&mut conn, &target, &selection).await,
                        "redriven",
                    )
                } else {
                    (dlq::purge(&mut conn, &target, &selection).await, "purged")
                };
                done.map(|outcome| match outcome.missing.first() {
                    Some(id) => failure(format!("no entry {id} in {}", target.dlq)),
                    None => {
                        println!("{} {verb}", outcome.done);
                        ExitCode::SUCCESS
                    }
                })
            }
        };
        result.unwrap_or_else(|e| failure(format!("redis: {e}")))
    })
}

/// `sluice invoke`: one invocation on a host of its own.
fn invoke_command(function: &str, config: &Path, event: &str) -> ExitCode {
    let usage = |message: String| {
        eprintln!("sluice invoke: {message}");
        ExitCode::from(2)
    };
    let payload = match inline_or_file(event) {
        Ok(text) => text,
        Err(e) => return usage(e),
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
        return usage(format!("--event is not JSON: {e}"));
    }
    let Some(config) = load(config) else {
        return ExitCode::from(2);
    };
    let Some(spec) = config.functions.iter().find(|f| f.name == function) else {
        let known: Vec<&str> = config.functions.iter().map(|f| f.name.as_str()).collect();
        return usage(format!(
            "no function named {function:?} in the config (functions: {known:?})"
        ));
    };
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    runtime.block_on(async {
        let region = config
            .aws
            .as_ref()
            .map_or("us-east-1", |a| a.region.as_str());
        let account = config.aws.as_ref().and_then(|a| a.account.as_deref());
        let host =
            sluice::functions::FunctionHost::start(std::slice::from_ref(spec), region, account);
        let outcome = host.invoke(function, bytes::Bytes::from(payload)).await;
        host.shutdown().await;
        use std::io::Write;
        let mut out = std::io::stdout();
        match outcome {
            Ok(result) => {
                let _ = out.write_all(&result).and_then(|()| out.write_all(b"\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = out.write_all(&e.body()).and_then(|()| out.write_all(b"\n"));
                eprintln!("sluice invoke: {function}: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Loads a configuration, printing every error as `FILE:LINE: path: message`.
fn load(path: &Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            for e in &errors {
                match e.line {
                    Some(line) => eprint!("{}:{line}: ", path.display()),
                    None => eprint!("{}: ", path.display()),
                }
                let mut e = e.clone();
                e.line = None;
                eprintln!("{e}");
            }
            eprintln!("{} error(s) in {}", errors.len(), path.display());
            None
        }
    }
}

/// Reads an argument given inline or as @FILE.
fn inline_or_file(arg: &str) -> Result<String, String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(arg.to_string()),
    }
}

/// Reads a CloudEvent in the JSON format, given inline or as @FILE.
fn read_event(arg: &str) -> Result<sluice::event::Event, String> {
    let body = bytes::Bytes::from(inline_or_file(arg)?);
    sluice::event::cloudevents::parse_structured(&body)
        .map(|e| e.decode())
        .map_err(|e| format!("invalid event: {}: {}", e.field, e.message))
}

/// Reads an event pattern given inline or as @FILE: JSON first, so that numbers keep
/// JSON's reading; YAML if it is not JSON.
fn read_pattern(arg: &str) -> Result<serde_json::Value, String> {
    let text = inline_or_file(arg)?;
    match serde_json::from_str(&text) {
        Ok(value) => Ok(value),
        Err(_) => yaml_serde::from_str(&text).map_err(|e| format!("invalid pattern: {e}")),
    }
}

/// `sluice test-pattern`: does the pattern match the event?
fn test_pattern(pattern: &str, event: &str) -> Result<bool, String> {
    use sluice::event::DataKind;
    use sluice::rules::{EventData, EventView, Matcher, Pattern};
    let value = read_pattern(pattern)?;
    let pattern = Pattern::parse(&value).map_err(|e| format!("invalid pattern: {e}"))?;
    let event = read_event(event)?;
    let matcher = Matcher::new(vec![pattern]);
    let attrs = serde_json::to_vec(&event.attrs).map_err(|e| e.to_string())?;
    let data = match &event.data {
        Some(d) if d.kind == DataKind::Json => EventData::Json(&d.bytes),
        Some(d) if d.kind == DataKind::Text => {
            EventData::Text(std::str::from_utf8(&d.bytes).map_err(|e| e.to_string())?)
        }
        _ => EventData::None,
    };
    let mut matched = Vec::new();
    matcher.matching(
        &EventView {
            attrs: &attrs,
            data,
        },
        &mut matched,
    );
    Ok(!matched.is_empty())
}

/// `sluice transform`: the body and content type a target would receive.
fn transform_command(
    transform: &str,
    event: &str,
    mode: CliMode,
    rule: &str,
    bus: &str,
) -> Result<(Vec<u8>, String), String> {
    use sluice::rules::transform::{Context, Document, Transform, TransformConfig};
    let config: TransformConfig = yaml_serde::from_str(&inline_or_file(transform)?)
        .map_err(|e| format!("invalid transform: {e}"))?;
    let compiled = Transform::compile(&config).map_err(|e| format!("invalid transform: {e}"))?;
    let event = read_event(event)?;
    let ctx = Context {
        bus,
        rule,
        ingested_ms: Some(chrono::Utc::now().timestamp_millis() as u64),
    };
    Ok(match compiled.apply(&Document::new(&event), &ctx) {
        Some(payload) => (payload.body.to_vec(), payload.content_type.to_string()),
        None => match mode {
            CliMode::Structured => (
                event.to_structured_json(),
                "application/cloudevents+json; charset=utf-8".into(),
            ),
            CliMode::Binary => (
                event
                    .data
                    .as_ref()
                    .map(|d| d.bytes.to_vec())
                    .unwrap_or_default(),
                event
                    .attr_str("datacontenttype")
                    .unwrap_or("application/json")
                    .to_string(),
            ),
        },
    })
}

/// `sluice schema validate` and `sluice schema infer`.
fn schema_command(action: SchemaAction) -> ExitCode {
    match action {
        SchemaAction::Validate {
            schema,
            format,
            component,
            event,
            data,
        } => match schema_validate(&schema, format, component.as_deref(), event, data) {
            Ok((name, violations)) if violations.is_empty() => {
                println!("valid ({name})");
                ExitCode::SUCCESS
            }
            Ok((name, violations)) => {
                println!("invalid ({name}): {} violation(s)", violations.len());
                for v in violations {
                    println!("  data{}: {}", v.instance_path, v.message);
                }
                ExitCode::from(1)
            }
            Err(message) => {
                eprintln!("sluice schema validate: {message}");
                ExitCode::from(2)
            }
        },
        SchemaAction::Infer { events } => match schema_infer(&events) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("sluice schema infer: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// Reads a schema argument: @FILE, inline JSON/YAML, or a file path.
fn read_document(arg: &str) -> Result<serde_json::Value, String> {
    let text = match arg.strip_prefix('@') {
        Some(_) => inline_or_file(arg)?,
        None if serde_json::from_str::<serde_json::Value>(arg).is_err()
            && Path::new(arg).is_file() =>
        {
            std::fs::read_to_string(arg).map_err(|e| format!("cannot read {arg}: {e}"))?
        }
        None => arg.to_string(),
    };
    serde_json::from_str(&text)
        .or_else(|_| yaml_serde::from_str(&text))
        .map_err(|e| format!("invalid schema: not JSON or YAML: {e}"))
}

fn schema_validate(
    schema: &str,
    format: CliSchemaFormat,
    component: Option<&str>,
    event: Option<String>,
    data: Option<String>,
) -> Result<(String, Vec<sluice::schema::Violation>), String> {
    use sluice::schema::{self, SchemaFormat, Version, VersionSpec};
    let format = match format {
        CliSchemaFormat::Jsonschema => SchemaFormat::Jsonschema,
        CliSchemaFormat::Openapi => SchemaFormat::Openapi,
    };
    let document = read_document(schema)?;
    let json_schema = schema::to_json_schema(format, &document, component)?;
    let spec = VersionSpec {
        format,
        schema: json_schema,
        document: None,
        component: component.map(String::from),
        dataschema: None,
    };
    let version = Version::compile("cli", 1, &spec, schema::Origin::Config)?;
    let value: serde_json::Value = match (event, data) {
        (Some(event), _) => {
            let event = read_event(&event)?;
            match &event.data {
                None => serde_json::Value::Null,
                Some(d) => match d.kind {
                    sluice::event::DataKind::Json => serde_json::from_slice(&d.bytes)
                        .map_err(|e| format!("invalid event: data: {e}"))?,
                    sluice::event::DataKind::Text => {
                        String::from_utf8_lossy(&d.bytes).into_owned().into()
                    }
                    sluice::event::DataKind::Binary => {
                        return Err("the event's data is binary; a schema validates JSON".into())
                    }
                },
            }
        }
        (None, Some(data)) => serde_json::from_str(&inline_or_file(&data)?)
            .map_err(|e| format!("invalid data: not JSON: {e}"))?,
        (None, None) => return Err("give --event or --data".into()),
    };
    let name = match component {
        Some(c) => format!("component {c}"),
        None => "schema".into(),
    };
    Ok((name, version.violations(&value)))
}

fn schema_infer(path: &Path) -> Result<String, String> {
    use sluice::schema::infer::Shape;
    use std::collections::BTreeMap;
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    let events: Vec<(String, serde_json::Value)> = match serde_json::from_str(&text) {
        Ok(serde_json::Value::Array(events)) => events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("event {i}"), e))
            .collect(),
        _ => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|e| (format!("line {}", i + 1), e))
                    .map_err(|e| format!("line {}: not JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut shapes: BTreeMap<(String, String), Shape> = BTreeMap::new();
    for (at, event) in events {
        let text = |name: &str| {
            event
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("{at}: not a CloudEvent: no string {name}"))
        };
        let key = (text("source")?, text("type")?);
        let json = event
            .get("datacontenttype")
            .and_then(serde_json::Value::as_str)
            .is_none_or(sluice::event::is_json_media_type);
        if let (Some(data), true) = (event.get("data"), json) {
            shapes.entry(key).or_default().add(data);
        }
    }
    if shapes.is_empty() {
        return Err("no event with JSON data".into());
    }
    let out: Vec<serde_json::Value> = shapes
        .into_iter()
        .map(|((source, type_), shape)| {
            serde_json::json!({
                "source": source,
                "type": type_,
                "samples": shape.samples,
                "schema": shape.to_schema(),
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&out).expect("JSON serialises"))
}

fn run(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
