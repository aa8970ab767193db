//! Proves the fake GPU host works on its own, through nvml-wrapper directly
//! (no `launch` code involved), so launch's tests can trust it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

use crate::support::fake_gpu::{FakeGpu, FakeGpuHost, ldconfig};
use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;

fn init(host: &FakeGpuHost) -> Result<Nvml, NvmlError> {
    Nvml::builder().lib_path(host.nvml_lib.as_os_str()).init()
}

#[test]
fn nvml_wrapper_sees_the_fake_gpus() {
    let host = FakeGpuHost::builder()
        .gpus(3)
        .process(1, 4242, 1 << 30)
        .not_supported("nvmlDeviceGetUtilizationRates")
        .build();
    let nvml = init(&host).expect("init fake NVML");

    assert_eq!(nvml.device_count().unwrap(), 3);
    assert_eq!(nvml.sys_driver_version().unwrap(), "550.54.15");
    assert_eq!(nvml.sys_cuda_driver_version().unwrap(), 12040);

    for (i, want) in host.gpus.iter().enumerate() {
        let i = i as u32;
        let d = nvml.device_by_index(i).unwrap();
        assert_eq!(d.index().unwrap(), i);
        assert_eq!(d.uuid().unwrap(), want.uuid);
        assert_eq!(
            d.minor_number().unwrap(),
            i + 2,
            "minor numbers are deliberately not the index"
        );
        assert_eq!(d.name().unwrap(), "NVIDIA H100 80GB HBM3");
        assert_eq!(d.pci_info().unwrap().bus_id, want.bus_id);
        let mem = d.memory_info().unwrap();
        assert_eq!(
            (mem.total, mem.used, mem.free),
            (80 << 30, 1 << 20, (80 << 30) - (1 << 20))
        );
        assert_eq!(d.mig_mode().unwrap().current, 0);
        assert!(d.running_graphics_processes().unwrap().is_empty());
        assert!(matches!(
            d.utilization_rates(),
            Err(NvmlError::NotSupported)
        ));
        assert_eq!(
            nvml.device_by_uuid(want.uuid.as_str())
                .unwrap()
                .index()
                .unwrap(),
            i
        );
    }
    let uuids: std::collections::HashSet<_> = host.gpus.iter().map(|g| &g.uuid).collect();
    assert_eq!(uuids.len(), 3);
    assert!(matches!(
        nvml.device_by_uuid("GPU-nope"),
        Err(NvmlError::NotFound)
    ));
    assert!(matches!(
        nvml.device_by_index(3),
        Err(NvmlError::InvalidArg)
    ));

    assert!(
        nvml.device_by_index(0)
            .unwrap()
            .running_compute_processes()
            .unwrap()
            .is_empty()
    );
    let procs = nvml
        .device_by_index(1)
        .unwrap()
        .running_compute_processes()
        .unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0].pid, 4242);
    assert_eq!(procs[0].used_gpu_memory, UsedGpuMemory::Used(1 << 30));
    assert_eq!(procs[0].gpu_instance_id, None);

    // A second, different library in the same process: its own state.
    let other = FakeGpuHost::builder()
        .gpu(FakeGpu {
            mig: true,
            name: "NVIDIA A100-SXM4-40GB".into(),
            ..FakeGpu::new(0)
        })
        .omit_symbol("nvmlDeviceGetMemoryInfo_v2")
        .driver_version("535.104.05")
        .build();
    let nvml2 = init(&other).expect("init second fake NVML");
    assert_eq!(nvml2.device_count().unwrap(), 1);
    assert_eq!(nvml2.sys_driver_version().unwrap(), "535.104.05");
    let d = nvml2.device_by_index(0).unwrap();
    assert_eq!(d.mig_mode().unwrap().current, 1);
    assert_eq!(d.name().unwrap(), "NVIDIA A100-SXM4-40GB");
    match d.memory_info() {
        Err(NvmlError::FailedToLoadSymbol(msg)) => {
            assert!(msg.contains("nvmlDeviceGetMemoryInfo_v2"), "{msg}")
        }
        other => panic!("expected FailedToLoadSymbol, got {other:?}"),
    }
    assert_eq!(
        nvml.device_count().unwrap(),
        3,
        "the first library is unaffected"
    );
    drop(nvml2);

    let broken = FakeGpuHost::builder().gpus(1).init_error(9).build();
    assert!(matches!(init(&broken), Err(NvmlError::DriverNotLoaded)));

    let missing = FakeGpuHost::builder().gpus(1).without_nvml().build();
    assert!(!missing.nvml_lib.exists());
    assert!(matches!(init(&missing), Err(NvmlError::LibloadingError(_))));

    nvml.shutdown().expect("shutdown");
}

/// `ldconfig -p -C cache`: "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/.../libcuda.so.1"
fn ld_cache_lookup(cache: &std::path::Path, soname: &str) -> Option<String> {
    let out = Command::new(ldconfig())
        .arg("-p")
        .arg("-C")
        .arg(cache)
        .output()
        .expect("ldconfig runs");
    assert!(
        out.status.success(),
        "ldconfig -p: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("ldconfig prints UTF-8")
        .lines()
        .filter_map(|l| l.trim().split_once(" => "))
        .find(|(lhs, _)| lhs.split_whitespace().next() == Some(soname))
        .map(|(_, path)| path.to_string())
}

#[test]
fn fake_host_files_look_like_a_driver_install() {
    let host = FakeGpuHost::builder()
        .gpus(2)
        .without_node("nvidia-uvm-tools")
        .build();
    let args = host.args();
    assert_eq!(args.len(), 8);
    assert_eq!(args[0], "--nvml-lib");
    assert_eq!(args[6], "--cdi-spec-dir");
    assert!(host.cdi_dir.is_dir(), "an empty CDI folder by default");
    // What the driver shows under /proc, and NVIDIA's udev links.
    let version =
        std::fs::read_to_string(host.dev_root.join("proc/driver/nvidia/version")).unwrap();
    assert!(
        version.starts_with(&format!(
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  ",
            host.driver_version
        )),
        "{version}"
    );
    let devices = std::fs::read_to_string(host.dev_root.join("proc/devices")).unwrap();
    assert!(devices.contains("\n510 nvidia-uvm\n"), "{devices}");
    assert_eq!(
        std::fs::read_link(host.dev_root.join("dev/char/195:3")).unwrap(),
        std::path::PathBuf::from("../nvidia3")
    );
    assert_eq!(args[3], host.dev_root.to_str().unwrap());

    let dev = host.dev_root.join("dev");
    for (name, major, minor) in [
        ("nvidia2", 195, 2),
        ("nvidia3", 195, 3),
        ("nvidiactl", 195, 255),
        ("nvidia-modeset", 195, 254),
        ("nvidia-uvm", 510, 0),
    ] {
        let meta =
            std::fs::symlink_metadata(dev.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        if host.char_devices {
            assert!(meta.file_type().is_char_device(), "{name}");
            let rdev = meta.rdev();
            let (ma, mi) = (
                ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff),
                (rdev & 0xff) | ((rdev >> 12) & !0xff),
            );
            assert_eq!((ma, mi), (major, minor), "{name}");
        } else {
            assert!(meta.file_type().is_symlink(), "{name}");
        }
    }
    assert!(!dev.join("nvidia0").exists() && !dev.join("nvidia-uvm-tools").exists());

    // The cache resolves libcuda.so.1 to the current driver, not the stale one.
    let lib_dir = host.driver_root.join("usr/lib/x86_64-linux-gnu");
    assert!(lib_dir.join("libcuda.so.470.82.01").is_file());
    let cache = host.driver_root.join("etc/ld.so.cache");
    for (soname, file) in [
        ("libcuda.so.1", "libcuda.so.550.54.15"),
        ("libnvidia-ml.so.1", "libnvidia-ml.so.550.54.15"),
        ("libnvidia-nvvm.so.4", "libnvidia-nvvm.so.550.54.15"),
        ("libGLX_nvidia.so.0", "libGLX_nvidia.so.550.54.15"),
    ] {
        let path =
            ld_cache_lookup(&cache, soname).unwrap_or_else(|| panic!("{soname} not in the cache"));
        assert_eq!(path, format!("/usr/lib/x86_64-linux-gnu/{soname}"));
        let real =
            std::fs::canonicalize(host.driver_root.join(path.trim_start_matches('/'))).unwrap();
        assert_eq!(real.file_name().unwrap(), file, "{soname}");
    }

    let smi = Command::new(host.driver_root.join("usr/bin/nvidia-smi"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&smi.stdout).trim(),
        "fake nvidia-smi"
    );
    assert!(
        host.driver_root
            .join("usr/bin/nvidia-cuda-mps-server")
            .is_file()
    );
    assert!(
        host.driver_root
            .join("run/nvidia-persistenced/socket")
            .exists()
    );

    // A driver older than the stale library still owns libcuda.so.1.
    let old = FakeGpuHost::builder()
        .gpus(1)
        .driver_version("418.226.00")
        .without_persistenced_socket()
        .build();
    let link = old
        .driver_root
        .join("usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert_eq!(
        std::fs::read_link(link).unwrap().to_str(),
        Some("libcuda.so.418.226.00")
    );
    assert!(
        !old.driver_root
            .join("run/nvidia-persistenced/socket")
            .exists()
    );

    let root = host.root.clone();
    drop(host);
    assert!(!root.exists(), "the temp dir is removed on drop");
}
