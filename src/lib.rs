//! `launch`: a TOML profile in, a running GPU container out.
//!
//! The library is the pipeline (docs/architecture.md), one module a stage:
//!
//! ```text
//! profile.toml ──load──▶ Profile ──resolve(host)──▶ ContainerSpec ──plan(observed)──▶ Plan ──apply──▶ Outcome
//! ```
//!
//! - [`profile`] loads and checks a profile (pure apart from reading its files);
//! - [`host`] gathers the facts of the host once per run (NVML, device nodes,
//!   driver files, toolkit and CDI) — effects;
//! - [`resolve`] turns a profile and those facts into a [`spec::ContainerSpec`] — pure;
//! - [`reconcile`] plans (pure) and applies through an [`engine::Engine`] — effects.
//!
//! The binary (`main.rs`, `cli.rs`, `commands/`) turns flags into the plain
//! options defined here; nothing in the library knows about clap.

pub mod build;
pub mod clock;
pub mod engine;
pub mod error;
pub mod exit;
pub mod health;
pub mod host;
pub mod image_ref;
pub mod lease;
pub mod owner;
pub mod policy;
pub mod profile;
pub mod reconcile;
pub mod report;
pub mod resolve;
pub mod session;
pub mod spec;
pub mod state;
pub mod translate;

pub use error::{Error, Result};
pub use exit::Exit;
