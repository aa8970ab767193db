//! GPUs in any of the four forms a `docker run` line gives them (`--gpus`,
//! `--runtime=nvidia` with `NVIDIA_VISIBLE_DEVICES`, `--device=/dev/nvidiaN`,
//! CDI names) become one `gpus` key.

use toml::Value;

use super::HostView;
use crate::translate::draft::Draft;

/// Shared device nodes: `gpus` injects them, so they are not kept as devices.
pub const SHARED_NODES: &[&str] = &[
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// What the line said about GPUs, gathered flag by flag.
#[derive(Debug, Default)]
pub struct GpuFacts {
    /// `--gpus` as written.
    pub gpus_flag: Option<String>,
    pub runtime_nvidia: bool,
    pub nvidia_docker: bool,
    /// `NV_GPU=` in front of `nvidia-docker run`.
    pub nv_gpu: Option<String>,
    /// `-e NVIDIA_VISIBLE_DEVICES=`.
    pub visible: Option<String>,
    /// `-e NVIDIA_DRIVER_CAPABILITIES=`.
    pub capabilities: Option<String>,
    /// Minors of `--device /dev/nvidiaN`, each with the flag as written.
    pub minors: Vec<(u32, String)>,
    /// `--device nvidia.com/gpu=…`: what follows the `=`.
    pub cdi: Vec<String>,
    /// `--device` of a shared node, as written.
    pub shared: Vec<String>,
    /// The nvidia-docker 1.0 driver volume was mounted.
    pub driver_volume: bool,
    /// `-v /dev:/dev`.
    pub all_dev: bool,
}

/// The minor of a GPU node `<dev_root>/dev/nvidiaN` or `/dev/nvidiaN`.
pub fn gpu_minor(host_path: &str, host: &HostView<'_>) -> Option<u32> {
    let root = host.dev_root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let path = host_path.strip_prefix(root).unwrap_or(host_path);
    let n = path.strip_prefix("/dev/nvidia")?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A shared node (`/dev/nvidiactl`, …), under the dev root or not.
pub fn is_shared_node(host_path: &str, host: &HostView<'_>) -> bool {
    let root = host.dev_root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let path = host_path.strip_prefix(root).unwrap_or(host_path);
    SHARED_NODES.contains(&path)
}

enum Selection {
    All,
    Count(i64),
    List(Vec<Value>),
}

/// One GPU of a list: digits are an index, anything else a UUID.
fn gpu_id(word: &str) -> Value {
    match word.trim().parse::<i64>() {
        Ok(i) => Value::Integer(i),
        Err(_) => Value::String(word.trim().to_string()),
    }
}

/// The fields of `--gpus`, read as the docker CLI reads them (CSV).
fn csv_fields(value: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut()?.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (!quoted).then_some(fields)
}

/// `--gpus VALUE` as a selection and capabilities, or why it cannot be.
fn gpus_flag(value: &str) -> Result<(Selection, Option<Vec<String>>), String> {
    let fields = csv_fields(value).ok_or("a quote is not closed")?;
    let mut selection = None;
    let mut caps = None;
    for field in &fields {
        match field.split_once('=') {
            None if field == "all" => selection = Some(Selection::All),
            None => match field.parse::<i64>() {
                Ok(n) if fields.len() == 1 || selection.is_none() => {
                    selection = Some(Selection::Count(n));
                }
                _ => {
                    return Err(format!(
                        "docker reads `{field}` as a field of its own; a list of devices is written '\"device=0,2\"'"
                    ));
                }
            },
            Some(("count", "all")) => selection = Some(Selection::All),
            Some(("count", n)) => {
                selection = Some(Selection::Count(
                    n.parse()
                        .map_err(|_| format!("count `{n}` is not a number"))?,
                ));
            }
            Some(("device", list)) => {
                selection = Some(Selection::List(list.split(',').map(gpu_id).collect()));
            }
            Some(("capabilities", list)) => {
                caps = Some(list.split(',').map(str::to_string).collect());
            }
            Some((key, _)) => return Err(format!("`{key}` has no profile key")),
        }
    }
    Ok((selection.unwrap_or(Selection::All), caps))
}

/// `NVIDIA_VISIBLE_DEVICES` (or `NV_GPU`) as a selection.
fn visible(value: &str) -> Option<Selection> {
    match value.trim() {
        "all" => Some(Selection::All),
        "" | "none" | "void" => None,
        list => Some(Selection::List(list.split(',').map(gpu_id).collect())),
    }
}

/// Sets `gpus` from what the line said, with a comment for each part that
/// has no key.
pub fn apply(facts: GpuFacts, host: &HostView<'_>, draft: &mut Draft) {
    let mut caps: Option<Vec<String>> = facts
        .capabilities
        .as_deref()
        .map(|c| c.split(',').map(|s| s.trim().to_string()).collect());
    let mut selection = None;
    if let Some(flag) = &facts.gpus_flag {
        match gpus_flag(flag) {
            Ok((s, c)) => {
                selection = Some(s);
                caps = c.or(caps);
            }
            Err(why) => draft.not_imported(format!("--gpus {flag} ({why})")),
        }
    }
    if selection.is_none() && !facts.cdi.is_empty() {
        selection = Some(if facts.cdi.iter().any(|c| c == "all") {
            Selection::All
        } else {
            Selection::List(facts.cdi.iter().map(|c| gpu_id(c)).collect())
        });
    }
    if selection.is_none() && !facts.minors.is_empty() {
        selection = by_minors(&facts.minors, host, draft);
    }
    if let Some(Selection::List(list)) = &mut selection {
        // MIG instances (`0:1`, `MIG-…`): launch selects whole GPUs.
        list.retain(|id| match id.as_str() {
            Some(s) if s.contains(':') || s.starts_with("MIG-") => {
                draft.not_imported(format!(
                    "the MIG instance {s} (launch selects whole GPUs, not MIG instances yet: name a GPU in `gpus`, or keep this container under `docker run`)"
                ));
                false
            }
            _ => true,
        });
        if list.is_empty() {
            selection = None;
        }
    }
    let toolkit = facts.runtime_nvidia || facts.nvidia_docker;
    if selection.is_none() && toolkit {
        let from = facts.nv_gpu.as_deref().or(facts.visible.as_deref());
        match from {
            Some(v) => selection = visible(v),
            None if facts.nvidia_docker => selection = Some(Selection::All),
            None => draft.not_imported(
                "--runtime=nvidia (without NVIDIA_VISIBLE_DEVICES the image decides which GPUs; say it with `gpus`)",
            ),
        }
    }
    if selection.is_none() && facts.all_dev {
        selection = Some(Selection::All);
        draft.note(
            "`-v /dev:/dev` mounted every host device to reach the GPUs; `gpus = \"all\"`\ninjects exactly the NVIDIA device nodes instead.",
        );
    } else if facts.all_dev {
        draft.not_imported("-v /dev:/dev (the GPUs come from `gpus`)");
    }
    let Some(selection) = selection else {
        // No GPUs: shared nodes stay what they were, plain devices.
        for d in facts.shared {
            draft.push("devices", d);
        }
        return;
    };
    if !facts.shared.is_empty() {
        draft.note(format!(
            "{} came with the GPUs: `gpus` adds them.",
            facts.shared.join(", ")
        ));
    }
    let mode = facts.driver_volume.then(|| {
        draft.note(
            "The nvidia-docker 1.0 driver volume becomes `mode = \"devices\"`: launch mounts\nthe running driver's libraries and binaries itself.",
        );
        "devices"
    });
    if caps.as_ref().is_some_and(|c| c == &["compute", "utility"]) {
        caps = None;
    }
    let value = match (&selection, mode, &caps) {
        (Selection::All, None, None) => Value::String("all".into()),
        (Selection::List(l), None, None) => Value::Array(l.clone()),
        _ => {
            let mut t = toml::map::Map::new();
            match selection {
                Selection::All => {
                    t.insert("devices".into(), Value::String("all".into()));
                }
                Selection::List(l) => {
                    t.insert("devices".into(), Value::Array(l));
                }
                Selection::Count(n) => {
                    t.insert("count".into(), Value::Integer(n));
                }
            }
            if let Some(m) = mode {
                t.insert("mode".into(), Value::String(m.into()));
            }
            if let Some(c) = caps {
                t.insert(
                    "capabilities".into(),
                    Value::Array(c.into_iter().map(Value::String).collect()),
                );
            }
            Value::Table(t)
        }
    };
    draft.set("gpus", value);
}

/// `/dev/nvidiaN` nodes as NVML indices; every GPU of the host is `all`.
fn by_minors(
    minors: &[(u32, String)],
    host: &HostView<'_>,
    draft: &mut Draft,
) -> Option<Selection> {
    let gpus = match &host.gpus {
        Ok(g) => *g,
        Err(why) => {
            for (_, flag) in minors {
                draft.not_imported(format!(
                    "--device {flag} (its minor number needs NVML to become a GPU index: {why})"
                ));
            }
            return None;
        }
    };
    let mut indices: Vec<u32> = Vec::new();
    for (minor, flag) in minors {
        match gpus.iter().find(|g| g.minor == Some(*minor)) {
            Some(g) => {
                if !indices.contains(&g.index) {
                    indices.push(g.index);
                }
            }
            None => draft.not_imported(format!(
                "--device {flag} (no GPU of this host has minor number {minor})"
            )),
        }
    }
    if indices.is_empty() {
        return None;
    }
    if minors.len() > indices.len() {
        draft.note("Some GPU device nodes were listed more than once; each GPU is kept once.");
    }
    if indices.len() == gpus.len() {
        return Some(Selection::All);
    }
    indices.sort_unstable();
    Some(Selection::List(
        indices
            .into_iter()
            .map(|i| Value::Integer(i.into()))
            .collect(),
    ))
}
