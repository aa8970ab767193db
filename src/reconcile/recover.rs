//! recover: what a killed run left behind (docs/architecture.md, reconcile).
//!
//! A recreate moves the old container aside as `<name>-launch-old-<short
//! id>` before it makes the new one, and removes it last. A run killed in
//! between (kill -9, power loss) leaves that leftover, and maybe a new
//! container that was created but never started. Before `up` plans a name
//! it looks for leftovers of that name:
//!
//! - the name is free: the newest leftover gets it back, and planning goes
//!   on as usual (so its changed files meet the profile's `[recreate]` rule);
//! - the name is taken by a container launch made (the half-made new one is
//!   started or remade by the plan as usual): once that is up, a leftover
//!   goes only when nothing in it would be lost (no changed files, or
//!   snapshotted, or the profile discards them); otherwise it stays, and
//!   `launch status` shows it.
//!
//! An old container the engine is removing is no leftover: it goes on its
//! own. One whose removal was cut short (state `dead`: the daemon
//! restarted, or the removal failed) can never start again: it is never given its name back, and
//! its removal is finished without asking what changed in it, which was
//! decided when the removal began.

use crate::engine::{Engine, Observed, State};
use crate::error::Result;
use crate::profile::{ChangedFiles, Profile};
use crate::spec::ContainerSpec;

use super::changes;
use super::plan::short;
use crate::engine::ASIDE;

/// The name a recreate gives the old container `id` of `name` while it
/// makes the new one.
pub fn aside_name(name: &str, id: &str) -> String {
    format!("{name}{ASIDE}{}", short(id))
}

/// The name `c` is a leftover of, when it is one: made by launch and named
/// as a recreate names what it moves aside.
pub fn leftover_of(c: &Observed) -> Option<&str> {
    let (name, id) = c.name.rsplit_once(ASIDE)?;
    (c.is_managed() && !name.is_empty() && id == short(&c.id)).then_some(name)
}

/// The name `c` is a leftover of, when launch still has to settle it: one
/// the engine is removing goes on its own.
pub fn unsettled_leftover_of(c: &Observed) -> Option<&str> {
    leftover_of(c).filter(|_| c.state != State::Removing)
}

/// Which of `leftovers` (oldest first) gets the name back when it is free:
/// the newest that can start again (a `dead` one cannot).
pub fn restorable(leftovers: &[Observed]) -> Option<usize> {
    leftovers.iter().rposition(|c| c.state != State::Dead)
}

/// The leftovers of `name` launch still has to settle, oldest first.
pub async fn leftovers<E: Engine>(engine: &E, name: &str) -> Result<Vec<Observed>> {
    let mut found: Vec<Observed> = engine
        .leftovers(name)
        .await?
        .into_iter()
        .filter(|c| unsettled_leftover_of(c) == Some(name))
        .collect();
    let made = |c: &Observed| humantime::parse_rfc3339_weak(&c.created).ok();
    found.sort_by(|a, b| {
        made(a)
            .cmp(&made(b))
            .then_with(|| a.created.cmp(&b.created))
    });
    Ok(found)
}

/// What `up` did with a leftover.
#[derive(Debug, Clone, PartialEq)]
pub enum Leftover {
    /// The name was free: the leftover has it back.
    Restored { from: String },
    /// Nothing in it would have been lost.
    Removed { name: String },
    /// Its changed files were committed to `image` first.
    Snapshotted { name: String, image: String },
    /// The profile discards changed files: any went with it, unlisted.
    Discarded { name: String },
    /// Its removal, cut short, is finished.
    Finished { name: String },
    /// It stays, for `why`.
    Kept { name: String, why: String },
}

impl Leftover {
    /// The leftover container's name (its name before a restore).
    pub fn container(&self) -> &str {
        match self {
            Leftover::Restored { from } => from,
            Leftover::Removed { name }
            | Leftover::Snapshotted { name, .. }
            | Leftover::Discarded { name, .. }
            | Leftover::Finished { name }
            | Leftover::Kept { name, .. } => name,
        }
    }

    /// What was done, in one word (JSON).
    pub fn action(&self) -> &'static str {
        match self {
            Leftover::Restored { .. } => "restored",
            Leftover::Removed { .. } | Leftover::Finished { .. } => "removed",
            Leftover::Snapshotted { .. } => "snapshotted",
            Leftover::Discarded { .. } => "discarded",
            Leftover::Kept { .. } => "kept",
        }
    }

    /// One line for the user.
    pub fn describe(&self) -> String {
        match self {
            Leftover::Restored { from } => {
                format!(
                    "an interrupted run had left the old container as {from}; it has its name back"
                )
            }
            Leftover::Removed { name } => format!(
                "removed {name}, left by an interrupted recreate (nothing in it would be lost)"
            ),
            Leftover::Snapshotted { name, image } => format!(
                "removed {name}, left by an interrupted recreate, after committing its changed files to {image}"
            ),
            Leftover::Discarded { name } => format!(
                "removed {name}, left by an interrupted recreate, with any files changed in it ([recreate] changed_files = \"discard\")"
            ),
            Leftover::Finished { name } => format!(
                "removed {name}, an earlier recreate's old container whose removal had been cut short"
            ),
            Leftover::Kept { name, why } => {
                format!("kept {name}, left by an interrupted recreate: {why}")
            }
        }
    }
}

/// Before planning: when nothing holds `name`, the newest leftover gets it
/// back (and leaves `leftovers`).
pub async fn restore<E: Engine>(
    engine: &E,
    name: &str,
    leftovers: &mut Vec<Observed>,
) -> Result<Option<Leftover>> {
    if leftovers.is_empty() || engine.find(name).await?.is_some() {
        return Ok(None);
    }
    let Some(newest) = restorable(leftovers).map(|i| leftovers.remove(i)) else {
        return Ok(None);
    };
    engine.rename(&newest.id, name).await?;
    tracing::warn!(
        "{name}: an interrupted run had left the old container as {}; it has its name back",
        newest.name
    );
    Ok(Some(Leftover::Restored { from: newest.name }))
}

/// After the name's container is up as the profile says: each leftover goes
/// when nothing in it would be lost, else stays. Never fails: a leftover
/// that cannot be judged or removed stays, with why.
pub async fn settle<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    leftovers: Vec<Observed>,
) -> Vec<Leftover> {
    let mut out = Vec::new();
    for old in leftovers {
        let name = old.name.clone();
        if matches!(
            old.state,
            State::Running | State::Paused | State::Restarting
        ) {
            // Someone started it again: it is in use, not left over.
            out.push(Leftover::Kept {
                name,
                why: "it is running; stop it (or remove it) when it is no longer needed".into(),
            });
            continue;
        }
        let settled = async {
            if old.state == State::Dead {
                engine.remove(&old.id, false).await?;
                return Ok(Leftover::Finished { name: name.clone() });
            }
            // As in a recreate, `discard` does not ask what changed.
            let discard = profile.recreate.changed_files == ChangedFiles::Discard;
            let changed = if discard {
                Vec::new()
            } else {
                changes::at_risk(engine, profile, spec, &old).await?
            };
            let done = if discard {
                Leftover::Discarded { name: name.clone() }
            } else if changed.is_empty() {
                Leftover::Removed { name: name.clone() }
            } else {
                match profile.recreate.changed_files {
                    ChangedFiles::Refuse => {
                        return Ok(Leftover::Kept {
                            name: name.clone(),
                            why: format!(
                                "files changed inside it would be lost:\n{}\n\
                                 Copy out what you need and remove it (docker rm {name}), or set [recreate] \
                                 changed_files = \"snapshot\" and run launch up again.",
                                changes::list(&changed)
                            ),
                        });
                    }
                    ChangedFiles::Snapshot => Leftover::Snapshotted {
                        name: name.clone(),
                        image: changes::snapshot(engine, &old.id, &profile.name).await?,
                    },
                    ChangedFiles::Discard => Leftover::Discarded { name: name.clone() },
                }
            };
            engine.remove(&old.id, false).await?;
            Ok::<_, crate::error::Error>(done)
        }
        .await;
        let settled = settled.unwrap_or_else(|e| Leftover::Kept {
            name: name.clone(),
            why: e.to_string(),
        });
        if let Leftover::Kept { .. } = &settled {
            tracing::warn!("{}: {}", profile.name, settled.describe());
        }
        out.push(settled);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::recording::{Call, Op, Recording};
    use crate::error::Error;
    use crate::reconcile::testing::Fixture;
    use crate::spec::label;

    const NOTES: &str = "/root/notes.txt";

    fn hash(f: &Fixture, name: &str) -> Option<String> {
        f.engine
            .container(name)
            .and_then(|c| c.labels.get(label::SPEC_HASH).cloned())
    }

    fn leftover_names(engine: &Recording) -> Vec<String> {
        engine
            .containers()
            .into_iter()
            .filter(|c| c.name.starts_with("train-launch-old-"))
            .map(|c| c.name)
            .collect()
    }

    /// The user's old container, or a snapshot of its changed files.
    fn old_is_kept(engine: &Recording, id: &str) -> bool {
        engine
            .container(id)
            .is_some_and(|c| c.changes.iter().any(|p| p == NOTES))
            || engine.images().iter().any(|i| {
                i.reference.starts_with("launch-snapshots/train:")
                    && i.changes.iter().any(|p| p == NOTES)
            })
    }

    /// A running container with a changed file, and a profile that
    /// recreates it (`body`: its `[recreate]` table).
    fn crashed_world(body: &str, changes: &[&str]) -> (Fixture, String, Profile) {
        let f = Fixture::new();
        let old = f.profile("sleep 1000", body);
        let id = f.existing(&old, State::Running, changes);
        let new = f.profile("sleep 1001", body);
        (f, id, new)
    }

    /// Kills a recreate after each of its steps in turn; the next run must
    /// repair: one container named train, running the new profile, no
    /// leftover, and the old container's changed file kept (in a snapshot).
    async fn every_crash_is_repaired(body: &str, changes: &[&str]) {
        let steps = {
            let (f, _, new) = crashed_world(body, changes);
            f.up(&new).await.expect("an uninterrupted recreate");
            f.engine.calls().len()
        };
        assert!(steps >= 8, "a recreate has its steps: {steps}");
        for k in 0..steps {
            let (f, id, new) = crashed_world(body, changes);
            f.engine.crash_after(k);
            let _killed = f.up(&new).await;
            // Whatever the step, nothing is lost and no name is held twice.
            let mut names = f.names();
            names.dedup();
            assert_eq!(names, f.names(), "killed after step {k}");
            if changes.contains(&NOTES) {
                assert!(old_is_kept(&f.engine, &id), "killed after step {k}");
            }

            f.engine.revive();
            let o = f
                .up(&new)
                .await
                .unwrap_or_else(|e| panic!("killed after step {k}, the next run repairs: {e}"));
            let train = f.engine.container("train").expect("train exists");
            assert_eq!(train.state, State::Running, "killed after step {k}");
            assert_eq!(
                hash(&f, "train"),
                Some(f.spec(&new).hash()),
                "killed after step {k}: the new profile's container"
            );
            assert!(
                leftover_names(&f.engine).is_empty(),
                "killed after step {k}: leftovers settled: {:?} ({o:?})",
                f.names()
            );
            assert_eq!(f.names(), ["train"], "killed after step {k}");
            if changes.contains(&NOTES) {
                assert!(old_is_kept(&f.engine, &id), "killed after step {k}");
            }
        }
    }

    #[tokio::test]
    async fn a_recreate_killed_after_any_step_is_repaired_by_the_next_run_and_snapshots_kept() {
        every_crash_is_repaired(
            "[recreate]\nchanged_files = \"snapshot\"",
            &["/root", NOTES, "/tmp/x"],
        )
        .await;
    }

    #[tokio::test]
    async fn a_recreate_of_a_clean_container_killed_after_any_step_is_repaired() {
        every_crash_is_repaired("", &["/tmp/x"]).await;
    }

    #[tokio::test]
    async fn a_folder_run_looks_for_leftovers_once_and_still_repairs_them() {
        // Killed right after the old container was moved aside.
        let moved_at = {
            let (f, _, new) = crashed_world("", &[]);
            f.up(&new).await.expect("an uninterrupted recreate");
            let calls = f.engine.calls();
            calls
                .iter()
                .position(|c| c.op == Op::Rename)
                .expect("a rename")
                + 1
        };
        let (f, id, new) = crashed_world("", &[]);
        f.engine.crash_after(moved_at);
        f.up(&new).await.expect_err("killed");
        f.engine.revive();
        f.up_in_folder(&new).await.expect("repaired");
        assert_eq!(f.names(), ["train"], "one container, no leftover");
        assert_ne!(f.engine.container("train").map(|c| c.id), Some(id));

        // In sync and nothing left aside: the run's one listing is the only
        // engine call.
        let before = f.engine.calls().len();
        let outcome = f.up_in_folder(&new).await.expect("a no-op");
        assert_eq!(outcome.action, crate::reconcile::Action::Nothing);
        let ops: Vec<Op> = f.engine.calls()[before..].iter().map(|c| c.op).collect();
        assert_eq!(ops, [Op::Managed], "one listing, nothing per profile");

        // A listing taken before another run was killed mid-recreate: the
        // free name is still looked at exactly, and the old container restored.
        let (f, id, new) = crashed_world("", &[NOTES]);
        let hint = crate::reconcile::Listing::take(&f.engine, &["train"])
            .await
            .expect("listing");
        f.engine.crash_after(moved_at);
        f.up(&new).await.expect_err("killed");
        f.engine.revive();
        f.up_with_listing(&new, &hint)
            .await
            .expect_err("its changed file is refused");
        assert_eq!(f.names(), ["train"], "no fresh container beside a leftover");
        assert_eq!(f.engine.container("train").map(|c| c.id), Some(id));
    }

    #[tokio::test]
    async fn a_free_name_gets_its_old_container_back_and_its_changed_files_are_refused() {
        // Killed right after the old container was moved aside, under a
        // profile that discards changed files; the profile then says refuse.
        let discard = "[recreate]\nchanged_files = \"discard\"";
        let moved_at = {
            let (f, _, new) = crashed_world(discard, &[NOTES]);
            f.up(&new).await.expect("an uninterrupted recreate");
            let calls = f.engine.calls();
            calls
                .iter()
                .position(|c| c.op == Op::Rename)
                .expect("a rename")
                + 1
        };
        let (f, id, new) = crashed_world(discard, &[NOTES]);
        f.engine.crash_after(moved_at);
        f.up(&new).await.expect_err("killed");
        let aside = aside_name("train", &id);
        assert_eq!(f.names(), std::slice::from_ref(&aside), "the name is free");

        f.engine.revive();
        let refuse = f.profile("sleep 1001", "");
        let e = f.up(&refuse).await.expect_err("refused");
        assert!(matches!(e, Error::Refused(_)), "{e:?}");
        assert!(e.to_string().contains(NOTES), "{e}");
        let c = f.engine.container("train").expect("back under its name");
        assert_eq!(c.id, id);
        assert_eq!(c.changes, [NOTES], "its changed file intact");
        assert_eq!(
            c.state,
            State::Running,
            "running again, as before the killed run"
        );
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn plan_shows_what_up_does_with_a_container_left_aside() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "");
        let id = f.existing(&p, State::Exited, &[]);
        crate::engine::Engine::rename(&f.engine, &id, &aside_name("train", &id))
            .await
            .expect("rename");
        let preview = f.preview(&p).await.expect("preview");
        assert_eq!(
            preview.plan.action,
            crate::reconcile::Action::Start,
            "not a create"
        );
        let changed = f.profile("sleep 1001", "");
        let preview = f.preview(&changed).await.expect("preview");
        assert!(
            matches!(
                preview.plan.action,
                crate::reconcile::Action::Recreate { .. }
            ),
            "{:?}",
            preview.plan.action
        );
        assert_eq!(
            f.names(),
            [aside_name("train", &id)],
            "a preview changes nothing"
        );
    }

    #[tokio::test]
    async fn a_half_made_new_container_is_started_and_a_clean_leftover_removed() {
        let f = Fixture::new();
        let old = f.profile("sleep 1000", "");
        let old_id = f.existing(&old, State::Exited, &["/tmp/x"]);
        crate::engine::Engine::rename(&f.engine, &old_id, &aside_name("train", &old_id))
            .await
            .expect("rename");
        let new = f.profile("sleep 1001", "");
        let new_id = f.existing(&new, State::Created, &[]);

        let o = f.up(&new).await.expect("repaired");
        assert_eq!(o.action, crate::reconcile::Action::Start);
        assert_eq!(
            o.id.as_deref(),
            Some(new_id.as_str()),
            "started, not remade"
        );
        assert_eq!(
            o.leftovers,
            [Leftover::Removed {
                name: aside_name("train", &old_id)
            }]
        );
        assert_eq!(f.names(), ["train"]);
        assert_eq!(
            f.engine.container("train").map(|c| c.state),
            Some(State::Running)
        );
    }

    #[tokio::test]
    async fn a_half_made_container_of_another_spec_is_remade() {
        let f = Fixture::new();
        let stale = f.profile("sleep 999", "");
        let stale_id = f.existing(&stale, State::Created, &[]);
        let new = f.profile("sleep 1001", "");
        let o = f.up(&new).await.expect("remade");
        assert!(
            matches!(o.action, crate::reconcile::Action::Recreate { .. }),
            "{o:?}"
        );
        assert_ne!(o.id.as_deref(), Some(stale_id.as_str()));
        assert_eq!(hash(&f, "train"), Some(f.spec(&new).hash()));
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn a_leftover_whose_files_would_be_lost_stays_until_the_profile_snapshots_it() {
        let f = Fixture::new();
        let old = f.profile("sleep 1000", "");
        let old_id = f.existing(&old, State::Exited, &[NOTES]);
        let aside = aside_name("train", &old_id);
        crate::engine::Engine::rename(&f.engine, &old_id, &aside)
            .await
            .expect("rename");
        let new = f.profile("sleep 1001", "");
        f.existing(&new, State::Running, &[]);

        let o = f.up(&new).await.expect("the new container is fine");
        assert!(
            matches!(&o.leftovers[..], [Leftover::Kept { name, why }] if *name == aside && why.contains(NOTES)),
            "{:?}",
            o.leftovers
        );
        assert!(f.engine.container(&old_id).is_some(), "the old one stays");
        assert!(f.engine.calls_of(Op::Remove).is_empty());

        let snapshot = f.profile("sleep 1001", "[recreate]\nchanged_files = \"snapshot\"");
        let o = f.up(&snapshot).await.expect("settled");
        assert!(
            matches!(&o.leftovers[..], [Leftover::Snapshotted { name, image }]
                if *name == aside && image.starts_with("launch-snapshots/train:")),
            "{:?}",
            o.leftovers
        );
        assert!(f.engine.container(&old_id).is_none());
        assert!(old_is_kept(&f.engine, &old_id));
    }

    #[tokio::test]
    async fn leftovers_of_other_names_and_foreign_look_alikes_are_left_alone() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "");
        // `train-x`'s leftover, and a launch container whose name merely
        // looks like a leftover (the id does not match).
        let other = f.existing(&p, State::Exited, &[]);
        crate::engine::Engine::rename(&f.engine, &other, &aside_name("train-x", &other))
            .await
            .expect("rename");
        let lookalike = f.existing(&p, State::Exited, &[]);
        crate::engine::Engine::rename(&f.engine, &lookalike, "train-launch-old-000000000000")
            .await
            .expect("rename");

        let o = f.up(&p).await.expect("created");
        assert_eq!(o.action, crate::reconcile::Action::Create);
        assert!(o.leftovers.is_empty(), "{:?}", o.leftovers);
        assert_eq!(f.engine.containers().len(), 3);
    }

    #[tokio::test]
    async fn an_old_container_the_engine_is_still_removing_is_left_to_it() {
        let discard = "[recreate]\nchanged_files = \"discard\"";
        let (f, id, new) = crashed_world(discard, &[NOTES]);
        f.engine.remove_slowly();
        let o = f.up(&new).await.expect("recreated");
        let aside = aside_name("train", &id);
        assert_eq!(o.applied.removing.as_deref(), Some(aside.as_str()));
        assert_eq!(
            f.engine.container(&aside).map(|c| c.state),
            Some(State::Removing)
        );

        // Runs before the engine is done neither touch it nor report it.
        f.engine.clear_calls();
        let o = f.up(&new).await.expect("up to date");
        assert_eq!(o.action, crate::reconcile::Action::Nothing);
        let o2 = f.up_in_folder(&new).await.expect("up to date");
        assert_eq!(o2.action, crate::reconcile::Action::Nothing);
        assert!(o.leftovers.is_empty() && o2.leftovers.is_empty());
        let touched: Vec<Call> = f
            .engine
            .calls()
            .into_iter()
            .filter(|c| c.target == id || c.target == aside)
            .collect();
        assert!(touched.is_empty(), "{touched:?}");

        // Not even a free name gives it back: it can never start again.
        crate::engine::Engine::remove(&f.engine, "train", false)
            .await
            .expect("remove train");
        let o = f.up(&new).await.expect("created");
        assert_eq!(o.action, crate::reconcile::Action::Create);
        assert!(o.leftovers.is_empty(), "{:?}", o.leftovers);

        f.engine.finish_removals(false);
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn a_removal_cut_short_is_finished_without_asking_what_changed_and_never_restored() {
        let discard = "[recreate]\nchanged_files = \"discard\"";
        let (f, id, new) = crashed_world(discard, &[NOTES]);
        f.engine.remove_slowly();
        f.up(&new).await.expect("recreated");
        // The daemon restarted mid-removal: the old container is `dead`.
        f.engine.finish_removals(true);
        let aside = aside_name("train", &id);
        assert_eq!(
            f.engine.container(&aside).map(|c| c.state),
            Some(State::Dead)
        );

        // Under `refuse` (the same container otherwise), the files that
        // went when the removal began are not asked about again.
        let refuse = f.profile("sleep 1001", "");
        f.engine.clear_calls();
        let o = f.up(&refuse).await.expect("up to date");
        assert_eq!(o.action, crate::reconcile::Action::Nothing);
        assert_eq!(
            o.leftovers,
            [Leftover::Finished {
                name: aside.clone()
            }]
        );
        assert!(f.engine.calls_of(Op::Changes).is_empty());
        assert_eq!(f.names(), ["train"]);

        // With the name free, a dead leftover is not given it: a new
        // container is made, and the dead one goes.
        f.up(&new).await.expect("up to date");
        f.engine.remove_slowly();
        let newer = f.profile("sleep 1002", discard);
        let o = f.up(&newer).await.expect("recreated");
        let dead = o.applied.removing.expect("still being removed");
        f.engine.finish_removals(true);
        crate::engine::Engine::remove(&f.engine, "train", false)
            .await
            .expect("remove train");
        let plan = f.preview(&newer).await.expect("plan");
        assert_eq!(plan.plan.action, crate::reconcile::Action::Create);
        let o = f.up(&newer).await.expect("created");
        assert_eq!(o.action, crate::reconcile::Action::Create);
        assert_eq!(o.leftovers, [Leftover::Finished { name: dead }]);
        assert_eq!(f.names(), ["train"]);
    }
}
