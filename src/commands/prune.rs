//! `launch prune`: old snapshots and leftover renamed-aside containers,
//! only ever what launch made.
//!
//! A snapshot is launch's when the state store says launch committed it
//! (docs/architecture.md, the owner boundary): labels prove nothing, since
//! any build can set them. Snapshots are kept newest first, by when launch
//! took them; one whose tag the user chose (`--tag`) always stays. A
//! leftover goes only when it is stopped, its name has a container again,
//! and its changed files are all ones a recreate would not keep either
//! (docs/architecture.md, reconcile). For a profile, only what launch made
//! for its acting owner is pruned; every removal passes the gate.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::{connect, container_target, runtime, store};
use crate::cli::Global;
use launch::engine::{Acting, Engine, Gate, Observed, Scope, State};
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile::changes::{list, significant_changes};
use launch::reconcile::recover::unsettled_leftover_of;
use launch::spec::label;
use launch::state::Store;

/// One thing prune removed, would remove, or kept.
struct Item {
    kind: &'static str,
    name: String,
    why: String,
}

pub fn run(targets: &[String], keep: usize, dry_run: bool, global: &Global) -> Result<Exit> {
    // Each name, and whom launch acts for on it: a profile's acting owner,
    // or (a name, or no names at all) the user running launch.
    let named: Option<BTreeMap<String, Acting>> = if targets.is_empty() {
        None
    } else {
        Some(
            targets
                .iter()
                .map(|t| container_target(t, global))
                .collect::<Result<_>>()?,
        )
    };
    let acting = |name: &str| -> Option<Acting> {
        match &named {
            None => Some(Acting::runner()),
            Some(n) => n.get(name).cloned(),
        }
    };
    let locks = global.locks();
    let store = store(global);
    let deadline = global.deadline();
    let work = async {
        let docker = connect(global).await?;
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        let mut failed = Vec::new();

        for (reference, acting) in old_snapshots(&store, keep, &acting)? {
            if dry_run {
                removed.push(Item {
                    kind: "snapshot",
                    name: reference,
                    why: String::new(),
                });
                continue;
            }
            let gate = Gate::new(&docker, &store, acting);
            match gate.remove_image(&reference).await {
                Ok(()) => removed.push(Item {
                    kind: "snapshot",
                    name: reference,
                    why: String::new(),
                }),
                // A container made from it still uses it, or it is no longer
                // what launch committed.
                Err(e)
                    if e.is_conflict()
                        || matches!(e, launch::engine::EngineError::Forbidden(_)) =>
                {
                    kept.push(Item {
                        kind: "snapshot",
                        name: reference,
                        why: e.message(),
                    })
                }
                Err(e) => failed.push(e.to_string()),
            }
        }

        for old in docker.managed().await? {
            let Some(name) = unsettled_leftover_of(&old).map(str::to_string) else {
                continue;
            };
            let Some(acting) = acting(&name) else {
                continue;
            };
            let engine = Gate::new(&docker, &store, acting);
            // For a profile: only its owner's leftovers.
            if engine.whose(&old)? != launch::engine::Whose::Mine {
                continue;
            }
            // Under the name's lock, as `up` settles leftovers, and as it is
            // then: a run of `up` may have given it its name back meanwhile.
            let (_lock, old) = if dry_run {
                (None, old)
            } else {
                let lock = locks.acquire(&name).await?;
                match engine.find(&old.id).await? {
                    Some(now) if unsettled_leftover_of(&now) == Some(name.as_str()) => {
                        (Some(lock), now)
                    }
                    _ => continue,
                }
            };
            match judge(&engine, &name, &old).await {
                Ok(Some(why)) => kept.push(Item {
                    kind: "container",
                    name: old.name,
                    why,
                }),
                Ok(None) if dry_run => removed.push(Item {
                    kind: "container",
                    name: old.name,
                    why: String::new(),
                }),
                Ok(None) => match engine.remove(&old.id, false).await {
                    Ok(()) => removed.push(Item {
                        kind: "container",
                        name: old.name,
                        why: String::new(),
                    }),
                    Err(e) => failed.push(e.to_string()),
                },
                Err(e) => failed.push(e.to_string()),
            }
        }
        Ok(report(&removed, &kept, &failed, dry_run, global))
    };
    runtime()?.block_on(launch::session::within(
        deadline,
        || "old snapshots and leftovers were being pruned".to_string(),
        work,
    ))
}

/// The snapshots launch took beyond the newest `keep` of each name (in the
/// order launch took them, not by their tags), each with whom it is removed
/// for. `--tag` snapshots are never among them; for a profile, only its
/// acting owner's are.
fn old_snapshots(
    store: &Store,
    keep: usize,
    acting: &impl Fn(&str) -> Option<Acting>,
) -> Result<Vec<(String, Acting)>> {
    let mut by_name: BTreeMap<String, Vec<(String, Acting)>> = BTreeMap::new();
    for r in store
        .snapshots()
        .map_err(|e| launch::Error::Io(e.to_string()))?
    {
        let (Some(of), false) = (&r.of, r.tag_given) else {
            continue;
        };
        let Some(acting) = acting(of) else { continue };
        if acting.scope == Scope::Owner && r.owner.uid != acting.uid {
            continue;
        }
        by_name
            .entry(of.clone())
            .or_default()
            .push((r.reference, acting));
    }
    let mut out = Vec::new();
    for (_, mut snapshots) in by_name {
        // Oldest first: all but the last `keep`.
        let old = snapshots.len().saturating_sub(keep);
        out.extend(snapshots.drain(..old));
    }
    Ok(out)
}

/// Why leftover `old` of `name` must stay, or `None` when nothing in it
/// would be lost.
async fn judge<E: Engine>(engine: &E, name: &str, old: &Observed) -> Result<Option<String>> {
    // Its removal had begun, and was cut short: what it held was given up then.
    if old.state == State::Dead {
        return Ok(None);
    }
    if engine.find(name).await?.is_none() {
        return Ok(Some(format!(
            "{name} has no container: `launch up` gives this one its name back"
        )));
    }
    if matches!(
        old.state,
        State::Running | State::Paused | State::Restarting
    ) {
        return Ok(Some(
            "it is running; stop it (or remove it) when it is no longer needed".into(),
        ));
    }
    // What counts as a change is what a recreate would count: the profile's
    // `[recreate] ignore` when its file still loads, scratch and mount points.
    let ignore = old
        .labels
        .get(label::PROFILE)
        .and_then(|p| launch::profile::load(Path::new(p)).ok())
        .map(|p| p.recreate.ignore)
        .unwrap_or_default();
    let mounts: Vec<String> = old
        .spec()
        .map(|s| s.mounts.into_iter().map(|m| m.target).collect())
        .unwrap_or_default();
    let changed = significant_changes(engine.changes(&old.id).await?, &ignore, &mounts);
    if changed.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "files changed inside it would be lost:\n{}\n  copy out what you need, then `docker rm {}`; \
         or `launch up` settles it as the profile's [recreate] changed_files says",
        list(&changed),
        old.name
    )))
}

fn report(
    removed: &[Item],
    kept: &[Item],
    failed: &[String],
    dry_run: bool,
    global: &Global,
) -> Exit {
    let code = if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Runtime
    };
    if global.json {
        let items = |items: &[Item]| {
            items
                .iter()
                .map(|i| {
                    let mut v = json!({ "type": i.kind, "name": i.name });
                    if !i.why.is_empty() {
                        v["why"] = json!(i.why);
                    }
                    v
                })
                .collect::<Vec<_>>()
        };
        println!(
            "{}",
            json!({
                "action": "prune", "dry_run": dry_run,
                "removed": items(removed), "kept": items(kept),
                "errors": failed, "exit_code": code.code(),
            })
        );
        return code;
    }
    if !global.quiet {
        let verb = if dry_run { "would remove" } else { "removed" };
        for i in removed {
            println!("{verb} {} {}", i.kind, i.name);
        }
        for i in kept {
            println!("kept {} {}: {}", i.kind, i.name, i.why);
        }
        if removed.is_empty() && kept.is_empty() && failed.is_empty() {
            println!("nothing to prune");
        }
    }
    for f in failed {
        eprintln!("error: {f}");
    }
    code
}
