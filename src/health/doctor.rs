//! `launch doctor`'s judgement (docs/architecture.md, GPU health): the facts
//! of the host, the engine and the containers in, one check per line out,
//! each `ok`, `warn` or `fail` with the fix to apply. Pure: `host::health`
//! gathers the facts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use super::kernel;

/// A check's result, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// It could not be judged (no engine answered): says why, fails nothing.
    Unknown,
    Warn,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub message: String,
    /// What to do about it; `None` when nothing is to be done.
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, message: String, fix: Option<&str>) -> Check {
    Check {
        name: name.to_string(),
        status,
        message,
        fix: fix.map(str::to_string),
    }
}

/// The worst status of all checks (`unknown` counts as `ok`).
pub fn overall(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .filter(|s| *s != Status::Unknown)
        .max()
        .unwrap_or(Status::Ok)
}

/// What a path under `--dev-root` is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Node {
    #[default]
    Missing,
    Char {
        major: u32,
    },
    /// Not a character device (a symlink to /dev/null shows as major 1).
    Other,
}

/// One GPU as NVML reports it, with what doctor asks of it.
#[derive(Debug, Clone, Default)]
pub struct GpuFacts {
    pub index: u32,
    pub uuid: String,
    pub minor: Option<u32>,
    /// Persistence mode; `None` when the driver cannot tell.
    pub persistence: Option<bool>,
}

/// What the engine said; `None` in [`Facts::engine`] when none answered.
#[derive(Debug, Clone, Default)]
pub struct EngineFacts {
    /// Which engine answered.
    pub identity: Option<crate::engine::Identity>,
    /// A rootless engine runs containers as the user who runs it.
    pub rootless: bool,
    pub runtimes: Vec<String>,
    /// The engine reads CDI specs (Docker 25+ with CDI on).
    pub cdi: bool,
    pub cgroup_driver: Option<String>,
}

/// A CDI spec for `nvidia.com/gpu` and the GPUs it names.
#[derive(Debug, Clone, Default)]
pub struct CdiFacts {
    pub path: PathBuf,
    /// The GPU UUIDs it names (nvidia-ctk's `uuid` device names).
    pub uuids: BTreeSet<String>,
    /// The GPU minors of its `/dev/nvidiaN` nodes (for index-named specs).
    pub minors: BTreeSet<u32>,
}

/// A container launch made, as far as doctor judges it.
#[derive(Debug, Clone, Default)]
pub struct ContainerFacts {
    pub name: String,
    /// Label `launch.gpus`.
    pub gpus: Vec<String>,
    /// Label `launch.driver`.
    pub driver: Option<String>,
}

/// A GPU as a view numbers it: index, UUID, minor.
pub type Numbered = (u32, String, Option<u32>);

/// Everything doctor judges.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub driver_version: String,
    pub gpus: Vec<GpuFacts>,
    /// The kernel module's version, from `<dev-root>/proc/driver/nvidia/version`.
    pub kernel_module: Option<String>,
    /// The GPUs (index, UUID, minor) as `/proc/driver/nvidia/gpus` shows
    /// them, which a no-op `up` reads instead of NVML; `Err`: why it cannot.
    /// `None`: not looked at.
    pub kernel_view: Option<Result<Vec<Numbered>, String>>,
    /// `<dev-root>/dev/nvidia<minor>` per GPU minor, and the shared nodes.
    pub gpu_nodes: Vec<(u32, Node)>,
    pub nvidiactl: Node,
    pub uvm: Node,
    /// nvidia-uvm's major from `<dev-root>/proc/devices`.
    pub uvm_major: Option<u32>,
    /// GPU minors without a `<dev-root>/dev/char/195:<minor>` link.
    pub missing_char_links: Vec<u32>,
    /// GPU nodes the user running launch cannot open for reading and
    /// writing: a rootless engine's containers cannot either.
    pub unopenable_nodes: Vec<String>,
    pub toolkit_hook: Option<PathBuf>,
    pub cdi_dirs: Vec<PathBuf>,
    pub cdi_specs: Vec<CdiFacts>,
    pub engine: Option<EngineFacts>,
    /// Why no engine answered, when none did.
    pub engine_error: Option<String>,
    pub containers: Vec<ContainerFacts>,
}

pub use crate::profile::GPU_MAJOR;

/// With no working NVML, the one check there is; doctor stops there.
/// `reboot`: NVML refused with a driver/library version mismatch.
pub fn no_driver(why: &str, reboot: bool) -> Vec<Check> {
    let fix = if reboot {
        "reboot the host, so the upgraded driver's kernel module loads"
    } else {
        "install the NVIDIA driver and load its kernel module (`nvidia-smi` must work), then run launch doctor again"
    };
    vec![check("nvml", Status::Fail, why.to_string(), Some(fix))]
}

/// Every check, in order.
pub fn checks(f: &Facts) -> Vec<Check> {
    let mut out = vec![
        check(
            "nvml",
            Status::Ok,
            format!(
                "NVML loads: driver {}, {} GPU(s)",
                f.driver_version,
                f.gpus.len()
            ),
            None,
        ),
        kernel_module(f),
    ];
    out.extend(kernel_view(f));
    out.extend(engine(f));
    out.extend([
        device_nodes(f),
        persistence(f),
        toolkit(f),
        cdi(f),
        cgroup_driver(f),
    ]);
    if f.engine.is_none() {
        out.push(check(
            "containers",
            Status::Unknown,
            "no engine answered, so launch's containers are not judged".into(),
            None,
        ));
    }
    out.extend(containers(f));
    out
}

/// Which engine answers, and what that means for GPUs: Podman drops the
/// toolkit's requests (auto uses devices mode); a rootless engine's
/// containers open the GPU nodes as the user, who must be able to.
fn engine(f: &Facts) -> Option<Check> {
    let e = f.engine.as_ref()?;
    let name = e
        .identity
        .as_ref()
        .map_or_else(|| "the engine".to_string(), ToString::to_string);
    if e.rootless && !f.unopenable_nodes.is_empty() {
        return Some(check(
            "engine",
            Status::Fail,
            format!(
                "{name} is rootless: its containers open the GPU nodes as you, and you cannot open {}; GPU profiles cannot work with it",
                f.unopenable_nodes.join(", ")
            ),
            Some(
                "join the group that owns the nodes (ls -l /dev/nvidia*), or use the system's (root) engine",
            ),
        ));
    }
    let podman = e.identity.as_ref().is_some_and(|i| i.is_podman());
    let note = match (podman, e.rootless) {
        (true, true) => ": rootless; GPU profiles use devices mode (Podman drops toolkit requests)",
        (true, false) => {
            ": GPU profiles use devices mode, or cdi from Podman 5.4 (Podman drops toolkit requests)"
        }
        (false, true) => ": rootless; GPU profiles work in devices mode",
        (false, false) => "",
    };
    Some(check("engine", Status::Ok, format!("{name}{note}"), None))
}

fn kernel_module(f: &Facts) -> Check {
    match &f.kernel_module {
        None => check(
            "kernel-module",
            Status::Warn,
            "the kernel module's version is unknown (no readable proc/driver/nvidia/version under --dev-root)".into(),
            Some("check that the nvidia kernel module is loaded (`lsmod | grep nvidia`)"),
        ),
        Some(module) => match kernel::pending_reboot(&f.driver_version, Some(module)) {
            None => check(
                "kernel-module",
                Status::Ok,
                format!("the kernel module and the libraries are both {module}"),
                None,
            ),
            Some(why) => check(
                "kernel-module",
                Status::Fail,
                why,
                Some("reboot the host (launch up refuses to recreate GPU containers until then)"),
            ),
        },
    }
}

/// Whether a no-op `up` can skip NVML: the kernel's view of the GPUs
/// agrees with NVML's (docs/architecture.md, host facts).
fn kernel_view(f: &Facts) -> Option<Check> {
    let view = f.kernel_view.as_ref()?;
    // A pending reboot is the kernel-module check's to report.
    if kernel::pending_reboot(&f.driver_version, f.kernel_module.as_deref()).is_some() {
        return None;
    }
    let nvml: Vec<Numbered> = f
        .gpus
        .iter()
        .map(|g| (g.index, g.uuid.clone(), g.minor))
        .collect();
    Some(match view {
        Err(why) => check(
            "kernel-view",
            Status::Warn,
            format!("a no-op `launch up` loads NVML on this host: {why}"),
            Some(
                "nothing breaks, a no-op is only slower; with nvidia-persistenced running, every GPU shows its UUID under /proc/driver/nvidia/gpus from boot",
            ),
        ),
        Ok(gpus) if *gpus == nvml => check(
            "kernel-view",
            Status::Ok,
            "/proc/driver/nvidia shows the GPUs as NVML does: a no-op `launch up` does not load NVML".into(),
            None,
        ),
        Ok(gpus) => {
            let shown = |g: Option<&Numbered>| {
                g.map_or("nothing".to_string(), |(i, uuid, minor)| {
                    let minor = minor.map_or("?".into(), |m| m.to_string());
                    format!("GPU {i} {uuid} (minor {minor})")
                })
            };
            let at = (0..gpus.len().max(nvml.len()))
                .find(|&i| gpus.get(i) != nvml.get(i))
                .unwrap_or(0);
            check(
                "kernel-view",
                Status::Warn,
                format!(
                    "/proc/driver/nvidia/gpus shows the GPUs unlike NVML ({} there, {} in NVML): a no-op `launch up` then asks NVML for the profiles this touches",
                    shown(gpus.get(at)),
                    shown(nvml.get(at))
                ),
                Some(
                    "nothing breaks; launch expects NVML to number GPUs in PCI bus order, so please report this host's `nvidia-smi -q` with launch's version",
                ),
            )
        }
    })
}

fn device_nodes(f: &Facts) -> Check {
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut judge =
        |name: String, node: Node, major: Option<u32>, missing_is_fail: bool| match (node, major) {
            (Node::Missing, _) if missing_is_fail => fails.push(format!("{name} is missing")),
            (Node::Missing, _) => warns.push(format!("{name} is missing")),
            (Node::Char { major: m }, Some(want)) if m != want => {
                fails.push(format!("{name} has major {m}, not {want}"))
            }
            (Node::Char { .. }, _) => {}
            (Node::Other, _) => fails.push(format!("{name} is not a character device")),
        };
    for (minor, node) in &f.gpu_nodes {
        judge(format!("/dev/nvidia{minor}"), *node, Some(GPU_MAJOR), true);
    }
    judge("/dev/nvidiactl".into(), f.nvidiactl, Some(GPU_MAJOR), true);
    // Real hosts create nvidia-uvm lazily, on the first CUDA call.
    judge("/dev/nvidia-uvm".into(), f.uvm, f.uvm_major, false);
    if !fails.is_empty() {
        let mut all = fails;
        all.extend(warns);
        return check(
            "device-nodes",
            Status::Fail,
            all.join("; "),
            Some(
                "load the driver's modules and create the nodes (`nvidia-modprobe -u -c=0`, or run `nvidia-smi` once as root)",
            ),
        );
    }
    if !warns.is_empty() {
        return check(
            "device-nodes",
            Status::Warn,
            warns.join("; "),
            Some(
                "`nvidia-modprobe -u -c=0` creates /dev/nvidia-uvm now (the first CUDA program would)",
            ),
        );
    }
    let uvm = f
        .uvm_major
        .map(|m| format!(", nvidia-uvm major {m}"))
        .unwrap_or_default();
    check(
        "device-nodes",
        Status::Ok,
        format!(
            "{} GPU node(s) and nvidiactl with major {GPU_MAJOR}{uvm}",
            f.gpu_nodes.len()
        ),
        None,
    )
}

fn persistence(f: &Facts) -> Check {
    let off: Vec<String> = f
        .gpus
        .iter()
        .filter(|g| g.persistence == Some(false))
        .map(|g| g.index.to_string())
        .collect();
    if off.is_empty() {
        let unknown = f.gpus.iter().filter(|g| g.persistence.is_none()).count();
        let note = if unknown > 0 {
            format!(" ({unknown} GPU(s) cannot tell)")
        } else {
            String::new()
        };
        return check(
            "persistence-mode",
            Status::Ok,
            format!("persistence mode is on{note}"),
            None,
        );
    }
    check(
        "persistence-mode",
        Status::Warn,
        format!(
            "persistence mode is off on GPU(s) {}: each start reinitialises the GPU (slow starts) and its state is lost between jobs",
            off.join(", ")
        ),
        Some(
            "enable the nvidia-persistenced service (`systemctl enable --now nvidia-persistenced`)",
        ),
    )
}

/// The toolkit: an `nvidia` runtime or hook. Neither is fine: devices mode.
fn toolkit(f: &Facts) -> Check {
    let runtime = f
        .engine
        .as_ref()
        .is_some_and(|e| e.runtimes.iter().any(|r| r == "nvidia"));
    if runtime {
        return check(
            "toolkit",
            Status::Ok,
            "the engine has the `nvidia` runtime (NVIDIA Container Toolkit)".into(),
            None,
        );
    }
    if let Some(hook) = &f.toolkit_hook {
        return check(
            "toolkit",
            Status::Ok,
            format!(
                "the NVIDIA Container Toolkit's hook is installed ({})",
                hook.display()
            ),
            None,
        );
    }
    if f.engine.is_none() {
        return check(
            "toolkit",
            Status::Unknown,
            format!(
                "no engine answered ({}), so its runtimes are unknown; no toolkit hook on PATH",
                f.engine_error.as_deref().unwrap_or("unknown error")
            ),
            Some("start the engine (or point --host at it) and run launch doctor again"),
        );
    }
    check(
        "toolkit",
        Status::Ok,
        "no NVIDIA Container Toolkit: devices mode will be used".into(),
        None,
    )
}

/// CDI specs name exactly the GPUs NVML sees.
fn cdi(f: &Facts) -> Check {
    let dirs = f
        .cdi_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if f.cdi_specs.is_empty() {
        return check(
            "cdi-specs",
            Status::Ok,
            format!("no nvidia.com/gpu CDI spec in {dirs}"),
            None,
        );
    }
    let uuids: BTreeSet<&str> = f.gpus.iter().map(|g| g.uuid.as_str()).collect();
    let minors: BTreeSet<u32> = f.gpus.iter().filter_map(|g| g.minor).collect();
    let mut stale = Vec::new();
    for spec in &f.cdi_specs {
        let path = spec.path.display();
        let named: BTreeSet<&str> = spec.uuids.iter().map(String::as_str).collect();
        let (unknown, lacking): (Vec<String>, Vec<String>) = if named.is_empty() {
            (
                spec.minors
                    .difference(&minors)
                    .map(|m| format!("/dev/nvidia{m}"))
                    .collect(),
                minors
                    .difference(&spec.minors)
                    .map(|m| format!("/dev/nvidia{m}"))
                    .collect(),
            )
        } else {
            (
                named.difference(&uuids).map(|u| u.to_string()).collect(),
                uuids.difference(&named).map(|u| u.to_string()).collect(),
            )
        };
        if !unknown.is_empty() {
            stale.push(format!(
                "{path} names {}, which NVML does not have",
                unknown.join(", ")
            ));
        }
        if !lacking.is_empty() {
            stale.push(format!("{path} lacks {}", lacking.join(", ")));
        }
    }
    let fix = "regenerate it: `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (after every driver or MIG change)";
    if stale.is_empty() {
        let paths: Vec<String> = f
            .cdi_specs
            .iter()
            .map(|s| s.path.display().to_string())
            .collect();
        return check(
            "cdi-specs",
            Status::Ok,
            format!("{} names the GPUs NVML sees", paths.join(", ")),
            None,
        );
    }
    // Stale specs matter where the engine would use them.
    let used = f.engine.as_ref().is_some_and(|e| e.cdi);
    let status = if used { Status::Fail } else { Status::Warn };
    let why = if used {
        "the engine reads CDI specs, so cdi mode (and auto) would inject the wrong GPUs"
    } else {
        "the engine does not read CDI specs, so nothing uses it now"
    };
    check(
        "cdi-specs",
        status,
        format!("stale CDI spec: {} ({why})", stale.join("; ")),
        Some(fix),
    )
}

/// systemd + toolkit/CDI without /dev/char links: a daemon-reload takes the
/// GPUs from running containers (NVIDIA's nvidia-container-toolkit#48).
fn cgroup_driver(f: &Facts) -> Check {
    let Some(engine) = &f.engine else {
        return check(
            "cgroup-driver",
            Status::Unknown,
            format!(
                "no engine answered ({}), so its cgroup driver is unknown",
                f.engine_error.as_deref().unwrap_or("unknown error")
            ),
            Some("start the engine (or point --host at it) and run launch doctor again"),
        );
    };
    let driver = engine.cgroup_driver.as_deref().unwrap_or("unknown");
    let toolkit_or_cdi = engine.runtimes.iter().any(|r| r == "nvidia")
        || f.toolkit_hook.is_some()
        || (engine.cdi && !f.cdi_specs.is_empty());
    if driver != "systemd" || !toolkit_or_cdi {
        return check(
            "cgroup-driver",
            Status::Ok,
            format!("the engine's cgroup driver is {driver}"),
            None,
        );
    }
    if f.missing_char_links.is_empty() {
        return check(
            "cgroup-driver",
            Status::Ok,
            format!("cgroup driver systemd, and /dev/char/{GPU_MAJOR}:* links exist"),
            None,
        );
    }
    let missing: Vec<String> = f
        .missing_char_links
        .iter()
        .map(|m| format!("/dev/char/{GPU_MAJOR}:{m}"))
        .collect();
    check(
        "cgroup-driver",
        Status::Warn,
        format!(
            "the engine's cgroup driver is systemd and the toolkit or CDI is in use, but {} missing: GPUs vanish from running containers after `systemctl daemon-reload` (\"Failed to initialize NVML: Unknown Error\"); launch lists the device nodes in toolkit and cdi modes, which keeps its own containers' GPUs",
            if missing.len() == 1 {
                format!("{} is", missing[0])
            } else {
                format!("{} are", missing.join(", "))
            }
        ),
        Some(
            "`nvidia-ctk system create-dev-char-symlinks --create-all` (and NVIDIA's udev rule to keep them)",
        ),
    )
}

fn containers(f: &Facts) -> Vec<Check> {
    let uuids: BTreeSet<&str> = f.gpus.iter().map(|g| g.uuid.as_str()).collect();
    f.containers
        .iter()
        .filter(|c| !c.gpus.is_empty())
        .map(|c| {
            let name = format!("container {}", c.name);
            let gone: Vec<&str> = c
                .gpus
                .iter()
                .map(String::as_str)
                .filter(|u| !uuids.contains(u))
                .collect();
            if !gone.is_empty() {
                return check(
                    &name,
                    Status::Fail,
                    format!("its GPU(s) {} no longer exist", gone.join(", ")),
                    Some("`launch up` its profile to give it GPUs that exist (or check `nvidia-smi -L`: a GPU that fell off the bus needs a reset or a reboot)"),
                );
            }
            match c.driver.as_deref() {
                Some(d) if d != f.driver_version => check(
                    &name,
                    Status::Warn,
                    format!(
                        "made for driver {d}, but {} runs now",
                        f.driver_version
                    ),
                    Some("`launch up` its profile to recreate it for the running driver"),
                ),
                _ => check(
                    &name,
                    Status::Ok,
                    format!("its GPU(s) exist and its driver {} runs", f.driver_version),
                    None,
                ),
            }
        })
        .collect()
}

/// The GPU UUIDs and `/dev/nvidiaN` minors a CDI spec's text names. No YAML
/// parser needed: UUIDs and node paths are unambiguous tokens.
pub fn cdi_names(text: &str) -> (BTreeSet<String>, BTreeSet<u32>) {
    let mut uuids = BTreeSet::new();
    let mut minors = BTreeSet::new();
    for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '/')) {
        if let Some(rest) = token.strip_prefix("GPU-")
            && rest.len() == 36
            && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            uuids.insert(token.to_string());
        } else if let Some(n) = token.strip_prefix("/dev/nvidia")
            && let Ok(minor) = n.parse::<u32>()
        {
            minors.insert(minor);
        }
    }
    (uuids, minors)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID0: &str = "GPU-5eed0000-0000-4000-8000-000000000000";
    const UUID1: &str = "GPU-5eed0001-0000-4000-8000-000000000001";

    /// A healthy host: every check ok.
    fn healthy() -> Facts {
        Facts {
            driver_version: "550.54.15".into(),
            gpus: vec![
                GpuFacts {
                    index: 0,
                    uuid: UUID0.into(),
                    minor: Some(0),
                    persistence: Some(true),
                },
                GpuFacts {
                    index: 1,
                    uuid: UUID1.into(),
                    minor: Some(1),
                    persistence: Some(true),
                },
            ],
            kernel_module: Some("550.54.15".into()),
            kernel_view: Some(Ok(vec![
                (0, UUID0.into(), Some(0)),
                (1, UUID1.into(), Some(1)),
            ])),
            gpu_nodes: vec![
                (0, Node::Char { major: 195 }),
                (1, Node::Char { major: 195 }),
            ],
            nvidiactl: Node::Char { major: 195 },
            uvm: Node::Char { major: 510 },
            uvm_major: Some(510),
            engine: Some(EngineFacts {
                identity: None,
                rootless: false,
                runtimes: vec!["nvidia".into(), "runc".into()],
                cdi: false,
                cgroup_driver: Some("systemd".into()),
            }),
            ..Default::default()
        }
    }

    fn status_of(f: &Facts, name: &str) -> Check {
        checks(f)
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    #[test]
    fn a_healthy_host_passes_every_check() {
        let all = checks(&healthy());
        assert!(all.iter().all(|c| c.status == Status::Ok), "{all:#?}");
        assert_eq!(overall(&all), Status::Ok);
    }

    #[test]
    fn a_kernel_view_unlike_nvmls_or_none_warns_that_no_ops_load_nvml() {
        let mut f = healthy();
        f.kernel_view = Some(Ok(vec![
            (0, UUID1.into(), Some(1)),
            (1, UUID0.into(), Some(0)),
        ]));
        let c = status_of(&f, "kernel-view");
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.message
                .contains(&format!("GPU 0 {UUID1} (minor 1) there"))
                && c.message
                    .contains(&format!("GPU 0 {UUID0} (minor 0) in NVML")),
            "{}",
            c.message
        );
        f.kernel_view = Some(Err("the GPU at 0000:18:00.0 shows no UUID".into()));
        let c = status_of(&f, "kernel-view");
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("loads NVML") && c.message.contains("0000:18:00.0"));
        f.kernel_view = None;
        assert!(checks(&f).iter().all(|c| c.name != "kernel-view"));
    }

    #[test]
    fn systemd_with_the_toolkit_and_no_char_links_warns_about_daemon_reload() {
        let mut f = healthy();
        f.missing_char_links = vec![0, 1];
        let c = status_of(&f, "cgroup-driver");
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("daemon-reload"), "{}", c.message);
        assert!(c.fix.unwrap().contains("create-dev-char-symlinks"));
        // cgroupfs: no such problem.
        f.engine.as_mut().unwrap().cgroup_driver = Some("cgroupfs".into());
        assert_eq!(status_of(&f, "cgroup-driver").status, Status::Ok);
        // systemd but devices mode (no toolkit, no CDI): launch lists the nodes.
        f.engine.as_mut().unwrap().cgroup_driver = Some("systemd".into());
        f.engine.as_mut().unwrap().runtimes = vec!["runc".into()];
        assert_eq!(status_of(&f, "cgroup-driver").status, Status::Ok);
    }

    #[test]
    fn a_missing_uvm_node_is_a_warning_and_a_wrong_major_a_failure() {
        let mut f = healthy();
        f.uvm = Node::Missing;
        assert_eq!(status_of(&f, "device-nodes").status, Status::Warn);
        f.uvm = Node::Char { major: 511 };
        let c = status_of(&f, "device-nodes");
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("major 511, not 510"), "{}", c.message);
    }

    #[test]
    fn a_stale_cdi_spec_fails_only_where_the_engine_reads_cdi() {
        let mut f = healthy();
        f.cdi_specs = vec![CdiFacts {
            path: "/etc/cdi/nvidia.yaml".into(),
            uuids: [UUID0.to_string()].into(),
            minors: [0].into(),
        }];
        let c = status_of(&f, "cdi-specs");
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(
            c.message.contains(&format!("lacks {UUID1}")),
            "{}",
            c.message
        );
        f.engine.as_mut().unwrap().cdi = true;
        assert_eq!(status_of(&f, "cdi-specs").status, Status::Fail);
        // A spec named by index only is judged by its nodes.
        f.cdi_specs[0].uuids.clear();
        f.cdi_specs[0].minors = [0, 1].into();
        assert_eq!(status_of(&f, "cdi-specs").status, Status::Ok);
    }

    #[test]
    fn without_an_engine_the_engine_checks_are_unknown_and_fail_nothing() {
        let mut f = healthy();
        f.engine = None;
        f.engine_error = Some("connection refused".into());
        let all = checks(&f);
        assert_eq!(status_of(&f, "cgroup-driver").status, Status::Unknown);
        assert_eq!(status_of(&f, "toolkit").status, Status::Unknown);
        assert_eq!(overall(&all), Status::Ok);
    }

    #[test]
    fn reads_uuids_and_nodes_from_a_cdi_spec() {
        let text = format!(
            "kind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia3\n- name: {UUID0}\ncontainerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n  - path: /dev/nvidia-uvm\n"
        );
        let (uuids, minors) = cdi_names(&text);
        assert_eq!(uuids, [UUID0.to_string()].into());
        assert_eq!(minors, [3].into());
    }
}
