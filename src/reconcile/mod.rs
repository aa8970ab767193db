//! Reconcile: make the engine match a profile (DESIGN.md §5). `plan` decides
//! (pure), `apply` acts; `up` runs both for one profile under its lock.

pub mod apply;
pub mod diff;
pub mod lock;
pub mod plan;

use crate::cli::Global;
use crate::engine::{Engine, EngineError};
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
    let managed = engine.managed().await?;
    let resolved = snapshot::resolve_profile(profile, global, Some(engine), &managed).await?;
    let image_id = engine.image_id(&resolved.spec.image).await?;
    let pull = match pull.unwrap_or(profile.pull) {
        PullPolicy::Always => true,
        PullPolicy::Missing => image_id.is_none(),
        PullPolicy::Never => false,
    };
    let plan = plan::plan(
        &resolved.spec,
        observed.as_ref(),
        image_id.as_deref(),
        options,
    );
    Ok(Preview {
        resolved,
        plan,
        pull,
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
    let first = preview(engine, profile, global, options, pull).await?;
    if let Action::Refuse(reason) = &first.plan.action {
        return Err(Error::Refused(reason.clone()));
    }
    let Preview { resolved, plan, .. } = if first.pull {
        engine.pull(&first.resolved.spec.image).await?;
        // The pulled image may have a new id: plan again with it.
        let observed = engine.find(&profile.name).await?;
        let image_id = engine.image_id(&first.resolved.spec.image).await?;
        let plan = plan::plan(
            &first.resolved.spec,
            observed.as_ref(),
            image_id.as_deref(),
            options,
        );
        Preview {
            resolved: first.resolved,
            plan,
            pull: false,
        }
    } else {
        first
    };
    let spec = &resolved.spec;
    if matches!(plan.action, Action::Create | Action::Recreate { .. })
        && engine.image_id(&spec.image).await?.is_none()
    {
        return Err(EngineError::ImageMissing(spec.image.clone()).into());
    }
    let observed = engine.find(&profile.name).await?;
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
