//! Device nodes: `/dev/nvidia<minor>` per GPU and the shared control nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Gpu;

/// The shared nodes a CUDA program may open, each used when present.
pub const SHARED: &[&str] = &[
    "nvidiactl",
    "nvidia-uvm",
    "nvidia-uvm-tools",
    "nvidia-modeset",
];

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceNodes {
    /// GPU minor number → host path, for the nodes that exist.
    pub gpus: BTreeMap<u32, PathBuf>,
    /// Shared nodes that exist: (name, host path).
    pub shared: Vec<(String, PathBuf)>,
}

impl DeviceNodes {
    pub fn find(dev_root: &Path, gpus: &[Gpu]) -> DeviceNodes {
        let dev = dev_root.join("dev");
        let exists = |p: &Path| p.symlink_metadata().is_ok();
        DeviceNodes {
            gpus: gpus
                .iter()
                .filter_map(|g| g.minor)
                .map(|minor| (minor, dev.join(format!("nvidia{minor}"))))
                .filter(|(_, path)| exists(path))
                .collect(),
            shared: SHARED
                .iter()
                .map(|name| (name.to_string(), dev.join(name)))
                .filter(|(_, path)| exists(path))
                .collect(),
        }
    }
}
