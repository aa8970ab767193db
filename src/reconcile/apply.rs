//! apply: carrying out a plan through the engine, including the safe
//! recreate (docs/architecture.md, reconcile): nothing the user has is lost,
//! and a failed recreate leaves the old container as it was.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::{Engine, Observed, Removal, State};
use crate::error::{Error, Result};
use crate::profile::{ChangedFiles, MountKind, Profile};
use crate::spec::{ContainerSpec, label};

use super::changes::{at_risk, list, snapshot};
use super::plan::{Action, short};

/// What apply did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub id: Option<String>,
    /// The image a `snapshot` recreate committed the old container to.
    pub snapshot: Option<String>,
    /// A `discard` recreate threw the old writable layer away, changed
    /// files and all, unlisted.
    pub discarded: bool,
    /// The old container of a recreate that could not be removed: it stays
    /// aside, and the next run settles it.
    pub left_aside: Option<super::recover::Leftover>,
    /// The old container of a recreate, by its name aside, whose files the
    /// engine was still deleting when `up` was done; it goes on its own.
    pub removing: Option<String>,
}

pub async fn apply<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    observed: Option<&Observed>,
    action: &Action,
) -> Result<Applied> {
    // Labels (with the spec's JSON and hash) only for a container to be made.
    let labels = || {
        let mut labels = spec.all_labels(&profile.path);
        labels.insert(label::OWNER.into(), profile.owner.display());
        labels
    };
    let id = || observed.map(|o| o.id.clone());
    match action {
        Action::Nothing => Ok(Applied {
            id: id(),
            ..Default::default()
        }),
        Action::Refuse(reason) => Err(Error::Refused(reason.clone())),
        Action::Restart { .. } => {
            let o = existing(observed)?;
            engine.stop(&o.id, spec.stop_timeout).await?;
            engine.start(&o.id).await?;
            stop_unless_it_reaches_its_gpus(engine, spec, &o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Start => {
            let o = existing(observed)?;
            engine.start(&o.id).await?;
            stop_unless_it_reaches_its_gpus(engine, spec, &o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Unpause => {
            let o = existing(observed)?;
            engine.unpause(&o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Create => {
            create_bind_sources(profile)?;
            let id = create_and_start(engine, spec, &labels()).await?;
            Ok(Applied {
                id: Some(id),
                ..Default::default()
            })
        }
        Action::Recreate { .. } => {
            recreate(engine, profile, spec, &labels(), existing(observed)?).await
        }
    }
}

fn existing(observed: Option<&Observed>) -> Result<&Observed> {
    observed
        .ok_or_else(|| Error::Io("internal: the plan needs a container that does not exist".into()))
}

/// Creates and starts; a container that was created but failed to start is
/// removed again, so a failure leaves nothing behind.
async fn create_and_start<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
) -> Result<String> {
    let id = engine.create(&spec.name, spec, labels).await?;
    let started = match engine.start(&id).await {
        Ok(()) => reaches_its_gpus(engine, spec, &id).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = started {
        if let Err(cleanup) = engine.remove(&id, false).await {
            tracing::warn!(
                "could not remove the container that failed to start ({}): {cleanup}",
                short(&id)
            );
        }
        return Err(e);
    }
    Ok(id)
}

/// After a GPU container starts: from the host, executing nothing in it,
/// whether it reaches its GPUs (docs/architecture.md, engines as they are).
/// An engine on another host cannot be looked at: a warning says so.
pub(crate) async fn reaches_its_gpus<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    id: &str,
) -> Result<()> {
    let Some(gpu) = &spec.gpu else {
        return Ok(());
    };
    let identity = engine.identity().await?;
    if !identity.local {
        tracing::warn!(
            "{}: {identity} is not on this host, so whether the container reaches its GPUs could not be checked",
            spec.name
        );
        return Ok(());
    }
    // A container that exited at once has nothing to look at (`--wait` says so).
    let Some(pid) = engine.process(id).await? else {
        return Ok(());
    };
    let missing = crate::host::reach::missing(Path::new("/proc"), pid, spec);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::GpusLost {
        name: spec.name.clone(),
        mode: gpu.mode.to_string(),
        engine: identity.to_string(),
        missing,
    })
}

/// `reaches_its_gpus` for a container that existed: it is stopped when not.
async fn stop_unless_it_reaches_its_gpus<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    id: &str,
) -> Result<()> {
    let reached = reaches_its_gpus(engine, spec, id).await;
    if reached.is_err()
        && let Err(e) = engine.stop(id, Some(0)).await
    {
        tracing::warn!("{}: could not stop it: {e}", spec.name);
    }
    reached
}

/// `create = true` bind sources are made before Docker sees them. Launch,
/// acting for a profile's owner (run by root or another user), makes them
/// only where the owner could (docs/architecture.md, shared hosts), and
/// gives them to the owner when it may (as root).
fn create_bind_sources(profile: &Profile) -> Result<()> {
    let owner = &profile.owner;
    let for_owner = owner.acted_for();
    for m in profile
        .volumes
        .iter()
        .filter(|m| m.kind == MountKind::Bind && m.create)
    {
        let Some(source) = &m.source else { continue };
        let failed = |e: String| Error::Io(format!("cannot create bind source {source}: {e}"));
        if !for_owner {
            std::fs::create_dir_all(source).map_err(|e| failed(e.to_string()))?;
            continue;
        }
        // The folders to make, outermost first, below the deepest that exists.
        let missing: Vec<&Path> = Path::new(source)
            .ancestors()
            .take_while(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        let Some(parent) = missing.last().and_then(|p| p.parent()) else {
            continue;
        };
        if !owner.may_create_in(parent) {
            return Err(failed(format!(
                "{} (the profile's owner) cannot create folders in {}, and launch creates for a profile only what its owner could",
                owner.display(),
                parent.display()
            )));
        }
        for dir in missing.iter().rev() {
            std::fs::create_dir(dir)
                .and_then(|()| {
                    match std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid())) {
                        // Only root may give a folder away; it stays the runner's.
                        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
                        other => other,
                    }
                })
                .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        }
    }
    Ok(())
}

async fn recreate<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    old: &Observed,
) -> Result<Applied> {
    let mut applied = Applied::default();
    // 1. What would be lost with the old container's writable layer. Under
    // `discard` the answer would change nothing, and asking costs the daemon
    // a walk of the whole layer, as long as the recreate itself after one
    // `pip install` (docs/benchmarks.md): it is not asked.
    let policy = profile.recreate.changed_files;
    applied.discarded = policy == ChangedFiles::Discard;
    let changed = if applied.discarded {
        Vec::new()
    } else {
        at_risk(engine, profile, spec, old).await?
    };
    if !changed.is_empty() {
        match policy {
            ChangedFiles::Refuse => {
                return Err(Error::Refused(format!(
                    "container {} must be recreated, but files changed inside it would be lost:\n{}\n\
                     Keep them in a mounted volume, or set [recreate] changed_files = \"snapshot\" (commit them to an \
                     image first) or \"discard\"; paths that do not matter can go in [recreate] ignore.",
                    old.name,
                    list(&changed)
                )));
            }
            ChangedFiles::Snapshot => {
                applied.snapshot = Some(snapshot(engine, &old.id, &old.name).await?);
            }
            ChangedFiles::Discard => {}
        }
    }
    create_bind_sources(profile)?;
    // 2. Stop the old one and move it aside; the name is then free.
    let was_up = matches!(
        old.state,
        State::Running | State::Paused | State::Restarting
    );
    if old.state == State::Paused {
        engine.unpause(&old.id).await?;
    }
    engine.stop(&old.id, None).await?;
    let aside = super::recover::aside_name(&old.name, &old.id);
    if let Err(e) = engine.rename(&old.id, &aside).await {
        // Nothing new exists yet: the old container only needs to run again.
        let restarted = if was_up {
            engine.start(&old.id).await
        } else {
            Ok(())
        };
        return Err(Error::RecreateFailed {
            name: old.name.clone(),
            cause: e.to_string(),
            rollback: match restarted {
                Ok(()) => "the old container is back under its name, as it was".into(),
                Err(r) => format!("starting the old container again failed too ({r})"),
            },
        });
    }
    match create_and_start(engine, spec, labels).await {
        Ok(id) => {
            // 3. Only now is the old container removed (its volumes stay).
            // The new one is up: a failure here is a leftover, not a failed
            // recreate. The engine's deletion of a big writable layer is not
            // waited for: nothing depends on it, and it would cost the
            // recreate more than all its other steps (docs/benchmarks.md).
            match engine.remove_begun(&old.id).await {
                Ok(Removal::Done) => {}
                Ok(Removal::Begun) => applied.removing = Some(aside),
                Err(e) => {
                    applied.left_aside = Some(super::recover::Leftover::Kept {
                        name: aside,
                        why: format!("{e}; the next launch up removes it"),
                    });
                }
            }
            applied.id = Some(id);
            Ok(applied)
        }
        Err(e) => {
            // Roll back: the old container gets its name back, running as before.
            let restored = async {
                engine.rename(&old.id, &old.name).await?;
                if was_up {
                    engine.start(&old.id).await?;
                }
                Ok::<(), crate::engine::EngineError>(())
            }
            .await;
            Err(Error::RecreateFailed {
                name: old.name.clone(),
                cause: e.to_string(),
                rollback: match restored {
                    Ok(()) => "the old container is back under its name, as it was".into(),
                    Err(r) => {
                        format!("rolling back failed too ({r}): the old container is {aside}")
                    }
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::recording::Op;
    use crate::reconcile::testing::Fixture;

    /// A running container of `sleep 1000`, and the profile changed to
    /// `sleep 1001`: `up` must recreate. Returns the old id.
    fn changed(f: &Fixture) -> (String, Profile) {
        let old = f.profile("sleep 1000", "");
        let id = f.existing(&old, State::Running, &[]);
        (id, f.profile("sleep 1001", ""))
    }

    /// The old container is back under its name, running, and alone.
    fn assert_rolled_back(f: &Fixture, id: &str, e: &Error) {
        let shown = e.to_string();
        assert!(
            shown.starts_with("recreating train failed: ")
                && shown.ends_with("the old container is back under its name, as it was"),
            "{shown}"
        );
        let c = f
            .engine
            .container("train")
            .expect("a container named train");
        assert_eq!(c.id, id, "the old one");
        assert_eq!(c.state, State::Running, "running again");
        assert_eq!(f.names(), ["train"], "nothing else left");
    }

    /// A daemon that hangs after the old container was moved aside: the
    /// run's deadline ends it in time, and the next run repairs what it
    /// left, as after a killed run.
    #[tokio::test]
    async fn a_daemon_that_hangs_mid_recreate_ends_at_the_deadline_and_the_next_run_repairs() {
        use crate::session::{Deadline, within};
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.hang(Op::Start);
        let begun = std::time::Instant::now();
        let deadline = Some(Deadline::after(std::time::Duration::from_millis(300)));
        let e = within(deadline, || "train was being brought up".into(), f.up(&new))
            .await
            .expect_err("stopped at the deadline");
        assert!(begun.elapsed() < std::time::Duration::from_secs(5));
        let shown = e.to_string();
        assert!(shown.contains("the run's deadline"), "{shown}");
        assert!(shown.contains("train was being brought up"), "{shown}");
        assert_eq!(e.exit(), crate::exit::Exit::Runtime);
        // Stopped where the daemon hung: the old container aside, a new one
        // made and never started.
        assert!(
            f.names().iter().any(|n| n.starts_with("train-launch-old-")),
            "{:?}",
            f.names()
        );
        f.engine.revive();
        let outcome = f.up(&new).await.expect("the next run");
        assert_eq!(
            f.engine.container("train").map(|c| c.state),
            Some(State::Running)
        );
        assert_eq!(f.names(), ["train"], "{outcome:?}");
        assert!(
            f.engine.container("train").is_some_and(|c| c.id != id),
            "the new spec runs"
        );
    }

    #[tokio::test]
    async fn a_rename_that_fails_leaves_the_old_container_running() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine
            .fail(Op::Rename, 1, 500, "rename refused by the engine");
        let e = f.up(&new).await.expect_err("fails");
        assert!(
            e.to_string().contains("rename refused by the engine"),
            "{e}"
        );
        assert_rolled_back(&f, &id, &e);
        assert!(f.engine.calls_of(Op::Create).is_empty(), "nothing new made");
    }

    #[tokio::test]
    async fn a_create_that_fails_after_the_stop_rolls_back() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Create, 1, 500, "no space left on device");
        let e = f.up(&new).await.expect_err("fails");
        assert!(e.to_string().contains("no space left on device"), "{e}");
        assert_rolled_back(&f, &id, &e);
        let ops: Vec<Op> = f.engine.calls().iter().map(|c| c.op).collect();
        let at = |op| ops.iter().position(|o| *o == op).expect("called");
        assert!(at(Op::Stop) < at(Op::Create), "{ops:?}");
    }

    #[tokio::test]
    async fn a_start_that_fails_removes_the_new_container_and_rolls_back() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(
            Op::Start,
            1,
            500,
            "exec: \"sleep\": executable file not found",
        );
        let e = f.up(&new).await.expect_err("fails");
        assert!(e.to_string().contains("executable file not found"), "{e}");
        assert_rolled_back(&f, &id, &e);
        assert_eq!(f.engine.calls_of(Op::Create), ["train"]);
        assert_eq!(f.engine.calls_of(Op::Remove).len(), 1, "the new one went");
    }

    #[tokio::test]
    async fn a_rollback_that_fails_says_where_the_old_container_is_and_the_next_run_restores_it() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Start, 1, 500, "cannot start");
        // The rename aside goes through; the rename back fails.
        f.engine
            .fail_nth(Op::Rename, 2, 500, "the engine is confused");
        let aside = format!("train-launch-old-{}", &id[..12]);
        let e = f.up(&new).await.expect_err("fails");
        let shown = e.to_string();
        assert!(
            shown.contains("rolling back failed too") && shown.contains(&aside),
            "names where the old container is: {shown}"
        );
        assert_eq!(
            f.names(),
            std::slice::from_ref(&aside),
            "only the old one, aside"
        );

        f.engine.revive();
        let o = f.up(&new).await.expect("the next run goes through");
        assert!(
            o.leftovers
                .contains(&super::super::recover::Leftover::Restored { from: aside }),
            "{:?}",
            o.leftovers
        );
        let c = f.engine.container("train").expect("train");
        assert_ne!(c.id, id, "recreated from the restored container");
        assert_eq!(c.state, State::Running);
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn a_remove_that_fails_after_the_recreate_leaves_a_leftover_the_next_run_removes() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Remove, 1, 500, "device or resource busy");
        let o = f.up(&new).await.expect("the new container is up");
        let aside = format!("train-launch-old-{}", &id[..12]);
        assert!(
            matches!(&o.leftovers[..], [super::super::recover::Leftover::Kept { name, why }]
                if *name == aside && why.contains("device or resource busy")),
            "{:?}",
            o.leftovers
        );
        assert_eq!(f.names(), ["train".to_string(), aside.clone()]);
        assert_eq!(
            f.engine.container("train").map(|c| c.state),
            Some(State::Running)
        );

        let o = f.up(&new).await.expect("up to date");
        assert_eq!(
            o.leftovers,
            [super::super::recover::Leftover::Removed { name: aside }]
        );
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn discard_recreates_without_asking_what_changed_and_refuse_asks() {
        let f = Fixture::new();
        let old = f.profile("sleep 1000", "");
        let id = f.existing(&old, State::Running, &["A /root/notes.txt"]);
        let new = f.profile("sleep 1001", "[recreate]\nchanged_files = \"discard\"");
        let o = f.up(&new).await.expect("recreated");
        assert!(o.applied.discarded, "says the old layer went");
        assert!(
            f.engine.calls_of(Op::Changes).is_empty(),
            "no `docker diff` under discard: {:?}",
            f.engine.calls()
        );
        assert!(f.engine.container(&id).is_none(), "the old one is gone");

        let refused = f.profile("sleep 1002", "");
        f.engine.clear_calls();
        f.up(&refused)
            .await
            .expect("nothing changed inside: recreated");
        assert_eq!(f.engine.calls_of(Op::Changes).len(), 1, "refuse asks");
    }
}
