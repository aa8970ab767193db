//! `launch doctor`: the GPU host's health, one line per check
//! (docs/architecture.md, GPU health). The checks are `health::doctor`; the
//! facts come from `host::health` and the engine.

use std::path::PathBuf;

use serde_json::json;

use super::{connect, runtime, targets};
use crate::cli::Global;
use launch::engine::Engine;
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::health::doctor::{self, Check, ContainerFacts, EngineFacts, Status};
use launch::host::gpu::{GpuHost, Query};
use launch::spec::label;

pub fn run(args: &[PathBuf], global: &Global) -> Result<Exit> {
    // With profiles, only their containers are judged.
    let mut names = Vec::new();
    for target in targets(args, global)? {
        match target.loaded {
            Ok(p) => names.push(p.name),
            Err(d) => return Err(Error::Profile(d)),
        }
    }
    let roots = global.roots();
    let query = Query {
        files: true,
        ..Query::default()
    };
    let checks = match GpuHost::probe(&roots, query) {
        // No driver: nothing else can be judged.
        Err(e) => doctor::no_driver(
            &e.to_string(),
            matches!(e, launch::host::gpu::nvml::NvmlFailure::VersionMismatch),
        ),
        Ok(gpus) => runtime()?.block_on(async {
            let (engine, engine_error, containers) = engine_part(global, args, &names).await;
            let mut facts = launch::host::health::gather(&roots, &gpus, engine);
            facts.engine_error = engine_error;
            facts.containers = containers;
            doctor::checks(&facts)
        }),
    };
    print(&checks, global);
    Ok(match doctor::overall(&checks) {
        Status::Fail => Exit::Runtime,
        _ => Exit::Ok,
    })
}

/// The engine's facts and launch's containers; the error when none answered.
async fn engine_part(
    global: &Global,
    args: &[PathBuf],
    names: &[String],
) -> (Option<EngineFacts>, Option<String>, Vec<ContainerFacts>) {
    let engine = match connect(global).await {
        Ok(e) => e,
        Err(e) => return (None, Some(e.to_string()), Vec::new()),
    };
    let facts = match engine.facts().await {
        Ok(f) => f,
        Err(e) => return (None, Some(e.to_string()), Vec::new()),
    };
    let containers = match engine.managed().await {
        Ok(list) => list
            .into_iter()
            .filter(|c| args.is_empty() || names.contains(&c.name))
            .map(|c| ContainerFacts {
                gpus: c.gpus(),
                driver: c.labels.get(label::DRIVER).cloned(),
                name: c.name,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("launch's containers are not judged: {e}");
            Vec::new()
        }
    };
    (
        Some(EngineFacts {
            identity: facts.identity,
            rootless: facts.rootless,
            runtimes: facts.runtimes,
            cdi: !facts.cdi_spec_dirs.is_empty(),
            cgroup_driver: facts.cgroup_driver,
        }),
        None,
        containers,
    )
}

fn print(checks: &[Check], global: &Global) {
    if global.json {
        println!(
            "{}",
            json!({
                "status": doctor::overall(checks),
                "checks": checks,
            })
        );
        return;
    }
    for c in checks {
        let fix = c
            .fix
            .as_deref()
            .map(|f| format!("; fix: {f}"))
            .unwrap_or_default();
        println!("{:<7} {}: {}{fix}", c.status.word(), c.name, c.message);
    }
}
