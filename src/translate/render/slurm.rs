//! `--format slurm`: an `sbatch` script for pyxis/enroot. Slurm chooses the
//! GPUs and shares the host's network and `/dev/shm`, so GPU pinning, ports,
//! privileges, devices, `shm_size` and restarts cannot be said here.

use super::{Drops, Gpus, Input, Output};
use crate::image_ref::ImageRef;
use crate::spec::{MountType, RestartName};

/// A word for bash, quoted when it needs it.
fn sh(word: &str) -> String {
    shell_words::quote(word).into_owned()
}

/// pyxis names an image `registry#repository:tag`.
fn pyxis_image(image: &str) -> String {
    match ImageRef::parse(image)
        .ok()
        .and_then(|r| r.registry().map(str::to_string))
    {
        Some(registry) => match image.strip_prefix(&format!("{registry}/")) {
            Some(rest) => format!("{registry}#{rest}"),
            None => image.to_string(),
        },
        None => image.to_string(),
    }
}

pub fn render(input: &Input<'_>) -> Output {
    let spec = input.spec;
    let mut drops = Drops::default();
    let mut sbatch = vec![format!("--job-name={}", spec.name)];
    match &input.gpus {
        Some(Gpus::Count(n)) => sbatch.push(format!("--gpus={n}")),
        Some(Gpus::Uuids(_)) => drops.drop(
            "gpus",
            "Slurm chooses the GPUs; ask for a count (`gpus = { count = N }`)",
        ),
        None => {}
    }
    if let Some(m) = spec.memory {
        sbatch.push(format!("--mem={}M", m.div_ceil(1 << 20)));
    }
    if let Some(n) = spec.nano_cpus {
        sbatch.push(format!(
            "--cpus-per-task={}",
            (n as u64).div_ceil(1_000_000_000)
        ));
    }
    if !spec.ports.is_empty() {
        drops.drop(
            "ports",
            "a job shares its node's network; nothing publishes a port",
        );
    }
    if spec.privileged {
        drops.drop("privileged", "enroot containers are unprivileged");
    }
    if !spec.cap_add.is_empty() || !spec.cap_drop.is_empty() {
        drops.drop(
            if spec.cap_add.is_empty() {
                "cap_drop"
            } else {
                "cap_add"
            },
            "enroot containers have no capability settings",
        );
    }
    if !spec.devices.is_empty() {
        drops.drop("devices", "Slurm gives a job its devices");
    }
    if spec.shm_size.is_some() {
        drops.drop("shm_size", "pyxis shares the host's /dev/shm");
    }
    if spec
        .restart
        .as_ref()
        .is_some_and(|r| r.name != RestartName::No)
    {
        drops.drop("restart", "Slurm requeues a job; it does not restart it");
    }
    if spec.network_mode.as_deref().is_some_and(|n| n != "host") {
        drops.drop("network", "a job shares its node's network");
    }
    if spec.ipc_mode.is_some() {
        drops.drop("ipc", "a job shares its node's IPC namespace");
    }
    if spec.pid_mode.is_some() {
        drops.drop("pid", "enroot has no PID namespace setting");
    }
    if !spec.security_opt.is_empty() {
        drops.drop("security_opt", "enroot has no security options");
    }
    if !spec.ulimits.is_empty() {
        drops.drop("ulimits", "a job's limits are Slurm's");
    }
    if spec.cpuset_cpus.is_some() {
        drops.drop("cpuset", "Slurm binds a job's CPUs");
    }
    if spec.healthcheck.is_some() {
        drops.drop("healthcheck", "Slurm does not probe a job");
    }
    if spec.user.is_some() {
        drops.drop("user", "a job runs as the user who submits it");
    }
    if spec.hostname.is_some() {
        drops.drop("hostname", "a job has its node's host name");
    }
    if spec.tty || spec.open_stdin {
        drops.drop("interactive", "a batch job has no terminal");
    }
    for (key, set) in [
        ("init", spec.init),
        ("group_add", !spec.group_add.is_empty()),
        ("sysctls", !spec.sysctls.is_empty()),
        ("extra_hosts", !spec.extra_hosts.is_empty()),
        ("dns", !spec.dns.is_empty()),
        ("device_cgroup_rules", !spec.device_cgroup_rules.is_empty()),
        ("runtime", spec.runtime.is_some()),
        ("read_only", spec.read_only),
        ("memory_swap", spec.memory_swap.is_some()),
        ("platform", spec.platform.is_some()),
        ("log", spec.log.is_some()),
    ] {
        if set {
            drops.drop(
                key,
                "enroot containers have no such setting; the node's configuration decides",
            );
        }
    }
    if spec
        .labels
        .keys()
        .any(|k| !crate::spec::label::is_launchs(k))
    {
        drops.drop("labels", "a job has no labels");
    }
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        match (m.kind, &m.source) {
            (MountType::Bind, Some(src)) => {
                let ro = if m.read_only { ":ro" } else { "" };
                mounts.push(format!("{src}:{}{ro}", m.target));
            }
            _ => drops.drop(
                "volumes",
                format!(
                    "{} is a {}: pyxis mounts host folders only",
                    m.target, m.kind
                ),
            ),
        }
    }
    // Slurm's time limit counts from the job's start, as a lease's `until`
    // duration counts from the container's.
    if let Some(s) = super::lease_limit(input.profile, &mut drops, None, "Slurm") {
        let minutes = s.div_ceil(60);
        sbatch.push(format!(
            "--time={}-{:02}:{:02}:00",
            minutes / 1440,
            minutes % 1440 / 60,
            minutes % 60
        ));
    }
    let mut srun = vec![
        "srun".to_string(),
        format!("--container-image={}", pyxis_image(&spec.image)),
    ];
    if !mounts.is_empty() {
        srun.push(format!("--container-mounts={}", mounts.join(",")));
    }
    if !spec.env.is_empty() {
        let names: Vec<&str> = spec.env.keys().map(String::as_str).collect();
        srun.push(format!("--container-env={}", names.join(",")));
    }
    if let Some(w) = &spec.working_dir {
        srun.push(format!("--container-workdir={w}"));
    }
    let mut argv: Vec<String> = Vec::new();
    match &spec.entrypoint {
        Some(e) => argv.extend(e.iter().cloned()),
        // Without its own entrypoint the image's runs, with the command as
        // its arguments, as under Docker.
        None => srun.push("--container-entrypoint".into()),
    }
    argv.extend(spec.command.iter().flatten().cloned());
    if argv.is_empty() {
        drops.drop(
            "command",
            "srun needs a command, and the image's own is not known here",
        );
    }
    let mut text = String::from("#!/bin/bash\n");
    for s in &sbatch {
        text.push_str(&format!("#SBATCH {s}\n"));
    }
    text.push_str(&drops.comments("#"));
    text.push_str("set -euo pipefail\n");
    for (k, v) in &spec.env {
        text.push_str(&format!("export {k}={}\n", sh(v)));
    }
    let mut words: Vec<String> = srun.iter().map(|w| sh(w)).collect();
    words.extend(argv.iter().map(|w| sh(w)));
    text.push_str(&words.join(" \\\n  "));
    text.push('\n');
    Output {
        files: vec![(format!("{}.sbatch", spec.name), text)],
        dropped: drops.0,
        invalid: Vec::new(),
    }
}
