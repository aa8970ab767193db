//! The integration tests: one binary (each test file a module), which
//! runs the real `launch` binary against real daemons, a fake GPU host and
//! real validators (docs/architecture.md, tests). A test whose
//! prerequisite is missing fails unless `LAUNCH_ALLOW_SKIPS=1`; skipped
//! tests are counted, and the count is printed when the run ends.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod build;
mod check;
mod cron;
mod day_to_day;
mod doctor;
mod engines;
mod fake_gpu_selftest;
mod fuzz;
mod gpu;
mod gpu_host_check;
mod health;
mod import;
mod import_corpus;
mod import_roundtrip;
mod lease;
mod owner_boundary;
mod policy;
mod pull;
mod render_engines;
mod report;
mod run_options;
mod unattended;
mod up;
