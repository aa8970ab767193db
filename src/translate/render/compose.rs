//! `--format compose`: a compose file whose one service is the spec; GPUs
//! as `deploy.resources.reservations.devices`.

use serde_json::{Map, Value, json};

use super::{Drops, Gpus, Input, Output, duration, user_labels, yaml};
use crate::spec::MountType;

/// Compose reads `$` in values as interpolation; `$$` is a `$`.
fn literal(s: &str) -> String {
    s.replace('$', "$$")
}

fn literals(l: &[String]) -> Vec<String> {
    l.iter().map(|s| literal(s)).collect()
}

pub fn render(input: &Input<'_>) -> Output {
    let spec = input.spec;
    let mut drops = Drops::default();
    // Compose keeps a container up; it has no lease (`launch up` does).
    super::lease_limit(
        input.profile,
        &mut drops,
        Some("compose has no time limit for a service"),
        "compose",
    );
    let mut s = Map::new();
    s.insert("image".into(), json!(spec.image));
    s.insert("container_name".into(), json!(spec.name));
    // `missing` is compose's default too (older compose spells it differently).
    match input.profile.pull {
        crate::profile::PullPolicy::Always => s.insert("pull_policy".into(), json!("always")),
        crate::profile::PullPolicy::Never => s.insert("pull_policy".into(), json!("never")),
        crate::profile::PullPolicy::Missing => None,
    };
    if let Some(e) = &spec.entrypoint {
        s.insert("entrypoint".into(), json!(literals(e)));
    }
    if let Some(c) = &spec.command {
        s.insert("command".into(), json!(literals(c)));
    }
    if spec.tty {
        s.insert("tty".into(), json!(true));
    }
    if spec.open_stdin {
        s.insert("stdin_open".into(), json!(true));
    }
    for (key, value) in [
        ("working_dir", &spec.working_dir),
        ("user", &spec.user),
        ("hostname", &spec.hostname),
        ("ipc", &spec.ipc_mode),
        ("pid", &spec.pid_mode),
        ("cpuset", &spec.cpuset_cpus),
    ] {
        if let Some(v) = value {
            s.insert(key.into(), json!(literal(v)));
        }
    }
    if !spec.env.is_empty() {
        let env: Map<String, Value> = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), json!(literal(v))))
            .collect();
        s.insert("environment".into(), Value::Object(env));
    }
    let labels: Map<String, Value> = user_labels(spec)
        .map(|(k, v)| (k.clone(), json!(literal(v))))
        .collect();
    if !labels.is_empty() {
        s.insert("labels".into(), Value::Object(labels));
    }
    if !spec.devices.is_empty() {
        let devices: Vec<String> = spec
            .devices
            .iter()
            .map(|d| format!("{}:{}:{}", d.host, d.container, d.permissions))
            .collect();
        s.insert("devices".into(), json!(devices));
    }
    let mut named: Map<String, Value> = Map::new();
    if !spec.mounts.is_empty() {
        let mounts: Vec<Value> = spec
            .mounts
            .iter()
            .map(|m| {
                let mut v = json!({ "type": m.kind.to_string(), "target": m.target });
                if let Some(src) = &m.source {
                    v["source"] = json!(src);
                    if m.kind == MountType::Volume {
                        // The volume of that very name, not one prefixed with the project's.
                        named.insert(src.clone(), json!({ "name": src }));
                    }
                }
                if m.read_only {
                    v["read_only"] = json!(true);
                }
                v
            })
            .collect();
        s.insert("volumes".into(), json!(mounts));
    }
    if !spec.ports.is_empty() {
        let ports: Vec<Value> = spec
            .ports
            .iter()
            // The short syntax: every compose version reads its host IP.
            .map(|p| json!(p.short_syntax()))
            .collect();
        s.insert("ports".into(), json!(ports));
    }
    if let Some(size) = spec.shm_size {
        s.insert("shm_size".into(), json!(size.to_string()));
    }
    let mut networks = Map::new();
    match spec.network_mode.as_deref() {
        None => {}
        Some(mode @ ("bridge" | "host" | "none")) => {
            s.insert("network_mode".into(), json!(mode));
        }
        Some(mode) if mode.starts_with("container:") => {
            s.insert("network_mode".into(), json!(mode));
        }
        Some(name) => {
            s.insert("networks".into(), json!([name]));
            networks.insert(name.into(), json!({ "external": true }));
        }
    }
    if spec.privileged {
        s.insert("privileged".into(), json!(true));
    }
    for (key, list) in [("cap_add", &spec.cap_add), ("cap_drop", &spec.cap_drop)] {
        if !list.is_empty() {
            s.insert(key.into(), json!(list));
        }
    }
    if !spec.security_opt.is_empty() {
        let mut opts = Vec::new();
        for o in &spec.security_opt {
            if o.starts_with("seccomp={") {
                drops.drop(
                    "security_opt",
                    "a seccomp profile's JSON: compose reads it from a file",
                );
            } else {
                opts.push(o.clone());
            }
        }
        if !opts.is_empty() {
            s.insert("security_opt".into(), json!(opts));
        }
    }
    if !spec.ulimits.is_empty() {
        let u: Map<String, Value> = spec
            .ulimits
            .iter()
            .map(|u| (u.name.clone(), json!({ "soft": u.soft, "hard": u.hard })))
            .collect();
        s.insert("ulimits".into(), Value::Object(u));
    }
    if let Some(m) = spec.memory {
        s.insert("mem_limit".into(), json!(m));
    }
    if let Some(n) = spec.nano_cpus {
        s.insert("cpus".into(), json!(n as f64 / 1e9));
    }
    if let Some(r) = &spec.restart {
        let policy = match r.max_retries {
            Some(n) => format!("{}:{n}", r.name),
            None => r.name.to_string(),
        };
        s.insert("restart".into(), json!(policy));
    }
    if let Some(t) = spec.stop_timeout {
        s.insert("stop_grace_period".into(), json!(format!("{t}s")));
    }
    if let Some(h) = &spec.healthcheck {
        let mut hc = Map::new();
        if h.test.first().map(String::as_str) == Some("NONE") {
            hc.insert("disable".into(), json!(true));
        } else {
            hc.insert("test".into(), json!(literals(&h.test)));
        }
        for (key, ns) in [
            ("interval", h.interval_ns),
            ("timeout", h.timeout_ns),
            ("start_period", h.start_period_ns),
        ] {
            if let Some(ns) = ns {
                hc.insert(key.into(), json!(duration(ns)));
            }
        }
        if let Some(r) = h.retries {
            hc.insert("retries".into(), json!(r));
        }
        s.insert("healthcheck".into(), Value::Object(hc));
    }
    if spec.init {
        s.insert("init".into(), json!(true));
    }
    if spec.read_only {
        s.insert("read_only".into(), json!(true));
    }
    for (key, list) in [
        ("group_add", &spec.group_add),
        ("extra_hosts", &spec.extra_hosts),
        ("dns", &spec.dns),
        ("device_cgroup_rules", &spec.device_cgroup_rules),
    ] {
        if !list.is_empty() {
            s.insert(key.into(), json!(list));
        }
    }
    if !spec.sysctls.is_empty() {
        s.insert("sysctls".into(), json!(spec.sysctls));
    }
    for (key, value) in [("runtime", &spec.runtime), ("platform", &spec.platform)] {
        if let Some(v) = value {
            s.insert(key.into(), json!(v));
        }
    }
    if let Some(swap) = spec.memory_swap {
        s.insert("memswap_limit".into(), json!(swap));
    }
    if let Some(log) = &spec.log {
        let mut l = Map::new();
        if let Some(d) = &log.driver {
            l.insert("driver".into(), json!(d));
        }
        if !log.options.is_empty() {
            l.insert("options".into(), json!(log.options));
        }
        s.insert("logging".into(), Value::Object(l));
    }
    if let Some(gpus) = &input.gpus {
        let caps = input
            .profile
            .gpus
            .as_ref()
            .map(|g| g.capabilities.clone())
            .unwrap_or_default();
        let mut caps: Vec<String> = caps;
        if !caps.iter().any(|c| c == "gpu") {
            caps.insert(0, "gpu".into());
        }
        let mut device = json!({ "driver": "nvidia", "capabilities": caps });
        match gpus {
            Gpus::Count(n) => device["count"] = json!(n),
            Gpus::Uuids(u) => device["device_ids"] = json!(u),
        }
        s.insert(
            "deploy".into(),
            json!({ "resources": { "reservations": { "devices": [device] } } }),
        );
    }
    let mut file = json!({ "services": { spec.name.clone(): Value::Object(s) } });
    if !named.is_empty() {
        file["volumes"] = Value::Object(named);
    }
    if !networks.is_empty() {
        file["networks"] = Value::Object(networks);
    }
    let text = format!("{}{}", drops.comments("#"), yaml(&file));
    Output {
        files: vec![("compose.yaml".into(), text)],
        dropped: drops.0,
        invalid: Vec::new(),
    }
}
