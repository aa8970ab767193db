//! One file per subcommand; this one dispatches and finds the profiles a
//! command was given.

mod build;
mod check;
mod doctor;
mod down;
mod exec;
mod gpus;
mod import;
mod logs;
mod plan;
mod prune;
mod render;
mod renew;
mod report;
mod snapshot;
mod status;
mod table;
mod up;
mod usage;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, Global};
use launch::engine::{Acting, DockerEngine, Engine, Observed};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::host::{HostFacts, Needs};
use launch::profile::Profile;
use launch::session::{Early, Session};
use launch::state::Store;

/// Runs the command; the result is how the process exits.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Some(Command::Check {
            profiles,
            deny_warnings,
        }) => check::run(&profiles, deny_warnings, &cli.global),
        Some(Command::Gpus { proc_root }) => gpus::run(&proc_root, &cli.global),
        Some(Command::Doctor { profiles }) => doctor::run(&profiles, &cli.global),
        Some(Command::Build { profiles }) => build::run(&profiles, &cli.global),
        Some(Command::Render {
            profile,
            format,
            lossy,
            output,
        }) => render::run(&profile, format, lossy, output.as_deref(), &cli.global),
        Some(Command::Import(args)) => import::run(&args, &cli.global),
        Some(Command::Schema) => {
            println!("{}", launch::profile::schema());
            Ok(Exit::Ok)
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "launch", &mut std::io::stdout());
            Ok(Exit::Ok)
        }
        Some(Command::Up(args)) => up::run(&args, &cli.global),
        Some(Command::Plan { profiles }) => plan::run(&profiles, &cli.global),
        Some(Command::Down { targets, volumes }) => down::run(&targets, volumes, &cli.global),
        Some(Command::Status { profiles }) => status::run(&profiles, &cli.global),
        Some(Command::Logs(args)) => logs::run(&args, &cli.global),
        Some(Command::Exec { target, command }) => exec::run(&target, &command, &cli.global),
        Some(Command::Prune {
            targets,
            keep,
            dry_run,
        }) => prune::run(&targets, keep, dry_run, &cli.global),
        Some(Command::Renew {
            target,
            until,
            for_,
        }) => renew::run(&target, until.as_deref(), for_.as_deref(), &cli.global),
        Some(Command::Usage { since, by }) => usage::run(&since, by, &cli.global),
        Some(Command::Report {
            output,
            format,
            since,
            dbs,
        }) => report::run(output.as_deref(), format, &since, &dbs, &cli.global),
        Some(Command::Snapshot { target, tag }) => {
            snapshot::run(&target, tag.as_deref(), &cli.global)
        }
        None if cli.profiles.is_empty() => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let _ = cmd.print_help();
            Ok(Exit::Invalid)
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

pub use launch::profile::Target;

/// Loads the profiles named by `args` (see [`launch::profile::targets`]),
/// trusting root's and the policy's admins' files.
pub fn targets(args: &[PathBuf], global: &Global) -> Result<Vec<Target>> {
    Ok(launch::session::targets(args, &global.settings()))
}

/// The container an argument means, and whom launch acts for on it
/// (docs/architecture.md, the owner boundary): a path that exists is a
/// profile (its container, for the profile's acting owner); anything else
/// is a container's name (for the user running launch).
pub fn container_target(arg: &str, global: &Global) -> Result<(String, Acting)> {
    if !Path::new(arg).exists() {
        return Ok((arg.to_string(), Acting::runner()));
    }
    let mut found = targets(&[arg.into()], global)?;
    if found.len() != 1 {
        return Err(Error::Usage(format!(
            "{arg} holds {} profiles; name one profile or one container",
            found.len()
        )));
    }
    match found.remove(0).loaded {
        Ok(p) => Ok((p.name.clone(), Acting::owner(&p.owner, &p.path))),
        Err(d) => Err(Error::Profile(d)),
    }
}

/// The run's state store (opened when first asked).
pub fn store(global: &Global) -> Store {
    Store::at(global.settings().state_dir)
}

/// The container `name`, which must exist (exit 1 otherwise, pointing at `launch up`).
pub async fn existing_container<E: Engine>(engine: &E, name: &str) -> Result<Observed> {
    engine.find(name).await?.ok_or_else(|| {
        Error::Io(format!(
            "no container named {name}; `launch up PROFILE` creates it \
             (`launch status` lists the containers launch made)"
        ))
    })
}

/// A path as text for the user, in text and JSON alike: a path that is not
/// UTF-8 is shown lossily rather than failing the run.
pub fn shown(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A runtime for the engine's async API: one thread is plenty for a CLI
/// that waits on one socket.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io(format!("cannot start the async runtime: {e}")))
}

/// Connects to the engine of `--host` / DOCKER_HOST, within `--timeout`.
pub async fn connect(global: &Global) -> Result<DockerEngine> {
    launch::session::connect(&global.settings()).await
}

/// The loaded profiles of `targets`, and how the invalid ones exit: those
/// are reported at once, whether or not an engine answers later.
pub fn split_valid<'a>(
    targets: &'a [Target],
    global: &Global,
) -> (Vec<(&'a Target, &'a Profile)>, Exit) {
    let mut exit = Exit::Ok;
    let mut valid = Vec::new();
    for t in targets {
        match &t.loaded {
            Ok(p) => valid.push((t, p)),
            Err(_) => exit = exit.worst(report_invalid(t, global)),
        }
    }
    (valid, exit)
}

/// The engine session of `up` and `plan`; when no engine answered, every
/// profile is reported as failing with why, and `Err` is how they exit.
pub async fn open_session(
    global: &Global,
    valid: &[(&Target, &Profile)],
    facts: HostFacts,
    needs: Needs,
    early: Early,
) -> std::result::Result<Session, Exit> {
    let profiles: Vec<&Profile> = valid.iter().map(|(_, p)| *p).collect();
    Session::open(&global.settings(), &profiles, facts, needs, early)
        .await
        .map_err(|e| {
            // The profile's own errors that need no engine first (a missing
            // bind source is exit 2 whether or not an engine answers), then
            // the engine's; the run exits with the most severe.
            valid
                .iter()
                .map(|(t, p)| {
                    let own = launch::resolve::check_paths(p)
                        .and_then(|()| launch::build::check_host(p))
                        .err()
                        .map_or(Exit::Ok, |own| up::report_error(t, &own, global));
                    own.worst(up::report_error(t, &e, global))
                })
                .collect()
        })
}

/// The profiles the policy allows (`session::admit`); each refused one is
/// reported, and how they exit is returned.
pub async fn allowed<'a>(
    policy: Option<&launch::policy::Policy>,
    valid: Vec<(&'a Target, &'a Profile)>,
    facts: &HostFacts,
    engine: Option<&DockerEngine>,
    pull: bool,
    global: &Global,
) -> (Vec<(&'a Target, &'a Profile)>, Exit) {
    let store = launch::state::Store::at(&global.settings().state_dir);
    let (kept, refused) = launch::session::admit(policy, valid, facts, engine, pull, &store).await;
    let exit = refused
        .iter()
        .map(|(t, e)| up::report_error(t, e, global))
        .collect();
    (kept, exit)
}

/// Prints why a target's profile did not load; returns `Exit::Invalid`.
pub fn report_invalid(target: &Target, global: &Global) -> Exit {
    if let Err(d) = &target.loaded {
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "profile": shown(&target.path), "action": "invalid", "errors": d.to_json(), "exit_code": 2 })
            );
        } else {
            eprint!(
                "{}",
                d.render(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            );
        }
    }
    Exit::Invalid
}
