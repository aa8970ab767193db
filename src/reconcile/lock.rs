//! Advisory file locks, so two `launch` runs (two cron jobs in the same
//! minute) never work on the same container at once.
//!
//! Lock files live in a folder only the invoking user can write (`/run/launch`
//! for root, `$XDG_RUNTIME_DIR/launch` otherwise): in a world-writable folder
//! any local user could hold them and stall root's cron runs. Waits are
//! bounded, and a timeout names the process that holds the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A held lock; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Where locks live and how long to wait for one.
#[derive(Debug, Clone)]
pub struct Locks {
    pub dir: PathBuf,
    pub timeout: Duration,
}

impl Locks {
    /// `LAUNCH_LOCK_DIR` if set, else `/run/launch` for root and
    /// `$XDG_RUNTIME_DIR/launch` (or a per-user folder in /tmp) for others.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("LAUNCH_LOCK_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if uid == 0 {
            return PathBuf::from("/run/launch");
        }
        match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("launch"),
            None => std::env::temp_dir().join(format!("launch-{uid}")),
        }
    }

    /// Waits (at most `timeout`) for the lock named `key`: a container name,
    /// or `gpu-allocation`. Polls instead of blocking so that the other
    /// profiles of a folder, applied concurrently on the same thread, keep
    /// going meanwhile.
    pub async fn acquire(&self, key: &str) -> Result<Lock> {
        let path = self.dir.join(format!("{key}.lock"));
        let mut file = self.open(&path)?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    // Say who holds it, for whoever waits next: in a
                    // fixed width over the last holder's pid, as emptying
                    // the file first makes ext4 flush it on close, which a
                    // no-op run would wait for.
                    let pid = format!("{:<10}\n", std::process::id());
                    let _ = file.write_all_at(pid.as_bytes(), 0);
                    if file.metadata().is_ok_and(|m| m.len() > pid.len() as u64) {
                        let _ = file.set_len(pid.len() as u64);
                    }
                    return Ok(Lock { _file: file });
                }
                Err(TryLockError::WouldBlock) => {
                    let waited = start.elapsed();
                    if waited >= self.timeout {
                        return Err(Error::LockTimeout {
                            key: key.to_string(),
                            path: path.display().to_string(),
                            holder: holder(&mut file),
                            waited: self.timeout,
                        });
                    }
                    if !told && waited >= Duration::from_secs(5) {
                        told = true;
                        tracing::info!(
                            "waiting for another launch run on {key} (lock {}, held by pid {})",
                            path.display(),
                            holder(&mut file).unwrap_or_else(|| "?".into())
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(TryLockError::Error(e)) => return Err(io(&path, e)),
            }
        }
    }

    /// Opens (or creates) a lock file, refusing one that another user
    /// could have planted: a symlink, or a file or folder not owned by us.
    fn open(&self, path: &Path) -> Result<File> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        self.ensure_dir(uid)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            // A symlink planted in place of the lock file is not followed.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    Error::Io(format!(
                        "lock file {} is a symlink; launch refuses it (remove it)",
                        path.display()
                    ))
                } else {
                    io(path, e)
                }
            })?;
        let meta = file.metadata().map_err(|e| io(path, e))?;
        if !meta.is_file() || meta.uid() != uid {
            return Err(Error::Io(format!(
                "lock file {} is not a regular file owned by uid {uid}; launch refuses it (remove it)",
                path.display()
            )));
        }
        Ok(file)
    }

    /// Creates the lock folder (mode 0700) or checks that only we can write it.
    fn ensure_dir(&self, uid: u32) -> Result<()> {
        let dir = &self.dir;
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| io(dir, e))?;
                Ok(())
            }
            Err(e) => Err(io(dir, e)),
            Ok(meta) => {
                let writable_by_others = meta.permissions().mode() & 0o022 != 0;
                if !meta.is_dir() || meta.uid() != uid || writable_by_others {
                    return Err(Error::Io(format!(
                        "lock folder {} must be a folder owned by uid {uid} that only it can write \
                         (found {}, owner uid {}, mode {:o}); other users could hold launch's locks there",
                        dir.display(),
                        if meta.file_type().is_symlink() {
                            "a symlink"
                        } else if meta.is_dir() {
                            "a folder"
                        } else {
                            "a file"
                        },
                        meta.uid(),
                        meta.permissions().mode() & 0o7777
                    )));
                }
                Ok(())
            }
        }
    }
}

/// The pid written in a lock file by the run that holds it.
fn holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    let pid = text.trim();
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then(|| pid.to_string())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("lock {}: {e}", path.display()))
}
