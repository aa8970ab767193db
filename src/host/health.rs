//! The facts `launch doctor` judges (`health::doctor`), read from the host:
//! NVML, the nodes and files under `--dev-root`, the toolkit's hook, the
//! CDI specs. The engine's part comes from the caller.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::health::doctor::{CdiFacts, EngineFacts, Facts, GPU_MAJOR, GpuFacts, Node, cdi_names};

use super::gpu::{GpuHost, Roots, nvml};

/// The host's part of doctor's facts. `gpus` is NVML's snapshot.
pub fn gather(roots: &Roots, gpus: &GpuHost, engine: Option<EngineFacts>) -> Facts {
    let persistence = nvml::persistence_modes(&roots.nvml_lib).unwrap_or_default();
    let dev = roots.dev_root.join("dev");
    let minors: Vec<u32> = gpus.gpus.iter().filter_map(|g| g.minor).collect();
    Facts {
        driver_version: gpus.driver_version.clone(),
        gpus: gpus
            .gpus
            .iter()
            .map(|g| GpuFacts {
                index: g.index,
                uuid: g.uuid.clone(),
                minor: g.minor,
                persistence: persistence.get(g.index as usize).copied().flatten(),
            })
            .collect(),
        kernel_module: gpus.kernel_module.clone(),
        kernel_view: Some(
            super::gpu::procfs::inventory(&roots.dev_root, &roots.nvml_lib).map(|view| {
                view.gpus
                    .into_iter()
                    .map(|g| (g.index, g.uuid, g.minor))
                    .collect()
            }),
        ),
        gpu_nodes: minors
            .iter()
            .map(|m| (*m, node(&dev.join(format!("nvidia{m}")))))
            .collect(),
        nvidiactl: node(&dev.join("nvidiactl")),
        uvm: node(&dev.join("nvidia-uvm")),
        uvm_major: uvm_major(&roots.dev_root),
        missing_char_links: minors
            .iter()
            .copied()
            .filter(|m| {
                dev.join(format!("char/{GPU_MAJOR}:{m}"))
                    .symlink_metadata()
                    .is_err()
            })
            .collect(),
        unopenable_nodes: minors
            .iter()
            .map(|m| dev.join(format!("nvidia{m}")))
            .chain([dev.join("nvidiactl")])
            .filter(|p| p.exists())
            .filter(|p| {
                rustix::fs::access(
                    p,
                    rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
                )
                .is_err()
            })
            .map(|p| p.display().to_string())
            .collect(),
        toolkit_hook: super::find_on_path(super::TOOLKIT_HOOK),
        cdi_dirs: roots.cdi_spec_dirs.clone(),
        cdi_specs: super::nvidia_cdi_specs(&roots.cdi_spec_dirs)
            .into_iter()
            .map(|(path, text)| {
                let (uuids, minors) = cdi_names(&text);
                CdiFacts {
                    path,
                    uuids,
                    minors,
                }
            })
            .collect(),
        engine,
        engine_error: None,
        containers: Vec::new(),
    }
}

/// What a device path is, following symlinks as the engine does.
fn node(path: &Path) -> Node {
    match std::fs::metadata(path) {
        Err(_) => Node::Missing,
        Ok(m) if m.file_type().is_char_device() => {
            let dev = m.rdev();
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
            Node::Char {
                major: u32::try_from(major).unwrap_or(u32::MAX),
            }
        }
        Ok(_) => Node::Other,
    }
}

/// nvidia-uvm's character major from `<dev_root>/proc/devices`.
fn uvm_major(dev_root: &Path) -> Option<u32> {
    let text = super::read_small(&dev_root.join("proc/devices"))?;
    let chars = text.split("Block devices:").next()?;
    chars.lines().find_map(|line| {
        let (major, name) = line.trim().split_once(' ')?;
        (name.trim() == "nvidia-uvm").then(|| major.parse().ok())?
    })
}
