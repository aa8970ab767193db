//! The real validators of rendered files: `kubernetes-validate` (PyPI),
//! Debian's `docker-compose`, `systemd-analyze`, `bash`, and `sbatch
//! --test-only` against the one-node controller `scripts/start-slurm.sh`
//! starts. `.ci/run` installs and starts them; a test whose validator is
//! missing fails, unless the run allows skips (`LAUNCH_ALLOW_SKIPS=1`).

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

/// Declares that a test needs `sbatch` and a Slurm controller that
/// answers, as its first line; evaluates to a [`Slurm`].
#[allow(unused_macros)]
macro_rules! needs_slurm {
    () => {
        match $crate::support::validators::slurm(&$crate::support::docker::current_test()) {
            Some(slurm) => slurm,
            None => return,
        }
    };
}

/// `sbatch`, pointed at the controller `scripts/start-slurm.sh` starts.
pub struct Slurm {
    sbatch: PathBuf,
    conf: PathBuf,
}

/// The controller's config (`$LAUNCH_SLURM_STATE/slurm.conf`, as
/// `scripts/start-slurm.sh` writes it), when `sbatch` is installed and
/// `scontrol ping` says the controller is up.
pub fn slurm(test: &str) -> Option<Slurm> {
    let sbatch = find("sbatch", test)?;
    let state = std::env::var_os("LAUNCH_SLURM_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/launch-slurm"));
    let conf = state.join("slurm.conf");
    let up = conf.is_file()
        && Command::new(sbatch.with_file_name("scontrol"))
            .arg("ping")
            .env("SLURM_CONF", &conf)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"));
    if !up {
        super::docker::missing(
            test,
            &format!(
                "no Slurm controller answers at {} (scripts/start-slurm.sh starts one)",
                conf.display()
            ),
        );
        return None;
    }
    Some(Slurm { sbatch, conf })
}

impl Slurm {
    /// `sbatch --test-only FILE`: whether the controller would schedule the
    /// script on its node, and what it said (sbatch answers on stderr).
    pub fn test_only(&self, file: &Path) -> (bool, String) {
        let out = Command::new(&self.sbatch)
            .arg("--test-only")
            .arg(file)
            .env("SLURM_CONF", &self.conf)
            .output()
            .expect("sbatch runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    }
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
        super::docker::missing(
            test,
            &format!("`{name}` is not installed (.ci/run installs it)"),
        );
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
