//! GPU health (docs/architecture.md, GPU health): pure judgements of facts
//! gathered elsewhere (`host`, the engine). Nothing here reads a file or
//! calls a driver.

pub mod cuda;
pub mod doctor;
pub mod kernel;
pub mod probe;
