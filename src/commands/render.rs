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
use launch::spec::ContainerSpec;
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
            println!("{}", docker_run(spec, &labels));
        }
    }
    Ok(Exit::Ok)
}

/// One field of a CSV record, as the docker CLI reads `--mount` (Go's
/// encoding/csv): quoted when it holds a comma, a quote or a line break, so
/// a target like `/x,source=/etc` stays one field instead of adding a source.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A `docker run` command line equivalent to creating and starting `spec`,
/// one option per line, quoted for a POSIX shell.
pub fn docker_run(
    spec: &ContainerSpec,
    labels: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut opts: Vec<Vec<String>> = vec![vec!["docker".into(), "run".into(), "-d".into()]];
    let mut opt = |parts: &[&str]| opts.push(parts.iter().map(|s| s.to_string()).collect());
    opt(&["--name", &spec.name]);
    if spec.tty {
        opt(&["-t"]);
    }
    if spec.open_stdin {
        opt(&["-i"]);
    }
    let mut args: Vec<String> = Vec::new();
    if let Some(entrypoint) = &spec.entrypoint {
        opt(&[
            "--entrypoint",
            entrypoint.first().map_or("", String::as_str),
        ]);
        args.extend(entrypoint.iter().skip(1).cloned());
    }
    args.extend(spec.command.iter().flatten().cloned());
    for (flag, value) in [
        ("-w", &spec.working_dir),
        ("-u", &spec.user),
        ("-h", &spec.hostname),
    ] {
        if let Some(v) = value {
            opt(&[flag, v]);
        }
    }
    for (k, v) in &spec.env {
        opt(&["-e", &format!("{k}={v}")]);
    }
    for d in &spec.devices {
        opt(&[
            "--device",
            &format!("{}:{}:{}", d.host, d.container, d.permissions),
        ]);
    }
    for m in &spec.mounts {
        let mut fields = vec![format!("type={}", m.kind)];
        if let Some(source) = &m.source {
            fields.push(format!("source={source}"));
        }
        fields.push(format!("target={}", m.target));
        if m.read_only {
            fields.push("readonly".into());
        }
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        opt(&["--mount", &fields.join(",")]);
    }
    for p in &spec.ports {
        opt(&["-p", &p.short_syntax()]);
    }
    if let Some(s) = spec.shm_size {
        opt(&["--shm-size", &s.to_string()]);
    }
    for (flag, value) in [
        ("--network", &spec.network_mode),
        ("--ipc", &spec.ipc_mode),
        ("--pid", &spec.pid_mode),
    ] {
        if let Some(v) = value {
            opt(&[flag, v]);
        }
    }
    if spec.privileged {
        opt(&["--privileged"]);
    }
    for (flag, list) in [
        ("--cap-add", &spec.cap_add),
        ("--cap-drop", &spec.cap_drop),
        ("--group-add", &spec.group_add),
    ] {
        for v in list {
            opt(&[flag, v]);
        }
    }
    // The docker CLI reads a seccomp profile from a file, but the spec holds
    // its JSON (read when the profile was loaded): the line feeds it on stdin.
    let mut seccomp: Option<&str> = None;
    for v in &spec.security_opt {
        match v.strip_prefix("seccomp=").filter(|j| j.starts_with('{')) {
            Some(json) => {
                opt(&["--security-opt", "seccomp=/dev/stdin"]);
                seccomp = Some(json);
            }
            None => opt(&["--security-opt", v]),
        }
    }
    for u in &spec.ulimits {
        opt(&["--ulimit", &format!("{}={}:{}", u.name, u.soft, u.hard)]);
    }
    if let Some(m) = spec.memory {
        opt(&["--memory", &m.to_string()]);
    }
    if let Some(n) = spec.nano_cpus {
        opt(&["--cpus", &format!("{}", n as f64 / 1e9)]);
    }
    if let Some(c) = &spec.cpuset_cpus {
        opt(&["--cpuset-cpus", c]);
    }
    if let Some(r) = &spec.restart {
        let policy = match r.max_retries {
            Some(n) => format!("{}:{n}", r.name),
            None => r.name.to_string(),
        };
        opt(&["--restart", &policy]);
    }
    if let Some(t) = spec.stop_timeout {
        opt(&["--stop-timeout", &t.to_string()]);
    }
    if spec.init {
        opt(&["--init"]);
    }
    if spec.read_only {
        opt(&["--read-only"]);
    }
    for (flag, list) in [
        ("--group-add", &spec.group_add),
        ("--add-host", &spec.extra_hosts),
        ("--dns", &spec.dns),
        ("--device-cgroup-rule", &spec.device_cgroup_rules),
    ] {
        for v in list {
            opt(&[flag, v]);
        }
    }
    for (k, v) in &spec.sysctls {
        opt(&["--sysctl", &format!("{k}={v}")]);
    }
    for (flag, value) in [("--runtime", &spec.runtime), ("--platform", &spec.platform)] {
        if let Some(v) = value {
            opt(&[flag, v]);
        }
    }
    if let Some(s) = spec.memory_swap {
        opt(&["--memory-swap", &s.to_string()]);
    }
    if let Some(log) = &spec.log {
        if let Some(d) = &log.driver {
            opt(&["--log-driver", d]);
        }
        for (k, v) in &log.options {
            opt(&["--log-opt", &format!("{k}={v}")]);
        }
    }
    if let Some(h) = &spec.healthcheck {
        match h.test.split_first() {
            Some((kind, _)) if kind == "NONE" => opt(&["--no-healthcheck"]),
            Some((kind, rest)) => {
                // The CLI only takes a shell command; an argv is quoted into one.
                let cmd = if kind == "CMD-SHELL" {
                    rest.join(" ")
                } else {
                    shell_words::join(rest)
                };
                opt(&["--health-cmd", &cmd]);
            }
            None => {}
        }
        for (flag, ns) in [
            ("--health-interval", h.interval_ns),
            ("--health-timeout", h.timeout_ns),
            ("--health-start-period", h.start_period_ns),
        ] {
            if let Some(ns) = ns {
                opt(&[flag, &format!("{ns}ns")]);
            }
        }
        if let Some(r) = h.retries {
            opt(&["--health-retries", &r.to_string()]);
        }
    }
    for r in &spec.device_requests {
        if r.driver == "cdi" {
            for id in &r.device_ids {
                opt(&["--device", id]);
            }
        } else {
            let caps: Vec<&String> = r
                .capabilities
                .iter()
                .flatten()
                .filter(|c| *c != "gpu")
                .collect();
            let caps: Vec<&str> = caps.iter().map(|c| c.as_str()).collect();
            opt(&[
                "--gpus",
                &format!(
                    "\"device={}\",\"capabilities={}\"",
                    r.device_ids.join(","),
                    caps.join(",")
                ),
            ]);
        }
    }
    for (k, v) in labels {
        opt(&["--label", &format!("{k}={v}")]);
    }
    let mut last = vec![spec.image.clone()];
    last.extend(args);
    opts.push(last);
    let line = opts
        .iter()
        .map(shell_words::join)
        .collect::<Vec<_>>()
        .join(" \\\n  ");
    match seccomp {
        // Compact JSON is one line, so it never ends the here-document early.
        Some(json) => format!("{line} <<'LAUNCH_SECCOMP'\n{json}\nLAUNCH_SECCOMP"),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn a_seccomp_profile_reaches_the_docker_cli_on_stdin() {
        let spec = launch::spec::ContainerSpec {
            name: "t".into(),
            image: "busybox".into(),
            security_opt: vec![
                "no-new-privileges".into(),
                r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#.into(),
            ],
            ..Default::default()
        };
        let line = super::docker_run(&spec, &Default::default());
        assert!(line.contains("--security-opt no-new-privileges"), "{line}");
        assert!(
            line.contains("--security-opt 'seccomp=/dev/stdin'"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "busybox <<'LAUNCH_SECCOMP'\n{\"defaultAction\":\"SCMP_ACT_ALLOW\"}\nLAUNCH_SECCOMP"
            ),
            "{line}"
        );
    }

    #[test]
    fn mount_fields_with_commas_or_quotes_are_csv_quoted() {
        assert_eq!(csv_field("target=/data"), "target=/data");
        assert_eq!(
            csv_field("target=/x,source=/etc"),
            "\"target=/x,source=/etc\""
        );
        assert_eq!(csv_field("source=/a\"b"), "\"source=/a\"\"b\"");
    }
}
