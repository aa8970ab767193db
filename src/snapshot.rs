//! Gathering the facts resolve needs: the GPU snapshot (NVML, /dev, driver
//! files), what the engine and host offer for GPU injection, and which GPUs
//! launch containers hold. All effects; resolve itself stays pure.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use crate::cli::Global;
use crate::engine::{Engine, Observed};
use crate::error::{Error, Result};
use crate::gpu::select::Held;
use crate::gpu::{GpuHost, Roots};
use crate::profile::{self, Diagnostics, Profile};
use crate::resolve::{self, Host, ResolveError, Resolved, ToolkitFacts};

const TOOLKIT_HOOK: &str = "nvidia-container-runtime-hook";
const CDI_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

/// The host as `profile` needs to know it. `engine` is `None` when no engine
/// answered (`render` works offline); `managed` is what it reported.
pub async fn host_for<E: Engine>(
    profile: &Profile,
    roots: &Roots,
    engine: Option<&E>,
    managed: &[Observed],
) -> Result<Host> {
    // Everything GPU-related, NVML and `docker info` (slow) included, is
    // looked at only for a profile that asks for GPUs.
    if profile.gpus.is_none() {
        return Ok(Host::default());
    }
    let gpus = Some(GpuHost::probe(roots).map_err(Error::Nvml)?);
    let facts = match engine {
        Some(e) => Some(e.facts().await.map_err(Error::Engine)?),
        None => None,
    };
    let toolkit = ToolkitFacts {
        engine_reachable: facts.is_some(),
        runtimes: facts
            .as_ref()
            .map(|f| f.runtimes.clone())
            .unwrap_or_default(),
        toolkit_hook: find_on_path(TOOLKIT_HOOK),
        engine_cdi: facts.as_ref().is_some_and(|f| !f.cdi_spec_dirs.is_empty()),
        nvidia_cdi_spec: nvidia_cdi_spec(),
    };
    let previous = managed
        .iter()
        .find(|c| c.name == profile.name)
        .map(Observed::gpus);
    Ok(Host {
        gpus,
        toolkit,
        held: held_gpus(managed, Some(&profile.name)),
        previous,
    })
}

/// GPUs held by launch containers (other than `except`), from their labels.
pub fn held_gpus(managed: &[Observed], except: Option<&str>) -> Held {
    managed
        .iter()
        .filter(|c| Some(c.name.as_str()) != except)
        .flat_map(|c| c.gpus().into_iter().map(|u| (u, c.name.clone())))
        .collect()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A CDI spec that defines `nvidia.com/gpu`, as `nvidia-ctk cdi generate` writes.
fn nvidia_cdi_spec() -> Option<PathBuf> {
    CDI_DIRS
        .iter()
        .flat_map(|d| std::fs::read_dir(Path::new(d)).into_iter().flatten())
        .flatten()
        .find_map(|entry| {
            let path = entry.path();
            let text = std::fs::read_to_string(&path).ok()?;
            text.contains("nvidia.com/gpu").then_some(path)
        })
}

/// Resolves a loaded profile against this host: its bind sources, then the
/// snapshot, then the pure resolve. `engine` may be absent (`render` offline).
pub async fn resolve_profile<E: Engine>(
    profile: &Profile,
    global: &Global,
    engine: Option<&E>,
    managed: &[Observed],
) -> Result<Resolved> {
    let missing = resolve::check_bind_sources(profile, |p| p.exists());
    if !missing.is_empty() {
        return Err(located(profile, missing));
    }
    let host = host_for(profile, &global.roots(), engine, managed).await?;
    resolve::resolve(profile, &host).map_err(|e| match e {
        ResolveError::Profile(items) => located(profile, items),
        ResolveError::NotEnoughFree(report) => Error::NotEnoughGpus(report),
        ResolveError::Host(message) => Error::Host(message),
    })
}

/// Errors found against the host, shown in the profile's source.
fn located(profile: &Profile, items: Vec<profile::Diagnostic>) -> Error {
    Error::Profile(Diagnostics {
        sources: Arc::clone(&profile.sources),
        items,
    })
}
