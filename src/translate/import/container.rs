//! `launch import --container NAME`: a container as the engine reports it,
//! less what came from its image (env, labels, cmd, entrypoint, workdir,
//! user, volumes, exposed ports), read as the `docker run` flags that would
//! make it and translated like any line. Every port binding is kept.

use bollard::models::{ContainerInspectResponse, ImageConfig, MountType};
use toml::Value;

use super::flags::{self, command_value};
use super::gpus::GpuFacts;
use super::script::{RunLine, Word};
use super::{HostView, Imported};
use crate::engine::DockerEngine;
use crate::error::{Error, Result};
use crate::host::gpu::driver::PERSISTENCED_SOCKET;
use crate::resolve::{NVIDIA_BIN, NVIDIA_LIB};

/// Docker's default size of /dev/shm (64 MiB).
const DEFAULT_SHM: i64 = 64 << 20;

/// Imports the container `name` through the engine.
pub async fn import(engine: &DockerEngine, name: &str, host: &HostView<'_>) -> Result<Imported> {
    let (container, image) = engine.inspect_for_import(name).await.map_err(|e| {
        if e.is_not_found() {
            Error::Usage(format!("no container named {name}"))
        } else {
            Error::Engine(e)
        }
    })?;
    translate(&container, image.as_ref(), host)
}

/// The import of an inspected container.
pub fn translate(
    c: &ContainerInspectResponse,
    image: Option<&ImageConfig>,
    host: &HostView<'_>,
) -> Result<Imported> {
    let config = c.config.clone().unwrap_or_default();
    let hc = c.host_config.clone().unwrap_or_default();
    let image = image.cloned().unwrap_or_default();
    let name = c
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let mut args: Vec<String> = vec!["--name".into(), name.clone()];
    let mut opt = |flag: &str, value: String| {
        args.push(flag.into());
        args.push(value);
    };
    let mut facts = GpuFacts::default();
    // What launch's `devices` mode mounted: the driver, not the user's volumes.
    let driver_mount = |target: &str| {
        target.starts_with(NVIDIA_LIB)
            || target.starts_with(NVIDIA_BIN)
            || target == PERSISTENCED_SOCKET
    };
    for bind in hc.binds.iter().flatten() {
        let target = bind.split(':').nth(1).unwrap_or_default();
        if driver_mount(target) {
            facts.driver_volume = true;
        } else {
            opt("-v", bind.clone());
        }
    }
    for m in hc.mounts.iter().flatten() {
        let target = m.target.clone().unwrap_or_default();
        if driver_mount(&target) {
            facts.driver_volume = true;
            continue;
        }
        let ro = if m.read_only == Some(true) { ":ro" } else { "" };
        match (m.typ, m.source.as_deref()) {
            (Some(MountType::TMPFS), _) => opt("--tmpfs", target),
            (Some(MountType::BIND | MountType::VOLUME), Some(source))
                if !source.contains(':') && !target.contains(':') =>
            {
                opt("-v", format!("{source}:{target}{ro}"));
            }
            (kind, source) => {
                let kind = kind.map(|k| k.to_string()).unwrap_or_default();
                let mut fields = vec![format!("type={kind}"), format!("target={target}")];
                if let Some(s) = source {
                    fields.push(format!("source={s}"));
                }
                if !ro.is_empty() {
                    fields.push("readonly".into());
                }
                opt("--mount", fields.join(","));
            }
        }
    }
    let image_env = image.env.clone().unwrap_or_default();
    for e in config.env.iter().flatten() {
        if image_env.contains(e) {
            continue;
        }
        let launch_path = match e.split_once('=') {
            Some(("LD_LIBRARY_PATH", v)) => v.starts_with(NVIDIA_LIB),
            Some(("PATH", v)) => v.starts_with(NVIDIA_BIN),
            _ => false,
        };
        if !(facts.driver_volume && launch_path) {
            opt("-e", e.clone());
        }
    }
    let image_labels = image.labels.clone().unwrap_or_default();
    let mut labels: Vec<(&String, &String)> = config
        .labels
        .iter()
        .flatten()
        .filter(|(k, v)| !crate::spec::label::is_launchs(k) && image_labels.get(*k) != Some(*v))
        .collect();
    labels.sort();
    for (k, v) in labels {
        opt("-l", format!("{k}={v}"));
    }
    let mut ports: Vec<String> = Vec::new();
    for (port, bindings) in hc.port_bindings.iter().flatten() {
        let port = port.strip_suffix("/tcp").unwrap_or(port);
        for b in bindings.iter().flatten() {
            let ip = b.host_ip.as_deref().unwrap_or_default();
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let host_port = b.host_port.as_deref().unwrap_or_default();
            ports.push(match (ip.is_empty(), host_port.is_empty()) {
                (true, true) => port.to_string(),
                (true, false) => format!("{host_port}:{port}"),
                (false, _) => format!("{ip}:{host_port}:{port}"),
            });
        }
    }
    ports.sort();
    for p in ports {
        opt("-p", p);
    }
    for d in hc.devices.iter().flatten() {
        let host_path = d.path_on_host.clone().unwrap_or_default();
        let inside = d
            .path_in_container
            .clone()
            .unwrap_or_else(|| host_path.clone());
        let perms = d.cgroup_permissions.clone().unwrap_or_else(|| "rwm".into());
        let value = if perms == "rwm" {
            format!("{host_path}:{inside}")
        } else {
            format!("{host_path}:{inside}:{perms}")
        };
        opt("--device", value);
    }
    for r in hc.device_requests.iter().flatten() {
        let ids = r.device_ids.clone().unwrap_or_default();
        if r.driver.as_deref() == Some("cdi") {
            for id in ids {
                opt("--device", id);
            }
        } else if !ids.is_empty() {
            opt("--gpus", format!("\"device={}\"", ids.join(",")));
        } else {
            match r.count {
                Some(-1) => opt("--gpus", "all".into()),
                Some(n) if n > 0 => opt("--gpus", n.to_string()),
                _ => {}
            }
        }
    }
    if let Some(mode) = hc
        .network_mode
        .as_deref()
        .filter(|m| !matches!(*m, "" | "default" | "bridge"))
    {
        opt("--network", mode.into());
    }
    if let Some(mode) = hc
        .ipc_mode
        .as_deref()
        .filter(|m| !matches!(*m, "" | "private" | "shareable"))
    {
        opt("--ipc", mode.into());
    }
    if let Some(mode) = hc.pid_mode.as_deref().filter(|m| !m.is_empty()) {
        opt("--pid", mode.into());
    }
    // The docker CLI adds `label=disable` to every --privileged container.
    let privileged = hc.privileged == Some(true);
    let security_opt = hc.security_opt.clone().map(|l| {
        l.into_iter()
            .filter(|o| !(privileged && o == "label=disable"))
            .collect::<Vec<_>>()
    });
    for (flag, list) in [
        ("--cap-add", &hc.cap_add),
        ("--cap-drop", &hc.cap_drop),
        ("--security-opt", &security_opt),
        ("--group-add", &hc.group_add),
        ("--dns", &hc.dns),
        ("--add-host", &hc.extra_hosts),
        ("--device-cgroup-rule", &hc.device_cgroup_rules),
    ] {
        for v in list.iter().flatten() {
            opt(flag, v.clone());
        }
    }
    for u in hc.ulimits.iter().flatten() {
        let (soft, hard) = (u.soft.unwrap_or(-1), u.hard.unwrap_or(-1));
        // Podman names them as the kernel does (`RLIMIT_NOFILE`).
        let name = u.name.clone().unwrap_or_default();
        let name = name
            .strip_prefix("RLIMIT_")
            .map_or(name.clone(), str::to_ascii_lowercase);
        opt("--ulimit", format!("{name}={soft}:{hard}"));
    }
    let mut sysctls: Vec<_> = hc.sysctls.iter().flatten().collect();
    sysctls.sort();
    for (k, v) in sysctls {
        opt("--sysctl", format!("{k}={v}"));
    }
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        opt("--cpus", format!("{}", n as f64 / 1e9));
    }
    if let Some(c) = hc.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        opt("--cpuset-cpus", c);
    }
    if let Some(r) = &hc.restart_policy {
        let name = r.name.map(|n| n.to_string()).unwrap_or_default();
        if !matches!(name.as_str(), "" | "no") {
            match r.maximum_retry_count.filter(|n| *n > 0) {
                Some(n) => opt("--restart", format!("{name}:{n}")),
                None => opt("--restart", name),
            }
        }
    }
    if let Some(t) = config.stop_timeout {
        opt("--stop-timeout", t.to_string());
    }
    if let Some(runtime) = hc
        .runtime
        .clone()
        .filter(|r| !matches!(r.as_str(), "" | "runc"))
    {
        opt("--runtime", runtime);
    }
    // json-file is the daemon's default: said only with options of its own.
    if let Some(log) = &hc.log_config {
        let options = log.config.as_ref().is_some_and(|c| !c.is_empty());
        if let Some(driver) = log.typ.clone().filter(|t| options || t != "json-file") {
            opt("--log-driver", driver);
        }
    }
    if let Some(w) = config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty() && Some(w) != image.working_dir.as_ref())
    {
        opt("-w", w);
    }
    if let Some(u) = config
        .user
        .clone()
        .filter(|u| !u.is_empty() && Some(u) != image.user.as_ref())
    {
        opt("-u", u);
    }
    let id = c.id.clone().unwrap_or_default();
    let network_host = hc.network_mode.as_deref() == Some("host");
    if let Some(h) = config
        .hostname
        .clone()
        .filter(|h| !network_host && !id.starts_with(h.as_str()))
    {
        opt("-h", h);
    }
    let mut words: Vec<Word> = args.into_iter().map(Word::Text).collect();
    for (on, flag) in [
        (config.tty == Some(true), "-t"),
        (config.open_stdin == Some(true), "-i"),
        (hc.privileged == Some(true), "--privileged"),
        (hc.auto_remove == Some(true), "--rm"),
        (hc.init == Some(true), "--init"),
        (hc.readonly_rootfs == Some(true), "--read-only"),
    ] {
        if on {
            words.push(Word::Text(flag.into()));
        }
    }
    let image_ref = config.image.clone().unwrap_or_default();
    words.push(Word::Text(image_ref));
    // `$` in values is literal in a container: the profile escapes it.
    let words = words
        .into_iter()
        .map(|w| match w {
            Word::Text(t) => Word::Text(t.replace('$', "$$")),
            other => other,
        })
        .collect();
    let run = RunLine {
        line: 1,
        args: words,
        assignments: Vec::new(),
        nvidia_docker: false,
    };
    let mut draft = flags::translate(&run, host, facts).map_err(Error::Usage)?;
    // Sizes and the argv are set exactly, not through their flag text.
    if let Some(shm) = hc.shm_size.filter(|s| *s > 0 && *s != DEFAULT_SHM) {
        draft.set("shm_size", shm);
        flags::drop_unused_shm(&mut draft);
    }
    if let Some(m) = hc.memory.filter(|m| *m > 0) {
        draft.set("memory", m);
        // The daemon sets twice the memory when none was asked for.
        if let Some(swap) = hc.memory_swap.filter(|s| *s != 0 && *s != 2 * m) {
            draft.set("memory_swap", swap);
        }
    }
    if let Some(log) = &hc.log_config {
        let mut options: Vec<_> = log.config.iter().flatten().collect();
        options.sort();
        for (k, v) in options {
            draft
                .table_mut("log")
                .entry("options".to_string())
                .or_insert_with(|| Value::Table(toml::map::Map::new()));
            if let Some(Value::Table(t)) = draft.table_mut("log").get_mut("options") {
                t.insert(k.clone(), Value::String(v.replace('$', "$$")));
            }
        }
    }
    // A healthcheck of the container's own, not its image's.
    if let Some(h) = config
        .healthcheck
        .as_ref()
        .filter(|h| Some(*h) != image.healthcheck.as_ref())
    {
        let test = h.test.clone().unwrap_or_default();
        let cmd = match test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                Some(Value::String(rest.join(" ").replace('$', "$$")))
            }
            Some(_) => Some(Value::Array(
                test.iter()
                    .map(|s| Value::String(s.replace('$', "$$")))
                    .collect(),
            )),
            None => None,
        };
        if let Some(cmd) = cmd {
            draft.insert("healthcheck", "cmd", cmd);
            for (key, ns) in [
                ("interval", h.interval),
                ("timeout", h.timeout),
                ("start_period", h.start_period),
            ] {
                if let Some(ns) = ns.filter(|n| *n > 0) {
                    draft.insert("healthcheck", key, crate::translate::render::duration(ns));
                }
            }
            if let Some(r) = h.retries.filter(|r| *r > 0) {
                draft.insert("healthcheck", "retries", r);
            }
        }
    }
    let escape = |v: &[String]| -> Vec<String> { v.iter().map(|s| s.replace('$', "$$")).collect() };
    let entrypoint = config.entrypoint.clone().unwrap_or_default();
    let cmd = config.cmd.clone().unwrap_or_default();
    let own_entrypoint = entrypoint != image.entrypoint.clone().unwrap_or_default();
    if own_entrypoint {
        draft.set(
            "entrypoint",
            Value::Array(escape(&entrypoint).into_iter().map(Value::String).collect()),
        );
    }
    if (own_entrypoint && !cmd.is_empty()) || cmd != image.cmd.clone().unwrap_or_default() {
        draft.set("command", command_value(&escape(&cmd)));
    } else {
        draft.remove("command");
    }
    Ok(Imported {
        line: 1,
        name,
        draft,
    })
}
