//! Advisory file locks, so two `launch` runs (two cron jobs in the same
//! minute) never work on the same container at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// A held lock; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Where lock files live: `LAUNCH_LOCK_DIR`, else a shared folder in /tmp.
fn dir() -> PathBuf {
    std::env::var_os("LAUNCH_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("launch-locks"))
}

/// Waits for the lock named `key` (a container name, or `gpu-allocation`).
/// Polls instead of blocking so that the other profiles of a folder, applied
/// concurrently on the same thread, keep going meanwhile.
pub async fn acquire(key: &str) -> Result<Lock> {
    let dir = dir();
    let io = |e: std::io::Error| Error::Io(format!("lock folder {}: {e}", dir.display()));
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Shared by every user who runs launch, like /tmp itself.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
        }
    }
    let path = dir.join(format!("{key}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let mut waited = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                if waited == Duration::from_secs(5) {
                    tracing::info!(
                        "waiting for another launch run on {key} (lock {})",
                        path.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                waited += Duration::from_millis(50);
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}
