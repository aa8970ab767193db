//! `launch render`: the resolved spec as JSON, or as a `docker run` line.

use std::path::Path;

use serde_json::json;

use super::{connect, runtime, shown};
use crate::cli::{Global, RenderFormat};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::profile::{self, Diagnostic, Diagnostics, GpuSelection};
use launch::resolve::{Resolved, mode_name};
use launch::session::{managed_or_none, probe_host, with_engine_facts};
use launch::translate::render::{self, Gpus, Input, Output};

pub fn run(
    path: &Path,
    format: RenderFormat,
    lossy: bool,
    output: Option<&Path>,
    global: &Global,
) -> Result<Exit> {
    let policy = global.policy()?;
    let profile = profile::Loader::trusting(global.settings().trust)
        .load(path)
        .map_err(Error::Profile)?;
    let render: fn(&Input<'_>) -> Output = match format {
        RenderFormat::Json | RenderFormat::DockerRun if output.is_some() => {
            return Err(Error::Usage(
                "-o writes the files of kubernetes, slurm, compose and systemd; redirect stdout for json and docker-run".into(),
            ));
        }
        RenderFormat::Json | RenderFormat::DockerRun => {
            return this_host(&profile, policy.as_ref(), format, global);
        }
        RenderFormat::Kubernetes => render::kubernetes::render,
        RenderFormat::Slurm => render::slurm::render,
        RenderFormat::Compose => render::compose::render,
        RenderFormat::Systemd => render::systemd::render,
    };
    // Another engine's files are judged as `check` judges: as written.
    if let Some(policy) = &policy {
        let judged = policy.judge(&profile, None);
        if !judged.is_empty() {
            return Err(Error::Policy(Diagnostics {
                sources: profile.sources.clone(),
                items: judged,
            }));
        }
    }
    let spec = launch::resolve::base_spec(&profile);
    let gpus = match profile.gpus.as_ref().map(|g| &g.selection) {
        None => None,
        Some(GpuSelection::Count(n)) => Some(Gpus::Count(*n)),
        // The units run `launch up`, which picks the GPUs itself.
        Some(_) if matches!(format, RenderFormat::Systemd) => None,
        // Slurm chooses GPUs: pinned ones are dropped, whichever they are.
        Some(_) if matches!(format, RenderFormat::Slurm) => Some(Gpus::Uuids(Vec::new())),
        Some(_) => {
            let (resolved, _) = resolve(&profile, policy.as_ref(), global)?;
            let uuids = resolved.spec.gpu.map(|g| g.uuids).unwrap_or_default();
            Some(Gpus::Uuids(uuids))
        }
    };
    let input = Input {
        profile: &profile,
        spec: &spec,
        gpus,
        node: node_name(),
        launch_bin: std::env::current_exe()
            .map_err(|e| Error::Io(format!("where is this launch binary? {e}")))?,
    };
    let out = render(&input);
    if !out.invalid.is_empty() {
        return Err(Error::Profile(Diagnostics {
            sources: profile.sources.clone(),
            items: out
                .invalid
                .into_iter()
                .map(Diagnostic::whole_file)
                .collect(),
        }));
    }
    if !out.dropped.is_empty() && !lossy {
        let target = format!("{format:?}").to_lowercase();
        let items = out
            .dropped
            .iter()
            .map(|d| {
                let message = format!("`{}` cannot be expressed for {target}: {}", d.key, d.why);
                match profile.places.name(d.key) {
                    Some(span) => Diagnostic::new(span, message),
                    None => Diagnostic::whole_file(message),
                }
                .help("--lossy drops it, with a comment in the output saying what was dropped")
            })
            .collect();
        return Err(Error::Profile(Diagnostics {
            sources: profile.sources.clone(),
            items,
        }));
    }
    match output {
        Some(dir) => {
            for (name, text) in &out.files {
                super::import::create_new(&dir.join(name), text)?;
            }
        }
        None => {
            for (name, text) in &out.files {
                if out.files.len() > 1 {
                    println!("# --- {name}");
                }
                print!("{text}");
            }
        }
    }
    Ok(Exit::Ok)
}

/// This host's name (the node explicit GPUs are on).
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The profile resolved on this host, as `up` would create it, and why a
/// reboot is pending, if it is.
fn resolve(
    profile: &launch::profile::Profile,
    policy: Option<&launch::policy::Policy>,
    global: &Global,
) -> Result<(Resolved, Option<String>)> {
    let (facts, needs) = probe_host(&global.settings(), [profile]);
    runtime()?.block_on(async {
        // Rendering works without an engine; only `auto` (which runtimes it
        // has) and `count` (which GPUs are held) ask it, within --timeout.
        // The policy may need the image's user or the owner's other GPUs.
        let engine = if needs.engine_facts
            || needs.held_gpus
            || policy.is_some_and(|p| p.binds(&profile.owner))
        {
            match connect(global).await {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!("rendering without the engine: {e}");
                    None
                }
            }
        } else {
            None
        };
        let managed = managed_or_none(engine.as_ref()).await?;
        let facts = with_engine_facts(facts, needs, engine.as_ref()).await;
        if let Some(policy) = policy {
            let host = launch::session::on_host(
                policy,
                profile,
                &facts,
                engine.as_ref(),
                false,
                &mut Some(managed.clone()),
                &launch::state::Store::at(&global.settings().state_dir),
            )
            .await?;
            let judged = policy.judge(profile, Some(&host));
            if !judged.is_empty() {
                return Err(Error::Policy(profile::Diagnostics {
                    sources: std::sync::Arc::clone(&profile.sources),
                    items: judged,
                }));
            }
        }
        // The build context is a fact of the host, as bind sources are.
        launch::build::check_host(profile)?;
        let resolved = launch::resolve::resolve_profile(profile, &facts, &managed)?;
        Ok((resolved, facts.reboot_pending()))
    })
}

/// `json` and `docker-run`: what this host's engine would be sent.
fn this_host(
    profile: &launch::profile::Profile,
    policy: Option<&launch::policy::Policy>,
    format: RenderFormat,
    global: &Global,
) -> Result<Exit> {
    let (resolved, reboot) = resolve(profile, policy, global)?;
    let spec = &resolved.spec;
    // What it renders could not start (docs/architecture.md, GPU health).
    if spec.gpu.is_some()
        && let Some(why) = reboot
    {
        return Err(Error::RebootPending(format!(
            "{}: {why}",
            shown(&profile.path)
        )));
    }
    let mut labels = spec.all_labels(&profile.path);
    labels.insert(launch::spec::label::OWNER.into(), profile.owner.display());
    match format {
        RenderFormat::Json => {
            let spec_json: serde_json::Value =
                serde_json::from_str(&spec.canonical_json()).unwrap_or_default();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "profile": shown(&profile.path),
                    "name": spec.name,
                    "hash": spec.hash(),
                    "gpu_mode": resolved.mode.as_ref().map(|m| mode_name(m.mode)),
                    "gpu_mode_reason": resolved.mode.as_ref().map(|m| m.why.clone()),
                    "spec": spec_json,
                    "labels": labels,
                }))
                .unwrap_or_default()
            );
        }
        _ => {
            if let Some(m) = &resolved.mode {
                println!("# GPU mode: {} ({})", mode_name(m.mode), m.why);
            }
            println!("{}", render::docker_run::docker_run(spec, &labels));
        }
    }
    Ok(Exit::Ok)
}
