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
mod snapshot;
mod status;
mod table;
mod up;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, Global};
use launch::engine::{DockerEngine, Engine, Observed};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::host::{self, HostFacts, Needs};
use launch::profile::{self, Profile};

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

/// Loads the profiles named by `args` (see [`profile::targets`]).
pub fn targets(args: &[PathBuf]) -> Result<Vec<Target>> {
    Ok(profile::targets(args))
}

/// The container an argument means: a path that exists is a profile (its
/// container's name); anything else is a container's name.
pub fn container_name(arg: &str) -> Result<String> {
    if !Path::new(arg).exists() {
        return Ok(arg.to_string());
    }
    let mut found = targets(&[arg.into()])?;
    if found.len() != 1 {
        return Err(Error::Usage(format!(
            "{arg} holds {} profiles; name one profile or one container",
            found.len()
        )));
    }
    match found.remove(0).loaded {
        Ok(p) => Ok(p.name),
        Err(d) => Err(Error::Profile(d)),
    }
}

/// The container `name`, which must exist (exit 1 otherwise, pointing at `launch up`).
pub async fn existing_container(engine: &DockerEngine, name: &str) -> Result<Observed> {
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
    Ok(DockerEngine::connect(global.host.as_deref(), global.engine_timeout()).await?)
}

/// The host facts these profiles need, probed once for the whole run, before
/// the async runtime starts (NVML and file reads block).
pub fn probe_host<'a>(
    global: &Global,
    profiles: impl IntoIterator<Item = &'a Profile>,
) -> (HostFacts, Needs) {
    let needs = Needs::of(profiles);
    (HostFacts::probe(&global.roots(), needs), needs)
}

/// As `probe_host`, for `up` and `plan`: NVML waits until some profile
/// needs more than a check that its container is in sync.
pub fn probe_host_for_sync<'a>(
    global: &Global,
    profiles: impl IntoIterator<Item = &'a Profile>,
) -> (HostFacts, Needs) {
    let needs = Needs::of(profiles);
    (HostFacts::probe_for_sync(&global.roots(), needs), needs)
}

/// Adds the engine's facts, when some profile leaves its GPU mode to `auto`.
pub async fn with_engine_facts(
    facts: HostFacts,
    needs: Needs,
    engine: Option<&DockerEngine>,
) -> HostFacts {
    let engine_facts = host::engine_facts(engine, needs).await;
    facts.with_engine(engine_facts.as_ref())
}

/// For a run over several profiles, launch's containers from one listing
/// (one profile looks for itself at the same cost). `None` when unknown:
/// then each profile looks for itself.
pub async fn listing(
    engine: &DockerEngine,
    profiles: &[&Profile],
) -> Option<launch::reconcile::Listing> {
    if profiles.len() < 2 {
        return None;
    }
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    launch::reconcile::Listing::take(engine, &names)
        .await
        .map_err(|e| tracing::debug!("each profile looks for its own container: {e}"))
        .ok()
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

/// The engine, asked on the runtime while the profiles load and the host is
/// probed on another thread ([`load_and_probe`]): its connection and, when
/// the arguments may hold several profiles, its one listing, which takes
/// the daemon milliseconds to answer. Read before any lock, as a listing
/// always is (`reconcile::Listing`).
pub struct Early(
    tokio::task::JoinHandle<(Result<DockerEngine>, Option<launch::reconcile::Listing>)>,
);

impl Early {
    /// Starts asking; call from within the runtime.
    pub fn start(global: &Global, paths: &[PathBuf]) -> Early {
        let global = global.clone();
        let several = paths.len() > 1 || paths.iter().any(|p| p.is_dir());
        Early(tokio::spawn(async move {
            let engine = connect(&global).await;
            let listing = match &engine {
                Ok(e) if several => launch::reconcile::Listing::take(e, &[])
                    .await
                    .map_err(|e| tracing::debug!("each profile looks for its own container: {e}"))
                    .ok(),
                _ => None,
            };
            (engine, listing)
        }))
    }

    /// Stops asking: nothing will use the answer.
    pub fn abort(self) {
        self.0.abort();
    }
}

/// The targets of `paths` and the host facts their valid profiles need
/// (`probe_host_for_sync`), read off the async thread while the engine is
/// asked ([`Early`]), for `up` and `plan`.
pub async fn load_and_ask(
    paths: &[PathBuf],
    global: &Global,
) -> Result<(Vec<Target>, HostFacts, Needs, Early)> {
    let early = Early::start(global, paths);
    let (owned, global) = (paths.to_vec(), global.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        let targets = targets(&owned)?;
        let valid = targets.iter().filter_map(|t| t.loaded.as_ref().ok());
        let (facts, needs) = probe_host_for_sync(&global, valid);
        Ok((targets, facts, needs))
    })
    .await
    .map_err(|e| Error::Io(format!("loading the profiles: {e}")))
    .and_then(|loaded| loaded);
    match loaded {
        Ok((targets, facts, needs)) => Ok((targets, facts, needs, early)),
        Err(e) => {
            early.abort();
            Err(e)
        }
    }
}

/// What `up` and `plan` work with once the engine answers: the engine, the
/// run's host facts with the engine's, and a folder's one listing.
pub struct Session {
    pub engine: DockerEngine,
    pub facts: HostFacts,
    pub listing: Option<launch::reconcile::Listing>,
}

impl Session {
    /// Takes the engine `early` asked for; when none answered, every
    /// profile is reported as failing with why, and `Err` is how they exit.
    pub async fn open(
        global: &Global,
        valid: &[(&Target, &Profile)],
        facts: HostFacts,
        needs: Needs,
        early: Early,
    ) -> std::result::Result<Session, Exit> {
        let (engine, early_listing) = early.0.await.unwrap_or_else(|e| {
            (
                Err(Error::Io(format!("connecting to the engine: {e}"))),
                None,
            )
        });
        let engine = match engine {
            Ok(engine) => engine,
            Err(e) => {
                return Err(valid
                    .iter()
                    .map(|(t, _)| up::report_error(t, &e, global))
                    .collect());
            }
        };
        let facts = with_engine_facts(facts, needs, Some(&engine)).await;
        let profiles: Vec<&Profile> = valid.iter().map(|(_, p)| *p).collect();
        let listing = match early_listing {
            Some(l) if profiles.len() > 1 => Some(l),
            _ => listing(&engine, &profiles).await,
        };
        Ok(Session {
            engine,
            facts,
            listing,
        })
    }

    pub fn context<'a>(
        &'a self,
        locks: &'a launch::reconcile::Locks,
    ) -> launch::reconcile::Context<'a, DockerEngine> {
        launch::reconcile::Context {
            engine: &self.engine,
            host: &self.facts,
            locks,
            listing: self.listing.as_ref(),
        }
    }
}

/// The profiles the policy allows on this host, judged as `up` makes them
/// (bind sources after symlinks, the image's user, the owner's other GPUs);
/// each refused one is reported, and how they exit is returned. `pull`:
/// an image whose user decides and is not on the host is pulled first (`up`).
pub async fn allowed<'a>(
    policy: Option<&launch::policy::Policy>,
    valid: Vec<(&'a Target, &'a Profile)>,
    facts: &HostFacts,
    engine: Option<&DockerEngine>,
    pull: bool,
    global: &Global,
) -> (Vec<(&'a Target, &'a Profile)>, Exit) {
    let Some(policy) = policy else {
        return (valid, Exit::Ok);
    };
    let mut managed: Option<Vec<Observed>> = None;
    // GPUs of each owner's profiles allowed so far whose containers do not
    // exist yet: a folder of new profiles counts toward one limit.
    let mut pending: std::collections::HashMap<String, usize> = Default::default();
    let mut exit = Exit::Ok;
    let mut kept = Vec::new();
    for (target, profile) in valid {
        let owner = profile.owner.display();
        let host = on_host(policy, profile, facts, engine, pull, &mut managed).await;
        let judged = match host {
            Ok(mut host) => {
                if let Some(held) = host.owner_gpus.as_mut() {
                    *held += pending.get(&owner).copied().unwrap_or(0);
                }
                let judged = policy.judge(profile, Some(&host));
                let exists = managed.iter().flatten().any(|c| c.name == profile.name);
                if judged.is_empty() && !exists {
                    *pending.entry(owner).or_default() +=
                        launch::policy::gpus_asked(profile, host.gpu_count).unwrap_or(0);
                }
                judged
            }
            Err(e) => {
                exit = exit.worst(up::report_error(target, &e, global));
                continue;
            }
        };
        if judged.is_empty() {
            kept.push((target, profile));
        } else {
            let e = Error::Policy(profile::Diagnostics {
                sources: std::sync::Arc::clone(&profile.sources),
                items: judged,
            });
            exit = exit.worst(up::report_error(target, &e, global));
        }
    }
    (kept, exit)
}

/// What the policy needs to know of the host about one profile.
pub async fn on_host(
    policy: &launch::policy::Policy,
    profile: &Profile,
    facts: &HostFacts,
    engine: Option<&DockerEngine>,
    pull: bool,
    managed: &mut Option<Vec<Observed>>,
) -> Result<launch::policy::OnHost> {
    let mut host = launch::policy::OnHost {
        gpu_count: match facts.gpus() {
            Some(Ok(h)) => Some(h.gpus.len()),
            _ => None,
        },
        ..Default::default()
    };
    if !policy.binds(&profile.owner) {
        return Ok(host);
    }
    if !(policy.allow.run_as_root && policy.allow.run_as_others) && profile.user.is_none() {
        use launch::policy::ImageUser;
        host.image_user = Some(match engine {
            // The image on the host may be older than the one `up` builds.
            _ if profile.build.is_some() => ImageUser::Built,
            None => ImageUser::Unknown,
            Some(e) => {
                let mut user = e.image_user(&profile.image).await?;
                // `up` pulls a missing image first, as it would anyway.
                if pull
                    && user.is_none()
                    && profile.build.is_none()
                    && profile.pull != profile::PullPolicy::Never
                {
                    e.pull(&profile.image).await?;
                    user = e.image_user(&profile.image).await?;
                }
                user.map_or(ImageUser::Missing, ImageUser::User)
            }
        });
    }
    if let Some(e) = engine {
        for m in &profile.volumes {
            if let (profile::MountKind::Volume, Some(name)) = (m.kind, &m.source)
                && let Some((_, options)) = e.volume_options(name).await?
            {
                host.volume_options.insert(name.clone(), options);
            }
        }
    }
    if policy.allow.max_gpus_per_owner.is_some() && profile.gpus.is_some() {
        if managed.is_none() {
            *managed = Some(managed_or_none(engine).await?);
        }
        let owner = profile.owner.display();
        // A GPU this host no longer has is held by no one.
        let here = |uuid: &String| match facts.gpus() {
            Some(Ok(gpus)) => gpus.gpus.iter().any(|g| g.uuid == *uuid),
            _ => true,
        };
        host.owner_gpus = Some(
            managed
                .iter()
                .flatten()
                .filter(|c| c.labels.get(launch::spec::label::OWNER) == Some(&owner))
                .filter(|c| !launch::engine::is_name_or_aside(&c.name, &profile.name))
                .map(|c| c.gpus().iter().filter(|u| here(u)).count())
                .sum(),
        );
    }
    Ok(host)
}

/// The engine's managed containers, or none when it is unreachable.
pub async fn managed_or_none(engine: Option<&DockerEngine>) -> Result<Vec<Observed>> {
    match engine {
        Some(e) => Ok(e.managed().await?),
        None => Ok(Vec::new()),
    }
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
