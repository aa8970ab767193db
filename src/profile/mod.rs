//! The TOML contract: what a profile may say, and `load`, which reads one into a
//! checked [`Profile`] or into diagnostics that point at file:line:column.
//!
//! load is pure apart from reading the profile's own files (the profile, what it
//! extends, its `env_file`s): it touches neither the engine nor NVML, so
//! `launch check` works anywhere.

mod build;
mod devices;
pub mod diagnostic;
mod env;
mod extends;
pub(crate) mod files;
mod folder;
mod gpus;
mod interpolate;
pub mod lease;
pub mod lint;
mod load;
mod loader;
mod names;
pub mod namespaces;
mod ports;
pub mod raw;
mod resources;
mod run_options;
mod security;
pub mod source;
pub mod user;
mod validate;
mod volumes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::image_ref::ImageRef;
pub use build::{Build, DEFAULT_DOCKERFILE};
pub use devices::DeviceMapping;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use folder::{Target, targets, targets_trusting};
pub use gpus::{GPU_MAJOR, is_gpu_path, rule_reaches_gpus};
pub use lease::{Lease, Until};
pub use loader::Loader;
pub use namespaces::{Ipc, Network, Pid, Shared};
pub use ports::{PortBinding, Protocol};
pub use raw::{ChangedFiles, GpuMode, OnReclaim, PullPolicy};
pub use run_options::{LogConfig, RunOptions};
pub use security::{SECURITY_OPTS, capability};
pub use source::{SourceMap, Span};
pub use user::User;
pub use volumes::{Mount, MountKind, normalize};

/// A profile that passed every check that needs no host.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Absolute path of the profile file.
    pub path: PathBuf,
    pub name: String,
    pub image: String,
    pub pull: PullPolicy,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub interactive: bool,
    pub workdir: Option<String>,
    pub user: Option<User>,
    pub hostname: Option<String>,
    /// `env_file` entries overlaid by `env`.
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub gpus: Option<GpuRequest>,
    /// One binding per port; ranges are expanded.
    pub ports: Vec<PortBinding>,
    pub volumes: Vec<Mount>,
    pub devices: Vec<DeviceMapping>,
    pub shm_size: Option<u64>,
    pub network: Option<Network>,
    pub ipc: Option<Ipc>,
    pub pid: Option<Pid>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub memory: Option<u64>,
    pub nano_cpus: Option<i64>,
    pub cpuset: Option<String>,
    pub restart: Option<RestartPolicy>,
    pub stop_timeout: Option<u64>,
    pub healthcheck: Option<Healthcheck>,
    pub recreate: RecreatePolicy,
    /// `[build]`: `image` is built from a Dockerfile, never pulled.
    pub build: Option<Build>,
    /// `[lease]`: how long it may hold its GPUs.
    pub lease: Option<Lease>,
    /// init, group_add, sysctls, … (docs/architecture.md, translation).
    pub run: RunOptions,
    /// The files it was read from, for errors found later against the host.
    pub sources: Arc<SourceMap>,
    /// The acting owner (docs/architecture.md, the owner boundary): the
    /// least trusted of everyone who wrote a file of it, usually the owner
    /// of the profile file. Whom launch acts for, whose containers it may
    /// touch, who `user = "owner"` runs as.
    pub owner: crate::owner::Owner,
    /// The owners of every file read for it (the profile, what it extends,
    /// env files, seccomp profiles, the build context): each key is judged
    /// for the owner of the file that wrote it.
    pub writers: Vec<crate::owner::Owner>,
    /// Where some keys are written, for errors found after loading (policy).
    pub places: Places,
    /// Canonical paths of the profiles it extends, directly or not.
    pub extends: Vec<PathBuf>,
}

impl Profile {
    /// Who wrote what lies at `span`: the owner of that file (the acting
    /// owner when it is not known).
    pub fn writer_at(&self, span: &Span) -> &crate::owner::Owner {
        let uid = self
            .sources
            .file_at(span.start)
            .and_then(|f| f.owner)
            .map(|(uid, _)| uid);
        self.writers
            .iter()
            .find(|w| Some(w.uid) == uid)
            .unwrap_or(&self.owner)
    }
}

/// Where the values of top-level keys are written (in whichever file of
/// the `extends` chain wrote them), and each entry of a list key.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// The start of the profile file, for what belongs to no key.
    pub start: Span,
    keys: BTreeMap<&'static str, Span>,
    items: BTreeMap<&'static str, Vec<Span>>,
    /// Every top-level key's name, for the keys without a value place (a key
    /// another engine cannot express).
    names: BTreeMap<String, Span>,
}

impl Places {
    pub fn key(&self, key: &str) -> Option<Span> {
        self.keys.get(key).or_else(|| self.names.get(key)).cloned()
    }

    /// Where the key's name is written (the key a message names).
    pub fn name(&self, key: &str) -> Option<Span> {
        self.names.get(key).or_else(|| self.keys.get(key)).cloned()
    }

    /// The `i`th entry of list `key`, else the key itself.
    pub fn item(&self, key: &str, i: usize) -> Option<Span> {
        self.items
            .get(key)
            .and_then(|items| items.get(i).cloned())
            .or_else(|| self.key(key))
    }

    pub(crate) fn set_span(&mut self, key: &'static str, span: Span) {
        self.keys.insert(key, span);
    }

    pub(crate) fn set<T>(&mut self, key: &'static str, value: &Option<raw::Sp<T>>) {
        if let Some(v) = value {
            self.keys.insert(key, v.span());
        }
    }

    pub(crate) fn set_items<T>(&mut self, key: &'static str, list: &Option<Vec<raw::Sp<T>>>) {
        if let Some(list) = list {
            self.items
                .insert(key, list.iter().map(raw::Sp::span).collect());
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GpuRequest {
    pub selection: GpuSelection,
    pub mode: GpuMode,
    /// NVIDIA_DRIVER_CAPABILITIES, e.g. `compute`, `utility`.
    pub capabilities: Vec<String>,
    /// Where `gpus` is written.
    pub span: Span,
    /// `probe`: check NVML inside the running container on each `up`.
    pub probe: bool,
    /// `require_cuda`: compare the image's NVIDIA_REQUIRE_CUDA with the driver.
    pub require_cuda: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GpuSelection {
    All,
    /// Indices and UUIDs (or prefixes), each with where it is written.
    List(Vec<(GpuRef, Span)>),
    Count(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GpuRef {
    Index(u32),
    Uuid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    /// -1 is unlimited.
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub name: crate::spec::RestartName,
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// Docker's `Test`: `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<u64>,
    pub start_period_ns: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecreatePolicy {
    pub changed_files: ChangedFiles,
    /// Container paths whose changes do not block a recreate.
    pub ignore: Vec<String>,
}

/// Reads and checks the profile at `path`. A run that loads several profiles
/// uses one [`Loader`], so the files they share are read once.
pub fn load(path: &Path) -> Result<Profile, Diagnostics> {
    Loader::new().load(path)
}

/// `~` or `~/…` at the start of a path is the home of the profile's owner
/// (`home`), never that of whoever runs launch (docs/architecture.md, shared
/// hosts); `~name` or `~name/…` is the home of the user `name`. An owner
/// without a passwd entry has no home: then `~` is an error.
pub fn expand_home(path: &str, owner: Option<&crate::owner::Owner>) -> Result<PathBuf, String> {
    let Some(after) = path.strip_prefix('~') else {
        return Ok(PathBuf::from(path));
    };
    let (user, rest) = after.split_once('/').unwrap_or((after, ""));
    if !user.is_empty() {
        return match crate::owner::home_of(user) {
            Some(home) => Ok(home.join(rest)),
            None => Err(format!(
                "`{path}`: `~{user}` is the home of the user {user}, who has no passwd entry on this host"
            )),
        };
    }
    match owner.and_then(crate::owner::Owner::home) {
        Some(home) => Ok(home.join(rest)),
        None => Err(format!(
            "`{path}`: `~` is the home of the profile's owner, and the owner of this \
             profile file has no passwd entry; write the path in full"
        )),
    }
}

/// An I/O error as a short reason, without Rust's "(os error 2)".
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => e.to_string(),
    }
}

/// The JSON Schema (draft-07) of the profile format, from the same types that read it.
pub fn schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<raw::RawProfile>();
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
