//! `launch gpus`: the host's GPUs at a glance, and who holds them.

use serde_json::json;

use super::{connect, runtime};
use crate::cli::Global;
use launch::engine::Engine;
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::host::gpu::{Gpu, GpuHost, Query};

pub fn run(global: &Global) -> Result<Exit> {
    let host = GpuHost::probe(&global.roots(), Query::ALL).map_err(Error::Nvml)?;
    // `None`: no engine answered, so whether a GPU is free cannot be told.
    let held = runtime()?.block_on(async {
        let managed = match connect(global).await {
            Ok(engine) => engine.managed().await.map_err(Error::from),
            Err(e) => Err(e),
        };
        match managed {
            Ok(m) => Some(launch::host::held_gpus(&m, None)),
            Err(e) => {
                tracing::warn!("who holds which GPU is unknown: {e}");
                None
            }
        }
    });
    let holder = |g: &Gpu| held.as_ref().and_then(|h| h.get(&g.uuid).cloned());
    if global.json {
        let gpus: Vec<_> = host
            .gpus
            .iter()
            .map(|g| {
                let mut v = serde_json::to_value(g).unwrap_or_default();
                // An empty list means free only when `holders_complete` is true.
                v["holders"] = json!(
                    holder(g)
                        .map(|name| json!({ "kind": "launch", "name": name }))
                        .into_iter()
                        .collect::<Vec<_>>()
                );
                v["holders_complete"] = json!(held.is_some());
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
                match (&held, holder(g)) {
                    (None, _) => "?".into(),
                    (_, Some(name)) => name,
                    (_, None) => "-".into(),
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
