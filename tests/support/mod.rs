//! Test support: the real binary, a fake GPU host, a real Docker daemon.
// Each test file uses only part of the support code.
#![allow(dead_code)]

pub mod cli;
pub mod docker;
pub mod fake_gpu;
