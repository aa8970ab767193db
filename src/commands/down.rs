//! `launch down`: stop and remove what launch made; named volumes stay
//! unless asked.

use std::path::Path;

use serde_json::json;

use super::{connect, runtime, targets};
use crate::cli::Global;
use launch::engine::Engine;
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::reconcile::plan::short;

pub fn run(args: &[String], volumes: bool, global: &Global) -> Result<Exit> {
    // A path means its profile's container; anything else is a container name.
    let mut names = Vec::new();
    for arg in args {
        if Path::new(arg).exists() {
            for t in targets(&[arg.into()])? {
                match t.loaded {
                    Ok(p) => names.push(p.name),
                    Err(d) => return Err(Error::Profile(d)),
                }
            }
        } else {
            names.push(arg.clone());
        }
    }
    let locks = global.locks();
    runtime()?.block_on(async {
        let engine = connect(global).await?;
        let mut code = Exit::Ok;
        for name in names {
            let _lock = locks.acquire(&name).await?;
            let result = down_one(&engine, &name, volumes).await;
            let (action, this, message) = match &result {
                Ok(Some(message)) => ("remove", Exit::Ok, message.clone()),
                Ok(None) => ("nothing", Exit::Ok, "no such container".to_string()),
                Err(e) => ("error", e.exit(), e.to_string()),
            };
            if global.json {
                println!(
                    "{}",
                    json!({ "name": name, "action": action, "message": message, "exit_code": this.code() })
                );
            } else if this != Exit::Ok {
                eprintln!("error: {name}: {message}");
            } else if !global.quiet {
                println!("{name}: {message}");
            }
            code = code.worst(this);
        }
        Ok(code)
    })
}

async fn down_one<E: Engine>(engine: &E, name: &str, volumes: bool) -> Result<Option<String>> {
    let Some(found) = engine.find(name).await? else {
        return Ok(None);
    };
    if !found.is_managed() {
        return Err(Error::Refused(format!(
            "container {name} was not created by launch (id {}); launch never removes it",
            short(&found.id)
        )));
    }
    engine.stop(&found.id, None).await?;
    engine.remove(&found.id, false).await?;
    let mut message = format!("stopped and removed ({})", short(&found.id));
    if volumes {
        let spec = found.spec().unwrap_or_default();
        let named: Vec<String> = spec
            .mounts
            .iter()
            .filter(|m| m.kind == launch::spec::MountType::Volume)
            .filter_map(|m| m.source.clone())
            .collect();
        for v in &named {
            match engine.remove_volume(v).await {
                Ok(()) => {}
                // Still used by another container: keep it and say so.
                Err(e) if e.is_conflict() => tracing::warn!("volume {v} kept: {e}"),
                Err(e) => return Err(e.into()),
            }
        }
        if !named.is_empty() {
            message.push_str(&format!("; volumes removed: {}", named.join(", ")));
        }
    }
    Ok(Some(message))
}
