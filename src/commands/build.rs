//! `launch build`: build the images of profiles with `[build]`, and only
//! that; `up` is what recreates containers.

use serde_json::json;

use super::up::report_error;
use super::{connect, report_invalid, runtime, shown, store};
use crate::cli::Global;
use launch::build;
use launch::engine::Engine;
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile;

pub fn run(args: &[std::path::PathBuf], global: &Global) -> Result<Exit> {
    // An unsafe policy stops every command that reads profiles.
    global.policy()?;
    let targets = super::targets(args, global)?;
    let mut exit = Exit::Ok;
    let mut valid = Vec::new();
    for t in &targets {
        match &t.loaded {
            // A context that is not there is the profile's error (exit 2),
            // reported whether or not an engine answers.
            Ok(p) => match build::check_host(p) {
                Ok(()) => valid.push((t, p)),
                Err(e) => exit = exit.worst(report_error(t, &e, global)),
            },
            Err(_) => exit = exit.worst(report_invalid(t, global)),
        }
    }
    if valid.is_empty() {
        return Ok(exit);
    }
    let locks = global.locks();
    let store = store(global);
    let deadline = global.deadline();
    runtime()?.block_on(async {
        let docker = match connect(global).await {
            Ok(docker) => docker,
            Err(e) => {
                for (t, _) in &valid {
                    exit = exit.worst(report_error(t, &e, global));
                }
                return Ok(exit);
            }
        };
        // One after the other: builds compete for the same disk and CPUs,
        // and their progress would interleave.
        for (target, profile) in &valid {
            let Some(b) = &profile.build else {
                if global.json {
                    println!(
                        "{}",
                        json!({ "profile": shown(&target.path), "name": profile.name, "action": "nothing", "exit_code": 0 })
                    );
                } else if !global.quiet {
                    println!("{}: no [build] in the profile; nothing to build", profile.name);
                }
                continue;
            };
            // Every engine call for the profile passes its gate.
            let engine = launch::engine::Gate::new(
                &docker,
                &store,
                launch::engine::Acting::owner(&profile.owner, &profile.path),
            );
            // Under the container's lock, so no `up` of it builds meanwhile.
            let built = async {
                let _lock = locks.acquire(&profile.name).await?;
                let context = reconcile::scan(b, &profile.owner).await?;
                engine
                    .build(&profile.image, &context, &context.labels())
                    .await?;
                let id = engine.image_id(&profile.image).await?;
                Ok::<_, launch::Error>((id, context.hash))
            };
            let doing = || format!("{} was being built", profile.image);
            let built = launch::session::within(deadline, doing, built).await;
            match built {
                Ok((id, hash)) => {
                    let id = id.unwrap_or_default();
                    if global.json {
                        println!(
                            "{}",
                            json!({
                                "profile": shown(&target.path), "name": profile.name,
                                "action": "build", "image": profile.image, "id": id,
                                "context_hash": hash, "exit_code": 0,
                            })
                        );
                    } else if !global.quiet {
                        let short = id.strip_prefix("sha256:").unwrap_or(&id);
                        println!(
                            "{}: built {} ({})",
                            profile.name,
                            profile.image,
                            reconcile::plan::short(short)
                        );
                    }
                }
                Err(e) => exit = exit.worst(report_error(target, &e, global)),
            }
        }
        Ok(exit)
    })
}
