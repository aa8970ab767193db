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
    /// The owner of the profile being loaded: `~` is their home.
    pub(super) owner: Option<crate::owner::Owner>,
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

    /// Reads and checks the profile at `path`.
    pub fn load(&mut self, path: &Path) -> Result<Profile, Diagnostics> {
        self.load_profile(path).result
    }

    pub(super) fn load_profile(&mut self, path: &Path) -> Loaded {
        self.owner = crate::owner::Owner::of_file(path).ok();
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

    /// The profile's owner, whose home `~` means (looked up only then).
    pub(super) fn owner(&self) -> Option<crate::owner::Owner> {
        self.owner.clone()
    }

    /// A profile file, read and parsed on first use.
    pub(super) fn profile_file(&mut self, path: &Path) -> ProfileFile {
        let key = self.canonical(path);
        // Judged for each profile: one owner may read a shared file, another not.
        if let Some(e) = self.refused(&key) {
            return ProfileFile::Unreadable(e);
        }
        if let Some(file) = self.profiles.get(&key) {
            return file.clone();
        }
        let file = match files::read_text(path) {
            Ok(text) => {
                let base = self.sources.add(path, text);
                load::parse(&self.sources, base)
            }
            Err(e) => ProfileFile::Unreadable(e),
        };
        self.profiles.insert(key, file.clone());
        file
    }

    /// Another file a profile names, read on first use: its text and where it
    /// starts in `sources`.
    pub(super) fn text_file(&mut self, path: &Path) -> Result<(usize, &'static str), ReadError> {
        let key = self.canonical(path);
        if let Some(e) = self.refused(&key) {
            return Err(e);
        }
        let base = match self.texts.get(&key) {
            Some(known) => known.clone(),
            None => {
                let read = files::read_text(path).map(|text| self.sources.add(path, text));
                self.texts.insert(key, read.clone());
                read
            }
        }?;
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
    fn refused(&self, path: &Path) -> Option<ReadError> {
        let owner = self.owner.as_ref()?;
        if path == self.top || !owner.acted_for() || owner.may_read(path) {
            return None;
        }
        Some(ReadError::refused(format!(
            "its owner's permissions do not let {} (the profile's owner) read it, and launch reads for a profile only what its owner could",
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
