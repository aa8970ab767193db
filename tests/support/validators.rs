//! The real validators of rendered files: `kubernetes-validate` (PyPI),
//! Debian's `docker-compose`, `systemd-analyze` and `bash`. `.ci/run`
//! installs them; a test whose validator is missing is skipped with the
//! reason, and fails instead under `LAUNCH_REQUIRE_DOCKER=1` (as CI runs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Declares that a test needs a validator, as its first line; evaluates to
/// the program's path.
#[allow(unused_macros)]
macro_rules! needs_validator {
    ($name:expr) => {
        match $crate::support::validators::find($name, &$crate::support::docker::current_test()) {
            Some(path) => path,
            None => return,
        }
    };
}

/// Where the program `name` is: `$PATH`, or the venv `.ci/run` makes for
/// the PyPI tools (`~/.cache/launch-validators`).
pub fn find(name: &str, test: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("HOME").map(|h| {
        PathBuf::from(h)
            .join(".cache/launch-validators/bin")
            .join(name)
    });
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    let found = on_path.or(venv.filter(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("LAUNCH_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "{test}: `{name}` is not installed (.ci/run installs it), and LAUNCH_REQUIRE_DOCKER=1"
        );
        eprintln!("skipping {test}: `{name}` is not installed (.ci/run installs it)");
    }
    found
}

/// Runs `program args… file`; panics with its output unless it succeeds.
pub fn validate(program: &Path, args: &[&str], files: &[&Path]) {
    let out = Command::new(program)
        .args(args)
        .args(files)
        .output()
        .expect("the validator runs");
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "{} rejects the output:\n{}{}\n--- files\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        texts.join("\n---\n")
    );
}
