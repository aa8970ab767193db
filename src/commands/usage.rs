//! `launch usage`: GPU-hours held and busy, from the leases' samples.

use serde_json::json;

use super::{store, table};
use crate::cli::{ByArg, Global};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::lease::{self, usage::By};

pub fn run(since: &str, by: ByArg, global: &Global) -> Result<Exit> {
    let now = lease::now();
    let from = lease::since(since, now).map_err(Error::Usage)?;
    let (by, column) = match by {
        ByArg::Owner => (By::Owner, "OWNER"),
        ByArg::Container => (By::Container, "CONTAINER"),
        ByArg::Gpu => (By::Gpu, "GPU"),
    };
    let store = store(global);
    // No store yet: nothing was sampled.
    let rows = if store.exists() {
        lease::usage::usage(&store, from, by).map_err(|e| Error::Io(e.to_string()))?
    } else {
        Vec::new()
    };
    if global.json {
        println!(
            "{}",
            json!({ "since": lease::shown(from), "by": column.to_lowercase(), "rows": rows })
        );
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        println!(
            "no GPU samples since {}: `launch up` samples when it applies a leased GPU profile",
            lease::shown(from)
        );
        return Ok(Exit::Ok);
    }
    println!("since {}", lease::shown(from));
    let rows: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                match &r.kind {
                    Some(kind) if kind != "launch" => format!("{} ({kind})", r.key),
                    _ => r.key.clone(),
                },
                format!("{:.1}", r.held_hours),
                format!("{:.1}", r.busy_hours),
                format!("{:.0}%", r.idle_share * 100.0),
                r.reclaims.to_string(),
            ]
        })
        .collect();
    table::print(
        [column, "GPU-HOURS HELD", "BUSY", "IDLE", "RECLAIMS"],
        &rows,
    );
    Ok(Exit::Ok)
}
