//! `launch gpus`: the host's GPUs at a glance, and who holds them.

use serde_json::json;

use super::{connect, runtime};
use crate::cli::Global;
use launch::engine::Engine;
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::host::gpu::{Gpu, GpuHost, Query};

pub fn run(proc_root: &std::path::Path, global: &Global) -> Result<Exit> {
    let host = GpuHost::probe(&global.roots(), Query::ALL).map_err(Error::Nvml)?;
    // `complete`: an engine answered, so an empty list means free.
    let (managed, containers, complete) = runtime()?.block_on(async {
        let listed = match connect(global).await {
            Ok(engine) => match (engine.managed().await, engine.container_names().await) {
                (Ok(m), Ok(c)) => Ok((m, c)),
                (Err(e), _) | (_, Err(e)) => Err(Error::from(e)),
            },
            Err(e) => Err(e),
        };
        match listed {
            Ok((m, c)) => (m, c, true),
            Err(e) => {
                tracing::warn!("which containers hold GPUs is unknown: {e}");
                (Vec::new(), Vec::new(), false)
            }
        }
    });
    // A reclaimed container that is down holds no GPU (leases).
    let released = launch::lease::released(&launch::state::Store::at(&global.settings().state_dir));
    let managed: Vec<_> = managed
        .into_iter()
        .filter(|c| launch::lease::holds_gpus(c, &released))
        .collect();
    let held = launch::host::holders::holders(&host.gpus, &managed, &containers, proc_root);
    let holders = |g: &Gpu| held.get(&g.uuid).cloned().unwrap_or_default();
    if global.json {
        let gpus: Vec<_> = host
            .gpus
            .iter()
            .map(|g| {
                let mut v = serde_json::to_value(g).unwrap_or_default();
                // An empty list means free only when `holders_complete` is true.
                v["holders"] = json!(holders(g));
                v["holders_complete"] = json!(complete);
                v
            })
            .collect();
        println!(
            "{}",
            json!({ "driver_version": host.driver_version, "cuda_version": host.cuda_version, "gpus": gpus })
        );
        return Ok(Exit::Ok);
    }
    println!(
        "driver {}{}, {} GPU{}",
        host.driver_version,
        host.cuda_version
            .as_ref()
            .map(|c| format!(", CUDA {c}"))
            .unwrap_or_default(),
        host.gpus.len(),
        if host.gpus.len() == 1 { "" } else { "s" }
    );
    let rows: Vec<[String; 7]> = host
        .gpus
        .iter()
        .map(|g| {
            [
                g.index.to_string(),
                g.name.clone().unwrap_or_else(|| "?".into())
                    + if g.mig == Some(true) { " [MIG]" } else { "" },
                g.uuid.clone(),
                format!("{} / {}", bytes(g.memory_used), bytes(g.memory_total)),
                g.utilization.map_or("?".into(), |u| format!("{u}%")),
                match &g.processes {
                    None => "?".into(),
                    Some(p) if p.is_empty() => "-".into(),
                    Some(p) => p
                        .iter()
                        .map(|p| p.pid.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                },
                match holders(g) {
                    h if h.is_empty() && !complete => "?".into(),
                    h if h.is_empty() => "-".into(),
                    h => h
                        .iter()
                        .map(|h| h.describe())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ]
        })
        .collect();
    super::table::print(
        [
            "IDX",
            "NAME",
            "UUID",
            "MEMORY USED",
            "UTIL",
            "PROCESSES",
            "HELD BY",
        ],
        &rows,
    );
    Ok(Exit::Ok)
}

/// Bytes in binary units, as nvidia-smi shows memory.
fn bytes(b: Option<u64>) -> String {
    let Some(b) = b else { return "?".into() };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 || unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
