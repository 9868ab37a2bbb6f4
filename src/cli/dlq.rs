//! `sluice dlq list|show|redrive|purge`: a target's dead-letter stream, straight against
//! Redis (the same operations as the DLQ API, `dlq.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::read_pattern;
use crate::gateway;

#[derive(Subcommand)]
pub(super) enum DlqAction {
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

#[derive(clap::Args)]
pub(super) struct DlqArgs {
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

/// Exit 0 on success, 1 on a failure (Redis, entry not found), 2 on a usage error.
pub(super) fn run(action: &DlqAction) -> ExitCode {
    use crate::dlq::{self, DlqRef, Selection};
    let (name, args) = match action {
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
    let Some(plan) = super::load(&args.config) else {
        return ExitCode::FAILURE;
    };
    let config = &plan.config;
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
    let url = super::redis_url(args.redis.as_deref(), config);
    let target = DlqRef::new(&args.bus, &args.rule, &args.target);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    runtime.block_on(async {
        // A stalled Redis must not hang the command: the connection bounds connecting
        // and every reply (bus::connect).
        let mut conn = match crate::bus::connect(&url) {
            Ok(conn) => conn,
            Err(e) => return failure(format!("invalid Redis URL {}: {e}", gateway::redact(&url))),
        };
        if let Err(e) = redis::cmd("PING").query_async::<()>(&mut conn).await {
            return failure(format!("cannot connect to {}: {e}", gateway::redact(&url)));
        }
        let result = match action {
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
