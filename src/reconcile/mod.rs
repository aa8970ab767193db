//! Reconcile: make the engine match a profile (DESIGN.md §5). `plan` decides
//! (pure), `apply` acts; `up` runs both for one profile under its lock.

pub mod apply;
pub mod diff;
pub mod lock;
pub mod plan;

use crate::cli::Global;
use crate::engine::{Engine, EngineError, Observed};
use crate::error::{Error, Result};
use crate::profile::{GpuSelection, Profile, PullPolicy};
use crate::resolve::Resolved;
use crate::snapshot;

pub use plan::{Action, Options};

/// What `up` did to one profile's container.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub action: Action,
    pub id: Option<String>,
    pub gpus: Vec<String>,
    pub changes: Vec<diff::Change>,
    pub applied: apply::Applied,
}

/// What `plan` would do: the outcome without acting, and whether a pull comes first.
pub struct Preview {
    pub resolved: Resolved,
    pub plan: plan::Plan,
    pub pull: bool,
    observed: Option<Observed>,
    image_id: Option<String>,
}

/// Looks at the engine and the host and decides, without changing anything.
pub async fn preview<E: Engine>(
    engine: &E,
    profile: &Profile,
    global: &Global,
    options: Options,
    pull: Option<PullPolicy>,
) -> Result<Preview> {
    let observed = engine.find(&profile.name).await?;
    // Other containers matter only to a count selection (which GPUs are
    // held) and to keeping its choice; skip the listing otherwise, so a
    // no-op run stays a handful of API calls.
    let managed = if matches!(
        profile.gpus.as_ref().map(|g| &g.selection),
        Some(GpuSelection::Count(_))
    ) {
        engine.managed().await?
    } else {
        Vec::new()
    };
    let resolved = snapshot::resolve_profile(profile, global, Some(engine), &managed).await?;
    let policy = pull.unwrap_or(profile.pull);
    let mut plan = plan::plan(&resolved.spec, observed.as_ref(), None, options);
    // The image matters when a container is to be made, or when a pull may
    // move the tag; an up-to-date container needs no image lookup.
    let needs_image = policy == PullPolicy::Always
        || matches!(plan.action, Action::Create | Action::Recreate { .. });
    let image_id = if needs_image {
        engine.image_id(&resolved.spec.image).await?
    } else {
        None
    };
    let pull = match policy {
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
    Ok(Preview {
        resolved,
        plan,
        pull,
        observed,
        image_id,
    })
}

/// `launch up` for one profile.
pub async fn up<E: Engine>(
    engine: &E,
    profile: &Profile,
    global: &Global,
    options: Options,
    pull: Option<PullPolicy>,
) -> Result<Outcome> {
    let _lock = lock::acquire(&profile.name).await?;
    // A count selection reads which GPUs are free and then takes some: no
    // other run may choose in between.
    let _gpus = match profile.gpus.as_ref().map(|g| &g.selection) {
        Some(GpuSelection::Count(_)) => Some(lock::acquire("gpu-allocation").await?),
        _ => None,
    };
    let Preview {
        resolved,
        mut plan,
        pull,
        observed,
        mut image_id,
    } = preview(engine, profile, global, options, pull).await?;
    // A foreign container is refused before anything is pulled.
    if let Action::Refuse(reason) = &plan.action {
        return Err(Error::Refused(reason.clone()));
    }
    let spec = &resolved.spec;
    if pull {
        engine.pull(&spec.image).await?;
        // The pulled image may have a new id: plan again with it.
        image_id = engine.image_id(&spec.image).await?;
        plan = plan::plan(spec, observed.as_ref(), image_id.as_deref(), options);
    }
    if matches!(plan.action, Action::Create | Action::Recreate { .. }) && image_id.is_none() {
        return Err(EngineError::ImageMissing(spec.image.clone()).into());
    }
    let applied = apply::apply(engine, profile, spec, observed.as_ref(), &plan.action).await?;
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
    })
}
