//! `sluice check`: validate a configuration file and summarise it.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct CheckArgs {
    /// Configuration file (YAML).
    #[arg(long)]
    config: PathBuf,
}

/// Exit 0 with a one-line summary when valid, 1 with every error otherwise.
pub(super) fn run(args: &CheckArgs) -> ExitCode {
    // The plan is built (every check `serve` makes) and dropped.
    let Some(plan) = super::load(&args.config) else {
        return ExitCode::FAILURE;
    };
    let c = &plan.config;
    let targets: usize = c.rules.iter().map(|r| r.targets.len()).sum();
    // Sources are only counted when there are some, so existing output holds.
    let sources = match c.sources.len() {
        0 => String::new(),
        n => format!("{n} sources, "),
    };
    println!(
        "{}: ok ({} buses, {sources}{} rules, {} targets)",
        args.config.display(),
        c.buses.len(),
        c.rules.len(),
        targets
    );
    ExitCode::SUCCESS
}
