//! Resolve on this host: the profile's host paths checked where they are
//! (bind sources, devices, CPUs), then the pure [`resolve`](super::resolve)
//! with the run's host facts. Errors come back located in the profile.

use std::sync::Arc;

use crate::engine::Observed;
use crate::error::{Error, Result};
use crate::host::gpu::select::Held;
use crate::host::{HostFacts, device_kind, held_gpus, nvidia_majors};
use crate::profile::{self, Diagnostics, Profile};

use super::{Host, ResolveError, Resolved};

/// The host's paths a profile names: bind sources and devices exist (and
/// are what they must be), and its CPU limits fit the host's CPUs (the
/// engine refuses more at create). Needs neither the engine nor NVML, so
/// these errors are reported even when no engine answers.
pub fn check_paths(profile: &Profile) -> Result<()> {
    let mut problems = super::check_bind_sources(profile, |p| p.exists());
    problems.extend(check_cpus(profile));
    if !profile.devices.is_empty() {
        problems.extend(super::check_devices(profile, device_kind, &nvidia_majors()));
    }
    if !problems.is_empty() {
        problems.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        return Err(located(profile, problems));
    }
    Ok(())
}

/// `cpus` and `cpuset` against this host's CPUs, as the engine judges them.
fn check_cpus(profile: &Profile) -> Vec<profile::Diagnostic> {
    // Asked only of a profile that limits CPUs: it reads cgroup files.
    if profile.nano_cpus.is_none() && profile.cpuset.is_none() {
        return Vec::new();
    }
    let Ok(n) = std::thread::available_parallelism().map(usize::from) else {
        return Vec::new();
    };
    let at = |key: &str| {
        profile
            .places
            .key(key)
            .unwrap_or(profile.places.start.clone())
    };
    let mut out = Vec::new();
    if let Some(nano) = profile.nano_cpus
        && nano > n as i64 * 1_000_000_000
    {
        out.push(profile::Diagnostic::new(
            at("cpus"),
            format!(
                "cpus = {} is more than this host's {n} CPUs",
                nano as f64 / 1e9
            ),
        ));
    }
    if let Some(set) = &profile.cpuset {
        let highest = set
            .split(',')
            .filter_map(|part| part.rsplit('-').next()?.parse::<usize>().ok())
            .max();
        if let Some(cpu) = highest.filter(|&c| c >= n) {
            out.push(profile::Diagnostic::new(
                at("cpuset"),
                format!(
                    "cpuset \"{set}\" names CPU {cpu}, and this host has CPUs 0–{}",
                    n - 1
                ),
            ));
        }
    }
    out
}

/// Resolves a loaded profile against the run's host facts: its bind
/// sources, then the pure resolve. `managed` are the engine's launch
/// containers, as far as the profile needs them (its own, for a count
/// selection all of them).
pub fn resolve_profile(
    profile: &Profile,
    facts: &HostFacts,
    managed: &[Observed],
) -> Result<Resolved> {
    resolve_reserving(profile, facts, managed, &Held::new())
}

/// `resolve_profile`, where `reserved` GPUs (those the run's profiles that
/// name their GPUs will take, by the profile's name) count as held: a
/// `{ count = N }` of the same run does not choose them.
pub fn resolve_reserving(
    profile: &Profile,
    facts: &HostFacts,
    managed: &[Observed],
    reserved: &Held,
) -> Result<Resolved> {
    check_paths(profile)?;
    let gpus = match (&profile.gpus, facts.gpus()) {
        (None, _) => None,
        (Some(_), Some(Ok(host))) => Some(host),
        (Some(_), Some(Err(e))) => return Err(Error::Nvml(e.clone())),
        (Some(_), None) => {
            return Err(Error::Host(
                "internal: the profile asks for GPUs, but the host's GPUs were not probed".into(),
            ));
        }
    };
    let mut held = held_gpus(managed, Some(&profile.name));
    for (uuid, name) in reserved {
        if *name != profile.name {
            held.entry(uuid.clone()).or_insert_with(|| name.clone());
        }
    }
    let host = Host {
        gpus,
        toolkit: &facts.toolkit,
        held,
        previous: managed
            .iter()
            .find(|c| c.name == profile.name)
            .map(Observed::gpus),
    };
    super::resolve(profile, &host).map_err(|e| match e {
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
