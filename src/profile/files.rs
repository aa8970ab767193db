//! Reading the files a profile names (itself, what it extends, env files,
//! seccomp profiles) without trusting them: only regular files, at most
//! [`MAX_SIZE`] bytes, and never a read that can block.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest file launch reads for a profile.
pub const MAX_SIZE: u64 = 1 << 20;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub missing: bool,
    pub reason: String,
}

impl ReadError {
    /// A file launch does not read, for `reason`.
    pub fn refused(reason: impl Into<String>) -> Self {
        ReadError::new(reason)
    }

    fn new(reason: impl Into<String>) -> Self {
        ReadError {
            missing: false,
            reason: reason.into(),
        }
    }
}

/// The text of a regular file of at most [`MAX_SIZE`] bytes.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    // Look before opening: opening a device can act on it (a tape rewinds).
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    check_kind(&metadata)?;
    // O_NONBLOCK: a FIFO swapped in since the look opens at once instead of
    // waiting for a writer; fstat then refuses it.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    check_kind(&metadata)?;
    // Sized ahead: one read for the file and one for its end. procfs and
    // the like say 0, and grow the buffer as they go.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0) + 1);
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        ReadError::new(format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn check_kind(metadata: &std::fs::Metadata) -> Result<(), ReadError> {
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        return match metadata.len() {
            n if n > MAX_SIZE => Err(too_large(n)),
            _ => Ok(()),
        };
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(ReadError::new(format!("it is {what}, not a regular file")))
}

fn too_large(size: u64) -> ReadError {
    ReadError::new(format!(
        "it is larger than the limit of 1 MiB ({size} bytes or more)"
    ))
}

fn io_error(e: std::io::Error) -> ReadError {
    ReadError {
        missing: e.kind() == std::io::ErrorKind::NotFound,
        reason: super::io_reason(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        assert!(
            read_text(Path::new("/dev/zero"))
                .unwrap_err()
                .reason
                .contains("a device")
        );
        assert!(
            read_text(Path::new("/"))
                .unwrap_err()
                .reason
                .contains("a folder")
        );
        assert!(read_text(Path::new("/nonexistent/x")).unwrap_err().missing);
        let dir = std::env::temp_dir().join(format!("launch-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, vec![b'a'; MAX_SIZE as usize + 1]).unwrap();
        assert!(read_text(&big).unwrap_err().reason.contains("1 MiB"));
        let fits = dir.join("fits");
        std::fs::write(&fits, vec![b'a'; MAX_SIZE as usize]).unwrap();
        assert_eq!(read_text(&fits).unwrap().len(), MAX_SIZE as usize);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
