//! The profiles a command is given: files, and folders of `*.toml` files
//! loaded together, with the rules that only a folder has.

use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::loader::{Loaded, Loader};
use super::{Profile, io_reason};

/// A profile named on the command line (or found in a named folder), loaded.
pub struct Target {
    pub path: ShownPath,
    pub loaded: Result<Profile, Diagnostics>,
}

/// A path as the user gave it; shown and serialized lossily when it is not
/// UTF-8, so reporting on it never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownPath(PathBuf);

impl Deref for ShownPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl serde::Serialize for ShownPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string_lossy())
    }
}

/// Loads the profiles named by `args`, reading each file once. A folder means
/// each `*.toml` in it, except profiles that other profiles of the folder
/// extend: those are bases (a team's `base.toml`), checked through the
/// profiles that extend them. A folder that gives no profiles is an invalid
/// target of its own; the other arguments are still loaded.
pub fn targets(args: &[PathBuf]) -> Vec<Target> {
    targets_trusting(args, crate::owner::Trust::default())
}

/// `targets`, on a host whose trusted writers are `trust`'s (root's, the
/// policy's admins'): each profile acts for the least trusted of its writers.
pub fn targets_trusting(args: &[PathBuf], trust: crate::owner::Trust) -> Vec<Target> {
    let mut loader = Loader::trusting(trust);
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            match folder(&mut loader, arg) {
                Ok(targets) => out.extend(targets),
                Err(message) => out.push(Target {
                    path: ShownPath(arg.clone()),
                    loaded: Err(Diagnostics {
                        sources: Default::default(),
                        items: vec![Diagnostic::whole_file(message)],
                    }),
                }),
            }
        } else {
            out.push(Target {
                path: ShownPath(arg.clone()),
                loaded: loader.load(arg),
            });
        }
    }
    out
}

fn folder(loader: &mut Loader, dir: &Path) -> Result<Vec<Target>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read folder {}: {}", dir.display(), io_reason(&e)))?;
    // Every `*.toml` but folders: a FIFO or a dangling link named like a
    // profile is reported by the loader, not skipped in silence.
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.is_dir())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.toml profiles in {}", dir.display()));
    }
    let loaded: Vec<(PathBuf, PathBuf, Loaded)> = files
        .into_iter()
        .map(|f| {
            let loaded = loader.load_profile(&f);
            (loader.canonical(&f), f, loaded)
        })
        .collect();
    // A profile another one extends is a base, unless it extends that one
    // back: a cycle is reported, not hidden.
    let base: Vec<bool> = loaded
        .iter()
        .map(|(canon, _, own)| {
            loaded.iter().any(|(other, _, theirs)| {
                other != canon && theirs.extends.contains(canon) && !own.extends.contains(other)
            })
        })
        .collect();
    // Names of every complete profile, bases too: a profile that extends
    // another and takes its name would otherwise hide it and take over its
    // container.
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, _, l)) in loaded.iter().enumerate() {
        if let Ok(p) = &l.result {
            by_name.entry(p.name.clone()).or_default().push(i);
        }
    }
    let paths: Vec<PathBuf> = loaded.iter().map(|(_, path, _)| path.clone()).collect();
    let mut shown: Vec<(PathBuf, Loaded)> = Vec::new();
    for (i, ((_, path, mut l), base)) in loaded.into_iter().zip(base).enumerate() {
        if base {
            continue;
        }
        // Two profiles of one folder with one container name: an error for
        // each one applied.
        let clash = l.result.as_ref().ok().and_then(|p| {
            by_name
                .get(&p.name)
                .filter(|users| users.len() > 1)
                .map(|u| (p, u))
        });
        if let Some((p, users)) = clash {
            let others: Vec<String> = users
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| paths[j].display().to_string())
                .collect();
            let d = Diagnostic::new(
                l.name_span.clone().unwrap_or(0..0),
                format!(
                    "container name `{}` is also the name of {}",
                    p.name,
                    others.join(", ")
                ),
            )
            .help(
                "profiles of one folder would fight over one container: give each its own `name`",
            );
            l.result = Err(Diagnostics {
                sources: p.sources.clone(),
                items: vec![d],
            });
        }
        shown.push((path, l));
    }
    Ok(shown
        .into_iter()
        .map(|(path, l)| Target {
            path: ShownPath(path),
            loaded: l.result,
        })
        .collect())
}
