//! One file per subcommand; this one dispatches and finds the profiles a
//! command was given.

mod check;
mod down;
mod gpus;
mod plan;
mod render;
mod status;
mod table;
mod up;

use std::path::PathBuf;

use crate::cli::{Cli, Command, Global};
use crate::engine::{DockerEngine, Engine, Observed};
use crate::error::{Error, Result};
use crate::profile;

/// Runs the command; the result is the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Some(Command::Check { profiles }) => check::run(&profiles, &cli.global),
        Some(Command::Gpus) => gpus::run(&cli.global),
        Some(Command::Render { profile, format }) => render::run(&profile, format, &cli.global),
        Some(Command::Schema) => {
            println!("{}", crate::profile::schema());
            Ok(0)
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "launch", &mut std::io::stdout());
            Ok(0)
        }
        Some(Command::Up(args)) => up::run(&args, &cli.global),
        Some(Command::Plan { profiles }) => plan::run(&profiles, &cli.global),
        Some(Command::Down { targets, volumes }) => down::run(&targets, volumes, &cli.global),
        Some(Command::Status { profiles }) => status::run(&profiles, &cli.global),
        None if cli.profiles.is_empty() => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let _ = cmd.print_help();
            Ok(crate::error::exit::INVALID)
        }
        None => up::run(
            &crate::cli::UpArgs {
                profiles: cli.profiles,
                ..Default::default()
            },
            &cli.global,
        ),
    }
}

pub use crate::profile::Target;

/// Loads the profiles named by `args` (see [`profile::targets`]).
pub fn targets(args: &[PathBuf]) -> Result<Vec<Target>> {
    profile::targets(args).map_err(|e| match e {
        profile::FolderError::Empty { path } => Error::EmptyFolder { path },
        other => Error::Io(other.to_string()),
    })
}

/// A runtime for the engine's async API: one thread is plenty for a CLI
/// that waits on one socket.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))
}

/// Connects to the engine of `--host` / DOCKER_HOST.
pub async fn connect(global: &Global) -> Result<DockerEngine> {
    Ok(DockerEngine::connect(global.host.as_deref()).await?)
}

/// The engine's managed containers, or none when it is unreachable.
pub async fn managed_or_none(engine: Option<&DockerEngine>) -> Result<Vec<Observed>> {
    match engine {
        Some(e) => Ok(e.managed().await?),
        None => Ok(Vec::new()),
    }
}

/// Prints why a target's profile did not load; returns exit code 2.
pub fn report_invalid(target: &Target, global: &Global) -> i32 {
    if let Err(d) = &target.loaded {
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "profile": target.path, "action": "invalid", "errors": d.to_json(), "exit_code": 2 })
            );
        } else {
            eprint!(
                "{}",
                d.render(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            );
        }
    }
    crate::error::exit::INVALID
}
