//! A fake NVIDIA GPU host for integration tests on machines without a GPU.
//!
//! [`FakeGpuHost::builder`] lays out, in a fresh temporary directory:
//! - `nvml/libnvidia-ml.so.1`: a link to `libnvidia-ml.so.<driver version>`,
//!   `fake_nvml.c` compiled with gcc, plus `nvml/fake-nvml.conf` which that
//!   library reads at `nvmlInit`;
//! - `dev-root/dev/nvidia*`: device nodes (real character devices as root,
//!   symlinks to `/dev/null` otherwise); `dev-root/proc/driver/nvidia/version`
//!   (the kernel module's version, by default the driver's),
//!   `dev-root/proc/driver/nvidia/gpus/<bus>/information` (each GPU's UUID
//!   and minor, as the kernel module shows them) and
//!   `dev-root/proc/devices` (the character majors, nvidia-uvm's among them);
//! - `driver-root/`: driver user-space files (real ELF stubs with the right
//!   sonames, an `ld.so.cache` made by `ldconfig -r`, binaries, the
//!   persistenced socket).
//!
//! Compiled objects are cached under `CARGO_TARGET_TMPDIR` and copied (not
//! linked) into each host, so every host's NVML is a distinct file and
//! `dlopen` gives each one its own copy of the fake's state.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub const DEFAULT_DRIVER_VERSION: &str = "550.54.15";
/// A leftover `libcuda` from an older driver, present in every driver root.
pub const STALE_DRIVER_VERSION: &str = "470.82.01";
/// Where the driver libraries live inside the driver root.
pub const DRIVER_LIB_DIR: &str = "usr/lib/x86_64-linux-gnu";

/// (library stem X in `libX.so.<version>`, soname)
pub const DRIVER_LIBS: &[(&str, &str)] = &[
    ("cuda", "libcuda.so.1"),
    ("nvidia-ml", "libnvidia-ml.so.1"),
    ("nvidia-ptxjitcompiler", "libnvidia-ptxjitcompiler.so.1"),
    ("nvidia-nvvm", "libnvidia-nvvm.so.4"),
    ("nvidia-cfg", "libnvidia-cfg.so.1"),
    ("nvidia-encode", "libnvidia-encode.so.1"),
    ("nvcuvid", "libnvcuvid.so.1"),
    ("nvidia-opticalflow", "libnvidia-opticalflow.so.1"),
    ("nvidia-glcore", "libnvidia-glcore.so.1"),
    ("GLX_nvidia", "libGLX_nvidia.so.0"),
    ("EGL_nvidia", "libEGL_nvidia.so.0"),
    ("nvidia-eglcore", "libnvidia-eglcore.so.1"),
    ("nvidia-allocator", "libnvidia-allocator.so.1"),
];

pub const DRIVER_BINARIES: &[&str] = &[
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
];

/// Shared device nodes: (name, major, minor). nvidia-uvm's major is really
/// allocated at module load (238 on one H200 host), so don't rely on 510.
pub const SHARED_NODES: &[(&str, u32, u32)] = &[
    ("nvidiactl", 195, 255),
    ("nvidia-modeset", 195, 254),
    ("nvidia-uvm", 510, 0),
    ("nvidia-uvm-tools", 510, 1),
];
pub const GPU_NODE_MAJOR: u32 = 195;
/// While this file exists, the fake `nvidia-smi` fails with "Failed to
/// initialize NVML: Unknown Error" (touch it inside a container).
pub const NVIDIA_SMI_FAILS: &str = "/run/fake-nvidia-smi-fails";
/// While this file exists, the fake `nvidia-smi` hangs (30 s), as it does
/// on a GPU that stopped answering.
pub const NVIDIA_SMI_HANGS: &str = "/run/fake-nvidia-smi-hangs";

const FAKE_NVML_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/fake_nvml.c");

/// One fake GPU. Its NVML index is its position in the host's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeGpu {
    pub uuid: String,
    pub minor: u32,
    /// May contain spaces, but not '_' (the config file encodes spaces as '_').
    pub name: String,
    /// NVML form, e.g. `00000000:18:00.0`.
    pub bus_id: String,
    pub mem_total: u64,
    pub mem_used: u64,
    pub util_gpu: u32,
    pub mig: bool,
    /// Persistence mode (on unless a test turns it off).
    pub persistence: bool,
}

impl FakeGpu {
    /// The defaults `gpus(n)` uses for GPU `index`: a deterministic UUID,
    /// minor = index + 2 (deliberately unlike the index), an H100 80GB.
    pub fn new(index: u32) -> Self {
        // DGX H100 bus numbers, so the ids look real; beyond 8 just count up.
        const BUSES: [u32; 8] = [0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB];
        let bus = BUSES.get(index as usize).copied().unwrap_or(0x10 + index);
        FakeGpu {
            uuid: fake_uuid(index),
            minor: index + 2,
            name: "NVIDIA H100 80GB HBM3".to_string(),
            bus_id: format!("00000000:{bus:02X}:00.0"),
            mem_total: 80 << 30,
            mem_used: 1 << 20,
            util_gpu: 0,
            mig: false,
            persistence: true,
        }
    }
}

/// `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, differing from the first
/// digits on so UUID-prefix matching in tests is not accidentally ambiguous.
fn fake_uuid(index: u32) -> String {
    fn splitmix64(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }
    let a = splitmix64(u64::from(index) * 2);
    let b = splitmix64(u64::from(index) * 2 + 1);
    format!(
        "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

/// A laid-out fake host. The temporary directory goes away on drop.
pub struct FakeGpuHost {
    pub root: PathBuf,
    /// `<root>/nvml/libnvidia-ml.so.1` (absent after `without_nvml()`).
    pub nvml_lib: PathBuf,
    /// Contains `dev/nvidia*`.
    pub dev_root: PathBuf,
    pub driver_root: PathBuf,
    /// The CDI spec folder (empty unless the builder asked for a spec).
    pub cdi_dir: PathBuf,
    pub driver_version: String,
    /// The GPUs in NVML index order.
    pub gpus: Vec<FakeGpu>,
    /// True if the nodes under `dev_root` are real character devices (made as
    /// root), false if they are symlinks to `/dev/null`.
    pub char_devices: bool,
    _dir: tempfile::TempDir,
}

impl FakeGpuHost {
    pub fn builder() -> FakeGpuHostBuilder {
        FakeGpuHostBuilder {
            gpus: Vec::new(),
            procs: Vec::new(),
            driver_version: DEFAULT_DRIVER_VERSION.to_string(),
            cuda_version: 12040,
            init_error: None,
            not_supported: Vec::new(),
            omit: Vec::new(),
            without_nvml: false,
            without_nodes: Vec::new(),
            persistenced_socket: true,
            kernel_module: None,
            without_kernel_module: false,
            cdi: None,
            char_links: true,
        }
    }

    /// `["--nvml-lib", .., "--dev-root", .., "--driver-root", ..]`
    pub fn args(&self) -> Vec<String> {
        vec![
            "--nvml-lib".to_string(),
            path_str(&self.nvml_lib),
            "--dev-root".to_string(),
            path_str(&self.dev_root),
            "--driver-root".to_string(),
            path_str(&self.driver_root),
            "--cdi-spec-dir".to_string(),
            path_str(&self.cdi_dir),
        ]
    }

    /// Rewrites the kernel module's version line, as a driver upgrade
    /// without a reboot leaves it (the module differs from the libraries).
    pub fn set_kernel_module_version(&self, version: &str) {
        write(
            &self.dev_root.join("proc/driver/nvidia/version"),
            &kernel_module_line(version),
        );
    }

    /// Shows GPU `uuid` under `/proc/driver/nvidia/gpus` as the driver does
    /// before the GPU is first initialised: `GPU-????????-…`.
    pub fn uninitialise_in_procfs(&self, uuid: &str) {
        let gpu = self
            .gpus
            .iter()
            .find(|g| g.uuid == uuid)
            .unwrap_or_else(|| panic!("fake-gpu: no GPU {uuid}"));
        let text = information(gpu).replace(uuid, "GPU-????????-????-????-????-????????????");
        write(
            &procfs_gpu_dir(&self.dev_root, &gpu.bus_id).join("information"),
            &text,
        );
    }

    /// The config the fake NVML reads; a test may rewrite it between inits.
    pub fn nvml_config(&self) -> PathBuf {
        self.root.join("nvml/fake-nvml.conf")
    }

    /// What the GPUs do from now on, as the next NVML start reads it: the
    /// compute processes (GPU index, pid, SM use in %) instead of those
    /// configured, and each listed GPU's own utilization (index, %).
    pub fn set_usage(&self, procs: &[(u32, u32, u32)], util: &[(u32, u32)]) {
        let path = self.nvml_config();
        let text = std::fs::read_to_string(&path).expect("the fake NVML config");
        let mut out = String::new();
        for line in text.lines().filter(|l| !l.starts_with("proc ")) {
            let index = line
                .strip_prefix("gpu index=")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|i| i.parse::<u32>().ok());
            match index.and_then(|i| util.iter().find(|(g, _)| *g == i)) {
                Some((_, u)) => {
                    let fields: Vec<String> = line
                        .split(' ')
                        .map(|f| match f.strip_prefix("util_gpu=") {
                            Some(_) => format!("util_gpu={u}"),
                            None => f.to_string(),
                        })
                        .collect();
                    out += &fields.join(" ");
                }
                None => out += line,
            }
            out.push('\n');
        }
        for (gpu, pid, sm) in procs {
            out += &format!("proc gpu={gpu} pid={pid} mem=1048576 sm={sm}\n");
        }
        std::fs::write(&path, out).expect("write the fake NVML config");
    }
}

pub struct FakeGpuHostBuilder {
    gpus: Vec<FakeGpu>,
    procs: Vec<(u32, u32, u64)>,
    driver_version: String,
    cuda_version: i32,
    init_error: Option<u32>,
    not_supported: Vec<String>,
    omit: Vec<String>,
    without_nvml: bool,
    without_nodes: Vec<String>,
    persistenced_socket: bool,
    kernel_module: Option<String>,
    without_kernel_module: bool,
    cdi: Option<CdiSpec>,
    char_links: bool,
}

/// Which CDI spec the fake host's CDI folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdiSpec {
    /// Names exactly the host's GPUs, as `nvidia-ctk cdi generate` writes it.
    Fresh,
    /// Written before a GPU change: names a UUID the host no longer has and
    /// lacks its last GPU.
    Stale,
}

/// A UUID no fake GPU has: what a stale CDI spec names.
pub const GONE_UUID: &str = "GPU-deadbeef-0000-4000-8000-00000000dead";

impl FakeGpuHostBuilder {
    /// Append `n` GPUs with the defaults of [`FakeGpu::new`].
    pub fn gpus(mut self, n: usize) -> Self {
        for _ in 0..n {
            let index = self.gpus.len() as u32;
            self.gpus.push(FakeGpu::new(index));
        }
        self
    }

    /// Append `n` GPUs whose minor is their index, as on an ordinary box
    /// (`gpus(n)` makes them differ on purpose).
    pub fn gpus_with_minor_as_index(mut self, n: usize) -> Self {
        for _ in 0..n {
            let index = self.gpus.len() as u32;
            self.gpus.push(FakeGpu {
                minor: index,
                ..FakeGpu::new(index)
            });
        }
        self
    }

    /// Append one explicit GPU (its index is its position).
    pub fn gpu(mut self, gpu: FakeGpu) -> Self {
        self.gpus.push(gpu);
        self
    }

    /// A running compute process on the GPU with NVML index `gpu_index`.
    pub fn process(mut self, gpu_index: u32, pid: u32, mem: u64) -> Self {
        self.procs.push((gpu_index, pid, mem));
        self
    }

    pub fn driver_version(mut self, v: &str) -> Self {
        self.driver_version = v.to_string();
        self
    }

    /// What `nvmlSystemGetCudaDriverVersion_v2` reports (default 12040).
    pub fn cuda_version(mut self, v: i32) -> Self {
        self.cuda_version = v;
        self
    }

    /// `nvmlInit*` returns this `nvmlReturn_t` (9 = driver not loaded).
    pub fn init_error(mut self, code: u32) -> Self {
        self.init_error = Some(code);
        self
    }

    /// That NVML function returns `NVML_ERROR_NOT_SUPPORTED`.
    pub fn not_supported(mut self, function: &str) -> Self {
        self.not_supported.push(function.to_string());
        self
    }

    /// Build an NVML library that lacks this symbol entirely. Never omit
    /// `nvmlShutdown`: nvml-wrapper's `Drop` for `Nvml` panics without it.
    pub fn omit_symbol(mut self, function: &str) -> Self {
        self.omit.push(function.to_string());
        self
    }

    /// `nvml_lib` points to a file that does not exist.
    pub fn without_nvml(mut self) -> Self {
        self.without_nvml = true;
        self
    }

    /// Leave out a device node, e.g. `"nvidia-uvm-tools"` or `"nvidia2"`.
    pub fn without_node(mut self, name: &str) -> Self {
        self.without_nodes.push(name.to_string());
        self
    }

    /// The running kernel module's version, when it differs from the
    /// driver's (a driver upgraded without a reboot).
    pub fn kernel_module_version(mut self, v: &str) -> Self {
        self.kernel_module = Some(v.to_string());
        self
    }

    /// No `proc/driver/nvidia/version` under the dev root.
    pub fn without_kernel_module(mut self) -> Self {
        self.without_kernel_module = true;
        self
    }

    /// `cdi/nvidia.yaml` (the folder `args()` passes as --cdi-spec-dir).
    pub fn cdi_spec(mut self, spec: CdiSpec) -> Self {
        self.cdi = Some(spec);
        self
    }

    /// No `dev/char/195:N` links (a host without the udev rule or
    /// `nvidia-ctk system create-dev-char-symlinks`).
    pub fn without_char_links(mut self) -> Self {
        self.char_links = false;
        self
    }

    pub fn without_persistenced_socket(mut self) -> Self {
        self.persistenced_socket = false;
        self
    }

    /// Lay the host out. Panics with a message on any setup failure.
    pub fn build(self) -> FakeGpuHost {
        self.validate();
        let dir = tempfile::Builder::new()
            .prefix("fake-gpu-host.")
            .tempdir()
            .unwrap_or_else(|e| panic!("fake-gpu: cannot create a temp dir: {e}"));
        let root = dir.path().to_path_buf();
        let nvml_lib = root.join("nvml/libnvidia-ml.so.1");
        let dev_root = root.join("dev-root");
        let driver_root = root.join("driver-root");

        if !self.without_nvml {
            let compiled = cached_fake_nvml(&self.omit);
            mkdir(&root.join("nvml"));
            // A copy, not a hard link: dlopen identifies libraries by inode,
            // and each host's NVML must be its own instance. Named as the
            // driver names it, so its version shows through the link.
            let versioned = format!("libnvidia-ml.so.{}", self.driver_version);
            copy(&compiled, &root.join("nvml").join(&versioned));
            symlink(&versioned, &nvml_lib)
                .unwrap_or_else(|e| panic!("fake-gpu: cannot link {}: {e}", nvml_lib.display()));
            write(&root.join("nvml/fake-nvml.conf"), &self.config());
        }
        let char_devices = self.make_dev_root(&dev_root);
        self.make_proc(&dev_root);
        let cdi_dir = root.join("cdi");
        self.make_cdi(&cdi_dir);
        self.make_driver_root(&driver_root);

        FakeGpuHost {
            root,
            nvml_lib,
            dev_root,
            driver_root,
            cdi_dir,
            driver_version: self.driver_version,
            gpus: self.gpus,
            char_devices,
            _dir: dir,
        }
    }

    fn validate(&self) {
        let token_ok =
            |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '#');
        assert!(self.gpus.len() <= 16, "fake-gpu: at most 16 GPUs");
        assert!(self.procs.len() <= 64, "fake-gpu: at most 64 processes");
        assert!(
            token_ok(&self.driver_version),
            "fake-gpu: bad driver version {:?}",
            self.driver_version
        );
        for (i, gpu) in self.gpus.iter().enumerate() {
            assert!(
                token_ok(&gpu.uuid),
                "fake-gpu: GPU {i}: bad uuid {:?}",
                gpu.uuid
            );
            assert!(
                token_ok(&gpu.bus_id),
                "fake-gpu: GPU {i}: bad bus id {:?}",
                gpu.bus_id
            );
            assert!(
                !gpu.name.is_empty() && !gpu.name.contains(['_', '#', '\t', '\n']),
                "fake-gpu: GPU {i}: name {:?} must be non-empty without '_', '#', tabs or newlines",
                gpu.name
            );
            assert!(
                gpu.mem_used <= gpu.mem_total,
                "fake-gpu: GPU {i}: mem_used > mem_total"
            );
            if let Some(j) = self.gpus[..i]
                .iter()
                .position(|o| o.minor == gpu.minor || o.uuid == gpu.uuid)
            {
                panic!("fake-gpu: GPUs {j} and {i} share a minor number or uuid");
            }
        }
        for &(gpu, pid, _) in &self.procs {
            assert!(
                (gpu as usize) < self.gpus.len(),
                "fake-gpu: process {pid} on GPU {gpu}, which does not exist"
            );
        }
        for f in self.not_supported.iter().chain(&self.omit) {
            assert!(
                !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "fake-gpu: {f:?} is not a function name"
            );
        }
    }

    fn config(&self) -> String {
        let mut c = String::from("# written by tests/support/fake_gpu.rs\n");
        c += &format!(
            "driver {}\ncuda {}\n",
            self.driver_version, self.cuda_version
        );
        if let Some(code) = self.init_error {
            c += &format!("init_error {code}\n");
        }
        for f in &self.not_supported {
            c += &format!("not_supported {f}\n");
        }
        for (i, g) in self.gpus.iter().enumerate() {
            c += &format!(
                "gpu index={i} uuid={} minor={} name={} bus={} mem_total={} mem_used={} util_gpu={} util_mem=0 mig={} persistence={}\n",
                g.uuid,
                g.minor,
                g.name.replace(' ', "_"),
                g.bus_id,
                g.mem_total,
                g.mem_used,
                g.util_gpu,
                u8::from(g.mig),
                u8::from(g.persistence)
            );
        }
        for (gpu, pid, mem) in &self.procs {
            c += &format!("proc gpu={gpu} pid={pid} mem={mem}\n");
        }
        c
    }

    /// What the driver shows under /proc: the kernel module's version line
    /// (as the proprietary module writes it) and the character majors.
    fn make_proc(&self, dev_root: &Path) {
        if !self.without_kernel_module {
            let version = self
                .kernel_module
                .as_deref()
                .unwrap_or(&self.driver_version);
            mkdir(&dev_root.join("proc/driver/nvidia"));
            write(
                &dev_root.join("proc/driver/nvidia/version"),
                &kernel_module_line(version),
            );
            for gpu in &self.gpus {
                let dir = procfs_gpu_dir(dev_root, &gpu.bus_id);
                mkdir(&dir);
                write(&dir.join("information"), &information(gpu));
            }
        }
        let uvm = SHARED_NODES
            .iter()
            .find(|(n, _, _)| *n == "nvidia-uvm")
            .map_or(510, |&(_, major, _)| major);
        write(
            &dev_root.join("proc/devices"),
            &format!(
                "Character devices:\n  1 mem\n  4 /dev/vc/0\n{GPU_NODE_MAJOR} nvidia-frontend\n{uvm} nvidia-uvm\n\nBlock devices:\n  7 loop\n"
            ),
        );
    }

    /// The CDI folder, and in it a spec as `nvidia-ctk cdi generate` writes
    /// one (devices by index and by UUID), if asked for.
    fn make_cdi(&self, dir: &Path) {
        mkdir(dir);
        let Some(kind) = self.cdi else { return };
        let mut gpus: Vec<(String, u32)> = self
            .gpus
            .iter()
            .map(|g| (g.uuid.clone(), g.minor))
            .collect();
        if kind == CdiSpec::Stale {
            gpus.pop();
            gpus.push((GONE_UUID.to_string(), 99));
        }
        let mut yaml = String::from("---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n");
        for (i, (uuid, minor)) in gpus.iter().enumerate() {
            for name in [i.to_string(), uuid.clone()] {
                yaml += &format!(
                    "- name: \"{name}\"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia{minor}\n"
                );
            }
        }
        yaml += "containerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n  - path: /dev/nvidia-uvm\n";
        write(&dir.join("nvidia.yaml"), &yaml);
    }

    /// Returns whether the nodes are real character devices.
    fn make_dev_root(&self, dev_root: &Path) -> bool {
        let dev = dev_root.join("dev");
        mkdir(&dev);
        let mut nodes: Vec<(String, u32, u32)> = self
            .gpus
            .iter()
            .map(|g| (format!("nvidia{}", g.minor), GPU_NODE_MAJOR, g.minor))
            .collect();
        nodes.extend(
            SHARED_NODES
                .iter()
                .map(|&(n, ma, mi)| (n.to_string(), ma, mi)),
        );
        nodes.retain(|(n, _, _)| !self.without_nodes.contains(n));

        // mknod needs root (and CAP_MKNOD: some containers drop it), so fall
        // back to /dev/null symlinks whenever the first mknod fails.
        let mut char_devices = is_root();
        for (name, major, minor) in &nodes {
            let path = dev.join(name);
            if char_devices {
                let ok = Command::new("mknod")
                    .args(["-m", "666"])
                    .arg(&path)
                    .args(["c", &major.to_string(), &minor.to_string()])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    continue;
                }
                assert!(
                    name == &nodes[0].0,
                    "fake-gpu: mknod {} failed after earlier ones worked",
                    path.display()
                );
                char_devices = false;
            }
            symlink("/dev/null", &path)
                .unwrap_or_else(|e| panic!("fake-gpu: symlink {}: {e}", path.display()));
        }
        // What NVIDIA's udev rule (or `nvidia-ctk system
        // create-dev-char-symlinks`) makes: dev/char/MAJOR:MINOR links.
        if self.char_links {
            mkdir(&dev.join("char"));
            for (name, major, minor) in nodes
                .iter()
                .filter(|(_, major, _)| *major == GPU_NODE_MAJOR)
            {
                let link = dev.join(format!("char/{major}:{minor}"));
                symlink(format!("../{name}"), &link)
                    .unwrap_or_else(|e| panic!("fake-gpu: symlink {}: {e}", link.display()));
            }
        }
        char_devices
    }

    /// `nvidia-smi` as the fake driver's: `-L` lists the GPUs; while the
    /// file [`NVIDIA_SMI_FAILS`] exists where it runs (in a container: the
    /// container's), it fails as NVML does in a container whose GPUs a
    /// `systemctl daemon-reload` took away; [`NVIDIA_SMI_HANGS`] makes it hang.
    fn fake_nvidia_smi(&self) -> String {
        let list: String = self
            .gpus
            .iter()
            .enumerate()
            .map(|(i, g)| format!("echo 'GPU {i}: {} (UUID: {})'\n", g.name, g.uuid))
            .collect();
        format!(
            "#!/bin/sh\nif [ -e {NVIDIA_SMI_HANGS} ]; then\n  sleep 30\nfi\nif [ -e {NVIDIA_SMI_FAILS} ]; then\n  echo 'Failed to initialize NVML: Unknown Error'\n  exit 255\nfi\nif [ \"$1\" = -L ]; then\n{list}  exit 0\nfi\necho \"fake nvidia-smi\"\n"
        )
    }

    fn make_driver_root(&self, root: &Path) {
        let v = &self.driver_version;
        let lib_dir = root.join(DRIVER_LIB_DIR);
        mkdir(&lib_dir);
        mkdir(&root.join("etc"));
        write(
            &root.join("etc/ld.so.conf"),
            &format!("/{DRIVER_LIB_DIR}\n"),
        );

        for (stem, soname) in DRIVER_LIBS {
            copy(
                &cached_stub_lib(soname),
                &lib_dir.join(format!("lib{stem}.so.{v}")),
            );
        }
        if v != STALE_DRIVER_VERSION {
            copy(
                &cached_stub_lib("libcuda.so.1"),
                &lib_dir.join(format!("libcuda.so.{STALE_DRIVER_VERSION}")),
            );
        }

        // ldconfig -r chroots, which needs root; elsewhere a user namespace
        // grants that. It writes etc/ld.so.cache and the soname symlinks.
        let mut cmd = if is_root() {
            Command::new(ldconfig())
        } else {
            let mut c = Command::new("unshare");
            c.args(["--map-root-user", "--"]).arg(ldconfig());
            c
        };
        let out = cmd
            .arg("-r")
            .arg(root)
            .output()
            .unwrap_or_else(|e| panic!("fake-gpu: cannot run ldconfig: {e}"));
        assert!(
            out.status.success() && root.join("etc/ld.so.cache").is_file(),
            "fake-gpu: ldconfig -r {} failed ({}): {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The cache maps libcuda.so.1 to the libcuda.so.1 symlink, and
        // ldconfig points that at the highest version present: the stale
        // library wins if the current driver version sorts below it. Real
        // installers own that link, so make it name the current driver.
        let link = lib_dir.join("libcuda.so.1");
        let want = PathBuf::from(format!("libcuda.so.{v}"));
        if fs::read_link(&link).ok().as_ref() != Some(&want) {
            let _ = fs::remove_file(&link);
            symlink(&want, &link)
                .unwrap_or_else(|e| panic!("fake-gpu: symlink {}: {e}", link.display()));
        }

        let bin = root.join("usr/bin");
        mkdir(&bin);
        for name in DRIVER_BINARIES {
            let path = bin.join(name);
            let body = if *name == "nvidia-smi" {
                self.fake_nvidia_smi()
            } else {
                format!("#!/bin/sh\necho \"fake {name}\"\n")
            };
            write(&path, &body);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("fake-gpu: chmod {}: {e}", path.display()));
        }

        if self.persistenced_socket {
            let dir = root.join("run/nvidia-persistenced");
            mkdir(&dir);
            write(&dir.join("socket"), "");
        }
    }
}

/// `<dev_root>/proc/driver/nvidia/gpus/0000:18:00.0` for NVML's bus id
/// `00000000:18:00.0`: the kernel's four-digit domain, lowercase.
fn procfs_gpu_dir(dev_root: &Path, bus_id: &str) -> PathBuf {
    let short = &bus_id[bus_id.len().saturating_sub(12)..];
    dev_root
        .join("proc/driver/nvidia/gpus")
        .join(short.to_ascii_lowercase())
}

/// A GPU's `information` file, as the driver writes it.
fn information(gpu: &FakeGpu) -> String {
    let bus = &gpu.bus_id[gpu.bus_id.len().saturating_sub(12)..];
    format!(
        "Model: \t\t {}\nIRQ:   \t\t 0\nGPU UUID: \t {}\nVideo BIOS: \t 96.00.74.00.01\n\
         Bus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n\
         Bus Location: \t {}\nDevice Minor: \t {}\nGPU Excluded:\t No\n",
        gpu.name,
        gpu.uuid,
        bus.to_ascii_lowercase(),
        gpu.minor
    )
}

/// `/proc/driver/nvidia/version` as the proprietary module writes it.
fn kernel_module_line(version: &str) -> String {
    format!(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {version}  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
}

// ---- compile cache -------------------------------------------------------

/// `fake_nvml.c` built without the given symbols, cached per flag set.
fn cached_fake_nvml(omit: &[String]) -> PathBuf {
    let source = fs::read_to_string(FAKE_NVML_SOURCE)
        .unwrap_or_else(|e| panic!("fake-gpu: cannot read {FAKE_NVML_SOURCE}: {e}"));
    let mut omit: Vec<&str> = omit.iter().map(String::as_str).collect();
    omit.sort_unstable();
    omit.dedup();
    for f in &omit {
        // An OMIT_ flag without a guard would silently omit nothing.
        assert!(
            source.contains(&format!("#ifndef OMIT_{f}\n")),
            "fake-gpu: fake_nvml.c does not implement {f}, so it cannot be omitted"
        );
    }
    // The source is part of the key, so editing fake_nvml.c rebuilds.
    let key = format!("{source}\0{}", omit.join(","));
    cached("libnvidia-ml-fake", &key, |out| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(out)
            .arg(FAKE_NVML_SOURCE)
            .arg("-ldl");
        cmd.args(omit.iter().map(|f| format!("-DOMIT_{f}")));
        run_gcc(cmd, None);
    })
}

/// A minimal ELF shared object with this soname.
fn cached_stub_lib(soname: &str) -> PathBuf {
    let source = format!("const char fake_nvidia_driver_stub[] = \"{soname}\";\n");
    cached(soname, &source, |out| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-x", "c", "-", "-shared", "-fPIC", "-O1"])
            .arg(format!("-Wl,-soname,{soname}"))
            .arg("-o")
            .arg(out);
        run_gcc(cmd, Some(&source));
    })
}

/// Build once into the shared cache dir. Parallel test processes may race:
/// each compiles to its own temp name and renames, which is atomic.
fn cached(name: &str, key: &str, compile: impl FnOnce(&Path)) -> PathBuf {
    // Serialise compiles within this process (the machine may be small).
    static LOCK: Mutex<()> = Mutex::new(());
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fake-gpu-cache");
    let path = dir.join(format!("{name}-{:016x}.so", h.finish()));
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if path.is_file() {
        return path;
    }
    mkdir(&dir);
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    compile(&tmp);
    fs::rename(&tmp, &path).unwrap_or_else(|e| {
        panic!(
            "fake-gpu: rename {} -> {}: {e}",
            tmp.display(),
            path.display()
        )
    });
    path
}

fn run_gcc(mut cmd: Command, stdin: Option<&str>) {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("fake-gpu: cannot run gcc (is it installed?): {e}"));
    if let Some(src) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(src.as_bytes())
            .unwrap_or_else(|e| panic!("fake-gpu: writing to gcc: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("fake-gpu: gcc: {e}"));
    assert!(
        out.status.success(),
        "fake-gpu: {cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- small helpers ---------------------------------------------------------

fn is_root() -> bool {
    // /proc/self is owned by the effective uid; this avoids a libc dependency.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// ldconfig lives in /sbin, which is often not on a normal user's PATH.
pub fn ldconfig() -> PathBuf {
    ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("ldconfig"))
}

fn path_str(p: &Path) -> String {
    p.to_str()
        .unwrap_or_else(|| panic!("fake-gpu: non-UTF-8 path {}", p.display()))
        .to_string()
}

fn mkdir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("fake-gpu: mkdir {}: {e}", p.display()));
}

fn write(p: &Path, contents: &str) {
    fs::write(p, contents).unwrap_or_else(|e| panic!("fake-gpu: write {}: {e}", p.display()));
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("fake-gpu: copy {} -> {}: {e}", from.display(), to.display()));
}
