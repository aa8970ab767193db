//! `launch status`: the containers launch manages, and whether they still
//! match their profiles.

use std::path::PathBuf;

use serde_json::json;

use super::{connect, runtime, shown, targets};
use crate::cli::Global;
use launch::engine::{Engine, Observed, State};
use launch::error::Result;
use launch::exit::Exit;
use launch::host::HostFacts;
use launch::profile::{self, Profile};
use launch::reconcile::{self, diff, recover};
use launch::session::{probe_host, with_engine_facts};
use launch::spec::label;

pub fn run(args: &[PathBuf], global: &Global) -> Result<Exit> {
    // An invalid profile is reported (exit 2), and its container is still
    // listed, found by the profile path it was made from.
    let mut exit = Exit::Ok;
    let mut invalid_paths: Vec<String> = Vec::new();
    let wanted: Option<Vec<String>> = if args.is_empty() {
        None
    } else {
        let mut names = Vec::new();
        for t in targets(args, global)? {
            match &t.loaded {
                Ok(p) => names.push(p.name.clone()),
                Err(_) => {
                    exit = exit.worst(super::report_invalid(&t, global));
                    let path =
                        std::fs::canonicalize(&*t.path).unwrap_or_else(|_| t.path.to_path_buf());
                    invalid_paths.push(path.display().to_string());
                }
            }
        }
        Some(names)
    };
    let rt = runtime()?;
    let engine = rt.block_on(connect(global))?;
    // Which engine answers: what it can do with GPUs differs.
    let identity = rt
        .block_on(engine.identity())
        .map_or_else(|e| format!("unknown ({e})"), |i| i.to_string());
    let managed = rt.block_on(engine.managed())?;
    // A profile's leftovers are listed with it.
    let listed: Vec<&Observed> = managed
        .iter()
        .filter(|c| {
            let of_invalid = c
                .labels
                .get(label::PROFILE)
                .is_some_and(|p| invalid_paths.contains(p));
            of_invalid
                || wanted.as_ref().is_none_or(|w| {
                    w.iter()
                        .any(|n| *n == c.name || recover::leftover_of(c) == Some(n.as_str()))
                })
        })
        .collect();
    // Each container's profile, loaded once; the host probed once for all.
    let profiles: Vec<Option<Result<Profile, String>>> =
        listed.iter().map(|c| load_profile(c)).collect();
    let (facts, needs) = probe_host(
        &global.settings(),
        profiles.iter().flatten().filter_map(|p| p.as_ref().ok()),
    );
    let facts = rt.block_on(with_engine_facts(facts, needs, Some(&engine)));
    // Leases: from the store, when there is one.
    let store = super::store(global);
    let policy = global.policy().ok().flatten();
    let now = launch::lease::now();
    let standing = |c: &Observed, profile: Option<&Result<Profile, String>>| {
        if !store.exists() {
            return None;
        }
        let r = launch::lease::record::get(&store, &c.name).ok().flatten()?;
        let lease = profile
            .and_then(|p| p.as_ref().ok())
            .and_then(|p| launch::lease::effective(p, policy.as_ref()));
        let latest = launch::lease::sample::latest(&store, &c.name)
            .ok()
            .flatten()
            .map(|(ts, _, signal)| (ts, signal));
        Some(launch::lease::Standing::of(lease.as_ref(), &r, latest, now))
    };
    rt.block_on(async {
        let mut rows = Vec::new();
        for (c, profile) in listed.iter().zip(&profiles) {
            let leftover_of = recover::leftover_of(c);
            let drift = match leftover_of {
                Some(name) if c.state == State::Removing => {
                    format!("the old container of a recreate of {name}: the engine is deleting its files")
                }
                Some(name) if c.state == State::Dead => {
                    format!("leftover of {name} whose removal was cut short (launch up finishes it)")
                }
                Some(name) => format!("leftover of {name} (launch up removes it once nothing in it would be lost)"),
                None => drift(c, profile.as_ref(), &facts, &managed),
            };
            let lease = if leftover_of.is_none() {
                standing(c, profile.as_ref())
            } else {
                None
            };
            let gpus = c.gpus();
            // As the profile wrote it (Podman reports docker.io/… in full).
            let image = c.spec().map_or_else(|| c.image.clone(), |s| s.image);
            let profile = c.labels.get(label::PROFILE).cloned().unwrap_or_default();
            // Containers made before launch wrote `launch.owner` have none.
            let owner = c.labels.get(label::OWNER);
            if global.json {
                println!(
                    "{}",
                    json!({
                        "name": c.name, "id": c.id, "state": c.state.as_str(), "started_at": c.started_at, "image": image,
                        "engine": identity,
                        "gpus": gpus, "owner": owner.map_or("unknown", String::as_str),
                        "driver": c.labels.get(label::DRIVER), "profile": shown(std::path::Path::new(&profile)), "drift": drift,
                        "leftover_of": leftover_of, "lease": lease,
                    })
                );
            }
            let gpus: Vec<&str> = gpus.iter().map(|g| g.get(..12).unwrap_or(g)).collect();
            rows.push([
                c.name.clone(),
                c.state.as_str().to_string(),
                if gpus.is_empty() { "-".into() } else { gpus.join(",") },
                image.clone(),
                owner.map_or("-", String::as_str).to_string(),
                profile,
                drift,
                lease.map_or_else(|| "-".to_string(), |l| l.cell()),
            ]);
        }
        if !global.json {
            if rows.is_empty() {
                println!("no launch-managed containers");
                return Ok(exit);
            }
            println!("engine: {identity}");
            super::table::print(["NAME", "STATE", "GPUS", "IMAGE", "OWNER", "PROFILE", "DRIFT", "LEASE"], &rows);
        }
        Ok(exit)
    })
}

/// The profile a container was made from (label `launch.profile`): `None`
/// without the label, `Err` with why it cannot be used.
fn load_profile(c: &Observed) -> Option<Result<Profile, String>> {
    let path = std::path::Path::new(c.labels.get(label::PROFILE)?);
    Some(profile::load(path).map_err(|_| {
        if path.exists() {
            "profile invalid (launch check shows why)".to_string()
        } else {
            "profile missing".to_string()
        }
    }))
}

/// Whether the container still matches its profile: what `up` would change.
fn drift(
    c: &Observed,
    profile: Option<&Result<Profile, String>>,
    facts: &HostFacts,
    managed: &[Observed],
) -> String {
    let profile = match profile {
        None => return "unknown (no profile label)".into(),
        Some(Err(why)) => return why.clone(),
        Some(Ok(p)) => p,
    };
    let resolved = match launch::resolve::resolve_profile(profile, facts, managed) {
        Ok(r) => r,
        Err(e) => return format!("unknown ({e})"),
    };
    if c.labels.get(label::SPEC_HASH) == Some(&resolved.spec.hash()) {
        return "in sync".into();
    }
    if reconcile::plan::made_by_older_launch(&resolved.spec, c) {
        return format!("in sync ({})", reconcile::plan::OLDER_SCHEMA);
    }
    match c.spec() {
        Some(current) => format!(
            "changed: {}",
            diff::fields(&diff::diff(&current, &resolved.spec)).join(", ")
        ),
        None => "changed".into(),
    }
}
