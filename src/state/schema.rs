//! The store's tables, and how an older store becomes the current one
//! (`PRAGMA user_version` counts the steps taken).

use rusqlite::Connection;

/// Each step, in order; a store at version N has taken the first N.
const STEPS: &[&str] = &[
    // 1: what launch made, and for whom.
    "CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner_uid INTEGER NOT NULL,
        owner_name TEXT NOT NULL,
        profile TEXT NOT NULL,
        made INTEGER NOT NULL
    );
    CREATE TABLE images (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        reference TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        owner_uid INTEGER NOT NULL,
        owner_name TEXT NOT NULL,
        of TEXT,
        tag_given INTEGER NOT NULL,
        made INTEGER NOT NULL
    );",
    // 2: leases, GPU samples and their hourly sums, events (docs/architecture.md,
    // leases). Samples name their GPU and holder by number: a year of a busy
    // host's minutes stays small.
    "CREATE TABLE ticks (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    );
    CREATE TABLE gpus (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE
    );
    CREATE TABLE holders (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        UNIQUE (kind, name, owner)
    );
    CREATE TABLE samples (
        ts INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        holder INTEGER NOT NULL,
        sm INTEGER NOT NULL,
        signal INTEGER NOT NULL,
        PRIMARY KEY (ts, gpu, holder)
    ) WITHOUT ROWID;
    CREATE INDEX samples_holder ON samples (holder, ts);
    CREATE TABLE hourly (
        hour INTEGER NOT NULL,
        gpu INTEGER NOT NULL,
        holder INTEGER NOT NULL,
        held INTEGER NOT NULL,
        busy INTEGER NOT NULL,
        PRIMARY KEY (hour, gpu, holder)
    ) WITHOUT ROWID;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner_uid INTEGER NOT NULL,
        owner_name TEXT NOT NULL,
        since INTEGER NOT NULL,
        started INTEGER NOT NULL,
        last_busy INTEGER,
        warned INTEGER,
        reclaimed INTEGER,
        reason TEXT,
        profile_hash TEXT,
        lease TEXT,
        renewed_until INTEGER
    );
    CREATE TABLE events (
        ts INTEGER NOT NULL,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_ts ON events (ts);",
    // 3: for the board (docs/architecture.md, the board): each GPU as the
    // last tick saw it, the host's name, and when each lease ends.
    "CREATE TABLE gpu_state (
        gpu INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        name TEXT,
        utilization INTEGER,
        memory_used INTEGER,
        memory_total INTEGER
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ALTER TABLE leases ADD COLUMN ends INTEGER;
    ALTER TABLE leases ADD COLUMN ends_why TEXT;",
];

/// The version a store has once every step is taken.
pub const VERSION: i64 = STEPS.len() as i64;

/// Brings the store up to date, in one transaction per step: a run killed
/// half-way leaves it at the last whole step.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    loop {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let Some(step) = usize::try_from(version).ok().and_then(|v| STEPS.get(v)) else {
            return Ok(());
        };
        // IMMEDIATE: two runs opening a new store at once take turns.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let now: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now != version {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        let done = conn
            .execute_batch(step)
            .and_then(|()| conn.pragma_update(None, "user_version", version + 1));
        match done {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}
