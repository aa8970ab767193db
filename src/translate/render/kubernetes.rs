//! `--format kubernetes`: a Pod, Deployment or Job (by `restart`), a Service
//! for the ports, PersistentVolumeClaims for named volumes, and a DRA
//! ResourceClaim for GPUs named by UUID.

use serde_json::{Map, Value, json};

use super::{Drops, Gpus, Input, Output, dns_label, user_labels, yaml};
use crate::spec::{MountType, RestartName};

/// The DRA device class of NVIDIA's driver, and its attribute domain.
const GPU_CLASS: &str = "gpu.nvidia.com";

/// Kubernetes expands `$(VAR)` in command, args and env values; `$$` is a `$`.
fn literal(s: &str) -> String {
    s.replace("$(", "$$(")
}

pub fn render(input: &Input<'_>) -> Output {
    let spec = input.spec;
    let name = dns_label(&spec.name);
    let mut drops = Drops::default();
    let mut docs: Vec<Value> = Vec::new();
    let selector = json!({ "app.kubernetes.io/name": name });

    let mut container = Map::new();
    container.insert("name".into(), json!(name));
    container.insert("image".into(), json!(spec.image));
    let pull = match input.profile.pull {
        crate::profile::PullPolicy::Always => "Always",
        crate::profile::PullPolicy::Never => "Never",
        crate::profile::PullPolicy::Missing => "IfNotPresent",
    };
    container.insert("imagePullPolicy".into(), json!(pull));
    if let Some(e) = &spec.entrypoint {
        container.insert(
            "command".into(),
            json!(e.iter().map(|s| literal(s)).collect::<Vec<_>>()),
        );
    }
    if let Some(c) = &spec.command {
        container.insert(
            "args".into(),
            json!(c.iter().map(|s| literal(s)).collect::<Vec<_>>()),
        );
    }
    if spec.tty || spec.open_stdin {
        container.insert("tty".into(), json!(spec.tty));
        container.insert("stdin".into(), json!(spec.open_stdin));
    }
    if let Some(w) = &spec.working_dir {
        container.insert("workingDir".into(), json!(w));
    }
    if !spec.env.is_empty() {
        let env: Vec<Value> = spec
            .env
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": literal(v) }))
            .collect();
        container.insert("env".into(), json!(env));
    }

    let mut pod = Map::new();
    let mut security = Map::new();
    if let Some(user) = &spec.user {
        let (u, g) = user
            .split_once(':')
            .map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        match (u.parse::<i64>(), g.map(str::parse::<i64>)) {
            (Ok(uid), None) => {
                security.insert("runAsUser".into(), json!(uid));
            }
            (Ok(uid), Some(Ok(gid))) => {
                security.insert("runAsUser".into(), json!(uid));
                security.insert("runAsGroup".into(), json!(gid));
            }
            _ => drops.drop(
                "user",
                format!("`{user}`: Kubernetes runs as numeric ids only"),
            ),
        }
    }
    if spec.privileged {
        security.insert("privileged".into(), json!(true));
    }
    if !spec.cap_add.is_empty() || !spec.cap_drop.is_empty() {
        let caps = |l: &Vec<String>| -> Vec<String> {
            l.iter()
                .map(|c| c.trim_start_matches("CAP_").to_string())
                .collect()
        };
        let mut c = Map::new();
        if !spec.cap_add.is_empty() {
            c.insert("add".into(), json!(caps(&spec.cap_add)));
        }
        if !spec.cap_drop.is_empty() {
            c.insert("drop".into(), json!(caps(&spec.cap_drop)));
        }
        security.insert("capabilities".into(), Value::Object(c));
    }
    for opt in &spec.security_opt {
        match opt.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                security.insert("allowPrivilegeEscalation".into(), json!(false));
            }
            _ => drops.drop(
                "security_opt",
                format!(
                    "`{}` has no pod or container security context field",
                    short(opt)
                ),
            ),
        }
    }
    if spec.read_only {
        security.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if !security.is_empty() {
        container.insert("securityContext".into(), Value::Object(security));
    }
    let mut pod_security = Map::new();
    if !spec.sysctls.is_empty() {
        let list: Vec<Value> = spec
            .sysctls
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        pod_security.insert("sysctls".into(), json!(list));
    }
    if !spec.group_add.is_empty() {
        match spec
            .group_add
            .iter()
            .map(|g| g.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(ids) => {
                pod_security.insert("supplementalGroups".into(), json!(ids));
            }
            Err(_) => drops.drop("group_add", "Kubernetes adds groups by numeric id only"),
        }
    }
    if !pod_security.is_empty() {
        pod.insert("securityContext".into(), Value::Object(pod_security));
    }
    if !spec.extra_hosts.is_empty() {
        let mut by_ip: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for entry in &spec.extra_hosts {
            let (host, ip) = entry
                .split_once('=')
                .or_else(|| entry.split_once(':'))
                .unwrap_or((entry, ""));
            if ip == "host-gateway" {
                drops.drop("extra_hosts", "`host-gateway` is Docker's");
                continue;
            }
            by_ip
                .entry(ip.trim_matches(['[', ']']).to_string())
                .or_default()
                .push(host.to_string());
        }
        let aliases: Vec<Value> = by_ip
            .into_iter()
            .map(|(ip, hosts)| json!({ "ip": ip, "hostnames": hosts }))
            .collect();
        if !aliases.is_empty() {
            pod.insert("hostAliases".into(), json!(aliases));
        }
    }
    if !spec.dns.is_empty() {
        pod.insert("dnsPolicy".into(), json!("None"));
        pod.insert("dnsConfig".into(), json!({ "nameservers": spec.dns }));
    }
    if let Some(r) = &spec.runtime {
        if dns_label(r) == *r {
            pod.insert("runtimeClassName".into(), json!(r));
        } else {
            drops.drop(
                "runtime",
                format!("`{r}` is no RuntimeClass name (a DNS label)"),
            );
        }
    }
    if let Some(p) = &spec.platform {
        let mut parts = p.split('/');
        let mut selector = Map::new();
        if let Some(os) = parts.next() {
            selector.insert("kubernetes.io/os".into(), json!(os));
        }
        if let Some(arch) = parts.next() {
            selector.insert("kubernetes.io/arch".into(), json!(arch));
        }
        if parts.next().is_some() {
            drops.drop(
                "platform",
                format!("`{p}`: nodes are selected by os and arch only"),
            );
        }
        pod.insert("nodeSelector".into(), Value::Object(selector));
    }
    if spec.init {
        drops.drop("init", "a pod has no init process option (share the process namespace or add tini to the image)");
    }
    if !spec.device_cgroup_rules.is_empty() {
        drops.drop(
            "device_cgroup_rules",
            "devices reach pods only through device plugins or DRA",
        );
    }
    if spec.memory_swap.is_some() {
        drops.drop("memory_swap", "swap is the node's setting");
    }
    if spec.log.is_some() {
        drops.drop("log", "the node's container runtime decides logging");
    }
    if !spec.ulimits.is_empty() {
        let names: Vec<&str> = spec.ulimits.iter().map(|u| u.name.as_str()).collect();
        drops.drop(
            "ulimits",
            format!(
                "{}: Kubernetes has no per-container ulimits",
                names.join(", ")
            ),
        );
    }
    if !spec.devices.is_empty() {
        let paths: Vec<&str> = spec.devices.iter().map(|d| d.host.as_str()).collect();
        drops.drop(
            "devices",
            format!(
                "{}: devices reach pods only through device plugins or DRA",
                paths.join(", ")
            ),
        );
    }
    if spec.cpuset_cpus.is_some() {
        drops.drop(
            "cpuset",
            "CPU pinning is the kubelet's CPU manager's, not the pod's",
        );
    }

    // Resources.
    let mut limits = Map::new();
    if let Some(m) = spec.memory {
        limits.insert("memory".into(), json!(m.to_string()));
    }
    if let Some(n) = spec.nano_cpus {
        limits.insert(
            "cpu".into(),
            json!(format!("{}m", (n + 999_999) / 1_000_000)),
        );
    }
    let mut claim = None;
    match &input.gpus {
        Some(Gpus::Count(n)) => {
            limits.insert("nvidia.com/gpu".into(), json!(n));
        }
        Some(Gpus::Uuids(uuids)) => {
            let claim_name = format!("{name}-gpus");
            let list: Vec<String> = uuids.iter().map(|u| format!("{u:?}")).collect();
            docs.push(json!({
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": { "name": claim_name },
                "spec": { "devices": { "requests": [{
                    "name": "gpus",
                    "exactly": {
                        "deviceClassName": GPU_CLASS,
                        "allocationMode": "ExactCount",
                        "count": uuids.len(),
                        "selectors": [{ "cel": { "expression": format!(
                            "device.attributes[\"{GPU_CLASS}\"].uuid in [{}]", list.join(", ")
                        ) } }],
                    },
                }] } },
            }));
            claim = Some(claim_name);
        }
        None => {}
    }
    let mut resources = Map::new();
    if !limits.is_empty() {
        resources.insert("limits".into(), Value::Object(limits));
    }
    if claim.is_some() {
        resources.insert("claims".into(), json!([{ "name": "gpus" }]));
        pod.insert(
            "resourceClaims".into(),
            json!([{ "name": "gpus", "resourceClaimName": claim }]),
        );
        pod.insert(
            "nodeSelector".into(),
            json!({ "kubernetes.io/hostname": input.node }),
        );
    }
    if !resources.is_empty() {
        container.insert("resources".into(), Value::Object(resources));
    }

    // Mounts.
    let mut volumes: Vec<Value> = Vec::new();
    let mut mounts: Vec<Value> = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let vname = format!("v{i}");
        let source = m.source.clone().unwrap_or_default();
        let volume = match m.kind {
            MountType::Bind => json!({ "name": vname, "hostPath": { "path": source } }),
            MountType::Tmpfs => json!({ "name": vname, "emptyDir": { "medium": "Memory" } }),
            MountType::Volume => {
                let claim = dns_label(&source);
                docs.push(json!({
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": { "name": claim },
                    // 10Gi is a placeholder: a Docker volume has no size to carry over.
                    "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "10Gi" } } },
                }));
                json!({ "name": vname, "persistentVolumeClaim": { "claimName": claim } })
            }
        };
        volumes.push(volume);
        let mut mount = json!({ "name": vname, "mountPath": m.target });
        if m.read_only {
            mount["readOnly"] = json!(true);
        }
        mounts.push(mount);
    }
    if let Some(size) = spec.shm_size {
        volumes.push(json!({ "name": "shm", "emptyDir": { "medium": "Memory", "sizeLimit": size.to_string() } }));
        mounts.push(json!({ "name": "shm", "mountPath": "/dev/shm" }));
    }
    if !mounts.is_empty() {
        container.insert("volumeMounts".into(), json!(mounts));
        pod.insert("volumes".into(), json!(volumes));
    }

    // Ports and the Service.
    let mut service_ports: Vec<Value> = Vec::new();
    let mut container_ports: Vec<Value> = Vec::new();
    for p in &spec.ports {
        let protocol = p.protocol.to_string().to_uppercase();
        if let Some(ip) = p
            .host_ip
            .as_deref()
            .filter(|ip| !matches!(*ip, "" | "0.0.0.0" | "::"))
        {
            drops.drop(
                "ports",
                format!(
                    "{}/{} is bound to {ip} only; a Service is reachable in the whole cluster",
                    p.container_port, p.protocol
                ),
            );
            continue;
        }
        let port_name = format!("{}-{}", p.protocol, p.container_port);
        let entry =
            json!({ "containerPort": p.container_port, "protocol": protocol, "name": port_name });
        if !container_ports.contains(&entry) {
            container_ports.push(entry);
            service_ports.push(json!({ "name": port_name, "port": p.container_port, "targetPort": p.container_port, "protocol": protocol }));
        }
    }
    if !container_ports.is_empty() {
        container.insert("ports".into(), json!(container_ports));
    }

    // Health.
    if let Some(h) = &spec.healthcheck {
        let command: Option<Vec<String>> = match h.test.split_first() {
            Some((kind, rest)) if kind == "CMD" => Some(rest.to_vec()),
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
            }
            _ => None,
        };
        if let Some(command) = command {
            let mut probe = json!({ "exec": { "command": command } });
            let secs = |ns: Option<i64>| ns.map(|n| ((n + 999_999_999) / 1_000_000_000).max(1));
            if let Some(s) = secs(h.interval_ns) {
                probe["periodSeconds"] = json!(s);
            }
            if let Some(s) = secs(h.timeout_ns) {
                probe["timeoutSeconds"] = json!(s);
            }
            if let Some(s) = secs(h.start_period_ns) {
                probe["initialDelaySeconds"] = json!(s);
            }
            if let Some(r) = h.retries {
                probe["failureThreshold"] = json!(r);
            }
            container.insert("livenessProbe".into(), probe);
        }
    }

    // Namespaces and the rest of the pod.
    match spec.network_mode.as_deref() {
        None | Some("bridge") | Some("default") => {}
        Some("host") => {
            pod.insert("hostNetwork".into(), json!(true));
        }
        Some(other) => drops.drop(
            "network",
            format!("`{other}`: a pod is on the cluster's network"),
        ),
    }
    match spec.ipc_mode.as_deref() {
        None | Some("private") | Some("shareable") => {}
        Some("host") => {
            pod.insert("hostIPC".into(), json!(true));
        }
        Some(other) => drops.drop("ipc", format!("`{other}` has no pod field")),
    }
    match spec.pid_mode.as_deref() {
        None => {}
        Some("host") => {
            pod.insert("hostPID".into(), json!(true));
        }
        Some(other) => drops.drop("pid", format!("`{other}` has no pod field")),
    }
    if let Some(h) = &spec.hostname {
        if dns_label(h) == *h {
            pod.insert("hostname".into(), json!(h));
        } else {
            drops.drop(
                "hostname",
                format!("`{h}`: a pod's hostname is one DNS label (lower case, no dots)"),
            );
        }
    }
    if let Some(t) = spec.stop_timeout {
        pod.insert("terminationGracePeriodSeconds".into(), json!(t));
    }
    pod.insert("containers".into(), json!([Value::Object(container)]));

    let annotations: Map<String, Value> = user_labels(spec)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut metadata = json!({ "name": name, "labels": selector });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    let restart = spec.restart.as_ref().map_or(RestartName::No, |r| r.name);
    let deadline = super::lease_limit(
        input.profile,
        &mut drops,
        matches!(restart, RestartName::Always | RestartName::UnlessStopped).then_some(
            "a Deployment's pods are replaced, never ended: activeDeadlineSeconds needs a Pod or Job (restart \"no\" or \"on-failure\")",
        ),
        "Kubernetes",
    );
    let workload = match restart {
        RestartName::Always | RestartName::UnlessStopped => {
            pod.insert("restartPolicy".into(), json!("Always"));
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": metadata,
                // Recreate: the old pod lets go of its GPUs before the new one starts.
                "spec": { "replicas": 1, "strategy": { "type": "Recreate" },
                          "selector": { "matchLabels": selector },
                          "template": { "metadata": { "labels": selector }, "spec": Value::Object(pod) } },
            })
        }
        RestartName::OnFailure => {
            pod.insert("restartPolicy".into(), json!("OnFailure"));
            let mut job = json!({ "template": { "metadata": { "labels": selector }, "spec": Value::Object(pod) } });
            if let Some(n) = spec.restart.as_ref().and_then(|r| r.max_retries) {
                job["backoffLimit"] = json!(n);
            }
            if let Some(s) = deadline {
                job["activeDeadlineSeconds"] = json!(s);
            }
            json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job })
        }
        RestartName::No => {
            pod.insert("restartPolicy".into(), json!("Never"));
            if let Some(s) = deadline {
                pod.insert("activeDeadlineSeconds".into(), json!(s));
            }
            json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": Value::Object(pod) })
        }
    };
    docs.push(workload);
    if !service_ports.is_empty() {
        docs.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "name": name },
            "spec": { "selector": selector, "ports": service_ports },
        }));
    }
    let mut text = drops.comments("#");
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        text.push_str(&yaml(doc));
    }
    Output {
        files: vec![(format!("{name}.yaml"), text)],
        dropped: drops.0,
        invalid: Vec::new(),
    }
}

/// A security option as shown: a seccomp profile's JSON is not quoted whole.
fn short(opt: &str) -> &str {
    if opt.starts_with("seccomp={") {
        "seccomp=<profile>"
    } else {
        opt
    }
}
