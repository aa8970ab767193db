//! `launch snapshot`: commit a container launch made to an image, and say
//! what the image does not hold.

use serde_json::json;

use super::{connect, container_target, existing_container, runtime, store};
use crate::cli::Global;
use launch::engine::gate::snapshot_repo;
use launch::engine::{Engine, Gate, Whose};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::reconcile::changes::snapshot_as;
use launch::reconcile::plan::short;
use launch::spec::MountType;

pub fn run(target: &str, tag: Option<&str>, global: &Global) -> Result<Exit> {
    let (name, acting) = container_target(target, global)?;
    let store = store(global);
    if let Some(t) = tag {
        valid_tag(t)?;
    }
    let locks = global.locks();
    let deadline = global.deadline();
    let work = async {
        let docker = connect(global).await?;
        let engine = Gate::new(&docker, &store, acting);
        // Under the name's lock: no other launch run recreates the container
        // or takes the same tag meanwhile.
        let _lock = locks.acquire(&name).await?;
        let container = existing_container(&engine, &name).await?;
        match engine.whose(&container)? {
            Whose::Mine => {}
            Whose::Foreign => {
                return Err(Error::Refused(format!(
                    "{name} was not made by launch; launch snapshots only its own containers \
                     (`docker commit {name}` commits any)"
                )));
            }
            Whose::Other(owner) => {
                return Err(Error::Refused(format!(
                    "{name} belongs to {owner}; launch snapshots a profile's own containers only"
                )));
            }
        }
        if let Some(t) = tag {
            let reference = format!("{}:{t}", snapshot_repo(&name));
            if engine.image_id(&reference).await?.is_some() {
                return Err(Error::Refused(format!(
                    "{reference} exists already; choose another --tag, or remove it first \
                     (`docker rmi {reference}`)"
                )));
            }
        }
        let (reference, image) = snapshot_as(&engine, &container.id, &name, tag).await?;
        // Mounts are not part of the container's writable layer.
        let outside: Vec<(&'static str, String, String)> = container
            .spec()
            .map(|s| s.mounts)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let kind = match m.kind {
                    MountType::Bind => "bind mount",
                    MountType::Volume => "volume",
                    MountType::Tmpfs => "tmpfs",
                };
                (kind, m.source.unwrap_or_default(), m.target)
            })
            .collect();
        let known = container.spec().is_some();
        if global.json {
            println!(
                "{}",
                json!({
                    "name": name, "action": "snapshot", "image": reference, "id": image,
                    "not_included": outside.iter().map(|(kind, source, target)| json!({
                        "type": kind, "source": source, "target": target,
                    })).collect::<Vec<_>>(),
                    "exit_code": 0,
                })
            );
            return Ok(Exit::Ok);
        }
        if !global.quiet {
            println!(
                "{name}: committed to {reference} ({})",
                short(image.trim_start_matches("sha256:"))
            );
            if !known {
                println!(
                    "  not in it: whatever bind mounts and volumes the container has \
                     (its spec label is unreadable; `docker inspect {name}` lists them)"
                );
            } else if outside.is_empty() {
                println!("  it holds the container's whole filesystem: it has no mounts");
            } else {
                println!("  not in it (their contents stay where they are):");
                for (kind, source, target) in &outside {
                    match source.as_str() {
                        "" => println!("    {kind} {target}"),
                        s => println!("    {kind} {s} -> {target}"),
                    }
                }
            }
            println!("  run it with image = \"{reference}\" in a profile, or `docker run`");
        }
        Ok(Exit::Ok)
    };
    runtime()?.block_on(launch::session::within(
        deadline,
        || format!("{name} was being committed"),
        work,
    ))
}

/// Docker's tag grammar: a letter, digit or `_`, then up to 127 of those, `.` or `-`.
fn valid_tag(tag: &str) -> Result<()> {
    let ok = tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--tag `{tag}` is not an image tag: letters, digits, `_`, `.` and `-`, \
             not starting with `.` or `-`, at most 128"
        )))
    }
}
