//! `[build]`: what is sent to the engine's builder, and its content hash
//! (docs/architecture.md, build).
//!
//! The context is the folder minus what `.dockerignore` excludes; the hash
//! covers the path, type, mode and contents of every entry sent (links by
//! their target, not followed), plus the Dockerfile's path, the build
//! arguments and the target. It is stored on the built image as the label
//! [`CONTEXT_HASH`], so `up` rebuilds only when it moved. Times and owners do
//! not count: the builder's cache ignores them too.

pub mod ignore;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::profile::{Diagnostic, Diagnostics, Profile};

pub use ignore::Ignore;

use crate::spec::label::CONTEXT_HASH;

/// One entry of the context, in the order it is sent.
#[derive(Debug, Clone)]
struct Entry {
    /// Relative to the context's root.
    name: PathBuf,
    kind: Kind,
    mode: u32,
    mtime: u64,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File,
    Link(PathBuf),
}

/// A build context as it will be sent, with its hash and the profile's
/// build settings.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Hex SHA-256 of what is sent (see the module's comment).
    pub hash: String,
    entries: Arc<Vec<Entry>>,
}

impl Context {
    /// The labels a build of this context gets: its hash, which tells `up`
    /// whether the context changed since (the gate adds the owner).
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(CONTEXT_HASH.to_string(), self.hash.clone())])
    }
}

/// The host facts `[build]` needs, checked where bind sources are (`up`,
/// `plan`, `render`): the context is a folder and holds the Dockerfile.
pub fn check_host(profile: &Profile) -> Result<()> {
    let Some(b) = &profile.build else {
        return Ok(());
    };
    let problem = match std::fs::metadata(&b.context) {
        Err(e) => Some((
            b.context_span.clone(),
            format!(
                "build context {} cannot be read: {}",
                b.context.display(),
                crate::profile::io_reason(&e)
            ),
        )),
        Ok(m) if !m.is_dir() => Some((
            b.context_span.clone(),
            format!("build context {} is not a folder", b.context.display()),
        )),
        Ok(m) if !written_by(&m, profile) => Some((
            b.context_span.clone(),
            others_wrote(&b.context, &m, profile),
        )),
        Ok(m) if let Some(why) = written_by_others(&b.context, &m) => Some((
            b.context_span.clone(),
            format!(
                "build context {}: someone other than its owner could change it: {why}",
                b.context.display()
            ),
        )),
        Ok(_) => match std::fs::metadata(b.context.join(&b.dockerfile)) {
            Ok(m) if m.is_file() && !written_by(&m, profile) => Some((
                b.dockerfile_span.clone(),
                others_wrote(&b.context.join(&b.dockerfile), &m, profile),
            )),
            Ok(m) if m.is_file() => {
                written_by_others(&b.context.join(&b.dockerfile), &m).map(|why| {
                    (
                        b.dockerfile_span.clone(),
                        format!(
                            "Dockerfile {}: someone other than its owner could change it: {why}",
                            b.dockerfile
                        ),
                    )
                })
            }
            _ => Some((
                b.dockerfile_span.clone(),
                format!(
                    "the build context {} holds no Dockerfile {}",
                    b.context.display(),
                    b.dockerfile
                ),
            )),
        },
    };
    match problem {
        None => Ok(()),
        Some((span, message)) => Err(Error::Profile(Diagnostics {
            sources: Arc::clone(&profile.sources),
            items: vec![Diagnostic::new(span, message)],
        })),
    }
}

/// `files::written_by_others`, for a path looked at once.
fn written_by_others(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let mut folders = crate::profile::files::Folders::default();
    crate::profile::files::written_by_others(path, &canonical, meta, &mut folders)
}

/// Whether the profile's acting owner (or root) owns a context file: what a
/// build sends runs in an image the owner's containers run
/// (docs/architecture.md, the owner boundary).
fn written_by(meta: &std::fs::Metadata, profile: &Profile) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.uid() == 0 || meta.uid() == profile.owner.uid
}

fn others_wrote(path: &Path, meta: &std::fs::Metadata, profile: &Profile) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{} belongs to uid {}, not to {} for whom this profile builds; a [build] sends only its owner's (or root's) files",
        path.display(),
        meta.uid(),
        profile.owner.display()
    )
}

/// Walks the context of `profile`'s `[build]` and hashes what would be sent.
/// Reads every file sent: call it off the async thread for big contexts.
/// Launch, acting for the owner (run by root or another user), sends only what `owner` (the profile's) could read
/// (docs/architecture.md, shared hosts): a context of `/` or of another
/// user's folder is refused at the first entry the owner could not read.
pub fn scan(build: &crate::profile::Build, owner: Option<&Owner>) -> Result<Context> {
    let root = build.context.clone();
    let reader = owner.filter(|o| o.acted_for());
    let failed = |what: &Path, e: io::Error| {
        Error::Io(format!(
            "reading the build context: {}: {}",
            what.display(),
            crate::profile::io_reason(&e)
        ))
    };
    let ignore_file = root.join(".dockerignore");
    if let Some(o) = reader
        && !o.may_list(&root)
    {
        return Err(failed(&root, refused(o)));
    }
    let mut ignore = match std::fs::symlink_metadata(&ignore_file) {
        Ok(m) if m.is_file() => {
            if let Some(o) = reader
                && !o.granted(&m, 0o4)
            {
                return Err(failed(&ignore_file, refused(o)));
            }
            let text =
                std::fs::read_to_string(&ignore_file).map_err(|e| failed(&ignore_file, e))?;
            Ignore::parse(&text)
                .map_err(|e| Error::Io(format!("{}: {e}", ignore_file.display())))?
        }
        _ => Ignore::default(),
    };
    ignore.keep(".dockerignore");
    ignore.keep(&build.dockerfile);
    let mut entries = Vec::new();
    walk(&root, Path::new(""), &ignore, reader, &mut entries).map_err(|(p, e)| failed(&p, e))?;

    let mut h = Sha256::new();
    h.update(b"launch-build-1\0");
    field(&mut h, b"dockerfile", build.dockerfile.as_bytes());
    field(
        &mut h,
        b"target",
        build.target.as_deref().unwrap_or("").as_bytes(),
    );
    for (k, v) in &build.args {
        field(&mut h, b"arg", k.as_bytes());
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    let mut buf = vec![0u8; 64 * 1024];
    for e in &entries {
        let kind: &[u8] = match e.kind {
            Kind::Dir => b"dir",
            Kind::File => b"file",
            Kind::Link(_) => b"link",
        };
        field(&mut h, kind, e.name.as_os_str().as_bytes());
        h.update(format!("{:o}\0", e.mode).as_bytes());
        match &e.kind {
            Kind::Dir => {}
            Kind::Link(target) => field(&mut h, b"to", target.as_os_str().as_bytes()),
            Kind::File => {
                let path = root.join(&e.name);
                let mut f = File::open(&path).map_err(|err| failed(&path, err))?;
                // The length goes first, so one file's end cannot be read
                // as the next one's start.
                let mut contents = Sha256::new();
                let mut len: u64 = 0;
                loop {
                    let n = f.read(&mut buf).map_err(|err| failed(&path, err))?;
                    if n == 0 {
                        break;
                    }
                    len += n as u64;
                    contents.update(&buf[..n]);
                }
                h.update(format!("{len}\0").as_bytes());
                h.update(contents.finalize());
            }
        }
    }
    let hash = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok(Context {
        root,
        dockerfile: build.dockerfile.clone(),
        args: build.args.clone(),
        target: build.target.clone(),
        hash,
        entries: Arc::new(entries),
    })
}

/// Why an entry is not sent.
fn refused(owner: &Owner) -> io::Error {
    io::Error::other(format!(
        "{} (the profile's owner) cannot read it, and launch sends for a profile only what its owner could read",
        owner.display()
    ))
}

fn field(h: &mut Sha256, name: &[u8], value: &[u8]) {
    h.update(name);
    h.update(b"\0");
    h.update(value);
    h.update(b"\0");
}

/// The entries under `rel`, in name order; what `ignore` excludes stays
/// out. An excluded folder is entered only when an exception may bring
/// something inside it back, as the docker CLI does.
fn walk(
    root: &Path,
    rel: &Path,
    ignore: &Ignore,
    reader: Option<&Owner>,
    out: &mut Vec<Entry>,
) -> std::result::Result<(), (PathBuf, io::Error)> {
    let dir = root.join(rel);
    let mut names: Vec<OsString> = std::fs::read_dir(&dir)
        .and_then(|list| list.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(|e| (dir.clone(), e))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let name = rel.join(name);
        let path = root.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| (path.clone(), e))?;
        let excluded = ignore.excludes(&name.to_string_lossy());
        let mode = meta.permissions().mode() & 0o7777;
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        let kind = meta.file_type();
        // What is sent must be readable, and a folder walked listable, by
        // the owner; a link is sent as a link, not followed.
        let (sent, walked) = (
            !excluded,
            kind.is_dir() && (!excluded || ignore.has_exceptions()),
        );
        let bits = if kind.is_dir() { 0o5 } else { 0o4 };
        if let Some(o) = reader
            && (sent || walked)
            && !kind.is_symlink()
            && !o.granted(&meta, bits)
        {
            return Err((path, refused(o)));
        }
        if kind.is_dir() {
            if !excluded {
                out.push(Entry {
                    name: name.clone(),
                    kind: Kind::Dir,
                    mode,
                    mtime,
                });
            }
            if !excluded || ignore.has_exceptions() {
                walk(root, &name, ignore, reader, out)?;
            }
        } else if excluded {
        } else if kind.is_file() {
            out.push(Entry {
                name,
                kind: Kind::File,
                mode,
                mtime,
            });
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| (path.clone(), e))?;
            out.push(Entry {
                name,
                kind: Kind::Link(target),
                mode,
                mtime,
            });
        } else {
            // A FIFO, socket or device: nothing a build can copy, and
            // reading a FIFO would block.
            tracing::debug!("build context: leaving out {} (not a file)", path.display());
        }
    }
    Ok(())
}

impl Context {
    /// Writes the context as the tar stream the engine's builder reads:
    /// owned by root, as the docker CLI sends it.
    pub fn write_tar(&self, out: impl Write) -> io::Result<()> {
        let mut tar = tar::Builder::new(out);
        for e in self.entries.iter() {
            let mut header = tar::Header::new_gnu();
            header.set_mode(e.mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(e.mtime);
            match &e.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, &e.name, io::empty())?;
                }
                Kind::Link(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &e.name, target)?;
                }
                Kind::File => {
                    let path = self.root.join(&e.name);
                    let file = File::open(&path).map_err(|err| with_path(&path, err))?;
                    let len = file.metadata().map_err(|err| with_path(&path, err))?.len();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(len);
                    // Exactly the length in the header, even if the file
                    // grows meanwhile.
                    tar.append_data(&mut header, &e.name, file.take(len))?;
                }
            }
        }
        tar.into_inner()?.flush()
    }
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("{}: {}", path.display(), crate::profile::io_reason(&e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_of(dir: &Path) -> crate::profile::Build {
        crate::profile::Build {
            context: dir.to_path_buf(),
            dockerfile: "Dockerfile".into(),
            args: BTreeMap::new(),
            target: None,
            context_span: 0..0,
            dockerfile_span: 0..0,
        }
    }

    fn hash(dir: &Path) -> String {
        scan(&build_of(dir), None).unwrap().hash
    }

    #[test]
    fn the_hash_follows_what_is_sent_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM busybox\nCOPY . /app\n").unwrap();
        std::fs::write(d.join("app.py"), "print(1)\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "*.log\ndata\n").unwrap();
        std::fs::create_dir(d.join("data")).unwrap();
        std::fs::write(d.join("data/big.bin"), "x").unwrap();
        let first = hash(d);
        assert_eq!(hash(d), first, "the same folder hashes the same");

        // Ignored files do not count, however they change.
        std::fs::write(d.join("debug.log"), "noise").unwrap();
        std::fs::write(d.join("data/big.bin"), "changed").unwrap();
        std::fs::write(d.join("data/new.bin"), "new").unwrap();
        assert_eq!(hash(d), first, "ignored files do not count");

        // A file sent does: its contents, its mode, its name.
        std::fs::write(d.join("app.py"), "print(2)\n").unwrap();
        let changed = hash(d);
        assert_ne!(changed, first, "a content change counts");
        std::fs::set_permissions(d.join("app.py"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(hash(d), changed, "a mode change counts");
        // A log file below the root is not the root's `*.log`.
        std::fs::create_dir(d.join("sub")).unwrap();
        let before = hash(d);
        std::fs::write(d.join("sub/x.log"), "sent").unwrap();
        assert_ne!(
            hash(d),
            before,
            "sub/x.log is sent: Docker anchors *.log at the root"
        );
        // The settings of the build count too.
        let mut b = build_of(d);
        let plain = scan(&b, None).unwrap().hash;
        b.args.insert("CUDA".into(), "12.4".into());
        assert_ne!(
            scan(&b, None).unwrap().hash,
            plain,
            "a build argument counts"
        );
    }

    #[test]
    fn the_dockerfile_and_dockerignore_are_sent_even_when_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "*\n").unwrap();
        std::fs::write(d.join("other"), "x").unwrap();
        let ctx = scan(&build_of(d), None).unwrap();
        let mut tar = Vec::new();
        ctx.write_tar(&mut tar).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile"]);
        let first = ctx.hash;
        std::fs::write(d.join("Dockerfile"), "FROM busybox\nRUN true\n").unwrap();
        assert_ne!(hash(d), first, "an ignored Dockerfile still counts");
    }
}
