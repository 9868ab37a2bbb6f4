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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    observability::init(cli.log_format);
    match cli.command {
        Command::Check { config } => match load(&config) {
            Some(c) => {
                let targets: usize = c.rules.iter().map(|r| r.targets.len()).sum();
                println!(
                    "{}: ok ({} buses, {} rules, {} targets)",
                    config.display(),
                    c.buses.len(),
                    c.rules.len(),
                    targets
                );
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
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
