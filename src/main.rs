//! The `sluice` command line: a thin shell over the library's `cli` module.

use std::process::ExitCode;

use clap::Parser;

// The request path allocates many small, short-lived buffers; mimalloc handles that
// pattern markedly better than the system allocator (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::cli::Cli::parse().run()
}
