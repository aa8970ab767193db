//! `launch down`: stop and remove what launch made; named volumes stay
//! unless asked.

use std::path::Path;

use serde_json::json;

use super::{connect, report_invalid, runtime, store, targets};
use crate::cli::Global;
use launch::engine::{Acting, Gate};
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile::{down, plan::short};

pub fn run(args: &[String], volumes: bool, global: &Global) -> Result<Exit> {
    // A path means its profile's container, for its acting owner; anything
    // else is a container name, for the user running launch. An invalid
    // profile is reported and the other names still go down.
    let mut names = Vec::new();
    let mut code = Exit::Ok;
    for arg in args {
        if Path::new(arg).exists() {
            for t in targets(&[arg.into()], global)? {
                match &t.loaded {
                    Ok(p) => names.push((p.name.clone(), Acting::owner(&p.owner, &p.path))),
                    Err(_) => code = code.worst(report_invalid(&t, global)),
                }
            }
        } else {
            names.push((arg.clone(), Acting::runner()));
        }
    }
    if names.is_empty() {
        return Ok(code);
    }
    let locks = global.locks();
    let store = store(global);
    let deadline = global.deadline();
    runtime()?.block_on(async {
        let docker = connect(global).await?;
        for (name, acting) in names {
            let engine = Gate::new(&docker, &store, acting);
            // A lock held too long is this name's failure, not the others'.
            let work = async {
                let _lock = locks.acquire(&name).await?;
                down::down(&engine, &name, volumes).await
            };
            let doing = || format!("{name} was being removed");
            let result = launch::session::within(deadline, doing, work).await;
            code = code.worst(report(&name, &result, global));
        }
        Ok(code)
    })
}

/// Prints what happened to one name; returns how it exits. A volume asked
/// to go that stayed is a failure (exit 1), after the rest is reported.
fn report(name: &str, result: &Result<Option<down::Removed>>, global: &Global) -> Exit {
    let removed = match result {
        Err(e) => {
            if global.json {
                println!(
                    "{}",
                    json!({ "name": name, "action": "error", "message": e.to_string(), "exit_code": e.exit().code() })
                );
            } else {
                eprintln!("error: {name}: {e}");
            }
            return e.exit();
        }
        Ok(None) => {
            if global.json {
                println!(
                    "{}",
                    json!({ "name": name, "action": "nothing", "message": "no such container", "exit_code": 0 })
                );
            } else if !global.quiet {
                println!("{name}: no such container");
            }
            return Exit::Ok;
        }
        Ok(Some(removed)) => removed,
    };
    let code = if removed.volumes_kept.is_empty() {
        Exit::Ok
    } else {
        Exit::Runtime
    };
    let mut message = format!("stopped and removed ({})", short(&removed.id));
    if !removed.volumes_removed.is_empty() {
        message.push_str(&format!(
            "; volumes removed: {}",
            removed.volumes_removed.join(", ")
        ));
    }
    let kept: Vec<String> = removed
        .volumes_kept
        .iter()
        .map(|k| format!("volume {} kept: {}", k.name, k.reason))
        .collect();
    if global.json {
        println!(
            "{}",
            json!({
                "name": name, "action": "remove", "id": removed.id, "message": message,
                "volumes_removed": removed.volumes_removed,
                "volumes_kept": removed.volumes_kept.iter().map(|k| json!({ "name": k.name, "reason": k.reason })).collect::<Vec<_>>(),
                "errors": kept,
                "exit_code": code.code(),
            })
        );
        return code;
    }
    if !global.quiet {
        println!("{name}: {message}");
    }
    for (line, k) in kept.iter().zip(&removed.volumes_kept) {
        eprintln!(
            "error: {name}: {line}; once nothing uses it, remove it with `docker volume rm {}`",
            k.name
        );
    }
    code
}
