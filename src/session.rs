//! One run over profiles, as `up`, `plan` and `render` make it
//! (docs/architecture.md, a run): the profiles load and the host is probed
//! off the async thread while the engine is asked; the policy judges each
//! profile on the host; then each profile is applied through its own
//! [`Gate`], which knows whom launch acts for.
//!
//! The binary turns flags into [`Settings`], calls these, and prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::{Acting, DockerEngine, Engine, Gate, Observed};
use crate::error::{Error, Result};
use crate::host::{self, HostFacts, Needs, Roots};
use crate::owner::Trust;
use crate::policy::{ImageUser, OnHost, Policy};
use crate::profile::{self, MountKind, Profile, Target};
use crate::reconcile::{Context, Listing, Locks};
use crate::state::Store;

/// How a run reaches the engine, the host and its own state: the plain
/// options the command line becomes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--host`; `DOCKER_HOST` or the local socket when `None`.
    pub host: Option<String>,
    /// How long to wait for the engine to answer when connecting.
    pub timeout: Duration,
    pub roots: Roots,
    /// Where the state store is (`--state-dir`, `LAUNCH_STATE_DIR`).
    pub state_dir: PathBuf,
    /// Whose profile files are trusted: root's, the policy's admins'.
    pub trust: Trust,
}

/// One bound on a whole run (`--deadline`): a hung engine, a stuck stop or
/// commit ends the run cleanly here instead of holding it for the sum of
/// every call's own bound. What the run had done is left as a killed run
/// leaves it, which the next run repairs (docs/architecture.md, a run).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: tokio::time::Instant,
    after: Duration,
}

impl Deadline {
    /// `after` from now.
    pub fn after(after: Duration) -> Deadline {
        Deadline {
            at: tokio::time::Instant::now() + after,
            after,
        }
    }
}

/// `work`, unless `deadline` passes first: then an error saying what was
/// being done. Dropping `work` releases its locks as a killed run's are.
pub async fn within<T>(
    deadline: Option<Deadline>,
    doing: impl FnOnce() -> String,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match deadline {
        None => work.await,
        Some(d) => match tokio::time::timeout_at(d.at, work).await {
            Ok(done) => done,
            Err(_) => Err(Error::Deadline {
                doing: doing(),
                after: d.after,
            }),
        },
    }
}

/// Connects to the engine of `settings`, within its timeout.
pub async fn connect(settings: &Settings) -> Result<DockerEngine> {
    Ok(DockerEngine::connect(settings.host.as_deref(), settings.timeout).await?)
}

/// The profiles `paths` name (a folder is its profiles), loaded with the
/// host's trust.
pub fn targets(paths: &[PathBuf], settings: &Settings) -> Vec<Target> {
    profile::targets_trusting(paths, settings.trust.clone())
}

/// The host facts these profiles need, probed once for the whole run.
pub fn probe_host<'a>(
    settings: &Settings,
    profiles: impl IntoIterator<Item = &'a Profile>,
) -> (HostFacts, Needs) {
    let needs = Needs::of(profiles);
    (HostFacts::probe(&settings.roots, needs), needs)
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

/// The engine, asked on the runtime while the profiles load and the host is
/// probed on another thread ([`load_and_ask`]): its connection and, when
/// the arguments may hold several profiles, its one listing, which takes
/// the daemon milliseconds to answer. Read before any lock, as a listing
/// always is ([`Listing`]).
pub struct Early(tokio::task::JoinHandle<(Result<DockerEngine>, Option<Listing>)>);

impl Early {
    /// Starts asking; call from within the runtime.
    pub fn start(settings: &Settings, paths: &[PathBuf]) -> Early {
        let settings = settings.clone();
        let several = paths.len() > 1 || paths.iter().any(|p| p.is_dir());
        Early(tokio::spawn(async move {
            let engine = connect(&settings).await;
            let listing = match &engine {
                Ok(e) if several => Listing::take(e, &[])
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

/// The targets of `paths` and the host facts their valid profiles need,
/// read off the async thread while the engine is asked ([`Early`]); NVML
/// waits until some profile needs more than a check that its container is
/// in sync.
pub async fn load_and_ask(
    paths: &[PathBuf],
    settings: &Settings,
) -> Result<(Vec<Target>, HostFacts, Needs, Early)> {
    let early = Early::start(settings, paths);
    let (owned, settings) = (paths.to_vec(), settings.clone());
    let loaded = tokio::task::spawn_blocking(move || {
        let targets = targets(&owned, &settings);
        let valid = targets.iter().filter_map(|t| t.loaded.as_ref().ok());
        let needs = Needs::of(valid);
        let facts = HostFacts::probe_for_sync(&settings.roots, needs);
        (targets, facts, needs)
    })
    .await
    .map_err(|e| Error::Io(format!("loading the profiles: {e}")));
    match loaded {
        Ok((targets, facts, needs)) => Ok((targets, facts, needs, early)),
        Err(e) => {
            early.abort();
            Err(e)
        }
    }
}

/// What `up` and `plan` work with once the engine answers: the engine, the
/// run's host facts with the engine's, a folder's one listing, and the
/// state store (opened when first asked).
pub struct Session {
    pub engine: DockerEngine,
    pub facts: HostFacts,
    pub listing: Option<Listing>,
    pub store: Store,
    /// GPUs the run's profiles that name theirs will take ([`reserve`]).
    pub reserved: crate::host::gpu::select::Held,
}

impl Session {
    /// Takes the engine `early` asked for; `Err` when none answered.
    pub async fn open(
        settings: &Settings,
        profiles: &[&Profile],
        facts: HostFacts,
        needs: Needs,
        early: Early,
    ) -> Result<Session> {
        let (engine, early_listing) = early.0.await.unwrap_or_else(|e| {
            (
                Err(Error::Io(format!("connecting to the engine: {e}"))),
                None,
            )
        });
        let engine = engine?;
        let facts = with_engine_facts(facts, needs, Some(&engine)).await;
        let listing = match early_listing {
            Some(l) if profiles.len() > 1 => Some(l),
            _ => listing(&engine, profiles).await,
        };
        let reserved = reserve(profiles, &facts);
        Ok(Session {
            engine,
            facts,
            listing,
            store: Store::at(&settings.state_dir),
            reserved,
        })
    }

    /// The engine as `profile`'s acting owner may use it.
    pub fn gate(&self, profile: &Profile) -> Gate<'_, DockerEngine> {
        Gate::new(
            &self.engine,
            &self.store,
            Acting::owner(&profile.owner, &profile.path),
        )
    }

    /// What one profile is reconciled with: its gate, the run's facts.
    pub fn context<'a>(
        &'a self,
        gate: &'a Gate<'a, DockerEngine>,
        locks: &'a Locks,
    ) -> Context<'a, DockerEngine> {
        Context {
            engine: gate,
            host: &self.facts,
            locks,
            listing: self.listing.as_ref(),
            reserved: &self.reserved,
        }
    }
}

/// The GPUs this run's profiles that name them (by index, UUID or `all`)
/// will take, when the run also chooses some by count: the choice must not
/// fall on a GPU a profile of the same folder is about to take, whose
/// container does not exist yet. Pure: resolved on the run's host facts.
pub fn reserve(profiles: &[&Profile], facts: &HostFacts) -> crate::host::gpu::select::Held {
    use crate::profile::GpuSelection;
    let counts = profiles.iter().any(|p| {
        matches!(
            p.gpus.as_ref().map(|g| &g.selection),
            Some(GpuSelection::Count(_))
        )
    });
    let mut reserved = crate::host::gpu::select::Held::new();
    if !counts {
        return reserved;
    }
    for p in profiles {
        let named = matches!(
            p.gpus.as_ref().map(|g| &g.selection),
            Some(GpuSelection::List(_) | GpuSelection::All)
        );
        if !named {
            continue;
        }
        if let Ok(r) = crate::resolve::resolve_profile(p, facts, &[])
            && let Some(gpu) = r.spec.gpu
        {
            for uuid in gpu.uuids {
                reserved.entry(uuid).or_insert_with(|| p.name.clone());
            }
        }
    }
    reserved
}

/// For a run over several profiles, launch's containers from one listing
/// (one profile looks for itself at the same cost). `None` when unknown:
/// then each profile looks for itself.
pub async fn listing<E: Engine>(engine: &E, profiles: &[&Profile]) -> Option<Listing> {
    if profiles.len() < 2 {
        return None;
    }
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    Listing::take(engine, &names)
        .await
        .map_err(|e| tracing::debug!("each profile looks for its own container: {e}"))
        .ok()
}

/// A profile the policy refused, or whose judgement failed.
pub type Refusal<'a> = (&'a Target, Error);

/// The profiles the policy allows on this host, judged as `up` makes them
/// (bind sources after symlinks, the image's user, the owner's other GPUs),
/// and those it refused, each with why. `pull`: an image whose user decides
/// and is not on the host is pulled first (`up`).
pub async fn admit<'a, E: Engine>(
    policy: Option<&Policy>,
    valid: Vec<(&'a Target, &'a Profile)>,
    facts: &HostFacts,
    engine: Option<&E>,
    pull: bool,
    store: &Store,
) -> (Vec<(&'a Target, &'a Profile)>, Vec<Refusal<'a>>) {
    let Some(policy) = policy else {
        return (valid, Vec::new());
    };
    let mut managed: Option<Vec<Observed>> = None;
    // GPUs of each owner's profiles allowed so far whose containers do not
    // exist yet: a folder of new profiles counts toward one limit.
    let mut pending: HashMap<u32, usize> = HashMap::new();
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    for (target, profile) in valid {
        let owner = profile.owner.uid;
        let mut host =
            match on_host(policy, profile, facts, engine, pull, &mut managed, store).await {
                Ok(host) => host,
                Err(e) => {
                    refused.push((target, e));
                    continue;
                }
            };
        if let Some(held) = host.owner_gpus.as_mut() {
            *held += pending.get(&owner).copied().unwrap_or(0);
        }
        let judged = policy.judge(profile, Some(&host));
        if judged.is_empty() {
            let exists = managed.iter().flatten().any(|c| c.name == profile.name);
            if !exists {
                *pending.entry(owner).or_default() +=
                    crate::policy::gpus_asked(profile, host.gpu_count).unwrap_or(0);
            }
            kept.push((target, profile));
        } else {
            let e = Error::Policy(profile::Diagnostics {
                sources: std::sync::Arc::clone(&profile.sources),
                items: judged,
            });
            refused.push((target, e));
        }
    }
    (kept, refused)
}

/// What the policy needs to know of the host about one profile.
pub async fn on_host<E: Engine>(
    policy: &Policy,
    profile: &Profile,
    facts: &HostFacts,
    engine: Option<&E>,
    pull: bool,
    managed: &mut Option<Vec<Observed>>,
    store: &Store,
) -> Result<OnHost> {
    let mut host = OnHost {
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
            if let (MountKind::Volume, Some(name)) = (m.kind, &m.source)
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
        let released = crate::lease::released(store);
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
                .filter(|c| c.labels.get(crate::spec::label::OWNER) == Some(&owner))
                .filter(|c| crate::lease::holds_gpus(c, &released))
                .filter(|c| !crate::engine::is_name_or_aside(&c.name, &profile.name))
                .map(|c| c.gpus().iter().filter(|u| here(u)).count())
                .sum(),
        );
    }
    Ok(host)
}

/// The engine's managed containers, or none when it is unreachable.
pub async fn managed_or_none<E: Engine>(engine: Option<&E>) -> Result<Vec<Observed>> {
    match engine {
        Some(e) => Ok(e.managed().await?),
        None => Ok(Vec::new()),
    }
}

/// The gate for a command that names a container: by a profile, its acting
/// owner; by a name, the user running launch.
pub fn acting_for(profile: Option<&Profile>) -> Acting {
    match profile {
        Some(p) => Acting::owner(&p.owner, &p.path),
        None => Acting::runner(),
    }
}

/// Whether `arg` names a profile (a path that exists) rather than a container.
pub fn is_profile_path(arg: &str) -> bool {
    Path::new(arg).exists()
}
