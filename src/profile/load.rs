//! Reading profile files: TOML with spans, `${VAR}` interpolation, `extends`
//! merging, and the typed deserialization that reports every key it can.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};

use super::diagnostic;
use super::diagnostic::Diagnostic;
use super::extends::merge;
use super::interpolate::{InterpolationError, interpolate};
use super::loader::{Loader, ProfileFile};
use super::raw::RawProfile;
use super::source::{SourceMap, Span};

type Table = DeTable<'static>;
type Value = Spanned<DeValue<'static>>;

/// What `read` produces: the merged raw profile and everything seen on the way.
pub struct Read {
    pub raw: RawProfile,
    /// Values whose `${…}` could not be replaced: already reported, so later
    /// checks of the same value stay quiet.
    pub poisoned: Vec<Span>,
    /// Span of the whole top-level file, for errors that belong to no key.
    pub whole: Span,
    /// Where each top-level key is written (in whichever file of the
    /// `extends` chain it came from).
    pub keys: std::collections::BTreeMap<String, Span>,
}

/// How many profiles deep `extends` may go.
pub const MAX_EXTENDS_DEPTH: usize = 32;

/// Reads `path` and the profiles it extends, and deserializes the merged result.
///
/// Problems are pushed to `diags`; `None` means nothing usable was read.
/// `extended` gets the canonical path of every profile named in an `extends`.
pub fn read(
    path: &Path,
    loader: &mut Loader,
    diags: &mut Vec<Diagnostic>,
    extended: &mut HashSet<PathBuf>,
) -> Option<Read> {
    let mut walk = Walk {
        loader,
        diags,
        extended,
        stack: Vec::new(),
        done: HashMap::new(),
    };
    let canon = walk.loader.canonical(path);
    let (table, whole, _) = walk.tree(path, canon, None)?;
    let Walk { loader, diags, .. } = walk;
    // After merging, so a child can override a parent's value that needs an unset variable.
    let mut poisoned = Vec::new();
    let table = match interpolate_value(
        DeValue::Table(table),
        whole.clone(),
        &loader.sources,
        diags,
        &mut poisoned,
    ) {
        DeValue::Table(t) => t,
        _ => return None,
    };
    let table = unknown_keys(table, diags);
    let keys = table
        .keys()
        .map(|k| (k.get_ref().to_string(), k.span()))
        .collect();
    let raw = deserialize_all(table, whole.clone(), diags)?;
    Some(Read {
        raw,
        poisoned,
        whole,
        keys,
    })
}

/// Parses the file at `base` into a tree in global positions.
pub(super) fn parse(sources: &SourceMap, base: usize) -> ProfileFile {
    let Some(file) = sources.file_at(base) else {
        return ProfileFile::Invalid(Vec::new());
    };
    let (tree, errors) = DeTable::parse_recoverable(file.text);
    if !errors.is_empty() {
        let mut diags = Vec::new();
        for e in errors {
            let span = match e.span() {
                Some(span) if span != (0..0) => span,
                // The parser's recursion limit comes without a place: the
                // line that nests deepest is where it was met.
                _ => deepest_line(file.text),
            };
            let span = span.start + base..span.end + base;
            let mut message = format!("invalid TOML: {}", e.message().trim_end());
            if message.contains("duplicate key")
                && let Some(key) = sources.snippet(&span).filter(|k| !k.is_empty())
            {
                message = format!("{message} `{key}`");
            }
            diags.push(Diagnostic::new(span, message));
        }
        return ProfileFile::Invalid(diags);
    }
    let whole = base..base + file.text.len();
    match shift(&DeValue::Table(tree.into_inner()), base) {
        DeValue::Table(table) => ProfileFile::Parsed { table, whole },
        _ => ProfileFile::Invalid(Vec::new()),
    }
}

/// The line of `text` with the most nesting marks (`.`, `[`, `{`), from its
/// first character to its end: where a recursion limit is met.
fn deepest_line(text: &str) -> std::ops::Range<usize> {
    let mut best = (0, 0..0);
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let depth = line
            .bytes()
            .filter(|b| matches!(b, b'.' | b'[' | b'{'))
            .count();
        if depth > best.0 {
            let indent = line.len() - line.trim_start().len();
            best = (depth, at + indent..at + line.trim_end().len());
        }
        at += line.len();
    }
    best.1
}

/// A file's merged tree, where it is, and how many `extends` lie below it.
type Node = (Table, Span, usize);

/// One profile's walk through its `extends`.
struct Walk<'a> {
    loader: &'a mut Loader,
    diags: &'a mut Vec<Diagnostic>,
    extended: &'a mut HashSet<PathBuf>,
    /// The files being merged, outermost first: a cycle returns to one of them.
    stack: Vec<PathBuf>,
    /// Files already merged in this walk, so a file extended twice (or by
    /// every level of a chain) is merged once.
    done: HashMap<PathBuf, Option<Node>>,
}

impl Walk<'_> {
    /// One file: its table, or a reported problem. `entry` is the `extends`
    /// entry that named it; `None` for the profile itself.
    fn file(&mut self, path: &Path, entry: Option<&Spanned<String>>) -> Option<(Table, Span)> {
        let reader = entry.and_then(|e| self.loader.owner_at(&e.span()));
        match self.loader.profile_file(path, reader.as_ref()) {
            ProfileFile::Parsed { table, whole } => Some((table, whole)),
            ProfileFile::Invalid(diags) => {
                self.diags.extend(diags);
                None
            }
            ProfileFile::Unreadable(e) => {
                self.diags.push(match entry {
                    None => Diagnostic::whole_file(format!(
                        "cannot read profile {}: {}",
                        path.display(),
                        e.reason
                    )),
                    Some(entry) if e.missing => Diagnostic::new(
                        entry.span(),
                        format!("extended profile {} does not exist", path.display()),
                    )
                    .help("`extends` paths are relative to the profile that names them"),
                    Some(entry) => Diagnostic::new(
                        entry.span(),
                        format!(
                            "cannot read extended profile {}: {}",
                            path.display(),
                            e.reason
                        ),
                    ),
                });
                None
            }
        }
    }

    /// One file and, recursively, its `extends`: the merged TOML tree.
    fn tree(&mut self, path: &Path, own: PathBuf, entry: Option<&Spanned<String>>) -> Option<Node> {
        let (mut table, whole) = self.file(path, entry)?;
        let Some(extends) = table.remove("extends") else {
            return Some((table, whole, 0));
        };
        self.stack.push(own);
        let mut merged: Option<Table> = None;
        let mut height = 0;
        let mut complete = true;
        let mut poisoned = Vec::new();
        let extends = Spanned::new(
            extends.span(),
            interpolate_value(
                extends.get_ref().clone(),
                extends.span(),
                &self.loader.sources,
                self.diags,
                &mut poisoned,
            ),
        );
        for parent in extends_paths(&extends, self.diags) {
            let writer = self.loader.owner_at(&parent.span());
            let parent_path = match resolve_relative(path, parent.get_ref(), writer.as_ref())
                .and_then(profile_path)
            {
                Ok(p) => p,
                Err(message) => {
                    self.diags.push(Diagnostic::new(parent.span(), message));
                    complete = false;
                    continue;
                }
            };
            let canon = self.loader.canonical(&parent_path);
            self.extended.insert(canon.clone());
            if let Some(i) = self.stack.iter().position(|p| *p == canon) {
                let mut chain: Vec<String> = self.stack[i..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                chain.push(canon.display().to_string());
                self.diags.push(
                    Diagnostic::new(parent.span(), "`extends` forms a cycle")
                        .label("this profile is already being extended")
                        .help(format!("the chain is {}", chain.join(" → "))),
                );
                complete = false;
                continue;
            }
            // `stack` holds the files from the profile down to this one: as
            // many `extends` steps as it takes to reach the parent.
            let steps = self.stack.len();
            let node = match self.done.get(&canon) {
                Some(done) => done.clone(),
                None if steps > MAX_EXTENDS_DEPTH => {
                    self.too_deep(&parent);
                    complete = false;
                    continue;
                }
                None => {
                    let node = self.tree(&parent_path, canon.clone(), Some(&parent));
                    self.done.insert(canon, node.clone());
                    node
                }
            };
            let Some((parent_table, _, below)) = node else {
                complete = false;
                continue;
            };
            if steps + below > MAX_EXTENDS_DEPTH {
                self.too_deep(&parent);
                complete = false;
                continue;
            }
            height = height.max(below + 1);
            merged = Some(match merged {
                Some(earlier) => merge(earlier, parent_table),
                None => parent_table,
            });
        }
        self.stack.pop();
        // Without all of its parents a profile would show errors that are not its own.
        if !complete || !poisoned.is_empty() {
            return None;
        }
        let table = match merged {
            Some(parent) => merge(parent, table),
            None => table,
        };
        Some((table, whole, height))
    }

    fn too_deep(&mut self, entry: &Spanned<String>) {
        self.diags.push(
            Diagnostic::new(
                entry.span(),
                format!("`extends` goes more than {MAX_EXTENDS_DEPTH} profiles deep"),
            )
            .label("this profile is one too many")
            .help(format!(
                "launch follows at most {MAX_EXTENDS_DEPTH} levels of `extends`; the chain starts at {}",
                self.stack
                    .first()
                    .map_or_else(String::new, |p| p.display().to_string())
            )),
        );
    }
}

/// `extends = "a.toml"` or `extends = ["a.toml", "b.toml"]`.
fn extends_paths(
    value: &Spanned<DeValue<'static>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Spanned<String>> {
    let as_path = |v: &Spanned<DeValue<'static>>| {
        v.get_ref()
            .as_str()
            .map(|s| Spanned::new(v.span(), s.to_string()))
    };
    let paths: Option<Vec<_>> = match value.get_ref() {
        DeValue::Array(items) => items.iter().map(as_path).collect(),
        _ => as_path(value).map(|p| vec![p]),
    };
    let Some(mut paths) = paths else {
        diags.push(Diagnostic::new(
            value.span(),
            "`extends` must be a path or an array of paths",
        ));
        return Vec::new();
    };
    if paths.len() > MAX_PARENTS {
        diags.push(Diagnostic::new(
            value.span(),
            format!(
                "`extends` names {} profiles; at most {MAX_PARENTS}",
                paths.len()
            ),
        ));
        return Vec::new();
    }
    // A parent named twice is merged once, where it is named last (later
    // parents win over earlier ones).
    let mut seen = std::collections::HashSet::new();
    paths.reverse();
    paths.retain(|p| seen.insert(p.get_ref().clone()));
    paths.reverse();
    paths
}

/// Parents one profile may name (each up to 1 MiB, merged in turn).
const MAX_PARENTS: usize = 32;

/// A path named in `profile`, relative to the profile's folder; `~` is the
/// home of `owner`.
pub fn resolve_relative(
    profile: &Path,
    named: &str,
    owner: Option<&crate::owner::Owner>,
) -> Result<PathBuf, String> {
    let named = super::expand_home(named, owner)?;
    Ok(match profile.parent() {
        Some(dir) if named.is_relative() => dir.join(named),
        _ => named,
    })
}

/// An extended file must be a profile by its name: a file that is not TOML
/// (`/etc/shadow`) is refused before it is read, so that no error quotes it.
fn profile_path(path: PathBuf) -> Result<PathBuf, String> {
    if path.extension().is_some_and(|e| e == "toml") {
        Ok(path)
    } else {
        Err(format!(
            "`extends` names {}, which is not a profile: extended profiles are `.toml` files",
            path.display()
        ))
    }
}

/// Copies a parsed tree into global positions (see `source`).
fn shift(value: &DeValue<'static>, base: usize) -> DeValue<'static> {
    let at = |s: Span| s.start + base..s.end + base;
    match value {
        DeValue::Table(t) => DeValue::Table(
            t.iter()
                .map(|(k, v)| {
                    let key = Spanned::new(at(k.span()), k.get_ref().clone());
                    (key, Spanned::new(at(v.span()), shift(v.get_ref(), base)))
                })
                .collect(),
        ),
        DeValue::Array(items) => {
            let mut out = DeArray::new();
            for v in items.iter() {
                out.push(Spanned::new(at(v.span()), shift(v.get_ref(), base)));
            }
            DeValue::Array(out)
        }
        other => other.clone(),
    }
}

/// Replaces `${VAR}` in every string of a tree; a value that fails is
/// reported, kept as written, and its span added to `poisoned`.
fn interpolate_value(
    value: DeValue<'static>,
    span: Span,
    sources: &SourceMap,
    diags: &mut Vec<Diagnostic>,
    poisoned: &mut Vec<Span>,
) -> DeValue<'static> {
    match value {
        DeValue::String(text) => match expand(&text, span.clone(), sources) {
            Ok(s) => DeValue::String(s.into()),
            Err(d) => {
                diags.push(d);
                poisoned.push(span);
                DeValue::String(text)
            }
        },
        DeValue::Table(t) => DeValue::Table(
            t.into_iter()
                .map(|(k, v)| {
                    let span = v.span();
                    let v =
                        interpolate_value(v.into_inner(), span.clone(), sources, diags, poisoned);
                    (k, Spanned::new(span, v))
                })
                .collect(),
        ),
        DeValue::Array(items) => {
            let mut out = DeArray::new();
            for v in items.iter() {
                let span = v.span();
                out.push(Spanned::new(
                    span.clone(),
                    interpolate_value(v.get_ref().clone(), span, sources, diags, poisoned),
                ));
            }
            DeValue::Array(out)
        }
        other => other,
    }
}

fn expand(text: &str, span: Span, sources: &SourceMap) -> Result<String, Diagnostic> {
    let lookup = |name: &str| std::env::var(name).ok();
    match interpolate(text, lookup) {
        Ok(s) => Ok(s),
        Err(e) => {
            let (at, len) = match &e {
                InterpolationError::Unset { at, len, .. } => (*at, *len),
                InterpolationError::Malformed { at, len, .. } => (*at, *len),
            };
            // Point at the `${…}` itself when the literal is written plainly.
            let precise = sources.snippet(&span).and_then(|raw| {
                let inner = raw.get(1..raw.len().checked_sub(1)?)?;
                (inner == text).then(|| span.start + 1 + at..span.start + 1 + at + len)
            });
            let d = match e {
                InterpolationError::Unset { name, .. } => Diagnostic::new(
                    precise.unwrap_or(span),
                    format!("environment variable `{name}` is not set"),
                )
                .help(format!(
                    "set {name}, or give a default: ${{{name}:-value}}; write $$ for a literal $"
                )),
                InterpolationError::Malformed { reason, .. } => {
                    Diagnostic::new(precise.unwrap_or(span), "invalid `${…}` reference")
                        .label(reason)
                        .help("write $$ for a literal $")
                }
            };
            Err(d)
        }
    }
}

/// Reports and drops the top-level keys a profile cannot have, all in one
/// pass (deserializing would stop at each in turn).
fn unknown_keys(table: Table, diags: &mut Vec<Diagnostic>) -> Table {
    let known = top_level_keys();
    // Rebuilt rather than removed from: removing from the ordered map shifts
    // what follows, once per unknown key.
    let mut kept = Table::new();
    for (key, value) in table {
        if known.contains(&key.get_ref().as_ref()) {
            kept.insert(key, value);
        } else {
            diags.push(diagnostic::unknown_key(key.get_ref(), known, key.span()));
        }
    }
    kept
}

/// The keys of [`RawProfile`], as serde lists them: one list for the schema,
/// the deserializer and this check.
fn top_level_keys() -> &'static [&'static str] {
    use serde::de::{Error, Visitor, value};

    /// A deserializer that only notes the fields a struct asks for.
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Error::custom("only a struct's fields are wanted"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Error::custom("fields noted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut fields: &'static [&'static str] = &[];
        let _ = RawProfile::deserialize(Fields(&mut fields));
        fields
    })
}

/// Deserializes the merged table; on an error, reports it, drops the key it
/// belongs to and tries again, so one run shows every bad key, not just the first.
/// `None` when an error belongs to no key (nothing sensible to check further).
fn deserialize_all(
    mut table: Table,
    whole: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<RawProfile> {
    let mut seen = HashSet::new();
    loop {
        let de = Deserializer::from(Spanned::new(whole.clone(), table.clone()));
        let error = match RawProfile::deserialize(de) {
            Ok(raw) => return Some(raw),
            Err(e) => e,
        };
        let span = error.span().unwrap_or(whole.clone());
        // The top-level key whose key, value or `[section]` body holds the error.
        let culprit = table
            .iter()
            .find(|(k, v)| {
                let (k, v) = (k.span(), extent(v));
                (k.start <= span.start && span.end <= k.end)
                    || (v.start <= span.start && span.end <= v.end)
            })
            .map(|(k, _)| k.get_ref().to_string());
        let mut d = diagnostic::from_serde(error.message(), span);
        if let Some(key) = culprit
            .as_deref()
            .filter(|_| !d.message.starts_with("unknown"))
        {
            d.message = format!("`{key}`: {}", d.message);
        }
        diags.push(d);
        match culprit {
            Some(key) if seen.insert(key.clone()) => {
                table.remove(key.as_str());
            }
            _ => return None,
        }
    }
}

/// The span of a value with everything inside it: a `[section]`'s own span
/// is its header, its keys come after it.
fn extent(value: &Value) -> Span {
    let own = value.span();
    let inner = match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, v)| {
                let v = extent(v);
                k.span().start.min(v.start)..v.end
            })
            .collect::<Vec<_>>(),
        DeValue::Array(items) => items.iter().map(extent).collect(),
        _ => Vec::new(),
    };
    inner
        .into_iter()
        .fold(own, |a, b| a.start.min(b.start)..a.end.max(b.end))
}
