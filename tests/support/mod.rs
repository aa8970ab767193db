//! Test support: the real binary, a fake GPU host, a real Docker daemon.
// Each test file uses only part of the support code.
#![allow(dead_code)]

/// Declares that a test needs a Docker daemon, as its first line: without
/// one the test fails, unless the run allows skips (`LAUNCH_ALLOW_SKIPS=1`),
/// when it is skipped and counted.
#[allow(unused_macros)] // test files without Docker tests
macro_rules! needs_docker {
    () => {
        if !$crate::support::docker::available(&$crate::support::docker::current_test()) {
            return;
        }
    };
}

/// Declares that a test cannot hold on Podman, and why, as its first lines
/// after `needs_docker!()`: on Podman (`LAUNCH_TEST_ENGINE=podman`) it is
/// skipped with the reason printed, and counted as skipped, never passed.
#[allow(unused_macros)]
macro_rules! not_on_podman {
    ($why:expr) => {
        if $crate::support::docker::podman() {
            $crate::support::docker::skip(&$crate::support::docker::current_test(), $why);
            return;
        }
    };
}

#[macro_use]
pub mod browser;
pub mod cli;
pub mod docker;
pub mod fake_gpu;
#[macro_use]
pub mod validators;
