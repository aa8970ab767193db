//! The driver's user-space files, for `devices` mode: what nvidia-docker 1.0
//! put in its driver volume and libnvidia-container mounts today.
//!
//! Only files of the running driver version are taken (`libcuda.so.550.54.15`
//! for driver 550.54.15): a library of another version left behind by an
//! upgrade would fail with "driver/library version mismatch".

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Libraries by capability, as libnvidia-container lists them (nvc_info.c).
const LIBRARIES: &[(&str, &str)] = &[
    ("utility", "libnvidia-ml"),
    ("utility", "libnvidia-cfg"),
    ("utility", "libnvidia-nscq"),
    ("compute", "libcuda"),
    ("compute", "libcudadebugger"),
    ("compute", "libnvidia-opencl"),
    ("compute", "libnvidia-gpucomp"),
    ("compute", "libnvidia-ptxjitcompiler"),
    ("compute", "libnvidia-fatbinaryloader"),
    ("compute", "libnvidia-allocator"),
    ("compute", "libnvidia-compiler"),
    ("compute", "libnvidia-pkcs11"),
    ("compute", "libnvidia-pkcs11-openssl3"),
    ("compute", "libnvidia-nvvm"),
    ("video", "libvdpau_nvidia"),
    ("video", "libnvidia-encode"),
    ("video", "libnvidia-opticalflow"),
    ("video", "libnvcuvid"),
    ("graphics", "libnvidia-eglcore"),
    ("graphics", "libnvidia-glcore"),
    ("graphics", "libnvidia-tls"),
    ("graphics", "libnvidia-glsi"),
    ("graphics", "libnvidia-fbc"),
    ("graphics", "libnvidia-ifr"),
    ("graphics", "libnvidia-rtcore"),
    ("graphics", "libnvoptix"),
    ("graphics", "libGLX_nvidia"),
    ("graphics", "libEGL_nvidia"),
    ("graphics", "libGLESv2_nvidia"),
    ("graphics", "libGLESv1_CM_nvidia"),
    ("graphics", "libnvidia-glvkspirv"),
    ("graphics", "libnvidia-cbl"),
    ("ngx", "libnvidia-ngx"),
];

const BINARIES: &[(&str, &str)] = &[
    ("utility", "nvidia-smi"),
    ("utility", "nvidia-debugdump"),
    ("utility", "nvidia-persistenced"),
    ("compute", "nvidia-cuda-mps-control"),
    ("compute", "nvidia-cuda-mps-server"),
];

const BINARY_DIRS: &[&str] = &["usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin"];

const PERSISTENCED_SOCKETS: &[&str] = &[
    "run/nvidia-persistenced/socket",
    "var/run/nvidia-persistenced/socket",
];

/// Where the persistenced socket goes in the container.
pub const PERSISTENCED_SOCKET: &str = "/run/nvidia-persistenced/socket";

#[derive(Debug, Clone, Default, Serialize)]
pub struct DriverFiles {
    pub libraries: Vec<DriverFile>,
    pub binaries: Vec<DriverFile>,
    /// The persistenced socket on the host, if present.
    pub persistenced_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DriverFile {
    /// The capability that needs it: `compute`, `utility`, `video`, …
    pub capability: &'static str,
    /// The real file on the host (under the driver root).
    pub path: PathBuf,
    /// Its name, e.g. `libcuda.so.550.54.15`.
    pub name: String,
    /// The name programs load it by, e.g. `libcuda.so.1`.
    pub soname: Option<String>,
}

impl DriverFiles {
    pub fn find(root: &Path, version: &str) -> DriverFiles {
        // One entry per file, by name: the cache lists a library under each
        // name that leads to it (`libcuda.so.1` and the linker name
        // `libcuda.so`), and mounting it twice at one target fails.
        let mut libraries: BTreeMap<String, DriverFile> = BTreeMap::new();
        let wanted = |name: &str| -> Option<&'static str> {
            let stem = name.strip_suffix(version)?.strip_suffix(".so.")?;
            LIBRARIES
                .iter()
                .find(|(_, s)| *s == stem)
                .map(|(cap, _)| *cap)
        };
        // The ld.so cache first: it is how the system itself finds the
        // libraries. Its key is the library's soname, which shares the
        // file's stem, so only the driver's entries need their links followed:
        // a host's cache lists a thousand others.
        let driver_soname = |soname: &str| {
            soname
                .split_once(".so")
                .is_some_and(|(stem, _)| LIBRARIES.iter().any(|(_, s)| *s == stem))
        };
        for (soname, path) in ld_cache_entries(root, driver_soname) {
            let real = resolve_in_root(root, &path);
            let Some(name) = real
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let Some(capability) = wanted(&name).filter(|_| real.is_file()) else {
                continue;
            };
            // A soname has a version (`libcuda.so.1`); a linker name
            // (`libcuda.so`, from a -dev package) is not what programs load.
            let soname = Some(soname).filter(|s| is_soname_of(s, &name));
            let entry = libraries.entry(name.clone()).or_insert(DriverFile {
                capability,
                path: real,
                name,
                soname: None,
            });
            if entry.soname.is_none() {
                entry.soname = soname;
            }
        }
        // Then the usual folders, for a cache that is stale or missing: one
        // that knows no library of this version. A fresh cache decides
        // alone, as for libnvidia-container; a host's library folder holds
        // thousands of files, which a no-op every minute should not list.
        // Where /lib links to /usr/lib (merged /usr), a folder is read once:
        // a second reading finds nothing new.
        let mut seen = Vec::new();
        let dirs = if libraries.is_empty() {
            library_dirs()
        } else {
            Vec::new()
        };
        for dir in dirs {
            let dir = root.join(dir);
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            if seen.contains(&(meta.dev(), meta.ino())) {
                continue;
            }
            seen.push((meta.dev(), meta.ino()));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(capability) = name.to_str().and_then(wanted) else {
                    continue;
                };
                let name = name.to_string_lossy().into_owned();
                let path = entry.path();
                if libraries.contains_key(&name)
                    || !path.symlink_metadata().is_ok_and(|m| m.is_file())
                {
                    continue;
                }
                let soname = soname_link(&dir, &name);
                libraries.insert(
                    name.clone(),
                    DriverFile {
                        capability,
                        path,
                        name,
                        soname,
                    },
                );
            }
        }
        let binaries = BINARIES
            .iter()
            .filter_map(|(capability, name)| {
                BINARY_DIRS
                    .iter()
                    .map(|d| root.join(d).join(name))
                    .find(|p| p.is_file())
                    .map(|path| DriverFile {
                        capability,
                        path,
                        name: name.to_string(),
                        soname: None,
                    })
            })
            .collect();
        let persistenced_socket = PERSISTENCED_SOCKETS
            .iter()
            .map(|s| root.join(s))
            .find(|p| p.symlink_metadata().is_ok());
        DriverFiles {
            libraries: libraries.into_values().collect(),
            binaries,
            persistenced_socket,
        }
    }

    /// The files the given capabilities need (`all` takes every one).
    pub fn for_capabilities<'a>(
        &'a self,
        caps: &'a [String],
    ) -> impl Iterator<Item = &'a DriverFile> + 'a {
        let needed = move |f: &&DriverFile| caps.iter().any(|c| c == "all" || c == f.capability);
        self.libraries.iter().chain(&self.binaries).filter(needed)
    }
}

fn library_dirs() -> Vec<String> {
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    vec![
        format!("usr/lib/{triple}"),
        format!("lib/{triple}"),
        "usr/lib64".into(),
        "lib64".into(),
        "usr/lib".into(),
        "lib".into(),
    ]
}

/// Whether `soname` (`libcuda.so.1`) names a version of the library file
/// `name` (`libcuda.so.550.54.15`), rather than being its linker name
/// (`libcuda.so`) or the file's own name.
fn is_soname_of(soname: &str, name: &str) -> bool {
    let Some(base) = name.split(".so.").next() else {
        return false;
    };
    soname != name && soname.starts_with(&format!("{base}.so."))
}

/// A link in `dir` such as `libcuda.so.1` → `libcuda.so.550.54.15`.
fn soname_link(dir: &Path, name: &str) -> Option<String> {
    let base = name.split(".so.").next()?;
    let prefix = format!("{base}.so.");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let link = entry.file_name().to_string_lossy().into_owned();
        // Only a name of this library can be its soname: read no other link.
        if !link.starts_with(&prefix) || link == name {
            return None;
        }
        let target = std::fs::read_link(entry.path()).ok()?;
        (target.file_name()? == name).then_some(link)
    })
}

/// Follows symlinks as if `root` were `/`, so an absolute link target inside a
/// driver root does not escape to the host's own files.
fn resolve_in_root(root: &Path, inside: &Path) -> PathBuf {
    let mut path = inside.to_path_buf();
    for _ in 0..16 {
        let host = root.join(path.strip_prefix("/").unwrap_or(&path));
        let Ok(target) = std::fs::read_link(&host) else {
            return host;
        };
        path = if target.is_absolute() {
            target
        } else {
            path.parent().unwrap_or(Path::new("/")).join(target)
        };
        path = normalize(&path);
    }
    root.join(path.strip_prefix("/").unwrap_or(&path))
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            _ => {}
        }
    }
    out
}

/// The entries of `<root>/etc/ld.so.cache` for this machine's architecture:
/// (soname, path inside the root). glibc's "new" format; a missing or
/// unreadable cache is simply empty (the folder scan still runs).
pub fn ld_cache(root: &Path) -> Vec<(String, PathBuf)> {
    ld_cache_entries(root, |_| true)
}

/// The entries of the cache whose soname `keep` accepts.
fn ld_cache_entries(root: &Path, keep: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    // A real cache is well under a megabyte; a larger file is not read whole.
    match crate::host::read_bounded(&root.join("etc/ld.so.cache"), MAX_CACHE as u64) {
        Some(bytes) => parse_ld_cache(&bytes, keep),
        None => Vec::new(),
    }
}

/// The largest ld.so cache read.
const MAX_CACHE: usize = 16 << 20;
/// The longest soname or path read from it (PATH_MAX).
const MAX_STRING: usize = 4096;

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;

fn parse_ld_cache(bytes: &[u8], keep: impl Fn(&str) -> bool) -> Vec<(String, PathBuf)> {
    // An old-format header may come first; string offsets count from the new one.
    let Some(start) = bytes.windows(MAGIC.len()).position(|w| w == MAGIC) else {
        return Vec::new();
    };
    let cache = &bytes[start..];
    let u32_at = |at: usize| {
        cache
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let string_at = |at: u32| {
        let tail = cache.get(at as usize..)?;
        let end = tail.iter().take(MAX_STRING).position(|&b| b == 0)?;
        std::str::from_utf8(&tail[..end]).ok()
    };
    let Some(count) = u32_at(20) else {
        return Vec::new();
    };
    // The header's count is checked against the file: a cache that claims
    // more entries than it holds is not one (a crafted 48-byte file claimed
    // four billion).
    if count as usize > cache.len().saturating_sub(HEADER) / ENTRY {
        tracing::debug!("ld.so.cache claims {count} entries, more than it holds: not read");
        return Vec::new();
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => Some(0x0300),
        "aarch64" => Some(0x0a00),
        _ => None,
    };
    (0..count as usize)
        .filter_map(|i| {
            let at = HEADER + i * ENTRY;
            let flags = u32_at(at)?;
            if arch.is_some_and(|a| flags & 0xff00 != a) {
                return None;
            }
            let soname = string_at(u32_at(at + 4)?).filter(|s| keep(s))?;
            Some((
                soname.to_string(),
                PathBuf::from(string_at(u32_at(at + 8)?)?),
            ))
        })
        .collect()
}
