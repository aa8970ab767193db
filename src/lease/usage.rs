//! Accounting (docs/architecture.md, leases): GPU-hours held and busy, the
//! idle share and the reclaims, per owner, container or GPU, from the
//! store's hourly sums. GPUs held by containers and processes launch did not
//! make count under the user their processes run as.

use std::collections::BTreeMap;

use rusqlite::params;

use crate::state::{Store, StoreError};

/// What `launch usage` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Owner,
    Container,
    Gpu,
}

/// One row of the accounting.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// The owner, container (`kind` says whose) or GPU UUID.
    pub key: String,
    /// `launch`, `container` or `process` when grouped by container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub held_hours: f64,
    pub busy_hours: f64,
    /// The share of the held time the GPUs did no work (0–1).
    pub idle_share: f64,
    pub reclaims: u64,
}

/// The accounting since `since` (Unix seconds; the hour it falls in counts).
pub fn usage(store: &Store, since: i64, by: By) -> Result<Vec<Row>, StoreError> {
    let hour = since - since.rem_euclid(3600);
    let (key, group) = match by {
        By::Owner => ("holders.owner", "holders.owner"),
        By::Container => ("holders.name", "holders.kind, holders.name"),
        By::Gpu => ("gpus.uuid", "gpus.uuid"),
    };
    let sums: Vec<(String, Option<String>, i64, i64)> = store.run(|c| {
        let kind = if by == By::Container {
            "holders.kind"
        } else {
            "NULL"
        };
        let mut q = c.prepare(&format!(
            "SELECT {key}, {kind}, sum(held), sum(busy) FROM hourly
             JOIN holders ON holders.id = hourly.holder JOIN gpus ON gpus.id = hourly.gpu
             WHERE hour >= ?1
             GROUP BY {group} ORDER BY sum(held) DESC, {key}"
        ))?;
        q.query_map(params![hour], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect()
    })?;
    let reclaims: BTreeMap<String, u64> = match by {
        By::Gpu => BTreeMap::new(),
        By::Owner | By::Container => store.run(|c| {
            let column = if by == By::Owner { "owner" } else { "name" };
            let mut q = c.prepare(&format!(
                "SELECT {column}, count(*) FROM events WHERE kind = 'reclaim' AND ts >= ?1 GROUP BY {column}"
            ))?;
            q.query_map(params![since], |r| {
                let n: i64 = r.get(1)?;
                Ok((r.get(0)?, u64::try_from(n).unwrap_or(0)))
            })?
            .collect()
        })?,
    };
    let hours = |seconds: i64| seconds as f64 / 3600.0;
    let mut rows: Vec<Row> = sums
        .into_iter()
        .map(|(key, kind, held, busy)| Row {
            reclaims: reclaims
                .get(&key)
                .copied()
                .filter(|_| kind.as_deref().is_none_or(|k| k == "launch"))
                .unwrap_or(0),
            idle_share: if held > 0 {
                (held - busy) as f64 / held as f64
            } else {
                0.0
            },
            held_hours: hours(held),
            busy_hours: hours(busy),
            key,
            kind,
        })
        .collect();
    // Reclaimed since, and not sampled since (a reclaim holds nothing).
    for (key, n) in &reclaims {
        if !rows.iter().any(|r| r.key == *key) {
            rows.push(Row {
                key: key.clone(),
                kind: (by == By::Container).then(|| "launch".to_string()),
                held_hours: 0.0,
                busy_hours: 0.0,
                idle_share: 0.0,
                reclaims: *n,
            });
        }
    }
    Ok(rows)
}
