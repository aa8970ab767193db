//! Reading the files a profile names (itself, what it extends, env files,
//! seccomp profiles) without trusting them: only regular files, at most
//! [`MAX_SIZE`] bytes, never a read that can block, and never a file that
//! someone other than its owner could have written (as sshd refuses such
//! keys): what launch applies is judged as its owner's.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
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

/// A file's text and who owns it.
#[derive(Debug, Clone)]
pub struct Text {
    pub text: String,
    pub uid: u32,
    pub gid: u32,
}

/// The text of a regular file of at most [`MAX_SIZE`] bytes, which only its
/// owner (and root) can have written.
pub fn read_owned_text(
    path: &Path,
    canonical: &Path,
    folders: &mut Folders,
) -> Result<Text, ReadError> {
    let (text, meta) = read(path)?;
    only_owner_writes(path, canonical, &meta, folders)?;
    Ok(Text {
        text,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// The owner and mode of folders looked at in one run: a folder's profiles
/// share the folders above them.
#[derive(Debug, Default)]
pub struct Folders(std::collections::HashMap<std::path::PathBuf, Option<(u32, u32)>>);

impl Folders {
    fn get(&mut self, dir: &Path) -> Option<(u32, u32)> {
        *self
            .0
            .entry(dir.to_path_buf())
            .or_insert_with(|| std::fs::metadata(dir).ok().map(|m| (m.uid(), m.mode())))
    }
}

/// Why someone other than the owner of `path` (and root) could have
/// written it: the file is group- or other-writable, or a folder above it
/// lets another user replace it (writable by group or others without the
/// sticky bit, or owned by someone else). `None`: only its owner could.
pub fn written_by_others(
    path: &Path,
    canonical: &Path,
    meta: &std::fs::Metadata,
    folders: &mut Folders,
) -> Option<String> {
    let owner = meta.uid();
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "group or others can write it (mode {:03o}); `chmod go-w {}`",
            meta.mode() & 0o777,
            path.display()
        ));
    }
    for dir in canonical.ancestors().skip(1) {
        let Some((uid, mode)) = folders.get(dir) else {
            continue;
        };
        let sticky = mode & 0o1000 != 0;
        if uid != 0 && uid != owner {
            return Some(format!(
                "its folder {} belongs to uid {uid}, who could replace it",
                dir.display(),
            ));
        }
        if mode & 0o022 != 0 && !sticky {
            return Some(format!(
                "its folder {} can be written by group or others (mode {:03o}), who could replace it; `chmod go-w {}`",
                dir.display(),
                mode & 0o777,
                dir.display()
            ));
        }
    }
    None
}

fn only_owner_writes(
    path: &Path,
    canonical: &Path,
    meta: &std::fs::Metadata,
    folders: &mut Folders,
) -> Result<(), ReadError> {
    match written_by_others(path, canonical, meta, folders) {
        None => Ok(()),
        Some(why) => Err(ReadError {
            missing: false,
            reason: format!(
                "someone other than its owner could have written it: {why}; launch applies only files their owner alone can change"
            ),
        }),
    }
}

/// The text of a regular file of at most [`MAX_SIZE`] bytes.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    read(path).map(|(text, _)| text)
}

fn read(path: &Path) -> Result<(String, std::fs::Metadata), ReadError> {
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
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let (line, column) = line_column(bytes, at);
        ReadError::new(format!(
            "it is not UTF-8 text: byte 0x{:02x} at {}:{line}:{column} is not UTF-8",
            bytes.get(at).copied().unwrap_or(0),
            path.display()
        ))
    })?;
    Ok((text, metadata))
}

/// The 1-based line and column (in characters) of byte `at`, all of whose
/// bytes before it are UTF-8.
fn line_column(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
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

    #[test]
    fn a_file_others_could_have_written_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "image = \"x\"\n").unwrap();
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        // Each read as a new run: the folders are looked at afresh.
        let read_owned_text = |f: &Path| {
            let canonical = std::fs::canonicalize(f).unwrap();
            super::read_owned_text(f, &canonical, &mut Folders::default())
        };
        mode(&file, 0o644).unwrap();
        assert!(read_owned_text(&file).is_ok());
        mode(&file, 0o664).unwrap();
        let e = read_owned_text(&file).unwrap_err();
        assert!(
            e.reason.contains("mode 664") && e.reason.contains("chmod go-w"),
            "{e:?}"
        );
        mode(&file, 0o644).unwrap();
        // A folder anyone can write, without the sticky bit: the file could be replaced.
        mode(dir.path(), 0o777).unwrap();
        let e = read_owned_text(&file).unwrap_err();
        assert!(e.reason.contains("could replace it"), "{e:?}");
        // With the sticky bit (as /tmp), only the file's owner can.
        mode(dir.path(), 0o1777).unwrap();
        assert!(read_owned_text(&file).is_ok());
    }
}
