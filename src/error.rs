//! The one error type of `launch`, with messages written for users, and the
//! exit codes of DESIGN.md §6.

use crate::profile::Diagnostics;

/// Exit codes (DESIGN.md §6).
pub mod exit {
    pub const OK: i32 = 0;
    pub const RUNTIME: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const REFUSED: i32 = 3;
    pub const PLAN_CHANGES: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is wrong; rendered with snippets, not through Display.
    #[error("invalid profile")]
    Profile(Diagnostics),

    #[error("{path}: no *.toml profiles in this folder")]
    EmptyFolder { path: String },

    #[error("{0}")]
    Io(String),

    /// `up --wait`: the container did not come up (healthy) in time.
    #[error("{0}")]
    NotReady(String),

    #[error("{0}")]
    Nvml(#[from] crate::gpu::nvml::NvmlFailure),

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

    /// launch will not do it: a foreign container, files that would be lost.
    #[error("{0}")]
    Refused(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Profile(_) | Error::EmptyFolder { .. } => exit::INVALID,
            Error::Io(_)
            | Error::NotReady(_)
            | Error::Nvml(_)
            | Error::Engine(_)
            | Error::Host(_)
            | Error::RecreateFailed { .. } => exit::RUNTIME,
            Error::NotEnoughGpus(_) | Error::Refused(_) => exit::REFUSED,
        }
    }

    /// The message for stderr; profile errors as rustc-style snippets.
    pub fn render(&self, color: bool) -> String {
        match self {
            Error::Profile(d) => d.render(color),
            other => format!("error: {other}\n"),
        }
    }
}
