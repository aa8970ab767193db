//! The container engine, seen through the operations launch needs (the
//! `Engine` trait), every one of them for a profile passing the gate.
//! `docker` implements them on the Docker Engine API (bollard); Podman's
//! Docker-compatible socket goes through the same code.

pub mod auth;
pub mod docker;
pub mod gate;
pub mod progress;
#[cfg(test)]
pub mod recording;

use std::collections::BTreeMap;

pub use docker::DockerEngine;
pub use gate::{Acting, Gate, Scope, Whose};

use crate::spec::{ContainerSpec, label};

/// A container as the engine reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub state: State,
    pub labels: BTreeMap<String, String>,
    /// The image id the container was created from.
    pub image_id: String,
    /// The image reference it was created with.
    pub image: String,
    pub started_at: String,
    /// When it was made (RFC 3339), to tell leftovers apart by age.
    pub created: String,
    /// `starting`, `healthy` or `unhealthy` when the container has a healthcheck.
    pub health: Option<String>,
}

impl Observed {
    /// Made by launch (label `launch.managed=true`).
    pub fn is_managed(&self) -> bool {
        self.labels.get(label::MANAGED).map(String::as_str) == Some("true")
    }

    /// The spec it was made from (label `launch.spec`); `None` when the
    /// label is missing or unreadable (made by an older or newer launch).
    pub fn spec(&self) -> Option<ContainerSpec> {
        self.labels
            .get(label::SPEC)
            .and_then(|s| ContainerSpec::from_label(s))
    }

    /// The GPU UUIDs it holds (label `launch.gpus`). A container the engine
    /// is removing holds none: it can never start again.
    pub fn gpus(&self) -> Vec<String> {
        if matches!(self.state, State::Removing | State::Dead) {
            return Vec::new();
        }
        let list = self.labels.get(label::GPUS).map_or("", String::as_str);
        list.split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }
}

/// How far a removal had got when [`Engine::remove_begun`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The container is gone.
    Done,
    /// The engine has marked it for removal (it can never start again) and
    /// is still deleting its files; it finishes without launch.
    Begun,
}

/// Which engine answers (`/version`'s components): what it can do with GPUs
/// differs (docs/architecture.md, engines as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub product: Product,
    pub version: String,
    /// Whether it runs on this host (a unix socket): only then can launch
    /// look at its containers' processes from here.
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Product {
    Docker,
    Podman,
    /// Another engine with Docker's API, by the name it gives.
    Other(String),
}

impl Identity {
    pub fn is_podman(&self) -> bool {
        self.product == Product::Podman
    }

    /// `major.minor` of its version, for the features that came with one.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self
            .version
            .split(['.', '-', '+'])
            .map(|p| p.parse::<u32>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(a), Some(b)) => (a, b) >= (major, minor),
            (Some(a), None) => a > major,
            _ => false,
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.product {
            Product::Docker => "Docker Engine",
            Product::Podman => "Podman Engine",
            Product::Other(name) => name,
        };
        write!(f, "{name} {}", self.version)
    }
}

/// Engine facts that decide the GPU mode.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub runtimes: Vec<String>,
    /// Docker 25+ with CDI enabled lists its spec folders.
    pub cdi_spec_dirs: Vec<String>,
    /// `cgroupfs` or `systemd` (`docker info`'s CgroupDriver).
    pub cgroup_driver: Option<String>,
    /// Which engine it is.
    pub identity: Option<Identity>,
    /// It runs containers as the user who runs it (`docker info`'s
    /// security options say `rootless`).
    pub rootless: bool,
}

/// An image launch committed (label `launch.snapshot`), as the engine lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotImage {
    pub id: String,
    /// Its `repo:tag` references.
    pub references: Vec<String>,
    /// The label's value: the container name it was taken of.
    pub of: String,
}

/// A command to run in a running container (`docker exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// A pseudo-terminal: one output stream, the engine echoes and edits lines.
    pub tty: bool,
    /// Forward input to the command.
    pub stdin: bool,
    /// Run as this user (`uid` or name); the container's user when `None`.
    pub user: Option<String>,
    /// `NAME=value` entries over the container's environment (a fixed
    /// PATH, so that no command is found where the container's owner put it).
    pub env: Vec<String>,
}

/// What an exec writes: its two streams apart (a TTY has only stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// A started exec: its output, its input (shut down for end of input), and
/// its id for resizes and the exit code.
pub struct ExecSession {
    pub id: String,
    pub output: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<ExecOutput>> + Send>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// What `logs` asks for, as `docker logs` takes it.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new lines until the container stops (or the user interrupts).
    pub follow: bool,
    /// Only the last this many lines; all when `None`.
    pub tail: Option<u64>,
    /// Only lines since this Unix time (seconds).
    pub since: Option<i64>,
    /// Prefix each line with the engine's RFC 3339 timestamp.
    pub timestamps: bool,
}

/// What a recreate appends to the name of the old container it moves aside.
pub const ASIDE: &str = "-launch-old-";

/// The first 12 characters of an id, as Docker shows them; the whole id
/// when it is shorter or not what an engine should send (never a panic).
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Whether `container` is `name` or, by its name, what a recreate of `name`
/// moved aside (`NAME-launch-old-…`).
pub fn is_name_or_aside(container: &str, name: &str) -> bool {
    container
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(ASIDE))
}

/// Why an engine call failed, in words for the user. Variants differ where
/// the user's next step does; the engine's own message is always shown, and
/// bollard's error stays reachable as the source.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing answers at the address (or the connection broke mid-run).
    #[error("cannot reach the container engine at {address}: {reason}")]
    Unreachable {
        address: String,
        reason: String,
        #[source]
        source: Option<bollard::errors::Error>,
    },
    /// The address cannot be an engine's (a usage error, found before any
    /// connection).
    #[error("--host / DOCKER_HOST `{address}` is not an engine address: {why}")]
    Address { address: String, why: String },
    /// The engine answers, but speaks an API older than launch needs.
    #[error(
        "the container engine at {address} speaks API {version}, older than the {minimum} launch needs \
         (Docker 19.03 or newer): upgrade the engine"
    )]
    ApiTooOld {
        address: String,
        version: String,
        minimum: String,
    },
    /// A call was accepted and never answered.
    #[error(
        "{call}: the container engine at {address} did not answer within {}s; \
         it may be overloaded or hung (is the daemon healthy?)",
        after.as_secs_f64()
    )]
    Timeout {
        address: String,
        call: String,
        after: std::time::Duration,
    },
    /// What the call names does not exist (HTTP 404).
    #[error("{call}: {message}")]
    NotFound {
        call: String,
        message: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// In use or taken (HTTP 409): a name another container holds, a volume
    /// a container still uses.
    #[error("{call}: {message}")]
    Conflict {
        call: String,
        message: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Any other refusal or failure of a call.
    #[error("{call}: {message}")]
    Failed {
        call: String,
        message: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("pulling {image} failed: {reason}")]
    Pull {
        image: String,
        reason: String,
        #[source]
        source: Option<bollard::errors::Error>,
    },
    /// The owner boundary refuses the call (docs/architecture.md): it
    /// would touch what launch did not make for the acting owner.
    #[error("{0}")]
    Forbidden(String),
    /// The state store, which says what launch made for whom, failed.
    #[error("{0}")]
    State(String),
    #[error("image {0} is not present and the profile says pull = \"never\"")]
    ImageMissing(String),
    /// The builder refused the Dockerfile or a step failed; `reason` holds
    /// the builder's own lines, the failing step first.
    #[error("building {image} failed:\n{reason}")]
    Build {
        image: String,
        reason: String,
        #[source]
        source: Option<bollard::errors::Error>,
    },
}

impl EngineError {
    /// An error the engine answered with, by its HTTP status.
    pub fn answered(call: impl Into<String>, status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        let source = bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: message.clone(),
        };
        let call = call.into();
        // Podman answers 500 for a container it is removing right then.
        let missing = status == 404 || (status == 500 && message.contains("no such container"));
        match status {
            _ if missing => EngineError::NotFound {
                call,
                message,
                source,
            },
            409 => EngineError::Conflict {
                call,
                message,
                source,
            },
            _ => EngineError::Failed {
                call,
                message,
                source,
            },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, EngineError::Conflict { .. })
    }

    /// The engine's own words, without what launch was doing.
    pub fn message(&self) -> String {
        match self {
            EngineError::NotFound { message, .. }
            | EngineError::Conflict { message, .. }
            | EngineError::Failed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// What reconcile asks of an engine.
#[allow(async_fn_in_trait)] // used with concrete engines only, never boxed
pub trait Engine {
    async fn facts(&self) -> Result<Facts>;
    /// Which engine answers, and whether it is on this host (asked once).
    async fn identity(&self) -> Result<Identity>;
    /// The host pid of a running container's first process; `None` when it
    /// does not run.
    async fn process(&self, id: &str) -> Result<Option<u32>>;
    /// The container of that name, if any.
    async fn find(&self, name: &str) -> Result<Option<Observed>>;
    /// Every container launch made (label `launch.managed=true`).
    async fn managed(&self) -> Result<Vec<Observed>>;
    /// Every container, launch's or not: (full id, name), for telling whose
    /// a GPU process is (`launch gpus`).
    async fn container_names(&self) -> Result<Vec<(String, String)>>;
    /// The containers launch made whose name starts with
    /// `{name}-launch-old-`: old containers a recreate moved aside.
    async fn leftovers(&self, name: &str) -> Result<Vec<Observed>>;
    /// The containers launch made that are named `names` or are their
    /// leftovers (`NAME-launch-old-…`), all of them when `names` is empty,
    /// from one listing: a cheap look over a whole run (no start times or
    /// health, which only inspecting gives).
    async fn listed(&self, names: &[&str]) -> Result<Vec<Observed>>;
    /// The local image's id, if the image is present.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;
    async fn pull(&self, image: &str) -> Result<()>;
    /// The local image's id and labels, if the image is present.
    async fn image_labels(&self, image: &str)
    -> Result<Option<(String, BTreeMap<String, String>)>>;
    /// The local image's environment (`Config.Env`), if the image is present.
    async fn image_env(&self, image: &str) -> Result<Option<BTreeMap<String, String>>>;
    /// The local image's configured user (`""` when it sets none), if the
    /// image is present.
    async fn image_user(&self, image: &str) -> Result<Option<String>>;
    /// The local image's platform, `os/architecture[/variant]`, if the
    /// image is present.
    async fn image_platform(&self, image: &str) -> Result<Option<String>>;
    /// A named volume's driver and driver options (a `local` volume with
    /// `o=bind` and `device` mounts a host path), if the volume exists.
    async fn volume_options(
        &self,
        name: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>>;
    /// Whether the engine has a network of that name (a user-defined one:
    /// `docker network create`).
    async fn network_exists(&self, name: &str) -> Result<bool>;
    /// Builds `context` and tags the image `tag`, with `labels` (the
    /// context's hash, `spec::label::CONTEXT_HASH`, and its owner).
    async fn build(
        &self,
        tag: &str,
        context: &crate::build::Context,
        labels: &BTreeMap<String, String>,
    ) -> Result<()>;
    /// Creates the container `name` from `spec` with `labels`; returns its id.
    async fn create(
        &self,
        name: &str,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<String>;
    async fn start(&self, id: &str) -> Result<()>;
    async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()>;
    async fn unpause(&self, id: &str) -> Result<()>;
    async fn rename(&self, id: &str, name: &str) -> Result<()>;
    /// Removes the container (forced), and its anonymous volumes with
    /// `volumes`; once it returns the container is gone, also when another
    /// removal of it was under way.
    async fn remove(&self, id: &str, volumes: bool) -> Result<()>;
    /// Removes the container as `remove` does (its volumes stay), but waits
    /// for the engine to delete its files only a moment: the daemon takes
    /// longer over a writable layer where `pip install` left 20 000 files
    /// than over the whole recreate. Past that moment it returns once the
    /// engine has marked the container for removal, which the engine then
    /// finishes without launch.
    async fn remove_begun(&self, id: &str) -> Result<Removal>;
    /// Paths changed in the container's writable layer (`docker diff`).
    async fn changes(&self, id: &str) -> Result<Vec<String>>;
    /// Commits the container to `repo:tag`, adding `labels` to the image's
    /// own; returns the image id.
    async fn commit(
        &self,
        id: &str,
        repo: &str,
        tag: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String>;
    /// Local images that carry the label `label` (any value).
    async fn labeled_images(&self, label: &str) -> Result<Vec<SnapshotImage>>;
    /// Removes one `repo:tag` reference: the image goes with its last one.
    /// Never forced: an image a container uses stays (a conflict).
    async fn remove_image(&self, reference: &str) -> Result<()>;
    async fn remove_volume(&self, name: &str) -> Result<()>;
    /// Starts `request` in the running container `id`, attached.
    async fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecSession>;
    /// Sets the TTY size of exec `exec`.
    async fn exec_resize(&self, exec: &str, width: u16, height: u16) -> Result<()>;
    /// The exit code of exec `exec`; `None` while it runs.
    async fn exec_exit_code(&self, exec: &str) -> Result<Option<i64>>;
    /// Streams the container's log: what it wrote to stdout goes to `stdout`,
    /// to stderr to `stderr` (a container with a TTY has one stream, stdout).
    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
        stdout: &mut dyn std::io::Write,
        stderr: &mut dyn std::io::Write,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(labels: BTreeMap<String, String>) -> Observed {
        Observed {
            id: "0123456789abcdef".into(),
            name: "train".into(),
            state: State::Running,
            labels,
            image_id: String::new(),
            image: "busybox".into(),
            started_at: String::new(),
            created: String::new(),
            health: None,
        }
    }

    #[test]
    fn a_container_being_removed_holds_no_gpu() {
        let labels = BTreeMap::from([(label::GPUS.to_string(), "GPU-a,GPU-b".to_string())]);
        let mut c = observed(labels);
        assert_eq!(c.gpus(), ["GPU-a", "GPU-b"]);
        for state in [State::Exited, State::Created, State::Paused] {
            c.state = state;
            assert_eq!(c.gpus().len(), 2, "a stopped container keeps its claim");
        }
        for state in [State::Removing, State::Dead] {
            c.state = state;
            assert!(c.gpus().is_empty(), "{state:?} can never start again");
        }
    }

    #[test]
    fn the_spec_label_is_read_in_one_place() {
        let spec = ContainerSpec {
            schema: 1,
            name: "train".into(),
            image: "busybox".into(),
            ..Default::default()
        };
        let made = observed(spec.all_labels(std::path::Path::new("/p.toml")));
        assert_eq!(made.spec(), Some(spec));
        assert_eq!(observed(BTreeMap::new()).spec(), None, "no label");
        let garbled = BTreeMap::from([(label::SPEC.to_string(), "{not json".to_string())]);
        assert_eq!(observed(garbled).spec(), None, "an unreadable label");
    }
}
