//! Which GPUs a profile gets (docs/architecture.md, resolve). Pure: the host snapshot
//! and the engine's labels come in, UUIDs go out.

use std::collections::BTreeMap;

use super::{Gpu, GpuHost};
use crate::profile::{GpuRef, GpuSelection, Span};

/// Why no GPUs could be chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectError {
    /// A problem with what the profile asks for on this host, at `span`.
    Profile {
        span: Span,
        message: String,
        help: Option<String>,
    },
    /// `{ count = N }` and fewer than N are free (exit 3).
    NotEnoughFree { wanted: u32, report: String },
}

/// GPUs held by other launch-managed containers: UUID → container name.
pub type Held = BTreeMap<String, String>;

/// Chooses the GPUs for `selection`. `previous` is what this profile's container
/// holds now: a count selection keeps it while those GPUs still exist, so each
/// cron run does not see drift.
pub fn select<'h>(
    selection: &GpuSelection,
    span: &Span,
    host: &'h GpuHost,
    held: &Held,
    previous: Option<&[String]>,
) -> Result<Vec<&'h Gpu>, SelectError> {
    if host.gpus.is_empty() {
        return Err(SelectError::Profile {
            span: span.clone(),
            message: "this host has no GPUs: NVML lists none".into(),
            help: Some(
                "`nvidia-smi -L` should list them; leave `gpus` out for a CPU-only container"
                    .into(),
            ),
        });
    }
    match selection {
        GpuSelection::All => Ok(host.gpus.iter().collect()),
        GpuSelection::List(list) => {
            let mut chosen: Vec<&Gpu> = Vec::with_capacity(list.len());
            for (r, span) in list {
                let gpu = by_ref(host, r, span)?;
                // `check` catches `[0, 0]`; an index and a UUID naming one
                // GPU only show on the host.
                if chosen.iter().any(|g| g.uuid == gpu.uuid) {
                    return Err(SelectError::Profile {
                        span: span.clone(),
                        message: format!("GPU {} (index {}) is listed twice", gpu.uuid, gpu.index),
                        help: Some("list each GPU once".into()),
                    });
                }
                chosen.push(gpu);
            }
            Ok(chosen)
        }
        GpuSelection::Count(n) => by_count(host, *n, held, previous),
    }
}

fn by_ref<'h>(host: &'h GpuHost, gpu: &GpuRef, span: &Span) -> Result<&'h Gpu, SelectError> {
    let error = |message: String, help: Option<String>| SelectError::Profile {
        span: span.clone(),
        message,
        help,
    };
    match gpu {
        GpuRef::Index(i) => host.gpus.iter().find(|g| g.index == *i).ok_or_else(|| {
            let n = host.gpus.len();
            let range = if n == 1 {
                "0".to_string()
            } else {
                format!("0–{}", n - 1)
            };
            error(
                format!(
                    "GPU index {i} does not exist: this host has {n} GPU{} ({range})",
                    plural(n)
                ),
                Some("`launch gpus` lists them".into()),
            )
        }),
        GpuRef::Uuid(prefix) => {
            let lower = prefix.to_ascii_lowercase();
            let matches: Vec<&Gpu> = host
                .gpus
                .iter()
                .filter(|g| g.uuid.to_ascii_lowercase().starts_with(&lower))
                .collect();
            match matches[..] {
                [one] => Ok(one),
                [] => Err(error(
                    format!("GPU {prefix} matches no device"),
                    Some(format!("this host has {}", list(host.gpus.iter()))),
                )),
                _ => Err(error(
                    format!(
                        "GPU {prefix} is ambiguous: it matches {}",
                        list(matches.into_iter())
                    ),
                    Some("write more of the UUID".into()),
                )),
            }
        }
    }
}

fn by_count<'h>(
    host: &'h GpuHost,
    n: u32,
    held: &Held,
    previous: Option<&[String]>,
) -> Result<Vec<&'h Gpu>, SelectError> {
    if let Some(previous) = previous {
        let kept: Vec<&Gpu> = previous
            .iter()
            .filter_map(|u| host.gpus.iter().find(|g| &g.uuid == u))
            .collect();
        if kept.len() == n as usize && previous.len() == kept.len() {
            return Ok(kept);
        }
    }
    let busy = |g: &Gpu| -> Option<String> {
        if let Some(holder) = held.get(&g.uuid) {
            return Some(format!("held by container {holder}"));
        }
        match &g.processes {
            Some(ps) if !ps.is_empty() => Some(format!(
                "running {} compute process{} (pid {})",
                ps.len(),
                if ps.len() == 1 { "" } else { "es" },
                ps.iter()
                    .map(|p| p.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        }
    };
    let mut free: Vec<&Gpu> = host.gpus.iter().filter(|g| busy(g).is_none()).collect();
    // Least memory used first; unknown usage last; then by index for stability.
    free.sort_by_key(|g| (g.memory_used.is_none(), g.memory_used, g.index));
    if free.len() < n as usize {
        let lines: Vec<String> = host
            .gpus
            .iter()
            .map(|g| {
                format!(
                    "  GPU {} {}: {}",
                    g.index,
                    g.uuid,
                    busy(g).unwrap_or_else(|| "free".into())
                )
            })
            .collect();
        return Err(SelectError::NotEnoughFree {
            wanted: n,
            report: format!(
                "not enough free GPUs: the profile asks for {n}, {} of {} {} free\n{}",
                free.len(),
                host.gpus.len(),
                if free.len() == 1 { "is" } else { "are" },
                lines.join("\n")
            ),
        });
    }
    free.truncate(n as usize);
    free.sort_by_key(|g| g.index);
    Ok(free)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn list<'a>(gpus: impl Iterator<Item = &'a Gpu>) -> String {
    gpus.map(|g| format!("{} (index {})", g.uuid, g.index))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::gpu::{DeviceNodes, DriverFiles, GpuProcess};

    fn host(n: u32) -> GpuHost {
        GpuHost {
            driver_version: "550.54.15".into(),
            cuda_version: None,
            gpus: (0..n)
                .map(|i| Gpu {
                    index: i,
                    uuid: format!("GPU-{i}{i}aa-{i}"),
                    pci_bus_id: None,
                    minor: Some(i + 2),
                    name: None,
                    memory_total: Some(80 << 30),
                    memory_used: Some(u64::from(10 - i) << 20),
                    utilization: None,
                    processes: Some(vec![]),
                    mig: None,
                })
                .collect(),
            kernel_module: None,
            nodes: DeviceNodes::default(),
            driver_files: DriverFiles::default(),
        }
    }

    fn uuids(gpus: Vec<&Gpu>) -> Vec<String> {
        gpus.into_iter().map(|g| g.uuid.clone()).collect()
    }

    #[test]
    fn index_out_of_range_names_the_valid_range() {
        let h = host(8);
        let sel = GpuSelection::List(vec![(GpuRef::Index(9), 5..6)]);
        let Err(SelectError::Profile { message, span, .. }) =
            select(&sel, &(0..1), &h, &Held::new(), None)
        else {
            panic!("expected an error")
        };
        assert_eq!(
            message,
            "GPU index 9 does not exist: this host has 8 GPUs (0–7)"
        );
        assert_eq!(span, 5..6);
    }

    #[test]
    fn uuid_prefixes_must_be_unique() {
        let mut h = host(3);
        h.gpus[2].uuid = "GPU-00ab-2".into();
        let sel = |p: &str| GpuSelection::List(vec![(GpuRef::Uuid(p.into()), 0..1)]);
        assert_eq!(
            uuids(select(&sel("GPU-11"), &(0..1), &h, &Held::new(), None).unwrap()),
            ["GPU-11aa-1"]
        );
        let Err(SelectError::Profile { message, .. }) =
            select(&sel("GPU-00"), &(0..1), &h, &Held::new(), None)
        else {
            panic!()
        };
        assert!(
            message.contains("ambiguous")
                && message.contains("GPU-00aa-0")
                && message.contains("GPU-00ab-2")
                && !message.contains("GPU-11aa-1"),
            "{message}"
        );
        let Err(SelectError::Profile { message, .. }) =
            select(&sel("GPU-ff"), &(0..1), &h, &Held::new(), None)
        else {
            panic!()
        };
        assert_eq!(message, "GPU GPU-ff matches no device");
    }

    #[test]
    fn an_index_and_a_uuid_of_one_gpu_are_listed_twice() {
        let h = host(2);
        let sel = GpuSelection::List(vec![
            (GpuRef::Index(1), 0..1),
            (GpuRef::Uuid("GPU-11aa".into()), 4..14),
        ]);
        let Err(SelectError::Profile { message, span, .. }) =
            select(&sel, &(0..1), &h, &Held::new(), None)
        else {
            panic!("expected an error")
        };
        assert_eq!(message, "GPU GPU-11aa-1 (index 1) is listed twice");
        assert_eq!(span, 4..14);
    }

    #[test]
    fn count_skips_busy_and_held_gpus_and_prefers_free_memory() {
        let mut h = host(4);
        h.gpus[3].processes = Some(vec![GpuProcess {
            pid: 42,
            used_memory: None,
        }]);
        let held = Held::from([(h.gpus[2].uuid.clone(), "alice-dev".to_string())]);
        // GPU 3 uses least memory but is busy; GPU 2 is held; 1 beats 0 on memory.
        assert_eq!(
            uuids(select(&GpuSelection::Count(1), &(0..1), &h, &held, None).unwrap()),
            [h.gpus[1].uuid.clone()]
        );
        let Err(SelectError::NotEnoughFree { report, .. }) =
            select(&GpuSelection::Count(3), &(0..1), &h, &held, None)
        else {
            panic!()
        };
        assert!(report.contains("held by container alice-dev"), "{report}");
        assert!(report.contains("pid 42"), "{report}");
    }

    #[test]
    fn count_keeps_the_previous_assignment() {
        let mut h = host(4);
        let previous = vec![h.gpus[0].uuid.clone()];
        // Our own process now runs on GPU 0: we still keep it.
        h.gpus[0].processes = Some(vec![GpuProcess {
            pid: 7,
            used_memory: Some(1),
        }]);
        let got = select(
            &GpuSelection::Count(1),
            &(0..1),
            &h,
            &Held::new(),
            Some(&previous),
        )
        .unwrap();
        assert_eq!(uuids(got), previous);
    }
}
