//! The lab's board (docs/architecture.md, the board): what the GPUs of one
//! or several hosts did, from their state stores. [`gather`] reads a store
//! into a [`Board`]; `usage.json` is the board as it is, and `html` and
//! `text` draw it, so the three say the same.

pub mod html;
pub mod text;

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::lease::{ahead, sample, shown, span};
use crate::state::{Store, StoreError};

/// Everything the board shows.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// When the board was made, and the start of its totals (`--since`).
    pub generated: String,
    pub since: String,
    pub hosts: Vec<Host>,
}

/// One host's store.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Its name, as its store recorded it (else the store's path).
    pub host: String,
    /// The last tick: what "now" is as of.
    pub sampled: Option<String>,
    pub gpus: Vec<GpuNow>,
    /// The last day (10-minute buckets) and week (hours).
    pub day: Timeline,
    pub week: Timeline,
    /// GPU-hours per owner since `since`.
    pub owners: Vec<Owner>,
    /// Warnings, reclaims and renewals since `since`, newest first.
    pub events: Vec<crate::lease::record::Event>,
    /// Each owner's colour on the page (colour-blind safe), for the legend.
    pub colors: BTreeMap<String, String>,
}

/// One GPU at the last tick.
#[derive(Debug, Clone, Serialize)]
pub struct GpuNow {
    pub index: u32,
    pub uuid: String,
    pub name: Option<String>,
    pub utilization: Option<u32>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub holders: Vec<HolderNow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HolderNow {
    /// `launch`, `container` or `process`.
    pub kind: String,
    /// The container's name, or the process's command.
    pub name: String,
    /// The launch owner, or the user its processes run as.
    pub owner: String,
    /// Its processes' highest SM use at the last tick (%).
    pub sm: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseNow>,
}

/// A launch container's lease, as the last `up` judged it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseNow {
    /// `held`, `warned` or `reclaimed`.
    pub state: String,
    /// When it ends (or was reclaimed), and why.
    pub at: Option<String>,
    pub reason: Option<String>,
    /// How long since its GPUs last did work (`2h 10m`).
    pub idle_for: Option<String>,
}

/// Who held each GPU, bucket by bucket.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub from: i64,
    pub to: i64,
    pub bucket_seconds: i64,
    pub lanes: Vec<Lane>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    pub index: u32,
    pub uuid: String,
    pub segments: Vec<Segment>,
}

/// One bucket of one GPU: its main holder (the one that held it longest),
/// and the share of that time its processes were busy.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub start: i64,
    pub holder: String,
    pub owner: String,
    pub busy: f64,
    /// Holders in the bucket besides the main one.
    pub others: u32,
}

/// An owner's GPU-hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Owner {
    pub owner: String,
    pub held_hours: f64,
    pub busy_hours: f64,
    pub reclaims: u64,
}

/// The colour-blind safe palette of Okabe and Ito, most held owner first;
/// grey for owners past it.
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
];
pub const OTHERS: &str = "#999999";

/// A board of `stores` (name for each when the store has none), the totals
/// since `since`, as of `now` (Unix seconds).
pub fn gather(stores: &[(String, &Store)], since: i64, now: i64) -> Result<Board, StoreError> {
    let hosts = stores
        .iter()
        .map(|(name, store)| host(name, store, since, now))
        .collect::<Result<_, _>>()?;
    Ok(Board {
        generated: shown(now),
        since: shown(since),
        hosts,
    })
}

fn host(fallback: &str, store: &Store, since: i64, now: i64) -> Result<Host, StoreError> {
    if !store.exists() {
        return Ok(Host {
            host: fallback.to_string(),
            sampled: None,
            gpus: Vec::new(),
            day: empty(now - 86_400, now, 600),
            week: empty(now - 7 * 86_400, now, 3600),
            owners: Vec::new(),
            events: Vec::new(),
            colors: BTreeMap::new(),
        });
    }
    let name: Option<String> = store.run(|c| {
        c.query_row("SELECT value FROM meta WHERE key = 'host'", [], |r| {
            r.get(0)
        })
        .optional()
    })?;
    let last: Option<i64> =
        store.run(|c| c.query_row("SELECT max(ts) FROM samples", [], |r| r.get(0)))?;
    let gpus = gpus_now(store, last, now)?;
    let day = day(store, now)?;
    let week = week(store, now)?;
    let owners = owners(store, since)?;
    let mut events = crate::lease::record::events_since(store, since)?;
    events.reverse();
    let mut colors = BTreeMap::new();
    for (i, o) in owners.iter().enumerate() {
        let color = PALETTE.get(i).copied().unwrap_or(OTHERS);
        colors.insert(o.owner.clone(), color.to_string());
    }
    // Owners seen only in the timelines or now get colours too.
    let seen = day
        .lanes
        .iter()
        .chain(&week.lanes)
        .flat_map(|l| l.segments.iter().map(|s| s.owner.clone()))
        .chain(
            gpus.iter()
                .flat_map(|g| g.holders.iter().map(|h| h.owner.clone())),
        );
    for owner in seen {
        let next = PALETTE.get(colors.len()).copied().unwrap_or(OTHERS);
        colors.entry(owner).or_insert_with(|| next.to_string());
    }
    Ok(Host {
        host: name.unwrap_or_else(|| fallback.to_string()),
        sampled: last.map(shown),
        gpus,
        day,
        week,
        owners,
        events,
        colors,
    })
}

fn empty(from: i64, to: i64, bucket_seconds: i64) -> Timeline {
    Timeline {
        from,
        to,
        bucket_seconds,
        lanes: Vec::new(),
    }
}

fn gpus_now(store: &Store, last: Option<i64>, now: i64) -> Result<Vec<GpuNow>, StoreError> {
    let mut gpus: Vec<GpuNow> = store.run(|c| {
        let mut q = c.prepare(
            "SELECT idx, uuid, name, utilization, memory_used, memory_total
             FROM gpu_state JOIN gpus ON gpus.id = gpu_state.gpu
             WHERE ts = (SELECT max(ts) FROM gpu_state) ORDER BY idx",
        )?;
        q.query_map([], |r| {
            let bytes = |v: Option<i64>| v.and_then(|b| u64::try_from(b).ok());
            Ok(GpuNow {
                index: r.get(0)?,
                uuid: r.get(1)?,
                name: r.get(2)?,
                utilization: r.get(3)?,
                memory_used: bytes(r.get(4)?),
                memory_total: bytes(r.get(5)?),
                holders: Vec::new(),
            })
        })?
        .collect()
    })?;
    let Some(last) = last else {
        return Ok(gpus);
    };
    let held: Vec<(String, String, String, String, u32)> = store.run(|c| {
        let mut q = c.prepare(
            "SELECT gpus.uuid, holders.kind, holders.name, holders.owner, samples.sm
             FROM samples JOIN holders ON holders.id = samples.holder
             JOIN gpus ON gpus.id = samples.gpu
             WHERE samples.ts = ?1 ORDER BY holders.name",
        )?;
        q.query_map([last], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect()
    })?;
    let leases: BTreeMap<String, crate::lease::Record> = crate::lease::record::all(store)?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    for (uuid, kind, name, owner, sm) in held {
        let lease = (kind == "launch")
            .then(|| leases.get(&name))
            .flatten()
            .map(|r| lease_now(r, now));
        if let Some(g) = gpus.iter_mut().find(|g| g.uuid == uuid) {
            g.holders.push(HolderNow {
                kind,
                name,
                owner,
                sm,
                lease,
            });
        }
    }
    Ok(gpus)
}

fn lease_now(r: &crate::lease::Record, now: i64) -> LeaseNow {
    let (state, at, reason) = match r.reclaimed {
        Some(at) => ("reclaimed", Some(at), r.reason.clone()),
        None if r.warned.is_some() => ("warned", r.ends, r.ends_why.as_deref().map(ahead)),
        None => ("held", r.ends, r.ends_why.as_deref().map(ahead)),
    };
    LeaseNow {
        state: state.into(),
        at: at.map(shown),
        reason,
        idle_for: r
            .last_busy
            .or(Some(r.started))
            .filter(|_| r.reclaimed.is_none())
            .map(|t| span(now - t)),
    }
}

/// The last day in 10-minute buckets, from the raw samples (each one a
/// minute of its holder).
fn day(store: &Store, now: i64) -> Result<Timeline, StoreError> {
    const BUCKET: i64 = 600;
    let to = now - now.rem_euclid(BUCKET) + BUCKET;
    let from = to - 86_400;
    let rows: Vec<Row> = store.run(|c| {
        let mut q = c.prepare(
            "SELECT gpu_state.idx, gpus.uuid, (samples.ts - ?1) / ?2 * ?2 + ?1 AS bucket,
                    holders.name, holders.owner, count(*) * 60, sum(samples.sm > ?3) * 60
             FROM samples JOIN holders ON holders.id = samples.holder
             JOIN gpus ON gpus.id = samples.gpu
             LEFT JOIN gpu_state ON gpu_state.gpu = samples.gpu
             WHERE samples.ts >= ?1 AND samples.ts < ?4
             GROUP BY samples.gpu, bucket, samples.holder",
        )?;
        q.query_map(params![from, BUCKET, sample::BUSY_ABOVE, to], row)?
            .collect()
    })?;
    Ok(timeline(rows, from, to, BUCKET))
}

/// The last week in hours, from the hourly sums.
fn week(store: &Store, now: i64) -> Result<Timeline, StoreError> {
    const BUCKET: i64 = 3600;
    let to = now - now.rem_euclid(BUCKET) + BUCKET;
    let from = to - 7 * 86_400;
    let rows: Vec<Row> = store.run(|c| {
        let mut q = c.prepare(
            "SELECT gpu_state.idx, gpus.uuid, hourly.hour, holders.name, holders.owner,
                    hourly.held, hourly.busy
             FROM hourly JOIN holders ON holders.id = hourly.holder
             JOIN gpus ON gpus.id = hourly.gpu
             LEFT JOIN gpu_state ON gpu_state.gpu = hourly.gpu
             WHERE hourly.hour >= ?1 AND hourly.hour < ?2",
        )?;
        q.query_map(params![from, to], row)?.collect()
    })?;
    Ok(timeline(rows, from, to, BUCKET))
}

/// (GPU index, UUID, bucket, holder, owner, seconds held, seconds busy)
type Row = (Option<u32>, String, i64, String, String, i64, i64);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn timeline(rows: Vec<Row>, from: i64, to: i64, bucket_seconds: i64) -> Timeline {
    // GPU → bucket → holders (held, busy).
    type Holders = Vec<(String, String, i64, i64)>;
    let mut by_gpu: BTreeMap<(u32, String), BTreeMap<i64, Holders>> = BTreeMap::new();
    for (index, uuid, bucket, holder, owner, held, busy) in rows {
        by_gpu
            .entry((index.unwrap_or(u32::MAX), uuid))
            .or_default()
            .entry(bucket)
            .or_default()
            .push((holder, owner, held, busy));
    }
    let lanes = by_gpu
        .into_iter()
        .map(|((index, uuid), buckets)| Lane {
            index,
            uuid,
            segments: buckets
                .into_iter()
                .filter_map(|(start, holders)| {
                    let others = u32::try_from(holders.len().saturating_sub(1)).unwrap_or(0);
                    let (holder, owner, held, busy) = holders
                        .into_iter()
                        .max_by(|a, b| a.2.cmp(&b.2).then(b.0.cmp(&a.0)))?;
                    Some(Segment {
                        start,
                        holder,
                        owner,
                        busy: if held > 0 {
                            (busy as f64 / held as f64).clamp(0.0, 1.0)
                        } else {
                            0.0
                        },
                        others,
                    })
                })
                .collect(),
        })
        .collect();
    Timeline {
        from,
        to,
        bucket_seconds,
        lanes,
    }
}

/// GPU-hours per owner since `since`, most held first, with their reclaims.
fn owners(store: &Store, since: i64) -> Result<Vec<Owner>, StoreError> {
    Ok(
        crate::lease::usage::usage(store, since, crate::lease::usage::By::Owner)?
            .into_iter()
            .map(|r| Owner {
                owner: r.key,
                held_hours: round(r.held_hours),
                busy_hours: round(r.busy_hours),
                reclaims: r.reclaims,
            })
            .collect(),
    )
}

/// Hours to a tenth: what the page, the text and the JSON all show.
fn round(hours: f64) -> f64 {
    (hours * 10.0).round() / 10.0
}
