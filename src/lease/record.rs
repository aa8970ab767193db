//! What the store keeps of leases: one row a leased container (when its
//! lease began, when it last (re)started and was last busy, whether it was
//! warned or reclaimed), and the events (warnings, reclaims, renewals).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use crate::state::{Store, StoreError};

/// A leased container's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub owner_uid: u32,
    pub owner_name: String,
    /// When its lease began (launch first made or saw it): what `until`
    /// as a duration counts from.
    pub since: i64,
    /// When it last (re)started: `grace` counts from here.
    pub started: i64,
    /// The last sample in which its GPUs were busy.
    pub last_busy: Option<i64>,
    /// When it was warned of the end now due.
    pub warned: Option<i64>,
    /// When it was reclaimed; `None` while it holds its GPUs.
    pub reclaimed: Option<i64>,
    pub reason: Option<String>,
    /// The spec and lease it was reclaimed under: a change of either is the
    /// profile's owner bringing it back.
    pub profile_hash: Option<String>,
    pub lease: Option<String>,
    /// `launch renew --until/--for`: the lease ends no sooner.
    pub renewed_until: Option<i64>,
    /// When the lease ends as `up` last judged it, and why (for the board).
    pub ends: Option<i64>,
    pub ends_why: Option<String>,
}

impl Record {
    /// The row of a lease that begins `now`.
    pub fn new(name: &str, owner_uid: u32, owner_name: &str, now: i64) -> Record {
        Record {
            name: name.to_string(),
            owner_uid,
            owner_name: owner_name.to_string(),
            since: now,
            started: now,
            last_busy: None,
            warned: None,
            reclaimed: None,
            reason: None,
            profile_hash: None,
            lease: None,
            renewed_until: None,
            ends: None,
            ends_why: None,
        }
    }
}

/// One thing that happened to a lease.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    pub ts: i64,
    pub name: String,
    pub owner: String,
    /// `warn`, `reclaim`, `renew`.
    pub kind: String,
    pub detail: String,
}

const COLUMNS: &str = "name, owner_uid, owner_name, since, started, last_busy, warned, reclaimed, reason, profile_hash, lease, renewed_until, ends, ends_why";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        name: r.get(0)?,
        owner_uid: r.get(1)?,
        owner_name: r.get(2)?,
        since: r.get(3)?,
        started: r.get(4)?,
        last_busy: r.get(5)?,
        warned: r.get(6)?,
        reclaimed: r.get(7)?,
        reason: r.get(8)?,
        profile_hash: r.get(9)?,
        lease: r.get(10)?,
        renewed_until: r.get(11)?,
        ends: r.get(12)?,
        ends_why: r.get(13)?,
    })
}

pub fn get(store: &Store, name: &str) -> Result<Option<Record>, StoreError> {
    store.run(|c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM leases WHERE name = ?1"),
            [name],
            row,
        )
        .optional()
    })
}

pub fn all(store: &Store) -> Result<Vec<Record>, StoreError> {
    store.run(|c| {
        let mut q = c.prepare(&format!("SELECT {COLUMNS} FROM leases ORDER BY name"))?;
        q.query_map([], row)?.collect()
    })
}

/// The row of `name`, made when its lease begins now.
pub fn begin(
    store: &Store,
    name: &str,
    owner_uid: u32,
    owner_name: &str,
    now: i64,
) -> Result<Record, StoreError> {
    store.run(|c| {
        c.execute(
            "INSERT OR IGNORE INTO leases (name, owner_uid, owner_name, since, started)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![name, owner_uid, owner_name, now],
        )?;
        c.query_row(
            &format!("SELECT {COLUMNS} FROM leases WHERE name = ?1"),
            [name],
            row,
        )
    })
}

pub fn save(store: &Store, r: &Record) -> Result<(), StoreError> {
    store.run(|c| {
        c.execute(
            "INSERT OR REPLACE INTO leases (name, owner_uid, owner_name, since, started, last_busy,
                warned, reclaimed, reason, profile_hash, lease, renewed_until, ends, ends_why)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.name,
                r.owner_uid,
                r.owner_name,
                r.since,
                r.started,
                r.last_busy,
                r.warned,
                r.reclaimed,
                r.reason,
                r.profile_hash,
                r.lease,
                r.renewed_until,
                r.ends,
                r.ends_why
            ],
        )
        .map(drop)
    })
}

/// The containers reclaimed and not brought back: they hold no GPU.
pub fn reclaimed(store: &Store) -> Result<BTreeSet<String>, StoreError> {
    store.run(|c| {
        let mut q = c.prepare("SELECT name FROM leases WHERE reclaimed IS NOT NULL")?;
        q.query_map([], |r| r.get(0))?.collect()
    })
}

pub fn event(store: &Store, e: &Event) -> Result<(), StoreError> {
    store.run(|c| {
        c.execute(
            "INSERT INTO events (ts, name, owner, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.ts, e.name, e.owner, e.kind, e.detail],
        )
        .map(drop)
    })
}

pub fn events_since(store: &Store, since: i64) -> Result<Vec<Event>, StoreError> {
    store.run(|c| {
        let mut q = c.prepare(
            "SELECT ts, name, owner, kind, detail FROM events WHERE ts >= ?1 ORDER BY ts",
        )?;
        q.query_map([since], |r| {
            Ok(Event {
                ts: r.get(0)?,
                name: r.get(1)?,
                owner: r.get(2)?,
                kind: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect()
    })
}
