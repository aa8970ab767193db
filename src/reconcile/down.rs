//! down: stop and remove the container launch made for a name; its named
//! volumes only when asked, and then say exactly which went and which stayed.

use crate::engine::{Engine, EngineError, Gate, State, Whose};
use crate::error::{Error, Result};
use crate::spec::MountType;

use super::plan::short;

/// What `down` did to one container.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub id: String,
    pub volumes_removed: Vec<String>,
    /// Volumes asked to go that stayed, each with why.
    pub volumes_kept: Vec<KeptVolume>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeptVolume {
    pub name: String,
    pub reason: String,
}

/// Removes the container `name` (a launch one only); with `volumes`, also the
/// named volumes its spec mounts. `None` when there is no such container.
pub async fn down<E: Engine>(
    engine: &Gate<'_, E>,
    name: &str,
    volumes: bool,
) -> Result<Option<Removed>> {
    let Some(found) = engine.find(name).await? else {
        return Ok(None);
    };
    match engine.whose(&found)? {
        Whose::Mine => {}
        Whose::Foreign => {
            return Err(Error::Refused(format!(
                "container {name} was not created by launch (id {}); launch never removes it",
                short(&found.id)
            )));
        }
        Whose::Other(owner) => {
            return Err(Error::Refused(format!(
                "container {name} belongs to {owner}, and this profile acts for {}: launch never removes another owner's container",
                engine.acting().name()
            )));
        }
    }
    engine.stop(&found.id, None).await?;
    engine.remove(&found.id, false).await?;
    let mut removed = Removed {
        id: found.id.clone(),
        ..Default::default()
    };
    if !volumes {
        return Ok(Some(removed));
    }
    // The old container of a recent recreate may still be going (its files
    // being deleted), and it mounts the same volumes: they go after it.
    for old in engine.leftovers(name).await? {
        if super::recover::leftover_of(&old) == Some(name)
            && matches!(old.state, State::Removing | State::Dead)
        {
            tracing::info!("{name}: waiting for the engine to remove {}", old.name);
            // On failure the volume stays, and says which container holds it.
            if let Err(e) = engine.remove(&old.id, false).await {
                tracing::warn!("{name}: {e}");
            }
        }
    }
    let named = found
        .spec()
        .unwrap_or_default()
        .mounts
        .into_iter()
        .filter(|m| m.kind == MountType::Volume)
        .filter_map(|m| m.source);
    for volume in named {
        match engine.remove_volume(&volume).await {
            Ok(()) => removed.volumes_removed.push(volume),
            Err(e) => {
                let reason = why_kept(engine, &e).await;
                removed.volumes_kept.push(KeptVolume {
                    name: volume,
                    reason,
                });
            }
        }
    }
    Ok(Some(removed))
}

/// Why a volume stayed, in words: the containers that use it, by name, when
/// the engine says it is in use ("remove data: volume is in use - [3f2a…]").
async fn why_kept<E: Engine>(engine: &E, e: &EngineError) -> String {
    let message = e.message();
    // The container ids in the engine's words: Docker's "volume is in use -
    // [3f2a…]", Podman's "…used by the following container(s): 3f2a…: …".
    let users = e
        .is_conflict()
        .then(|| {
            message
                .split(|c: char| !c.is_ascii_hexdigit())
                .filter(|t| t.len() == 64)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|ids| !ids.is_empty());
    let Some(ids) = users else {
        return message;
    };
    let mut named = Vec::new();
    for id in ids {
        named.push(match engine.find(&id).await {
            Ok(Some(c)) => format!("{} ({})", c.name, short(&c.id)),
            _ => short(&id).to_string(),
        });
    }
    let s = if named.len() == 1 { "" } else { "s" };
    format!("in use by container{s} {}", named.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::State;
    use crate::engine::recording::Op;
    use crate::reconcile::testing::Fixture;

    #[tokio::test]
    async fn a_volume_in_use_stays_and_names_the_container_that_uses_it() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "volumes = [\"shared:/shared\", \"own:/own\"]");
        f.existing(&p, State::Running, &[]);
        // Another container mounts the shared volume.
        let mut holder = f.spec(&f.profile("sleep 1", "volumes = [\"shared:/x\"]"));
        holder.name = "holder".into();
        let holder = f
            .engine
            .add_container(&holder, &f.path(), State::Exited, &[]);

        let removed = down(&f.gate_for(crate::engine::Acting::runner()), "train", true)
            .await
            .expect("down")
            .expect("there was a container");
        assert_eq!(removed.volumes_removed, ["own"]);
        assert_eq!(
            removed.volumes_kept,
            [KeptVolume {
                name: "shared".into(),
                reason: format!("in use by container holder ({})", short(&holder)),
            }]
        );
        assert!(
            f.engine.container("train").is_none(),
            "the container is gone"
        );
        assert!(f.engine.volumes().contains("shared"));
        assert!(!f.engine.volumes().contains("own"));
    }

    #[tokio::test]
    async fn a_volume_that_cannot_be_removed_stays_with_the_engines_reason() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "volumes = [\"data:/data\"]");
        f.existing(&p, State::Running, &[]);
        f.engine.fail(Op::RemoveVolume, 1, 500, "permission denied");
        let removed = down(&f.gate_for(crate::engine::Acting::runner()), "train", true)
            .await
            .expect("down")
            .expect("there was a container");
        assert!(removed.volumes_removed.is_empty());
        assert_eq!(
            removed.volumes_kept,
            [KeptVolume {
                name: "data".into(),
                reason: "permission denied".into(),
            }]
        );
    }

    #[tokio::test]
    async fn volumes_go_after_the_old_container_the_engine_was_still_removing() {
        let f = Fixture::new();
        let body = "volumes = [\"data:/data\"]\n[recreate]\nchanged_files = \"discard\"";
        let p = f.profile("sleep 1000", body);
        let old = f.existing(&p, State::Running, &[]);
        f.engine.remove_slowly();
        let o = f
            .up(&f.profile("sleep 1001", body))
            .await
            .expect("recreated");
        let aside = o.applied.removing.expect("still being removed");
        // Another name's old container, named like this one's: not waited on.
        let mut other = f.spec(&f.profile("sleep 1", ""));
        other.name = format!("train-launch-old-x-launch-old-{}", &old[..12]);
        f.engine.add_container(&other, &f.path(), State::Dead, &[]);
        f.engine.clear_calls();

        let removed = down(&f.gate_for(crate::engine::Acting::runner()), "train", true)
            .await
            .expect("down")
            .expect("there was a container");
        assert_eq!(removed.volumes_removed, ["data"]);
        assert!(f.engine.container(&aside).is_none(), "waited for it");
        let removes = f.engine.calls_of(Op::Remove);
        assert_eq!(removes.len(), 2, "train and its old one: {removes:?}");
        assert!(f.engine.container(&other.name).is_some());
    }
}
