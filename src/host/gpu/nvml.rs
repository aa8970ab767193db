//! Asking NVML (through nvml-wrapper, which loads `libnvidia-ml.so.1` at run
//! time) for the driver and its GPUs.

use std::path::Path;

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

use super::{Gpu, GpuProcess, Query};

/// What NVML says about the host.
pub struct Inventory {
    pub driver_version: String,
    pub cuda_version: Option<String>,
    pub gpus: Vec<Gpu>,
}

/// Why NVML gave no inventory; each says what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NvmlFailure {
    #[error(
        "no NVIDIA driver: {lib} could not be loaded ({reason}); install the driver, or point --nvml-lib at libnvidia-ml.so.1"
    )]
    NotLoaded { lib: String, reason: String },
    #[error(
        "NVIDIA driver not loaded: nvmlInit failed with \"Driver Not Loaded\" (is the nvidia kernel module loaded? `nvidia-smi` shows the same)"
    )]
    DriverNotLoaded,
    #[error(
        "NVML says \"Driver/library version mismatch\": the driver's libraries were upgraded but the old kernel module still runs, so a reboot is pending; reboot the host (no GPU container can start until then)"
    )]
    VersionMismatch,
    #[error("NVML failed: {call}: {reason}")]
    Call { call: &'static str, reason: String },
}

/// The driver version and each GPU's index, UUID and minor number, plus what
/// `query` asks for; a field not asked for is `None`.
pub fn inventory(lib: &Path, query: Query) -> Result<Inventory, NvmlFailure> {
    let nvml = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .map_err(|e| match e {
            NvmlError::LibloadingError(e) => NvmlFailure::NotLoaded {
                lib: lib.display().to_string(),
                reason: libloading_reason(&e.to_string(), lib),
            },
            NvmlError::DriverNotLoaded => NvmlFailure::DriverNotLoaded,
            NvmlError::LibRmVersionMismatch => NvmlFailure::VersionMismatch,
            other => NvmlFailure::Call {
                call: "nvmlInit",
                reason: other.to_string(),
            },
        })?;
    let call = |call: &'static str| {
        move |e: NvmlError| NvmlFailure::Call {
            call,
            reason: e.to_string(),
        }
    };
    let driver_version = nvml
        .sys_driver_version()
        .map_err(call("nvmlSystemGetDriverVersion"))?;
    // One call, and every GPU profile's image may state a CUDA requirement.
    let cuda_version = known(
        nvml.sys_cuda_driver_version(),
        "nvmlSystemGetCudaDriverVersion",
    )
    .map(crate::health::cuda::cuda_from_nvml);
    let count = nvml.device_count().map_err(call("nvmlDeviceGetCount"))?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml
            .device_by_index(index)
            .map_err(call("nvmlDeviceGetHandleByIndex"))?;
        let mut gpu = Gpu::new(
            index,
            device.uuid().map_err(call("nvmlDeviceGetUUID"))?,
            known(device.minor_number(), "nvmlDeviceGetMinorNumber"),
        );
        if query.usage || query.details {
            let memory = known(device.memory_info(), "nvmlDeviceGetMemoryInfo");
            gpu.memory_total = memory.as_ref().map(|m| m.total);
            gpu.memory_used = memory.as_ref().map(|m| m.used);
            gpu.processes = known(
                device.running_compute_processes(),
                "nvmlDeviceGetComputeRunningProcesses",
            )
            .map(|ps| {
                ps.into_iter()
                    .map(|p| GpuProcess {
                        pid: p.pid,
                        used_memory: match p.used_gpu_memory {
                            UsedGpuMemory::Used(bytes) => Some(bytes),
                            UsedGpuMemory::Unavailable => None,
                        },
                    })
                    .collect()
            });
        }
        if query.details {
            gpu.pci_bus_id = known(device.pci_info(), "nvmlDeviceGetPciInfo").map(|p| p.bus_id);
            gpu.name = known(device.name(), "nvmlDeviceGetName");
            gpu.utilization =
                known(device.utilization_rates(), "nvmlDeviceGetUtilizationRates").map(|u| u.gpu);
            gpu.mig = known(device.mig_mode(), "nvmlDeviceGetMigMode").map(|m| m.current == 1);
        }
        gpus.push(gpu);
    }
    Ok(Inventory {
        driver_version,
        cuda_version,
        gpus,
    })
}

/// What one GPU did, for the leases' samples (docs/architecture.md, leases).
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub index: u32,
    pub uuid: String,
    pub name: Option<String>,
    /// Memory used and in all (bytes), when the driver reports them.
    pub memory: Option<(u64, u64)>,
    /// The GPU's own utilization (%), when the driver reports it.
    pub utilization: Option<u32>,
    /// The pids of its compute processes (host pids).
    pub processes: Vec<u32>,
    /// Each process's SM use (%) since the last sample; `None` when the
    /// GPU cannot report per-process samples.
    pub samples: Option<Vec<(u32, u32)>>,
}

/// Every GPU's activity since `since` (NVML's timestamp, in µs; `None`:
/// whatever the driver has buffered).
pub fn activity(lib: &Path, since: Option<u64>) -> Result<Vec<Activity>, NvmlFailure> {
    let nvml = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .map_err(|e| NvmlFailure::Call {
            call: "nvmlInit",
            reason: e.to_string(),
        })?;
    let count = nvml.device_count().map_err(|e| NvmlFailure::Call {
        call: "nvmlDeviceGetCount",
        reason: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml.device_by_index(index).map_err(|e| NvmlFailure::Call {
            call: "nvmlDeviceGetHandleByIndex",
            reason: e.to_string(),
        })?;
        let Some(uuid) = known(device.uuid(), "nvmlDeviceGetUUID") else {
            continue;
        };
        let processes = known(
            device.running_compute_processes(),
            "nvmlDeviceGetComputeRunningProcesses",
        )
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.pid)
        .collect();
        let samples = known(
            device.process_utilization_stats(since),
            "nvmlDeviceGetProcessUtilization",
        )
        .map(|all| {
            // The highest of each process's samples in the period.
            let mut by_pid: std::collections::BTreeMap<u32, u32> = Default::default();
            for s in all {
                let e = by_pid.entry(s.pid).or_default();
                *e = (*e).max(s.sm_util);
            }
            by_pid.into_iter().collect()
        });
        out.push(Activity {
            index,
            name: known(device.name(), "nvmlDeviceGetName"),
            memory: known(device.memory_info(), "nvmlDeviceGetMemoryInfo")
                .map(|m| (m.used, m.total)),
            uuid,
            utilization: known(device.utilization_rates(), "nvmlDeviceGetUtilizationRates")
                .map(|u| u.gpu),
            processes,
            samples,
        });
    }
    Ok(out)
}

/// Each GPU's persistence mode, by NVML index (`None`: the driver cannot
/// tell), for `launch doctor`.
pub fn persistence_modes(lib: &Path) -> Result<Vec<Option<bool>>, NvmlFailure> {
    let nvml = Nvml::builder()
        .lib_path(lib.as_os_str())
        .init()
        .map_err(|e| NvmlFailure::Call {
            call: "nvmlInit",
            reason: e.to_string(),
        })?;
    let count = nvml.device_count().map_err(|e| NvmlFailure::Call {
        call: "nvmlDeviceGetCount",
        reason: e.to_string(),
    })?;
    Ok((0..count)
        .map(|i| {
            nvml.device_by_index(i)
                .ok()
                .and_then(|d| known(d.is_in_persistent_mode(), "nvmlDeviceGetPersistenceMode"))
        })
        .collect())
}

/// A value the driver may not offer (an old driver lacks the symbol, a GPU
/// does not support the query): unknown, not a failure.
fn known<T>(result: Result<T, NvmlError>, call: &str) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!("{call}: {e}; reporting it as unknown");
            None
        }
    }
}

/// dlopen's message names the file twice; keep the reason.
fn libloading_reason(message: &str, lib: &Path) -> String {
    let shown = lib.display().to_string();
    let reason = message.rsplit(": ").next().unwrap_or(message);
    if reason.is_empty() || reason == shown {
        message.to_string()
    } else {
        reason.to_string()
    }
}
