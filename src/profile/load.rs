//! Reading profile files: TOML with spans, `${VAR}` interpolation, `extends`
//! merging, and the typed deserialization that reports every key it can.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};

use super::diagnostic;
use super::diagnostic::Diagnostic;
use super::extends::merge;
use super::interpolate::{InterpolationError, interpolate};
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
}

/// Reads `path` and the profiles it extends, and deserializes the merged result.
///
/// Problems are pushed to `diags`; `None` means nothing usable was read.
pub fn read(path: &Path, sources: &mut SourceMap, diags: &mut Vec<Diagnostic>) -> Option<Read> {
    let mut stack = Vec::new();
    let (table, whole) = read_tree(path, sources, diags, &mut stack)?;
    // After merging, so a child can override a parent's value that needs an unset variable.
    let mut poisoned = Vec::new();
    let table = match interpolate_value(
        DeValue::Table(table),
        whole.clone(),
        sources,
        diags,
        &mut poisoned,
    ) {
        DeValue::Table(t) => t,
        _ => return None,
    };
    let raw = deserialize_all(table, whole.clone(), diags)?;
    Some(Read {
        raw,
        poisoned,
        whole,
    })
}

/// One file and, recursively, its `extends`: the merged TOML tree.
fn read_tree(
    path: &Path,
    sources: &mut SourceMap,
    diags: &mut Vec<Diagnostic>,
    stack: &mut Vec<PathBuf>,
) -> Option<(Table, Span)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            diags.push(Diagnostic::whole_file(format!(
                "cannot read profile {}: {}",
                path.display(),
                super::io_reason(&e)
            )));
            return None;
        }
    };
    let base = sources.add(path, text);
    let file = sources.file_at(base)?;
    let (tree, errors) = DeTable::parse_recoverable(file.text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            let span = span.start + base..span.end + base;
            let mut message = format!("invalid TOML: {}", e.message().trim_end());
            if message.contains("duplicate key")
                && let Some(key) = sources.snippet(&span).filter(|k| !k.is_empty())
            {
                message = format!("{message} `{key}`");
            }
            diags.push(Diagnostic::new(span, message));
        }
        return None;
    }
    let whole = base..base + file.text.len();
    let mut table = match shift(&DeValue::Table(tree.into_inner()), base) {
        DeValue::Table(t) => t,
        _ => return None,
    };

    let Some(extends) = table.remove("extends") else {
        return Some((table, whole));
    };
    let own = canonical(path);
    stack.push(own);
    let mut merged: Option<Table> = None;
    let mut complete = true;
    let mut poisoned = Vec::new();
    let extends = Spanned::new(
        extends.span(),
        interpolate_value(
            extends.get_ref().clone(),
            extends.span(),
            sources,
            diags,
            &mut poisoned,
        ),
    );
    for parent in extends_paths(&extends, diags) {
        let parent_path = resolve_relative(path, parent.get_ref());
        let canon = canonical(&parent_path);
        if let Some(i) = stack.iter().position(|p| *p == canon) {
            let mut chain: Vec<String> =
                stack[i..].iter().map(|p| p.display().to_string()).collect();
            chain.push(canon.display().to_string());
            diags.push(
                Diagnostic::new(parent.span(), "`extends` forms a cycle")
                    .label("this profile is already being extended")
                    .help(format!("the chain is {}", chain.join(" → "))),
            );
            complete = false;
            continue;
        }
        if !parent_path.is_file() {
            diags.push(
                Diagnostic::new(
                    parent.span(),
                    format!("extended profile {} does not exist", parent_path.display()),
                )
                .help("`extends` paths are relative to the profile that names them"),
            );
            complete = false;
            continue;
        }
        match read_tree(&parent_path, sources, diags, stack) {
            Some((parent_table, _)) => {
                merged = Some(match merged {
                    Some(earlier) => merge(earlier, parent_table),
                    None => parent_table,
                })
            }
            None => complete = false,
        }
    }
    stack.pop();
    // Without all of its parents a profile would show errors that are not its own.
    if !complete || !poisoned.is_empty() {
        return None;
    }
    let table = match merged {
        Some(parent) => merge(parent, table),
        None => table,
    };
    Some((table, whole))
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
    paths.unwrap_or_else(|| {
        diags.push(Diagnostic::new(
            value.span(),
            "`extends` must be a path or an array of paths",
        ));
        Vec::new()
    })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A path named in `profile`, relative to the profile's folder.
pub fn resolve_relative(profile: &Path, named: &str) -> PathBuf {
    let named = super::expand_home(named);
    match profile.parent() {
        Some(dir) if named.is_relative() => dir.join(named),
        _ => named,
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
