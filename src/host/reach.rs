//! No silent GPU loss (docs/architecture.md, engines as they are): after a
//! GPU container starts, launch looks from the host, executing nothing in
//! the container, whether it reaches its GPUs. Engines that drop a GPU
//! request (Podman with toolkit requests, a toolkit whose hook does nothing,
//! a runtime that is not NVIDIA's) start the container without them and say
//! nothing.
//!
//! What is looked at, through `/proc/<pid>/root`: each GPU's device node,
//! the device cgroup where it is readable (cgroup v1), and the driver's
//! libraries where the container's dynamic linker finds them: under
//! launch's own mount in `devices` mode, in the container's `ld.so.cache`
//! otherwise.

use std::path::Path;

use crate::host::gpu::driver::ld_cache;
use crate::spec::{ContainerSpec, InjectionMode};

/// What a GPU container lacks: `[]` when it reaches its GPUs.
pub fn missing(proc_root: &Path, pid: u32, spec: &ContainerSpec) -> Vec<String> {
    let Some(gpu) = &spec.gpu else {
        return Vec::new();
    };
    let root = proc_root.join(pid.to_string()).join("root");
    let mut out = Vec::new();
    // The GPUs' nodes: every mode lists them since schema 2.
    let minors: Vec<u32> = spec
        .devices
        .iter()
        .filter_map(|d| d.container.strip_prefix("/dev/nvidia")?.parse().ok())
        .collect();
    let rules = device_rules(proc_root, pid);
    for minor in &minors {
        let node = root.join(format!("dev/nvidia{minor}"));
        let Some((major, number)) = char_device(&node) else {
            out.push(format!("/dev/nvidia{minor}"));
            continue;
        };
        // The node's own numbers: a stand-in node is allowed as itself.
        if let Some(rules) = &rules
            && !allows(rules, major, number)
        {
            out.push(format!(
                "access to /dev/nvidia{minor} (the container's device cgroup denies {major}:{number})"
            ));
        }
    }
    let wanted = |cap: &str| gpu.capabilities.iter().any(|c| c == cap || c == "all");
    let libraries = [
        ("compute", "libcuda.so.1"),
        ("utility", "libnvidia-ml.so.1"),
    ];
    let cache = match gpu.mode {
        InjectionMode::Devices => None,
        _ => Some(ld_cache(&root)),
    };
    for (_, lib) in libraries.into_iter().filter(|(cap, _)| wanted(cap)) {
        let found = match &cache {
            // Launch's own read-only bind, on LD_LIBRARY_PATH.
            None => root.join("usr/local/nvidia/lib64").join(lib).exists(),
            Some(entries) => entries.iter().any(|(soname, path)| {
                soname == lib && root.join(path.strip_prefix("/").unwrap_or(path)).exists()
            }),
        };
        if !found {
            out.push(match gpu.mode {
                InjectionMode::Devices => format!("{lib} under /usr/local/nvidia/lib64"),
                _ => format!("{lib} in the container's ld.so.cache"),
            });
        }
    }
    out
}

/// A character device's major and minor numbers.
fn char_device(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok()?;
    if !m.file_type().is_char_device() {
        return None;
    }
    let dev = rustix::fs::Dev::from(m.rdev());
    Some((rustix::fs::major(dev), rustix::fs::minor(dev)))
}

/// The container's device cgroup rules (cgroup v1's `devices.list`), when
/// they can be read; cgroup v2 keeps them in a BPF program, not read here.
fn device_rules(proc_root: &Path, pid: u32) -> Option<Vec<String>> {
    let cgroups = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let path = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "devices")
            .then(|| path.to_string())
    })?;
    let list = Path::new("/sys/fs/cgroup/devices")
        .join(path.trim_start_matches('/'))
        .join("devices.list");
    let text = std::fs::read_to_string(list).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

/// Whether `rules` (`c 195:0 rwm`, `a *:* rwm`) let the container read and
/// write character device `major:minor`.
fn allows(rules: &[String], major: u32, minor: u32) -> bool {
    rules.iter().any(|rule| {
        let mut parts = rule.split_whitespace();
        let (Some(kind), Some(numbers), Some(access)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Some((ma, mi)) = numbers.split_once(':') else {
            return false;
        };
        let number = |want: u32, got: &str| got == "*" || got.parse() == Ok(want);
        matches!(kind, "a" | "c")
            && number(major, ma)
            && number(minor, mi)
            && access.contains('r')
            && access.contains('w')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_read_as_the_kernel_reads_them() {
        let rules = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allows(&rules(&["a *:* rwm"]), 195, 0));
        assert!(allows(&rules(&["c 1:3 rwm", "c 195:1 rw"]), 195, 1));
        assert!(!allows(&rules(&["c 195:1 rwm"]), 195, 0));
        assert!(!allows(&rules(&["c 195:0 r"]), 195, 0));
        assert!(allows(&rules(&["c 195:* rwm"]), 195, 7));
        assert!(!allows(&rules(&["b 195:0 rwm"]), 195, 0));
    }
}
