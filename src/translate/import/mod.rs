//! `launch import`: profiles from `docker run` lines and from containers
//! (docs/architecture.md, translation). Every flag with a profile key maps
//! to it; every other flag becomes a `# not imported:` comment, never a
//! guessed value.

pub mod container;
pub mod flags;
pub mod gpus;
pub mod script;

use std::path::Path;

use crate::host::gpu::Gpu;
use crate::translate::draft::Draft;
pub use gpus::GpuFacts;
pub use script::{LineError, RunLine, Word, from_words, run_lines};

/// What import knows of the host: its GPUs (through NVML), to turn device
/// minors into indices, and where its device nodes are.
#[derive(Debug, Clone)]
pub struct HostView<'a> {
    /// The GPUs, or why NVML could not list them.
    pub gpus: Result<&'a [Gpu], String>,
    /// Device nodes are `<dev_root>/dev/nvidia*`.
    pub dev_root: &'a Path,
    /// The folder the profiles are written to, absolute: `$PWD` in the
    /// container becomes its path.
    pub folder: &'a Path,
}

/// One imported `docker run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// 1-based line of the script it came from.
    pub line: usize,
    /// The container name: `--name`, else `imported-<line>`.
    pub name: String,
    pub draft: Draft,
}

/// Imports one parsed `docker run`.
pub fn import_run(run: &RunLine, host: &HostView<'_>) -> Result<Imported, LineError> {
    let mut draft =
        flags::translate(run, host, GpuFacts::default()).map_err(|message| LineError {
            line: run.line,
            message,
        })?;
    let name = match draft.get("name").and_then(|v| v.as_str()) {
        Some(n) => n.to_string(),
        None => {
            let n = format!("imported-{}", run.line);
            draft.set("name", n.clone());
            n
        }
    };
    Ok(Imported {
        line: run.line,
        name,
        draft,
    })
}

/// Every `docker run` of a script, each imported or an error at its line.
pub fn import_script(text: &str, host: &HostView<'_>) -> Vec<Result<Imported, LineError>> {
    run_lines(text)
        .into_iter()
        .map(|r| r.and_then(|run| import_run(&run, host)))
        .collect()
}

/// The comment lines a written profile starts with.
pub fn header(schema: &str, from: &str) -> Vec<String> {
    vec![
        format!("#:schema {schema}"),
        format!("# Imported by `launch import` from {from}."),
    ]
}
