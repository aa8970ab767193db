//! `launch prune`: old snapshots and leftover renamed-aside containers,
//! only ever what launch made.
//!
//! A snapshot is launch's when the image carries the `launch.snapshot` label
//! (set at commit) and the reference is in that name's repository with a
//! timestamp tag; everything else, a `--tag` snapshot included, stays. A
//! leftover goes only when it is stopped, its name has a container again,
//! and its changed files are all ones a recreate would not keep either
//! (docs/architecture.md, recovery).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::json;

use super::{connect, container_name, runtime};
use crate::cli::Global;
use launch::engine::{DockerEngine, Engine, Observed, State};
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile::apply::{
    SNAPSHOT_LABEL, list, significant_changes, snapshot_repo, timestamp_tag,
};
use launch::reconcile::recover::unsettled_leftover_of;
use launch::spec::label;

/// One thing prune removed, would remove, or kept.
struct Item {
    kind: &'static str,
    name: String,
    why: String,
}

pub fn run(targets: &[String], keep: usize, dry_run: bool, global: &Global) -> Result<Exit> {
    let names: Option<BTreeSet<String>> = if targets.is_empty() {
        None
    } else {
        Some(
            targets
                .iter()
                .map(|t| container_name(t))
                .collect::<Result<_>>()?,
        )
    };
    let wanted = |name: &str| names.as_ref().is_none_or(|n| n.contains(name));
    let locks = global.locks();
    runtime()?.block_on(async {
        let engine = connect(global).await?;
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        let mut failed = Vec::new();

        for reference in old_snapshots(&engine, keep, &wanted).await? {
            if dry_run {
                removed.push(Item {
                    kind: "snapshot",
                    name: reference,
                    why: String::new(),
                });
                continue;
            }
            match engine.remove_image(&reference).await {
                Ok(()) => removed.push(Item {
                    kind: "snapshot",
                    name: reference,
                    why: String::new(),
                }),
                // A container made from it still uses it.
                Err(e) if e.is_conflict() => kept.push(Item {
                    kind: "snapshot",
                    name: reference,
                    why: e.message(),
                }),
                Err(e) => failed.push(e.to_string()),
            }
        }

        for old in engine.managed().await? {
            let Some(name) = unsettled_leftover_of(&old).map(str::to_string) else {
                continue;
            };
            if !wanted(&name) {
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
    })
}

/// The snapshot references beyond the newest `keep` per name, oldest last.
async fn old_snapshots(
    engine: &DockerEngine,
    keep: usize,
    wanted: &impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    // Per repository: (age key, reference).
    type Aged = ((String, u32), String);
    let mut by_repo: BTreeMap<String, Vec<Aged>> = BTreeMap::new();
    for image in engine.labeled_images(SNAPSHOT_LABEL).await? {
        if image.of.is_empty() || !wanted(&image.of) {
            continue;
        }
        let repo = snapshot_repo(&image.of);
        for reference in image.references {
            let Some((r, tag)) = reference.rsplit_once(':') else {
                continue;
            };
            // A reference someone else gave the image is theirs.
            if r != repo {
                continue;
            }
            if let Some((second, n)) = timestamp_tag(tag) {
                let key = (second.to_string(), n);
                by_repo
                    .entry(repo.clone())
                    .or_default()
                    .push((key, reference.clone()));
            }
        }
    }
    let mut out = Vec::new();
    for (_, mut snapshots) in by_repo {
        snapshots.sort_by(|a, b| b.0.cmp(&a.0));
        out.extend(snapshots.into_iter().skip(keep).map(|(_, r)| r));
    }
    Ok(out)
}

/// Why leftover `old` of `name` must stay, or `None` when nothing in it
/// would be lost.
async fn judge(engine: &DockerEngine, name: &str, old: &Observed) -> Result<Option<String>> {
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
