//! Reconcile: make the engine match a profile (docs/architecture.md, reconcile). `plan` decides
//! (pure), `apply` acts; `up` runs both for one profile under its lock.

pub mod apply;
pub mod changes;
pub mod diff;
pub mod down;
pub mod lock;
pub mod plan;
pub mod probe;
pub mod recover;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::{BTreeMap, BTreeSet};

use crate::build;
use crate::engine::{Engine, EngineError, Gate, Observed, State, Whose};
use crate::error::{Error, Result};
use crate::host::HostFacts;
use crate::profile::{GpuSelection, Profile, PullPolicy};
use crate::resolve::Resolved;
use crate::spec::ContainerSpec;

pub use lock::Locks;
pub use plan::{Action, Options};

/// The lock of GPU choices by count. Container names cannot start with `_`,
/// so no profile's own lock can be this one.
const GPU_ALLOCATION: &str = "_gpu-allocation";

/// What one profile's run works with: the engine through the profile's
/// gate (docs/architecture.md, the owner boundary), the host's facts
/// (gathered once for the whole run) and where its locks live.
pub struct Context<'a, E> {
    pub engine: &'a Gate<'a, E>,
    pub host: &'a HostFacts,
    pub locks: &'a Locks,
    /// launch's containers as one listing showed them when a run over a
    /// folder began; `None`: each profile looks for itself. See [`Listing`].
    pub listing: Option<&'a Listing>,
    /// GPUs the run's profiles that name theirs will take (UUID → profile
    /// name): a `{ count = N }` of the same run does not choose them.
    pub reserved: &'a crate::host::gpu::select::Held,
}

impl<E> Context<'_, E> {
    /// Whether `name` may have leftovers worth an exact look.
    fn may_have_leftovers(&self, name: &str) -> bool {
        self.listing.is_none_or(|l| l.leftovers.contains(name))
    }
}

/// launch's containers from one listing, so a folder of profiles costs one
/// engine call instead of one or two per profile. It is read before the
/// per-name locks, so it only ever saves work that would change nothing:
/// a container it shows in sync and running needs nothing (whatever another
/// run did since, with the same profile, needs nothing from this one either),
/// and a name it shows without leftovers is not searched for them (a
/// leftover a run killed since then leaves is found by the next run; a free
/// name is always searched). Everything else is looked at again, exactly,
/// under the name's lock.
pub struct Listing {
    containers: BTreeMap<String, Observed>,
    leftovers: BTreeSet<String>,
}

impl Listing {
    /// The containers of these profiles' names, and their leftovers.
    pub async fn take<E: Engine>(engine: &E, names: &[&str]) -> Result<Listing> {
        let mut containers = BTreeMap::new();
        let mut leftovers = BTreeSet::new();
        for c in engine.listed(names).await? {
            if let Some(name) = recover::unsettled_leftover_of(&c) {
                leftovers.insert(name.to_string());
            }
            containers.insert(c.name.clone(), c);
        }
        Ok(Listing {
            containers,
            leftovers,
        })
    }
}

/// The lock-free answer for a profile whose container the run's listing
/// shows running and in sync: nothing to do. `None`: look properly. Pure:
/// no engine call.
pub fn in_sync(
    listing: &Listing,
    host: &HostFacts,
    profile: &Profile,
    options: Options,
) -> Option<Outcome> {
    let found = listing.containers.get(&profile.name)?;
    // Choices that depend on other containers, pulls that may move a tag,
    // builds (the context may have changed) and forced recreates are made
    // under the lock.
    let simple = !matches!(
        profile.gpus.as_ref().map(|g| &g.selection),
        Some(GpuSelection::Count(_))
    ) && options.pull.unwrap_or(profile.pull) != PullPolicy::Always
        && profile.build.is_none()
        && !options.force_recreate;
    // Another owner's container (by its label; the gate asks the store) is
    // for the full path to refuse.
    if !simple
        || listing.leftovers.contains(&profile.name)
        || found.state != State::Running
        || !labelled_for(found, &profile.owner)
    {
        return None;
    }
    let resolved =
        crate::resolve::resolve_profile(profile, host, std::slice::from_ref(found)).ok()?;
    let plan = plan::plan(&resolved.spec, Some(found), None, options);
    (plan.action == Action::Nothing).then(|| Outcome {
        name: profile.name.clone(),
        action: Action::Nothing,
        id: Some(found.id.clone()),
        gpus: found.gpus(),
        changes: Vec::new(),
        applied: apply::Applied {
            id: Some(found.id.clone()),
            ..Default::default()
        },
        leftovers: Vec::new(),
    })
}

/// Whether `found`'s labels say launch made it for `owner`: by uid, without
/// asking the user database (a container of an older launch: by name).
/// Enough for a no-op, which touches nothing; what acts asks the gate.
fn labelled_for(found: &Observed, owner: &crate::owner::Owner) -> bool {
    use crate::spec::label;
    match found.labels.get(label::OWNER_UID) {
        Some(uid) => *uid == owner.uid.to_string(),
        None => found.labels.get(label::OWNER) == Some(&owner.display()),
    }
}

/// What `up` did to one profile's container.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub action: Action,
    pub id: Option<String>,
    pub gpus: Vec<String>,
    pub changes: Vec<diff::Change>,
    pub applied: apply::Applied,
    /// What became of what an interrupted run left behind.
    pub leftovers: Vec<recover::Leftover>,
}

/// What `plan` would do: the outcome without acting, and whether a pull
/// or a build comes first.
pub struct Preview {
    pub resolved: Resolved,
    pub plan: plan::Plan,
    pub pull: bool,
    /// `[build]`: the image is built first, and why.
    pub build: Option<BuildDue>,
    observed: Option<Observed>,
    image_id: Option<String>,
}

/// A build `up` does before anything else.
pub struct BuildDue {
    pub context: build::Context,
    /// Why: the image is missing, or its context changed.
    pub why: String,
}

/// Whether `profile`'s image is to be built: it is missing, launch did not
/// build it for the profile's owner (its labels prove nothing: any build
/// can set them), or the hash of its context is not the one on the image.
/// Also the image's id, if present. A profile without `[build]` builds nothing.
pub async fn build_due<E: Engine>(
    engine: &Gate<'_, E>,
    profile: &Profile,
) -> Result<(Option<BuildDue>, Option<String>)> {
    let Some(b) = &profile.build else {
        return Ok((None, None));
    };
    build::check_host(profile)?;
    let context = scan(b, &profile.owner).await?;
    let found = engine.image_labels(&profile.image).await?;
    let mine = found.is_some() && engine.built_for_me(&profile.image).await?;
    let why = match &found {
        None => Some("the image is missing".to_string()),
        Some(_) if !mine => Some(format!(
            "launch did not build it for {}",
            engine.acting().name()
        )),
        Some((_, labels)) => match labels.get(crate::spec::label::CONTEXT_HASH) {
            Some(hash) if *hash == context.hash => None,
            Some(_) => Some("its build context changed".to_string()),
            None => Some("the image was not built by launch".to_string()),
        },
    };
    Ok((
        why.map(|why| BuildDue { context, why }),
        found.map(|(id, _)| id),
    ))
}

/// Hashes a build context off the async thread: it reads every file.
pub async fn scan(
    b: &crate::profile::Build,
    owner: &crate::owner::Owner,
) -> Result<build::Context> {
    let (b, owner) = (b.clone(), owner.clone());
    tokio::task::spawn_blocking(move || build::scan(&b, Some(&owner)))
        .await
        .map_err(|e| Error::Io(format!("hashing the build context: {e}")))?
}

/// Looks at the engine and the host and decides, without changing anything.
/// When the name is free but an interrupted run left its old container
/// aside, the plan is for that container, which `up` gives the name back.
pub async fn preview<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
) -> Result<Preview> {
    let mut preview = look(cx, profile, options).await?;
    if preview.observed.is_none()
        && cx.may_have_leftovers(&profile.name)
        && let mut found = recover::leftovers(cx.engine, &profile.name).await?
        && let Some(mut newest) = recover::restorable(&found).map(|i| found.swap_remove(i))
    {
        newest.name = profile.name.clone();
        preview = plan_for(cx, profile, options, Some(newest)).await?;
    }
    Ok(preview)
}

/// `preview` of what holds the name now.
async fn look<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
) -> Result<Preview> {
    let observed = cx.engine.find(&profile.name).await?;
    plan_for(cx, profile, options, observed).await
}

async fn plan_for<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
    observed: Option<Observed>,
) -> Result<Preview> {
    if !cx.host.provisional() || profile.gpus.is_none() {
        return plan_on(cx, profile, options, observed).await;
    }
    // The kernel's view of the GPUs can tell that a container is in sync;
    // any other answer, an error included, is NVML's to give (unless
    // `plan_on` asked NVML already).
    let preview = plan_on(cx, profile, options, observed.clone()).await;
    let in_sync = matches!(&preview, Ok(p) if p.plan.action == Action::Nothing && !p.pull);
    if in_sync || !cx.host.provisional() {
        return preview;
    }
    cx.host.confirm().await;
    plan_on(cx, profile, options, observed).await
}

async fn plan_on<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
    observed: Option<Observed>,
) -> Result<Preview> {
    let engine = cx.engine;
    // Other containers matter only to a count selection (which GPUs are
    // held) and to keeping its choice; skip the listing otherwise, so a
    // no-op run stays a handful of API calls.
    let managed = if matches!(
        profile.gpus.as_ref().map(|g| &g.selection),
        Some(GpuSelection::Count(_))
    ) {
        // A reclaimed container that is down holds no GPU (leases).
        let released = crate::lease::released(engine.store());
        let mut managed = engine.managed().await?;
        managed.retain(|c| crate::lease::holds_gpus(c, &released));
        managed
    } else {
        Vec::new()
    };
    let mut managed = managed;
    // Its own container tells which GPUs a count selection keeps.
    if let Some(own) = observed.as_ref().filter(|o| o.is_managed())
        && !managed.iter().any(|c| c.id == own.id)
    {
        managed.push(own.clone());
    }
    let (build, built_id) = build_due(engine, profile).await?;
    // A due build remakes the container: NVML decides, before resolving,
    // so that the build context is not hashed twice.
    if build.is_some() && profile.gpus.is_some() {
        cx.host.confirm().await;
    }
    let resolved = crate::resolve::resolve_reserving(profile, cx.host, &managed, cx.reserved)?;
    let policy = options.pull.unwrap_or(profile.pull);
    let mut plan = plan::plan(&resolved.spec, observed.as_ref(), None, options);
    // The image matters when a container is to be made, or when a pull may
    // move the tag; an up-to-date container needs no image lookup.
    let needs_image = policy == PullPolicy::Always
        || matches!(plan.action, Action::Create | Action::Recreate { .. });
    let image_id = if profile.build.is_some() {
        built_id
    } else if needs_image {
        engine.image_id(&resolved.spec.image).await?
    } else {
        None
    };
    // A built image is never pulled: its tag is local.
    let pull = profile.build.is_none()
        && match policy {
            PullPolicy::Always => true,
            PullPolicy::Missing => needs_image && image_id.is_none(),
            PullPolicy::Never => false,
        };
    if image_id.is_some() {
        plan = plan::plan(
            &resolved.spec,
            observed.as_ref(),
            image_id.as_deref(),
            options,
        );
    }
    // Whose it is: a container in sync and labelled for this owner is left
    // as it is without asking the store; anything that acts asks the gate.
    let judged = match &observed {
        Some(found) if found.is_managed() => {
            plan.action.changes_something() || !labelled_for(found, &profile.owner)
        }
        _ => false,
    };
    if judged
        && let Some(found) = &observed
        && let Whose::Other(holder) = engine.whose(found)?
    {
        plan.action = Action::Refuse(format!(
            "container {} belongs to {holder}, and this profile acts for {}: launch never touches another owner's container; \
             set another `name` in the profile",
            found.name,
            profile.owner.display()
        ));
    }
    reboot_check(cx, profile, &resolved.spec, &plan.action)?;
    // A rebuild almost always gives the image a new id, which recreates:
    // `plan` says so ahead. `up` plans again with the id the build gave.
    if let Some(due) = &build
        && !options.no_recreate
        && observed.as_ref().is_some_and(Observed::is_managed)
        && matches!(
            plan.action,
            Action::Nothing | Action::Start | Action::Unpause
        )
    {
        plan.action = Action::Recreate {
            why: format!("the image {} is rebuilt: {}", profile.image, due.why),
        };
    }
    Ok(Preview {
        resolved,
        plan,
        pull,
        build,
        observed,
        image_id,
    })
}

/// A pending reboot blocks every create or recreate of a GPU container (it
/// could not start); one that stays is left alone, with a warning
/// (docs/architecture.md, GPU health).
fn reboot_check<E>(
    cx: &Context<'_, E>,
    profile: &Profile,
    spec: &ContainerSpec,
    action: &Action,
) -> Result<()> {
    if spec.gpu.is_none() {
        return Ok(());
    }
    let Some(why) = cx.host.reboot_pending() else {
        return Ok(());
    };
    let what = match action {
        Action::Create => "not created".to_string(),
        Action::Recreate { why } => {
            format!("not recreated ({why}); the running container is left as it is")
        }
        _ => {
            tracing::warn!("{}: {why}", profile.name);
            return Ok(());
        }
    };
    Err(Error::RebootPending(format!("{what}: {why}")))
}

/// Before a GPU container is made: the image's `NVIDIA_REQUIRE_CUDA` (its
/// environment, under the profile's) against the driver's CUDA version, as
/// libnvidia-container reads it. An image that needs a newer driver is
/// refused (exit 3); `[gpus] require_cuda = false` or
/// `NVIDIA_DISABLE_REQUIRE` skips it (docs/architecture.md, GPU health).
async fn cuda_check<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    spec: &ContainerSpec,
) -> Result<()> {
    use crate::health::cuda::{self, Offered, Requirement};
    let checked = profile.gpus.as_ref().is_some_and(|g| g.require_cuda);
    let Some(Ok(host)) = cx.host.gpus() else {
        return Ok(());
    };
    if !checked || spec.gpu.is_none() {
        return Ok(());
    }
    let mut env = cx.engine.image_env(&spec.image).await?.unwrap_or_default();
    env.extend(spec.env.clone());
    let disabled = env.get("NVIDIA_DISABLE_REQUIRE").is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    let Some(text) = env.get("NVIDIA_REQUIRE_CUDA").filter(|_| !disabled) else {
        return Ok(());
    };
    let offered = Offered {
        cuda: host.cuda_version.clone(),
        driver: Some(host.driver_version.clone()),
        ..Offered::default()
    };
    let requirement = Requirement::parse(text).map_err(|e| {
        Error::Refused(format!(
            "image {}: NVIDIA_REQUIRE_CUDA={text} cannot be read: {e}; set `require_cuda = false` under [gpus] to start it without the check",
            spec.image
        ))
    })?;
    if requirement.met_by(&offered) {
        return Ok(());
    }
    Err(Error::Refused(cuda::refusal(
        &spec.image,
        &requirement,
        text,
        &offered,
    )))
}

/// Before a container is made from an image whose `USER` is a bare uid and
/// a profile that sets no `user`: Docker would run it as gid 0 (root's
/// group) unless the image's passwd names that uid, which launch cannot see
/// without running it. Refused (exit 3) with the fix: a group of one's own
/// (docs/architecture.md, the owner boundary).
async fn group_check<E: Engine>(cx: &Context<'_, E>, spec: &ContainerSpec) -> Result<()> {
    if spec.user.is_some() {
        return Ok(());
    }
    let Some(user) = cx.engine.image_user(&spec.image).await? else {
        return Ok(());
    };
    match crate::profile::User::parse(&user)
        .ok()
        .and_then(|u| u.bare_uid())
    {
        Some(uid) if uid != 0 => Err(Error::Refused(format!(
            "image {} runs as uid {uid} without a group (its USER), which Docker runs as gid 0, root's group, \
             unless the image's passwd names that uid; set user = \"{uid}:GID\" (or user = \"owner\") in the profile",
            spec.image
        ))),
        _ => Ok(()),
    }
}

/// Before a container is made with `platform`: the local image must be of
/// that platform (the engine refuses another at create). A variant the
/// profile leaves out matches any.
async fn platform_check<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    spec: &ContainerSpec,
) -> Result<()> {
    let Some(wanted) = &spec.platform else {
        return Ok(());
    };
    let Some(found) = cx.engine.image_platform(&spec.image).await? else {
        return Ok(());
    };
    let parts = |p: &str| p.split('/').map(str::to_string).collect::<Vec<_>>();
    let (w, f) = (parts(wanted), parts(&found));
    let matches = w.iter().zip(&f).all(|(a, b)| a == b) && w.len() >= 2;
    if matches {
        return Ok(());
    }
    let span = profile
        .places
        .key("platform")
        .unwrap_or(profile.places.start.clone());
    Err(Error::Profile(crate::profile::Diagnostics {
        sources: std::sync::Arc::clone(&profile.sources),
        items: vec![
            crate::profile::Diagnostic::new(
                span,
                format!(
                    "platform = \"{wanted}\", but image {} on this host is {found}",
                    spec.image
                ),
            )
            .help("pull the image for that platform, or leave `platform` out"),
        ],
    }))
}

/// Before a container is made that joins another's namespaces
/// (`container:NAME`): that container must exist (the engine refuses the
/// create otherwise). Whose it is, is the gate's to judge.
async fn join_check<E: Engine>(cx: &Context<'_, E>, profile: &Profile) -> Result<()> {
    let joined = [
        ("network", profile.network.as_ref().map(|n| n.shared())),
        ("ipc", profile.ipc.as_ref().map(|i| i.shared())),
        ("pid", profile.pid.as_ref().map(|p| p.shared())),
    ];
    let mut items = Vec::new();
    for (key, shared) in joined {
        if let Some(crate::profile::Shared::Container(name)) = shared
            && cx.engine.find(name).await?.is_none()
        {
            let span = profile
                .places
                .key(key)
                .unwrap_or(profile.places.start.clone());
            items.push(crate::profile::Diagnostic::new(
                span,
                format!("{key} = \"container:{name}\": there is no container {name} to join"),
            ));
        }
    }
    // Docker would make the container and fail to start it; Podman refuses
    // to make it. Either way the answer is the same, so it is given here.
    if let Some(crate::profile::Network::Named(name)) = &profile.network
        && !cx.engine.network_exists(name).await?
    {
        let span = profile
            .places
            .key("network")
            .unwrap_or(profile.places.start.clone());
        items.push(
            crate::profile::Diagnostic::new(
                span,
                format!("network `{name}` does not exist on this engine"),
            )
            .help(format!(
                "create it (`docker network create {name}`), or use network = \"bridge\""
            )),
        );
    }
    if items.is_empty() {
        return Ok(());
    }
    Err(Error::Profile(crate::profile::Diagnostics {
        sources: std::sync::Arc::clone(&profile.sources),
        items,
    }))
}

/// Before a container is made: what the engine would drop or misread.
/// Podman drops toolkit requests (and CDI's before 5.4) without an error,
/// which would start the container without its GPUs, and reads a seccomp
/// profile's JSON as a file name (docs/architecture.md, engines as they
/// are). Refused at the key, naming the versions.
async fn engine_check<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    spec: &ContainerSpec,
) -> Result<()> {
    use crate::spec::InjectionMode;
    let seccomp_file = spec.security_opt.iter().any(|o| o.starts_with("seccomp={"));
    let gpu_mode = spec.gpu.as_ref().map(|g| g.mode);
    if !seccomp_file && matches!(gpu_mode, None | Some(InjectionMode::Devices)) {
        return Ok(());
    }
    let engine = cx.engine.identity().await?;
    if !engine.is_podman() {
        return Ok(());
    }
    if seccomp_file {
        let span = profile
            .places
            .key("security_opt")
            .unwrap_or(profile.places.start.clone());
        return Err(Error::Profile(crate::profile::Diagnostics {
            sources: std::sync::Arc::clone(&profile.sources),
            items: vec![crate::profile::Diagnostic::new(
                span,
                format!(
                    "a seccomp profile file on {engine}: Podman's API reads `seccomp=` as a path on its own host, not as the profile's JSON that Docker's API takes"
                ),
            )
            .help("leave the seccomp profile out on Podman, or run this profile on Docker")],
        }));
    }
    let Some(gpu) = &spec.gpu else {
        return Ok(());
    };
    let why = match gpu.mode {
        InjectionMode::Toolkit => format!(
            "mode = \"toolkit\" on {engine}: Podman drops the toolkit's device requests without an error, so the container would start without its GPUs"
        ),
        InjectionMode::Cdi if !engine.at_least(5, 4) => format!(
            "mode = \"cdi\" on {engine}: Podman keeps CDI device requests from its API only since 5.4"
        ),
        _ => return Ok(()),
    };
    let span = profile
        .gpus
        .as_ref()
        .map_or(profile.places.start.clone(), |g| g.span.clone());
    Err(Error::Profile(crate::profile::Diagnostics {
        sources: std::sync::Arc::clone(&profile.sources),
        items: vec![crate::profile::Diagnostic::new(span, why).help(
            "set mode = \"devices\" under [gpus]: launch then mounts the GPUs and the driver itself",
        )],
    }))
}

/// After the look: pull if needed, then apply the plan. Returns the plan,
/// the spec it was for, and what apply did.
async fn make<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
    preview: Result<Preview>,
) -> Result<(plan::Plan, ContainerSpec, apply::Applied)> {
    let engine = cx.engine;
    let Preview {
        resolved,
        mut plan,
        pull,
        build,
        observed,
        mut image_id,
    } = preview?;
    // A foreign container is refused before anything is pulled.
    if let Action::Refuse(reason) = &plan.action {
        return Err(Error::Refused(reason.clone()));
    }
    let spec = resolved.spec;
    if pull {
        engine.pull(&spec.image).await?;
        // The pulled image may have a new id: plan again with it.
        image_id = engine.image_id(&spec.image).await?;
        plan = plan::plan(&spec, observed.as_ref(), image_id.as_deref(), options);
    }
    // A failed build returns here: the running container is left alone.
    if let Some(due) = build {
        engine
            .build(&spec.image, &due.context, &due.context.labels())
            .await?;
        image_id = engine.image_id(&spec.image).await?;
        plan = plan::plan_after(
            &spec,
            observed.as_ref(),
            image_id.as_deref(),
            options,
            "built",
        );
    }
    if matches!(plan.action, Action::Create | Action::Recreate { .. }) && image_id.is_none() {
        return Err(EngineError::ImageMissing(spec.image.clone()).into());
    }
    // Planned again after a pull or build: it may recreate now.
    if matches!(plan.action, Action::Create | Action::Recreate { .. }) {
        reboot_check(cx, profile, &spec, &plan.action)?;
        cuda_check(cx, profile, &spec).await?;
        group_check(cx, &spec).await?;
        platform_check(cx, profile, &spec).await?;
        join_check(cx, profile).await?;
        engine_check(cx, profile, &spec).await?;
    }
    let applied = apply::apply(engine, profile, &spec, observed.as_ref(), &plan.action).await?;
    Ok((plan, spec, applied))
}

/// `launch up` for one profile.
pub async fn up<E: Engine>(
    cx: &Context<'_, E>,
    profile: &Profile,
    options: Options,
) -> Result<Outcome> {
    let engine = cx.engine;
    if let Some(listing) = cx.listing
        && let Some(outcome) = in_sync(listing, cx.host, profile, options)
    {
        return Ok(outcome);
    }
    let _lock = cx.locks.acquire(&profile.name).await?;
    // A count selection reads which GPUs are free and then takes some: no
    // other run may choose in between.
    let _gpus = match profile.gpus.as_ref().map(|g| &g.selection) {
        Some(GpuSelection::Count(_)) => Some(cx.locks.acquire(GPU_ALLOCATION).await?),
        _ => None,
    };
    // A run killed mid-recreate may have left the old container aside: it
    // gets the name back before anything is planned for the name. A free
    // name is always looked at exactly (the run's one listing may predate a
    // run that was killed since); a taken one when the listing saw leftovers.
    let (first, mut leftovers) = if cx.listing.is_none() {
        // No listing (one profile): the search runs beside the look, on
        // another connection, rather than after it.
        let (preview, found) = futures_util::future::join(
            look(cx, profile, options),
            recover::leftovers(engine, &profile.name),
        )
        .await;
        (Some(preview?), found?)
    } else {
        let mut first = None;
        let look_aside = cx.may_have_leftovers(&profile.name) || {
            let preview = look(cx, profile, options).await?;
            let free = preview.observed.is_none();
            first = Some(preview);
            free
        };
        let leftovers = if look_aside {
            recover::leftovers(engine, &profile.name).await?
        } else {
            Vec::new()
        };
        (first, leftovers)
    };
    let restored = recover::restore(engine, &profile.name, &mut leftovers).await?;
    let preview = match first {
        Some(preview) if restored.is_none() => Ok(preview),
        _ => look(cx, profile, options).await,
    };
    let made = make(cx, profile, options, preview).await;
    // The interrupted run had stopped the restored container; when this run
    // cannot replace it (changed files refused, a failed recreate), it runs
    // again as it did before, instead of staying down on every run.
    if made.is_err()
        && restored.is_some()
        && let Ok(Some(c)) = engine.find(&profile.name).await
        && matches!(c.state, State::Created | State::Exited)
    {
        match engine.start(&c.id).await {
            Ok(()) => tracing::warn!(
                "{}: started the restored container again, as it ran before the interrupted run",
                profile.name
            ),
            Err(e) => tracing::warn!(
                "{}: the restored container did not start: {e}",
                profile.name
            ),
        }
    }
    let (plan, spec, applied) = made?;
    let spec = &spec;
    let leftovers = restored
        .into_iter()
        .chain(recover::settle(engine, profile, spec, leftovers).await)
        .chain(applied.left_aside.clone())
        .collect();
    Ok(Outcome {
        name: profile.name.clone(),
        id: applied.id.clone(),
        gpus: spec
            .gpu
            .as_ref()
            .map(|g| g.uuids.clone())
            .unwrap_or_default(),
        action: plan.action,
        changes: plan.changes,
        applied,
        leftovers,
    })
}
