//! [`Loader`]: loads profiles, reading each file once however many profiles
//! extend it, and keeping every file it read for the diagnostics.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::DeTable;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::files::{self, ReadError};
use super::source::{SourceMap, Span};
use super::{Profile, load, validate};
use crate::owner::{Owner, Trust};

type Table = DeTable<'static>;

/// Loads profiles; one `Loader` per run, so a folder of profiles that extend
/// the same `base.toml` reads and parses it once.
#[derive(Default)]
pub struct Loader {
    pub(super) sources: SourceMap,
    /// Profile files by canonical path, parsed.
    profiles: HashMap<PathBuf, ProfileFile>,
    /// Other files (env files, seccomp profiles) by canonical path: where
    /// their text starts in `sources`.
    texts: HashMap<PathBuf, Result<usize, ReadError>>,
    /// The owner of the profile file being loaded.
    pub(super) owner: Option<Owner>,
    /// Owners by uid, looked up once per run.
    owners: HashMap<u32, Owner>,
    /// The owners of the files read for the profile being loaded, in order:
    /// everyone who could have written what is applied.
    writers: Vec<(u32, u32)>,
    /// Whose files are trusted (root, the policy's admins): the acting owner
    /// of a profile is the least trusted of its writers.
    trust: Trust,
    /// Folders above the files read, looked at once a run.
    folders: files::Folders,
    /// The profile being loaded (canonical), which whoever runs launch named.
    top: PathBuf,
    /// Canonical paths already worked out: a folder's profiles name the
    /// same files again and again, and each costs the kernel a path walk.
    canon: HashMap<PathBuf, PathBuf>,
    /// The working folder, asked of the kernel once.
    cwd: Option<PathBuf>,
}

/// One profile file as read from disk, before `extends` is followed.
#[derive(Clone)]
pub(super) enum ProfileFile {
    Unreadable(ReadError),
    /// Not TOML: what is wrong, located in the file.
    Invalid(Vec<Diagnostic>),
    Parsed {
        table: Table,
        whole: Span,
    },
}

/// One profile loaded, with what a folder needs to know about it.
pub(super) struct Loaded {
    pub result: Result<Profile, Diagnostics>,
    /// Where the container name comes from: `name`, or the file's start.
    pub name_span: Option<Span>,
    /// Canonical paths of the profiles it extends, directly or not.
    pub extends: HashSet<PathBuf>,
}

impl Loader {
    pub fn new() -> Self {
        Loader::default()
    }

    /// A loader for a host whose trusted writers are `trust`'s.
    pub fn trusting(trust: Trust) -> Self {
        Loader {
            trust,
            ..Loader::default()
        }
    }

    /// Reads and checks the profile at `path`.
    pub fn load(&mut self, path: &Path) -> Result<Profile, Diagnostics> {
        self.load_profile(path).result
    }

    pub(super) fn load_profile(&mut self, path: &Path) -> Loaded {
        self.owner = Owner::of_file(path).ok();
        self.writers.clear();
        self.top = self.canonical(path);
        let mut items = Vec::new();
        let mut extends = HashSet::new();
        let mut name_span = None;
        let profile = load::read(path, self, &mut items, &mut extends).and_then(|read| {
            // Where the container name comes from: `name`, or the file name.
            name_span = Some(
                read.raw
                    .name
                    .as_ref()
                    .map_or(read.whole.start..read.whole.start, |n| n.span()),
            );
            let (poisoned, before) = (Poisoned::new(&read.poisoned), items.len());
            let profile = validate::validate(path, read, self, &mut items);
            // A value whose `${…}` failed is reported once, not again as invalid.
            let mut index = 0;
            items.retain(|d| {
                index += 1;
                index <= before || !d.span.as_ref().is_some_and(|s| poisoned.overlaps(s))
            });
            profile
        });
        let sources = Arc::new(self.sources.clone());
        let result = match profile {
            Some(mut profile) if items.is_empty() => {
                profile.sources = sources;
                profile.extends = extends.iter().cloned().collect();
                profile.extends.sort();
                profile.writers = self.writers();
                profile.owner = self.acting(&profile.owner, &profile.writers);
                Ok(profile)
            }
            _ => {
                // Report in file order, whichever check found what.
                items.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
                Err(Diagnostics { sources, items })
            }
        };
        Loaded {
            result,
            name_span,
            extends,
        }
    }

    /// The owner of the file `span` lies in: whose home `~` there means,
    /// and who must be able to read what that file names.
    pub(super) fn owner_at(&mut self, span: &Span) -> Option<Owner> {
        let owner = self.sources.file_at(span.start)?.owner;
        owner.map(|(uid, gid)| self.owner_of(uid, gid))
    }

    fn owner_of(&mut self, uid: u32, gid: u32) -> Owner {
        self.owners
            .entry(uid)
            .or_insert_with(|| Owner::of_uid(uid, gid))
            .clone()
    }

    /// Notes the owner of a file this profile applies that is not read as
    /// text (the build context, the Dockerfile).
    pub(super) fn wrote(&mut self, uid: u32, gid: u32) {
        if !self.writers.iter().any(|(u, _)| *u == uid) {
            self.writers.push((uid, gid));
        }
    }

    fn wrote_at(&mut self, base: usize) {
        if let Some((uid, gid)) = self.sources.file_at(base).and_then(|f| f.owner) {
            self.wrote(uid, gid);
        }
    }

    /// Everyone who wrote a file of the profile just loaded.
    fn writers(&mut self) -> Vec<Owner> {
        let ids = self.writers.clone();
        ids.into_iter()
            .map(|(uid, gid)| self.owner_of(uid, gid))
            .collect()
    }

    /// Whom launch acts for (docs/architecture.md, the owner boundary): the
    /// least trusted of everyone who wrote what is applied. The profile
    /// file's owner, unless they are trusted (root, an admin) and another
    /// writer is not: root's profile that extends bob's base acts for bob.
    fn acting(&self, file_owner: &Owner, writers: &[Owner]) -> Owner {
        if !self.trust.trusts(file_owner) {
            return file_owner.clone();
        }
        writers
            .iter()
            .find(|w| !self.trust.trusts(w))
            .unwrap_or(file_owner)
            .clone()
    }

    /// A profile file, read and parsed on first use; `reader` is the owner
    /// of the profile whose `extends` names it.
    pub(super) fn profile_file(&mut self, path: &Path, reader: Option<&Owner>) -> ProfileFile {
        let key = self.canonical(path);
        // Judged for each profile: one owner may read a shared file, another not.
        if let Some(e) = self.refused_for(&key, reader) {
            return ProfileFile::Unreadable(e);
        }
        if let Some(file) = self.profiles.get(&key).cloned() {
            if let ProfileFile::Parsed { whole, .. } = &file {
                self.wrote_at(whole.start);
            }
            return file;
        }
        let file = match files::read_owned_text(path, &key, &mut self.folders) {
            Ok(read) => {
                let base =
                    self.sources
                        .add_file(path, read.text, Some((read.uid, read.gid)), false);
                self.wrote(read.uid, read.gid);
                load::parse(&self.sources, base)
            }
            Err(e) => ProfileFile::Unreadable(e),
        };
        self.profiles.insert(key, file.clone());
        file
    }

    /// Another file a profile names, read on first use: its text and where it
    /// starts in `sources`. `reader` is who named it, who must be able to
    /// read it; a `secret` file (env files) is never quoted in errors.
    pub(super) fn text_file(
        &mut self,
        path: &Path,
        reader: Option<&Owner>,
        secret: bool,
    ) -> Result<(usize, &'static str), ReadError> {
        let key = self.canonical(path);
        if let Some(e) = self.refused_for(&key, reader) {
            return Err(e);
        }
        let base = match self.texts.get(&key) {
            Some(known) => known.clone(),
            None => {
                let read = files::read_owned_text(path, &key, &mut self.folders).map(|read| {
                    self.sources
                        .add_file(path, read.text, Some((read.uid, read.gid)), secret)
                });
                self.texts.insert(key, read.clone());
                read
            }
        }?;
        self.wrote_at(base);
        let text = self.sources.file_at(base).map_or("", |f| f.text);
        Ok((base, text))
    }
}

impl Loader {
    /// Why launch, acting for the owner (run by root or another user), does not read `path` (canonical) for this
    /// profile: its owner could not (docs/architecture.md, shared hosts).
    /// Otherwise an `extends`, `env_file` or seccomp file would show root's
    /// secrets in the container or in an error's excerpt. The profile itself
    /// was named by whoever runs launch.
    fn refused_for(&self, path: &Path, owner: Option<&Owner>) -> Option<ReadError> {
        let owner = owner.or(self.owner.as_ref())?;
        if path == self.top || !owner.acted_for() || owner.may_read(path) {
            return None;
        }
        Some(ReadError::refused(format!(
            "its owner's permissions do not let {} (who wrote the profile that names it) read it, and launch reads for a profile only what its owner could",
            owner.display()
        )))
    }
}

impl Loader {
    /// `path` with its links resolved (as given when it does not exist),
    /// worked out once per run.
    pub(super) fn canonical(&mut self, path: &Path) -> PathBuf {
        if let Some(known) = self.canon.get(path) {
            return known.clone();
        }
        let real = canonical(path);
        self.canon.insert(path.to_path_buf(), real.clone());
        real
    }

    /// `std::path::absolute`, with the working folder asked for once.
    pub(super) fn absolute(&mut self, path: &Path) -> PathBuf {
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            let cwd = self
                .cwd
                .get_or_insert_with(|| std::env::current_dir().unwrap_or_default());
            cwd.join(path)
        };
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

pub(super) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Spans of values already reported, for a quick "does this overlap one?".
struct Poisoned {
    /// Sorted by start.
    spans: Vec<Span>,
    /// The largest end among `spans[..=i]`.
    max_end: Vec<usize>,
}

impl Poisoned {
    fn new(spans: &[Span]) -> Self {
        let mut spans = spans.to_vec();
        spans.sort_by_key(|s| s.start);
        let max_end = spans
            .iter()
            .scan(0, |m, s| {
                *m = (*m).max(s.end);
                Some(*m)
            })
            .collect();
        Poisoned { spans, max_end }
    }

    fn overlaps(&self, d: &Span) -> bool {
        // Among the spans starting before `d` ends, does one end after it starts?
        let before = self.spans.partition_point(|s| s.start < d.end);
        before > 0 && self.max_end[before - 1] > d.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_many_profiles_extend_is_read_once_per_loader() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        std::fs::write(&base, "image = \"busybox\"\n").unwrap();
        for name in ["aa", "bb"] {
            std::fs::write(
                dir.path().join(format!("{name}.toml")),
                "extends = \"base.toml\"\n",
            )
            .unwrap();
        }
        let mut loader = Loader::new();
        assert!(loader.load(&dir.path().join("aa.toml")).is_ok());
        // Gone from disk, still known: the second profile does not read it again.
        std::fs::remove_file(&base).unwrap();
        let bb = loader.load(&dir.path().join("bb.toml"));
        assert_eq!(bb.map(|p| p.image).ok().as_deref(), Some("busybox"));
        assert!(Loader::new().load(&dir.path().join("bb.toml")).is_err());
    }
}
