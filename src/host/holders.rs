//! Who holds each GPU (docs/architecture.md, shared hosts): launch
//! containers by their `launch.gpus` label, and every process NVML reports,
//! traced through `/proc/<pid>/cgroup` (NVML reports host pids) to the
//! container it runs in, or else named as a host process with its user.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use super::gpu::Gpu;
use crate::engine::Observed;
use crate::spec::label;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Holder {
    /// A container launch made.
    Launch {
        name: String,
        owner: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A container launch did not make.
    Container { name: String, pid: u32 },
    /// A process outside any container.
    Process {
        pid: u32,
        user: String,
        name: String,
    },
}

impl Holder {
    /// One line for the table.
    pub fn describe(&self) -> String {
        match self {
            Holder::Launch { name, owner, .. } => format!("{name} ({owner})"),
            Holder::Container { name, pid } => format!("container {name} (pid {pid})"),
            Holder::Process { pid, user, name } => format!("pid {pid} {user}: {name}"),
        }
    }
}

/// The container id in a `/proc/<pid>/cgroup`: Docker's cgroupfs paths
/// (`/docker/<id>`) and systemd's (`docker-<id>.scope`), and Podman's
/// (`/libpod_parent/libpod-<id>`, `libpod-<id>.scope`), v1 and v2.
pub fn container_id(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').find_map(|part| {
            let part = part.strip_suffix(".scope").unwrap_or(part);
            let id = part
                .strip_prefix("docker-")
                .or_else(|| part.strip_prefix("libpod-"))
                .unwrap_or(part);
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
        })
    })
}

/// The holders of each GPU, by UUID. `containers` are the engine's (id,
/// name) of every container; `proc_root` is where `/proc` is.
pub fn holders(
    gpus: &[Gpu],
    managed: &[Observed],
    containers: &[(String, String)],
    proc_root: &Path,
) -> BTreeMap<String, Vec<Holder>> {
    let owner = |c: &Observed| {
        c.labels
            .get(label::OWNER)
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    };
    let names: HashMap<&str, &str> = containers
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let mut out: BTreeMap<String, Vec<Holder>> = BTreeMap::new();
    for c in managed {
        for uuid in c.gpus() {
            out.entry(uuid).or_default().push(Holder::Launch {
                name: c.name.clone(),
                owner: owner(c),
                pid: None,
            });
        }
    }
    for g in gpus {
        let list = out.entry(g.uuid.clone()).or_default();
        for p in g.processes.iter().flatten() {
            let dir = proc_root.join(p.pid.to_string());
            let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
            let holder = match container_id(&cgroup) {
                Some(id) => {
                    let name = names
                        .get(id.as_str())
                        .map_or_else(|| id[..12].to_string(), |n| n.to_string());
                    match managed.iter().find(|c| c.id == id) {
                        // Already named by its label: note the pid.
                        Some(c) => {
                            if let Some(Holder::Launch { pid, .. }) = list.iter_mut().find(
                                |h| matches!(h, Holder::Launch { name, .. } if *name == c.name),
                            ) {
                                *pid = Some(p.pid);
                                continue;
                            }
                            Holder::Launch {
                                name,
                                owner: owner(c),
                                pid: Some(p.pid),
                            }
                        }
                        None => Holder::Container { name, pid: p.pid },
                    }
                }
                None => Holder::Process {
                    pid: p.pid,
                    user: std::fs::metadata(&dir)
                        .map(|m| {
                            crate::owner::user_name(m.uid()).unwrap_or_else(|| m.uid().to_string())
                        })
                        .unwrap_or_else(|_| "?".into()),
                    name: command(&dir),
                },
            };
            if !list.contains(&holder) {
                list.push(holder);
            }
        }
    }
    out
}

/// A process's command line, shortened; its `comm` when it has none.
fn command(dir: &Path) -> String {
    let line = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let line: String = String::from_utf8_lossy(&line)
        .split('\0')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = if line.is_empty() {
        std::fs::read_to_string(dir.join("comm"))
            .unwrap_or_else(|_| "?".into())
            .trim()
            .to_string()
    } else {
        line
    };
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_found_in_cgroupfs_and_systemd_paths() {
        let id = "a".repeat(64);
        assert_eq!(
            container_id(&format!("12:memory:/docker/{id}\n")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("0::/system.slice/docker-{id}.scope\n")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("5:devices:/libpod_parent/libpod-{id}\n")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("0::/machine.slice/libpod-{id}.scope/container\n")),
            Some(id.clone())
        );
        assert_eq!(
            container_id("0::/user.slice/user-1000.slice/session-2.scope\n"),
            None
        );
        assert_eq!(container_id("9:name=systemd:/\n"), None);
    }

    fn gpu(uuid: &str, pids: &[u32]) -> Gpu {
        Gpu {
            index: 0,
            uuid: uuid.into(),
            pci_bus_id: None,
            minor: None,
            name: None,
            memory_total: None,
            memory_used: None,
            utilization: None,
            processes: Some(
                pids.iter()
                    .map(|&pid| super::super::gpu::GpuProcess {
                        pid,
                        used_memory: None,
                    })
                    .collect(),
            ),
            mig: None,
        }
    }

    #[test]
    fn a_fake_proc_names_containers_launch_containers_and_host_processes() {
        let proc_root = tempfile::tempdir().unwrap();
        let write = |pid: u32, file: &str, text: &[u8]| {
            let dir = proc_root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), text).unwrap();
        };
        let (theirs, ours) = ("1".repeat(64), "2".repeat(64));
        write(
            10,
            "cgroup",
            format!("0::/system.slice/docker-{theirs}.scope\n").as_bytes(),
        );
        write(11, "cgroup", b"0::/user.slice/user-1000.slice\n");
        write(11, "cmdline", b"python\0train.py\0");
        write(
            12,
            "cgroup",
            format!("4:memory:/docker/{ours}\n").as_bytes(),
        );
        let managed = Observed {
            id: ours.clone(),
            name: "alice-dev".into(),
            state: crate::engine::State::Running,
            labels: [
                (label::GPUS.to_string(), "GPU-b".to_string()),
                (label::OWNER.to_string(), "alice".to_string()),
            ]
            .into(),
            image_id: String::new(),
            image: String::new(),
            started_at: String::new(),
            created: String::new(),
            health: None,
        };
        let containers = [
            (theirs, "jupyter".to_string()),
            (ours, "alice-dev".to_string()),
        ];
        // The process's user is the owner of its /proc folder: whoever runs the test.
        let uid = std::fs::metadata(proc_root.path().join("11"))
            .unwrap()
            .uid();
        let me = crate::owner::user_name(uid).unwrap_or_else(|| uid.to_string());
        let held = holders(
            &[gpu("GPU-a", &[10, 11]), gpu("GPU-b", &[12])],
            &[managed],
            &containers,
            proc_root.path(),
        );
        assert_eq!(
            held["GPU-a"],
            [
                Holder::Container {
                    name: "jupyter".into(),
                    pid: 10
                },
                Holder::Process {
                    pid: 11,
                    user: me,
                    name: "python train.py".into()
                },
            ]
        );
        assert_eq!(
            held["GPU-b"],
            [Holder::Launch {
                name: "alice-dev".into(),
                owner: "alice".into(),
                pid: Some(12)
            }]
        );
    }
}
