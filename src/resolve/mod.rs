//! resolve: Profile + a snapshot of the host → ContainerSpec. Pure: every fact
//! about the host comes in through `Host`; all GPU decisions happen here.
//! `on_host` is the one door with effects: it checks the host paths a
//! profile names, then calls [`resolve`] with the run's facts. Resolve
//! depends on `host`, never the reverse.

use crate::host::gpu::driver::PERSISTENCED_SOCKET;
use crate::host::gpu::select::{self, Held, SelectError};
use crate::host::gpu::{Gpu, GpuHost};
pub use crate::host::{HostDevice, ToolkitFacts};
use crate::profile::{Diagnostic, GpuMode, MountKind, Profile, Protocol, User};
use crate::spec::{self, ContainerSpec, DeviceRequest, GpuAssignment};

mod on_host;
pub use on_host::{check_paths, resolve_profile, resolve_reserving};

/// Where the driver's files go in `devices` mode (nvidia-docker 1.0's volume).
pub const NVIDIA_LIB: &str = "/usr/local/nvidia/lib64";
pub const NVIDIA_BIN: &str = "/usr/local/nvidia/bin";
/// PATH when the profile sets none: the image's usual PATH can't be known
/// here, so use the standard one with the NVIDIA and CUDA folders first.
const DEFAULT_PATH: &str = "/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What resolve knows of the host, for one profile.
#[derive(Debug)]
pub struct Host<'a> {
    /// The GPU snapshot; `None` when the profile asks for no GPU.
    pub gpus: Option<&'a GpuHost>,
    pub toolkit: &'a ToolkitFacts,
    /// GPUs held by other launch containers.
    pub held: Held,
    /// The GPUs this profile's container holds now, if it exists.
    pub previous: Option<Vec<String>>,
}

/// The profile's `group_add`, after the owner's groups for `user = "owner"`;
/// each group once.
fn group_add(p: &Profile) -> Vec<String> {
    let mut groups: Vec<String> = match p.user {
        Some(User::Owner) => p.owner.supplementary().iter().map(u32::to_string).collect(),
        _ => Vec::new(),
    };
    for g in &p.run.group_add {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    groups
}

/// The spec, and how the GPU mode was chosen (for `render`).
#[derive(Debug)]
pub struct Resolved {
    pub spec: ContainerSpec,
    pub mode: Option<ModeChoice>,
}

#[derive(Debug, Clone)]
pub struct ModeChoice {
    pub mode: GpuMode,
    pub why: String,
}

#[derive(Debug)]
pub enum ResolveError {
    /// Something the profile says does not fit this host; points into it.
    Profile(Vec<Diagnostic>),
    /// Not enough free GPUs (exit 3).
    NotEnoughFree(String),
    /// The host lacks something the chosen mode needs.
    Host(String),
}

pub fn resolve(profile: &Profile, host: &Host<'_>) -> Result<Resolved, ResolveError> {
    let mut spec = base_spec(profile);
    let Some(request) = &profile.gpus else {
        return Ok(Resolved { spec, mode: None });
    };
    let Some(gpus) = host.gpus else {
        return Err(ResolveError::Host(
            "the profile asks for GPUs, but no GPU snapshot was taken".into(),
        ));
    };
    let chosen = select::select(
        &request.selection,
        &request.span,
        gpus,
        &host.held,
        host.previous.as_deref(),
    )
    .map_err(|e| match e {
        SelectError::Profile {
            span,
            message,
            help,
        } => {
            let d = Diagnostic::new(span, message);
            ResolveError::Profile(vec![match help {
                Some(h) => d.help(h),
                None => d,
            }])
        }
        SelectError::NotEnoughFree { report, .. } => ResolveError::NotEnoughFree(report),
    })?;
    let choice = choose_mode(request.mode, host.toolkit);
    let uuids: Vec<String> = chosen.iter().map(|g| g.uuid.clone()).collect();
    let caps = request.capabilities.clone();

    // What the NVIDIA Container Toolkit reads, in every mode.
    spec.env
        .insert("NVIDIA_VISIBLE_DEVICES".into(), uuids.join(","));
    spec.env
        .insert("NVIDIA_DRIVER_CAPABILITIES".into(), caps.join(","));
    match choice.mode {
        GpuMode::Toolkit | GpuMode::Auto => spec.device_requests.push(DeviceRequest {
            driver: String::new(),
            device_ids: uuids.clone(),
            capabilities: vec![
                std::iter::once("gpu".to_string())
                    .chain(caps.iter().cloned())
                    .collect(),
            ],
        }),
        GpuMode::Cdi => spec.device_requests.push(DeviceRequest {
            driver: "cdi".into(),
            device_ids: uuids
                .iter()
                .map(|u| format!("nvidia.com/gpu={u}"))
                .collect(),
            capabilities: Vec::new(),
        }),
        GpuMode::Devices => inject_devices(&mut spec, gpus, &chosen, &caps)?,
    }
    if choice.mode != GpuMode::Devices {
        list_device_nodes(&mut spec, gpus, &chosen);
    }
    // Stable numbering: CUDA's default order (fastest first) differs from
    // nvidia-smi's; the profile may set its own.
    let (key, value) = spec::CUDA_DEVICE_ORDER;
    spec.env.entry(key.into()).or_insert_with(|| value.into());
    spec.schema = spec::SCHEMA;
    spec.gpu = Some(GpuAssignment {
        mode: match choice.mode {
            GpuMode::Cdi => spec::InjectionMode::Cdi,
            GpuMode::Devices => spec::InjectionMode::Devices,
            GpuMode::Toolkit | GpuMode::Auto => spec::InjectionMode::Toolkit,
        },
        uuids,
        capabilities: caps,
        driver_version: gpus.driver_version.clone(),
    });
    sort(&mut spec);
    Ok(Resolved {
        spec,
        mode: Some(choice),
    })
}

pub fn mode_name(mode: GpuMode) -> &'static str {
    match mode {
        GpuMode::Auto => "auto",
        GpuMode::Toolkit => "toolkit",
        GpuMode::Cdi => "cdi",
        GpuMode::Devices => "devices",
    }
}

/// `auto` picks what the host supports, best first (docs/architecture.md, GPU modes).
fn choose_mode(requested: GpuMode, facts: &ToolkitFacts) -> ModeChoice {
    let choice = |mode, why: &str| ModeChoice {
        mode,
        why: why.to_string(),
    };
    if requested != GpuMode::Auto {
        return choice(requested, "set by `mode` in the profile");
    }
    let podman = facts.engine.as_ref().filter(|e| e.is_podman());
    if let Some(podman) = podman {
        // Podman drops DeviceRequests other than CDI's, and CDI's before 5.4.
        if let (true, Some(spec)) = (podman.at_least(5, 4), &facts.nvidia_cdi_spec) {
            return choice(
                GpuMode::Cdi,
                &format!(
                    "auto: {podman} reads CDI and {} defines nvidia.com/gpu",
                    spec.display()
                ),
            );
        }
        return choice(
            GpuMode::Devices,
            &format!(
                "auto: {podman} drops toolkit requests{}; injecting device nodes and driver files directly",
                if podman.at_least(5, 4) {
                    ""
                } else {
                    " and CDI requests before 5.4"
                }
            ),
        );
    }
    if facts.runtimes.iter().any(|r| r == "nvidia") {
        return choice(
            GpuMode::Toolkit,
            "auto: the engine has the `nvidia` runtime (NVIDIA Container Toolkit)",
        );
    }
    if let Some(hook) = &facts.toolkit_hook {
        return choice(
            GpuMode::Toolkit,
            &format!(
                "auto: the NVIDIA Container Toolkit's hook is installed ({})",
                hook.display()
            ),
        );
    }
    if let (true, Some(spec)) = (facts.engine_cdi, &facts.nvidia_cdi_spec) {
        return choice(
            GpuMode::Cdi,
            &format!(
                "auto: the engine supports CDI and {} defines nvidia.com/gpu",
                spec.display()
            ),
        );
    }
    let engine = if facts.engine_reachable {
        ""
    } else {
        " (no engine answered, so its runtimes are unknown)"
    };
    choice(
        GpuMode::Devices,
        &format!(
            "auto: no NVIDIA Container Toolkit and no CDI spec{engine}; injecting device nodes and driver files directly"
        ),
    )
}

/// `toolkit` and `cdi` modes: the GPUs' and the shared nodes also go in
/// `devices`, so Docker's own device rules keep them after a `systemctl
/// daemon-reload` (NVIDIA's documented workaround; docs/architecture.md,
/// GPU health). A node the host lacks is left to the runtime.
fn list_device_nodes(spec: &mut ContainerSpec, host: &GpuHost, chosen: &[&Gpu]) {
    for minor in chosen.iter().filter_map(|g| g.minor) {
        if let Some(node) = host.nodes.gpus.get(&minor) {
            spec.devices
                .push(device(node, &format!("/dev/nvidia{minor}")));
        }
    }
    for (name, path) in &host.nodes.shared {
        spec.devices.push(device(path, &format!("/dev/{name}")));
    }
}

/// `devices` mode: what the seed's scripts did by hand, from the snapshot.
fn inject_devices(
    spec: &mut ContainerSpec,
    host: &GpuHost,
    chosen: &[&Gpu],
    caps: &[String],
) -> Result<(), ResolveError> {
    for gpu in chosen {
        let minor = gpu.minor.ok_or_else(|| {
            ResolveError::Host(format!(
                "GPU {} ({}): the driver reports no minor number, so its device node is unknown",
                gpu.index, gpu.uuid
            ))
        })?;
        let node = host.nodes.gpus.get(&minor).ok_or_else(|| {
            ResolveError::Host(format!(
                "device node /dev/nvidia{minor} of GPU {} ({}) does not exist (looked in --dev-root)",
                gpu.index, gpu.uuid
            ))
        })?;
        spec.devices
            .push(device(node, &format!("/dev/nvidia{minor}")));
    }
    for (name, path) in &host.nodes.shared {
        spec.devices.push(device(path, &format!("/dev/{name}")));
    }
    let files: Vec<_> = host.driver_files.for_capabilities(caps).collect();
    if !files.iter().any(|f| f.name.starts_with("libcuda.so."))
        && caps.iter().any(|c| c == "compute" || c == "all")
    {
        return Err(ResolveError::Host(format!(
            "no libcuda.so.{} found under --driver-root (its etc/ld.so.cache and library folders): the driver's libraries are needed in devices mode",
            host.driver_version
        )));
    }
    for file in files {
        let dir = if file.soname.is_some() || file.name.contains(".so") {
            NVIDIA_LIB
        } else {
            NVIDIA_BIN
        };
        let source = file.path.display().to_string();
        spec.mounts
            .push(read_only_bind(&source, &format!("{dir}/{}", file.name)));
        if let Some(soname) = file.soname.as_ref().filter(|s| **s != file.name) {
            spec.mounts
                .push(read_only_bind(&source, &format!("{dir}/{soname}")));
        }
    }
    if let Some(socket) = &host.driver_files.persistenced_socket {
        spec.mounts.push(read_only_bind(
            &socket.display().to_string(),
            PERSISTENCED_SOCKET,
        ));
    }
    let prepend = |spec: &mut ContainerSpec, key: &str, dir: &str, default: &str| {
        let value = match spec.env.get(key) {
            Some(old) if !old.is_empty() => format!("{dir}:{old}"),
            _ => default.to_string(),
        };
        spec.env.insert(key.into(), value);
    };
    prepend(spec, "LD_LIBRARY_PATH", NVIDIA_LIB, NVIDIA_LIB);
    prepend(spec, "PATH", NVIDIA_BIN, DEFAULT_PATH);
    Ok(())
}

fn device(host: &std::path::Path, container: &str) -> spec::Device {
    spec::Device {
        host: host.display().to_string(),
        container: container.into(),
        permissions: "rwm".into(),
    }
}

fn read_only_bind(source: &str, target: &str) -> spec::Mount {
    spec::Mount {
        kind: spec::MountType::Bind,
        source: Some(source.into()),
        target: target.into(),
        read_only: true,
    }
}

/// Who the container runs as (docs/architecture.md, the owner boundary):
/// `owner` is the owner's numbers (no passwd entry is needed in the image),
/// and a bare uid gets a group, since Docker runs one that the image's passwd
/// lacks as gid 0: the owner's primary group, or, where that is root's
/// (a root-owned profile), the group of the uid's own number.
fn user(p: &Profile, u: &User) -> String {
    match u {
        User::Owner => format!("{}:{}", p.owner.uid, p.owner.gid()),
        _ => match u.bare_uid() {
            Some(uid) if uid != 0 => {
                let gid = match p.owner.gid() {
                    0 => uid,
                    gid => gid,
                };
                format!("{uid}:{gid}")
            }
            _ => u.to_string(),
        },
    }
}

/// The spec of everything but the GPUs.
pub fn base_spec(p: &Profile) -> ContainerSpec {
    let mut spec = ContainerSpec {
        schema: spec::SCHEMA,
        name: p.name.clone(),
        image: p.image.clone(),
        entrypoint: p.entrypoint.clone(),
        command: p.command.clone(),
        tty: p.interactive,
        open_stdin: p.interactive,
        working_dir: p.workdir.clone(),
        user: p.user.as_ref().map(|u| user(p, u)),
        hostname: p.hostname.clone(),
        env: p.env.clone(),
        labels: p.labels.clone(),
        devices: p
            .devices
            .iter()
            .map(|d| spec::Device {
                host: d.host.clone(),
                container: d.container.clone(),
                permissions: d.permissions.clone(),
            })
            .collect(),
        mounts: p
            .volumes
            .iter()
            .map(|m| spec::Mount {
                kind: match m.kind {
                    MountKind::Bind => spec::MountType::Bind,
                    MountKind::Volume => spec::MountType::Volume,
                    MountKind::Tmpfs => spec::MountType::Tmpfs,
                },
                source: m.source.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
            })
            .collect(),
        ports: p
            .ports
            .iter()
            .map(|b| spec::Port {
                container_port: b.container_port,
                protocol: match b.protocol {
                    Protocol::Tcp => spec::Protocol::Tcp,
                    Protocol::Udp => spec::Protocol::Udp,
                    Protocol::Sctp => spec::Protocol::Sctp,
                },
                host_ip: b.host_ip.map(|ip| ip.to_string()),
                host_port: b.host_port,
            })
            .collect(),
        shm_size: p.shm_size,
        network_mode: p.network.as_ref().map(|n| n.to_string()),
        ipc_mode: p.ipc.as_ref().map(|i| i.to_string()),
        // Docker has no "private" pid mode: it is the default, sent as nothing.
        pid_mode: p.pid.as_ref().and_then(crate::profile::Pid::mode),
        privileged: p.privileged,
        cap_add: p.cap_add.clone(),
        cap_drop: p.cap_drop.clone(),
        security_opt: p.security_opt.clone(),
        ulimits: p
            .ulimits
            .iter()
            .map(|u| spec::Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        memory: p.memory,
        nano_cpus: p.nano_cpus,
        cpuset_cpus: p.cpuset.clone(),
        restart: p.restart.as_ref().map(|r| spec::Restart {
            name: r.name,
            max_retries: r.max_retries,
        }),
        stop_timeout: p.stop_timeout,
        healthcheck: p.healthcheck.as_ref().map(|h| spec::Healthcheck {
            test: h.test.clone(),
            interval_ns: h.interval_ns,
            timeout_ns: h.timeout_ns,
            retries: h.retries,
            start_period_ns: h.start_period_ns,
        }),
        device_requests: Vec::new(),
        gpu: None,
        init: p.run.init,
        group_add: group_add(p),
        sysctls: p.run.sysctls.clone(),
        extra_hosts: p.run.extra_hosts.clone(),
        dns: p.run.dns.clone(),
        device_cgroup_rules: p.run.device_cgroup_rules.clone(),
        runtime: p.run.runtime.clone(),
        read_only: p.run.read_only,
        memory_swap: p.run.memory_swap,
        platform: p.run.platform.clone(),
        log: p.run.log.as_ref().map(|l| spec::LogConfig {
            driver: l.driver.clone(),
            options: l.options.clone(),
        }),
    };
    // Without `gpus`, no GPU: an image's `ENV NVIDIA_VISIBLE_DEVICES=all`
    // (every CUDA image has it) would otherwise give every GPU to the
    // container on a host whose default runtime is `nvidia`. `gpus` sets
    // the real value over this one.
    let (key, value) = spec::NO_GPUS;
    spec.env.insert(key.into(), value.into());
    sort(&mut spec);
    spec
}

/// Order that does not depend on how the profile was written.
fn sort(spec: &mut ContainerSpec) {
    spec.devices.sort_by(|a, b| a.container.cmp(&b.container));
    spec.devices.dedup_by(|a, b| a.container == b.container);
    spec.mounts.sort_by(|a, b| a.target.cmp(&b.target));
    spec.ports.sort();
    for list in [
        &mut spec.cap_add,
        &mut spec.cap_drop,
        &mut spec.security_opt,
    ] {
        list.sort();
        list.dedup();
    }
    spec.ulimits.sort();
}

/// DRM (`/dev/dri/*`): a GPU's only when the profile asks for graphics.
const DRM_MAJOR: u32 = 226;

/// Host checks of the user's `devices`: a profile grants only what it says.
/// Docker follows a symlink and expands a folder into every device under
/// it, so what matters is what the path is on the host: a folder, or a GPU
/// device however it is named (`gpu_majors`: NVIDIA's character majors), is
/// an error, and so is a path that is no device at all.
pub fn check_devices(
    profile: &Profile,
    kind: impl Fn(&std::path::Path) -> HostDevice,
    gpu_majors: &[u32],
) -> Vec<Diagnostic> {
    let graphics = profile.gpus.as_ref().is_some_and(|g| {
        g.capabilities
            .iter()
            .any(|c| matches!(c.as_str(), "graphics" | "display" | "all"))
    });
    let gpu = "GPU access comes from `gpus` alone";
    profile
        .devices
        .iter()
        .filter_map(|d| {
            let host = &d.host;
            let problem = match kind(std::path::Path::new(host)) {
                HostDevice::Char { major } if gpu_majors.contains(&major) => {
                    format!("device {host} is an NVIDIA GPU device (major {major}) on this host: {gpu}")
                }
                HostDevice::Char { major } if graphics && major == DRM_MAJOR => {
                    format!("device {host} is a GPU's DRM device on this host: {gpu}")
                }
                HostDevice::Char { .. } | HostDevice::Block => return None,
                HostDevice::Folder => format!(
                    "device {host} is a folder: Docker would pass every device under it; name each device"
                ),
                HostDevice::Missing => format!("device {host} does not exist on this host"),
                HostDevice::Other => format!("{host} is not a device"),
            };
            Some(Diagnostic::new(d.span.clone(), problem))
        })
        .collect()
}

/// Host checks that need the host's filesystem: bind sources must exist
/// unless the volume says `create = true`. `exists` is the host's answer.
pub fn check_bind_sources(
    profile: &Profile,
    exists: impl Fn(&std::path::Path) -> bool,
) -> Vec<Diagnostic> {
    profile
        .volumes
        .iter()
        .filter(|m| m.kind == MountKind::Bind && !m.create)
        .filter_map(|m| {
            let source = m.source.as_deref()?;
            (!exists(std::path::Path::new(source))).then(|| {
                Diagnostic::new(m.span.clone(), format!("bind source {source} does not exist"))
                    .help("Docker would silently create it as an empty root-owned folder; create it, fix the path, or use { source = …, target = …, create = true }")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn auto(facts: ToolkitFacts) -> ModeChoice {
        choose_mode(GpuMode::Auto, &facts)
    }

    fn reachable() -> ToolkitFacts {
        ToolkitFacts {
            engine_reachable: true,
            ..Default::default()
        }
    }

    #[test]
    fn user_owner_is_the_owner_s_numbers_with_their_other_groups() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("own.toml");
        std::fs::write(&path, "image = \"busybox\"\nuser = \"owner\"\n").expect("write");
        let mut profile = crate::profile::load(&path).expect("a valid profile");
        profile.owner = crate::owner::Owner::known(
            1000,
            1000,
            Some("alice".into()),
            None,
            vec![1000, 44, 27, 44],
        );
        let spec = base_spec(&profile);
        assert_eq!(spec.user.as_deref(), Some("1000:1000"));
        assert_eq!(spec.group_add, ["27", "44"]);
        // Another user leaves group_add empty, so the hash of such a spec is as before.
        profile.user = Some(User::parse("1000:1000").expect("a user"));
        assert!(base_spec(&profile).group_add.is_empty());
    }

    #[test]
    fn a_mode_set_in_the_profile_is_kept() {
        let facts = ToolkitFacts {
            runtimes: vec!["nvidia".into()],
            ..reachable()
        };
        let choice = choose_mode(GpuMode::Devices, &facts);
        assert_eq!(choice.mode, GpuMode::Devices);
        assert_eq!(choice.why, "set by `mode` in the profile");
    }

    #[test]
    fn auto_prefers_the_toolkit_when_the_engine_has_the_nvidia_runtime() {
        let choice = auto(ToolkitFacts {
            runtimes: vec!["runc".into(), "nvidia".into()],
            engine_cdi: true,
            nvidia_cdi_spec: Some("/etc/cdi/nvidia.yaml".into()),
            ..reachable()
        });
        assert_eq!(choice.mode, GpuMode::Toolkit);
        assert!(choice.why.contains("`nvidia` runtime"), "{}", choice.why);
    }

    #[test]
    fn auto_takes_the_toolkit_when_its_hook_is_installed() {
        let choice = auto(ToolkitFacts {
            toolkit_hook: Some("/usr/bin/nvidia-container-runtime-hook".into()),
            ..reachable()
        });
        assert_eq!(choice.mode, GpuMode::Toolkit);
        assert!(
            choice
                .why
                .contains("/usr/bin/nvidia-container-runtime-hook"),
            "{}",
            choice.why
        );
    }

    #[test]
    fn auto_takes_cdi_only_when_the_engine_reads_cdi_and_a_spec_exists() {
        let spec = Some(PathBuf::from("/etc/cdi/nvidia.yaml"));
        let choice = auto(ToolkitFacts {
            engine_cdi: true,
            nvidia_cdi_spec: spec.clone(),
            ..reachable()
        });
        assert_eq!(choice.mode, GpuMode::Cdi);
        assert!(
            choice.why.contains("/etc/cdi/nvidia.yaml"),
            "{}",
            choice.why
        );

        // Docker 20.10 has no CDI: a spec on disk is not enough.
        let choice = auto(ToolkitFacts {
            nvidia_cdi_spec: spec,
            ..reachable()
        });
        assert_eq!(choice.mode, GpuMode::Devices);
    }

    #[test]
    fn auto_falls_back_to_devices_and_says_when_no_engine_answered() {
        let choice = auto(reachable());
        assert_eq!(choice.mode, GpuMode::Devices);
        assert!(!choice.why.contains("no engine answered"), "{}", choice.why);
        let choice = auto(ToolkitFacts::default());
        assert_eq!(choice.mode, GpuMode::Devices);
        assert!(choice.why.contains("no engine answered"), "{}", choice.why);
    }
}
