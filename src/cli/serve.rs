//! `sluice serve` runs a replica; `sluice dev` runs one against a Redis it finds or
//! starts, with the `/dev/echo` target mounted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::control::document::FileDoc;
use crate::gateway::{self, Settings};
use crate::plan::Plan;

#[derive(clap::Args)]
pub(super) struct ServeArgs {
    /// Configuration file (YAML). Optional: buses, rules, sources and functions may all
    /// come from the configuration store (the control API, `sluice apply`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Listen address; overrides the config's `listen`.
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Redis URL; overrides the config's `redis`.
    #[arg(long, env = "REDIS_URL")]
    redis: Option<String>,
}

#[derive(clap::Args)]
pub(super) struct DevArgs {
    /// Configuration file (YAML).
    #[arg(long, default_value = "examples/quickstart/sluice.yaml")]
    config: PathBuf,
    /// Listen address; overrides the config's `listen`.
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
}

/// `sluice serve`: exit 1 if the config is invalid or the gateway stops with an error.
pub(super) fn serve(args: ServeArgs) -> ExitCode {
    let Some((file, plan)) = load(args.config.as_deref()) else {
        return ExitCode::FAILURE;
    };
    let redis_url = super::redis_url(args.redis.as_deref(), &plan.config);
    let listen = args.listen.unwrap_or_else(|| plan.config.listen.clone());
    block_on(async move {
        gateway::run(Settings {
            file,
            plan,
            redis_url,
            listen,
            dev_echo: false,
        })
        .await
    })
}

/// `sluice dev`: like serve, with the Redis found or started by `dev::discover_redis`.
pub(super) fn dev(args: DevArgs) -> ExitCode {
    let Some((file, plan)) = load(Some(&args.config)) else {
        return ExitCode::FAILURE;
    };
    let listen = args.listen.unwrap_or_else(|| plan.config.listen.clone());
    block_on(async move {
        let redis = crate::dev::discover_redis().await?;
        eprintln!(
            "sluice dev: Redis at {}, listening on http://{listen}; echo target at http://{listen}/dev/echo",
            gateway::redact(&redis.url)
        );
        let settings = Settings {
            file,
            plan,
            redis_url: redis.url.clone(),
            listen,
            dev_echo: true,
        };
        gateway::run(settings).await
    })
}

/// The file given to serve, checked (errors printed), as a document and a plan; without
/// a file, an empty configuration.
fn load(path: Option<&Path>) -> Option<(FileDoc, Plan)> {
    let Some(path) = path else {
        let plan = Plan::parse("{}").expect("the empty configuration is valid");
        return Some((FileDoc::default(), plan));
    };
    let plan = super::load(path)?;
    match FileDoc::read(path) {
        Ok(file) => Some((file, plan)),
        Err(errors) => {
            for e in errors {
                eprintln!("{}: {e}", path.display());
            }
            None
        }
    }
}

/// Runs the gateway on a multi-threaded runtime; an error is printed with its causes.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("starting the tokio runtime");
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}
