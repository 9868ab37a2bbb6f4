//! The `sluice` command line: the verbs, their flags and what each prints and exits with.
//!
//! `main.rs` only parses [`Cli`] and calls [`Cli::run`]. Each verb group is one file
//! holding its clap arguments and the code that carries it out: `serve` (serve, dev),
//! `check`, `pattern` (test-pattern, transform), `invoke`, `schema`, `dlq`, and `remote`
//! (apply, diff, get, delete, token: the control API of a running gateway). This file
//! holds the top-level parser and what the verbs share: loading a configuration with
//! every error printed, and reading arguments given inline or as `@FILE`.
//!
//! Exit codes are part of the interface (scripts test them): 0 success, 1 a negative
//! answer or a failure the verb documents, 2 bad input.

mod check;
mod dlq;
mod events;
mod invoke;
pub(crate) mod pattern;
mod remote;
mod schema;
mod serve;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::observability::{self, LogFormat};
use crate::plan::Plan;

/// The command line as parsed.
#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A webhook and CloudEvents gateway on Redis Streams"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a replica.
    Serve(serve::ServeArgs),
    /// Try Sluice locally: finds or starts a Redis, mounts the /dev/echo target.
    Dev(serve::DevArgs),
    /// Validate a configuration file: exit 0 when valid, 1 with every error otherwise.
    Check(check::CheckArgs),
    /// Test an event pattern against an event: exit 0 on a match, 1 on no match, 2 if
    /// the pattern or the event is invalid. Uses the router's matcher.
    TestPattern(pattern::TestPatternArgs),
    /// Apply a transform to an event and print the body a target would receive
    /// (its content type goes to stderr). Exit 2 if the transform or event is invalid.
    Transform(pattern::TransformArgs),
    /// Run one invocation of a function of the config locally (the function host only,
    /// no Redis) and print its result: exit 0 on success, 1 on a function error
    /// (timeout, crash: the error JSON is printed), 2 on bad input.
    Invoke(invoke::InvokeArgs),
    /// Validate an event against a schema, or infer schemas from events.
    Schema {
        #[command(subcommand)]
        action: schema::SchemaAction,
    },
    /// Inspect and repair a target's dead-letter stream (straight against Redis):
    /// exit 0 on success, 1 on a failure (Redis, entry not found), 2 on a usage error.
    Dlq {
        #[command(subcommand)]
        action: dlq::DlqAction,
    },
    /// Apply a configuration file's buses, rules, sources and functions to a running
    /// gateway's store (`--prune` deletes what the file does not list).
    Apply(remote::ApplyArgs),
    /// Show what `apply` would change: exit 0 without differences, 1 with.
    Diff(remote::DiffArgs),
    /// List or show resources of a running gateway: buses, rules, targets, sources,
    /// functions.
    Get(remote::GetArgs),
    /// Delete a resource made through the API: `sluice delete rule orders/paid`.
    Delete(remote::DeleteArgs),
    /// Search a running gateway's retained events (`events search --bus B --since 1h
    /// --pattern '{...}'`).
    Events {
        #[command(subcommand)]
        action: events::EventsAction,
    },
    /// A bus's event counts by type or source over a window (the bus needs `stats:`).
    Stats(events::StatsArgs),
    /// One event's trace as a timeline: received, routed, every attempt, outcome.
    Trace(events::TraceArgs),
    /// Replay a window of a bus's archive (or retention) into the bus.
    Replay {
        #[command(subcommand)]
        action: events::ReplayAction,
    },
    /// Make, revoke and list the bearer tokens of a running gateway (roles).
    Token {
        #[command(subcommand)]
        action: remote::TokenAction,
    },
}

impl Cli {
    /// Sets up logging and carries out the verb; the result is the process's exit code.
    pub fn run(self) -> ExitCode {
        observability::init(self.log_format);
        match self.command {
            Command::Serve(args) => serve::serve(args),
            Command::Dev(args) => serve::dev(args),
            Command::Check(args) => check::run(&args),
            Command::TestPattern(args) => pattern::test_pattern(&args),
            Command::Transform(args) => pattern::transform(&args),
            Command::Invoke(args) => invoke::run(&args),
            Command::Schema { action } => schema::run(action),
            Command::Dlq { action } => dlq::run(&action),
            Command::Apply(args) => remote::apply(&args),
            Command::Diff(args) => remote::diff(&args),
            Command::Get(args) => remote::get(&args),
            Command::Delete(args) => remote::delete(&args),
            Command::Events { action } => events::run(&action),
            Command::Stats(args) => events::stats(&args),
            Command::Trace(args) => events::trace(&args),
            Command::Replay { action } => events::replay(&action),
            Command::Token { action } => remote::token(&action),
        }
    }
}

/// Loads a configuration and builds its plan (every check `serve` would make),
/// printing every error as `FILE:LINE: path: message`.
fn load(path: &Path) -> Option<Plan> {
    match Plan::load(path) {
        Ok(plan) => Some(plan),
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
fn read_event(arg: &str) -> Result<crate::event::Event, String> {
    let body = bytes::Bytes::from(inline_or_file(arg)?);
    crate::event::cloudevents::parse_structured(&body)
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

/// The Redis URL a verb uses: the flag (or `REDIS_URL`), else the config's, else the
/// local default.
fn redis_url(flag: Option<&str>, config: &Config) -> String {
    flag.map(String::from)
        .or_else(|| config.redis.clone())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_verb_parses_its_flags() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("sluice").chain(args.iter().copied()))
                .map(|cli| cli.command)
        };
        assert!(matches!(
            parse(&["serve", "--config", "c.yaml", "--listen", "127.0.0.1:1"]),
            Ok(Command::Serve(_))
        ));
        assert!(matches!(parse(&["dev"]), Ok(Command::Dev(_))));
        assert!(matches!(
            parse(&["--log-format", "json", "check", "--config", "c.yaml"]),
            Ok(Command::Check(_))
        ));
        assert!(matches!(
            parse(&["test-pattern", "--pattern", "{}", "--event", "{}"]),
            Ok(Command::TestPattern(_))
        ));
        assert!(matches!(
            parse(&[
                "transform",
                "--transform",
                "{}",
                "--event",
                "{}",
                "--mode",
                "binary"
            ]),
            Ok(Command::Transform(_))
        ));
        assert!(matches!(
            parse(&["invoke", "f", "--config", "c.yaml"]),
            Ok(Command::Invoke(_))
        ));
        assert!(matches!(
            parse(&["schema", "validate", "--schema", "{}", "--data", "1"]),
            Ok(Command::Schema { .. })
        ));
        assert!(matches!(
            parse(&["schema", "infer", "--events", "-"]),
            Ok(Command::Schema { .. })
        ));
        for verb in ["list", "show", "redrive", "purge"] {
            let args = [
                "dlq", verb, "--config", "c.yaml", "--bus", "b", "--rule", "r", "--target", "t",
            ];
            assert!(matches!(parse(&args), Ok(Command::Dlq { .. })), "{verb}");
        }
        // Flags that exclude each other are refused by the parser.
        let conflicting = [
            "dlq", "purge", "--config", "c", "--bus", "b", "--rule", "r", "--target", "t", "--all",
            "--id", "1-0",
        ];
        assert!(parse(&conflicting).is_err());
        assert!(parse(&["schema", "validate", "--schema", "{}"]).is_err());
        assert!(parse(&["check"]).is_err());
    }
}
