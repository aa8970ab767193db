//! The state store: what launch made on this host, and for whom
//! (docs/architecture.md, the owner boundary). Labels say the same for
//! `docker ps` users, but anyone who can build an image can write labels;
//! this store is written by launch alone, in a folder only the user running
//! launch can write (`/var/lib/launch` for root).
//!
//! SQLite in WAL mode: concurrent cron runs wait for each other briefly, and
//! a run killed mid-write leaves the last committed state.

mod schema;

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

/// The store's file in its folder.
pub const FILE: &str = "state.db";

/// How long a run waits for another run's write before giving up.
const BUSY: Duration = Duration::from_secs(10);

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The folder is not one launch can trust: another user could change
    /// what launch believes it made.
    #[error("state folder {path}: {why}")]
    Unsafe { path: String, why: String },
    #[error("state store {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state folder {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The folder launch keeps its state in when neither `--state-dir` nor
/// `LAUNCH_STATE_DIR` says: root's is the host's, any other user's is their
/// own XDG state folder (a rootless engine, or the docker group).
pub fn default_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/launch");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    state.join("launch")
}

/// What kind of image launch made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Built from a profile's `[build]`.
    Built,
    /// Committed from a container (`launch snapshot`, a recreate).
    Snapshot,
}

impl ImageKind {
    fn as_str(self) -> &'static str {
        match self {
            ImageKind::Built => "built",
            ImageKind::Snapshot => "snapshot",
        }
    }

    fn parse(s: &str) -> Option<ImageKind> {
        match s {
            "built" => Some(ImageKind::Built),
            "snapshot" => Some(ImageKind::Snapshot),
            _ => None,
        }
    }
}

/// Who launch made something for: the owner's uid, and the name shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub uid: u32,
    pub name: String,
}

/// A container launch made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub owner: Owned,
    pub profile: String,
}

/// An image reference launch made (a tag it built or committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub reference: String,
    pub image_id: String,
    pub kind: ImageKind,
    pub owner: Owned,
    /// For a snapshot: the container name it was taken of.
    pub of: Option<String>,
    /// A snapshot whose tag the user chose (`--tag`): never pruned.
    pub tag_given: bool,
    /// The order records were made in (never reused).
    pub seq: i64,
}

/// The state store of one run, opened on first use: a run that makes
/// nothing (a cron no-op) never opens it.
pub struct Store {
    dir: PathBuf,
    /// Another host's store file, read only (`launch report --db`).
    file: Option<PathBuf>,
    conn: OnceLock<Result<Mutex<Connection>, String>>,
}

impl Store {
    /// The store in `dir`, opened when first asked.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store {
            dir: dir.into(),
            file: None,
            conn: OnceLock::new(),
        }
    }

    /// A store file read as it is, never written (another host's copy for
    /// `launch report --db`); opened when first asked.
    pub fn read_only(file: impl Into<PathBuf>) -> Store {
        let file = file.into();
        Store {
            dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            file: Some(file),
            conn: OnceLock::new(),
        }
    }

    /// The store's file.
    pub fn path(&self) -> PathBuf {
        self.file.clone().unwrap_or_else(|| self.dir.join(FILE))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the store's file exists: a reader with nothing to read need
    /// not make one.
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.get_or_init(|| {
            match &self.file {
                Some(file) => open_read_only(file),
                None => open(&self.dir),
            }
            .map(Mutex::new)
            .map_err(|e| e.to_string())
        });
        let conn = conn.as_ref().map_err(|why| StoreError::Unsafe {
            path: self.dir.display().to_string(),
            why: why.clone(),
        })?;
        // A panic while holding the lock left no half-written transaction
        // (SQLite rolls it back): the connection is still good.
        let conn = conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&conn).map_err(|source| StoreError::Sqlite {
            path: self.path().display().to_string(),
            source,
        })
    }

    /// Runs `f` on the connection: for the other modules of launch that
    /// keep their tables here (leases, samples).
    pub fn run<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.with(f)
    }

    pub fn record_container(&self, r: &ContainerRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO containers (id, name, owner_uid, owner_name, profile, made)
                 VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s','now'))",
                params![r.id, r.name, r.owner.uid, r.owner.name, r.profile],
            )
            .map(drop)
        })
    }

    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, name, owner_uid, owner_name, profile FROM containers WHERE id = ?1",
                [id],
                |row| {
                    Ok(ContainerRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        owner: Owned {
                            uid: row.get(2)?,
                            name: row.get(3)?,
                        },
                        profile: row.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn forget_container(&self, id: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM containers WHERE id = ?1", [id])
                .map(drop)
        })
    }

    /// Records a reference launch made; one made again replaces the record.
    pub fn record_image(&self, r: &ImageRecord) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO images (reference, image_id, kind, owner_uid, owner_name, of, tag_given, made)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%s','now'))",
                params![
                    r.reference,
                    r.image_id,
                    r.kind.as_str(),
                    r.owner.uid,
                    r.owner.name,
                    r.of,
                    r.tag_given
                ],
            )
            .map(drop)
        })
    }

    pub fn image(&self, reference: &str) -> Result<Option<ImageRecord>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare(&format!("{SELECT_IMAGE} WHERE reference = ?1"))?;
            q.query_row([reference], image_row).optional()
        })
    }

    /// The snapshots launch took, oldest first.
    pub fn snapshots(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare(&format!(
                "{SELECT_IMAGE} WHERE kind = 'snapshot' ORDER BY seq"
            ))?;
            q.query_map([], image_row)?.collect()
        })
    }

    pub fn forget_image(&self, reference: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM images WHERE reference = ?1", [reference])
                .map(drop)
        })
    }
}

const SELECT_IMAGE: &str =
    "SELECT reference, image_id, kind, owner_uid, owner_name, of, tag_given, seq FROM images";

fn image_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ImageRecord> {
    let kind: String = row.get(2)?;
    Ok(ImageRecord {
        reference: row.get(0)?,
        image_id: row.get(1)?,
        kind: ImageKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown image kind {kind}").into(),
            )
        })?,
        owner: Owned {
            uid: row.get(3)?,
            name: row.get(4)?,
        },
        of: row.get(5)?,
        tag_given: row.get(6)?,
        seq: row.get(7)?,
    })
}

/// Opens (making it if need be) the store in `dir`, after checking that no
/// one but the user running launch can change it.
fn open(dir: &Path) -> Result<Connection, StoreError> {
    let io = |source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    trusted(dir)?;
    let path = dir.join(FILE);
    let sqlite = |source| StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    };
    // The file is made 0600: it says who owns what.
    let conn = Connection::open(&path).map_err(sqlite)?;
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    conn.busy_timeout(BUSY).map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite)?;
    // In WAL mode NORMAL loses no committed data on a crash of launch,
    // only (rarely) the last transactions on a power loss.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    // Each run is a short process: checkpointing the WAL (two fsyncs) as it
    // closes would be most of a leased no-op's cost. Writers checkpoint
    // once the WAL passes 1000 pages, as SQLite does by default.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(sqlite)?;
    schema::migrate(&conn).map_err(sqlite)?;
    Ok(conn)
}

fn open_read_only(file: &Path) -> Result<Connection, StoreError> {
    let sqlite = |source| StoreError::Sqlite {
        path: file.display().to_string(),
        source,
    };
    let conn = Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite)?;
    conn.busy_timeout(BUSY).map_err(sqlite)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sqlite)?;
    if version < schema::VERSION {
        return Err(StoreError::Unsafe {
            path: file.display().to_string(),
            why: format!(
                "written by an older launch (store version {version}, this launch reads {}): \
                 run `launch usage` on its host once to bring it up to date",
                schema::VERSION
            ),
        });
    }
    Ok(conn)
}

/// The store's folder must be the running user's own, not a link, and
/// writable by no one else.
fn trusted(dir: &Path) -> Result<(), StoreError> {
    let unsafe_because = |why: String| StoreError::Unsafe {
        path: dir.display().to_string(),
        why,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|source| StoreError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let me = rustix::process::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(unsafe_because("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_because("it is not a folder".into()));
    }
    if meta.uid() != me {
        return Err(unsafe_because(format!(
            "it belongs to uid {}, not to uid {me} who runs launch",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "group or others can write it (mode {:o}); `chmod go-w {}`",
            meta.mode() & 0o777,
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Owned {
        Owned {
            uid: 4242,
            name: "alice".into(),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_are_forgotten_on_request() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::at(dir.path().join("state"));
        let c = ContainerRecord {
            id: "abc".into(),
            name: "train".into(),
            owner: alice(),
            profile: "/p/train.toml".into(),
        };
        store.record_container(&c).expect("record");
        let image = |reference: &str, tag_given| ImageRecord {
            reference: reference.into(),
            image_id: "sha256:1".into(),
            kind: ImageKind::Snapshot,
            owner: alice(),
            of: Some("train".into()),
            tag_given,
            seq: 0,
        };
        store
            .record_image(&image("launch-snapshots/train:b", false))
            .expect("record");
        store
            .record_image(&image("launch-snapshots/train:a", true))
            .expect("record");
        drop(store);
        let store = Store::at(dir.path().join("state"));
        assert_eq!(store.container("abc").expect("read"), Some(c));
        let snapshots = store.snapshots().expect("read");
        // In the order they were made, not by their tags.
        let refs: Vec<&str> = snapshots.iter().map(|s| s.reference.as_str()).collect();
        assert_eq!(
            refs,
            ["launch-snapshots/train:b", "launch-snapshots/train:a"]
        );
        assert!(snapshots[1].tag_given);
        store.forget_container("abc").expect("forget");
        assert_eq!(store.container("abc").expect("read"), None);
        let mode = std::fs::metadata(dir.path().join("state"))
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_folder_others_can_write_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let e = Store::at(dir.path()).container("x").expect_err("refused");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        let link = dir.path().join("link");
        let real = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(real.path(), &link).expect("symlink");
        let e = Store::at(&link).container("x").expect_err("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
}
