//! `launch renew`: a reclaimed container's lease begins again.

use serde_json::json;

use super::{container_target, store};
use crate::cli::Global;
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::lease;

pub fn run(target: &str, until: Option<&str>, for_: Option<&str>, global: &Global) -> Result<Exit> {
    let (name, _) = container_target(target, global)?;
    let policy = global.policy()?;
    let now = lease::now();
    let until = match (until, for_) {
        (Some(t), _) => Some(
            humantime::parse_rfc3339_weak(t)
                .map(lease::seconds)
                .map_err(|_| {
                    Error::Usage(format!(
                        "--until `{t}` is not an RFC 3339 time such as 2026-12-24T18:00:00Z"
                    ))
                })?,
        ),
        (None, Some(d)) => Some(
            humantime::parse_duration(d)
                .map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
                .map_err(|_| {
                    Error::Usage(format!("--for `{d}` is not a duration such as 8h or 2d"))
                })?,
        ),
        (None, None) => None,
    };
    let runner = launch::owner::Owner::of_uid(
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let store = store(global);
    let r = lease::renew::renew(&store, &name, &runner, policy.as_ref(), until, now)?;
    if global.json {
        println!(
            "{}",
            json!({
                "name": name, "action": "renew", "owner": r.owner_name,
                "until": until.map(lease::shown), "exit_code": 0,
            })
        );
    } else if !global.quiet {
        let end = until
            .map(|t| format!(", until {} at the least", lease::shown(t)))
            .unwrap_or_default();
        println!(
            "{name}: renewed{end}; its lease counts from now, and the next `launch up` brings it back"
        );
    }
    Ok(Exit::Ok)
}
