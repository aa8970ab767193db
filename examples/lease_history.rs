//! Writes a history of GPU samples to a state store, through the same
//! `write` a `launch up` tick uses, for the benchmarks of `launch usage` and
//! the store's size (`scripts/bench.sh`):
//!
//!     cargo run --release --example lease_history -- DIR DAYS GPUS
//!
//! One tick a minute for DAYS days ending now; each GPU held by one launch
//! container of one of four owners, busy half of each hour.

use launch::host::gpu::nvml::Activity;
use launch::lease::sample::{Held, Signal, write};
use launch::state::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, days, gpus] = args.as_slice() else {
        return Err("usage: lease_history DIR DAYS GPUS".into());
    };
    let (days, gpus): (i64, u32) = (days.parse()?, gpus.parse()?);
    history(&Store::at(dir), launch::lease::now(), days, gpus)
}

/// `days` of `gpus` GPUs sampled every minute up to `now`, through the
/// tick's own write: GPU g held by one of four owners' containers, busy in
/// the first half of every hour. The board's tests write their store with
/// it too (tests/it/report.rs).
pub fn history(
    store: &Store,
    now: i64,
    days: i64,
    gpus: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let owners = ["alice", "bob", "carol", "dave"];
    let start = now - days * 86_400;
    let mut ts = start - start.rem_euclid(60);
    while ts < now {
        let minute = (ts / 60) % 60;
        let held: Vec<Held> = (0..gpus)
            .map(|g| Held {
                gpu: format!("GPU-{g:08x}-0000-0000-0000-000000000000"),
                kind: "launch",
                holder: format!("{}-train-{g}", owners[g as usize % owners.len()]),
                owner: owners[g as usize % owners.len()].to_string(),
                sm: if minute < 30 { 60 } else { 0 },
                signal: Signal::Process,
            })
            .collect();
        let gpus: Vec<Activity> = held
            .iter()
            .enumerate()
            .map(|(i, h)| Activity {
                index: i as u32,
                uuid: h.gpu.clone(),
                name: Some("NVIDIA H100 80GB HBM3".into()),
                memory: Some((40 << 30, 80 << 30)),
                utilization: Some(h.sm),
                processes: Vec::new(),
                samples: None,
            })
            .collect();
        write(store, ts, 60, &gpus, &held)?;
        ts += 60;
    }
    Ok(())
}
