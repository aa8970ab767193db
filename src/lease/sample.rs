//! A tick: what each GPU's holders did since the last one (docs/
//! architecture.md, leases). At most one run a minute per host samples: the
//! first to claim the tick in the store.
//!
//! Idle is measured per container, from NVML's per-process SM samples
//! mapped pid → cgroup → container. Where a GPU cannot report per-process
//! samples, its own utilization counts for its only holder, and for all of
//! them when it has several: launch never reclaims on a guess. A GPU that
//! reads busy with no process on it (a wedged GPU) makes no one busy.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use crate::engine::Observed;
use crate::host::gpu::nvml::Activity;
use crate::host::holders::container_id;
use crate::spec::label;
use crate::state::{Store, StoreError};

/// Seconds between ticks, at the least.
pub const PERIOD: i64 = 60;
/// Raw samples are kept this long; their hourly sums a year.
pub const RAW_KEPT: i64 = 14 * 86_400;
pub const HOURLY_KEPT: i64 = 366 * 86_400;
/// What accounting counts as a busy minute.
pub const BUSY_ABOVE: u32 = 5;

/// Who held a GPU during a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub gpu: String,
    /// `launch`, `container` (another engine container) or `process`.
    pub kind: &'static str,
    /// The container's name, or the process's command.
    pub holder: String,
    /// The launch owner, or the user the container's or process's first
    /// process runs as.
    pub owner: String,
    /// The highest SM use (%) of its processes; 100 when busy by the rule
    /// for GPUs without per-process samples.
    pub sm: u32,
    /// Where `sm` came from.
    pub signal: Signal,
}

/// What a sample's SM use was read from: `status` says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// NVML's per-process samples.
    Process = 0,
    /// The GPU's own utilization: it has one holder and no per-process samples.
    Device = 1,
    /// Several holders and no per-process samples: busy for all when the GPU is.
    Shared = 2,
    /// No process on the GPU: nothing ran.
    Nothing = 3,
}

impl Signal {
    pub fn from_code(code: i64) -> Signal {
        match code {
            0 => Signal::Process,
            1 => Signal::Device,
            2 => Signal::Shared,
            _ => Signal::Nothing,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Signal::Process => "per-process SM samples",
            Signal::Device => "the GPU's utilization (no per-process samples)",
            Signal::Shared => "the shared GPU's utilization, busy for every holder",
            Signal::Nothing => "no process on its GPUs",
        }
    }
}

/// The longest a tick counts for: a host sampled less often (no cron for
/// a while) is not counted as held all that time.
pub const LONGEST: i64 = 600;

/// Claims this minute's tick for this run when no run sampled in the last
/// [`PERIOD`]: how many seconds the tick stands for (since the last one, at
/// most [`LONGEST`]), or `None`. Two cron runs at once sample once.
pub fn claim(store: &Store, now: i64) -> Result<Option<i64>, StoreError> {
    store.run(|c| {
        c.execute_batch("BEGIN IMMEDIATE")?;
        let last: Option<i64> = c
            .query_row("SELECT last FROM ticks WHERE id = 1", [], |r| r.get(0))
            .ok();
        let due = last.is_none_or(|l| now - l >= PERIOD || now < l);
        if due {
            c.execute(
                "INSERT INTO ticks (id, last) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET last = excluded.last",
                [now],
            )?;
        }
        c.execute_batch("COMMIT")?;
        Ok(due.then(|| match last {
            Some(l) if now > l => (now - l).min(LONGEST),
            _ => PERIOD,
        }))
    })
}

/// Who held each GPU and how busy, from NVML's `activity`, launch's
/// containers (`managed`: by their labels, the reclaimed left out) and the
/// engine's (id, name) of every container, for the processes' cgroups.
pub fn attribute(
    activity: &[Activity],
    managed: &[Observed],
    containers: &[(String, String)],
    proc_root: &Path,
) -> Vec<Held> {
    let names: BTreeMap<&str, &str> = containers
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let mut out = Vec::new();
    for gpu in activity {
        // holder → (kind, owner, pids)
        let mut holders: BTreeMap<String, (&'static str, String, Vec<u32>)> = BTreeMap::new();
        for c in managed.iter().filter(|c| c.gpus().contains(&gpu.uuid)) {
            let owner = c.labels.get(label::OWNER).cloned().unwrap_or_default();
            holders.insert(c.name.clone(), ("launch", owner, Vec::new()));
        }
        for &pid in &gpu.processes {
            let dir = proc_root.join(pid.to_string());
            let user = std::fs::metadata(&dir)
                .map(|m| crate::owner::user_name(m.uid()).unwrap_or_else(|| m.uid().to_string()))
                .unwrap_or_else(|_| "?".into());
            let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
            let (key, kind, owner) = match container_id(&cgroup) {
                Some(id) => match managed.iter().find(|c| c.id == id) {
                    Some(c) => (
                        c.name.clone(),
                        "launch",
                        c.labels.get(label::OWNER).cloned().unwrap_or_default(),
                    ),
                    None => (
                        names.get(id.as_str()).map_or_else(
                            || id.get(..12).unwrap_or(&id).to_string(),
                            |n| n.to_string(),
                        ),
                        "container",
                        user,
                    ),
                },
                None => (command(&dir), "process", user),
            };
            holders
                .entry(key)
                .or_insert_with(|| (kind, owner, Vec::new()))
                .2
                .push(pid);
        }
        let several = holders.len() > 1;
        for (holder, (kind, owner, pids)) in holders {
            let (sm, signal) = match &gpu.samples {
                // A wedged GPU (busy, no process) makes no one busy.
                _ if gpu.processes.is_empty() => (0, Signal::Nothing),
                Some(samples) => (
                    samples
                        .iter()
                        .filter(|(pid, _)| pids.contains(pid))
                        .map(|(_, sm)| *sm)
                        .max()
                        .unwrap_or(0),
                    Signal::Process,
                ),
                // No per-process samples: the GPU's own use for its one
                // holder; busy for all when several hold it and it is busy
                // (never reclaim on a guess). Unknown use counts as busy.
                None if several => {
                    let busy = gpu.utilization.is_none_or(|u| u > BUSY_ABOVE);
                    (if busy { 100 } else { 0 }, Signal::Shared)
                }
                None => (gpu.utilization.unwrap_or(100), Signal::Device),
            };
            out.push(Held {
                gpu: gpu.uuid.clone(),
                kind,
                holder,
                owner,
                sm,
                signal,
            });
        }
    }
    out
}

/// A process's command, for a holder that is no container.
fn command(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Writes one tick's samples, their hourly sums (in seconds held and busy:
/// the tick stands for `weight` seconds), and drops what is older than
/// kept, in one transaction: a run killed mid-write leaves the tick whole
/// or absent.
pub fn write(
    store: &Store,
    now: i64,
    weight: i64,
    gpus: &[Activity],
    held: &[Held],
) -> Result<(), StoreError> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    store.run(|c| {
        c.execute_batch("BEGIN IMMEDIATE")?;
        let done = (|| {
            let mut gpu = c.prepare(
                "INSERT INTO gpus (uuid) VALUES (?1)
                 ON CONFLICT (uuid) DO UPDATE SET uuid = uuid RETURNING id",
            )?;
            let mut holder = c.prepare(
                "INSERT INTO holders (kind, name, owner) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, name, owner) DO UPDATE SET kind = kind RETURNING id",
            )?;
            let mut sample = c.prepare(
                "INSERT OR REPLACE INTO samples (ts, gpu, holder, sm, signal) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut hourly = c.prepare(
                "INSERT INTO hourly (hour, gpu, holder, held, busy) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (hour, gpu, holder)
                 DO UPDATE SET held = held + excluded.held, busy = busy + excluded.busy",
            )?;
            let mut state = c.prepare(
                "INSERT OR REPLACE INTO gpu_state (gpu, ts, idx, name, utilization, memory_used, memory_total)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for a in gpus {
                let g: i64 = gpu.query_row([&a.uuid], |r| r.get(0))?;
                let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
                let (used, total) = a.memory.map(|(u, t)| (bytes(u), bytes(t))).unzip();
                state.execute(params![g, now, a.index, a.name, a.utilization, used, total])?;
            }
            if !host.is_empty() {
                c.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('host', ?1)",
                    [&host],
                )?;
            }
            let hour = now - now.rem_euclid(3600);
            for h in held {
                let g: i64 = gpu.query_row([&h.gpu], |r| r.get(0))?;
                let who: i64 = holder.query_row(params![h.kind, h.holder, h.owner], |r| r.get(0))?;
                sample.execute(params![now, g, who, h.sm, h.signal as i64])?;
                let busy = if h.sm > BUSY_ABOVE { weight } else { 0 };
                hourly.execute(params![hour, g, who, weight, busy])?;
            }
            c.execute("DELETE FROM samples WHERE ts < ?1", [now - RAW_KEPT])?;
            c.execute("DELETE FROM hourly WHERE hour < ?1", [now - HOURLY_KEPT])?;
            c.execute("DELETE FROM events WHERE ts < ?1", [now - HOURLY_KEPT])?;
            Ok::<(), rusqlite::Error>(())
        })();
        match done {
            Ok(()) => c.execute_batch("COMMIT"),
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    })
}

/// The holder ids of the launch container `name`.
const LAUNCH_HOLDER: &str = "SELECT id FROM holders WHERE kind = 'launch' AND name = ?1";

/// The last tick in which the launch container `name` used its GPUs above
/// `idle_below`.
pub fn last_busy(store: &Store, name: &str, idle_below: u32) -> Result<Option<i64>, StoreError> {
    store.run(|c| {
        c.query_row(
            &format!("SELECT max(ts) FROM samples WHERE holder IN ({LAUNCH_HOLDER}) AND sm > ?2"),
            params![name, idle_below],
            |r| r.get(0),
        )
    })
}

/// The launch container `name`'s latest sample: when, its SM use, and the
/// signal it was read from.
pub fn latest(store: &Store, name: &str) -> Result<Option<(i64, u32, Signal)>, StoreError> {
    store.run(|c| {
        c.query_row(
            &format!(
                "SELECT ts, max(sm), min(signal) FROM samples WHERE holder IN ({LAUNCH_HOLDER})
                 GROUP BY ts ORDER BY ts DESC LIMIT 1"
            ),
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, Signal::from_code(r.get(2)?))),
        )
        .optional()
    })
}

/// One tick for the host, if this run is the first this minute to claim it
/// (`true` when it sampled): what each GPU did, attributed to the
/// containers and processes that hold it, written to the store. NVML is
/// loaded here, off the async thread, and only here.
pub async fn tick<E: crate::engine::Engine>(
    store: &Store,
    engine: &E,
    nvml_lib: &Path,
    proc_root: &Path,
    now: i64,
) -> crate::error::Result<bool> {
    let state = |e: StoreError| crate::error::Error::Io(e.to_string());
    let Some(weight) = claim(store, now).map_err(state)? else {
        return Ok(false);
    };
    let lib = nvml_lib.to_path_buf();
    let since = u64::try_from(now - weight).ok().map(|s| s * 1_000_000);
    // NVML off the async thread while the engine lists launch's containers
    // (labels and states are all a tick needs).
    let nvml = tokio::task::spawn_blocking(move || crate::host::gpu::nvml::activity(&lib, since));
    let (activity, listed) = futures_util::join!(nvml, engine.listed(&[]));
    let activity = activity
        .map_err(|e| crate::error::Error::Io(format!("sampling the GPUs: {e}")))?
        .map_err(crate::error::Error::Nvml)?;
    let reclaimed = super::record::reclaimed(store).map_err(state)?;
    let managed: Vec<Observed> = listed?
        .into_iter()
        // Only a running container holds its GPUs; a reclaimed one none.
        .filter(|c| {
            matches!(
                c.state,
                crate::engine::State::Running
                    | crate::engine::State::Paused
                    | crate::engine::State::Restarting
            ) && !reclaimed.contains(&c.name)
        })
        .collect();
    // Every container's name, only when a GPU process runs in a container
    // launch did not make (to name it).
    let others = activity.iter().flat_map(|a| &a.processes).any(|pid| {
        let cgroup = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
            .unwrap_or_default();
        container_id(&cgroup).is_some_and(|id| !managed.iter().any(|c| c.id == id))
    });
    let containers = if others {
        engine.container_names().await?
    } else {
        Vec::new()
    };
    let held = attribute(&activity, &managed, &containers, proc_root);
    write(store, now, weight, &activity, &held).map_err(state)?;
    Ok(true)
}
