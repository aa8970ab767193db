//! The `launch` binary: parse flags, run a command, turn its result into an
//! exit code. The pipeline itself is the library (`src/lib.rs`).

mod cli;
mod commands;

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
    launch::engine::progress::set_quiet(cli.global.quiet);
    let exit = match commands::run(cli) {
        Ok(exit) => exit,
        Err(e) => {
            eprint!("{}", e.render(std::io::stderr().is_terminal()));
            e.exit()
        }
    };
    ExitCode::from(exit.code())
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
