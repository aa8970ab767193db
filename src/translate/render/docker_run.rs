//! `--format docker-run`: the `docker run` line that makes the container
//! the spec describes, for a person to read or paste. Unlike the other
//! targets it loses nothing, so it has no `Dropped` entries.

use crate::spec::ContainerSpec;

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
        let spec = crate::spec::ContainerSpec {
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
