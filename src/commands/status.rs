//! `launch status`: the containers launch manages, and whether they still
//! match their profiles.

use std::path::PathBuf;

use serde_json::json;

use super::{connect, runtime, targets};
use crate::cli::Global;
use crate::engine::{DockerEngine, Engine, Observed};
use crate::error::Result;
use crate::profile;
use crate::reconcile::diff;
use crate::spec::{ContainerSpec, label};

pub fn run(args: &[PathBuf], global: &Global) -> Result<i32> {
    let wanted: Option<Vec<String>> = if args.is_empty() {
        None
    } else {
        Some(
            targets(args)?
                .into_iter()
                .filter_map(|t| t.loaded.ok().map(|p| p.name))
                .collect(),
        )
    };
    runtime()?.block_on(async {
        let engine = connect(global).await?;
        let managed = engine.managed().await?;
        let shown: Vec<&Observed> =
            managed.iter().filter(|c| wanted.as_ref().is_none_or(|w| w.contains(&c.name))).collect();
        let mut rows = Vec::new();
        for c in &shown {
            let drift = drift(&engine, c, &managed, global).await;
            let gpus = c.gpus();
            let profile = c.labels.get(label::PROFILE).cloned().unwrap_or_default();
            if global.json {
                println!(
                    "{}",
                    json!({
                        "name": c.name, "id": c.id, "state": c.state.as_str(), "started_at": c.started_at, "image": c.image,
                        "gpus": gpus,
                        "driver": c.labels.get(label::DRIVER), "profile": profile, "drift": drift,
                    })
                );
            }
            let gpus: Vec<&str> = gpus.iter().map(|g| g.get(..12).unwrap_or(g)).collect();
            rows.push([
                c.name.clone(),
                c.state.as_str().to_string(),
                if gpus.is_empty() { "-".into() } else { gpus.join(",") },
                c.image.clone(),
                profile,
                drift,
            ]);
        }
        if !global.json {
            if rows.is_empty() {
                println!("no launch-managed containers");
                return Ok(0);
            }
            super::table::print(["NAME", "STATE", "GPUS", "IMAGE", "PROFILE", "DRIFT"], &rows);
        }
        Ok(0)
    })
}

/// Whether the container still matches its profile: what `up` would change.
async fn drift(
    engine: &DockerEngine,
    c: &Observed,
    managed: &[Observed],
    global: &Global,
) -> String {
    let Some(path) = c.labels.get(label::PROFILE) else {
        return "unknown (no profile label)".into();
    };
    let profile = match profile::load(std::path::Path::new(path)) {
        Ok(p) => p,
        Err(_) if !std::path::Path::new(path).exists() => return "profile missing".into(),
        Err(_) => return "profile invalid (launch check shows why)".into(),
    };
    let resolved =
        match crate::snapshot::resolve_profile(&profile, global, Some(engine), managed).await {
            Ok(r) => r,
            Err(e) => return format!("unknown ({e})"),
        };
    if c.labels.get(label::SPEC_HASH) == Some(&resolved.spec.hash()) {
        return "in sync".into();
    }
    match c
        .labels
        .get(label::SPEC)
        .and_then(|s| ContainerSpec::from_label(s))
    {
        Some(current) => format!(
            "changed: {}",
            diff::fields(&diff::diff(&current, &resolved.spec)).join(", ")
        ),
        None => "changed".into(),
    }
}
