//! `launch`: a TOML profile in, a running GPU container out (see DESIGN.md).
//!
//! The pipeline, one module a stage: `profile` (load) → `resolve` → `reconcile`
//! (plan, apply), with the effects (`gpu` for NVML, `engine` for Docker) kept
//! apart from the pure stages.

mod cli;
mod commands;
mod engine;
mod error;
mod gpu;
mod profile;
mod reconcile;
mod resolve;
mod snapshot;
mod spec;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `launch status | head` should end quietly, like other Unix tools, not
    // panic on a closed pipe.
    // SAFETY: restoring the default action of a signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", e.render(std::io::stderr().is_terminal()));
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

fn init_logging(global: &cli::Global) {
    use tracing_subscriber::EnvFilter;
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "launch=debug,info",
        _ => "launch=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}
