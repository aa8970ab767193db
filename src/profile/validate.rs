//! What the values of a profile mean: from the raw TOML shapes to a checked
//! [`Profile`], collecting every problem rather than stopping at the first.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::load::{Read, resolve_relative};
use super::raw::{self, Cpus, GpuDevices, GpuId, Gpus, OneOrMany, Size, Sp};
use super::source::{SourceMap, Span};
use super::{
    GpuMode, GpuRef, GpuRequest, GpuSelection, Healthcheck, Profile, PullPolicy, RecreatePolicy,
    RestartPolicy, Ulimit, devices, ports, volumes,
};

/// Linux capabilities, as `docker run --cap-add` knows them (without `CAP_`).
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

/// `ulimit` names Docker accepts.
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// NVIDIA_DRIVER_CAPABILITIES values the NVIDIA Container Toolkit knows.
pub const GPU_CAPABILITIES: &[&str] = &[
    "compute", "compat32", "graphics", "utility", "video", "display", "ngx", "all",
];

const SECURITY_OPTS: &[&str] = &[
    "no-new-privileges",
    "label",
    "apparmor",
    "seccomp",
    "systempaths",
    "writable-cgroups",
];

/// Docker's smallest memory limit.
const MIN_MEMORY: u64 = 6 * 1024 * 1024;

struct Checker<'a> {
    diags: &'a mut Vec<Diagnostic>,
    sources: &'a SourceMap,
}

impl Checker<'_> {
    /// The folder of the file a value was written in: relative paths in an
    /// extended profile are relative to that profile, not to the one extending it.
    fn dir_of(&self, span: &Span) -> PathBuf {
        let file = self.sources.file_at(span.start).map(|f| f.path.as_path());
        let path = std::path::absolute(file.unwrap_or(Path::new("."))).unwrap_or_default();
        path.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, message));
    }

    /// Runs `check` on a present value; an `Err` becomes a diagnostic at its span.
    fn map<T, U>(
        &mut self,
        value: &Option<Sp<T>>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        let value = value.as_ref()?;
        match check(value.get()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(value.span(), message);
                None
            }
        }
    }

    /// Like `map` for each entry of a list.
    fn each<T, U>(
        &mut self,
        list: &Option<Vec<Sp<T>>>,
        mut check: impl FnMut(&T) -> Result<U, String>,
    ) -> Vec<U> {
        let mut out = Vec::new();
        for item in list.iter().flatten() {
            match check(item.get()) {
                Ok(v) => out.push(v),
                Err(message) => self.error(item.span(), message),
            }
        }
        out
    }
}

pub fn validate(
    path: &Path,
    read: Read,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
) -> Option<Profile> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let raw = read.raw;
    let mut c = Checker { diags, sources };
    let start = read.whole.start..read.whole.start;

    let image = match &raw.image {
        Some(image) => c.map(&Some(image.clone()), |i| {
            image_reference(i).map(|_| i.clone())
        }),
        None => {
            c.diags.push(
                Diagnostic::new(start.clone(), "missing required key `image`")
                    .help("add e.g. image = \"nvidia/cuda:12.4.1-runtime-ubuntu22.04\""),
            );
            None
        }
    };
    let name = match &raw.name {
        Some(_) => c.map(&raw.name, |n| container_name(n).map(|_| n.clone())),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match container_name(&stem) {
                Ok(()) => Some(stem),
                Err(e) => {
                    c.diags.push(
                        Diagnostic::new(
                            start.clone(),
                            format!("the file name gives no valid container name: {e}"),
                        )
                        .help("set `name` in the profile"),
                    );
                    None
                }
            }
        }
    };
    let command = c.map(&raw.command, argv);
    let entrypoint = c.map(&raw.entrypoint, argv);
    let workdir = c.map(&raw.workdir, |w| absolute_container_path(w, "workdir"));
    let hostname = c.map(&raw.hostname, |h| hostname(h).map(|_| h.clone()));
    let user = c.map(&raw.user, |u| non_empty(u, "user"));

    let env = env(&mut c, &raw);
    let labels = labels(&mut c, &raw.labels);
    let gpus = raw.gpus.as_ref().and_then(|g| gpus(&mut c, g));

    let ports = ports(&mut c, &raw.ports);
    let volumes = mounts(&mut c, &raw.volumes);
    let devices = unique(
        &mut c,
        &raw.devices,
        devices::parse,
        |d| d.container.clone(),
        "device path",
    );

    let shm_size = c.map(&raw.shm_size, |s| size(s, "shm_size", 1));
    let memory = c.map(&raw.memory, |s| size(s, "memory", MIN_MEMORY));
    let nano_cpus = c.map(&raw.cpus, cpus);
    let cpuset = c.map(&raw.cpuset, |s| cpuset(s).map(|_| s.clone()));
    let network = c.map(&raw.network, |n| network(n).map(|_| n.clone()));
    let ipc = c.map(&raw.ipc, |v| {
        namespace(v, "ipc", &["host", "private", "shareable", "none"])
    });
    let pid = c.map(&raw.pid, |v| namespace(v, "pid", &["host", "private"]));
    let cap_add = c.each(&raw.cap_add, capability);
    let cap_drop = c.each(&raw.cap_drop, capability);
    let security_opt = c.each(&raw.security_opt, |s| security_opt(s));
    let ulimits = ulimits(&mut c, &raw.ulimits);
    let restart = c.map(&raw.restart, |r| restart(r));
    let healthcheck = raw
        .healthcheck
        .as_ref()
        .and_then(|h| healthcheck(&mut c, h));
    let recreate = recreate(&mut c, &raw.recreate);

    Some(Profile {
        path: absolute.clone(),
        name: name?,
        image: image?,
        pull: raw.pull.as_ref().map_or(PullPolicy::Missing, |p| *p.get()),
        command,
        entrypoint,
        interactive: raw.interactive.as_ref().is_some_and(|i| *i.get()),
        workdir,
        user,
        hostname,
        env,
        labels,
        gpus,
        ports,
        volumes,
        devices,
        shm_size,
        network,
        ipc,
        pid,
        privileged: raw.privileged.as_ref().is_some_and(|p| *p.get()),
        cap_add,
        cap_drop,
        security_opt,
        ulimits,
        memory,
        nano_cpus,
        cpuset,
        restart,
        stop_timeout: raw.stop_timeout.as_ref().map(|t| *t.get()),
        healthcheck,
        recreate,
        sources: Arc::default(),
    })
}

/// Docker's container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn container_name(name: &str) -> Result<(), String> {
    if is_docker_name(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid container name: use at least two letters, digits, `_`, `.` or `-`, starting with a letter or digit"
        ))
    }
}

/// A light check of Docker's image reference grammar: catches the mistakes
/// people make (spaces, capitals, a stray `:`) without rejecting real names.
fn image_reference(image: &str) -> Result<(), String> {
    if image.is_empty() {
        return Err("`image` is empty".into());
    }
    if let Some(bad) = image.chars().find(|c| c.is_whitespace()) {
        return Err(format!("image `{image}` contains whitespace ({bad:?})"));
    }
    let (name, digest) = image.split_once('@').unwrap_or((image, ""));
    let valid_digest = digest.starts_with("sha256:")
        && digest.len() == 71
        && digest[7..].bytes().all(|b| b.is_ascii_hexdigit());
    if !digest.is_empty() && !valid_digest {
        return Err(format!(
            "image digest `{digest}` is not sha256:<64 hex digits>"
        ));
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!(
                "image tag `{tag}` is not valid: letters, digits, `_`, `.`, `-`"
            ));
        }
    }
    let mut components = repo.split('/').peekable();
    let first = components.next().unwrap_or_default();
    // The first component is a registry host when it looks like one.
    let has_registry =
        components.peek().is_some() && (first.contains(['.', ':']) || first == "localhost");
    for (i, part) in repo.split('/').enumerate() {
        if i == 0 && has_registry {
            continue;
        }
        let ok = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && part.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "image name `{repo}` is not valid: `{part}` must be lowercase letters, digits and separators"
            ));
        }
    }
    Ok(())
}

fn argv(value: &OneOrMany) -> Result<Vec<String>, String> {
    match value {
        OneOrMany::One(line) => {
            shell_words::split(line).map_err(|_| format!("`{line}` has an unclosed quote"))
        }
        OneOrMany::Many(items) => Ok(items.iter().map(|s| s.get().clone()).collect()),
    }
}

fn non_empty(value: &str, key: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("`{key}` is empty"))
    } else {
        Ok(value.to_string())
    }
}

fn absolute_container_path(path: &str, key: &str) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path.to_string())
    } else {
        Err(format!(
            "{key} `{path}` must be an absolute path in the container"
        ))
    }
}

fn hostname(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "hostname `{name}` is not valid: labels of letters, digits and `-`, joined by `.`"
        ))
    }
}

fn env(c: &mut Checker, raw: &raw::RawProfile) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let files: Vec<Sp<String>> = match raw.env_file.as_ref().map(|f| (f.get(), f.span())) {
        Some((OneOrMany::One(path), span)) => vec![Sp::new(span, path.clone())],
        Some((OneOrMany::Many(paths), _)) => paths.clone(),
        None => Vec::new(),
    };
    for file in files {
        let path = resolve_relative(&c.dir_of(&file.span()).join("profile.toml"), file.get());
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            env.insert(k, v);
                        }
                        Err(e) => {
                            c.error(
                                file.span(),
                                format!("env_file {}: {}", path.display(), dotenv_reason(&e)),
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => c.error(
                file.span(),
                format!("env_file {}: {}", path.display(), dotenv_reason(&e)),
            ),
        }
    }
    for (key, value) in raw.env.iter().flatten() {
        let name = key.get();
        if name.is_empty() || name.contains('=') {
            c.error(
                key.span(),
                format!("environment variable name `{name}` may not be empty or contain `=`"),
            );
            continue;
        }
        env.insert(name.clone(), value.get().0.clone());
    }
    env
}

fn dotenv_reason(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => super::io_reason(io),
        dotenvy::Error::LineParse(line, at) => format!("cannot parse `{line}` at character {at}"),
        other => other.to_string(),
    }
}

fn labels(
    c: &mut Checker,
    labels: &Option<BTreeMap<Sp<String>, Sp<String>>>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in labels.iter().flatten() {
        let (span, key) = (key.span(), key.get());
        if key.starts_with("launch.") {
            c.error(
                span,
                format!("label `{key}` is in the reserved `launch.` namespace; launch writes those itself"),
            );
        } else if key.is_empty() {
            c.error(span, "a label name may not be empty");
        } else {
            out.insert(key.clone(), value.get().clone());
        }
    }
    out
}

fn gpus(c: &mut Checker, gpus: &Sp<Gpus>) -> Option<GpuRequest> {
    let span = gpus.span();
    let mut request = GpuRequest {
        selection: GpuSelection::All,
        mode: GpuMode::Auto,
        capabilities: vec!["compute".into(), "utility".into()],
        span: span.clone(),
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

fn gpu_word(c: &mut Checker, word: &str, span: Span) -> Option<GpuSelection> {
    if word == "all" {
        return Some(GpuSelection::All);
    }
    c.diags.push(
        Diagnostic::new(span, format!("unknown GPU selection `{word}`"))
            .help("write gpus = \"all\", a list such as gpus = [0, 1], or gpus = { count = 2 }"),
    );
    None
}

fn gpu_list(c: &mut Checker, list: &[Sp<GpuId>], span: Span) -> Option<GpuSelection> {
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

fn ports(c: &mut Checker, list: &Option<Vec<Sp<String>>>) -> Vec<ports::PortBinding> {
    let mut out: Vec<ports::PortBinding> = Vec::new();
    for item in list.iter().flatten() {
        match ports::parse(item.get()) {
            Ok(bindings) => {
                for b in bindings {
                    let clash = out.iter().find(|o| {
                        o.host_port.is_some()
                            && o.host_port == b.host_port
                            && o.protocol == b.protocol
                            && o.host_ip == b.host_ip
                    });
                    if let Some(o) = clash {
                        c.error(
                            item.span(),
                            format!(
                                "host port {}/{} is published twice",
                                o.host_port.unwrap_or_default(),
                                o.protocol
                            ),
                        );
                    } else {
                        out.push(b);
                    }
                }
            }
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

fn mounts(c: &mut Checker, list: &Option<Vec<Sp<raw::Volume>>>) -> Vec<volumes::Mount> {
    let mut out: Vec<volumes::Mount> = Vec::new();
    for item in list.iter().flatten() {
        match volumes::parse(item.get(), &c.dir_of(&item.span()), item.span()) {
            Ok(m) if out.iter().any(|o| o.target == m.target) => {
                c.error(
                    item.span(),
                    format!("mount target `{}` is used twice", m.target),
                );
            }
            Ok(m) => out.push(m),
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

/// Parses each entry, reporting entries whose key repeats an earlier one.
fn unique<T>(
    c: &mut Checker,
    list: &Option<Vec<Sp<String>>>,
    parse: fn(&str) -> Result<T, String>,
    key: fn(&T) -> String,
    what: &str,
) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in list.iter().flatten() {
        match parse(item.get()) {
            Ok(v) if !seen.insert(key(&v)) => {
                c.error(item.span(), format!("{what} `{}` is used twice", key(&v)))
            }
            Ok(v) => out.push(v),
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

/// A size as Docker reads it: `8G` is 8 GiB, `64m` 64 MiB, a bare number bytes.
pub fn size(value: &Size, key: &str, min: u64) -> Result<u64, String> {
    let bytes = match value {
        Size::Bytes(b) => u64::try_from(*b).map_err(|_| format!("{key} `{b}` is negative"))?,
        Size::Text(text) => parse_size::Config::new()
            .with_binary()
            .parse_size(text)
            .map_err(|_| {
                format!(
                    "{key} `{text}` is not a size: write e.g. \"8G\", \"512m\" or a number of bytes"
                )
            })?,
    };
    if bytes < min {
        let shown = match value {
            Size::Bytes(b) => b.to_string(),
            Size::Text(t) => t.clone(),
        };
        return Err(if min == 1 {
            format!("{key} `{shown}` must be more than zero")
        } else {
            format!(
                "{key} `{shown}` is below Docker's minimum of {} MiB",
                min >> 20
            )
        });
    }
    Ok(bytes)
}

fn cpus(value: &Cpus) -> Result<i64, String> {
    let (n, shown) = match value {
        Cpus::Number(n) => (*n, n.to_string()),
        Cpus::Text(t) => (
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("cpus `{t}` is not a number"))?,
            t.clone(),
        ),
    };
    if !(n > 0.0 && n.is_finite() && n <= 4096.0) {
        return Err(format!("cpus `{shown}` must be a number of CPUs above 0"));
    }
    Ok((n * 1e9).round() as i64)
}

fn cpuset(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.split(',').all(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= b)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cpuset `{value}` is not a CPU list such as \"0-3,8\""
        ))
    }
}

fn network(value: &str) -> Result<(), String> {
    let target = value.strip_prefix("container:").unwrap_or(value);
    if matches!(value, "bridge" | "host" | "none" | "default")
        || target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "network `{value}` is not `bridge`, `host`, `none` or a network name"
        ))
    }
}

fn namespace(value: &str, key: &str, modes: &[&str]) -> Result<String, String> {
    match value.strip_prefix("container:") {
        Some(name) if is_docker_name(name) => Ok(value.to_string()),
        _ if modes.contains(&value) => Ok(value.to_string()),
        _ => {
            let mut allowed: Vec<&str> = modes.to_vec();
            allowed.push("container:NAME");
            Err(unknown(&format!("{key} mode"), value, &allowed))
        }
    }
}

fn capability(value: &String) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if CAPABILITIES.contains(&name) {
        Ok(name.to_string())
    } else {
        // Suggest from the name without `CAP_`, but show what was written.
        Err(match did_you_mean(name, CAPABILITIES.iter().copied()) {
            Some(near) => format!("unknown capability `{value}`: did you mean `{near}`?"),
            None => format!("unknown capability `{value}`"),
        })
    }
}

fn security_opt(value: &str) -> Result<String, String> {
    let kind = value.split(['=', ':']).next().unwrap_or_default();
    if SECURITY_OPTS.contains(&kind) {
        Ok(value.to_string())
    } else {
        Err(unknown("security option", kind, SECURITY_OPTS))
    }
}

/// "unknown X `v`", with the closest known value or the list.
fn unknown(what: &str, value: &str, known: &[&str]) -> String {
    match did_you_mean(value, known.iter().copied()) {
        Some(near) => format!("unknown {what} `{value}`: did you mean `{near}`?"),
        None if known.len() <= 8 => format!(
            "unknown {what} `{value}`: expected one of {}",
            known.join(", ")
        ),
        None => format!("unknown {what} `{value}`"),
    }
}

fn ulimits(c: &mut Checker, list: &Option<BTreeMap<Sp<String>, Sp<raw::Ulimit>>>) -> Vec<Ulimit> {
    let mut out = Vec::new();
    for (key, value) in list.iter().flatten() {
        let name = key.get();
        if !ULIMITS.contains(&name.as_str()) {
            c.error(key.span(), unknown("ulimit", name, ULIMITS));
            continue;
        }
        match ulimit(value.get()) {
            Ok((soft, hard)) => out.push(Ulimit {
                name: name.clone(),
                soft,
                hard,
            }),
            Err(message) => c.error(value.span(), format!("ulimit `{name}`: {message}")),
        }
    }
    out
}

fn ulimit(value: &raw::Ulimit) -> Result<(i64, i64), String> {
    let number = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("`{s}` is not a number"))
    };
    let (soft, hard) = match value {
        raw::Ulimit::Single(v) => (*v, *v),
        raw::Ulimit::Pair { soft, hard } => (*soft, *hard),
        raw::Ulimit::Text(t) => match t.split_once(':') {
            Some((s, h)) => (number(s)?, number(h)?),
            None => (number(t)?, number(t)?),
        },
    };
    for v in [soft, hard] {
        if v < -1 {
            return Err(format!("`{v}` is negative (use -1 for unlimited)"));
        }
    }
    let unlimited = |v: i64| v == -1;
    if !unlimited(hard) && (unlimited(soft) || soft > hard) {
        return Err(format!("soft limit {soft} is above the hard limit {hard}"));
    }
    Ok((soft, hard))
}

fn restart(value: &str) -> Result<RestartPolicy, String> {
    let (name, count) = value
        .split_once(':')
        .map_or((value, None), |(n, c)| (n, Some(c)));
    match (name, count) {
        ("no" | "always" | "unless-stopped" | "on-failure", None) => Ok(RestartPolicy {
            name: name.to_string(),
            max_retries: None,
        }),
        ("on-failure", Some(n)) => n
            .parse()
            .map(|n| RestartPolicy {
                name: name.into(),
                max_retries: Some(n),
            })
            .map_err(|_| format!("restart retry count `{n}` is not a number")),
        _ => Err(unknown(
            "restart policy",
            value,
            &[
                "no",
                "always",
                "unless-stopped",
                "on-failure",
                "on-failure:N",
            ],
        )),
    }
}

fn healthcheck(c: &mut Checker, h: &Sp<raw::Healthcheck>) -> Option<Healthcheck> {
    let h_span = h.span();
    let h = h.get();
    let Some(cmd) = &h.cmd else {
        c.error(h_span, "a healthcheck needs `cmd`");
        return None;
    };
    let test = match cmd.get() {
        OneOrMany::One(line) => vec!["CMD-SHELL".to_string(), line.clone()],
        OneOrMany::Many(items) => {
            let items: Vec<String> = items.iter().map(|s| s.get().clone()).collect();
            match items.first().map(String::as_str) {
                None => {
                    c.error(cmd.span(), "healthcheck `cmd` is empty");
                    return None;
                }
                Some("CMD" | "CMD-SHELL" | "NONE") => items,
                Some(_) => std::iter::once("CMD".to_string()).chain(items).collect(),
            }
        }
    };
    let duration = |c: &mut Checker, v: &Option<Sp<String>>, key: &str| {
        c.map(v, |s| {
            humantime::parse_duration(s)
                .ok()
                .and_then(|d| i64::try_from(d.as_nanos()).ok())
                .ok_or_else(|| {
                    format!(
                        "healthcheck {key} `{s}` is not a duration such as \"30s\" or \"1m30s\""
                    )
                })
        })
    };
    Some(Healthcheck {
        test,
        interval_ns: duration(c, &h.interval, "interval"),
        timeout_ns: duration(c, &h.timeout, "timeout"),
        retries: h.retries.as_ref().map(|r| *r.get()),
        start_period_ns: duration(c, &h.start_period, "start_period"),
    })
}

fn recreate(c: &mut Checker, r: &Option<Sp<raw::Recreate>>) -> RecreatePolicy {
    let Some(r) = r else {
        return RecreatePolicy::default();
    };
    let r = r.get();
    RecreatePolicy {
        changed_files: r
            .changed_files
            .as_ref()
            .map(|c| *c.get())
            .unwrap_or_default(),
        ignore: c.each(&r.ignore, |p| {
            absolute_container_path(p, "recreate.ignore path")
        }),
    }
}
