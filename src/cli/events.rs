//! `sluice events search`: a bus's retained events that match a pattern, through the
//! control API (`GET /api/v1/buses/{bus}/events`), page after page.
//!
//! `sluice trace BUS ID`: one event's trace as a timeline
//! (`GET /api/v1/buses/{bus}/events/{id}`). `sluice replay start|status|cancel`: replays
//! (`/api/v1/replays`).
//!
//! Exit codes: 0 done (whether or not anything matched), 1 the API refused or failed (an
//! unknown event for `trace`), 2 bad usage (an unreadable `@FILE`).

use std::process::ExitCode;

use super::remote::{refusal, Server};

#[derive(clap::Subcommand)]
pub(super) enum EventsAction {
    /// Search a bus's retained events by time window and pattern.
    Search(SearchArgs),
}

#[derive(clap::Args)]
pub(super) struct SearchArgs {
    /// The bus.
    #[arg(long)]
    bus: String,
    /// Oldest time: RFC 3339 or a duration ago (`1h`).
    #[arg(long)]
    since: Option<String>,
    /// Newest time: RFC 3339 or a duration ago.
    #[arg(long)]
    until: Option<String>,
    /// An event pattern (JSON, or `@FILE`).
    #[arg(long)]
    pattern: Option<String>,
    /// CloudEvents filters (a JSON array, or `@FILE`).
    #[arg(long)]
    filters: Option<String>,
    /// `aws`: the pattern is written against the AWS event.
    #[arg(long)]
    dialect: Option<String>,
    /// Most events to print.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Newest first.
    #[arg(long)]
    newest_first: bool,
    /// `json`: one event per line (the CloudEvents JSON format).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: SearchOutput,
    #[command(flatten)]
    server: Server,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(super) enum SearchOutput {
    Table,
    Json,
}

pub(super) fn run(action: &EventsAction) -> ExitCode {
    match action {
        EventsAction::Search(args) => search(args),
    }
}

/// A path or query part, percent-encoded.
fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn argument(text: &Option<String>) -> Result<Option<String>, String> {
    match text.as_deref() {
        Some(path) if path.starts_with('@') => std::fs::read_to_string(&path[1..])
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", &path[1..])),
        other => Ok(other.map(String::from)),
    }
}

fn search(args: &SearchArgs) -> ExitCode {
    let (pattern, filters) = match (argument(&args.pattern), argument(&args.filters)) {
        (Ok(p), Ok(f)) => (p, f),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("sluice events search: {e}");
            return ExitCode::from(2);
        }
    };
    let mut base = vec![format!(
        "order={}",
        if args.newest_first {
            "newest"
        } else {
            "oldest"
        }
    )];
    for (name, value) in [
        ("since", &args.since),
        ("until", &args.until),
        ("pattern", &pattern),
        ("filters", &filters),
        ("dialect", &args.dialect),
    ] {
        if let Some(v) = value {
            base.push(format!("{name}={}", encode(v)));
        }
    }
    if matches!(args.output, SearchOutput::Table) {
        println!(
            "{:<22} {:<25} {:<28} {:<24} ID",
            "ENTRY", "TIME", "TYPE", "SOURCE"
        );
    }
    let mut printed = 0;
    let mut cursor: Option<String> = None;
    while printed < args.limit {
        let mut query = base.clone();
        query.push(format!("limit={}", (args.limit - printed).min(1000)));
        if let Some(c) = &cursor {
            query.push(format!("cursor={}", encode(c)));
        }
        let path = format!(
            "/api/v1/buses/{}/events?{}",
            encode(&args.bus),
            query.join("&")
        );
        let answer = match args.server.call(reqwest::Method::GET, &path, None) {
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                eprintln!("sluice events search: {}", refusal(&a));
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("sluice events search: {e}");
                return ExitCode::FAILURE;
            }
        };
        for found in answer.body["events"].as_array().into_iter().flatten() {
            let e = &found["event"];
            match args.output {
                SearchOutput::Json => println!("{e}"),
                SearchOutput::Table => println!(
                    "{:<22} {:<25} {:<28} {:<24} {}",
                    found["entry"].as_str().unwrap_or_default(),
                    e["time"].as_str().unwrap_or("-"),
                    e["type"].as_str().unwrap_or_default(),
                    e["source"].as_str().unwrap_or_default(),
                    e["id"].as_str().unwrap_or_default()
                ),
            }
            printed += 1;
        }
        match answer.body["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        if answer.body["events"].as_array().is_some_and(Vec::is_empty)
            && answer.body["scanned"] == 0
        {
            break;
        }
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub(super) struct StatsArgs {
    /// The bus (it needs `stats:`).
    #[arg(long)]
    bus: String,
    /// How far back.
    #[arg(long, default_value = "1h")]
    window: String,
    /// `type` or `source`.
    #[arg(long, default_value = "type")]
    by: String,
    /// `json`: the API's answer as it is.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: SearchOutput,
    #[command(flatten)]
    server: Server,
}

/// `sluice stats`: a bus's counts by type or source over a window.
pub(super) fn stats(args: &StatsArgs) -> ExitCode {
    let path = format!(
        "/api/v1/buses/{}/stats?window={}&by={}",
        encode(&args.bus),
        encode(&args.window),
        encode(&args.by)
    );
    let answer = match args.server.call(reqwest::Method::GET, &path, None) {
        Ok(a) if a.status == 200 => a,
        Ok(a) => {
            eprintln!("sluice stats: {}", refusal(&a));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("sluice stats: {e}");
            return ExitCode::FAILURE;
        }
    };
    let b = &answer.body;
    match args.output {
        SearchOutput::Json => println!("{b}"),
        SearchOutput::Table => {
            let totals = &b["totals"];
            println!(
                "bus {} over {}: {} events, {} matched by a rule",
                b["bus"].as_str().unwrap_or_default(),
                b["window"].as_str().unwrap_or_default(),
                totals["all"],
                totals["matched"]
            );
            let mut rows: Vec<(&String, i64)> = totals["counts"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k, v.as_i64().unwrap_or(0)))
                .collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            println!("{:<48} EVENTS", args.by.to_uppercase());
            for (name, n) in rows {
                println!("{name:<48} {n}");
            }
        }
    }
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub(super) struct TraceArgs {
    /// The bus.
    bus: String,
    /// The event id.
    id: String,
    /// `json`: the API's answer as it is.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: SearchOutput,
    #[command(flatten)]
    server: Server,
}

/// `sluice trace BUS ID`.
pub(super) fn trace(args: &TraceArgs) -> ExitCode {
    let path = format!(
        "/api/v1/buses/{}/events/{}",
        encode(&args.bus),
        encode(&args.id)
    );
    let answer = match args.server.call(reqwest::Method::GET, &path, None) {
        Ok(a) if a.status == 200 => a,
        Ok(a) => {
            eprintln!("sluice trace: {}", refusal(&a));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("sluice trace: {e}");
            return ExitCode::FAILURE;
        }
    };
    let b = &answer.body;
    if matches!(args.output, SearchOutput::Json) {
        println!("{b}");
        return ExitCode::SUCCESS;
    }
    let e = &b["event"];
    println!(
        "event {} on bus {}: type {}, source {}",
        b["id"].as_str().unwrap_or_default(),
        b["bus"].as_str().unwrap_or_default(),
        e["type"].as_str().unwrap_or("?"),
        e["source"].as_str().unwrap_or("?"),
    );
    if b["traced"] != true {
        println!("no trace (the bus is not traced, or the trace expired); the event is retained as entry {}", b["entry"].as_str().unwrap_or("-"));
        return ExitCode::SUCCESS;
    }
    for r in b["trace"].as_array().into_iter().flatten() {
        let at = r["at"]
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| "-".into());
        println!("{at}  {}", describe(r));
    }
    println!("outcome:");
    for (target, outcome) in b["outcomes"].as_object().into_iter().flatten() {
        println!("  {target:<40} {}", outcome.as_str().unwrap_or_default());
    }
    ExitCode::SUCCESS
}

/// One trace record as a line of the timeline.
fn describe(r: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    match r["stage"].as_str().unwrap_or_default() {
        "received" => {
            let mut line = format!(
                "received    entry {}, {} bytes",
                text(&r["entry"]),
                r["size"]
            );
            if r["via"].is_string() {
                line.push_str(&format!(
                    " via {} on {}",
                    text(&r["via"]),
                    text(&r["replica"])
                ));
            }
            if r["replay"].is_string() {
                line.push_str(&format!(" (replay {})", text(&r["replay"])));
            }
            line
        }
        "routed" => {
            let mut line = format!(
                "routed      to {} (on {})",
                list(&r["targets"]),
                text(&r["replica"])
            );
            if r["forwarded"].is_array() {
                line.push_str(&format!("; forwarded by {}", list(&r["forwarded"])));
            }
            for s in r["skipped"].as_array().into_iter().flatten() {
                line.push_str(&format!(
                    "; {} skipped: {}",
                    text(&s["target"]),
                    text(&s["reason"])
                ));
            }
            if r["archived"].is_array() {
                line.push_str(&format!("; archived in {}", list(&r["archived"])));
            }
            line
        }
        "unmatched" => format!("unmatched   no rule matched (on {})", text(&r["replica"])),
        "attempt" => {
            let result = match (r["status"].as_u64(), r["error"].as_str()) {
                (Some(status), _) => format!("status {status}"),
                (None, Some(error)) => error.to_string(),
                (None, None) => "done".into(),
            };
            let next = match r["outcome"].as_str() {
                Some("retry") => format!("retry in {} ms", r["retry_in_ms"]),
                Some("dead_lettered") => format!("dead-lettered ({})", text(&r["reason"])),
                other => other.unwrap_or_default().to_string(),
            };
            format!(
                "attempt {:<3} {}: {result} in {} ms on {} -> {next}",
                r["attempt"],
                text(&r["target"]),
                r["latency_ms"],
                text(&r["replica"])
            )
        }
        "redriven" => format!("redriven    {} from its DLQ", text(&r["target"])),
        other => format!("{other:<11} {r}"),
    }
}

#[derive(clap::Subcommand)]
pub(super) enum ReplayAction {
    /// Start a replay of a window into a bus.
    Start(ReplayStartArgs),
    /// A replay's state and progress (all replays without a name).
    Status {
        name: Option<String>,
        /// `json`: the API's answer as it is.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: SearchOutput,
        #[command(flatten)]
        server: Server,
    },
    /// Ask a running replay to stop.
    Cancel {
        name: String,
        #[command(flatten)]
        server: Server,
    },
}

#[derive(clap::Args)]
pub(super) struct ReplayStartArgs {
    /// The replay's name (unique).
    name: String,
    /// The bus to replay into (the archive's bus).
    #[arg(long)]
    bus: String,
    /// The archive to read; absent: the bus's retained events.
    #[arg(long)]
    archive: Option<String>,
    /// Oldest event time: RFC 3339 or a duration ago (`1h`).
    #[arg(long)]
    since: String,
    /// Newest event time (default now).
    #[arg(long)]
    until: Option<String>,
    /// Only this rule of the bus (repeatable); absent: every rule.
    #[arg(long = "rule")]
    rules: Vec<String>,
    /// Most events per second.
    #[arg(long)]
    rate: Option<u32>,
    #[command(flatten)]
    server: Server,
}

pub(super) fn replay(action: &ReplayAction) -> ExitCode {
    let (server, method, path, body, output) = match action {
        ReplayAction::Start(a) => {
            let body = serde_json::json!({
                "name": a.name, "bus": a.bus, "archive": a.archive, "since": a.since,
                "until": a.until, "rules": a.rules, "rate": a.rate,
            });
            (
                &a.server,
                reqwest::Method::POST,
                "/api/v1/replays".to_string(),
                Some(body),
                SearchOutput::Table,
            )
        }
        ReplayAction::Status {
            name,
            output,
            server,
        } => (
            server,
            reqwest::Method::GET,
            match name {
                Some(n) => format!("/api/v1/replays/{}", encode(n)),
                None => "/api/v1/replays".into(),
            },
            None,
            *output,
        ),
        ReplayAction::Cancel { name, server } => (
            server,
            reqwest::Method::POST,
            format!("/api/v1/replays/{}/cancel", encode(name)),
            Some(serde_json::json!({})),
            SearchOutput::Table,
        ),
    };
    let answer = match server.call(method, &path, body) {
        Ok(a) if (200..300).contains(&a.status) => a,
        Ok(a) => {
            eprintln!("sluice replay: {}", refusal(&a));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("sluice replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let b = &answer.body;
    if matches!(output, SearchOutput::Json) {
        println!("{b}");
        return ExitCode::SUCCESS;
    }
    let replays: Vec<&serde_json::Value> = match b["replays"].as_array() {
        Some(all) => all.iter().collect(),
        None => vec![b],
    };
    println!(
        "{:<24} {:<16} {:<11} {:>9} {:<25} SOURCE",
        "NAME", "BUS", "STATE", "REPLAYED", "LAST REPLAYED"
    );
    for r in replays {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
        let source = match r["archive"].as_str() {
            Some(a) => format!("archive {a}"),
            None => "bus retention".into(),
        };
        println!(
            "{:<24} {:<16} {:<11} {:>9} {:<25} {source}",
            text(&r["name"]),
            text(&r["bus"]),
            text(&r["state"]),
            r["replayed"],
            text(&r["last_replayed"]),
        );
        if let Some(reason) = r["reason"].as_str() {
            println!("  reason: {reason}");
        }
    }
    ExitCode::SUCCESS
}
