//! The host as one run sees it: gathered once, before the profiles are
//! resolved, so a run over 16 profiles probes NVML, the device nodes, the
//! driver files, the toolkit and the CDI specs once, not 16 times. All
//! effects live here; `resolve` stays pure.

pub mod gpu;
pub mod health;
pub mod holders;
pub mod reach;

use std::path::{Path, PathBuf};

use crate::engine::{Engine, Facts, Observed};
use crate::profile::{GpuMode, GpuSelection, Profile};
use gpu::nvml::NvmlFailure;
use gpu::select::Held;
use gpu::{GpuHost, Query};

pub use gpu::Roots;

const TOOLKIT_HOOK: &str = "nvidia-container-runtime-hook";

/// What decides `mode = "auto"`.
#[derive(Debug, Default, Clone)]
pub struct ToolkitFacts {
    /// False when no engine answered: then only the host's files are known.
    pub engine_reachable: bool,
    /// The engine's runtimes (`docker info`), e.g. `runc`, `nvidia`.
    pub runtimes: Vec<String>,
    /// The NVIDIA Container Toolkit's hook, if installed.
    pub toolkit_hook: Option<PathBuf>,
    /// The engine reads CDI specs (Docker 25+ with CDI on).
    pub engine_cdi: bool,
    /// A CDI spec for `nvidia.com/gpu` in /etc/cdi or /var/run/cdi.
    pub nvidia_cdi_spec: Option<PathBuf>,
    /// Which engine answered (`auto` never sends Podman toolkit requests,
    /// which it drops without a word).
    pub engine: Option<crate::engine::Identity>,
}

/// What a `devices` host path is on the host (symlinks followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostDevice {
    Missing,
    Folder,
    Char {
        major: u32,
    },
    Block,
    /// A regular file, a socket, …: not a device.
    Other,
}

/// What a run needs to know of the host, decided from its profiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some profile asks for GPUs: ask NVML for the driver version and each
    /// GPU's index, UUID and minor number.
    pub gpus: bool,
    /// Some profile picks GPUs by count: also each GPU's memory used and
    /// compute processes. Named GPUs need neither.
    pub gpu_usage: bool,
    /// Some profile's mode is `devices` or `auto`: find the device nodes and
    /// the driver's files. `toolkit` and `cdi` leave them to the runtime.
    pub gpu_files: bool,
    /// Some profile leaves the GPU mode to `auto`: ask the engine which
    /// runtimes it has (`docker info`). An explicit mode needs no engine facts.
    pub engine_facts: bool,
    /// Likewise for `auto`: look for the toolkit's hook on PATH and for CDI
    /// specs; an explicit mode never reads them.
    pub toolkit: bool,
    /// Some profile picks GPUs by count: which GPUs other containers hold.
    pub held_gpus: bool,
}

impl Needs {
    pub fn of<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Needs {
        let mut needs = Needs::default();
        for gpus in profiles.into_iter().filter_map(|p| p.gpus.as_ref()) {
            let auto = gpus.mode == GpuMode::Auto;
            let count = matches!(gpus.selection, GpuSelection::Count(_));
            needs.gpus = true;
            needs.gpu_usage |= count;
            needs.gpu_files |= auto || gpus.mode == GpuMode::Devices;
            needs.engine_facts |= auto;
            needs.toolkit |= auto;
            needs.held_gpus |= count;
        }
        needs
    }

    /// What to ask of the GPUs.
    pub fn gpu_query(&self) -> Query {
        Query {
            usage: self.gpu_usage,
            details: false,
            files: self.gpu_files,
        }
    }
}

/// The facts of one run. GPU facts are `None` when no profile asked for GPUs.
#[derive(Debug, Default)]
pub struct HostFacts {
    gpus: Option<std::result::Result<GpuHost, NvmlFailure>>,
    pub toolkit: ToolkitFacts,
    /// Set when `gpus` came from `/proc/driver/nvidia`, not NVML: how to ask
    /// NVML once a choice must be made, and its answer.
    deferred: Option<Deferred>,
}

#[derive(Debug)]
struct Deferred {
    roots: Roots,
    query: Query,
    nvml: tokio::sync::OnceCell<std::result::Result<GpuHost, NvmlFailure>>,
}

impl HostFacts {
    /// Probes what `needs` asks for on the local host: NVML, device nodes,
    /// driver files, the toolkit's hook and CDI specs. Blocking: call it
    /// before the async runtime starts (or from `spawn_blocking`).
    pub fn probe(roots: &Roots, needs: Needs) -> HostFacts {
        if !needs.gpus {
            return HostFacts::default();
        }
        HostFacts {
            gpus: Some(GpuHost::probe(roots, needs.gpu_query())),
            toolkit: toolkit_facts(roots, needs),
            deferred: None,
        }
    }

    /// As `probe`, for `up` and `plan`: the GPUs come from
    /// `/proc/driver/nvidia` when that view will do (`gpu::procfs`), which
    /// is enough to find containers in sync; NVML is asked only when a
    /// profile needs more ([`HostFacts::confirm`]).
    pub fn probe_for_sync(roots: &Roots, needs: Needs) -> HostFacts {
        if !needs.gpus {
            return HostFacts::default();
        }
        let query = needs.gpu_query();
        match GpuHost::from_procfs(roots, query) {
            Some(host) => HostFacts {
                gpus: Some(Ok(host)),
                toolkit: toolkit_facts(roots, needs),
                deferred: Some(Deferred {
                    roots: roots.clone(),
                    query,
                    nvml: tokio::sync::OnceCell::new(),
                }),
            },
            None => HostFacts::probe(roots, needs),
        }
    }

    /// The GPUs: NVML's, or the kernel's view while NVML was not needed.
    pub fn gpus(&self) -> Option<&std::result::Result<GpuHost, NvmlFailure>> {
        self.deferred
            .as_ref()
            .and_then(|d| d.nvml.get())
            .or(self.gpus.as_ref())
    }

    /// Whether the GPUs are the kernel's view, good only to find a
    /// container in sync: any other answer must [`HostFacts::confirm`].
    pub fn provisional(&self) -> bool {
        self.deferred
            .as_ref()
            .is_some_and(|d| !d.nvml.initialized())
    }

    /// Asks NVML, once per run and off the async thread, when the GPUs are
    /// still the kernel's view.
    pub async fn confirm(&self) {
        let Some(d) = &self.deferred else { return };
        d.nvml
            .get_or_init(|| async {
                let (roots, query) = (d.roots.clone(), d.query);
                tokio::task::spawn_blocking(move || GpuHost::probe(&roots, query))
                    .await
                    .unwrap_or_else(|e| {
                        Err(NvmlFailure::Call {
                            call: "nvmlInit",
                            reason: e.to_string(),
                        })
                    })
            })
            .await;
    }

    /// Adds what the engine says (`docker info`), for `auto` mode; `None`
    /// when no engine answered.
    pub fn with_engine(mut self, facts: Option<&Facts>) -> HostFacts {
        if let Some(f) = facts {
            self.toolkit.engine_reachable = true;
            self.toolkit.runtimes = f.runtimes.clone();
            self.toolkit.engine_cdi = !f.cdi_spec_dirs.is_empty();
            self.toolkit.engine = f.identity.clone();
        }
        self
    }

    /// Why a GPU container cannot be made now: the driver was upgraded and
    /// the host not rebooted (docs/architecture.md, GPU health).
    pub fn reboot_pending(&self) -> Option<String> {
        match self.gpus() {
            Some(Ok(host)) => crate::health::kernel::pending_reboot(
                &host.driver_version,
                host.kernel_module.as_deref(),
            ),
            _ => None,
        }
    }
}

/// The toolkit's hook and CDI specs, for `auto`; an explicit mode never
/// reads them.
fn toolkit_facts(roots: &Roots, needs: Needs) -> ToolkitFacts {
    if !needs.toolkit {
        return ToolkitFacts::default();
    }
    ToolkitFacts {
        toolkit_hook: find_on_path(TOOLKIT_HOOK),
        nvidia_cdi_spec: nvidia_cdi_specs(&roots.cdi_spec_dirs)
            .into_iter()
            .next()
            .map(|(path, _)| path),
        ..ToolkitFacts::default()
    }
}

/// A small regular file's text (at most 1 MiB): `None` when it is missing,
/// unreadable, not a regular file (a FIFO must not stall a run) or larger.
pub fn read_small(path: &Path) -> Option<String> {
    const MAX: u64 = 1 << 20;
    // One byte past the bound tells a larger file without a second stat.
    let bytes = read_bounded(path, MAX + 1)?;
    if bytes.len() as u64 > MAX {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// The first `limit` bytes of a regular file: `None` when it is missing,
/// unreadable or not a regular file (a FIFO must not stall a run, a device
/// may never end). procfs files report size 0, so the read is bounded by
/// `limit`, not by the size; it starts with a page, which most such files
/// fit in, instead of std's 32-byte probe.
pub fn read_bounded(path: &Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let first = usize::try_from(meta.len().max(4096).min(limit)).unwrap_or(4096);
    let mut bytes = Vec::with_capacity(first);
    std::fs::File::open(path)
        .ok()?
        .take(limit)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// Asks the engine for its facts when `needs` says so; a failure to answer
/// leaves them unknown (auto then says so), it does not fail the run.
pub async fn engine_facts<E: Engine>(engine: Option<&E>, needs: Needs) -> Option<Facts> {
    if !needs.engine_facts {
        return None;
    }
    match engine?.facts().await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!("the engine's runtimes are unknown ({e}); `auto` chooses without them");
            None
        }
    }
}

/// GPUs held by launch containers (other than `except` and what a killed
/// recreate of it left aside), from their labels.
pub fn held_gpus(managed: &[Observed], except: Option<&str>) -> Held {
    let own = |name: &str| except.is_some_and(|e| crate::engine::is_name_or_aside(name, e));
    managed
        .iter()
        .filter(|c| !own(&c.name))
        .flat_map(|c| c.gpus().into_iter().map(|u| (u, c.name.clone())))
        .collect()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The CDI specs that define `nvidia.com/gpu`, as `nvidia-ctk cdi generate`
/// writes them, with their text, in folder then name order.
pub fn nvidia_cdi_specs(dirs: &[PathBuf]) -> Vec<(PathBuf, String)> {
    dirs.iter()
        .flat_map(|d| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
                })
                .collect();
            files.sort();
            files
        })
        .filter_map(|path| {
            // Only small regular files: a FIFO or a huge file must not stall a run.
            let text = read_small(&path)?;
            text.contains("nvidia.com/gpu").then_some((path, text))
        })
        .collect()
}

/// What a path is on the host, following symlinks as Docker does.
pub fn device_kind(path: &Path) -> HostDevice {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::metadata(path) else {
        return HostDevice::Missing;
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        HostDevice::Folder
    } else if kind.is_char_device() {
        // glibc's encoding of a device number (gnu_dev_major).
        let dev = meta.rdev();
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        HostDevice::Char {
            major: u32::try_from(major).unwrap_or(u32::MAX),
        }
    } else if kind.is_block_device() {
        HostDevice::Block
    } else {
        HostDevice::Other
    }
}

/// NVIDIA's character device majors: 195 (the GPUs, nvidiactl) and those
/// the driver registers by name (nvidia-uvm, nvidia-caps, …) in /proc/devices.
pub fn nvidia_majors() -> Vec<u32> {
    let mut majors = vec![crate::profile::GPU_MAJOR];
    let text = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let chars = text.split("Block devices:").next().unwrap_or_default();
    majors.extend(chars.lines().filter_map(|line| {
        let (major, name) = line.trim().split_once(' ')?;
        name.starts_with("nvidia")
            .then(|| major.parse::<u32>().ok())?
    }));
    majors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_where_a_host_file_belongs_is_not_read() {
        // A driver root whose ld.so.cache is a FIFO: read as missing, at
        // once (opening a FIFO for reading waits for a writer).
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("etc")).expect("etc");
        let cache = dir.path().join("etc/ld.so.cache");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &cache,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let root = dir.path().to_path_buf();
        let (done, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(crate::host::gpu::driver::ld_cache(&root));
        });
        let entries = seen
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("ld_cache returns without a writer");
        assert!(entries.is_empty());
        assert_eq!(read_small(&cache), None);
        assert_eq!(read_bounded(&cache, 10), None);
    }

    #[test]
    fn a_bounded_read_stops_at_its_limit_and_a_small_read_refuses_more() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 10_000]).expect("write");
        assert_eq!(read_bounded(&big, 100).map(|b| b.len()), Some(100));
        assert_eq!(read_bounded(&big, 1 << 20).map(|b| b.len()), Some(10_000));
        assert_eq!(read_small(&big).map(|t| t.len()), Some(10_000));
        std::fs::write(&big, vec![b'x'; (1 << 20) + 1]).expect("write");
        assert_eq!(read_small(&big), None);
    }

    fn needs(profiles: &[&str]) -> Needs {
        let dir = tempfile::tempdir().expect("temp dir");
        let loaded: Vec<Profile> = profiles
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.path().join(format!("p{i}.toml"));
                std::fs::write(&path, format!("image = \"busybox\"\n{text}\n")).expect("write");
                crate::profile::load(&path).expect("a valid profile")
            })
            .collect();
        Needs::of(&loaded)
    }

    #[test]
    fn the_engine_is_asked_for_its_runtimes_only_for_auto_mode() {
        assert_eq!(needs(&[""]), Needs::default(), "no GPUs, no probing");
        let explicit = needs(&["gpus = { devices = [0], mode = \"devices\" }"]);
        assert!(explicit.gpus && !explicit.engine_facts && !explicit.held_gpus);
        let auto = needs(&["", "gpus = [0]"]);
        assert!(auto.gpus && auto.engine_facts && !auto.held_gpus);
        let count = needs(&["gpus = { count = 1, mode = \"cdi\" }"]);
        assert!(count.gpus && !count.engine_facts && count.held_gpus);
    }
}
