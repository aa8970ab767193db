//! Runs the real `launch` binary, the way a user does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A `launch` invocation under construction.
pub struct Launch {
    cmd: Command,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Launch {
    pub fn new() -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_launch"));
        // Keep the output plain and the environment predictable; the state
        // store of the tests is theirs, not the host's /var/lib/launch.
        cmd.env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("LAUNCH_STATE_DIR", state_dir());
        Launch { cmd }
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Nothing in the environment but what a cron job has (PATH), and the
    /// tests' own state store.
    pub fn env_clear(mut self) -> Self {
        self.cmd
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LAUNCH_STATE_DIR", state_dir());
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn run(mut self) -> Output {
        let out = self.cmd.output().expect("the launch binary runs");
        let output = Output {
            // A signal (a panic that aborts, a crash) has no code: report it as -1.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !output.stderr.contains("panicked"),
            "launch panicked:\n{}",
            output.stderr
        );
        output
    }
}

impl Output {
    /// Asserts the exit code, showing the output when it differs.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The state store the tests' runs share, under cargo's folder for test
/// files (tests that need a store of their own set `LAUNCH_STATE_DIR`).
pub fn state_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("launch-state")
}

/// A temporary folder of profile files.
pub struct Profiles {
    pub dir: tempfile::TempDir,
}

impl Profiles {
    pub fn new() -> Self {
        Profiles {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// Writes `name` (relative to the folder) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, text).expect("write profile");
        path
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The repository's root, for checked-in profiles.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
