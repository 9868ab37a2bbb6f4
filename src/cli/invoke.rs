//! `sluice invoke`: one invocation of a configured function on a function host of its
//! own (no Redis, no gateway).

use std::path::PathBuf;
use std::process::ExitCode;

use super::inline_or_file;

#[derive(clap::Args)]
pub(super) struct InvokeArgs {
    /// The function's name in `functions:`.
    function: String,
    /// Configuration file (YAML).
    #[arg(long)]
    config: PathBuf,
    /// The payload (JSON), or @FILE. Default `{}`.
    #[arg(long, default_value = "{}")]
    event: String,
}

/// Prints the result (or the error JSON): exit 0 on success, 1 on a function error, 2 on
/// bad input (an invalid config included).
pub(super) fn run(args: &InvokeArgs) -> ExitCode {
    let function = args.function.as_str();
    let usage = |message: String| {
        eprintln!("sluice invoke: {message}");
        ExitCode::from(2)
    };
    let payload = match inline_or_file(&args.event) {
        Ok(text) => text,
        Err(e) => return usage(e),
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&payload) {
        return usage(format!("--event is not JSON: {e}"));
    }
    let Some(plan) = super::load(&args.config) else {
        return ExitCode::from(2);
    };
    let config = &plan.config;
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
            crate::functions::FunctionHost::start(std::slice::from_ref(spec), region, account);
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
