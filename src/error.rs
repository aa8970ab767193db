//! The one error type of `launch`, with messages written for users; each
//! error knows its exit code (`Exit`).

use crate::exit::Exit;
use crate::profile::Diagnostics;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is wrong; rendered with snippets, not through Display.
    #[error("invalid profile")]
    Profile(Diagnostics),

    #[error("{0}")]
    Io(String),

    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),

    /// `up --wait`: the container did not come up (healthy) in time.
    #[error("{0}")]
    NotReady(String),

    #[error("{0}")]
    Nvml(#[from] crate::host::gpu::nvml::NvmlFailure),

    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),

    /// Not enough free GPUs for `{ count = N }`.
    #[error("{0}")]
    NotEnoughGpus(String),

    /// The host lacks what the profile needs (a device node, the driver's files).
    #[error("{0}")]
    Host(String),

    #[error("recreating {name} failed: {cause}; {rollback}")]
    RecreateFailed {
        name: String,
        cause: String,
        rollback: String,
    },

    /// Another run holds the lock of this container for too long.
    #[error(
        "another launch run (pid {}) has held the lock on {key} for {}s (--lock-timeout); lock file {path}",
        holder.as_deref().unwrap_or("unknown"),
        waited.as_secs()
    )]
    LockTimeout {
        key: String,
        path: String,
        holder: Option<String>,
        waited: std::time::Duration,
    },

    /// The host's policy forbids what the profile asks; rendered with
    /// snippets at the offending keys.
    #[error("refused by the policy")]
    Policy(Diagnostics),

    /// launch will not do it: a foreign container, files that would be lost,
    /// an image that needs a newer CUDA than the driver's.
    #[error("{0}")]
    Refused(String),

    /// The driver was upgraded and the host not rebooted: no GPU container
    /// can be made until it is.
    #[error("{0}")]
    RebootPending(String),

    /// The engine started a GPU container that does not reach its GPUs
    /// (docs/architecture.md, engines as they are).
    #[error(
        "the engine started {name} without its GPUs ({mode} mode on {engine}): it lacks {}; launch stopped it. \
         Set mode = \"devices\" under [gpus], which needs nothing of the engine, or fix the engine's GPU support",
        missing.join(", ")
    )]
    GpusLost {
        name: String,
        mode: String,
        engine: String,
        missing: Vec<String>,
    },

    /// The run's deadline (`--deadline`) passed before this was done; it
    /// stopped there, as a killed run would, and the next run repairs it.
    #[error(
        "the run's deadline of {}s (--deadline) passed while {doing}; launch stopped there, and the next run picks up what this one left, as after a killed run",
        after.as_secs()
    )]
    Deadline {
        doing: String,
        after: std::time::Duration,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Profile(_) | Error::Usage(_) => Exit::Invalid,
            Error::Engine(crate::engine::EngineError::Forbidden(_)) => Exit::Refused,
            Error::Engine(crate::engine::EngineError::Address { .. }) => Exit::Invalid,
            Error::Io(_)
            | Error::NotReady(_)
            | Error::Nvml(_)
            | Error::Engine(_)
            | Error::Host(_)
            | Error::RecreateFailed { .. }
            | Error::LockTimeout { .. }
            | Error::Deadline { .. }
            | Error::GpusLost { .. }
            | Error::RebootPending(_) => Exit::Runtime,
            Error::NotEnoughGpus(_) | Error::Refused(_) | Error::Policy(_) => Exit::Refused,
        }
    }

    /// The message for stderr; profile errors as rustc-style snippets.
    pub fn render(&self, color: bool) -> String {
        match self {
            Error::Profile(d) | Error::Policy(d) => d.render(color),
            other => format!("error: {other}\n"),
        }
    }
}
