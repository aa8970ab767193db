//! The GPUs as the kernel module shows them under `/proc/driver/nvidia`:
//! enough to tell that a container is in sync, without loading NVML
//! (docs/architecture.md, host facts). `nvmlInit` can cost 100 ms or more
//! on a real host; a cron no-op every minute should not pay it.
//!
//! The view is only taken when it must agree with NVML's: the library NVML
//! would load is of the running module's version (else a reboot is
//! pending, which NVML reports), every GPU shows its UUID (a GPU not yet
//! initialised since boot shows `GPU-????????-…`) and none is excluded
//! (NVML does not count those). Indices follow PCI bus order, as NVML
//! numbers GPUs. Anything else, and every choice, is NVML's.

use std::path::{Path, PathBuf};

use super::Gpu;
use super::nvml::Inventory;

const GPUS_DIR: &str = "proc/driver/nvidia/gpus";
const NVML_STEM: &str = "libnvidia-ml.so.";

/// The driver version and each GPU's index, UUID and minor number, from
/// `<dev_root>/proc/driver/nvidia`; `Err` says why that view might differ
/// from NVML's (see the module's comment), so NVML must be asked.
pub fn inventory(dev_root: &Path, nvml_lib: &Path) -> Result<Inventory, String> {
    let version = super::kernel_module(dev_root)
        .ok_or("proc/driver/nvidia/version cannot be read under --dev-root")?;
    match nvml_version(nvml_lib) {
        Some(v) if v == version => {}
        Some(v) => {
            return Err(format!(
                "the NVML library is {v} and the kernel module {version}"
            ));
        }
        None => return Err(format!("the version of {} is unknown", nvml_lib.display())),
    }
    let listed = |e: std::io::Error| format!("{GPUS_DIR} cannot be listed: {e}");
    let mut buses: Vec<PathBuf> = std::fs::read_dir(dev_root.join(GPUS_DIR))
        .map_err(listed)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(listed)?;
    // `0000:3b:00.0`: fixed-width lowercase hex, so text order is bus order.
    buses.sort();
    let mut gpus = Vec::with_capacity(buses.len());
    for (index, dir) in buses.iter().enumerate() {
        let bus = dir.file_name().unwrap_or_default().to_string_lossy();
        let gpu = crate::host::read_small(&dir.join("information"))
            .and_then(|text| gpu(u32::try_from(index).ok()?, &text))
            .ok_or_else(|| {
                format!(
                    "the GPU at {bus} shows no UUID or minor there (not initialised since boot?) or is excluded"
                )
            })?;
        gpus.push(gpu);
    }
    if gpus.is_empty() {
        return Err(format!("{GPUS_DIR} lists no GPU"));
    }
    Ok(Inventory {
        driver_version: version,
        cuda_version: None,
        gpus,
    })
}

/// One GPU from its `information` file; `None` unless it shows a UUID and
/// a minor number and is not excluded.
pub fn gpu(index: u32, information: &str) -> Option<Gpu> {
    let field = |key: &str| {
        information.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim())
        })
    };
    if field("GPU Excluded").is_some_and(|v| v != "No") {
        return None;
    }
    let uuid = field("GPU UUID").filter(|u| {
        u.starts_with("GPU-")
            && u.len() > 4
            && u[4..].bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
    })?;
    let minor = field("Device Minor")?.parse().ok()?;
    Some(Gpu::new(index, uuid.to_string(), Some(minor)))
}

/// The version of the NVML library `lib` names, from the file it leads to
/// (`libnvidia-ml.so.1` → `libnvidia-ml.so.550.54.15`): a path as given,
/// a bare name as the dynamic linker's cache finds it. `None` when unsure,
/// e.g. under LD_LIBRARY_PATH, which dlopen would search first.
fn nvml_version(lib: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let file = if lib.as_os_str().as_bytes().contains(&b'/') {
        std::fs::canonicalize(lib).ok()?
    } else {
        if std::env::var_os("LD_LIBRARY_PATH").is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let name = lib.to_str()?;
        let (_, path) = super::driver::ld_cache(Path::new("/"))
            .into_iter()
            .find(|(soname, _)| soname == name)?;
        std::fs::canonicalize(path).ok()?
    };
    let version = file.file_name()?.to_str()?.strip_prefix(NVML_STEM)?;
    version
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const H100: &str = "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 0\n\
        GPU UUID: \t GPU-5eed0000-0000-4000-8000-000000000000\nVideo BIOS: \t 96.00.74.00.01\n\
        Bus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n\
        Bus Location: \t 0000:18:00.0\nDevice Minor: \t 3\nGPU Excluded:\t No\n";

    #[test]
    fn an_information_file_gives_the_uuid_and_minor() {
        let gpu = gpu(0, H100).expect("a GPU");
        assert_eq!(gpu.uuid, "GPU-5eed0000-0000-4000-8000-000000000000");
        assert_eq!(gpu.minor, Some(3));
        assert_eq!(gpu.index, 0);
    }

    #[test]
    fn the_nvml_librarys_version_is_read_through_its_link() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("libnvidia-ml.so.550.54.15");
        std::fs::write(&real, "").expect("write");
        std::os::unix::fs::symlink(
            "libnvidia-ml.so.550.54.15",
            dir.path().join("libnvidia-ml.so.1"),
        )
        .expect("link");
        let link = dir.path().join("libnvidia-ml.so.1");
        assert_eq!(nvml_version(&link).as_deref(), Some("550.54.15"));
        // A file whose name tells no version, or none at all: NVML decides.
        let plain = dir.path().join("libnvidia-ml.so");
        std::fs::write(&plain, "").expect("write");
        assert_eq!(nvml_version(&plain), None);
        assert_eq!(nvml_version(&dir.path().join("missing.so.1")), None);
    }

    #[test]
    fn an_uninitialised_or_excluded_gpu_leaves_the_choice_to_nvml() {
        let unknown = H100.replace(
            "GPU-5eed0000-0000-4000-8000-000000000000",
            "GPU-????????-????-????-????-????????????",
        );
        assert_eq!(gpu(0, &unknown), None, "UUID not known yet");
        let excluded = H100.replace("GPU Excluded:\t No", "GPU Excluded:\t Yes");
        assert_eq!(gpu(0, &excluded), None, "NVML does not count it");
        let no_minor = H100.replace("Device Minor: \t 3\n", "");
        assert_eq!(gpu(0, &no_minor), None);
    }
}
