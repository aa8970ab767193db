//! `gpus`: which GPUs a profile asks for, how they are injected, and with
//! which driver capabilities.

use std::collections::HashSet;

use super::diagnostic::{Diagnostic, unknown};
use super::raw::{GpuDevices, GpuId, Gpus, Sp};
use super::source::Span;
use super::validate::Checker;
use super::{GpuMode, GpuRef, GpuRequest, GpuSelection};

/// NVIDIA_DRIVER_CAPABILITIES values the NVIDIA Container Toolkit knows.
pub const GPU_CAPABILITIES: &[&str] = &[
    "compute", "compat32", "graphics", "utility", "video", "display", "ngx", "all",
];

/// What a profile that reached for a GPU directly is told instead.
pub const GPU_HELP: &str = "ask for GPUs with `gpus` (e.g. gpus = [0] or gpus = { count = 1 }): launch adds their device nodes and driver files, and records which container holds them";

/// The character major of every GPU's node and of nvidiactl.
pub const GPU_MAJOR: u32 = 195;

/// Whether a device cgroup rule (`TYPE MAJOR:MINOR PERMS`) lets a container
/// reach the NVIDIA devices: every device (`a`), any major, or the GPUs'.
pub fn rule_reaches_gpus(rule: &str) -> bool {
    let mut parts = rule.split_whitespace();
    let kind = parts.next();
    let major = parts.next().and_then(|n| n.split(':').next());
    kind == Some("a") || major.is_some_and(|m| m == "*" || m.parse::<u32>() == Ok(GPU_MAJOR))
}

/// Whether a (normalised) container or device path is a GPU's: an NVIDIA
/// device node, where launch puts the driver's files, or with `graphics` a
/// DRM node.
pub fn is_gpu_path(path: &str, graphics: bool) -> bool {
    let under = |dir: &str| {
        path == dir
            || path
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let node = path
        .strip_prefix("/dev/")
        .is_some_and(|name| name.starts_with("nvidia") && !name.contains('/'));
    node || under("/dev/nvidia-caps")
        || under("/usr/local/nvidia")
        || (graphics && under("/dev/dri"))
}

pub fn gpus(c: &mut Checker, gpus: &Sp<Gpus>) -> Option<GpuRequest> {
    let span = gpus.span();
    let mut request = GpuRequest {
        selection: GpuSelection::All,
        mode: GpuMode::Auto,
        capabilities: vec!["compute".into(), "utility".into()],
        span: span.clone(),
        probe: false,
        require_cuda: true,
    };
    match gpus.get() {
        Gpus::Word(word) => request.selection = gpu_word(c, word, span)?,
        Gpus::List(list) => request.selection = gpu_list(c, list, span)?,
        Gpus::Table(t) => {
            request.selection = match (&t.devices, &t.count) {
                (Some(d), Some(n)) => {
                    let _ = d;
                    c.error(
                        n.span(),
                        "`count` and `devices` exclude each other: pick GPUs by count or by name",
                    );
                    return None;
                }
                (Some(d), None) => match d.get() {
                    GpuDevices::Word(word) => gpu_word(c, word, d.span())?,
                    GpuDevices::List(list) => gpu_list(c, list, d.span())?,
                },
                (None, Some(n)) => match u32::try_from(*n.get()) {
                    Ok(count) if count >= 1 => GpuSelection::Count(count),
                    _ => {
                        c.error(
                            n.span(),
                            format!("`count` must be at least 1, found `{}`", n.get()),
                        );
                        return None;
                    }
                },
                (None, None) => GpuSelection::All,
            };
            if let Some(mode) = &t.mode {
                request.mode = *mode.get();
            }
            if let Some(probe) = &t.probe {
                request.probe = *probe.get();
            }
            if let Some(require) = &t.require_cuda {
                request.require_cuda = *require.get();
            }
            if t.capabilities.is_some() {
                request.capabilities = c.each(&t.capabilities, |cap: &String| {
                    if GPU_CAPABILITIES.contains(&cap.as_str()) {
                        Ok(cap.clone())
                    } else {
                        Err(unknown("GPU capability", cap, GPU_CAPABILITIES))
                    }
                });
                request.capabilities.sort();
                request.capabilities.dedup();
            }
        }
    }
    Some(request)
}

pub fn gpu_word(c: &mut Checker, word: &str, span: Span) -> Option<GpuSelection> {
    if word == "all" {
        return Some(GpuSelection::All);
    }
    c.diags.push(
        Diagnostic::new(span, format!("unknown GPU selection `{word}`"))
            .help("write gpus = \"all\", a list such as gpus = [0, 1], or gpus = { count = 2 }"),
    );
    None
}

pub fn gpu_list(c: &mut Checker, list: &[Sp<GpuId>], span: Span) -> Option<GpuSelection> {
    if list.is_empty() {
        c.error(
            span,
            "`gpus = []` selects no GPU; leave `gpus` out for a container without GPUs",
        );
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in list {
        let gpu = match item.get() {
            GpuId::Index(i) => match u32::try_from(*i) {
                Ok(i) => GpuRef::Index(i),
                Err(_) => {
                    c.error(item.span(), format!("GPU index `{i}` is negative"));
                    continue;
                }
            },
            GpuId::Uuid(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => {
                match s.parse() {
                    Ok(i) => GpuRef::Index(i),
                    Err(_) => {
                        c.error(item.span(), format!("GPU index `{s}` is too large"));
                        continue;
                    }
                }
            }
            GpuId::Uuid(s) if s.starts_with("GPU-") || s.starts_with("MIG-") => {
                GpuRef::Uuid(s.clone())
            }
            GpuId::Uuid(s) => {
                c.error(
                    item.span(),
                    format!("`{s}` is neither a GPU index nor a UUID (UUIDs start with `GPU-`, as nvidia-smi -L shows)"),
                );
                continue;
            }
        };
        if !seen.insert(gpu.clone()) {
            let shown = match &gpu {
                GpuRef::Index(i) => i.to_string(),
                GpuRef::Uuid(u) => u.clone(),
            };
            c.error(item.span(), format!("GPU `{shown}` is listed twice"));
            continue;
        }
        out.push((gpu, item.span()));
    }
    (out.len() == list.len()).then_some(GpuSelection::List(out))
}
