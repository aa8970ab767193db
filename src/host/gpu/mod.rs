//! The host's GPUs: a snapshot taken from NVML, the device nodes and the
//! driver's files (the effects), and the choice of GPUs for a profile (pure).
//!
//! Everything downstream names GPUs by UUID; an index is turned into a UUID
//! once, in `select`.

pub mod driver;
pub mod nodes;
pub mod nvml;
pub mod procfs;
pub mod select;

use std::path::PathBuf;

use serde::Serialize;

pub use driver::DriverFiles;
pub use nodes::DeviceNodes;

/// Where to look for the driver: the meaning of `nvidia-ctk cdi generate`'s flags.
#[derive(Debug, Clone)]
pub struct Roots {
    /// `libnvidia-ml.so.1` or a path to it.
    pub nvml_lib: PathBuf,
    /// Device nodes are `<dev_root>/dev/nvidia*`.
    pub dev_root: PathBuf,
    /// Driver libraries and binaries are found under it (its `etc/ld.so.cache`).
    pub driver_root: PathBuf,
    /// Folders of CDI specs (default `/etc/cdi`, `/var/run/cdi`).
    pub cdi_spec_dirs: Vec<PathBuf>,
}

/// Everything resolve needs to know about the host's GPUs.
#[derive(Debug, Clone, Serialize)]
pub struct GpuHost {
    pub driver_version: String,
    /// CUDA version the driver supports, e.g. "12.4".
    pub cuda_version: Option<String>,
    pub gpus: Vec<Gpu>,
    /// The running kernel module's version (`<dev-root>/proc/driver/nvidia/version`),
    /// if that file could be read.
    pub kernel_module: Option<String>,
    pub nodes: DeviceNodes,
    pub driver_files: DriverFiles,
}

/// One GPU as NVML reports it. A field a driver cannot report, or that the
/// run did not ask for (`Query`), is `None`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub pci_bus_id: Option<String>,
    /// The N of `/dev/nvidiaN`; not the index.
    pub minor: Option<u32>,
    pub name: Option<String>,
    pub memory_total: Option<u64>,
    pub memory_used: Option<u64>,
    /// GPU utilisation in percent.
    pub utilization: Option<u32>,
    /// Running compute processes; `None` when the driver cannot tell.
    pub processes: Option<Vec<GpuProcess>>,
    pub mig: Option<bool>,
}

impl Gpu {
    /// A GPU known by what every run needs (`Query` asks for the rest).
    pub fn new(index: u32, uuid: String, minor: Option<u32>) -> Gpu {
        Gpu {
            index,
            uuid,
            pci_bus_id: None,
            minor,
            name: None,
            memory_total: None,
            memory_used: None,
            utilization: None,
            processes: None,
            mig: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory: Option<u64>,
}

/// How much of the host's GPUs a run asks for. Every profile with GPUs
/// needs the driver version and each GPU's index, UUID and minor number;
/// the rest costs a driver call per GPU (or a walk over the driver's
/// files), which a cron no-op every minute should not pay for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query {
    /// Memory used and compute processes, by which `{ count = N }` picks.
    pub usage: bool,
    /// Name, PCI bus id, MIG mode, utilisation and the CUDA version: what
    /// `launch gpus` shows and no spec contains.
    pub details: bool,
    /// Driver files: what `devices` mode (or `auto`, which may choose it)
    /// mounts. Device nodes are always found.
    pub files: bool,
}

impl Query {
    /// Everything, for `launch gpus`.
    pub const ALL: Query = Query {
        usage: true,
        details: true,
        files: true,
    };
}

/// The running kernel module's version, from `<dev_root>/proc/driver/nvidia/version`.
pub fn kernel_module(dev_root: &std::path::Path) -> Option<String> {
    let path = dev_root.join(crate::health::kernel::VERSION_FILE);
    let text = crate::host::read_small(&path)?;
    crate::health::kernel::module_version(&text)
}

impl GpuHost {
    /// Takes the snapshot: NVML, then the device nodes and driver files, as
    /// far as `query` asks. What it does not ask for is `None` or empty.
    pub fn probe(roots: &Roots, query: Query) -> Result<GpuHost, nvml::NvmlFailure> {
        let inventory = nvml::inventory(&roots.nvml_lib, query)?;
        let module = kernel_module(&roots.dev_root);
        Ok(GpuHost::around(roots, query, inventory, module))
    }

    /// The snapshot from `/proc/driver/nvidia` instead of NVML, for a run
    /// that may find every container in sync (`procfs`); `None` when that
    /// view would not do, or `query` asks for what only NVML knows.
    pub fn from_procfs(roots: &Roots, query: Query) -> Option<GpuHost> {
        if query.usage || query.details {
            return None;
        }
        match procfs::inventory(&roots.dev_root, &roots.nvml_lib) {
            // The view's driver version is the running module's.
            Ok(inventory) => {
                let module = Some(inventory.driver_version.clone());
                Some(GpuHost::around(roots, query, inventory, module))
            }
            Err(why) => {
                tracing::debug!("asking NVML: {why}");
                None
            }
        }
    }

    fn around(
        roots: &Roots,
        query: Query,
        inventory: nvml::Inventory,
        kernel_module: Option<String>,
    ) -> GpuHost {
        // Every mode lists the device nodes (a few stats); only `devices`
        // mode needs the walk over the driver's files.
        let nodes = DeviceNodes::find(&roots.dev_root, &inventory.gpus);
        let driver_files = if query.files {
            DriverFiles::find(&roots.driver_root, &inventory.driver_version)
        } else {
            DriverFiles::default()
        };
        GpuHost {
            driver_version: inventory.driver_version,
            cuda_version: inventory.cuda_version,
            gpus: inventory.gpus,
            kernel_module,
            nodes,
            driver_files,
        }
    }
}
