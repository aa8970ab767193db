//! plan: the desired spec against what the engine reports → what to do
//! (docs/architecture.md, reconcile). Pure.

use crate::engine::{Observed, State};
use crate::profile::PullPolicy;
use crate::spec::{ContainerSpec, label};

use super::diff::{self, Change};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create and start: no container of that name.
    Create,
    Start,
    Unpause,
    /// Replace the container; `why` says what changed.
    Recreate {
        why: String,
    },
    /// Stop and start the running container: `[gpus] probe` found its GPUs
    /// lost (NVML fails inside it).
    Restart {
        why: String,
    },
    Nothing,
    /// Touch nothing (exit 3).
    Refuse(String),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Start => "start",
            Action::Unpause => "unpause",
            Action::Recreate { .. } => "recreate",
            Action::Restart { .. } => "restart",
            Action::Nothing => "nothing",
            Action::Refuse(_) => "refuse",
        }
    }

    pub fn changes_something(&self) -> bool {
        !matches!(self, Action::Nothing | Action::Refuse(_))
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub action: Action,
    /// Field by field, from the container's `launch.spec` label to the desired spec.
    pub changes: Vec<Change>,
    /// The container was made by an older launch, from the same profile
    /// and host: its spec lacks only defaults added since (`SCHEMA`).
    pub older_schema: bool,
}

/// What `plan` and `status` say of a container made by an older launch.
pub const OLDER_SCHEMA: &str = "made by an older launch; new defaults apply at the next recreate";

/// Whether the container's stored spec is `desired` as an older launch made
/// it (docs/architecture.md, the spec and its hash: upgrading launch never
/// kills a running job).
pub fn made_by_older_launch(desired: &ContainerSpec, found: &Observed) -> bool {
    let Some(hash) = found.labels.get(label::SPEC_HASH) else {
        return false;
    };
    found.spec().is_some_and(|stored| {
        desired
            .projected(stored.schema)
            .iter()
            .any(|older| older.hash() == *hash)
    })
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Never recreate; only start or unpause what exists.
    pub no_recreate: bool,
    /// Recreate even when nothing changed.
    pub force_recreate: bool,
    /// Overrides the profiles' `pull` policy.
    pub pull: Option<PullPolicy>,
}

/// `image_id`: the id of the image the spec names, as the engine has it now
/// (after any pull); `None` when unknown (not pulled, or `plan` without pulling).
pub fn plan(
    desired: &ContainerSpec,
    observed: Option<&Observed>,
    image_id: Option<&str>,
    options: Options,
) -> Plan {
    plan_after(desired, observed, image_id, options, "pulled")
}

/// `plan`, where `image_id` is what the image has after `how` (`pulled`,
/// `built`): the words of a recreate for a new image id.
pub fn plan_after(
    desired: &ContainerSpec,
    observed: Option<&Observed>,
    image_id: Option<&str>,
    options: Options,
    how: &str,
) -> Plan {
    let Some(found) = observed else {
        return Plan {
            action: Action::Create,
            changes: Vec::new(),
            older_schema: false,
        };
    };
    if !found.is_managed() {
        return Plan {
            action: Action::Refuse(format!(
                "a container named {} exists that launch did not create (id {}, image {}); launch never touches it: \
                 rename or remove it yourself, or set another `name` in the profile",
                found.name,
                short(&found.id),
                found.image
            )),
            changes: Vec::new(),
            older_schema: false,
        };
    }
    let same_hash =
        found.labels.get(label::SPEC_HASH).map(String::as_str) == Some(desired.hash().as_str());
    let older_schema = !same_hash && made_by_older_launch(desired, found);
    let same_hash = same_hash || older_schema;
    // The field diff is for a recreate's message; a no-op (the cron case)
    // skips parsing the stored spec.
    let changes = if same_hash {
        Vec::new()
    } else {
        found
            .spec()
            .map(|current| diff::diff(&current, desired))
            .unwrap_or_default()
    };
    let image_moved = image_id.is_some_and(|id| !found.image_id.is_empty() && id != found.image_id);
    let why = if options.force_recreate {
        Some("--force-recreate".to_string())
    } else if !same_hash {
        Some(if changes.is_empty() {
            "the spec changed".to_string()
        } else {
            format!("changed: {}", diff::fields(&changes).join(", "))
        })
    } else if image_moved {
        Some(format!(
            "the image {} now has a different id ({how})",
            desired.image
        ))
    } else {
        None
    };
    let action = match why {
        Some(why) if !options.no_recreate => Action::Recreate { why },
        _ => match found.state {
            State::Running | State::Restarting => Action::Nothing,
            State::Paused => Action::Unpause,
            State::Created | State::Exited | State::Dead => Action::Start,
            State::Removing => Action::Refuse(format!(
                "container {} is being removed; try again",
                found.name
            )),
        },
    };
    Plan {
        action,
        changes,
        older_schema,
    }
}

pub use crate::engine::short;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            schema: 1,
            name: "train".into(),
            image: image.into(),
            ..Default::default()
        }
    }

    fn observed(spec: &ContainerSpec, state: State) -> Observed {
        Observed {
            id: "0123456789abcdef".into(),
            name: spec.name.clone(),
            state,
            labels: spec.all_labels(std::path::Path::new("/p.toml")),
            image_id: "sha256:aaa".into(),
            image: spec.image.clone(),
            started_at: String::new(),
            created: String::new(),
            health: None,
        }
    }

    #[test]
    fn follows_the_reconcile_table() {
        let s = spec("busybox");
        let o = Options::default();
        assert_eq!(plan(&s, None, None, o).action, Action::Create);
        assert_eq!(
            plan(
                &s,
                Some(&observed(&s, State::Running)),
                Some("sha256:aaa"),
                o
            )
            .action,
            Action::Nothing
        );
        assert_eq!(
            plan(&s, Some(&observed(&s, State::Exited)), None, o).action,
            Action::Start
        );
        assert_eq!(
            plan(&s, Some(&observed(&s, State::Paused)), None, o).action,
            Action::Unpause
        );
        let moved = plan(
            &s,
            Some(&observed(&s, State::Running)),
            Some("sha256:bbb"),
            o,
        )
        .action;
        assert!(matches!(moved, Action::Recreate { .. }), "{moved:?}");
    }

    #[test]
    fn a_changed_spec_recreates_and_names_the_field() {
        let old = spec("busybox");
        let new = spec("busybox:1.36");
        let p = plan(
            &new,
            Some(&observed(&old, State::Running)),
            None,
            Options::default(),
        );
        assert_eq!(
            p.action,
            Action::Recreate {
                why: "changed: image".into()
            }
        );
        let p = plan(
            &new,
            Some(&observed(&old, State::Running)),
            None,
            Options {
                no_recreate: true,
                ..Default::default()
            },
        );
        assert_eq!(p.action, Action::Nothing);
    }

    #[test]
    fn a_container_made_by_an_older_launch_is_up_to_date_until_a_real_change() {
        // Schema 1 lacked CUDA_DEVICE_ORDER; the spec now has it.
        let mut now = spec("busybox");
        now.schema = 2;
        now.gpu = Some(crate::spec::GpuAssignment::default());
        now.env
            .insert("CUDA_DEVICE_ORDER".into(), "PCI_BUS_ID".into());
        let mut old = now.clone();
        old.schema = 1;
        old.env.clear();
        let found = observed(&old, State::Running);
        let p = plan(&now, Some(&found), None, Options::default());
        assert_eq!(p.action, Action::Nothing);
        assert!(p.older_schema);
        assert!(p.changes.is_empty(), "{:?}", p.changes);
        // Stopped: started as it is, not recreated.
        let p = plan(
            &now,
            Some(&observed(&old, State::Exited)),
            None,
            Options::default(),
        );
        assert_eq!(p.action, Action::Start);
        // --force-recreate brings it to the new schema.
        let p = plan(
            &now,
            Some(&found),
            None,
            Options {
                force_recreate: true,
                ..Default::default()
            },
        );
        assert!(matches!(p.action, Action::Recreate { .. }), "{p:?}");
        // So does a real change.
        let mut changed = now.clone();
        changed.image = "busybox:1.36".into();
        let p = plan(&changed, Some(&found), None, Options::default());
        assert!(!p.older_schema);
        assert!(matches!(p.action, Action::Recreate { .. }), "{p:?}");
    }

    #[test]
    fn short_ids_never_split_a_character() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("aéééééé"), "aéééééé");
    }

    #[test]
    fn foreign_containers_are_refused() {
        let s = spec("busybox");
        let mut o = observed(&s, State::Running);
        o.labels = BTreeMap::new();
        assert!(matches!(
            plan(&s, Some(&o), None, Options::default()).action,
            Action::Refuse(_)
        ));
    }
}
